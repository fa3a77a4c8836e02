"""Functional, label-indexed batch operations (the module classes wrap these).

Every function takes images ``x`` (B, C, H, W), integer ``labels`` (B,) on ``x.device`` and an optional
``out`` buffer, and returns a new tensor (or ``out``) with the memory format of ``x``. They do not validate
their arguments: the family classes do. None of them reads a value back to the host from an accelerator:
the one helper that reads labels (:func:`copy_images`) runs only in eager CPU calls.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from essl_aug.family import empty_like_images

# Luma weights of ``torchvision.transforms.v2.functional.rgb_to_grayscale`` (ITU-R 601-2).
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


def _pixels_last(x: Tensor) -> bool:
    """True when ``x`` is stored channels-last (pixels outer, channels inner)."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def _needs_grad(x: Tensor) -> bool:
    """True when the result must carry gradients (ops called with ``out=`` do not support autograd)."""
    return x.requires_grad and torch.is_grad_enabled()


def cpu_fast_path(x: Tensor) -> bool:
    """True for eager CPU calls without autograd, where vectorised whole-batch passes beat per-element kernels.

    PyTorch's CPU ``gather``, ``where`` and broadcast ``addcmul`` kernels are not vectorised (5-35x the time
    of a copy at 32 px), while a flip, a multiply, an add or a bitwise op is close to one copy. On a GPU, or
    under ``torch.compile`` (which fuses them), the single-pass formulations stay.
    """
    return x.device.type == "cpu" and not _needs_grad(x) and not torch.compiler.is_compiling()


#: Above this batch size (bytes) a 4- or 8-byte ``where`` beats the three bitwise passes of :func:`select_images`
#: on a CPU: the batch no longer fits in cache, so passes cost memory traffic (measured: 3 MB select 1.6x faster,
#: 38 MB ``where`` 1.2x faster). ``where`` has no vectorised 1- and 2-byte kernel, so those always select.
SELECT_MAX_BYTES = 16 * 2**20

_BITS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _bits(t: Tensor) -> Tensor:
    """``t`` reinterpreted as integers of the same width (a view, any strides)."""
    return t.view(_BITS[t.element_size()])


