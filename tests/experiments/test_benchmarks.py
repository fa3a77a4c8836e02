"""``benchmarks/quality.py --quick`` and one epoch of ``benchmarks/cifar10.py`` on a tiny fake CIFAR-10 folder."""

from __future__ import annotations

import importlib.util
import json
import pickle
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("sklearn", reason="the benchmarks need the demo extra")
pytest.importorskip("matplotlib", reason="the benchmarks need the demo extra")

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_quality_quick_writes_one_row_per_family(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    quality = _load("quality")
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
    for row in payload["rows"].values():
        assert set(row) == {"baseline", "invariant", "E-SSL"}
        assert all(0 <= s["mean"] <= 1 and len(s["accuracies"]) == 1 for s in row.values())
    e_row = payload["rows"]["rotation,vflip"]["E-SSL"]["last_epoch"][0]
    assert "essl_acc" in e_row  # the E-SSL runs really trained a head
    assert "essl_acc" not in payload["rows"]["rotation"]["invariant"]["last_epoch"][0]
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
    cifar = _load("cifar10")
    _fake_cifar(tmp_path / "data" / "cifar-10-batches-py")
    train_x, _train_y, _test_x, test_y = cifar.load_cifar10(tmp_path / "data")
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
    assert cifar.main(argv) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["method"] == "E-SimCLR" and result["recipe"]["base_lr"] == 0.06
    assert result["recipe"]["temperature"] == 0.5 and result["recipe"]["lam"] == 0.4
    assert len(result["history"]) == 1 and "essl_acc" in result["history"][0]
    assert len(result["probe"]["accuracies"]) == 2
    assert (out / "backbone.pt").is_file()


def test_cifar10_without_data_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cifar = _load("cifar10")
    assert cifar.main(["--data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "CIFAR-10 not found" in err and "data_batch_1" in err and "never downloads" in err
