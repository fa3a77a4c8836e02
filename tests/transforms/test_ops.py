"""The continuous transformations and the functional ops against torchvision, with given parameters, within the
tolerances their modules document; their targets (AugSelf's normalisations) by hand; ``TargetSpec``.

Tolerances (float32 / uint8): resized crop ``2e-6`` / within 1 of torchvision's float path (resize in float32, round
once) on at most 1 % of the values, and within 1 of its native uint8 kernel; rotation ``1e-6`` / within 1; Gaussian
blur ``2e-6`` / within 1 on at most 1 %; colour jitter ``1e-6`` / within 1 on at most 1 %; solarize, grayscale,
inversion, flips, turns, rolls and jigsaws: exact. (The draws of the crop's box against torchvision's are tested with
the view recipes, in ``tests/views``.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from torchvision.transforms import InterpolationMode

from essl_aug import functional as EF
from essl_aug._cache import PlanCache
from essl_aug.transforms import (
    PERMUTATIONS,
    BlurParams,
    ColorJitter,
    ColorJitterParams,
    CropParams,
    LabelParams,
    Params,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomPeriodicShift,
    RandomResizedCrop,
    RandomRotation,
    RandomSolarize,
    RotationParams,
    ShiftParams,
    TargetSpec,
)
from essl_aug.transforms.color_jitter import IDENTITY_FACTORS
from essl_aug.transforms.gaussian_blur import simclr_kernel_size
from essl_aug.transforms.resized_crop import TRIES
from tests.transforms.catalogue import (
    CIFAR_MEAN,
    CIFAR_STD,
    CONTINUOUS,
    CYCLIC_FOUR,
    FAST,
    FEW,
    KLEIN_FOUR,
    TV_JITTER,
    Entry,
    assert_matches,
    build,
    d4,
    entry,
    images,
    jigsaw_tiles,
    oracle,
    shape_for,
    translation,
    tv_resized_crop,
)

seeds = st.integers(0, 2**31 - 1)
dtypes = st.sampled_from([torch.float32, torch.uint8])
ONES = torch.ones(1, dtype=torch.bool)


def per_image(x: Tensor, labels: Tensor, op) -> Tensor:
    return torch.stack([op(x[i], int(labels[i])) for i in range(x.shape[0])])


# -- every continuous transformation against its torchvision oracle -------------------------------------------------


@pytest.mark.parametrize("e", CONTINUOUS, ids=repr)
@FEW
@given(batch=st.integers(1, 4), height=st.integers(4, 20), width=st.integers(4, 20), dtype=dtypes, seed=seeds)
def test_drawn_parameters_against_the_oracle(e: Entry, batch: int, height: int, width: int, dtype, seed: int) -> None:
    t = build(e)
    for channels in e.channels[:2]:
        x = images(shape_for(e, batch, height, width, channels), seed, dtype)
        params = t.sample(x.shape, generator=torch.Generator().manual_seed(seed + 1))
        assert_matches(t.apply(x, params), oracle(e, t, x, params), e)


@FEW
@given(
    batch=st.integers(1, 3),
    height=st.integers(3, 20),
    width=st.integers(3, 20),
    size=st.tuples(st.integers(1, 24), st.integers(1, 24)),
    scale_low=st.floats(0.05, 1.0),
    log_ratio=st.floats(-1.0, 1.0),
    antialias=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_resized_crop_matches_torchvision(batch, height, width, size, scale_low, log_ratio, antialias, dtype, seed):
    crop = RandomResizedCrop(size, scale=(scale_low, 1.0), ratio=(math.exp(-abs(log_ratio)), 1.2), antialias=antialias)
    x = images((batch, 3, height, width), seed, dtype)
    params = crop.sample(x.shape, generator=torch.Generator().manual_seed(seed + 1))
    y = crop.apply(x, params)
    for b in range(batch):
        box = [int(v) for v in params.box[b]]
        expected = tv_resized_crop(x[b], box, size, antialias)
        assert_matches(y[b : b + 1], expected[None], entry("resized-crop"))
        if dtype == torch.uint8 and min(size) > 1:  # torchvision's native fixed-point uint8 kernel: within 1
            native = TF.resized_crop(x[b], *box, list(size), antialias=antialias)
            assert int((y[b].int() - native.int()).abs().max()) <= 1


def test_resized_crop_to_one_column_matches_pil() -> None:
    """PIL's antialiased bilinear resize (PyTorch's filter) agrees for an output width of 1, where PyTorch's CPU
    kernel does not (the reason for the transposed reference)."""
    pil = pytest.importorskip("PIL.Image")
    crop = RandomResizedCrop((5, 1), scale=(0.3, 1.0))
    x = images((6, 1, 11, 9), seed=6)
    params = crop.sample(x.shape, generator=torch.Generator().manual_seed(0))
    y = crop.apply(x, params)
    for b in range(6):
        top, left, h, w = (int(v) for v in params.box[b])
        patch = pil.fromarray(x[b, 0, top : top + h, left : left + w].numpy(), mode="F")
        expected = torch.from_numpy(np.asarray(patch.resize((1, 5), pil.BILINEAR)).copy())
        torch.testing.assert_close(y[b, 0], expected, rtol=0, atol=2e-6)


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize(("in_size", "out_size"), [(4, 2), (7, 3), (5, 9), (100, 37), (13, 13), (1, 5), (6, 1)])
def test_resample_weights_are_the_weights_of_interpolate(in_size: int, out_size: int, antialias: bool) -> None:
    """Resizing the identity gives each output pixel's weights; pixels outside the box weigh nothing."""
    eye = torch.eye(in_size).view(1, 1, in_size, in_size)
    expected = torch.nn.functional.interpolate(
        eye, size=(in_size, out_size), mode="bilinear", align_corners=False, antialias=antialias
    )[0, 0].T
    w = EF.resample_weights(torch.tensor([2.0]), torch.tensor([float(in_size)]), in_size + 5, out_size, antialias)[0]
    torch.testing.assert_close(w[:, 2 : 2 + in_size], expected, rtol=0, atol=1e-7)
    assert bool((w[:, :2] == 0).all()) and bool((w[:, 2 + in_size :] == 0).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_resized_crop_rows_not_applied_are_the_whole_image_resized(dtype: torch.dtype) -> None:
    crop = RandomResizedCrop((5, 6))
    x = images((4, 3, 9, 11), seed=4, dtype=dtype)
    drawn = crop.sample(x.shape, generator=torch.Generator().manual_seed(0))
    assert bool(drawn.applied.all())  # a crop always crops
    applied = torch.tensor([True, False, True, False])
    y = crop.apply(x, CropParams(applied=applied, box=drawn.box, input_size=drawn.input_size))
    assert torch.equal(y[applied], crop.apply(x, drawn)[applied])
    for i in (1, 3):
        assert_matches(y[i : i + 1], tv_resized_crop(x[i], [0, 0, 9, 11], (5, 6), True)[None], entry("resized-crop"))


def test_resized_crop_falls_back_to_the_central_crop() -> None:
    """An area larger than the image never fits in 10 tries: torchvision's central crop, cut to the closest ratio."""
    assert TRIES == 10
    params = RandomResizedCrop(4, scale=(2.0, 3.0), ratio=(1.5, 2.0)).sample((5, 3, 20, 10))
    assert params.box.tolist() == [[6.0, 0.0, 7.0, 10.0]] * 5  # full width, height round(10 / 1.5)
    wide = RandomResizedCrop(4, scale=(2.0, 3.0), ratio=(0.5, 0.75)).sample((2, 3, 10, 40))
    assert wide.box.tolist() == [[0.0, 16.0, 10.0, 8.0]] * 2  # full height, width round(7.5) = 8 (half to even)
    inside = RandomResizedCrop(4, scale=(2.0, 3.0), ratio=(0.5, 2.0)).sample((1, 3, 9, 12))
    assert inside.box.tolist() == [[0.0, 0.0, 9.0, 12.0]]
    whole = RandomResizedCrop(4, scale=(1.0, 1.0), ratio=(1.0, 1.0)).sample((3, 3, 7, 7))
    assert whole.box.tolist() == [[0.0, 0.0, 7.0, 7.0]] * 3


@FAST
@given(
    height=st.integers(1, 200),
    width=st.integers(1, 200),
    scale=st.tuples(st.floats(0.01, 1.5), st.floats(0.01, 1.5)).map(sorted),
    ratio=st.tuples(st.floats(0.2, 5.0), st.floats(0.2, 5.0)).map(sorted),
    seed=seeds,
)
def test_resized_crop_boxes_lie_inside_with_scale_and_ratio_in_range(height, width, scale, ratio, seed) -> None:
    crop = RandomResizedCrop(4, scale=(scale[0], scale[1]), ratio=(ratio[0], ratio[1]))
    params = crop.sample((50, 3, height, width), generator=torch.Generator().manual_seed(seed))
    top, left, h, w = params.box.T.double()
    assert params.box.dtype == torch.float32 and torch.equal(params.box, params.box.round())
    assert bool(((top >= 0) & (left >= 0) & (h >= 1) & (w >= 1)).all())
    assert bool(((top + h <= height) & (left + w <= width)).all())
    assert torch.equal(params.input_size, torch.tensor([[height, width]], dtype=torch.float32).expand(50, 2))
    area = height * width  # a drawn box rounds an area in scale * H * W and a ratio in `ratio`; else the fallback
    drawn = (
        ((w - 0.5) * (h - 0.5) <= scale[1] * area * (1 + 1e-5))
        & ((w + 0.5) * (h + 0.5) >= scale[0] * area * (1 - 1e-5))
        & ((w - 0.5) / (h + 0.5) <= ratio[1] * (1 + 1e-5))
        & ((w + 0.5) / (h - 0.5) >= ratio[0] * (1 - 1e-5))
    )
    centred = (top == torch.div(height - h, 2, rounding_mode="floor")) & (
        left == torch.div(width - w, 2, rounding_mode="floor")
    )
    assert bool((drawn | centred).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("shape", [(8, 8), (6, 10)])
def test_rotation_by_quarter_turns_matches_torchvision(dtype: torch.dtype, shape: tuple[int, int]) -> None:
    x = images((5, 3, *shape), seed=1, dtype=dtype)
    angle = torch.tensor([0.0, 90.0, 180.0, 270.0, -90.0])
    y = RandomRotation().apply(x, RotationParams(applied=torch.ones(5, dtype=torch.bool), angle=angle))
    for b in range(5):
        expected = TF.rotate(x[b], float(angle[b]), InterpolationMode.BILINEAR, fill=0.0)
        assert_matches(y[b : b + 1], expected[None], entry("rotation"))
    if shape[0] == shape[1]:
        assert torch.equal(y[1], torch.rot90(x[1], 1, (-2, -1)))  # an exact pixel move


@pytest.mark.parametrize("px", [32, 224, 320])
def test_rotation_matches_torchvision_at_the_sizes_users_train_at(px: int) -> None:
    """Any angle, and exact pixel moves at multiples of a quarter turn (torchvision's ``rot90`` fast path), at CIFAR,
    ImageNet and larger sizes: float32 within 1e-6 (the cosine and sine rounded from float64, as torchvision's
    matrix), uint8 within 1 on at most 1 % of the values."""
    angle = torch.tensor([13.7, -71.3, 90.0, 180.0, -90.0, 450.0])
    params = RotationParams(applied=torch.ones(6, dtype=torch.bool), angle=angle)
    for dtype in (torch.float32, torch.uint8):
        x = images((6, 3, px, px), seed=px, dtype=dtype)
        y = RandomRotation(fill=0.25).apply(x, params)
        for b in range(6):
            value = 0.25 * 255 if dtype == torch.uint8 else 0.25
            expected = TF.rotate(x[b], float(angle[b]), InterpolationMode.BILINEAR, fill=value)
            assert_matches(y[b : b + 1], expected[None], entry("rotation"))
        for b, k in ((2, 1), (3, 2), (4, 3), (5, 1)):  # exact: the pixels moved, not resampled
            assert torch.equal(y[b], torch.rot90(x[b], k, (-2, -1)))


def test_a_half_turn_of_a_non_square_image_is_exact() -> None:
    x = images((2, 3, 6, 10), seed=3)
    y = RandomRotation().apply(
        x, RotationParams(applied=torch.ones(2, dtype=torch.bool), angle=torch.tensor([180.0, -180.0]))
    )
    assert torch.equal(y, x.flip(-2, -1))


def test_rotation_is_counter_clockwise_and_fills_the_corners() -> None:
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 8] = 1.0  # right of the centre
    y = RandomRotation().apply(x, RotationParams(ONES, torch.tensor([90.0])))
    assert float(y[0, 0, 0, 4]) == pytest.approx(1.0, abs=1e-5)  # now above it
    corners = RandomRotation(fill=1.0).apply(torch.zeros(1, 1, 9, 9), RotationParams(ONES, torch.tensor([45.0])))
    assert float(corners[0, 0, 0, 0]) == 1.0 and float(corners[0, 0, 4, 4]) == 0.0
    u8 = RandomRotation(fill=1.0).apply(
        torch.zeros(1, 1, 9, 9, dtype=torch.uint8), RotationParams(ONES, torch.tensor([45.0]))
    )
    assert int(u8[0, 0, 0, 0]) == 255


@FAST
@given(
    op=st.integers(0, 3),
    factor=st.floats(0.0, 3.0),
    hue=st.floats(-0.5, 0.5),
    channels=st.sampled_from([1, 3]),
    dtype=dtypes,
    seed=seeds,
)
def test_each_jitter_op_matches_torchvision_over_its_whole_range(op, factor, hue, channels, dtype, seed) -> None:
    """One op per image, factors beyond ``ColorJitter``'s defaults (0 turns saturation gray, 3 clamps)."""
    x = images((3, channels, 5, 6), seed, dtype)
    value = hue if op == 3 else factor
    factors = torch.tensor(IDENTITY_FACTORS).repeat(3, 1)
    factors[:, op] = value
    order = torch.tensor([op] + [k for k in range(4) if k != op]).repeat(3, 1)
    params = ColorJitterParams(applied=torch.tensor([True, False, True]), factors=factors, order=order)
    y = ColorJitter().apply(x, params)
    for i in (0, 2):
        expected = x[i] if value == IDENTITY_FACTORS[op] else TV_JITTER[op](x[i], float(factors[i, op]))
        assert_matches(y[i : i + 1], expected[None], entry("color-jitter"))
    assert torch.equal(y[1], x[1])


def test_jitter_zero_ranges_skip_their_op() -> None:
    """An identity factor skips its op, as torchvision's ``ColorJitter`` skips the ops it was built without: even
    values outside [0, 1] (which an op would clamp) come back unchanged."""
    x = images((4, 3, 6, 6), seed=12) * 3 - 1
    params = ColorJitter(0, 0, 0, 0, p=1.0).sample(x.shape)
    assert torch.equal(params.factors, torch.tensor([IDENTITY_FACTORS] * 4)) and bool(params.applied.all())
    assert torch.equal(ColorJitter().apply(x, params), x)
    brighter = ColorJitterParams(params.applied, params.factors * torch.tensor([1.5, 1, 1, 1]), params.order)
    assert not torch.equal(ColorJitter().apply(x, brighter), x)


def test_jitter_draws_factors_in_range_and_orders_that_are_permutations() -> None:
    aug = ColorJitter(brightness=0.4, contrast=1.5, saturation=(0.2, 3.0), hue=(-0.1, 0.3), p=0.6)
    assert aug.ranges == ((0.6, 1.4), (0.0, 2.5), (0.2, 3.0), (-0.1, 0.3))
    params = aug.sample((300, 3, 4, 4), generator=torch.Generator().manual_seed(0))
    on = params.applied
    for k, (lo, hi) in enumerate(aug.ranges):
        f = params.factors[on, k]
        assert bool(((f >= torch.tensor(lo)) & (f <= torch.tensor(hi))).all())
    assert torch.equal(params.order.sort(dim=1).values, torch.arange(4).expand(300, 4))
    assert len({tuple(o) for o in params.order[on].tolist()}) == 24  # every order occurs
    assert torch.equal(params.factors[~on], torch.tensor(IDENTITY_FACTORS).expand(int((~on).sum()), 4))
    assert torch.equal(params.order[~on], torch.arange(4).expand(int((~on).sum()), 4))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.uint8])
