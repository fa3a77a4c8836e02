"""EquivariantTransform: sampling, balance, reproducibility, block layouts and construction by name."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from essl_aug import (
    BlurLevels,
    EquivariantTransform,
    Grayscale,
    HorizontalFlip,
    Inversion,
    Jigsaw,
    Product,
    Rotation,
    VerticalFlip,
    build_family,
    family_names,
    register_family,
    registry,
)
from tests.core.helpers import FAMILIES, FAST, MORE, family, images, side

NAMES = {
    "rotation": (Rotation, 4),
    "vflip": (VerticalFlip, 2),
    "hflip": (HorizontalFlip, 2),
    "jigsaw": (Jigsaw, 24),
    "blur": (BlurLevels, 4),
    "invert": (Inversion, 2),
    "grayscale": (Grayscale, 2),
}


def chi_square_p_value(counts: torch.Tensor) -> float:
    """P-value of Pearson's chi-square test of ``counts`` against the uniform distribution."""
    counts = counts.double()
    expected = counts.sum() / counts.numel()
    stat = ((counts - expected) ** 2 / expected).sum()
    dof = torch.tensor((counts.numel() - 1) / 2, dtype=torch.float64)
    return float(torch.special.gammaincc(dof, stat / 2))


def _counts(labels: torch.Tensor, k: int) -> torch.Tensor:
    return torch.bincount(labels, minlength=k)


# -- random sampler --------------------------------------------------------------------------------------------------


def test_chi_square_helper_detects_a_skewed_sampler() -> None:
    gen = torch.Generator().manual_seed(0)
    fair = torch.randint(4, (20_000,), generator=gen)
    skewed = torch.where(torch.rand(20_000, generator=gen) < 0.05, torch.zeros_like(fair), fair)
    assert chi_square_p_value(_counts(fair, 4)) > 1e-3
    assert chi_square_p_value(_counts(skewed, 4)) < 1e-6


@pytest.mark.parametrize("name", ["rotation", "jigsaw", "dihedral"])
def test_random_labels_are_uniform(name: str) -> None:
    t = EquivariantTransform(family(name), generator=torch.Generator().manual_seed(1234))
    x = images(64, 4, seed=0, dtype=torch.float32)
    seen = torch.cat([t(x)[1] for _ in range(150)])
    assert seen.dtype == torch.long
    assert chi_square_p_value(_counts(seen, t.num_classes)) > 1e-3


def test_random_labels_use_the_global_rng_without_a_generator() -> None:
    t = EquivariantTransform("rotation")
    x = images(256, 4, seed=0, dtype=torch.float32)
    torch.manual_seed(7)
    first = torch.cat([t(x)[1] for _ in range(20)])
    torch.manual_seed(7)
    again = torch.cat([t(x)[1] for _ in range(20)])
    assert torch.equal(first, again)
    assert chi_square_p_value(_counts(first, 4)) > 1e-3


