"""The photonic-crystal benchmark end to end at toy size: real solver data, every method, selection on validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmarks.photonics import dataset, experiment, solvers

METHODS = list(experiment.METHODS)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, experiment.Config, dict, object]:
    if not solvers.legume_available():
        pytest.skip("legume-gme is not installed (pip install -e .[photonics])")
    root = tmp_path_factory.mktemp("photonics")
    spec = dataset.DataSpec(labelled=dataset.CHUNK, unlabelled=48)
    cfg = experiment.Config(
        data=spec, n_test=5, n_val=5, nsam=12, seeds=1, width=0.125, pretrain_epochs=1, pretrain_batch=16,
        finetune_epochs=2, finetune_batch=4, threads=1,
    )  # fmt: skip
    threads = torch.get_num_threads()
    try:
        report = experiment.run(cfg, root / "out", root / "cache", workers=1, log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    raw = dataset.load_or_generate(spec, cache_dir=root / "cache", log=lambda *_: None)
    return report, cfg, raw, root


def test_every_method_is_scored_on_the_test_split_after_selection_on_validation(toy_run) -> None:
    report, _, _, root = toy_run
    assert set(report["table"]) == set(experiment.METHODS)
    for method, runs in report["runs"].items():
        (run,) = runs
        assert run["val_err"] == min(run["val_curve"]), method  # the kept epoch is the best on validation
        assert run["val_curve"][run["best_epoch"]] == run["val_err"]
        assert 0 < run["test_err"] < 1 and np.isfinite(run["test_err"])
    # only E-SimCLR trains a head, and every pre-trained method reports its SSL loss
    assert [m for m, runs in report["runs"].items() if "final_essl_acc" in runs[0]] == ["e-simclr"]
    assert [m for m, runs in report["runs"].items() if "final_ssl_loss" in runs[0]] == METHODS[1:]
    written = json.loads((root / "out" / "photonics.json").read_text())
    for method, row in report["table"].items():
        assert written["table"][method] == pytest.approx(row, rel=1e-5)
        (run,) = written["runs"][method]
        assert "test_pred_examples" not in run and run["val_curve"] == pytest.approx(
            report["runs"][method][0]["val_curve"]
        )
    lines = (root / "out" / "photonics.json").read_text().splitlines()
    assert len(lines) < 100  # a compact summary: settings, per-run numbers, one line per curve
    assert (root / "out" / "photonics.png").stat().st_size > 0


def test_cached_dataset_is_reused_and_splits_are_disjoint(toy_run) -> None:
    _, cfg, raw, _ = toy_run
    assert raw["eps"].shape == (dataset.CHUNK, 32, 32) and raw["dos"].shape[0] == dataset.CHUNK
    assert raw["eps_unlabelled"].shape == (48, 32, 32)
    # the unlabelled pool is a different draw from the labelled cells
    assert not any(np.array_equal(u, c) for u in raw["eps_unlabelled"] for c in raw["eps"])
    data = experiment.prepare(raw, cfg)
    parts = [data["train_x"], data["val_x"], data["test_x"]]
    flat = torch.cat([p.flatten(1) for p in parts])
    assert torch.unique(flat, dim=0).shape[0] == flat.shape[0] == cfg.nsam + cfg.n_val + cfg.n_test


def test_too_few_labelled_cells_is_a_clear_error(toy_run) -> None:
    _, cfg, raw, _ = toy_run
    with pytest.raises(ValueError, match="n_test \\+ n_val \\+ nsam"):
        experiment.prepare(raw, experiment.Config(data=cfg.data, n_test=20, n_val=5, nsam=12))


def test_the_essl_head_learns_a_detectable_translation() -> None:
    """Cells whose half-cell translations are visible (one bright quadrant at a wall, plus noise): the E-head of
    ``e-simclr`` pre-training must beat chance (0.25) on them. No solver needed."""
    gen = torch.Generator().manual_seed(0)
    x = 0.05 * torch.rand(64, 1, 32, 32, generator=gen)
    x[:, :, :16, :16] += 0.9
    cfg = experiment.Config(width=0.125, pretrain_epochs=3, pretrain_batch=16, essl_fraction=0.5, threads=1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        _, stats = experiment.pretrain_encoder("e-simclr", x, cfg, seed=0)
    finally:
        torch.set_num_threads(threads)
    assert stats["final_essl_acc"] > 0.9, stats  # chance: 0.25; memorising noise cells reaches about 0.6
    assert np.isfinite(stats["final_ssl_loss"])
