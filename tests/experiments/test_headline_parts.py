"""The parts of the Fashion-MNIST headline: VICReg's loss, the k-NN and feature-level linear probes, the paired
confidence interval, the separate random streams that make runs paired, and the SSL method / E-SSL mode options."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest
import torch
from torch import Tensor, nn

pytest.importorskip("sklearn", reason="the toolkit's tests need the demo extra")

from benchmarks.toolkit import PretrainConfig, linear_probe, pretrain, view
from benchmarks.toolkit.probe import extract_features, knn_accuracy, linear_accuracy
from benchmarks.toolkit.report import T_975, confidence_interval, t_quantile_975
from benchmarks.toolkit.study import paired_difference
from benchmarks.toolkit.vicreg import vicreg_loss
from essl_aug.transforms import Params
from essl_aug.views import ViewPipeline


def _official_vicreg(x: Tensor, y: Tensor) -> Tensor:
    """facebookresearch/vicreg main_vicreg.py, written out with an explicit off-diagonal mask."""
    n, d = x.shape
    repr_loss = ((x - y) ** 2).mean()
    x, y = x - x.mean(0), y - y.mean(0)
    std_x, std_y = torch.sqrt(x.var(0) + 1e-4), torch.sqrt(y.var(0) + 1e-4)
    std_loss = torch.relu(1 - std_x).mean() / 2 + torch.relu(1 - std_y).mean() / 2
    off = ~torch.eye(d, dtype=torch.bool)
    cov_x, cov_y = (x.T @ x) / (n - 1), (y.T @ y) / (n - 1)
    cov_loss = cov_x[off].pow(2).sum() / d + cov_y[off].pow(2).sum() / d
    return 25 * repr_loss + 25 * std_loss + cov_loss


def test_vicreg_matches_the_official_loss_and_penalises_collapse() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 16, generator=g), torch.randn(32, 16, generator=g)
    torch.testing.assert_close(vicreg_loss(x, y), _official_vicreg(x, y))
    torch.testing.assert_close(vicreg_loss(0.1 * x, 0.3 * y), _official_vicreg(0.1 * x, 0.3 * y))
    collapsed = torch.ones(32, 16)
    assert float(vicreg_loss(collapsed, collapsed)) == pytest.approx(25 * (1 - 1e-2), rel=1e-4)
    with pytest.raises(ValueError, match="N >= 2"):
        vicreg_loss(x[:1], y[:1])


def test_knn_with_one_neighbour_is_the_cosine_nearest_neighbour() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    g = torch.Generator().manual_seed(1)
    f_train, f_test = torch.randn(200, 8, generator=g), torch.randn(100, 8, generator=g)
    y_train, y_test = torch.randint(5, (200,), generator=g), torch.randint(5, (100,), generator=g)
    ref = KNeighborsClassifier(n_neighbors=1, metric="cosine").fit(f_train.numpy(), y_train.numpy())
    expected = float((torch.from_numpy(ref.predict(f_test.numpy())) == y_test).float().mean())
    assert knn_accuracy(f_train, y_train, f_test, y_test, k=1) == pytest.approx(expected)


def test_knn_votes_are_weighted_by_similarity() -> None:
    # One very close neighbour of class 1 outvotes two distant ones of class 0 at a low temperature, not at a high one.
    f_train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    y_train = torch.tensor([1, 0, 0])
    query, label = torch.tensor([[1.0, 0.2]]), torch.tensor([1])
    assert knn_accuracy(f_train, y_train, query, label, k=3, temperature=0.05) == 1.0
    assert knn_accuracy(f_train, y_train, query, label, k=3, temperature=100.0) == 0.0
    with pytest.raises(ValueError, match="`k`"):
        knn_accuracy(f_train, y_train, query, label, k=4)


def test_linear_accuracy_is_the_linear_probe_on_extracted_features() -> None:
    g = torch.Generator().manual_seed(2)
    y = torch.arange(120) % 3
    x = torch.randn(120, 1, 2, 2, generator=g)
    x[:, 0, 0, 0] += 2 * y
    net = nn.Flatten()
    f = extract_features(net, x)
    for wd in (1e-4, 1e-2):
        assert linear_accuracy(f[:60], y[:60], f[60:], y[60:], wd) == linear_probe(
            net, x[:60], y[:60], x[60:], y[60:], wd
        )


def test_paired_confidence_interval_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (*range(1, 40), 60, 120, 1000):
        assert t_quantile_975(df) == pytest.approx(float(stats.t.ppf(0.975, df)), abs=2e-4)
    assert len(T_975) == 30
    diffs = [0.011, -0.004, 0.02, 0.007, 0.013]
    lo, hi = confidence_interval(diffs)
    ref = stats.t.interval(0.95, len(diffs) - 1, loc=sum(diffs) / 5, scale=stats.sem(diffs))
    assert (lo, hi) == pytest.approx(ref, abs=1e-5)
    d = paired_difference([0.5] * 5, [0.5 + v for v in diffs])
    assert d["ci95"] == pytest.approx([lo, hi], abs=1e-9) and d["wins"] == 4
    assert "ci95" not in paired_difference([0.5], [0.6])
    with pytest.raises(ValueError, match="two values"):
        confidence_interval([0.1])


class _Recorder(ViewPipeline):
    """The SSL views' pipeline, recording every view it makes."""

    def __init__(self) -> None:
        super().__init__(view(8, jitter=0.8).augmentations)
        self.made: list[Tensor] = []

    def apply(self, x: Tensor, params: Mapping[str, Params]) -> Tensor:
        v = super().apply(x, params)
        self.made.append(v.clone())
        return v


