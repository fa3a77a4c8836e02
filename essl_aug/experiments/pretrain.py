"""The pretraining loop: SimCLR, optionally invariant to a family, optionally plus the E-SSL term."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from essl_aug import EquivarianceHead, EquivarianceLoss, EquivariantTransform, build_family
from essl_aug.experiments.augment import ViewAugment, invariance_augment
from essl_aug.experiments.models import SmallCNN, projector
from essl_aug.experiments.simclr import nt_xent
from essl_aug.registry import FamilySpec


@dataclass(frozen=True)
class PretrainConfig:
    """One pretraining run.

    Args:
        essl: family the representation should be *sensitive* to (E-SSL term); ``None`` for plain SimCLR.
        lam: lambda, the weight of the E-SSL cross-entropy (reference: 0.4).
        invariance: family applied as an augmentation to both SimCLR views (each view: identity with
            probability ``1 - invariance_p``, else a uniform non-identity element); ``None`` for none.
        invariance_p: probability of a non-identity element for ``invariance``.
        epochs, batch_size, lr, weight_decay, warmup_epochs: Adam(W) with linear warmup then cosine to 0, per step.
        temperature: NT-Xent temperature.
        width: :class:`SmallCNN` width (features ``4 * width``).
        view: base augmentation of the two SimCLR views.
        essl_view: base augmentation of the extra E-SSL view (smaller, as in the reference).
        head_hidden: hidden widths of the :class:`~essl_aug.EquivarianceHead`.
        num_per_batch: use only this many elements of the family per step (all by default).
        seed: seeds the model's initialisation and every random draw of the run.
    """

    essl: FamilySpec | None = "rotation"
    lam: float = 0.4
    invariance: FamilySpec | None = None
    invariance_p: float = 0.5
    epochs: int = 30
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 2
    temperature: float = 0.5
    width: int = 32
    view: ViewAugment = field(default_factory=ViewAugment)
    essl_view: ViewAugment = field(default_factory=lambda: ViewAugment(size=8))
    head_hidden: Sequence[int] = (256, 256)
    num_per_batch: int | None = None
    seed: int = 0

    @property
    def uses_essl(self) -> bool:
        return self.essl is not None and self.lam > 0


@dataclass
class PretrainResult:
    """A trained backbone with its per-epoch history (``loss``, ``ssl``, and ``essl_ce``/``essl_acc`` with E-SSL)."""

    backbone: nn.Module
    history: list[dict[str, float]]
    seconds: float


def _lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * progress))


def pretrain(
    images: Tensor,
    config: PretrainConfig,
    device: torch.device | str = "cpu",
    on_step: Callable[[], None] | None = None,
) -> PretrainResult:
    """Pretrain a :class:`SmallCNN` on unlabelled ``images`` (N, C, H, W) in [0, 1] as described by ``config``.

    Per step: two augmented views for SimCLR's NT-Xent (each also transformed by ``config.invariance`` if set)
    and, with E-SSL, a third, smaller view whose every family element goes through the backbone and an
    :class:`~essl_aug.EquivarianceHead` (:class:`~essl_aug.EquivarianceLoss`, mode ``"all"``), adding
    ``lam * CE``. Incomplete last batches are dropped.

    Example:
        >>> cfg = PretrainConfig(epochs=1, batch_size=8, width=4, head_hidden=(8,))
        >>> res = pretrain(torch.rand(16, 3, 16, 16), cfg)
        >>> sorted(res.history[0])
        ['essl_acc', 'essl_ce', 'loss', 'ssl']
    """
    device = torch.device(device)
    n = images.shape[0]
    if n < config.batch_size:
        raise ValueError(f"need at least `batch_size`={config.batch_size} images, got {n}; lower the batch size.")
    torch.manual_seed(config.seed)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    backbone = SmallCNN(images.shape[1], config.width).to(device)
    proj = projector(backbone.out_features).to(device)
    params = [*backbone.parameters(), *proj.parameters()]
    essl: EquivarianceLoss | None = None
    if config.uses_essl:
        transform = EquivariantTransform(config.essl, mode="all", generator=gen, num_per_batch=config.num_per_batch)
        head = EquivarianceHead(backbone.out_features, transform.num_classes, hidden=config.head_hidden)
        essl = EquivarianceLoss(transform, head=head, weight=config.lam).to(device)
        params += list(essl.parameters())
    inv_family = build_family(config.invariance) if config.invariance is not None else None
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = n // config.batch_size
    total = steps_per_epoch * config.epochs
    warmup = steps_per_epoch * config.warmup_epochs
    data = images.to(device)
    history: list[dict[str, float]] = []
    step = 0
    start = time.perf_counter()
    backbone.train()
    proj.train()
    for _ in range(config.epochs):
        sums: dict[str, Tensor] = {}
        order = torch.randperm(n, generator=gen, device=device)
        for i in range(steps_per_epoch):
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, total, warmup, config.lr)
            x = data[order[i * config.batch_size : (i + 1) * config.batch_size]]
            v1, v2 = config.view(x, gen), config.view(x, gen)
            if inv_family is not None:
                v1 = invariance_augment(v1, inv_family, config.invariance_p, gen)
                v2 = invariance_augment(v2, inv_family, config.invariance_p, gen)
            ssl = nt_xent(proj(backbone(v1)), proj(backbone(v2)), config.temperature)
            logs = {"ssl": ssl.detach()}
            loss = ssl
            if essl is not None:
                out = essl(backbone, config.essl_view(x, gen))
                loss = loss + out.loss
                logs.update(essl_ce=out.cross_entropy, essl_acc=out.accuracy)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            logs["loss"] = loss.detach()
            for k, v in logs.items():
                sums[k] = sums.get(k, 0) + v
            step += 1
            if on_step is not None:
                on_step()
        history.append({k: float(v) / steps_per_epoch for k, v in sums.items()})
    backbone.eval()
    return PretrainResult(backbone, history, time.perf_counter() - start)
