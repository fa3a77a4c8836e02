"""Speed of the view recipes on a batch: essl_aug against kornia, torchvision per image, and the floor.

For each batch shape (uint8 images by default), the median time to produce every view of the batch by the recipe
``--recipe``: ``simclr`` (default), both SimCLR views (lightly's ``SimCLRTransform`` values,
:func:`essl_aug.views.simclr`: random resized crop, flip, colour jitter p=0.8, grayscale p=0.2, blur p=0.5,
normalisation), or ``dino``, DINO's multi-crop views (:func:`essl_aug.views.dino`: 2 global crops of ``--size`` and
``--num-local`` local crops of ``--local-size``, bicubic, per-crop blur and solarization), with:

- ``floor``: ``x.clone()`` of the input batch (one read and one write);
- ``essl_aug``: :func:`~essl_aug.views.simclr` (augmentations on the input's dtype, conversion and
  normalisation fused at the end; every parameter drawn and returned);
- ``essl_aug_float32``: the same recipe with ``compute_dtype=torch.float32`` (converted first);
- ``kornia``: ``kornia.augmentation.AugmentationSequential`` with the same ops, one per view kind, called once per
  view, on the batch converted to float32 in [0, 1] (kornia takes float images only; the conversion is timed);
- ``torchvision``: ``torchvision.transforms.v2.Compose`` of the same ops, applied per image in a Python loop
  (torchvision draws one set of parameters per call), every view, stacked.

The anchors are built from the recipe's own augmentations (:func:`anchor_ops`), so they run the same ops with the
same settings: crop size, scale, ratio and filter, flip, jitter ranges, blur sigma range and kernel size (the recipe's
Pillow-like 13 taps), solarization at 128, probabilities, normalisation.

Times with ``torch.utils.benchmark`` (median of ``blocked_autorange``) in interleaved rounds; ratios are to the
floor of the same round and the medians over rounds are reported (as :mod:`benchmarks.speed`). The blur kernel size
of the anchors is the one essl_aug's blur uses for the crop size, so every op does the same work.

Usage (from the repository root)::

    python -m benchmarks.views                    # CPU (or --device cuda): JSON, Markdown and PNG in --out-dir
    python -m benchmarks.views --quick            # seconds: one small shape, one round (CI smoke test)
    python -m benchmarks.views --recipe dino --shapes 16x3x224x224   # DINO, 2 x 224 + 8 x 96 crops: views_dino.*
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import essl_aug
from benchmarks.speed import batch_shapes, machine, ratio_cell, report_run, summarise, time_rounds
from benchmarks.toolkit.options import batch_shape, parse_device, positive_float, positive_int
from essl_aug.transforms import (
    ColorJitter,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomSolarize,
)
from essl_aug.views import TwoViews, ViewPipeline, dino, simclr

#: (B, C, H, W) of the input batch and the crop size: CIFAR-sized and ImageNet-sized.
SHAPES = ((256, 3, 32, 32), (64, 3, 224, 224))
#: The DINO rows' input batches (a CPU-sized batch: each image makes 10 crops).
DINO_SHAPES = ((16, 3, 224, 224),)
RECIPES = ("simclr", "dino")
RECIPE_NAMES = {
    "simclr": "simclr (lightly SimCLRTransform defaults), two views",
    "dino": "dino (facebookresearch/dino DataAugmentationDINO), 2 global and num_local local crops",
}
OPS = ("floor", "essl_aug", "essl_aug_float32", "kornia", "torchvision")
Op = Callable[[], object]


def _images(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    return (x if dtype == torch.uint8 else x.to(dtype) / 255).to(device)


def blur_kernel_size(size: int) -> int:
    """The kernel size the recipes' blur uses on ``size`` x ``size`` crops (the anchors use the same)."""
    blur = simclr(size).pipelines[0]["gaussian_blur"]
    assert isinstance(blur, RandomGaussianBlur)
    return blur.kernel_size_for(size, size)


def make_recipe(name: str, size: int, local_size: int | None = None, num_local: int = 8, **options: object) -> TwoViews:
    """The recipe ``name`` for crops of ``size`` (DINO: its local crops of ``local_size``, by default ``size`` x 96 /
    224, and ``num_local`` of them)."""
    if name == "dino":
        local = local_size or max(8, round(size * 96 / 224))
        return dino(size, local_size=local, num_local=num_local, **options)  # type: ignore[arg-type]
    return simclr(size, **options)  # type: ignore[arg-type]


