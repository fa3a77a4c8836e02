"""The geometric augmentations (random resized crop, horizontal flip, rotation by any angle) against torchvision.

Oracles: ``torchvision.transforms.v2.functional`` per image with the same parameters. Tolerances:

- crop, eager CPU form (``apply`` on CPU without autograd: ``F.interpolate`` per image): exact, float32 and uint8;
- crop, batched form (GPU, autograd, ``torch.compile``), float32: ``atol=2e-6`` (the same bilinear / antialiased
  weights as PyTorch, summed in another order);
- crop, batched form, uint8: within 1 of torchvision's native CPU uint8 kernel (fixed-point weights, rounded to
  integers between its two passes: about 15 % of the values differ by 1), and equal, ties aside, to torchvision's
  float path (the one it takes on GPU and on CPUs without AVX2): resize in float32, round once;
- rotation, float32: ``atol=1e-5`` (cosine and sine in float32 on the device, torchvision's in float64 on the host);
  uint8: within 1 (a value that lands near a half may round the other way);
- flip: exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torchvision.transforms import InterpolationMode

from essl_aug.augment.base import Augmentation, Params, TargetSpec
from essl_aug.augment.crop import (
    TRIES,
    CropParams,
    RandomResizedCrop,
    resample_weights,
    resized_crops,
    resized_crops_per_image,
)
from essl_aug.augment.flip import FlipParams, HorizontalFlip
from essl_aug.augment.rotation import RandomRotation, RotationParams

FAST = settings(deadline=None, max_examples=20, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**31 - 1)
sides = st.integers(3, 20)
dtypes = st.sampled_from([torch.float32, torch.uint8])


def images(batch: int, channels: int, height: int, width: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    x = torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed))
    return (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)


def assert_matches(y: torch.Tensor, ref: torch.Tensor, atol: float, uint8_fraction: float = 1.0) -> None:
    """``y`` and ``ref`` agree within ``atol`` (floats) or within 1 on at most ``uint8_fraction`` of values (uint8)."""
    assert y.dtype == ref.dtype and y.shape == ref.shape
    if y.dtype == torch.uint8:
        diff = (y.int() - ref.int()).abs()
        assert int(diff.max()) <= 1
        assert float((diff > 0).float().mean()) <= uint8_fraction
    else:
        torch.testing.assert_close(y, ref, rtol=0, atol=atol)


def tv_resized_crop(
    image: torch.Tensor, top: int, left: int, h: int, w: int, size: list[int], antialias: bool
) -> torch.Tensor:
    """torchvision's ``resized_crop``, around two faults of PyTorch's CPU kernels that it calls.

    - Antialiased, to an output width of 1 (and a height other than 1), PyTorch's CPU kernel is wrong: it disagrees
      with PIL and with itself on the transposed image (``test_crop_to_one_column_matches_pil``); there the
      reference is torchvision on the transposed image.
    - To a 1x1 uint8 output, PyTorch's native uint8 kernel fails an internal assertion; there the reference is
      torchvision's float path (the one it takes on GPU): resize in float32, round.
    """
    if antialias and size[1] == 1 and size[0] != 1:
        turned = TF.resized_crop(image.transpose(-1, -2), left, top, w, h, [1, size[0]], antialias=True)
        return turned.transpose(-1, -2)
    if image.dtype == torch.uint8 and size == [1, 1]:
        out = TF.resized_crop(image.float(), top, left, h, w, size, antialias=antialias)
        return out.round().to(torch.uint8)
    return TF.resized_crop(image, top, left, h, w, size, antialias=antialias)


def batched(crop: RandomResizedCrop, x: torch.Tensor, params: CropParams) -> torch.Tensor:
    """The batched form of ``crop.apply`` (the one GPU, autograd and ``torch.compile`` calls take)."""
    return resized_crops(x, params.box, params.applied, crop.size, crop.antialias)


def per_image(crop: RandomResizedCrop, x: torch.Tensor, params: CropParams) -> torch.Tensor:
    """The eager CPU form of ``crop.apply`` (``F.interpolate`` image by image)."""
    return resized_crops_per_image(x, params.box, params.applied, crop.size, crop.antialias)


CropForm = Callable[[RandomResizedCrop, torch.Tensor, CropParams], torch.Tensor]
CROP_FORMS = pytest.mark.parametrize("form", [batched, per_image], ids=["batched", "per_image"])


def all_augmentations() -> list[Augmentation]:
    return [RandomResizedCrop(6), HorizontalFlip(0.5), RandomRotation(180.0, p=0.5, fill=0.25)]


# -- oracles ---------------------------------------------------------------------------------


@FAST
@given(
    batch=st.integers(1, 4),
    height=sides,
    width=sides,
    out_h=st.integers(1, 24),
    out_w=st.integers(1, 24),
    scale_low=st.floats(0.05, 1.0),
    log_ratio=st.floats(-1.0, 1.0),
    antialias=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_crop_matches_torchvision_resized_crop(
    batch: int,
    height: int,
    width: int,
    out_h: int,
    out_w: int,
    scale_low: float,
    log_ratio: float,
    antialias: bool,
    dtype: torch.dtype,
    seed: int,
) -> None:
    crop = RandomResizedCrop(
        (out_h, out_w), scale=(scale_low, 1.0), ratio=(math.exp(-abs(log_ratio)), 1.2), antialias=antialias
    )
    x = images(batch, 3, height, width, dtype, seed)
    params = crop.sample(x.shape, generator=torch.Generator().manual_seed(seed + 1))
    y = crop.apply(x, params)  # eager CPU: the per-image form, torchvision's kernel
    z = batched(crop, x, params)
    for b in range(batch):
        top, left, h, w = (int(v) for v in params.box[b])
        ref = tv_resized_crop(x[b], top, left, h, w, [out_h, out_w], antialias)
        assert torch.equal(y[b], ref)
        assert_matches(z[b], ref, atol=2e-6)


def test_crop_uint8_agrees_with_the_float_path_of_torchvision() -> None:
    """The batched form resizes uint8 as torchvision does without a native uint8 kernel: in float32, rounded once
    (ties aside)."""
    crop = RandomResizedCrop((9, 7))
    x = images(6, 3, 23, 17, torch.uint8, 0)
    params = crop.sample(x.shape, generator=torch.Generator().manual_seed(3))
    y = batched(crop, x, params)
    for b in range(6):
        top, left, h, w = (int(v) for v in params.box[b])
        ref = TF.resized_crop(x[b].float(), top, left, h, w, [9, 7], antialias=True).round().to(torch.uint8)
        assert_matches(y[b], ref, atol=0, uint8_fraction=0.01)


@CROP_FORMS
def test_crop_to_one_column_matches_pil(form: CropForm) -> None:
    """PIL's antialiased bilinear resize (the filter PyTorch's reproduces) agrees with ours for an output width of 1,
    where PyTorch's CPU kernel does not agree with it (see ``tv_resized_crop``)."""
    pil = pytest.importorskip("PIL.Image")
    crop = RandomResizedCrop((5, 1), scale=(0.3, 1.0))
    x = images(6, 1, 11, 9, torch.float32, 6)
    params = crop.sample(x.shape, generator=torch.Generator().manual_seed(0))
    y = form(crop, x, params)
    for b in range(6):
        top, left, h, w = (int(v) for v in params.box[b])
        patch = pil.fromarray(x[b, 0, top : top + h, left : left + w].numpy(), mode="F")
        ref = torch.from_numpy(np.asarray(patch.resize((1, 5), pil.BILINEAR)).copy())
        torch.testing.assert_close(y[b, 0], ref, rtol=0, atol=2e-6)


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize(("in_size", "out_size"), [(4, 2), (7, 3), (5, 9), (100, 37), (13, 13), (1, 5), (6, 1)])
def test_resample_weights_are_the_weights_of_interpolate(in_size: int, out_size: int, antialias: bool) -> None:
    """Resizing the identity gives each output pixel's weights: ours agree with PyTorch's to a float32 rounding."""
    eye = torch.eye(in_size).view(1, 1, in_size, in_size)
    ref = torch.nn.functional.interpolate(
        eye, size=(in_size, out_size), mode="bilinear", align_corners=False, antialias=antialias
    )[0, 0].T
    start = torch.tensor([2.0])
    w = resample_weights(start, torch.tensor([float(in_size)]), in_size + 5, out_size, antialias)[0]
    torch.testing.assert_close(w[:, 2 : 2 + in_size], ref, rtol=0, atol=1e-7)
    assert (w[:, :2] == 0).all() and (w[:, 2 + in_size :] == 0).all()  # pixels outside the box weigh nothing


