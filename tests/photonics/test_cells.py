"""The random unit-cell generators: range, periodicity of the content, determinism and the p4m family's symmetry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.photonics import cells
from essl_aug import D4, PeriodicTranslation


@pytest.mark.parametrize("family", [*cells.FAMILIES, "mixed"])
def test_cells_are_two_material_grids_in_range_and_deterministic(family: str) -> None:
    a = cells.random_cells(8, seed=[3, 1], family=family)
    assert a.shape == (8, 32, 32)
    assert a.min() >= cells.EPS_MIN and a.max() <= cells.EPS_MAX
    assert all(len(np.unique(c)) == 2 for c in a)  # two materials, both present
    np.testing.assert_array_equal(a, cells.random_cells(8, seed=[3, 1], family=family))
    assert not np.array_equal(a, cells.random_cells(8, seed=[3, 2], family=family))


def test_p4m_cells_are_mapped_to_themselves_by_the_square_group_and_not_by_half_shifts() -> None:
    x = torch.from_numpy(cells.random_cells(32, seed=5, family="p4m")).unsqueeze(1)
    images = D4().apply_all(x).view(8, *x.shape)
    assert all(torch.equal(images[g], x) for g in range(8))
    shifted = PeriodicTranslation().apply_all(x).view(4, *x.shape)
    # a half-cell shift moves the symmetry centre: the translation label is visible in every cell
    assert not any(torch.equal(shifted[t, i], x[i]) for t in range(1, 4) for i in range(len(x)))


def test_generic_cells_have_no_point_symmetry() -> None:
    x = torch.from_numpy(cells.random_cells(16, seed=5, family="blob")).unsqueeze(1)
    images = D4().apply_all(x).view(8, *x.shape)
    assert not any(torch.equal(images[g, i], x[i]) for g in range(1, 8) for i in range(len(x)))


def test_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="`family` must be one of"):
        cells.random_cells(1, seed=0, family="hexagonal")