def test_blur_with_sigma_zero_keeps_the_image(dtype: torch.dtype) -> None:
    """sigma 0 is the delta kernel (the Gaussian's limit), never 0 / 0, whatever the kernel size."""
    x = images((2, 3, 30, 30), seed=13, dtype=dtype)
    for k in (3, 23, 29):
        params = BlurParams(applied=torch.tensor([True, True]), sigma=torch.tensor([0.0, 0.0]))
        assert torch.equal(RandomGaussianBlur(kernel_size=k).apply(x, params), x)


def test_the_kernel_size_rule_is_simclr_ten_percent_odd() -> None:
    assert [simclr_kernel_size(s, s) for s in (224, 96, 64, 40, 32, 19, 8)] == [23, 9, 7, 5, 3, 3, 3]
    assert simclr_kernel_size(224, 64) == 7  # the shorter side
    assert RandomGaussianBlur(kernel_size=5).kernel_size_for(224, 224) == 5
    assert RandomGaussianBlur().kernel_size_for(96, 96) == 9


def test_solarize_uint8_threshold_is_pillow_128() -> None:
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    y = RandomSolarize(0.5, p=1.0).apply(x, Params(ONES)).flatten()
    assert torch.equal(y[:128], torch.arange(128, dtype=torch.uint8))
    assert torch.equal(y[128:], 255 - torch.arange(128, 256).to(torch.uint8))


