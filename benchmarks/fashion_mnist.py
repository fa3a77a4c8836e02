"""The Fashion-MNIST headline: does E-SSL improve a representation on real data, beyond seed noise?

SimCLR vs E-SimCLR, and VICReg (non-contrastive) vs E-VICReg, on the demo's Fashion-MNIST recipe (the small CNN,
28x28 gray, a class-balanced 5,000-image pre-training subset that the probes also train on; see
:mod:`benchmarks.toolkit.demo`). E-SSL predicts the four-fold rotation of the reference extra view
(:func:`essl_aug.views.extra_view`, 14 px) with the reference head, every rotation of every image (the reference)
or one random rotation per image (cheaper).

Two phases, run by this one command:

1. **Validation** (seeds 100, 101): the probes train on the subset and score a validation split of 5,000 other
   images of the training file; the test set is not read. Chosen there, in order: the crop scale and the epochs
   of SimCLR (:data:`SCALES` x :data:`EPOCHS`), the E-SimCLR weight (:data:`SIMCLR_WEIGHTS`) and the E-VICReg
   weight (:data:`VICREG_WEIGHTS`) at that recipe, then the L2 penalty of the linear probe
   (:data:`WEIGHT_DECAYS`) for every run. A setting's score is its mean validation accuracy under the linear probe
   with its best penalty; ties go to the first setting listed.
2. **Test** (seeds 0-4): every row retrained with the chosen settings, scored on the full 10,000-image test set
   by the linear probe (the chosen penalty) and the weighted k-NN probe (k = 20, temperature 0.07). Within a
   seed every row shares the backbone and projector initialisation, the data order and the SSL views
   (:func:`~benchmarks.toolkit.pretrain.seeded_streams`); each E-SSL row is compared with its base method by the
   paired difference per seed and its 95 % t-interval.

Writes ``fashion_mnist.json``, ``fashion_mnist.md`` (the tables), ``fashion_mnist.png`` (test accuracies) and
``fashion_mnist_tradeoff.png`` (probe gain against cost). The cost of an E-SSL row is its step-time ratio to the
SimCLR step from the step-cost benchmark's report (``--step-cost``, the ``fashion_cnn`` model of
:mod:`benchmarks.step_cost`: the same CNN, views and batch, timed on an idle thread) when there is one, and the
ratio of pre-training times measured in this run in any case (which other work on the machine disturbs).
``--render`` rewrites the tables and plots of an earlier run from its JSON (e.g. after a new step-cost report).

Usage (from the repository root)::

    nice -n 10 python -m benchmarks.fashion_mnist --out benchmarks/results/fashion_mnist   # about an hour, 2 cores
    python -m benchmarks.fashion_mnist --quick --out /tmp/fmnist                              # a smoke run
    python -m benchmarks.fashion_mnist --render benchmarks/results/fashion_mnist/fashion_mnist.json
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from benchmarks.toolkit.data import LabelledImages, load_fashion_mnist
from benchmarks.toolkit.demo import fashion_view
from benchmarks.toolkit.options import add_run_options, parse_seeds, reported, set_threads
from benchmarks.toolkit.pretrain import PretrainConfig
from benchmarks.toolkit.probe import knn_accuracy, linear_accuracy
from benchmarks.toolkit.report import check_output_dir, plot_groups, pyplot, replacing, save_figure
from benchmarks.toolkit.study import Probe, paired_difference, random_init_accuracy, run_study, write_study

#: The settings tried on the validation split.
SCALES = (0.2, 0.08)
EPOCHS = (5, 10)
SIMCLR_WEIGHTS = (0.4, 1.0)
VICREG_WEIGHTS = (0.4, 2.0)
WEIGHT_DECAYS = (1e-4, 1e-3, 1e-2)
#: The probes of the test phase.
PROBES = {"linear": "linear probe", "knn": "k-NN probe"}
#: The labels of the test-accuracy plot (both probes on one axis; the untrained line is the linear probe's).
ACCURACY_YLABEL, ACCURACY_REFERENCE = "test accuracy (%)", "random-init backbone (linear probe)"
#: The k-NN probe.
KNN_K, KNN_TEMPERATURE = 20, 0.07
#: Images of the pre-training subset and of the validation split.
TRAIN_SIZE, VALIDATION_SIZE = 5_000, 5_000
VALIDATION_SEEDS = (100, 101)
FILES = ("fashion_mnist.json", "fashion_mnist.md", "fashion_mnist.png", "fashion_mnist_tradeoff.png")
#: The step-cost report joined by default, and the variant of its ``fashion_cnn`` model that each E-SSL row runs.
STEP_COST = Path(__file__).resolve().parent / "results" / "step_cost.json"
STEP_VARIANTS = {
    "E-SimCLR, all 4 rotations": "all",
    "E-SimCLR, 1 random rotation": "random",
    "E-VICReg, all 4 rotations": "all",
}
#: The test rows and the base method each E-SSL row is paired with.
PAIRS = {
    "E-SimCLR, all 4 rotations": "SimCLR",
    "E-SimCLR, 1 random rotation": "SimCLR",
    "E-VICReg, all 4 rotations": "VICReg",
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What a run costs: the backbone width, the batch, the images kept per split (``None``: all) and the grids."""

    width: int = 16
    batch_size: int = 256
    limit: int | None = None
    scales: Sequence[float] = SCALES
    epochs: Sequence[int] = EPOCHS
    simclr_weights: Sequence[float] = SIMCLR_WEIGHTS
    vicreg_weights: Sequence[float] = VICREG_WEIGHTS


