"""Every family agrees, label by label, with an independent implementation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from kornia.augmentation import RandomJigsaw
from kornia.enhance import invert as kornia_invert
from kornia.filters import filter2d_separable
from torchvision.transforms.v2 import functional as TF

from essl_aug import (
    PERMUTATIONS,
    BlurLevels,
    EquivariantTransform,
    Grayscale,
    HorizontalFlip,
    Inversion,
    Jigsaw,
    Product,
    Rotation,
    VerticalFlip,
)
from tests.core.helpers import (
    ALL_PERMUTATIONS,
    CIFAR_MEAN,
    CIFAR_STD,
    CYCLIC_FOUR,
    FAST,
    FEW,
    KLEIN_FOUR,
    OPEN_SUBSET,
    blur_oracle,
    images,
    jigsaw_by_slicing,
    rotate_images,
)

seeds = st.integers(0, 2**31 - 1)
batches = st.integers(1, 6)
even = st.sampled_from([2, 4, 6, 8, 12, 16, 18, 34])
float_dtypes = st.sampled_from([torch.float32, torch.float64])

#: kornia numbers the destination cells of a 2x2 grid column-major; this swaps to row-major (an involution).
KORNIA_TO_ROW_MAJOR = [0, 2, 1, 3]


def _per_label(x: torch.Tensor, labels: torch.Tensor, oracle) -> torch.Tensor:
    return torch.stack([oracle(x[i], int(labels[i])) for i in range(x.shape[0])])


def _random_labels(k: int, batch: int, seed: int) -> torch.Tensor:
    return torch.randint(k, (batch,), generator=torch.Generator().manual_seed(seed))


# -- rotation and flips --------------------------------------------------------------------------------------------


@FAST
@given(batch=batches, size=st.integers(1, 40), seed=seeds, dtype=float_dtypes)
def test_rotation_is_rot90(batch: int, size: int, seed: int, dtype: torch.dtype) -> None:
    x = images(batch, size, seed, dtype=dtype)
    labels = _random_labels(4, batch, seed)
    expected = _per_label(x, labels, lambda img, k: torch.rot90(img, k, dims=(-2, -1)))
    assert torch.equal(Rotation().apply(x, labels), expected)


@pytest.mark.parametrize("k", range(4))
def test_rotation_every_label_on_a_batch(k: int) -> None:
    x = images(3, 6, seed=k)
    assert torch.equal(Rotation().apply(x, torch.full((3,), k)), torch.rot90(x, k, dims=(-2, -1)))


@FAST
@given(batch=batches, h=st.integers(1, 40), w=st.integers(1, 40), seed=seeds)
def test_flips_are_torch_flip(batch: int, h: int, w: int, seed: int) -> None:
    x = torch.rand(batch, 2, h, w, generator=torch.Generator().manual_seed(seed))
    labels = _random_labels(2, batch, seed)
    v = _per_label(x, labels, lambda img, f: img.flip(-2) if f else img)
    hz = _per_label(x, labels, lambda img, f: img.flip(-1) if f else img)
    assert torch.equal(VerticalFlip().apply(x, labels), v)
    assert torch.equal(HorizontalFlip().apply(x, labels), hz)


@FAST
@given(batch=st.integers(1, 4), size=st.integers(1, 40), seed=seeds)
def test_reference_rotation_block_layout(batch: int, size: int, seed: int) -> None:
    x = images(batch, size, seed, dtype=torch.float32)
    views, labels = EquivariantTransform("rotation", mode="all")(x)
    ref_views, ref_labels = rotate_images(x)
    assert torch.equal(views, ref_views)
    assert torch.equal(labels, ref_labels)


# -- products ------------------------------------------------------------------------------------------------------


@FAST
@given(batch=batches, size=st.integers(1, 40), seed=seeds)
def test_dihedral_product_label_convention(batch: int, size: int, seed: int) -> None:
    """rotation x vflip: label 2k + f is rot90(x, k), then a vertical flip when f == 1."""
    x = images(batch, size, seed)
    labels = _random_labels(8, batch, seed)

    def oracle(img: torch.Tensor, label: int) -> torch.Tensor:
        y = torch.rot90(img, label // 2, dims=(-2, -1))
        return y.flip(-2) if label % 2 else y

    assert torch.equal(Product([Rotation(), VerticalFlip()]).apply(x, labels), _per_label(x, labels, oracle))


def test_dihedral_product_is_the_symmetry_group_of_the_square() -> None:
    x = images(1, 5, seed=11)
    out = Product([Rotation(), VerticalFlip()]).apply_all(x)
    symmetries = [torch.rot90(x, k, (-2, -1)) for k in range(4)]
    symmetries += [torch.rot90(x.transpose(-2, -1), k, (-2, -1)) for k in range(4)]
    for s in symmetries:
        assert sum(torch.equal(o, s[0]) for o in out) == 1
    assert torch.equal(out[5], x[0].flip(-1))  # rot180 then vflip == hflip


def test_product_with_three_factors_uses_mixed_radix() -> None:
    f = Product([HorizontalFlip(), Rotation(), Inversion()])
    assert f.num_classes == 16
    x = images(16, 4, seed=5)
    labels = torch.arange(16)
    expected = []
    for i in range(16):
        h, r, v = i // 8, (i // 2) % 4, i % 2
        y = x[i].flip(-1) if h else x[i]
        y = torch.rot90(y, r, (-2, -1))
        expected.append(TF.invert(y) if v else y)
    torch.testing.assert_close(f.apply(x, labels), torch.stack(expected), rtol=0, atol=0)


@FEW
@given(batch=batches, seed=seeds)
def test_rotation_x_blur_product(batch: int, seed: int) -> None:
    x = images(batch, 16, seed, dtype=torch.float32)
    labels = _random_labels(16, batch, seed)

    def oracle(img: torch.Tensor, label: int) -> torch.Tensor:
        y = torch.rot90(img, label // 4, dims=(-2, -1))
        level = label % 4
        return y if level == 0 else blur_oracle(y, (5, 9, 15)[level - 1])

    actual = Product([Rotation(), BlurLevels()]).apply(x, labels)
    assert (actual - _per_label(x, labels, oracle)).abs().max() <= 1e-6


# -- jigsaw ----------------------------------------------------------------------------------------------------------


def _kornia_replay(x: torch.Tensor, row_major_perms: torch.Tensor) -> torch.Tensor:
    """Run kornia's RandomJigsaw on ``x`` with the given (B, 4) row-major permutations as its params."""
    aug = RandomJigsaw(grid=(2, 2), p=1.0, ensure_perm=False)
    params = aug.forward_parameters(x.shape)
    params["permutation"] = row_major_perms[:, KORNIA_TO_ROW_MAJOR]
    return aug(x, params=params)


