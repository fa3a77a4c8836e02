"""The ``essl-aug`` command: ``show`` and ``demo`` at toy size, argument errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("sklearn", reason="the demo needs the demo extra")
pytest.importorskip("matplotlib", reason="the demo needs the demo extra")
from PIL import Image

from essl_aug.cli import main
from essl_aug.experiments.options import parse_family, parse_seeds
from essl_aug.experiments.show import family_grid, load_image


def test_family_and_seed_arguments() -> None:
    assert parse_family("rotation") == "rotation"
    assert parse_family("rotation, vflip") == ["rotation", "vflip"]
    with pytest.raises(argparse.ArgumentTypeError, match="rotation"):
        parse_family("rotate")
    assert parse_seeds("2") == [0, 1] and parse_seeds("5,1") == [5, 1]
    for bad in ("0", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="seeds"):
            parse_seeds(bad)


def test_bad_cli_input_exits_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--family", "spin"])
    assert "unknown family spin" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--device", "tpu:x"])
    assert "argument --device: invalid device 'tpu:x'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--lambda", "-1"])
    assert "argument --lambda: must be >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="does not exist"):
        main(["show", str(tmp_path / "missing.png"), "--out", str(tmp_path / "g.png")])
    with pytest.raises(SystemExit, match="even height and width"):
        main(["show", "--size", "7", "--family", "jigsaw", "--out", str(tmp_path / "j.png")])


def test_show_writes_a_grid_of_every_element(tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    assert main(["show", "--family", "rotation,vflip", "--out", str(out)]) == 0
    with Image.open(out) as img:
        assert img.width > 4 * img.height  # 8 tiles in one row
    sample = load_image()
    assert sample.shape == (3, 96, 96)
    assert not torch.equal(sample, sample.flip(-1)) and not torch.equal(sample, sample.flip(-2))
    views, k = family_grid(sample, "rotation")
    assert k == 4 and all(torch.equal(views[i], torch.rot90(sample, i, (-2, -1))) for i in range(4))


def test_show_reads_a_user_image_and_crops_it_square(tmp_path: Path) -> None:
    src = tmp_path / "wide.png"
    pixels = torch.zeros(20, 40, 3, dtype=torch.uint8)
    pixels[:, 10:30] = 255  # the centre square is white
    Image.fromarray(pixels.numpy()).save(src)
    x = load_image(src, size=20)
    assert x.shape == (3, 20, 20) and torch.equal(x, torch.ones(3, 20, 20))
    assert main(["show", str(src), "--family", "invert", "--size", "20", "--out", str(tmp_path / "i.png")]) == 0
    assert (tmp_path / "i.png").stat().st_size > 0


def test_demo_prints_both_accuracies_and_writes_json_and_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "demo",
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
    assert ess["essl_ce"] > 0 and ess["loss"] == pytest.approx(ess["ssl"] + 0.5 * ess["essl_ce"], rel=1e-5)
    # 8 classes (rotation x vflip) for every view: the head's accuracy is a count of 2 steps x 32 x 8 views
    assert ess["essl_acc"] * 512 == pytest.approx(round(ess["essl_acc"] * 512), abs=1e-3)
    with Image.open(tmp_path / "demo.png") as img:
        assert img.width > 100 and img.height > 100


def test_python_dash_m_runs_the_command(tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    done = subprocess.run(
        [sys.executable, "-m", "essl_aug", "show", "--family", "blur", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert out.is_file() and f"wrote {out}" in done.stdout


# Hardening: user mistakes end in one line naming the option, a non-zero exit, before any training, and nothing is
# written. The demo options below keep a run short in case a check is missing.
QUICK = ["--epochs", "1", "--seeds", "1", "--limit", "64", "--batch-size", "32", "--width", "4", "--no-progress"]


def _fail(argv: list[str], match: str) -> str:
    """Run ``essl-aug argv``, expect a one-line error exit (no traceback) matching ``match``; return the message."""
    with pytest.raises(SystemExit) as done:
        main(argv)
    code = done.value.code
    message = code if isinstance(code, str) else ""
    if code == 2:  # an argparse usage error: its message went to stderr
        return ""
    assert isinstance(code, str) and match in code and "\n" not in code, code
    return message


def test_show_refuses_files_that_are_not_images(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    truncated = tmp_path / "cut.png"
    Image.new("RGB", (64, 64), "red").save(tmp_path / "whole.png")
    truncated.write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    out = tmp_path / "g.png"
    for bad in (text, truncated):
        message = _fail(["show", str(bad), "--out", str(out)], "cannot read image")
        assert str(bad) in message and "PNG/JPEG" in message
    _fail(["show", str(tmp_path), "--out", str(out)], "is a folder")
    assert not out.exists()


def test_show_refuses_an_out_that_is_a_folder_or_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _fail(["show", "--out", "."], "is a folder; give a file name such as 'grid.png'")
    _fail(["show", "--out", str(tmp_path)], "is a folder")
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    _fail(["show", "--out", str(blocker / "g.png")], "cannot be created")
    _fail(["show", "--out", "grid"], "must name an image file ending in .png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # no ./.png, no grid, nothing else


def test_demo_checks_out_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the demo trained before finding that --out cannot be written")

    monkeypatch.setattr("essl_aug.experiments.study.pretrain", no_training)
    existing = tmp_path / "taken"
    existing.write_text("a file")
    _fail(["demo", *QUICK, "--out", str(existing)], "is a file, not a folder")
    _fail(["demo", *QUICK, "--out", str(existing / "sub")], "cannot be created")
    (tmp_path / "out" / "demo.json").mkdir(parents=True)
    _fail(["demo", *QUICK, "--out", str(tmp_path / "out")], "holds a folder named 'demo.json'")
    assert existing.read_text() == "a file" and sorted(p.name for p in tmp_path.iterdir()) == ["out", "taken"]


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
    argv = ["demo", *QUICK, option, value, "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_demo_refuses_a_family_that_cannot_act_on_the_data_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from essl_aug.experiments.augment import ViewAugment
    from essl_aug.experiments.data import LabelledImages
    from essl_aug.experiments.pretrain import PretrainConfig
    from essl_aug.experiments.study import check_plan

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained")

    monkeypatch.setattr("essl_aug.experiments.study.pretrain", no_training)
    gray = LabelledImages(torch.rand(8, 1, 16, 16), torch.arange(8), torch.rand(4, 1, 16, 16), torch.arange(4), "gray")
    with pytest.raises(ValueError, match="grayscale cannot act on the 8x8 1-channel E-SSL view of gray"):
        check_plan(gray, {"g": {"E-SSL": PretrainConfig(essl="grayscale", batch_size=4)}})
    with pytest.raises(ValueError, match="jigsaw cannot act on the 7x7"):
        check_plan(
            gray,
            {"g": {"invariant": PretrainConfig(essl=None, invariance="jigsaw", batch_size=4, view=ViewAugment(7))}},
        )
    with pytest.raises(ValueError, match="exceeds the 8 training images"):
        check_plan(gray, {"g": {"SimCLR": PretrainConfig(essl=None, batch_size=9)}})
    _fail(["demo", *QUICK, "--family", "jigsaw", "--limit", "16", "--out", str(tmp_path / "o")], "exceeds")
    assert not (tmp_path / "o").exists()


def test_cli_errors_are_one_line_without_a_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\x00" * 100)
    for argv in (["show", str(junk), "--out", str(tmp_path / "g.png")], ["demo", "--out", str(junk), *QUICK]):
        done = subprocess.run(
            [sys.executable, "-m", "essl_aug", *argv], capture_output=True, text=True, timeout=300, cwd=tmp_path
        )
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"essl-aug {argv[0]}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.jpg"]
