"""The mechanisms behind the operations: label-indexed moves, selections and blends of whole batches.

Every kernel takes images ``x`` (B, C, H, W), integer ``labels`` (B,) on ``x.device`` where it needs them, and
writes into ``out`` when given (otherwise allocates one result with the memory format of ``x``). None of them
validates its arguments, and none reads a value back to the host, except :func:`copy_images` (eager CPU only)
and the table and plan builders (which run on the host, once per cached key). Pixel moves work on the integer view of
the same width where that keeps every bit and is faster.

Sections: integer views and per-image choices; pixel tables (what each permutation moves where); row plans and
permutation kernels; flips and rolls; blends (inversion); separable blur; the block layout of ``all`` mode.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from essl_aug._cache import PlanCache
from essl_aug._layout import empty_images, empty_like_images, pixels_last, stored_like

# -- integer views and per-image choices -------------------------------------------------------------------------

_BITS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def needs_grad(x: Tensor) -> bool:
    """True when the result must carry gradients (ops called with ``out=`` do not support autograd)."""
    return x.requires_grad and torch.is_grad_enabled()


def bits(t: Tensor) -> Tensor:
    """``t`` reinterpreted as integers of the same width (a view, any strides)."""
    return t.view(_BITS[t.element_size()])


def _same(t: Tensor) -> Tensor:
    return t


def moved(x: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """``x`` as the tensor a data-movement op should read, and the view to apply to its output buffer.

    Eager calls without autograd move the integer view of the same width: moving bits keeps every value
    (PyTorch's CPU bfloat16 ``gather`` into a channels-last ``out`` quiets NaN payloads), and its CPU
    ``gather`` / ``flip`` kernels are faster on int16 / int8 than on bfloat16 / uint8.
    """
    if not needs_grad(x) and not torch.compiler.is_compiling():
        return bits(x), bits
    return x, _same


class _BitGather(torch.autograd.Function):
    """``torch.gather`` on the integer view (every bit kept), with the gradient of ``torch.gather``."""

    @staticmethod
    def forward(ctx: Any, src: Tensor, dim: int, index: Tensor) -> Tensor:
        out = torch.empty(index.shape, dtype=src.dtype, device=src.device)
        torch.gather(bits(src), dim, index, out=bits(out))
        ctx.save_for_backward(index)
        ctx.dim, ctx.shape = dim, src.shape
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (index,) = ctx.saved_tensors
        zeros = torch.zeros(ctx.shape, dtype=grad.dtype, device=grad.device)
        return zeros.scatter_add_(ctx.dim, index, grad), None, None


def gather(src: Tensor, dim: int, index: Tensor) -> Tensor:
    """``torch.gather(src, dim, index)`` that keeps every bit of the moved values, differentiable.

    PyTorch's CPU ``gather`` rewrites half-precision NaNs (bfloat16 NaN payloads become ``0xffff``, float16
    signalling NaNs are quieted), so eager calls gather the integer view; under autograd the same, with the
    gradient of ``torch.gather``. Under ``torch.compile`` it is ``torch.gather`` (the compiler fuses it).

    Example:
        >>> nan = torch.tensor([0x7F81], dtype=torch.int16).view(torch.bfloat16)  # a NaN with a payload
        >>> gather(nan, 0, torch.tensor([0])).view(torch.int16).item() == 0x7F81
        True
    """
    if torch.compiler.is_compiling():
        return torch.gather(src, dim, index)
    if needs_grad(src):
        out: Tensor = _BitGather.apply(src, dim, index)
        return out
    return torch.gather(bits(src), dim, index).view(src.dtype)


def select_images(labels: Tensor, a: Tensor, b: Tensor, out: Tensor) -> Tensor:
    """``out[i] = a[i]`` where ``labels[i] != 0``, else ``b[i]``: bit-exact, three vectorised bitwise passes.

    Computed as ``b ^ ((b ^ a) & mask)`` on the integer view, so every value (NaN payloads, -0.0) is kept
    bit for bit. ``a`` may broadcast against ``b`` and may be ``out`` itself; ``b`` must not overlap ``out``.

    Example:
        >>> a, b = torch.full((2, 1, 1, 1), -0.0), torch.ones(2, 1, 1, 1)
        >>> select_images(torch.tensor([1, 0]), a, b, torch.empty(2, 1, 1, 1)).flatten()
        tensor([-0., 1.])
    """
    out_bits = bits(out)
    mask = (labels != 0).view(-1, 1, 1, 1).to(out_bits.dtype).neg()
    torch.bitwise_xor(bits(a), bits(b), out=out_bits)
    out_bits.bitwise_and_(mask)
    out_bits.bitwise_xor_(bits(b))
    return out


def where_images(labels: Tensor, a: Tensor, b: Tensor, out: Tensor) -> Tensor:
    """``out[i] = a[i]`` where ``labels[i] != 0``, else ``b[i]``: one ``torch.where`` pass (autograd-aware)."""
    mask = labels.view(-1, 1, 1, 1).bool()
    if needs_grad(a) or needs_grad(b):
        return out.copy_(torch.where(mask, a, b))
    return torch.where(mask, a, b, out=out)


def copy_images(mask: Tensor, src: Tensor, out: Tensor) -> Tensor:
    """``out[i] = src[i]`` where ``mask[i]``: bit-exact whole-image copies (``index_select`` + ``index_copy_``).

    Eager CPU only: it reads ``mask`` to build the index (``nonzero``), which would force a host
    synchronisation on an accelerator.

    Example:
        >>> out = torch.zeros(3, 1, 1, 1)
        >>> copy_images(torch.tensor([True, False, True]), torch.ones(3, 1, 1, 1), out).flatten()
        tensor([1., 0., 1.])
    """
    index = mask.nonzero().squeeze(1)
    bits(out).index_copy_(0, index, bits(src).index_select(0, index))
    return out


# -- pixel tables: entry [k, p] is the flat source pixel of output pixel p under element k ------------------------

#: All 24 permutations of 4 tiles in lexicographic order; index 0 is the identity (the jigsaw labels).
PERMUTATIONS: tuple[tuple[int, ...], ...] = tuple(itertools.permutations(range(4)))

#: Row-major position of each cell when the cells are numbered clockwise (TL, TR, BR, BL).
_CLOCKWISE = (0, 1, 3, 2)


def grid_index(height: int, width: int) -> Tensor:
    """(H, W) int64 tensor holding each pixel's flat row-major index."""
    return torch.arange(height * width, dtype=torch.long).view(height, width)


