"""The adapters' docstring examples, one test each.

``adapters/`` is installed as ``essl_aug.adapters`` and is not a top-level package, so pytest's
``--doctest-modules`` cannot import it by path; its modules are imported by name here. A module whose framework is
not installed is skipped with the reason.
"""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch
from torch import nn

pytestmark = pytest.mark.filterwarnings("ignore:The function `to_tensor")  # lightly's transforms, on torchvision
MODULES = [
    "essl_aug.adapters.lightly",
    "essl_aug.adapters.per_sample",
    "essl_aug.adapters.solo_learn",
    "essl_aug.adapters.stable_pretraining",
]


def _examples() -> list:
    params = []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as err:
            params.append(pytest.param(None, id=name, marks=pytest.mark.skip(reason=f"{name}: {err}")))
            continue
        tests = [t for t in doctest.DocTestFinder().find(module, extraglobs={"torch": torch, "nn": nn}) if t.examples]
        assert tests, f"{name} has no docstring examples"
        params += [pytest.param(t, id=t.name) for t in tests]
    return params


@pytest.mark.parametrize("example", _examples())
def test_docstring_example(example: doctest.DocTest) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    result = runner.run(example)
    assert result.attempted >= 1 and result.failed == 0, example.name