@FAST
@given(
    batch=st.integers(1, 4),
    height=sides,
    width=sides,
    degrees=st.floats(0.0, 360.0),
    fill=st.sampled_from([0.0, 0.5, 1.0]),
    dtype=dtypes,
    seed=seeds,
)
def test_rotation_matches_torchvision_rotate(batch, height, width, degrees, fill, dtype, seed) -> None:
    rotation = RandomRotation(degrees, p=1.0, fill=fill)
    x = images(batch, 3, height, width, dtype, seed)
    params = rotation.sample(x.shape, generator=torch.Generator().manual_seed(seed + 1))
    y = rotation.apply(x, params)
    tv_fill = fill * 255 if dtype == torch.uint8 else fill
    for b in range(batch):
        ref = TF.rotate(x[b], float(params.angle[b]), InterpolationMode.BILINEAR, fill=tv_fill)
        assert_matches(y[b], ref, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("shape", [(8, 8), (6, 10)])
def test_rotation_quarter_turns_match_torchvision_fast_paths(dtype, shape) -> None:
    """torchvision turns by 0, 90, 180, 270 degrees with exact ``rot90`` (90 and 270 on squares only)."""
    x = images(5, 3, *shape, dtype, 1)
    angle = torch.tensor([0.0, 90.0, 180.0, 270.0, -90.0])
    params = RotationParams(applied=torch.ones(5, dtype=torch.bool), angle=angle)
    y = RandomRotation().apply(x, params)
    for b in range(5):
        ref = TF.rotate(x[b], float(angle[b]), InterpolationMode.BILINEAR, fill=0.0)
        assert_matches(y[b], ref, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_flip_matches_torchvision_horizontal_flip(dtype) -> None:
    flip = HorizontalFlip(0.5)
    x = images(16, 3, 5, 7, dtype, 2)
    params = flip.sample(x.shape, generator=torch.Generator().manual_seed(0))
    assert 0 < int(params.applied.sum()) < 16
    y = flip.apply(x, params)
    for b in range(16):
        ref = TF.horizontal_flip(x[b]) if params.applied[b] else x[b]
        assert torch.equal(y[b], ref)


# -- the tensor contract -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("aug", [HorizontalFlip(0.5), RandomRotation(45.0, p=0.5)], ids=repr)
def test_rows_not_applied_are_bit_identical(aug, dtype) -> None:
    x = images(32, 3, 9, 9, dtype, 3)
    params = aug.sample(x.shape, generator=torch.Generator().manual_seed(1))
    kept = ~params.applied
    assert 0 < int(kept.sum()) < 32
    y = aug.apply(x, params)
    assert torch.equal(y[kept], x[kept])
    assert not torch.equal(y[~kept], x[~kept])


@CROP_FORMS
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_crop_rows_not_applied_are_the_whole_image(dtype: torch.dtype, form: CropForm) -> None:
    """``sample`` always crops; a row marked not applied is the whole image resized (itself at the input's size)."""
    crop = RandomResizedCrop((9, 11))
    x = images(4, 3, 9, 11, dtype, 4)
    params = crop.sample(x.shape, generator=torch.Generator().manual_seed(0))
    assert bool(params.applied.all())
    applied = torch.tensor([True, False, True, False])
    y = form(crop, x, CropParams(applied=applied, box=params.box, input_size=params.input_size))
    assert torch.equal(y[~applied], x[~applied])
    torch.testing.assert_close(y[applied], form(crop, x, params)[applied], rtol=0, atol=0)
    smaller = RandomResizedCrop((5, 6))
    z = form(smaller, x, CropParams(applied=applied, box=params.box, input_size=params.input_size))
    ref = TF.resize(x[1], [5, 6], antialias=True)
    assert_matches(z[1], ref, atol=2e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8])
@pytest.mark.parametrize("aug", all_augmentations(), ids=repr)
def test_output_dtype_shape_and_input_untouched(aug, dtype) -> None:
    x = images(4, 3, 10, 12, dtype, 5)
    before = x.clone()
    y, params = aug(x, torch.Generator().manual_seed(0))
    assert torch.equal(x, before)
    assert y.dtype == dtype and y.device == x.device
    expected = (4, 3, 6, 6) if isinstance(aug, RandomResizedCrop) else tuple(x.shape)
    assert tuple(y.shape) == expected
    assert y.data_ptr() != x.data_ptr()
    if dtype == torch.uint8:
        return
    # Lower precisions are computed in float32 and rounded back once: as close to the float32 result as they can be.
    ref = aug.apply(x.float(), params)
    tol = {torch.float16: 1e-3, torch.bfloat16: 8e-3}.get(dtype, 2e-6)
    torch.testing.assert_close(y.float(), ref, rtol=0, atol=tol)


@pytest.mark.parametrize("aug", all_augmentations(), ids=repr)
def test_float_output_is_differentiable(aug) -> None:
    x = torch.rand(3, 2, 8, 8, requires_grad=True)
    params = aug.sample(x.shape, generator=torch.Generator().manual_seed(2))
    y = aug.apply(x, params)
    (y * torch.arange(y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("aug", all_augmentations(), ids=repr)
def test_sampling_is_reproducible_and_differs_across_seeds(aug) -> None:
    shape = (64, 3, 16, 20)

    def draw(seed: int) -> list[torch.Tensor]:
        params = aug.sample(shape, "cpu", torch.Generator().manual_seed(seed))
        return [getattr(params, f) for f in params.__dataclass_fields__]

    first, again, other = draw(7), draw(7), draw(8)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(first, other, strict=True))
    for t in first:
        assert t.shape[0] == 64 and t.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("aug", all_augmentations(), ids=repr)
def test_sampling_on_the_device_with_a_generator(aug) -> None:
    x = torch.rand(8, 3, 12, 12, device="cuda")
    for generator in (torch.Generator("cuda").manual_seed(0), torch.Generator().manual_seed(0)):
        params = aug.sample(x.shape, x.device, generator)
        assert params.applied.device.type == "cuda"
        again = aug.sample(x.shape, x.device, generator.manual_seed(0))
        assert all(torch.equal(getattr(params, f), getattr(again, f)) for f in params.__dataclass_fields__)
        y = aug.apply(x, params)
        assert y.device == x.device
        torch.testing.assert_close(y.cpu(), aug.apply(x.cpu(), params.to("cpu")), rtol=0, atol=1e-5)


# -- crop sampling ---------------------------------------------------------------------------------


@FAST
@given(
    height=st.integers(1, 300),
    width=st.integers(1, 300),
    scale=st.tuples(st.floats(0.01, 1.5), st.floats(0.01, 1.5)).map(sorted),
    ratio=st.tuples(st.floats(0.2, 5.0), st.floats(0.2, 5.0)).map(sorted),
    seed=seeds,
)
def test_crop_boxes_lie_inside_with_scale_and_ratio_in_range(
    height: int, width: int, scale: list[float], ratio: list[float], seed: int
) -> None:
    crop = RandomResizedCrop(4, scale=(scale[0], scale[1]), ratio=(ratio[0], ratio[1]))
    params = crop.sample((50, 3, height, width), generator=torch.Generator().manual_seed(seed))
    top, left, h, w = params.box.T.double()
    assert params.box.dtype == torch.float32 and torch.equal(params.box, params.box.round())
    assert bool(((top >= 0) & (left >= 0) & (h >= 1) & (w >= 1)).all())
    assert bool(((top + h <= height) & (left + w <= width)).all())
    assert torch.equal(params.input_size, torch.tensor([[height, width]], dtype=torch.float32).expand(50, 2))
    # A drawn box rounds some target area in scale * H * W and some ratio in `ratio`: each side is within a half of
    # sqrt(area * ratio) or sqrt(area / ratio). Otherwise it is torchvision's central fallback.
    area = height * width
    drawn = (
        ((w - 0.5) * (h - 0.5) <= scale[1] * area * (1 + 1e-5))
        & ((w + 0.5) * (h + 0.5) >= scale[0] * area * (1 - 1e-5))
        & ((w - 0.5) / (h + 0.5) <= ratio[1] * (1 + 1e-5))
        & ((w + 0.5) / (h - 0.5) >= ratio[0] * (1 - 1e-5))
    )
    fh, fw = crop._fallback(height, width)
    fallback = (h == fh) & (w == fw) & (top == (height - fh) // 2) & (left == (width - fw) // 2)
    assert bool((drawn | fallback).all())


def test_crop_falls_back_to_the_central_crop_when_no_try_fits() -> None:
    """An area larger than the image never fits: every box is torchvision's fallback, the central crop cut to the
    closest allowed ratio."""
    crop = RandomResizedCrop(4, scale=(2.0, 3.0), ratio=(1.5, 2.0))
    params = crop.sample((5, 3, 20, 10))  # in_ratio 0.5 < 1.5: full width, height round(10 / 1.5) = 7
    assert params.box.tolist() == [[6.0, 0.0, 7.0, 10.0]] * 5
    wide = RandomResizedCrop(4, scale=(2.0, 3.0), ratio=(0.5, 0.75)).sample((2, 3, 10, 40))  # 4 > 0.75
    assert wide.box.tolist() == [[0.0, 16.0, 10.0, 8.0]] * 2  # full height, width round(10 * 0.75) = 8 (half to even)
    inside = RandomResizedCrop(4, scale=(2.0, 3.0), ratio=(0.5, 2.0)).sample((1, 3, 9, 12))
    assert inside.box.tolist() == [[0.0, 0.0, 9.0, 12.0]]


def test_crop_scale_and_log_ratio_properties_and_the_first_fitting_try() -> None:
    params = CropParams(
        applied=torch.ones(2, dtype=torch.bool),
        box=torch.tensor([[0.0, 0.0, 4.0, 8.0], [1.0, 2.0, 2.0, 1.0]]),
        input_size=torch.tensor([[8.0, 16.0], [8.0, 16.0]]),
    )
    torch.testing.assert_close(params.scale, torch.tensor([0.25, 2 / 128]))
    torch.testing.assert_close(params.log_ratio, torch.tensor([math.log(2.0), math.log(0.5)]))
    assert TRIES == 10
    # The full range is always drawn and the scale of a whole-image range is 1.
    full = RandomResizedCrop(4, scale=(1.0, 1.0), ratio=(1.0, 1.0)).sample((3, 3, 7, 7))
    assert full.box.tolist() == [[0.0, 0.0, 7.0, 7.0]] * 3


# -- compile ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("aug", all_augmentations(), ids=repr)
def test_apply_compiles_without_graph_breaks(aug) -> None:
    torch._dynamo.reset()
    x = torch.rand(4, 3, 8, 8)
    params = aug.sample(x.shape, generator=torch.Generator().manual_seed(0))
    compiled = torch.compile(aug.apply, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, params), aug.apply(x, params), rtol=0, atol=1e-6)
    torch._dynamo.reset()


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: HorizontalFlip(p=1.5), "`p`"),
        (lambda: RandomRotation(p=-0.1), "`p`"),
        (lambda: RandomRotation(degrees=-5.0), "`degrees`"),
        (lambda: RandomRotation(degrees=(10.0, -10.0)), "`degrees`"),
        (lambda: RandomRotation(degrees=(1.0, 2.0, 3.0)), "`degrees`"),
        (lambda: RandomRotation(fill=2.0), "`fill`"),
        (lambda: RandomResizedCrop(0), "`size`"),
        (lambda: RandomResizedCrop((4, 4, 4)), "`size`"),
        (lambda: RandomResizedCrop(4.5), "`size`"),
        (lambda: RandomResizedCrop(4, scale=(0.9, 0.1)), "`scale`"),
        (lambda: RandomResizedCrop(4, scale=(0.0, 0.5)), "`scale`"),
        (lambda: RandomResizedCrop(4, scale=0.5), "`scale`"),
        (lambda: RandomResizedCrop(4, ratio=(-1.0, 1.0)), "`ratio`"),
        (lambda: RandomResizedCrop(4, ratio=(2.0, 1.0)), "`ratio`"),
    ],
)
def test_bad_arguments_are_named(make, match) -> None:
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("aug", all_augmentations(), ids=repr)
def test_bad_inputs_and_params_are_named(aug) -> None:
    x = torch.rand(4, 3, 8, 8)
    params = aug.sample(x.shape)
    with pytest.raises(ValueError, match="`x` must have 4 dimensions"):
        aug.apply(x[0], params)
    with pytest.raises(TypeError, match="`x` has dtype int32"):
        aug.apply(x.to(torch.int32), params)
    with pytest.raises(ValueError, match=r"`params` was drawn for B=4 images, `x` has 3"):
        aug.apply(x[:3], params)
    with pytest.raises(TypeError, match="`params` must be a"):
        aug.apply(x, Params(applied=params.applied))
    with pytest.raises(ValueError, match="`shape`"):
        aug.sample((3, 8, 8))
    with pytest.raises(ValueError, match="`a` and `b`"):
        aug.relative(params, aug.sample((2, 3, 8, 8)))


