"""Group laws of every group family, and label bijection (K distinct outputs) for every family."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from essl_aug import (
    D4,
    GroupFamily,
    HorizontalFlip,
    Inversion,
    Jigsaw,
    PeriodicTranslation,
    Product,
    Rotation,
    VerticalFlip,
)
from tests.core.helpers import (
    FAMILIES,
    FAST,
    GROUPS,
    KLEIN_FOUR,
    NON_GROUPS,
    assert_dihedral_relations,
    assert_same,
    family,
    images,
    labels_for,
    moves_pixels_only,
    side,
)

sizes = st.sampled_from([8, 10, 12, 16, 20, 34])
seeds = st.integers(0, 2**31 - 1)
batches = st.integers(1, 5)


def _group(name: str) -> GroupFamily:
    f = family(name)
    assert isinstance(f, GroupFamily)
    return f


@FAST
@given(name=st.sampled_from(sorted(GROUPS)), batch=batches, size=sizes, seed=seeds)
def test_label_zero_is_the_identity(name: str, batch: int, size: int, seed: int) -> None:
    f = family(name)
    x = images(batch, side(f, size), seed)
    y = f.apply(x, torch.zeros(batch, dtype=torch.long))
    assert torch.equal(y, x)
    assert y.data_ptr() != x.data_ptr()


@FAST
@given(name=st.sampled_from(sorted(NON_GROUPS)), batch=batches, size=sizes, seed=seeds)
def test_label_zero_is_the_identity_for_non_groups(name: str, batch: int, size: int, seed: int) -> None:
    f = family(name)
    x = images(batch, side(f, size), seed)
    torch.testing.assert_close(f.apply(x, torch.zeros(batch, dtype=torch.long)), x, rtol=0, atol=1e-12)


@FAST
@given(name=st.sampled_from(sorted(GROUPS)), batch=batches, size=sizes, seed=seeds)
def test_closure(name: str, batch: int, size: int, seed: int) -> None:
    """apply(apply(x, b), a) == apply(x, compose(a, b)): ``b`` first, then ``a``."""
    f = _group(name)
    x = images(batch, side(f, size), seed)
    a, b = labels_for(f, batch, seed), labels_for(f, batch, seed + 7)
    ab = f.compose(a, b)
    assert ab.shape == a.shape and ab.dtype == torch.long
    assert_same(f.apply(f.apply(x, b), a), f.apply(x, ab), exact=moves_pixels_only(f))


@FAST
@given(name=st.sampled_from(sorted(GROUPS)), batch=batches, size=sizes, seed=seeds)
def test_inverse_undoes_each_element(name: str, batch: int, size: int, seed: int) -> None:
    f = _group(name)
    x = images(batch, side(f, size), seed)
    a = labels_for(f, batch, seed)
    inv = f.inverse(a)
    exact = moves_pixels_only(f)
    assert_same(f.apply(f.apply(x, a), inv), x, exact)
    assert_same(f.apply(f.apply(x, inv), a), x, exact)


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_group_axioms_on_every_label(name: str) -> None:
    """Exhaustively: identity element, inverses and associativity of ``compose``."""
    f = _group(name)
    k = f.num_classes
    a, b, c = torch.cartesian_prod(torch.arange(k), torch.arange(k), torch.arange(k)).unbind(1)
    assert torch.equal(f.compose(f.compose(a, b), c), f.compose(a, f.compose(b, c)))
    every = torch.arange(k)
    zero = torch.zeros(k, dtype=torch.long)
    assert torch.equal(f.compose(every, zero), every)
    assert torch.equal(f.compose(zero, every), every)
    assert torch.equal(f.compose(f.inverse(every), every), zero)
    assert torch.equal(f.compose(every, f.inverse(every)), zero)
    table = f.compose(*torch.cartesian_prod(every, every).unbind(1)).view(k, k)
    for row in table:  # a Latin square: each row is a permutation of the labels
        assert torch.equal(row.sort().values, every)


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_closure_on_every_pair_of_labels(name: str) -> None:
    f = _group(name)
    k = f.num_classes
    x = images(1, side(f, 8), seed=3)
    b_images = f.apply_all(x)  # (K, C, H, W): element b applied to x
    exact = moves_pixels_only(f)
    for a in range(k):
        composed = f.apply(b_images, torch.full((k,), a, dtype=torch.long))
        expected = f.apply(x.expand(k, -1, -1, -1), f.compose(torch.full((k,), a), torch.arange(k)))
        assert_same(composed, expected, exact)


@FAST
@given(name=st.sampled_from(sorted(FAMILIES)), size=sizes, seed=seeds)
def test_labels_are_a_bijection(name: str, size: int, seed: int) -> None:
    """A generic image gives K pairwise distinct outputs."""
    f = family(name)
    out = f.apply_all(images(1, side(f, size), seed)).flatten(1)
    dist = torch.cdist(out, out)
    off_diagonal = dist[~torch.eye(f.num_classes, dtype=torch.bool)]
    assert off_diagonal.min() > 1e-6


def test_inversion_group_laws_on_uint8() -> None:
    f = Inversion()
    x = (images(3, 8, seed=1) * 255).to(torch.uint8)
    for a in range(2):
        for b in range(2):
            la, lb = torch.full((3,), a), torch.full((3,), b)
            assert torch.equal(f.apply(f.apply(x, lb), la), f.apply(x, f.compose(la, lb)))


def test_dihedral_group_relations() -> None:
    """rotation x vflip is D4: r^4 = f^2 = e, f r f = r^-1, and it is not abelian."""
    d4 = Product([Rotation(), VerticalFlip()])
    assert d4.is_group
    assert_dihedral_relations(d4)


def test_non_groups_refuse_group_operations() -> None:
    open_jigsaw = Jigsaw([0, 1, 2, 5])
    assert not open_jigsaw.is_group
    with pytest.raises(TypeError, match="not closed"):
        open_jigsaw.compose(torch.tensor([1]), torch.tensor([2]))
    with pytest.raises(TypeError, match="not closed"):
        open_jigsaw.inverse(torch.tensor([1]))
    blur_product = family("vflip-x-blur3")
    assert isinstance(blur_product, Product) and not blur_product.is_group
    with pytest.raises(TypeError, match="not a group"):
        blur_product.compose(torch.tensor([1]), torch.tensor([2]))


def test_full_jigsaw_and_its_subgroups_are_groups() -> None:
    for name in ("jigsaw", "jigsaw-klein", "jigsaw-c4", "jigsaw-clockwise"):
        f = family(name)
        assert isinstance(f, Jigsaw) and f.is_group


@pytest.mark.parametrize(
    "factors",
    [
        lambda: [PeriodicTranslation(steps=3), VerticalFlip()],  # no 16x16 grid: 3 does not divide 16
        lambda: [VerticalFlip(), PeriodicTranslation(steps=(3, 5))],
        lambda: [Rotation(), PeriodicTranslation(steps=3)],
        lambda: [Rotation(), Jigsaw(KLEIN_FOUR)],
        lambda: [PeriodicTranslation(steps=3), Inversion(), HorizontalFlip()],
        lambda: [Rotation(), Product([PeriodicTranslation(steps=3), HorizontalFlip()])],
        lambda: [D4(), Product([PeriodicTranslation(steps=3), VerticalFlip()])],  # two labels per element
    ],
    ids=[
        "translation3-x-vflip",
        "vflip-x-translation3x5",
        "rotation-x-translation3",
        "rotation-x-klein",
        "translation3-x-invert-x-hflip",
        "rotation-x-nested",
        "d4-x-nested",
    ],
)
def test_products_of_groups_get_their_law_from_the_factors(factors) -> None:
    """Every pair of labels: apply(apply(x, b), a) == apply(x, compose(a, b)), and inverses undo."""
    f = Product(factors())
    assert f.is_group
    k = f.num_classes
    a, b = torch.cartesian_prod(torch.arange(k), torch.arange(k)).unbind(1)
    x = images(1, side(f, 8), seed=5).expand(k * k, -1, -1, -1)
    exact = moves_pixels_only(f)
    assert_same(f.apply(f.apply(x, b), a), f.apply(x, f.compose(a, b)), exact)
    every = torch.arange(k)
    inv = f.inverse(every)
    y = images(k, side(f, 8), seed=6)
    assert_same(f.apply(f.apply(y, every), inv), y, exact)
    assert torch.equal(f.compose(inv, every), torch.zeros(k, dtype=torch.long))
    assert torch.equal(f.compose(a.int(), b.int()), f.compose(a, b))  # int32 labels, the same law


def test_translations_and_flips_do_not_commute() -> None:
    """A shift down after a flip is a flip after a shift up: the law is not per factor (not a direct product)."""
    f = Product([PeriodicTranslation(steps=(3, 1)), VerticalFlip()])  # label 2 * a + v: shift by a * H / 3, then flip
    shift_down, flip = torch.tensor([2]), torch.tensor([1])
    assert f.compose(flip, shift_down).item() == 2 * 1 + 1  # shift by H / 3, then flip
    assert f.compose(shift_down, flip).item() == 2 * 2 + 1  # flip, then shift by H / 3 == shift by 2H / 3, then flip


def test_products_that_are_not_groups_say_why() -> None:
    not_closed = Product([Rotation(), PeriodicTranslation(steps=(2, 4))])  # a turn maps W/4 shifts to H/4 ones
    assert not not_closed.is_group
    with pytest.raises(TypeError, match=r"not a group: it is not closed under composition"):
        not_closed.compose(torch.tensor([1]), torch.tensor([2]))
    two_inversions = Product([Inversion(), Inversion(max_val=2.0)])
    assert not two_inversions.is_group
    with pytest.raises(TypeError, match=r"not a group: its pointwise factors .* need not commute"):
        two_inversions.inverse(torch.tensor([1]))
    open_jigsaw = Product([Rotation(), Jigsaw([0, 1, 2, 5])])
    with pytest.raises(TypeError, match=r"not a group: its factor jigsaw is not a group"):
        open_jigsaw.compose(torch.tensor([1]), torch.tensor([2]))
