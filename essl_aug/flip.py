"""Vertical and horizontal flips, 2 classes each."""

from __future__ import annotations

from torch import Tensor

from essl_aug import _kernels
from essl_aug import functional as EF
from essl_aug.permutation import PixelPermutationFamily


class _Flip(PixelPermutationFamily):
    num_classes = 2
    dim: int

    def build_table(self, height: int, width: int) -> Tensor:
        return _kernels.flip_table(height, width, self.dim)

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        return a ^ b

    def inverse(self, a: Tensor) -> Tensor:
        return a.clone()


class VerticalFlip(_Flip):
    """Upside-down flip. Label 0: identity; label 1: ``x.flip(-2)`` (rows reversed).

    Example:
        >>> import torch
        >>> VerticalFlip().apply(torch.arange(4.).view(1, 1, 2, 2), torch.tensor([1]))
        tensor([[[[2., 3.],
                  [0., 1.]]]])
    """

    name = "vflip"
    dim = 0

    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        return EF.vflip(x, labels, out)

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        return EF.vflip(x, None, out)


class HorizontalFlip(_Flip):
    """Mirror flip. Label 0: identity; label 1: ``x.flip(-1)`` (columns reversed).

    Example:
        >>> import torch
        >>> HorizontalFlip().apply(torch.arange(4.).view(1, 1, 2, 2), torch.tensor([1]))
        tensor([[[[1., 0.],
                  [3., 2.]]]])
    """

    name = "hflip"
    dim = 1

    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        return EF.hflip(x, labels, out)

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        return EF.hflip(x, None, out)
