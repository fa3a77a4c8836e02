"""Random vertical flip: the upside-down family of E-SSL (a transformation invariance would hurt), one class.

Label convention (:class:`~essl_aug.transforms.base.LabelParams`): 0 is the identity, 1 is ``x.flip(-2)`` (rows
reversed), exact for every dtype. ``compose`` is XOR; each label is its own inverse.
"""

from __future__ import annotations

from torch import Tensor

from essl_aug import _kernels
from essl_aug import functional as EF
from essl_aug.transforms.base import Involution, PixelMove


class RandomVerticalFlip(Involution, PixelMove):
    """Flip each image upside down with probability ``p`` (torchvision's ``RandomVerticalFlip``), 2 classes.

    Args:
        p: probability that an image is flipped (0.5: both labels equally likely).

    Example:
        >>> import torch
        >>> RandomVerticalFlip().apply(torch.arange(4.).view(1, 1, 2, 2), torch.tensor([1]))
        tensor([[[[2., 3.],
                  [0., 1.]]]])
    """

    name = "vflip"

    def __init__(self, p: float | None = 0.5) -> None:
        super().__init__(p)

    def build_table(self, height: int, width: int) -> Tensor:
        return _kernels.flip_table(height, width, 0)

    def _op(self, x: Tensor, labels: Tensor | None) -> Tensor:
        return EF.vflip(x, labels)
