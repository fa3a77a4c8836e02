"""Periodic-grid families against their oracles: ``torch.roll``, ``rot90`` + ``flip`` and the reference photonics task.

The group laws, label bijection and tensor contract of these families run with every other family's, over the shared
catalogue (``tests/core/helpers.py``: ``translation``, ``translation-4``, ``translation-3x4``, ``d4`` and products).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from essl_aug import (
    D4,
    EquivariantTransform,
    PeriodicTranslation,
    Product,
    RandomPeriodicShift,
    Rotation,
    TransformFamily,
    VerticalFlip,
    build_family,
    periodic_roll,
)
from tests.core.helpers import assert_dihedral_relations, family

FAST = settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])

#: The periodic families of the shared catalogue.
PERIODIC = ["translation", "translation-4", "translation-3x4", "d4"]
#: Grid sides every one of them accepts (divisible by 12 for the (3, 4) translations).
SIDES = st.sampled_from([12, 24, 36])
seeds = st.integers(0, 2**31 - 1)
batches = st.integers(1, 4)
channels = st.sampled_from([1, 2, 3])


def cells(batch: int, side: int, seed: int, channels: int = 1) -> torch.Tensor:
    """Generic periodic cells: all pixels distinct with probability one."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, channels, side, side, generator=gen, dtype=torch.float64)


def labels_for(f: TransformFamily, batch: int, seed: int) -> torch.Tensor:
    return torch.randint(f.num_classes, (batch,), generator=torch.Generator().manual_seed(seed))


# -- independent oracles ------------------------------------------------------------------------------------------