def test_crop_relative_checks_flipped_and_apply_checks_the_image_size() -> None:
    crop = RandomResizedCrop(4)
    params = crop.sample((3, 3, 8, 8))
    with pytest.raises(ValueError, match=r"`params` was drawn for images of 8x8 \(H x W\) pixels, `x` has 9x8"):
        crop.apply(torch.rand(3, 3, 9, 8), params)
    with pytest.raises(ValueError, match="`flipped`"):
        crop.relative(params, params, flipped=torch.ones(2, dtype=torch.bool))


# -- targets ---------------------------------------------------------------------------------------


def _crop(box: list[list[float]], size: tuple[float, float] = (8.0, 16.0)) -> CropParams:
    b = torch.tensor(box)
    return CropParams(torch.ones(len(box), dtype=torch.bool), b, torch.tensor([size]).expand(len(box), 2))


def test_crop_target_and_relative_by_hand() -> None:
    crop = RandomResizedCrop(4)
    assert crop.target_spec == TargetSpec("regression", 4, ("center_y", "center_x", "height", "width"))
    a = _crop([[2.0, 4.0, 4.0, 8.0], [0.0, 0.0, 8.0, 16.0]])
    b = _crop([[0.0, 0.0, 2.0, 4.0], [0.0, 0.0, 8.0, 16.0]])
    ta = crop.target(a)
    assert ta.dtype == torch.float32 and ta.shape == (2, 4)
    torch.testing.assert_close(ta, torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]))
    torch.testing.assert_close(crop.target(b)[0], torch.tensor([0.125, 0.125, 0.25, 0.25]))
    torch.testing.assert_close(crop.relative(a, b)[0], torch.tensor([0.375, 0.375, 0.25, 0.25]))
    assert torch.equal(crop.relative(a, a), torch.zeros(2, 4))
    assert torch.equal(crop.relative(a, b), -crop.relative(b, a))
    # AugSelf mirrors both horizontal centres by the first view's flip: 1 - 0.5 and 1 - 0.125.
    flipped = FlipParams(applied=torch.tensor([True, False]))
    torch.testing.assert_close(crop.relative(a, b, flipped=flipped)[0], torch.tensor([0.375, -0.375, 0.25, 0.25]))
    torch.testing.assert_close(crop.relative(a, b, flipped=flipped)[1], crop.relative(a, b)[1])
    torch.testing.assert_close(crop.relative(a, b, flipped=flipped.applied), crop.relative(a, b, flipped=flipped))


