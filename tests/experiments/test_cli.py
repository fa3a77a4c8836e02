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

from essl_aug.cli import main, parse_family, parse_seeds
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


def test_bad_cli_input_exits_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--family", "spin"])
    assert "unknown family spin" in capsys.readouterr().err
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


def test_demo_prints_both_accuracies_and_writes_json_and_png(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
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
    for summary in payload["results"].values():
        assert len(summary["accuracies"]) == 2 and all(0 <= a <= 1 for a in summary["accuracies"])
        assert summary["mean"] == pytest.approx(sum(summary["accuracies"]) / 2)
    sim_acc, ess_acc = (payload["results"][k]["accuracies"] for k in ("SimCLR", "E-SimCLR (rotation x vflip)"))
    paired = payload["paired_difference"]
    assert paired["differences"] == pytest.approx([e - s for s, e in zip(sim_acc, ess_acc, strict=True)])
    assert paired["wins"] == sum(e > s for s, e in zip(sim_acc, ess_acc, strict=True)) and "paired by seed" in printed
    ess = payload["results"]["E-SimCLR (rotation x vflip)"]["last_epoch"][0]
    assert 0 <= ess["essl_acc"] <= 1 and ess["essl_ce"] > 0
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
