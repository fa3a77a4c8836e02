"""``python -m benchmarks.cheap_essl --quick``: the rows, the paired gains, the costs and the verdict are written
(nothing about timing); the verdict's rule on made-up intervals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the benchmark needs the demo extra")
pytest.importorskip("torchvision", reason="torchvision reads Fashion-MNIST")

from benchmarks import cheap_essl

ON_VIEWS = "SSL views turned alike, no extra pass"
QUARTER = "quarter of the batch, 1 rotation"


def test_quick_run_writes_the_rows_gains_costs_and_verdict(tmp_path: Path, fashion_mnist: None) -> None:
    out = tmp_path / "out"
    variants = [cheap_essl.REFERENCE, ON_VIEWS]
    argv = ["--quick", "--threads", "1", "--no-progress", "--workers", "2", "--out", str(out), "--variants", *variants]
    assert cheap_essl.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(cheap_essl.FILES)
    payload = json.loads((out / "cheap_essl.json").read_text())
    assert list(payload["rows"]) == [cheap_essl.BASE, *variants] and list(payload["paired"]) == variants
    for name in [cheap_essl.BASE, *variants]:
        cost = payload["costs"][name]
        assert cost["step_ms"] > 0 and cost["saved_mb"] > 0
    assert payload["costs"][cheap_essl.BASE]["step_ratio"] == 1.0
    assert payload["costs"][cheap_essl.REFERENCE]["memory_ratio"] > 1  # the extra views' activations
    assert payload["chosen"]["scale"] == cheap_essl.headline_choices()["scale"]
    md = (out / "cheap_essl.md").read_text()
    assert ON_VIEWS in md and "Keeps the reference gain" in md


def _payload(intervals: dict[str, tuple[float, float]], ratios: dict[str, float]) -> dict:
    return {
        "variants": {name: {} for name in intervals},
        "paired": {name: {"linear": {"ci95": list(ci)}} for name, ci in intervals.items()},
        "costs": {name: {"step_ratio": r} for name, r in ratios.items()},
    }


@pytest.mark.parametrize(
    ("intervals", "ratios", "keeps", "recommended"),
    [
        # the cheapest within budget whose interval excludes 0 and overlaps the reference's
        (
            {cheap_essl.REFERENCE: (0.01, 0.03), ON_VIEWS: (0.005, 0.02), QUARTER: (0.02, 0.04)},
            {cheap_essl.REFERENCE: 1.6, ON_VIEWS: 1.01, QUARTER: 1.05},
            [cheap_essl.REFERENCE, ON_VIEWS, QUARTER],
            ON_VIEWS,
        ),
        # an interval containing 0 does not keep the gain; one over the budget is not recommended
        (
            {cheap_essl.REFERENCE: (0.01, 0.03), ON_VIEWS: (-0.01, 0.02), QUARTER: (0.02, 0.04)},
            {cheap_essl.REFERENCE: 1.6, ON_VIEWS: 1.01, QUARTER: 1.2},
            [cheap_essl.REFERENCE, QUARTER],
            None,
        ),
        # an interval entirely above the reference's does not overlap it
        (
            {cheap_essl.REFERENCE: (0.01, 0.02), ON_VIEWS: (0.03, 0.05)},
            {cheap_essl.REFERENCE: 1.6, ON_VIEWS: 1.0},
            [cheap_essl.REFERENCE],
            None,
        ),
    ],
)
def test_the_verdict(intervals: dict, ratios: dict, keeps: list, recommended: str | None) -> None:
    got = cheap_essl.verdict(_payload(intervals, ratios))
    assert got["keeps_gain"] == keeps and got["recommended"] == recommended


def test_bad_options_are_refused_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert cheap_essl.main(["--variants", "nope", "--out", str(out)]) == 2
    assert "`--variants` must name the reference" in capsys.readouterr().err
    assert cheap_essl.main(["--variants", ON_VIEWS, "--out", str(out)]) == 2  # the verdict needs the reference
    with pytest.raises(SystemExit) as exit_info:
        cheap_essl.main(["--workers", "0", "--out", str(out)])
    assert exit_info.value.code == 2
    assert not out.exists()
