"""AugSelf: a head on concat(f1, f2) learns the views' relative parameters; weights, gradients, errors."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug.objectives import AugSelf, Objectives, StepInputs
from essl_aug.objectives.augself import GROUPS, default_augmentations, relative_target, select_groups
from essl_aug.transforms import (
    ColorJitter,
    LabelParams,
    Params,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
)
from essl_aug.views import simclr

SHAPE = (64, 3, 16, 16)


def _crop_views(
    generator: torch.Generator, flip: bool = False
) -> tuple[dict[str, Params], dict[str, Params], RandomResizedCrop]:
    crop = RandomResizedCrop(8)
    views: list[dict[str, Params]] = []
    for _ in range(2):
        p: dict[str, Params] = {"resized_crop": crop.sample(SHAPE, generator=generator)}
        if flip:
            p["hflip"] = RandomHorizontalFlip(0.5).sample(SHAPE, generator=generator)
        views.append(p)
    return views[0], views[1], crop


def _train(objective: AugSelf, batch: object, steps: int, lr: float = 1e-2) -> None:
    optimizer = torch.optim.Adam(objective.parameters(), lr=lr)
    for _ in range(steps):
        inputs = batch()  # type: ignore[operator]
        optimizer.zero_grad()
        objective(inputs).loss.backward()
        optimizer.step()


def test_learns_the_crop_difference_from_features_that_encode_the_box(one_thread: None) -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    mixing = torch.randn(4, 16)

    def batch() -> StepInputs:
        p1, p2, crop = _crop_views(g)
        f1, f2 = (crop.target(p["resized_crop"]) @ mixing for p in (p1, p2))
        return StepInputs(features=(f1, f2), params=(p1, p2))

    augself = AugSelf(16, groups=("crop",), hidden=(64, 64))
    _train(augself, batch, 300)
    augself.eval()
    test = batch()
    assert test.params is not None
    with torch.no_grad():
        mse = augself(test).logs["crop"]
    p1, p2 = test.params
    crop = select_groups(["crop"])["crop"]
    target = torch.cat([relative_target(crop, p1, p2), relative_target(crop, p2, p1)])
    constant = ((target - target.mean(dim=0)) ** 2).mean()  # the best constant predictor's MSE
    assert float(mse) < 0.1 * float(constant), (float(mse), float(constant))


def test_learns_whether_the_views_agree_on_the_flip(one_thread: None) -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    direction = torch.randn(16)
    flip = RandomHorizontalFlip(0.5)

    def batch() -> StepInputs:
        p1, p2 = ({"hflip": flip.sample(SHAPE, generator=g)} for _ in range(2))
        f1, f2 = (
            (2 * p["hflip"].applied.float() - 1)[:, None] * direction + 0.1 * torch.randn(SHAPE[0], 16)
            for p in (p1, p2)
        )
        return StepInputs(features=(f1, f2), params=(p1, p2))

    augself = AugSelf(16, groups=("flip",), hidden=(32, 32))
    _train(augself, batch, 150)
    augself.eval()
    with torch.no_grad():
        logs = augself(batch()).logs
    assert float(logs["flip_acc"]) > 0.95  # chance: 0.5
    assert float(logs["flip"]) < 0.2  # chance: log 2


def test_loss_is_augselfs_formula_per_group_with_weights() -> None:
    torch.manual_seed(0)
    p1, p2 = simclr(16).sample((6, 3, 24, 24), generator=torch.Generator().manual_seed(0))
    f1, f2 = torch.randn(6, 8), torch.randn(6, 8)
    augself = AugSelf(8, groups=("crop", "flip", "color"), weight=0.5, group_weights={"color": 0.25})
    out = augself(StepInputs(features=(f1, f2), params=(p1, p2)))
    pairs = torch.cat([torch.cat([f1, f2], 1), torch.cat([f2, f1], 1)])
    groups = select_groups(["crop", "flip", "color"])
    crop_aug = groups["crop"]
    crop = torch.cat([crop_aug.relative(p1["resized_crop"], p2["resized_crop"], flipped=p1["hflip"]),
                      crop_aug.relative(p2["resized_crop"], p1["resized_crop"], flipped=p2["hflip"])])  # fmt: skip
    agree = torch.cat([(p1["hflip"].applied == p2["hflip"].applied)] * 2).float()
    color = torch.cat([groups["color"].relative(p1["color_jitter"], p2["color_jitter"]),
                       groups["color"].relative(p2["color_jitter"], p1["color_jitter"])])  # fmt: skip
    expected = {
        "crop": F.mse_loss(torch.tanh(augself.heads["crop"](pairs)), crop),
        "flip": F.binary_cross_entropy_with_logits(augself.heads["flip"](pairs)[:, 0], agree),
        "color": F.mse_loss(torch.tanh(augself.heads["color"](pairs)), color),
    }
    for group, value in expected.items():
        torch.testing.assert_close(out.logs[group], value.detach())
    torch.testing.assert_close(out.loss, 0.5 * (expected["crop"] + expected["flip"] + 0.25 * expected["color"]))
    assert not any(v.requires_grad for v in out.logs.values())


@pytest.mark.parametrize("family", [RandomHorizontalFlip(0.5), RandomGrayscale(0.5)])
def test_a_two_class_groups_target_is_one_where_the_views_agree(family: object) -> None:
    """AugSelf's ``f1 == f2``: 1 where both views were flipped (or both not), 0 where one was."""
    assert isinstance(family, (RandomHorizontalFlip, RandomGrayscale))
    labels1, labels2 = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1])
    a, b = {family.name: LabelParams.of(labels1)}, {family.name: LabelParams.of(labels2)}
    target = relative_target(family, a, b)
    assert target.tolist() == [1, 0, 0, 1] and target.dtype == torch.int64
    assert torch.equal(relative_target(family, b, a), target)