def test_flip_target_and_relative_by_hand() -> None:
    flip = HorizontalFlip()
    assert flip.target_spec == TargetSpec("classification", 2) and flip.relative_spec == flip.target_spec
    a = FlipParams(torch.tensor([True, True, False, False]))
    b = FlipParams(torch.tensor([True, False, True, False]))
    assert flip.target(a).dtype == torch.int64 and flip.target(a).tolist() == [1, 1, 0, 0]
    assert flip.relative(a, b).tolist() == [1, 0, 0, 1]
    assert flip.relative(a, a).tolist() == [1, 1, 1, 1]


def test_rotation_target_and_relative_by_hand() -> None:
    rotation = RandomRotation()
    assert rotation.target_spec == TargetSpec("regression", 2, ("cos", "sin"))
    a = RotationParams(torch.tensor([True, True, False]), torch.tensor([90.0, 30.0, 0.0]))
    b = RotationParams(torch.tensor([True, True, True]), torch.tensor([-90.0, -60.0, 45.0]))
    torch.testing.assert_close(rotation.target(a), torch.tensor([[0.0, 1.0], [math.sqrt(3) / 2, 0.5], [1.0, 0.0]]))
    h = math.sqrt(0.5)
    torch.testing.assert_close(rotation.relative(a, b), torch.tensor([[-1.0, 0.0], [0.0, 1.0], [h, -h]]))
    torch.testing.assert_close(rotation.relative(b, b), torch.tensor([[1.0, 0.0]] * 3))