def anchor_ops(pipe: ViewPipeline) -> list[tuple[str, dict[str, Any]]]:
    """The ops of one view of a recipe, ``[(kind, settings)]`` in order, from its augmentations: what the anchors
    build."""
    out: list[tuple[str, dict[str, Any]]] = []
    for aug in pipe:
        if isinstance(aug, RandomResizedCrop):
            assert aug.size is not None
            settings = {"size": aug.size, "scale": aug.scale, "ratio": aug.ratio, "interpolation": aug.interpolation}
            out.append(("crop", settings))
        elif isinstance(aug, RandomHorizontalFlip):
            out.append(("hflip", {"p": aug.p}))
        elif isinstance(aug, ColorJitter):
            b, c, s, h = aug.ranges
            out.append(("jitter", {"ranges": (b, c, s, h), "p": aug.p}))
        elif isinstance(aug, RandomGrayscale):
            out.append(("grayscale", {"p": aug.p}))
        elif isinstance(aug, RandomGaussianBlur):
            crop = pipe["resized_crop"]
            assert isinstance(crop, RandomResizedCrop) and crop.size is not None
            out.append(("blur", {"kernel": aug.kernel_size_for(*crop.size), "sigma": aug.sigma, "p": aug.p}))
        elif isinstance(aug, RandomSolarize):
            if aug.p:  # a probability 0 does nothing in the anchors
                out.append(("solarize", {"threshold": aug.threshold, "p": aug.p}))
        else:
            raise TypeError(f"no anchor for {type(aug).__name__}")
    return out


def _per_view(recipe: TwoViews, build: Callable[[ViewPipeline], Any]) -> list[Any]:
    """``build(pipeline)`` for each view of ``recipe``, once per distinct pipeline (the local crops share one)."""
    built: dict[int, Any] = {}
    for pipe in recipe.pipelines:
        if id(pipe) not in built:
            built[id(pipe)] = build(pipe)
    return [built[id(pipe)] for pipe in recipe.pipelines]


def kornia_op(x: Tensor, recipe: TwoViews) -> Op:
    """kornia's ``AugmentationSequential`` with each view's ops, every view (float32 input in [0, 1])."""
    import kornia.augmentation as K

    def build(pipe: ViewPipeline) -> Any:
        ops: list[Any] = []
        for kind, o in anchor_ops(pipe):
            if kind == "crop":
                resample = o["interpolation"].upper()
                ops.append(K.RandomResizedCrop(o["size"], scale=o["scale"], ratio=o["ratio"], resample=resample))
            elif kind == "hflip":
                ops.append(K.RandomHorizontalFlip(p=o["p"]))
            elif kind == "jitter":
                ops.append(K.ColorJitter(*o["ranges"], p=o["p"]))
            elif kind == "grayscale":
                ops.append(K.RandomGrayscale(p=o["p"]))
            elif kind == "blur":
                ops.append(K.RandomGaussianBlur((o["kernel"], o["kernel"]), sigma=o["sigma"], p=o["p"]))
            elif kind == "solarize":  # kornia's threshold is 0.5 +- thresholds: a fixed 0.5 with 0
                ops.append(K.RandomSolarize(thresholds=0.0, additions=0.0, p=o["p"]))
        if pipe.normalize is not None:
            mean, std = (torch.tensor(v, device=x.device) for v in pipe.normalize)  # no copy per call
            ops.append(K.Normalize(mean, std))
        return K.AugmentationSequential(*ops).to(x.device)

    seqs = _per_view(recipe, build)

    def run() -> list[Tensor]:
        xf = x if x.dtype.is_floating_point else x.float().div_(255)
        return [seq(xf) for seq in seqs]

    return run


