"""The plan cache: tensors derived from an owner's parameters, built on first use and kept for later calls.

A family (or the functional module) derives tensors from its parameters: pixel tables and their row plans per
image size and device, blur kernels and inversion coefficients per device and dtype. Building them reads values
on the host and copies them to the device, so they are built once per key and reused: the hot path never copies
from the host (which would synchronise an accelerator). One rule for pickling and copying: a cache travels empty,
so a pickled or deep-copied owner carries its parameters only and rebuilds what it needs on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class PlanCache:
    """A bounded mapping from keys (sizes, devices, dtypes, parameters) to derived tensors.

    Args:
        max_entries: entries kept; the oldest is dropped first beyond it (a rebuilt entry costs one build).

    Example:
        >>> cache = PlanCache()
        >>> cache.get(("double", 2), lambda: 2 * 2)
        4
        >>> cache.get(("double", 2), lambda: 0)  # built once
        4
        >>> import pickle
        >>> len(pickle.loads(pickle.dumps(cache)))  # travels empty
        0
    """

    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._entries: dict[Hashable, Any] = {}

    def lookup(self, key: Hashable) -> Any:
        """The entry under ``key``, or None."""
        return self._entries.get(key)

    def store(self, key: Hashable, value: T) -> T:
        """Keep ``value`` under ``key`` (dropping the oldest entry when full) and return it."""
        if key not in self._entries and len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = value
        return value

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The entry under ``key``, built by ``build()`` and kept on first use."""
        value = self._entries.get(key)
        if value is None:
            return self.store(key, build())
        return cast(T, value)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __getstate__(self) -> dict[str, Any]:
        return {"max_entries": self.max_entries}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.max_entries = int(state["max_entries"])
        self._entries = {}

    def __repr__(self) -> str:
        return f"PlanCache({len(self)} entries, max_entries={self.max_entries})"