@FAST
@given(name=st.sampled_from(sorted(FAMILIES)), batch=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_random_views_are_the_family_applied_to_the_labels(name: str, batch: int, seed: int) -> None:
    f = family(name)
    x = images(batch, side(f, 16), seed, dtype=torch.float32)
    views, labels = EquivariantTransform(f, generator=torch.Generator().manual_seed(seed))(x)
    assert views.shape == x.shape and labels.shape == (batch,)
    assert int(labels.min()) >= 0 and int(labels.max()) < f.num_classes
    assert torch.equal(views, f.apply(x, labels))


# -- balanced sampler ------------------------------------------------------------------------------------------------


@MORE
@given(
    name=st.sampled_from(["rotation", "jigsaw", "vflip", "dihedral", "blur", "jigsaw-klein"]),
    batch=st.integers(0, 70),
    seed=st.integers(0, 2**31 - 1),
)
def test_balanced_counts_differ_by_at_most_one(name: str, batch: int, seed: int) -> None:
    f = family(name)
    k = f.num_classes
    t = EquivariantTransform(f, balanced=True, generator=torch.Generator().manual_seed(seed))
    views, labels = t(images(batch, 8, seed, dtype=torch.float32)) if batch else t(torch.rand(0, 3, 8, 8))
    counts = _counts(labels, k)
    assert labels.shape == (batch,) and counts.sum() == batch
    assert counts.max() - counts.min() <= 1
    assert ((counts == batch // k) | (counts == batch // k + 1)).all()
    if batch:
        assert torch.equal(views, f.apply(images(batch, 8, seed, dtype=torch.float32), labels))


def test_balanced_extra_slots_and_order_are_random() -> None:
    """With B < K the classes that appear vary across calls, uniformly; the order varies too."""
    t = EquivariantTransform("jigsaw", balanced=True, generator=torch.Generator().manual_seed(5))
    x = images(10, 8, seed=0, dtype=torch.float32)
    draws = [t(x)[1] for _ in range(300)]
    assert all(len(set(d.tolist())) == 10 for d in draws)  # B < K: ten distinct classes each time
    assert chi_square_p_value(_counts(torch.cat(draws), 24)) > 1e-3
    t4 = EquivariantTransform("rotation", balanced=True, generator=torch.Generator().manual_seed(5))
    orders = {tuple(t4(x)[1].tolist()) for _ in range(20)}
    assert len(orders) > 1


def test_balanced_spare_slots_go_to_a_random_subset_of_classes() -> None:
    """B mod K spare slots: every subset of that many classes gets them, uniformly (not runs of consecutive ones)."""
    t = EquivariantTransform("rotation", balanced=True, generator=torch.Generator().manual_seed(3))
    x = images(6, 8, seed=0, dtype=torch.float32)  # B = 6, K = 4: two classes get 2 images, two get 1
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    seen = torch.zeros(len(pairs), dtype=torch.long)
    for _ in range(600):
        counts = _counts(t(x)[1], 4)
        assert sorted(counts.tolist()) == [1, 1, 2, 2]
        seen[pairs.index(tuple((counts == 2).nonzero().flatten().tolist()))] += 1
    assert (seen > 0).all(), seen  # (0, 2) and (1, 3) are not consecutive
    assert chi_square_p_value(seen) > 1e-3, seen


# -- reproducibility -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("balanced", [False, True])
def test_fixed_generator_reproduces_labels_and_views(balanced: bool) -> None:
    x = images(32, 8, seed=1, dtype=torch.float32)
    runs = []
    for _ in range(2):
        t = EquivariantTransform("jigsaw", balanced=balanced, generator=torch.Generator().manual_seed(99))
        runs.append([t(x) for _ in range(3)])
    for (v1, l1), (v2, l2) in zip(*runs, strict=True):
        assert torch.equal(l1, l2) and torch.equal(v1, v2)
    assert not torch.equal(runs[0][0][1], runs[0][1][1])  # the generator advances between calls
    other = EquivariantTransform("jigsaw", balanced=balanced, generator=torch.Generator().manual_seed(100))
    assert not torch.equal(other(x)[1], runs[0][0][1])


def test_generator_leaves_the_global_rng_alone() -> None:
    x = images(4, 8, seed=0, dtype=torch.float32)
    t = EquivariantTransform("rotation", generator=torch.Generator().manual_seed(0))
    torch.manual_seed(3)
    before = torch.get_rng_state()
    t(x)
    assert torch.equal(torch.get_rng_state(), before)


# -- "all" mode and num_per_batch ------------------------------------------------------------------------------------


@FAST
@given(name=st.sampled_from(sorted(FAMILIES)), batch=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_all_mode_block_layout(name: str, batch: int, seed: int) -> None:
    f = family(name)
    x = images(batch, side(f, 16), seed, dtype=torch.float32)
    views, labels = EquivariantTransform(f, mode="all")(x)
    k = f.num_classes
    assert views.shape == (k * batch, *x.shape[1:])
    assert torch.equal(labels, torch.arange(k).repeat_interleave(batch))
    assert torch.equal(views, f.apply(x.repeat(k, 1, 1, 1), labels))


@FAST
@given(n=st.integers(1, 24), batch=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_num_per_batch_draws_distinct_elements(n: int, batch: int, seed: int) -> None:
    x = images(batch, 8, seed, dtype=torch.float32)
    t = EquivariantTransform("jigsaw", mode="all", num_per_batch=n, generator=torch.Generator().manual_seed(seed))
    views, labels = t(x)
    assert views.shape == (n * batch, 3, 8, 8) and labels.shape == (n * batch,)
    blocks = labels.view(n, batch)
    assert (blocks == blocks[:, :1]).all()  # block layout: one element per block of B rows
    chosen = blocks[:, 0]
    assert len(set(chosen.tolist())) == n
    assert torch.equal(views, Jigsaw().apply(x.repeat(n, 1, 1, 1), labels))
    again = EquivariantTransform("jigsaw", mode="all", num_per_batch=n, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(again(x)[1], labels)


def test_num_per_batch_choices_cover_the_family_uniformly() -> None:
    t = EquivariantTransform("jigsaw", mode="all", num_per_batch=8, generator=torch.Generator().manual_seed(0))
    x = images(1, 4, seed=0, dtype=torch.float32)
    chosen = torch.cat([t(x)[1] for _ in range(300)])
    assert chi_square_p_value(_counts(chosen, 24)) > 1e-3


def test_num_per_batch_equal_to_k_is_the_full_layout() -> None:
    x = images(2, 8, seed=0, dtype=torch.float32)
    views, labels = EquivariantTransform("rotation", mode="all", num_per_batch=4)(x)
    assert torch.equal(labels, torch.arange(4).repeat_interleave(2))
    assert torch.equal(views, Rotation().apply_all(x))


# -- construction by name ---------------------------------------------------------------------------------------------


def test_the_documented_names_are_registered() -> None:
    """The core names, spelled exactly; other modules may register more (each is checked where defined)."""
    documented = ["rotation", "vflip", "hflip", "jigsaw", "blur", "invert", "grayscale"]
    assert set(documented) <= set(family_names())
    assert family_names() == sorted(family_names())


def test_registered_names_build_like_the_builtin_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    register_family("klein", lambda: Jigsaw([0, 7, 16, 23]))
    assert "klein" in family_names()
    t = EquivariantTransform(["klein", "vflip"])
    assert t.num_classes == 8


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_name_builds_its_family(name: str) -> None:
    cls, k = NAMES[name]
    t = EquivariantTransform(name)
    assert type(t.family) is cls and t.num_classes == k and t.family.name == name
    assert isinstance(t, torch.nn.Module)


def test_a_list_of_names_is_a_product() -> None:
    t = EquivariantTransform(["rotation", "vflip"])
    assert t.num_classes == 8
    assert isinstance(t.family, Product)
    assert [type(f) for f in t.family.families] == [Rotation, VerticalFlip]
    x = images(3, 6, seed=0)
    labels = torch.arange(3) * 2 + 1
    assert torch.equal(t.family.apply(x, labels), Product([Rotation(), VerticalFlip()]).apply(x, labels))
    assert EquivariantTransform(["jigsaw", "invert", "hflip"]).num_classes == 96
    assert type(build_family(["rotation"])) is Rotation


def test_mapping_specs_pass_their_options() -> None:
    j = build_family({"name": "jigsaw", "permutations": [0, 7, 16, 23]})
    assert isinstance(j, Jigsaw) and j.num_classes == 4 and j.permutation_indices == (0, 7, 16, 23)
    b = EquivariantTransform({"name": "blur", "kernel_sizes": [3]}).family
    assert isinstance(b, BlurLevels) and b.num_classes == 2
    inv = build_family([{"name": "invert", "mean": [0.5] * 3, "std": [0.25] * 3}, "hflip"])
    assert isinstance(inv, Product) and inv.families[0].mean == (0.5, 0.5, 0.5)


def test_instances_pass_through() -> None:
    f = Jigsaw([0, 1])
    assert EquivariantTransform(f).family is f
