"""The E-SSL diagnostic in miniature (Figure 1 of Dangovski et al., 2022) on the bundled digits.

For each family, three SimCLR pretrainings of the demo's small CNN, each over several seeds, scored by the
linear probe of the demo:

- ``baseline``: SimCLR with the base augmentation only (shared by all rows, run once);
- ``invariant``: the family is added to the augmentation of both views (each view keeps the identity with
  probability 0.5, otherwise gets one non-identity element, uniformly: the co-author code's invariance mode, the
  family's own draw given ``p``);
- ``E-SSL``: SimCLR + weight (``--lambda``) * cross-entropy of the head of :class:`~essl_aug.objectives.ESSL`
  predicting every element of the family on the reference extra view at half size (mode "all", the reference).

Rows: rotation, vflip, jigsaw, blur, invert (the paper: invariance hurts, sensitivity helps) and hflip,
grayscale (the paper's controls: invariance helps). Prints a table and writes ``quality.json`` and
``quality.png``. A study of the training toolkit (:mod:`benchmarks.toolkit.study`), as the demo is.

``--dataset fashion-mnist`` runs it on Fashion-MNIST instead (the demo's recipe for it: 28x28 gray, a 5,000-image
training subset, 10 epochs by default; see :mod:`benchmarks.toolkit.demo`); grayscale needs RGB images, so
give ``--families`` without it there. The extra E-SSL view is the library's reference
(:func:`essl_aug.views.extra_view`: a random resized crop at half size, area 0.2 to 1, and a horizontal flip, left
out for the ``hflip`` row, whose label it would hide), with its colour ops for the ``demo`` base and without them for
the ``crop`` base (whose SSL views have none).

Usage (from the repository root)::

    nice -n 10 python -m benchmarks.quality --out results/quality        # the table in docs/guides/demo.md
    python -m benchmarks.quality --quick --out /tmp/quality               # seconds: a smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.toolkit.demo import DATASETS, load_dataset
from benchmarks.toolkit.options import (
    add_run_options,
    batch_size,
    non_negative_float,
    parse_family,
    parse_seeds,
    positive_int,
    reported,
    set_threads,
)
from benchmarks.toolkit.pretrain import PretrainConfig
from benchmarks.toolkit.report import check_output_dir, fmt
from benchmarks.toolkit.study import paired_difference, random_init_accuracy, run_study, write_study
from benchmarks.toolkit.views import view
from essl_aug.views import ViewPipeline

FAMILIES = ("rotation", "vflip", "jigsaw", "blur", "invert", "hflip", "grayscale")
#: The default epochs per dataset (Fashion-MNIST: the demo's).
EPOCHS = {"digits": 20, "fashion-mnist": DATASETS["fashion-mnist"].epochs}
#: The files written into ``--out``.
FILES = ("quality.json", "quality.png")


def bases(dataset: str = "digits") -> dict[str, ViewPipeline]:
    """Base augmentations: ``crop`` is the paper's diagnostic (random resized crops only); ``demo`` is the demo's
    SimCLR view for ``dataset`` (on the digits: crops, colour jitter and grayscale).

    Example:
        >>> sorted(bases()), bases("fashion-mnist")["crop"].names, bases("fashion-mnist")["crop"]["resized_crop"].size
        (['crop', 'demo'], ('resized_crop',), (28, 28))
    """
    recipe = DATASETS[dataset]
    return {"crop": view(recipe.size, (0.2, 1.0), channels=recipe.channels), "demo": recipe.view}


#: The base augmentations of the digits.
BASES = bases("digits")


def quality(
    families: Sequence[str | list[str]] = FAMILIES,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int | None = None,
    weight: float = 0.4,
    base: str = "crop",
    jigsaw_per_batch: int | None = 8,
    device: torch.device | str = "cpu",
    out: Path | str = "results/quality",
    width: int = 16,
    batch_size: int = 256,
    limit: int | None = None,
    progress: bool = True,
    dataset: str = "digits",
    data: Path | str | None = None,
    train_size: int | None = None,
) -> dict[str, Any]:
    """Run the diagnostic; returns the JSON payload (also written to ``out/quality.json``, plot ``quality.png``).

    ``epochs`` defaults to :data:`EPOCHS` of ``dataset``; ``dataset``, ``data`` and ``train_size`` are those of
    :func:`~benchmarks.toolkit.demo.load_dataset`. ``out`` is checked before the data are loaded.
    """
    started = time.perf_counter()
    check_output_dir(out, FILES)
    images = load_dataset(dataset, data, train_size, limit)
    epochs = EPOCHS[dataset] if epochs is None else epochs
    cfg = PretrainConfig(
        essl=None,
        epochs=epochs,
        batch_size=batch_size,
        width=width,
        view=bases(dataset)[base],
        extra_photometric=base == "demo",
    )
    plan = {}
    for fam in families:
        name = fam if isinstance(fam, str) else ",".join(fam)
        per_batch = jigsaw_per_batch if fam == "jigsaw" else None
        plan[name] = {
            "baseline": cfg,
            "invariant": dataclasses.replace(cfg, invariance=fam),
            "E-SSL": dataclasses.replace(cfg, essl={"transform": fam, "lambda": weight}, num_per_batch=per_batch),
        }
    rows = run_study(images, plan, seeds, device, progress, "quality")
    floor = random_init_accuracy(images, width, seeds, device)
    settings = {
        "base_augmentation": base,
        "epochs": epochs,
        "lambda": weight,
        "seeds": list(seeds),
        "jigsaw_per_batch": jigsaw_per_batch,
    }
    title = f"invariant vs sensitive (E-SSL), base '{base}', {len(seeds)} seeds"
    payload = write_study(out, "quality", settings, images, {"rows": rows}, rows, floor, started, title)
    out = Path(out)
    print(table(payload))
    print(f"wrote {out / 'quality.json'} and {out / 'quality.png'} in {payload['wall_seconds']:.0f} s")
    return payload


def table(payload: dict[str, Any]) -> str:
    """The result as a Markdown table (linear-probe accuracy %, mean +- std over seeds)."""
    n = len(payload["seeds"])
    lines = [
        "| family | baseline | invariant to it | E-SSL, sensitive to it | E-SSL - baseline, paired by seed |",
        "|---|---|---|---|---|",
    ]
    for name, row in payload["rows"].items():
        gap = paired_difference(row["baseline"]["accuracies"], row["E-SSL"]["accuracies"])
        paired = f"{100 * gap['mean']:+.2f} +- {100 * gap['std']:.2f} (ahead on {gap['wins']}/{n})"
        if "ci95" in gap:
            lo, hi = gap["ci95"]
            paired += f", 95 % CI [{100 * lo:+.2f}, {100 * hi:+.2f}]"
        lines.append(f"| {name} | {fmt(row['baseline'])} | {fmt(row['invariant'])} | {fmt(row['E-SSL'])} | {paired} |")
    lines.append(f"| (random-init backbone) | {fmt(payload['random_init'])} | | | |")
    lines.append(
        f"\n{n} seeds, {payload['epochs']} epochs, lambda {payload['lambda']}, "
        f"base augmentation '{payload['base_augmentation']}', {payload['wall_seconds']:.0f} s"
    )
    return "\n".join(lines)


def parse_families(text: str) -> list[str | list[str]]:
    """``"rotation,vflip+hflip"`` -> ``["rotation", ["vflip", "hflip"]]``: one row per comma, ``+`` joins a product.

    Example:
        >>> parse_families("rotation,vflip+hflip")
        ['rotation', ['vflip', 'hflip']]
    """
    rows = [parse_family(f.replace("+", ",")) for f in text.split(",") if f.strip()]
    if not rows:
        raise argparse.ArgumentTypeError(f"`--families` needs at least one family, got {text!r}")
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument(
        "--families",
        type=parse_families,
        default=list(FAMILIES),
        help="comma list of families, one row each; join with + for a product (rotation+vflip)",
    )
    p.add_argument(
        "--dataset",
        choices=list(DATASETS),
        default="digits",
        help="digits (default) or fashion-mnist (the Debian package dataset-fashion-mnist, read by torchvision)",
    )
    p.add_argument(
        "--data", default=None, metavar="DIR", help="fashion-mnist only: a folder holding its four IDX files"
    )
    p.add_argument(
        "--train-size",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"fashion-mnist only: training images (default {DATASETS['fashion-mnist'].train_size})",
    )
    p.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2], help="count or comma list (default 3)")
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="default: " + ", ".join(f"{v} for {k}" for k, v in EPOCHS.items()),
    )
    p.add_argument("--batch-size", type=batch_size, default=256, help="pretraining batch size (default 256)")
    p.add_argument("--lambda", dest="weight", type=non_negative_float, default=0.4, help="E-SSL weight (0.4)")
    p.add_argument("--base", choices=sorted(BASES), default="crop", help="base augmentation (default: crop)")
    p.add_argument(
        "--jigsaw-per-batch",
        type=positive_int,
        default=8,
        help="jigsaw permutations per step in E-SSL (default 8 of 24, as the reference ImageNet; 24 = all)",
    )
    add_run_options(p, "results/quality", "smoke run: 1 seed, 1 epoch, 128 images, tiny CNN (numbers are meaningless)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; a mistake in the options, the data or ``--out`` prints one line and returns 2."""
    args = build_parser().parse_args(argv)
    set_threads(args.threads)
    sizes: dict[str, Any] = dict(seeds=args.seeds, epochs=args.epochs, width=16, batch_size=args.batch_size, limit=None)
    if args.quick:
        sizes = dict(seeds=[0], epochs=1, width=4, batch_size=64, limit=128)
    return reported(
        "benchmarks.quality",
        lambda: quality(
            args.families,
            weight=args.weight,
            base=args.base,
            jigsaw_per_batch=args.jigsaw_per_batch,
            device=args.device,
            out=args.out,
            progress=not args.no_progress,
            dataset=args.dataset,
            data=args.data,
            train_size=args.train_size,
            **sizes,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
