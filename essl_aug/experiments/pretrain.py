"""Self-supervised pre-training: the learning-rate schedule, the loop every recipe runs, and the digits recipe.

:func:`pretrain_loop` is the one training loop of the project (the digits demo and quality benchmark, the CIFAR-10
recipe and the photonics benchmark): a recipe hands it the backbone, projector, views, SSL loss, optimiser and
schedule, and optionally an :class:`~essl_aug.EquivarianceLoss` with the input of its extra view.
:func:`pretrain` is the digits recipe on top of it (a :class:`SmallCNN`, AdamW, SimCLR's NT-Xent).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from essl_aug import EquivarianceHead, EquivarianceLoss, EquivariantTransform, build_family
from essl_aug.experiments.augment import ViewAugment, invariance_augment
from essl_aug.experiments.models import SmallCNN, projector
from essl_aug.experiments.simclr import nt_xent
from essl_aug.registry import FamilySpec

#: Makes the two SSL views of a batch: ``views(x, generator) -> (v1, v2)``.
ViewPair = Callable[[Tensor, torch.Generator], tuple[Tensor, Tensor]]
#: Makes one view of a batch (the input of the E-SSL branch): ``view(x, generator) -> v``.
View = Callable[[Tensor, torch.Generator], Tensor]


def warmup_cosine(step: int, total: int, warmup: int, peak: float, warmup_start: int = 1) -> float:
    """The learning rate at ``step`` (counted from 0) of ``total``: linear warm-up, then cosine decay to 0.

    During the first ``warmup`` steps the rate is ``peak * (step + warmup_start) / warmup``: ``warmup_start=1``
    reaches ``peak`` on the last warm-up step (the digits recipe), ``0`` starts from 0 (the reference E-SSL
    CIFAR-10 code). Then ``peak * (1 + cos(pi * progress)) / 2`` with ``progress`` going from 0 to 1 over the
    remaining steps. ``warmup=0`` is a plain cosine schedule (the photonics benchmark).

    Example:
        >>> [round(warmup_cosine(s, 10, 2, 1.0), 3) for s in (0, 1, 2, 6, 9)]
        [0.5, 1.0, 1.0, 0.5, 0.038]
        >>> warmup_cosine(0, 10, 2, 1.0, warmup_start=0)
        0.0
    """
    if step < warmup:
        return peak * (step + warmup_start) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def pretrain_loop(
    backbone: nn.Module,
    head: nn.Module,
    data: Tensor,
    *,
    views: ViewPair,
    ssl_loss: Callable[[Tensor, Tensor], Tensor],
    optimizer: torch.optim.Optimizer,
    lr: Callable[[int], float],
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    essl: EquivarianceLoss | None = None,
    essl_view: View | None = None,
    prepare: Callable[[Tensor], Tensor] | None = None,
    amp: bool = False,
    on_step: Callable[[Mapping[str, Tensor]], None] | None = None,
    on_epoch: Callable[[int, Mapping[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Pre-train ``backbone`` (with the SSL projector ``head``) on unlabelled ``data``; returns the per-epoch means.

    Each epoch visits ``data`` in a random order (``generator``, on ``data.device``) in batches of
    ``batch_size``, dropping the incomplete last batch. Per step, in this order: the learning rate of every
    parameter group is set to ``lr(step)``; the batch ``x`` (after ``prepare``, e.g. uint8 to float) gives the two
    views ``views(x, generator)``; the SSL loss is ``ssl_loss(head(backbone(v1)), head(backbone(v2)))``; with
    ``essl``, ``essl(backbone, essl_view(x, generator))`` (``x`` itself without ``essl_view``) adds its weighted
    cross-entropy; then one optimiser step (under autocast with a gradient scaler when ``amp``, CUDA only).

    Args:
        backbone, head: the trained modules (set to training mode here); ``optimizer`` holds their parameters
            (and those of ``essl``).
        data: (N, ...) unlabelled inputs, on the training device.
        lr: the learning rate of a step, e.g. ``lambda s: warmup_cosine(s, total, warmup, peak)``.
        on_step: called after every step with the step's detached losses (no host sync here).
        on_epoch: called after every epoch with its index and its row of the returned history.

    Returns:
        One row per epoch: the mean over its steps of ``ssl`` (the SSL loss), ``loss`` (the total), and with E-SSL
        ``essl_ce`` (unweighted cross-entropy) and ``essl_acc`` (accuracy of the head).

    Example:
        >>> from essl_aug.experiments import SmallCNN, nt_xent, projector
        >>> net, proj = SmallCNN(3, width=4), projector(16)
        >>> opt = torch.optim.SGD([*net.parameters(), *proj.parameters()], lr=0.1)
        >>> history = pretrain_loop(
        ...     net, proj, torch.rand(8, 3, 8, 8), views=lambda x, g: (x, x.flip(-1)), ssl_loss=nt_xent,
        ...     optimizer=opt, lr=lambda step: 0.1, epochs=2, batch_size=4, generator=torch.Generator())
        >>> len(history), sorted(history[0])
        (2, ['loss', 'ssl'])
    """
    n = data.shape[0]
    steps = n // batch_size
    if steps == 0:
        raise ValueError(f"need at least `batch_size`={batch_size} inputs, got {n}; lower the batch size.")
    use_amp = amp and data.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    backbone.train()
    head.train()
    if essl is not None:
        essl.train()
    history: list[dict[str, float]] = []
    step = 0
    for epoch in range(epochs):
        sums: dict[str, Tensor] = {}
        order = torch.randperm(n, generator=generator, device=data.device)
        for i in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = lr(step)
            x = data[order[i * batch_size : (i + 1) * batch_size]]
            if prepare is not None:
                x = prepare(x)
            v1, v2 = views(x, generator)
            autocast = torch.autocast(data.device.type) if use_amp else contextlib.nullcontext()
            with autocast:
                ssl = ssl_loss(head(backbone(v1)), head(backbone(v2)))
                logs = {"ssl": ssl.detach()}
                loss = ssl
                if essl is not None:
                    out = essl(backbone, x if essl_view is None else essl_view(x, generator))
                    loss = loss + out.loss
                    logs.update(essl_ce=out.cross_entropy, essl_acc=out.accuracy)
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            logs["loss"] = loss.detach()
            for k, v in logs.items():
                sums[k] = sums[k] + v if k in sums else v
            step += 1
            if on_step is not None:
                on_step(logs)
        row = {k: float(v) / steps for k, v in sums.items()}
        history.append(row)
        if on_epoch is not None:
            on_epoch(epoch, row)
    return history


