"""Four-fold rotation: the E-SSL reference transformation (the cyclic group C4 of quarter turns).

Label convention: label ``k`` is ``torch.rot90(x, k, dims=(-2, -1))``, a rotation by ``k * 90`` degrees
counter-clockwise as displayed (row 0 at the top): the reference E-SSL ``rotate_images`` blocks 0, 1, 2, 3 and
torchvision's ``rotate(x, 90 * k)``. ``compose(a, b) = (a + b) % 4``, ``inverse(a) = -a % 4``; so
:meth:`~essl_aug.transforms.base.Family.relative` is AugSelf's ``(r1 - r2) % 4``. Square images only; exact for every
dtype.
"""

from __future__ import annotations

from torch import Tensor

from essl_aug import _kernels
from essl_aug import functional as EF
from essl_aug._validation import check_square
from essl_aug.transforms.base import PixelMove


class RandomRotation90(PixelMove):
    """Quarter turns of square images, 4 classes (kornia's ``RandomRotation90``, exact and with labels).

    Args:
        p: None (default): the four turns equally likely; a probability: no turn with probability ``1 - p``, else
            one of the three others.

    Example:
        >>> import torch
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> RandomRotation90().apply(x, torch.tensor([1]))
        tensor([[[[1., 3.],
                  [0., 2.]]]])
        >>> RandomRotation90().apply_all(x).shape  # the reference layout: every turn of every image
        torch.Size([4, 1, 2, 2])
    """

    name = "rotation90"
    num_classes = 4

    def check(self, x: Tensor, name: str = "x") -> None:
        super().check(x, name)
        check_square(x, "rotation", name)

    def build_table(self, height: int, width: int) -> Tensor:
        return _kernels.rotation_table(height, width)

    def _op(self, x: Tensor, labels: Tensor | None) -> Tensor:
        return EF.rotate90(x, labels)

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        return (a + b) % 4

    def inverse(self, a: Tensor) -> Tensor:
        return (-a) % 4
