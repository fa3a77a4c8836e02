"""Speed of the two-view SimCLR recipe on a batch: essl_aug against kornia, torchvision per image, and the floor.

For each batch shape (uint8 images by default), the median time to produce both SimCLR views of the batch
(lightly's ``SimCLRTransform`` values, :func:`essl_aug.views.simclr`: random resized crop, flip, colour
jitter p=0.8, grayscale p=0.2, blur p=0.5, normalisation) with:

- ``floor``: ``x.clone()`` of the input batch (one read and one write);
- ``essl_aug``: :func:`~essl_aug.views.simclr` (augmentations on the input's dtype, conversion and
  normalisation fused at the end; every parameter drawn and returned);
- ``essl_aug_float32``: the same recipe with ``compute_dtype=torch.float32`` (converted first);
- ``kornia``: ``kornia.augmentation.AugmentationSequential`` with the same recipe, called once per view, on the
  batch converted to float32 in [0, 1] (kornia takes float images only; the conversion is timed);
- ``torchvision``: ``torchvision.transforms.v2.Compose`` of the same recipe, applied per image in a Python loop
  (torchvision draws one set of parameters per call), both views, stacked.

Times with ``torch.utils.benchmark`` (median of ``blocked_autorange``) in interleaved rounds; ratios are to the
floor of the same round and the medians over rounds are reported (as :mod:`benchmarks.speed`). The blur kernel size
of the anchors is the one essl_aug's blur uses for the crop size, so every op does the same work.

Usage (from the repository root)::

    python -m benchmarks.views                    # CPU (or --device cuda): JSON, Markdown and PNG in --out-dir
    python -m benchmarks.views --quick            # seconds: one small shape, one round (CI smoke test)
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

import essl_aug
from benchmarks.speed import batch_shapes, machine, ratio_cell, report_run, summarise, time_rounds
from benchmarks.toolkit.options import batch_shape, parse_device, positive_float, positive_int
from essl_aug import RandomGaussianBlur
from essl_aug.views import IMAGENET_NORMALIZE, simclr

#: (B, C, H, W) of the input batch and the crop size: CIFAR-sized and ImageNet-sized.
SHAPES = ((256, 3, 32, 32), (64, 3, 224, 224))
OPS = ("floor", "essl_aug", "essl_aug_float32", "kornia", "torchvision")
Op = Callable[[], object]


def _images(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    return (x if dtype == torch.uint8 else x.to(dtype) / 255).to(device)


def blur_kernel_size(size: int) -> int:
    """The kernel size essl_aug's blur uses on ``size`` x ``size`` crops (the anchors use the same)."""
    return int(RandomGaussianBlur().kernel_size_for(size, size))


def kornia_op(x: Tensor, size: int) -> Op:
    """kornia's ``AugmentationSequential`` with the SimCLR recipe, both views (float32 input in [0, 1])."""
    import kornia.augmentation as K

    mean, std = (torch.tensor(v, device=x.device) for v in IMAGENET_NORMALIZE)  # no copy per call
    seq = K.AugmentationSequential(
        K.RandomResizedCrop((size, size), scale=(0.08, 1.0)),
        K.RandomHorizontalFlip(p=0.5),
        K.ColorJitter(0.8, 0.8, 0.8, 0.2, p=0.8),
        K.RandomGrayscale(p=0.2),
        K.RandomGaussianBlur(blur_kernel_size(size), sigma=(0.1, 2.0), p=0.5),
        K.Normalize(mean, std),
    ).to(x.device)

    def run() -> list[Tensor]:
        xf = x if x.dtype.is_floating_point else x.float().div_(255)
        return [seq(xf), seq(xf)]

    return run


def torchvision_op(x: Tensor, size: int) -> Op:
    """torchvision v2's ``Compose`` of the SimCLR recipe applied per image in a loop, both views, stacked."""
    from torchvision.transforms import v2

    mean, std = IMAGENET_NORMALIZE
    tf = v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
            v2.RandomHorizontalFlip(p=0.5),
            v2.RandomApply([v2.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([v2.GaussianBlur(blur_kernel_size(size), sigma=(0.1, 2.0))], p=0.5),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )

    def run() -> list[Tensor]:
        return [torch.stack([tf(img) for img in x]) for _ in range(2)]

    return run


def ops(x: Tensor, size: int, names: tuple[str, ...] = OPS) -> dict[str, Op]:
    """The timed callables for the batch ``x`` and crops of ``size``."""
    default, as_float = simclr(size), simclr(size, compute_dtype=torch.float32)
    every: dict[str, Callable[[], Op]] = {
        "floor": lambda: x.clone,
        "essl_aug": lambda: lambda: default(x),
        "essl_aug_float32": lambda: lambda: as_float(x),
        "kornia": lambda: kornia_op(x, size),
        "torchvision": lambda: torchvision_op(x, size),
    }
    return {name: every[name]() for name in names}


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    cases = []
    for shape in args.shapes:
        x = _images(shape, dtype, device)
        size = args.size or shape[-1]
        cases.append({"shape": list(shape), "dtype": args.dtype, "size": size, "ops": ops(x, size, tuple(args.ops))})
    rounds = time_rounds(cases, device, args.repeats, args.min_run_time)
    results = []
    for case, per_round in zip(cases, rounds, strict=True):
        row = {k: v for k, v in case.items() if k != "ops"}
        row["device"] = device.type
        row["blur_kernel_size"] = blur_kernel_size(case["size"])
        row.update({key: summarise(per_round, key) for key in case["ops"]})
        results.append(row)
    return {
        "machine": machine(args.threads, device),
        "versions": _versions(),
        "command": " ".join(["python", *sys.argv]),
        "recipe": "simclr (lightly SimCLRTransform defaults), two views",
        "repeats": args.repeats,
        "min_run_time_s": args.min_run_time,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "results": results,
    }


def _versions() -> dict[str, str]:
    import kornia
    import torchvision

    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "kornia": kornia.__version__,
        "essl_aug": essl_aug.__version__,
        "python": platform.python_version(),
    }