QUICK = Sizes(
    width=4, batch_size=32, limit=128, scales=(0.2,), epochs=(1,), simclr_weights=(0.4,), vicreg_weights=(0.4,)
)


def recipe(sizes: Sizes, scale: float, epochs: int, **changes: Any) -> PretrainConfig:
    """The demo's Fashion-MNIST run with crops of area ``scale`` to 1 and ``epochs``; ``changes`` set the rest."""
    base = PretrainConfig(
        essl=None, epochs=epochs, batch_size=sizes.batch_size, width=sizes.width, view=fashion_view(scale)
    )
    return dataclasses.replace(base, **changes)


def rotation(weight: float, mode: str = "all") -> dict[str, Any]:
    """The E-SSL block of the rows: the four quarter turns, weight ``weight``, ``mode`` ``"all"`` or ``"random"``."""
    return {"transform": "rotation", "lambda": weight, "mode": mode}


def linear_probes() -> dict[str, Probe]:
    return {f"linear wd={wd:g}": functools.partial(linear_accuracy, weight_decay=wd) for wd in WEIGHT_DECAYS}


def score(summary: Mapping[str, Any]) -> float:
    """A validation setting's score: the mean linear-probe accuracy under its best penalty."""
    return max(s["mean"] for name, s in summary["probes"].items() if name.startswith("linear"))


def best(results: Mapping[str, Mapping[str, Any]], keys: Sequence[str]) -> str:
    """The first of ``keys`` with the highest :func:`score`."""
    return max(keys, key=lambda k: (score(results[k]), -keys.index(k)))


def validate(
    data: LabelledImages, sizes: Sizes, seeds: Sequence[int], device: torch.device | str, progress: bool
) -> dict[str, Any]:
    """Phase 1: choose the settings on the validation split (the module docstring); returns them and every result."""
    probes = linear_probes()
    recipes = {f"scale {s:g}, {e} epochs": (s, e) for s in sizes.scales for e in sizes.epochs}
    stage1 = run_study(
        data,
        {"SimCLR": {k: recipe(sizes, s, e) for k, (s, e) in recipes.items()}},
        seeds,
        device,
        progress,
        "validation: SimCLR recipe",
        probes,
    )["SimCLR"]
    scale, epochs = recipes[best(stage1, list(stage1))]
    simclr = {f"lambda {w:g}": recipe(sizes, scale, epochs, essl=rotation(w)) for w in sizes.simclr_weights}
    vicreg = {
        "VICReg": recipe(sizes, scale, epochs, method="vicreg"),
        **{
            f"lambda {w:g}": recipe(sizes, scale, epochs, method="vicreg", essl=rotation(w))
            for w in sizes.vicreg_weights
        },
    }
    stage2 = run_study(
        data, {"E-SimCLR": simclr, "VICReg": vicreg}, seeds, device, progress, "validation: weights", probes
    )
    w_simclr = best(stage2["E-SimCLR"], list(simclr))
    w_vicreg = best(stage2["VICReg"], [k for k in vicreg if k != "VICReg"])
    chosen_runs = [
        stage1[next(k for k, v in recipes.items() if v == (scale, epochs))],
        stage2["E-SimCLR"][w_simclr],
        stage2["VICReg"]["VICReg"],
        stage2["VICReg"][w_vicreg],
    ]
    penalty = choose_penalty(chosen_runs)
    return {
        "seeds": list(seeds),
        "tried": {
            "scale": list(sizes.scales),
            "epochs": list(sizes.epochs),
            "lambda_simclr": list(sizes.simclr_weights),
            "lambda_vicreg": list(sizes.vicreg_weights),
            "probe_weight_decay": list(WEIGHT_DECAYS),
        },
        "chosen": {
            "scale": scale,
            "epochs": epochs,
            "lambda_simclr": float(w_simclr.split()[-1]),
            "lambda_vicreg": float(w_vicreg.split()[-1]),
            "probe_weight_decay": penalty,
        },
        "results": {"SimCLR recipe": stage1, **stage2},
    }


