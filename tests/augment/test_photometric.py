"""The photometric augmentations (colour jitter, grayscale, Gaussian blur, solarize) against torchvision.

Oracles: ``torchvision.transforms.v2.functional`` per image with the same parameters, float32 and uint8, CPU.
Tolerances:

- colour jitter: float32 ``atol=1e-6``; uint8 within 1 on at most 1 % of the values. The ops repeat torchvision's
  arithmetic step for step (its blend through ``addcmul``, its HSV conversions ported): on x86 CPUs brightness,
  saturation and hue are bit-identical and contrast is within one float32 ulp (the batch's per-image mean luma is
  summed in another order than one image's); the tolerance also covers vector units that fuse a multiply-add where
  torchvision's kernel does not, and a uint8 value that such an ulp moves across an integer;
- grayscale and solarize: exact (the same operations);
- Gaussian blur, float32: ``atol=2e-6`` (two 1-D passes against torchvision's one 2-D pass: the same kernel, the
  products summed in another order); uint8: within 1 on at most 1 % of the values (a sum that lands near a half may
  round the other way).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from essl_aug.augment.base import Augmentation, Params, select
from essl_aug.augment.blur import BlurParams, GaussianBlur, simclr_kernel_size
from essl_aug.augment.color import IDENTITY_FACTORS, ColorJitter, ColorJitterParams, jitter, jitter_per_group
from essl_aug.augment.grayscale import GrayscaleParams, RandomGrayscale
from essl_aug.augment.solarize import Solarize, SolarizeParams

FAST = settings(deadline=None, max_examples=20, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(deadline=None, max_examples=10, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**31 - 1)
dtypes = st.sampled_from([torch.float32, torch.uint8])
TV_OPS: list[Callable[[torch.Tensor, float], torch.Tensor]] = [
    TF.adjust_brightness,
    TF.adjust_contrast,
    TF.adjust_saturation,
    TF.adjust_hue,
]


def images(batch: int, channels: int, height: int, width: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    x = torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed))
    return (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)


def assert_matches(y: torch.Tensor, ref: torch.Tensor, atol: float = 0.0, uint8_fraction: float = 0.0) -> None:
    """``y`` and ``ref`` agree within ``atol`` (floats) or within 1 on at most ``uint8_fraction`` of values (uint8)."""
    assert y.dtype == ref.dtype and y.shape == ref.shape
    if y.dtype == torch.uint8:
        diff = (y.int() - ref.int()).abs()
        assert int(diff.max()) <= (1 if uint8_fraction > 0 else 0)
        assert float((diff > 0).float().mean()) <= uint8_fraction
    else:
        torch.testing.assert_close(y, ref, rtol=0, atol=atol)


def jitter_reference(x: torch.Tensor, params: ColorJitterParams) -> torch.Tensor:
    """torchvision, image by image: ``adjust_*`` in the image's order, skipping identity factors as ``ColorJitter``."""
    out = []
    for i in range(x.shape[0]):
        img = x[i]
        if bool(params.applied[i]):
            for k in params.order[i].tolist():
                factor = float(params.factors[i, k])
                if factor != IDENTITY_FACTORS[k]:
                    img = TV_OPS[k](img, factor)
        out.append(img)
    return torch.stack(out)


def jitter_batched(x: torch.Tensor, params: ColorJitterParams) -> torch.Tensor:
    """The batched form of ``ColorJitter.apply`` (the one GPU, autograd and ``torch.compile`` calls take)."""
    return select(params.applied, jitter(x, params.factors, params.order), x)


def jitter_grouped(x: torch.Tensor, params: ColorJitterParams) -> torch.Tensor:
    """The eager CPU form of ``ColorJitter.apply`` (images grouped by the ops they go through)."""
    return jitter_per_group(x, params.factors, params.order, params.applied)


JITTER_FORMS = (jitter_batched, jitter_grouped)


def all_augmentations() -> list[Augmentation[Any]]:
    return [ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.5), RandomGrayscale(0.5), GaussianBlur(p=0.5), Solarize(p=0.5)]


