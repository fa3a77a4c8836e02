"""The speed profile runs end to end in its quick mode and reports every primitive (no time is asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import speed_profile

ROOT = Path(__file__).resolve().parents[2]


def test_quick_profile_reports_every_primitive_against_the_floor(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.speed_profile", "--quick", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "speed_profile_quick.json").read_text())
    rows = report["results"]
    assert {r["family"] for r in rows} == {"rotation", "hflip", "grayscale", "blur"}
    for family in ("rotation", "hflip", "grayscale", "blur"):
        ops = [r["op"] for r in rows if r["family"] == family]
        assert ops[0] == "floor" and ops[1].startswith("essl_aug ") and len(ops) >= 4
    floors = {r["family"]: r["median_ms"] for r in rows if r["op"] == "floor"}
    for row in rows:
        assert row["shape"] == [8, 3, 16, 16]
        assert row["median_ms"] > 0 and math.isfinite(row["median_ms"])
        # one round: the ratio is exactly this row over its family's floor
        assert row["ratio_to_floor"] == pytest.approx(row["median_ms"] / floors[row["family"]], rel=1e-9)
    blur = {r["op"]: r["median_ms"] for r in rows if r["family"] == "blur"}
    levels = [ms for op, ms in blur.items() if op.startswith(speed_profile.LEVEL + " ")]
    assert len(levels) == 3  # the three blur levels, each on the whole batch; the identity is the floor (a copy)
    assert blur[speed_profile.COMPUTE_FLOOR] == pytest.approx((blur["floor"] + sum(levels)) / 4, rel=1e-9)
    table = (tmp_path / "speed_profile_quick.md").read_text().splitlines()
    assert table[0].startswith("| family | shape | op |") and len(table) == 2 + len(rows)
    assert (tmp_path / "speed_profile_quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
