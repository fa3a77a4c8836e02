"""The training toolkit's objectives path: pipeline views with their parameters, any objectives of
:mod:`essl_aug.objectives` added to the SSL loss, and the recipes without objectives unchanged bit for bit."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from essl_aug.augment import TwoViews
from essl_aug.experiments import ViewAugment, nt_xent, projector
from essl_aug.experiments.demo import FASHION_VIEW
from essl_aug.experiments.models import SmallCNN
from essl_aug.experiments.objectives import build_objectives, objective, view_pipeline
from essl_aug.experiments.pretrain import PretrainConfig, pretrain, pretrain_loop, seeded_streams, warmup_cosine
from essl_aug.objectives import Objective, ObjectiveOutput, Objectives, StepInputs

SMALL: dict[str, Any] = {"epochs": 2, "batch_size": 8, "width": 4, "head_hidden": (8,)}


def _fashion(**changes: Any) -> PretrainConfig:
    """A toy run of the Fashion-MNIST recipe (28 px gray views, a 14 px extra view)."""
    base = PretrainConfig(
        essl=None, view=FASHION_VIEW, essl_view=dataclasses.replace(FASHION_VIEW, size=14, hflip=0.0), **SMALL
    )
    return dataclasses.replace(base, **changes)


def _images(channels: int = 1, size: int = 28, n: int = 24, seed: int = 0) -> Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def _reference(images: Tensor, config: PretrainConfig) -> tuple[list[dict[str, float]], nn.Module]:
    """The digits recipe written out step by step as :func:`pretrain` documents it (SimCLR, optional E-SSL with
    ``essl_mode="all"``): the oracle that the recipes without objectives must match bit for bit."""
    torch.manual_seed(config.seed)
    gen, order_gen, essl_gen = seeded_streams(config.seed)
    net = SmallCNN(images.shape[1], config.width)
    proj = projector(net.out_features)
    params = [*net.parameters(), *proj.parameters()]
    essl = None
    if config.essl is not None:
        from essl_aug import EquivarianceHead, EquivarianceLoss, EquivariantTransform

        transform = EquivariantTransform(config.essl, mode="all", generator=essl_gen)
        head = EquivarianceHead(net.out_features, transform.num_classes, hidden=config.head_hidden)
        essl = EquivarianceLoss(transform, head=head, weight=config.weight)
        params += list(essl.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps = len(images) // config.batch_size
    total, warmup = steps * config.epochs, steps * config.warmup_epochs
    history, step = [], 0
    for _ in range(config.epochs):
        order = torch.randperm(len(images), generator=order_gen)
        sums: dict[str, Tensor] = {}
        for i in range(steps):
            for group in opt.param_groups:
                group["lr"] = warmup_cosine(step, total, warmup, config.lr)
            x = images[order[i * config.batch_size : (i + 1) * config.batch_size]]
            v1, v2 = config.view(x, gen), config.view(x, gen)
            ssl = nt_xent(proj(net(v1)), proj(net(v2)), config.temperature)
            logs, loss = {"ssl": ssl.detach()}, ssl
            if essl is not None:
                out = essl(net, config.essl_view(x, essl_gen))
                loss = loss + out.loss
                logs.update(essl_ce=out.cross_entropy, essl_acc=out.accuracy)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            logs["loss"] = loss.detach()
            for k, v in logs.items():
                sums[k] = sums[k] + v if k in sums else v
            step += 1
        history.append({k: float(v) / steps for k, v in sums.items()})
    return history, net


def _same_parameters(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("essl", [None, "rotation"])
def test_recipes_without_objectives_match_the_documented_loop_bit_for_bit(essl: str | None) -> None:
    images = _images(channels=3, size=16)
    config = PretrainConfig(essl=essl, view=ViewAugment(size=16, hflip=0.5, jitter=0.8), **SMALL)
    res = pretrain(images, config)
    history, net = _reference(images, config)
    assert res.history == history
    assert _same_parameters(res.backbone, net)
    assert all(torch.equal(p, q) for p, q in zip(res.backbone.buffers(), net.buffers(), strict=True))


def test_discrete_essl_as_an_objective_is_the_essl_recipe() -> None:
    images = _images()
    old = pretrain(images, _fashion(essl="rotation", weight=0.4))
    new = pretrain(images, _fashion(objectives=(objective("essl", 0.4),)))
    assert [r["ssl"] for r in new.history] == [r["ssl"] for r in old.history]
    assert [r["loss"] for r in new.history] == [r["loss"] for r in old.history]
    assert [r["essl/ce"] for r in new.history] == [r["essl_ce"] for r in old.history]
    assert [r["essl/acc"] for r in new.history] == [r["essl_acc"] for r in old.history]
    assert _same_parameters(new.backbone, old.backbone)


class _Spy(Objective):
    """Records what a step hands over; a loss of 0 * (sum of the features)."""

    requires = frozenset({"backbone", "extra", "features", "embeddings", "params"})

    def __init__(self) -> None:
        super().__init__(1.0)
        self.seen: list[StepInputs] = []

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        self.seen.append(inputs)
        assert inputs.features is not None
        return ObjectiveOutput(0.0 * inputs.features[0].sum(), {"calls": torch.ones(())})


def test_the_views_parameters_reach_the_objectives_with_the_features_and_embeddings() -> None:
    pipe = view_pipeline(FASHION_VIEW, channels=1)
    head = nn.Linear(28 * 28, 6)
    spy = _Spy()
    data = _images(n=16)
    g_views, g_essl = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    history = pretrain_loop(
        nn.Flatten(),
        head,
        data,
        views=TwoViews(pipe),
        ssl_loss=nt_xent,
        optimizer=torch.optim.SGD(head.parameters(), lr=0.0),
        lr=lambda s: 0.0,  # the head stays as it is: its output can be checked after the run
        epochs=2,
        batch_size=8,
        generator=g_views,
        essl_generator=g_essl,
        objectives=Objectives({"spy": spy}),
    )
    assert len(spy.seen) == 4 and [r["spy/calls"] for r in history] == [1.0, 1.0]
    for inputs in spy.seen:
        assert inputs.extra is not None and inputs.features is not None and inputs.params is not None
        assert inputs.embeddings is not None and inputs.generator is g_essl
        for view, (f, z) in enumerate(zip(inputs.features, inputs.embeddings, strict=True)):
            p = inputs.params[view]
            assert list(p) == ["resized_crop", "hflip", "color_jitter"] and p["hflip"].batch == 8
            # the features are the backbone's output of the view those params made from the batch
            assert torch.equal(f, pipe.apply(inputs.extra, p).flatten(1))
            torch.testing.assert_close(z, head(f), rtol=0, atol=0)
        assert not torch.equal(inputs.features[0], inputs.features[1])


def test_objectives_add_their_losses_and_log_per_epoch_means() -> None:
    images = _images()
    res = pretrain(images, _fashion(pipeline=True, objectives=(objective("augself", 1.0), objective("essl", 0.4))))
    row = res.history[-1]
    assert {"ssl", "loss", "augself/loss", "augself/crop", "augself/color", "essl/ce", "essl/acc"} <= set(row)
    assert all(math.isfinite(v) for v in row.values())
    assert row["loss"] == pytest.approx(row["ssl"] + row["augself/loss"] + row["essl/loss"], rel=1e-5)
    assert row["essl/loss"] == pytest.approx(0.4 * row["essl/ce"], rel=1e-5)


def test_weight_zero_leaves_the_ssl_history_and_the_backbone_identical() -> None:
    images = _images()
    base = pretrain(images, _fashion(pipeline=True))
    zero = (objective("augself", 0.0), objective("predictor", 0.0, hidden=(16,), dim=8), objective("essl", 0.0))
    off = pretrain(images, _fashion(pipeline=True, objectives=zero))
    assert [r["ssl"] for r in off.history] == [r["ssl"] for r in base.history]
    assert [r["loss"] for r in off.history] == [r["loss"] for r in base.history]
    assert _same_parameters(off.backbone, base.backbone)
    on = pretrain(images, _fashion(pipeline=True, objectives=(objective("augself", 1.0),)))
    assert [r["ssl"] for r in on.history] != [r["ssl"] for r in base.history]  # a weight > 0 changes training
    assert not _same_parameters(on.backbone, base.backbone)


def test_pipeline_views_of_the_fashion_recipe() -> None:
    pipe = view_pipeline(FASHION_VIEW, channels=1)
    crop, flip, jitter = pipe.augmentations
    assert crop.size == (28, 28) and crop.scale == (0.2, 1.0)  # type: ignore[attr-defined]
    assert flip.p == 0.5 and jitter.p == 0.8
    assert jitter.brightness == jitter.contrast == (0.6, 1.4)  # type: ignore[attr-defined]
    assert jitter.saturation == (1.0, 1.0) and jitter.hue == (0.0, 0.0)  # type: ignore[attr-defined]
    rgb = view_pipeline(ViewAugment(size=16, jitter=0.8, grayscale=0.2), channels=3)
    assert rgb.names == ("resized_crop", "color_jitter", "grayscale")
    assert rgb["color_jitter"].saturation == (0.6, 1.4)  # type: ignore[attr-defined]


def test_configs_with_objectives_compare_and_hash_by_value() -> None:
    a = _fashion(pipeline=True, objectives=(objective("augself", 1.0, groups=["crop", "color"]),))
    b = _fashion(pipeline=True, objectives=(objective("augself", 1.0, groups=("crop", "color")),))
    assert a == b and hash(a) == hash(b)
    assert a != dataclasses.replace(a, objectives=(objective("augself", 0.5, groups=("crop", "color")),))
    spec = objective("augself", 1.0, group_weights={"crop": 0.5})
    assert hash(spec) and spec.kwargs() == {"group_weights": {"crop": 0.5}}


def test_errors_name_the_argument_and_the_fix() -> None:
    with pytest.raises(ValueError, match="pipeline=True"):
        _fashion(objectives=(objective("augself", 1.0),))
    with pytest.raises(ValueError, match="distinct names"):
        _fashion(objectives=(objective("essl", 0.4), objective("essl", 1.0)))
    with pytest.raises(ValueError, match="kind must be one of"):
        objective("augself2", 1.0)
    with pytest.raises(ValueError, match="finite number >= 0"):
        objective("essl", -1.0)
    with pytest.raises(TypeError, match="tuple"):
        _fashion(objectives=[objective("essl", 0.4)])
    with pytest.raises(TypeError, match=r"'essl' \(essl\).*check its options"):
        build_objectives([objective("essl", 0.4, colour=1)], in_features=8, embed_dim=4, hidden=(8,))
    with pytest.raises(ValueError, match="pipeline"):
        build_objectives([objective("predictor", 1.0)], in_features=8, embed_dim=4, hidden=(8,))
