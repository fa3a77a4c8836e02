"""The eager CPU forms of the resized crop and the colour jitter against their batched forms.

``apply`` takes the eager CPU form (:func:`essl_aug._cpu.enabled`: a CPU tensor, no autograd, not under
``torch.compile``) and the batched form otherwise. Tolerances:

- crop: float32 ``atol=2e-6``, float64 ``1e-12``, float16 ``1e-3``, bfloat16 ``8e-3`` (one rounding to the dtype
  of two float32 results that differ by a few units of 1e-7), uint8 within 1 (the eager form is PyTorch's native
  uint8 kernel, fixed-point; the batched form rounds a float32 resize once);
- colour jitter: exact (the same arithmetic per op and per image in both forms).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from essl_aug.augment import color as color_module
from essl_aug.augment import crop as crop_module
from essl_aug.augment.base import select
from essl_aug.augment.color import ColorJitter, ColorJitterParams, jitter, jitter_per_group
from essl_aug.augment.crop import CropParams, RandomResizedCrop, resized_crops, resized_crops_per_image

FAST = settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
CROP_TOLERANCE = {torch.float32: 2e-6, torch.float64: 1e-12, torch.float16: 1e-3, torch.bfloat16: 8e-3}


def images(batch: int, channels: int, height: int, width: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    x = torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed))
    return (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)


def crop_forms(crop: RandomResizedCrop, x: torch.Tensor, params: CropParams) -> tuple[torch.Tensor, torch.Tensor]:
    """The batched and the per-image form of ``crop.apply(x, params)``."""
    args = (x, params.box, params.applied, crop.size, crop.antialias)
    return resized_crops(*args), resized_crops_per_image(*args)


def jitter_forms(x: torch.Tensor, params: ColorJitterParams) -> tuple[torch.Tensor, torch.Tensor]:
    """The batched and the grouped form of ``ColorJitter.apply(x, params)``."""
    batched = select(params.applied, jitter(x, params.factors, params.order), x)
    return batched, jitter_per_group(x, params.factors, params.order, params.applied)


def _refuse(*args: object) -> torch.Tensor:
    raise AssertionError("the eager CPU form was called")


# -- crop ----------------------------------------------------------------------------------------------------------


@FAST
@given(
    batch=st.integers(1, 5),
    height=st.integers(1, 24),
    width=st.integers(1, 24),
    size=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    antialias=st.booleans(),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8]),
    seed=st.integers(0, 2**31 - 1),
)
def test_crop_forms_agree(
    batch: int,
    height: int,
    width: int,
    size: tuple[int, int],
    antialias: bool,
    dtype: torch.dtype,
    seed: int,
) -> None:
    crop = RandomResizedCrop(size, scale=(0.05, 1.0), antialias=antialias)
    x = images(batch, 3, height, width, dtype, seed)
    params = crop.sample(x.shape, generator=torch.Generator().manual_seed(seed))
    applied = torch.rand(batch, generator=torch.Generator().manual_seed(seed + 1)) < 0.7
    params = dataclasses.replace(params, applied=applied)
    batched, per_image = crop_forms(crop, x, params)
    assert per_image.dtype == batched.dtype == dtype and per_image.shape == batched.shape == (batch, 3, *size)
    if dtype == torch.uint8:
        assert int((batched.int() - per_image.int()).abs().max()) <= 1
    else:
        torch.testing.assert_close(per_image, batched, rtol=0, atol=CROP_TOLERANCE[dtype])
    if size == (height, width):  # rows not applied: the image itself in both forms
        assert torch.equal(per_image[~applied], x[~applied]) and torch.equal(batched[~applied], x[~applied])


def test_crop_apply_takes_the_per_image_form_in_eager_cpu_calls_only() -> None:
    """uint8 tells the forms apart (the native uint8 kernel against a float32 resize rounded once)."""
    crop = RandomResizedCrop(12)
    x = images(8, 3, 30, 26, torch.uint8, 0)
    params = crop.sample(x.shape, generator=torch.Generator().manual_seed(0))
    batched, per_image = crop_forms(crop, x, params)
    assert not torch.equal(batched, per_image)
    assert torch.equal(crop.apply(x, params), per_image)
    xf = x.float().div(255).requires_grad_(True)  # under autograd: the batched form
    assert torch.equal(crop.apply(xf, params), resized_crops(xf, params.box, params.applied, crop.size, True))
    with torch.no_grad():
        assert torch.equal(crop.apply(xf, params), crop_forms(crop, xf.detach(), params)[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_crop_compile_traces_the_batched_form(dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slow-ok: one small trace per dtype; ``torch.compile`` keeps the batched form (no host reads)."""
    torch._dynamo.reset()
    crop = RandomResizedCrop(6)
    x = images(4, 3, 11, 9, dtype, 1)
    params = crop.sample(x.shape, generator=torch.Generator().manual_seed(1))
    batched, _ = crop_forms(crop, x, params)
    monkeypatch.setattr(crop_module, "resized_crops_per_image", _refuse)
    compiled = torch.compile(crop.apply, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x, params), batched)
    torch._dynamo.reset()


