"""Random Gaussian blur: with probability ``p`` an image is blurred with its own sigma.

Parameter convention (:class:`BlurParams`): ``sigma`` (B,) float32, drawn uniformly from ``sigma`` = (min, max)
(the SimCLR / BYOL range (0.1, 2.0) by default), 0 where ``applied`` is False.

Kernel size: ``kernel_size`` when given (odd); otherwise SimCLR's rule, an odd kernel of about 10 % of the image
side, ``2 * (min(H, W) // 20) + 1`` (23 for 224 px, BYOL's size; 9 for 96 px; 3 for 32 px), at least 3. One size
for the whole batch (it depends on the image size only), each image with its own sigma. (Recipes that blur with
Pillow, ``ImageFilter.GaussianBlur(radius=sigma)`` as in MoCo's ``GaussianBlur``, set no kernel size: Pillow
approximates an untruncated Gaussian with box filters, so there is no size of theirs to match.)

Each applied image is ``torchvision.transforms.v2.functional.gaussian_blur(img, [k, k], [sigma, sigma])``: the same
1-D kernel (``softmax`` of ``-(t / sigma)^2`` on torchvision's grid), reflect borders, uint8 rounded; computed as
two 1-D passes (a separable grouped convolution, one kernel per image), which differs from torchvision's single
2-D pass by float rounding only.

Target and relative target follow AugSelf (hankook/AugSelf ``transforms.py``, ``_extract_w`` for
``GaussianBlur`` and ``extract_diff``): per view the sigma where applied, 0 where not, (B, 1) float32, not
rescaled (with the default range it spans [0, 2], beyond AugSelf's ``tanh`` head output); the relative target is
view a's minus view b's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from essl_aug import _kernels
from essl_aug.augment.base import (
    Augmentation,
    Params,
    TargetSpec,
    batch_shape,
    bernoulli,
    check_params,
    check_probability,
    check_views,
    select,
    uniform,
)

__all__ = ["BlurParams", "GaussianBlur", "simclr_kernel_size"]


def simclr_kernel_size(height: int, width: int) -> int:
    """SimCLR's odd kernel of about 10 % of the image side: ``2 * (min(H, W) // 20) + 1``, at least 3.

    Example:
        >>> simclr_kernel_size(224, 224), simclr_kernel_size(96, 96), simclr_kernel_size(32, 32)
        (23, 9, 3)
    """
    return max(3, 2 * (min(height, width) // 20) + 1)


def gaussian_kernels(sigma: Tensor, kernel_size: int, dtype: torch.dtype) -> Tensor:
    """(B, kernel_size) 1-D Gaussian kernels of ``sigma`` (B,), as torchvision's ``_get_gaussian_kernel1d``.

    Example:
        >>> gaussian_kernels(torch.tensor([0.0, 1.0]), 5, torch.float32)[0].tolist()
        [0.0, 0.0, 1.0, 0.0, 0.0]
    """
    lim = (kernel_size - 1) / (2.0 * math.sqrt(2.0))
    grid = torch.linspace(-lim, lim, steps=kernel_size, dtype=dtype, device=sigma.device)
    sigma = sigma.to(dtype).view(-1, 1)
    positive = sigma > 0
    gauss = torch.softmax(grid.div(torch.where(positive, sigma, torch.ones_like(sigma))).pow(2).neg(), dim=1)
    # sigma 0 (an image not blurred) gets the delta, the Gaussian's limit, instead of 0 / 0
    delta = (torch.arange(kernel_size, device=sigma.device) == kernel_size // 2).to(dtype)
    return torch.where(positive, gauss, delta)


@dataclass(frozen=True)
class BlurParams(Params):
    """Per-image blur: ``sigma`` (B,) float32 (0 where not applied)."""

    sigma: Tensor


class GaussianBlur(Augmentation[BlurParams]):
    """Gaussian blur with a per-image sigma, with probability ``p`` per image.

    Each applied image is ``torchvision.transforms.v2.functional.gaussian_blur(img, [k, k], [s, s])`` with
    ``s = params.sigma[i]`` and ``k`` the kernel size (``kernel_size``, or SimCLR's rule
    :func:`~essl_aug.augment.blur.simclr_kernel_size` when None); reflect borders, so each side must be longer
    than ``k // 2``. float
    images keep their dtype (differentiable), uint8 images are blurred in float32 and rounded, as torchvision. A
    sigma of 0 is the delta kernel (the image is kept), the Gaussian's limit.
    :meth:`target` (B, 1) float32: the sigma, 0 where not applied (AugSelf); :meth:`relative` ``target(a) -
    target(b)``.

    Args:
        sigma: (min, max) range of the standard deviation in pixels, or one value for a fixed sigma; > 0.
        kernel_size: odd kernel size, or None for SimCLR's rule from the image size.
        p: probability that an image is blurred.

    Example:
        >>> from torchvision.transforms.v2.functional import gaussian_blur
        >>> aug = GaussianBlur(sigma=(0.1, 2.0), p=0.5)
        >>> x = torch.rand(2, 3, 32, 32)
        >>> params = BlurParams(applied=torch.tensor([True, False]), sigma=torch.tensor([1.5, 0.0]))
        >>> y = aug.apply(x, params)
        >>> bool((y[0] - gaussian_blur(x[0], [3, 3], [1.5, 1.5])).abs().max() < 1e-6), torch.equal(y[1], x[1])
        (True, True)
        >>> aug.target(params).flatten().tolist()
        [1.5, 0.0]
    """

    name: ClassVar[str] = "gaussian_blur"

    def __init__(
        self, sigma: float | Sequence[float] = (0.1, 2.0), kernel_size: int | None = None, p: float = 0.5
    ) -> None:
        super().__init__(check_probability(p))
        if isinstance(sigma, (int, float)):
            pair: tuple[float, ...] = (float(sigma), float(sigma))
        elif not isinstance(sigma, Sequence):
            raise TypeError(f"`sigma` must be a number or a (min, max) pair of numbers, got {type(sigma).__name__}.")
        else:
            pair = tuple(float(s) for s in sigma) if all(isinstance(s, (int, float)) for s in sigma) else ()
        if len(pair) != 2 or not 0.0 < pair[0] <= pair[1] < math.inf:
            raise ValueError(
                f"`sigma` must be a positive number or a (min, max) pair with 0 < min <= max, got {sigma!r}."
            )
        self.sigma = (pair[0], pair[1])
        if kernel_size is not None and (
            isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0
        ):
            raise ValueError(
                f"`kernel_size` must be an odd positive integer, or None for SimCLR's rule, got {kernel_size!r}."
            )
        self.kernel_size = kernel_size

    def kernel_size_for(self, height: int, width: int) -> int:
        """The kernel size used on images of ``height`` x ``width`` pixels."""
        return self.kernel_size if self.kernel_size is not None else simclr_kernel_size(height, width)

    @property
    def target_spec(self) -> TargetSpec:
        return TargetSpec("regression", 1, ("sigma",))

    def sample(
        self, shape: Sequence[int], device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> BlurParams:
        batch = batch_shape(shape)[0]
        applied = bernoulli(batch, self.p, device, generator)
        sigma = uniform(batch, self.sigma[0], self.sigma[1], device, generator)
        return BlurParams(applied=applied, sigma=torch.where(applied, sigma, torch.zeros_like(sigma)))

    def apply(self, x: Tensor, params: BlurParams) -> Tensor:
        self.check(x)
        check_params(params, BlurParams, x)
        b, _, h, w = x.shape
        k = self.kernel_size_for(h, w)
        if min(h, w) <= k // 2:
            raise ValueError(
                f"a {k}x{k} blur kernel with reflect borders needs images longer than {k // 2} pixels per side, "
                f"but `x` is {h}x{w} (H x W); use larger images or a smaller `kernel_size`."
            )
        fp = x.is_floating_point()
        dtype = x.dtype if fp else torch.float32
        kernels = gaussian_kernels(params.sigma, k, dtype)
        blurred = _kernels.separable_blur(x if fp else x.to(dtype), torch.arange(b, device=x.device), kernels)
        if not fp:
            blurred = blurred.round().to(x.dtype)
        return select(params.applied, blurred, x)

    def target(self, params: BlurParams) -> Tensor:
        sigma = params.sigma.float()
        return torch.where(params.applied, sigma, torch.zeros_like(sigma)).view(-1, 1)

    def relative(self, a: BlurParams, b: BlurParams) -> Tensor:
        check_views(a, b)
        return self.target(a) - self.target(b)

    def __repr__(self) -> str:
        return f"GaussianBlur(sigma={self.sigma}, kernel_size={self.kernel_size}, p={self.p})"