def choose_penalty(runs: Sequence[Mapping[str, Any]]) -> float:
    """The linear probe's L2 penalty (:data:`WEIGHT_DECAYS`) with the highest summed validation accuracy over
    ``runs`` (the chosen settings' summaries); ties go to the first listed."""
    return max(
        WEIGHT_DECAYS,
        key=lambda wd: (sum(r["probes"][f"linear wd={wd:g}"]["mean"] for r in runs), -WEIGHT_DECAYS.index(wd)),
    )


def test_phase(
    data: LabelledImages,
    configs: Mapping[str, PretrainConfig],
    pairs: Mapping[str, str],
    seeds: Sequence[int],
    penalty: float,
    device: torch.device | str,
    progress: bool,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """Phase 2: train every row of ``configs`` for every seed and score it on the test split with the linear probe
    (L2 ``penalty``) and the k-NN probe; returns the rows' summaries, the paired difference of each row of ``pairs``
    with its base (``{row: base}``) under each probe, and its pre-training time over its base's."""
    probes: dict[str, Probe] = {
        "linear": functools.partial(linear_accuracy, weight_decay=penalty),
        "knn": functools.partial(knn_accuracy, k=min(KNN_K, len(data.train_x)), temperature=KNN_TEMPERATURE),
    }
    rows = run_study(data, {"test": configs}, seeds, device, progress, "test", probes)["test"]
    paired = {
        row: {
            p: paired_difference(rows[base]["probes"][p]["accuracies"], rows[row]["probes"][p]["accuracies"])
            for p in probes
        }
        for row, base in pairs.items()
    }
    time_ratio = {row: rows[row]["pretrain_seconds"] / rows[base]["pretrain_seconds"] for row, base in pairs.items()}
    return rows, paired, time_ratio


def test_rows(sizes: Sizes, chosen: Mapping[str, Any]) -> dict[str, PretrainConfig]:
    """Phase 2's rows with the settings chosen on the validation split."""
    s, e = chosen["scale"], chosen["epochs"]
    w, wv = chosen["lambda_simclr"], chosen["lambda_vicreg"]
    return {
        "SimCLR": recipe(sizes, s, e),
        "E-SimCLR, all 4 rotations": recipe(sizes, s, e, essl=rotation(w)),
        "E-SimCLR, 1 random rotation": recipe(sizes, s, e, essl=rotation(w, "random")),
        "VICReg": recipe(sizes, s, e, method="vicreg"),
        "E-VICReg, all 4 rotations": recipe(sizes, s, e, method="vicreg", essl=rotation(wv)),
    }


def headline(
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    validation_seeds: Sequence[int] = VALIDATION_SEEDS,
    sizes: Sizes = Sizes(),
    device: torch.device | str = "cpu",
    out: Path | str = "results/fashion_mnist",
    data: Path | str | None = None,
    progress: bool = True,
    step_cost: Path | str | None = STEP_COST,
) -> dict[str, Any]:
    """Run both phases; returns the JSON payload (also written into ``out`` with the tables and plots)."""
    study = Study("fashion_mnist", FILES, seeds, sizes, device, out, data, progress)
    phase = study.validate(lambda d: validate(d, sizes, validation_seeds, device, progress))
    configs = test_rows(sizes, phase.result["chosen"])
    render_tables = functools.partial(render, step_cost=step_cost)
    return study.test(phase, configs, PAIRS, study.settings(phase), accuracy_title(seeds), render_tables)


class Validated(NamedTuple):
    """Phase 1 of a :class:`Study`: its start (``time.perf_counter()``), the validation data, what the validation
    chose (with its ``wall_seconds``), and the test data."""

    started: float
    validation_data: LabelledImages
    result: dict[str, Any]
    test_data: LabelledImages


@dataclasses.dataclass(frozen=True)
class Study:
    """A two-phase study on this recipe's data (the module docstring): the report ``job`` and its ``files`` in
    ``out``, the test ``seeds``, the ``sizes``, the ``device``, the Fashion-MNIST folder ``data`` and ``progress``."""

    job: str
    files: Sequence[str]
    seeds: Sequence[int]
    sizes: Sizes
    device: torch.device | str
    out: Path | str
    data: Path | str | None
    progress: bool

    def validate(self, validate: Callable[[LabelledImages], dict[str, Any]]) -> Validated:
        """Check ``out`` and the seeds, run ``validate`` on the validation split (its wall time recorded as
        ``wall_seconds``), then load the test split."""
        started = time.perf_counter()
        check_output_dir(self.out, self.files)
        if len(self.seeds) < 2:
            raise ValueError(
                f"`--seeds` needs at least 2 seeds for a paired confidence interval, got {list(self.seeds)}"
            )
        limit = self.sizes.limit
        val_data = load_fashion_mnist(self.data, TRAIN_SIZE, limit=limit, validation_size=VALIDATION_SIZE)
        validation = validate(val_data)
        validation["wall_seconds"] = time.perf_counter() - started
        return Validated(started, val_data, validation, load_fashion_mnist(self.data, TRAIN_SIZE, limit=limit))

    def settings(self, phase: Validated, **recipe: Any) -> dict[str, Any]:
        """The settings the report lists: seeds, split sizes, the ``recipe`` entries, the k-NN probe and sizes."""
        return {
            "seeds": list(self.seeds),
            "train_size": len(phase.test_data.train_x),
            "validation_size": len(phase.validation_data.test_x),
            **recipe,
            "knn": {"k": KNN_K, "temperature": KNN_TEMPERATURE},
            "width": self.sizes.width,
            "batch_size": self.sizes.batch_size,
        }

    def test(
        self,
        phase: Validated,
        configs: Mapping[str, PretrainConfig],
        pairs: Mapping[str, str],
        settings: Mapping[str, Any],
        title: str,
        render: Callable[[Mapping[str, Any], Path], str],
    ) -> dict[str, Any]:
        """Phase 2 and the report: :func:`test_phase` of ``configs`` and ``pairs`` with the penalty chosen in
        ``phase``, the random-init floor, ``<job>.json`` and the test-accuracy plot ``<job>.png``
        (:func:`~benchmarks.toolkit.study.write_study`, plot ``title``), then ``render(payload, out)`` (which
        writes the other files and returns the tables) printed; returns the payload."""
        data, penalty = phase.test_data, phase.result["chosen"]["probe_weight_decay"]
        rows, paired, time_ratio = test_phase(data, configs, pairs, self.seeds, penalty, self.device, self.progress)
        floor = random_init_accuracy(data, self.sizes.width, self.seeds, self.device)
        payload = write_study(
            self.out,
            self.job,
            settings,
            data,
            {"validation": phase.result, "rows": rows, "paired": paired, "pretrain_time_ratio": time_ratio},
            accuracy_groups(rows),
            floor,
            phase.started,
            title,
            ylabel=ACCURACY_YLABEL,
            reference_label=ACCURACY_REFERENCE,
        )
        out = Path(self.out)
        print(render(payload, out))
        print(f"wrote {', '.join(str(out / f) for f in self.files)} in {payload['wall_seconds']:.0f} s")
        return payload


def step_ratios(path: Path | str | None) -> dict[str, Any] | None:
    """The step-time ratios of the E-SSL rows from a step-cost report (``None`` without one), with its provenance."""
    if path is None or not Path(path).is_file():
        return None
    cost = json.loads(Path(path).read_text(encoding="utf-8"))
    by_variant = {r["variant"]: r for r in cost["results"] if r["model"] == "fashion_cnn"}
    if not all(v in by_variant for v in STEP_VARIANTS.values()):
        return None
    return {
        "ratios": {row: by_variant[v]["ratio_to_simclr"] for row, v in STEP_VARIANTS.items()},
        "source": f"{cost['command']}, {cost['date']}, {cost['machine']['cpu']}, {cost['machine']['threads']} thread",
    }


def accuracy_groups(rows: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The test-accuracy plot's groups: one per probe, one bar per row."""
    return {label: {row: r["probes"][probe] for row, r in rows.items()} for probe, label in PROBES.items()}


def accuracy_title(seeds: Sequence[int]) -> str:
    return f"Fashion-MNIST test accuracy, {len(seeds)} seeds"


def render(payload: Mapping[str, Any], out: Path, step_cost: Path | str | None = STEP_COST) -> str:
    """Write ``fashion_mnist.md`` and ``fashion_mnist_tradeoff.png`` of ``payload`` into ``out``; returns the text."""
    steps = step_ratios(step_cost)
    text = report(payload, steps)
    with replacing(out / "fashion_mnist.md") as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
        plot_tradeoff(tmp.parent / "fashion_mnist_tradeoff.png", payload, steps)
    return text


def pct(summary: Mapping[str, Any]) -> str:
    """``"80.09 +- 0.34"``: a summary's mean and std in percent."""
    return f"{100 * summary['mean']:.2f} +- {100 * summary['std']:.2f}"


def ci(d: Mapping[str, Any]) -> str:
    """A paired difference in points: mean, 95 % interval, whether it excludes 0, and the seeds ahead."""
    lo, hi = d["ci95"]
    verdict = "excludes 0" if lo > 0 or hi < 0 else "contains 0"
    wins = f"ahead on {d['wins']}/{len(d['differences'])}"
    return f"{100 * d['mean']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] ({verdict}; {wins})"


def report(payload: Mapping[str, Any], steps: Mapping[str, Any] | None = None) -> str:
    """The Markdown tables of a payload: test accuracies per seed, paired differences, validation choices."""
    rows, paired, val = payload["rows"], payload["paired"], payload["validation"]
    n = len(payload["seeds"])
    lines = [
        f"Test accuracy (%), {n} seeds ({', '.join(map(str, payload['seeds']))}), Fashion-MNIST test set "
        f"({payload['dataset']['test']} images), pre-training subset {payload['train_size']} images:",
        "",
        *accuracy_table(rows, payload["random_init"]),
    ]
    lines += [
        "",
        "Paired difference E-SSL - base method (same seed: same initialisation, data order and SSL views), "
        "points, mean [95 % t-interval]:",
        "",
        "| E-SSL row | base | linear probe | k-NN probe | step-time ratio | pre-training time ratio (this run) |",
        "|---|---|---|---|---:|---:|",
    ]
    for name, base in PAIRS.items():
        step = f"{steps['ratios'][name]:.2f}x" if steps else "-"
        lines.append(
            f"| {name} | {base} | {ci(paired[name]['linear'])} | {ci(paired[name]['knn'])} | {step} | "
            f"{payload['pretrain_time_ratio'][name]:.2f}x |"
        )
    if steps:
        lines.append(
            f"\nStep-time ratio: one training step over the SimCLR step of the same CNN on the same data "
            f"(`{steps['source']}`; the E-VICReg step is timed as E-SimCLR's, its E-SSL branch being the same)."
        )
    chosen, tried = val["chosen"], val["tried"]
    lines += [
        "",
        f"Chosen on the validation split ({payload['validation_size']} images of the training file, seeds "
        f"{', '.join(map(str, val['seeds']))}; the test set not read): crop scale {chosen['scale']:g} (tried "
        f"{', '.join(f'{v:g}' for v in tried['scale'])}), {chosen['epochs']} epochs (tried "
        f"{', '.join(map(str, tried['epochs']))}), E-SimCLR lambda {chosen['lambda_simclr']:g} (tried "
        f"{', '.join(f'{v:g}' for v in tried['lambda_simclr'])}), E-VICReg lambda {chosen['lambda_vicreg']:g} (tried "
        f"{', '.join(f'{v:g}' for v in tried['lambda_vicreg'])}), linear-probe L2 penalty "
        f"{chosen['probe_weight_decay']:g} (tried {', '.join(f'{v:g}' for v in tried['probe_weight_decay'])}).",
        "",
        *validation_table(payload),
    ]
    return "\n".join(lines)


def accuracy_table(rows: Mapping[str, Any], random_init: Mapping[str, Any]) -> list[str]:
    """The test accuracies of ``rows`` (linear and k-NN probes, per seed) as Markdown lines."""
    lines = [
        "| method | linear probe | per seed | k-NN probe | per seed | pre-training s (all seeds) |",
        "|---|---:|---|---:|---|---:|",
    ]
    for name, r in rows.items():
        lin, knn = r["probes"]["linear"], r["probes"]["knn"]
        lines.append(
            f"| {name} | {pct(lin)} | {', '.join(f'{100 * a:.2f}' for a in lin['accuracies'])} | {pct(knn)} | "
            f"{', '.join(f'{100 * a:.2f}' for a in knn['accuracies'])} | {r['pretrain_seconds']:.0f} |"
        )
    lines.append(f"| (random-init backbone) | {pct(random_init)} | | | | |")
    return lines


def validation_table(payload: Mapping[str, Any]) -> list[str]:
    """Every validation setting's mean accuracy under each probe penalty, then the wall time, as Markdown lines."""
    val = payload["validation"]
    lines = [
        "| validation stage | setting | " + " | ".join(f"linear, wd {wd:g}" for wd in WEIGHT_DECAYS) + " |",
        "|---|---|" + "---:|" * len(WEIGHT_DECAYS),
    ]
    for stage, results in val["results"].items():
        for setting, r in results.items():
            cells = " | ".join(pct(r["probes"][f"linear wd={wd:g}"]) for wd in WEIGHT_DECAYS)
            lines.append(f"| {stage} | {setting} | {cells} |")
    lines.append(
        f"\nWall time {payload['wall_seconds']:.0f} s (validation {val['wall_seconds']:.0f} s), "
        f"{payload['environment']['torch_threads']} torch thread(s)."
    )
    return lines


def plot_tradeoff(path: Path, payload: Mapping[str, Any], steps: Mapping[str, Any] | None = None) -> Path:
    """Paired probe gains (95 % intervals; linear and k-NN) against the step-time ratio (the pre-training time ratio
    of this run without a step-cost report), one colour per E-SSL row."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(PAIRS):
        x = steps["ratios"][name] if steps else payload["pretrain_time_ratio"][name]
        for j, (probe, marker) in enumerate((("linear", "o"), ("knn", "s"))):
            d = payload["paired"][name][probe]
            lo, hi = d["ci95"]
            ax.errorbar(
                x + (j - 0.5) * 0.012,
                100 * d["mean"],
                yerr=[[100 * (d["mean"] - lo)], [100 * (hi - d["mean"])]],
                fmt=marker,
                color=colours[i % len(colours)],
                capsize=4,
                label=f"{name} ({PROBES[probe]})",
            )
    ax.axhline(0, color="gray", lw=1, ls="--")
    ax.margins(x=0.15)
    ax.set_xlabel("step time, ratio to SimCLR" if steps else "pre-training time, ratio to the base method (same run)")
    ax.set_ylabel("probe gain, points (95 % CI)")
    ax.set_title(f"Fashion-MNIST: E-SSL gain vs cost, {len(payload['seeds'])} seeds")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return save_figure(fig, path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fashion_mnist", description=(__doc__ or "").split("\n\n")[0])
    add_study_options(p, "results/fashion_mnist", "smoke run: 128 images, 1 epoch, a tiny CNN, one setting per grid")
    p.add_argument(
        "--step-cost",
        default=str(STEP_COST),
        metavar="JSON",
        help="step-cost report to join (default: the committed one)",
    )
    p.add_argument(
        "--render", default=None, metavar="JSON", help="rewrite the tables and plots of an earlier run; trains nothing"
    )
    return p


def add_study_options(p: argparse.ArgumentParser, out: str, quick: str) -> None:
    """The options of a study on this recipe: ``--seeds``, ``--data`` and :func:`add_run_options`."""
    p.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2, 3, 4], help="test seeds: count or list (default 5)")
    p.add_argument("--data", default=None, metavar="DIR", help="a folder holding Fashion-MNIST's four IDX files")
    add_run_options(p, out, quick)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; a mistake in the options, the data or ``--out`` prints one line and returns 2."""
    args = build_parser().parse_args(argv)
    set_threads(args.threads)
    if args.render:
        try:
            payload = json.loads(Path(args.render).read_text(encoding="utf-8"))
            folder = Path(args.render).parent
            print(render(payload, folder, args.step_cost))
            plot_groups(
                folder / "fashion_mnist.png",
                accuracy_groups(payload["rows"]),
                accuracy_title(payload["seeds"]),
                reference=payload["random_init"]["mean"],
                ylabel=ACCURACY_YLABEL,
                reference_label=ACCURACY_REFERENCE,
            )
        except (OSError, ValueError, KeyError) as err:
            print(f"benchmarks.fashion_mnist: cannot render {args.render}: {err!r}", file=sys.stderr)
            return 2
        return 0
    return reported(
        "benchmarks.fashion_mnist",
        lambda: headline(
            seeds=args.seeds,
            validation_seeds=VALIDATION_SEEDS[:1] if args.quick else VALIDATION_SEEDS,
            sizes=QUICK if args.quick else Sizes(),
            device=args.device,
            out=args.out,
            data=args.data,
            progress=not args.no_progress,
            step_cost=args.step_cost,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