def torchvision_op(x: Tensor, recipe: TwoViews) -> Op:
    """torchvision v2's ``Compose`` of each view's ops applied per image in a loop, every view, stacked."""
    from torchvision.transforms import InterpolationMode, v2

    def build(pipe: ViewPipeline) -> Any:
        ops: list[Any] = []
        for kind, o in anchor_ops(pipe):
            if kind == "crop":
                mode = InterpolationMode(o["interpolation"])
                ops.append(v2.RandomResizedCrop(o["size"], o["scale"], o["ratio"], mode, antialias=True))
            elif kind == "hflip":
                ops.append(v2.RandomHorizontalFlip(p=o["p"]))
            elif kind == "jitter":
                ops.append(v2.RandomApply([v2.ColorJitter(*o["ranges"])], p=o["p"]))
            elif kind == "grayscale":
                ops.append(v2.RandomGrayscale(p=o["p"]))
            elif kind == "blur":
                ops.append(v2.RandomApply([v2.GaussianBlur(o["kernel"], sigma=o["sigma"])], p=o["p"]))
            elif kind == "solarize":
                peak = 255 if x.dtype == torch.uint8 else 1.0
                ops.append(v2.RandomSolarize(o["threshold"] * peak, p=o["p"]))
        ops.append(v2.ToDtype(torch.float32, scale=True))
        if pipe.normalize is not None:
            ops.append(v2.Normalize(list(pipe.normalize[0]), list(pipe.normalize[1])))
        return v2.Compose(ops)

    composes = _per_view(recipe, build)

    def run() -> list[Tensor]:
        return [torch.stack([tf(img) for img in x]) for tf in composes]

    return run


def ops(
    x: Tensor,
    size: int,
    names: tuple[str, ...] = OPS,
    recipe: str = "simclr",
    local_size: int | None = None,
    num_local: int = 8,
) -> dict[str, Op]:
    """The timed callables for the batch ``x`` and crops of ``size`` made by ``recipe``."""
    default = make_recipe(recipe, size, local_size, num_local)
    as_float = make_recipe(recipe, size, local_size, num_local, compute_dtype=torch.float32)
    every: dict[str, Callable[[], Op]] = {
        "floor": lambda: x.clone,
        "essl_aug": lambda: lambda: default(x),
        "essl_aug_float32": lambda: lambda: as_float(x),
        "kornia": lambda: kornia_op(x, default),
        "torchvision": lambda: torchvision_op(x, default),
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
        timed = ops(x, size, tuple(args.ops), args.recipe, args.local_size, args.num_local)
        case = {"shape": list(shape), "dtype": args.dtype, "size": size, "ops": timed}
        if args.recipe == "dino":
            crops = make_recipe("dino", size, args.local_size, args.num_local)
            local = crops.pipelines[2]["resized_crop"]
            assert isinstance(local, RandomResizedCrop) and local.size is not None
            case.update(local_size=local.size[0], num_local=args.num_local)
        cases.append(case)
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
        "recipe": RECIPE_NAMES[args.recipe],
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
        crop = f"{row['size']} + {row['num_local']}x{row['local_size']}" if "num_local" in row else row["size"]
        line = (
            f"| {shape} | {row['dtype']} | {crop} | {row['device']} | {row['floor']['median_ms']:.3f} | "
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
    views = "SimCLR two views" if report["recipe"].startswith("simclr") else "DINO multi-crop"
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], names, fontsize=8)
    ax.set_ylabel("time / x.clone()")
    m = report["machine"]
    ax.set_title(f"{views}, {m['device']}, {m['threads']} thread(s)", fontsize=9)
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
    p.add_argument("--recipe", default="simclr", choices=RECIPES, help="the views (default simclr)")
    p.add_argument("--local-size", type=positive_int, default=None, help="dino: local crop size (size x 96 / 224)")
    p.add_argument("--num-local", type=positive_int, default=8, help="dino: number of local crops (default 8)")
    p.add_argument("--ops", nargs="+", default=list(OPS), choices=OPS, help="what to time (floor always)")
    p.add_argument("--out-dir", "--out", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--default-malloc", action="store_true", help="keep glibc's default mmap threshold")
    args = p.parse_args(argv)
    args.shapes = batch_shapes(args, [(4, 3, 24, 24)], DINO_SHAPES if args.recipe == "dino" else SHAPES)
    if "floor" not in args.ops:
        args.ops = ["floor", *args.ops]
    if args.quick:
        args.repeats, args.min_run_time = 1, 0.01
    return args


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    return report_run(args, argv, run, "views" if args.recipe == "simclr" else f"views_{args.recipe}", table, plot)


if __name__ == "__main__":
    main()
