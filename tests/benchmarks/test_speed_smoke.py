"""The speed benchmark runs end to end in its quick mode and writes a valid report (no time is asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import speed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("speed")
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.speed",
        "--quick",
        "--out-dir",
        str(out),
        "--families",
        "rotation",
        "vflip",
        "blur",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| rotation | random |" in done.stdout
    return out


def test_quick_run_writes_a_complete_json_report(quick_run: Path) -> None:
    text = (quick_run / "speed_quick.json").read_text()
    report = json.loads(text)
    # braces, one line per key, and the results list opened, one line per case, closed
    assert len(text.splitlines()) == 2 + len(report) + len(report["results"]) + 1
    assert report["machine"]["threads"] == 1
    rows = report["results"]
    assert {(r["family"], r["mode"]) for r in rows} == {
        (f, m) for f in ("rotation", "vflip", "blur") for m in ("random", "all")
    }
    for row in rows:
        assert row["shape"] == [8, 3, 16, 16] and row["dtype"] == "float32"
        for key in ("floor", "essl_aug"):
            entry = row[key]
            assert entry["median_ms"] > 0 and math.isfinite(entry["median_ms"])
            assert entry["ratio_to_floor"] == pytest.approx(entry["median_ms"] / row["floor"]["median_ms"], rel=1e-6)
        assert row["floor"]["ratio_to_floor"] == 1.0
    by_key = {(r["family"], r["mode"]): r for r in rows}
    assert "reference" in by_key["rotation", "random"] and "reference" in by_key["rotation", "all"]
    assert "kornia" in by_key["rotation", "random"] and "kornia" not in by_key["rotation", "all"]
    assert "reference" not in by_key["vflip", "random"]
    # the special forms (under essl_aug.fast_forms()) are timed where they run other ops than the plain forms: the
    # per-image pixel moves (random mode), not blur, nor a family's every element (all mode)
    for (family, mode), row in by_key.items():
        traffic = row["traffic"]
        assert set(traffic) == {"plain", "fast"} and traffic["plain"]["kernels"] >= 1
        special = family != "blur" and mode == "random"
        assert ("essl_aug_fast" in row) == special == (traffic["fast"] != traffic["plain"]), (family, mode)


def test_quick_run_writes_a_png_chart_and_a_markdown_table(quick_run: Path) -> None:
    png = (quick_run / "speed_quick.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    table = (quick_run / "speed_quick.md").read_text().splitlines()
    assert table[0].startswith("| family | mode |")
    assert len(table) == 2 + 6


def test_anchor_errors_are_recorded_not_raised() -> None:
    x = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    assert speed._kornia_op("rotation", x) is None  # kornia rejects integer images: no anchor, no crash
    assert speed._reference_op("vflip", "random", x) is None
    single = speed._reference_op("rotation", "random", x)
    assert single().shape == x.shape


def test_compact_json_round_trips_every_value() -> None:
    report = {
        "machine": {"cpu": "x", "load_average": [0.5, 1.25]},
        "results": [{"family": "rotation", "floor": {"median_ms": 0.1 + 0.2, "rounds_ms": [1e-17, 3.0]}}, {"n": None}],
        "empty": [],
    }
    text = speed.compact_json(report)
    assert json.loads(text) == report
    assert len(text.splitlines()) == 1 + 1 + 1 + 2 + 1 + 1 + 1  # {, machine, results [, 2 records, ], empty, }


def test_the_committed_report_is_compact() -> None:
    """The committed results keep one line per case, so the whole folder stays small."""
    text = (ROOT / "benchmarks" / "results" / "speed.json").read_text()
    assert text == speed.compact_json(json.loads(text))
