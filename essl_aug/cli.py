"""The ``essl-aug`` console command (also ``python -m essl_aug``): ``demo`` and ``show``.

A thin face over the training toolkit (:mod:`essl_aug.experiments`): it parses the options and calls
:func:`~essl_aug.experiments.demo.run_demo` or :func:`~essl_aug.experiments.show.show`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from essl_aug.experiments.options import (
    batch_size,
    non_negative_float,
    parse_device,
    parse_family,
    parse_seeds,
    positive_int,
    set_threads,
)
from essl_aug.registry import family_names

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from essl_aug.experiments.demo import DATASETS

    parser = argparse.ArgumentParser(
        prog="essl-aug",
        description="Equivariant self-supervised learning (E-SSL): the demo and a family viewer.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="pretrain SimCLR and E-SimCLR on bundled digits and compare linear-probe accuracy",
        description="Pretrain a small CNN with SimCLR (invariant baseline) and with E-SimCLR (SimCLR + lambda * "
        "cross-entropy of a head predicting the transformation of an extra view) on scikit-learn's digits "
        "(or Fashion-MNIST), for several seeds; print linear-probe accuracy mean +- std and write demo.json and "
        "demo.png.",
    )
    demo.add_argument(
        "--dataset",
        choices=list(DATASETS),
        default="digits",
        help="digits: scikit-learn's, bundled (default); fashion-mnist: the Debian package dataset-fashion-mnist, "
        "read by torchvision, 28x28 gray, a 5,000-image training subset",
    )
    demo.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="fashion-mnist only: a folder holding its four IDX files, plain or .gz "
        "(default: /usr/share/datasets/fashion-mnist)",
    )
    demo.add_argument(
        "--train-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="fashion-mnist only: pre-train (and fit the probe) on N training images, class-stratified "
        f"(default: {DATASETS['fashion-mnist'].train_size}; 60000: all)",
    )
    demo.add_argument(
        "--family",
        type=parse_family,
        default="rotation",
        help=f"family to be sensitive to: one of {', '.join(family_names())}, or a comma list for a "
        "product, e.g. rotation,vflip (default: rotation)",
    )
    demo.add_argument(
        "--lambda",
        dest="weight",
        type=non_negative_float,
        default=0.4,
        help="weight of the E-SSL loss (default: 0.4, the reference)",
    )
    demo.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="pretraining epochs per run (default: "
        + ", ".join(f"{d.epochs} for {k}" for k, d in DATASETS.items())
        + ")",
    )
    demo.add_argument(
        "--seeds",
        type=parse_seeds,
        default=[0, 1, 2],
        help="a count (3: seeds 0,1,2) or a comma list of seeds (default: 3)",
    )
    demo.add_argument("--device", type=parse_device, default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    demo.add_argument("--out", default="essl-demo", help="output folder for demo.json and demo.png")
    demo.add_argument(
        "--batch-size", type=batch_size, default=256, help="pretraining batch size, at least 2 (default: 256)"
    )
    demo.add_argument("--width", type=positive_int, default=16, help="CNN width; features are 4 x width (default: 16)")
    demo.add_argument(
        "--threads", type=positive_int, default=None, help="torch CPU threads (default: usable cores, at most 8)"
    )
    demo.add_argument(
        "--limit", type=positive_int, default=None, help="use only the first N train and N test images (quick checks)"
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")

    show = sub.add_parser(
        "show",
        help="write a PNG grid of every element of a family applied to an image",
        description="Apply every element of a family to an image and write a grid, each tile titled with its "
        "class label. Without IMAGE, uses the bundled 96x96 sample image.",
    )
    show.add_argument("image", nargs="?", default=None, help="PNG/JPEG file (default: the bundled sample image)")
    show.add_argument("--family", type=parse_family, default="rotation", help="family name or comma list")
    show.add_argument(
        "--out", default="grid.png", help="image file to write, .png (or .jpg, .svg, .pdf, ...) (default: grid.png)"
    )
    show.add_argument(
        "--size",
        type=positive_int,
        default=96,
        help="side of the (centre-cropped, square) image in pixels (default: 96)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``essl-aug``; returns the exit status.

    A mistake in the options or the files (a bad value, missing data, an ``--out`` that cannot be written, an image
    that cannot be read) ends with a one-line message on stderr and exit status 2 (argparse) or 1, before any
    training, and nothing is written.
    """
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from essl_aug.experiments.demo import run_demo

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
            raise SystemExit(f"essl-aug demo: {err}") from None
        return 0
    from essl_aug.experiments.show import show

    try:
        path = show(args.image, args.family, args.out, args.size)
    except (OSError, ValueError, ImportError) as err:
        raise SystemExit(f"essl-aug show: {err}") from None
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
