"""Physics checks of the photonic-crystal benchmark data (TM polarisation, square lattice, a = 1).

The solvers are real programs: legume-gme (PyPI, ``pip install -e .[photonics]``) and MPB (Debian package ``mpb``).
A test whose solver is missing is skipped, unless ``ESSL_REQUIRE_SOLVERS=1`` (set in CI), where it fails.
"""

from __future__ import annotations

import itertools
import math
import os
import re

import numpy as np
import pytest
import torch

from benchmarks.photonics import cells, dos, solvers
from essl_aug import D4, PeriodicTranslation

REQUIRE = os.environ.get("ESSL_REQUIRE_SOLVERS") == "1"


def _need(available: bool, what: str) -> None:
    if not available:
        if REQUIRE:
            pytest.fail(f"{what} is required (ESSL_REQUIRE_SOLVERS=1) but not installed.")
        pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="module")
def legume_ok() -> None:
    _need(solvers.legume_available(), "legume-gme (pip install -e .[photonics])")


@pytest.fixture(scope="module")
def mpb_ok() -> None:
    _need(solvers.mpb_available(), "the `mpb` program (apt-get install -y mpb)")


# -- empty lattice ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [1.0, 4.7])
def test_homogeneous_cell_gives_empty_lattice_bands_legume(legume_ok: None, eps: float) -> None:
    k = dos.kgrid(4)
    bands = solvers.bands_legume(np.full((32, 32), eps), k, num_bands=10)
    np.testing.assert_allclose(bands, dos.empty_lattice_bands(k, 10, eps), rtol=1e-9, atol=1e-12)


def test_homogeneous_cell_gives_empty_lattice_bands_mpb(mpb_ok: None) -> None:
    """MPB's iterative eigensolver converges to ~1e-7 in frequency: 1e-5 is a safe relative tolerance."""
    k = dos.kgrid(4)
    bands = solvers.bands_mpb(np.full((1, 32, 32), 3.0), k, num_bands=8)[0]
    np.testing.assert_allclose(bands, dos.empty_lattice_bands(k, 8, 3.0), rtol=1e-5, atol=1e-6)


def test_homogeneous_cell_dos_is_the_empty_lattice_dos() -> None:
    """DOS of |k + G| / sqrt(eps) vs 2 pi w: 3.8 % relative L1 (w >= 0.24) is the 12 x 12 k-grid's sampling error
    (a 16 x 16 grid gives 1.8 %, a raw 8 x 8 grid without interpolation 23 %); 5 % leaves room for rounding only.
    The rescaling by sqrt(eps_avg) must make the result independent of eps."""
    k = dos.kgrid()
    reference = dos.empty_lattice_dos()
    one = dos.dos(dos.empty_lattice_bands(k, 16, 1.0), 1.0)
    nine = dos.dos(dos.empty_lattice_bands(k, 16, 9.0), 9.0)
    assert dos.relative_l1(one, reference) < 0.05
    np.testing.assert_allclose(nine, one, rtol=1e-9, atol=1e-9)
    # states are counted right: the integral of the DOS up to w is the number of bands below w per k-point
    w = dos.WVEC
    counted = np.mean(np.sum(dos.empty_lattice_bands(k, 16, 1.0) < 0.8, axis=1))
    assert abs(np.trapezoid(one[w <= 0.8], w[w <= 0.8]) - counted) < 0.05 * counted


# -- symmetries of the DOS ---------------------------------------------------------------------------------------


def test_dos_is_invariant_under_d4_and_periodic_translations(legume_ok: None) -> None:
    cell = torch.from_numpy(cells.random_cells(1, seed=7, family="rods")).unsqueeze(1)  # (1, 1, 32, 32)
    k = dos.kgrid()

    def dos_of(c: torch.Tensor) -> np.ndarray:
        eps = c[0, 0].numpy()
        return dos.dos(solvers.bands_legume(eps, k), float(eps.mean()))

    reference = dos_of(cell)
    images = list(D4().apply_all(cell).split(1))[1:]  # the 7 non-trivial symmetries of the square
    images += list(PeriodicTranslation().apply_all(cell).split(1))[1:]  # half-cell shifts
    images.append(torch.roll(cell, (5, 11), dims=(-2, -1)))  # an arbitrary whole-pixel shift
    for image in images:
        np.testing.assert_allclose(dos_of(image), reference, rtol=1e-7, atol=1e-7)
    # Control: a change that is not a symmetry (one material swapped for another) does change the DOS.
    other = torch.where(cell == cell.max(), cell.min() + 1.0, cell)
    assert dos.relative_l1(dos_of(other), reference) > 1e-3


# -- the published MPB tutorial gap ------------------------------------------------------------------------------

