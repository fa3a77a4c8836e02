"""Random Gaussian blur: with probability ``p`` an image is blurred with its own sigma (the SSL views' blur).

Parameter convention (:class:`BlurParams`): ``sigma`` (B,) float32, drawn uniformly from ``sigma`` = (min, max) (the
SimCLR / BYOL range (0.1, 2.0) by default), 0 where ``applied`` is False. Kernel size: ``kernel_size`` when given
(odd); ``"sigma"``: ``2 * ceil(3 * max sigma) + 1`` taps whatever the image size (13 for sigma up to 2), which
blurs as Pillow's ``ImageFilter.GaussianBlur(radius=sigma)`` that lightly and solo-learn use (the measured standard
deviation of the blur of an edge: 1.00 / 1.99 px at sigma 1 / 2, Pillow's 0.99 / 2.00, at 32 and 224 px); otherwise
SimCLR's rule, an odd kernel of about 10 % of the image side, ``2 * (min(H, W) // 20) + 1`` (23 for 224 px, 9 for 96
px, 3 for 32 px), at least 3, which caps the blur of small images (0.74 / 0.80 px at sigma 1 / 2 with 3 taps). Each
applied image is ``torchvision``'s ``gaussian_blur(img, [k, k], [sigma, sigma])``
(:func:`essl_aug.functional.gaussian_blur`).

Target and relative target follow AugSelf (hankook/AugSelf ``transforms.py``, ``_extract_w`` for ``GaussianBlur``):
per view the sigma where applied, 0 where not, (B, 1) float32; the relative target is view a's minus view b's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from essl_aug import _random
from essl_aug import functional as EF
from essl_aug._validation import number_or_pair
from essl_aug.transforms.base import Params, TargetSpec, Transformation

__all__ = ["BlurParams", "RandomGaussianBlur", "simclr_kernel_size"]


def simclr_kernel_size(height: int, width: int) -> int:
    """SimCLR's odd kernel of about 10 % of the image side: ``2 * (min(H, W) // 20) + 1``, at least 3.

    Example:
        >>> simclr_kernel_size(224, 224), simclr_kernel_size(96, 96), simclr_kernel_size(32, 32)
        (23, 9, 3)
    """
    return max(3, 2 * (min(height, width) // 20) + 1)


@dataclass(frozen=True)
class BlurParams(Params):
    """``sigma`` (B,) float32 (0 where not applied)."""

    sigma: Tensor


class RandomGaussianBlur(Transformation[BlurParams]):
    """Gaussian blur with a per-image sigma, with probability ``p`` per image (kornia's ``RandomGaussianBlur``).

    Args:
        sigma: (min, max) range of the standard deviation in pixels, or one value for a fixed sigma; > 0.
        kernel_size: odd kernel size; ``"sigma"``: ``2 * ceil(3 * sigma[1]) + 1`` (Pillow's blur by radius, at any
            size); None: SimCLR's rule from the image size.
        p: probability that an image is blurred.

    Example:
        >>> from torchvision.transforms.v2.functional import gaussian_blur
        >>> aug = RandomGaussianBlur(sigma=(0.1, 2.0), p=0.5)
        >>> x = torch.rand(2, 3, 32, 32)
        >>> params = BlurParams(applied=torch.tensor([True, False]), sigma=torch.tensor([1.5, 0.0]))
        >>> y = aug.apply(x, params)
        >>> bool((y[0] - gaussian_blur(x[0], [3, 3], [1.5, 1.5])).abs().max() < 1e-6), torch.equal(y[1], x[1])
        (True, True)
    """

    name = "gaussian_blur"
    params_type = BlurParams

    def __init__(
        self, sigma: float | Sequence[float] = (0.1, 2.0), kernel_size: int | str | None = None, p: float = 0.5
    ) -> None:
        super().__init__(p)
        value = number_or_pair(sigma, "sigma", "(0.1, 2.0)")
        self.sigma = (value, value) if isinstance(value, float) else value
        if not self.sigma[0] > 0:
            raise ValueError(f"`sigma` must be positive (a standard deviation in pixels), got {sigma!r}.")
        if kernel_size == "sigma":
            kernel_size = 2 * math.ceil(3 * self.sigma[1]) + 1
            self.sized_by_sigma = True
        elif kernel_size is not None and (
            isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0
        ):
            raise ValueError(
                f"`kernel_size` must be an odd positive integer, 'sigma' (Pillow's blur by radius), or None for "
                f"SimCLR's rule, got {kernel_size!r}."
            )
        else:
            self.sized_by_sigma = False
        self.kernel_size: int | None = kernel_size

    def kernel_size_for(self, height: int, width: int) -> int:
        """The kernel size used on images of ``height`` x ``width`` pixels."""
        return self.kernel_size if self.kernel_size is not None else simclr_kernel_size(height, width)

    def check(self, x: Tensor, name: str = "x") -> None:
        super().check(x, name)
        h, w = x.shape[-2:]
        k = self.kernel_size_for(h, w)
        if min(h, w) <= k // 2:
            raise ValueError(
                f"a {k}x{k} blur kernel with reflect borders needs images longer than {k // 2} pixels per side, "
                f"but `{name}` is {h}x{w} (H x W); use larger images or a smaller `kernel_size`."
            )

    @property
    def target_spec(self) -> TargetSpec:
        p = 1.0 if self.p is None else self.p
        low = self.sigma[0] if p == 1.0 else 0.0  # the target is 0 where not applied
        high = self.sigma[1] if p > 0.0 else 0.0
        return TargetSpec("regression", 1, ("sigma",), ranges=((low, high),))

    def _sample(
        self, shape: tuple[int, int, int, int], device: torch.device, generator: torch.Generator | None
    ) -> BlurParams:
        batch = shape[0]
        applied = _random.bernoulli(batch, self.p if self.p is not None else 1.0, device, generator)
        sigma = _random.uniform(batch, self.sigma[0], self.sigma[1], device, generator)
        return BlurParams(applied=applied, sigma=torch.where(applied, sigma, torch.zeros_like(sigma)))

    def _apply(self, x: Tensor, params: BlurParams) -> Tensor:
        return EF.gaussian_blur(x, params.sigma, self.kernel_size_for(*x.shape[-2:]))

    def _target(self, params: BlurParams) -> Tensor:
        """(B, 1) float32: the sigma where applied, 0 where not."""
        sigma = params.sigma.float()
        return torch.where(params.applied, sigma, torch.zeros_like(sigma)).view(-1, 1)

    def __repr__(self) -> str:
        size = "'sigma'" if self.sized_by_sigma else self.kernel_size
        return f"RandomGaussianBlur(sigma={self.sigma}, kernel_size={size}, p={self.p})"