def rotation_table(height: int, width: int) -> Tensor:
    """(4, H*W): ``torch.rot90(x, k, dims=(-2, -1))`` for k = 0..3 (square images)."""
    idx = grid_index(height, width)
    return torch.stack([torch.rot90(idx, k, dims=(0, 1)).reshape(-1) for k in range(4)])


def flip_table(height: int, width: int, dim: int) -> Tensor:
    """(2, H*W): the identity, then the flip of grid axis ``dim`` (0: rows, upside down; 1: columns, mirror)."""
    idx = grid_index(height, width)
    return torch.stack([idx.reshape(-1), idx.flip(dim).reshape(-1)])


def jigsaw_permutations(indices: Sequence[int], tile_order: str) -> Tensor:
    """(K, 4) int64 row-major tile permutations for ``PERMUTATIONS[i]`` (``i`` in ``indices``) in ``tile_order``."""

    def row_major(perm: Sequence[int]) -> tuple[int, ...]:
        if tile_order == "row-major":
            return tuple(perm)
        row = [0] * 4
        for j, src in enumerate(perm):
            row[_CLOCKWISE[j]] = _CLOCKWISE[src]
        return tuple(row)

    return torch.tensor([row_major(PERMUTATIONS[p]) for p in indices], dtype=torch.long)


def jigsaw_table(perms: Tensor, height: int, width: int) -> Tensor:
    """(K, H*W) for the (K, 4) row-major tile permutations ``perms``: output cell ``i`` holds tile ``perms[k, i]``."""
    th, tw = height // 2, width // 2
    tiles = grid_index(height, width).view(2, th, 2, tw).permute(0, 2, 1, 3).reshape(4, th, tw)
    out = tiles[perms]  # (K, 4, th, tw): output cell i holds tile perms[k, i]
    return out.view(-1, 2, 2, th, tw).permute(0, 1, 3, 2, 4).reshape(perms.shape[0], height * width)


