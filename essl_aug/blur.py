"""Gaussian blur levels: a family of increasingly blurred copies (not a group)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from essl_aug import functional as F
from essl_aug._validation import FLOAT_DTYPES
from essl_aug.family import TransformFamily

#: The reference E-SSL kernel sizes for labels 1, 2, 3.
REFERENCE_KERNEL_SIZES = (5, 9, 15)


def default_sigma(kernel_size: int) -> float:
    """torchvision's sigma for ``gaussian_blur(img, kernel_size)`` without sigma: ``0.15 * k + 0.35``."""
    return 0.15 * kernel_size + 0.35


def gaussian_kernel1d(kernel_size: int, sigma: float) -> Tensor:
    """A normalised 1-D Gaussian kernel (float64), computed with kornia."""
    from kornia.filters import get_gaussian_kernel1d

    sig = torch.tensor([[float(sigma)]], dtype=torch.float64)
    return get_gaussian_kernel1d(kernel_size, sig, dtype=torch.float64)[0]


class BlurLevels(TransformFamily):
    """Label ``k`` blurs with the ``k``-th Gaussian kernel; label 0 leaves the image unchanged.

    Label convention (defaults): 0 = no blur, 1/2/3 = ``torchvision.transforms.v2.functional.gaussian_blur``
    with kernel 5, 9, 15 and torchvision's default sigma (1.1, 1.7, 2.6), reflect borders, i.e. the
    reference E-SSL blur levels. Each kernel keeps its own truncation (a small kernel is zero-padded to
    the largest size, not widened), so every level matches torchvision to float rounding.

    Args:
        kernel_sizes: odd kernel size of each non-identity level.
        sigmas: standard deviation of each level; ``None`` uses torchvision's default for the size.

    Float inputs only (uint8 blurring would need rounding). The image must be larger than the largest
    kernel's radius (reflect padding), e.g. at least 8x8 for kernel 15. Pixels must be finite: every
    image goes through one batched convolution with kernels zero-padded to the largest size, and
    ``0 * inf`` is NaN, so an infinite or NaN pixel turns its whole window (15x15 by default) into NaN,
    for label 0 too.

    Example:
        >>> blur = BlurLevels()
        >>> x = torch.rand(2, 3, 16, 16)
        >>> torch.equal(blur.apply(x, torch.tensor([0, 0])), x)
        True
    """

    name = "blur"
    dtypes = FLOAT_DTYPES

    def __init__(
        self, kernel_sizes: Sequence[int] = REFERENCE_KERNEL_SIZES, sigmas: Sequence[float] | None = None
    ) -> None:
        sizes = [int(k) for k in kernel_sizes]
        if not sizes or any(k < 1 or k % 2 == 0 for k in sizes):
            raise ValueError(f"`kernel_sizes` must be positive odd integers, got {list(kernel_sizes)}.")
        if sigmas is None:
            sigmas = [default_sigma(k) for k in sizes]
        if len(sigmas) != len(sizes) or any(float(s) <= 0 for s in sigmas):
            raise ValueError(f"`sigmas` must be {len(sizes)} positive values (one per kernel size), got {sigmas}.")
        self.kernel_sizes = tuple(sizes)
        self.sigmas = tuple(float(s) for s in sigmas)
        self.num_classes = len(sizes) + 1
        width = max(sizes)
        table = torch.zeros(self.num_classes, width, dtype=torch.float64)
        table[0, width // 2] = 1.0
        for row, (k, s) in enumerate(zip(sizes, self.sigmas, strict=True), start=1):
            start = (width - k) // 2
            table[row, start : start + k] = gaussian_kernel1d(k, s)
        self.kernels = table
        self._cache: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    def kernel_table(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        """The (K, S) table of 1-D kernels on ``device`` in ``dtype`` (cached)."""
        key = (device, dtype)
        table = self._cache.get(key)
        if table is None:
            table = self._cache[key] = self.kernels.to(device=device, dtype=dtype)
        return table

    def check(self, x: Tensor) -> None:
        super().check(x)
        radius = max(self.kernel_sizes) // 2
        h, w = x.shape[-2:]
        if min(h, w) <= radius:
            raise ValueError(
                f"blur kernel {max(self.kernel_sizes)} needs images larger than {radius} pixels per side "
                f"(reflect padding), but `x` is {h}x{w}; use larger images or smaller `kernel_sizes`."
            )

    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        return F.blur_levels(x, labels, self.kernel_table(x.device, x.dtype), out)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    def __repr__(self) -> str:
        return f"BlurLevels(kernel_sizes={self.kernel_sizes}, sigmas={tuple(round(s, 3) for s in self.sigmas)})"
