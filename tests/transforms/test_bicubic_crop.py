"""The bicubic random resized crop (DINO's and solo-learn's filter): torchvision's antialiased bicubic
``resized_crop`` with the drawn boxes, shrinking and enlarging, float and uint8."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from essl_aug import functional as EF
from essl_aug.transforms import RandomResizedCrop

#: (top, left, height, width) boxes of a 30 x 44 image: the whole image, shrunk and enlarged, thin, one pixel wide.
BOXES = [(0, 0, 30, 44), (3, 5, 20, 30), (10, 2, 6, 9), (0, 40, 30, 4), (7, 7, 1, 3), (2, 1, 27, 40)]
SIZES = [(16, 16), (48, 40), (30, 44), (5, 12)]


def reference(x: torch.Tensor, box: tuple[int, int, int, int], size: tuple[int, int]) -> torch.Tensor:
    return TF.resized_crop(x, *box, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float_crops_are_torchvisions_bicubic(dtype: torch.dtype, size: tuple[int, int]) -> None:
    x = torch.rand(len(BOXES), 3, 30, 44, generator=torch.Generator().manual_seed(0), dtype=dtype)
    y = EF.resized_crop(x, torch.tensor(BOXES, dtype=dtype), size, True, "bicubic")
    assert y.dtype == dtype and y.shape == (len(BOXES), 3, *size)
    for i, box in enumerate(BOXES):
        torch.testing.assert_close(
            y[i], reference(x[i], box, size), rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-12
        )
    assert float(y.max()) > 1.0 or float(y.min()) < 0.0  # bicubic overshoots on noise, unclamped as torchvision's


@pytest.mark.parametrize("size", SIZES)
def test_uint8_crops_are_torchvisions_bicubic_within_two_levels(size: tuple[int, int]) -> None:
    """torchvision's uint8 bicubic (Pillow's fixed-point passes, the first kept in uint8): within 2 levels on noise."""
    x = torch.randint(0, 256, (len(BOXES), 3, 30, 44), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    y = EF.resized_crop(x, torch.tensor(BOXES, dtype=torch.float32), size, True, "bicubic")
    ref = torch.stack([reference(x[i], box, size) for i, box in enumerate(BOXES)])
    diff = (y.int() - ref.int()).abs()
    assert y.dtype == torch.uint8 and int(diff.max()) <= 2 and float((diff > 0).float().mean()) < 0.02


def test_the_transformation_uses_the_filter_and_refuses_bicubic_without_antialiasing() -> None:
    x = torch.rand(4, 3, 30, 44, generator=torch.Generator().manual_seed(2))
    crop = RandomResizedCrop(12, interpolation="bicubic")
    y, params = crop(x, torch.Generator().manual_seed(3))
    bilinear = RandomResizedCrop(12).apply(x, params)
    for i in range(4):
        top, left, h, w = (int(v) for v in params.box[i])
        torch.testing.assert_close(y[i], reference(x[i], (top, left, h, w), (12, 12)), rtol=0, atol=1e-5)
    assert not torch.allclose(y, bilinear, atol=1e-3)
    assert "interpolation='bicubic'" in repr(crop)
    with pytest.raises(ValueError, match=r"`interpolation` must be one of \('bilinear', 'bicubic'\), got 'area'"):
        RandomResizedCrop(12, interpolation="area")
    with pytest.raises(ValueError, match=r"keep `antialias=True`, or use `interpolation='bilinear'`"):
        RandomResizedCrop(12, antialias=False, interpolation="bicubic")
    with pytest.raises(ValueError, match=r"`interpolation` must be 'bilinear', or 'bicubic' with `antialias=True`"):
        EF.resized_crop(x, params.box, (12, 12), False, "bicubic")
