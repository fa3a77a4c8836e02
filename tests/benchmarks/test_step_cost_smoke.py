"""The step-cost benchmark runs end to end in its quick mode, writes a valid report, and times the step it names
(no time is asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from benchmarks import speed, step_cost

ROOT = Path(__file__).resolve().parents[2]
PAIRS = {(m, v) for m in step_cost.MODELS for v in step_cost.VARIANT_NAMES}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("step_cost")
    cmd = [sys.executable, "-m", "benchmarks.step_cost", "--quick", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| demo CNN, 16 px | SimCLR |" in done.stdout
    return out


def _check_report(report: dict, text: str) -> None:
    """Structure and internal consistency of a report (every pair once, one line per row)."""
    assert text == speed.compact_json(report)
    rows = report["results"]
    assert len(rows) == len(PAIRS) and {(r["model"], r["variant"]) for r in rows} == PAIRS
    assert report["machine"]["threads"] == 1
    assert len(report["machine"]["load_average"]) == 3 and len(report["machine"]["load_average_start"]) == 3
    by_key = {(r["model"], r["variant"]): r for r in rows}
    for row in rows:
        base = by_key[row["model"], "simclr"]
        assert len(row["step_rounds_ms"]) == report["repeats"]
        assert all(t > 0 and math.isfinite(t) for t in row["step_rounds_ms"])
        assert min(row["step_rounds_ms"]) <= row["step_ms"] <= max(row["step_rounds_ms"])
        assert len(row["step_cpu_rounds_ms"]) == report["repeats"]
        assert all(t > 0 and math.isfinite(t) for t in row["step_cpu_rounds_ms"])
        for key, rounds in (("ratio_to_simclr", "step_rounds_ms"), ("cpu_ratio_to_simclr", "step_cpu_rounds_ms")):
            ratios = sorted(s / b for s, b in zip(row[rounds], base[rounds], strict=True))
            assert ratios[0] * (1 - 1e-4) <= row[key] <= ratios[-1] * (1 + 1e-4), key
        assert row["batch"] == report["batch"][row["model"]]
        if row["variant"] == "simclr":
            assert row["ratio_to_simclr"] == 1.0 and row["cpu_ratio_to_simclr"] == 1.0
            assert row["transform_ms"] is None and row["transform_share"] is None and row["essl_px"] is None
            continue
        variant = next(v for v in step_cost.VARIANTS if v.name == row["variant"])
        assert row["mode"] == variant.mode and row["balanced"] == variant.balanced
        assert row["batch_fraction"] == variant.fraction and row["on_views"] == variant.on_views
        size = row["image_px"] if variant.full_size else variant.extra_px or row["image_px"] // 2
        assert row["essl_px"] == (None if variant.on_views else size)
        assert row["transform_ms"] > 0
        # two measured numbers: the transform call alone is a small part of the step that contains it
        assert 0 < row["transform_share"] < 1
        shares = sorted(t / s for t, s in zip(row["transform_rounds_ms"], row["step_rounds_ms"], strict=True))
        assert shares[0] * (1 - 1e-4) <= row["transform_share"] <= shares[-1] * (1 + 1e-4)
    assert by_key["resnet18", "all"]["head_hidden"] == [2048, 2048]
    assert by_key["resnet18", "all"]["image_px"] == 32
    resnet_shares = [r["transform_share"] for r in rows if r["model"] == "resnet18" and r["variant"] != "simclr"]
    assert report["target"]["max_share"] == pytest.approx(max(resnet_shares))
    assert report["target"]["holds"] == (max(resnet_shares) < 0.01)


def test_quick_run_writes_a_complete_json_report(quick_run: Path) -> None:
    text = (quick_run / "step_cost_quick.json").read_text()
    report = json.loads(text)
    _check_report(report, text)
    assert report["repeats"] == 1
    assert report["batch"] == step_cost.QUICK_BATCH
    assert report["command"] == f"python -m benchmarks.step_cost --quick --out {quick_run}"


def test_quick_run_writes_a_png_chart_and_a_markdown_table(quick_run: Path) -> None:
    png = (quick_run / "step_cost_quick.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    lines = (quick_run / "step_cost_quick.md").read_text().splitlines()
    assert any("load average" in line for line in lines)
    rows = [line for line in lines if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| model | variant |") and len(rows) == 1 + len(PAIRS)
    assert lines[-1].startswith("Target (the transform under 1 % of an E-SSL step")


@pytest.mark.parametrize("variant", step_cost.VARIANTS, ids=step_cost.VARIANT_NAMES)
@pytest.mark.parametrize("model", step_cost.MODELS)
def test_each_step_runs_the_branch_it_names_and_trains_its_head(model: str, variant: step_cost.Variant) -> None:
    """One step: the backbone sees the two views and the extra view of the variant's size and count, the transform
    draws the variant's labels, and every parameter of the E-SSL head (and the backbone) changes."""
    batch = step_cost.QUICK_BATCH[model]
    case = step_cost.build_step(model, variant, batch)
    inputs: list[tuple[int, ...]] = []
    case.backbone.register_forward_pre_hook(lambda _m, args: inputs.append(tuple(args[0].shape)))
    px = case.image_px
    first = next(case.backbone.parameters()).detach().clone()
    if case.essl is None:
        case.step()
        assert inputs == [(batch, case.channels, px, px)] * 2
        assert not torch.equal(first, next(case.backbone.parameters()))
        return
    labels: list[Tensor] = []
    head = {k: v.detach().clone() for k, v in case.essl.head.named_parameters()}
    if variant.on_views:  # no extra view: the two SSL views, turned alike, are all the backbone sees
        prepare, prepared = case.essl.prepare_views, []

        def recording(views: list[Tensor], generator: torch.Generator | None = None) -> list[Tensor]:
            prepared.append(prepare(views, generator))
            return prepared[-1]

        case.essl.prepare_views = recording  # type: ignore[method-assign]
        case.step()
        assert case.essl_px is None and len(prepared) == 1
        assert inputs == [(batch, case.channels, px, px)] * 2
    else:

        def keep(_m: nn.Module, _args: object, out: tuple[Tensor, Tensor]) -> None:
            labels.append(out[1])

        case.essl.transform.register_forward_hook(keep)
        case.step()
        e = px if variant.full_size else variant.extra_px or px // 2
        assert case.essl_px == e
        kept = math.ceil(variant.fraction * batch)
        copies = 4 if variant.mode == "all" else 1
        assert inputs == [(batch, case.channels, px, px)] * 2 + [(copies * kept, case.channels, e, e)]
        (got,) = labels
        if variant.mode == "all":
            assert torch.equal(got, torch.arange(4).repeat_interleave(kept))
        elif variant.balanced:  # every element on an equal share, to one image
            counts = torch.bincount(got, minlength=4)
            assert int(counts.sum()) == kept and int(counts.max() - counts.min()) <= 1
        else:
            assert got.shape == (kept,)
    for name, after in case.essl.head.named_parameters():
        assert after.grad is not None and bool(after.grad.abs().sum() > 0), name
        assert not torch.equal(head[name], after), name
    assert not torch.equal(first, next(case.backbone.parameters()))


def test_building_a_step_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    step_cost.build_step("demo_cnn", step_cost.VARIANTS[1], 8)
    assert torch.equal(torch.rand(3), expected)


def test_the_committed_report_is_complete_and_compact() -> None:
    """The committed full run: every pair, several rounds, the load average, and the markdown table beside it."""
    text = (ROOT / "benchmarks" / "results" / "step_cost.json").read_text()
    report = json.loads(text)
    _check_report(report, text)
    assert report["repeats"] >= 5
    assert report["batch"] == step_cost.BATCH
    md = (ROOT / "benchmarks" / "results" / "step_cost.md").read_text()
    assert report["command"] in md and "load average" in md
