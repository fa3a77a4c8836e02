"""Memory layout of image batches: the one place that decides whether a batch is stored pixels-last.

Every result of the package keeps the memory format of its input: (B, C, H, W) batches stored channels-last
(pixels outer, channels inner) give channels-last results, every other batch contiguous ones.
"""

from __future__ import annotations

import torch
from torch import Tensor


def pixels_last(x: Tensor) -> bool:
    """True when the (B, C, H, W) batch ``x`` is stored channels-last and not also contiguous.

    A batch that is both (one pixel, or one channel) counts as contiguous, as ``torch.empty_like`` would keep it.
    """
    return x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def memory_format(x: Tensor) -> torch.memory_format:
    """The memory format a result computed from ``x`` is stored in: ``channels_last`` or ``contiguous_format``."""
    return torch.channels_last if pixels_last(x) else torch.contiguous_format


def empty_like_images(x: Tensor) -> Tensor:
    """An uninitialised tensor shaped, typed and laid out like ``x``."""
    return torch.empty_like(x, memory_format=memory_format(x))


def empty_images(shape: tuple[int, ...], like: Tensor) -> Tensor:
    """An uninitialised batch of ``shape`` with the dtype, device and memory format of ``like``."""
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=memory_format(like))


def stored_like(y: Tensor, x: Tensor) -> Tensor:
    """``y`` in the memory format of ``x`` (``y`` itself when it already is)."""
    return y.contiguous(memory_format=memory_format(x))
