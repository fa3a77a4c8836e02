"""The eager CPU forms of the operations: whole-batch vectorised passes where the one-pass forms are slow.

PyTorch's CPU ``gather``, ``where`` and broadcast ``addcmul`` kernels are not vectorised, while a flip, a
multiply, an add or a bitwise op runs close to the speed of a copy. So eager CPU calls without autograd
(:func:`enabled`) flip the whole batch and put the unflipped images back, blend in two passes, and choose
between two images with bitwise passes. On a GPU, under autograd or ``torch.compile`` (which fuses the one-pass
forms) the one-pass forms of :mod:`essl_aug._kernels` stay. Both forms give the same bits (a test compares
them); what each form gains is measured in ``benchmarks/results/speed_profile.md``.

Each operation of :mod:`essl_aug.functional` asks :func:`enabled` (or :func:`selects`) once and then runs one
form or the other.
"""

from __future__ import annotations

import torch
from torch import Tensor

from essl_aug._kernels import bits, blend_rows, copy_images, inversion_offsets, needs_grad, select_images
from essl_aug._layout import empty_like_images, memory_format


def enabled(x: Tensor) -> bool:
    """True for eager CPU calls without autograd: the calls that take the forms of this module."""
    return x.device.type == "cpu" and not needs_grad(x) and not torch.compiler.is_compiling()


#: Above this batch size (bytes) a 4- or 8-byte ``where`` beats the three bitwise passes of ``select_images`` on
#: a CPU: the batch no longer fits in cache, so each pass costs memory traffic. ``where`` has no vectorised 1- and
#: 2-byte kernel, so those always select.
SELECT_MAX_BYTES = 16 * 2**20


def selects(x: Tensor) -> bool:
    """True when a per-image choice between two batches like ``x`` should use the bitwise selection."""
    return enabled(x) and (x.element_size() < 4 or x.numel() * x.element_size() <= SELECT_MAX_BYTES)


def hflip(x: Tensor, labels: Tensor) -> Tensor:
    """Mirror image ``i`` where ``labels[i] == 1``: flip the whole batch, then put the unflipped images back.

    The flip runs on the integer view (faster for 1- and 2-byte dtypes) and is the one allocation; the unflipped
    images go back by whole-image copies (4- and 8-byte dtypes) or by the bitwise selection in place (1 and 2).
    """
    out = bits(x).flip(3).view(x.dtype)
    if not out.is_contiguous(memory_format=memory_format(x)):  # a strided input: select into a fresh result
        return select_images(labels, out, x, empty_like_images(x))
    if x.element_size() >= 4:
        return copy_images(labels == 0, x, out)
    return select_images(labels, out, x, out)


def hflip_all(x: Tensor, out: Tensor) -> Tensor:
    """The identity then the mirror of every image, in block layout, into ``out`` (2B, C, H, W).

    Two copies, one of them from a whole-batch ``flip`` of the integer view.

    Example:
        >>> hflip_all(torch.arange(2.).view(1, 1, 1, 2), torch.empty(2, 1, 1, 2)).flatten()
        tensor([0., 1., 1., 0.])
    """
    b = x.shape[0]
    out[:b].copy_(x)
    out[b:].copy_(bits(x).flip(3).view(x.dtype))
    return out


def blend(x: Tensor, labels: Tensor, table: Tensor, out: Tensor | None) -> Tensor:
    """Colour inversion of float ``x`` by label: ``shift + sign * x`` per image as ``x * sign`` then ``+ shift``,
    two vectorised passes (the coefficients of :func:`essl_aug._kernels.inversion_table`).

    ``x * sign`` is exact (the sign is +-1), so the sum rounds once, as ``offset - x`` does, and label 0
    (``x * 1 + -0.0``) keeps every value but a NaN bit for bit. Arithmetic quiets a signalling NaN and rewrites
    half-precision NaN payloads, so a batch holding a NaN (its sum is NaN: one read-only pass) takes the exact form
    instead: ``offset - x`` for the whole batch, then the label-0 images copied back from ``x``.
    """
    if out is None:
        out = empty_like_images(x)
    if bool(x.sum().isnan()):
        torch.sub(inversion_offsets(table, x.shape[1]), x, out=out)
        return copy_images(labels == 0, x, out)
    shift, sign = blend_rows(table, labels, x.shape[1])
    return torch.mul(x, sign, out=out).add_(shift)
