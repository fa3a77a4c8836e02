"""The bundled dataset: scikit-learn's 8x8 handwritten digits, upsampled and coloured explicitly here.

Why these digits: they ship inside the scikit-learn wheel (no download at run time), they are small enough to
pretrain on two CPU cores in seconds, and upright digits are *not* symmetric under quarter turns, vertical flips or
jigsaws (a 6 turned upside down is a 9), so a representation should be sensitive to those transformations, the
situation in which E-SSL is meant to help.

Every change to the raw data happens in :func:`load_digits_rgb`, never inside a transformation:

1. pixel values 0..16 are scaled to [0, 1];
2. the 8x8 images are upsampled to ``size`` x ``size`` (bilinear, ``align_corners=False``), so that the half-size
   extra view of E-SSL (8x8 by default) keeps the original resolution and blur kernels up to 15 fit;
3. with ``colour=True`` (default) each image is painted with its own random foreground and background colour
   (a fixed seed, independent of the class: ``bg + ink * (fg - bg)``). Colour is then a nuisance, as in natural
   images, so the colour families (grayscale, inversion) and colour augmentations are meaningful on this data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Digits:
    """A fixed train/test split of images in [0, 1], (N, C, size, size) float32, with integer labels."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor

    @property
    def num_classes(self) -> int:
        return 10

    def to(self, device: torch.device | str) -> Digits:
        return Digits(*(t.to(device) for t in (self.train_x, self.train_y, self.test_x, self.test_y)))


def _sklearn_digits() -> tuple[Tensor, Tensor]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            'the demo data comes with scikit-learn; install the extra: pip install "essl-aug[demo]"'
        ) from err
    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32) / 16.0
    return images.unsqueeze(1), torch.as_tensor(bunch.target, dtype=torch.long)


def colourise(ink: Tensor, generator: torch.Generator) -> Tensor:
    """Paint (N, 1, H, W) ink in [0, 1] with a random light foreground on a random dark background, per image.

    Foreground channels are drawn from U(0.6, 1), background channels from U(0, 0.4), so the luma contrast is
    at least 0.2 and a digit stays readable in grayscale.

    Example:
        >>> rgb = colourise(torch.ones(2, 1, 4, 4), torch.Generator().manual_seed(0))
        >>> rgb.shape, bool((rgb >= 0.6).all())
        (torch.Size([2, 3, 4, 4]), True)
    """
    n = ink.shape[0]
    fg = 0.6 + 0.4 * torch.rand(n, 3, 1, 1, generator=generator)
    bg = 0.4 * torch.rand(n, 3, 1, 1, generator=generator)
    return bg + ink * (fg - bg)


def load_digits_rgb(
    size: int = 16, colour: bool = True, train_fraction: float = 0.6, seed: int = 0, limit: int | None = None
) -> Digits:
    """Load the 1797 scikit-learn digits as a fixed, class-stratified train/test split.

    Args:
        size: side of the returned images (the raw digits are 8x8; see the module docstring).
        colour: paint each digit with random colours (3 channels); ``False`` gives 1-channel ink.
        train_fraction: share of each class in the training split (the rest is the probe's test split).
        seed: seed of the split and of the colours (not of the training runs).
        limit: keep only the first ``limit`` images of each split (for tests).

    Returns:
        A :class:`Digits` with float32 images in [0, 1].
    """
    if size < 8:
        raise ValueError(f"`size` must be at least 8 (the digits are 8x8), got {size}.")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"`train_fraction` must lie in (0, 1), got {train_fraction}.")
    ink, labels = _sklearn_digits()
    if size != 8:
        ink = F.interpolate(ink, size=(size, size), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    gen = torch.Generator().manual_seed(seed)
    images = colourise(ink, gen) if colour else ink
    train_idx, test_idx = [], []
    for c in range(10):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        cut = round(train_fraction * len(idx))
        train_idx.append(idx[:cut])
        test_idx.append(idx[cut:])
    tr = torch.cat(train_idx)[torch.randperm(sum(len(i) for i in train_idx), generator=gen)]
    te = torch.cat(test_idx).sort().values
    if limit is not None:
        tr, te = tr[:limit], te[:limit]
    return Digits(images[tr].contiguous(), labels[tr], images[te].contiguous(), labels[te])
