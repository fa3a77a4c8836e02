"""What E-SSL costs per training step: SimCLR against E-SimCLR variants, wall time of one full step.

One step is one call of the toolkit's training loop (:func:`benchmarks.toolkit.pretrain_loop`, one epoch of one
batch): the two SimCLR views and the extra E-SSL view are augmented, the backbone, projector and E-SSL head run
forward, the loss runs backward and the optimiser steps. Variants, each with its own model, optimiser and
generator (every backbone starts from the same weights):

- ``simclr``: SimCLR alone (two views);
- ``all``: + E-SSL, all four rotations of a half-size extra view (the reference E-SimCLR);
- ``random``: + E-SSL, one random rotation per image of the half-size view (``mode="random"``);
- ``balanced``: as ``random`` with ``balanced=True`` (every rotation on a quarter of the batch);
- ``all_full``, ``random_full``: as ``all`` and ``random`` with the extra view at full size.

Two models, each with its own recipe:

- ``resnet18``: ResNet-18 with the CIFAR stem at 32 px (the reference CIFAR-10 recipe of
  :mod:`benchmarks.cifar10`: its view pipelines, projector 512-2048-2048, cross-view InfoNCE, SGD, reference head
  512-2048-2048-4, 16 px extra view), uint8 input batches;
- ``demo_cnn``: the small CNN of the demo (:mod:`benchmarks.demo`, width 16) at its 16 px images (NT-Xent, AdamW, head
  64-256-256-4, 8 px extra view), float input batches;
- ``fashion_cnn``: the same CNN on the demo's Fashion-MNIST recipe (``--dataset fashion-mnist``: 28 px gray
  images, 14 px extra view), the runs of :mod:`benchmarks.fashion_mnist`.

Every view is made by the library's pipelines (:mod:`essl_aug.views`; the extra view is the reference,
:func:`essl_aug.views.extra_view`) and the E-SSL term is the library's :class:`~essl_aug.objectives.ESSL`. The inputs
are random images (the time of a step does not depend on their content). 1 thread, glibc's mmap
threshold raised, as :mod:`benchmarks.speed`; the transform call is timed as that benchmark times an op
(``torch.utils.benchmark``), a step with ``time.perf_counter`` after one warm-up step per case (a ResNet-18 step
lasts seconds). Rounds are repeated with every variant of every model interleaved, and the medians over rounds
are reported. A variant's ratio is its step time over the SimCLR step of the same model in the same round, in wall
time and in CPU time of the process (which a loaded machine disturbs less). The transform share is the wall time
of the :class:`~essl_aug.EquivariantTransform` call alone (on an extra view of the step's shape) over the
variant's wall step time, in the same round.

Usage (from the repository root)::

    python -m benchmarks.step_cost            # full run: benchmarks/results/step_cost.{json,md,png}
    python -m benchmarks.step_cost --quick    # seconds: tiny batches, one round (CI smoke test)
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

from benchmarks import speed
from benchmarks.cifar10 import VIEW, Recipe
from benchmarks.toolkit.demo import DATASETS, run_demo
from benchmarks.toolkit.models import SmallCNN, projector
from benchmarks.toolkit.pretrain import PretrainConfig, pretrain_loop
from benchmarks.toolkit.report import environment, pyplot, rounded
from benchmarks.toolkit.resnet import CifarResNet18
from benchmarks.toolkit.simclr import info_nce_cross_view, nt_xent
from benchmarks.toolkit.views import output_shape
from essl_aug import EquivariantTransform
from essl_aug.objectives import ESSL, ESSLOnViews, Objectives
from essl_aug.transform import Mode
from essl_aug.views import TwoViews, ViewPipeline

FAMILY = "rotation"
THREADS = 1  # torch threads of the steps (torch.utils.benchmark times the transform call with 1 thread too)
MODELS = ("resnet18", "demo_cnn", "fashion_cnn")
#: Batch sizes of the full run: the demo's own, and 32 for the ResNet-18 (a step of its recipe's 512 takes minutes on
#: one CPU thread; the E-SSL share of a step hardly depends on the batch, as every part of it grows with the batch).
_DEMO_BATCH = int(inspect.signature(run_demo).parameters["batch_size"].default)
BATCH = {"resnet18": 32, "demo_cnn": _DEMO_BATCH, "fashion_cnn": _DEMO_BATCH}
QUICK_BATCH = {"resnet18": 4, "demo_cnn": 8, "fashion_cnn": 8}
MODEL_LABELS = {
    "resnet18": "ResNet-18 (CIFAR stem), 32 px",
    "demo_cnn": "demo CNN, 16 px",
    "fashion_cnn": "demo CNN, Fashion-MNIST 28 px gray",
}
_DEMO_WIDTH = int(inspect.signature(run_demo).parameters["width"].default)


@dataclass(frozen=True)
class Variant:
    """One training step to time: SimCLR (``mode is None``) or SimCLR + E-SSL with these transform settings."""

    name: str
    label: str
    short: str
    mode: Mode | None = None
    balanced: bool = False
    full_size: bool = False
    #: E-SSL on this share of the batch (``ESSL(batch_fraction=...)``).
    fraction: float = 1.0
    #: The extra view's side in pixels instead of the recipe's (a smaller view).
    extra_px: int | None = None
    #: No extra view: both SSL views turned alike, the head on their features (:class:`ESSLOnViews`).
    on_views: bool = False


VARIANTS = (
    Variant("simclr", "SimCLR", "SimCLR"),
    Variant("all", "+ E-SSL, all 4 rotations, half-size view (reference)", "all 4, half\n(reference)", "all"),
    Variant("random", "+ E-SSL, 1 random rotation per image, half-size view", "1 random,\nhalf", "random"),
    Variant(
        "balanced",
        "+ E-SSL, 1 rotation per image, balanced, half-size view",
        "1 balanced,\nhalf",
        "random",
        balanced=True,
    ),
    Variant("all_full", "+ E-SSL, all 4 rotations, full-size view", "all 4,\nfull", "all", full_size=True),
    Variant(
        "random_full",
        "+ E-SSL, 1 random rotation per image, full-size view",
        "1 random,\nfull",
        "random",
        full_size=True,
    ),
    Variant(
        "quarter_all", "+ E-SSL, all 4 rotations of a quarter of the batch", "all 4,\n1/4 batch", "all", fraction=0.25
    ),
    Variant(
        "quarter_one",
        "+ E-SSL, 1 rotation (balanced) of a quarter of the batch",
        "1 balanced,\n1/4 batch",
        "random",
        balanced=True,
        fraction=0.25,
    ),
    Variant("small_all", "+ E-SSL, all 4 rotations, 8 px view", "all 4,\n8 px", "all", extra_px=8),
    Variant(
        "on_views",
        "+ E-SSL on the SSL views turned alike (no extra view)",
        "views\nturned",
        "random",
        balanced=True,
        on_views=True,
    ),
)
VARIANT_NAMES = tuple(v.name for v in VARIANTS)


@dataclass
class StepCase:
    """A ready training step of one (model, variant): ``step()`` runs it, ``transform()`` the transform alone."""

    model: str
    variant: Variant
    batch: int
    image_px: int
    essl_px: int | None
    head_hidden: tuple[int, ...] | None
    channels: int
    backbone: nn.Module
    essl: ESSL | None
    step: Callable[[], object]
    transform: Callable[[], object] | None


@dataclass
class _Setup:
    """The pieces of a model's recipe that its variants share (fresh modules per call)."""

    backbone: nn.Module
    features: int
    projector: nn.Module
    ssl_loss: Callable[[Tensor, Tensor], Tensor]
    optimizer: Callable[[list[nn.Parameter], int], torch.optim.Optimizer]
    head_hidden: tuple[int, ...]
    weight: float
    view: ViewPipeline
    extra_view: ViewPipeline
    image_px: int
    essl_px: int
    uint8: bool
    channels: int = 3