AUGMENTATIONS = pytest.mark.parametrize("aug", all_augmentations(), ids=lambda a: type(a).__name__)


# -- oracles -------------------------------------------------------------------------------------------------------


@FAST
@given(
    batch=st.integers(1, 4),
    channels=st.sampled_from([1, 3]),
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    amounts=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 0.5)),
    p=st.sampled_from([0.5, 1.0]),
    dtype=dtypes,
    seed=seeds,
)
def test_color_jitter_matches_torchvision(
    batch: int,
    channels: int,
    height: int,
    width: int,
    amounts: tuple[float, float, float, float],
    p: float,
    dtype: torch.dtype,
    seed: int,
) -> None:
    b, c, s, h = amounts
    aug = ColorJitter(b, c, s, h, p=p)
    x = images(batch, channels, height, width, dtype, seed)
    params = aug.sample(x.shape, generator=torch.Generator().manual_seed(seed + 1))
    ref = jitter_reference(x, params)
    assert_matches(aug.apply(x, params), ref, atol=1e-6, uint8_fraction=0.01)
    for form in JITTER_FORMS:
        assert_matches(form(x, params), ref, atol=1e-6, uint8_fraction=0.01)


@FAST
@given(
    op=st.integers(0, 3),
    factor=st.floats(0.0, 3.0),
    hue=st.floats(-0.5, 0.5),
    channels=st.sampled_from([1, 3]),
    dtype=dtypes,
    seed=seeds,
)
def test_each_jitter_op_matches_torchvision_over_its_whole_range(
    op: int, factor: float, hue: float, channels: int, dtype: torch.dtype, seed: int
) -> None:
    """One op per image, factors beyond ``ColorJitter``'s defaults (0 turns saturation gray, 3 clamps)."""
    x = images(3, channels, 5, 6, dtype, seed)
    value = hue if op == 3 else factor
    factors = torch.tensor(IDENTITY_FACTORS).repeat(3, 1)
    factors[:, op] = value
    order = torch.tensor([op] + [k for k in range(4) if k != op]).repeat(3, 1)
    params = ColorJitterParams(applied=torch.tensor([True, False, True]), factors=factors, order=order)
    for y in (ColorJitter().apply(x, params), *(form(x, params) for form in JITTER_FORMS)):
        for i in (0, 2):
            ref = x[i] if value == IDENTITY_FACTORS[op] else TV_OPS[op](x[i], float(factors[i, op]))
            assert_matches(y[i], ref, atol=1e-6, uint8_fraction=0.01)
        assert torch.equal(y[1], x[1])


@FAST
@given(batch=st.integers(1, 5), height=st.integers(1, 7), width=st.integers(1, 7), dtype=dtypes, seed=seeds)
def test_grayscale_matches_torchvision(batch: int, height: int, width: int, dtype: torch.dtype, seed: int) -> None:
    aug = RandomGrayscale(p=0.5)
    x = images(batch, 3, height, width, dtype, seed)
    params = aug.sample(x.shape, generator=torch.Generator().manual_seed(seed))
    y = aug.apply(x, params)
    for i in range(batch):
        ref = TF.rgb_to_grayscale(x[i], num_output_channels=3) if bool(params.applied[i]) else x[i]
        assert torch.equal(y[i], ref)
    gray = images(batch, 1, height, width, dtype, seed)  # already gray: unchanged, as rgb_to_grayscale(img, 1)
    assert torch.equal(aug.apply(gray, aug.sample(gray.shape)), gray)


