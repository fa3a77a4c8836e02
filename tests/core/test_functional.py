"""``essl_aug.functional``: one operation per family, equal to the class bit for bit and to independent oracles."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from kornia.enhance import invert as kornia_invert
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from essl_aug import (
    D4,
    PERMUTATIONS,
    BlurLevels,
    Grayscale,
    HorizontalFlip,
    Inversion,
    Jigsaw,
    PeriodicTranslation,
    Product,
    Rotation,
    TransformFamily,
    VerticalFlip,
)
from essl_aug import functional as EF
from essl_aug._cache import PlanCache
from tests.core.helpers import CIFAR_MEAN, CIFAR_STD, FAST, FEW, blur_oracle, images, jigsaw_by_slicing

Op = Callable[[Tensor, Tensor | None, Tensor | None], Tensor]

#: Each functional operation with the family class it mirrors (same parameters on both sides).
PAIRS: dict[str, tuple[Op, Callable[[], TransformFamily]]] = {
    "rotate": (lambda x, labels, out: EF.rotate(x, labels, out), Rotation),
    "vflip": (lambda x, labels, out: EF.vflip(x, labels, out), VerticalFlip),
    "hflip": (lambda x, labels, out: EF.hflip(x, labels, out), HorizontalFlip),
    "jigsaw": (lambda x, labels, out: EF.jigsaw(x, labels, out=out), Jigsaw),
    "jigsaw-subset": (
        lambda x, labels, out: EF.jigsaw(x, labels, [0, 7, 16, 23], "clockwise", out),
        lambda: Jigsaw([0, 7, 16, 23], tile_order="clockwise"),
    ),
    "periodic_translate": (lambda x, labels, out: EF.periodic_translate(x, labels, out=out), PeriodicTranslation),
    "periodic_translate-2x4": (
        lambda x, labels, out: EF.periodic_translate(x, labels, (2, 4), out),
        lambda: PeriodicTranslation((2, 4)),
    ),
    "d4": (lambda x, labels, out: EF.d4(x, labels, out), D4),
    "blur_levels": (lambda x, labels, out: EF.blur_levels(x, labels, out=out), BlurLevels),
    "blur_levels-custom": (
        lambda x, labels, out: EF.blur_levels(x, labels, (3, 7), (0.8, 2.0), out),
        lambda: BlurLevels((3, 7), (0.8, 2.0)),
    ),
    "invert": (lambda x, labels, out: EF.invert(x, labels, out=out), Inversion),
    "invert-normalised": (
        lambda x, labels, out: EF.invert(x, labels, Inversion(mean=CIFAR_MEAN, std=CIFAR_STD).offset.tolist(), out),
        lambda: Inversion(mean=CIFAR_MEAN, std=CIFAR_STD),
    ),
    "grayscale": (lambda x, labels, out: EF.grayscale(x, labels, out), Grayscale),
}

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8]


def _bits(t: Tensor) -> Tensor:
    return t.contiguous().view({1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def _sample(dtype: torch.dtype, batch: int, size: int, seed: int, channels_last: bool) -> Tensor:
    x = images(batch, size, seed)
    x = (x * 256).to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _labels(k: int, batch: int, seed: int) -> Tensor:
    return torch.randint(k, (batch,), generator=torch.Generator().manual_seed(seed))


# -- the same bits as the class ----------------------------------------------------------------------------------------


@FAST
@given(
    name=st.sampled_from(sorted(PAIRS)),
    dtype=st.sampled_from(DTYPES),
    batch=st.integers(1, 5),
    seed=st.integers(0, 2**31 - 1),
    channels_last=st.booleans(),
)
def test_each_op_is_its_family_bit_for_bit(
    name: str, dtype: torch.dtype, batch: int, seed: int, channels_last: bool
) -> None:
    op, make = PAIRS[name]
    f = make()
    if dtype not in f.dtypes or (dtype == torch.uint8 and name == "invert-normalised"):
        dtype = torch.float32
    x = _sample(dtype, batch, 16, seed, channels_last)
    before = x.clone()
    labels = _labels(f.num_classes, batch, seed)
    y = op(x, labels, None)
    expected = f.apply(x, labels)
    assert y.stride() == expected.stride() and torch.equal(_bits(y), _bits(expected))
    every = op(x, None, None)
    assert every.stride() == f.apply_all(x).stride() and torch.equal(_bits(every), _bits(f.apply_all(x)))
    out = torch.empty_like(x)
    assert op(x, labels, out).data_ptr() == out.data_ptr() and torch.equal(_bits(out), _bits(expected))
    out_all = torch.empty_like(every)
    assert op(x, None, out_all).data_ptr() == out_all.data_ptr() and torch.equal(_bits(out_all), _bits(every))
    assert torch.equal(_bits(x), _bits(before))


@pytest.mark.parametrize(
    ("family", "op"),
    [
        (Rotation(), "rotate"),
        (VerticalFlip(), "vflip"),
        (HorizontalFlip(), "hflip"),
        (Jigsaw(), "jigsaw"),
        (PeriodicTranslation(), "periodic_translate"),
        (D4(), "d4"),
        (BlurLevels(), "blur_levels"),
        (Inversion(), "invert"),
        (Grayscale(), "grayscale"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_the_classes_call_the_functional_ops(family: TransformFamily, op: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    original = getattr(EF, op)

    def spy(x: Tensor, labels: Tensor | None, *args: object, **kwargs: object) -> Tensor:
        calls.append(labels is None)
        return original(x, labels, *args, **kwargs)

    monkeypatch.setattr(EF, op, spy)
    x = images(2, 16, seed=0, dtype=torch.float32)
    family.apply(x, torch.tensor([0, 1]))
    family.apply_all(x)
    assert calls[0] is False and True in calls  # per-label calls and the block layout both go through the op


def test_every_builtin_family_has_its_documented_op() -> None:
    ops = {"rotate", "vflip", "hflip", "jigsaw", "blur_levels", "invert", "grayscale", "periodic_translate", "d4"}
    assert ops <= set(EF.__all__)
    for name in EF.__all__:
        value = getattr(EF, name)
        if callable(value):
            assert "Example:" in (value.__doc__ or ""), name
        else:
            assert name.isupper(), name


# -- independent oracles -----------------------------------------------------------------------------------------------


def _per_label(x: Tensor, labels: Tensor, oracle: Callable[[Tensor, int], Tensor]) -> Tensor:
    return torch.stack([oracle(x[i], int(labels[i])) for i in range(x.shape[0])])


@FAST
@given(batch=st.integers(1, 5), size=st.integers(1, 24), seed=st.integers(0, 2**31 - 1))
def test_pixel_ops_match_torch(batch: int, size: int, seed: int) -> None:
    x = images(batch, size, seed, dtype=torch.float32)
    r, f, d = _labels(4, batch, seed), _labels(2, batch, seed + 1), _labels(8, batch, seed + 2)
    assert torch.equal(EF.rotate(x, r), _per_label(x, r, lambda img, k: torch.rot90(img, k, dims=(-2, -1))))
    assert torch.equal(EF.vflip(x, f), _per_label(x, f, lambda img, k: img.flip(-2) if k else img))
    assert torch.equal(EF.hflip(x, f), _per_label(x, f, lambda img, k: img.flip(-1) if k else img))
    assert torch.equal(EF.d4(x, d), _per_label(x, d, _d4_oracle))


def _d4_oracle(img: Tensor, label: int) -> Tensor:
    turned = torch.rot90(img, label // 2, dims=(-2, -1))
    return turned.flip(-2) if label % 2 else turned


@FAST
@given(
    batch=st.integers(1, 4),
    steps=st.sampled_from([1, 2, 3, (1, 2), (3, 4), (2, 6)]),
    seed=st.integers(0, 2**31 - 1),
    channels=st.sampled_from([1, 3]),
)
def test_periodic_translate_is_torch_roll(batch: int, steps: int | tuple[int, int], seed: int, channels: int) -> None:
    sh, sw = (steps, steps) if isinstance(steps, int) else steps
    x = images(batch, 12, seed, channels=channels, dtype=torch.float32)
    labels = _labels(sh * sw, batch, seed)

    def roll(img: Tensor, label: int) -> Tensor:
        a, b = divmod(label, sw)
        return torch.roll(img, (a * 12 // sh, b * 12 // sw), dims=(-2, -1))

    assert torch.equal(EF.periodic_translate(x, labels, steps), _per_label(x, labels, roll))


@FAST
@given(batch=st.integers(1, 4), seed=st.integers(0, 2**31 - 1), order=st.sampled_from(["row-major", "clockwise"]))
def test_jigsaw_matches_tile_slicing(batch: int, seed: int, order: str) -> None:
    x = images(batch, 10, seed, dtype=torch.float32)
    labels = _labels(24, batch, seed)
    expected = _per_label(x, labels, lambda img, p: jigsaw_by_slicing(img, PERMUTATIONS[p], order))
    assert torch.equal(EF.jigsaw(x, labels, tile_order=order), expected)
    subset = [0, 5, 17]
    small = labels % 3
    expected = _per_label(x, small, lambda img, p: jigsaw_by_slicing(img, PERMUTATIONS[subset[p]], order))
    assert torch.equal(EF.jigsaw(x, small, subset, order), expected)


@FAST
@given(batch=st.integers(1, 5), seed=st.integers(0, 2**31 - 1), dtype=st.sampled_from([torch.float32, torch.uint8]))
def test_invert_and_grayscale_match_torchvision(batch: int, seed: int, dtype: torch.dtype) -> None:
    x = _sample(dtype, batch, 5, seed, channels_last=False)
    labels = _labels(2, batch, seed)
    assert torch.equal(EF.invert(x, labels), _per_label(x, labels, lambda img, v: TF.invert(img) if v else img))
    gray = _per_label(x, labels, lambda img, g: TF.rgb_to_grayscale(img, num_output_channels=3) if g else img)
    assert torch.equal(EF.grayscale(x, labels), gray)


@FAST
@given(batch=st.integers(1, 4), seed=st.integers(0, 2**31 - 1), max_val=st.sampled_from([1.0, 255.0, 2.5]))
def test_invert_offsets_match_kornia(batch: int, seed: int, max_val: float) -> None:
    x = images(batch, 4, seed, dtype=torch.float32) * max_val
    labels = _labels(2, batch, seed)
    expected = _per_label(x, labels, lambda img, v: kornia_invert(img, torch.tensor(max_val)) if v else img)
    assert torch.equal(EF.invert(x, labels, max_val), expected)
    offsets = [0.5, 1.0, 2.0]
    per_channel = _per_label(x, labels, lambda img, v: torch.tensor(offsets).view(3, 1, 1) - img if v else img)
    assert torch.equal(EF.invert(x, labels, offsets), per_channel)


def test_invert_keeps_the_sign_of_a_zero_offset() -> None:
    """Offsets 0.0 and -0.0 are different coefficient tables (``-0.0 - 0.0 == -0.0``), in either order."""
    x, one = torch.zeros(1, 1, 1, 1), torch.tensor([1])
    for order in ((0.0, -0.0), (-0.0, 0.0)):
        for offset in order:
            y = EF.invert(x, one, offset)
            assert torch.equal(y.signbit(), torch.tensor(offset).signbit().view(1, 1, 1, 1))


@FEW
@given(batch=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_blur_levels_match_torchvision(batch: int, seed: int) -> None:
    x = images(batch, 16, seed, dtype=torch.float32)
    labels = _labels(4, batch, seed)
    expected = _per_label(x, labels, lambda img, k: img if k == 0 else blur_oracle(img, (5, 9, 15)[k - 1]))
    assert (EF.blur_levels(x, labels) - expected).abs().max() <= 1e-6
    custom = _labels(2, batch, seed)
    expected = _per_label(x, custom, lambda img, k: img if k == 0 else blur_oracle(img, 7, 1.3))
    assert (EF.blur_levels(x, custom, (7,), (1.3,)) - expected).abs().max() <= 1e-6


def test_periodic_roll_checks_its_arguments() -> None:
    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(TypeError, match="`shifts` must be an integer"):
        EF.periodic_roll(x, torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"`shifts` must have shape \(2, 2\)"):
        EF.periodic_roll(x, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="`x` must have 4 dimensions"):
        EF.periodic_roll(x[0], torch.zeros(2, 2, dtype=torch.long))


# -- parameters are checked when a table is built ----------------------------------------------------------------------


def test_bad_parameters_raise_with_the_argument_name() -> None:
    x, labels = torch.rand(1, 3, 8, 8), torch.tensor([0])
    with pytest.raises(ValueError, match="`permutations` must start with 0"):
        EF.jigsaw(x, labels, [1, 0])
    with pytest.raises(ValueError, match="`tile_order`"):
        EF.jigsaw(x, labels, tile_order="cw")
    with pytest.raises(ValueError, match="`steps`"):
        EF.periodic_translate(x, labels, 0)
    with pytest.raises(ValueError, match="`kernel_sizes` must be positive odd"):
        EF.blur_levels(x, labels, (4,))
    with pytest.raises(ValueError, match="`sigmas` must be 1 positive"):
        EF.blur_levels(x, labels, (3,), (-1.0,))
    EF.jigsaw(x, labels, [0, 1])  # a good call after a bad one with other parameters still works


def test_parameters_are_never_truncated_and_any_integer_type_works() -> None:
    """``3.5`` is not read as 3 (nor ``1.5`` as 1), even after a good call cached the integer's plan."""
    x, labels = torch.rand(2, 3, 12, 12), torch.tensor([0, 1])
    EF.blur_levels(x, labels, (3,))
    EF.jigsaw(x, labels, [0, 1])
    with pytest.raises(ValueError, match="`kernel_sizes` must be positive odd integers"):
        EF.blur_levels(x, labels, [3.5])
    with pytest.raises(ValueError, match="`kernel_sizes` must be positive odd integers"):
        EF.blur_levels(x, labels, [3.0])
    with pytest.raises(ValueError, match="`sigmas` must be 1 positive finite"):
        EF.blur_levels(x, labels, (3,), [float("nan")])
    with pytest.raises(ValueError, match="`permutations` must be integer indices"):
        EF.jigsaw(x, labels, [0, 1.5])
    with pytest.raises(ValueError, match="`steps`"):
        EF.periodic_translate(x, labels, 2.0)
    for steps in (np.int64(3), (np.int32(3), 3)):
        assert torch.equal(EF.periodic_translate(x, labels, steps), EF.periodic_translate(x, labels, 3))
    assert torch.equal(EF.blur_levels(x, labels, [np.int64(3)]), EF.blur_levels(x, labels, (3,)))


