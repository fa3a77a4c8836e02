"""The main job, ``python -m benchmarks.demo`` (``make demo``): a toy-size run, its option parsers, argument errors."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("sklearn", reason="the demo needs the demo extra")
pytest.importorskip("matplotlib", reason="the demo needs the demo extra")
from PIL import Image

from benchmarks.demo import main
from benchmarks.toolkit.options import parse_seeds
from tests.experiments.cli_errors import fail

ROOT = Path(__file__).resolve().parents[2]


def test_seed_arguments() -> None:
    assert parse_seeds("2") == [0, 1] and parse_seeds("5,1") == [5, 1]
    for bad in ("0", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="seeds"):
            parse_seeds(bad)


def test_bad_demo_input_exits_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--family", "spin"])
    assert "unknown family spin" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--device", "tpu:x"])
    assert "argument --device: invalid device 'tpu:x'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--lambda", "-1"])
    assert "argument --lambda: must be >= 0" in capsys.readouterr().err


def test_demo_prints_both_accuracies_and_writes_json_and_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--epochs",
        "1",
        "--seeds",
        "0,1",
        "--limit",
        "64",
        "--batch-size",
        "32",
        "--width",
        "4",
        "--family",
        "rotation,vflip",
        "--lambda",
        "0.5",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "SimCLR" in printed and "E-SimCLR (rotation x vflip)" in printed and "+-" in printed
    payload = json.loads((tmp_path / "demo.json").read_text())
    assert payload["family"] == "rotation x vflip" and payload["lambda"] == 0.5 and payload["seeds"] == [0, 1]
    assert payload["dataset"]["test"] == 64
    for summary in payload["results"].values():
        assert len(summary["accuracies"]) == 2
        # each accuracy is a count of the 64 test images, and the summary is their mean
        assert all(a * 64 == pytest.approx(round(a * 64), abs=1e-4) for a in summary["accuracies"])
        assert summary["mean"] == pytest.approx(sum(summary["accuracies"]) / 2)
    sim_acc, ess_acc = (payload["results"][k]["accuracies"] for k in ("SimCLR", "E-SimCLR (rotation x vflip)"))
    paired = payload["paired_difference"]
    assert paired["differences"] == pytest.approx([e - s for s, e in zip(sim_acc, ess_acc, strict=True)])
    assert paired["wins"] == sum(e > s for s, e in zip(sim_acc, ess_acc, strict=True)) and "paired by seed" in printed
    lo, hi = paired["ci95"]
    assert lo <= paired["mean"] <= hi and f"95 % CI [{100 * lo:+.2f}, {100 * hi:+.2f}]" in printed
    ess = payload["results"]["E-SimCLR (rotation x vflip)"]["last_epoch"][0]
    # --lambda 0.5 reaches the loss: every step's total is its SSL loss + 0.5 x the E-SSL cross-entropy
    assert ess["essl/ce"] > 0 and ess["loss"] == pytest.approx(ess["ssl"] + 0.5 * ess["essl/ce"], rel=1e-5)
    assert ess["essl/loss"] == pytest.approx(0.5 * ess["essl/ce"], rel=1e-5)
    # 8 classes (rotation x vflip) for every view: the head's accuracy is a count of 2 steps x 32 x 8 views
    assert ess["essl/acc"] * 512 == pytest.approx(round(ess["essl/acc"] * 512), abs=1e-3)
    assert not any(k.startswith("essl") for k in payload["results"]["SimCLR"]["last_epoch"][0])
    with Image.open(tmp_path / "demo.png") as img:
        assert img.width > 100 and img.height > 100


# Hardening: user mistakes end in one line naming the option, a non-zero exit, before any training, and nothing is
# written. The options below keep a run short in case a check is missing.
QUICK = ["--epochs", "1", "--seeds", "1", "--limit", "64", "--batch-size", "32", "--width", "4", "--no-progress"]


def _fail(argv: list[str], match: str) -> str:
    """Run the demo with ``argv``, expect a one-line error exit (no traceback) matching ``match``; return it."""
    return fail(main, argv, match)


def test_demo_checks_out_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the demo trained before finding that --out cannot be written")

    monkeypatch.setattr("benchmarks.toolkit.study.pretrain", no_training)
    existing = tmp_path / "taken"
    existing.write_text("a file")
    _fail([*QUICK, "--out", str(existing)], "is a file, not a folder")
    _fail([*QUICK, "--out", str(existing / "sub")], "cannot be created")
    (tmp_path / "out" / "demo.json").mkdir(parents=True)
    _fail([*QUICK, "--out", str(tmp_path / "out")], "holds a folder named 'demo.json'")
    assert existing.read_text() == "a file" and sorted(p.name for p in tmp_path.iterdir()) == ["out", "taken"]
    if Path("/sys/kernel").is_dir():  # sysfs: no file can be made there, whatever the bits say (root included)
        _fail([*QUICK, "--out", "/sys/essl-demo"], "is not writable (cannot create a file in '/sys'")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--lambda", "nan", "argument --lambda: must be a finite number >= 0, got nan"),
        ("--lambda", "inf", "argument --lambda: must be a finite number >= 0, got inf"),
        ("--batch-size", "1", "argument --batch-size: must be at least 2"),
        ("--seeds", "0,0", "argument --seeds: `--seeds` lists seed 0 twice"),
        ("--seeds", "1,-1", "argument --seeds: `--seeds` must lie in 0..2**63-1"),
    ],
)
def test_demo_refuses_values_that_cannot_work(
    option: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*QUICK, option, value, "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_demo_refuses_a_family_that_cannot_act_on_the_data_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.toolkit.data import LabelledImages
    from benchmarks.toolkit.pretrain import PretrainConfig
    from benchmarks.toolkit.study import check_plan
    from benchmarks.toolkit.views import view

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained")

    monkeypatch.setattr("benchmarks.toolkit.study.pretrain", no_training)
    gray = LabelledImages(torch.rand(8, 1, 16, 16), torch.arange(8), torch.rand(4, 1, 16, 16), torch.arange(4), "gray")
    gray_view = view(16, channels=1)
    # grayscale leaves a gray image as it is: its two elements cannot be told apart
    with pytest.raises(ValueError, match="grayscale cannot act on the 8x8 1-channel E-SSL view of gray: its elements"):
        check_plan(
            gray, {"g": {"E-SSL": PretrainConfig(essl={"transform": "grayscale"}, batch_size=4, view=gray_view)}}
        )
    with pytest.raises(ValueError, match="grayscale cannot act on the 16x16 1-channel views of gray"):
        check_plan(
            gray, {"g": {"inv": PretrainConfig(essl=None, invariance="grayscale", batch_size=4, view=gray_view)}}
        )
    with pytest.raises(ValueError, match="jigsaw cannot act on the 7x7"):
        check_plan(
            gray, {"g": {"invariant": PretrainConfig(essl=None, invariance="jigsaw", batch_size=4, view=view(7))}}
        )
    with pytest.raises(ValueError, match="jigsaw cannot act on the 5x5 1-channel E-SSL view"):  # the block's size
        check_plan(
            gray,
            {"g": {"E": PretrainConfig(essl={"transform": "jigsaw", "crop_size": 5}, batch_size=4, view=gray_view)}},
        )
    with pytest.raises(ValueError, match="num_per_batch"):
        check_plan(gray, {"g": {"E-SSL": PretrainConfig(num_per_batch=5, batch_size=4, view=gray_view)}})
    with pytest.raises(ValueError, match=r"essl\.objectives\.augself"):
        check_plan(gray, {"g": {"o": PretrainConfig(objectives={"augself": {"colour": 1}}, batch_size=4)}})
    with pytest.raises(ValueError, match="exceeds the 8 training images"):
        check_plan(gray, {"g": {"SimCLR": PretrainConfig(essl=None, batch_size=9)}})
    check_plan(gray, {"g": {"E-SSL": PretrainConfig(batch_size=4, view=gray_view)}})  # rotation acts: no error
    _fail([*QUICK, "--family", "jigsaw", "--limit", "16", "--out", str(tmp_path / "o")], "exceeds")
    assert not (tmp_path / "o").exists()


def test_demo_errors_are_one_line_without_a_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\x00" * 100)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.demo", "--out", str(junk), *QUICK],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("benchmarks.demo: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.jpg"]
