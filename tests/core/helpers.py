"""Shared catalogue of families, independent oracles and hypothesis settings for the core tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from hypothesis import HealthCheck, settings
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from essl_aug import (
    D4,
    BlurLevels,
    Grayscale,
    GroupFamily,
    HorizontalFlip,
    Inversion,
    Jigsaw,
    PeriodicTranslation,
    PixelPermutationFamily,
    Product,
    Rotation,
    TransformFamily,
    VerticalFlip,
)

#: Hypothesis settings for the core suite: no deadline (shared CPUs), few examples (the suite stays fast).
FAST = settings(deadline=None, max_examples=20, suppress_health_check=[HealthCheck.too_slow])
#: For properties whose every example runs several blurs (slow convolutions on a CPU).
FEW = settings(deadline=None, max_examples=8, suppress_health_check=[HealthCheck.too_slow])
#: For the cheapest properties.
MORE = settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)

ALL_PERMUTATIONS = list(itertools.permutations(range(4)))
#: Subgroups of S4 given as indices into ``itertools.permutations(range(4))``, identity first.
KLEIN_FOUR = [ALL_PERMUTATIONS.index(p) for p in [(0, 1, 2, 3), (1, 0, 3, 2), (2, 3, 0, 1), (3, 2, 1, 0)]]
CYCLIC_FOUR = [ALL_PERMUTATIONS.index(p) for p in [(0, 1, 2, 3), (1, 3, 0, 2), (3, 2, 1, 0), (2, 0, 3, 1)]]
#: Not closed under composition: (1, 0, 2, 3) then (0, 2, 1, 3) is a 3-cycle outside the set.
OPEN_SUBSET = [ALL_PERMUTATIONS.index(p) for p in [(0, 1, 2, 3), (1, 0, 2, 3), (0, 2, 1, 3), (0, 1, 3, 2)]]

#: Group families, by test id. Every one accepts 3-channel square images of a side that :func:`side` finds (any even
#: side >= 8, except the periodic translations: a multiple of their steps).
GROUPS: dict[str, Callable[[], GroupFamily]] = {
    "rotation": Rotation,
    "vflip": VerticalFlip,
    "hflip": HorizontalFlip,
    "jigsaw": Jigsaw,
    "jigsaw-klein": lambda: Jigsaw(KLEIN_FOUR),
    "jigsaw-c4": lambda: Jigsaw(CYCLIC_FOUR),
    "jigsaw-clockwise": lambda: Jigsaw(tile_order="clockwise"),
    "invert": Inversion,
    "invert-normalized": lambda: Inversion(mean=CIFAR_MEAN, std=CIFAR_STD),
    "dihedral": lambda: Product([Rotation(), VerticalFlip()]),
    "rotation-x-hflip": lambda: Product([Rotation(), HorizontalFlip()]),
    "vflip-x-invert": lambda: Product([VerticalFlip(), Inversion()]),
    "translation": PeriodicTranslation,
    "translation-4": lambda: PeriodicTranslation(4),
    "translation-3x4": lambda: PeriodicTranslation((3, 4)),
    "d4": D4,
    "d4-x-translation": lambda: Product([D4(), PeriodicTranslation()]),
    "translation-x-invert": lambda: Product([PeriodicTranslation((1, 2)), Inversion()]),
}

#: Families that are not groups (no compose/inverse), same image requirements.
NON_GROUPS: dict[str, Callable[[], TransformFamily]] = {
    "blur": BlurLevels,
    "blur-custom": lambda: BlurLevels(kernel_sizes=(3, 7), sigmas=(0.8, 2.0)),
    "grayscale": Grayscale,
    "jigsaw-open": lambda: Jigsaw(OPEN_SUBSET),
    "vflip-x-blur3": lambda: Product([VerticalFlip(), BlurLevels(kernel_sizes=(3,))]),
    "grayscale-x-vflip": lambda: Product([Grayscale(), VerticalFlip()]),
}

FAMILIES: dict[str, Callable[[], TransformFamily]] = {**GROUPS, **NON_GROUPS}

_CACHE: dict[str, TransformFamily] = {}


def family(name: str) -> TransformFamily:
    """One shared instance per catalogue id (their caches make repeated calls cheap)."""
    if name not in _CACHE:
        _CACHE[name] = FAMILIES[name]()
    return _CACHE[name]


def side(f: TransformFamily, at_least: int) -> int:
    """The smallest square side >= ``at_least`` that ``f`` accepts for 3-channel float images.

    The same as ``at_least`` for every family but the periodic translations, whose sides must be multiples of
    their steps (``translation-3x4``: of 12).
    """
    for s in range(at_least, at_least + 64):
        try:
            f.check(torch.empty(1, 3, s, s))
        except ValueError:
            continue
        return s
    raise AssertionError(f"{f!r} accepts no side in [{at_least}, {at_least + 64})")


def moves_pixels_only(f: TransformFamily) -> bool:
    """True when ``f`` only moves pixels, so its results are exact for every dtype."""
    if isinstance(f, Product):
        return all(moves_pixels_only(g) for g in f.families)
    return isinstance(f, PixelPermutationFamily)


def is_differentiable(f: TransformFamily) -> bool:
    return f.dtypes[0].is_floating_point


def images(batch: int, size: int, seed: int, channels: int = 3, dtype: torch.dtype = torch.float64) -> Tensor:
    """A generic batch in [0, 1): all pixels distinct with probability one."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, channels, size, size, generator=gen, dtype=torch.float64).to(dtype)


