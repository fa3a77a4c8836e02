"""The package's import rules: private names come only from the private toolbox, which sits at the bottom."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "essl_aug"
#: The private toolbox: the modules whose names other modules of the package may import.
TOOLBOX = {"essl_aug._kernels", "essl_aug._cpu", "essl_aug._layout", "essl_aug._cache", "essl_aug._validation"}
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from module import name`` and ``import module`` (name "") in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_the_sources_are_found() -> None:
    assert {"essl_aug.functional", "essl_aug._kernels", "essl_aug.family"} <= {_module(p) for p in SOURCES}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_private_names_come_only_from_the_toolbox(path: Path) -> None:
    """No module imports a private name of another module, except the toolbox modules' (or a toolbox module)."""
    for module, name in _imports(path):
        if not module.startswith("essl_aug"):
            continue
        if module == "essl_aug" and name.startswith("_"):  # ``from essl_aug import _kernels``
            assert f"essl_aug.{name}" in TOOLBOX, (module, name)
        elif name.startswith("_"):
            assert module in TOOLBOX, (module, name)
        else:
            leaf = module.rsplit(".", 1)[-1]
            assert not leaf.startswith("_") or module in TOOLBOX, module


@pytest.mark.parametrize("module", sorted(TOOLBOX))
def test_the_toolbox_imports_nothing_above_it(module: str) -> None:
    """The toolbox imports only torch, the standard library (and kornia, lazily) and other toolbox modules."""
    path = PACKAGE / f"{module.rsplit('.', 1)[-1]}.py"
    for imported, name in _imports(path):
        if imported.startswith("essl_aug"):
            target = imported if imported != "essl_aug" else f"essl_aug.{name}"
            assert target in TOOLBOX, (module, imported, name)
