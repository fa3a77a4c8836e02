"""Input checks shared by every family: clear errors that name the argument and the fix."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import SupportsFloat, SupportsIndex

import torch
from torch import Tensor

FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
EXACT_DTYPES = (*FLOAT_DTYPES, torch.uint8)
#: The label dtypes accepted everywhere (families, ``EquivariantTransform``, the loss): the index dtypes of PyTorch.
LABEL_DTYPES = (torch.int64, torch.int32)


def check_images(x: Tensor, name: str = "x", *, one_image: bool = False) -> None:
    """Raise unless ``x`` is a tensor shaped (B, C, H, W); ``one_image``: the caller also takes one (C, H, W)."""
    shapes = "(B, C, H, W) or (C, H, W)" if one_image else "(B, C, H, W)"
    if not isinstance(x, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor shaped {shapes}, got {type(x).__name__}.")
    if x.ndim != 4:
        fix = "" if one_image or x.ndim != 3 else f" (one image: `{name}.unsqueeze(0)`)"
        raise ValueError(
            f"`{name}` must be shaped {shapes}, got shape {tuple(x.shape)}; add or remove a batch dimension{fix}."
        )
    h, w = x.shape[-2:]
    if h == 0 or w == 0:
        raise ValueError(
            f"`{name}` has images without pixels ({h}x{w}, H x W); every family needs at least one pixel per side: "
            "check the crop or resize that produced them."
        )


def check_dtype(x: Tensor, allowed: tuple[torch.dtype, ...], op: str, name: str = "x") -> None:
    """Raise unless ``x.dtype`` is one where ``op`` is exact."""
    if x.dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise TypeError(
            f"`{name}` has dtype {str(x.dtype).replace('torch.', '')}, which {op} does not support exactly; "
            f"convert it first (e.g. `{name}.float() / 255`). Supported: {names}."
        )


def check_square(x: Tensor, op: str, name: str = "x") -> None:
    """Raise unless the last two dimensions are equal (needed by quarter turns)."""
    h, w = x.shape[-2:]
    if h != w:
        raise ValueError(
            f"{op} needs square images but `{name}` is {h}x{w} (H x W); crop or resize to a square first "
            "(a quarter turn of a non-square image changes its shape)."
        )


def check_label_dtype(labels: Tensor, name: str = "labels") -> None:
    """Raise unless ``labels`` is a tensor of class indices in one of :data:`LABEL_DTYPES` (int64 or int32).

    The one rule for labels everywhere: the families, :class:`~essl_aug.EquivariantTransform` and the loss accept
    int64 and int32 (the dtypes PyTorch indexes with) and reject every other dtype (uint8, int8, int16, bool,
    floats) with the fix, ``.long()``; nothing is converted silently.

    Example:
        >>> check_label_dtype(torch.tensor([0, 1], dtype=torch.int32))
        >>> try:
        ...     check_label_dtype(torch.tensor([0, 1], dtype=torch.uint8))
        ... except TypeError as err:
        ...     print(err)
        `labels` must have an integer dtype int64 or int32 (class indices), got torch.uint8; use `labels.long()`.
    """
    if not isinstance(labels, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor of integer class indices, got {type(labels).__name__}.")
    if labels.dtype not in LABEL_DTYPES:
        raise TypeError(
            f"`{name}` must have an integer dtype int64 or int32 (class indices), got {labels.dtype}; "
            f"use `{name}.long()`."
        )


def check_labels(labels: Tensor, batch: int, num_classes: int, device: torch.device, name: str = "labels") -> None:
    """Raise unless ``labels`` is an int64 or int32 tensor shaped (B,) on ``device`` with values in [0, num_classes).

    The dtype rule is :func:`check_label_dtype`. The range check runs on the host only for eager CPU tensors; on an
    accelerator, and inside ``torch.compile``, it is an asynchronous assertion, so it never forces a host
    synchronisation or a graph break.
    """
    check_label_dtype(labels, name)
    if labels.shape != (batch,):
        raise ValueError(f"`{name}` must have shape ({batch},), one label per image, got {tuple(labels.shape)}.")
    if labels.device != device:
        raise ValueError(
            f"`{name}` is on {labels.device} but the images are on {device}; move it with `{name}.to(x.device)`."
        )
    if batch == 0:
        return
    if labels.device.type == "cpu" and not torch.compiler.is_compiling():
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"`{name}` must lie in [0, {num_classes}), got values in [{lo}, {hi}].")
    else:
        torch._assert_async(((labels >= 0) & (labels < num_classes)).all(), f"`{name}` must lie in [0, {num_classes}).")


# -- parameters of the families (checked once, when a family or a cached table is built) --------------------------


def integer(value: object) -> int | None:
    """``value`` as an int when it is an integer (``int``, ``numpy.int64``, a 0-d integer tensor; not a bool).

    None otherwise (``3.5``, ``3.0``, ``True``, ``"3"``).
    """
    if isinstance(value, bool) or not isinstance(value, SupportsIndex):
        return None
    if isinstance(value, Tensor) and value.dtype == torch.bool:
        return None
    try:
        return operator.index(value)
    except TypeError:  # a tensor that is not one integer
        return None


def listed(values: object) -> list[object] | None:
    """The items of ``values`` as a list when it is a collection of items (not a string), else None."""
    if isinstance(values, (str, bytes)):
        return None
    try:
        return list(values)  # type: ignore[call-overload]
    except TypeError:  # one number, or a 0-d tensor
        return None


def shown(values: object) -> str:
    """``values`` for an error message: as a list when it is a collection, else as given."""
    items = listed(values)
    return repr(values) if items is None else repr(items)


def integers(values: object) -> list[int] | None:
    """``values`` as ints when it is a collection whose every item is an integer (see :func:`integer`), else None."""
    items = listed(values)
    ints = [] if items is None else [integer(v) for v in items]
    return None if items is None or any(v is None for v in ints) else [v for v in ints if v is not None]


def _real(value: object) -> float | None:
    """``value`` as a float when it is a real number (not a bool, not a string), else None."""
    if isinstance(value, bool) or not isinstance(value, SupportsFloat):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):  # a tensor that is not one number
        return None


def check_finite(values: Sequence[float], name: str, positive: bool = False) -> tuple[float, ...]:
    """``values`` as floats; ``ValueError`` naming ``name`` unless each is a finite number (and > 0 if ``positive``)."""
    floats = [_real(v) for v in values]
    good = [v for v in floats if v is not None and math.isfinite(v) and (v > 0 or not positive)]
    if len(good) != len(floats):
        kind = "positive finite numbers" if positive else "finite numbers"
        raise ValueError(f"`{name}` must be {kind}, got {list(values)}.")
    return tuple(good)


def number_or_pair(value: object, name: str, example: str) -> float | tuple[float, float]:
    """A finite real number, or a pair ``(min, max)`` of finite real numbers with ``min <= max``; a ``TypeError``
    naming ``name`` for anything else (a bool, a string, None), a ``ValueError`` with ``example`` for other values.
    The caller checks the bounds."""
    one = _real(value)
    if one is None and not (isinstance(value, Sequence) and not isinstance(value, (str, bytes))):
        raise TypeError(f"`{name}` must be a number or a (min, max) pair of numbers, got {type(value).__name__}.")
    if one is not None and math.isfinite(one):
        return one
    pair = [] if one is not None else [_real(v) for v in value]  # type: ignore[attr-defined]
    if len(pair) == 2 and pair[0] is not None and pair[1] is not None:
        lo, hi = pair[0], pair[1]
        if math.isfinite(lo) and math.isfinite(hi) and lo <= hi:
            return lo, hi
    raise ValueError(
        f"`{name}` must be a finite number or a (min, max) pair of finite numbers with min <= max, e.g. {name}="
        f"{example}; got {value!r}."
    )


def check_fraction(value: object, name: str, meaning: str) -> float:
    """``value`` as a float in [0, 1]; ``ValueError`` "`name` meaning, got value." otherwise (a bool or a string is
    refused; numpy scalars are numbers)."""
    number = _real(value)
    if number is None or not 0.0 <= number <= 1.0:
        raise ValueError(f"`{name}` {meaning}, got {value!r}.")
    return number


def check_probability(p: object, name: str = "p") -> float:
    """``p`` as a float in [0, 1]; ``ValueError`` naming ``name`` otherwise (a bool or a string is refused)."""
    return check_fraction(p, name, "is a probability and must be a number in [0, 1]")


def check_flag(value: object, name: str) -> bool:
    """``value`` when it is a bool; ``TypeError`` naming ``name`` otherwise (a string such as ``"no"`` is truthy)."""
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")
    return value


def check_generator(generator: object, name: str = "generator") -> None:
    """Raise a ``TypeError`` naming ``name`` unless ``generator`` is a ``torch.Generator`` or None (a seed is not:
    ``torch.Generator(device).manual_seed(seed)`` makes one)."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"`{name}` must be a torch.Generator or None, got {type(generator).__name__}; for a seed s pass "
            "torch.Generator(device).manual_seed(s)."
        )