def test_kornia_permutation_convention_is_column_major_in_the_destination() -> None:
    """The conversion used below, checked against a direct tile gather of kornia's own draw."""
    x = images(4, 4, seed=0, dtype=torch.float32)
    aug = RandomJigsaw(grid=(2, 2), p=1.0, ensure_perm=False)
    params = aug.forward_parameters(x.shape)
    params["permutation"] = torch.arange(4).repeat(4, 1)
    # kornia's "arange" permutation transposes the tiles (not the identity) ...
    transposed = jigsaw_by_slicing(x, (0, 2, 1, 3), "row-major")
    assert torch.equal(aug(x, params=params), transposed)
    # ... and its identity is [0, 2, 1, 3]
    params["permutation"] = torch.tensor([KORNIA_TO_ROW_MAJOR] * 4)
    assert torch.equal(aug(x, params=params), x)


@FAST
@given(batch=batches, h=even, w=even, seed=seeds)
def test_jigsaw_replays_kornia_random_draws(batch: int, h: int, w: int, seed: int) -> None:
    x = torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(seed))
    aug = RandomJigsaw(grid=(2, 2), p=1.0, ensure_perm=False)
    torch.manual_seed(seed)
    expected = aug(x)
    row_major = aug._params["permutation"][:, KORNIA_TO_ROW_MAJOR]
    labels = torch.tensor([PERMUTATIONS.index(tuple(p)) for p in row_major.tolist()])
    assert torch.equal(Jigsaw().apply(x, labels), expected)


