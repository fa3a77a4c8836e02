"""The one protocol of every transformation: per-image parameters drawn on the device, then applied.

A transformation is split as torchvision v2 and kornia split theirs, into drawing the parameters and applying them:

- ``sample(shape, device, generator) -> params``: the per-image parameters of a batch of images shaped ``shape``
  (B, C, H, W), drawn on ``device`` (with ``generator`` when given) without a host synchronisation. ``params`` is a
  frozen dataclass of (B, ...) tensors; every one has ``applied``, a (B,) bool mask: where it is False the image is
  returned bit-identical.
- ``apply(x, params) -> x'``: the op of :mod:`essl_aug.functional` with those parameters; a new tensor, the input is
  never modified. The base class checks the input and the parameters and keeps the rows not applied, once for all.
- ``target(params)``: what a head predicts for one view (:attr:`Transformation.target_spec` says what it is);
  ``relative(a, b)``: the same for the difference between two views of the same images (AugSelf's targets).
- ``output_shape(shape)``: the shape of the result (a crop changes it), so a pipeline asks the object.

``t(x, generator)`` does both steps and returns ``(x', params)``.

A **family** (:class:`Family`) is a transformation whose parameter is a label in ``range(K)``, label 0 the identity
(the E-SSL transformation sets): ``p`` is how labels are drawn (None: uniform over the K elements; a probability: the
identity with probability ``1 - p``, else a uniform non-identity element), so the family "horizontal flip" and the
augmentation "random horizontal flip" are one class. A family adds ``apply_all`` (every element for every image, in
the reference block layout); a :class:`Group` adds ``compose`` and ``inverse``; a :class:`PixelMove` is a group of
pixel permutations described by a table (flips, quarter turns, jigsaws, translations).
"""

from __future__ import annotations

import dataclasses
import operator
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar

import torch
from torch import Tensor

from essl_aug import _random
from essl_aug._cache import PlanCache
from essl_aug._validation import (
    EXACT_DTYPES,
    check_dtype,
    check_generator,
    check_images,
    check_labels,
    check_probability,
)

__all__ = [
    "Family",
    "Group",
    "Involution",
    "LabelParams",
    "Params",
    "PixelMove",
    "TargetSpec",
    "Transformation",
]


@dataclass(frozen=True)
class TargetSpec:
    """What a head predicts: ``kind`` ``"classification"`` over ``size`` classes, or ``"regression"`` of ``size``
    numbers (named by ``names``, in order).

    A regression may give each number's range (``ranges``, for :meth:`normalize`), or be ``circular``: the
    ``(cos, sin)`` of an angle, compared on the circle.

    Example:
        >>> spec = TargetSpec("regression", 1, ("sigma",), ranges=((0.1, 2.0),))
        >>> spec.normalize(torch.tensor([[0.1], [2.0]])).flatten().tolist()
        [0.0, 1.0]
    """

    kind: Literal["classification", "regression"]
    size: int
    names: tuple[str, ...] = ()
    ranges: tuple[tuple[float, float], ...] = ()
    circular: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("classification", "regression"):
            raise ValueError(f"`kind` must be 'classification' or 'regression', got {self.kind!r}")
        if self.size < 1:
            raise ValueError(f"`size` must be at least 1, got {self.size}")
        if self.names and len(self.names) != self.size:
            raise ValueError(f"`names` must name each of the {self.size} outputs, got {len(self.names)} names")
        if self.ranges and len(self.ranges) != self.size:
            raise ValueError(f"`ranges` must give each of the {self.size} outputs a range, got {len(self.ranges)}")

    @property
    def varies(self) -> bool:
        """Whether the target can take more than one value (a range of zero width, or one class, cannot)."""
        if self.kind == "classification":
            return self.size > 1
        return not self.ranges or any(hi > lo for lo, hi in self.ranges)

    def normalize(self, target: Tensor) -> Tensor:
        """``target`` (B, size) mapped to [0, 1] over each output's range; unchanged without ranges, float32."""
        target = target.to(torch.float32)
        if not self.ranges:
            return target
        columns = [(target[:, k] - lo) / (hi - lo if hi > lo else 1.0) for k, (lo, hi) in enumerate(self.ranges)]
        return torch.stack(columns, dim=1)

    @property
    def spans(self) -> tuple[float, ...]:
        """The width of each output's range, 1 without ranges; the unit of a normalised error."""
        return tuple(hi - lo for lo, hi in self.ranges) if self.ranges else (1.0,) * self.size


