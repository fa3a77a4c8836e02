"""Fixtures of the objectives' tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run a small training toy on one CPU thread: its tensors are a few kilobytes, and a second thread only adds
    the thread pool's synchronisation (on a busy 2-core machine, tens of milliseconds per BatchNorm call)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
