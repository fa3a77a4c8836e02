"""The layers import in one direction: the library core never loads the adapters; the package (the wheel:
``essl_aug/``, ``adapters/``) never imports the benchmarks, which may import the package; the training toolkit lives
in ``benchmarks/toolkit`` and the family-grid viewer in ``benchmarks/show.py``, outside the wheel: the package has no
``experiments``, no command line and no console script."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The folders installed as the wheel's package: ``essl_aug/`` and ``adapters/`` (as ``essl_aug.adapters``).
PACKAGE_FOLDERS = (ROOT / "essl_aug", ROOT / "adapters")


def test_import_essl_aug_loads_neither_the_adapters_nor_the_benchmarks_nor_optional_packages() -> None:
    code = "import sys, json, essl_aug; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert "essl_aug" in loaded and "essl_aug.functional" in loaded  # the probe sees the core
    forbidden = [
        m
        for m in loaded
        if m in ("sklearn", "matplotlib", "benchmarks")
        or m.startswith(("essl_aug.adapters", "sklearn.", "matplotlib.", "benchmarks."))
    ]
    assert forbidden == []


def _imported_modules(path: Path) -> set[str]:
    """Every module named by an ``import`` or ``from ... import`` statement of a file, at any depth; ``from pkg import
    sub`` names ``pkg.sub`` too when ``sub`` is a module of this repository."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
            for alias in node.names:
                where = ROOT / Path(*f"{node.module}.{alias.name}".split("."))
                if where.is_dir() or where.with_suffix(".py").is_file():
                    names.add(f"{node.module}.{alias.name}")
    return names


def _imports(path: Path, package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in _imported_modules(path))


def test_the_package_never_imports_the_benchmarks() -> None:
    files = [f for folder in PACKAGE_FOLDERS for f in sorted(folder.rglob("*.py"))]
    assert ROOT / "essl_aug" / "config.py" in files and ROOT / "adapters" / "lightly.py" in files and len(files) > 20
    assert [str(f.relative_to(ROOT)) for f in files if _imports(f, "benchmarks")] == []


def test_the_package_has_no_training_toolkit() -> None:
    """The toolkit is ``benchmarks/toolkit``: no ``essl_aug.experiments`` in the tree, nothing imports it, and
    pyproject.toml lists no such package (scripts/check_dist.sh checks the built wheel)."""
    assert not (ROOT / "essl_aug" / "experiments").exists()
    assert (ROOT / "benchmarks" / "toolkit" / "__init__.py").is_file()
    everything = sorted(
        {
            *ROOT.glob("*.py"),
            *(f for d in ("essl_aug", "adapters", "benchmarks", "tests", "examples") for f in (ROOT / d).rglob("*.py")),
        }
    )
    assert [str(f.relative_to(ROOT)) for f in everything if _imports(f, "essl_aug.experiments")] == []
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = [*setuptools["packages"], *setuptools.get("package-data", {})]
    assert [p for p in listed if not p.startswith("essl_aug") or "experiments" in p] == []


def test_the_package_has_no_command_line() -> None:
    """The family-grid viewer is ``python -m benchmarks.show`` (with its sample image beside the toolkit): no
    ``essl_aug.cli``, no ``python -m essl_aug``, no console script, no image in the package, nothing imports them."""
    assert [p.name for p in (ROOT / "essl_aug").glob("*") if p.name in ("cli.py", "__main__.py", "sample.png")] == []
    assert (ROOT / "benchmarks" / "show.py").is_file() and (ROOT / "benchmarks" / "toolkit" / "sample.png").is_file()
    everything = [f for d in ("essl_aug", "adapters", "benchmarks", "tests") for f in (ROOT / d).rglob("*.py")]
    assert [str(f.relative_to(ROOT)) for f in everything if _imports(f, "essl_aug.cli")] == []
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "scripts" not in project["project"] and "gui-scripts" not in project["project"]
    assert project["tool"]["setuptools"].get("package-data", {}).get("essl_aug") is None


def test_the_benchmarks_use_the_toolkit_and_the_package() -> None:
    files = sorted((ROOT / "benchmarks").rglob("*.py"))
    assert any(_imports(f, "benchmarks.toolkit") for f in files)  # they do use the toolkit
    assert any(_imports(f, "essl_aug") for f in files)  # and the library


def test_the_import_scan_sees_nested_and_aliased_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from benchmarks.photonics import dos as d\n    import essl_aug.cli as c\n")
    assert _imports(probe, "benchmarks") and _imports(probe, "essl_aug.cli")
    assert not _imports(probe, "essl_aug.experiments") and not _imports(probe, "bench")


#: The library's layers, lowest first (each imports only its own and the layers below): the private toolbox, the
#: aliases of renamed names, the special forms, the ops, the transformations (with the registry and
#: EquivariantTransform), the views, the head and the layer reader, the objectives (and the paper's loss), the config
#: layer, then the package's face.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("essl_aug._validation", "essl_aug._cache", "essl_aug._layout", "essl_aug._random", "essl_aug._kernels"),
    ("essl_aug._deprecated",),
    ("essl_aug._fast",),
    ("essl_aug.functional",),
    ("essl_aug.transforms", "essl_aug.registry", "essl_aug.transform"),
    ("essl_aug.views", "essl_aug.head", "essl_aug.layers"),
    ("essl_aug.objectives", "essl_aug.loss"),
    ("essl_aug.config",),
    ("essl_aug", "essl_aug.augment"),
)
#: The training frameworks: the library never imports one (the adapters do, lazily).
FRAMEWORKS = ("lightning", "pytorch_lightning", "lightly", "solo", "omegaconf", "hydra", "stable_pretraining")


def _layer(module: str) -> int:
    """The index of the layer a module of ``essl_aug`` belongs to (its longest matching prefix)."""
    matches = [
        (len(prefix), i)
        for i, layer in enumerate(LAYERS)
        for prefix in layer
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"{module} is in no layer of LAYERS: add it"
    return max(matches)[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _library_imports(path: Path) -> set[str]:
    """The ``essl_aug`` modules a file imports, the package itself left out where a module of it is named."""
    names = {n for n in _imported_modules(path) if n == "essl_aug" or n.startswith("essl_aug.")}
    return names - {"essl_aug"} if any(n.startswith("essl_aug.") for n in names) else names


def test_the_library_imports_only_its_own_layer_and_the_layers_below() -> None:
    upward = []
    for path in sorted((ROOT / "essl_aug").rglob("*.py")):
        module = _module_name(path)
        for name in _library_imports(path):
            if name.startswith("essl_aug.adapters") or _layer(name) > _layer(module):
                upward.append(f"{module} imports {name}")
    assert upward == []


def test_the_library_never_imports_a_training_framework() -> None:
    found = [
        f"{_module_name(path)} imports {name}"
        for path in sorted((ROOT / "essl_aug").rglob("*.py"))
        for name in _imported_modules(path)
        if name.split(".")[0] in FRAMEWORKS
    ]
    assert found == []


def test_a_layer_violation_would_be_found(tmp_path: Path) -> None:
    """The layer check reads imports at any depth, lazy ones inside functions included."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from essl_aug.config import ESSLConfig\n", encoding="utf-8")
    assert "essl_aug.config" in _library_imports(bad) and _layer("essl_aug.config") > _layer("essl_aug.functional")
    submodule = tmp_path / "sub.py"
    submodule.write_text("from essl_aug import config\n", encoding="utf-8")
    assert _library_imports(submodule) == {"essl_aug.config"}
