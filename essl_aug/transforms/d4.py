"""The 8 symmetries of the square (the point group D4 of a square lattice), as one pixel permutation per label.

Label convention, the same as ``Product([RandomRotation90(), RandomVerticalFlip()])``: label ``l = 2 * k + f`` is
``torch.rot90(x, k, dims=(-2, -1))`` followed by ``.flip(-2)`` when ``f == 1``. Labels 0, 2, 4, 6 are the rotations;
1, 3, 5, 7 the four mirrors. ``compose(a, b)`` ("``b`` first, then ``a``") is ``k = (-1)**f_b * k_a + k_b`` (mod 4),
``f = f_a xor f_b``; each mirror is its own inverse. Any number of channels; square images.
"""

from __future__ import annotations

import torch
from torch import Tensor

from essl_aug import _kernels
from essl_aug import functional as EF
from essl_aug._validation import check_square
from essl_aug.transforms.base import PixelMove


class RandomD4(PixelMove):
    """A random symmetry of the square per image, 8 classes (a crystal cell's point group).

    Example:
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> RandomD4().apply(x, torch.tensor([3]))  # a quarter turn, then a vertical flip: the anti-diagonal mirror
        tensor([[[[0., 2.],
                  [1., 3.]]]])
        >>> RandomD4().inverse(torch.tensor([2, 3])).tolist()
        [6, 3]
    """

    name = "d4"
    num_classes = 8

    def check(self, x: Tensor, name: str = "x") -> None:
        super().check(x, name)
        check_square(x, "the d4 family", name)

    def build_table(self, height: int, width: int) -> Tensor:
        return _kernels.d4_table(height, width)

    def _op(self, x: Tensor, labels: Tensor | None) -> Tensor:
        return EF.d4(x, labels)

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        ka, fa = a // 2, a % 2
        kb, fb = b // 2, b % 2
        k = (ka * (1 - 2 * fb) + kb) % 4
        return 2 * k + (fa ^ fb)

    def inverse(self, a: Tensor) -> Tensor:
        k, f = a // 2, a % 2
        return torch.where(f == 1, a, 2 * ((-k) % 4))
