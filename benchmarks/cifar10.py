"""The reference E-SimCLR CIFAR-10 recipe, for a GPU and a local copy of CIFAR-10.

Faithful to the official E-SSL code (``cifar10/main.py``; see docs/guides/demo.md):

- ResNet-18 with the CIFAR stem (512-d features); projector 512-2048-2048 (BN, last BN without affine);
- SimCLR loss: symmetrised InfoNCE on the cross-view logits, temperature 0.5;
- views: RandomResizedCrop(32, scale 0.2-1), horizontal flip 0.5, ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8,
  grayscale 0.2, CIFAR normalisation; the E-SSL view is the library's reference extra view
  (:func:`essl_aug.views.extra_view`: the same ops at 16x16), all four rotations of it through the backbone and the
  reference head (512-2048-2048-4, LayerNorm) of :class:`~essl_aug.objectives.ESSL`, built from the ``essl:`` block
  (:mod:`essl_aug.config`), lambda (``--lambda``, the E-SSL weight) 0.4;
- SGD momentum 0.9, weight decay 5e-4, batch 512 (drop last), peak lr ``lr * batch / 256`` with
  ``lr = 0.06`` for E-SimCLR and 0.03 for SimCLR (``--lambda 0``), linear warmup over 10 epochs per
  iteration, then cosine to 0; 800 epochs;
- linear probe(s) on the frozen encoder (eval mode): Linear(512, 10), SGD momentum 0.9, lr 30, no weight
  decay, batch 256, 100 epochs with cosine; train views RandomResizedCrop(32, scale 0.08-1) + flip, test
  Resize(36) + CenterCrop(32); mean +- std over ``--probes`` probes (reference: 5).

Differences: augmentations run batched on the device with the library's view pipelines (:mod:`essl_aug.views`: the
same distributions, on the uint8 images, bilinear antialiased crops instead of bicubic ones) and the kNN monitor is
not run.

Data: ``--data DIR`` where DIR (or DIR/cifar-10-batches-py) holds the extracted python version of CIFAR-10
(``data_batch_1`` .. ``data_batch_5``, ``test_batch``). Nothing is downloaded.

Every piece (data loader, augmentations, ResNet, projector, loss, pre-training loop, schedule, probe, report) is
the training toolkit's (:mod:`benchmarks.toolkit`); this script is the recipe's settings.

Usage (from the repository root)::

    python -m benchmarks.cifar10 --data ~/data/cifar10 --device cuda --out results/cifar10-essl
    python -m benchmarks.cifar10 --data ~/data/cifar10 --device cuda --lambda 0 --out results/cifar10-simclr
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.toolkit.data import CIFAR10_MEAN, CIFAR10_STD, load_cifar10, normalise
from benchmarks.toolkit.models import projector
from benchmarks.toolkit.options import non_negative_float, parse_device, positive_int
from benchmarks.toolkit.pretrain import pretrain_loop, warmup_cosine
from benchmarks.toolkit.probe import sgd_linear_probe
from benchmarks.toolkit.report import environment, fmt, summarise, write_json
from benchmarks.toolkit.resnet import CifarResNet18
from benchmarks.toolkit.simclr import info_nce_cross_view
from benchmarks.toolkit.views import view
from essl_aug.config import ESSLConfig
from essl_aug.views import TwoViews, ViewPipeline

#: CIFAR-10's per-channel mean and standard deviation, the views' normalisation.
NORMALIZE = (CIFAR10_MEAN, CIFAR10_STD)
#: The SSL view of the recipe (on uint8 images, normalised at the end).
VIEW = view(32, (0.2, 1.0), flip=0.5, jitter=0.8, gray=0.2, normalize=NORMALIZE)
#: The linear probe's training view: RandomResizedCrop(32, scale 0.08-1) and a horizontal flip, normalised.
PROBE_VIEW = view(32, (0.08, 1.0), flip=0.5, normalize=NORMALIZE)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The reference settings; ``weight`` is the E-SSL weight (``--lambda``), 0 for plain SimCLR."""

    epochs: int = 800
    batch_size: int = 512
    lr: float | None = None
    weight: float = 0.4
    family: str = "rotation"
    temperature: float = 0.5
    weight_decay: float = 5e-4
    warmup_epochs: int = 10
    essl_size: int = 16
    probe_epochs: int = 100
    probe_lr: float = 30.0
    probe_batch: int = 256
    probes: int = 5
    width: int = 64
    amp: bool = False
    seed: int = 42

    @property
    def base_lr(self) -> float:
        return self.lr if self.lr is not None else (0.06 if self.weight > 0 else 0.03)

    @property
    def essl(self) -> ESSLConfig:
        """The recipe's ``essl:`` block: ``family`` at weight ``weight`` (0: off), an extra view of ``essl_size``."""
        return ESSLConfig.from_mapping({"lambda": self.weight, "transform": self.family, "crop_size": self.essl_size})

    def extra_view(self, size: int | None = None) -> ViewPipeline:
        """The reference extra view (:func:`essl_aug.views.extra_view`) for the 32 px views, ``essl_size`` px (or
        ``size``), normalised."""
        recipe = self if size is None else dataclasses.replace(self, essl_size=size)
        return recipe.essl.extra_view(32, photometric=True, normalize=NORMALIZE)


def _to_float(x: Tensor) -> Tensor:
    return x.float().div_(255)


