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
        return apply_pixel_table(self, x, labels, out)

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        return apply_pixel_table_all(self, x, out)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_tables"] = {}
        state.pop("_plans", None)
        return state


def grid_index(height: int, width: int) -> Tensor:
    """(H, W) int64 tensor holding each pixel's flat row-major index."""
    return torch.arange(height * width, dtype=torch.long).view(height, width)


#: Shortest run of pixels (elements of a row) worth moving as one row copy instead of pixel by pixel.
MIN_RUN = 8


def run_plan(table: Tensor, width: int) -> tuple[Tensor, int]:
    """Split a (K, H*W) pixel table into runs of pixels that every element moves intact.

    Returns ``(units, run)``: the longest ``run`` dividing ``width`` such that each aligned run of ``run``
    consecutive output pixels comes from one aligned run of the input, and the (K, H*W/run) table of source
    runs. A vertical flip gives ``run == width`` (whole rows), the 2x2 jigsaw ``width / 2``, a rotation 1.

    Example:
        >>> run_plan(torch.tensor([[0, 1, 2, 3], [2, 3, 0, 1]]), width=2)  # identity, rows swapped
        (tensor([[0, 1],
                [1, 0]]), 2)
    """
    k, n = table.shape
    table = table.cpu()
    for run in sorted((r for r in range(1, width + 1) if width % r == 0), reverse=True):
        runs = table.view(k, n // run, run)
        first = runs[:, :, :1]
        if bool((first % run == 0).all()) and torch.equal(runs, first + torch.arange(run)):
            return first.squeeze(2) // run, run
    raise AssertionError("unreachable: runs of one pixel always exist")


def _plan(owner: object, height: int, width: int, device: torch.device) -> tuple[Tensor, int]:
    """The cached :func:`run_plan` of ``owner.table`` (a pixel-permutation family or product) on ``device``."""
    plans = owner.__dict__.setdefault("_plans", {})
    key = (height, width, device)
    plan = plans.get(key)
    if plan is None and torch.compiler.is_compiling():
        return owner.table(height, width, device), 1  # type: ignore[attr-defined]  # the check reads values
    if plan is None:
        units, run = run_plan(owner.table(height, width), width)  # type: ignore[attr-defined]
        plan = plans[key] = (units.to(device), run)
    return plan


def apply_pixel_table(owner: object, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
    """Per-image pixel permutation by ``owner.table``: row copies when runs are long, else one gather."""
    h, w = x.shape[-2:]
    units, run = _plan(owner, h, w, x.device)
    if run >= MIN_RUN:
        return F.permute_rows(x, labels, units, run, out)
    return F.permute_pixels(x, labels, owner.table(h, w, x.device), out)  # type: ignore[attr-defined]


def apply_pixel_table_all(owner: object, x: Tensor, out: Tensor) -> Tensor:
    """Every element of ``owner.table`` on every image, block layout, into ``out``."""
    h, w = x.shape[-2:]
    units, run = _plan(owner, h, w, x.device)
    if run >= MIN_RUN:
        return F.permute_rows_all(x, units, run, out)
    return F.permute_pixels_all(x, owner.table(h, w, x.device), out)  # type: ignore[attr-defined]