def _run(images: Tensor, **changes: object) -> tuple[list[Tensor], nn.Module]:
    rec = _Recorder()
    cfg = PretrainConfig(essl=None, epochs=2, batch_size=8, width=4, view=rec, seed=5)
    res = pretrain(images, dataclasses.replace(cfg, **changes))
    return rec.made, res.backbone


def test_runs_that_differ_in_the_essl_branch_see_the_same_views_in_the_same_order() -> None:
    images = torch.rand(24, 3, 8, 8)
    plain, net_plain = _run(images)
    block = {"transform": "vflip", "mode": "random", "hidden_dim": [8]}
    for changes in ({"essl": {"hidden_dim": [8]}}, {"essl": block}, {"method": "vicreg"}):
        views, _ = _run(images, **changes)
        assert len(views) == len(plain) == 2 * 2 * 3
        assert all(torch.equal(a, b) for a, b in zip(views, plain, strict=True)), changes
    # ... and the backbones did train differently (the branch or the loss changed the gradients).
    _, net_essl = _run(images, essl={"hidden_dim": [8]})
    assert not all(torch.equal(p, q) for p, q in zip(net_plain.parameters(), net_essl.parameters(), strict=True))


def test_method_and_essl_mode_options() -> None:
    images = torch.rand(16, 3, 8, 8)
    block = {"transform": "rotation", "hidden_dim": [8]}
    cfg = PretrainConfig(essl=block, epochs=1, batch_size=8, width=4, view=view(8))
    vic = pretrain(images, dataclasses.replace(cfg, method="vicreg")).history[0]
    sim = pretrain(images, cfg).history[0]
    assert vic["ssl"] != sim["ssl"] and vic["loss"] == pytest.approx(vic["ssl"] + 0.4 * vic["essl/ce"], rel=1e-5)
    rnd = pretrain(images, dataclasses.replace(cfg, essl={**block, "mode": "random"}, balanced=True)).history[0]
    assert rnd["essl/ce"] != sim["essl/ce"]
    with pytest.raises(ValueError, match="`method`"):
        PretrainConfig(method="byol")
    with pytest.raises(ValueError, match=r"essl\.mode"):
        PretrainConfig(essl={"mode": "every"})
