"""Families whose elements move pixels around: exact for every dtype, one gather per call."""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor

from essl_aug import functional as F
from essl_aug._validation import EXACT_DTYPES
from essl_aug.family import GroupFamily


class PixelPermutationFamily(GroupFamily):
    """A group of pixel permutations, described by a (K, H*W) table of source indices.

    Subclasses implement :meth:`build_table` (on the CPU, once per image size); the table is cached per
    size and device, so the hot path is a single ``torch.gather``.
    """

    dtypes = (*EXACT_DTYPES, torch.int32, torch.int64, torch.int16, torch.int8, torch.bool)

    def __init__(self) -> None:
        self._tables: dict[tuple[int, int, torch.device], Tensor] = {}

    @abstractmethod
    def build_table(self, height: int, width: int) -> Tensor:
        """(K, H*W) int64: entry ``[k, p]`` is the flat source pixel of output pixel ``p`` under ``k``."""

    def table(self, height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
        """The cached permutation table for images of this size, on ``device``."""
        key = (height, width, torch.device(device))
        table = self._tables.get(key)
        if table is None:
            table = self.build_table(height, width).to(device=key[2], dtype=torch.long).contiguous()
            self._tables[key] = table
        return table

    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        return F.permute_pixels(x, labels, self.table(x.shape[-2], x.shape[-1], x.device), out)

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        return F.permute_pixels_all(x, self.table(x.shape[-2], x.shape[-1], x.device), out)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_tables"] = {}
        return state


def grid_index(height: int, width: int) -> Tensor:
    """(H, W) int64 tensor holding each pixel's flat row-major index."""
    return torch.arange(height * width, dtype=torch.long).view(height, width)
