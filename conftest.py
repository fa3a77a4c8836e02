"""Names available to every doctest in the package."""

import pytest
import torch

import essl_aug


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace: dict) -> None:
    doctest_namespace["torch"] = torch
    doctest_namespace["nn"] = torch.nn
    for name in essl_aug.__all__:
        doctest_namespace[name] = getattr(essl_aug, name)