@FEW
@given(
    batch=st.integers(1, 3),
    height=st.integers(12, 44),
    width=st.integers(12, 44),
    sigma=st.tuples(st.floats(0.05, 3.0), st.floats(0.0, 2.0)),
    kernel_size=st.sampled_from([None, 1, 3, 7, 23]),
    dtype=dtypes,
    seed=seeds,
)
def test_blur_matches_torchvision_gaussian_blur(
    batch: int,
    height: int,
    width: int,
    sigma: tuple[float, float],
    kernel_size: int | None,
    dtype: torch.dtype,
    seed: int,
) -> None:
    aug = GaussianBlur(sigma=(sigma[0], sigma[0] + sigma[1]), kernel_size=kernel_size, p=0.7)
    x = images(batch, 3, height, width, dtype, seed)
    params = aug.sample(x.shape, generator=torch.Generator().manual_seed(seed))
    y = aug.apply(x, params)
    k = kernel_size or simclr_kernel_size(height, width)
    for i in range(batch):
        if bool(params.applied[i]):
            s = float(params.sigma[i])
            assert_matches(y[i], TF.gaussian_blur(x[i], [k, k], [s, s]), atol=2e-6, uint8_fraction=0.01)
        else:
            assert torch.equal(y[i], x[i])


@FAST
@given(
    batch=st.integers(1, 5),
    threshold=st.floats(0.0, 1.0),
    channels=st.sampled_from([1, 3]),
    dtype=dtypes,
    seed=seeds,
)
def test_solarize_matches_torchvision(
    batch: int, threshold: float, channels: int, dtype: torch.dtype, seed: int
) -> None:
    aug = Solarize(threshold, p=0.5)
    x = images(batch, channels, 4, 5, dtype, seed)
    params = aug.sample(x.shape, generator=torch.Generator().manual_seed(seed))
    y = aug.apply(x, params)
    t = threshold * 255 if dtype == torch.uint8 else threshold
    for i in range(batch):
        assert torch.equal(y[i], TF.solarize(x[i], t) if bool(params.applied[i]) else x[i])


def test_kernel_size_rule_is_simclr_ten_percent_odd() -> None:
    assert [simclr_kernel_size(s, s) for s in (224, 96, 64, 40, 32, 19, 8)] == [23, 9, 7, 5, 3, 3, 3]
    assert simclr_kernel_size(224, 64) == 7  # the shorter side
    assert GaussianBlur(kernel_size=5).kernel_size_for(224, 224) == 5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.uint8])
def test_blur_with_sigma_zero_keeps_the_image(dtype: torch.dtype) -> None:
    """sigma 0 is the delta kernel (the limit), never 0 / 0, whatever the kernel size."""
    x = images(2, 3, 30, 30, dtype, 13)
    for k in (3, 23, 29):
        params = BlurParams(applied=torch.tensor([True, True]), sigma=torch.tensor([0.0, 0.0]))
        assert torch.equal(GaussianBlur(kernel_size=k).apply(x, params), x)


def test_solarize_uint8_threshold_is_pillow_128() -> None:
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    y = Solarize(0.5, p=1.0).apply(x, SolarizeParams(torch.tensor([True])))
    flat = y.flatten()
    assert torch.equal(flat[:128], torch.arange(128, dtype=torch.uint8))
    assert torch.equal(flat[128:], 255 - torch.arange(128, 256).to(torch.uint8))


# -- properties of every augmentation ------------------------------------------------------------------------------


@AUGMENTATIONS
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8])
def test_dtype_shape_kept_and_input_not_mutated(aug: Augmentation[Any], dtype: torch.dtype) -> None:
    x = images(6, 3, 9, 10, dtype, 0)
    before = x.clone()
    params = aug.sample(x.shape, generator=torch.Generator().manual_seed(1))
    y = aug.apply(x, params)
    assert y.dtype == dtype and y.shape == x.shape and y.data_ptr() != x.data_ptr()
    assert torch.equal(x, before)


@AUGMENTATIONS
def test_rows_not_applied_are_bit_identical(aug: Augmentation[Any]) -> None:
    """Every bit of a row with ``applied=False`` is kept, even NaN payloads and -0.0 next to transformed rows."""
    x = images(6, 3, 9, 10, torch.float32, 2)
    drawn = type(aug)(p=1.0).sample(x.shape, generator=torch.Generator().manual_seed(3))  # every row drawn
    params = dataclasses.replace(drawn, applied=torch.tensor([True, False, True, False, True, False]))
    kept = ~params.applied
    bits = x.view(torch.int32)
    bits[kept, 0, 0, 0] = 0x7FC0_1234  # a NaN with a payload
    bits[kept, 1, 0, 1] = -(2**31)  # -0.0
    y = aug.apply(x, params)
    assert torch.equal(y[kept].view(torch.int32), x[kept].view(torch.int32))
    assert torch.isfinite(y[params.applied]).all()
    assert not torch.equal(y[params.applied], x[params.applied])


