"""``python -m benchmarks.objectives --quick``: both phases run and write their files (nothing about timing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the benchmark needs the demo extra")
pytest.importorskip("matplotlib", reason="the benchmark needs the demo extra")
pytest.importorskip("torchvision", reason="torchvision reads Fashion-MNIST")

from benchmarks import objectives


def test_quick_run_writes_the_rows_paired_intervals_and_choices(tmp_path: Path, fashion_mnist: None) -> None:
    out = tmp_path / "out"
    argv = ["--quick", "--seeds", "2", "--threads", "1", "--no-progress", "--out", str(out)]
    assert objectives.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(objectives.FILES)
    payload = json.loads((out / "objectives.json").read_text())
    assert list(payload["rows"]) == list(objectives.ROWS)
    compared = [r for r in objectives.ROWS if r != objectives.BASE]
    assert list(payload["paired"]) == compared and list(payload["pretrain_time_ratio"]) == compared
    assert set(payload["validation"]["chosen"]) == {"essl", "augself", "predictor", "probe_weight_decay"}
    for name in compared:
        for probe in ("linear", "knn"):
            got = payload["paired"][name][probe]
            base = payload["rows"][objectives.BASE]["probes"][probe]["accuracies"]
            mine = payload["rows"][name]["probes"][probe]["accuracies"]
            assert got["differences"] == pytest.approx([b - a for a, b in zip(base, mine, strict=True)])
            lo, hi = got["ci95"]
            assert lo <= got["mean"] <= hi
    # each row trained with its objectives: their logs are in its history
    last = {name: payload["rows"][name]["last_epoch"][0] for name in objectives.ROWS}
    assert not any("/" in key for key in last["SimCLR"])
    assert {"essl/acc", "augself/crop", "augself/color"} <= set(last["+ E-SSL rotation + AugSelf"])
    assert "predictor/infonce" in last["+ predictor (crop + colour)"]
    assert [o["kind"] for o in payload["objectives"]["+ E-SSL rotation + AugSelf"]] == ["essl", "augself"]
    text = (out / "objectives.md").read_text()
    assert all(f"| {name} |" in text for name in objectives.ROWS) and "validation stage" in text
    # one seed cannot give a paired interval: refused before any training
    assert objectives.main(["--quick", "--seeds", "1", "--out", str(tmp_path / "one")]) == 2
