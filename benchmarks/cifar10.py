"""The reference E-SimCLR CIFAR-10 recipe, for a GPU and a local copy of CIFAR-10.

Faithful to the official E-SSL code (``cifar10/main.py``; see the README's quality section):

- ResNet-18 with the CIFAR stem (512-d features); projector 512-2048-2048 (BN, last BN without affine);
- SimCLR loss: symmetrised InfoNCE on the cross-view logits, temperature 0.5;
- views: RandomResizedCrop(32, scale 0.2-1), horizontal flip 0.5, ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8,
  grayscale 0.2, CIFAR normalisation; the E-SSL view is the same pipeline at 16x16, all four rotations of it
  through the backbone and the reference head (512-2048-2048-4, LayerNorm), lambda 0.4;
- SGD momentum 0.9, weight decay 5e-4, batch 512 (drop last), peak lr ``lr * batch / 256`` with
  ``lr = 0.06`` for E-SimCLR and 0.03 for SimCLR (``--lambda 0``), linear warmup over 10 epochs per
  iteration, then cosine to 0; 800 epochs;
- linear probe(s) on the frozen encoder (eval mode): Linear(512, 10), SGD momentum 0.9, lr 30, no weight
  decay, batch 256, 100 epochs with cosine; train views RandomResizedCrop(32, scale 0.08-1) + flip, test
  Resize(36) + CenterCrop(32); mean +- std over ``--probes`` probes (reference: 5).

Differences: augmentations run batched on the device (same distributions; hue is a rotation about the gray
axis, bilinear instead of bicubic probe crops) and the kNN monitor is not run.

Data: ``--data DIR`` where DIR (or DIR/cifar-10-batches-py) holds the extracted python version of CIFAR-10
(``data_batch_1`` .. ``data_batch_5``, ``test_batch``). Nothing is downloaded.

Usage::

    python benchmarks/cifar10.py --data ~/data/cifar10 --device cuda --out results/cifar10-essl
    python benchmarks/cifar10.py --data ~/data/cifar10 --device cuda --lambda 0 --out results/cifar10-simclr
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import pickle
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug import EquivarianceHead, EquivarianceLoss, EquivariantTransform
from essl_aug.experiments.augment import ViewAugment, random_hflip, random_resized_crop
from essl_aug.experiments.report import environment, fmt, summarise, write_json
from essl_aug.experiments.resnet import CifarResNet18
from essl_aug.experiments.simclr import info_nce_cross_view

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2023, 0.1994, 0.2010)
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"


def find_cifar10(root: Path | str) -> Path:
    """The folder holding the CIFAR-10 python batches: ``root`` or ``root/cifar-10-batches-py``."""
    root = Path(root).expanduser()
    for folder in (root, root / "cifar-10-batches-py"):
        if all((folder / f).is_file() for f in (*TRAIN_FILES, TEST_FILE)):
            return folder
    raise FileNotFoundError(
        f"CIFAR-10 not found in {str(root)!r}: expected the extracted python version of CIFAR-10 "
        f"({', '.join(TRAIN_FILES)}, {TEST_FILE}) in that folder or in its cifar-10-batches-py/ subfolder. "
        "This benchmark never downloads data: extract cifar-10-python.tar.gz there first."
    )


def _read_batch(path: Path) -> tuple[Tensor, Tensor]:
    with path.open("rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    data = batch[b"data"] if b"data" in batch else batch["data"]
    labels = batch[b"labels"] if b"labels" in batch else batch["labels"]
    x = torch.as_tensor(data, dtype=torch.uint8).reshape(-1, 3, 32, 32)
    return x, torch.as_tensor(list(labels), dtype=torch.long)


def load_cifar10(root: Path | str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """uint8 (N, 3, 32, 32) train and test images with their labels, from the python batches."""
    folder = find_cifar10(root)
    parts = [_read_batch(folder / f) for f in TRAIN_FILES]
    test_x, test_y = _read_batch(folder / TEST_FILE)
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), test_x, test_y


@dataclasses.dataclass(frozen=True)
class Recipe:
    epochs: int = 800
    batch_size: int = 512
    lr: float | None = None
    lam: float = 0.4
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
        return self.lr if self.lr is not None else (0.06 if self.lam > 0 else 0.03)


def _normalise(x: Tensor) -> Tensor:
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def projector(in_features: int) -> nn.Module:
    """The reference CIFAR projector: Linear-BN-ReLU-Linear-BN(affine=False), 2048 wide."""
    return nn.Sequential(
        nn.Linear(in_features, 2048, bias=False),
        nn.BatchNorm1d(2048),
        nn.ReLU(inplace=True),
        nn.Linear(2048, 2048, bias=False),
        nn.BatchNorm1d(2048, affine=False),
    )


def _lr(step: int, total: int, warmup: int, peak: float) -> float:
    if step < warmup:
        return peak * step / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def pretrain(recipe: Recipe, train_x: Tensor, device: torch.device, log=print) -> tuple[nn.Module, list[dict]]:
    torch.manual_seed(recipe.seed)
    gen = torch.Generator(device=device).manual_seed(recipe.seed)
    backbone = CifarResNet18(width=recipe.width).to(device)
    proj = projector(backbone.out_features).to(device)
    modules = nn.ModuleList([backbone, proj])
    essl = None
    if recipe.lam > 0:
        transform = EquivariantTransform(recipe.family, mode="all", generator=gen)
        head = EquivarianceHead(backbone.out_features, transform.num_classes)
        essl = EquivarianceLoss(transform, head=head, weight=recipe.lam).to(device)
        modules.append(essl)
    peak = recipe.base_lr * recipe.batch_size / 256
    opt = torch.optim.SGD(modules.parameters(), lr=peak, momentum=0.9, weight_decay=recipe.weight_decay)
    use_amp = recipe.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    view = ViewAugment(size=32, scale=(0.2, 1.0), hflip=0.5, jitter=0.8, grayscale=0.2)
    small = dataclasses.replace(view, size=recipe.essl_size)
    n = train_x.shape[0]
    steps = n // recipe.batch_size
    if steps == 0:
        raise ValueError(f"batch size {recipe.batch_size} exceeds the {n} training images; lower --batch-size.")
    total, warmup = steps * recipe.epochs, steps * recipe.warmup_epochs
    history, step = [], 0
    modules.train()
    for epoch in range(recipe.epochs):
        start, sums = time.perf_counter(), {}
        order = torch.randperm(n, device=device, generator=gen)
        for i in range(steps):
            for g in opt.param_groups:
                g["lr"] = _lr(step, total, warmup, peak)
            x = train_x[order[i * recipe.batch_size : (i + 1) * recipe.batch_size]].float().div_(255)
            v1, v2 = _normalise(view(x, gen)), _normalise(view(x, gen))
            with torch.autocast(device.type, enabled=use_amp):
                loss = info_nce_cross_view(proj(backbone(v1)), proj(backbone(v2)), recipe.temperature)
                logs = {"ssl": loss.detach()}
                if essl is not None:
                    out = essl(backbone, _normalise(small(x, gen)))
                    loss = loss + out.loss
                    logs.update(essl_ce=out.cross_entropy, essl_acc=out.accuracy)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            for k, v in logs.items():
                sums[k] = sums.get(k, 0) + v
            step += 1
        row = {"epoch": epoch + 1, **{k: float(v) / steps for k, v in sums.items()}}
        row["seconds"] = time.perf_counter() - start
        history.append(row)
        log(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    return backbone.eval(), history


def _test_view(x: Tensor) -> Tensor:
    """Resize(36, bicubic) then CenterCrop(32), on a float batch."""
    y = F.interpolate(x, size=(36, 36), mode="bicubic", align_corners=False).clamp_(0, 1)
    return y[..., 2:34, 2:34]


@torch.no_grad()
def _features(backbone: nn.Module, x: Tensor) -> Tensor:
    return backbone(x).float()


def linear_probe(recipe: Recipe, backbone: nn.Module, data: Sequence[Tensor], device: torch.device, seed: int) -> float:
    train_x, train_y, test_x, test_y = data
    gen = torch.Generator(device=device).manual_seed(seed)
    torch.manual_seed(seed)
    clf = nn.Linear(backbone.out_features, 10).to(device)
    opt = torch.optim.SGD(clf.parameters(), lr=recipe.probe_lr, momentum=0.9, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, recipe.probe_epochs)
    n, bs = train_x.shape[0], recipe.probe_batch
    for _ in range(recipe.probe_epochs):
        order = torch.randperm(n, device=device, generator=gen)
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            x = train_x[idx].float().div_(255)
            x = random_hflip(random_resized_crop(x, 32, (0.08, 1.0), generator=gen), 0.5, gen)
            loss = F.cross_entropy(clf(_features(backbone, _normalise(x))), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    correct = torch.zeros((), device=device)
    for i in range(0, test_x.shape[0], 1024):
        x = _normalise(_test_view(test_x[i : i + 1024].float().div_(255)))
        correct += (clf(_features(backbone, x)).argmax(1) == test_y[i : i + 1024]).sum()
    return float(correct) / test_x.shape[0]


def build_parser() -> argparse.ArgumentParser:
    r = Recipe()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", required=True, help="folder with the extracted CIFAR-10 python batches")
    p.add_argument("--out", default="results/cifar10", help="output folder (result.json, backbone.pt)")
    p.add_argument("--device", default="auto", help="cuda, cuda:N, cpu or auto (default)")
    p.add_argument("--epochs", type=int, default=r.epochs)
    p.add_argument("--batch-size", type=int, default=r.batch_size)
    p.add_argument(
        "--lr", type=float, default=None, help="base lr, scaled by batch/256 (default 0.06, 0.03 if lambda 0)"
    )
    p.add_argument("--lambda", dest="lam", type=float, default=r.lam, help="E-SSL weight; 0 runs plain SimCLR")
    p.add_argument("--family", default=r.family, help="E-SSL family (default rotation, the reference)")
    p.add_argument("--probe-epochs", type=int, default=r.probe_epochs)
    p.add_argument("--probes", type=int, default=r.probes, help="number of linear probes (reference: 5)")
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA (the reference's --fp16)")
    p.add_argument("--seed", type=int, default=r.seed)
    p.add_argument("--width", type=int, default=r.width, help="ResNet width (64 = ResNet-18; smaller for checks)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N train and test images (checks)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        data = list(load_cifar10(args.data))
    except FileNotFoundError as err:
        print(f"cifar10.py: {err}", file=sys.stderr)
        return 2
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if args.limit:
        data = [data[0][: args.limit], data[1][: args.limit], data[2][: args.limit], data[3][: args.limit]]
    data = [t.to(device) for t in data]
    recipe = Recipe(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lam=args.lam,
        family=args.family,
        probe_epochs=args.probe_epochs,
        probes=args.probes,
        width=args.width,
        amp=args.amp,
        seed=args.seed,
    )
    start = time.perf_counter()
    backbone, history = pretrain(recipe, data[0], device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(backbone.state_dict(), out / "backbone.pt")
    accs = [linear_probe(recipe, backbone, data, device, seed=k) for k in range(recipe.probes)]
    summary = summarise(accs)
    name = "E-SimCLR" if recipe.lam > 0 else "SimCLR"
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