@dataclass(frozen=True)
class Params:
    """The parameters of one transformation for a batch: ``applied`` (B,) bool and the subclass's (B, ...) tensors."""

    applied: Tensor

    @property
    def batch(self) -> int:
        return int(self.applied.shape[0])

    def map(self, fn: Any) -> Any:
        """The same parameters with ``fn`` applied to every tensor field (a new frozen dataclass of this class)."""
        return dataclasses.replace(
            self,
            **{
                f.name: fn(getattr(self, f.name))
                for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), Tensor)
            },
        )

    def to(self, device: torch.device | str) -> Any:
        """The same parameters on ``device`` (every tensor field moved; without blocking towards an accelerator, and
        waiting for the values on a copy to the host)."""
        return self.map(lambda t: _random.moved(t, device))


@dataclass(frozen=True)
class LabelParams(Params):
    """A family's parameters: ``labels`` (B,) int64, and ``applied`` (``labels != 0``). Build with :meth:`of`."""

    labels: Tensor

    @classmethod
    def of(cls, labels: Tensor) -> LabelParams:
        """The parameters of the (B,) ``labels``."""
        return cls(applied=labels != 0, labels=labels)


P = TypeVar("P", bound=Params)


def batch_shape(shape: Sequence[int], name: str = "shape") -> tuple[int, int, int, int]:
    """``shape`` as four ints (B, C, H, W), or a ``ValueError`` naming ``name`` (``sample`` takes ``x.shape``).

    Example:
        >>> batch_shape(torch.Size([2, 3, 8, 8]))
        (2, 3, 8, 8)
    """
    try:
        dims = tuple(operator.index(s) for s in shape)  # 4.5 is refused, not truncated
    except TypeError:
        dims = ()
    if len(dims) != 4:
        raise ValueError(f"`{name}` must be a batch shape (B, C, H, W), e.g. `x.shape`, got {shape!r}.")
    if min(dims[2:]) < 1 or dims[0] < 0 or dims[1] < 1:
        raise ValueError(f"`{name}` must have B >= 0, C >= 1 and at least one pixel per side, got {dims}.")
    return dims[0], dims[1], dims[2], dims[3]


def as_batch(x: Tensor) -> tuple[Tensor, bool]:
    """``(batch, one_image)``: one (C, H, W) image as a batch of one, a batch as it is; other shapes refused."""
    if isinstance(x, Tensor) and x.ndim == 3:
        return x.unsqueeze(0), True
    check_images(x, one_image=True)
    return x, False


