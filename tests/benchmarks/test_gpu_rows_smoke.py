"""The GPU check's view-recipe and training-step rows (``benchmarks/gpu_check.sh``, step 6) run on the CPU at a small
size: their commands, read from the script, with ``--device cpu``, a 2x3x32x32 batch and one round, write complete
reports (no time is asserted); and the DINO rows' anchors run the recipe's ops."""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_step, views
from essl_aug.views import dino

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (ROOT / "benchmarks" / "gpu_check.sh").read_text()
SMALL = {"--device": "cpu", "--shapes": "2x3x32x32", "--shape": "2x3x32x32", "--repeats": "1", "--min-run-time": "0.01"}

pytest.importorskip("kornia")
pytest.importorskip("matplotlib")


def commands() -> dict[str, list[str]]:
    """The step name and the module arguments of each python step of the GPU check's step 6."""
    (row,) = re.findall(r'^VIEWS_ROW="(.*)"$', SCRIPT, re.M)
    found = {}
    for name, module, rest in re.findall(r'^step (\w+) \d+ "\$PY" -m benchmarks\.(views|gpu_step) (.*)$', SCRIPT, re.M):
        args = shlex.split(rest.replace("$VIEWS_ROW", row))
        found[name] = [module, *args]
    return found


def small(args: list[str], out: Path) -> list[str]:
    """``args`` on the CPU at the small size, writing into ``out``."""
    result = list(args)
    for i, arg in enumerate(result[:-1]):
        if arg in SMALL:
            result[i + 1] = SMALL[arg]
        elif arg == "--out-dir":
            result[i + 1] = str(out)
    return result


def test_the_script_has_the_three_rows_on_cuda_at_256x3x224x224() -> None:
    found = commands()
    assert set(found) == {"views", "views_dino", "train_step"}
    for _module, *args in found.values():
        assert args[args.index("--device") + 1] == "cuda"
        assert "256x3x224x224" in args
    assert "--recipe" not in found["views"] and found["views_dino"][1:3] == ["--recipe", "dino"]
    assert {"kornia", "essl_aug"} <= set(found["views_dino"])
    for name in found:  # each step's status is reported and checked
        assert len(re.findall(rf"for name in [\w ]*\b{name}\b", SCRIPT)) == 2


def test_the_rows_run_on_the_cpu_at_a_small_size(tmp_path: Path) -> None:
    reports = {}
    for name, (module, *args) in commands().items():
        main = views.main if module == "views" else gpu_step.main
        reports[name] = main(small(args, tmp_path / name))
    simclr_row, dino_row = reports["views"]["results"][0], reports["views_dino"]["results"][0]
    assert reports["views"]["recipe"].startswith("simclr") and reports["views_dino"]["recipe"].startswith("dino")
    assert "num_local" not in simclr_row and (dino_row["num_local"], dino_row["local_size"]) == (8, 14)
    for row in (simclr_row, dino_row):
        assert row["shape"] == [2, 3, 32, 32] and row["device"] == "cpu"
        for key in ("floor", "essl_aug", "kornia"):
            assert row[key]["median_ms"] > 0 and math.isfinite(row[key]["median_ms"])
        assert "torchvision" not in row
    assert (tmp_path / "views_dino" / "views_dino.json").exists() and (tmp_path / "views" / "views.json").exists()
    assert "| 2x3x32x32 | uint8 | 32 + 8x14 | cpu |" in views.table(reports["views_dino"])
    step = reports["train_step"]
    assert step["shape"] == [2, 3, 32, 32] and not step["amp"] and step["repeats"] == 1
    assert set(step["results"]) == {"simclr", "e_simclr", "views"}
    assert all(math.isfinite(v) for v in step["first_loss"].values())
    assert step["essl_ratio"] == pytest.approx(
        step["results"]["e_simclr"]["median_ms"] / step["results"]["simclr"]["median_ms"]
    )
    assert (tmp_path / "train_step" / "gpu_step.json").exists()
    assert "| 2x3x32x32 uint8 | cpu | False |" in gpu_step.table(step)


def test_the_dino_anchors_make_every_crop_of_the_recipe() -> None:
    """kornia's and torchvision's DINO anchors return 2 global and 8 local normalised float crops; their ops are the
    recipe's (bicubic crops, blur p 1.0 / 0.1 / 0.5, solarization only on global crop 2)."""
    x = torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)
    recipe = dino(32, local_size=16)
    kinds = [[kind for kind, _ in views.anchor_ops(p)] for p in recipe.pipelines[:3]]
    assert kinds[1] == ["crop", "hflip", "jitter", "grayscale", "blur", "solarize"] and "solarize" not in kinds[0]
    blurs = [dict(views.anchor_ops(p))["blur"]["p"] for p in recipe.pipelines[:3]]
    assert (
        blurs == [1.0, 0.1, 0.5] and dict(views.anchor_ops(recipe.pipelines[0]))["crop"]["interpolation"] == "bicubic"
    )
    for name, op in views.ops(x, 32, recipe="dino", local_size=16).items():
        if name == "floor":
            continue
        out = op()
        crops = out.views if hasattr(out, "views") else out
        assert [tuple(v.shape[-2:]) for v in crops] == [(32, 32)] * 2 + [(16, 16)] * 8, name
        assert all(v.dtype == torch.float32 and float(v.min()) < 0 for v in crops), name
