"""Gaussian blur levels: a family of increasingly blurred copies (not a group)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from essl_aug import _kernels
from essl_aug import functional as EF
from essl_aug._kernels import REFERENCE_KERNEL_SIZES, default_sigma, gaussian_kernel1d
from essl_aug._validation import FLOAT_DTYPES, check_blur_levels
from essl_aug.family import TransformFamily

__all__ = ["REFERENCE_KERNEL_SIZES", "BlurLevels", "default_sigma", "gaussian_kernel1d"]


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
        self.kernel_sizes, self.sigmas = check_blur_levels(kernel_sizes, sigmas, default_sigma)
        self.num_classes = len(self.kernel_sizes) + 1
        #: The 1-D kernels in float64, one row per label (row 0 the identity), each zero-padded to the largest size.
        self.kernels = _kernels.blur_kernel_table(self.kernel_sizes, self.sigmas)

    def kernel_table(self, device: torch.device | str, dtype: torch.dtype) -> Tensor:
        """The (K, S) table of 1-D kernels on ``device`` in ``dtype``."""
        return self.kernels.to(device=device, dtype=dtype)

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
        return EF.blur_levels(x, labels, self.kernel_sizes, self.sigmas, out)

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        return EF.blur_levels(x, None, self.kernel_sizes, self.sigmas, out)

    def __repr__(self) -> str:
        return f"BlurLevels(kernel_sizes={self.kernel_sizes}, sigmas={tuple(round(s, 3) for s in self.sigmas)})"