def translation_table(steps: tuple[int, int], height: int, width: int) -> Tensor:
    """(sh * sw, H*W): row ``a * sw + b`` is ``torch.roll(x, (a * H // sh, b * W // sw), dims=(-2, -1))``."""
    idx = grid_index(height, width)
    sh, sw = steps
    rows = []
    for a in range(sh):
        for b in range(sw):
            rows.append(torch.roll(idx, (a * height // sh, b * width // sw), dims=(0, 1)).reshape(-1))
    return torch.stack(rows)


def d4_table(height: int, width: int) -> Tensor:
    """(8, H*W): row ``2 * k + f`` is ``torch.rot90(x, k, dims=(-2, -1))``, then ``.flip(-2)`` when ``f == 1``."""
    idx = grid_index(height, width)
    rows = []
    for k in range(4):
        turned = torch.rot90(idx, k, dims=(0, 1))
        rows += [turned.reshape(-1), turned.flip(0).reshape(-1)]
    return torch.stack(rows)


def compose_tables(first: Tensor, then: Tensor) -> Tensor:
    """(K1 * K2, N): row ``a * K2 + b`` moves pixels by ``first[a]``, then by ``then[b]`` (mixed radix)."""
    n = first.shape[1]
    # first table, then t: x[t_first][t_next] == x[t_first[:, t_next]]
    table = first[:, None, :].expand(-1, then.shape[0], -1).gather(2, then[None].expand(first.shape[0], -1, -1))
    return table.reshape(-1, n)


# -- row plans and permutation kernels -------------------------------------------------------------------------------

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
    if n == 0:  # images without pixels: nothing moves
        return table, 1
    for run in sorted((r for r in range(1, width + 1) if width % r == 0), reverse=True):
        runs = table.view(k, n // run, run)
        first = runs[:, :, :1]
        if bool((first % run == 0).all()) and torch.equal(runs, first + torch.arange(run)):
            return first.squeeze(2) // run, run
    raise AssertionError("unreachable: runs of one pixel always exist")


def separable_split(table: Tensor, height: int, width: int) -> tuple[Tensor, Tensor] | None:
    """Split a (K, H*W) pixel table into a row part and a column part, or None when it does not split.

    Returns ``(rows, cols)``, (K, H) and (K, W), both non-negative, with ``table[k, i * W + j] == rows[k, i] +
    cols[k, j]``: the source of output pixel (i, j) is a row offset plus a column offset. Flips, quarter turns,
    their products and periodic translations split; a jigsaw does not (a tile's source depends on its row and
    its column).

    Example:
        >>> rows, cols = separable_split(rotation_table(2, 2), 2, 2)
        >>> rows[1].tolist(), cols[1].tolist()  # a quarter turn: out[i, j] = x[j, W - 1 - i]
        ([1, 0], [0, 2])
    """
    if height * width == 0:
        return None
    grid = table.view(-1, height, width)
    rows = grid[:, :, 0] - grid[:, :, 0].amin(1, keepdim=True)
    rest = grid - rows[:, :, None]
    cols = rest[:, 0, :]
    if not torch.equal(rest, cols[:, None, :].expand_as(rest)):
        return None
    return rows, cols


#: A dihedral move of the pixel grid: (flip rows, flip columns, then transpose).
Move = tuple[bool, bool, bool]


def dihedral_moves(table: Tensor, height: int, width: int) -> tuple[Move, ...] | None:
    """Each row of a (K, H*W) pixel table as flips then a transpose of the grid, or None when one is not.

    Row ``k`` is ``(flip_rows, flip_cols, transpose)``: ``x.flip(...)`` of those axes, then ``.transpose(-2, -1)``
    when ``transpose`` (square images), moves the pixels as the table does. Quarter turns, flips and the D4
    products are such moves; they let an eager CPU call move an image with PyTorch's flip and copy kernels.

    Example:
        >>> dihedral_moves(rotation_table(3, 3), 3, 3)  # rot90(x, k): identity, mirror + transpose, ...
        ((False, False, False), (False, True, True), (True, True, False), (True, False, True))
    """
    grid = grid_index(height, width)
    candidates: dict[Move, Tensor] = {}
    for flip_rows, flip_cols, transpose in itertools.product((False, True), repeat=3):
        if transpose and height != width:
            continue
        dims = [d for d, f in ((0, flip_rows), (1, flip_cols)) if f]
        moved_grid = grid.flip(dims) if dims else grid
        candidates[flip_rows, flip_cols, transpose] = (moved_grid.t() if transpose else moved_grid).reshape(-1)
    moves = []
    for row in table:
        move = next((m for m, t in candidates.items() if torch.equal(t, row)), None)
        if move is None:
            return None
        moves.append(move)
    return tuple(moves)


class PixelPlan(NamedTuple):
    """How a pixel permutation runs on one device: its table, and the faster forms its elements allow.

    ``units`` and ``run``: the source runs when runs of ``run`` pixels move intact (long runs only);
    ``offsets``: the (K, H + W) row then column offsets of :func:`separable_split` when the table splits, and
    ``reach``, their largest row and column offsets;
    ``moves``: the :func:`dihedral_moves` of its elements when they are flips and transposes.
    """

    table: Tensor  # (K, H*W) int64 on the device
    units: Tensor | None  # (K, H*W/run) int64 on the device, None when pixels move one by one
    run: int
    offsets: Tensor | None = None  # (K, H + W) int64 on the device
    reach: tuple[int, int] = (0, 0)  # the largest row offset and the largest column offset
    moves: tuple[Move, ...] | None = None


def pixel_plan(
    cache: PlanCache, key: Hashable, table: Callable[[], Tensor], width: int, device: torch.device
) -> PixelPlan:
    """The cached plan of the (K, H*W) CPU ``table()`` on ``device``, under ``key`` in ``cache``.

    Finding the runs reads the table's values, so while ``torch.compile`` traces a call whose plan is not built
    yet, the plan is the plain gather (the same result) and is not kept.
    """
    plan = cache.lookup(key)
    if plan is not None:
        return plan
    if torch.compiler.is_compiling():
        return PixelPlan(table().to(device=device, dtype=torch.long).contiguous(), None, 1)
    cpu = table().to(dtype=torch.long)
    units, run = run_plan(cpu, width)
    if run >= MIN_RUN:
        return cache.store(key, PixelPlan(cpu.to(device).contiguous(), units.to(device), run))
    height = cpu.shape[1] // width if width else 0
    split = separable_split(cpu, height, width)
    offsets, reach = None, (0, 0)
    if split is not None:
        offsets, reach = torch.cat(split, dim=1).to(device).contiguous(), (int(split[0].max()), int(split[1].max()))
    moves = dihedral_moves(cpu, height, width) if height * width else None
    return cache.store(key, PixelPlan(cpu.to(device).contiguous(), None, 1, offsets, reach, moves))


def permute(x: Tensor, labels: Tensor, plan: PixelPlan, out: Tensor | None = None) -> Tensor:
    """Per-image pixel permutation by ``plan``.

    Without autograd or ``torch.compile`` (the one-pass forms), lookups with broadcast indices: of runs when its
    runs are long (:func:`lookup_rows`), of pixels when its table splits into row and column offsets
    (:func:`lookup_pixels`). Otherwise (and in the CPU forms of :mod:`essl_aug._cpu`) row copies when its runs are
    long (:func:`permute_rows`), else one gather (:func:`permute_pixels`).
    """
    lookup = not needs_grad(x) and not torch.compiler.is_compiling()
    if plan.units is not None:
        if lookup:
            return lookup_rows(x, labels, plan.units, plan.run, out)
        return permute_rows(x, labels, plan.units, plan.run, out)
    if lookup and plan.offsets is not None:
        return lookup_pixels(x, labels, plan, out)
    return permute_pixels(x, labels, plan.table, out)


def permute_all(x: Tensor, plan: PixelPlan, out: Tensor) -> Tensor:
    """Every element of ``plan`` on every image, in block layout, into ``out`` (K*B, C, H, W)."""
    if plan.units is not None:
        return permute_rows_all(x, plan.units, plan.run, out)
    return permute_pixels_all(x, plan.table, out)


#: Index tensors ``arange(n)`` shaped for broadcasting, per (n, axis, device): built once, read by every call.
_AXES = PlanCache(max_entries=32)


def _axis(n: int, dim: int, device: torch.device) -> Tensor:
    shape = [1, 1, 1, 1]
    shape[dim] = n
    return _AXES.get((n, dim, device), lambda: torch.arange(n, device=device).view(shape))


def lookup_pixels(
    x: Tensor, labels: Tensor, plan: PixelPlan, out: Tensor | None = None, *, spare: bool = True
) -> Tensor:
    """:func:`permute_pixels` for tables that split into row and column offsets: no per-pixel index.

    Output pixel (i, j) of image ``b`` comes from ``rows[l, i] + cols[l, j]`` (``l = labels[b]``), so one
    advanced-indexing lookup into a strided view of ``x`` whose two last axes both step one pixel reads the
    source with (B, 1, H, 1) and (B, 1, 1, W) indices: the bytes moved are one read and one write of the batch
    and O(B * (H + W)) of index, where a gather reads an int64 index per pixel. The view of an image spans up to
    two images of storage when both offsets reach far (quarter turns), so the last image, whose view would pass
    the end of the storage, is first copied into a buffer with an image of room after it (``spare``; without it,
    the gather).
    Exact for every dtype (it moves the integer view); eager calls without autograd only.

    Example:
        >>> x = torch.arange(8.).view(2, 1, 2, 2)
        >>> table = rotation_table(2, 2)
        >>> plan = PixelPlan(table, None, 1, torch.cat(separable_split(table, 2, 2), 1), (2, 2))
        >>> labels = torch.tensor([1, 3])
        >>> torch.equal(lookup_pixels(x, labels, plan), permute_pixels(x, labels, table))
        True
    """
    b, c, h, w = (int(n) for n in x.shape)
    if out is None:
        out = empty_like_images(x)
    pixel = x.stride(3)
    if plan.offsets is None or (h > 1 and x.stride(2) != w * pixel):  # no split, or no evenly strided pixel grid
        return permute_pixels(x, labels, plan.table, out)
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
        if spare:
            tail = empty_images((b - head + 1, c, h, w), like=x)[: b - head]
            lookup_pixels(tail.copy_(x[head:]), labels[head:], plan, out[head:], spare=False)
        else:
            permute_pixels(x[head:], labels[head:], plan.table, out[head:])
    return out


def permute_pixels(x: Tensor, labels: Tensor, table: Tensor, out: Tensor | None = None) -> Tensor:
    """Move pixels of image ``i`` by the permutation ``table[labels[i]]``.

    ``table`` is (K, H*W) int64: ``table[k, p]`` is the flat source index of output pixel ``p`` under
    element ``k``. One gather, one output allocation (none with ``out``), exact for every dtype.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> table = torch.tensor([[0, 1, 2, 3], [1, 3, 0, 2]])  # identity, quarter turn
        >>> permute_pixels(x, torch.tensor([1]), table).view(2, 2)
        tensor([[1., 3.],
                [0., 2.]])
    """
    b, c, h, w = x.shape
    if out is None:
        out = empty_like_images(x)
    index = table.index_select(0, labels)
    grad = needs_grad(x)
    xm, view = moved(x)
    if not grad and pixels_last(x) and out.is_contiguous(memory_format=torch.channels_last):
        src = xm.permute(0, 2, 3, 1).reshape(b, h * w, c)
        dst = view(out).permute(0, 2, 3, 1).view(b, h * w, c)
        torch.gather(src, 1, index.unsqueeze(2).expand(b, h * w, c), out=dst)
    elif not grad and out.is_contiguous():
        src = xm.reshape(b, c, h * w)
        torch.gather(src, 2, index.unsqueeze(1).expand(b, c, h * w), out=view(out).view(b, c, h * w))
    else:
        src = x.reshape(b, c, h * w)
        out.copy_(gather(src, 2, index.unsqueeze(1).expand(b, c, h * w)).view(b, c, h, w))
    return out


def permute_pixels_all(x: Tensor, table: Tensor, out: Tensor) -> Tensor:
    """Every permutation of ``table`` applied to every image, in block layout, into ``out`` (K*B, C, H, W)."""
    k = table.shape[0]
    b, c, h, w = x.shape
    if needs_grad(x):
        src = x.reshape(1, b, c, h * w).expand(k, b, c, h * w)
        return out.copy_(gather(src, 3, table.view(k, 1, 1, h * w).expand(k, b, c, h * w)).view(out.shape))
    xm, view = moved(x)
    if pixels_last(x) and out.is_contiguous(memory_format=torch.channels_last):
        src = xm.permute(0, 2, 3, 1).reshape(1, b, h * w, c).expand(k, b, h * w, c)
        dst = view(out).permute(0, 2, 3, 1).view(k, b, h * w, c)
        torch.gather(src, 2, table.view(k, 1, h * w, 1).expand(k, b, h * w, c), out=dst)
    else:
        src = xm.reshape(1, b, c, h * w).expand(k, b, c, h * w)
        result = out if out.is_contiguous() else torch.empty(out.shape, dtype=out.dtype, device=out.device)
        dst = view(result).view(k, b, c, h * w)
        torch.gather(src, 3, table.view(k, 1, 1, h * w).expand(k, b, c, h * w), out=dst)
        if result is not out:
            out.copy_(result)
    return out


def _run_rows(x: Tensor, runs: int, run: int) -> tuple[Tensor, Tensor, torch.memory_format]:
    """``x`` as a matrix of runs (one run per row), the first row of each image (channel), and the layout."""
    b, c = x.shape[:2]
    if pixels_last(x):  # a run of pixels with all their channels is contiguous
        src = x.permute(0, 2, 3, 1).reshape(b * runs, run * c)
        return src, torch.arange(0, b * runs, runs, device=x.device).view(b, 1, 1), torch.channels_last
    src = x.contiguous().view(b * c * runs, run)
    return src, torch.arange(0, b * c * runs, runs, device=x.device).view(b, c, 1), torch.contiguous_format


def _select_rows(
    src: Tensor, index: Tensor, shape: tuple[int, ...], fmt: torch.memory_format, out: Tensor | None, grad: bool
) -> Tensor:
    """Rows ``src[index]`` as images of ``shape`` stored in ``fmt``, written into ``out`` when it is laid out so."""
    rows_last = fmt == torch.channels_last
    if not grad:
        if out is None:
            out = torch.empty(shape, dtype=src.dtype, device=src.device, memory_format=fmt)
        if out.is_contiguous(memory_format=fmt):
            dst = out.permute(0, 2, 3, 1) if rows_last else out
            torch.index_select(src, 0, index, out=dst.view(index.numel(), src.shape[1]))
            return out
    y = src.index_select(0, index)
    n, c, h, w = shape
    y = y.view(n, h, w, c).permute(0, 3, 1, 2) if rows_last else y.view(shape)
    return y if out is None else out.copy_(y)


def permute_rows(x: Tensor, labels: Tensor, units: Tensor, run: int, out: Tensor | None = None) -> Tensor:
    """:func:`permute_pixels` for permutations that move runs of ``run`` consecutive pixels of a row intact.

    ``units`` is (K, H*W/run) int64: entry ``[k, u]`` is the source run of output run ``u`` (runs numbered
    row-major; ``run`` divides W). Vertical flips move whole rows, the 2x2 jigsaw half rows: each run is one
    ``memcpy`` of an ``index_select`` over rows, several times faster than a per-pixel gather. Exact for
    every dtype; the index is (B, C, H*W/run), not per pixel.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> permute_rows(x, torch.tensor([1]), torch.tensor([[0, 1], [1, 0]]), run=2)  # rows swapped
        tensor([[[[2., 3.],
                  [0., 1.]]]])
    """
    src, base, fmt = _run_rows(x, units.shape[1], run)
    index = units.index_select(0, labels).view(x.shape[0], 1, units.shape[1]) + base
    return _select_rows(src, index.view(-1), tuple(x.shape), fmt, out, needs_grad(x))


def lookup_rows(x: Tensor, labels: Tensor, units: Tensor, run: int, out: Tensor | None = None) -> Tensor:
    """:func:`permute_rows` as one advanced-indexing lookup with broadcast (B, 1, H*W/run) run indices.

    :func:`permute_rows` reads a (B, C, H*W/run) int64 index, built per call; here the channels share the index
    of their image, so a 1- or 2-byte batch with short runs does not move an index about as large as itself.
    Contiguous and channels-last batches; any other layout takes :func:`permute_rows`.

    Example:
        >>> x = torch.arange(8.).view(2, 1, 2, 2)
        >>> lookup_rows(x, torch.tensor([1, 0]), torch.tensor([[0, 1], [1, 0]]), run=2).flatten()
        tensor([2., 3., 0., 1., 4., 5., 6., 7.])
    """
    b, c = int(x.shape[0]), int(x.shape[1])
    n = units.shape[1]
    if out is None:
        out = empty_like_images(x)
    if pixels_last(x) and out.is_contiguous(memory_format=torch.channels_last):
        src = bits(x).permute(0, 2, 3, 1).reshape(b, n, run * c)
        dst = bits(out).permute(0, 2, 3, 1).view(b, n, run * c)
        index = [_axis(b, 0, x.device).view(b, 1), units.index_select(0, labels)]
    elif x.is_contiguous() and out.is_contiguous():
        src, dst = bits(x).view(b, c, n, run), bits(out).view(b, c, n, run)
        index = [_axis(b, 0, x.device).view(b, 1, 1), _axis(c, 1, x.device).view(1, c, 1)]
        index.append(units.index_select(0, labels).view(b, 1, n))
    else:
        return permute_rows(x, labels, units, run, out)
    torch.ops.aten.index.Tensor_out(src, index, out=dst)
    return out


def permute_rows_all(x: Tensor, units: Tensor, run: int, out: Tensor) -> Tensor:
    """Every run permutation of ``units`` applied to every image, in block layout, into ``out`` (K*B, C, H, W)."""
    k, n = units.shape
    src, base, fmt = _run_rows(x, n, run)
    index = units.view(k, 1, 1, n) + base.unsqueeze(0)
    return _select_rows(src, index.view(-1), tuple(out.shape), fmt, out, needs_grad(x))


# -- flips and rolls ---------------------------------------------------------------------------------------------------


def flip_columns(x: Tensor, labels: Tensor, out: Tensor | None = None) -> Tensor:
    """Mirror image ``i`` left-right where ``labels[i] == 1``: one gather with a (B, 1, 1, W) column index.

    Example:
        >>> flip_columns(torch.arange(4.).view(1, 1, 2, 2), torch.tensor([1]))
        tensor([[[[1., 0.],
                  [3., 2.]]]])
    """
    b, c, h, w = x.shape
    cols = torch.arange(w, device=x.device)
    cols = torch.where(labels.view(b, 1).bool(), cols.flip(0), cols)
    index = cols.view(b, 1, 1, w).expand(b, c, h, w)
    if needs_grad(x):
        y = gather(x, 3, index)
        return stored_like(y, x) if out is None else out.copy_(y)
    if out is None:
        out = empty_like_images(x)
    xm, view = moved(x)
    torch.gather(xm, 3, index, out=view(out))
    return out


def roll_images(x: Tensor, shifts: Tensor) -> Tensor:
    """Roll image ``i`` by ``shifts[i] = (rows down, columns right)`` with wrap-around: one gather.

    Example:
        >>> roll_images(torch.arange(3.).view(1, 1, 1, 3), torch.tensor([[0, 1]])).flatten()
        tensor([2., 0., 1.])
    """
    b, c, h, w = x.shape
    rows = (torch.arange(h, device=x.device)[None, :] - shifts[:, :1].long()) % h  # (B, H): source row
    cols = (torch.arange(w, device=x.device)[None, :] - shifts[:, 1:].long()) % w  # (B, W): source column
    index = (rows[:, :, None] * w + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    out = gather(x.reshape(b, c, h * w), 2, index).view(b, c, h, w)
    return stored_like(out, x)


# -- blends: ``offset - x`` or ``x`` by label -----------------------------------------------------------------------


def inversion_table(offset: Sequence[float], channels: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The label-indexed coefficients of the inversion: row 0 is the identity, row 1 ``offset - x``.

    ``offset``: one value, or one per channel. Float: (2, C + 1), row ``l`` = per-channel shift then the sign
    of ``x``, so that ``shift + sign * x`` is the element (the identity's shift is ``-0.0``: ``x + -0.0`` keeps every
    value but a NaN bit for bit, ``-0.0`` included). uint8: (2,) XOR masks ``[0, 255]``.
    """
    if dtype == torch.uint8:
        return torch.tensor([0, 255], dtype=torch.uint8, device=device)
    table = torch.zeros(2, channels + 1, dtype=torch.float64)
    table[0, :channels] = -0.0
    table[0, channels] = 1.0
    table[1, :channels] = torch.tensor(offset, dtype=torch.float64).expand(channels)
    table[1, channels] = -1.0
    return table.to(dtype).to(device)


def blend_rows(table: Tensor, labels: Tensor, channels: int) -> tuple[Tensor, Tensor]:
    """The (B, C, 1, 1) shifts and (B, 1, 1, 1) signs of :func:`inversion_table` for ``labels``."""
    rows = table.index_select(0, labels)
    return rows[:, :channels, None, None], rows[:, channels:, None, None]


def inversion_offsets(table: Tensor, channels: int) -> Tensor:
    """The (1, C, 1, 1) offsets of label 1 (``offset - x``) in a float :func:`inversion_table`."""
    return table[1:, :channels, None, None]


def blend(x: Tensor, labels: Tensor, table: Tensor, out: Tensor | None = None) -> Tensor:
    """Colour inversion by label with the coefficients of :func:`inversion_table`.

    Float: ``offset - x``, then a ``where`` selection: ``offset - x`` where ``labels[i] == 1``, ``x`` itself where
    ``labels[i] == 0`` (every bit, NaN payloads and signalling NaNs included: a selection, not arithmetic; under
    ``torch.compile`` one fused pass). uint8 XORs with the label's mask.
    """
    b, c = x.shape[:2]
    if out is None:
        out = empty_like_images(x)
    if x.dtype == torch.uint8:
        return torch.bitwise_xor(x, table.index_select(0, labels).view(b, 1, 1, 1), out=out)
    return where_images(labels, inversion_offsets(table, c) - x, x, out)


# -- separable blur --------------------------------------------------------------------------------------------------

#: The reference E-SSL kernel sizes for blur labels 1, 2, 3.
REFERENCE_KERNEL_SIZES = (5, 9, 15)


def default_sigma(kernel_size: int) -> float:
    """torchvision's sigma for ``gaussian_blur(img, kernel_size)`` without sigma: ``0.15 * k + 0.35``."""
    return 0.15 * kernel_size + 0.35


def gaussian_kernel1d(kernel_size: int, sigma: float) -> Tensor:
    """A normalised 1-D Gaussian kernel (float64), computed with kornia."""
    from kornia.filters import get_gaussian_kernel1d

    sig = torch.tensor([[float(sigma)]], dtype=torch.float64)
    return get_gaussian_kernel1d(kernel_size, sig, dtype=torch.float64)[0]


def blur_kernel_table(kernel_sizes: Sequence[int], sigmas: Sequence[float]) -> Tensor:
    """(K, S) float64: row 0 the identity, row ``l`` the Gaussian of ``kernel_sizes[l - 1]``, zero-padded to S."""
    width = max(kernel_sizes)
    table = torch.zeros(len(kernel_sizes) + 1, width, dtype=torch.float64)
    table[0, width // 2] = 1.0
    for row, (k, s) in enumerate(zip(kernel_sizes, sigmas, strict=True), start=1):
        start = (width - k) // 2
        table[row, start : start + k] = gaussian_kernel1d(k, s)
    return table


def separable_blur(x: Tensor, labels: Tensor, kernels: Tensor, out: Tensor | None = None) -> Tensor:
    """Blur image ``i`` with the separable 1-D kernel ``kernels[labels[i]]`` (reflect borders).

    ``kernels`` is (K, S) in the dtype of ``x``, S odd. The same arithmetic as kornia's ``filter2d_separable``
    (reflect pad and grouped ``conv2d`` along W, then along H; bit-identical to it), without its wrapper: one
    kernel row per image, shared by its channels.
    """
    b, c, s = x.shape[0], x.shape[1], kernels.shape[1]
    if x.numel() == 0:
        return empty_like_images(x) if out is None else out
    weight = kernels.index_select(0, labels).view(b, 1, s).expand(b, c, s).reshape(b * c, 1, s)
    y = convolve_separable(x, weight)
    if out is None:
        return stored_like(y, x)
    out.copy_(y)
    return out


def convolve_separable(x: Tensor, weight: Tensor) -> Tensor:
    """Reflect pad, then the (B*C, 1, S) 1-D kernels ``weight`` along W, then along H: grouped ``conv2d``."""
    b, c, h, w = x.shape
    s = weight.shape[2]
    p = s // 2
    # Large images pad both axes at once (the same values, one pass fewer); on small ones the padded rows would
    # make the first convolution cost more than the pass saves, so rows are padded after it.
    rows_first = min(h, w) >= 64
    y = F.pad(x.reshape(1, b * c, h, w), (p, p, p, p) if rows_first else (p, p, 0, 0), mode="reflect")
    y = F.conv2d(y, weight.view(b * c, 1, 1, s), groups=b * c)
    if not rows_first:
        y = F.pad(y, (0, 0, p, p), mode="reflect")
    return F.conv2d(y, weight.view(b * c, 1, s, 1), groups=b * c).view(b, c, h, w)


# -- block layout of ``all`` mode --------------------------------------------------------------------------------------


def block_output(x: Tensor, num_classes: int, out: Tensor | None) -> Tensor:
    """``out``, or a new (K*B, C, H, W) batch laid out like ``x``."""
    if out is not None:
        return out
    return empty_images((num_classes * x.shape[0], *x.shape[1:]), like=x)


def each_element(apply: Callable[[Tensor, Tensor, Tensor], Tensor], x: Tensor, num_classes: int, out: Tensor) -> Tensor:
    """Block layout by one call per element: ``apply(x, labels k, out[k*B:(k+1)*B])`` for every ``k``."""
    b = x.shape[0]
    for k in range(num_classes):
        labels = torch.full((b,), k, dtype=torch.long, device=x.device)
        apply(x, labels, out[k * b : (k + 1) * b])
    return out
