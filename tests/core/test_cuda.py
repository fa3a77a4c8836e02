"""On a CUDA device: results stay on the input's device and the hot path never synchronises with the host."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch

from essl_aug import EquivariantTransform, Rotation
from tests.core.helpers import FAMILIES, family, images, labels_for, side

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@contextlib.contextmanager
def no_host_sync() -> Iterator[None]:
    """Turn any synchronising CUDA call into an error inside the block."""
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)


def _cuda_images(batch: int = 4, dtype: torch.dtype = torch.float32, size: int = 16) -> torch.Tensor:
    return images(batch, size, seed=0, dtype=dtype).cuda()


def _transforms(name: str) -> list[EquivariantTransform]:
    f = family(name)
    out = [
        EquivariantTransform(f),
        EquivariantTransform(f, balanced=True),
        EquivariantTransform(f, mode="all"),
        EquivariantTransform(f, generator=torch.Generator(device="cuda").manual_seed(0)),
        EquivariantTransform(f, balanced=True, generator=torch.Generator().manual_seed(0)),
    ]
    if f.num_classes > 2:
        out.append(EquivariantTransform(f, mode="all", num_per_batch=2))
    return out


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_results_stay_on_the_device(name: str) -> None:
    f = family(name)
    x = _cuda_images(size=side(f, 16))
    labels = labels_for(f, 4, seed=1)
    y = f.apply(x, labels.cuda())
    assert y.device == x.device
    torch.testing.assert_close(y.cpu(), f.apply(x.cpu(), labels), rtol=0, atol=1e-6)
    assert f.apply_all(x).device == x.device
    for t in _transforms(name):
        views, out_labels = t(x)
        assert views.device == x.device and out_labels.device == x.device
        assert out_labels.dtype == torch.long


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_no_host_sync_on_the_hot_path(name: str) -> None:
    f = family(name)
    x = _cuda_images(size=side(f, 16))
    labels = labels_for(f, 4, seed=2).cuda()
    transforms = _transforms(name)
    f.apply(x, labels)  # the first call builds the per-device caches (tables, kernels, offsets)
    f.apply_all(x)
    for t in transforms:
        t(x)
    torch.cuda.synchronize()
    with no_host_sync():
        f.apply(x, labels)
        f.apply(x, labels, out=torch.empty_like(x))
        f.apply_all(x)
        for t in transforms:
            t(x)
    torch.cuda.synchronize()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.uint8], ids=str)
def test_low_precision_on_the_device(dtype: torch.dtype) -> None:
    x = images(4, 8, seed=3)
    x = (x * 255).to(dtype) if dtype == torch.uint8 else x.to(dtype)
    for name in ("rotation", "jigsaw", "dihedral", "invert"):
        f = family(name)
        labels = labels_for(f, 4, seed=4)
        assert torch.equal(f.apply(x.cuda(), labels.cuda()).cpu(), f.apply(x, labels))


def test_channels_last_on_the_device() -> None:
    x = _cuda_images().contiguous(memory_format=torch.channels_last)
    views, _ = EquivariantTransform("rotation", mode="all")(x)
    assert views.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(views.cpu(), Rotation().apply_all(x.cpu()))
