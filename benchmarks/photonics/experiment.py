"""Pre-train the reference photonics encoder three ways, fine-tune on a few labelled cells, score the DOS error.

Methods (essl_reference.md section 4, the "Blob" configuration):

- ``supervised``: no pre-training (a reference point for what pre-training adds).
- ``simclr``: SimCLR views = a random element of the square's point group D4 per image.
- ``simclr+trans``: the same views, plus a random half-cell periodic translation (invariance to it).
- ``e-simclr``: SimCLR (D4 views) + ``weight`` * cross-entropy of predicting the half-cell translation
  (``RandomPeriodicTranslation``, 4 classes, all 4 applied to un-augmented cells, ``EquivariantTransform(mode="all")``,
  the library's :class:`~essl_aug.objectives.ESSL` with the reference's batch-normalised head).

Fine-tuning is the same for every method (full fine-tuning of encoder + DOS MLP on ``nsam`` labelled cells, with
D4 and random periodic shifts as label-preserving augmentations: both are exact symmetries of the DOS). The model
is selected by the relative L1 DOS error on a validation split; the test split is scored once, at the end.

Pre-training runs the training toolkit's loop (:func:`benchmarks.toolkit.pretrain.pretrain_loop`) with its
projector, NT-Xent loss and cosine schedule; the report is written by the toolkit's compact JSON writer.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from benchmarks.photonics import dos as dos_mod
from benchmarks.photonics.dataset import DataSpec, load_or_generate
from benchmarks.photonics.model import DOSPredictor, Encoder
from benchmarks.toolkit.models import projector
from benchmarks.toolkit.pretrain import pretrain_loop, warmup_cosine
from benchmarks.toolkit.report import environment, mean_std, pyplot, rounded, write_json
from benchmarks.toolkit.simclr import nt_xent
from essl_aug import (
    EquivarianceHead,
    EquivariantTransform,
    RandomD4,
    RandomPeriodicShift,
    RandomPeriodicTranslation,
)
from essl_aug.objectives import ESSL, Objectives

METHODS = ("supervised", "simclr", "simclr+trans", "e-simclr")


@dataclass
class Config:
    """One run of the benchmark. ``quick()`` is the bounded smoke-size setting."""

    data: DataSpec = field(default_factory=DataSpec)
    n_test: int = 300
    n_val: int = 150
    nsam: int = 200  # labelled cells used for fine-tuning
    seeds: int = 3
    width: float = 0.25  # encoder conv-width multiplier (1.0 = reference 64/256/256 channels)
    pretrain_epochs: int = 4
    pretrain_batch: int = 128
    pretrain_lr: float = 1e-3
    temperature: float = 0.1  # reference NT-Xent temperature
    weight: float = 5.0  # reference weight of the E-SSL loss
    essl_fraction: float = 0.25  # share of each batch whose 4 translations feed the E-head
    finetune_epochs: int = 40
    finetune_batch: int = 32
    finetune_lr: float = 5e-4
    finetune_wd: float = 1e-5
    threads: int = 2
    methods: tuple[str, ...] = METHODS

    @classmethod
    def quick(cls) -> Config:
        return cls(
            data=DataSpec(labelled=300, unlabelled=600),
            n_test=100,
            n_val=60,
            nsam=100,
            seeds=2,
            pretrain_epochs=2,
            finetune_epochs=15,
        )


def _views_d4(x: Tensor, gen: torch.Generator) -> Tensor:
    """A uniformly drawn element of D4 per cell."""
    return RandomD4()(x, gen)[0]


def _translate(x: Tensor, gen: torch.Generator) -> Tensor:
    """A uniformly drawn half-cell periodic translation per cell (the identity one time in four)."""
    return RandomPeriodicTranslation()(x, gen)[0]


def pretrain_encoder(
    method: str, cells: Tensor, cfg: Config, seed: int, log: Callable[..., None] = print
) -> tuple[Encoder, dict[str, float]]:
    """Self-supervised pre-training of a fresh encoder; returns it and a few training statistics.

    The statistics: ``final_ssl_loss`` (mean NT-Xent of the last 5 steps) and, for ``e-simclr``,
    ``final_essl_acc`` (the E-head's mean accuracy over the last 5 steps; chance is 0.25).
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    encoder = Encoder(cfg.width)
    if method == "supervised":
        return encoder, {}
    proj = projector(encoder.out_features, 512, 256, depth=3, hidden_bias=True)
    params = [*encoder.parameters(), *proj.parameters()]
    essl = None
    if method == "e-simclr":
        transform = EquivariantTransform(RandomPeriodicTranslation(), mode="all")
        head = EquivarianceHead(encoder.out_features, transform.num_classes, hidden=(512, 512), norm="batch")
        essl = Objectives({"essl": ESSL(transform, head=head, weight=cfg.weight)})
        params += list(essl.parameters())
    opt = torch.optim.Adam(params, lr=cfg.pretrain_lr)
    total = cfg.pretrain_epochs * (len(cells) // cfg.pretrain_batch)
    stats: dict[str, list[float]] = {"ssl": [], "essl/acc": []}

    def views(x: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        v1, v2 = _views_d4(x, g), _views_d4(x, g)
        if method == "simclr+trans":
            v1, v2 = _translate(v1, g), _translate(v2, g)
        return v1, v2

    def record(logs: Mapping[str, Tensor]) -> None:
        for key, values in stats.items():
            if key in logs:
                values.append(float(logs[key]))

    pretrain_loop(
        encoder,
        proj,
        cells,
        views=views,
        ssl_loss=lambda z1, z2: nt_xent(z1, z2, cfg.temperature),
        optimizer=opt,
        lr=lambda step: warmup_cosine(step, total, 0, cfg.pretrain_lr),
        epochs=cfg.pretrain_epochs,
        batch_size=cfg.pretrain_batch,
        generator=gen,
        objectives=essl,
        extra=lambda x, g: x[: max(2, int(cfg.essl_fraction * len(x)))],  # un-augmented cells, as the reference
        on_step=record,
    )
    summary = {"final_ssl_loss": mean_std(stats["ssl"][-5:])[0]}
    if essl is not None:
        summary["final_essl_acc"] = mean_std(stats["essl/acc"][-5:])[0]
    return encoder, summary


@torch.no_grad()
def predict_dos(model: DOSPredictor, x: Tensor, el: Tensor, batch: int = 256) -> np.ndarray:
    """The predicted DOS of cells ``x`` (eval mode): the model's output plus the empty-lattice DOS ``el``."""
    model.eval()
    out = [model(x[i : i + batch]) + el for i in range(0, len(x), batch)]
    return torch.cat(out).numpy()


def finetune(encoder: Encoder, data: dict[str, Any], cfg: Config, seed: int) -> dict[str, Any]:
    """Fine-tune encoder + DOS head; pick the epoch with the lowest validation error; score it on the test split."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    shift = RandomPeriodicShift()
    model = DOSPredictor(copy.deepcopy(encoder))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.finetune_lr, weight_decay=cfg.finetune_wd)
    x, y = data["train_x"], data["train_y"]
    el = data["el"]
    best: tuple[float, int, dict[str, Tensor]] = (math.inf, -1, {})
    curve = []
    for epoch in range(cfg.finetune_epochs + 1):
        if epoch > 0:  # epoch 0 scores the untrained head, as the reference
            model.train()
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x) - cfg.finetune_batch + 1, cfg.finetune_batch):
                idx = order[i : i + cfg.finetune_batch]
                xb, _ = shift(_views_d4(x[idx], gen), gen)
                loss = F.mse_loss(model(xb), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        val = float(dos_mod.relative_l1(predict_dos(model, data["val_x"], el), data["val_dos"]).mean())
        curve.append(val)
        if val < best[0]:
            best = (val, epoch, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    test_pred = predict_dos(model, data["test_x"], el)
    test_err = dos_mod.relative_l1(test_pred, data["test_dos"])
    return {
        "val_err": best[0],
        "best_epoch": best[1],
        "test_err": float(test_err.mean()),
        "val_curve": curve,
        "test_pred_examples": test_pred[:4].tolist(),
    }


def prepare(raw: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """Normalised inputs (eps - 1) / 19, ELdiff targets, and the fixed test / validation / fine-tuning splits."""
    n = len(raw["eps"])
    if cfg.n_test + cfg.n_val + cfg.nsam > n:
        raise ValueError(f"need n_test + n_val + nsam <= {n} labelled cells, got {cfg.n_test + cfg.n_val + cfg.nsam}.")
    order = np.random.default_rng(1).permutation(n)
    test, val = order[: cfg.n_test], order[cfg.n_test : cfg.n_test + cfg.n_val]
    train = order[cfg.n_test + cfg.n_val :][: cfg.nsam]
    x = torch.from_numpy((raw["eps"] - 1.0) / 19.0).float().unsqueeze(1)
    el = torch.from_numpy(dos_mod.empty_lattice_dos(raw["wvec"].astype(np.float64))).float()
    target = torch.from_numpy(raw["dos"]).float() - el
    return {
        "train_x": x[train],
        "train_y": target[train],
        "val_x": x[val],
        "val_dos": raw["dos"][val],
        "test_x": x[test],
        "test_dos": raw["dos"][test],
        "el": el,
        "unlabelled": torch.from_numpy((raw["eps_unlabelled"] - 1.0) / 19.0).float().unsqueeze(1),
        "wvec": raw["wvec"],
    }


def run(
    cfg: Config, out_dir: str | Path, cache_dir: str | Path, workers: int = 2, log: Callable[..., None] = print
) -> dict[str, Any]:
    """The whole benchmark; writes ``photonics.json`` and ``photonics.png`` into ``out_dir``; returns the report.

    The returned report holds every run in full; the JSON file is its compact summary (:func:`summary`).
    """
    torch.set_num_threads(cfg.threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    raw = load_or_generate(cfg.data, cache_dir=cache_dir, workers=workers, log=log)
    data = prepare(raw, cfg)
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in cfg.methods}
    for seed in range(cfg.seeds):
        for method in cfg.methods:
            t0 = time.time()
            encoder, pre = pretrain_encoder(method, data["unlabelled"], cfg, seed)
            t1 = time.time()
            ft = finetune(encoder, data, cfg, seed)
            ft.update(pre, pretrain_s=round(t1 - t0, 1), finetune_s=round(time.time() - t1, 1))
            results[method].append(ft)
            log(f"seed {seed} {method:13s} test rel. L1 {ft['test_err']:.4f} (val {ft['val_err']:.4f}, "
                f"epoch {ft['best_epoch']}) {pre} [{t1 - t0:.0f} s + {time.time() - t1:.0f} s]")  # fmt: skip
    table = {}
    for m, rs in results.items():
        test_mean, test_std = mean_std([r["test_err"] for r in rs])
        table[m] = {
            "test_err_mean": test_mean,
            "test_err_std": test_std,
            "val_err_mean": mean_std([r["val_err"] for r in rs])[0],
        }
    report = {
        "config": asdict(cfg),
        "data": {
            "file": str(cfg.data.path(cache_dir)),
            "labelled": len(raw["eps"]),
            "unlabelled": len(raw["eps_unlabelled"]),
            "generation_s": float(raw["seconds"]),
            "solver": "legume-gme PlaneWaveExp (TM), pixel-exact Fourier coefficients",
            "broadening_sigma": cfg.data.sigma,
            "kgrid": f"{cfg.data.kgrid}x{cfg.data.kgrid} Monkhorst-Pack, bilinear x{dos_mod.REFINE}",
        },
        "metric": "relative L1 DOS error over frequency indices >= 100, test split, model chosen on validation",
        "table": table,
        "runs": results,
        "seconds": round(time.time() - start, 1),
        "environment": environment(),
    }
    write_json(out_dir / "photonics.json", summary(report))
    plot(raw, data, results, cfg, out_dir / "photonics.png")
    return report


#: Per-run entries left out of the JSON summary: the predicted DOS curves of four test cells (the PNG shows them).
PLOTTED_ONLY = ("test_pred_examples",)


def summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form of a report: floats to 6 significant digits, per-run curves drawn in the PNG left out."""
    runs = {m: [{k: v for k, v in r.items() if k not in PLOTTED_ONLY} for r in rs] for m, rs in report["runs"].items()}
    return rounded({**report, "runs": runs})


def plot(
    raw: Mapping[str, Any],
    data: Mapping[str, Any],
    results: Mapping[str, list[dict[str, Any]]],
    cfg: Config,
    path: Path,
) -> None:
    """Predicted vs true DOS of four test cells (first seed of every method)."""
    plt = pyplot()

    w = raw["wvec"]
    fig, axes = plt.subplots(2, 4, figsize=(16, 6), gridspec_kw={"height_ratios": [1, 2.2]})
    for j in range(4):
        axes[0, j].imshow(data["test_x"][j, 0].numpy() * 19 + 1, cmap="viridis", vmin=1, vmax=20)
        axes[0, j].set_axis_off()
        axes[0, j].set_title(f"test cell {j} (eps)")
        ax = axes[1, j]
        ax.plot(w, data["test_dos"][j], "k", lw=2, label="true (legume)")
        for m in cfg.methods:
            ax.plot(w, results[m][0]["test_pred_examples"][j], lw=1, label=m)
        ax.plot(w, 2 * np.pi * w, ":", color="gray", label="empty lattice")
        ax.axvline(w[dos_mod.SCORED_FROM], color="gray", lw=0.5)
        ax.set_xlabel("w = f sqrt(eps_avg)  (c/a)")
    axes[1, 0].set_ylabel("DOS / sqrt(eps_avg)")
    axes[1, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