def test_grayscale_keeps_one_channel_images() -> None:
    gray = images((3, 1, 4, 5), seed=14)
    assert torch.equal(RandomGrayscale().apply(gray, torch.tensor([1, 0, 1])), gray)


def test_periodic_shift_is_a_roll_per_image_spread_over_every_shift() -> None:
    x = images((64, 1, 8, 8), seed=15, dtype=torch.float64)
    y, params = RandomPeriodicShift()(x, torch.Generator().manual_seed(1))
    found = set()
    for i in range(64):
        matches = [(a, b) for a in range(8) for b in range(8) if torch.equal(torch.roll(x[i], (a, b), (-2, -1)), y[i])]
        assert matches == [tuple(params.shifts[i].tolist())]
        found.add(matches[0])
    assert len(found) > 30  # spread over the 64 shifts, not a constant
    assert torch.equal(RandomPeriodicShift(p=0.0)(x)[0], x)


# -- targets by hand (AugSelf's conventions) ----------------------------------------------------------------------


def _crop(box: list[list[float]], size: tuple[float, float] = (8.0, 16.0)) -> CropParams:
    b = torch.tensor(box)
    return CropParams(torch.ones(len(box), dtype=torch.bool), b, torch.tensor([size]).expand(len(box), 2))


def test_crop_target_and_relative_with_the_flip_mirroring() -> None:
    crop = RandomResizedCrop(4)
    a = _crop([[2.0, 4.0, 4.0, 8.0], [0.0, 0.0, 8.0, 16.0]])
    b = _crop([[0.0, 0.0, 2.0, 4.0], [0.0, 0.0, 8.0, 16.0]])
    torch.testing.assert_close(crop.target(a), torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]))
    torch.testing.assert_close(crop.target(b)[0], torch.tensor([0.125, 0.125, 0.25, 0.25]))
    torch.testing.assert_close(crop.relative(a, b)[0], torch.tensor([0.375, 0.375, 0.25, 0.25]))
    assert torch.equal(crop.relative(a, b), -crop.relative(b, a))
    # AugSelf's extract_diff mirrors both horizontal centres by the first view's flip: 1 - 0.5 and 1 - 0.125
    flipped = LabelParams.of(torch.tensor([1, 0]))
    mirrored = crop.relative(a, b, flipped=flipped)
    torch.testing.assert_close(mirrored[0], torch.tensor([0.375, -0.375, 0.25, 0.25]))
    torch.testing.assert_close(mirrored[1], crop.relative(a, b)[1])
    torch.testing.assert_close(crop.relative(a, b, flipped=flipped.applied), mirrored)
    params = CropParams(
        applied=torch.ones(2, dtype=torch.bool),
        box=torch.tensor([[0.0, 0.0, 4.0, 8.0], [1.0, 2.0, 2.0, 1.0]]),
        input_size=torch.tensor([[8.0, 16.0], [8.0, 16.0]]),
    )
    torch.testing.assert_close(params.scale, torch.tensor([0.25, 2 / 128]))
    torch.testing.assert_close(params.log_ratio, torch.tensor([math.log(2.0), math.log(0.5)]))


