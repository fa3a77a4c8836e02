"""One full E-SSL training step on the device: E-SimCLR against SimCLR, ResNet-18 on ImageNet-sized uint8 batches.

One step is one call of the toolkit's training loop (:func:`benchmarks.toolkit.pretrain_loop`, one epoch of one
batch): the two SimCLR views made on the device by :func:`essl_aug.views.simclr` from the uint8 batch (every
parameter drawn there), torchvision's ResNet-18 (ImageNet stem, 512 features) and a 512-2048-128 projector forward,
NT-Xent, and for ``e_simclr`` the reference E-SSL term (:class:`~essl_aug.objectives.ESSL` from the ``essl:`` block
``{lambda: 0.4, transform: rotation, mode: all}``: all four rotations of the reference extra view, 96 px at 224),
backward, one SGD step; on CUDA under autocast (``--no-amp``: float32). Each variant is warmed up by one step, then
its steps are timed one by one (``torch.cuda.synchronize`` before and after each), the variants interleaved; the
medians are reported with the E-SSL step's ratio to SimCLR's, and the time of the SimCLR recipe's call alone.

Usage (from the repository root)::

    python -m benchmarks.gpu_step --device cuda       # 256x3x224x224 uint8: benchmarks/results/gpu_step.{json,md}
    python -m benchmarks.gpu_step --quick             # seconds, on the CPU: 4x3x32x32 (CI smoke test)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from benchmarks.speed import machine, report_run
from benchmarks.toolkit import nt_xent, pretrain_loop, projector
from benchmarks.toolkit.options import batch_shape, parse_device, positive_int
from essl_aug.config import ESSLConfig
from essl_aug.views import simclr

VARIANTS = ("simclr", "e_simclr")
#: The reference E-SSL term, as the ``essl:`` block.
BLOCK = {"lambda": 0.4, "transform": "rotation", "mode": "all", "hidden_dim": 2048}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(variant: str, x: torch.Tensor, amp: bool, seed: int = 0) -> Callable[[], float]:
    """One training step of ``variant`` on the batch ``x`` (uint8, on its device); returns the step's total loss."""
    import torchvision

    device, size = x.device, x.shape[-1]
    torch.manual_seed(seed)
    backbone = torchvision.models.resnet18()
    backbone.fc = nn.Identity()
    backbone, head = backbone.to(device), projector(512, hidden=2048, out=128).to(device)
    views = simclr(size)
    block = ESSLConfig.from_mapping(BLOCK)
    objectives = block.build_objectives(512) if variant == "e_simclr" else None
    extra = block.extra_view(size, True, views.pipelines[0].normalize)
    params = [*backbone.parameters(), *head.parameters(), *(objectives.parameters() if objectives else [])]
    if objectives is not None:
        objectives.to(device)
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    gen = torch.Generator(device).manual_seed(seed)

    def step() -> float:
        history = pretrain_loop(
            backbone,
            head,
            x,
            views=views,
            ssl_loss=nt_xent,
            optimizer=optimizer,
            lr=lambda s: 0.1,
            epochs=1,
            batch_size=x.shape[0],
            generator=gen,
            objectives=objectives,
            extra=lambda images, g: extra(images, g)[0],
            amp=amp,
        )
        return history[0]["loss"]

    return step


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    (shape,) = args.shapes
    x = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(0), dtype=torch.uint8).to(device)
    amp = args.amp and device.type == "cuda"
    steps = {v: make_step(v, x, amp) for v in VARIANTS}
    recipe = simclr(shape[-1])
    times: dict[str, list[float]] = {v: [] for v in (*VARIANTS, "views")}
    losses = {v: step() for v, step in steps.items()}  # warm-up (and every module built)
    recipe(x)
    for _ in range(args.repeats):
        for name, fn in (*steps.items(), ("views", lambda: recipe(x))):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {
        "machine": machine(args.threads, device),
        "command": " ".join(["python", *sys.argv]),
        "shape": list(shape),
        "amp": amp,
        "repeats": args.repeats,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "first_loss": losses,
        "results": {k: {"median_ms": medians[k], "steps_ms": times[k]} for k in times},
        "essl_ratio": medians["e_simclr"] / medians["simclr"],
        "views_share_of_simclr_step": medians["views"] / medians["simclr"],
    }


def table(report: dict) -> str:
    r = report["results"]
    shape = "x".join(map(str, report["shape"]))
    return "\n".join(
        [
            "| batch | device | amp | SimCLR step ms | E-SimCLR step ms | E-SimCLR / SimCLR | SimCLR views ms |",
            "|---|---|---|---:|---:|---:|---:|",
            f"| {shape} uint8 | {report['machine']['device']} | {report['amp']} | {r['simclr']['median_ms']:.1f} | "
            f"{r['e_simclr']['median_ms']:.1f} | {report['essl_ratio']:.2f}x | {r['views']['median_ms']:.1f} |",
        ]
    )


def plot(report: dict, path: Path) -> None:
    """Bars of the two steps' medians and the views' time."""
    from benchmarks.toolkit.report import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    names = ["simclr", "e_simclr", "views"]
    ax.bar(names, [report["results"][n]["median_ms"] for n in names])
    ax.set_ylabel("ms")
    ax.set_title(f"one step, {'x'.join(map(str, report['shape']))}, {report['machine']['device']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI smoke run: 4x3x32x32 on the CPU, two steps each")
    p.add_argument("--device", type=parse_device, default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=positive_int, default=1, help="torch.set_num_threads (default 1)")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed steps per variant (default 5)")
    p.add_argument("--shape", type=batch_shape, default=None, help="the uint8 batch, BxCxHxW (256x3x224x224)")
    p.add_argument("--no-amp", dest="amp", action="store_false", help="float32 on CUDA (default: autocast)")
    p.add_argument("--out-dir", "--out", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--default-malloc", action="store_true", help="keep glibc's default mmap threshold")
    args = p.parse_args(argv)
    args.shapes = [args.shape or ((4, 3, 32, 32) if args.quick else (256, 3, 224, 224))]
    if args.quick:
        args.repeats = 2
    return args


def main(argv: list[str] | None = None) -> dict:
    return report_run(_parse(argv), argv, run, "gpu_step", table, plot)


if __name__ == "__main__":
    main()
