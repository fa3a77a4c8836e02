"""TM band structures of a pixelated 2-D unit cell from two established solvers.

- **legume** (``pip install legume-gme``): its plane-wave expansion ``legume.PlaneWaveExp``. The cell enters
  through :class:`PixelLayer`, a ``legume`` layer whose Fourier coefficients are the exact ones of the
  piecewise-constant pixel map; legume builds and inverts the permittivity matrix and solves the TM eigenproblem.
- **MPB** (Debian package ``mpb``, the tool of the reference datasets): the ``mpb`` program, driven with a
  generated ctl file; the cell is passed as ``epsilon-input-file`` (HDF5 dataset ``data``) at a resolution of
  one grid point per pixel, ``mesh-size 1``.

Grid convention shared by both: ``eps[i, j]`` is the pixel at ``x = (i + 1/2) / N``, ``y = (j + 1/2) / N``
(first axis = x, MPB's HDF5 convention); wave vectors are in units of 2*pi/a; frequencies in c/a.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

#: Plane-wave cut-off for the benchmark data: |G| <= GMAX * 2*pi/a, i.e. (2 * 6 + 1)**2 = 169 plane waves.
GMAX = 6.0
#: Bands solved per k-point (enough to cover the DOS window, checked per cell by ``dos.bands_cover``).
NUM_BANDS = 16


def _check_cell(eps: np.ndarray) -> np.ndarray:
    eps = np.asarray(eps, dtype=np.float64)
    if eps.ndim != 2 or eps.shape[0] != eps.shape[1]:
        raise ValueError(f"`eps` must be a square (N, N) permittivity grid, got shape {eps.shape}.")
    if not np.all(eps >= 1.0):
        raise ValueError("`eps` must be >= 1 everywhere (a dielectric); rescale the cell.")
    return eps


def legume_available() -> bool:
    try:
        import legume  # noqa: F401
    except ImportError:
        return False
    return True


def _pixel_layer_class():
    from legume.phc.layer import Layer

    class PixelLayer(Layer):
        """A legume layer holding an (N, N) pixel map: exact Fourier coefficients of the piecewise-constant cell."""

        def __init__(self, lattice, eps: np.ndarray) -> None:
            super().__init__(lattice)
            self.eps = eps
            self.eps_b = float(eps.mean())  # legume's background permittivity; only used as a default
            self.eps_avg = self.eps_b
            self._fft = np.fft.fft2(eps) / eps.size

        def compute_ft(self, gvec: np.ndarray) -> np.ndarray:
            # (1/A) * integral of eps(r) exp(-i G.r) over the cell, G = 2*pi*(m1, m2):
            # a DFT of the pixel values, times the transform of one pixel (a sinc per axis) and the half-pixel
            # offset of the pixel centres.
            n = self.eps.shape[0]
            m = np.rint(np.asarray(gvec) / (2 * np.pi)).astype(np.int64)
            pixel = np.sinc(m[0] / n) * np.sinc(m[1] / n)
            phase = np.exp(-1j * np.pi * (m[0] + m[1]) / n)
            return self._fft[m[0] % n, m[1] % n] * pixel * phase

    return PixelLayer


def bands_legume(eps: np.ndarray, kpoints: np.ndarray, num_bands: int = NUM_BANDS, gmax: float = GMAX) -> np.ndarray:
    """(N_k, num_bands) TM frequencies of the pixel cell ``eps`` at ``kpoints`` (N_k, 2), from legume's PWE."""
    import legume

    eps = _check_cell(eps)
    layer = _pixel_layer_class()(legume.Lattice("square"), eps)
    pwe = legume.PlaneWaveExp(layer, gmax=gmax)
    with _one_blas_thread():
        pwe.run(kpoints=2 * np.pi * np.asarray(kpoints, dtype=np.float64).T, pol="tm", numeig=num_bands)
    return np.asarray(pwe.freqs, dtype=np.float64)


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """One BLAS thread for legume's small dense eigenproblems (169 x 169 by default).

    A second thread does not speed them up, and on a busy machine (a shared CI core, a torch thread pool spinning
    beside it) the BLAS threads wait on each other: measured 3-50x slower than one thread. ``threadpoolctl``
    (installed with the ``photonics`` extra) sets the limit in-process; without it the BLAS default is kept.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def mpb_available() -> bool:
    return shutil.which("mpb") is not None


_FREQ_LINE = re.compile(r"^tmfreqs:, (\d+),")


def _parse_tmfreqs(text: str, num_k: int) -> list[np.ndarray]:
    """Band structures, in order, from the ``tmfreqs:`` lines of an MPB log (one k-point per ``run-tm``)."""
    rows = [[float(v) for v in line.split(",")[6:]] for line in text.splitlines() if _FREQ_LINE.match(line)]
    if not rows or len(rows) % num_k:
        raise RuntimeError(f"MPB printed {len(rows)} frequency lines, not a multiple of {num_k} k-points; see its log.")
    return list(np.asarray(rows, dtype=np.float64).reshape(-1, num_k, len(rows[0])))


def run_mpb_ctl(ctl: str, workdir: str | os.PathLike, timeout: float = 600.0) -> str:
    """Run ``mpb`` on a ctl program text in ``workdir``; return its standard output."""
    if not mpb_available():
        raise RuntimeError("the `mpb` program is not installed; on Debian/Ubuntu: `apt-get install -y mpb`.")
    path = Path(workdir) / "run.ctl"
    path.write_text(ctl)
    proc = subprocess.run(
        ["mpb", path.name],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"mpb failed with exit code {proc.returncode}:\n{proc.stderr[-2000:]}")
    return proc.stdout


def _vectors(kpoints: np.ndarray) -> str:
    return " ".join(f"(vector3 {float(kx)!r} {float(ky)!r} 0)" for kx, ky in np.asarray(kpoints, dtype=np.float64))


def bands_mpb(cells: np.ndarray, kpoints: np.ndarray, num_bands: int = NUM_BANDS, mesh_size: int = 1) -> np.ndarray:
    """(B, N_k, num_bands) TM frequencies of (B, N, N) pixel cells from one ``mpb`` process.

    The resolution is one MPB grid point per pixel (N per lattice constant). Each k-point is its own ``run-tm``,
    which starts from random fields: MPB otherwise seeds a k-point with the previous one's eigenvectors, and in a
    (near-)homogeneous cell those span an invariant subspace that hides some degenerate bands.
    """
    import h5py

    cells = np.asarray(cells, dtype=np.float64)
    if cells.ndim == 2:
        cells = cells[None]
    for c in cells:
        _check_cell(c)
    n = cells.shape[-1]
    with tempfile.TemporaryDirectory(prefix="essl-mpb-") as tmp:
        names = []
        for i, c in enumerate(cells):
            name = f"cell{i}.h5"
            with h5py.File(Path(tmp) / name, "w") as f:
                f["data"] = c
            names.append(name)
        solves = "\n".join(f'(solve "{name}")' for name in names)
        ctl = f"""(set! num-bands {int(num_bands)})
(define all-k-points (list {_vectors(kpoints)}))
(set! geometry '())
(set! geometry-lattice (make lattice (size 1 1 no-size)))
(set! resolution {n})
(set! mesh-size {int(mesh_size)})
(define (solve-k k) (set! k-points (list k)) (run-tm))
(define (solve f) (set! epsilon-input-file f) (for-each solve-k all-k-points))
{solves}
"""
        out = run_mpb_ctl(ctl, tmp)
    runs = _parse_tmfreqs(out, len(kpoints))
    if len(runs) != len(cells):
        raise RuntimeError(f"MPB returned {len(runs)} band structures for {len(cells)} cells.")
    return np.stack(runs)
