"""The experiment building blocks: data, augmentations, losses, pretraining loop and probe."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("sklearn", reason="the demo data needs the demo extra")

from essl_aug import Rotation
from essl_aug.experiments import (
    PretrainConfig,
    ViewAugment,
    info_nce_cross_view,
    invariance_augment,
    linear_probe,
    load_digits_rgb,
    nt_xent,
    pretrain,
    random_resized_crop,
)
from essl_aug.experiments.augment import colour_jitter, invariance_labels, random_grayscale


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


def test_full_crop_is_the_identity_and_crops_have_the_requested_size() -> None:
    x = torch.rand(5, 3, 12, 12)
    before = x.clone()
    same = random_resized_crop(x, 12, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(same, x, atol=1e-5)
    assert torch.equal(x, before)
    half = random_resized_crop(x, 6, scale=(0.25, 0.25), ratio=(1.0, 1.0), generator=torch.Generator().manual_seed(0))
    assert half.shape == (5, 3, 6, 6)


def test_photometric_augmentations_keep_range_and_respect_probability() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8)
    assert torch.equal(colour_jitter(x, p=0.0, generator=gen), x)
    y = colour_jitter(x, p=1.0, generator=gen)
    assert y.min() >= 0 and y.max() <= 1 and not torch.equal(y, x)
    g = random_grayscale(x, p=1.0, generator=gen)
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])
    assert ViewAugment(size=8, jitter=0.8, grayscale=0.2)(x, gen).shape == (64, 3, 8, 8)


def test_invariance_labels_keep_identity_with_probability_one_minus_p() -> None:
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(invariance_labels(100, 4, 0.0, gen, "cpu"), torch.zeros(100, dtype=torch.long))
    moved = invariance_labels(4000, 4, 0.5, gen, "cpu")
    assert abs((moved == 0).float().mean().item() - 0.5) < 0.05
    assert set(torch.bincount(moved, minlength=4)[1:].tolist()) != {0}
    assert (invariance_labels(100, 4, 1.0, gen, "cpu") > 0).all()
    x = torch.rand(32, 3, 8, 8)
    y = invariance_augment(x, Rotation(), p=1.0, generator=torch.Generator().manual_seed(1))
    rots = torch.stack([torch.rot90(x, k, (-2, -1)) for k in range(1, 4)])  # (3, B, ...)
    assert all(any(torch.equal(y[i], rots[k, i]) for k in range(3)) for i in range(32))


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


def _toy_config(**kw) -> PretrainConfig:
    small = ViewAugment(size=8, jitter=0.8, grayscale=0.2)
    return PretrainConfig(
        epochs=2, batch_size=16, width=4, head_hidden=(8,), view=ViewAugment(size=16), essl_view=small, **kw
    )


def test_pretrain_is_reproducible_and_trains_the_essl_head() -> None:
    images = torch.rand(32, 3, 16, 16)
    before = images.clone()
    a = pretrain(images, _toy_config(essl=["rotation", "vflip"], seed=3))
    b = pretrain(images, _toy_config(essl=["rotation", "vflip"], seed=3))
    assert a.history == b.history and len(a.history) == 2
    assert {"essl_ce", "essl_acc", "ssl", "loss"} <= set(a.history[0])
    assert a.history[0]["loss"] == pytest.approx(a.history[0]["ssl"] + 0.4 * a.history[0]["essl_ce"], rel=1e-5)
    for p, q in zip(a.backbone.parameters(), b.backbone.parameters(), strict=True):
        assert torch.equal(p, q)
    assert torch.equal(images, before)
    plain = pretrain(images, _toy_config(essl=None, invariance="jigsaw"))
    assert set(plain.history[0]) == {"ssl", "loss"}
    with pytest.raises(ValueError, match="batch_size"):
        pretrain(images[:8], _toy_config())


def test_linear_probe_separates_separable_features_and_not_noise() -> None:
    torch.manual_seed(0)
    y = torch.arange(200) % 4
    x = torch.randn(200, 1, 2, 2) + 4 * F.one_hot(y, 4).float().view(200, 1, 2, 2)
    net = nn.Flatten()
    assert linear_probe(net, x[:100], y[:100], x[100:], y[100:]) > 0.95
    noise = torch.randn(200, 1, 2, 2)
    assert linear_probe(net, noise[:100], y[:100], noise[100:], y[100:]) < 0.5