def test_relative_targets_of_the_other_groups() -> None:
    p1, p2 = simclr(16).sample((5, 3, 24, 24), generator=torch.Generator().manual_seed(1))
    augs = default_augmentations()
    crop, jitter = augs["resized_crop"], augs["color_jitter"]
    assert isinstance(crop, RandomResizedCrop)
    # the crop difference, with the centres mirrored where the first view is flipped (AugSelf's extract_diff)
    flipped = p1["hflip"].applied
    t1, t2 = crop.target(p1["resized_crop"]), crop.target(p2["resized_crop"])
    t1[flipped, 1], t2[flipped, 1] = 1 - t1[flipped, 1], 1 - t2[flipped, 1]
    torch.testing.assert_close(relative_target(crop, p1, p2), t1 - t2)
    without_flip = {"resized_crop": p1["resized_crop"]}
    torch.testing.assert_close(
        relative_target(crop, without_flip, p2), crop.relative(p1["resized_crop"], p2["resized_crop"])
    )
    torch.testing.assert_close(relative_target(jitter, p1, p2), jitter.relative(p1["color_jitter"], p2["color_jitter"]))
    rotation = RandomRotation()
    r1, r2 = (rotation.sample((5, 3, 8, 8), generator=torch.Generator().manual_seed(s)) for s in (2, 3))
    angle = torch.deg2rad(r1.angle - r2.angle)
    expected = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    torch.testing.assert_close(relative_target(rotation, {"rotation": r1}, {"rotation": r2}), expected)


def test_not_symmetric_uses_one_order() -> None:
    p1, p2 = simclr(16).sample((5, 3, 24, 24), generator=torch.Generator().manual_seed(0))
    f1, f2 = torch.randn(5, 8), torch.randn(5, 8)
    augself = AugSelf(8, groups=("blur",), symmetric=False, norm="none")
    out = augself(StepInputs(features=(f1, f2), params=(p1, p2)))
    blur = select_groups(["blur"])["blur"]
    expected = F.mse_loss(torch.tanh(augself.heads["blur"](torch.cat([f1, f2], 1))), relative_target(blur, p1, p2))
    torch.testing.assert_close(out.logs["blur"], expected.detach())


def test_gradient_reaches_the_features() -> None:
    p1, p2 = simclr(16).sample((4, 3, 24, 24))
    f1, f2 = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True)
    AugSelf(8, groups=("crop", "color", "flip"))(StepInputs(features=(f1, f2), params=(p1, p2))).loss.backward()
    assert f1.grad is not None and f2.grad is not None
    assert float(f1.grad.abs().sum()) > 0 and float(f2.grad.abs().sum()) > 0