# -- caches: built once, travel empty ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        Rotation,
        lambda: Jigsaw([0, 7, 16, 23]),
        BlurLevels,
        lambda: Inversion(mean=CIFAR_MEAN, std=CIFAR_STD),
        lambda: Product([Rotation(), VerticalFlip()]),
        lambda: Product([D4(), PeriodicTranslation()]),
    ],
    ids=["rotation", "jigsaw", "blur", "invert", "dihedral", "d4-x-translation"],
)
def test_families_pickle_and_copy_without_their_caches(make: Callable[[], TransformFamily]) -> None:
    f = make()
    x = images(2, 16, seed=1, dtype=torch.float32)
    labels = _labels(f.num_classes, 2, seed=2)
    expected, every = f.apply(x, labels), f.apply_all(x)
    caches = [v for v in vars(f).values() if isinstance(v, PlanCache)]
    for clone in (pickle.loads(pickle.dumps(f)), copy.deepcopy(f)):
        for cache in (v for v in vars(clone).values() if isinstance(v, PlanCache)):
            assert len(cache) == 0
        assert torch.equal(clone.apply(x, labels), expected) and torch.equal(clone.apply_all(x), every)
    if isinstance(f, Product):  # a product of pixel families keeps its composed table and plan
        assert caches and len(caches[0]) > 0