def _setup(model: str, full_size: bool, extra_px: int | None = None) -> _Setup:
    """``model``'s recipe, with the extra view at full size, at ``extra_px`` or at the recipe's size."""
    if model == "resnet18":
        ref = Recipe()
        extra = ref.extra_view(32 if full_size else extra_px)
        resnet = CifarResNet18(width=ref.width)
        return _Setup(
            backbone=resnet,
            features=resnet.out_features,
            projector=projector(resnet.out_features, 2048, 2048, out_norm=True),
            ssl_loss=partial(info_nce_cross_view, temperature=ref.temperature),
            optimizer=lambda params, batch: torch.optim.SGD(
                params, lr=ref.base_lr * batch / 256, momentum=0.9, weight_decay=ref.weight_decay
            ),
            head_hidden=ref.essl.hidden,  # the reference CIFAR-10 head, 2048-2048
            weight=ref.weight,
            view=VIEW,
            extra_view=extra,
            image_px=32,
            essl_px=_side(extra, 32),
            uint8=True,
        )
    if model in ("demo_cnn", "fashion_cnn"):
        cfg = PretrainConfig()
        data = DATASETS["digits" if model == "demo_cnn" else "fashion-mnist"]
        px, channels = data.size, data.channels
        size = px if full_size else extra_px
        block = cfg.block if size is None else dataclasses.replace(cfg, essl={"crop_size": size}).block
        extra = block.extra_view(px, photometric=cfg.extra_photometric, normalize=None)
        net = SmallCNN(channels, _DEMO_WIDTH)
        return _Setup(
            backbone=net,
            features=net.out_features,
            projector=projector(net.out_features),
            ssl_loss=partial(nt_xent, temperature=cfg.temperature),
            optimizer=lambda params, batch: torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
            head_hidden=cfg.block.hidden,
            weight=cfg.block.weight,
            view=data.view,
            extra_view=extra,
            image_px=px,
            essl_px=_side(extra, px),
            uint8=False,
            channels=channels,
        )
    raise ValueError(f"`model` must be one of {MODELS}, got {model!r}.")


