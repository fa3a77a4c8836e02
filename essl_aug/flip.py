"""Vertical and horizontal flips, 2 classes each."""

from __future__ import annotations

import torch
from torch import Tensor

from essl_aug import functional as F
from essl_aug.permutation import PixelPermutationFamily, grid_index


class _Flip(PixelPermutationFamily):
    num_classes = 2
    dim: int

    def build_table(self, height: int, width: int) -> Tensor:
        idx = grid_index(height, width)
        return torch.stack([idx.reshape(-1), idx.flip(self.dim).reshape(-1)])

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        return a ^ b

    def inverse(self, a: Tensor) -> Tensor:
        return a.clone()


class VerticalFlip(_Flip):
    """Upside-down flip. Label 0: identity; label 1: ``x.flip(-2)`` (rows reversed).

    Example:
        >>> VerticalFlip().apply(torch.arange(4.).view(1, 1, 2, 2), torch.tensor([1]))
        tensor([[[[2., 3.],
                  [0., 1.]]]])
    """

    name = "vflip"
    dim = 0


class HorizontalFlip(_Flip):
    """Mirror flip. Label 0: identity; label 1: ``x.flip(-1)`` (columns reversed).

    Example:
        >>> HorizontalFlip().apply(torch.arange(4.).view(1, 1, 2, 2), torch.tensor([1]))
        tensor([[[[1., 0.],
                  [3., 2.]]]])
    """

    name = "hflip"
    dim = 1

    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        return F.flip_columns(x, labels, out)

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        if F.cpu_fast_path(x):
            return F.flip_columns_all(x, out)
        return super()._apply_all(x, out)
