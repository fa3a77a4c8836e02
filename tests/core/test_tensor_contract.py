"""Dtypes, memory formats, unbatched input, ``out=`` buffers, no mutation and gradients, for every family."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from essl_aug import BlurLevels, EquivariantTransform, Inversion, Product, RandomPeriodicShift, periodic_roll
from tests.core.helpers import FAMILIES, FAST, family, images, is_differentiable, labels_for, moves_pixels_only, side

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.uint8]
#: Loose bound for non-pixel families computed in a low-precision dtype against float64 then cast.
TOLERANCE = {torch.float32: 1e-6, torch.float16: 4e-3, torch.bfloat16: 3e-2, torch.uint8: 1}


def _has_blur(f) -> bool:
    if isinstance(f, Product):
        return any(_has_blur(g) for g in f.families)
    return isinstance(f, BlurLevels)


def _normalised(f) -> bool:
    if isinstance(f, Product):
        return any(_normalised(g) for g in f.families)
    return isinstance(f, Inversion) and f.mean is not None


def _sample(dtype: torch.dtype, batch: int = 3, size: int = 8, seed: int = 0) -> torch.Tensor:
    x = images(batch, size, seed)
    return (x * 256).to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)


def _side(f) -> int:
    """Small images for blur (slow CPU convolutions); larger ones elsewhere, so tiles span whole row runs."""
    return side(f, 8 if _has_blur(f) else 20)


def _channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


# -- dtypes ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_dtypes(name: str, dtype: torch.dtype) -> None:
    f = family(name)
    x = _sample(dtype, size=_side(f))
    labels = labels_for(f, 3, seed=4)
    if dtype == torch.uint8 and _has_blur(f):
        with pytest.raises(TypeError, match="`x` has dtype uint8"):
            f.apply(x, labels)
        with pytest.raises(TypeError, match="`x` has dtype uint8"):
            EquivariantTransform(f)(x)
        return
    if dtype == torch.uint8 and _normalised(f):
        with pytest.raises(TypeError, match="float `x`"):
            f.apply(x, labels)
        return
    y = f.apply(x, labels)
    assert y.dtype == dtype and y.shape == x.shape
    if moves_pixels_only(f):
        assert torch.equal(y, f.apply(x.double(), labels).to(dtype))
    elif dtype == torch.uint8:  # pixel-space inversion and grayscale: the float result at 255 scale (luma truncated)
        expected = f.apply(x.double() / 255, labels) * 255
        assert (y.double() - expected).abs().max() <= 1 + 1e-9
    else:
        reference = f.apply(x.double(), labels)
        scale = max(1.0, float(reference.abs().max()))
        assert (y.double() - reference).abs().max() <= TOLERANCE[dtype] * scale
    assert torch.equal(f.apply_all(x)[: 3 * f.num_classes : 3], f.apply_all(x[:1]))


def test_uint8_inversion_is_bitwise_not() -> None:
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(Inversion().apply(x, torch.tensor([1])), 255 - x)
    assert torch.equal(Inversion().apply(x, torch.tensor([1])), ~x)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool], ids=str)
def test_pixel_families_move_any_dtype(dtype: torch.dtype) -> None:
    x = (torch.arange(2 * 3 * 8 * 8).view(2, 3, 8, 8) % 7).to(dtype)
    for name in ("rotation", "jigsaw", "dihedral"):
        f = family(name)
        labels = labels_for(f, 2, seed=1)
        assert torch.equal(f.apply(x, labels), f.apply(x.double(), labels).to(dtype))


# -- memory format, strides and unbatched input ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_channels_last_is_kept(name: str) -> None:
    f = family(name)
    x = _sample(torch.float32, batch=4, size=_side(f))
    xc = x.contiguous(memory_format=torch.channels_last)
    assert _channels_last(xc)
    labels = labels_for(f, 4, seed=2)
    y = f.apply(xc, labels)
    assert _channels_last(y) and torch.equal(y, f.apply(x, labels))
    every = f.apply_all(xc)
    assert _channels_last(every) and torch.equal(every, f.apply_all(x))
    for mode in ("random", "all"):
        views, _ = EquivariantTransform(f, mode=mode)(xc)
        assert _channels_last(views)
    assert f.apply(x, labels).is_contiguous()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_strided_input_gives_the_same_result(name: str) -> None:
    f = family(name)
    base = _sample(torch.float32, batch=6, size=2 * side(f, 16))
    x = base[::2, :, ::2, 1::2]  # not contiguous in any format
    labels = labels_for(f, 3, seed=3)
    torch.testing.assert_close(f.apply(x, labels), f.apply(x.contiguous(), labels), rtol=0, atol=0)
    torch.testing.assert_close(f.apply_all(x), f.apply_all(x.contiguous()), rtol=0, atol=0)


@FAST
@given(name=st.sampled_from(sorted(FAMILIES)), seed=st.integers(0, 2**31 - 1))
def test_unbatched_input(name: str, seed: int) -> None:
    f = family(name)
    x = images(1, side(f, 8), seed, dtype=torch.float32)
    label = labels_for(f, 1, seed)
    y = f.apply(x[0], label[0])
    assert y.shape == x.shape[1:]
    assert torch.equal(y, f.apply(x, label)[0])
    assert torch.equal(f.apply_all(x[0]), f.apply_all(x))
    views, labels = EquivariantTransform(f, generator=torch.Generator().manual_seed(seed))(x[0])
    assert views.shape == x.shape[1:] and labels.shape == ()
    assert torch.equal(views, f.apply(x[0], labels))
    views, labels = EquivariantTransform(f, mode="all")(x[0])
    assert views.shape == (f.num_classes, *x.shape[1:]) and torch.equal(labels, torch.arange(f.num_classes))


# -- out= buffers --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("out_format", [torch.contiguous_format, torch.channels_last], ids=["contiguous", "nhwc"])
@pytest.mark.parametrize("in_format", [torch.contiguous_format, torch.channels_last], ids=["contiguous", "nhwc"])
def test_out_buffers(name: str, in_format: torch.memory_format, out_format: torch.memory_format) -> None:
    f = family(name)
    x = _sample(torch.float32, batch=2, size=_side(f)).contiguous(memory_format=in_format)
    labels = labels_for(f, 2, seed=5)
    expected = f.apply(x, labels)
    out = torch.full_like(x, float("nan")).contiguous(memory_format=out_format)
    result = f.apply(x, labels, out=out)
    assert result.data_ptr() == out.data_ptr()
    assert torch.equal(out, expected)
    out_all = torch.full((2 * f.num_classes, *x.shape[1:]), float("nan")).contiguous(memory_format=out_format)
    result = f.apply_all(x, out=out_all)
    assert result.data_ptr() == out_all.data_ptr()
    assert torch.equal(out_all, f.apply_all(x))


def test_out_buffer_is_reusable_and_unbatched() -> None:
    f = family("dihedral")
    x = _sample(torch.float32, batch=2, size=20)
    out = torch.empty_like(x)
    for k in range(8):
        labels = torch.full((2,), k)
        f.apply(x, labels, out=out)
        assert torch.equal(out, f.apply(x, labels))
    single = torch.empty_like(x[0])
    assert f.apply(x[0], torch.tensor(3), out=single).data_ptr() == single.data_ptr()
    assert torch.equal(single, f.apply(x, torch.tensor([3, 3]))[0])


# -- the input is never modified --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_inputs_are_never_modified(name: str) -> None:
    f = family(name)
    plain = _sample(torch.float32, batch=4, size=_side(f))
    for x in (plain, plain.contiguous(memory_format=torch.channels_last)):
        labels = labels_for(f, 4, seed=6)
        x_before, labels_before = x.clone(), labels.clone()
        f.apply(x, labels)
        f.apply(x, labels, out=torch.empty_like(x))
        f.apply_all(x)
        for mode in ("random", "all"):
            EquivariantTransform(f, mode=mode)(x)
        EquivariantTransform(f, balanced=True)(x)
        if f.num_classes > 1:
            EquivariantTransform(f, mode="all", num_per_batch=f.num_classes - 1)(x)
        assert torch.equal(x, x_before) and torch.equal(labels, labels_before)
    if torch.uint8 in f.dtypes and not _normalised(f):
        u = _sample(torch.uint8, batch=4, size=_side(f))
        u_before = u.clone()
        f.apply(u, labels_for(f, 4, seed=6))
        f.apply_all(u)
        assert torch.equal(u, u_before)


def test_out_must_not_alias_the_input() -> None:
    x = _sample(torch.float32)
    with pytest.raises(ValueError, match="`out` must not be the input"):
        family("rotation").apply(x, torch.zeros(3, dtype=torch.long), out=x)


# -- NaN payloads: pixel moves keep every bit, identities return the input's bits -------------------------------------

_INT = {2: torch.int16, 4: torch.int32, 8: torch.int64}
#: A signalling NaN with a payload in each float dtype (arithmetic would quiet it or rewrite the payload).
_SIGNALLING_NAN = {
    torch.bfloat16: 0x7F81,
    torch.float16: 0x7C01,
    torch.float32: 0x7F800001,
    torch.float64: 0x7FF0000000000001,
}


def _with_nans(f, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Generic images with signalling NaNs (with payloads, and with the sign bit) in about 10 % of the pixels."""
    x = images(4, side(f, 8), seed).to(dtype)
    ints = _INT[x.element_size()]
    nan = torch.tensor(_SIGNALLING_NAN[dtype], dtype=ints)
    payloads = torch.stack([nan, nan | 2, nan | torch.tensor(-1, dtype=ints) << (8 * x.element_size() - 1)])
    g = torch.Generator().manual_seed(seed)
    pick = payloads[torch.randint(0, 3, x.shape, generator=g)].view(dtype)
    return torch.where(torch.rand(x.shape, generator=g) < 0.1, pick, x)


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().view(_INT[t.element_size()])


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "autograd"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_nan_payloads_survive_moves_and_identities(name: str, dtype: torch.dtype, grad: bool) -> None:
    """Pixel moves give the bits of the same move on the integer view; label 0 returns the input's bits (blur
    excepted: its window spreads a NaN). With and without autograd."""
    f = family(name)
    x = _with_nans(f, dtype, seed=len(name))
    labels = torch.tensor([0, f.num_classes - 1, 1, f.num_classes // 2])
    before = _bits(x).clone()
    x.requires_grad_(grad)
    if moves_pixels_only(f):
        assert torch.equal(_bits(f.apply(x, labels)), f.apply(_bits(x), labels))
        assert torch.equal(_bits(f.apply_all(x)), f.apply_all(_bits(x)))
    if not _has_blur(f):
        assert torch.equal(_bits(f.apply(x, torch.zeros(4, dtype=torch.long))), before)
        assert torch.equal(_bits(f.apply_all(x)[:4]), before)
    assert torch.equal(_bits(x), before)


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "autograd"])
def test_periodic_shifts_keep_nan_payloads(grad: bool) -> None:
    x = _with_nans(family("translation"), torch.bfloat16, seed=3).requires_grad_(grad)
    shifts = torch.tensor([[1, 2], [0, 0], [-3, 5], [7, 1]])
    assert torch.equal(_bits(periodic_roll(x, shifts)), periodic_roll(_bits(x), shifts))
    shift = RandomPeriodicShift(generator=torch.Generator().manual_seed(0))
    moved = shift(x)
    assert torch.equal(_bits(moved).flatten(1).sort().values, _bits(x).flatten(1).sort().values)


# -- gradients ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(n for n in FAMILIES if is_differentiable(family(n))))
def test_gradcheck(name: str) -> None:
    f = family(name)
    x = images(2, side(f, 8), seed=7).requires_grad_(True)
    labels = labels_for(f, 2, seed=8)
    labels[0] = f.num_classes - 1  # always exercise a non-identity element
    assert torch.autograd.gradcheck(lambda t: f.apply(t, labels), (x,), fast_mode=True)
    single = images(1, side(f, 8), seed=9).requires_grad_(True)
    assert torch.autograd.gradcheck(f.apply_all, (single,), fast_mode=True)
    views, _ = EquivariantTransform(f)(x)
    assert views.requires_grad


def test_gradcheck_full_jacobian_on_small_inputs() -> None:
    """Full (not randomised) gradcheck on a tiny input; blur is checked in fast mode above (double conv is slow)."""
    x = images(1, 4, seed=1).requires_grad_(True)
    for name in ("dihedral", "jigsaw", "invert-normalized", "grayscale", "vflip-x-invert"):
        f = family(name)
        labels = torch.tensor([f.num_classes - 1])
        assert torch.autograd.gradcheck(lambda t, f=f, labels=labels: f.apply(t, labels), (x,))