def _side(pipeline: ViewPipeline, px: int) -> int:
    """The side of the views ``pipeline`` makes of ``px`` x ``px`` images."""
    return output_shape(pipeline, (1, 1, px, px))[-1]


def build_step(model: str, variant: Variant, batch: int, seed: int = 0) -> StepCase:
    """The training step of ``variant`` for ``model`` on a random batch of ``batch`` images.

    Every case built with the same ``seed`` starts from the same backbone and projector weights; the global
    random state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        r = _setup(model, variant.full_size, variant.extra_px)
        backbone, proj = r.backbone, r.projector
        gen = torch.Generator().manual_seed(seed)
        essl: ESSL | None = None
        params = [*backbone.parameters(), *proj.parameters()]
        if variant.on_views:
            essl = ESSLOnViews(FAMILY, r.features, weight=r.weight, hidden=r.head_hidden, balanced=variant.balanced)
            params += list(essl.parameters())
        elif variant.mode is not None:
            transform = EquivariantTransform(FAMILY, mode=variant.mode, balanced=variant.balanced)
            essl = ESSL(transform, r.features, weight=r.weight, hidden=r.head_hidden, batch_fraction=variant.fraction)
            params += list(essl.parameters())
        shape = (batch, r.channels, r.image_px, r.image_px)
        if r.uint8:
            data = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
        else:
            data = torch.rand(shape, generator=gen)
    optimizer = r.optimizer(params, batch)
    views, extra = TwoViews(r.view), r.extra_view
    objectives = None if essl is None else Objectives({"essl": essl})
    lr = float(optimizer.param_groups[0]["lr"])

    def step() -> object:
        return pretrain_loop(
            backbone,
            proj,
            data,
            views=views,
            ssl_loss=r.ssl_loss,
            optimizer=optimizer,
            lr=lambda _step: lr,
            epochs=1,
            batch_size=batch,
            generator=gen,
            objectives=objectives,
            extra=lambda x, g: extra(x, g)[0],
        )

    transform_call: Callable[[], object] | None = None
    if isinstance(essl, ESSLOnViews):
        made = views(data, torch.Generator().manual_seed(seed + 1))[0]
        transform_call = partial(essl.prepare_views, made, gen)
    elif essl is not None:
        extra_view = extra(data, torch.Generator().manual_seed(seed + 1))[0]
        if variant.fraction < 1:
            extra_view = extra_view[: max(1, math.ceil(variant.fraction * batch))]
        transform_call = partial(essl.transform, extra_view, gen)
    return StepCase(
        model=model,
        variant=variant,
        batch=batch,
        image_px=r.image_px,
        essl_px=None if essl is None or variant.on_views else r.essl_px,
        head_hidden=None if essl is None else r.head_hidden,
        channels=r.channels,
        backbone=backbone,
        essl=essl,
        step=step,
        transform=transform_call,
    )


# -- timing ------------------------------------------------------------------------------------------------------------


def _step_ms(step: Callable[[], object], min_run_time: float) -> tuple[float, float]:
    """Medians of back-to-back training steps, run until ``min_run_time`` has passed (at least one): wall and CPU
    milliseconds per step.

    A step of the ResNet-18 lasts seconds, so the timer's overhead is negligible and ``blocked_autorange``'s extra
    untimed run per call (its block-size estimate) would double the run time: the steps are timed with
    ``time.perf_counter``, and every case runs one untimed warm-up step before the first round. The CPU time of the
    process (``time.process_time``; one torch thread) does not count the time the step waits for a core on a loaded
    machine.
    """
    wall: list[float] = []
    cpu: list[float] = []
    start = time.perf_counter()
    while True:
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        t1, c1 = time.perf_counter(), time.process_time()
        wall.append(t1 - t0)
        cpu.append(c1 - c0)
        if t1 - start >= min_run_time:
            return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(THREADS)
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    variants = [v for v in VARIANTS if v.name in args.variants]
    if variants[0].name != "simclr":
        variants.insert(0, VARIANTS[0])  # the ratios need the SimCLR step
    cases = [build_step(m, v, args.batch[m], args.seed) for m in args.models for v in variants]
    cpu = torch.device("cpu")
    for case in cases:
        case.step()  # warm-up: lazy initialisation, optimiser state, allocator
    print(f"  warm-up done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    steps: list[list[float]] = [[] for _ in cases]
    cpu_steps: list[list[float]] = [[] for _ in cases]
    transforms: list[list[float]] = [[] for _ in cases]
    for r in range(args.repeats):
        for i, case in enumerate(cases):  # interleaved: every variant of every model, every round
            wall, cpu_ms = _step_ms(case.step, args.min_run_time)
            steps[i].append(wall)
            cpu_steps[i].append(cpu_ms)
            if case.transform is not None:
                transforms[i].append(speed.time_call(case.transform, cpu, args.min_run_time)[0])
        print(f"  round {r + 1}/{args.repeats} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    simclr = {c.model: i for i, c in enumerate(cases) if c.variant.mode is None}
    results = []
    for i, case in enumerate(cases):
        base = simclr[case.model]
        ratios = [s / b for s, b in zip(steps[i], steps[base], strict=True)]
        cpu_ratios = [s / b for s, b in zip(cpu_steps[i], cpu_steps[base], strict=True)]
        row: dict = {
            "model": case.model,
            "variant": case.variant.name,
            "label": case.variant.label,
            "mode": case.variant.mode,
            "balanced": case.variant.balanced,
            "batch_fraction": case.variant.fraction,
            "on_views": case.variant.on_views,
            "batch": case.batch,
            "image_px": case.image_px,
            "essl_px": case.essl_px,
            "head_hidden": None if case.head_hidden is None else list(case.head_hidden),
            "step_ms": statistics.median(steps[i]),
            "ratio_to_simclr": statistics.median(ratios),
            "step_rounds_ms": steps[i],
            "step_cpu_ms": statistics.median(cpu_steps[i]),
            "cpu_ratio_to_simclr": statistics.median(cpu_ratios),
            "step_cpu_rounds_ms": cpu_steps[i],
            "transform_ms": None,
            "transform_share": None,
            "transform_rounds_ms": None,
        }
        if transforms[i]:
            row["transform_ms"] = statistics.median(transforms[i])
            row["transform_share"] = statistics.median(t / s for t, s in zip(transforms[i], steps[i], strict=True))
            row["transform_rounds_ms"] = transforms[i]
        results.append(row)
    shares = [r["transform_share"] for r in results if r["model"] == "resnet18" and r["transform_share"] is not None]
    return {
        "machine": {**speed.machine(THREADS, cpu), "load_average_start": load_start},
        "versions": environment(),
        "command": args.command,
        "family": FAMILY,
        "repeats": args.repeats,
        "min_run_time_s": args.min_run_time,
        "batch": {m: args.batch[m] for m in args.models},
        "models": {m: MODEL_LABELS[m] for m in args.models},
        "target": {
            "transform_share_below": 0.01,
            "at": "resnet18, 32 px, CPU",
            "holds": (max(shares) < 0.01) if shares else None,
            "max_share": max(shares) if shares else None,
        },
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "wall_s": time.perf_counter() - started,
        "results": results,
    }


# -- reporting ---------------------------------------------------------------------------------------------------------


def _load(values: Sequence[float] | None) -> str:
    return "n/a" if values is None else " ".join(f"{v:.2f}" for v in values)


def table(report: dict) -> str:
    """A Markdown summary: the machine and load, then one row per (model, variant)."""
    m = report["machine"]
    target = report["target"]
    lines = [
        f"Step cost of E-SSL ({report['family']}), `{report['command']}`, {report['date']}, "
        f"{report['wall_s']:.0f} s wall time.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['threads']} thread(s); load average (1, 5, 15 min) "
        f"{_load(m['load_average_start'])} at the start, {_load(m['load_average'])} at the end. "
        f"Medians over {report['repeats']} interleaved rounds; batch "
        + ", ".join(f"{b} ({k})" for k, b in report["batch"].items())
        + ".",
        "",
        "| model | variant | extra view | head | step ms | ratio to SimCLR | CPU ms | CPU ratio | transform ms "
        "| transform share |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["results"]:
        essl = row["variant"] != "simclr"
        view = f"{row['essl_px']} px" if row["essl_px"] is not None else "(the SSL views)" if essl else "-"
        head = "-".join(str(h) for h in row["head_hidden"]) if essl else "-"
        t_ms = f"{row['transform_ms']:.3f}" if essl else "-"
        share = f"{100 * row['transform_share']:.2g} %" if essl else "-"
        lines.append(
            f"| {report['models'][row['model']]} | {row['label']} | {view} | {head} | {row['step_ms']:.1f} | "
            f"{row['ratio_to_simclr']:.2f}x | {row['step_cpu_ms']:.1f} | {row['cpu_ratio_to_simclr']:.2f}x | {t_ms} | "
            f"{share} |"
        )
    if target["holds"] is not None:
        verdict = "holds" if target["holds"] else "does not hold"
        lines += [
            "",
            f"Target (the transform under 1 % of an E-SSL step, {target['at']}): {verdict}; "
            f"largest share {100 * target['max_share']:.2g} %.",
        ]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Bar chart of the step's wall time over the SimCLR step, one bar per variant per model (a dash: CPU time)."""
    plt = pyplot()
    rows = report["results"]
    models = list(report["models"])
    variants = [v for v in VARIANTS if any(r["variant"] == v.name for r in rows)]
    by_key = {(r["model"], r["variant"]): r for r in rows}
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(1.6 * len(variants) + 2, 4))
    for j, model in enumerate(models):
        xs = [i + (j - (len(models) - 1) / 2) * width for i in range(len(variants))]
        vals = [by_key[model, v.name]["ratio_to_simclr"] if (model, v.name) in by_key else math.nan for v in variants]
        bars = ax.bar(xs, vals, width * 0.9, label=f"{report['models'][model]}, batch {report['batch'][model]}")
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
        cpu = [
            by_key[model, v.name]["cpu_ratio_to_simclr"] if (model, v.name) in by_key else math.nan for v in variants
        ]
        ax.plot(xs, cpu, "k_", ms=12, mew=1.5, label="CPU-time ratio" if j == 0 else None)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(range(len(variants)), [v.short for v in variants], fontsize=8)
    ax.set_ylabel("step time / SimCLR step")
    ax.set_ylim(0, 1.12 * max(r[k] for r in rows for k in ("ratio_to_simclr", "cpu_ratio_to_simclr")))
    m = report["machine"]
    load = _load(m["load_average_start"])
    ax.set_title(
        f"E-SSL ({report['family']}) cost per training step, {m['threads']} CPU thread(s), load {load} at the start",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI smoke run: tiny batches, one round, short timings")
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds; medians over rounds are reported")
    p.add_argument("--min-run-time", type=float, default=0.5, help="seconds of steps (and of transform calls) per case")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--variants", nargs="+", default=list(VARIANT_NAMES), choices=VARIANT_NAMES)
    p.add_argument("--batch-resnet18", type=int, default=None, help=f"default {BATCH['resnet18']}")
    p.add_argument("--batch-demo-cnn", type=int, default=None, help=f"default {BATCH['demo_cnn']}")
    p.add_argument("--batch-fashion-cnn", type=int, default=None, help=f"default {BATCH['fashion_cnn']}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", "--out", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--default-malloc", action="store_true", help="keep glibc's default mmap threshold")
    args = p.parse_args(argv)
    batch = QUICK_BATCH if args.quick else BATCH
    args.batch = {
        "resnet18": args.batch_resnet18 or batch["resnet18"],
        "demo_cnn": args.batch_demo_cnn or batch["demo_cnn"],
        "fashion_cnn": args.batch_fashion_cnn or batch["fashion_cnn"],
    }
    if args.quick:
        args.repeats, args.min_run_time = 1, 0.01
    args.command = " ".join(["python -m benchmarks.step_cost", *(sys.argv[1:] if argv is None else argv)])
    return args


def main(argv: list[str] | None = None) -> dict:
    return speed.report_run(_parse(argv), argv, lambda args: rounded(run(args)), "step_cost", table, plot)  # 6 digits


if __name__ == "__main__":
    main()
