"""``python -m benchmarks.quality --quick`` and one epoch of ``python -m benchmarks.cifar10`` on a tiny fake
CIFAR-10 folder."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("sklearn", reason="the benchmarks need the demo extra")
pytest.importorskip("matplotlib", reason="the benchmarks need the demo extra")

from benchmarks import cifar10, quality
from benchmarks.toolkit.data import load_cifar10

ROOT = Path(__file__).resolve().parents[2]


def test_quality_quick_writes_one_row_per_family(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--quick",
        "--families",
        "rotation,invert,rotation+vflip",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(tmp_path),
    ]
    assert quality.main(argv) == 0
    payload = json.loads((tmp_path / "quality.json").read_text())
    assert list(payload["rows"]) == ["rotation", "invert", "rotation,vflip"]
    assert payload["dataset"]["test"] == 128 and payload["lambda"] == 0.4
    baseline = payload["rows"]["rotation"]["baseline"]
    for row in payload["rows"].values():
        assert set(row) == {"baseline", "invariant", "E-SSL"}
        assert row["baseline"] == baseline  # one baseline run, shared by every row
        for s in row.values():
            (acc,) = s["accuracies"]
            assert s["mean"] == acc and s["std"] == 0.0
            assert acc * 128 == pytest.approx(round(acc * 128), abs=1e-4)  # a count of the 128 test images
    e_row = payload["rows"]["rotation,vflip"]["E-SSL"]["last_epoch"][0]
    assert "essl/acc" in e_row  # the E-SSL runs really trained a head
    assert e_row["essl/loss"] == pytest.approx(0.4 * e_row["essl/ce"], rel=1e-5)
    assert "essl/acc" not in payload["rows"]["rotation"]["invariant"]["last_epoch"][0]
    invariant = payload["rows"]["rotation"]["invariant"]["last_epoch"][0]
    assert invariant["ssl"] != baseline["last_epoch"][0]["ssl"]  # the invariance changed the views
    assert "| rotation |" in capsys.readouterr().out
    assert (tmp_path / "quality.png").stat().st_size > 0


def _fake_cifar(folder: Path, per_file: int = 16) -> None:
    gen = torch.Generator().manual_seed(0)
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = torch.randint(0, 256, (per_file, 3072), dtype=torch.uint8, generator=gen).numpy()
        labels = [i % 10 for i in range(per_file)]
        with (folder / name).open("wb") as fh:
            pickle.dump({b"data": data, b"labels": labels}, fh)


def test_cifar10_recipe_runs_one_epoch_on_a_tiny_fake_folder(tmp_path: Path) -> None:
    _fake_cifar(tmp_path / "data" / "cifar-10-batches-py")
    train_x, _train_y, _test_x, test_y = load_cifar10(tmp_path / "data")
    assert train_x.shape == (80, 3, 32, 32) and train_x.dtype == torch.uint8 and test_y.shape == (16,)
    out = tmp_path / "out"
    argv = [
        "--data",
        str(tmp_path / "data"),
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--probe-epochs",
        "1",
        "--probes",
        "2",
        "--width",
        "4",
        "--out",
        str(out),
    ]
    assert cifar10.main(argv) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["method"] == "E-SimCLR" and result["recipe"]["base_lr"] == 0.06
    assert result["recipe"]["temperature"] == 0.5 and result["recipe"]["weight"] == 0.4
    (epoch,) = result["history"]
    assert epoch["epoch"] == 1 and epoch["loss"] == pytest.approx(epoch["ssl"] + 0.4 * epoch["essl/ce"], rel=1e-5)
    assert len(result["probe"]["accuracies"]) == 2
    assert (out / "backbone.pt").is_file()


def test_cifar10_without_data_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cifar10.main(["--data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "CIFAR-10 not found" in err and "data_batch_1" in err and "never downloads" in err


@pytest.mark.parametrize("name", ["quality", "cifar10"])
def test_benchmarks_run_as_modules_from_the_repository_root(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"usage: python -m benchmarks.{name}" in done.stdout and "--lambda" in done.stdout
