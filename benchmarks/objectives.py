"""Objectives beyond the paper on Fashion-MNIST: SimCLR with E-SSL, AugSelf, both, or a predictor, beyond seed noise?

The rows, all on the same views and CNN (the Fashion-MNIST recipe of :mod:`benchmarks.fashion_mnist`: the small
CNN, 28x28 gray, the class-balanced 5,000-image pre-training subset that the probes also train on, 10 epochs), the
two SSL views made by the :mod:`essl_aug.augment` pipeline of that recipe's view (``PretrainConfig(pipeline=True)``:
28 px crops of area 0.2 to 1, flips with probability 0.5, brightness and contrast jitter of 0.4 with probability
0.8; :func:`~essl_aug.experiments.objectives.view_pipeline`), which returns every image's augmentation parameters:

- SimCLR alone;
- + E-SSL rotation: :class:`~essl_aug.objectives.DiscreteESSL`, all four rotations of an extra 14 px view (the same
  pipeline at 14 px, without the flip), the reference head at the recipe's widths;
- + AugSelf: :class:`~essl_aug.objectives.AugSelf` on the crop and colour groups (its paper's heads, 512-512);
- + both: the two above, each with its chosen weight;
- + predictor: :class:`~essl_aug.objectives.PredictorEquivariance` on the crop and colour groups (EquiMod's form:
  an own projector to 128 numbers, here with hidden widths 512-512, and its InfoNCE at temperature 0.2).

Two phases, run by this one command, with the functions of :mod:`benchmarks.fashion_mnist`:

1. **Validation** (seeds 100, 101): the probes train on the subset and score a validation split of 5,000 other
   images of the training file; the test set is not read. Chosen there: the weight of each objective alone
   (:data:`WEIGHTS`: E-SSL 0.4, its paper's, and 1.0; AugSelf 0.5 and 1.0, its paper's for ImageNet-100 and
   STL-10; the predictor 0.5 and 1.0), then the L2 penalty of the linear probe for every run, scored as in
   :func:`benchmarks.fashion_mnist.score` (ties go to the first listed). "Both" takes the two chosen weights.
2. **Test** (seeds 0-4): every row retrained with the chosen settings, scored on the full 10,000-image test set by
   the linear probe (the chosen penalty) and the weighted k-NN probe (k = 20, temperature 0.07). Within a seed
   every row shares the backbone and projector initialisation, the data order and the SSL views; each row is
   compared with SimCLR by the paired difference per seed and its 95 % t-interval. The cost of a row is its
   pre-training time over SimCLR's, measured in this run (other work on the machine disturbs it).

Writes ``objectives.json``, ``objectives.md`` (the tables) and ``objectives.png`` (test accuracies).

Usage (from the repository root)::

    nice -n 10 python -m benchmarks.objectives --out benchmarks/results/objectives   # about an hour, 2 cores
    python -m benchmarks.objectives --quick --out /tmp/objectives                     # a smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.fashion_mnist import (
    ACCURACY_REFERENCE,
    ACCURACY_YLABEL,
    KNN_K,
    KNN_TEMPERATURE,
    PROBES,
    QUICK,
    SIMCLR_WEIGHTS,
    TRAIN_SIZE,
    VALIDATION_SEEDS,
    VALIDATION_SIZE,
    WEIGHT_DECAYS,
    Sizes,
    accuracy_table,
    best,
    choose_penalty,
    ci,
    linear_probes,
    recipe,
    test_phase,
    validation_table,
)
from essl_aug.experiments.data import LabelledImages, load_fashion_mnist
from essl_aug.experiments.objectives import ObjectiveSpec, objective
from essl_aug.experiments.options import parse_device, parse_seeds, positive_int, set_threads
from essl_aug.experiments.pretrain import PretrainConfig
from essl_aug.experiments.report import check_output_dir, replacing
from essl_aug.experiments.study import random_init_accuracy, run_study, write_study

#: The crop scale and the epochs of every row (the Fashion-MNIST headline's choice on its validation split).
SCALE, EPOCHS = 0.2, 10
#: Each objective's options in every row that has it.
OPTIONS: dict[str, dict[str, Any]] = {
    "essl": {"family": "rotation", "mode": "all"},
    "augself": {"groups": ("crop", "color")},
    "predictor": {"groups": ("crop", "color"), "hidden": (512, 512), "dim": 128},
}
#: The weights tried on the validation split, per objective.
WEIGHTS: dict[str, tuple[float, ...]] = {"essl": tuple(SIMCLR_WEIGHTS), "augself": (0.5, 1.0), "predictor": (0.5, 1.0)}
#: The label of each objective in the validation table.
LABELS = {"essl": "E-SSL rotation", "augself": "AugSelf", "predictor": "predictor"}
#: The test rows: the objectives each adds to SimCLR.
ROWS: dict[str, tuple[str, ...]] = {
    "SimCLR": (),
    "+ E-SSL rotation": ("essl",),
    "+ AugSelf (crop + colour)": ("augself",),
    "+ E-SSL rotation + AugSelf": ("essl", "augself"),
    "+ predictor (crop + colour)": ("predictor",),
}
BASE = "SimCLR"
#: The sizes of the full run (the Fashion-MNIST headline's).
FULL = Sizes()
FILES = ("objectives.json", "objectives.md", "objectives.png")


def spec(kind: str, weight: float) -> ObjectiveSpec:
    """The objective ``kind`` of this benchmark (its :data:`OPTIONS`) with ``weight``."""
    return objective(kind, weight, **OPTIONS[kind])


def row(sizes: Sizes, epochs: int, *objectives: ObjectiveSpec) -> PretrainConfig:
    """SimCLR on the pipeline views of the Fashion-MNIST recipe with ``objectives`` added."""
    return recipe(sizes, SCALE, epochs, pipeline=True, objectives=tuple(objectives))


def validate(
    data: LabelledImages,
    sizes: Sizes,
    epochs: int,
    weights: Mapping[str, Sequence[float]],
    seeds: Sequence[int],
    device: torch.device | str,
    progress: bool,
) -> dict[str, Any]:
    """Phase 1: each objective's weight, then the probe's penalty, on the validation split (module docstring)."""
    plan = {
        BASE: {BASE: row(sizes, epochs)},
        **{LABELS[k]: {f"weight {w:g}": row(sizes, epochs, spec(k, w)) for w in ws} for k, ws in weights.items()},
    }
    results = run_study(data, plan, seeds, device, progress, "validation: weights", linear_probes())
    chosen: dict[str, Any] = {}
    runs = [results[BASE][BASE]]
    for kind in weights:
        setting = best(results[LABELS[kind]], list(results[LABELS[kind]]))
        chosen[kind] = float(setting.split()[-1])
        runs.append(results[LABELS[kind]][setting])
    chosen["probe_weight_decay"] = choose_penalty(runs)
    tried = {"weights": {k: list(ws) for k, ws in weights.items()}, "probe_weight_decay": list(WEIGHT_DECAYS)}
    return {"seeds": list(seeds), "tried": tried, "chosen": chosen, "results": results}


def final_rows(sizes: Sizes, epochs: int, chosen: Mapping[str, Any]) -> dict[str, PretrainConfig]:
    """Phase 2's rows (:data:`ROWS`) with the weights chosen on the validation split."""
    return {name: row(sizes, epochs, *(spec(k, chosen[k]) for k in kinds)) for name, kinds in ROWS.items()}


