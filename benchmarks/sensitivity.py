"""Where the augmentation-aware objectives claim to help: augmentation sensitivity and transfer, beside in-domain.

Their papers claim gains on tasks that need the augmentation information (AugSelf, EquiMod, SIE) and on transfer
(AugSelf, SER), which in-domain probes do not measure. This benchmark trains every row on the recipe of
:mod:`benchmarks.objectives` (SimCLR, the small CNN, Fashion-MNIST 28x28 gray, the class-balanced 5,000-image
pre-training subset, crops of area 0.2 to 1, flips, brightness and contrast jitter 0.4, 10 epochs) and scores the
frozen features of each trained backbone on:

- **in-domain**: Fashion-MNIST classes, the linear probe and the weighted k-NN probe (as the headline);
- **augmentation sensitivity**: each test image transformed once by torchvision's functional ops with a drawn
  parameter, the parameter predicted from the features by a linear model fitted on the pre-training subset
  transformed the same way (its own draws): the quarter turn (4 classes, accuracy), the horizontal flip (2 classes,
  accuracy), the brightness and the contrast factor (uniform in [0.6, 1.4], the SSL views' range: ridge regression,
  R^2), the crop scale (a square crop of area uniform in [0.2, 1] at a uniform position, resized back to 28 px:
  ridge regression of the area fraction, R^2). One set of draws for every row and seed (paired);
- **transfer**: scikit-learn's 1,797 handwritten digits (8x8, upsampled to 28x28 bilinearly, 1 channel; the fixed
  class-stratified 60 / 40 split of :func:`~benchmarks.toolkit.data.load_digits_rgb`), the linear and k-NN probes.

Rows: SimCLR; + E-SSL rotation (the paper's discrete E-SSL, all four quarter turns of the reference extra view);
+ E-SSL angle (:class:`~essl_aug.objectives.essl.ContinuousESSL`: the angle of a rotation by any angle of the extra
view, regressed); + AugSelf (crop and colour); + EquiMod (:class:`~essl_aug.objectives.EquiMod`: the third pass on the
un-augmented images, its absolute-parameter encoding standardised by the views' statistics); SIE
(:class:`~essl_aug.objectives.SIE`, its own VICReg-based loss with the invariant and equivariant parts: no SimCLR
loss); + SER (:class:`~essl_aug.objectives.SER`, on an intermediate feature map of the CNN). Weights: E-SSL's and
AugSelf's and the linear probe's L2 penalty are those the objectives benchmark chose on its validation split
(``--choices``, its committed report); SIE, the whole loss, has weight 1; the other rows' weights are chosen here on
the same validation split (5,000 other images of the training file, seeds 100 and 101, the in-domain linear probe, the
test set not read), each from :data:`TRIED`. Ridge penalties are chosen within the probe's own training set (its last
20 % held out). Each row is compared with SimCLR by the paired difference per seed and its 95 % t-interval; its cost
is the median training-step time over SimCLR's, measured in the run (:func:`benchmarks.cheap_essl.step_costs`).

Writes ``sensitivity.json``, ``sensitivity.md`` and ``sensitivity.png`` (the paired gains per task).

Usage (from the repository root)::

    nice -n 10 python -m benchmarks.sensitivity --out benchmarks/results/sensitivity --workers 2   # about 20 min
    python -m benchmarks.sensitivity --quick --out /tmp/sensitivity                               # a smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor, nn

from benchmarks.cheap_essl import step_costs
from benchmarks.fashion_mnist import (
    KNN_K,
    KNN_TEMPERATURE,
    QUICK,
    TRAIN_SIZE,
    VALIDATION_SEEDS,
    VALIDATION_SIZE,
    Sizes,
    best,
    ci,
    linear_probes,
    pct,
    recipe,
)
from benchmarks.objectives import EPOCHS, SCALE
from benchmarks.toolkit.data import LabelledImages, load_digits_rgb, load_fashion_mnist
from benchmarks.toolkit.options import add_run_options, parse_seeds, positive_int, reported, set_threads
from benchmarks.toolkit.pretrain import PretrainConfig
from benchmarks.toolkit.probe import extract_features, knn_accuracy, linear_accuracy
from benchmarks.toolkit.report import check_output_dir, pyplot, replacing, save_figure
from benchmarks.toolkit.study import paired_difference, random_init_accuracy, run_study, write_study

#: The objectives benchmark's report: the E-SSL and AugSelf weights and the probe penalty its validation chose.
CHOICES = Path(__file__).resolve().parent / "results" / "objectives" / "objectives.json"
BASE = "SimCLR"
#: Each row's objectives: ``{kind: options}``; kind ``essl`` and ``angle`` are the run's ``essl:`` block (weight
#: key ``lambda``), the others the library's objectives by name (weight key ``weight``).
ROWS: dict[str, dict[str, dict[str, Any]]] = {
    BASE: {},
    "+ E-SSL rotation": {"essl": {"transform": "rotation", "mode": "all"}},
    "+ E-SSL angle (continuous)": {"angle": {"transform": "random_rotation"}},
    "+ AugSelf (crop + colour)": {"augself": {"groups": ["crop", "color"]}},
    "+ EquiMod": {"equimod": {"statistics": "views", "image_size": 28, "hidden": [512, 512]}},
    "SIE (its own loss, no SimCLR)": {"sie": {"groups": ["crop", "color", "flip"], "mlp": [512, 512, 512]}},
    # the small CNN's second block (14 x 14 cells of 2 px, 2 * width channels: ``in_channels`` is set per width)
    "+ SER": {"ser": {"layer": "features.5", "stride": 2}},
}
#: The rows whose objective is the whole loss (the SSL method ``none``: SIE's loss has its own invariance term).
ALONE = {"SIE (its own loss, no SimCLR)"}
#: The weights tried on the validation split for the kinds the objectives benchmark did not choose.
TRIED: dict[str, tuple[float, ...]] = {"angle": (0.4, 1.0), "equimod": (0.5, 1.0), "ser": (0.3, 1.0)}
#: The weights fixed beforehand: an objective that is the whole loss has weight 1.
FIXED: dict[str, float] = {"sie": 1.0}
#: The kinds whose weight the objectives benchmark chose (its report's ``validation.chosen`` key).
CHOSEN_THERE = {"essl": "essl", "augself": "augself"}
#: The sensitivity and transfer tasks: name -> "accuracy" or "r2".
TASKS: dict[str, Literal["accuracy", "r2"]] = {
    "rotation": "accuracy",
    "flip": "accuracy",
    "brightness": "r2",
    "contrast": "r2",
    "crop scale": "r2",
    "digits linear": "accuracy",
    "digits k-NN": "accuracy",
}
#: The in-domain probes.
PROBES = ("linear", "knn")
#: The range of the brightness and contrast factors and of the crop area.
FACTORS, AREAS = (0.6, 1.4), (0.2, 1.0)
#: Ridge penalties tried within each regression probe's training set.
RIDGE = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: The images of the test set transformed for the sensitivity tasks.
SENSITIVITY_TEST = 5000
FULL = Sizes()
FILES = ("sensitivity.json", "sensitivity.md", "sensitivity.png")


@dataclasses.dataclass(frozen=True)
class Task:
    """One evaluation task: images with targets to fit (``train``) and to score (``test``), and the score's kind."""

    kind: Literal["accuracy", "r2"]
    train_x: Tensor
    train_t: Tensor
    test_x: Tensor
    test_t: Tensor


