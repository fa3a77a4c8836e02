"""The ``essl-aug`` console command (also ``python -m essl_aug``): ``demo`` and ``show``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import torch

from essl_aug.registry import family_names


def parse_family(text: str) -> str | list[str]:
    """``"rotation"`` -> ``"rotation"``; ``"rotation,vflip"`` -> ``["rotation", "vflip"]`` (a product).

    Example:
        >>> parse_family("rotation,vflip")
        ['rotation', 'vflip']
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in parts if p not in family_names()]
    if not parts or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown family {', '.join(unknown) or repr(text)}; choose from {', '.join(family_names())}, "
            "or join several with commas for a product (e.g. rotation,vflip)"
        )
    return parts[0] if len(parts) == 1 else parts


def parse_seeds(text: str) -> list[int]:
    """``"3"`` -> seeds 0, 1, 2; ``"0,5,7"`` -> those seeds.

    Example:
        >>> parse_seeds("3"), parse_seeds("4,2")
        ([0, 1, 2], [4, 2])
    """
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"`--seeds` takes a count (3) or a comma list (0,1,2), got {text!r}")
    if "," not in text:
        if values[0] < 1:
            raise argparse.ArgumentTypeError(f"`--seeds` count must be at least 1, got {text!r}")
        return list(range(values[0]))
    return values


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; anything else must be a valid, available device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise SystemExit(f"essl-aug: invalid --device {name!r} ({err}); use cpu, cuda, cuda:1 or auto") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("essl-aug: --device cuda requested but CUDA is not available; use --device cpu")
    return device


def default_threads() -> int:
    """Torch CPU threads: the usable cores, at most 8 (the small models gain nothing beyond)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def build_parser() -> argparse.ArgumentParser:
    from essl_aug.experiments.demo import DEFAULT_EPOCHS

    parser = argparse.ArgumentParser(
        prog="essl-aug",
        description="Equivariant self-supervised learning (E-SSL): the demo and a family viewer.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="pretrain SimCLR and E-SimCLR on bundled digits and compare linear-probe accuracy",
        description="Pretrain a small CNN with SimCLR (invariant baseline) and with E-SimCLR (SimCLR + lambda * "
        "cross-entropy of a head predicting the transformation of an extra view) on scikit-learn's digits, "
        "for several seeds; print linear-probe accuracy mean +- std and write demo.json and demo.png.",
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
        dest="lam",
        type=_non_negative_float,
        default=0.4,
        help="weight of the E-SSL loss (default: 0.4, the reference)",
    )
    demo.add_argument(
        "--epochs",
        type=_positive(int),
        default=DEFAULT_EPOCHS,
        help=f"pretraining epochs per run (default: {DEFAULT_EPOCHS})",
    )
    demo.add_argument(
        "--seeds",
        type=parse_seeds,
        default=[0, 1, 2],
        help="a count (3: seeds 0,1,2) or a comma list of seeds (default: 3)",
    )
    demo.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    demo.add_argument("--out", default="essl-demo", help="output folder for demo.json and demo.png")
    demo.add_argument("--batch-size", type=_positive(int), default=256, help="pretraining batch size (default: 256)")
    demo.add_argument(
        "--width", type=_positive(int), default=16, help="CNN width; features are 4 x width (default: 16)"
    )
    demo.add_argument(
        "--threads", type=_positive(int), default=None, help="torch CPU threads (default: usable cores, at most 8)"
    )
    demo.add_argument(
        "--limit", type=_positive(int), default=None, help="use only the first N train and N test images (quick checks)"
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
    show.add_argument("--out", default="grid.png", help="PNG file to write (default: grid.png)")
    show.add_argument(
        "--size",
        type=_positive(int),
        default=96,
        help="side of the (centre-cropped, square) image in pixels (default: 96)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``essl-aug``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from essl_aug.experiments.demo import run_demo

        device = resolve_device(args.device)
        torch.set_num_threads(args.threads or default_threads())
        if args.batch_size > (args.limit or 1078):
            raise SystemExit(f"essl-aug: --batch-size {args.batch_size} exceeds the training images; lower it")
        run_demo(
            family=args.family,
            lam=args.lam,
            epochs=args.epochs,
            seeds=args.seeds,
            device=device,
            out=args.out,
            batch_size=args.batch_size,
            width=args.width,
            limit=args.limit,
            progress=not args.no_progress,
        )
        return 0
    from essl_aug.experiments.show import show

    try:
        path = show(args.image, args.family, args.out, args.size)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"essl-aug show: {err}") from err
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
