"""The families (a label per image, label 0 the identity) against their oracles, their group laws on images, the
block layout of ``apply_all``, ``p`` as a label sampler, ``EquivariantTransform`` and the registry."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from kornia.augmentation import RandomJigsaw as KorniaJigsaw
from kornia.enhance import invert as kornia_invert
from torch import Tensor

import essl_aug
from essl_aug import registry
from essl_aug import transforms as T
from tests.transforms.catalogue import (
    ALL_PERMUTATIONS,
    FAMILIES,
    FAST,
    FEW,
    GROUPS,
    KLEIN_FOUR,
    Entry,
    accepts,
    assert_matches,
    build,
    entry,
    images,
    jigsaw_tiles,
    oracle,
    shape_for,
)

seeds = st.integers(0, 2**31 - 1)
sides = st.integers(1, 20)


def labels_for(f: T.Family, batch: int, seed: int) -> Tensor:
    return torch.randint(f.num_classes, (batch,), generator=torch.Generator().manual_seed(seed))


def assert_same(actual: Tensor, expected: Tensor, e: Entry) -> None:
    """Bit equality for pixel moves and exact families; float rounding otherwise (an inversion composed with its
    inverse rounds twice; a blur rounds in its own order)."""
    if e.pixel_move:
        assert torch.equal(actual, expected)
    else:
        atol = max(e.tol, 1e-12 if actual.dtype == torch.float64 else 1e-6)
        torch.testing.assert_close(actual, expected, rtol=0, atol=atol)


# -- labels agree with the oracles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("e", FAMILIES, ids=repr)
@FEW
@given(batch=st.integers(1, 5), height=sides, width=sides, seed=seeds, data=st.data())
def test_labels_agree_with_the_oracles(e: Entry, batch: int, height: int, width: int, seed: int, data) -> None:
    f = build(e)
    channels = data.draw(st.sampled_from(e.channels))
    dtype = data.draw(st.sampled_from([d for d in (torch.float32, torch.float64, torch.uint8) if d in f.dtypes]))
    shape = shape_for(e, batch, height, width, channels)
    if not accepts(f, shape, dtype):
        dtype = torch.float32
    x = images(shape, seed, dtype)
    params = T.LabelParams.of(labels_for(f, batch, seed + 1))
    assert_matches(f.apply(x, params), oracle(e, f, x, params), e)


@pytest.mark.parametrize("e", FAMILIES, ids=repr)
def test_apply_all_is_the_block_layout_of_per_label_applies(e: Entry) -> None:
    """Rows ``k*B .. (k+1)*B - 1`` hold element ``k`` (labels ``arange(K).repeat_interleave(B)``), each equal to the
    oracle; the K outputs of a generic image are pairwise distinct (the labels are a bijection)."""
    f = build(e)
    x = images(shape_for(e, 3, 8, 10), seed=1)
    every = f.apply_all(x)
    k = f.num_classes
    assert every.shape == (k * 3, *x.shape[1:])
    for label in range(k):
        block = every[label * 3 : (label + 1) * 3]
        labels = torch.full((3,), label)
        assert torch.equal(block, f.apply(x, labels))
        assert_same(block, oracle(e, f, x, T.LabelParams.of(labels)), e)
    assert torch.equal(every, f.apply(x.repeat(k, 1, 1, 1), torch.arange(k).repeat_interleave(3)))
    flat = f.apply_all(x[:1]).flatten(1).double()
    distance = torch.cdist(flat, flat) + torch.eye(k) * 1e9
    if e.id == "hflip-x-rotation90-x-vflip":  # 16 labels, the 8 symmetries of the square: each twice
        assert int((distance < 1e-6).sum()) == 16
    else:
        assert distance.min() > 1e-6


def test_the_reference_rotation_block_layout() -> None:
    """The reference E-SSL ``rotate_images``: blocks x, rot90 (flip then transpose), rot180, rot270."""
    x = images((2, 3, 5, 5), seed=2)
    expected = torch.cat([x, x.flip(3).transpose(2, 3), x.flip(3).flip(2), x.transpose(2, 3).flip(3)])
    views, labels = essl_aug.EquivariantTransform("rotation", mode="all")(x)
    assert torch.equal(views, expected) and labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_the_reference_half_cell_translation_labels() -> None:
    """Labels 0..3 of the photonics task: the rolls (0, 0), (0, W/2), (H/2, 0), (H/2, W/2)."""
    x = images((2, 1, 8, 12), seed=3)
    views = T.RandomPeriodicTranslation().apply_all(x)
    for label, shift in enumerate([(0, 0), (0, 6), (4, 0), (4, 6)]):
        assert torch.equal(views[label * 2 : (label + 1) * 2], torch.roll(x, shift, dims=(2, 3)))


def test_the_jigsaw_labels_are_itertools_permutations() -> None:
    assert list(T.PERMUTATIONS) == ALL_PERMUTATIONS and T.PERMUTATIONS[0] == (0, 1, 2, 3)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert T.RandomJigsaw().apply(x, torch.tensor([23]))[0, 0].tolist() == [
        [10, 11, 8, 9],
        [14, 15, 12, 13],
        [2, 3, 0, 1],
        [6, 7, 4, 5],
    ]


#: kornia numbers the destination cells of a 2x2 grid column-major; this swaps to row-major (an involution).
KORNIA_TO_ROW_MAJOR = [0, 2, 1, 3]


@FAST
@given(batch=st.integers(1, 4), height=st.sampled_from([2, 4, 6, 10]), width=st.sampled_from([2, 8, 12]), seed=seeds)
def test_the_jigsaw_replays_kornia_random_jigsaw(batch: int, height: int, width: int, seed: int) -> None:
    x = images((batch, 3, height, width), seed)
    aug = KorniaJigsaw(grid=(2, 2), p=1.0, ensure_perm=False)
    torch.manual_seed(seed)
    expected = aug(x)
    row_major = aug._params["permutation"][:, KORNIA_TO_ROW_MAJOR]
    labels = torch.tensor([T.PERMUTATIONS.index(tuple(p)) for p in row_major.tolist()])
    assert torch.equal(T.RandomJigsaw().apply(x, labels), expected)


def test_clockwise_and_row_major_are_a_relabelling_of_one_task() -> None:
    x = images((1, 1, 4, 4), seed=4)
    row = T.RandomJigsaw().apply_all(x).flatten(1)
    cw = T.RandomJigsaw(tile_order="clockwise").apply_all(x).flatten(1)
    match = torch.cdist(cw, row).argmin(dim=1)
    assert torch.equal(match.sort().values, torch.arange(24)) and torch.equal(cw, row[match])
    assert not torch.equal(match, torch.arange(24))
    # the co-author code's tiles [[s0, s1], [s3, s2]]: clockwise label p puts tile perm[i] in clockwise cell i
    perm = ALL_PERMUTATIONS[7]
    img = x[0]
    assert torch.equal(cw[7].view_as(img), jigsaw_tiles(img, perm, "clockwise"))


@FAST
@given(seed=seeds, max_val=st.sampled_from([1.0, 255.0, 2.5]))
def test_pixel_inversion_with_max_val_is_kornia_invert(seed: int, max_val: float) -> None:
    x = images((3, 3, 4, 4), seed) * max_val
    labels = torch.tensor([0, 1, 1])
    expected = torch.stack([kornia_invert(x[i], torch.tensor(max_val)) if labels[i] else x[i] for i in range(3)])
    assert torch.equal(T.RandomInvert(max_val=max_val).apply(x, labels), expected)


def test_normalised_inversion_is_the_normalised_image_of_inverted_pixels() -> None:
    mean, std = torch.tensor([0.4914, 0.4822, 0.4465]), torch.tensor([0.2023, 0.1994, 0.2010])
    pixels = images((4, 3, 5, 5), seed=5)
    x = (pixels - mean.view(3, 1, 1)) / std.view(3, 1, 1)
    y = T.RandomInvert(mean=mean.tolist(), std=std.tolist()).apply(x, torch.tensor([1, 0, 1, 1]))
    semantic = (1 - pixels - mean.view(3, 1, 1)) / std.view(3, 1, 1)
    torch.testing.assert_close(y[[0, 2, 3]], semantic[[0, 2, 3]], rtol=0, atol=1e-5)
    assert torch.equal(y[1], x[1])
    naive = T.RandomInvert(mean=mean.tolist(), std=std.tolist(), naive_normalized=True)
    assert torch.equal(naive.apply(x, torch.tensor([1, 0, 1, 1]))[0], 1 - x[0])  # the co-author code's 1 - x


def test_uint8_inversion_is_bitwise_not_and_a_group() -> None:
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(T.RandomInvert().apply(x, torch.tensor([1])), 255 - x)
    f = T.RandomInvert()
    for a in range(2):
        for b in range(2):
            la, lb = torch.tensor([a]), torch.tensor([b])
            assert torch.equal(f.apply(f.apply(x, lb), la), f.apply(x, f.compose(la, lb)))


# -- group laws ------------------------------------------------------------------------------------------------------


def oracle_cayley(e: Entry, f: T.Family) -> Tensor:
    """The Cayley table ``[a, b]`` = the label of "``b`` first, then ``a``", found from the oracle on a generic image
    (distinct elements give distinct images), independently of the library's ``compose``; where two labels are one
    element, the smaller (the documented rule)."""
    assert e.element is not None
    _, c, h, w = shape_for(e, 1, 4, 4)
    x = torch.randperm(c * h * w, generator=torch.Generator().manual_seed(6)).view(c, h, w).double()

    def key(img: Tensor) -> bytes:  # integer pixels: exact under moves; an inversion rounds at 1e-14
        return torch.round(img * 1000).long().numpy().tobytes()

    k = f.num_classes
    outputs = [e.element(x, label) for label in range(k)]
    index: dict[bytes, int] = {}
    for label, o in enumerate(outputs):
        index.setdefault(key(o), label)
    table = torch.empty(k, k, dtype=torch.long)
    for a in range(k):
        for b in range(k):
            table[a, b] = index[key(e.element(outputs[b], a))]
    return table


@pytest.mark.parametrize("e", GROUPS, ids=repr)
def test_the_group_laws_on_every_label(e: Entry) -> None:
    """``compose`` is the oracle's Cayley table; identity, inverses, associativity, a Latin square; and
    ``apply(apply(x, b), a) == apply(x, compose(a, b))`` on images for every pair. (A product whose labels name
    some elements twice composes to the smaller label: the identity law holds up to that.)"""
    f = build(e)
    assert isinstance(f, T.Group) and f.is_group
    k = f.num_classes
    every = torch.arange(k)
    a, b = torch.cartesian_prod(every, every).unbind(1)
    table = f.compose(a, b).view(k, k)
    assert table.dtype == torch.long
    expected = oracle_cayley(e, f)
    assert torch.equal(table, expected)
    canonical = expected[:, 0]  # each label's smallest equivalent: itself when the labels are a bijection
    zero = torch.zeros(k, dtype=torch.long)
    assert torch.equal(f.compose(every, zero), canonical) and torch.equal(f.compose(zero, every), canonical)
    inverse = f.inverse(every)
    assert torch.equal(f.compose(inverse, every), zero) and torch.equal(f.compose(every, inverse), zero)
    x3, y3, z3 = torch.cartesian_prod(every, every, every).unbind(1)
    assert torch.equal(f.compose(f.compose(x3, y3), z3), f.compose(x3, f.compose(y3, z3)))
    if torch.equal(canonical, every):
        for row in table:  # a Latin square
            assert torch.equal(row.sort().values, every)
    assert torch.equal(f.compose(a.int(), b.int()).long(), table.flatten())  # int32 labels: the same law
    x = images(shape_for(e, 1, 6, 6), seed=7, dtype=torch.float64)
    moved = f.apply_all(x)  # row b: element b applied to x
    for label in range(k):
        composed = f.apply(moved, torch.full((k,), label))
        assert_same(composed, f.apply(x.expand(k, -1, -1, -1), table[label]), e)


@pytest.mark.parametrize("e", GROUPS, ids=repr)
@FEW
@given(batch=st.integers(1, 4), size=st.integers(4, 20), seed=seeds)
def test_closure_and_inverses_on_images(e: Entry, batch: int, size: int, seed: int) -> None:
    f = build(e)
    x = images(shape_for(e, batch, size, size + 2), seed, torch.float64)
    a, b = labels_for(f, batch, seed), labels_for(f, batch, seed + 1)
    assert_same(f.apply(f.apply(x, b), a), f.apply(x, f.compose(a, b)), e)
    inverse = f.inverse(a)
    assert_same(f.apply(f.apply(x, a), inverse), x, e)
    assert_same(f.apply(f.apply(x, inverse), a), x, e)
    assert torch.equal(f.apply(x, torch.zeros(batch, dtype=torch.long)), x)


def assert_dihedral(d4: T.Family) -> None:
    """r^4 = f^2 = e, f r f = r^-1, not abelian, and the element orders of D4 (C8 or C2^3 would differ)."""
    assert d4.num_classes == 8
    r, flip, e = torch.tensor([2]), torch.tensor([1]), torch.tensor([0])
    r2 = d4.compose(r, r)
    assert torch.equal(d4.compose(r2, r2), e) and torch.equal(d4.compose(flip, flip), e)
    assert torch.equal(d4.compose(flip, d4.compose(r, flip)), d4.inverse(r))
    assert not torch.equal(d4.compose(r, flip), d4.compose(flip, r))
    orders = []
    for g in range(8):
        power, n = torch.tensor([g]), 1
        while not torch.equal(power, e):
            power, n = d4.compose(torch.tensor([g]), power), n + 1
        orders.append(n)
    assert sorted(orders) == [1, 2, 2, 2, 2, 2, 4, 4]


def test_rotation_x_vflip_and_d4_are_the_dihedral_group_with_one_convention() -> None:
    product, d4 = T.Product([T.RandomRotation90(), T.RandomVerticalFlip()]), T.RandomD4()
    assert_dihedral(product)
    assert_dihedral(d4)
    every = torch.arange(8)
    a, b = torch.cartesian_prod(every, every).unbind(1)
    assert torch.equal(d4.compose(a, b), product.compose(a, b))
    x = images((8, 2, 5, 5), seed=8)
    assert torch.equal(d4.apply(x, every), product.apply(x, every))
    assert torch.equal(product.apply_all(x[:1])[5], x[0].flip(-1))  # rot180 then vflip is hflip


def test_translations_and_flips_do_not_commute() -> None:
    """A shift down after a flip is a flip after a shift up: the law is not per factor (not a direct product)."""
    f = T.Product([T.RandomPeriodicTranslation(steps=(3, 1)), T.RandomVerticalFlip()])  # 2 * a + v
    shift, flip = torch.tensor([2]), torch.tensor([1])
    assert f.compose(flip, shift).item() == 3  # shift by H / 3, then flip
    assert f.compose(shift, flip).item() == 5  # flip, then shift: shift by 2H / 3, then flip


@pytest.mark.parametrize(
    "factors",
    [
        lambda: [T.RandomPeriodicTranslation(steps=3), T.RandomVerticalFlip()],
        lambda: [T.RandomRotation90(), T.RandomPeriodicTranslation(steps=3)],
        lambda: [T.RandomRotation90(), T.RandomJigsaw(KLEIN_FOUR)],
        lambda: [T.RandomPeriodicTranslation(steps=3), T.RandomInvert(), T.RandomHorizontalFlip()],
        lambda: [T.RandomRotation90(), T.Product([T.RandomPeriodicTranslation(steps=3), T.RandomHorizontalFlip()])],
    ],
    ids=["translation3-x-vflip", "rotation-x-translation3", "rotation-x-klein", "with-invert", "nested"],
)
def test_products_derive_their_law_from_their_factors(factors) -> None:
    f = T.Product(factors())
    assert f.is_group
    k = f.num_classes
    a, b = torch.cartesian_prod(torch.arange(k), torch.arange(k)).unbind(1)
    x = images((1, 3, 12, 12), seed=9, dtype=torch.float64).expand(k * k, -1, -1, -1)
    assert torch.equal(f.apply(f.apply(x, b), a), f.apply(x, f.compose(a, b)))
    every = torch.arange(k)
    assert torch.equal(f.compose(f.inverse(every), every), torch.zeros(k, dtype=torch.long))


def test_non_groups_say_why() -> None:
    open_jigsaw = build(entry("jigsaw-open"))
    assert not open_jigsaw.is_group
    with pytest.raises(TypeError, match="not closed"):
        open_jigsaw.compose(torch.tensor([1]), torch.tensor([2]))
    with pytest.raises(TypeError, match="not closed"):
        open_jigsaw.inverse(torch.tensor([1]))
    for name in ("blur", "grayscale", "vflip-x-blur3", "grayscale-x-vflip"):
        f = build(entry(name))
        assert not f.is_group
        with pytest.raises(TypeError, match="not a group"):
            f.compose(torch.tensor([1]), torch.tensor([1]))
        with pytest.raises(TypeError, match="not a group"):
            f.inverse(torch.tensor([1]))
    not_closed = build(entry("rotation90-x-translation-2x4"))
    assert not not_closed.is_group
    with pytest.raises(TypeError, match=r"not a group: it is not closed under composition"):
        not_closed.compose(torch.tensor([1]), torch.tensor([2]))
    two = T.Product([T.RandomInvert(), T.RandomInvert(max_val=2.0)])
    with pytest.raises(TypeError, match=r"not a group: its pointwise factors .* need not commute"):
        two.inverse(torch.tensor([1]))
    with pytest.raises(TypeError, match=r"not a group: its factor jigsaw is not a group"):
        T.Product([T.RandomRotation90(), T.RandomJigsaw([0, 1, 2, 5])]).compose(torch.tensor([1]), torch.tensor([2]))


@pytest.mark.parametrize("e", FAMILIES, ids=repr)
def test_relative_is_compose_with_the_inverse_or_disagreement(e: Entry) -> None:
    """A group's relative target takes view ``b`` to view ``a``; another family's is 1 where the views differ."""
    f = build(e)
    a = T.LabelParams.of(labels_for(f, 16, 10))
    b = T.LabelParams.of(labels_for(f, 16, 11))
    relative = f.relative(a, b)
    if f.is_group:
        assert f.relative_spec.size == f.num_classes
        x = images(shape_for(e, 16, 6, 6), seed=12, dtype=torch.float64)
        assert_same(f.apply(f.apply(x, b), relative), f.apply(x, a), e)
    else:
        assert f.relative_spec.size == 2
        assert torch.equal(relative, (a.labels != b.labels).long())


def test_rotation_relative_is_augself_difference_mod_4() -> None:
    f = T.RandomRotation90()
    a, b = torch.tensor([0, 1, 3, 2]), torch.tensor([1, 3, 0, 2])
    assert torch.equal(f.relative(T.LabelParams.of(a), T.LabelParams.of(b)), (a - b) % 4)


# -- p: a label sampler ---------------------------------------------------------------------------------------------

WITH_P = {
    "hflip": lambda p: T.RandomHorizontalFlip(p=p),
    "vflip": lambda p: T.RandomVerticalFlip(p=p),
    "rotation90": lambda p: T.RandomRotation90(p=p),
    "d4": lambda p: T.RandomD4(p=p),
    "jigsaw": lambda p: T.RandomJigsaw(p=p),
    "translation": lambda p: T.RandomPeriodicTranslation(p=p),
    "blur": lambda p: T.RandomBlurLevels(p=p),
    "invert": lambda p: T.RandomInvert(p=p),
    "grayscale": lambda p: T.RandomGrayscale(p=p),
    "product": lambda p: T.Product([T.RandomRotation90(), T.RandomVerticalFlip()], p=p),
    "solarize": lambda p: T.RandomSolarize(p=p),
    "color-jitter": lambda p: T.ColorJitter(p=p),
    "gaussian-blur": lambda p: T.RandomGaussianBlur(p=p),
    "rotation": lambda p: T.RandomRotation(p=p),
    "periodic-shift": lambda p: T.RandomPeriodicShift(p=p),
}
N = 4000


def within_binomial(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def uniform_p_value(counts: Tensor) -> float:
    """The p-value of Pearson's chi-square test of ``counts`` against the uniform distribution."""
    counts = counts.double()
    expected = counts.sum() / counts.numel()
    statistic = ((counts - expected) ** 2 / expected).sum()
    dof = torch.tensor((counts.numel() - 1) / 2, dtype=torch.float64)
    return float(torch.special.gammaincc(dof, statistic / 2))