def test_jitter_target_is_augself_normalised_factors() -> None:
    aug = ColorJitter(brightness=0.4, contrast=0.4, saturation=(1.0, 1.0), hue=0.1)
    a = ColorJitterParams(
        applied=torch.tensor([True, False]),
        factors=torch.tensor([[1.2, 0.8, 1.0, 0.05], [1.0, 1.0, 1.0, 0.0]]),
        order=torch.tensor([[3, 2, 1, 0], [0, 1, 2, 3]]),
    )
    b = ColorJitterParams(
        applied=torch.tensor([True, True]),
        factors=torch.tensor([[0.6, 1.4, 1.0, -0.1], [1.4, 1.0, 1.0, 0.1]]),
        order=torch.tensor([[0, 1, 2, 3], [1, 0, 2, 3]]),
    )
    # (f - 1) / 0.8 for brightness and contrast; saturation's range has zero width: 0; hue / 0.2
    expected_a = torch.tensor([[0.25, -0.25, 0.0, 0.25], [0.0, 0.0, 0.0, 0.0]])
    expected_b = torch.tensor([[-0.5, 0.5, 0.0, -0.5], [0.5, 0.0, 0.0, 0.5]])
    torch.testing.assert_close(aug.target(a), expected_a)
    torch.testing.assert_close(aug.relative(a, b), expected_a - expected_b)
    spec = aug.target_spec
    assert spec.names == ("brightness", "contrast", "saturation", "hue")
    torch.testing.assert_close(
        torch.tensor(spec.ranges), torch.tensor([[-0.5, 0.5], [-0.5, 0.5], [0.0, 0.0], [-0.5, 0.5]])
    )
    assert spec.varies and aug.relative_spec.ranges == ()