def pretrain_resnet(
    recipe: Recipe, train_x: Tensor, device: torch.device, log: Callable[[str], None] = print
) -> tuple[CifarResNet18, list[dict[str, float]]]:
    """Pre-train the CIFAR ResNet-18 on uint8 ``train_x`` (on ``device``); returns it (eval mode) and its history."""
    torch.manual_seed(recipe.seed)
    gen = torch.Generator(device=device).manual_seed(recipe.seed)
    backbone = CifarResNet18(width=recipe.width).to(device)
    proj = projector(backbone.out_features, 2048, 2048, out_norm=True).to(device)
    modules = nn.ModuleList([backbone, proj])
    objectives = recipe.essl.build_objectives(backbone.out_features)  # the E-SSL term, None at lambda 0
    if objectives is not None:
        modules.append(objectives.to(device))
    peak = recipe.base_lr * recipe.batch_size / 256
    opt = torch.optim.SGD(modules.parameters(), lr=peak, momentum=0.9, weight_decay=recipe.weight_decay)
    extra = recipe.extra_view()
    steps = train_x.shape[0] // recipe.batch_size
    if steps == 0:
        raise ValueError(
            f"batch size {recipe.batch_size} exceeds the {train_x.shape[0]} training images; lower --batch-size."
        )
    total, warmup = steps * recipe.epochs, steps * recipe.warmup_epochs
    history: list[dict[str, float]] = []
    clock = [time.perf_counter()]

    def on_epoch(epoch: int, row: Mapping[str, float]) -> None:
        now = time.perf_counter()
        history.append({"epoch": epoch + 1, **row, "seconds": now - clock[0]})
        clock[0] = now
        log(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in history[-1].items()))

    pretrain_loop(
        backbone,
        proj,
        train_x,
        views=TwoViews(VIEW),
        ssl_loss=lambda z1, z2: info_nce_cross_view(z1, z2, recipe.temperature),
        optimizer=opt,
        lr=lambda step: warmup_cosine(step, total, warmup, peak, warmup_start=0),
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        generator=gen,
        objectives=objectives,
        extra=lambda x, g: extra(x, g)[0],
        amp=recipe.amp,
        on_epoch=on_epoch,
    )
    return backbone.eval(), history


def _probe_view(x: Tensor, gen: torch.Generator) -> Tensor:
    """RandomResizedCrop(32, scale 0.08-1) and a horizontal flip, normalised (:data:`PROBE_VIEW`)."""
    return PROBE_VIEW(x, gen)[0]


def _test_view(x: Tensor) -> Tensor:
    """Resize(36, bicubic) then CenterCrop(32), normalised."""
    y = F.interpolate(_to_float(x), size=(36, 36), mode="bicubic", align_corners=False).clamp_(0, 1)
    return normalise(y[..., 2:34, 2:34])


def probe_accuracy(recipe: Recipe, backbone: CifarResNet18, data: Sequence[Tensor], seed: int) -> float:
    """One reference linear probe of the frozen ``backbone``: test accuracy."""
    train_x, train_y, test_x, test_y = data
    return sgd_linear_probe(
        backbone,
        train_x,
        train_y,
        test_x,
        test_y,
        in_features=backbone.out_features,
        num_classes=10,
        train_view=_probe_view,
        test_view=_test_view,
        epochs=recipe.probe_epochs,
        lr=recipe.probe_lr,
        batch_size=recipe.probe_batch,
        seed=seed,
    )


def build_parser() -> argparse.ArgumentParser:
    r = Recipe()
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.cifar10",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument("--data", required=True, help="folder with the extracted CIFAR-10 python batches")
    p.add_argument("--out", default="results/cifar10", help="output folder (result.json, backbone.pt)")
    p.add_argument("--device", type=parse_device, default="auto", help="cuda, cuda:N, cpu or auto (default)")
    p.add_argument("--epochs", type=positive_int, default=r.epochs)
    p.add_argument("--batch-size", type=positive_int, default=r.batch_size)
    p.add_argument(
        "--lr", type=float, default=None, help="base lr, scaled by batch/256 (default 0.06, 0.03 if lambda 0)"
    )
    p.add_argument(
        "--lambda", dest="weight", type=non_negative_float, default=r.weight, help="E-SSL weight; 0 runs plain SimCLR"
    )
    p.add_argument("--family", default=r.family, help="E-SSL family (default rotation, the reference)")
    p.add_argument("--probe-epochs", type=positive_int, default=r.probe_epochs)
    p.add_argument("--probes", type=positive_int, default=r.probes, help="number of linear probes (reference: 5)")
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA (the reference's --fp16)")
    p.add_argument("--seed", type=int, default=r.seed)
    p.add_argument(
        "--width", type=positive_int, default=r.width, help="ResNet width (64 = ResNet-18; smaller for checks)"
    )
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first N train and test images")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        data = list(load_cifar10(args.data))
    except FileNotFoundError as err:
        print(f"benchmarks.cifar10: {err}", file=sys.stderr)
        return 2
    device = args.device
    if args.limit:
        data = [t[: args.limit] for t in data]
    data = [t.to(device) for t in data]
    recipe = Recipe(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight=args.weight,
        family=args.family,
        probe_epochs=args.probe_epochs,
        probes=args.probes,
        width=args.width,
        amp=args.amp,
        seed=args.seed,
    )
    start = time.perf_counter()
    backbone, history = pretrain_resnet(recipe, data[0], device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(backbone.state_dict(), out / "backbone.pt")
    accs = [probe_accuracy(recipe, backbone, data, seed=k) for k in range(recipe.probes)]
    summary = summarise(accs)
    name = "E-SimCLR" if recipe.weight > 0 else "SimCLR"
    print(f"{name} CIFAR-10 linear probe over {recipe.probes} probes: {fmt(summary)} %")
    write_json(
        out / "result.json",
        {
            "job": "cifar10",
            "method": name,
            "recipe": {**dataclasses.asdict(recipe), "base_lr": recipe.base_lr},
            "device": str(device),
            "train_images": int(data[0].shape[0]),
            "probe": summary,
            "history": history,
            "wall_seconds": time.perf_counter() - start,
            "environment": environment(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