def _moved(x: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """``x`` as the tensor a data-movement op should read, and the view to apply to its output buffer.

    Eager calls without autograd move the integer view of the same width: moving bits keeps every value
    (PyTorch's CPU bfloat16 ``gather`` into a channels-last ``out`` quiets NaN payloads), and its CPU
    ``gather`` / ``flip`` kernels are 1.3-3x faster on int16 / int8 than on bfloat16 / uint8.
    """
    if not _needs_grad(x) and not torch.compiler.is_compiling():
        return _bits(x), _bits
    return x, _same


def _same(t: Tensor) -> Tensor:
    return t


def select_images(labels: Tensor, a: Tensor, b: Tensor, out: Tensor) -> Tensor:
    """``out[i] = a[i]`` where ``labels[i] != 0``, else ``b[i]``: bit-exact, three vectorised bitwise passes.

    Computed as ``b ^ ((b ^ a) & mask)`` on the integer view, so every value (NaN payloads, -0.0) is kept
    bit for bit. ``a`` may broadcast against ``b`` and may be ``out`` itself; ``b`` must not overlap ``out``.

    Example:
        >>> a, b = torch.full((2, 1, 1, 1), -0.0), torch.ones(2, 1, 1, 1)
        >>> select_images(torch.tensor([1, 0]), a, b, torch.empty(2, 1, 1, 1)).flatten()
        tensor([-0., 1.])
    """
    bits = _bits(out)
    mask = (labels != 0).view(-1, 1, 1, 1).to(bits.dtype).neg()
    torch.bitwise_xor(_bits(a), _bits(b), out=bits)
    bits.bitwise_and_(mask)
    bits.bitwise_xor_(_bits(b))
    return out


def copy_images(mask: Tensor, src: Tensor, out: Tensor) -> Tensor:
    """``out[i] = src[i]`` where ``mask[i]``: bit-exact whole-image copies (``index_select`` + ``index_copy_``).

    Eager CPU only: it reads ``mask`` to build the index (``nonzero``), which would force a host
    synchronisation on an accelerator. On a CPU it moves 4- and 8-byte images at memory speed, where
    :func:`select_images` makes three passes over the batch (1.6x slower for float32 at 224 px).

    Example:
        >>> out = torch.zeros(3, 1, 1, 1)
        >>> copy_images(torch.tensor([True, False, True]), torch.ones(3, 1, 1, 1), out).flatten()
        tensor([1., 0., 1.])
    """
    index = mask.nonzero().squeeze(1)
    _bits(out).index_copy_(0, index, _bits(src).index_select(0, index))
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
    grad = _needs_grad(x)
    xm, view = _moved(x)
    if not grad and _pixels_last(x) and (out.is_contiguous(memory_format=torch.channels_last)):
        src = xm.permute(0, 2, 3, 1).reshape(b, h * w, c)
        dst = view(out).permute(0, 2, 3, 1).view(b, h * w, c)
        torch.gather(src, 1, index.unsqueeze(2).expand(b, h * w, c), out=dst)
    elif not grad and out.is_contiguous():
        src = xm.reshape(b, c, h * w)
        torch.gather(src, 2, index.unsqueeze(1).expand(b, c, h * w), out=view(out).view(b, c, h * w))
    else:
        src = x.reshape(b, c, h * w)
        out.copy_(torch.gather(src, 2, index.unsqueeze(1).expand(b, c, h * w)).view(b, c, h, w))
    return out


def _run_rows(x: Tensor, runs: int, run: int) -> tuple[Tensor, Tensor, torch.memory_format]:
    """``x`` as a matrix of runs (one run per row), the first row of each image (channel), and the layout."""
    b, c = x.shape[:2]
    if _pixels_last(x):  # a run of pixels with all their channels is contiguous
        src = x.permute(0, 2, 3, 1).reshape(b * runs, run * c)
        return src, torch.arange(0, b * runs, runs, device=x.device).view(b, 1, 1), torch.channels_last
    src = x.contiguous().view(b * c * runs, run)
    return src, torch.arange(0, b * c * runs, runs, device=x.device).view(b, c, 1), torch.contiguous_format


def _select_rows(
    src: Tensor, index: Tensor, shape: tuple[int, ...], fmt: torch.memory_format, out: Tensor | None, grad: bool
) -> Tensor:
    """Rows ``src[index]`` as images of ``shape`` stored in ``fmt``, written into ``out`` when it is laid out so."""
    pixels_last = fmt == torch.channels_last
    if not grad:
        if out is None:
            out = torch.empty(shape, dtype=src.dtype, device=src.device, memory_format=fmt)
        if out.is_contiguous(memory_format=fmt):
            dst = out.permute(0, 2, 3, 1) if pixels_last else out
            torch.index_select(src, 0, index, out=dst.view(index.numel(), src.shape[1]))
            return out
    y = src.index_select(0, index)
    n, c, h, w = shape
    y = y.view(n, h, w, c).permute(0, 3, 1, 2) if pixels_last else y.view(shape)
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
    return _select_rows(src, index.view(-1), tuple(x.shape), fmt, out, _needs_grad(x))


def permute_rows_all(x: Tensor, units: Tensor, run: int, out: Tensor) -> Tensor:
    """Every run permutation of ``units`` applied to every image, in block layout, into ``out`` (K*B, C, H, W)."""
    k, n = units.shape
    src, base, fmt = _run_rows(x, n, run)
    index = units.view(k, 1, 1, n) + base.unsqueeze(0)
    return _select_rows(src, index.view(-1), tuple(out.shape), fmt, out, _needs_grad(x))


def flip_columns(x: Tensor, labels: Tensor, out: Tensor | None = None) -> Tensor:
    """Mirror image ``i`` left-right where ``labels[i] == 1``.

    One gather with a (B, 1, 1, W) column index (no temporary; always so with ``out``, on a GPU, under autograd
    or ``torch.compile``). Eager CPU calls without ``out`` flip the whole batch into the output buffer and put
    the unflipped images back (:func:`copy_images` for 4- and 8-byte types, :func:`select_images` for 1- and
    2-byte ones), 1.1-4.5x faster there.

    Example:
        >>> flip_columns(torch.arange(4.).view(1, 1, 2, 2), torch.tensor([1]))
        tensor([[[[1., 0.],
                  [3., 2.]]]])
    """
    b, c, h, w = x.shape
    if out is None and cpu_fast_path(x):  # flip the whole batch (vectorised), keep unflipped images bit for bit
        out = _bits(x).flip(3).view(x.dtype)  # the integer view flips 2x faster for 1- and 2-byte dtypes
        fmt = torch.channels_last if _pixels_last(x) else torch.contiguous_format
        if not out.is_contiguous(memory_format=fmt):
            return select_images(labels, out, x, empty_like_images(x))
        if x.element_size() >= 4:  # whole-image copies beat the bitwise selection for 4- and 8-byte types
            return copy_images(labels == 0, x, out)
        return select_images(labels, out, x, out)  # the flip is the one allocation; the selection runs in place
    cols = torch.arange(w, device=x.device)
    cols = torch.where(labels.view(b, 1).bool(), cols.flip(0), cols)
    index = cols.view(b, 1, 1, w).expand(b, c, h, w)
    if _needs_grad(x):
        y = torch.gather(x, 3, index)
        if out is None:
            return y.contiguous(memory_format=torch.channels_last if _pixels_last(x) else torch.contiguous_format)
        return out.copy_(y)
    if out is None:
        out = empty_like_images(x)
    xm, view = _moved(x)
    torch.gather(xm, 3, index, out=view(out))
    return out


def flip_columns_all(x: Tensor, out: Tensor) -> Tensor:
    """The identity then the left-right mirror of every image, in block layout, into ``out`` (2B, C, H, W).

    Two copies (one of them from a whole-batch ``flip``): the eager CPU path of the horizontal flip's ``all``
    mode, where a per-pixel gather is 3x slower.

    Example:
        >>> flip_columns_all(torch.arange(2.).view(1, 1, 1, 2), torch.empty(2, 1, 1, 2)).flatten()
        tensor([0., 1., 1., 0.])
    """
    b = x.shape[0]
    out[:b].copy_(x)
    out[b:].copy_(_bits(x).flip(3).view(x.dtype))
    return out


def permute_pixels_all(x: Tensor, table: Tensor, out: Tensor) -> Tensor:
    """Every permutation of ``table`` applied to every image, in block layout, into ``out`` (K*B, C, H, W)."""
    k = table.shape[0]
    b, c, h, w = x.shape
    if _needs_grad(x):
        src = x.reshape(1, b, c, h * w).expand(k, b, c, h * w)
        return out.copy_(torch.gather(src, 3, table.view(k, 1, 1, h * w).expand(k, b, c, h * w)).view(out.shape))
    xm, view = _moved(x)
    if _pixels_last(x) and out.is_contiguous(memory_format=torch.channels_last):
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


def inversion_table(offset: Tensor, channels: int, dtype: torch.dtype, device: torch.device | str) -> Tensor:
    """The label-indexed coefficients of :func:`blend`: row 0 is the identity, row 1 ``offset - x``.

    Float: (2, C + 1), row ``l`` = per-channel shift then the sign of ``x``. uint8: (2,) XOR masks ``[0, 255]``.
    The identity's shift is ``-0.0``, so that ``x + shift`` keeps every value bit for bit (``-0.0`` included).
    """
    if dtype == torch.uint8:
        return torch.tensor([0, 255], dtype=torch.uint8, device=device)
    table = torch.zeros(2, channels + 1, dtype=torch.float64)
    table[0, :channels] = -0.0
    table[0, channels] = 1.0
    table[1, :channels] = offset.to(torch.float64).expand(channels)
    table[1, channels] = -1.0
    return table.to(dtype).to(device)


def blend(x: Tensor, labels: Tensor, table: Tensor, out: Tensor | None = None) -> Tensor:
    """``shift[l] + sign[l] * x`` per image with the coefficients of :func:`inversion_table`: one fused pass.

    Two small ops before the pass (select the coefficients, then ``addcmul``); bit-exact for both labels.
    float16 / bfloat16 use ``where(sign < 0, shift - x, x)`` instead (the same rounding). Eager CPU calls
    without autograd use ``x * sign`` then ``+ shift`` (two vectorised passes, the same rounding).
    """
    b, c = x.shape[:2]
    grad = _needs_grad(x)
    if out is None:
        out = empty_like_images(x)
    if x.dtype == torch.uint8:
        return torch.bitwise_xor(x, table.index_select(0, labels).view(b, 1, 1, 1), out=out)
    rows = table.index_select(0, labels)
    shift, sign = rows[:, :c, None, None], rows[:, c:, None, None]
    if cpu_fast_path(x):  # two vectorised passes; CPU addcmul with broadcast operands is 3-10x slower
        return torch.mul(x, sign, out=out).add_(shift)  # ``x * sign`` is exact, so one rounding as addcmul
    if x.dtype in (torch.float16, torch.bfloat16):
        # half precision: CPU addcmul has no vectorised kernel for it; ``shift - x`` rounds the same way
        if grad:
            return out.copy_(torch.where(sign < 0, shift - x, x))
        return torch.where(sign < 0, shift - x, x, out=out)
    if grad:
        return out.copy_(torch.addcmul(shift, sign, x))
    return torch.addcmul(shift, sign, x, out=out)


def invert(x: Tensor, labels: Tensor, offset: Tensor, out: Tensor | None = None) -> Tensor:
    """Replace image ``i`` by ``offset - x[i]`` where ``labels[i] == 1``, keep it where 0.

    ``offset`` is a per-channel (C,) tensor: ``1`` (or the pixel maximum) in pixel space,
    ``(1 - 2 * mean) / std`` in normalised space. Computed as ``shift + sign * x`` in one fused pass
    (:func:`blend`), which is bit-exact for both labels. uint8 uses ``x ^ 255``.

    Example:
        >>> invert(torch.tensor([[[[0.25]]], [[[0.25]]]]), torch.tensor([0, 1]), torch.ones(1)).flatten()
        tensor([0.2500, 0.7500])
    """
    return blend(x, labels, inversion_table(offset, x.shape[1], x.dtype, x.device), out)


def grayscale(x: Tensor, labels: Tensor, out: Tensor | None = None) -> Tensor:
    """Replace image ``i`` by its luma, repeated over the 3 channels, where ``labels[i] == 1``.

    Matches ``torchvision.transforms.v2.functional.rgb_to_grayscale(x, num_output_channels=3)``
    bit for bit (same weights, same operation order; uint8 is truncated like torchvision). The per-image
    choice is a ``where``, or :func:`select_images` in eager CPU calls on 1- and 2-byte dtypes or cache-sized batches.
    """
    r, g, b = x.unbind(dim=-3)
    luma = r.mul(GRAY_WEIGHTS[0]).add_(g, alpha=GRAY_WEIGHTS[1]).add_(b, alpha=GRAY_WEIGHTS[2])
    luma = luma.unsqueeze(-3).to(x.dtype)
    if out is None:
        out = empty_like_images(x)
    if cpu_fast_path(x) and (x.element_size() < 4 or x.numel() * x.element_size() <= SELECT_MAX_BYTES):
        return select_images(labels, luma, x, out)
    if _needs_grad(x):
        return out.copy_(torch.where(labels.view(-1, 1, 1, 1).bool(), luma, x))
    return torch.where(labels.view(-1, 1, 1, 1).bool(), luma, x, out=out)


def blur_levels(x: Tensor, labels: Tensor, kernels: Tensor, out: Tensor | None = None) -> Tensor:
    """Blur image ``i`` with the separable 1-D kernel ``kernels[labels[i]]`` (reflect borders).

    ``kernels`` is (K, S) with S odd; shorter kernels are zero-padded to S, so each row reproduces a
    blur with its own (smaller) kernel size exactly. The same arithmetic as kornia's
    ``filter2d_separable`` (reflect pad and grouped ``conv2d`` along W, then along H; bit-identical to
    it), without its wrapper: one kernel row per image, shared by its channels.
    """
    b, c, h, w = x.shape
    s = kernels.shape[1]
    p = s // 2
    if x.numel() == 0:
        return empty_like_images(x) if out is None else out
    table = kernels.to(device=x.device, dtype=x.dtype)
    weight = table.index_select(0, labels).view(b, 1, s).expand(b, c, s).reshape(b * c, 1, s)
    # Large images pad both axes at once (the same values, one pass fewer: ~10 % at 224 px); on small ones the
    # padded rows would make the first convolution cost more than the pass saves, so rows are padded after it.
    rows_first = min(h, w) >= 64
    y = torch.nn.functional.pad(x.reshape(1, b * c, h, w), (p, p, p, p) if rows_first else (p, p, 0, 0), mode="reflect")
    y = torch.nn.functional.conv2d(y, weight.view(b * c, 1, 1, s), groups=b * c)
    if not rows_first:
        y = torch.nn.functional.pad(y, (0, 0, p, p), mode="reflect")
    y = torch.nn.functional.conv2d(y, weight.view(b * c, 1, s, 1), groups=b * c).view(b, c, h, w)
    if out is None:
        return y.contiguous(memory_format=torch.channels_last if _pixels_last(x) else torch.contiguous_format)
    out.copy_(y)
    return out