@pytest.mark.parametrize(
    "subset", [None, KLEIN_FOUR, CYCLIC_FOUR, OPEN_SUBSET, [0, 5, 17]], ids=["all", "klein", "c4", "open", "three"]
)
def test_jigsaw_every_label_against_kornia(subset: list[int] | None) -> None:
    f = Jigsaw(subset)
    indices = list(range(24)) if subset is None else subset
    assert f.num_classes == len(indices)
    x = images(1, 6, seed=2, dtype=torch.float32).expand(f.num_classes, -1, -1, -1).contiguous()
    perms = torch.tensor([ALL_PERMUTATIONS[i] for i in indices])
    assert torch.equal(f.apply(x, torch.arange(f.num_classes)), _kornia_replay(x, perms))
    assert torch.equal(f.apply_all(x[:1]), _kornia_replay(x, perms))


@FAST
@given(batch=batches, h=even, w=even, seed=seeds, order=st.sampled_from(["row-major", "clockwise"]))
def test_jigsaw_against_tile_slicing(batch: int, h: int, w: int, seed: int, order: str) -> None:
    x = torch.rand(batch, 2, h, w, generator=torch.Generator().manual_seed(seed))
    labels = _random_labels(24, batch, seed)
    expected = _per_label(x, labels, lambda img, p: jigsaw_by_slicing(img, PERMUTATIONS[p], order))
    assert torch.equal(Jigsaw(tile_order=order).apply(x, labels), expected)


def test_jigsaw_label_order_is_itertools_permutations() -> None:
    assert list(PERMUTATIONS) == ALL_PERMUTATIONS
    assert PERMUTATIONS[0] == (0, 1, 2, 3)


def test_clockwise_and_row_major_are_a_relabelling_of_the_same_task() -> None:
    x = images(1, 4, seed=9)
    row = Jigsaw().apply_all(x).flatten(1)
    cw = Jigsaw(tile_order="clockwise").apply_all(x).flatten(1)
    match = torch.cdist(cw, row).argmin(dim=1)
    assert torch.equal(match.sort().values, torch.arange(24))
    assert torch.equal(cw, row[match])
    assert not torch.equal(match, torch.arange(24))


# -- blur ----------------------------------------------------------------------------------------------------------


@FEW
@given(batch=batches, size=st.integers(8, 20), seed=seeds)
def test_blur_levels_match_torchvision(batch: int, size: int, seed: int) -> None:
    x = images(batch, size, seed, dtype=torch.float32)
    labels = _random_labels(4, batch, seed)
    f = BlurLevels()
    assert f.sigmas == pytest.approx((1.1, 1.7, 2.6))

    def oracle(img: torch.Tensor, level: int) -> torch.Tensor:
        return img if level == 0 else blur_oracle(img, (5, 9, 15)[level - 1])

    actual = f.apply(x, labels)
    assert (actual - _per_label(x, labels, oracle)).abs().max() <= 1e-6
    untouched = labels == 0
    assert torch.equal(actual[untouched], x[untouched])


@pytest.mark.parametrize("size", [(12, 12), (64, 64), (72, 96)])  # small images pad twice, large ones once
def test_blur_levels_are_kornia_separable_filter_bit_for_bit(size: tuple[int, int]) -> None:
    x = torch.rand(8, 3, *size, generator=torch.Generator().manual_seed(size[1]))
    labels = torch.arange(8) % 4
    f = BlurLevels()
    kernels = f.kernel_table(x.device, x.dtype).index_select(0, labels)
    expected = filter2d_separable(x, kernels, kernels, border_type="reflect")
    assert torch.equal(f.apply(x, labels), expected)
    oracle = _per_label(x, labels, lambda img, level: img if level == 0 else blur_oracle(img, (5, 9, 15)[level - 1]))
    assert (f.apply(x, labels) - oracle).abs().max() <= 1e-6