def _per_image(x: Tensor, values: Tensor, op: Any) -> Tensor:
    return torch.stack([op(img, float(v)) for img, v in zip(x, values, strict=True)])


def transformed(x: Tensor, name: str, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``x`` (N, C, H, W) in [0, 1] transformed per image for sensitivity task ``name``, and the targets.

    Example:
        >>> x = torch.rand(3, 1, 8, 8)
        >>> y, t = transformed(x, "rotation", torch.Generator().manual_seed(0))
        >>> all(torch.equal(y[i], torch.rot90(x[i], int(t[i]), (-2, -1))) for i in range(3))
        True
    """
    n = x.shape[0]
    if name == "rotation":
        k = torch.randint(4, (n,), generator=generator)
        return torch.stack([torch.rot90(img, int(q), (-2, -1)) for img, q in zip(x, k, strict=True)]), k
    if name == "flip":
        b = torch.randint(2, (n,), generator=generator)
        return torch.where(b.bool()[:, None, None, None], x.flip(-1), x), b
    if name in ("brightness", "contrast"):
        lo, hi = FACTORS
        f = lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)
        op = TF.adjust_brightness if name == "brightness" else TF.adjust_contrast
        return _per_image(x, f, op), f.float()
    if name == "crop scale":
        h, w = x.shape[-2:]
        area = AREAS[0] + (AREAS[1] - AREAS[0]) * torch.rand(n, generator=generator, dtype=torch.float64)
        side = (area * h * w).sqrt().round().clamp(1, min(h, w)).long()
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
        out, kept = [], []
        for img, s, (a, b) in zip(x, side.tolist(), u.tolist(), strict=True):
            top, left = int(a * (h - s + 1)), int(b * (w - s + 1))
            out.append(TF.resized_crop(img, top, left, s, s, [h, w], antialias=True))
            kept.append(s * s / (h * w))
        return torch.stack(out).clamp(0, 1), torch.tensor(kept, dtype=torch.float32)
    raise ValueError(f"unknown sensitivity task {name!r}; the tasks are {sorted(TASKS)}")


def make_tasks(data: LabelledImages, digits: LabelledImages, test_size: int = SENSITIVITY_TEST) -> dict[str, Task]:
    """The tasks of :data:`TASKS` (the same draws for every run: one seeded generator per task)."""
    tasks: dict[str, Task] = {}
    for i, (name, kind) in enumerate(TASKS.items()):
        if name.startswith("digits"):
            continue
        gen = torch.Generator().manual_seed(1000 + i)
        train_x, train_t = transformed(data.train_x, name, gen)
        test_x, test_t = transformed(data.test_x[:test_size], name, gen)
        tasks[name] = Task(kind, train_x, train_t, test_x, test_t)
    for name in ("digits linear", "digits k-NN"):
        tasks[name] = Task("accuracy", digits.train_x, digits.train_y, digits.test_x, digits.test_y)
    return tasks


def ridge_r2(f_train: Tensor, t_train: Tensor, f_test: Tensor, t_test: Tensor) -> float:
    """R^2 on the test split of a ridge regression on standardised features, its penalty (:data:`RIDGE`) chosen on
    the last 20 % of the training split, then refitted on all of it.

    Example:
        >>> f = torch.randn(200, 4, dtype=torch.float64)
        >>> t = f @ torch.tensor([1.0, -2.0, 0.0, 0.5], dtype=torch.float64)
        >>> round(ridge_r2(f[:150], t[:150], f[150:], t[150:]), 3)
        1.0
    """
    f_train, f_test = f_train.double(), f_test.double()
    t_train, t_test = t_train.double(), t_test.double()
    mean, std = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    a, b = (f_train - mean) / std, (f_test - mean) / std

    def fit(x: Tensor, t: Tensor, penalty: float) -> tuple[Tensor, Tensor]:
        xm, tm = x.mean(0), t.mean()
        xc = x - xm
        w = torch.linalg.solve(xc.T @ xc + penalty * len(x) * torch.eye(x.shape[1], dtype=x.dtype), xc.T @ (t - tm))
        return w, tm - xm @ w

    def r2(x: Tensor, t: Tensor, w: Tensor, c: Tensor) -> float:
        return float(1 - ((x @ w + c - t) ** 2).sum() / ((t - t.mean()) ** 2).sum())

    cut = int(0.8 * len(a))
    penalty = max(RIDGE, key=lambda p: (r2(a[cut:], t_train[cut:], *fit(a[:cut], t_train[:cut], p)), -p))
    return r2(b, t_test, *fit(a, t_train, penalty))


def evaluate(tasks: Mapping[str, Task], penalty: float, backbone: nn.Module) -> dict[str, float]:
    """Every task's score for a trained ``backbone``: accuracy (linear probe with L2 ``penalty``, or k-NN) or R^2."""
    scores: dict[str, float] = {}
    for name, task in tasks.items():
        f_train, f_test = extract_features(backbone, task.train_x), extract_features(backbone, task.test_x)
        if task.kind == "r2":
            scores[name] = ridge_r2(f_train, task.train_t, f_test, task.test_t)
        elif name.endswith("k-NN"):
            k = min(KNN_K, len(f_train))
            scores[name] = knn_accuracy(f_train, task.train_t, f_test, task.test_t, k=k, temperature=KNN_TEMPERATURE)
        else:
            scores[name] = linear_accuracy(f_train, task.train_t, f_test, task.test_t, weight_decay=penalty)
    return scores


def objectives_choices(path: Path | str = CHOICES) -> dict[str, float]:
    """The weights and the probe penalty the objectives benchmark's validation chose (its report ``path``)."""
    try:
        chosen = json.loads(Path(path).read_text(encoding="utf-8"))["validation"]["chosen"]
        return {k: float(chosen[v]) for k, v in CHOSEN_THERE.items()} | {
            "probe_weight_decay": float(chosen["probe_weight_decay"])
        }
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"`--choices` {path}: not an objectives benchmark report ({err!r})") from err