def check_num_classes(num_classes: int, name: str, fix: str) -> None:
    """Raise unless a family has at least two classes: one class is the identity alone, with nothing to predict.

    ``name`` is the argument that set the count and ``fix`` how to change it.
    """
    if num_classes < 2:
        raise ValueError(
            f"`{name}` gives {num_classes} class (the identity alone, nothing to predict); a family needs at least 2: "
            f"{fix}."
        )


def check_steps(steps: int | Sequence[int]) -> tuple[int, int]:
    """``steps`` of a periodic translation as a pair ``(steps_h, steps_w)`` of positive integers.

    Integers of any kind are accepted (``int``, ``numpy.int64``, ...), bools are not.
    """
    single = integer(steps)
    if single is not None:
        pair: list[int] | None = [single, single]
    elif isinstance(steps, Sequence):
        pair = integers(steps)
    else:
        pair = None
    if pair is None or len(pair) != 2 or min(pair) < 1:
        raise ValueError(
            f"`steps` must be a positive int or a pair (steps_h, steps_w) of positive ints, got {steps!r}."
        )
    return pair[0], pair[1]


def check_blur_levels(
    kernel_sizes: Sequence[int], sigmas: Sequence[float] | None, default_sigma: Callable[[int], float]
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Odd positive integer ``kernel_sizes`` and one finite positive sigma per size (``default_sigma(k)`` when None)."""
    sizes = integers(kernel_sizes)
    if not sizes or any(k < 1 or k % 2 == 0 for k in sizes):
        raise ValueError(f"`kernel_sizes` must be positive odd integers, got {shown(kernel_sizes)}.")
    items = [default_sigma(k) for k in sizes] if sigmas is None else listed(sigmas)
    values = [] if items is None else [_real(s) for s in items]
    good = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if items is None or len(values) != len(sizes) or len(good) != len(values):
        raise ValueError(
            f"`sigmas` must be {len(sizes)} positive finite values (one per kernel size), got {shown(sigmas)}."
        )
    return tuple(sizes), tuple(good)


def check_jigsaw(permutations: Sequence[int] | None, tile_order: str) -> tuple[int, ...]:
    """The chosen indices into the 24 tile permutations (all when None), identity first and distinct."""
    if tile_order not in ("row-major", "clockwise"):
        raise ValueError(f"`tile_order` must be 'row-major' or 'clockwise', got {tile_order!r}.")
    if permutations is None:
        return tuple(range(24))
    chosen = integers(permutations)
    if chosen is None:
        raise ValueError(f"`permutations` must be integer indices in [0, 24), got {shown(permutations)}.")
    if not chosen or chosen[0] != 0:
        raise ValueError("`permutations` must start with 0, the identity (label 0 is always the identity).")
    if len(set(chosen)) != len(chosen) or not all(0 <= p < 24 for p in chosen):
        raise ValueError(f"`permutations` must be distinct indices in [0, 24), got {chosen}.")
    return tuple(chosen)


def check_shifts(shifts: Tensor, x: Tensor, name: str = "shifts") -> None:
    """Raise unless ``shifts`` is an integer (B, 2) tensor on the device of the (B, C, H, W) batch ``x``."""
    if not isinstance(shifts, Tensor) or shifts.dtype.is_floating_point or shifts.dtype == torch.bool:
        raise TypeError(f"`{name}` must be an integer torch.Tensor shaped (B, 2); use `{name}.long()`.")
    if shifts.shape != (x.shape[0], 2):
        raise ValueError(
            f"`{name}` must have shape ({x.shape[0]}, 2), one (rows, cols) pair per image, got {tuple(shifts.shape)}."
        )
    if shifts.device != x.device:
        raise ValueError(f"`{name}` is on {shifts.device} but `x` is on {x.device}; use `{name}.to(x.device)`.")


def check_channels(x: Tensor, allowed: tuple[int, ...], op: str, name: str = "x") -> int:
    """The channel count of ``x``, or a ``ValueError`` unless it is one of ``allowed``."""
    c = int(x.shape[-3])
    if c not in allowed:
        kinds = " or ".join(f"{a} ({'gray' if a == 1 else 'RGB'})" for a in allowed)
        raise ValueError(f"{op} needs images with {kinds} channels, but `{name}` has {c}; convert them first.")
    return c
