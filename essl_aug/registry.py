"""Transformations by name, for config files: ``"rotation"``, ``["rotation", "vflip"]``, ``{"name": ...}``.

Two tables: the E-SSL families (:func:`family_names`; a list of names is their :class:`~essl_aug.Product`) and the
continuous transformations an E-SSL objective can regress (:func:`continuous_names`). :func:`build_family` builds
the first, :func:`build_transformation` either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

from essl_aug import transforms as T
from essl_aug.transforms import Family, Product, Transformation

FamilySpec = Union[str, Family, Mapping[str, Any], Sequence[Union[str, Family, Mapping[str, Any]]]]
#: A transformation by name, mapping or instance (a family spec, or a continuous transformation).
TransformSpec = Union[FamilySpec, Transformation[Any]]

_FACTORIES: dict[str, Callable[..., Family]] = {
    "rotation": T.RandomRotation90,
    "vflip": T.RandomVerticalFlip,
    "hflip": T.RandomHorizontalFlip,
    "jigsaw": T.RandomJigsaw,
    "blur": T.RandomBlurLevels,
    "invert": T.RandomInvert,
    "grayscale": T.RandomGrayscale,
    "translation": T.RandomPeriodicTranslation,
    "d4": T.RandomD4,
}

#: The continuous transformations by name, each transforming every image (``p = 1``): rotation by any angle, blur of
#: any sigma in SimCLR's range, a random zoom (a resized crop back to the input's size).
_CONTINUOUS: dict[str, Callable[..., Transformation[Any]]] = {
    "random_rotation": lambda **kw: T.RandomRotation(**{"degrees": 180.0, "p": 1.0, **kw}),
    "gaussian_blur": lambda **kw: T.RandomGaussianBlur(**{"p": 1.0, **kw}),
    "zoom": lambda **kw: T.RandomResizedCrop(None, **kw),
}


def family_names() -> list[str]:
    """The names accepted by :func:`build_family`."""
    return sorted(_FACTORIES)


def continuous_names() -> list[str]:
    """The names of continuous transformations accepted by :func:`build_transformation`."""
    return sorted(_CONTINUOUS)


def register_family(name: str, factory: Callable[..., Family]) -> None:
    """Make ``factory`` constructible by ``name`` (for a family defined outside the library)."""
    if not isinstance(name, str) or not name:
        raise ValueError("`name` must be a non-empty string.")
    _FACTORIES[name] = factory


def _named(name: str, options: Mapping[str, Any], table: Mapping[str, Callable[..., Any]], what: str) -> Any:
    try:
        return table[name](**options)
    except TypeError as err:
        raise ValueError(f"invalid options for {what} {name!r}: {err}") from err


def build_family(spec: FamilySpec, **options: Any) -> Family:
    """Turn a name, a list of names (a product), a ``{"name": ..., **options}`` mapping or a family into a family.

    Args:
        spec: e.g. ``"rotation"``, ``["rotation", "vflip"]`` (8 classes) or ``{"name": "invert", "mean": [...],
            "std": [...]}``.
        options: keyword arguments for a single named family's constructor.

    Example:
        >>> build_family(["rotation", "vflip"]).num_classes
        8
        >>> build_family({"name": "jigsaw", "permutations": [0, 7, 16, 23]}).num_classes
        4
    """
    if isinstance(spec, Family):
        if options:
            raise ValueError("options can only be given with a family name, not with a family instance.")
        return spec
    if isinstance(spec, str):
        if spec not in _FACTORIES:
            hint = f" ({spec!r} is a continuous transformation: give it to the E-SSL objective)" * (spec in _CONTINUOUS)
            raise ValueError(
                f"unknown family name {spec!r}{hint}; choose one of {family_names()} (or a list for a product)."
            )
        return _named(spec, options, _FACTORIES, "family")
    if isinstance(spec, Mapping):
        spec = dict(spec)
        name = spec.pop("name", None)
        if not isinstance(name, str):
            raise ValueError(f"a family mapping needs a 'name' key naming one of {family_names()}, got {spec!r}.")
        return build_family(name, **spec, **options)
    if isinstance(spec, Sequence):
        if set(options) - {"p"}:
            raise ValueError(
                "options apply to a single family (a product takes `p` only); give per-family mappings inside the "
                "list instead."
            )
        parts = [build_family(s) for s in spec]
        if len(parts) == 1:
            return build_family(spec[0], **options) if options else parts[0]
        return Product(parts, **options)
    raise TypeError(
        f"`family` must be a name, a list of names, a mapping with 'name', or a Family; got {type(spec).__name__}."
    )


def build_transformation(spec: TransformSpec) -> Transformation[Any]:
    """A family (:func:`build_family`), a continuous transformation by name (:func:`continuous_names`, or a mapping
    ``{"name": "random_rotation", "degrees": 45}``), or the given transformation.

    Example:
        >>> build_transformation("zoom").target_spec.names
        ('center_y', 'center_x', 'height', 'width')
        >>> build_transformation({"name": "random_rotation", "degrees": 30.0}).degrees
        (-30.0, 30.0)
    """
    if isinstance(spec, Transformation):
        return spec
    name = spec.get("name") if isinstance(spec, Mapping) else spec
    if isinstance(name, str) and name in _CONTINUOUS:
        options = {k: v for k, v in spec.items() if k != "name"} if isinstance(spec, Mapping) else {}
        return _named(name, options, _CONTINUOUS, "transformation")
    return build_family(spec)
