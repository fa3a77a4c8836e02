"""Names renamed in this release: kept for one release as aliases that warn (``DeprecationWarning``) when used."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def aliases(module: str, renamed: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving each old name of ``renamed`` to its new ``"package.module:Name"``.

    Example:
        >>> getattr_ = aliases("essl_aug", {"Rotation": "essl_aug.transforms:RandomRotation90"})
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     cls = getattr_("Rotation")
        >>> cls.__name__, caught[0].category.__name__
        ('RandomRotation90', 'DeprecationWarning')
    """

    def __getattr__(name: str) -> Any:
        target = renamed.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        path, _, new = target.partition(":")
        warnings.warn(
            f"{module}.{name} is deprecated and will be removed in the next release; use {path}.{new}.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(path), new)

    return __getattr__