def row(
    sizes: Sizes, epochs: int, kinds: Mapping[str, Mapping[str, Any]], weights: Mapping[str, float], alone: bool = False
) -> PretrainConfig:
    """SimCLR on the recipe's views with the objectives of ``kinds`` (:data:`ROWS`), each at its ``weights``;
    ``alone``: without SimCLR's loss (the objectives are the whole loss)."""
    essl, objectives = None, {}
    for kind, options in kinds.items():
        if kind in ("essl", "angle"):
            essl = {**options, "lambda": weights[kind]}
        else:
            objectives[kind] = {**options, "weight": weights[kind]}
            if kind == "ser":
                objectives[kind]["in_channels"] = 2 * sizes.width  # the SmallCNN's second block
    return recipe(sizes, SCALE, epochs, essl=essl, objectives=objectives, method="none" if alone else "simclr")


def validate(
    data: LabelledImages,
    sizes: Sizes,
    epochs: int,
    tried: Mapping[str, Sequence[float]],
    seeds: Sequence[int],
    device: torch.device | str,
    progress: bool,
    workers: int,
    cache: Path | None,
) -> dict[str, Any]:
    """The weight of each kind of :data:`TRIED` with the best in-domain validation accuracy (its best penalty)."""
    kinds = {kind: options for r in ROWS.values() for kind, options in r.items()}
    plan = {
        kind: {f"weight {w:g}": row(sizes, epochs, {kind: kinds[kind]}, {kind: w}) for w in ws}
        for kind, ws in tried.items()
    }
    results = run_study(
        data,
        plan,
        seeds,
        device,
        progress,
        "validation: weights",
        linear_probes(),
        workers=workers,
        cache=cache,
        cache_tag="validation",
    )
    chosen = {kind: float(best(results[kind], list(results[kind])).split()[-1]) for kind in tried}
    return {"seeds": list(seeds), "tried": {k: list(v) for k, v in tried.items()}, "chosen": chosen, "results": results}