#: MPB Scheme tutorial, "Our First Band Structure": a square lattice of dielectric rods, epsilon 12, radius 0.2a,
#: resolution 32, k-path Gamma-X-M-Gamma with 4 interpolated points per segment. Its (run-tm) output reads
#: "Gap from band 1 (0.282623311147724) to band 2 (0.419334798706834), 38.9514660888911%".
#: Source: https://mpb.readthedocs.io/en/latest/Scheme_Tutorial/ (NanoComp/mpb, doc/docs/Scheme_Tutorial.md).
TUTORIAL_GAP = (0.282623311147724, 0.419334798706834)
#: Tolerance on each edge, relative. The published numbers come from an older MPB whose subpixel averaging of
#: epsilon differed: the packaged MPB 1.11 gives 0.28095 / 0.41711 at resolution 32 and converges to
#: 0.28068 / 0.41716 at resolution 128, i.e. the structure itself sits 0.5-0.7 % below the published edges. 1 %
#: covers that and still fails on a wrong structure: epsilon 11.56 (GaAs) moves the lower edge by 1.2 %, a radius
#: of 0.19a by 2.3 %, and TE polarisation has no gap between bands 1 and 2 at all.
GAP_RTOL = 0.01

TUTORIAL_CTL = """(set! num-bands 8)
(set! k-points (interpolate 4 (list (vector3 0 0 0) (vector3 0.5 0 0) (vector3 0.5 0.5 0) (vector3 0 0 0))))
(set! geometry (list (make cylinder (center 0 0 0) (radius 0.2) (height infinity)
                       (material (make dielectric (epsilon 12))))))
(set! geometry-lattice (make lattice (size 1 1 no-size)))
(set! resolution 32)
(run-tm)
"""


def test_mpb_reproduces_the_tutorial_tm_gap_of_square_rods(mpb_ok: None, tmp_path) -> None:
    out = solvers.run_mpb_ctl(TUTORIAL_CTL, tmp_path)
    gap = re.search(r"Gap from band 1 \(([\d.]+)\) to band 2 \(([\d.]+)\)", out)
    assert gap, "MPB reported no TM gap between bands 1 and 2"
    lower, upper = float(gap.group(1)), float(gap.group(2))
    assert lower == pytest.approx(TUTORIAL_GAP[0], rel=GAP_RTOL)
    assert upper == pytest.approx(TUTORIAL_GAP[1], rel=GAP_RTOL)


def test_pixel_pipeline_reproduces_the_tutorial_gap(legume_ok: None) -> None:
    """The same rods, rasterised to a 32 x 32 pixel cell and solved by legume along the tutorial's k-path.

    Pixelation changes the rod (its area is off by the staircase), so the tolerance is looser: 3 %.
    """
    centre = (np.arange(32) + 0.5) / 32 - 0.5
    x, y = np.meshgrid(centre, centre, indexing="ij")
    eps = np.where(x**2 + y**2 <= 0.2**2, 12.0, 1.0)
    corners = np.array([[0, 0], [0.5, 0], [0.5, 0.5], [0, 0]])
    path = np.concatenate([np.linspace(a, b, 5, endpoint=False) for a, b in itertools.pairwise(corners)])
    bands = solvers.bands_legume(eps, np.vstack([path, corners[-1:]]), num_bands=2, gmax=10)
    lower, upper = bands[:, 0].max(), bands[:, 1].min()
    assert lower == pytest.approx(TUTORIAL_GAP[0], rel=0.03)
    assert upper == pytest.approx(TUTORIAL_GAP[1], rel=0.03)


# -- two solvers, one answer --------------------------------------------------------------------------------------


def test_mpb_and_legume_agree_on_random_cells(legume_ok: None, mpb_ok: None) -> None:
    """Bands 1-6 within 2 % and DOS within 3 % relative L1 on three random cells (both families).

    The two solvers discretise the pixel cell differently (legume: 169 plane waves with the exact Fourier
    coefficients of the pixels; MPB: one real-space grid point per pixel), so they agree to their
    discretisation error: measured 0.3-0.8 % on bands and 0.2-1.7 % on the DOS; MPB alone moves by 0.1-0.5 %
    between resolutions 32 and 128.
    """
    test_cells = np.concatenate([cells.random_cells(2, seed=3, family="blob"), cells.random_cells(1, 4, "rods")])
    k = dos.kgrid()
    mpb = solvers.bands_mpb(test_cells, k, num_bands=12)
    for eps, bands_mpb in zip(test_cells, mpb, strict=True):
        bands_legume = solvers.bands_legume(eps, k)
        assert np.max(np.abs(bands_legume[:, :6] / bands_mpb[:, :6] - 1)) < 0.02
        eps_avg = float(eps.mean())
        assert dos.bands_cover(bands_mpb, eps_avg)
        assert dos.relative_l1(dos.dos(bands_legume, eps_avg), dos.dos(bands_mpb[:, :12], eps_avg)) < 0.03


def test_scale_invariance_of_maxwell_equations(legume_ok: None) -> None:
    """Multiplying eps by s divides every frequency by sqrt(s): a physics identity the solver must obey."""
    eps = cells.random_cells(1, seed=11)[0] / 2 + 0.5
    eps = np.maximum(eps, 1.0)
    k = dos.kgrid(4)
    np.testing.assert_allclose(
        solvers.bands_legume(4 * eps, k, num_bands=6), solvers.bands_legume(eps, k, num_bands=6) / 2, rtol=1e-9
    )
    assert math.isclose(float(np.sqrt(4.0)), 2.0)
