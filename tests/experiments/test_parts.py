"""The training toolkit's building blocks: data, the recipes' views, models, losses, schedule, pretraining loop,
probes, report writing."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("sklearn", reason="the demo data needs the demo extra")

from benchmarks.toolkit import (
    PretrainConfig,
    SmallCNN,
    info_nce_cross_view,
    invariance,
    linear_probe,
    load_digits_rgb,
    nt_xent,
    pretrain,
    pretrain_loop,
    projector,
    sgd_linear_probe,
    view,
    warmup_cosine,
)
from benchmarks.toolkit.demo import DATASETS, FASHION_VIEW
from benchmarks.toolkit.report import rounded, to_json, write_json
from benchmarks.toolkit.views import output_shape
from essl_aug import ColorJitter, Product, RandomGrayscale, RandomHorizontalFlip, RandomResizedCrop, RandomRotation90
from essl_aug.objectives import ESSL, Objectives
from essl_aug.views import TwoViews, ViewPipeline


def test_digits_split_is_fixed_stratified_and_explicitly_resized() -> None:
    d = load_digits_rgb()
    assert d.train_x.shape == (1078, 3, 16, 16) and d.test_x.shape == (719, 3, 16, 16)
    assert float(d.train_x.min()) >= 0.0 and float(d.train_x.max()) <= 1.0
    counts = torch.bincount(d.train_y, minlength=10).float() / torch.bincount(
        torch.cat([d.train_y, d.test_y]), minlength=10
    )
    assert torch.allclose(counts, torch.full((10,), 0.6), atol=0.01)
    again = load_digits_rgb()
    assert torch.equal(d.train_x, again.train_x) and torch.equal(d.test_y, again.test_y)
    # no image of the test split appears in the training split
    flat_tr, flat_te = d.train_x.flatten(1), d.test_x.flatten(1)
    assert torch.cdist(flat_te, flat_tr).min() > 0
    gray = load_digits_rgb(size=8, colour=False)
    from sklearn.datasets import load_digits

    raw = torch.as_tensor(load_digits().images, dtype=torch.float32) / 16
    assert gray.train_x.shape[1:] == (1, 8, 8)
    assert any(torch.equal(gray.train_x[0, 0], img) for img in raw)
    with pytest.raises(ValueError, match="size"):
        load_digits_rgb(size=4)


def test_the_recipes_views_are_the_librarys_pipelines() -> None:
    digits = DATASETS["digits"].view
    assert isinstance(digits, ViewPipeline) and digits.names == ("resized_crop", "color_jitter", "grayscale")
    crop, jitter, gray = digits.augmentations
    assert isinstance(crop, RandomResizedCrop) and crop.size == (16, 16) and crop.scale == (0.2, 1.0)
    assert isinstance(jitter, ColorJitter) and jitter.p == 0.8 and jitter.saturation == (0.6, 1.4)
    assert jitter.hue == (-0.1, 0.1) and isinstance(gray, RandomGrayscale) and gray.p == 0.2
    assert digits.normalize is None  # float views in [0, 1]
    flip = FASHION_VIEW["hflip"]
    assert FASHION_VIEW.names == ("resized_crop", "hflip", "color_jitter")
    assert isinstance(flip, RandomHorizontalFlip) and flip.p == 0.5
    fashion_jitter = FASHION_VIEW["color_jitter"]
    assert isinstance(fashion_jitter, ColorJitter)
    assert fashion_jitter.brightness == fashion_jitter.contrast == (0.6, 1.4)
    assert fashion_jitter.saturation == (1.0, 1.0) and fashion_jitter.hue == (0.0, 0.0)  # 1 channel: B and C only
    x = torch.rand(5, 3, 24, 24)
    before = x.clone()
    (v1, v2), (p1, p2) = TwoViews(digits)(x, torch.Generator().manual_seed(0))
    assert v1.shape == v2.shape == (5, 3, 16, 16) == output_shape(digits, x.shape) and torch.equal(x, before)
    assert float(v1.min()) >= 0 and float(v1.max()) <= 1 and list(p1) == list(p2) == list(digits.names)


def test_a_family_as_invariance_keeps_the_identity_with_probability_one_minus_p() -> None:
    rot = invariance("rotation", 0.5)
    assert isinstance(rot, RandomRotation90) and rot.p == 0.5
    gen = torch.Generator().manual_seed(0)
    labels = rot.sample((4000, 3, 8, 8), "cpu", gen).labels
    assert abs((labels == 0).float().mean().item() - 0.5) < 0.05
    counts = torch.bincount(labels, minlength=4)[1:].float() / 4000
    assert torch.allclose(counts, torch.full((3,), 0.5 / 3), atol=0.03)  # the non-identity elements, uniformly
    assert (invariance("rotation", 0.0).sample((100, 3, 8, 8), "cpu", gen).labels == 0).all()
    x = torch.rand(32, 3, 8, 8)
    y, params = invariance("rotation", 1.0)(x, torch.Generator().manual_seed(1))
    assert (params.labels > 0).all()
    assert all(torch.equal(y[i], torch.rot90(x[i], int(k), (-2, -1))) for i, k in enumerate(params.labels))
    product = invariance(["rotation", "vflip"], 0.25)
    assert isinstance(product, Product) and product.p == 0.25 and product.num_classes == 8
    assert invariance(["jigsaw"], 0.5).p == 0.5 and invariance({"name": "blur"}, 0.5).p == 0.5


def test_a_recipes_view_is_built_once_per_setting() -> None:
    assert view(16, jitter=0.8, gray=0.2) is DATASETS["digits"].view
    assert view(16, jitter=0.8) is not DATASETS["digits"].view
    assert view(8, channels=1).names == ("resized_crop",) and view(8, gray=0.5, channels=1).names == ("resized_crop",)


def _naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n2 = len(z)
    total = torch.zeros(())
    for i in range(n2):
        j = (i + n2 // 2) % n2
        others = [k for k in range(n2) if k != i]
        logits = torch.stack([z[i] @ z[k] / t for k in others])
        total = total - (z[i] @ z[j] / t - torch.logsumexp(logits, 0))
    return total / n2


def _naive_cross_view(z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    loss = torch.zeros(())
    for i in range(len(a)):
        loss = loss - (a[i] @ b[i] / t - torch.logsumexp(a[i] @ b.T / t, 0)) / 2
        loss = loss - (b[i] @ a[i] / t - torch.logsumexp(b[i] @ a.T / t, 0)) / 2
    return loss / len(a)


def test_contrastive_losses_match_per_anchor_definitions() -> None:
    z1, z2 = torch.randn(6, 5), torch.randn(6, 5)
    assert torch.allclose(nt_xent(z1, z2, 0.5), _naive_nt_xent(z1, z2, 0.5), atol=1e-5)
    assert torch.allclose(info_nce_cross_view(z1, z2, 0.2), _naive_cross_view(z1, z2, 0.2), atol=1e-5)
    with pytest.raises(ValueError, match="z1"):
        nt_xent(z1, z2[:3])


def _toy_config(essl: dict | None = None, **kw) -> PretrainConfig:
    block = None if essl is None else {"hidden_dim": [8], **essl}
    return PretrainConfig(essl=block, epochs=2, batch_size=16, width=4, view=view(16), **kw)


def test_pretrain_is_reproducible_and_trains_the_essl_head() -> None:
    images = torch.rand(32, 3, 16, 16)
    before = images.clone()
    a = pretrain(images, _toy_config({"transform": ["rotation", "vflip"]}, seed=3))
    b = pretrain(images, _toy_config({"transform": ["rotation", "vflip"]}, seed=3))
    assert a.history == b.history and len(a.history) == 2
    assert {"essl/ce", "essl/acc", "essl/loss", "ssl", "loss"} == set(a.history[0])
    assert a.history[0]["loss"] == pytest.approx(a.history[0]["ssl"] + 0.4 * a.history[0]["essl/ce"], rel=1e-5)
    for p, q in zip(a.backbone.parameters(), b.backbone.parameters(), strict=True):
        assert torch.equal(p, q)
    assert torch.equal(images, before)
    plain = pretrain(images, _toy_config(None, invariance="jigsaw"))
    assert set(plain.history[0]) == {"ssl", "loss"}
    off = pretrain(images, _toy_config({"lambda": 0.0}))  # lambda 0: no E-SSL term at all, as without the block
    assert off.history == pretrain(images, _toy_config(None)).history
    with pytest.raises(ValueError, match="batch_size"):
        pretrain(images[:8], _toy_config())


def test_the_extra_view_is_the_librarys_reference_at_half_the_views_size() -> None:
    cfg = _toy_config({"transform": "rotation"})
    extra = cfg.extra_view(16)
    assert extra.names == ("resized_crop", "hflip", "color_jitter", "grayscale") and extra.normalize is None
    crop = extra["resized_crop"]
    assert isinstance(crop, RandomResizedCrop) and crop.size == (8, 8) and crop.scale == (0.2, 1.0)
    assert _toy_config({"crop_size": 6, "crop_scale": [0.5, 1.0]}).extra_view(16)["resized_crop"].scale == (0.5, 1.0)
    plain = PretrainConfig(extra_photometric=False).extra_view(28)
    assert plain.names == ("resized_crop", "hflip") and output_shape(plain, (2, 1, 28, 28)) == (2, 1, 14, 14)


def test_linear_probe_separates_separable_features_and_not_noise() -> None:
    torch.manual_seed(0)
    y = torch.arange(200) % 4
    x = torch.randn(200, 1, 2, 2) + 4 * F.one_hot(y, 4).float().view(200, 1, 2, 2)
    net = nn.Flatten()
    assert linear_probe(net, x[:100], y[:100], x[100:], y[100:]) > 0.95
    noise = torch.randn(200, 1, 2, 2)
    assert linear_probe(net, noise[:100], y[:100], noise[100:], y[100:]) < 0.5


def test_warmup_cosine_schedules_of_the_three_recipes() -> None:
    # digits: reaches the peak on the last warm-up step; CIFAR-10: starts from 0; photonics: plain cosine
    assert [warmup_cosine(s, 100, 4, 2.0) for s in range(4)] == [0.5, 1.0, 1.5, 2.0]
    assert [warmup_cosine(s, 100, 4, 2.0, warmup_start=0) for s in range(4)] == [0.0, 0.5, 1.0, 1.5]
    assert warmup_cosine(0, 10, 0, 1.0) == 1.0 and warmup_cosine(5, 10, 0, 1.0) == pytest.approx(0.5)
    assert warmup_cosine(54, 104, 4, 2.0) == pytest.approx(1.0)  # half-way through the decay
    assert warmup_cosine(103, 104, 4, 2.0) == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * 99 / 100)))


def test_projector_shapes_of_the_three_recipes() -> None:
    digits = projector(32)
    assert [type(m).__name__ for m in digits] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert digits[0].bias is None and digits[3].bias is not None and digits[3].out_features == 64
    cifar = projector(512, 2048, 2048, out_norm=True)
    assert cifar[3].bias is None and isinstance(cifar[4], nn.BatchNorm1d) and not cifar[4].affine
    photonics = projector(1024, 512, 256, depth=3, hidden_bias=True)
    linears = [m for m in photonics if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(1024, 512), (512, 512), (512, 256)]
    assert all(m.bias is not None for m in linears)
    with pytest.raises(ValueError, match="depth"):
        projector(8, depth=0)


def test_pretrain_loop_runs_steps_in_order_and_reports_means() -> None:
    torch.manual_seed(0)
    net, proj = SmallCNN(3, width=4), projector(16, 16, 8)
    essl = Objectives({"essl": ESSL("rotation", in_features=16, hidden=(8,), weight=0.5)})
    opt = torch.optim.SGD([*net.parameters(), *proj.parameters(), *essl.parameters()], lr=0.1)
    extras: list[tuple[int, ...]] = []
    data = torch.rand(20, 3, 8, 8)
    lrs: list[float] = []
    steps: list[dict[str, float]] = []
    epochs: list[int] = []

    def record(logs: Mapping[str, torch.Tensor]) -> None:
        lrs.append(opt.param_groups[0]["lr"])
        steps.append({k: float(v) for k, v in logs.items()})

    history = pretrain_loop(
        net, proj, data, views=lambda x, g: (x, x.flip(-1)), ssl_loss=nt_xent, optimizer=opt,
        lr=lambda step: 0.1 / (step + 1), epochs=2, batch_size=8, generator=torch.Generator().manual_seed(0),
        objectives=essl, extra=lambda x, g: extras.append(tuple(x.shape)) or x[:, :, :4, :4], on_step=record,
        on_epoch=lambda e, row: epochs.append(e),
    )  # fmt: skip
    assert lrs == [0.1 / (s + 1) for s in range(4)]  # 20 // 8 = 2 steps per epoch, the last batch dropped
    assert epochs == [0, 1] and len(history) == 2 and extras == [(8, 3, 8, 8)] * 4  # one extra view per step
    for epoch, row in enumerate(history):
        mine = steps[2 * epoch : 2 * epoch + 2]
        for key in ("ssl", "loss", "essl/ce", "essl/acc", "essl/loss"):
            assert row[key] == pytest.approx((mine[0][key] + mine[1][key]) / 2, rel=1e-6)
        assert row["loss"] == pytest.approx(row["ssl"] + 0.5 * row["essl/ce"], rel=1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        pretrain_loop(
            net, proj, data, views=lambda x, g: (x, x), ssl_loss=nt_xent, optimizer=opt, lr=lambda s: 0.1,
            epochs=1, batch_size=64, generator=torch.Generator(),
        )  # fmt: skip


def _sgd_probe(backbone: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return sgd_linear_probe(
        backbone, x[:200], y[:200], x[200:], y[200:], in_features=x.shape[1], num_classes=4,
        train_view=lambda t, g: t, test_view=lambda t: t, epochs=10, lr=0.1, batch_size=32,
    )  # fmt: skip


def test_sgd_linear_probe_learns_a_separable_toy_and_not_noise() -> None:
    torch.manual_seed(0)
    y = torch.arange(400) % 4
    x = torch.randn(400, 8) + 4 * F.one_hot(y, 8).float()
    assert _sgd_probe(nn.Identity(), x, y) > 0.9
    assert _sgd_probe(nn.Identity(), torch.randn(400, 8), y) < 0.5
    net = nn.Linear(8, 8).train()
    assert _sgd_probe(net, x, y) > 0.9  # a random linear backbone keeps the classes linearly separable
    assert net.training  # and gets its mode back


def test_json_reports_are_compact_and_lossless(tmp_path: Path) -> None:
    curve = [0.1 * i + 1e-9 for i in range(300)]
    payload = {
        "settings": {"seeds": [0, 1, 2], "weight": 0.4, "name": "rotation"},
        "runs": [{"accuracy": 1 / 3, "curve": curve}, {"accuracy": 0.9, "curve": curve[:5]}],
        "table": {f"method {i}": {"mean": i / 7, "std": i / 11} for i in range(4)},
    }
    text = to_json(payload)
    assert json.loads(text) == payload  # floats round-trip exactly
    lines = text.splitlines()
    assert len(lines) < 20 and sum('"curve": [' in line and line.endswith("]") for line in lines) == 1
    assert all(len(line) <= 120 for line in lines if '"curve"' not in line)
    path = write_json(tmp_path / "r" / "x.json", payload)
    assert json.loads(path.read_text()) == payload
    assert rounded({"a": [1 / 3, (2 / 3, 5)], "b": "s"}, 3) == {"a": [0.333, [0.667, 5]], "b": "s"}
