"""The two-view benchmark runs end to end in its quick mode and writes a complete report (no time is asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import views
from benchmarks.speed import compact_json

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("views")
    cmd = [sys.executable, "-m", "benchmarks.views", "--quick", "--out-dir", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return out, done.stdout


def test_quick_run_writes_a_complete_json_report(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    text = (out / "views_quick.json").read_text()
    report = json.loads(text)
    assert text == compact_json(report)  # one line per key and per case
    assert set(report) >= {"machine", "versions", "command", "recipe", "repeats", "date", "results"}
    assert report["machine"]["threads"] == 1 and report["repeats"] == 1
    assert set(report["versions"]) >= {"torch", "torchvision", "kornia", "essl_aug"}
    (row,) = report["results"]
    assert row["shape"] == [4, 3, 24, 24] and row["dtype"] == "uint8" and row["size"] == 24
    assert row["device"] == "cpu" and row["blur_kernel_size"] == views.blur_kernel_size(24)
    assert "errors" not in row, row.get("errors")
    for key in views.OPS:
        entry = row[key]
        assert entry["median_ms"] > 0 and math.isfinite(entry["median_ms"])
        assert entry["ratio_to_floor"] == pytest.approx(entry["median_ms"] / row["floor"]["median_ms"], rel=1e-6)
        assert len(entry["rounds_ms"]) == 1
    assert row["floor"]["ratio_to_floor"] == 1.0


def test_quick_run_writes_a_markdown_table_and_a_png_chart(quick_run: tuple[Path, str]) -> None:
    out, stdout = quick_run
    table = (out / "views_quick.md").read_text().splitlines()
    assert table[0].startswith("| shape | dtype | crop | device | floor ms | essl_aug ms |")
    assert "kornia / essl_aug" in table[0] and "torchvision / essl_aug" in table[0]
    assert len(table) == 3 and table[2].startswith("| 4x3x24x24 | uint8 | 24 | cpu |")
    assert table[2] in stdout
    png = (out / "views_quick.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_every_op_makes_two_normalised_views_of_the_crop_size() -> None:
    import torch

    x = torch.randint(0, 256, (3, 3, 20, 20), dtype=torch.uint8)
    for name, op in views.ops(x, 16).items():
        if name == "floor":
            continue
        result: Any = op()
        out = result.views if hasattr(result, "views") else result
        assert [tuple(v.shape) for v in out] == [(3, 3, 16, 16)] * 2, name
        assert all(v.dtype == torch.float32 for v in out), name
        assert min(float(v.min()) for v in out) < 0, name  # normalised


def test_options() -> None:
    args = views._parse(["--quick", "--ops", "essl_aug", "--out", "x"])
    assert args.ops == ["floor", "essl_aug"] and args.out_dir == Path("x") and args.repeats == 1
    args = views._parse(["--shapes", "2x3x40x40", "--size", "32"])
    assert args.shapes == [(2, 3, 40, 40)] and args.size == 32 and args.repeats == 3