def test_the_uniformity_test_can_fail() -> None:
    gen = torch.Generator().manual_seed(0)
    fair = torch.randint(4, (N,), generator=gen)
    skewed = torch.where(torch.rand(N, generator=gen) < 0.1, torch.zeros_like(fair), fair)
    assert uniform_p_value(torch.bincount(fair, minlength=4)) > 1e-3
    assert uniform_p_value(torch.bincount(skewed, minlength=4)) < 1e-6
    assert within_binomial(1200, N, 0.3) and not within_binomial(1400, N, 0.3)


@pytest.mark.parametrize("name", sorted(WITH_P))
def test_p_is_a_label_sampler(name: str) -> None:
    """p=0: never transformed; p=1: always (never the identity); p=0.3: the transformed fraction within five binomial
    standard deviations (a fixed seed); a family's transformed labels are uniform over the K-1 others."""
    never = WITH_P[name](0.0).sample((200, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    always = WITH_P[name](1.0).sample((200, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    assert not bool(never.applied.any()) and bool(always.applied.all())
    t = WITH_P[name](0.3)
    params = t.sample((N, 3, 8, 8), generator=torch.Generator().manual_seed(1))
    assert within_binomial(int(params.applied.sum()), N, 0.3)
    if isinstance(t, T.Family):
        assert torch.equal(never.labels, torch.zeros(200, dtype=torch.long))
        assert bool((always.labels > 0).all())
        assert torch.equal(params.applied, params.labels != 0)
        counts = torch.bincount(params.labels[params.applied] - 1, minlength=t.num_classes - 1)
        if t.num_classes > 2:
            assert uniform_p_value(counts) > 1e-3


@pytest.mark.parametrize("name", ["rotation", "jigsaw", "invert", "blur"])
def test_p_none_is_uniform_over_every_label(name: str) -> None:
    f = essl_aug.build_family(name)
    assert f.p is None
    labels = f.sample((N, 3, 16, 16), generator=torch.Generator().manual_seed(2)).labels
    counts = torch.bincount(labels, minlength=f.num_classes)
    assert uniform_p_value(counts) > 1e-3


def test_the_augmentation_defaults_are_torchvision_s() -> None:
    assert T.RandomHorizontalFlip().p == 0.5 and T.RandomVerticalFlip().p == 0.5 and T.RandomGrayscale().p == 0.2
    assert T.RandomRotation90().p is None and T.RandomSolarize().p == 0.2 and T.ColorJitter().p == 0.8
    assert T.RandomGaussianBlur().p == 0.5 and T.RandomResizedCrop(4).p == 1.0


# -- EquivariantTransform --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("e", FAMILIES, ids=repr)
def test_equivariant_transform_modes(e: Entry) -> None:
    f = build(e)
    x = images(shape_for(e, 5, 8, 8), seed=13)
    k = f.num_classes
    views, labels = essl_aug.EquivariantTransform(f, generator=torch.Generator().manual_seed(14))(x)
    assert views.shape == x.shape and labels.shape == (5,) and labels.dtype == torch.long
    assert torch.equal(views, f.apply(x, labels))
    views, labels = essl_aug.EquivariantTransform(f, mode="all")(x)
    assert torch.equal(labels, torch.arange(k).repeat_interleave(5)) and torch.equal(views, f.apply_all(x))
    single, label = essl_aug.EquivariantTransform(f, generator=torch.Generator().manual_seed(15))(x[0])
    assert single.shape == x.shape[1:] and label.shape == () and torch.equal(single, f.apply(x[0], label))
    every, every_labels = essl_aug.EquivariantTransform(f, mode="all")(x[0])
    assert every.shape == (k, *x.shape[1:]) and torch.equal(every_labels, torch.arange(k))


@FAST
@given(name=st.sampled_from(["rotation", "jigsaw", "vflip", "d4", "blur"]), batch=st.integers(0, 60), seed=seeds)
def test_balanced_counts_differ_by_at_most_one(name: str, batch: int, seed: int) -> None:
    t = essl_aug.EquivariantTransform(name, balanced=True, generator=torch.Generator().manual_seed(seed))
    k = t.num_classes
    x = images((batch, 3, 16, 16), seed)
    views, labels = t(x)
    counts = torch.bincount(labels, minlength=k)
    assert labels.shape == (batch,) and int(counts.sum()) == batch
    assert bool(((counts == batch // k) | (counts == batch // k + 1)).all())
    assert torch.equal(views, t.family.apply(x, labels))


def test_balanced_spare_slots_go_to_a_random_subset_of_the_classes() -> None:
    t = essl_aug.EquivariantTransform("rotation", balanced=True, generator=torch.Generator().manual_seed(3))
    x = images((6, 3, 4, 4), seed=0)  # B = 6, K = 4: two classes get 2 images, two get 1
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    seen = torch.zeros(6, dtype=torch.long)
    orders = set()
    for _ in range(600):
        labels = t(x)[1]
        counts = torch.bincount(labels, minlength=4)
        assert sorted(counts.tolist()) == [1, 1, 2, 2]
        seen[pairs.index(tuple((counts == 2).nonzero().flatten().tolist()))] += 1
        orders.add(tuple(labels.tolist()))
    assert bool((seen > 0).all()) and uniform_p_value(seen) > 1e-3
    assert len(orders) > 1


@FAST
@given(n=st.integers(1, 24), batch=st.integers(1, 3), seed=seeds)
def test_num_per_batch_draws_distinct_elements_reproducibly(n: int, batch: int, seed: int) -> None:
    x = images((batch, 3, 4, 4), seed)

    def run() -> tuple[Tensor, Tensor]:
        gen = torch.Generator().manual_seed(seed)
        return essl_aug.EquivariantTransform("jigsaw", mode="all", num_per_batch=n, generator=gen)(x)

    views, labels = run()
    assert views.shape == (n * batch, 3, 4, 4)
    blocks = labels.view(n, batch)
    assert bool((blocks == blocks[:, :1]).all()) and len(set(blocks[:, 0].tolist())) == n
    assert torch.equal(views, T.RandomJigsaw().apply(x.repeat(n, 1, 1, 1), labels))
    again_views, again = run()
    assert torch.equal(again, labels) and torch.equal(again_views, views)


def test_num_per_batch_equal_to_k_is_the_full_layout() -> None:
    x = images((2, 3, 4, 4), seed=0)
    views, labels = essl_aug.EquivariantTransform("rotation", mode="all", num_per_batch=4)(x)
    assert torch.equal(labels, torch.arange(4).repeat_interleave(2))
    assert torch.equal(views, T.RandomRotation90().apply_all(x))


@pytest.mark.parametrize("balanced", [False, True])
def test_a_generator_reproduces_labels_and_forward_takes_one(balanced: bool) -> None:
    x = images((32, 3, 4, 4), seed=1)

    def module(seed: int | None) -> essl_aug.EquivariantTransform:
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        return essl_aug.EquivariantTransform("jigsaw", balanced=balanced, generator=gen)

    first, second = module(99), module(99)
    runs = [[t(x) for _ in range(3)] for t in (first, second)]
    for (v1, l1), (v2, l2) in zip(*runs, strict=True):
        assert torch.equal(l1, l2) and torch.equal(v1, v2)
    assert not torch.equal(runs[0][0][1], runs[0][1][1])  # the generator advances between calls
    assert not torch.equal(module(100)(x)[1], runs[0][0][1])
    # forward(x, generator): the given generator draws, not the module's
    given_gen = module(5)(x, torch.Generator().manual_seed(99))[1]
    assert torch.equal(given_gen, runs[0][0][1])
    torch.manual_seed(4)
    state = torch.get_rng_state()
    module(1)(x)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(7)
    plain = module(None)(x)[1]
    torch.manual_seed(7)
    assert torch.equal(module(None)(x)[1], plain)  # the global RNG without a generator


def test_random_mode_draws_uniform_labels_whatever_the_family_p() -> None:
    t = essl_aug.EquivariantTransform(T.RandomGrayscale(p=0.0), generator=torch.Generator().manual_seed(0))
    labels = t(images((N, 3, 2, 2), seed=2))[1]
    assert within_binomial(int(labels.sum()), N, 0.5)
    rotation = essl_aug.EquivariantTransform(T.RandomRotation90(p=0.0), generator=torch.Generator().manual_seed(1))
    counts = torch.bincount(rotation(images((N, 3, 2, 2), seed=3))[1], minlength=4)
    assert uniform_p_value(counts) > 1e-3
    drawn = t.sample_labels(5, "cpu", torch.Generator().manual_seed(6))
    assert torch.equal(drawn, t(images((5, 3, 2, 2), seed=4), torch.Generator().manual_seed(6))[1])


def test_equivariant_transform_is_a_module_with_the_family_classes() -> None:
    t = essl_aug.EquivariantTransform(["rotation", "vflip"])
    assert isinstance(t, torch.nn.Module) and t.num_classes == 8 and isinstance(t.family, T.Product)
    assert "mode='random'" in repr(t)


# -- the registry ----------------------------------------------------------------------------------------------------

NAMES = {
    "rotation": (T.RandomRotation90, 4, "rotation90"),
    "vflip": (T.RandomVerticalFlip, 2, "vflip"),
    "hflip": (T.RandomHorizontalFlip, 2, "hflip"),
    "jigsaw": (T.RandomJigsaw, 24, "jigsaw"),
    "blur": (T.RandomBlurLevels, 4, "blur"),
    "invert": (T.RandomInvert, 2, "invert"),
    "grayscale": (T.RandomGrayscale, 2, "grayscale"),
    "translation": (T.RandomPeriodicTranslation, 4, "translation"),
    "d4": (T.RandomD4, 8, "d4"),
}


def test_every_family_name_builds_its_family() -> None:
    assert essl_aug.family_names() == sorted(NAMES)
    for name, (cls, k, attribute) in NAMES.items():
        for built in (
            essl_aug.build_family(name),
            essl_aug.build_transformation(name),
            essl_aug.EquivariantTransform(name).family,
        ):
            assert type(built) is cls and built.num_classes == k and built.name == attribute


def test_continuous_names_build_their_transformations() -> None:
    assert essl_aug.continuous_names() == ["gaussian_blur", "random_rotation", "zoom"]
    rotation = essl_aug.build_transformation("random_rotation")
    assert type(rotation) is T.RandomRotation and rotation.degrees == (-180.0, 180.0) and rotation.p == 1.0
    assert essl_aug.build_transformation({"name": "random_rotation", "degrees": 30.0}).degrees == (-30.0, 30.0)
    blur = essl_aug.build_transformation("gaussian_blur")
    assert type(blur) is T.RandomGaussianBlur and blur.p == 1.0 and blur.target_spec.ranges == ((0.1, 2.0),)
    zoom = essl_aug.build_transformation({"name": "zoom", "scale": (0.2, 1.0)})
    assert type(zoom) is T.RandomResizedCrop and zoom.size is None and zoom.scale == (0.2, 1.0)
    assert zoom.output_shape((2, 3, 9, 7)) == (2, 3, 9, 7)
    instance = T.RandomSolarize()
    assert essl_aug.build_transformation(instance) is instance


def test_lists_mappings_and_instances() -> None:
    product = essl_aug.build_family(["rotation", "vflip"])
    assert isinstance(product, T.Product) and [type(f) for f in product.families] == [
        T.RandomRotation90,
        T.RandomVerticalFlip,
    ]
    assert product.name == "rotation90xvflip" and product.num_classes == 8
    assert essl_aug.build_family(["jigsaw", "invert", "hflip"]).num_classes == 96
    assert type(essl_aug.build_family(["rotation"])) is T.RandomRotation90
    jigsaw = essl_aug.build_family({"name": "jigsaw", "permutations": [0, 7, 16, 23]})
    assert isinstance(jigsaw, T.RandomJigsaw) and jigsaw.permutation_indices == (0, 7, 16, 23)
    inverted = essl_aug.build_family([{"name": "invert", "mean": [0.5] * 3, "std": [0.25] * 3}, "hflip"])
    assert isinstance(inverted, T.Product) and inverted.families[0].mean == (0.5, 0.5, 0.5)
    assert essl_aug.build_family("translation", steps=4).num_classes == 16
    f = T.RandomJigsaw([0, 1])
    assert essl_aug.build_family(f) is f and essl_aug.EquivariantTransform(f).family is f


def test_register_family(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    essl_aug.register_family("klein", lambda: T.RandomJigsaw(KLEIN_FOUR))
    assert "klein" in essl_aug.family_names()
    assert essl_aug.EquivariantTransform(["klein", "vflip"]).num_classes == 8


@pytest.mark.parametrize("spec", ["rotate", "Rotation", "", ["rotation", "flip"], {"name": "jigsaws"}], ids=str)
def test_unknown_names(spec: object) -> None:
    with pytest.raises(ValueError, match=r"unknown family name .*; choose one of \["):
        essl_aug.build_family(spec)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unknown family name"):
        essl_aug.EquivariantTransform(spec)  # type: ignore[arg-type]


def test_registry_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match=r"'zoom' is a continuous transformation: give it to the E-SSL objective"):
        essl_aug.build_family("zoom")
    with pytest.raises(ValueError, match=r"invalid options for transformation 'zoom'"):
        essl_aug.build_transformation({"name": "zoom", "bogus": 1})
    with pytest.raises(ValueError, match=r"invalid options for family 'blur'"):
        essl_aug.build_family({"name": "blur", "size": 3})
    with pytest.raises(ValueError, match=r"needs a 'name' key"):
        essl_aug.build_family({"kernel_sizes": [3]})
    with pytest.raises(ValueError, match=r"options can only be given with a family name"):
        essl_aug.build_family(T.RandomRotation90(), permutations=[0])
    with pytest.raises(ValueError, match=r"options apply to a single family \(a product takes `p` only\)"):
        essl_aug.build_family(["rotation", "vflip"], steps=2)
    product = essl_aug.build_family(["rotation", "vflip"], p=0.5)  # a product drawn with p
    assert isinstance(product, T.Product) and product.p == 0.5 and product.num_classes == 8
    with pytest.raises(TypeError, match=r"`family` must be a name"):
        essl_aug.build_family(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`family` must be a name"):
        essl_aug.EquivariantTransform(3)  # type: ignore[arg-type]
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match=r"`name` must be a non-empty string"):
            essl_aug.register_family(bad, T.RandomRotation90)  # type: ignore[arg-type]