@FEW
@given(
    batch=batches,
    seed=seeds,
    sizes=st.lists(st.sampled_from([1, 3, 5, 7, 9]), min_size=1, max_size=3),
    data=st.data(),
)
def test_blur_with_custom_levels_matches_torchvision(batch: int, seed: int, sizes: list[int], data) -> None:
    sigmas = [data.draw(st.floats(0.3, 4.0)) for _ in sizes]
    f = BlurLevels(kernel_sizes=sizes, sigmas=sigmas)
    x = images(batch, 12, seed, dtype=torch.float32)
    labels = _random_labels(f.num_classes, batch, seed)

    def oracle(img: torch.Tensor, level: int) -> torch.Tensor:
        return img if level == 0 else blur_oracle(img, sizes[level - 1], sigmas[level - 1])

    assert (f.apply(x, labels) - _per_label(x, labels, oracle)).abs().max() <= 1e-6


# -- inversion and grayscale -------------------------------------------------------------------------------------------


@FAST
@given(batch=batches, size=st.integers(1, 8), seed=seeds, dtype=st.sampled_from([torch.float32, torch.uint8]))
def test_pixel_inversion_is_torchvision_invert(batch: int, size: int, seed: int, dtype: torch.dtype) -> None:
    x = images(batch, size, seed)
    x = (x * 256).to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    labels = _random_labels(2, batch, seed)
    expected = _per_label(x, labels, lambda img, v: TF.invert(img) if v else img)
    assert torch.equal(Inversion().apply(x, labels), expected)


@FAST
@given(batch=batches, seed=seeds, max_val=st.sampled_from([1.0, 255.0, 2.5]))
def test_pixel_inversion_with_max_val_is_kornia_invert(batch: int, seed: int, max_val: float) -> None:
    x = images(batch, 4, seed, dtype=torch.float32) * max_val
    labels = _random_labels(2, batch, seed)
    expected = _per_label(x, labels, lambda img, v: kornia_invert(img, torch.tensor(max_val)) if v else img)
    assert torch.equal(Inversion(max_val=max_val).apply(x, labels), expected)


@FAST
@given(batch=batches, seed=seeds, use_mapping=st.booleans())
def test_normalised_inversion(batch: int, seed: int, use_mapping: bool) -> None:
    """kornia invert with max_val = (1 - 2 mean) / std, and the normalised image of the inverted pixels."""
    pixels = images(batch, 5, seed, dtype=torch.float32)
    mean = torch.tensor(CIFAR_MEAN).view(3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(3, 1, 1)
    x = (pixels - mean) / std
    if use_mapping:
        f = Inversion(normalize={"mean": CIFAR_MEAN, "std": CIFAR_STD})
    else:
        f = Inversion(mean=CIFAR_MEAN, std=CIFAR_STD)
    labels = _random_labels(2, batch, seed)
    actual = f.apply(x, labels)
    offset = ((1 - 2 * mean) / std).to(torch.float32)
    expected = _per_label(x, labels, lambda img, v: kornia_invert(img, offset) if v else img)
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)
    semantic = _per_label(pixels, labels, lambda img, v: ((TF.invert(img) if v else img) - mean) / std)
    torch.testing.assert_close(actual, semantic, rtol=0, atol=1e-5)
    assert torch.equal(actual[labels == 0], x[labels == 0])


@FAST
@given(batch=batches, size=st.integers(1, 8), seed=seeds, dtype=st.sampled_from([torch.float32, torch.uint8]))
def test_grayscale_is_torchvision_rgb_to_grayscale(batch: int, size: int, seed: int, dtype: torch.dtype) -> None:
    x = images(batch, size, seed)
    x = (x * 256).to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    labels = _random_labels(2, batch, seed)
    expected = _per_label(x, labels, lambda img, g: TF.rgb_to_grayscale(img, num_output_channels=3) if g else img)
    assert torch.equal(Grayscale().apply(x, labels), expected)