def translation_oracle(img: torch.Tensor, label: int, steps: tuple[int, int]) -> torch.Tensor:
    """The reference ``trans_and_get_labels`` order: shifts (i, j) with i outer (rows), j inner (columns)."""
    h, w = img.shape[-2:]
    shifts = [(i * h // steps[0], j * w // steps[1]) for i in range(steps[0]) for j in range(steps[1])]
    return torch.roll(img, shifts[label], dims=(-2, -1))


def d4_oracle(img: torch.Tensor, label: int) -> torch.Tensor:
    turned = torch.rot90(img, label // 2, dims=(-2, -1))
    return turned.flip(-2) if label % 2 else turned


# -- oracles ------------------------------------------------------------------------------------------------------


def test_reference_half_cell_translation_labels() -> None:
    """Labels 0..3 are the rolls (0, 0), (0, 16), (16, 0), (16, 16) of a 32x32 cell over (H, W)."""
    x = cells(2, 32, seed=0)
    views = PeriodicTranslation().apply_all(x)
    for label, shift in enumerate([(0, 0), (0, 16), (16, 0), (16, 16)]):
        assert torch.equal(views[label * 2 : (label + 1) * 2], torch.roll(x, shift, dims=(2, 3)))


@FAST
@given(
    name=st.sampled_from(["translation", "translation-3x4", "translation-4"]),
    batch=batches,
    side=SIDES,
    seed=seeds,
    c=channels,
)
def test_translation_matches_torch_roll(name: str, batch: int, side: int, seed: int, c: int) -> None:
    f = family(name)
    assert isinstance(f, PeriodicTranslation)
    x = cells(batch, side, seed, c)
    labels = labels_for(f, batch, seed + 1)
    y = f.apply(x, labels)
    for i in range(batch):
        assert torch.equal(y[i], translation_oracle(x[i], int(labels[i]), f.steps))


@FAST
@given(batch=batches, side=st.sampled_from([2, 5, 8, 32]), seed=seeds, c=channels)
def test_d4_matches_rot90_then_flip_and_the_product(batch: int, side: int, seed: int, c: int) -> None:
    x = cells(batch, side, seed, c)
    labels = labels_for(D4(), batch, seed + 1)
    y = D4().apply(x, labels)
    for i in range(batch):
        assert torch.equal(y[i], d4_oracle(x[i], int(labels[i])))
    product = Product([Rotation(), VerticalFlip()])
    assert torch.equal(y, product.apply(x, labels))
    every = torch.arange(8)
    a, b = torch.cartesian_prod(every, every).unbind(1)
    assert torch.equal(D4().compose(a, b), product.compose(a, b))


@FAST
@given(batch=batches, side=st.integers(1, 20), width=st.integers(1, 20), seed=seeds, c=channels)
def test_periodic_roll_matches_torch_roll(batch: int, side: int, width: int, seed: int, c: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, c, side, width, generator=gen)
    shifts = torch.randint(-50, 50, (batch, 2), generator=gen)
    before = x.clone()
    y = periodic_roll(x, shifts)
    assert torch.equal(x, before)
    for i in range(batch):
        assert torch.equal(y[i], torch.roll(x[i], (int(shifts[i, 0]), int(shifts[i, 1])), dims=(-2, -1)))


def test_d4_relations() -> None:
    """r^4 = f^2 = e, f r f = r^-1, non-abelian, element orders of D4."""
    assert_dihedral_relations(D4())


def test_translations_commute_with_each_other_and_with_d4_up_to_relabelling() -> None:
    """Z2 x Z2 half-cell shifts are abelian, and D4 maps the set of half-cell shifts onto itself."""
    t, d4 = PeriodicTranslation(), D4()
    every = torch.arange(4)
    a, b = torch.cartesian_prod(every, every).unbind(1)
    assert torch.equal(t.compose(a, b), t.compose(b, a))
    x = cells(1, 16, seed=2)
    shifted = t.apply_all(x)
    for g in range(8):
        turned = d4.apply(shifted, torch.full((4,), g))
        back = t.apply_all(d4.apply(x, torch.tensor([g])))
        # the four turned shifts are the four shifts of the turned cell, in some order
        assert sorted(torch.cdist(turned.flatten(1), back.flatten(1)).argmin(1).tolist()) == [0, 1, 2, 3]


# -- dtypes, devices, errors, wiring ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.uint8, torch.int64, torch.bool])
@pytest.mark.parametrize("name", PERIODIC)
def test_exact_for_every_dtype(name: str, dtype: torch.dtype) -> None:
    f = family(name)
    x64 = cells(3, 12, seed=4)
    x = (x64 > 0.5) if dtype == torch.bool else (x64 * 100).to(dtype)
    labels = torch.arange(3) % f.num_classes
    y = f.apply(x, labels)
    assert y.dtype == dtype
    assert torch.equal(y.double(), f.apply(x.double(), labels))


def test_channels_last_and_unbatched_inputs() -> None:
    x = cells(2, 8, seed=1, channels=3).contiguous(memory_format=torch.channels_last)
    for f in (PeriodicTranslation(), D4()):
        y = f.apply(x, torch.tensor([1, 3]))
        assert y.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(f.apply(x[0], torch.tensor(1)), y[0])
    y = periodic_roll(x, torch.tensor([[1, 2], [3, 4]]))
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_gradients_flow_through_the_gather() -> None:
    x = cells(2, 8, seed=3).requires_grad_()
    (D4().apply(x, torch.tensor([3, 6])) * torch.arange(64.0).view(1, 1, 8, 8)).sum().backward()
    assert torch.equal(x.grad.sum((1, 2, 3)), torch.full((2,), float(sum(range(64))), dtype=torch.float64))


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="divisible"):
        PeriodicTranslation(3).apply(cells(1, 8, seed=0), torch.tensor([1]))
    with pytest.raises(ValueError, match="`steps`"):
        PeriodicTranslation(0)
    with pytest.raises(ValueError, match="`steps`"):
        PeriodicTranslation((2, 2, 2))
    with pytest.raises(ValueError, match="square"):
        D4().apply(torch.rand(1, 1, 8, 6), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        D4().apply(cells(1, 8, seed=0), torch.tensor([8]))
    with pytest.raises(TypeError, match="integer"):
        periodic_roll(cells(1, 8, seed=0), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        periodic_roll(cells(2, 8, seed=0), torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="`p`"):
        RandomPeriodicShift(p=1.5)


def test_random_periodic_shift_is_a_roll_per_image_and_reproducible() -> None:
    x = cells(64, 8, seed=6)
    before = x.clone()
    y = RandomPeriodicShift(generator=torch.Generator().manual_seed(1))(x)
    y2 = RandomPeriodicShift(generator=torch.Generator().manual_seed(1))(x)
    assert torch.equal(x, before) and torch.equal(y, y2)
    found = set()
    for i in range(64):
        matches = [(a, b) for a in range(8) for b in range(8) if torch.equal(torch.roll(x[i], (a, b), (-2, -1)), y[i])]
        assert len(matches) == 1
        found.add(matches[0])
    assert len(found) > 30  # spread over the 64 possible shifts, not a constant
    kept = RandomPeriodicShift(p=0.0)(x)
    assert torch.equal(kept, x)
    assert RandomPeriodicShift()(x[0]).shape == x[0].shape


def test_registry_and_equivariant_transform_wiring() -> None:
    assert isinstance(build_family("translation"), PeriodicTranslation)
    assert build_family({"name": "translation", "steps": 4}).num_classes == 16
    assert build_family("d4").num_classes == 8
    t = EquivariantTransform("translation", mode="all")
    x = cells(3, 32, seed=0)
    views, labels = t(x)
    assert views.shape == (12, 1, 32, 32)
    assert torch.equal(labels, torch.arange(4).repeat_interleave(3))
    assert torch.equal(views[3:6], torch.roll(x, (0, 16), (2, 3)))
