"""Base classes: a discrete transformation family, and a family that is a group."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from essl_aug._validation import EXACT_DTYPES, check_dtype, check_images, check_labels, check_out


class TransformFamily(ABC):
    """A finite, labelled set of image transformations; label 0 is always the identity.

    Subclasses set ``num_classes``, ``name`` and the dtypes on which they are exact, and implement
    :meth:`_apply` on a validated (B, C, H, W) batch. The public :meth:`apply` validates, accepts an
    unbatched (C, H, W) image, and never modifies its input.
    """

    name: str = "family"
    num_classes: int
    dtypes: tuple[torch.dtype, ...] = EXACT_DTYPES

    # -- to override -------------------------------------------------------------------------
    @abstractmethod
    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        """Transform a validated (B, C, H, W) batch; write into ``out`` when given."""

    def check(self, x: Tensor) -> None:
        """Raise a clear error if ``x`` (B, C, H, W) cannot be transformed by this family."""
        check_dtype(x, self.dtypes, f"the {self.name} family")

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        """Write every element, in block layout, into ``out`` of shape (K*B, C, H, W)."""
        b = x.shape[0]
        for k in range(self.num_classes):
            labels = torch.full((b,), k, dtype=torch.long, device=x.device)
            self._apply(x, labels, out[k * b : (k + 1) * b])
        return out

    # -- public API ----------------------------------------------------------------------------
    def apply(self, x: Tensor, labels: Tensor, out: Tensor | None = None) -> Tensor:
        """Apply element ``labels[i]`` to image ``x[i]``.

        Args:
            x: images (B, C, H, W), or one image (C, H, W) with a 0-d ``labels``.
            labels: integer class indices (B,) on ``x.device``, in ``[0, num_classes)``.
            out: optional preallocated result shaped like ``x`` (a loop can reuse one buffer).

        Returns:
            The transformed images, same shape, dtype, device and memory format as ``x``.
        """
        unbatched = isinstance(x, Tensor) and x.ndim == 3
        if unbatched:
            x = x.unsqueeze(0)
            labels = labels.reshape(1) if isinstance(labels, Tensor) and labels.numel() == 1 else labels
            out = out.unsqueeze(0) if out is not None else None
        check_images(x)
        self.check(x)
        check_labels(labels, x.shape[0], self.num_classes, x.device)
        check_out(out, x)
        y = self._apply(x, labels, out)
        return y.squeeze(0) if unbatched else y

    def apply_all(self, x: Tensor, out: Tensor | None = None) -> Tensor:
        """Apply every element to every image, in block layout.

        Rows ``k*B .. (k+1)*B - 1`` hold element ``k`` applied to the whole batch, so the matching
        labels are ``torch.arange(K).repeat_interleave(B)`` (the reference E-SSL layout).

        Args:
            x: images (B, C, H, W) or one image (C, H, W).
            out: optional preallocated result (K*B, C, H, W).

        Returns:
            (K*B, C, H, W) images (K images for an unbatched input).
        """
        if isinstance(x, Tensor) and x.ndim == 3:
            x = x.unsqueeze(0)
        check_images(x)
        self.check(x)
        shape = (self.num_classes * x.shape[0], *x.shape[1:])
        if out is None:
            out = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=_memory_format(x))
        elif tuple(out.shape) != shape or out.dtype != x.dtype or out.device != x.device:
            raise ValueError(
                f"`out` must have shape {shape}, dtype {x.dtype} and device {x.device}; got "
                f"{tuple(out.shape)}, {out.dtype} on {out.device}."
            )
        return self._apply_all(x, out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_classes={self.num_classes})"


class GroupFamily(TransformFamily):
    """A family that is a finite group under composition of its transformations.

    ``compose(a, b)`` is the label of "``b`` first, then ``a``":
    ``apply(apply(x, b), a) == apply(x, compose(a, b))``.
    """

    @abstractmethod
    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        """Label of applying ``b`` first, then ``a`` (elementwise over label tensors)."""

    @abstractmethod
    def inverse(self, a: Tensor) -> Tensor:
        """Label of the inverse element: ``compose(inverse(a), a) == 0``."""


def _memory_format(x: Tensor) -> torch.memory_format:
    if x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def empty_like_images(x: Tensor) -> Tensor:
    """An uninitialised tensor shaped, typed and laid out like ``x``."""
    return torch.empty_like(x, memory_format=_memory_format(x))
