"""The eager CPU forms of the ops give the same bits as their one-pass forms (GPU, autograd, ``torch.compile``).

``essl_aug._cpu.enabled`` picks whole-batch vectorised passes (a flip, then whole-image copies or a bitwise
per-image selection; ``x * sign + shift``; the selection for grayscale). Turning it off gives the forms every other
device runs; both must agree on every bit, NaN payloads and signed zeros included.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from essl_aug import Inversion, TransformFamily, _cpu, _kernels

from .helpers import FAMILIES, FAST, family, side

DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8)
#: Floats whose bits a careless form changes: signed zeros, infinities, a NaN with a payload and the sign bit.
SPECIALS = (-0.0, 0.0, float("inf"), float("-inf"), 1.0, -1.0)
_BITS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _images(seed: int, dtype: torch.dtype, side: int, channels_last: bool) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        x = torch.randint(0, 256, (5, 3, side, side), generator=g, dtype=torch.uint8)
    else:
        x = torch.rand(5, 3, side, side, generator=g, dtype=torch.float64)
        specials = torch.tensor(SPECIALS, dtype=torch.float64)
        pick = torch.randint(0, len(SPECIALS), x.shape, generator=g)
        x = torch.where(torch.rand(x.shape, generator=g) < 0.2, specials[pick], x).to(dtype)
        nan = torch.tensor(-1, dtype=_BITS[x.element_size()]).view(dtype)  # sign bit and an all-ones payload
        x = torch.where(torch.rand(x.shape, generator=g) < 0.05, nan, x)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _bits(t: Tensor) -> Tensor:
    return t.contiguous().view(_BITS[t.element_size()])


def _assert_same(fast: Tensor, slow: Tensor, exact_nan: bool) -> None:
    assert fast.shape == slow.shape and fast.dtype == slow.dtype and fast.stride() == slow.stride()
    if exact_nan or not fast.dtype.is_floating_point:
        assert torch.equal(_bits(fast), _bits(slow))
        return
    nan = slow.isnan()
    assert torch.equal(fast.isnan(), nan)  # arithmetic may quiet a NaN; which pixels are NaN must agree
    assert torch.equal(_bits(fast)[~nan.contiguous()], _bits(slow)[~nan.contiguous()])


def _accepts(fam: TransformFamily, dtype: torch.dtype, size: int) -> bool:
    try:
        fam.check(torch.empty(1, 3, size, size, dtype=dtype))
    except (TypeError, ValueError):
        return False
    return True


def _moves_only(name: str) -> bool:
    """Families whose every op only moves values: their outputs keep NaN payloads bit for bit."""
    return not any(word in name for word in ("invert", "blur", "grayscale"))


@pytest.mark.parametrize("name", sorted(FAMILIES))
@given(seed=st.integers(0, 2**16), size=st.sampled_from([8, 64]), channels_last=st.booleans())
@FAST
def test_fast_forms_match_the_one_pass_forms(name: str, seed: int, size: int, channels_last: bool) -> None:
    fam = family(name)
    size = side(fam, size)
    dtype = DTYPES[seed % len(DTYPES)]
    if not _accepts(fam, dtype, size):
        dtype = torch.float32
    x = _images(seed, dtype, size, channels_last)
    labels = torch.randint(0, fam.num_classes, (x.shape[0],), generator=torch.Generator().manual_seed(seed))
    before = _bits(x).clone()
    fast = fam.apply(x, labels)
    fast_all = fam.apply_all(x)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_cpu, "enabled", lambda t: False)
        slow = fam.apply(x, labels)
        slow_all = fam.apply_all(x)
    assert torch.equal(_bits(x), before)
    _assert_same(fast, slow, _moves_only(name))
    _assert_same(fast_all, slow_all, _moves_only(name))


def test_the_fast_forms_are_taken_on_cpu() -> None:
    x = torch.rand(2, 3, 8, 8)
    assert _cpu.enabled(x)
    assert not _cpu.enabled(x.requires_grad_())
    with torch.no_grad():
        assert _cpu.enabled(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fast", [True, False])
def test_inversion_identity_keeps_every_bit(dtype: torch.dtype, fast: bool) -> None:
    x = _images(0, dtype, 8, channels_last=False)
    with pytest.MonkeyPatch.context() as patch:
        if not fast:
            patch.setattr(_cpu, "enabled", lambda t: False)
        for inversion in (Inversion(), Inversion(mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4))):
            y = inversion.apply(x, torch.zeros(x.shape[0], dtype=torch.long))
            assert torch.equal(_bits(y), _bits(x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_per_image_choices_keep_every_bit(dtype: torch.dtype) -> None:
    a = _images(1, dtype, 8, channels_last=False)
    b = _images(2, dtype, 8, channels_last=True)
    labels = torch.tensor([1, 0, 3, 0, 1])
    keep = (labels != 0).view(-1, 1, 1, 1).expand_as(a)
    expected = torch.where(keep, _bits(a), _bits(b))
    assert torch.equal(_bits(_kernels.select_images(labels, a, b, torch.empty_like(a))), expected)
    assert torch.equal(_bits(_kernels.copy_images(labels != 0, a, b.clone())), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_large_images_move_one_by_one_and_keep_every_bit(dtype: torch.dtype, channels_last: bool) -> None:
    side_ = 96 if dtype.itemsize >= 4 else 160  # at least LARGE_IMAGE_BYTES per image
    x = _images(3, dtype, side_, channels_last)
    assert x[0].numel() * x.element_size() >= _cpu.LARGE_IMAGE_BYTES
    labels = torch.tensor([0, 1, 2, 3, 1])
    expected = torch.stack([torch.rot90(_bits(x[i]), int(k), dims=(-2, -1)) for i, k in enumerate(labels)])
    for fam in (family("rotation"), family("d4"), family("dihedral")):
        plan = fam._plan(side_, side_, x.device)  # type: ignore[attr-defined]
        assert plan.moves is not None and len(plan.moves) == fam.num_classes
        moved = fam.apply(x, labels if fam.num_classes == 4 else 2 * labels)  # even D4 labels are the rotations
        assert torch.equal(_bits(moved), expected)
        assert moved.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@pytest.mark.parametrize("name", ["rotation", "d4", "hflip", "dihedral", "rotation-x-hflip"])
def test_the_strided_lookup_matches_the_gather_at_the_storage_edges(name: str) -> None:
    fam = family(name)
    plan = fam._plan(8, 8, torch.device("cpu"))  # type: ignore[attr-defined]
    assert plan.offsets is not None  # these tables split into row and column offsets
    g = torch.Generator().manual_seed(0)
    base = torch.rand(6, 3, 8, 8, generator=g)
    labels = torch.randint(0, fam.num_classes, (6,), generator=g)
    cases = {
        "whole storage": base,  # the last image's view would pass the end: it takes the gather
        "inside a larger storage": base[:4],  # room after it: one lookup for every image
        "from the second image": base[2:],
        "channels last": base.contiguous(memory_format=torch.channels_last),
        "one image": base[5:],
    }
    for case, x in cases.items():
        lab = labels[: x.shape[0]]
        expected = _kernels.permute_pixels(x, lab, plan.table)
        assert torch.equal(_kernels.lookup_pixels(x, lab, plan), expected), case
        out = torch.full_like(expected, -1.0)
        assert _kernels.lookup_pixels(x, lab, plan, out) is out and torch.equal(out, expected), case
    wide = torch.rand(2, 3, 8, 16, generator=g)[:, :, :, ::2]  # columns two elements apart: the gather
    expected = _kernels.permute_pixels(wide, labels[:2], plan.table)
    assert torch.equal(_kernels.lookup_pixels(wide, labels[:2], plan), expected)


def test_the_jigsaw_does_not_split_into_row_and_column_offsets() -> None:
    jigsaw = _kernels.jigsaw_table(_kernels.jigsaw_permutations([1], "row-major"), 4, 4)
    assert _kernels.separable_split(jigsaw, 4, 4) is None
    assert _kernels.dihedral_moves(_kernels.translation_table((2, 2), 4, 4), 4, 4) is None
    assert _kernels.dihedral_moves(_kernels.d4_table(4, 4), 4, 4) is not None


@pytest.mark.parametrize("name", ["vflip", "jigsaw", "translation", "jigsaw-clockwise"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_the_run_lookup_matches_the_row_copies(name: str, dtype: torch.dtype) -> None:
    fam = family(name)
    plan = fam._plan(16, 16, torch.device("cpu"))  # type: ignore[attr-defined]
    assert plan.units is not None  # runs of at least MIN_RUN pixels move intact
    labels = torch.randint(0, fam.num_classes, (5,), generator=torch.Generator().manual_seed(1))
    for channels_last in (False, True):
        x = _images(4, dtype, 16, channels_last)
        expected = _kernels.permute_rows(x, labels, plan.units, plan.run)
        looked_up = _kernels.lookup_rows(x, labels, plan.units, plan.run)
        assert torch.equal(_bits(looked_up), _bits(expected)) and looked_up.stride() == expected.stride()
    strided = _images(4, dtype, 16, False)[:, :2]  # not contiguous: the row copies
    expected = _kernels.permute_rows(strided, labels, plan.units, plan.run)
    assert torch.equal(_bits(_kernels.lookup_rows(strided, labels, plan.units, plan.run)), _bits(expected))


@pytest.mark.parametrize("name", ["hflip", "grayscale", "invert", "rotation", "d4", "rotation-x-hflip"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_large_image_forms_match_the_one_pass_forms(name: str, dtype: torch.dtype) -> None:
    fam = family(name)
    if not _accepts(fam, dtype, 160):
        pytest.skip(f"{name} does not take {dtype}")
    x = _images(5, dtype, 160, channels_last=False)  # 75 KB per uint8 image: every dtype is large
    assert _cpu.large(x)
    labels = torch.tensor([1, 1, 0, fam.num_classes - 1, 0])
    fast, fast_all = fam.apply(x, labels), fam.apply_all(x)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_cpu, "enabled", lambda t: False)
        slow, slow_all = fam.apply(x, labels), fam.apply_all(x)
    _assert_same(fast, slow, _moves_only(name) or name == "grayscale")
    _assert_same(fast_all, slow_all, _moves_only(name) or name == "grayscale")


def _never(*args: object, **kwargs: object) -> Tensor:
    raise AssertionError("the one-pass form ran")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_large_blur_batches_convolve_each_level_with_its_own_kernel(dtype: torch.dtype) -> None:
    fam = family("blur")
    g = torch.Generator().manual_seed(6)
    x = torch.rand(6, 3, 160, 160, generator=g, dtype=torch.float64).to(dtype)  # finite pixels
    assert _cpu.large(x)
    table = fam.kernel_table("cpu", dtype)
    eps = torch.finfo(dtype).eps
    # 4 runs of one label (each convolved where it lies), then 6 runs (one group per level)
    for labels in (torch.tensor([0, 0, 3, 3, 1, 2]), torch.tensor([0, 3, 0, 1, 2, 0])):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_kernels, "separable_blur", _never)  # the per-level form, not the one-pass form
            fast = fam.apply(x, labels)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_cpu, "enabled", lambda t: False)
            slow = fam.apply(x, labels)
        assert torch.equal(_bits(fast[labels == 0]), _bits(x[labels == 0]))  # the identity is a copy
        assert torch.allclose(fast.double(), slow.double(), rtol=4 * eps, atol=4 * eps)  # float rounding only
        assert fast.stride() == slow.stride()
    x[1, 0, 5, 5] = float("inf")  # a non-finite pixel: the one-pass form for the whole batch
    assert torch.equal(_bits(fam.apply(x, labels)), _bits(_kernels.separable_blur(x, labels, table)))