@AUGMENTATIONS
def test_gradient_flows_and_is_identity_where_not_applied(aug: Augmentation[Any]) -> None:
    x = images(4, 3, 9, 10, torch.float32, 4).requires_grad_(True)
    drawn = type(aug)(p=1.0).sample(x.shape, generator=torch.Generator().manual_seed(5))  # every row drawn
    params = dataclasses.replace(drawn, applied=torch.tensor([True, False, True, False]))
    aug.apply(x, params).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert torch.equal(x.grad[1], torch.ones_like(x.grad[1]))
    assert torch.equal(x.grad[3], torch.ones_like(x.grad[3]))


@AUGMENTATIONS
def test_sampling_is_reproducible_with_a_generator(aug: Augmentation[Any]) -> None:
    def draw(seed: int) -> Params:
        return aug.sample((64, 3, 8, 8), "cpu", torch.Generator().manual_seed(seed))

    a, b, c = draw(7), draw(7), draw(8)
    for name, value in vars(a).items():
        assert torch.equal(value, getattr(b, name))
        assert value.shape[0] == 64
    assert not torch.equal(a.applied, c.applied)


@AUGMENTATIONS
def test_applied_follows_p(aug: Augmentation[Any]) -> None:
    applied = aug.sample((4000, 3, 8, 8), generator=torch.Generator().manual_seed(0)).applied
    assert applied.dtype == torch.bool and applied.shape == (4000,)
    assert abs(float(applied.float().mean()) - aug.p) < 0.03  # 4.2 standard deviations at p = 0.5
    always = type(aug)(p=1.0).sample((50, 3, 8, 8)).applied
    never = type(aug)(p=0.0).sample((50, 3, 8, 8)).applied
    assert bool(always.all()) and not bool(never.any())


@AUGMENTATIONS
def test_call_draws_then_applies(aug: Augmentation[Any]) -> None:
    x = images(5, 3, 9, 10, torch.float32, 6)
    y, params = aug(x, torch.Generator().manual_seed(9))
    assert torch.equal(params.applied, aug.sample(x.shape, generator=torch.Generator().manual_seed(9)).applied)
    assert torch.equal(y, aug.apply(x, params))


