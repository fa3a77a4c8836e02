"""How cheap can E-SSL be made? Cheaper forms of the E-SSL term against SimCLR, paired by seed, with their cost.

The Fashion-MNIST recipe of :mod:`benchmarks.fashion_mnist` (the small CNN, 28x28 gray, the class-balanced 5,000-image
pre-training subset the probes also train on) with the settings its validation split chose (crop scale, epochs, the
E-SSL weight lambda and the linear probe's L2 penalty, read from its report ``--headline``; the test set was not read
to choose them). The variants' own knobs are set beforehand, not tuned. Rows, each a library option of the E-SSL
term (the run's ``essl:`` block, :mod:`essl_aug.config`):

- SimCLR alone;
- the reference: all four rotations of the reference extra view (14 px) per image (``mode: all``);
- one rotation per image, balanced (``mode: random, balanced: true``);
- a quarter of the batch, all four rotations (``batch_fraction: 0.25``);
- a quarter of the batch, one rotation per image (``batch_fraction: 0.25, mode: random, balanced: true``);
- a smaller extra view, 8 px, all four rotations (``crop_size: 8``);
- no extra view and no extra backbone pass: both SSL views of an image turned by the same quarter turn, the head on
  each view's features (``source: views``, :class:`~essl_aug.objectives.ESSLOnViews`; not the paper's E-SSL).

Every row is trained for every seed (within a seed: the same initialisation, data order and SSL views,
:func:`~benchmarks.toolkit.pretrain.seeded_streams`) and scored on the 10,000-image test set by the linear and the
weighted k-NN probes; each variant is compared with SimCLR by the paired difference per seed and its 95 %
t-interval. The cost of each row is measured in the same run, before the training (the machine otherwise idle):
the median step time over SimCLR's (the rows' steps interleaved, one thread) and the bytes the step saves for the
backward pass (autograd's saved tensors, the activation memory that sets a GPU's peak) over SimCLR's.

A variant **keeps the reference gain** when its linear-probe interval excludes 0 and overlaps the reference's; the
report names the cheapest that does at 1.10x the SimCLR step or less, or says that none does.

Writes ``cheap_essl.json``, ``cheap_essl.md``, ``cheap_essl.png`` (test accuracies) and
``cheap_essl_tradeoff.png`` (gain against step cost).

Usage (from the repository root)::

    nice -n 10 python -m benchmarks.cheap_essl --out benchmarks/results/cheap_essl --workers 2   # about an hour
    python -m benchmarks.cheap_essl --quick --out /tmp/cheap                                        # a smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.fashion_mnist import (
    KNN_K,
    KNN_TEMPERATURE,
    QUICK,
    TRAIN_SIZE,
    Sizes,
    accuracy_table,
    ci,
    recipe,
)
from benchmarks.toolkit.data import LabelledImages, load_fashion_mnist
from benchmarks.toolkit.options import add_run_options, parse_seeds, positive_int, reported, set_threads
from benchmarks.toolkit.pretrain import PretrainConfig, pretrain
from benchmarks.toolkit.probe import knn_accuracy, linear_accuracy
from benchmarks.toolkit.report import check_output_dir, pyplot, replacing, save_figure, to_json
from benchmarks.toolkit.study import paired_difference, random_init_accuracy, run_study, write_study

#: The headline's report, whose validation choices every row takes.
HEADLINE = Path(__file__).resolve().parent / "results" / "fashion_mnist" / "fashion_mnist.json"
BASE, REFERENCE = "SimCLR", "reference: all 4 rotations"
#: Each E-SSL row's keys of the ``essl:`` block beside ``transform: rotation`` and the chosen ``lambda``.
VARIANTS: dict[str, dict[str, Any]] = {
    REFERENCE: {"mode": "all"},
    "1 rotation per image (balanced)": {"mode": "random", "balanced": True},
    "quarter of the batch, all 4 rotations": {"mode": "all", "batch_fraction": 0.25},
    "quarter of the batch, 1 rotation": {"mode": "random", "balanced": True, "batch_fraction": 0.25},
    "8 px extra view, all 4 rotations": {"mode": "all", "crop_size": 8},
    "SSL views turned alike, no extra pass": {"source": "views", "balanced": True},
}
#: The step cost at or below which a variant that keeps the gain is the recommendation.
BUDGET = 1.10
#: The sizes of the full run (the Fashion-MNIST headline's).
FULL = Sizes()
FILES = ("cheap_essl.json", "cheap_essl.md", "cheap_essl.png", "cheap_essl_tradeoff.png")


def headline_choices(path: Path | str = HEADLINE) -> dict[str, Any]:
    """The settings the headline's validation split chose (``scale``, ``epochs``, ``lambda_simclr``,
    ``probe_weight_decay``) and the seeds it chose them with."""
    try:
        validation = json.loads(Path(path).read_text(encoding="utf-8"))["validation"]
        chosen = validation["chosen"]
        return {k: chosen[k] for k in ("scale", "epochs", "lambda_simclr", "probe_weight_decay")} | {
            "validation_seeds": validation["seeds"]
        }
    except (OSError, KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"`--headline` {path}: not a Fashion-MNIST headline report ({err!r})") from err


def rows(
    sizes: Sizes, chosen: Mapping[str, Any], epochs: int | None = None, variants: Sequence[str] = tuple(VARIANTS)
) -> dict[str, PretrainConfig]:
    """SimCLR and each of ``variants`` (names of :data:`VARIANTS`) with the chosen settings (``epochs`` overrides
    theirs)."""
    scale, n = chosen["scale"], epochs or chosen["epochs"]
    block = {"transform": "rotation", "lambda": chosen["lambda_simclr"]}
    return {
        BASE: recipe(sizes, scale, n),
        **{name: recipe(sizes, scale, n, essl={**block, **VARIANTS[name]}) for name in variants},
    }


def step_costs(
    configs: Mapping[str, PretrainConfig], images: torch.Tensor, steps: int = 12, rounds: int = 3
) -> dict[str, dict[str, float]]:
    """Each row's median step time and largest per-step saved-for-backward bytes, over SimCLR's.

    Every round trains each row for ``steps`` steps on the same images (one thread, the rows in turn, so the
    machine's state is shared); the first two steps of a run are not timed.
    """
    base = configs[BASE]
    batch = base.batch_size
    data = images[: batch * steps]
    times: dict[str, list[float]] = {name: [] for name in configs}
    saved: dict[str, int] = dict.fromkeys(configs, 0)
    for _ in range(rounds):
        for name, cfg in configs.items():
            stamps: list[float] = []
            step_bytes = [0]

            def pack(t: torch.Tensor, step_bytes: list[int] = step_bytes) -> torch.Tensor:
                step_bytes[0] += t.numel() * t.element_size()
                return t

            def on_step(stamps: list[float] = stamps, step_bytes: list[int] = step_bytes, name: str = name) -> None:
                stamps.append(time.perf_counter())
                saved[name] = max(saved[name], step_bytes[0])
                step_bytes[0] = 0

            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                pretrain(data, dataclasses.replace(cfg, epochs=1, warmup_epochs=0, seed=0), on_step=on_step)
            times[name] += [b - a for a, b in itertools.pairwise(stamps[2:])]
    base_time, base_bytes = statistics.median(times[BASE]), saved[BASE]
    return {
        name: {
            "step_ms": 1e3 * statistics.median(t),
            "step_ratio": statistics.median(t) / base_time,
            "saved_mb": saved[name] / 2**20,
            "memory_ratio": saved[name] / base_bytes,
        }
        for name, t in times.items()
    }


def verdict(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Which variants keep the reference gain (linear interval excludes 0 and overlaps the reference's), and the
    cheapest of those at :data:`BUDGET` or less (``None`` when none is)."""
    paired, costs = payload["paired"], payload["costs"]
    ref_lo, ref_hi = paired[REFERENCE]["linear"]["ci95"]
    keeps = []
    for name in payload["variants"]:
        lo, hi = paired[name]["linear"]["ci95"]
        if lo > 0 and lo <= ref_hi and hi >= ref_lo:
            keeps.append(name)
    cheap = sorted((costs[n]["step_ratio"], n) for n in keeps if n != REFERENCE and costs[n]["step_ratio"] <= BUDGET)
    return {"keeps_gain": keeps, "recommended": cheap[0][1] if cheap else None, "budget": BUDGET}


def benchmark(
    seeds: Sequence[int] = tuple(range(8)),
    sizes: Sizes = FULL,
    headline: Path | str = HEADLINE,
    epochs: int | None = None,
    device: torch.device | str = "cpu",
    out: Path | str = "results/cheap_essl",
    data: Path | str | None = None,
    progress: bool = True,
    workers: int = 1,
    train_size: int = TRAIN_SIZE,
    variants: Sequence[str] = tuple(VARIANTS),
) -> dict[str, Any]:
    """Measure the costs, then train and probe every row for every seed; returns the payload (also written)."""
    started = time.perf_counter()
    check_output_dir(out, FILES)
    if len(seeds) < 2:
        raise ValueError(f"`--seeds` needs at least 2 seeds for a paired confidence interval, got {list(seeds)}")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or REFERENCE not in variants:
        raise ValueError(f"`--variants` must name the reference and rows of {sorted(VARIANTS)}, got {list(variants)}")
    chosen = headline_choices(headline)
    configs = rows(sizes, chosen, epochs, variants)
    test: LabelledImages = load_fashion_mnist(data, train_size, limit=sizes.limit)
    with torch.random.fork_rng(devices=[]):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            costs = step_costs(configs, test.train_x, steps=4 if sizes.limit else 12, rounds=1 if sizes.limit else 3)
        finally:
            torch.set_num_threads(threads)
    penalty = chosen["probe_weight_decay"]
    probes = {
        "linear": functools.partial(linear_accuracy, weight_decay=penalty),
        "knn": functools.partial(knn_accuracy, k=min(KNN_K, len(test.train_x)), temperature=KNN_TEMPERATURE),
    }
    results = run_study(test, {"test": configs}, seeds, device, progress, "test", probes, workers=workers)["test"]
    paired = {
        name: {
            p: paired_difference(results[BASE]["probes"][p]["accuracies"], results[name]["probes"][p]["accuracies"])
            for p in probes
        }
        for name in variants
    }
    floor = random_init_accuracy(test, sizes.width, seeds, device)
    settings = {
        "seeds": list(seeds),
        "train_size": len(test.train_x),
        "epochs": configs[BASE].epochs,
        "chosen": chosen,
        "variants": {name: VARIANTS[name] for name in variants},
        "knn": {"k": KNN_K, "temperature": KNN_TEMPERATURE},
        "width": sizes.width,
        "batch_size": sizes.batch_size,
        "workers": workers,
    }
    extra = {"costs": costs, "paired": paired}
    groups = {"test": {n: r["probes"]["linear"] for n, r in results.items()}}
    payload = write_study(
        out,
        "cheap_essl",
        settings,
        test,
        {"rows": results},
        groups,
        floor,
        started,
        f"Fashion-MNIST, cheaper E-SSL forms, {len(seeds)} seeds",
        extra,
    )
    payload["verdict"] = verdict(payload)
    text = render(payload, Path(out))
    print(text)
    return payload


def recost(path: Path | str, rounds: int = 5) -> dict[str, Any]:
    """Measure the rows' costs of the run reported in ``path`` again (on the machine as it is now, for a run whose
    own measurement other work disturbed), keep the first measurement as ``costs_in_run``, and rewrite the report."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        chosen, names = payload["chosen"], list(payload["variants"])
        sizes = dataclasses.replace(FULL, width=payload["width"], batch_size=payload["batch_size"])
    except (OSError, KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"`--recost` {path}: not a cheap_essl report ({err!r})") from err
    configs = rows(sizes, chosen, payload["epochs"], names)
    images = load_fashion_mnist(None, TRAIN_SIZE).train_x
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        costs = step_costs(configs, images, steps=12, rounds=rounds)
    finally:
        torch.set_num_threads(threads)
    payload.setdefault("costs_in_run", payload["costs"])
    payload["costs"] = costs
    payload["costs_measured"] = f"again after the run, {time.strftime('%Y-%m-%d %H:%M')}, {rounds} rounds"
    payload["verdict"] = verdict(payload)
    with replacing(path) as tmp:
        tmp.write_text(to_json(payload) + "\n", encoding="utf-8")
    text = render(payload, path.parent)
    print(text)
    return payload


def render(payload: Mapping[str, Any], out: Path) -> str:
    """Write ``cheap_essl.md`` and ``cheap_essl_tradeoff.png`` into ``out``; returns the text."""
    text = report(payload)
    with replacing(out / "cheap_essl.md") as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
        plot_tradeoff(tmp.parent / "cheap_essl_tradeoff.png", payload)
    return text


def report(payload: Mapping[str, Any]) -> str:
    """The Markdown tables: accuracies per seed, each variant's paired gain with its costs, and the verdict."""
    rows_, paired, costs, chosen = payload["rows"], payload["paired"], payload["costs"], payload["chosen"]
    verdict_ = payload.get("verdict") or verdict(payload)
    n = len(payload["seeds"])
    lines = [
        f"Test accuracy (%), {n} seeds ({', '.join(map(str, payload['seeds']))}), Fashion-MNIST test set "
        f"({payload['dataset']['test']} images), pre-training subset {payload['train_size']} images, "
        f"{payload['epochs']} epochs:",
        "",
        *accuracy_table(rows_, payload["random_init"]),
        "",
        "Paired difference variant - SimCLR (same seed: same initialisation, data order and SSL views), points, mean "
        "[95 % t-interval], and each row's cost over the SimCLR step:",
        "",
        "| variant | linear probe | k-NN probe | step time | step-time ratio | saved for backward | memory ratio |",
        "|---|---|---|---:|---:|---:|---:|",
        f"| SimCLR | | | {costs[BASE]['step_ms']:.1f} ms | 1.00x | {costs[BASE]['saved_mb']:.1f} MiB | 1.00x |",
    ]
    for name in payload["variants"]:
        c = costs[name]
        lines.append(
            f"| {name} | {ci(paired[name]['linear'])} | {ci(paired[name]['knn'])} | {c['step_ms']:.1f} ms | "
            f"{c['step_ratio']:.2f}x | {c['saved_mb']:.1f} MiB | {c['memory_ratio']:.2f}x |"
        )
    keeps = verdict_["keeps_gain"]
    best = verdict_["recommended"]
    lines += [
        "",
        "Keeps the reference gain (linear interval excludes 0 and overlaps the reference's): "
        + (", ".join(keeps) if keeps else "none")
        + ".",
        (
            f"Cheapest that keeps it at {verdict_['budget']:.2f}x the SimCLR step or less: **{best}** "
            f"({ci(paired[best]['linear'])} linear, {costs[best]['step_ratio']:.2f}x the step)."
            if best
            else f"No variant keeps the reference gain at {verdict_['budget']:.2f}x the SimCLR step or less."
        ),
        "",
        f"Settings chosen on the headline's validation split (seeds {', '.join(map(str, chosen['validation_seeds']))};"
        f" the test set not read): crop scale {chosen['scale']:g}, lambda {chosen['lambda_simclr']:g}, linear-probe "
        f"L2 penalty {chosen['probe_weight_decay']:g}; the variants' knobs set beforehand. Step time: the median of "
        "interleaved training steps on one thread; saved for backward: the largest sum over a step of the tensors "
        "autograd keeps for the backward pass (the activation memory)"
        + (
            f"; measured {payload['costs_measured']} (`--recost`: the in-run measurement, kept as `costs_in_run` in "
            "the JSON, shared the machine with other work)."
            if payload.get("costs_measured")
            else "."
        ),
        "",
        f"Wall time {payload['wall_seconds']:.0f} s, {payload.get('workers', 1)} process(es) of 1 torch thread.",
    ]
    return "\n".join(lines)


def plot_tradeoff(path: Path, payload: Mapping[str, Any]) -> None:
    """Each variant's paired gain (mean and 95 % interval, both probes) against its step-time ratio."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for ax, probe in zip(axes, ("linear", "knn"), strict=True):
        for name in payload["variants"]:
            d, x = payload["paired"][name][probe], payload["costs"][name]["step_ratio"]
            lo, hi = d["ci95"]
            mean = 100 * d["mean"]
            ax.errorbar([x], [mean], yerr=[[mean - 100 * lo], [100 * hi - mean]], fmt="o", capsize=3, label=name)
        ax.axhline(0, color="gray", lw=0.8)
        ax.axvline(BUDGET, color="gray", lw=0.8, ls=":")
        ax.set_xlabel("step time / SimCLR step")
        ax.set_ylabel(f"{'linear' if probe == 'linear' else 'k-NN'}-probe gain over SimCLR (points)")
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"Cheaper E-SSL: gain against cost ({len(payload['seeds'])} paired seeds, 95 % intervals)")
    fig.tight_layout()
    save_figure(fig, path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cheap_essl", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--seeds", type=parse_seeds, default=list(range(8)), help="test seeds: count or list (default 8)")
    p.add_argument("--data", default=None, metavar="DIR", help="a folder holding Fashion-MNIST's four IDX files")
    p.add_argument("--headline", default=str(HEADLINE), help="the Fashion-MNIST headline's JSON (its choices)")
    p.add_argument("--workers", type=positive_int, default=1, help="runs at once, one process each (CPU)")
    p.add_argument("--train-size", type=positive_int, default=TRAIN_SIZE, help="pre-training images (default 5000)")
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs (default: the headline's choice)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), metavar="NAME", help="the rows beside SimCLR")
    p.add_argument("--recost", metavar="JSON", default=None, help="measure the costs of a report again and rewrite it")
    p.add_argument("--render", metavar="JSON", default=None, help="rewrite the tables and the plot of a report")
    add_run_options(p, "benchmarks/results/cheap_essl", "smoke run: 128 images, 1 epoch, a tiny CNN, 2 seeds")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; a mistake in the options, the data or ``--out`` prints one line and returns 2."""
    args = build_parser().parse_args(argv)
    set_threads(args.threads)
    if args.recost:
        return reported("benchmarks.cheap_essl", lambda: recost(args.recost))
    if args.render:
        path = Path(args.render)
        return reported("benchmarks.cheap_essl", lambda: print(render(json.loads(path.read_text()), path.parent)))
    return reported(
        "benchmarks.cheap_essl",
        lambda: benchmark(
            seeds=args.seeds[:2] if args.quick else args.seeds,
            sizes=QUICK if args.quick else FULL,
            headline=args.headline,
            epochs=1 if args.quick else args.epochs,
            device=args.device,
            out=args.out,
            data=args.data,
            progress=not args.no_progress,
            workers=args.workers,
            train_size=args.train_size,
            variants=args.variants,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