def test_blur_solarize_rotation_and_shift_targets_by_hand() -> None:
    blur = RandomGaussianBlur()
    a = BlurParams(applied=torch.tensor([True, False, True]), sigma=torch.tensor([1.5, 0.0, 0.1]))
    b = BlurParams(applied=torch.tensor([False, True, True]), sigma=torch.tensor([0.0, 2.0, 0.6]))
    torch.testing.assert_close(blur.target(a), torch.tensor([[1.5], [0.0], [0.1]]))
    torch.testing.assert_close(blur.relative(a, b), torch.tensor([[1.5], [-2.0], [-0.5]]))
    solarize = RandomSolarize(threshold=0.25)
    sa, sb = Params(torch.tensor([True, False, True, False])), Params(torch.tensor([True, True, False, False]))
    assert solarize.target(sa).flatten().tolist() == [0.25, 1.0, 0.25, 1.0]
    assert solarize.relative(sa, sb).flatten().tolist() == [0.0, 0.75, -0.75, 0.0]
    rotation = RandomRotation()
    ra = RotationParams(torch.tensor([True, True, False]), torch.tensor([90.0, 30.0, 0.0]))
    rb = RotationParams(torch.tensor([True, True, True]), torch.tensor([-90.0, -60.0, 45.0]))
    torch.testing.assert_close(rotation.target(ra), torch.tensor([[0.0, 1.0], [math.sqrt(3) / 2, 0.5], [1.0, 0.0]]))
    h = math.sqrt(0.5)
    torch.testing.assert_close(rotation.relative(ra, rb), torch.tensor([[-1.0, 0.0], [0.0, 1.0], [h, -h]]))
    shift = RandomPeriodicShift()
    size = torch.tensor([[8, 4], [8, 4]])
    pa = ShiftParams(torch.tensor([True, True]), torch.tensor([[2, 1], [0, 0]]), size)
    pb = ShiftParams(torch.tensor([True, False]), torch.tensor([[6, 0], [0, 0]]), size)
    torch.testing.assert_close(shift.target(pa), torch.tensor([[0.25, 0.25], [0.0, 0.0]]))
    torch.testing.assert_close(shift.relative(pa, pb), torch.tensor([[0.5, 0.25], [0.0, 0.0]]))  # modulo the cell


def test_flip_and_grayscale_targets_are_labels_and_relative_is_disagreement() -> None:
    """The flip's relative target is 1 where exactly one view is mirrored (AugSelf's ``f1 == f2`` is 1 minus it)."""
    a, b = LabelParams.of(torch.tensor([1, 1, 0, 0])), LabelParams.of(torch.tensor([1, 0, 1, 0]))
    for t in (RandomHorizontalFlip(), RandomGrayscale()):
        assert t.target(a).tolist() == [1, 1, 0, 0] and t.target(a).dtype == torch.int64
        assert t.relative(a, b).tolist() == [0, 1, 1, 0]
        assert t.target_spec == TargetSpec("classification", 2) and t.relative_spec == TargetSpec("classification", 2)


# -- TargetSpec -----------------------------------------------------------------------------------------------------


def test_target_spec_checks_its_fields() -> None:
    assert TargetSpec("regression", 2, ("cos", "sin")).names == ("cos", "sin")
    with pytest.raises(ValueError, match="`kind`"):
        TargetSpec("ordinal", 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`size`"):
        TargetSpec("classification", 0)
    with pytest.raises(ValueError, match="`names`"):
        TargetSpec("regression", 3, ("a", "b"))
    with pytest.raises(ValueError, match="`ranges`"):
        TargetSpec("regression", 2, ranges=((0.0, 1.0),))


def test_target_spec_normalize_varies_and_spans() -> None:
    spec = TargetSpec("regression", 2, ranges=((0.1, 2.0), (3.0, 3.0)))
    out = spec.normalize(torch.tensor([[0.1, 3.0], [2.0, 3.0], [1.05, 3.0]], dtype=torch.float64))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]]))
    assert spec.varies and spec.spans == pytest.approx((1.9, 0.0))
    assert not TargetSpec("regression", 1, ranges=((2.0, 2.0),)).varies
    plain = TargetSpec("regression", 2)
    assert plain.varies and plain.spans == (1.0, 1.0)
    assert torch.equal(plain.normalize(torch.tensor([[5.0, -1.0]])), torch.tensor([[5.0, -1.0]]))
    assert TargetSpec("classification", 4).varies and not TargetSpec("classification", 1).varies


def test_target_specs_say_when_a_target_cannot_vary() -> None:
    assert RandomSolarize(p=0.5).target_spec.ranges == ((0.5, 1.0),) and RandomSolarize(p=0.5).target_spec.varies
    assert RandomSolarize(p=1.0).target_spec.ranges == ((0.5, 0.5),)  # always the threshold
    assert RandomSolarize(p=0.0).target_spec.ranges == ((1.0, 1.0),)  # always 1
    assert not RandomSolarize(threshold=1.0, p=0.5).target_spec.varies
    assert RandomGaussianBlur(p=1.0).target_spec.ranges == ((0.1, 2.0),)
    assert RandomGaussianBlur(p=0.5).target_spec.ranges == ((0.0, 2.0),)  # 0 where not applied
    assert not RandomGaussianBlur(p=0.0).target_spec.varies
    fixed = RandomRotation(degrees=(30.0, 30.0)).target_spec
    assert fixed.circular and not fixed.varies
    torch.testing.assert_close(torch.tensor(fixed.ranges), torch.tensor([[math.sqrt(3) / 2] * 2, [0.5, 0.5]]))
    free = RandomRotation().target_spec
    assert free.circular and free.varies and free.ranges == () and RandomRotation().relative_spec.circular
    assert RandomResizedCrop(4).target_spec.ranges == ((0.0, 1.0),) * 4
    assert RandomResizedCrop(4).relative_spec == TargetSpec(
        "regression", 4, ("center_y", "center_x", "height", "width")
    )