def keep_rows(applied: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """``new`` where ``applied`` (B,) is True, ``old`` (bit-identical) elsewhere; a new tensor."""
    return torch.where(applied.view(-1, *([1] * (new.ndim - 1))), new, old)


class Transformation(ABC, Generic[P]):
    """Base class of every transformation (the module docstring states the protocol).

    Subclasses set ``name`` (the key of their parameters in a pipeline) and ``params_type``, implement
    :meth:`_sample`, :meth:`_apply` (the op on every image; the base keeps the rows not applied), :meth:`_target`
    (:meth:`target` for checked parameters) and :attr:`target_spec`, and extend :meth:`check` with their own
    requirements on the images. ``p`` is the probability that an image is transformed.
    """

    name: str = ""
    params_type: ClassVar[type[Params]] = Params
    #: The dtypes the op accepts.
    dtypes: tuple[torch.dtype, ...] = EXACT_DTYPES
    #: True when the base keeps the rows not applied (when the op keeps the image size); False when the op keeps
    #: them itself (a family's label 0).
    blends: ClassVar[bool] = True

    def __init__(self, p: float | None = 1.0) -> None:
        self.p = None if p is None else check_probability(p)

    # -- to implement --------------------------------------------------------------------------------------------------
    @abstractmethod
    def _sample(self, shape: tuple[int, int, int, int], device: torch.device, generator: torch.Generator | None) -> P:
        """The parameters of a batch of ``shape`` (checked), drawn on ``device``."""

    @abstractmethod
    def _apply(self, x: Tensor, params: P) -> Tensor:
        """The op on the checked batch ``x`` with checked ``params`` (every row: the base keeps the others)."""

    @property
    @abstractmethod
    def target_spec(self) -> TargetSpec:
        """What :meth:`~essl_aug.transforms.base.Transformation.target` returns for a head (kind and size)."""

    @abstractmethod
    def _target(self, params: P) -> Tensor:
        """The per-image target of the checked batch ``params``."""

    def target(self, params: P) -> Tensor:
        """The per-image target of one view: (B, size) float32, or (B,) int64 class indices."""
        self._check_batched(params, "params")
        return self._target(params)

    def relative(self, a: P, b: P) -> Tensor:
        """The per-image target comparing two views of the same images (AugSelf's difference): by default
        ``target(a) - target(b)`` (regression targets)."""
        self._check_pair(a, b)
        if self.target_spec.kind != "regression":
            raise TypeError(f"{type(self).__name__} has no relative target; compare the two views' targets instead.")
        return self.target(a) - self.target(b)

    @property
    def relative_spec(self) -> TargetSpec:
        """What :meth:`relative` returns (by default the kind and size of :attr:`target_spec`, without ranges)."""
        spec = self.target_spec
        return TargetSpec(spec.kind, spec.size, spec.names, circular=spec.circular)

    def check(self, x: Tensor, name: str = "x") -> None:
        """Raise a clear error unless ``x`` is a (B, C, H, W) batch this transformation can take."""
        check_images(x, name)
        check_dtype(x, self.dtypes, type(self).__name__, name)

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int, int, int]:
        """The shape of the result for an input shaped ``shape`` (the same, unless the op resizes)."""
        return batch_shape(shape)

    def check_params(self, params: Params, x: Tensor, name: str = "params") -> None:
        """Raise unless ``params`` are this transformation's, drawn for ``x``'s batch size, on ``x``'s device, with a
        bool ``applied`` mask and one row per image in every field."""
        self._check_kind(params, x, name)
        self._check_rows(params, x, name)

    def _check_kind(self, params: Params, x: Tensor, name: str) -> None:
        if not isinstance(params, self.params_type):
            raise TypeError(
                f"`{name}` must be a {self.params_type.__name__} (from this transformation's `sample`), got "
                f"{type(params).__name__}."
            )
        if params.batch != x.shape[0]:
            raise ValueError(
                f"`{name}` was drawn for B={params.batch} images, `x` has {x.shape[0]}; draw them with "
                "`sample(x.shape, x.device)`."
            )
        if params.applied.device != x.device:
            raise ValueError(
                f"`{name}` is on {params.applied.device} but `x` is on {x.device}; move it with `{name}.to(x.device)`."
            )
        if params.applied.dtype != torch.bool:
            raise TypeError(f"`{name}.applied` must be a bool mask, got {params.applied.dtype}.")

    @staticmethod
    def _check_rows(params: Params, x: Tensor, name: str) -> None:
        for field in dataclasses.fields(params):
            value = getattr(params, field.name)
            if isinstance(value, Tensor) and (value.ndim == 0 or value.shape[0] != x.shape[0]):
                raise ValueError(
                    f"`{name}.{field.name}` has shape {tuple(value.shape)}, not one row per image of `x` (B="
                    f"{x.shape[0]}); draw the parameters with `sample(x.shape, x.device)`."
                )

    @staticmethod
    def require(ok: Tensor, message: str) -> None:
        """A check of parameter values: a ``ValueError`` with ``message`` on the CPU, an asynchronous assertion on
        another device or under ``torch.compile`` (never a host synchronisation)."""
        if ok.device.type == "cpu" and not torch.compiler.is_compiling():
            if not bool(ok):
                raise ValueError(message)
        else:
            torch._assert_async(ok, message)

    # -- the protocol --------------------------------------------------------------------------------------------------
    def sample(
        self, shape: Sequence[int], device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> P:
        """The parameters for a batch of images shaped ``shape`` (B, C, H, W), drawn on ``device``."""
        check_generator(generator)
        return self._sample(batch_shape(shape), torch.device(device), generator)

    def apply(self, x: Tensor, params: P) -> Tensor:
        """``x`` (B, C, H, W), or one image (C, H, W) with parameters for one, transformed with ``params``.

        Returns a new tensor of ``x``'s dtype, device and memory format; ``x`` is never modified.
        """
        x, unbatched = as_batch(x)
        self.check(x)
        self.check_params(params, x)
        y = self._apply(x, params)
        if self.blends and y.shape == x.shape:
            y = keep_rows(params.applied, y, x)
        return y.squeeze(0) if unbatched else y

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, P]:
        """Draw the parameters for ``x`` on its device and apply them: ``(x', params)``."""
        batch, _ = as_batch(x)
        self.check(batch)
        params = self.sample(batch.shape, batch.device, generator)
        return self.apply(x, params), params

    def _check_batched(self, params: Params, name: str) -> None:
        if not isinstance(params, self.params_type):
            raise TypeError(f"`{name}` must be a {self.params_type.__name__}, got {type(params).__name__}.")
        if params.applied.ndim != 1:
            raise ValueError(
                f"`{name}` must hold a batch's parameters (`applied` shaped (B,)), got `applied` shaped "
                f"{tuple(params.applied.shape)}; one image's parameters (an item of ViewsDataset) are batched by "
                "`collate_views` (or `stack_params`) first."
            )

    def _check_pair(self, a: Params, b: Params) -> None:
        for name, p in (("a", a), ("b", b)):
            self._check_batched(p, name)
        if a.batch != b.batch:
            raise ValueError(f"`a` and `b` must be two views of one batch, got B={a.batch} and B={b.batch}.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class Family(Transformation[LabelParams]):
    """A finite, labelled set of transformations; label 0 is always the identity.

    Subclasses set ``name`` and ``num_classes`` and implement :meth:`_op` (the op of :mod:`essl_aug.functional`
    for (B,) labels, or every element in block layout for ``labels=None``).

    Args:
        p: how labels are drawn: None (default) uniformly over the ``num_classes`` elements (the E-SSL label); a
            probability: the identity with probability ``1 - p``, otherwise a uniformly drawn non-identity element
            (for two classes, torchvision's ``p``).

    ``apply(x, params)`` takes the :class:`LabelParams` of :meth:`~Transformation.sample` or the (B,) labels themselves.
    """

    params_type = LabelParams
    blends = False
    num_classes: int
    #: True when each output pixel depends only on the input pixel at the same position, in all its channels; such a
    #: family commutes with every pixel move (inversion, grayscale), which a :class:`~essl_aug.Product` relies on.
    pointwise: bool = False

    def __init__(self, p: float | None = None) -> None:
        super().__init__(p)

    @abstractmethod
    def _op(self, x: Tensor, labels: Tensor | None) -> Tensor:
        """The family's op on the checked batch ``x``: element ``labels[i]`` on image ``i``, or all in blocks."""

    def _sample(
        self, shape: tuple[int, int, int, int], device: torch.device, generator: torch.Generator | None
    ) -> LabelParams:
        batch, k = shape[0], self.num_classes
        if self.p is None:
            labels = _random.uniform_labels(batch, k, device, generator)
        else:
            labels = _random.labels_with_p(batch, k, self.p, device, generator)
        return LabelParams.of(labels)

    def _apply(self, x: Tensor, params: LabelParams) -> Tensor:
        return self._op(x, params.labels)

    def check_params(self, params: Params, x: Tensor, name: str = "params") -> None:
        self._check_kind(params, x, name)
        assert isinstance(params, LabelParams)
        check_labels(params.labels, x.shape[0], self.num_classes, x.device, f"{name}.labels")  # its own messages
        self._check_rows(params, x, name)

    def apply(self, x: Tensor, params: LabelParams | Tensor) -> Tensor:
        """Apply element ``labels[i]`` to image ``x[i]`` (``params``: :class:`LabelParams` or the (B,) labels, a
        0-d label for one (C, H, W) image); a new tensor of ``x``'s dtype, device and memory format."""
        if isinstance(params, Tensor):
            unbatched = isinstance(x, Tensor) and x.ndim == 3
            labels = params.reshape(1) if unbatched and params.numel() == 1 else params
            batch = x.unsqueeze(0) if unbatched else x
            if isinstance(batch, Tensor) and batch.ndim == 4:
                check_labels(labels, batch.shape[0], self.num_classes, batch.device)
            params = LabelParams.of(labels)
        return super().apply(x, params)

    def apply_all(self, x: Tensor) -> Tensor:
        """Every element applied to every image, in block layout: rows ``k*B .. (k+1)*B - 1`` hold element ``k``
        (labels ``torch.arange(K).repeat_interleave(B)``, the reference E-SSL layout); (K*B, C, H, W), or (K, C, H,
        W) for one (C, H, W) image."""
        x, _ = as_batch(x)
        self.check(x)
        return self._op(x, None)

    def _target(self, params: LabelParams) -> Tensor:
        """(B,) int64: the labels."""
        return params.labels.long()

    @property
    def target_spec(self) -> TargetSpec:
        return TargetSpec("classification", self.num_classes)

    @property
    def is_group(self) -> bool:
        """Whether :meth:`~Family.compose` and :meth:`~Family.inverse` exist."""
        return False

    def relative(self, a: LabelParams, b: LabelParams) -> Tensor:
        """(B,) int64: for a group, the element that takes view ``b`` to view ``a`` (``compose(a, inverse(b))``,
        AugSelf's ``(r1 - r2) % 4`` for rotations); for another family, 1 where the two views differ, else 0."""
        self._check_pair(a, b)
        if self.is_group:
            return self.compose(a.labels, self.inverse(b.labels))
        return (a.labels != b.labels).long()

    @property
    def relative_spec(self) -> TargetSpec:
        return TargetSpec("classification", self.num_classes if self.is_group else 2)

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        """Label of applying ``b`` first, then ``a``: ``apply(apply(x, b), a) == apply(x, compose(a, b))``."""
        raise TypeError(f"{type(self).__name__} is not a group: it has no compose or inverse.")

    def inverse(self, a: Tensor) -> Tensor:
        """Label of the inverse element: ``compose(inverse(a), a) == 0``."""
        raise TypeError(f"{type(self).__name__} is not a group: it has no compose or inverse.")

    def __repr__(self) -> str:
        p = "" if self.p is None else f", p={self.p}"
        return f"{type(self).__name__}(num_classes={self.num_classes}{p})"


class Group(Family):
    """A family that is a finite group under composition (subclasses implement :meth:`~Family.compose` and
    :meth:`~Family.inverse`)."""

    @property
    def is_group(self) -> bool:
        return True


class Involution(Group):
    """A group of two elements, the identity and a transformation that undoes itself (a flip, the inversion)."""

    num_classes = 2

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        return a ^ b

    def inverse(self, a: Tensor) -> Tensor:
        return a.clone()


class PixelMove(Group):
    """A group of pixel permutations, described by a (K, H*W) table of source indices, exact for every dtype.

    Subclasses implement :meth:`build_table` (on the CPU, once per image size); :meth:`table` caches it per size
    and device (a :class:`~essl_aug._cache.PlanCache`, which pickles empty). A product of pixel moves composes
    their tables (:class:`~essl_aug.Product`).
    """

    dtypes = (*EXACT_DTYPES, torch.int32, torch.int64, torch.int16, torch.int8, torch.bool)

    def __init__(self, p: float | None = None) -> None:
        super().__init__(p)
        self._cache = PlanCache()

    @abstractmethod
    def build_table(self, height: int, width: int) -> Tensor:
        """(K, H*W) int64: entry ``[k, p]`` is the flat source pixel of output pixel ``p`` under element ``k``."""

    def table(self, height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
        """The cached permutation table for images of this size, on ``device``."""
        key = (height, width, torch.device(device))
        return self._cache.get(
            key, lambda: self.build_table(height, width).to(device=key[2], dtype=torch.long).contiguous()
        )
