"""The special forms of the ops and the one switch that chooses them.

The plain form of every op (:mod:`essl_aug._kernels`, :mod:`essl_aug.functional`) is the default. A special form is
kept only where a measurement a user feels shows its win, and runs only inside :func:`fast_forms` (or after
``set_fast_forms(True)``): per-image pixel moves as lookups with broadcast row and column indices
(:mod:`essl_aug._fast.lookups`), which move about one read and one write of the batch where the plain gather also
reads an int64 index per pixel (``python -m benchmarks.traffic``: 1.7x to 3.8x the bytes of a copy for quarter turns
with the gather, 1.1x to 1.2x with the lookups). Both forms give the same bits. Calls under autograd or
``torch.compile`` always take the plain form. The win is in bytes, for a GPU: on a CPU the lookups of quarter turns
and horizontal flips are slower than the gather (``python -m benchmarks.speed``, the ``essl_aug fast forms`` column).
"""

from __future__ import annotations

from contextlib import ContextDecorator
from typing import Any

import torch
from torch import Tensor

from essl_aug._kernels import needs_grad

__all__ = ["active", "fast_forms", "set_fast_forms"]

_enabled = False


def set_fast_forms(enabled: bool) -> bool:
    """Turn the special forms on or off for the whole process; returns the previous setting.

    Example:
        >>> previous = set_fast_forms(True)
        >>> set_fast_forms(previous)
        True
    """
    global _enabled
    if not isinstance(enabled, bool):
        raise TypeError(f"`enabled` must be True or False, got {enabled!r}.")
    previous, _enabled = _enabled, enabled
    return previous


class fast_forms(ContextDecorator):
    """Run the ops' special forms inside a ``with`` block (or a decorated function); ``fast_forms(False)`` turns
    them off there. The previous setting comes back on exit. They move fewer bytes (a GPU's cost); on a CPU they can
    be slower.

    Example:
        >>> import essl_aug
        >>> x = torch.rand(8, 3, 32, 32)
        >>> labels = torch.randint(4, (8,))
        >>> with essl_aug.fast_forms():
        ...     fast = essl_aug.functional.rotate90(x, labels)
        >>> torch.equal(fast, essl_aug.functional.rotate90(x, labels))
        True
    """

    def __init__(self, enabled: bool = True) -> None:
        if not isinstance(enabled, bool):
            raise TypeError(f"`enabled` must be True or False, got {enabled!r}.")
        self.enabled = enabled
        self._previous: list[bool] = []

    def __enter__(self) -> fast_forms:
        self._previous.append(set_fast_forms(self.enabled))
        return self

    def __exit__(self, *exc: Any) -> None:
        set_fast_forms(self._previous.pop())


def active(x: Tensor) -> bool:
    """True when a call on ``x`` takes the special forms: switched on, no autograd, not under ``torch.compile``."""
    return _enabled and not needs_grad(x) and not torch.compiler.is_compiling()
