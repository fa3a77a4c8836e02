"""Four-fold rotation: the E-SSL reference transformation."""

from __future__ import annotations

from torch import Tensor

from essl_aug import _kernels
from essl_aug import functional as EF
from essl_aug._validation import check_square
from essl_aug.permutation import PixelPermutationFamily


class Rotation(PixelPermutationFamily):
    """Quarter turns of square images, 4 classes (the cyclic group C4).

    Label convention: label ``k`` is ``torch.rot90(x, k, dims=(-2, -1))``, a rotation by ``k * 90``
    degrees counter-clockwise as displayed (row 0 at the top). This is the reference E-SSL convention
    (``rotate_images``: blocks 0, 1, 2, 3) and torchvision's ``rotate(x, 90 * k)``.
    ``compose(a, b) = (a + b) % 4``, ``inverse(a) = -a % 4``. Requires H == W.

    Example:
        >>> import torch
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> Rotation().apply(x, torch.tensor([1]))
        tensor([[[[1., 3.],
                  [0., 2.]]]])
    """

    name = "rotation"
    num_classes = 4

    def check(self, x: Tensor) -> None:
        super().check(x)
        check_square(x, "rotation")

    def build_table(self, height: int, width: int) -> Tensor:
        return _kernels.rotation_table(height, width)

    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        return EF.rotate(x, labels, out)

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        return EF.rotate(x, None, out)

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        return (a + b) % 4

    def inverse(self, a: Tensor) -> Tensor:
        return (-a) % 4
