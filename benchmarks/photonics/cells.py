"""Random periodic 2-D unit cells: 32 x 32 permittivity grids with eps in [1, 20], two families.

- ``"blob"``: a level set of a smooth periodic Gaussian random field (white noise low-pass filtered in Fourier
  space with a random correlation length), thresholded at a random fill fraction in [0.2, 0.8]; two materials.
- ``"p4m"``: blob cells whose field is first averaged over the 8 symmetries of the square, so each cell has the
  full p4m symmetry (the setting of the reference photonics data), and a half-cell translation is detectable.
- ``"rods"``: one to four random ellipses (random centres, semi-axes and orientations) drawn with periodic
  wrap-around, one material inside, another outside.

Both are exactly periodic (the blob field lives on the torus; the ellipses use minimum-image distances) and
deterministic given the seed. The two permittivities of a cell are drawn independently and uniformly in
[1, 20] and at least 2 apart, so every cell has contrast.
"""

from __future__ import annotations

import numpy as np

EPS_MIN, EPS_MAX = 1.0, 20.0
SIDE = 32
FAMILIES = ("blob", "rods", "p4m")


def _materials(rng: np.random.Generator, count: int) -> np.ndarray:
    out = np.empty((count, 2))
    for i in range(count):
        while True:
            a, b = rng.uniform(EPS_MIN, EPS_MAX, size=2)
            if abs(a - b) >= 2.0:
                out[i] = a, b
                break
    return out


def blob_cells(count: int, rng: np.random.Generator, side: int = SIDE) -> np.ndarray:
    """(count, side, side) two-material level-set cells."""
    return _level_set(_smooth_field(count, rng, side), rng)


def _smooth_field(count: int, rng: np.random.Generator, side: int) -> np.ndarray:
    """(count, side, side) periodic Gaussian random fields, each with its own correlation length."""
    m = np.fft.fftfreq(side) * side
    m2 = m[:, None] ** 2 + m[None, :] ** 2
    noise = np.fft.fft2(rng.standard_normal((count, side, side)))
    width = rng.uniform(1.2, 3.0, size=(count, 1, 1))  # correlation length ~ side / (2 pi width) pixels
    return np.fft.ifft2(noise * np.exp(-m2[None] / (2 * width**2))).real


def _level_set(field: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two materials per cell of ``field`` (count, side, side): the first where the field is above the level that
    fills a random share (0.2 to 0.8) of the cell, the second elsewhere."""
    count = len(field)
    fill = rng.uniform(0.2, 0.8, size=count)
    level = np.array([np.quantile(f, 1.0 - p) for f, p in zip(field, fill, strict=True)])
    inside = field > level[:, None, None]
    mat = _materials(rng, count)
    return np.where(inside, mat[:, 0, None, None], mat[:, 1, None, None])


def p4m_cells(count: int, rng: np.random.Generator, side: int = SIDE) -> np.ndarray:
    """(count, side, side) two-material level-set cells with the full p4m symmetry of the square lattice.

    The blob field is averaged over the 8 symmetries of the square about the cell centre before thresholding,
    so every cell is mapped to itself by ``D4`` exactly (as the unit cells of the reference data, which MPB solves
    on the irreducible Brillouin zone), while a half-cell translation moves the symmetry centre and is visible.
    """
    field = _smooth_field(count, rng, side)
    field = sum(np.rot90(f, k, axes=(1, 2)) for f in (field, field[:, ::-1]) for k in range(4)) / 8
    # exactly equal values on every orbit (the average above differs in the last bits): read each orbit's first pixel
    index = np.arange(side * side).reshape(side, side)
    orbit_first = np.minimum.reduce([np.rot90(f, k) for f in (index, index[::-1]) for k in range(4)])
    return _level_set(field.reshape(count, -1)[:, orbit_first], rng)


def rods_cells(count: int, rng: np.random.Generator, side: int = SIDE) -> np.ndarray:
    """(count, side, side) cells of 1-4 periodic ellipses in a background."""
    centre = (np.arange(side) + 0.5) / side
    x, y = np.meshgrid(centre, centre, indexing="ij")
    mat = _materials(rng, count)
    cells = np.empty((count, side, side))
    for i in range(count):
        inside = np.zeros((side, side), dtype=bool)
        for _ in range(rng.integers(1, 5)):
            cx, cy = rng.uniform(0, 1, size=2)
            ax, ay = rng.uniform(0.06, 0.3, size=2)
            theta = rng.uniform(0, np.pi)
            dx = (x - cx + 0.5) % 1.0 - 0.5  # minimum-image displacement on the unit torus
            dy = (y - cy + 0.5) % 1.0 - 0.5
            u = dx * np.cos(theta) + dy * np.sin(theta)
            v = -dx * np.sin(theta) + dy * np.cos(theta)
            inside |= (u / ax) ** 2 + (v / ay) ** 2 <= 1.0
        if not inside.any() or inside.all():
            inside[side // 2, side // 2] = True
            inside[0, 0] = False
        cells[i] = np.where(inside, mat[i, 0], mat[i, 1])
    return cells


def random_cells(count: int, seed: int | list[int], family: str = "blob", side: int = SIDE) -> np.ndarray:
    """(count, side, side) float64 permittivity cells of ``family`` ("blob", "rods", "p4m" or "mixed": blob and rods).

    Example:
        >>> c = random_cells(3, seed=0)
        >>> c.shape, bool(c.min() >= 1.0), bool(c.max() <= 20.0)
        ((3, 32, 32), True, True)
    """
    rng = np.random.default_rng(seed)
    if family == "blob":
        return blob_cells(count, rng, side)
    if family == "rods":
        return rods_cells(count, rng, side)
    if family == "p4m":
        return p4m_cells(count, rng, side)
    if family == "mixed":
        half = count // 2
        cells = np.concatenate([blob_cells(half, rng, side), rods_cells(count - half, rng, side)])
        return cells[rng.permutation(count)]
    raise ValueError(f"`family` must be one of {(*FAMILIES, 'mixed')}, got {family!r}.")
