"""The package's import rules for private names: they come only from the private toolbox, which sits at the bottom
(the transformations' kernels, draws, checks, caches and speed forms)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "essl_aug"
#: The private toolbox: the modules whose names other modules of the package may import.
TOOLBOX = {
    "essl_aug._cache",
    "essl_aug._deprecated",
    "essl_aug._fast",
    "essl_aug._fast.lookups",
    "essl_aug._kernels",
    "essl_aug._layout",
    "essl_aug._random",
    "essl_aug._validation",
}
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _path(module: str) -> Path:
    relative = Path(*module.split(".")[1:])
    package = PACKAGE / relative / "__init__.py"
    return package if package.exists() else PACKAGE / relative.with_suffix(".py")


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from module import name`` and ``import module`` (name "") in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_the_sources_and_the_toolbox_are_found() -> None:
    modules = {_module(p) for p in SOURCES}
    assert {"essl_aug.functional", "essl_aug.transforms.base", "essl_aug._kernels"} <= modules
    assert modules >= TOOLBOX


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
    """The toolbox imports only torch, the standard library and other toolbox modules."""
    for imported, name in _imports(_path(module)):
        if imported.startswith("essl_aug"):
            target = imported if imported != "essl_aug" else f"essl_aug.{name}"
            assert target in TOOLBOX, (module, imported, name)
