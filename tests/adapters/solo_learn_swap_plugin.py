"""pytest plugin: solo-learn's own method tests with every method replaced by its E-SSL version.

Usage (solo-learn's tests are a top-level ``tests`` package, so they run in a pytest call of their own, with this
folder and the overlay of ``scripts/install_solo_overlay.sh`` on ``PYTHONPATH``; ``make test-solo`` does)::

    PYTHONPATH=.solo-overlay:tests/adapters PYTHONDONTWRITEBYTECODE=1 python -m pytest -p solo_learn_swap_plugin \\
        -c /dev/null --rootdir <dir> <solo-learn>/tests/methods/test_simclr.py

Before collection, every method class of ``solo.methods`` (the package's attributes and ``METHODS``) is replaced by
a subclass of ``equivariant(cls)`` whose config hook gives the config an ``essl`` block when it has none (solo-learn's
tests build their configs without one): ``SWAP_SETTINGS``, updated by ``ESSL_SWAP_SETTINGS`` (JSON), e.g.
``'{"transform": ["rotation", "vflip"], "mode": "random"}'``. After collection, the names a test module imported from
a method's own module (``from solo.methods.mae import MAE``) are rebound too. The E-SSL steps are counted by their
logs (``train_essl_*``); the session fails if tests ran but no E-SSL step did (the swap would then prove nothing).
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import pytest
from essl_aug.adapters.solo_learn import equivariant, is_equivariant

#: The ``essl`` block given to the tests' configs: the reference objective, narrower head, 32 px view (CPU-sized).
SWAP_SETTINGS: dict[str, Any] = {
    "lambda": 0.4,
    "transform": "rotation",
    "mode": "all",
    "hidden_dim": 256,
    "crop_size": 32,
}

_steps: dict[str, int] = {}
_adapted: dict[type, type] = {}


def _swapped(cls: type, settings: dict[str, Any]) -> type:
    """``equivariant(cls)`` with an ``essl`` block added to configs without one, counting its E-SSL steps."""
    adapted = equivariant(cls)

    def add_and_assert_specific_cfg(cfg: Any) -> Any:
        if cfg.get("essl") is None:
            cfg.essl = dict(settings)
        return adapted.add_and_assert_specific_cfg(cfg)

    def log_dict(self: Any, metrics: Any, *args: Any, **kwargs: Any) -> Any:
        if any(str(k).startswith("train_essl_") for k in metrics):
            _steps[cls.__name__] = _steps.get(cls.__name__, 0) + 1
        return adapted.log_dict(self, metrics, *args, **kwargs)

    namespace = {"add_and_assert_specific_cfg": staticmethod(add_and_assert_specific_cfg), "log_dict": log_dict}
    return type(adapted.__name__, (adapted,), namespace)


def pytest_configure(config: pytest.Config) -> None:
    with warnings.catch_warnings():  # what solo-learn and its dependencies say on import is theirs to fix
        warnings.simplefilter("ignore")
        import solo.methods as methods

    settings = {**SWAP_SETTINGS, **json.loads(os.environ.get("ESSL_SWAP_SETTINGS", "{}"))}
    for key, cls in list(methods.METHODS.items()):
        if cls.__name__ in ("BaseMethod", "LinearModel") or is_equivariant(cls):
            continue
        _adapted.setdefault(cls, _swapped(cls, settings))
        methods.METHODS[key] = _adapted[cls]
    for name in dir(methods):
        value = getattr(methods, name)
        if isinstance(value, type) and value in _adapted:
            setattr(methods, name, _adapted[value])


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Rebind, in each collected test module, the original method classes it imported to their E-SSL versions."""
    for module in {id(m): m for m in (getattr(item, "module", None) for item in items) if m is not None}.values():
        for name, value in list(vars(module).items()):
            if isinstance(value, type) and value in _adapted:
                setattr(module, name, _adapted[value])


def pytest_report_header(config: pytest.Config) -> str:
    return f"essl-aug swap: {len(_adapted)} solo-learn methods replaced by their E-SSL versions"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    per_class = ", ".join(f"{name} {n}" for name, n in sorted(_steps.items())) or "none"
    terminalreporter.write_line(f"essl-aug swap: {sum(_steps.values())} E-SSL steps ({per_class})")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.testscollected and not _steps and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write("\n")
            reporter.write_line("essl-aug swap: FAILED, the E-SSL branch never ran", red=True)
