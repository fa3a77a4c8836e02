"""The training toolkit's objectives path: the library's view pipelines with their parameters, the E-SSL term and any
objective of :mod:`essl_aug.objectives` (named as :mod:`essl_aug.config` names them) added through one
:class:`~essl_aug.objectives.Objectives`, and the recipe matching its documented loop bit for bit."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from benchmarks.toolkit import nt_xent, projector
from benchmarks.toolkit.demo import FASHION_VIEW
from benchmarks.toolkit.models import SmallCNN
from benchmarks.toolkit.pretrain import (
    PretrainConfig,
    essl_objective,
    pretrain,
    pretrain_loop,
    seeded_streams,
    warmup_cosine,
)
from benchmarks.toolkit.views import view
from essl_aug import EquivarianceHead, EquivarianceLoss, EquivariantTransform
from essl_aug.objectives import ESSL, Objective, ObjectiveOutput, Objectives, StepInputs
from essl_aug.views import TwoViews

SMALL: dict[str, Any] = {"epochs": 2, "batch_size": 8, "width": 4}


def _fashion(**changes: Any) -> PretrainConfig:
    """A toy run of the Fashion-MNIST recipe (28 px gray views, the reference 14 px extra view)."""
    return dataclasses.replace(PretrainConfig(essl=None, view=FASHION_VIEW, **SMALL), **changes)


def _images(channels: int = 1, size: int = 28, n: int = 24, seed: int = 0) -> Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def _reference(images: Tensor, config: PretrainConfig) -> tuple[list[dict[str, float]], nn.Module]:
    """The digits recipe written out step by step as :func:`pretrain` documents it (SimCLR, optional E-SSL in mode
    "all" through the library's public face, EquivarianceLoss): the oracle the recipe must match bit for bit."""
    torch.manual_seed(config.seed)
    gen, order_gen, essl_gen = seeded_streams(config.seed)
    net = SmallCNN(images.shape[1], config.width)
    proj = projector(net.out_features)
    params = [*net.parameters(), *proj.parameters()]
    block, essl = config.block, None
    if block.active:
        transform = EquivariantTransform(block.transform, mode="all")
        head = EquivarianceHead(net.out_features, transform.num_classes, hidden=block.hidden)
        essl = EquivarianceLoss(transform, head=head, weight=block.weight)
        params += list(essl.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps = len(images) // config.batch_size
    total, warmup = steps * config.epochs, steps * config.warmup_epochs
    extra_view = config.extra_view(16)
    history, step = [], 0
    for _ in range(config.epochs):
        order = torch.randperm(len(images), generator=order_gen)
        sums: dict[str, Tensor] = {}
        for i in range(steps):
            for group in opt.param_groups:
                group["lr"] = warmup_cosine(step, total, warmup, config.lr)
            x = images[order[i * config.batch_size : (i + 1) * config.batch_size]]
            p1, p2 = config.view.sample(x.shape, x.device, gen), config.view.sample(x.shape, x.device, gen)
            v1, v2 = config.view.apply(x, p1), config.view.apply(x, p2)
            ssl = nt_xent(proj(net(v1)), proj(net(v2)), config.temperature)
            logs, loss = {"ssl": ssl.detach()}, ssl
            if essl is not None:
                out = essl(net, extra_view(x, essl_gen)[0])
                loss = loss + out.loss
                logs.update({"essl/loss": out.loss.detach(), "essl/ce": out.cross_entropy, "essl/acc": out.accuracy})
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


@pytest.mark.parametrize("essl", [None, {"transform": "rotation", "hidden_dim": [8]}])
def test_the_recipe_matches_its_documented_loop_bit_for_bit(essl: dict[str, Any] | None) -> None:
    images = _images(channels=3, size=16)
    config = PretrainConfig(essl=essl, view=view(16, flip=0.5, jitter=0.8), **SMALL)
    res = pretrain(images, config)
    history, net = _reference(images, config)
    assert res.history == history
    assert _same_parameters(res.backbone, net)
    assert all(torch.equal(p, q) for p, q in zip(res.backbone.buffers(), net.buffers(), strict=True))


def test_essl_by_name_in_the_objectives_is_the_blocks_essl_term() -> None:
    """The E-SSL term of the block and the same objective named in ``objectives`` (the library's registry) train
    alike, bit for bit."""
    images = _images()
    block = pretrain(images, _fashion(essl={"transform": "rotation", "lambda": 0.4}))
    named = {"rot": {"objective": "essl", "transform": "rotation", "weight": 0.4, "hidden": [256, 256]}}
    by_name = pretrain(images, _fashion(objectives=named))
    for key in ("ssl", "loss"):
        assert [r[key] for r in by_name.history] == [r[key] for r in block.history]
    for key in ("ce", "acc", "loss"):
        assert [r[f"rot/{key}"] for r in by_name.history] == [r[f"essl/{key}"] for r in block.history]
    assert _same_parameters(by_name.backbone, block.backbone)


def test_balanced_and_num_per_batch_reach_the_transform() -> None:
    images = _images(channels=3, size=16)
    base = PretrainConfig(essl={"transform": "jigsaw", "hidden_dim": [8]}, view=view(16), **SMALL)
    all_24 = pretrain(images, base).history
    eight = dataclasses.replace(base, num_per_batch=8)
    (term,) = essl_objective(eight, in_features=16).values()
    assert isinstance(term, ESSL) and isinstance(term.transform, EquivariantTransform)
    assert term.transform.num_per_batch == 8 and term.transform.mode == "all" and term.head.num_classes == 24
    assert pretrain(images, eight).history != all_24
    # every element: the same training as the block's own E-SSL term (the library's config layer), bit for bit
    assert pretrain(images, dataclasses.replace(base, num_per_batch=24)).history == all_24
    rnd = dataclasses.replace(base, essl={"transform": "rotation", "mode": "random", "hidden_dim": [8]})
    (term,) = essl_objective(dataclasses.replace(rnd, balanced=True), in_features=16).values()
    assert isinstance(term, ESSL) and isinstance(term.transform, EquivariantTransform) and term.transform.balanced
    balanced = pretrain(images, dataclasses.replace(rnd, balanced=True)).history
    assert balanced != pretrain(images, rnd).history and all(math.isfinite(v) for v in balanced[-1].values())


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
    pipe = FASHION_VIEW
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
        for index, (f, z) in enumerate(zip(inputs.features, inputs.embeddings, strict=True)):
            p = inputs.params[index]
            assert list(p) == ["resized_crop", "hflip", "color_jitter"] and p["hflip"].batch == 8
            # the features are the backbone's output of the view those params made from the batch
            assert torch.equal(f, pipe.apply(inputs.extra, p).flatten(1))
            torch.testing.assert_close(z, head(f), rtol=0, atol=0)
        assert not torch.equal(inputs.features[0], inputs.features[1])


def test_objectives_add_their_losses_and_log_per_epoch_means() -> None:
    images = _images()
    res = pretrain(images, _fashion(essl={"lambda": 0.4}, objectives={"augself": {"weight": 1.0}}))
    row = res.history[-1]
    assert {"ssl", "loss", "augself/loss", "augself/crop", "augself/color", "essl/ce", "essl/acc"} <= set(row)
    assert all(math.isfinite(v) for v in row.values())
    assert row["loss"] == pytest.approx(row["ssl"] + row["augself/loss"] + row["essl/loss"], rel=1e-5)
    assert row["essl/loss"] == pytest.approx(0.4 * row["essl/ce"], rel=1e-5)


def test_weight_zero_leaves_the_ssl_history_and_the_backbone_identical() -> None:
    images = _images()
    base = pretrain(images, _fashion())
    zero = {
        "augself": {"weight": 0.0},
        "predictor": {"weight": 0.0, "hidden": [16], "dim": 8},
        "rot": {"objective": "essl", "transform": "rotation", "weight": 0.0, "hidden": [8]},
    }
    off = pretrain(images, _fashion(objectives=zero))
    assert {"augself/loss", "predictor/loss", "rot/ce"} <= set(off.history[0])  # they ran
    assert [r["ssl"] for r in off.history] == [r["ssl"] for r in base.history]
    assert [r["loss"] for r in off.history] == [r["loss"] for r in base.history]
    assert _same_parameters(off.backbone, base.backbone)
    on = pretrain(images, _fashion(objectives={"augself": {"weight": 1.0}}))
    assert [r["ssl"] for r in on.history] != [r["ssl"] for r in base.history]  # a weight > 0 changes training
    assert not _same_parameters(on.backbone, base.backbone)


def test_configs_compare_by_value() -> None:
    a = _fashion(essl={"lambda": 0.4}, objectives={"augself": {"weight": 1.0, "groups": ["crop", "color"]}})
    b = _fashion(essl={"lambda": 0.4}, objectives={"augself": {"weight": 1.0, "groups": ["crop", "color"]}})
    assert a == b and a.block == b.block and a.view is b.view
    assert a != dataclasses.replace(a, objectives={"augself": {"weight": 0.5, "groups": ["crop", "color"]}})
    assert a != dataclasses.replace(a, essl={"lambda": 0.5})
    assert a.block.weight == 0.4 and a.block.hidden == (256, 256)  # the toolkit's default head under the block


def test_errors_name_the_setting_and_the_fix() -> None:
    with pytest.raises(ValueError, match=r"essl\.lambda"):
        _fashion(essl={"lambda": -1.0})
    with pytest.raises(ValueError, match=r"essl\.mode"):
        _fashion(essl={"mode": "every"})
    with pytest.raises(ValueError, match="unknown essl setting"):
        _fashion(essl={"family": "rotation"})
    with pytest.raises(ValueError, match=r"PretrainConfig\.view"):
        _fashion(essl={"views": "simclr"})
    with pytest.raises(ValueError, match=r"PretrainConfig\(objectives="):
        _fashion(essl={"objectives": {"rot": {"objective": "essl", "transform": "vflip"}}})
    with pytest.raises(ValueError, match="the block `essl` sets that one"):
        _fashion(objectives={"essl": {"weight": 1.0}})
    with pytest.raises(TypeError, match="ViewPipeline"):
        _fashion(view=lambda x, g: x)
    images = _images()
    with pytest.raises(ValueError, match=r"essl\.objectives\.augself2: unknown objective"):
        pretrain(images, _fashion(objectives={"augself2": {"weight": 1.0}}))
    with pytest.raises(ValueError, match=r"essl\.objectives\.augself: unknown option"):
        pretrain(images, _fashion(objectives={"augself": {"colour": 1}}))
    with pytest.raises(ValueError, match="weight"):
        pretrain(images, _fashion(objectives={"augself": {"weight": -1.0}}))


#: EquiMod on the Fashion-MNIST recipe (toy widths): its parameters standardised by the views' own statistics at 28 px.
EQUIMOD_FASHION = {"weight": 1.0, "statistics": "views", "image_size": 28, "hidden": [16], "dim": 8, "param_dim": 8}
#: SIE on the Fashion-MNIST recipe (toy widths): the last half of the features equivariant, crop and colour as ``z``.
SIE_FASHION = {"weight": 1.0, "groups": ["crop", "color"], "mlp": [16, 16]}


def test_equimod_runs_four_steps_of_the_fashion_recipe() -> None:
    res = pretrain(_images(n=16), _fashion(objectives={"equimod": EQUIMOD_FASHION}))
    assert len(res.history) == 2  # 2 epochs of 2 steps
    row = res.history[-1]
    assert {"ssl", "equimod/loss", "equimod/infonce", "equimod/eqgain"} <= set(row)
    assert all(math.isfinite(v) for v in row.values())
    assert row["loss"] == pytest.approx(row["ssl"] + row["equimod/loss"], rel=1e-5)
    assert row["equimod/infonce"] > 0.1  # 4B = 32 rows: chance is log(31) ~ 3.4


def test_sie_alone_runs_four_steps_of_the_fashion_recipe() -> None:
    """SIE as published is the whole loss: the loop's SSL loss is 0 here and SIE trains the backbone alone."""
    from essl_aug.config import build_objectives

    torch.manual_seed(0)
    net, proj = SmallCNN(1, 4), projector(16)
    views = TwoViews(FASHION_VIEW)
    sie = Objectives(build_objectives({"sie": SIE_FASHION}, {"in_features": net.out_features, "augmentations": views}))
    before = [p.detach().clone() for p in net.parameters()]
    history = pretrain_loop(
        net,
        proj,
        _images(n=16),
        views=views,
        ssl_loss=lambda z1, z2: (z1 * 0).sum(),  # no SSL loss beside SIE's
        optimizer=torch.optim.SGD([*net.parameters(), *sie.parameters()], lr=0.01),
        lr=lambda s: 0.01,
        epochs=2,
        batch_size=8,
        generator=torch.Generator().manual_seed(1),
        objectives=sie,
    )
    assert len(history) == 2 and {"sie/inv", "sie/equi", "sie/std", "sie/pred_std", "sie/cov"} <= set(history[-1])
    assert all(math.isfinite(v) for row in history for v in row.values())
    assert history[-1]["loss"] == pytest.approx(history[-1]["sie/loss"], rel=1e-6)
    assert not all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