def benchmark(
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    validation_seeds: Sequence[int] = VALIDATION_SEEDS,
    sizes: Sizes = FULL,
    epochs: int = EPOCHS,
    tried: Mapping[str, Sequence[float]] = TRIED,
    rows: Sequence[str] = tuple(ROWS),
    choices: Path | str = CHOICES,
    device: torch.device | str = "cpu",
    out: Path | str = "results/sensitivity",
    data: Path | str | None = None,
    progress: bool = True,
    workers: int = 1,
    cache: Path | str | None = None,
) -> dict[str, Any]:
    """Validate the weights, measure the step costs, train and score every row; returns the payload (also written)."""
    started = time.perf_counter()
    check_output_dir(out, FILES)
    if len(seeds) < 2:
        raise ValueError(f"`--seeds` needs at least 2 seeds for a paired confidence interval, got {list(seeds)}")
    unknown = sorted(set(rows) - set(ROWS))
    if unknown or BASE not in rows:
        raise ValueError(f"`--rows` must name {BASE!r} and rows of {sorted(ROWS)}, got {list(rows)}")
    cache_dir = Path(cache) if cache is not None else None
    weights = objectives_choices(choices) | FIXED
    penalty = weights.pop("probe_weight_decay")
    needed = {kind for name in rows for kind in ROWS[name]}
    tried = {k: v for k, v in tried.items() if k in needed}
    missing = sorted(needed - set(tried) - set(weights))
    if missing:
        raise ValueError(f"no weight for {missing}: name them in `tried` or in the objectives report")
    limit = sizes.limit
    val_data = load_fashion_mnist(data, TRAIN_SIZE, limit=limit, validation_size=VALIDATION_SIZE)
    validation = validate(val_data, sizes, epochs, tried, validation_seeds, device, progress, workers, cache_dir)
    weights |= validation["chosen"]
    test = load_fashion_mnist(data, TRAIN_SIZE, limit=limit)
    digits = load_digits_rgb(size=test.train_x.shape[-1], colour=False, limit=limit)
    tasks = make_tasks(test, digits, test_size=SENSITIVITY_TEST if limit is None else limit)
    configs = {name: row(sizes, epochs, ROWS[name], weights, name in ALONE) for name in rows}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            costs = step_costs(configs, test.train_x, steps=4 if limit else 12, rounds=1 if limit else 3)
    finally:
        torch.set_num_threads(threads)
    probes = {
        "linear": functools.partial(linear_accuracy, weight_decay=penalty),
        "knn": functools.partial(knn_accuracy, k=min(KNN_K, len(test.train_x)), temperature=KNN_TEMPERATURE),
    }
    results = run_study(
        test,
        {"test": configs},
        seeds,
        device,
        progress,
        "test",
        probes,
        workers=workers,
        evaluate=functools.partial(evaluate, tasks, penalty),
        cache=cache_dir,
        cache_tag=f"sensitivity test, penalty {penalty:g}, sensitivity test images {SENSITIVITY_TEST}",
    )["test"]
    scores = (*PROBES, *TASKS)
    paired = {
        name: {
            s: paired_difference(results[BASE]["probes"][s]["accuracies"], results[name]["probes"][s]["accuracies"])
            for s in scores
        }
        for name in rows
        if name != BASE
    }
    floor = random_init_accuracy(test, sizes.width, seeds, device)
    settings = {
        "seeds": list(seeds),
        "train_size": len(test.train_x),
        "validation_size": len(val_data.test_x),
        "epochs": epochs,
        "scale": SCALE,
        "rows": {name: ROWS[name] for name in rows},
        "weights": {k: weights[k] for k in sorted(needed)},
        "weights_from": {"objectives benchmark": str(choices), "chosen here": sorted(tried), "fixed": dict(FIXED)},
        "probe_weight_decay": penalty,
        "tasks": dict(TASKS),
        "sensitivity_test_images": len(tasks["rotation"].test_x),
        "digits": {"train": len(digits.train_x), "test": len(digits.test_x)},
        "knn": {"k": KNN_K, "temperature": KNN_TEMPERATURE},
        "width": sizes.width,
        "batch_size": sizes.batch_size,
        "workers": workers,
        "cached": cache_dir is not None,
        "pretrain_seconds": sum(r["pretrain_seconds"] for r in results.values())
        + sum(r["pretrain_seconds"] for group in validation["results"].values() for r in group.values()),
    }
    groups = {"in-domain linear": {n: r["probes"]["linear"] for n, r in results.items()}}
    payload = write_study(
        out,
        "sensitivity",
        settings,
        test,
        {"validation": validation, "results": results, "paired": paired, "costs": costs},
        groups,
        floor,
        started,
        f"Fashion-MNIST, augmentation-aware objectives, {len(seeds)} seeds",
    )
    text = render(payload, Path(out))
    print(text)
    return payload


