"""Families whose elements move pixels around: exact for every dtype, one gather (or row copy) per call."""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor

from essl_aug import _kernels
from essl_aug import functional as EF
from essl_aug._cache import PlanCache
from essl_aug._kernels import PixelPlan, grid_index
from essl_aug._validation import EXACT_DTYPES
from essl_aug.family import GroupFamily

__all__ = ["PixelPermutationFamily", "grid_index"]


class PixelPermutationFamily(GroupFamily):
    """A group of pixel permutations, described by a (K, H*W) table of source indices.

    Subclasses implement :meth:`build_table` (on the CPU, once per image size) and the group operations; the
    table and its row plan are cached per size and device (a :class:`~essl_aug._cache.PlanCache` that pickles
    empty), so the hot path is a single gather, or one row copy per run of pixels that moves intact.
    """

    dtypes = (*EXACT_DTYPES, torch.int32, torch.int64, torch.int16, torch.int8, torch.bool)

    def __init__(self) -> None:
        self._cache = PlanCache()

    @abstractmethod
    def build_table(self, height: int, width: int) -> Tensor:
        """(K, H*W) int64: entry ``[k, p]`` is the flat source pixel of output pixel ``p`` under ``k``."""

    def table(self, height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
        """The cached permutation table for images of this size, on ``device``."""
        key = ("table", height, width, torch.device(device))
        return self._cache.get(
            key, lambda: self.build_table(height, width).to(device=key[3], dtype=torch.long).contiguous()
        )

    def _plan(self, height: int, width: int, device: torch.device) -> PixelPlan:
        return _kernels.pixel_plan(
            self._cache, ("plan", height, width, device), lambda: self.table(height, width), width, device
        )

    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        return EF.permute_by_plan(x, labels, self._plan(x.shape[-2], x.shape[-1], x.device), out)

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        return EF.permute_all_by_plan(x, self._plan(x.shape[-2], x.shape[-1], x.device), out)
