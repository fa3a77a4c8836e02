"""Hydra's configs as the library reads them: the one helper the adapters of Hydra-configured frameworks share."""

from __future__ import annotations

from typing import Any


def plain(value: Any) -> Any:
    """An omegaconf (Hydra) container as plain Python containers, resolved; any other value unchanged (omegaconf is
    imported only for a value that is its own).

    Example:
        >>> plain({"lambda": 0.4})
        {'lambda': 0.4}
    """
    if type(value).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    return value