# -- reporting ---------------------------------------------------------------------------------------------------------


def _speedup(row: dict, key: str) -> str:
    """How many times longer ``key`` takes than essl_aug (medians)."""
    entry, ours = row.get(key), row.get("essl_aug")
    if entry is None or ours is None or entry["median_ms"] != entry["median_ms"]:
        return "-"
    return f"{entry['median_ms'] / ours['median_ms']:.1f}x"


def table(report: dict) -> str:
    """A Markdown table: the floor's and essl_aug's ms, every op's ratio to the floor, and each anchor's time over
    essl_aug's."""
    anchors = [k for k in ("essl_aug_float32", "kornia", "torchvision") if any(k in r for r in report["results"])]
    head = "| shape | dtype | crop | device | floor ms | essl_aug ms | essl_aug |"
    head += "".join(f" {k} |" for k in anchors) + "".join(f" {k} / essl_aug |" for k in anchors)
    lines = [head, "|" + "---|" * 4 + "---:|" * (3 + 2 * len(anchors))]
    for row in report["results"]:
        shape = "x".join(str(s) for s in row["shape"])
        line = (
            f"| {shape} | {row['dtype']} | {row['size']} | {row['device']} | {row['floor']['median_ms']:.3f} | "
            f"{row['essl_aug']['median_ms']:.3f} | {ratio_cell(row, 'essl_aug')} |"
        )
        line += "".join(f" {ratio_cell(row, k)} |" for k in anchors)
        line += "".join(f" {_speedup(row, k)} |" for k in anchors)
        lines.append(line)
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Bars of every op's time over the floor (log scale), one group per shape."""
    from benchmarks.toolkit.report import pyplot

    plt = pyplot()
    rows = report["results"]
    keys = [k for k in OPS if k != "floor" and any(k in r for r in rows)]
    fig, ax = plt.subplots(figsize=(2.2 + 2.2 * len(rows), 3.4))
    width = 0.8 / max(1, len(keys))
    for j, key in enumerate(keys):
        vals = [r[key]["ratio_to_floor"] if key in r else float("nan") for r in rows]
        ax.bar([i + j * width for i in range(len(rows))], vals, width, label=key)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_yscale("log")
    names = [f"{'x'.join(map(str, r['shape']))} {r['dtype']}\ncrop {r['size']}" for r in rows]
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], names, fontsize=8)
    ax.set_ylabel("time / x.clone()")
    m = report["machine"]
    ax.set_title(f"SimCLR two views, {m['device']}, {m['threads']} thread(s)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI smoke run: one small shape, one round")
    p.add_argument("--device", type=parse_device, default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=positive_int, default=1, help="torch.set_num_threads (default 1)")
    p.add_argument(
        "--repeats", type=positive_int, default=3, help="interleaved rounds; medians over rounds are reported"
    )
    p.add_argument("--min-run-time", type=positive_float, default=0.2, help="seconds per blocked_autorange")
    p.add_argument("--dtype", default="uint8", choices=["uint8", "float32"], help="the input batch's dtype")
    p.add_argument("--shapes", nargs="+", type=batch_shape, default=None, help="input batch shapes as BxCxHxW")
    p.add_argument("--size", type=positive_int, default=None, help="crop size (default: the input's width)")
    p.add_argument("--ops", nargs="+", default=list(OPS), choices=OPS, help="what to time (floor always)")
    p.add_argument("--out-dir", "--out", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--default-malloc", action="store_true", help="keep glibc's default mmap threshold")
    args = p.parse_args(argv)
    args.shapes = batch_shapes(args, [(4, 3, 24, 24)], SHAPES)
    if "floor" not in args.ops:
        args.ops = ["floor", *args.ops]
    if args.quick:
        args.repeats, args.min_run_time = 1, 0.01
    return args


def main(argv: list[str] | None = None) -> dict:
    return report_run(_parse(argv), argv, run, "views", table, plot)


if __name__ == "__main__":
    main()
