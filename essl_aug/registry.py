"""Build families by name, for config files: ``"rotation"``, ``["rotation", "vflip"]``, ``{"name": ...}``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

from essl_aug.blur import BlurLevels
from essl_aug.family import TransformFamily
from essl_aug.flip import HorizontalFlip, VerticalFlip
from essl_aug.grayscale import Grayscale
from essl_aug.invert import Inversion
from essl_aug.jigsaw import Jigsaw
from essl_aug.periodic import D4, PeriodicTranslation
from essl_aug.product import Product
from essl_aug.rotation import Rotation

FamilySpec = Union[str, TransformFamily, Mapping[str, Any], Sequence[Union[str, TransformFamily, Mapping[str, Any]]]]

_FACTORIES: dict[str, Callable[..., TransformFamily]] = {
    "rotation": Rotation,
    "vflip": VerticalFlip,
    "hflip": HorizontalFlip,
    "jigsaw": Jigsaw,
    "blur": BlurLevels,
    "invert": Inversion,
    "grayscale": Grayscale,
    "translation": PeriodicTranslation,
    "d4": D4,
}


def family_names() -> list[str]:
    """The names accepted by :func:`build_family`."""
    return sorted(_FACTORIES)


def register_family(name: str, factory: Callable[..., TransformFamily]) -> None:
    """Make ``factory`` constructible by ``name`` (for a family defined outside the library)."""
    if not isinstance(name, str) or not name:
        raise ValueError("`name` must be a non-empty string.")
    _FACTORIES[name] = factory


def build_family(spec: FamilySpec, **options: Any) -> TransformFamily:
    """Turn a name, a list of names (a product), a ``{"name": ..., **options}`` mapping or a family into a family.

    Args:
        spec: e.g. ``"rotation"``, ``["rotation", "vflip"]`` (8 classes) or
            ``{"name": "invert", "mean": [...], "std": [...]}``.
        options: keyword arguments for a single named family's constructor.

    Example:
        >>> build_family(["rotation", "vflip"]).num_classes
        8
        >>> build_family({"name": "jigsaw", "permutations": [0, 7, 16, 23]}).num_classes
        4
    """
    if isinstance(spec, TransformFamily):
        if options:
            raise ValueError("options can only be given with a family name, not with a family instance.")
        return spec
    if isinstance(spec, str):
        factory = _FACTORIES.get(spec)
        if factory is None:
            raise ValueError(f"unknown family name {spec!r}; choose one of {family_names()} (or a list for a product).")
        return factory(**options)
    if isinstance(spec, Mapping):
        spec = dict(spec)
        name = spec.pop("name", None)
        if not isinstance(name, str):
            raise ValueError(f"a family mapping needs a 'name' key naming one of {family_names()}, got {spec!r}.")
        try:
            return build_family(name, **spec, **options)
        except TypeError as err:
            raise ValueError(f"invalid options for family {name!r}: {err}") from err
    if isinstance(spec, Sequence):
        if options:
            raise ValueError("options apply to a single family; give per-family mappings inside the list instead.")
        parts = [build_family(s) for s in spec]
        return parts[0] if len(parts) == 1 else Product(parts)
    raise TypeError(
        "`family` must be a name, a list of names, a mapping with 'name', or a TransformFamily; "
        f"got {type(spec).__name__}."
    )