def labels_for(f: TransformFamily, batch: int, seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed + 1)
    return torch.randint(f.num_classes, (batch,), generator=gen)


def assert_same(actual: Tensor, expected: Tensor, exact: bool) -> None:
    """Bit equality for pixel moves; float rounding otherwise."""
    if exact:
        assert actual.dtype == expected.dtype
        assert torch.equal(actual, expected)
    else:
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-12)


# -- independent oracles, one label at a time ---------------------------------------------------------------------


def rotate_images(x: Tensor) -> tuple[Tensor, Tensor]:
    """The reference E-SSL four-rotation block layout, written from its definition."""
    b = x.shape[0]
    views = torch.cat([x, x.flip(3).transpose(2, 3), x.flip(3).flip(2), x.transpose(2, 3).flip(3)])
    return views, torch.arange(4).repeat_interleave(b)


def jigsaw_by_slicing(img: Tensor, perm: tuple[int, ...], tile_order: str) -> Tensor:
    """Reassemble the 2x2 tiles of (..., H, W) ``img``: output cell ``i`` holds input tile ``perm[i]``."""
    h, w = img.shape[-2] // 2, img.shape[-1] // 2
    tl, tr = img[..., :h, :w], img[..., :h, w:]
    bl, br = img[..., h:, :w], img[..., h:, w:]
    if tile_order == "row-major":
        tiles = [tl, tr, bl, br]
        c = [tiles[p] for p in perm]
        grid = [[c[0], c[1]], [c[2], c[3]]]
    else:  # clockwise: top-left, top-right, bottom-right, bottom-left
        tiles = [tl, tr, br, bl]
        c = [tiles[p] for p in perm]
        grid = [[c[0], c[1]], [c[3], c[2]]]
    return torch.cat([torch.cat(row, dim=-1) for row in grid], dim=-2)


def blur_oracle(img: Tensor, kernel_size: int, sigma: float | None = None) -> Tensor:
    """torchvision's functional Gaussian blur (reflect borders, default sigma when ``sigma`` is None)."""
    if sigma is None:
        return TF.gaussian_blur(img, [kernel_size, kernel_size])
    return TF.gaussian_blur(img, [kernel_size, kernel_size], [sigma, sigma])


def assert_dihedral_relations(d4: TransformFamily) -> None:
    """``d4`` (labels ``2 * k + f``) is the dihedral group of order 8: r^4 = f^2 = e, f r f = r^-1, not abelian,
    and its element orders are D4's (C8 or C2^3 would differ)."""
    assert d4.num_classes == 8
    r, f, e = torch.tensor([2]), torch.tensor([1]), torch.tensor([0])
    r2 = d4.compose(r, r)
    assert torch.equal(d4.compose(r2, r2), e)
    assert torch.equal(d4.compose(f, f), e)
    assert torch.equal(d4.compose(f, d4.compose(r, f)), d4.inverse(r))
    assert not torch.equal(d4.compose(r, f), d4.compose(f, r))
    orders = []
    for g in range(8):
        power, n = torch.tensor([g]), 1
        while not torch.equal(power, e):
            power, n = d4.compose(torch.tensor([g]), power), n + 1
        orders.append(n)
    assert sorted(orders) == [1, 2, 2, 2, 2, 2, 4, 4]
