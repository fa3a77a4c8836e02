"""Fixtures of the benchmark smoke tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def fashion_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fashion-MNIST must be installed (a failure under CI, a skip elsewhere); the loader's cache goes to a temporary
    folder (``~/.cache`` is left alone)."""
    from benchmarks.toolkit.data import find_fashion_mnist

    try:
        find_fashion_mnist()
    except FileNotFoundError as err:
        if os.environ.get("CI"):
            pytest.fail(f"Fashion-MNIST is required in CI: {err}")
        pytest.skip(f"Fashion-MNIST is not installed ({err})")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
