"""The layers import in one direction: the library core never loads the toolkit, the CLI or the adapters; the toolkit
and the CLI never import the benchmarks; the benchmarks never import the CLI."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_essl_aug_loads_neither_the_toolkit_nor_the_cli_nor_optional_packages() -> None:
    code = "import sys, json, essl_aug; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert "essl_aug" in loaded and "essl_aug.functional" in loaded  # the probe sees the core
    forbidden = [
        m
        for m in loaded
        if m in ("essl_aug.cli", "sklearn", "matplotlib", "benchmarks")
        or m.startswith(("essl_aug.experiments", "essl_aug.adapters", "sklearn.", "matplotlib.", "benchmarks."))
    ]
    assert forbidden == []


def _imported_modules(path: Path) -> set[str]:
    """Every module named by an ``import`` or ``from ... import`` statement of a file, at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
    return names


def _imports(path: Path, package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in _imported_modules(path))


def test_the_toolkit_and_the_cli_never_import_the_benchmarks() -> None:
    files = [*sorted((ROOT / "essl_aug" / "experiments").rglob("*.py")), ROOT / "essl_aug" / "cli.py"]
    assert len(files) > 5
    assert [str(f.relative_to(ROOT)) for f in files if _imports(f, "benchmarks")] == []


def test_the_benchmarks_never_import_the_cli() -> None:
    files = sorted((ROOT / "benchmarks").rglob("*.py"))
    assert any(_imports(f, "essl_aug.experiments") for f in files)  # they do use the toolkit
    assert [str(f.relative_to(ROOT)) for f in files if _imports(f, "essl_aug.cli")] == []


def test_the_import_scan_sees_nested_and_aliased_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from benchmarks.photonics import dos as d\n    import essl_aug.cli as c\n")
    assert _imports(probe, "benchmarks") and _imports(probe, "essl_aug.cli")
    assert not _imports(probe, "essl_aug.experiments") and not _imports(probe, "bench")
