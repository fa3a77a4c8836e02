"""Every transformation traces as one graph under ``torch.compile(fullgraph=True)`` and gives the eager result.

One catalogue entry per class (and a product of pixel moves and one with a value op): ``apply(x, labels)`` for the
families, ``apply(x, params)`` for the others (``aot_eager``: dynamo and AOT autograd, without code generation);
``EquivariantTransform`` through the default inductor backend.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from essl_aug import EquivariantTransform
from essl_aug.transforms import Family
from tests.transforms.catalogue import ENTRIES, Entry, build, exported_transformations, images, shape_for


def one_per_class() -> list[Entry]:
    seen: set[str] = set()
    chosen = []
    for e in ENTRIES:
        t = build(e)
        kind = type(t).__name__ if type(t).__name__ != "Product" else f"Product-{e.pixel_move}"
        if kind not in seen:
            seen.add(kind)
            chosen.append(e)
    return chosen


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> Iterator[None]:
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("e", one_per_class(), ids=repr)
def test_apply_compiles_without_graph_breaks(e: Entry) -> None:
    t = build(e)
    x = images(shape_for(e, 6, 16, 16), seed=0)
    if isinstance(t, Family):
        params = torch.arange(6) % t.num_classes
    else:
        params = t.sample(x.shape, generator=torch.Generator().manual_seed(1))
    compiled = torch.compile(t.apply, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, params), t.apply(x, params), rtol=0, atol=1e-6)


def test_every_exported_class_is_compiled() -> None:
    assert {type(build(e)) for e in one_per_class()} == set(exported_transformations())


def test_the_transform_module_compiles_with_inductor() -> None:
    """Labels from the global RNG (dynamo cannot trace a user ``torch.Generator``: leave ``generator=None``)."""
    torch.manual_seed(0)
    transform = EquivariantTransform("rotation", distinct_per_rank=False)
    compiled = torch.compile(transform, fullgraph=True)
    x = torch.rand(8, 3, 16, 16)
    views, labels = compiled(x)
    assert views.shape == x.shape and labels.shape == (8,)
    torch.testing.assert_close(views, transform.family.apply(x, labels), rtol=0, atol=0)
