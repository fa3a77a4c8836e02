"""The protocol of a parameterised augmentation: per-image parameters drawn on the device, then applied.

An augmentation of the SSL views (random resized crop, flip, colour jitter, ...) is split as kornia splits its
augmentations, into drawing the parameters and applying them:

- ``sample(shape, device, generator) -> params``: the per-image parameters of a batch of images shaped ``shape``
  (B, C, H, W), drawn on ``device`` (with ``generator`` when given) without a host synchronisation. ``params`` is a
  frozen dataclass of (B, ...) tensors; every one has ``applied``, a (B,) bool mask: where it is False the image
  is returned bit-identical (probability ``1 - p``).
- ``apply(x, params) -> x'``: the exact, batched op with those parameters; a new tensor, the input is never modified.
- ``target(params)``: what a head regresses or classifies for one view, normalised as the class documents.
- ``relative(a, b)``: the difference between two views' parameters (AugSelf's targets, Lee et al., 2021).

``aug(x, generator)`` does both steps and returns ``(x', params)``. :attr:`Augmentation.target_spec` says what a
head consumes: the discrete families share it (:class:`TargetSpec` ``"classification"`` with ``num_classes``).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

import torch
from torch import Tensor

from essl_aug._validation import EXACT_DTYPES, check_dtype, check_images


@dataclass(frozen=True)
class TargetSpec:
    """What a head predicts: ``kind`` ``"classification"`` over ``size`` classes, or ``"regression"`` of ``size``
    numbers (named by ``names``, in order).

    Example:
        >>> TargetSpec("regression", 2, ("cos", "sin")).size
        2
    """

    kind: Literal["classification", "regression"]
    size: int
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("classification", "regression"):
            raise ValueError(f"`kind` must be 'classification' or 'regression', got {self.kind!r}")
        if self.size < 1:
            raise ValueError(f"`size` must be at least 1, got {self.size}")
        if self.names and len(self.names) != self.size:
            raise ValueError(f"`names` must name each of the {self.size} outputs, got {len(self.names)} names")


@dataclass(frozen=True)
class Params:
    """The parameters of one augmentation for a batch: ``applied`` (B,) bool, and the subclass's (B, ...) tensors."""

    applied: Tensor

    @property
    def batch(self) -> int:
        return self.applied.shape[0]

    def to(self, device: torch.device | str) -> Params:
        """The same parameters on ``device`` (every tensor field moved, without blocking)."""
        return dataclasses.replace(
            self,
            **{
                f.name: getattr(self, f.name).to(device, non_blocking=True)
                for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), Tensor)
            },
        )


P = TypeVar("P", bound=Params)


def draw_device(device: torch.device | str, generator: torch.Generator | None) -> torch.device:
    """Where to draw: the generator's device when one is given (the draws are then moved to ``device``)."""
    return generator.device if generator is not None else torch.device(device)


