"""Where the time goes in the ops that miss their CPU speed target: their primitives against ``x.clone()``.

For rotation, horizontal flip, grayscale and blur levels, each row times one PyTorch call that the op is made
of, or an alternative formulation that was tried, exactly as :mod:`benchmarks.speed` times the ops
(``torch.utils.benchmark``, labels fixed outside the timed call, 1 thread, interleaved rounds, medians; the
same glibc mmap threshold). A row's ratio is its median over the floor's median in the same round, so a
primitive that alone costs more than the target explains the miss.

The primitives are the package's own kernels (``essl_aug._kernels``) where the op is made of them.

Usage (from the repository root)::

    python -m benchmarks.speed_profile            # float32, 32 px and 224 px: benchmarks/results/speed_profile.*
    python -m benchmarks.speed_profile --quick    # seconds (CI smoke test)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmarks import speed
from essl_aug import BlurLevels, Grayscale, HorizontalFlip, Rotation, _kernels
from essl_aug.functional import GRAY_WEIGHTS

Op = Callable[[], object]
#: The rows that time one blur level on the whole batch; with the floor (the identity) they give the compute floor.
LEVEL = "level"
COMPUTE_FLOOR = "compute floor: the levels' own kernels weighted by their label share, the identity a copy"


def _grouped(x: Tensor, labels: Tensor, fn: Callable[[Tensor, int], Tensor]) -> Tensor:
    """``fn(images with label k, k)`` for every label, scattered back with ``index_copy_`` (CPU; reads labels)."""
    out = torch.empty_like(x)
    for k in range(int(labels.max()) + 1):
        idx = (labels == k).nonzero().squeeze(1)
        if idx.numel():
            out.index_copy_(0, idx, fn(x.index_select(0, idx), k))
    return out


def rotation_ops(x: Tensor, labels: Tensor) -> dict[str, Op]:
    rot = Rotation()
    b, c, h, w = x.shape
    index = torch.randperm(h * w).view(1, 1, h * w).expand(b, c, h * w)
    flat = x.view(b, c, h * w)
    return {
        "essl_aug Rotation": lambda: rot.apply(x, labels),
        "torch.gather, one pixel index per element": lambda: torch.gather(flat, 2, index),
        "torch.rot90(x, 1).contiguous(), a transposing copy": lambda: torch.rot90(x, 1, (2, 3)).contiguous(),
        "x.transpose(2, 3).contiguous(), the bare transposing copy": lambda: x.transpose(2, 3).contiguous(),
        "x.flip((2, 3)), a half turn (the images' memory reversed)": lambda: x.flip((2, 3)),
        "grouped by label: rot90 per group + index_copy_": lambda: _grouped(
            x, labels, lambda g, k: torch.rot90(g, k, (2, 3))
        ),
    }


def hflip_ops(x: Tensor, labels: Tensor) -> dict[str, Op]:
    hflip = HorizontalFlip()
    flipped = x.flip(3)
    buffer = torch.empty_like(x)
    return {
        "essl_aug HorizontalFlip": lambda: hflip.apply(x, labels),
        "x.flip(3), the whole batch": lambda: x.flip(3),
        "select_images, 3 bitwise passes (its 1- and 2-byte form)": lambda: _kernels.select_images(
            labels, flipped, x, buffer
        ),
        "one gather with a per-image column index": lambda: _kernels.flip_columns(x, labels, buffer),
        "index_copy_ of the identity images (its 4- and 8-byte form)": lambda: _kernels.copy_images(
            labels == 0, x, buffer
        ),
    }


def grayscale_ops(x: Tensor, labels: Tensor) -> dict[str, Op]:
    gray = Grayscale()
    r, g, b = x.unbind(1)
    luma = r.mul(GRAY_WEIGHTS[0]).add_(g, alpha=GRAY_WEIGHTS[1]).add_(b, alpha=GRAY_WEIGHTS[2]).unsqueeze(1)
    buffer = torch.empty_like(x)
    mask = labels.view(-1, 1, 1, 1).bool()
    return {
        "essl_aug Grayscale": lambda: gray.apply(x, labels),
        "luma, 3 passes over one channel": lambda: (
            r.mul(GRAY_WEIGHTS[0]).add_(g, alpha=GRAY_WEIGHTS[1]).add_(b, alpha=GRAY_WEIGHTS[2])
        ),
        "select_images, 3 bitwise passes": lambda: _kernels.select_images(labels, luma, x, buffer),
        "torch.where per image": lambda: torch.where(mask, luma, x, out=buffer),
    }


def blur_ops(x: Tensor, labels: Tensor) -> dict[str, Op]:
    blur = BlurLevels()
    table = blur.kernel_table(x.device, x.dtype)
    b, c, h, w = x.shape
    s = table.shape[1]
    p = s // 2
    weight = table.index_select(0, labels).view(b, 1, s).expand(b, c, s).reshape(b * c, 1, s)
    padded = F.pad(x.reshape(1, b * c, h, w), (p, p, p, p), mode="reflect")
    along_w = F.conv2d(padded, weight.view(b * c, 1, 1, s), groups=b * c)
    sizes = [0, *blur.kernel_sizes]

    def one_level(g: Tensor, k: int) -> Tensor:
        if k == 0:
            return g
        n, q = g.shape[0] * c, sizes[k] // 2
        kern = table[k, p - q : p + q + 1]
        y = F.pad(g.reshape(1, n, h, w), (q, q, q, q), mode="reflect")
        y = F.conv2d(y, kern.view(1, 1, 1, -1).expand(n, 1, 1, 2 * q + 1), groups=n)
        return F.conv2d(y, kern.view(1, 1, -1, 1).expand(n, 1, 2 * q + 1, 1), groups=n).view(g.shape)

    return {
        "essl_aug BlurLevels": lambda: blur.apply(x, labels),
        "reflect pad of both axes": lambda: F.pad(x.reshape(1, b * c, h, w), (p, p, p, p), mode="reflect"),
        f"depthwise conv2d along W ({s} taps)": lambda: F.conv2d(padded, weight.view(b * c, 1, 1, s), groups=b * c),
        f"depthwise conv2d along H ({s} taps)": lambda: F.conv2d(along_w, weight.view(b * c, 1, s, 1), groups=b * c),
        "grouped by label: each level's own kernel": lambda: _grouped(x, labels, one_level),
        **{
            f"{LEVEL} {size}: its own kernel on every image, {4 * size} FLOP per element": partial(one_level, x, k)
            for k, size in enumerate(sizes[1:], start=1)
        },
    }


FAMILIES: dict[str, tuple[Callable[[Tensor, Tensor], dict[str, Op]], int]] = {
    "rotation": (rotation_ops, 4),
    "hflip": (hflip_ops, 2),
    "grayscale": (grayscale_ops, 2),
    "blur": (blur_ops, 4),
}


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    cases = []
    for shape in args.shapes:
        x = speed._images(shape, torch.float32, device)
        for name in args.families:
            make, k = FAMILIES[name]
            labels = torch.randint(k, (shape[0],), generator=torch.Generator().manual_seed(0))
            cases.append({"family": name, "shape": list(shape), "ops": {"floor": x.clone, **make(x, labels)}})
    rounds: list[list[dict[str, float]]] = [[] for _ in cases]
    for r in range(args.repeats):
        for i, case in enumerate(cases):
            rounds[i].append(
                {key: speed.time_call(op, device, args.min_run_time)[0] for key, op in case["ops"].items()}
            )
        print(f"  round {r + 1}/{args.repeats} done", file=sys.stderr)
    results = []
    for case, per_round in zip(cases, rounds, strict=True):
        levels = [key for key in case["ops"] if key.startswith(LEVEL + " ")]
        if levels:  # uniform labels: one image in len(levels) + 1 is left as it is
            for t in per_round:
                t[COMPUTE_FLOOR] = (t["floor"] + sum(t[key] for key in levels)) / (len(levels) + 1)
            case["ops"][COMPUTE_FLOOR] = None
        for key in case["ops"]:
            results.append(
                {
                    "family": case["family"],
                    "shape": case["shape"],
                    "op": key,
                    "median_ms": statistics.median(t[key] for t in per_round),
                    "ratio_to_floor": statistics.median(t[key] / t["floor"] for t in per_round),
                }
            )
    return {
        "machine": speed.machine(args.threads, device),
        "versions": {"torch": torch.__version__},
        "command": " ".join(["python", *sys.argv]),
        "repeats": args.repeats,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "results": results,
    }


def table(report: dict) -> str:
    lines = ["| family | shape | op | ms | ratio to x.clone() |", "|---|---|---|---:|---:|"]
    for row in report["results"]:
        shape = "x".join(str(s) for s in row["shape"])
        lines.append(
            f"| {row['family']} | {shape} | {row['op']} | {row['median_ms']:.3f} | {row['ratio_to_floor']:.1f}x |"
        )
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Horizontal bars of every row's ratio to the floor (log scale), one panel per shape."""
    from essl_aug.experiments.report import pyplot

    plt = pyplot()

    shapes = sorted({tuple(r["shape"]) for r in report["results"]}, key=lambda s: -s[-1])
    rows = [[r for r in report["results"] if tuple(r["shape"]) == s and r["op"] != "floor"] for s in shapes]
    fig, axes = plt.subplots(1, len(shapes), figsize=(7 * len(shapes), 0.3 * len(rows[0]) + 1.5), squeeze=False)
    for ax, shape, sub in zip(axes[0], shapes, rows, strict=True):
        ax.barh(
            range(len(sub)),
            [r["ratio_to_floor"] for r in sub],
            color=["C0" if "essl_aug" in r["op"] else "C7" for r in sub],
        )
        ax.set_yticks(range(len(sub)), [f"{r['family']}: {r['op']}" for r in sub], fontsize=7)
        ax.invert_yaxis()
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("time / x.clone()")
        ax.set_title(f"{'x'.join(map(str, shape))} float32, {report['machine']['threads']} thread(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI smoke run: one small shape, one round")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--min-run-time", type=float, default=0.2, help="seconds per blocked_autorange")
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)
    args.shapes = [(8, 3, 16, 16)] if args.quick else [(256, 3, 32, 32), (64, 3, 224, 224)]
    if args.quick:
        args.repeats, args.min_run_time = 1, 0.01
    return args


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    if argv is None and not args.quick:
        speed.raise_mmap_threshold()
    report = run(args)
    stem = "speed_profile_quick" if args.quick else "speed_profile"
    speed.write_report(report, args.out_dir, stem, table(report), plot)
    return report


if __name__ == "__main__":
    main()
