"""Every family traces as one graph under ``torch.compile(fullgraph=True)`` and gives the eager result."""

from __future__ import annotations

import pytest
import torch

from essl_aug import EquivariantTransform, build_family

FAMILIES = [
    "rotation",
    "vflip",
    "hflip",
    "jigsaw",
    "blur",
    "invert",
    "grayscale",
    ["rotation", "vflip"],
    "d4",
    "translation",
]


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("spec", FAMILIES, ids=str)
def test_apply_compiles_without_graph_breaks(spec) -> None:
    family = build_family(spec)
    x = torch.rand(6, 3, 16, 16)
    labels = torch.arange(6) % family.num_classes
    compiled = torch.compile(family.apply, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, labels), family.apply(x, labels), rtol=0, atol=1e-6)


def test_transform_module_compiles_with_inductor() -> None:
    """Labels from the global RNG (dynamo cannot trace a user ``torch.Generator``: leave ``generator=None``)."""
    torch.manual_seed(0)
    transform = EquivariantTransform("rotation", distinct_per_rank=False)
    compiled = torch.compile(transform, fullgraph=True)
    x = torch.rand(8, 3, 16, 16)
    views, labels = compiled(x)
    assert views.shape == x.shape and labels.shape == (8,)
    torch.testing.assert_close(views, transform.family.apply(x, labels), rtol=0, atol=0)
