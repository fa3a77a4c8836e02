"""``python -m benchmarks.sensitivity``: the tasks' transformations and targets against independent oracles, the
ridge probe, a quick run writing every row's scores and paired gains, and the run cache reused by a second run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("matplotlib", reason="the benchmark needs the demo extra")
pytest.importorskip("torchvision", reason="torchvision reads Fashion-MNIST")

import torchvision.transforms.functional as F1  # the v1 functional ops: an oracle beside the v2 ops used

from benchmarks import sensitivity
from benchmarks.toolkit.data import load_digits_rgb
from benchmarks.toolkit.study import RunCache

ANGLE = "+ E-SSL angle (continuous)"


def _images(n: int = 12, size: int = 10) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(3))


def test_rotation_and_flip_targets_name_the_applied_element() -> None:
    x = _images()
    y, k = sensitivity.transformed(x, "rotation", torch.Generator().manual_seed(0))
    assert set(k.tolist()) <= {0, 1, 2, 3} and len(set(k.tolist())) > 1
    for i in range(len(x)):
        assert torch.equal(y[i], torch.rot90(x[i], int(k[i]), dims=(-2, -1)))
    y, b = sensitivity.transformed(x, "flip", torch.Generator().manual_seed(0))
    assert set(b.tolist()) == {0, 1}
    for i in range(len(x)):
        assert torch.equal(y[i], x[i].flip(-1) if b[i] else x[i])


@pytest.mark.parametrize("name", ["brightness", "contrast"])
def test_photometric_targets_are_the_factors_of_torchvisions_ops(name: str) -> None:
    x = _images()
    y, f = sensitivity.transformed(x, name, torch.Generator().manual_seed(1))
    lo, hi = sensitivity.FACTORS
    assert bool(((f >= lo) & (f <= hi)).all()) and float(f.std()) > 0.05
    op = F1.adjust_brightness if name == "brightness" else F1.adjust_contrast
    for i in range(len(x)):
        torch.testing.assert_close(y[i], op(x[i], float(f[i])), atol=1e-6, rtol=0)


def test_crop_scale_target_is_the_area_of_a_crop_that_torchvision_reproduces() -> None:
    x = _images(40, 16)
    y, area = sensitivity.transformed(x, "crop scale", torch.Generator().manual_seed(2))
    lo, hi = sensitivity.AREAS
    assert bool(((area >= lo - 0.05) & (area <= hi)).all()) and float(area.std()) > 0.1
    # the crop is square with side sqrt(area) * 16 px: find its position by matching torchvision's op
    for i in range(0, 40, 7):
        side = round(float(area[i] * 256) ** 0.5)
        assert side * side == round(float(area[i]) * 256)
        matches = [
            (t, left)
            for t in range(16 - side + 1)
            for left in range(16 - side + 1)
            if torch.allclose(F1.resized_crop(x[i], t, left, side, side, [16, 16], antialias=True), y[i], atol=1e-6)
        ]
        assert matches, f"image {i}: no crop of side {side} gives the transformed image"


def test_unknown_task_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sensitivity task 'hue'"):
        sensitivity.transformed(_images(), "hue", torch.Generator())


def test_ridge_probe_scores_a_linear_target_near_1_and_noise_near_or_below_0() -> None:
    g = torch.Generator().manual_seed(0)
    f = torch.randn(400, 6, generator=g)
    t = f @ torch.tensor([0.5, -1.0, 0.0, 2.0, 0.0, 0.1]) + 0.01 * torch.randn(400, generator=g)
    assert sensitivity.ridge_r2(f[:300], t[:300], f[300:], t[300:]) > 0.99
    noise = torch.randn(400, generator=g)
    assert sensitivity.ridge_r2(f[:300], noise[:300], f[300:], noise[300:]) < 0.05


def test_tasks_share_one_draw_for_every_run(fashion_mnist: None) -> None:
    from benchmarks.toolkit.data import load_fashion_mnist

    data = load_fashion_mnist(None, 64, limit=64)
    digits = load_digits_rgb(size=28, colour=False, limit=32)
    a, b = sensitivity.make_tasks(data, digits, 32), sensitivity.make_tasks(data, digits, 32)
    assert list(a) == list(sensitivity.TASKS)
    for name in a:
        assert torch.equal(a[name].test_x, b[name].test_x) and torch.equal(a[name].train_t, b[name].train_t)
    assert a["rotation"].test_x.shape == (32, 1, 28, 28) and a["digits linear"].train_x.shape[1:] == (1, 28, 28)


def test_quick_run_writes_every_rows_scores_and_gains_and_reuses_its_cache(
    tmp_path: Path, fashion_mnist: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, cache = tmp_path / "out", tmp_path / "runs"
    rows = [sensitivity.BASE, ANGLE]
    argv = ["--quick", "--threads", "1", "--no-progress", "--out", str(out), "--cache", str(cache), "--rows", *rows]
    assert sensitivity.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(sensitivity.FILES)
    payload = json.loads((out / "sensitivity.json").read_text())
    assert list(payload["results"]) == rows and list(payload["paired"]) == [ANGLE]
    scores = {*sensitivity.PROBES, *sensitivity.TASKS}
    assert set(payload["results"][ANGLE]["probes"]) == scores and set(payload["paired"][ANGLE]) == scores
    assert payload["validation"]["chosen"] == {"angle": sensitivity.TRIED["angle"][0]}
    assert payload["weights"]["angle"] == sensitivity.TRIED["angle"][0]
    assert payload["costs"][sensitivity.BASE]["step_ratio"] == 1.0
    assert "| crop scale |" in (out / "sensitivity.md").read_text()
    cached = sorted(cache.iterdir())
    assert len(cached) == 1 + 2 * 2, cached  # validation: 1 weight x 1 seed; test: 2 rows x 2 seeds

    # a second run trains nothing: every run comes from the cache, with the same scores
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr("benchmarks.toolkit.study.pretrain", no_training)
    out2 = tmp_path / "out2"
    argv2 = [*argv[: argv.index("--out")], "--out", str(out2), *argv[argv.index("--out") + 2 :]]
    assert sensitivity.main(argv2) == 0
    again = json.loads((out2 / "sensitivity.json").read_text())
    assert again["results"][ANGLE]["probes"] == payload["results"][ANGLE]["probes"]


def test_run_cache_keys_on_configuration_seed_and_tag(tmp_path: Path) -> None:
    from benchmarks.toolkit.pretrain import PretrainConfig

    cfg = PretrainConfig(essl=None)
    RunCache(tmp_path, "a").put(cfg, 0, (0.5, {"knn": 0.25}, 3.0, {}))
    assert RunCache(tmp_path, "a").get(cfg, 0) == (0.5, {"knn": 0.25}, 3.0, {})
    assert RunCache(tmp_path, "b").get(cfg, 0) is None
    assert RunCache(tmp_path, "a").get(cfg, 1) is None
    assert RunCache(tmp_path, "a").get(PretrainConfig(essl=None, epochs=3), 0) is None


def test_bad_options_are_refused_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert sensitivity.main(["--rows", "nope", "--out", str(tmp_path / "out")]) == 2
    assert "`--rows` must name 'SimCLR'" in capsys.readouterr().err
    assert sensitivity.main(["--choices", str(tmp_path / "none.json"), "--out", str(tmp_path / "o2")]) == 2
    assert "`--choices`" in capsys.readouterr().err
