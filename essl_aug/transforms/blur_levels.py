"""Gaussian blur levels: a family of increasingly blurred copies (not a group).

Label convention (defaults): 0 = no blur, 1/2/3 = ``torchvision.transforms.v2.functional.gaussian_blur`` with kernel
5, 9, 15 and torchvision's default sigma (1.1, 1.7, 2.6), reflect borders: the reference E-SSL blur levels. Each
kernel keeps its own truncation (a small kernel is zero-padded to the largest size, not widened), so every level
matches torchvision to float rounding. Float images only; larger than the largest kernel's radius (at least 8x8 for
kernel 15); finite pixels (a NaN or infinity spreads over its window in a blurred image; label 0 returns the image
bit for bit).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from essl_aug import functional as EF
from essl_aug._validation import FLOAT_DTYPES, check_blur_levels
from essl_aug.transforms.base import Family


class RandomBlurLevels(Family):
    """Label ``k`` blurs with the ``k``-th Gaussian kernel; label 0 leaves the image unchanged.

    Args:
        kernel_sizes: odd kernel size of each non-identity level.
        sigmas: standard deviation of each level; None uses torchvision's default for the size.
        p: None (default): every level equally likely; a probability: no blur with probability ``1 - p``.

    Example:
        >>> import torch
        >>> blur = RandomBlurLevels()
        >>> x = torch.rand(2, 3, 16, 16)
        >>> torch.equal(blur.apply(x, torch.tensor([0, 0])), x), blur.num_classes
        (True, 4)
    """

    name = "blur"
    dtypes = FLOAT_DTYPES

    def __init__(
        self,
        kernel_sizes: Sequence[int] = EF.REFERENCE_KERNEL_SIZES,
        sigmas: Sequence[float] | None = None,
        p: float | None = None,
    ) -> None:
        super().__init__(p)
        self.kernel_sizes, self.sigmas = check_blur_levels(kernel_sizes, sigmas, EF.default_sigma)
        self.num_classes = len(self.kernel_sizes) + 1

    def check(self, x: Tensor, name: str = "x") -> None:
        super().check(x, name)
        radius = max(self.kernel_sizes) // 2
        h, w = x.shape[-2:]
        if min(h, w) <= radius:
            raise ValueError(
                f"blur kernel {max(self.kernel_sizes)} needs images larger than {radius} pixels per side "
                f"(reflect padding), but `{name}` is {h}x{w}; use larger images or smaller `kernel_sizes`."
            )

    def _op(self, x: Tensor, labels: Tensor | None) -> Tensor:
        return EF.blur_levels(x, labels, self.kernel_sizes, self.sigmas)

    def __repr__(self) -> str:
        sigmas = tuple(round(s, 3) for s in self.sigmas)
        return f"RandomBlurLevels(kernel_sizes={self.kernel_sizes}, sigmas={sigmas})"
