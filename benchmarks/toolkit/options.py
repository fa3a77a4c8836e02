"""Command-line options shared by the benchmark scripts (and the family-grid viewer, ``python -m benchmarks.show``).

The parsers are ``argparse`` ``type=`` functions: a bad value raises ``argparse.ArgumentTypeError``, which
argparse reports as a usage error naming the option.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable

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


def positive_int(text: str) -> int:
    """An integer above 0.

    Example:
        >>> positive_int("3")
        3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


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
    bad = [v for v in values if not 0 <= v < 2**63]
    if bad:
        raise argparse.ArgumentTypeError(f"`--seeds` must lie in 0..2**63-1, got {bad[0]} in {text!r}")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(
            f"`--seeds` lists seed {repeated[0]} twice in {text!r}; a repeated seed repeats a run, give distinct seeds"
        )
    return values


def batch_size(text: str) -> int:
    """A batch size: an integer of at least 2 (SimCLR's loss needs a negative, batch normalisation two images).

    Example:
        >>> batch_size("256")
        256
    """
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(
            f"must be at least 2 (the contrastive loss needs a negative, batch normalisation two images), got {text}"
        )
    return value


def non_negative_float(text: str) -> float:
    """A finite float at least 0 (e.g. the E-SSL weight: 0 turns the term off); ``nan`` and ``inf`` are refused.

    Example:
        >>> non_negative_float("0.4")
        0.4
    """
    return _finite_float(text, ">=")


def positive_float(text: str) -> float:
    """A finite float above 0 (e.g. seconds per measurement); ``nan``, ``inf``, 0 and negatives are refused.

    Example:
        >>> positive_float("0.2")
        0.2
    """
    return _finite_float(text, ">")


def _finite_float(text: str, bound: str) -> float:
    """``text`` as a finite float ``>= 0`` or ``> 0`` (``bound``), or an ``ArgumentTypeError`` saying which."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number {bound} 0, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number {bound} 0, got {text}")
    if not (value > 0 if bound == ">" else value >= 0):
        raise argparse.ArgumentTypeError(f"must be {bound} 0, got {text}")
    return value


def batch_shape(text: str) -> tuple[int, int, int, int]:
    """A batch shape ``BxCxHxW`` of positive integers.

    Example:
        >>> batch_shape("64x3x32x32")
        (64, 3, 32, 32)
    """
    parts = text.lower().split("x")
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"must be a batch shape BxCxHxW of positive integers (64x3x32x32), got {text!r}"
        )
    b, c, h, w = (int(p) for p in parts)
    return b, c, h, w


def parse_device(text: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; anything else must be a valid, available device.

    Example:
        >>> parse_device("cpu")
        device(type='cpu')
    """
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError as err:
        raise argparse.ArgumentTypeError(f"invalid device {text!r} ({err}); use cpu, cuda, cuda:1 or auto") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r} requested but CUDA is not available; use cpu")
    return device


def default_threads() -> int:
    """Torch CPU threads: the usable cores, at most 8 (the small models gain nothing beyond)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def set_threads(threads: int | None) -> int:
    """Set torch's CPU threads to ``threads`` (``None``: :func:`default_threads`); returns the number set."""
    n = threads or default_threads()
    torch.set_num_threads(n)
    return n


def add_run_options(p: argparse.ArgumentParser, out: str, quick: str) -> None:
    """The options every study script ends with: ``--device``, ``--threads``, ``--out`` (default ``out``),
    ``--quick`` (help ``quick``) and ``--no-progress``."""
    p.add_argument("--device", type=parse_device, default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: usable cores)")
    p.add_argument("--out", default=out)
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--no-progress", action="store_true")


def reported(script: str, job: Callable[[], object]) -> int:
    """Run ``job``; returns the exit status: 0, or 2 after one line ``script: message`` on stderr when it stops on a
    mistake in the options, the data or ``--out`` (``OSError``, ``ValueError``, ``ImportError``)."""
    try:
        job()
    except (OSError, ValueError, ImportError) as err:
        print(f"{script}: {err}", file=sys.stderr)
        return 2
    return 0