@dataclass(frozen=True)
class PretrainConfig:
    """One pretraining run of the digits recipe.

    Args:
        essl: family the representation should be *sensitive* to (E-SSL term); ``None`` for plain SimCLR.
        weight: the weight of the E-SSL cross-entropy (lambda in the paper; reference: 0.4).
        invariance: family applied as an augmentation to both SimCLR views (each view: identity with
            probability ``1 - invariance_p``, else a uniform non-identity element); ``None`` for none.
        invariance_p: probability of a non-identity element for ``invariance``.
        epochs, batch_size, lr, weight_decay, warmup_epochs: AdamW with linear warmup then cosine to 0, per step.
        temperature: NT-Xent temperature.
        width: :class:`SmallCNN` width (features ``4 * width``).
        view: base augmentation of the two SimCLR views.
        essl_view: base augmentation of the extra E-SSL view (smaller, as in the reference).
        head_hidden: hidden widths of the :class:`~essl_aug.EquivarianceHead`.
        num_per_batch: use only this many elements of the family per step (all by default).
        seed: seeds the model's initialisation and every random draw of the run.
    """

    essl: FamilySpec | None = "rotation"
    weight: float = 0.4
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
        return self.essl is not None and self.weight > 0


@dataclass
class PretrainResult:
    """A trained backbone with its per-epoch history (``loss``, ``ssl``, and ``essl_ce``/``essl_acc`` with E-SSL)."""

    backbone: nn.Module
    history: list[dict[str, float]]
    seconds: float


def pretrain(
    images: Tensor,
    config: PretrainConfig,
    device: torch.device | str = "cpu",
    on_step: Callable[[], None] | None = None,
) -> PretrainResult:
    """Pretrain a :class:`SmallCNN` on unlabelled ``images`` (N, C, H, W) in [0, 1] as described by ``config``.

    Per step (:func:`pretrain_loop`): two augmented views for SimCLR's NT-Xent (each also transformed by
    ``config.invariance`` if set) and, with E-SSL, a third, smaller view whose every family element goes through
    the backbone and an :class:`~essl_aug.EquivarianceHead` (:class:`~essl_aug.EquivarianceLoss`, mode
    ``"all"``), adding ``weight * CE``. Incomplete last batches are dropped.

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
    if config.essl is not None and config.uses_essl:
        transform = EquivariantTransform(config.essl, mode="all", generator=gen, num_per_batch=config.num_per_batch)
        head = EquivarianceHead(backbone.out_features, transform.num_classes, hidden=config.head_hidden)
        essl = EquivarianceLoss(transform, head=head, weight=config.weight).to(device)
        params += list(essl.parameters())
    inv_family = build_family(config.invariance) if config.invariance is not None else None
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = n // config.batch_size
    total = steps_per_epoch * config.epochs
    warmup = steps_per_epoch * config.warmup_epochs

    def views(x: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        v1, v2 = config.view(x, gen), config.view(x, gen)
        if inv_family is not None:
            v1 = invariance_augment(v1, inv_family, config.invariance_p, gen)
            v2 = invariance_augment(v2, inv_family, config.invariance_p, gen)
        return v1, v2

    start = time.perf_counter()
    history = pretrain_loop(
        backbone,
        proj,
        images.to(device),
        views=views,
        ssl_loss=lambda z1, z2: nt_xent(z1, z2, config.temperature),
        optimizer=optimizer,
        lr=lambda step: warmup_cosine(step, total, warmup, config.lr),
        epochs=config.epochs,
        batch_size=config.batch_size,
        generator=gen,
        essl=essl,
        essl_view=config.essl_view,
        on_step=None if on_step is None else (lambda _logs: on_step()),
    )
    backbone.eval()
    return PretrainResult(backbone, history, time.perf_counter() - start)