def render(payload: Mapping[str, Any], out: Path) -> str:
    """Write ``sensitivity.md`` and ``sensitivity.png`` (the paired gains per task) into ``out``; returns the text."""
    text = report(payload)
    with replacing(out / "sensitivity.md") as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
        plot_gains(tmp.parent / "sensitivity.png", payload)
    return text


def _score(kind: str, summary: Mapping[str, Any]) -> str:
    return pct(summary) if kind == "accuracy" else f"{summary['mean']:.3f} +- {summary['std']:.3f}"


def _gain(kind: str, d: Mapping[str, Any]) -> str:
    if kind == "accuracy":
        return ci(d)
    lo, hi = d["ci95"]
    verdict = "excludes 0" if lo > 0 or hi < 0 else "contains 0"
    return f"{d['mean']:+.3f} [{lo:+.3f}, {hi:+.3f}] ({verdict})"


def report(payload: Mapping[str, Any]) -> str:
    """The Markdown tables: each row's scores, its paired gains over SimCLR per task with its step cost, the choices."""
    results, paired, costs = payload["results"], payload["paired"], payload["costs"]
    kinds = {"linear": "accuracy", "knn": "accuracy", **payload["tasks"]}
    labels = {"linear": "in-domain linear", "knn": "in-domain k-NN"}
    n = len(payload["seeds"])
    head = " | ".join(labels.get(s, s) for s in kinds)
    lines = [
        f"Scores, {n} seeds ({', '.join(map(str, payload['seeds']))}), mean +- std: accuracy (%) or R^2. Fashion-MNIST "
        f"test set ({payload['dataset']['test']} images; {payload['sensitivity_test_images']} transformed for the "
        f"sensitivity tasks), pre-training subset {payload['train_size']} images, {payload['epochs']} epochs; digits "
        f"{payload['digits']['train']} / {payload['digits']['test']} images:",
        "",
        f"| row | {head} |",
        "|---|" + "---:|" * len(kinds),
    ]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(_score(kinds[s], r["probes"][s]) for s in kinds) + " |")
    lines += [
        "",
        f"Paired difference row - {BASE} (same seed: same initialisation, data order and SSL views), mean [95 % "
        "t-interval]: points for accuracies, R^2 for regressions; and the row's training step over SimCLR's:",
        "",
    ]
    for name, d in paired.items():
        c = costs[name]
        w = ", ".join(f"{payload['weights'][k]:g}" for k in payload["rows"][name])
        lines += [
            f"**{name}** (weight {w}; step {c['step_ratio']:.2f}x, saved for backward {c['memory_ratio']:.2f}x):",
            "",
            "| task | gain |",
            "|---|---|",
            *(f"| {labels.get(s, s)} | {_gain(kinds[s], d[s])} |" for s in kinds),
            "",
        ]
    val = payload["validation"]
    source = Path(payload["weights_from"]["objectives benchmark"]).name
    tried = ", ".join(
        f"{k} {val['chosen'][k]:g} (tried {', '.join(f'{w:g}' for w in ws)})" for k, ws in val["tried"].items()
    )
    fixed = ", ".join(f"{k} {w:g}" for k, w in payload["weights_from"].get("fixed", {}).items())
    lines += [
        f"Weights from the objectives benchmark's validation (`{source}`): E-SSL and AugSelf, linear-probe L2 "
        f"penalty {payload['probe_weight_decay']:g}; chosen here on the "
        f"validation split ({payload['validation_size']} images, seeds {', '.join(map(str, val['seeds']))}, in-domain "
        f"linear probe, the test set not read): {tried or 'none'}; fixed: "
        f"{fixed or 'none'}. Step time: the median of interleaved training steps on one thread, measured in this run "
        "before the training.",
        "",
        f"Wall time {payload['wall_seconds']:.0f} s, {payload.get('workers', 1)} process(es) of 1 torch thread"
        + (
            f"; the training runs (pre-training {payload['pretrain_seconds']:.0f} s in all) were read from the run "
            "cache (`--cache`) that earlier invocations of this command filled."
            if payload.get("cached")
            else "."
        ),
    ]
    return "\n".join(lines)