@pytest.mark.parametrize("bad", [None, float("inf"), float("nan")])
def test_weight_zero_leaves_the_ssl_loss_bit_identical(bad: float | None) -> None:
    p1, p2 = simclr(16).sample((4, 3, 24, 24))
    f1, f2 = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8)
    if bad is not None:
        f2 = f2.clone()
        f2[0, 0] = bad
    augself = AugSelf(8, groups=("crop", "flip"), weight=0.0)
    out = augself(StepInputs(features=(f1, f2), params=(p1, p2)))
    assert set(out.logs) == {"crop", "flip", "flip_acc"}  # still computed
    for value in (1.2345, -0.0, 0.0, -3e-38, float("inf")):
        ssl = torch.tensor(value)
        assert torch.equal((ssl + out.loss).view(torch.int32), ssl.view(torch.int32)), value
    out.loss.backward()  # the graph is kept: the heads get zero gradients, the features none
    assert f1.grad is None
    if bad is None:
        grads = [p.grad for p in augself.parameters()]
        assert all(g is not None and not g.any() for g in grads)


def test_objectives_sum_and_prefix() -> None:
    p1, p2 = simclr(16).sample((4, 3, 24, 24))
    both = Objectives({"augself": AugSelf(8, groups=("crop", "grayscale"))})
    out = both(StepInputs(features=(torch.randn(4, 8), torch.randn(4, 8)), params=(p1, p2)))
    assert sorted(out.logs) == ["augself/crop", "augself/grayscale", "augself/grayscale_acc", "augself/loss"]


def test_group_names_and_augmentations() -> None:
    assert list(AugSelf(4, groups=("color_jitter", "resized_crop")).groups) == ["color", "crop"]
    assert set(GROUPS) == {"crop", "color", "flip", "blur", "grayscale", "solarize", "rotation"}
    # the views' settings enter the colour targets: the given jitter replaces the default one
    jitter = ColorJitter(0.4, 0.4, 0.4, 0.1)
    assert AugSelf(4, groups=("color",), augmentations=[jitter]).groups["color"] is jitter
    pipeline = simclr(16, jitter_strength=0.5)
    color = AugSelf(4, augmentations=pipeline).groups["color"]
    assert isinstance(color, ColorJitter) and color.brightness == pytest.approx((0.6, 1.4))
    assert AugSelf(4, groups=("color",), augmentations={"c": jitter}).groups["color"] is jitter
    # default heads: AugSelf's 2D-512-512-out with BatchNorm; one logit for two classes
    heads = AugSelf(4, groups=("crop", "flip", "solarize")).heads
    assert [m.out_features for m in heads["crop"].modules() if isinstance(m, nn.Linear)] == [512, 512, 4]
    assert any(isinstance(m, nn.BatchNorm1d) for m in heads["crop"].modules())
    assert heads["flip"](torch.rand(3, 8)).shape == (3, 1) and heads["solarize"](torch.rand(3, 8)).shape == (3, 1)


def _match(err: type[Exception], *parts: str) -> Any:
    return pytest.raises(err, match=".*".join(parts))


def test_clear_errors() -> None:
    p1, p2 = simclr(16).sample((4, 3, 24, 24))
    features = (torch.randn(4, 8), torch.randn(4, 8))
    with _match(
        ValueError, "group 'solarize'", "'solarize' parameters", r"add essl_aug\.RandomSolarize to the views' pipeline"
    ):
        AugSelf(8, groups=("crop", "solarize"))(StepInputs(features=features, params=(p1, p2)))
    with _match(ValueError, "`groups`", "crop"):
        AugSelf(8, groups=("zoom",))
    with _match(ValueError, "`groups`"):
        AugSelf(8, groups=())
    with _match(TypeError, "`groups`", "not a string"):
        AugSelf(8, groups="crop")
    with _match(ValueError, "more than once"):
        AugSelf(8, groups=("crop", "resized_crop"))
    with _match(ValueError, "`group_weights`", "'blur'", "`groups`"):
        AugSelf(8, group_weights={"blur": 1.0})
    with _match(ValueError, r"`group_weights\['crop'\]`", ">= 0"):
        AugSelf(8, group_weights={"crop": -1.0})
    with _match(ValueError, "`weight`"):
        AugSelf(8, weight=-0.5)
    with _match(ValueError, "`in_features`"):
        AugSelf(0)
    with _match(TypeError, "`augmentations`", "int"):
        AugSelf(8, augmentations=[3])  # type: ignore[list-item]
    with _match(ValueError, "`in_features=8`"):
        AugSelf(6)(StepInputs(features=features, params=(p1, p2)))
    with _match(ValueError, "needs features"):
        AugSelf(8)(StepInputs(params=(p1, p2)))
    short = simclr(16).sample((3, 3, 24, 24))
    with _match(ValueError, "3 images", "has 4"):
        AugSelf(8)(StepInputs(features=features, params=(short[0], short[1])))


