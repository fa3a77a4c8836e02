"""The API reference's completeness check (docs/_ext/public_api.py) and the site's build (needs the docs extra)."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.docs.doc_blocks import DOCS

pytest.importorskip("sphinx", reason='the docs extra is not installed: pip install "essl-aug[docs]"')


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


public_api = _load("public_api", DOCS / "_ext" / "public_api.py")


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """A package re-exporting a documented and an undocumented name of each kind from a submodule."""
    pkg = tmp_path / "fake_docs_pkg"
    pkg.mkdir()
    (pkg / "impl.py").write_text(
        textwrap.dedent(
            '''
            #: Documented where it is defined.
            TABLE = (1, 2, 3)
            BARE = (4, 5)


            def documented():
                """Has a docstring."""


            def bare():
                pass


            class Documented:
                """Has a docstring."""


            class Bare(Documented):
                pass
            '''
        ),
        encoding="utf-8",
    )
    (pkg / "__init__.py").write_text(
        "from fake_docs_pkg.impl import BARE, TABLE, Bare, Documented, bare, documented\n"
        '__all__ = ["TABLE", "BARE", "documented", "bare", "Documented", "Bare"]\n',
        encoding="utf-8",
    )
    (pkg / "plain.py").write_text('"""No __all__."""\n#: A constant.\nLIMIT = 3\nOTHER = 4\n\n\ndef f():\n    pass\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("fake_docs_pkg")
    for name in [m for m in sys.modules if m.startswith("fake_docs_pkg")]:
        del sys.modules[name]


def test_undocumented_public_names_are_reported(fake_package: ModuleType) -> None:
    assert public_api.missing_docstrings(fake_package) == [
        "fake_docs_pkg.BARE",
        "fake_docs_pkg.bare",
        "fake_docs_pkg.Bare",
    ]
    assert public_api.missing_docstrings(fake_package, {"fake_docs_pkg.BARE"}) == [
        "fake_docs_pkg.bare",
        "fake_docs_pkg.Bare",
    ]
    assert public_api.constant_doc(fake_package, "TABLE") == ["Documented where it is defined.", ""]


def test_names_without_an_entry_are_reported(fake_package: ModuleType) -> None:
    rendered = {"fake_docs_pkg.TABLE", "fake_docs_pkg.documented", "fake_docs_pkg.Documented", "fake_docs_pkg.Bare"}
    assert public_api.missing_entries(fake_package, rendered) == ["fake_docs_pkg.BARE", "fake_docs_pkg.bare"]


def test_a_module_without_all_exposes_what_it_defines_and_documents(fake_package: ModuleType) -> None:
    plain = importlib.import_module("fake_docs_pkg.plain")
    assert public_api.public_names(plain) == ["LIMIT", "f"]
    assert public_api.missing_docstrings(plain) == ["fake_docs_pkg.plain.f"]


def test_undeclared_submodules_are_reported(fake_package: ModuleType) -> None:
    assert public_api.undeclared_submodules("fake_docs_pkg", {"fake_docs_pkg.impl"}) == ["fake_docs_pkg.plain"]


def test_every_public_name_is_documented() -> None:
    """The check the build runs, without building: every name of the documented modules has a docstring."""
    conf = _load("essl_docs_conf", DOCS / "conf.py")
    missing = [
        full
        for modname in conf.public_api_modules
        for full in public_api.missing_docstrings(importlib.import_module(modname), conf.public_api_exempt)
    ]
    assert not missing, f"public names without a docstring: {missing}"
    declared = {*conf.public_api_modules, *conf.public_api_skip}
    for package in conf.public_api_packages:
        assert public_api.undeclared_submodules(package, declared) == []


def test_the_site_builds_without_warnings(tmp_path: Path) -> None:
    """`make docs` in a temporary directory: Sphinx with warnings as errors (broken references, missing entries)."""
    html, doctrees = tmp_path / "html", tmp_path / "doctrees"
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-W", "--keep-going", "-b", "html", "-d", doctrees, DOCS, html],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    assert (html / "api" / "essl_aug.html").is_file()
