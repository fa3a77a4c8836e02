"""On a CUDA device: parameters and results stay on the input's device, match the CPU, and the hot path never
synchronises with the host. Skipped without a CUDA device (the reason is given)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import torch

import essl_aug
from essl_aug.transforms import Family
from tests.transforms.catalogue import ENTRIES, FAMILIES, Entry, bits, build, entry, images, shape_for

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available())")

DEVICE = "cuda"


@pytest.fixture(autouse=True)
def _full_float32() -> Iterator[None]:
    """Convolutions and matrix products in float32 (not TF32), so the device agrees with the CPU to float rounding."""
    previous = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = previous


@contextlib.contextmanager
def no_host_sync(device: str) -> Iterator[None]:
    """Turn any synchronising CUDA call into an error inside the block."""
    if torch.device(device).type != "cuda":
        yield
        return
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)


def synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def fields(params: Any) -> dict[str, torch.Tensor]:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


def transforms_of(f: Family, device: str) -> list[essl_aug.EquivariantTransform]:
    out = [
        essl_aug.EquivariantTransform(f),
        essl_aug.EquivariantTransform(f, balanced=True),
        essl_aug.EquivariantTransform(f, mode="all"),
        essl_aug.EquivariantTransform(f, generator=torch.Generator(device=device).manual_seed(0)),
        essl_aug.EquivariantTransform(f, balanced=True, generator=torch.Generator().manual_seed(0)),
    ]
    if f.num_classes > 2:
        out.append(essl_aug.EquivariantTransform(f, mode="all", num_per_batch=2))
    return out


def check_results_stay_on_the_device(e: Entry, device: str) -> None:
    t = build(e)
    x = images(shape_for(e, 4, 16, 16), seed=0).to(device)
    for generator in (None, torch.Generator(device=device).manual_seed(0), torch.Generator().manual_seed(0)):
        params = t.sample(x.shape, x.device, generator)
        assert {v.device for v in fields(params).values()} == {x.device}
        y = t.apply(x, params)
        assert y.device == x.device
        expected = t.apply(x.cpu(), params.to("cpu"))
        torch.testing.assert_close(y.cpu(), expected, rtol=0, atol=0 if e.pixel_move else 1e-5)
        y, params = t(x, generator)
        assert y.device == x.device and params.applied.device == x.device
    if isinstance(t, Family):
        assert t.apply_all(x).device == x.device
        for transform in transforms_of(t, device):
            views, labels = transform(x)
            assert views.device == x.device and labels.device == x.device and labels.dtype == torch.long


def check_no_host_sync(e: Entry, device: str) -> None:
    t = build(e)
    x = images(shape_for(e, 4, 16, 16), seed=1).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    params = t.sample(x.shape, x.device, generator)

    def hot_path() -> None:
        t.apply(x, params)
        t(x, generator)
        t(x)
        if isinstance(t, Family):
            t.apply(x, params.labels)
            t.apply_all(x)
            for transform in transforms:
                transform(x)

    transforms = transforms_of(t, device) if isinstance(t, Family) else []
    hot_path()  # the first call builds the per-device caches (tables, kernels, offsets)
    synchronize(device)
    with no_host_sync(device):
        hot_path()
        with essl_aug.fast_forms():
            hot_path()
    synchronize(device)


@pytest.mark.parametrize("e", ENTRIES, ids=repr)
def test_parameters_and_results_stay_on_the_device(e: Entry) -> None:
    check_results_stay_on_the_device(e, DEVICE)


@pytest.mark.parametrize("e", ENTRIES, ids=repr)
def test_no_host_sync_on_the_hot_path(e: Entry) -> None:
    check_no_host_sync(e, DEVICE)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.uint8], ids=str)
def test_low_precision_pixel_moves_on_the_device_are_the_cpu_bits(dtype: torch.dtype) -> None:
    for name in ("rotation90", "jigsaw", "rotation90-x-vflip", "invert", "d4-x-translation"):
        e = entry(name)
        f = build(e)
        x = images(shape_for(e, 4, 8, 8), seed=3, dtype=dtype)
        labels = torch.randint(f.num_classes, (4,), generator=torch.Generator().manual_seed(4))
        assert torch.equal(bits(f.apply(x.to(DEVICE), labels.to(DEVICE)).cpu()), bits(f.apply(x, labels)))
        with essl_aug.fast_forms():
            assert torch.equal(bits(f.apply(x.to(DEVICE), labels.to(DEVICE)).cpu()), bits(f.apply(x, labels)))


@pytest.mark.parametrize("e", FAMILIES, ids=repr)
def test_channels_last_on_the_device(e: Entry) -> None:
    f = build(e)
    x = images(shape_for(e, 4, 16, 16), seed=5).to(DEVICE).contiguous(memory_format=torch.channels_last)
    views, _ = essl_aug.EquivariantTransform(f, mode="all")(x)
    assert views.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(views.cpu(), f.apply_all(x.cpu()), rtol=0, atol=0 if e.pixel_move else 1e-5)
