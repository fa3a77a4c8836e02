"""The main job: SimCLR vs E-SimCLR on the bundled digits (or Fashion-MNIST), linear-probe accuracy over seeds.

Pretrains a small CNN with SimCLR (invariant baseline) and with E-SimCLR (SimCLR + lambda * cross-entropy of a head
predicting the transformation of an extra view) for several seeds, prints linear-probe accuracy mean +- std and
writes ``demo.json`` and ``demo.png``. The job itself is :func:`benchmarks.toolkit.demo.run_demo`; this script
parses its options.

Usage (from the repository root; ``make demo`` creates the venv first)::

    python -m benchmarks.demo                                   # digits, 3 seeds: about a minute on 2 cores
    python -m benchmarks.demo --family rotation,vflip --epochs 60 --seeds 5
    python -m benchmarks.demo --dataset fashion-mnist            # real data (the Debian dataset-fashion-mnist)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from benchmarks.toolkit.demo import DATASETS, run_demo
from benchmarks.toolkit.options import (
    batch_size,
    non_negative_float,
    parse_device,
    parse_family,
    parse_seeds,
    positive_int,
    set_threads,
)
from essl_aug.registry import family_names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.demo",
        description="Pretrain a small CNN with SimCLR (invariant baseline) and with E-SimCLR (SimCLR + lambda * "
        "cross-entropy of a head predicting the transformation of an extra view) on scikit-learn's digits "
        "(or Fashion-MNIST), for several seeds; print linear-probe accuracy mean +- std and write demo.json and "
        "demo.png.",
    )
    p.add_argument(
        "--dataset",
        choices=list(DATASETS),
        default="digits",
        help="digits: scikit-learn's, bundled (default); fashion-mnist: the Debian package dataset-fashion-mnist, "
        "read by torchvision, 28x28 gray, a 5,000-image training subset",
    )
    p.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="fashion-mnist only: a folder holding its four IDX files, plain or .gz "
        "(default: /usr/share/datasets/fashion-mnist)",
    )
    p.add_argument(
        "--train-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="fashion-mnist only: pre-train (and fit the probe) on N training images, class-stratified "
        f"(default: {DATASETS['fashion-mnist'].train_size}; 60000: all)",
    )
    p.add_argument(
        "--family",
        type=parse_family,
        default="rotation",
        help=f"family to be sensitive to: one of {', '.join(family_names())}, or a comma list for a "
        "product, e.g. rotation,vflip (default: rotation)",
    )
    p.add_argument(
        "--lambda",
        dest="weight",
        type=non_negative_float,
        default=0.4,
        help="weight of the E-SSL loss (default: 0.4, the reference)",
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="pretraining epochs per run (default: "
        + ", ".join(f"{d.epochs} for {k}" for k, d in DATASETS.items())
        + ")",
    )
    p.add_argument(
        "--seeds",
        type=parse_seeds,
        default=[0, 1, 2],
        help="a count (3: seeds 0,1,2) or a comma list of seeds (default: 3)",
    )
    p.add_argument("--device", type=parse_device, default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--out", default="essl-demo", help="output folder for demo.json and demo.png")
    p.add_argument(
        "--batch-size", type=batch_size, default=256, help="pretraining batch size, at least 2 (default: 256)"
    )
    p.add_argument("--width", type=positive_int, default=16, help="CNN width; features are 4 x width (default: 16)")
    p.add_argument(
        "--threads", type=positive_int, default=None, help="torch CPU threads (default: usable cores, at most 8)"
    )
    p.add_argument(
        "--limit", type=positive_int, default=None, help="use only the first N train and N test images (quick checks)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit status.

    A mistake in the options or the files (a bad value, missing data, an ``--out`` that cannot be written) ends with
    a one-line message on stderr and exit status 2 (argparse) or 1, before any training, and nothing is written.
    """
    args = build_parser().parse_args(argv)
    set_threads(args.threads)
    try:
        run_demo(
            family=args.family,
            weight=args.weight,
            epochs=args.epochs,
            seeds=args.seeds,
            device=args.device,
            out=args.out,
            batch_size=args.batch_size,
            width=args.width,
            limit=args.limit,
            progress=not args.no_progress,
            dataset=args.dataset,
            data=args.data,
            train_size=args.train_size,
        )
    except (OSError, ValueError, ImportError) as err:
        raise SystemExit(f"benchmarks.demo: {err}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
