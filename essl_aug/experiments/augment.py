"""Batched view augmentations for SimCLR-style pretraining, driven by an explicit ``torch.Generator``.

All operations work on a whole (B, C, H, W) float batch in [0, 1] at once (one random draw per image) and never
modify their input. They are the *base* augmentations of the experiments; the transformation families of
``essl_aug`` are used on top of them, either as an invariance (:func:`invariance_augment`) or through E-SSL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from essl_aug.family import TransformFamily
from essl_aug.functional import GRAY_WEIGHTS


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None, device: torch.device) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def random_resized_crop(
    x: Tensor,
    size: int,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> Tensor:
    """Crop a random area fraction in ``scale`` with aspect ratio in ``ratio`` from each image, resize to ``size``.

    One affine grid per image and one bilinear ``grid_sample`` for the batch (border padding for the rare crop
    that the aspect ratio pushes past the image edge).

    Args:
        x: (B, C, H, W) float images.
        size: output side in pixels.
        scale: range of the crop's area as a fraction of the image.
        ratio: range of the crop's width / height (sampled log-uniformly).
        generator: random source (on ``x.device``).

    Example:
        >>> y = random_resized_crop(torch.rand(4, 3, 16, 16), 8, generator=torch.Generator().manual_seed(0))
        >>> y.shape
        torch.Size([4, 3, 8, 8])
    """
    b = x.shape[0]
    dev = x.device
    area = _uniform(b, scale[0], scale[1], generator, dev)
    log_r = _uniform(b, math.log(ratio[0]), math.log(ratio[1]), generator, dev)
    r = torch.exp(log_r)
    w = torch.sqrt(area * r).clamp(max=1.0)
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (2 * torch.rand(b, generator=generator, device=dev) - 1) * (1 - w)
    cy = (2 * torch.rand(b, generator=generator, device=dev) - 1) * (1 - h)
    theta = torch.zeros(b, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
    grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _gray(x: Tensor) -> Tensor:
    """The luma of an RGB batch (weights :data:`essl_aug.functional.GRAY_WEIGHTS`) on all 3 channels."""
    if x.shape[1] != 3:
        return x
    w = torch.tensor(GRAY_WEIGHTS, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True).expand_as(x)


def _hue_matrices(angle: Tensor) -> Tensor:
    """(B, 3, 3) RGB matrices rotating hue by ``angle`` radians about the gray axis (luma kept)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=angle.device)
    from_yiq = torch.linalg.inv(to_yiq)
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(len(angle), 3, 3, device=angle.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    return from_yiq @ rot @ to_yiq


def colour_jitter(
    x: Tensor,
    strength: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
    p: float = 0.8,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random brightness, contrast, saturation and hue, applied (in that order) to each image with probability ``p``.

    Factors are drawn as in torchvision's ``ColorJitter(b, c, s, h)``: brightness/contrast/saturation factors in
    ``[1 - s, 1 + s]``, hue shift in ``[-h, h]`` turns (here a rotation about the gray axis in YIQ space).
    """
    b = x.shape[0]
    dev = x.device
    on = (torch.rand(b, generator=generator, device=dev) < p).to(x.dtype).view(b, 1, 1, 1)
    br, co, sa, hu = strength
    fb = _uniform(b, 1 - br, 1 + br, generator, dev).view(b, 1, 1, 1)
    fc = _uniform(b, 1 - co, 1 + co, generator, dev).view(b, 1, 1, 1)
    fs = _uniform(b, 1 - sa, 1 + sa, generator, dev).view(b, 1, 1, 1)
    y = (x * fb).clamp(0, 1)
    mean = _gray(y).mean(dim=(1, 2, 3), keepdim=True)
    y = (mean + fc * (y - mean)).clamp(0, 1)
    if x.shape[1] == 3:
        g = _gray(y)
        y = (g + fs * (y - g)).clamp(0, 1)
        if hu > 0:
            angle = _uniform(b, -hu, hu, generator, dev) * 2 * math.pi
            mats = _hue_matrices(angle).to(x.dtype)
            y = torch.einsum("bij,bjhw->bihw", mats, y).clamp(0, 1)
    return on * y + (1 - on) * x


def random_grayscale(x: Tensor, p: float = 0.2, generator: torch.Generator | None = None) -> Tensor:
    """Replace each RGB image by its 3-channel luma with probability ``p``."""
    b = x.shape[0]
    on = (torch.rand(b, generator=generator, device=x.device) < p).view(b, 1, 1, 1)
    return torch.where(on, _gray(x), x)


def random_hflip(x: Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Mirror each image left-right with probability ``p``."""
    b = x.shape[0]
    on = (torch.rand(b, generator=generator, device=x.device) < p).view(b, 1, 1, 1)
    return torch.where(on, x.flip(-1), x)


@dataclass(frozen=True)
class ViewAugment:
    """The base augmentation of one view: random resized crop, then optional flip, colour jitter and grayscale.

    Args:
        size: output side.
        scale: crop area range.
        hflip: probability of a horizontal flip (0 disables it).
        jitter: probability of colour jitter (0 disables it).
        jitter_strength: (brightness, contrast, saturation, hue), as torchvision's ``ColorJitter``.
        grayscale: probability of grayscale (0 disables it).

    Example:
        >>> aug = ViewAugment(size=8, hflip=0.5, jitter=0.8, grayscale=0.2)
        >>> aug(torch.rand(4, 3, 16, 16), torch.Generator().manual_seed(0)).shape
        torch.Size([4, 3, 8, 8])
    """

    size: int = 16
    scale: tuple[float, float] = (0.2, 1.0)
    hflip: float = 0.0
    jitter: float = 0.0
    jitter_strength: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    grayscale: float = 0.0

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        y = random_resized_crop(x, self.size, self.scale, generator=generator)
        if self.hflip > 0:
            y = random_hflip(y, self.hflip, generator)
        if self.jitter > 0:
            y = colour_jitter(y, self.jitter_strength, self.jitter, generator)
        if self.grayscale > 0:
            y = random_grayscale(y, self.grayscale, generator)
        return y


def invariance_labels(
    batch: int, num_classes: int, p: float, generator: torch.Generator | None, device: torch.device | str
) -> Tensor:
    """Labels for invariance training: 0 with probability ``1 - p``, else uniform over the non-identity elements."""
    move = torch.rand(batch, generator=generator, device=device) < p
    other = torch.randint(1, num_classes, (batch,), generator=generator, device=device)
    return torch.where(move, other, torch.zeros_like(other))


def invariance_augment(
    x: Tensor, family: TransformFamily, p: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """Use a family as an augmentation: each image keeps the identity with probability ``1 - p``, otherwise gets one
    non-identity element, uniformly (the co-author E-SSL code's "invariance" mode, default ``p = 0.5``).

    Example:
        >>> from essl_aug import Rotation
        >>> y = invariance_augment(torch.rand(8, 3, 8, 8), Rotation(), generator=torch.Generator().manual_seed(0))
        >>> y.shape
        torch.Size([8, 3, 8, 8])
    """
    labels = invariance_labels(x.shape[0], family.num_classes, p, generator, x.device)
    return family.apply(x, labels)