@AUGMENTATIONS
def test_target_and_relative_shapes_follow_the_spec(aug: Augmentation[Any]) -> None:
    a = aug.sample((5, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    b = aug.sample((5, 3, 8, 8), generator=torch.Generator().manual_seed(1))
    for spec, value in ((aug.target_spec, aug.target(a)), (aug.relative_spec, aug.relative(a, b))):
        if spec.kind == "classification":
            assert value.shape == (5,) and value.dtype == torch.int64
            assert bool(((value >= 0) & (value < spec.size)).all())
        else:
            assert value.shape == (5, spec.size) and value.dtype == torch.float32


@AUGMENTATIONS
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_apply_compiles_without_graph_breaks(aug: Augmentation[Any], dtype: torch.dtype) -> None:
    """Slow-ok: one small trace per augmentation and dtype (``aot_eager``, as the core's compile tests)."""
    torch._dynamo.reset()
    x = images(4, 3, 8, 8, dtype, 10)
    params = aug.sample(x.shape, generator=torch.Generator().manual_seed(11))
    compiled = torch.compile(aug.apply, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x, params), aug.apply(x, params))
    torch._dynamo.reset()


# -- colour jitter parameters --------------------------------------------------------------------------------------


@FAST
@given(
    amounts=st.tuples(st.floats(0.0, 2.0), st.floats(0.0, 2.0), st.floats(0.0, 2.0), st.floats(0.0, 0.5)),
    seed=seeds,
)
def test_jitter_factors_in_range_and_order_a_permutation(amounts: tuple[float, float, float, float], seed: int) -> None:
    b, c, s, h = amounts
    aug = ColorJitter(b, c, s, h, p=0.6)
    params = aug.sample((200, 3, 4, 4), generator=torch.Generator().manual_seed(seed))
    applied = params.applied
    assert params.factors.shape == (200, 4) and params.factors.dtype == torch.float32
    assert params.order.shape == (200, 4) and params.order.dtype == torch.int64
    for k, (lo, hi) in enumerate(aug.ranges):
        f = params.factors[applied, k]
        assert bool((f >= torch.tensor(lo, dtype=torch.float32)).all())
        assert bool((f <= torch.tensor(hi, dtype=torch.float32)).all())
    assert torch.equal(params.order.sort(dim=1).values, torch.arange(4).expand(200, 4))
    assert torch.equal(params.factors[~applied], torch.tensor(IDENTITY_FACTORS).expand(int((~applied).sum()), 4))
    assert torch.equal(params.order[~applied], torch.arange(4).expand(int((~applied).sum()), 4))


def test_jitter_ranges_follow_torchvision() -> None:
    aug = ColorJitter(brightness=0.4, contrast=1.5, saturation=(0.2, 3.0), hue=(-0.1, 0.3))
    assert aug.ranges == ((0.6, 1.4), (0.0, 2.5), (0.2, 3.0), (-0.1, 0.3))


def test_jitter_orders_are_uniform_over_the_24_permutations() -> None:
    """Chi-square of 24,000 per-image orders against the uniform law (a fixed seed: the test is deterministic)."""
    order = ColorJitter(p=1.0).sample((24_000, 3, 4, 4), generator=torch.Generator().manual_seed(0)).order
    codes = (order * torch.tensor([64, 16, 4, 1])).sum(dim=1)
    counts = torch.bincount(codes, minlength=256)
    counts = counts[counts > 0]
    assert counts.numel() == 24
    chi2 = float(((counts - 1000.0) ** 2 / 1000.0).sum())
    assert chi2 < 49.7  # the 0.999 quantile of chi-square with 23 degrees of freedom


def test_jitter_factors_are_uniform() -> None:
    """Kolmogorov-Smirnov distance of 20,000 brightness factors against U(0.6, 1.4)."""
    f = ColorJitter(p=1.0).sample((20_000, 3, 4, 4), generator=torch.Generator().manual_seed(1)).factors[:, 0]
    u = ((f.double() - 0.6) / 0.8).sort().values
    n = u.numel()
    ks = float(torch.maximum(torch.arange(1, n + 1) / n - u, u - torch.arange(n) / n).max())
    assert ks < 1.95 / n**0.5  # the 0.999 quantile of the KS statistic


def test_jitter_zero_range_skips_the_op() -> None:
    """hue=0 (a zero-width range) leaves the image as torchvision's ColorJitter without hue does, bit for bit."""
    x = images(4, 3, 6, 6, torch.float32, 12)
    params = ColorJitter(0, 0, 0, 0, p=1.0).sample(x.shape)
    assert torch.equal(ColorJitter().apply(x, params), x)


# -- targets (AugSelf's normalisation), hand-computed --------------------------------------------------------------


def test_jitter_target_and_relative_by_hand() -> None:
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
    assert aug.target_spec.names == ("brightness", "contrast", "saturation", "hue")


def test_blur_target_and_relative_by_hand() -> None:
    aug = GaussianBlur()
    a = BlurParams(applied=torch.tensor([True, False, True]), sigma=torch.tensor([1.5, 0.0, 0.1]))
    b = BlurParams(applied=torch.tensor([False, True, True]), sigma=torch.tensor([0.0, 2.0, 0.6]))
    torch.testing.assert_close(aug.target(a), torch.tensor([[1.5], [0.0], [0.1]]))
    torch.testing.assert_close(aug.relative(a, b), torch.tensor([[1.5], [-2.0], [-0.5]]))


def test_solarize_target_and_relative_by_hand() -> None:
    aug = Solarize(threshold=0.25)
    a = SolarizeParams(applied=torch.tensor([True, False, True, False]))
    b = SolarizeParams(applied=torch.tensor([True, True, False, False]))
    assert aug.target(a).flatten().tolist() == [0.25, 1.0, 0.25, 1.0]
    assert aug.relative(a, b).flatten().tolist() == [0.0, 0.75, -0.75, 0.0]


def test_grayscale_target_and_relative_by_hand() -> None:
    aug = RandomGrayscale()
    a = GrayscaleParams(applied=torch.tensor([True, False, True, False]))
    b = GrayscaleParams(applied=torch.tensor([True, True, False, False]))
    assert aug.target(a).tolist() == [1, 0, 1, 0]
    assert aug.relative(a, b).tolist() == [1, 0, 0, 1]  # AugSelf's flip rule: 1 where the views agree


# -- errors --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: ColorJitter(p=1.5), "`p`"),
        (lambda: ColorJitter(brightness=-0.1), "`brightness`"),
        (lambda: ColorJitter(contrast=(1.5, 0.5)), "`contrast`"),
        (lambda: ColorJitter(saturation=(0.5, 1.0, 2.0)), "`saturation`"),
        (lambda: ColorJitter(hue=0.6), "`hue`"),
        (lambda: ColorJitter(hue=(-0.7, 0.1)), "`hue`"),
        (lambda: RandomGrayscale(p=-0.1), "`p`"),
        (lambda: GaussianBlur(sigma=(0.0, 1.0)), "`sigma`"),
        (lambda: GaussianBlur(sigma=(2.0, 1.0)), "`sigma`"),
        (lambda: GaussianBlur(kernel_size=4), "`kernel_size`"),
        (lambda: GaussianBlur(kernel_size=0), "`kernel_size`"),
        (lambda: Solarize(threshold=1.5), "`threshold`"),
        (lambda: Solarize(p=2.0), "`p`"),
    ],
)
def test_bad_arguments_name_the_argument(build: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_wrong_argument_types_name_the_argument() -> None:
    with pytest.raises(TypeError, match="`hue`"):
        ColorJitter(hue=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`sigma`"):
        GaussianBlur(sigma=None)  # type: ignore[arg-type]


@AUGMENTATIONS
def test_apply_errors_name_the_argument(aug: Augmentation[Any]) -> None:
    x = images(4, 3, 8, 8, torch.float32, 0)
    params = aug.sample(x.shape)
    with pytest.raises(ValueError, match=r"`params` was drawn for B=4 images, `x` has 3"):
        aug.apply(x[:3], params)
    with pytest.raises(ValueError, match="4 dimensions"):
        aug.apply(x[0], params)
    with pytest.raises(TypeError, match="dtype int32"):
        aug.apply(x.to(torch.int32), params)
    with pytest.raises(TypeError, match="`params` must be a"):
        aug.apply(x, Params(params.applied))
    with pytest.raises(ValueError, match="`shape`"):
        aug.sample((4, 8, 8))
    with pytest.raises(ValueError, match="`a` and `b`"):
        aug.relative(params, aug.sample((3, 3, 8, 8)))


@pytest.mark.parametrize("aug", [ColorJitter(), RandomGrayscale()], ids=lambda a: type(a).__name__)
def test_jitter_and_grayscale_need_one_or_three_channels(aug: Augmentation[Any]) -> None:
    x = images(2, 4, 6, 6, torch.float32, 0)
    with pytest.raises(ValueError, match=r"`x` has 4"):
        aug.apply(x, aug.sample(x.shape))


def test_blur_needs_images_longer_than_the_kernel_radius() -> None:
    aug = GaussianBlur(kernel_size=9, p=1.0)
    x = images(2, 3, 4, 16, torch.float32, 0)
    with pytest.raises(ValueError, match=r"longer than 4 pixels.*`kernel_size`"):
        aug.apply(x, aug.sample(x.shape))