def benchmark(
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    validation_seeds: Sequence[int] = VALIDATION_SEEDS,
    sizes: Sizes = FULL,
    epochs: int = EPOCHS,
    weights: Mapping[str, Sequence[float]] = WEIGHTS,
    device: torch.device | str = "cpu",
    out: Path | str = "results/objectives",
    data: Path | str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run both phases; returns the JSON payload (also written into ``out`` with the table and the plot)."""
    started = time.perf_counter()
    check_output_dir(out, FILES)
    if len(seeds) < 2:
        raise ValueError(f"`--seeds` needs at least 2 seeds for a paired confidence interval, got {list(seeds)}")
    val_data = load_fashion_mnist(data, TRAIN_SIZE, limit=sizes.limit, validation_size=VALIDATION_SIZE)
    validation = validate(val_data, sizes, epochs, weights, validation_seeds, device, progress)
    validation["wall_seconds"] = time.perf_counter() - started
    chosen = validation["chosen"]
    test_data = load_fashion_mnist(data, TRAIN_SIZE, limit=sizes.limit)
    configs = final_rows(sizes, epochs, chosen)
    pairs = {name: BASE for name in configs if name != BASE}
    rows, paired, time_ratio = test_phase(
        test_data, configs, pairs, seeds, chosen["probe_weight_decay"], device, progress
    )
    floor = random_init_accuracy(test_data, sizes.width, seeds, device)
    settings = {
        "seeds": list(seeds),
        "train_size": len(test_data.train_x),
        "validation_size": len(val_data.test_x),
        "epochs": epochs,
        "scale": SCALE,
        "knn": {"k": KNN_K, "temperature": KNN_TEMPERATURE},
        "width": sizes.width,
        "batch_size": sizes.batch_size,
        "objectives": {
            name: [{"kind": s.kind, "weight": s.weight, "options": dict(s.options)} for s in cfg.objectives]
            for name, cfg in configs.items()
        },
    }
    groups = {label: {name: r["probes"][p] for name, r in rows.items()} for p, label in PROBES.items()}
    payload = write_study(
        out,
        "objectives",
        settings,
        test_data,
        {"validation": validation, "rows": rows, "paired": paired, "pretrain_time_ratio": time_ratio},
        groups,
        floor,
        started,
        f"Fashion-MNIST test accuracy, objectives added to SimCLR, {len(seeds)} seeds",
        ylabel=ACCURACY_YLABEL,
        reference_label=ACCURACY_REFERENCE,
    )
    out = Path(out)
    text = report(payload)
    with replacing(out / "objectives.md") as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"wrote {', '.join(str(out / f) for f in FILES)} in {payload['wall_seconds']:.0f} s")
    return payload


def report(payload: Mapping[str, Any]) -> str:
    """The Markdown tables of a payload: test accuracies per seed, paired differences and costs, validation."""
    rows, paired, val = payload["rows"], payload["paired"], payload["validation"]
    lines = [
        f"Test accuracy (%), {len(payload['seeds'])} seeds ({', '.join(map(str, payload['seeds']))}), Fashion-MNIST "
        f"test set ({payload['dataset']['test']} images), pre-training subset {payload['train_size']} images, "
        f"{payload['epochs']} epochs, SSL views from the augmentation pipeline:",
        "",
        *accuracy_table(rows, payload["random_init"]),
    ]
    lines += [
        "",
        f"Paired difference row - {BASE} (same seed: same initialisation, data order and SSL views), points, mean "
        "[95 % t-interval]; pre-training time over SimCLR's in this run:",
        "",
        "| row | linear probe | k-NN probe | pre-training time ratio |",
        "|---|---|---|---:|",
    ]
    for name, d in paired.items():
        lines.append(f"| {name} | {ci(d['linear'])} | {ci(d['knn'])} | {payload['pretrain_time_ratio'][name]:.2f}x |")
    chosen, tried = val["chosen"], val["tried"]
    weights = ", ".join(
        f"{LABELS[k]} {chosen[k]:g} (tried {', '.join(f'{w:g}' for w in ws)})" for k, ws in tried["weights"].items()
    )
    lines += [
        "",
        f"Chosen on the validation split ({payload['validation_size']} images of the training file, seeds "
        f"{', '.join(map(str, val['seeds']))}; the test set not read): weights {weights}; linear-probe L2 penalty "
        f"{chosen['probe_weight_decay']:g} (tried {', '.join(f'{v:g}' for v in tried['probe_weight_decay'])}).",
        "",
        *validation_table(payload),
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.objectives", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2, 3, 4], help="test seeds: count or list (default 5)")
    p.add_argument("--data", default=None, metavar="DIR", help="a folder holding Fashion-MNIST's four IDX files")
    p.add_argument("--device", type=parse_device, default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: usable cores)")
    p.add_argument("--out", default="results/objectives")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 128 images, 1 epoch, a tiny CNN, one weight per objective"
    )
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; a mistake in the options, the data or ``--out`` prints one line and returns 2."""
    args = build_parser().parse_args(argv)
    set_threads(args.threads)
    try:
        benchmark(
            seeds=args.seeds,
            validation_seeds=VALIDATION_SEEDS[:1] if args.quick else VALIDATION_SEEDS,
            sizes=QUICK if args.quick else FULL,
            epochs=1 if args.quick else EPOCHS,
            weights={k: ws[:1] for k, ws in WEIGHTS.items()} if args.quick else WEIGHTS,
            device=args.device,
            out=args.out,
            data=args.data,
            progress=not args.no_progress,
        )
    except (OSError, ValueError, ImportError) as err:
        print(f"benchmarks.objectives: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
