"""The plain mechanisms behind the ops: pixel tables and their gather, separable blur, Gaussian kernels.

Every kernel takes images ``x`` (B, C, H, W) and, where it needs them, integer ``labels`` (B,) on ``x.device``;
none validates its arguments and none reads a value back to the host, except the table builders (which run on the
host, once per cached key). Results keep the memory format of ``x``. Pixel moves gather the integer view of the same
width (every bit kept: PyTorch's CPU ``gather`` rewrites half-precision NaN payloads). The forms that move fewer bytes
live in :mod:`essl_aug._fast`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from essl_aug._layout import stored_like

_BITS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def needs_grad(x: Tensor) -> bool:
    """True when the result must carry gradients."""
    return x.requires_grad and torch.is_grad_enabled()


def bits(t: Tensor) -> Tensor:
    """``t`` reinterpreted as integers of the same width (a view, any strides)."""
    return t.view(_BITS[t.element_size()])


class _BitGather(torch.autograd.Function):
    """``torch.gather`` on the integer view (every bit kept), with the gradient of ``torch.gather``."""

    @staticmethod
    def forward(ctx: Any, src: Tensor, dim: int, index: Tensor) -> Tensor:
        ctx.save_for_backward(index)
        ctx.dim, ctx.shape = dim, src.shape
        return torch.gather(bits(src), dim, index).view(src.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (index,) = ctx.saved_tensors
        zeros = torch.zeros(ctx.shape, dtype=grad.dtype, device=grad.device)
        return zeros.scatter_add_(ctx.dim, index, grad), None, None


def gather(src: Tensor, dim: int, index: Tensor) -> Tensor:
    """``torch.gather(src, dim, index)`` that keeps every bit of the moved values, differentiable.

    Under ``torch.compile`` it is ``torch.gather`` (the compiler fuses it).

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
    rows = [
        torch.roll(idx, (a * height // sh, b * width // sw), dims=(0, 1)).reshape(-1)
        for a in range(sh)
        for b in range(sw)
    ]
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
    table = first[:, None, :].expand(-1, then.shape[0], -1).gather(2, then[None].expand(first.shape[0], -1, -1))
    return table.reshape(-1, n)


def permute_pixels(x: Tensor, labels: Tensor | None, table: Tensor) -> Tensor:
    """Move the pixels of image ``i`` by ``table[labels[i]]`` (``table``: (K, H*W) int64 on ``x.device``), or every
    row of ``table`` over every image in block layout for ``labels=None``: one gather, exact for every dtype.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> table = torch.tensor([[0, 1, 2, 3], [1, 3, 0, 2]])  # identity, quarter turn
        >>> permute_pixels(x, torch.tensor([1]), table).view(2, 2)
        tensor([[1., 3.],
                [0., 2.]])
        >>> permute_pixels(x, None, table).shape
        torch.Size([2, 1, 2, 2])
    """
    b, c, h, w = x.shape
    if labels is None:
        k = table.shape[0]
        src = x.reshape(1, b, c, h * w).expand(k, b, c, h * w)
        y = gather(src, 3, table.view(k, 1, 1, h * w).expand(k, b, c, h * w)).view(k * b, c, h, w)
    else:
        index = table.index_select(0, labels).view(b, 1, h * w).expand(b, c, h * w)
        y = gather(x.reshape(b, c, h * w), 2, index).view(b, c, h, w)
    return stored_like(y, x)


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
    return stored_like(gather(x.reshape(b, c, h * w), 2, index).view(b, c, h, w), x)


# -- Gaussian blur -------------------------------------------------------------------------------------------------


def gaussian_kernels(sigma: Tensor, size: int, dtype: torch.dtype) -> Tensor:
    """(B, size) 1-D Gaussian kernels of ``sigma`` (B,), as torchvision's ``_get_gaussian_kernel1d``; a sigma of 0
    gives the delta kernel (the Gaussian's limit: the image is kept).

    Example:
        >>> gaussian_kernels(torch.tensor([0.0, 1.0]), 5, torch.float32)[0].tolist()
        [0.0, 0.0, 1.0, 0.0, 0.0]
    """
    lim = (size - 1) / (2.0 * math.sqrt(2.0))
    grid = torch.linspace(-lim, lim, steps=size, dtype=dtype, device=sigma.device)
    sigma = sigma.to(dtype).view(-1, 1)
    positive = sigma > 0
    gauss = torch.softmax(grid.div(torch.where(positive, sigma, torch.ones_like(sigma))).pow(2).neg(), dim=1)
    delta = (torch.arange(size, device=sigma.device) == size // 2).to(dtype)
    return torch.where(positive, gauss, delta)


def blur_kernel_table(kernel_sizes: Sequence[int], sigmas: Sequence[float]) -> Tensor:
    """(K, S) float64: row 0 the identity, row ``l`` the Gaussian of ``kernel_sizes[l - 1]``, zero-padded to S."""
    width = max(kernel_sizes)
    table = torch.zeros(len(kernel_sizes) + 1, width, dtype=torch.float64)
    table[0, width // 2] = 1.0
    for row, (k, s) in enumerate(zip(kernel_sizes, sigmas, strict=True), start=1):
        start = (width - k) // 2
        table[row, start : start + k] = gaussian_kernels(torch.tensor([s], dtype=torch.float64), k, torch.float64)[0]
    return table


def blur_images(x: Tensor, kernels: Tensor) -> Tensor:
    """Blur image ``i`` of float ``x`` with the separable 1-D kernel ``kernels[i]`` ((B, S) in ``x``'s dtype, S odd):
    reflect padding, then grouped ``conv2d`` along W, then along H (kornia's ``filter2d_separable`` arithmetic)."""
    b, c, h, w = x.shape
    s = kernels.shape[1]
    if x.numel() == 0:
        return x.clone()
    weight = kernels.view(b, 1, s).expand(b, c, s).reshape(b * c, 1, 1, s)
    p = s // 2
    y = F.pad(x.reshape(1, b * c, h, w), (p, p, p, p), mode="reflect")
    y = F.conv2d(y, weight, groups=b * c)
    y = F.conv2d(y, weight.view(b * c, 1, s, 1), groups=b * c)
    return stored_like(y.view(b, c, h, w), x)