def uniform(
    batch: int,
    low: float | Tensor,
    high: float | Tensor,
    device: torch.device | str,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``batch`` float32 numbers uniform in ``[low, high)`` on ``device``, drawn with ``generator``.

    Example:
        >>> u = uniform(1000, 2.0, 3.0, "cpu", torch.Generator().manual_seed(0))
        >>> bool(((u >= 2) & (u < 3)).all()), u.dtype
        (True, torch.float32)
    """
    u = torch.rand(batch, device=draw_device(device, generator), generator=generator)
    return (low + (high - low) * u).to(device, non_blocking=True)


def bernoulli(batch: int, p: float, device: torch.device | str, generator: torch.Generator | None = None) -> Tensor:
    """``batch`` booleans, each True with probability ``p``, on ``device`` (``p=1``: all True, ``p=0``: all False).

    Example:
        >>> bernoulli(4, 1.0, "cpu").tolist(), bernoulli(4, 0.0, "cpu").tolist()
        ([True, True, True, True], [False, False, False, False])
    """
    u = torch.rand(batch, device=draw_device(device, generator), generator=generator)
    return (u < p).to(device, non_blocking=True)


def check_probability(p: float, name: str = "p") -> float:
    """``p`` as a float in [0, 1], or a ``ValueError`` naming ``name``."""
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"`{name}` is a probability and must lie in [0, 1], got {p}")
    return p


def select(applied: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """``new`` where ``applied`` (B,) is True, ``old`` (bit-identical) elsewhere; a new tensor."""
    return torch.where(applied.view(-1, *([1] * (new.ndim - 1))), new, old)


class Augmentation(ABC, Generic[P]):
    """Base class of the parameterised augmentations (see the module docstring for the protocol).

    Subclasses set ``name`` and :attr:`target_spec`, and implement :meth:`sample`, :meth:`apply`,
    :meth:`target` and :meth:`relative`; ``p`` is the probability that an image is transformed.
    """

    name: ClassVar[str] = ""
    #: The dtypes :meth:`apply` accepts (float and uint8 unless a subclass narrows it).
    dtypes: ClassVar[tuple[torch.dtype, ...]] = EXACT_DTYPES

    def __init__(self, p: float = 1.0) -> None:
        self.p = check_probability(p)

    @property
    @abstractmethod
    def target_spec(self) -> TargetSpec:
        """What :meth:`target` returns for a head (kind and size)."""

    @property
    def relative_spec(self) -> TargetSpec:
        """What :meth:`relative` returns (by default the same as :attr:`target_spec`)."""
        return self.target_spec

    @abstractmethod
    def sample(
        self, shape: Sequence[int], device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> P:
        """The parameters for a batch of images shaped ``shape`` (B, C, H, W), drawn on ``device``."""

    @abstractmethod
    def apply(self, x: Tensor, params: P) -> Tensor:
        """``x`` (B, C, H, W) transformed with ``params``; a new tensor (``x`` is never modified)."""

    @abstractmethod
    def target(self, params: P) -> Tensor:
        """The per-image target of one view, (B, target_spec.size) float32 or (B,) int64 class indices."""

    @abstractmethod
    def relative(self, a: P, b: P) -> Tensor:
        """The per-image target comparing two views of the same images (AugSelf's difference)."""

    def check(self, x: Tensor, name: str = "x") -> None:
        """Raise a clear error unless ``x`` is a (B, C, H, W) tensor of a supported dtype."""
        check_images(x, name)
        check_dtype(x, self.dtypes, f"{type(self).__name__}", name)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, P]:
        """Draw the parameters for ``x`` on its device and apply them: ``(x', params)``."""
        self.check(x)
        params = self.sample(x.shape, x.device, generator)
        return self.apply(x, params), params

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


def batch_shape(shape: Sequence[int], name: str = "shape") -> tuple[int, int, int, int]:
    """``shape`` as four ints (B, C, H, W), or a ``ValueError`` naming ``name`` (``sample`` takes ``x.shape``).

    Example:
        >>> batch_shape(torch.Size([2, 3, 8, 8]))
        (2, 3, 8, 8)
    """
    dims = tuple(int(s) for s in shape)
    if len(dims) != 4:
        raise ValueError(f"`{name}` must be a batch shape (B, C, H, W), e.g. `x.shape`, got {dims}.")
    if min(dims[2:]) < 1 or dims[0] < 0:
        raise ValueError(f"`{name}` must have at least one pixel per side and B >= 0, got {dims}.")
    return dims[0], dims[1], dims[2], dims[3]


def check_params(params: Params, kind: type[Params], x: Tensor, name: str = "params") -> None:
    """Raise unless ``params`` is a ``kind`` drawn for ``x``'s batch size, on ``x``'s device (no host sync).

    Example:
        >>> params = Params(torch.ones(3, dtype=torch.bool))
        >>> try:
        ...     check_params(params, Params, torch.rand(2, 3, 4, 4))
        ... except ValueError as err:
        ...     print(err)
        `params` was drawn for B=3 images, `x` has 2; draw them with `sample(x.shape, x.device)`.
    """
    if not isinstance(params, kind):
        raise TypeError(
            f"`{name}` must be a {kind.__name__} (from this augmentation's `sample`), got {type(params).__name__}."
        )
    if params.batch != x.shape[0]:
        raise ValueError(
            f"`{name}` was drawn for B={params.batch} images, `x` has {x.shape[0]}; "
            "draw them with `sample(x.shape, x.device)`."
        )
    if params.applied.device != x.device:
        raise ValueError(
            f"`{name}` is on {params.applied.device} but `x` is on {x.device}; move it with `{name}.to(x.device)`."
        )


def rand(size: Sequence[int], device: torch.device | str, generator: torch.Generator | None = None) -> Tensor:
    """float32 numbers uniform in ``[0, 1)`` shaped ``size`` on ``device``, drawn with ``generator`` (on its device).

    Example:
        >>> rand((2, 3), "cpu", torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3])
    """
    u = torch.rand(tuple(size), device=draw_device(device, generator), generator=generator)
    return u.to(device, non_blocking=True)


def check_views(a: Params, b: Params) -> None:
    """Raise unless ``a`` and ``b`` hold the parameters of two views of one batch (same batch size)."""
    if a.batch != b.batch:
        raise ValueError(f"`a` and `b` must be two views of one batch, got B={a.batch} and B={b.batch}.")


def check_channels(x: Tensor, allowed: tuple[int, ...], op: str, name: str = "x") -> int:
    """The channel count of ``x``, or a ``ValueError`` unless it is one of ``allowed``."""
    c = x.shape[1]
    if c not in allowed:
        kinds = " or ".join(f"{a} ({'gray' if a == 1 else 'RGB'})" for a in allowed)
        raise ValueError(f"{op} needs images with {kinds} channels, but `{name}` has {c}; convert them first.")
    return c
