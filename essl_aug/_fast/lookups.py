"""Per-image pixel moves as lookups with broadcast indices: about one read and one write of the batch.

The plain form (:func:`essl_aug._kernels.permute_pixels`) gathers with an int64 index per pixel. When every element
of a table moves aligned runs of pixels intact (vertical flips: whole rows; the 2x2 jigsaw: half rows),
:func:`lookup_rows` reads runs with one (B, 1, runs) index shared by the channels; when the table splits into a row
offset plus a column offset (flips, quarter turns, translations and their products), :func:`lookup_pixels` reads the
pixels with (B, 1, H, 1) and (B, 1, 1, W) indices into a strided view of the batch. Both move the integer view of the
same width, so every bit is kept. Eager calls without autograd only (:func:`essl_aug._fast.active`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import NamedTuple

import torch
from torch import Tensor

from essl_aug._cache import PlanCache
from essl_aug._kernels import bits, permute_pixels
from essl_aug._layout import empty_images, empty_like_images, pixels_last

#: Shortest run of pixels worth reading as one unit (shorter runs take the row-and-column lookup or the gather).
MIN_RUN = 8


class Plan(NamedTuple):
    """How a pixel table runs as a lookup on one device: the table itself (the fallback), the source runs of
    ``run`` pixels (``units``, (K, H*W/run)) when they are long, or the (K, H + W) row and column ``offsets`` and
    their largest values (``reach``) when the table splits."""

    table: Tensor
    units: Tensor | None = None
    run: int = 1
    offsets: Tensor | None = None
    reach: tuple[int, int] = (0, 0)


def run_plan(table: Tensor, width: int) -> tuple[Tensor, int]:
    """``(units, run)``: the longest ``run`` dividing ``width`` such that each aligned run of ``run`` output pixels
    comes from one aligned run of the input, and the (K, H*W/run) table of source runs.

    Example:
        >>> run_plan(torch.tensor([[0, 1, 2, 3], [2, 3, 0, 1]]), width=2)  # identity, rows swapped
        (tensor([[0, 1],
                [1, 0]]), 2)
    """
    k, n = table.shape
    for run in sorted((r for r in range(1, width + 1) if width % r == 0), reverse=True):
        runs = table.view(k, n // run, run)
        first = runs[:, :, :1]
        if bool((first % run == 0).all()) and torch.equal(runs, first + torch.arange(run)):
            return first.squeeze(2) // run, run
    raise AssertionError("unreachable: runs of one pixel always exist")


def separable_split(table: Tensor, height: int, width: int) -> tuple[Tensor, Tensor] | None:
    """``(rows, cols)``, (K, H) and (K, W) non-negative, with ``table[k, i * W + j] == rows[k, i] + cols[k, j]``, or
    None when the table does not split (a jigsaw: a tile's source depends on its row and its column).

    Example:
        >>> from essl_aug._kernels import rotation_table
        >>> rows, cols = separable_split(rotation_table(2, 2), 2, 2)
        >>> rows[1].tolist(), cols[1].tolist()  # a quarter turn: out[i, j] = x[j, W - 1 - i]
        ([1, 0], [0, 2])
    """
    grid = table.view(-1, height, width)
    rows = grid[:, :, 0] - grid[:, :, 0].amin(1, keepdim=True)
    rest = grid - rows[:, :, None]
    cols = rest[:, 0, :]
    if not torch.equal(rest, cols[:, None, :].expand_as(rest)):
        return None
    return rows, cols


def plan(cache: PlanCache, key: Hashable, table: Callable[[], Tensor], width: int, device: torch.device) -> Plan:
    """The cached :class:`Plan` of the (K, H*W) CPU ``table()`` on ``device``, under ``key`` in ``cache``."""
    found = cache.lookup(key)
    if found is not None:
        return found
    cpu = table().to(dtype=torch.long).cpu()
    height = cpu.shape[1] // width
    units, run = run_plan(cpu, width)
    if run >= MIN_RUN:
        return cache.store(key, Plan(cpu.to(device), units.to(device), run))
    split = separable_split(cpu, height, width)
    if split is None:
        return cache.store(key, Plan(cpu.to(device)))
    reach = (int(split[0].max()), int(split[1].max()))
    return cache.store(key, Plan(cpu.to(device), offsets=torch.cat(split, dim=1).to(device), reach=reach))


#: Index tensors ``arange(n)`` shaped for broadcasting, per (n, axis, device): built once, read by every call.
_AXES = PlanCache(max_entries=32)


def _axis(n: int, dim: int, device: torch.device) -> Tensor:
    shape = [1, 1, 1, 1]
    shape[dim] = n
    return _AXES.get((n, dim, device), lambda: torch.arange(n, device=device).view(shape))


def permute(x: Tensor, labels: Tensor, plan: Plan) -> Tensor:
    """Move the pixels of image ``i`` by element ``labels[i]`` of ``plan``: a lookup where the plan allows one and
    the batch is contiguous or channels-last, else the plain gather (the same bits either way)."""
    if x.shape[0] and plan.units is not None:
        return lookup_rows(x, labels, plan.units, plan.run)
    if x.shape[0] and plan.offsets is not None:
        return lookup_pixels(x, labels, plan)
    return permute_pixels(x, labels, plan.table)


def lookup_rows(x: Tensor, labels: Tensor, units: Tensor, run: int) -> Tensor:
    """Move runs of ``run`` pixels: output run ``u`` of image ``i`` is input run ``units[labels[i], u]``.

    Example:
        >>> x = torch.arange(8.).view(2, 1, 2, 2)
        >>> lookup_rows(x, torch.tensor([1, 0]), torch.tensor([[0, 1], [1, 0]]), run=2).flatten()
        tensor([2., 3., 0., 1., 4., 5., 6., 7.])
    """
    b, c = int(x.shape[0]), int(x.shape[1])
    n = units.shape[1]
    out = empty_like_images(x)
    if pixels_last(x):
        src = bits(x).permute(0, 2, 3, 1).reshape(b, n, run * c)
        dst = bits(out).permute(0, 2, 3, 1).view(b, n, run * c)
        index = [_axis(b, 0, x.device).view(b, 1), units.index_select(0, labels)]
    elif x.is_contiguous():
        src, dst = bits(x).view(b, c, n, run), bits(out).view(b, c, n, run)
        index = [_axis(b, 0, x.device).view(b, 1, 1), _axis(c, 1, x.device).view(1, c, 1)]
        index.append(units.index_select(0, labels).view(b, 1, n))
    else:
        return permute_pixels(x, labels, _table_of(units, run))
    torch.ops.aten.index.Tensor_out(src, index, out=dst)
    return out


def _table_of(units: Tensor, run: int) -> Tensor:
    """The pixel table of a run table (the plain form's input)."""
    return (units.unsqueeze(2) * run + torch.arange(run, device=units.device)).flatten(1)


def lookup_pixels(x: Tensor, labels: Tensor, plan: Plan) -> Tensor:
    """Output pixel (i, j) of image ``b`` comes from ``rows[l, i] + cols[l, j]`` (``l = labels[b]``): one lookup into a
    strided view of ``x`` whose two last axes both step one pixel, with (B, 1, H, 1) and (B, 1, 1, W) indices.

    The view of an image spans up to two images of storage when both offsets reach far (quarter turns), so the last
    images, whose view would pass the end of the storage, are first copied into a buffer with an image of room after
    them.

    Example:
        >>> from essl_aug._kernels import rotation_table
        >>> x = torch.arange(8.).view(2, 1, 2, 2)
        >>> table = rotation_table(2, 2)
        >>> p = Plan(table, offsets=torch.cat(separable_split(table, 2, 2), 1), reach=(2, 2))
        >>> labels = torch.tensor([1, 3])
        >>> torch.equal(lookup_pixels(x, labels, p), permute_pixels(x, labels, table))
        True
    """
    b, c, h, w = (int(n) for n in x.shape)
    pixel = x.stride(3)
    if plan.offsets is None or (h > 1 and x.stride(2) != w * pixel):  # no evenly strided pixel grid
        return permute_pixels(x, labels, plan.table)
    out = empty_like_images(x)
    xm, om = bits(x), bits(out)
    offsets = plan.offsets.index_select(0, labels)  # (B, H + W)
    if pixel != 1:
        offsets = offsets * pixel
    rows, cols = plan.reach[0] * pixel + 1, plan.reach[1] * pixel + 1  # the view's two pixel axes
    room = xm.untyped_storage().nbytes() // xm.element_size() - int(xm.storage_offset())
    room -= (c - 1) * x.stride(1) + rows + cols - 1  # what the view of one image spans
    head = (b if room >= 0 else 0) if x.stride(0) <= 0 else max(0, min(b, room // x.stride(0) + 1))
    if head:
        view = xm.as_strided((head, c, rows, cols), (x.stride(0), x.stride(1), 1, 1), xm.storage_offset())
        index = [
            _axis(head, 0, x.device),
            _axis(c, 1, x.device),
            offsets[:head, :h].view(head, 1, h, 1),
            offsets[:head, h:].view(head, 1, 1, w),
        ]
        torch.ops.aten.index.Tensor_out(view, index, out=om[:head])
    if head < b:  # the last images, copied into a buffer with room after them
        tail = empty_images((b - head + 1, c, h, w), like=x)[: b - head].copy_(x[head:])
        out[head:] = lookup_pixels(tail, labels[head:], plan)
    return out