# -- colour jitter -------------------------------------------------------------------------------------------------


@FAST
@given(
    batch=st.integers(1, 40),
    channels=st.sampled_from([1, 3]),
    side=st.integers(1, 10),
    amounts=st.tuples(*(st.sampled_from([0.0, 0.4, 1.5]) for _ in range(3)), st.sampled_from([0.0, 0.1, 0.5])),
    p=st.sampled_from([0.0, 0.5, 1.0]),
    chunk=st.sampled_from([1, 7, 2**17]),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8]),
    seed=st.integers(0, 2**31 - 1),
)
def test_jitter_forms_give_the_same_bits(
    batch: int,
    channels: int,
    side: int,
    amounts: tuple[float, float, float, float],
    p: float,
    chunk: int,
    dtype: torch.dtype,
    seed: int,
) -> None:
    """Every dtype, gray and RGB, identity ranges, rows not applied, chunks of one image to the whole batch."""
    x = images(batch, channels, side, side + 1, dtype, seed)
    b, c, s, h = amounts
    params = ColorJitter(b, c, s, h, p=p).sample(x.shape, generator=torch.Generator().manual_seed(seed))
    before = x.clone()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(color_module, "CHUNK_PIXELS", chunk)
        batched, grouped = jitter_forms(x, params)
    assert torch.equal(x, before)
    assert grouped.dtype == dtype and grouped.data_ptr() != x.data_ptr()
    assert torch.equal(grouped.view(torch.uint8), batched.view(torch.uint8))


def test_jitter_apply_takes_the_grouped_form_in_eager_cpu_calls_only(monkeypatch: pytest.MonkeyPatch) -> None:
    aug = ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8)
    x = images(16, 3, 8, 8, torch.float32, 2)
    params = aug.sample(x.shape, generator=torch.Generator().manual_seed(2))
    batched, grouped = jitter_forms(x, params)
    calls: list[int] = []

    def counted(*args: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return jitter_per_group(*args)

    monkeypatch.setattr(color_module, "jitter_per_group", counted)
    assert torch.equal(aug.apply(x, params), grouped) and calls == [1]
    xg = x.clone().requires_grad_(True)  # under autograd: the batched form
    assert torch.equal(aug.apply(xg, params), batched) and calls == [1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_jitter_compile_traces_the_batched_form(dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slow-ok: one small trace per dtype; ``torch.compile`` keeps the batched form (no host reads)."""
    torch._dynamo.reset()
    aug = ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8)
    x = images(6, 3, 8, 8, dtype, 3)
    params = aug.sample(x.shape, generator=torch.Generator().manual_seed(3))
    batched, _ = jitter_forms(x, params)
    monkeypatch.setattr(color_module, "jitter_per_group", _refuse)
    compiled = torch.compile(aug.apply, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x, params), batched)
    torch._dynamo.reset()