# -- the functional ops: their documented conventions at more sizes --------------------------------------------------


@FAST
@given(batch=st.integers(1, 4), height=st.integers(1, 24), width=st.integers(1, 24), seed=seeds)
def test_functional_pixel_ops_match_torch(batch: int, height: int, width: int, seed: int) -> None:
    x = images((batch, 2, height, width), seed)
    square = x[..., : min(height, width), : min(height, width)]
    gen = torch.Generator().manual_seed(seed)
    r, f, d = (torch.randint(k, (batch,), generator=gen) for k in (4, 2, 8))
    assert torch.equal(EF.rotate90(square, r), per_image(square, r, lambda img, k: torch.rot90(img, k, (-2, -1))))
    assert torch.equal(EF.d4(square, d), per_image(square, d, d4))
    assert torch.equal(EF.vflip(x, f), per_image(x, f, lambda img, k: img.flip(-2) if k else img))
    assert torch.equal(EF.hflip(x, f), per_image(x, f, lambda img, k: TF.horizontal_flip(img) if k else img))
    assert torch.equal(EF.rotate90(square, None), torch.cat([torch.rot90(square, k, (-2, -1)) for k in range(4)]))
    shifts = torch.randint(-50, 50, (batch, 2), generator=gen)
    rolled = torch.stack([torch.roll(x[i], tuple(shifts[i].tolist()), (-2, -1)) for i in range(batch)])
    assert torch.equal(EF.periodic_roll(x, shifts), rolled)


@FAST
@given(
    batch=st.integers(1, 4),
    steps=st.sampled_from([1, 2, 3, (1, 2), (3, 4), (2, 6)]),
    seed=seeds,
    channels=st.sampled_from([1, 3]),
)
def test_periodic_translate_is_torch_roll(batch, steps, seed, channels) -> None:
    x = images((batch, channels, 12, 12), seed)
    sh, sw = (steps, steps) if isinstance(steps, int) else steps
    labels = torch.randint(sh * sw, (batch,), generator=torch.Generator().manual_seed(seed))
    assert torch.equal(EF.periodic_translate(x, labels, steps), per_image(x, labels, translation(steps)))


@FAST
@given(
    batch=st.integers(1, 4),
    height=st.sampled_from([2, 4, 10, 16]),
    width=st.sampled_from([2, 6, 12]),
    seed=seeds,
    order=st.sampled_from(["row-major", "clockwise"]),
)
def test_jigsaw_is_a_reassembly_of_the_tiles(batch, height, width, seed, order) -> None:
    x = images((batch, 2, height, width), seed)
    labels = torch.randint(24, (batch,), generator=torch.Generator().manual_seed(seed))
    expected = per_image(x, labels, lambda img, p: jigsaw_tiles(img, PERMUTATIONS[p], order))
    assert torch.equal(EF.jigsaw(x, labels, tile_order=order), expected)
    subset = [0, 5, 17]
    small = labels % 3
    expected = per_image(x, small, lambda img, p: jigsaw_tiles(img, PERMUTATIONS[subset[p]], order))
    assert torch.equal(EF.jigsaw(x, small, subset, order), expected)


@FEW
@given(
    batch=st.integers(1, 3),
    size=st.integers(8, 20),
    seed=seeds,
    kernels=st.lists(st.sampled_from([1, 3, 5, 7]), min_size=1, max_size=3),
    data=st.data(),
)
def test_blur_levels_match_torchvision(batch, size, seed, kernels, data) -> None:
    x = images((batch, 3, size, size), seed)
    labels = torch.randint(4, (batch,), generator=torch.Generator().manual_seed(seed))
    default = per_image(x, labels, lambda img, k: img if k == 0 else TF.gaussian_blur(img, [(5, 9, 15)[k - 1]] * 2))
    assert (EF.blur_levels(x, labels) - default).abs().max() <= 1e-6
    sigmas = [data.draw(st.floats(0.3, 4.0)) for _ in kernels]
    custom = labels % (len(kernels) + 1)

    def blur(img: Tensor, k: int) -> Tensor:
        return img if k == 0 else TF.gaussian_blur(img, [kernels[k - 1]] * 2, [sigmas[k - 1]] * 2)

    assert (EF.blur_levels(x, custom, kernels, sigmas) - per_image(x, custom, blur)).abs().max() <= 1e-6
    assert torch.equal(EF.blur_levels(x, custom, kernels, sigmas)[custom == 0], x[custom == 0])


@FAST
@given(batch=st.integers(1, 4), seed=seeds, dtype=dtypes)
def test_invert_and_grayscale_match_torchvision(batch: int, seed: int, dtype: torch.dtype) -> None:
    x = images((batch, 3, 5, 4), seed, dtype)
    labels = torch.randint(2, (batch,), generator=torch.Generator().manual_seed(seed))
    assert torch.equal(EF.invert(x, labels), per_image(x, labels, lambda img, v: TF.invert(img) if v else img))
    gray = per_image(x, labels, lambda img, g: TF.rgb_to_grayscale(img, num_output_channels=3) if g else img)
    assert torch.equal(EF.grayscale(x, labels), gray)
    if dtype == torch.float32:
        offsets = [0.5, 1.0, 2.0]
        expected = per_image(x, labels, lambda img, v: torch.tensor(offsets).view(3, 1, 1) - img if v else img)
        assert torch.equal(EF.invert(x, labels, offsets), expected)


