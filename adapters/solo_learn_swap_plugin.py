"""pytest plugin: run solo-learn's own method tests with every method replaced by its E-SSL version.

Usage (solo-learn importable; its tests are a top-level ``tests`` package, so run them in their own pytest call)::

    pytest -p essl_aug.adapters.solo_learn_swap_plugin <solo-learn tests>/methods/test_simclr.py ...

Before collection, every method class in ``solo.methods`` (the package attributes and the ``METHODS``
registry) is replaced by ``equivariant(cls, **SWAP_DEFAULTS)``, so ``from solo.methods import SimCLR`` in a
test gets the adapted class, active without any config change. The E-SSL branch is counted; the run fails
if tests ran but the branch never did (the swap would then prove nothing). ``ESSL_SWAP_DEFAULTS`` (JSON)
overrides the settings, e.g. ``'{"transform": ["rotation", "vflip"], "mode": "random"}'``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from essl_aug.adapters.solo_learn import equivariant, is_equivariant

#: Settings of the swapped-in classes: the reference objective with a smaller head and view (CPU-sized).
SWAP_DEFAULTS: dict[str, Any] = {
    "lambda": 0.4,
    "transform": "rotation",
    "mode": "all",
    "crop_size": 32,
    "hidden_dim": 256,
}

_calls: dict[str, int] = {}
_swapped: list[str] = []


def _counting(cls: type) -> None:
    original = cls._essl_loss

    def _essl_loss(self: Any, x: Any) -> Any:
        _calls[cls.__name__] = _calls.get(cls.__name__, 0) + 1
        return original(self, x)

    cls._essl_loss = _essl_loss


def pytest_configure(config: pytest.Config) -> None:
    import solo.methods as methods

    defaults = {**SWAP_DEFAULTS, **json.loads(os.environ.get("ESSL_SWAP_DEFAULTS", "{}"))}
    adapted: dict[type, type] = {}
    for key, cls in list(methods.METHODS.items()):
        if cls.__name__ in ("BaseMethod", "LinearModel") or is_equivariant(cls):
            continue
        try:
            new = equivariant(cls, **defaults)
        except TypeError:
            continue  # not a method class
        if new not in adapted.values():
            _counting(new)
        adapted[cls] = new
        methods.METHODS[key] = new
    for name in dir(methods):
        cls = getattr(methods, name)
        if isinstance(cls, type) and cls in adapted:
            setattr(methods, name, adapted[cls])
            _swapped.append(name)


def pytest_report_header(config: pytest.Config) -> str:
    return f"essl-aug swap: {len(_swapped)} solo-learn methods replaced by their E-SSL versions"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    total = sum(_calls.values())
    per_class = ", ".join(f"{name} {n}" for name, n in sorted(_calls.items())) or "none"
    terminalreporter.write_line(f"essl-aug swap: {total} E-SSL steps ({per_class})")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.testscollected and not _calls and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write("\n")
            reporter.write_line("essl-aug swap: FAILED, the E-SSL branch never ran", red=True)
