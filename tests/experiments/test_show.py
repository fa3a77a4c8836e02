"""The family-grid viewer, ``python -m benchmarks.show``: the grid, its argument errors, one-line failures.

It lives beside the benchmarks (the wheel has no command line); its option and file helpers are the toolkit's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("matplotlib", reason="the viewer needs the demo extra")
pytest.importorskip("PIL", reason="the viewer needs the demo extra")
from PIL import Image

from benchmarks import show
from benchmarks.show import family_grid, load_image, main
from benchmarks.toolkit import options, report
from benchmarks.toolkit.options import parse_family, positive_int
from tests.experiments.cli_errors import fail

ROOT = Path(__file__).resolve().parents[2]


def test_family_and_size_arguments() -> None:
    assert parse_family("rotation") == "rotation"
    assert parse_family("rotation, vflip") == ["rotation", "vflip"]
    with pytest.raises(argparse.ArgumentTypeError, match="rotation"):
        parse_family("rotate")
    assert positive_int("96") == 96
    for bad in ("0", "-1", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive"):
            positive_int(bad)


def test_the_viewer_uses_the_toolkits_helpers() -> None:
    """One copy: the viewer's option and file helpers are the toolkit's."""
    assert show.parse_family is options.parse_family and show.positive_int is options.positive_int
    for name in ("check_writable", "pyplot", "save_figure"):
        assert getattr(show, name) is getattr(report, name)


def test_bad_input_exits_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--family", "spin"])
    assert "unknown family spin" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="does not exist"):
        main([str(tmp_path / "missing.png"), "--out", str(tmp_path / "g.png")])
    with pytest.raises(SystemExit, match="even height and width"):
        main(["--size", "7", "--family", "jigsaw", "--out", str(tmp_path / "j.png")])


def test_show_writes_a_grid_of_every_element(tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    assert main(["--family", "rotation,vflip", "--out", str(out)]) == 0
    with Image.open(out) as img:
        assert img.width > 4 * img.height  # 8 tiles in one row
    sample = load_image()
    assert sample.shape == (3, 96, 96) and show.SAMPLE_IMAGE.is_file()
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
    assert main([str(src), "--family", "invert", "--size", "20", "--out", str(tmp_path / "i.png")]) == 0
    assert (tmp_path / "i.png").stat().st_size > 0


def test_python_dash_m_runs_the_viewer(tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.show", "--family", "blur", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert out.is_file() and f"wrote {out}" in done.stdout


# Hardening: user mistakes end in one line naming the option, a non-zero exit, and nothing is written.


def _fail(argv: list[str], match: str) -> str:
    """Run the viewer with ``argv``, expect a one-line error exit (no traceback) matching ``match``; return it."""
    return fail(main, argv, match)


def test_show_refuses_files_that_are_not_images(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    truncated = tmp_path / "cut.png"
    Image.new("RGB", (64, 64), "red").save(tmp_path / "whole.png")
    truncated.write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    out = tmp_path / "g.png"
    for bad in (text, truncated):
        message = _fail([str(bad), "--out", str(out)], "cannot read image")
        assert str(bad) in message and "PNG/JPEG" in message
    _fail([str(tmp_path), "--out", str(out)], "is a folder")
    assert not out.exists()


def test_show_refuses_an_out_that_is_a_folder_or_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _fail(["--out", "."], "is a folder; give a file name such as 'grid.png'")
    _fail(["--out", str(tmp_path)], "is a folder")
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    _fail(["--out", str(blocker / "g.png")], "cannot be created")
    _fail(["--out", "grid"], "must name an image file ending in .png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # no ./.png, no grid, nothing else


def test_errors_are_one_line_without_a_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\x00" * 100)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.show", str(junk), "--out", str(tmp_path / "g.png")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("benchmarks.show: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.jpg"]