def test_parameters_given_as_lists_or_tensors_share_one_cached_table() -> None:
    x, labels = images(2, 8, seed=3, dtype=torch.float32), torch.tensor([1, 3])
    expected = EF.jigsaw(x, labels, (0, 7, 16, 23))
    for perms in ([0, 7, 16, 23], torch.tensor([0, 7, 16, 23])):
        assert torch.equal(EF.jigsaw(x, labels, perms), expected)
    blurred = EF.blur_levels(x, torch.tensor([1, 1]), (3,), (0.8,))
    assert torch.equal(
        EF.blur_levels(x, torch.tensor([1, 1]), torch.tensor([3]), torch.tensor([0.8], dtype=torch.float64)), blurred
    )


def test_plan_cache_keeps_its_newest_entries_and_travels_empty() -> None:
    cache = PlanCache(max_entries=2)
    for key in range(3):
        assert cache.get(key, lambda key=key: torch.full((1,), key)).item() == key
    assert len(cache) == 2 and cache.lookup(0) is None and cache.lookup(2) is not None
    assert cache.get(1, lambda: torch.zeros(1)).item() == 1  # kept: not rebuilt
    for clone in (pickle.loads(pickle.dumps(cache)), copy.deepcopy(cache)):
        assert len(clone) == 0 and clone.max_entries == 2
