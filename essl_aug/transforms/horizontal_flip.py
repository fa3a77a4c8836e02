"""Random horizontal flip: the mirror family of E-SSL and the augmentation of the SSL views, one class.

Label convention (:class:`~essl_aug.transforms.base.LabelParams`): 0 is the identity, 1 is ``x.flip(-1)`` (columns
reversed), exact for every dtype. ``applied`` is True where the image is mirrored. Targets: ``target`` (B,) the
label; :meth:`~essl_aug.transforms.base.Family.relative` (B,) 1 where exactly one of the two views is mirrored (the
flip that takes one view to the other; AugSelf's ``f1 == f2`` is ``1 - relative``).
"""

from __future__ import annotations

from torch import Tensor

from essl_aug import _kernels
from essl_aug import functional as EF
from essl_aug.transforms.base import Involution, PixelMove


class RandomHorizontalFlip(Involution, PixelMove):
    """Mirror each image left-right with probability ``p`` (torchvision's ``RandomHorizontalFlip``), 2 classes.

    Args:
        p: probability that an image is mirrored (0.5: both labels equally likely).

    Example:
        >>> import torch
        >>> flip = RandomHorizontalFlip()
        >>> flip.apply(torch.arange(4.).view(1, 1, 2, 2), torch.tensor([1]))
        tensor([[[[1., 0.],
                  [3., 2.]]]])
        >>> y, params = RandomHorizontalFlip(p=1.0)(torch.arange(3.0).view(1, 1, 1, 3))
        >>> y.flatten().tolist(), params.applied.tolist()
        ([2.0, 1.0, 0.0], [True])
    """

    name = "hflip"

    def __init__(self, p: float | None = 0.5) -> None:
        super().__init__(p)

    def build_table(self, height: int, width: int) -> Tensor:
        return _kernels.flip_table(height, width, 1)

    def _op(self, x: Tensor, labels: Tensor | None) -> Tensor:
        return EF.hflip(x, labels)