def test_rotation_draws_angles_in_range_and_zero_where_not_applied() -> None:
    rotation = RandomRotation((10.0, 20.0), p=0.5)
    params = rotation.sample((200, 3, 4, 4), generator=torch.Generator().manual_seed(0))
    on = params.angle[params.applied]
    assert bool(((on >= 10) & (on < 20)).all()) and on.numel() > 50
    assert bool((params.angle[~params.applied] == 0).all()) and (~params.applied).sum() > 50
    assert params.angle.dtype == torch.float32


def test_rotation_is_counter_clockwise_and_fills_the_corners() -> None:
    """A 45 degree turn: a pixel right of the centre moves up; the corners, outside the turned image, get ``fill``."""
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 8] = 1.0  # right of the centre
    params = RotationParams(torch.ones(1, dtype=torch.bool), torch.tensor([90.0]))
    y = RandomRotation().apply(x, params)
    assert float(y[0, 0, 0, 4]) == pytest.approx(1.0, abs=1e-5)  # now above the centre
    corners = RandomRotation(fill=1.0).apply(
        torch.zeros(1, 1, 9, 9), RotationParams(params.applied, torch.tensor([45.0]))
    )
    assert float(corners[0, 0, 0, 0]) == 1.0 and float(corners[0, 0, 4, 4]) == 0.0
