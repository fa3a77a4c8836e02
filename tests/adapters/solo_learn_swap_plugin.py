"""pytest plugin: run solo-learn's own method tests with every method replaced by its E-SSL version.

Usage (solo-learn importable; its tests are a top-level ``tests`` package, so run them in their own pytest call,
with this folder on ``PYTHONPATH``; ``make test-solo`` does)::

    PYTHONPATH=<essl-aug>/tests/adapters pytest -p solo_learn_swap_plugin <solo-learn>/tests/methods/test_simclr.py

Before collection, every method class in ``solo.methods`` (the package attributes and the ``METHODS``
registry) is replaced by ``equivariant(cls, **settings)``, so ``from solo.methods import SimCLR`` in a test gets
the adapted class, active without any config change; after collection, the names a test module imported from a
method's own module (``from solo.methods.mae import MAE``) are rebound in that test module too. (solo-learn's
modules themselves keep their classes: their config hooks call ``super(MAE, MAE)`` by module-global name.)

The settings are ``SWAP_DEFAULTS``, then ``PER_METHOD`` for that class (MAE's ViT takes only its own input size,
so its view keeps the crop's size: ``crop_size: null``), then ``ESSL_SWAP_DEFAULTS`` (JSON), e.g.
``'{"transform": ["rotation", "vflip"], "mode": "random"}'``. The E-SSL branch is counted per class; the run fails
if tests ran but the branch never did (the swap would then prove nothing).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from essl_aug.adapters.solo_learn import equivariant, is_equivariant

#: Settings of the swapped-in classes (an ``essl`` block): the reference objective, smaller head and view (CPU-sized).
SWAP_DEFAULTS: dict[str, Any] = {
    "lambda": 0.4,
    "transform": "rotation",
    "mode": "all",
    "crop_size": 32,
    "hidden_dim": 256,
}

#: Per-class settings over ``SWAP_DEFAULTS``: MAE's ViT encoder has a fixed input size (the view keeps the crop's).
PER_METHOD: dict[str, dict[str, Any]] = {"MAE": {"crop_size": None}}

_calls: dict[str, int] = {}
_swapped: list[str] = []
_adapted: dict[type, type] = {}


def _counting(cls: Any) -> None:
    original = cls._essl_loss

    def _essl_loss(self: Any, x: Any) -> Any:
        _calls[cls.__name__] = _calls.get(cls.__name__, 0) + 1
        return original(self, x)

    cls._essl_loss = _essl_loss


def pytest_configure(config: pytest.Config) -> None:
    import solo.methods as methods

    overrides = json.loads(os.environ.get("ESSL_SWAP_DEFAULTS", "{}"))
    adapted = _adapted
    for key, cls in list(methods.METHODS.items()):
        if cls.__name__ in ("BaseMethod", "LinearModel") or is_equivariant(cls):
            continue
        try:
            new = equivariant(cls, **{**SWAP_DEFAULTS, **PER_METHOD.get(cls.__name__, {}), **overrides})
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


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Rebind, in each collected test module, the original method classes it imported to their E-SSL versions."""
    for module in {id(m): m for m in (getattr(item, "module", None) for item in items) if m is not None}.values():
        for name, value in list(vars(module).items()):
            if isinstance(value, type) and value in _adapted:
                setattr(module, name, _adapted[value])
                _swapped.append(f"{module.__name__}.{name}")


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