def test_runs_on_real_params_of_the_simclr_recipe() -> None:
    torch.manual_seed(0)
    x = torch.randint(0, 256, (8, 3, 24, 24), dtype=torch.uint8)
    views, params = simclr(16)(x, torch.Generator().manual_seed(3))
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    augself = AugSelf(8, groups=("crop", "color", "flip", "blur", "grayscale"), weight=0.5)
    features: tuple[Tensor, Tensor] = (backbone(views[0]), backbone(views[1]))
    out = augself(StepInputs(features=features, params=(params[0], params[1])))
    assert out.loss.ndim == 0 and bool(torch.isfinite(out.loss))
    assert set(out.logs) == {"crop", "color", "flip", "flip_acc", "blur", "grayscale", "grayscale_acc"}
    out.loss.backward()
    weight = backbone[0].weight
    assert isinstance(weight, Tensor) and weight.grad is not None and bool(weight.grad.abs().sum() > 0)
    with pytest.raises(ValueError, match=r"add essl_aug\.RandomSolarize to the views' pipeline"):
        AugSelf(8, groups=("solarize",))(StepInputs(features=features, params=(params[0], params[1])))


# -- edges: an empty batch, a batch of one, flags ---------------------------------------------------------------------


def _step(batch: int) -> StepInputs:
    params = simclr(16).sample((batch, 3, 24, 24), generator=torch.Generator().manual_seed(0))
    return StepInputs(features=(torch.rand(batch, 8), torch.rand(batch, 8)), params=params)


def test_an_empty_batch_is_refused_with_the_fix_not_a_nan_loss() -> None:
    with pytest.raises(ValueError, match=r"empty batch \(B = 0\).*skip empty batches"):
        AugSelf(8)(_step(0))


def test_a_batch_of_one_names_the_batch_norm_and_the_fixes() -> None:
    with pytest.raises(ValueError, match=r"at least 2 rows.*drop_last=True.*symmetric=True.*norm=.layer."):
        AugSelf(8, symmetric=False)(_step(1))
    assert torch.isfinite(AugSelf(8, symmetric=True)(_step(1)).loss)  # 2 rows: batch norm has what it needs
    assert torch.isfinite(AugSelf(8, symmetric=False, norm="layer")(_step(1)).loss)
    assert torch.isfinite(AugSelf(8, symmetric=False).eval()(_step(1)).loss)  # running statistics in eval mode


@pytest.mark.parametrize("flag", ["false", "no", 0, 1, None])
def test_symmetric_must_be_a_bool_not_a_truthy_string(flag: object) -> None:
    with pytest.raises(TypeError, match="`symmetric` must be True or False"):
        AugSelf(8, symmetric=flag)  # type: ignore[arg-type]


def test_the_colour_targets_are_normalised_by_the_ranges_that_made_the_views() -> None:
    """Views made with AugSelf's own jitter (0.4, 0.4, 0.4, 0.1): AugSelf without ``augmentations=`` (SimCLR's
    ranges, twice as wide) gets the same targets as with the views' own jitter, AugSelf's ``(f - 1) / (max - min)``
    of the ranges the factors were drawn from, not half of them."""
    own = ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0)
    p1, p2 = (own.sample((6, 3, 8, 8), generator=torch.Generator().manual_seed(s)) for s in (0, 1))
    by_hand = [
        torch.stack(
            [(p.factors[:, k] - (0.0 if k == 3 else 1.0)) / width for k, width in enumerate((0.8, 0.8, 0.8, 0.2))], 1
        )
        for p in (p1, p2)
    ]
    default = default_augmentations()["color_jitter"]
    assert default.ranges != own.ranges  # SimCLR's (0.8, 0.8, 0.8, 0.2) strength
    for jitter in (default, own):
        torch.testing.assert_close(jitter.target(p1), by_hand[0])
        torch.testing.assert_close(
            relative_target(jitter, {"color_jitter": p1}, {"color_jitter": p2}), by_hand[0] - by_hand[1]
        )
    hand_made = dataclasses.replace(p1, ranges=None)  # no ranges: the computing jitter's own
    torch.testing.assert_close(own.target(hand_made), by_hand[0])
    assert not torch.allclose(default.target(hand_made), by_hand[0])
