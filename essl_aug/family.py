"""Base classes: a discrete transformation family, and a family that is a group."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from essl_aug import _kernels
from essl_aug._layout import empty_images
from essl_aug._validation import EXACT_DTYPES, check_dtype, check_images, check_labels, check_out

if TYPE_CHECKING:
    from essl_aug.augment.base import TargetSpec


class TransformFamily(ABC):
    """A finite, labelled set of image transformations; label 0 is always the identity.

    Subclasses set ``num_classes``, ``name`` and the dtypes on which they are exact, extend :meth:`check`
    with their own requirements, and implement the protocol: :meth:`_apply` (and optionally a faster
    :meth:`_apply_all`) on a batch that has passed the checks. Callers use :meth:`apply` and
    :meth:`apply_all`, which check their arguments, accept an unbatched (C, H, W) image and never modify
    their input, or :meth:`apply_unchecked` where the checks have already run.
    """

    name: str = "family"
    num_classes: int
    dtypes: tuple[torch.dtype, ...] = EXACT_DTYPES
    #: True when each output pixel depends only on the input pixel at the same position (all its channels), so the
    #: family commutes with every pixel move (inversion, grayscale); a :class:`~essl_aug.Product` relies on it.
    pointwise: bool = False

    # -- to override -------------------------------------------------------------------------
    @abstractmethod
    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        """Transform a checked (B, C, H, W) batch; write into ``out`` when given (the protocol; no checks)."""

    def check(self, x: Tensor) -> None:
        """Raise a clear error if ``x`` (B, C, H, W) cannot be transformed by this family."""
        check_dtype(x, self.dtypes, f"the {self.name} family")

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        """Write every element, in block layout, into ``out`` of shape (K*B, C, H, W) (the protocol; no checks)."""
        return _kernels.each_element(self._apply, x, self.num_classes, out)

    # -- public API ----------------------------------------------------------------------------
    @property
    def target_spec(self) -> TargetSpec:
        """The target of a head for this family, ``TargetSpec("classification", num_classes)`` (each view's label).

        The parameterised augmentations of ``essl_aug.augment`` expose the same property, so a head is sized from
        ``target_spec`` whichever it learns.
        """
        # Imported here: ``essl_aug.augment`` modules import the core (``essl_aug.transform``, ...), which imports
        # this module, so a module-level import would make ``import essl_aug`` circular.
        from essl_aug.augment.base import TargetSpec

        return TargetSpec("classification", self.num_classes)

    def apply_unchecked(self, x: Tensor, labels: Tensor, out: Tensor | None = None) -> Tensor:
        """:meth:`apply` without any check, for callers that have run them (one :meth:`check` per batch).

        Args:
            x: images (B, C, H, W) that passed :meth:`check`.
            labels: integer class indices (B,) on ``x.device``, in ``[0, num_classes)``.
            out: optional preallocated result shaped like ``x``, not overlapping ``x``.

        Returns:
            The transformed images, as :meth:`apply`. Wrong arguments give a PyTorch error or a wrong result.
        """
        return self._apply(x, labels, out)

    def apply(self, x: Tensor, labels: Tensor, out: Tensor | None = None) -> Tensor:
        """Apply element ``labels[i]`` to image ``x[i]``.

        Args:
            x: images (B, C, H, W), or one image (C, H, W) with a 0-d ``labels``.
            labels: class indices (B,), int64 or int32, on ``x.device``, in ``[0, num_classes)``.
            out: optional preallocated result shaped like ``x`` (a loop can reuse one buffer); it must not share any
                memory with ``x`` (any overlap of the bytes they span is refused).

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
        check_out(out, x, x)
        y = self._apply(x, labels, out)
        return y.squeeze(0) if unbatched else y

    def apply_all(self, x: Tensor, out: Tensor | None = None) -> Tensor:
        """Apply every element to every image, in block layout.

        Rows ``k*B .. (k+1)*B - 1`` hold element ``k`` applied to the whole batch, so the matching
        labels are ``torch.arange(K).repeat_interleave(B)`` (the reference E-SSL layout).

        Args:
            x: images (B, C, H, W) or one image (C, H, W).
            out: optional preallocated result (K*B, C, H, W), sharing no memory with ``x``.

        Returns:
            (K*B, C, H, W) images (K images for an unbatched input).
        """
        if isinstance(x, Tensor) and x.ndim == 3:
            x = x.unsqueeze(0)
        check_images(x)
        self.check(x)
        shape = (self.num_classes * x.shape[0], *x.shape[1:])
        if out is None:
            return self._apply_all(x, empty_images(shape, like=x))
        if isinstance(out, Tensor) and (tuple(out.shape) != shape or out.dtype != x.dtype or out.device != x.device):
            raise ValueError(
                f"`out` must have shape {shape}, dtype {x.dtype} and device {x.device}; got "
                f"{tuple(out.shape)}, {out.dtype} on {out.device}."
            )
        check_out(out, out, x)
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