def test_invert_keeps_the_sign_of_a_zero_offset() -> None:
    """Offsets 0.0 and -0.0 are different coefficient tables (``-0.0 - 0.0 == -0.0``), in either order."""
    x, one = torch.zeros(1, 1, 1, 1), torch.tensor([1])
    for order in ((0.0, -0.0), (-0.0, 0.0)):
        for offset in order:
            y = EF.invert(x, one, offset)
            assert torch.equal(y.signbit(), torch.tensor(offset).signbit().view(1, 1, 1, 1))


@FEW
@given(batch=st.integers(1, 3), size=st.integers(4, 24), kernel=st.sampled_from([1, 3, 5, 7]), dtype=dtypes, seed=seeds)
def test_gaussian_blur_solarize_and_rotate_per_image(batch, size, kernel, dtype, seed) -> None:
    x = images((batch, 3, size, size), seed, dtype)
    gen = torch.Generator().manual_seed(seed)
    sigma = torch.rand(batch, generator=gen) * 3
    sigma[0] = 0.0  # the delta kernel
    blurred = EF.gaussian_blur(x, sigma, kernel)
    for i in range(batch):
        expected = x[i] if i == 0 else TF.gaussian_blur(x[i], [kernel] * 2, [float(sigma[i])] * 2)
        assert_matches(blurred[i : i + 1], expected[None], entry("gaussian-blur"))
    threshold = float(torch.rand(1, generator=gen))
    t = threshold * 255 if dtype == torch.uint8 else threshold
    assert torch.equal(EF.solarize(x, threshold), torch.stack([TF.solarize(img, t) for img in x]))
    angle = torch.rand(batch, generator=gen) * 720 - 360
    rotated = EF.rotate(x, angle, 0.5)
    fill = 127.5 if dtype == torch.uint8 else 0.5
    for i in range(batch):
        expected = TF.rotate(x[i], float(angle[i]), InterpolationMode.BILINEAR, fill=fill)
        assert_matches(rotated[i : i + 1], expected[None], entry("rotation"))


def test_resized_crop_and_color_jitter_doctest_conventions() -> None:
    x = images((2, 3, 8, 8), seed=16)
    box = torch.tensor([[2.0, 1.0, 4.0, 6.0], [0.0, 0.0, 8.0, 8.0]])
    y = EF.resized_crop(x, box, (5, 5))
    torch.testing.assert_close(y[0], TF.resized_crop(x[0], 2, 1, 4, 6, [5, 5], antialias=True), rtol=0, atol=2e-6)
    torch.testing.assert_close(y[1], TF.resize(x[1], [5, 5], antialias=True), rtol=0, atol=2e-6)
    factors = torch.tensor([[1.2, 0.8, 1.1, 0.05], [0.7, 1.3, 0.0, -0.2]])
    order = torch.tensor([[3, 0, 2, 1], [1, 2, 0, 3]])
    jittered = EF.color_jitter(x, factors, order)
    for i in range(2):
        expected = x[i]
        for k in order[i].tolist():
            expected = TV_JITTER[k](expected, float(factors[i, k]))
        torch.testing.assert_close(jittered[i], expected, rtol=0, atol=1e-6)


NORMALISED_OFFSETS = (
    (1 - 2 * torch.tensor(CIFAR_MEAN, dtype=torch.float64)) / torch.tensor(CIFAR_STD, dtype=torch.float64)
).tolist()


@pytest.mark.parametrize(
    ("op", "make"),
    [
        (lambda x, labels: EF.jigsaw(x, labels, CYCLIC_FOUR, "clockwise"), "jigsaw-c4-clockwise"),
        (lambda x, labels: EF.periodic_translate(x, labels, (2, 4)), "translation-2x4"),
        (lambda x, labels: EF.blur_levels(x, labels, (3, 7), (0.8, 2.0)), "blur-custom"),
        (lambda x, labels: EF.invert(x, labels, NORMALISED_OFFSETS), "invert-normalised"),
        (EF.grayscale, "grayscale"),
        (EF.d4, "d4"),
        (EF.hflip, "hflip"),
        (EF.vflip, "vflip"),
        (EF.rotate90, "rotation90"),
    ],
    ids=["jigsaw", "translate", "blur_levels", "invert", "grayscale", "d4", "hflip", "vflip", "rotate90"],
)
def test_each_family_op_is_its_class_bit_for_bit(op, make: str) -> None:
    e = entry(make)
    f = build(e)
    for layout in (torch.contiguous_format, torch.channels_last):
        x = images(shape_for(e, 4, 16, 16), seed=17).contiguous(memory_format=layout)
        labels = torch.randint(f.num_classes, (4,), generator=torch.Generator().manual_seed(18))
        y = op(x, labels)
        assert torch.equal(y, f.apply(x, labels)) and y.stride() == f.apply(x, labels).stride()
        assert torch.equal(op(x, None), f.apply_all(x))
    if e.id == "jigsaw-c4-clockwise":  # the op's arguments matter: another order or subset differs
        assert not torch.equal(op(x, labels), EF.jigsaw(x, labels, CYCLIC_FOUR, "row-major"))
        assert not torch.equal(op(x, labels), EF.jigsaw(x, labels, KLEIN_FOUR, "clockwise"))


def test_every_op_has_an_example() -> None:
    ops = {"rotate90", "vflip", "hflip", "jigsaw", "blur_levels", "invert", "grayscale", "periodic_translate", "d4"}
    ops |= {"gaussian_blur", "solarize", "rotate", "resized_crop", "color_jitter", "periodic_roll"}
    assert ops <= set(EF.__all__)
    for name in EF.__all__:
        value = getattr(EF, name)
        if callable(value):
            assert "Example:" in (value.__doc__ or ""), name
        else:
            assert name.isupper(), name