def plot_gains(path: Path, payload: Mapping[str, Any]) -> None:
    """One panel per score: each row's paired gain over SimCLR with its 95 % interval."""
    plt = pyplot()
    kinds = {"linear": "accuracy", "knn": "accuracy", **payload["tasks"]}
    names = list(payload["paired"])
    cols = 3
    fig, axes = plt.subplots(
        math.ceil(len(kinds) / cols), cols, figsize=(4.2 * cols, 2.6 * math.ceil(len(kinds) / cols))
    )
    for ax, (score, kind) in zip(axes.flat, kinds.items(), strict=False):
        scale = 100 if kind == "accuracy" else 1
        for i, name in enumerate(names):
            d = payload["paired"][name][score]
            lo, hi = d["ci95"]
            m = scale * d["mean"]
            ax.errorbar([i], [m], yerr=[[m - scale * lo], [scale * hi - m]], fmt="o", capsize=3)
        ax.axhline(0, color="gray", lw=0.8)
        ax.set_xticks(range(len(names)), [n.removeprefix("+ ") for n in names], rotation=30, ha="right", fontsize=7)
        label = {"linear": "in-domain linear", "knn": "in-domain k-NN"}.get(score, score)
        ax.set_title(f"{label} ({'points' if kind == 'accuracy' else 'R^2'})", fontsize=9)
    for ax in list(axes.flat)[len(kinds) :]:
        ax.axis("off")
    fig.suptitle(f"Gain over SimCLR per task ({len(payload['seeds'])} paired seeds, 95 % intervals)")
    fig.tight_layout()
    save_figure(fig, path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sensitivity", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--seeds", type=parse_seeds, default=list(range(5)), help="test seeds: count or list (default 5)")
    p.add_argument("--data", default=None, metavar="DIR", help="a folder holding Fashion-MNIST's four IDX files")
    p.add_argument("--choices", default=str(CHOICES), help="the objectives benchmark's JSON (its chosen weights)")
    p.add_argument("--workers", type=positive_int, default=1, help="runs at once, one process each (CPU)")
    p.add_argument("--rows", nargs="+", default=list(ROWS), metavar="NAME", help="the rows (SimCLR among them)")
    p.add_argument("--cache", default=None, metavar="DIR", help="keep finished runs there and reuse them")
    p.add_argument("--render", metavar="JSON", default=None, help="rewrite the tables and the plot of a report")
    add_run_options(p, "benchmarks/results/sensitivity", "smoke run: 128 images, 1 epoch, a tiny CNN, 2 seeds")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; a mistake in the options, the data or ``--out`` prints one line and returns 2."""
    args = build_parser().parse_args(argv)
    set_threads(args.threads)
    if args.render:
        path = Path(args.render)
        return reported("benchmarks.sensitivity", lambda: print(render(json.loads(path.read_text()), path.parent)))
    return reported(
        "benchmarks.sensitivity",
        lambda: benchmark(
            seeds=args.seeds[:2] if args.quick else args.seeds,
            validation_seeds=VALIDATION_SEEDS[:1] if args.quick else VALIDATION_SEEDS,
            sizes=QUICK if args.quick else FULL,
            epochs=1 if args.quick else EPOCHS,
            tried={k: ws[:1] for k, ws in TRIED.items()} if args.quick else TRIED,
            rows=args.rows,
            choices=args.choices,
            device=args.device,
            out=args.out,
            data=args.data,
            progress=not args.no_progress,
            workers=args.workers,
            cache=args.cache,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
