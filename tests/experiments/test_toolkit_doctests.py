"""The training toolkit's docstring examples, one test each.

``benchmarks/toolkit`` is outside the package and outside pytest's ``testpaths`` (``--doctest-modules`` covers
``tests`` and ``essl_aug``), so its modules are imported by name here and their examples run as pytest's doctests
would: ``NORMALIZE_WHITESPACE``, with the names of the repository's conftest.py (``torch``, ``nn`` and every public
name of ``essl_aug``) at hand.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest
import torch

import essl_aug

TOOLKIT = Path(__file__).resolve().parents[2] / "benchmarks" / "toolkit"
MODULES = sorted(f"benchmarks.toolkit.{p.stem}" for p in TOOLKIT.glob("*.py") if p.stem != "__init__")
#: What conftest.py's ``doctest_namespace`` gives the package's doctests.
NAMES = {"torch": torch, "nn": torch.nn, **{name: getattr(essl_aug, name) for name in essl_aug.__all__}}


def _examples() -> list:
    params = []
    for name in ["benchmarks.toolkit", *MODULES]:
        module = importlib.import_module(name)
        tests = [t for t in doctest.DocTestFinder().find(module, extraglobs=NAMES) if t.examples]
        params += [pytest.param(t, id=t.name) for t in tests]
    return params


EXAMPLES = _examples()


def test_the_toolkit_has_examples() -> None:
    assert len(MODULES) >= 10 and len(EXAMPLES) >= 20


@pytest.mark.parametrize("example", EXAMPLES)
def test_docstring_example(example: doctest.DocTest) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    result = runner.run(example)
    assert result.attempted >= 1 and result.failed == 0, example.name