def test_parameters_given_as_lists_or_tensors_share_one_cached_table() -> None:
    x, labels = images((2, 3, 8, 8), seed=3), torch.tensor([1, 3])
    expected = EF.jigsaw(x, labels, (0, 7, 16, 23))
    for perms in ([0, 7, 16, 23], torch.tensor([0, 7, 16, 23]), [np.int64(0), 7, 16, 23]):
        assert torch.equal(EF.jigsaw(x, labels, perms), expected)
    blurred = EF.blur_levels(x, torch.tensor([1, 1]), (3,), (0.8,))
    same = EF.blur_levels(x, torch.tensor([1, 1]), torch.tensor([3]), torch.tensor([0.8], dtype=torch.float64))
    assert torch.equal(same, blurred)
    for steps in (np.int64(3), (np.int32(3), 3)):
        assert torch.equal(
            EF.periodic_translate(x[:, :, :6, :6], labels, steps), EF.periodic_translate(x[:, :, :6, :6], labels, 3)
        )


def test_the_plan_cache_keeps_its_newest_entries_and_travels_empty() -> None:
    import copy
    import pickle

    cache = PlanCache(max_entries=2)
    for key in range(3):
        assert cache.get(key, lambda key=key: torch.full((1,), key)).item() == key
    assert len(cache) == 2 and cache.lookup(0) is None and cache.lookup(2) is not None
    assert cache.get(1, lambda: torch.zeros(1)).item() == 1  # kept: not rebuilt
    for clone in (pickle.loads(pickle.dumps(cache)), copy.deepcopy(cache)):
        assert len(clone) == 0 and clone.max_entries == 2


def test_rotate_with_an_integer_angle_is_a_whole_number_of_degrees_only_as_a_float() -> None:
    """A float angle tensor rotates by degrees; 90.0 is a quarter turn (a non-float tensor is the deprecated
    quarter-turn call, tested with the aliases)."""
    x = images((1, 3, 8, 8), seed=19)
    torch.testing.assert_close(EF.rotate(x, torch.tensor([90.0])), torch.rot90(x, 1, (-2, -1)), rtol=0, atol=1e-5)
    assert not torch.allclose(EF.rotate(x, torch.tensor([1.0])), torch.rot90(x, 1, (-2, -1)), atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_a_non_finite_pixel_outside_the_crop_box_is_not_seen(dtype: torch.dtype, requires_grad: bool) -> None:
    """The batched crop weighs the pixels outside the box 0; 0 x NaN would be NaN: it must stay torchvision's result."""
    x = torch.rand(2, 3, 16, 16, dtype=dtype)
    x[:, :, 0, 0], x[:, 1, 15, 15], x[:, 2, 1, 14] = float("nan"), float("inf"), float("-inf")
    x.requires_grad_(requires_grad)
    box = torch.tensor([[2.0, 3.0, 8.0, 9.0], [4.0, 4.0, 10.0, 6.0]], dtype=dtype)
    y = EF.resized_crop(x, box, (8, 8))
    assert torch.isfinite(y).all()
    for b in range(2):
        top, left, h, w = (int(v) for v in box[b])
        expected = TF.resized_crop(x[b].detach(), top, left, h, w, [8, 8], antialias=True)
        torch.testing.assert_close(y[b].detach(), expected, atol=1e-6, rtol=0)


def _spread(y: torch.Tensor) -> float:
    """The standard deviation (pixels) of the blur of a vertical 0-to-255 edge: of the derivative of the edge's
    profile along a row (a step keeps every level, where a blurred single pixel would round to 0 in uint8)."""
    profile = y.double()[y.shape[0] // 2]
    weights = profile.diff()
    weights = weights / weights.sum()
    offsets = torch.arange(len(weights), dtype=torch.float64)
    mean = (weights * offsets).sum()
    return float((weights * (offsets - mean) ** 2).sum().sqrt())


@pytest.mark.parametrize("px", [32, 224])
@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_the_blur_sized_by_sigma_blurs_as_pillows_radius_at_any_size(px: int, sigma: float) -> None:
    """``kernel_size="sigma"`` (the recipes' blur): an edge spreads as with Pillow's
    ``GaussianBlur(radius=sigma)`` (lightly's and solo-learn's) within 5 %, at CIFAR and ImageNet sizes; SimCLR's
    10 %-of-the-side rule caps it at 32 px."""
    from PIL import Image, ImageFilter

    impulse = torch.zeros(1, 1, px, px, dtype=torch.uint8)
    impulse[..., px // 2 :] = 255  # an edge
    pil = torch.from_numpy(
        np.array(Image.fromarray(impulse[0, 0].numpy()).filter(ImageFilter.GaussianBlur(radius=sigma)))
    ).float()
    params = BlurParams(applied=torch.tensor([True]), sigma=torch.tensor([sigma]))
    ours = RandomGaussianBlur(sigma=(0.1, 2.0), kernel_size="sigma").apply(impulse.float(), params)[0, 0]
    assert RandomGaussianBlur(kernel_size="sigma").kernel_size == 13
    assert abs(_spread(ours) - _spread(pil)) < 0.05 * _spread(pil)
    if px == 32:
        capped = RandomGaussianBlur(sigma=(0.1, 2.0)).apply(impulse.float(), params)[0, 0]
        assert _spread(capped) < 0.85 * _spread(pil)
    assert "kernel_size='sigma'" in repr(RandomGaussianBlur(kernel_size="sigma"))
    with pytest.raises(ValueError, match="'sigma' \\(Pillow's blur by radius\\)"):
        RandomGaussianBlur(kernel_size="radius")  # type: ignore[arg-type]
