"""Self-supervised pre-training: the learning-rate schedule, the loop every recipe runs, and the digits recipe.

:func:`pretrain_loop` is the one training loop of the project (the digits demo and quality benchmark, the CIFAR-10
recipe and the photonics benchmark): a recipe hands it the backbone, projector, views, SSL loss, optimiser and
schedule, and optionally an :class:`~essl_aug.EquivarianceLoss` with the input of its extra view and any
:class:`~essl_aug.objectives.Objectives` (fed the views' features, embeddings and augmentation parameters).
:func:`pretrain` is the digits recipe on top of it (a :class:`SmallCNN`, AdamW, SimCLR's NT-Xent), with the
objectives named in its configuration (:mod:`essl_aug.experiments.objectives`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from essl_aug import EquivarianceLoss, build_family
from essl_aug.augment import Params, TwoViews
from essl_aug.experiments.augment import ViewAugment, invariance_augment
from essl_aug.experiments.models import SmallCNN, projector
from essl_aug.experiments.objectives import ObjectiveSpec, build_objectives, essl_loss, view_pipeline
from essl_aug.experiments.simclr import nt_xent
from essl_aug.experiments.vicreg import vicreg_loss
from essl_aug.objectives import Objectives, StepInputs
from essl_aug.registry import FamilySpec
from essl_aug.transform import Mode

#: The SSL methods of :class:`PretrainConfig` (``method``).
METHODS = ("simclr", "vicreg")

#: The augmentation parameters of the two SSL views, ``(p1, p2)``, each ``{name: Params}`` (:mod:`essl_aug.augment`).
ViewParams = Sequence[Mapping[str, Params]]
#: Makes the two SSL views of a batch: ``views(x, generator) -> (v1, v2)``, or ``((v1, v2), (p1, p2))`` with their
#: augmentation parameters (what a :class:`~essl_aug.augment.TwoViews` returns).
ViewPair = Callable[[Tensor, torch.Generator], tuple[Tensor, Tensor] | tuple[Sequence[Tensor], ViewParams]]
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
    order_generator: torch.Generator | None = None,
    essl_generator: torch.Generator | None = None,
    objectives: Objectives | None = None,
    prepare: Callable[[Tensor], Tensor] | None = None,
    amp: bool = False,
    on_step: Callable[[Mapping[str, Tensor]], None] | None = None,
    on_epoch: Callable[[int, Mapping[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Pre-train ``backbone`` (with the SSL projector ``head``) on unlabelled ``data``; returns the per-epoch means.

    Each epoch visits ``data`` in a random order (``order_generator``, on ``data.device``) in batches of
    ``batch_size``, dropping the incomplete last batch. Per step, in this order: the learning rate of every
    parameter group is set to ``lr(step)``; the batch ``x`` (after ``prepare``, e.g. uint8 to float) gives the two
    views ``views(x, generator)`` (and their augmentation parameters when ``views`` returns them); the SSL loss is
    ``ssl_loss(z1, z2)`` with ``f = backbone(v)`` and ``z = head(f)`` computed once per view; the extra view
    ``essl_view(x, essl_generator)`` (``x`` itself without ``essl_view``) is made when ``essl`` or an objective
    needs it; with ``essl``, ``essl(backbone, extra)`` adds its weighted cross-entropy; with ``objectives``,
    ``objectives(StepInputs(backbone, extra, (f1, f2), (z1, z2), (p1, p2), essl_generator))`` adds its weighted
    loss; then one optimiser step (under autocast with a gradient scaler when ``amp``, CUDA only).

    Args:
        backbone, head: the trained modules (set to training mode here); ``optimizer`` holds their parameters
            (and those of ``essl`` and ``objectives``).
        data: (N, ...) unlabelled inputs, on the training device.
        lr: the learning rate of a step, e.g. ``lambda s: warmup_cosine(s, total, warmup, peak)``.
        on_step: called after every step with the step's detached losses (no host sync here).
        on_epoch: called after every epoch with its index and its row of the returned history.
        generator: draws the two views (``views(x, generator)``); ``order_generator`` the data order and
            ``essl_generator`` the E-SSL view (both default to ``generator``). Separate streams keep the data order
            and the SSL views of a seed the same with and without the E-SSL branch (paired comparisons).
        objectives: added to the SSL loss (:mod:`essl_aug.objectives`); those that read ``params`` need ``views``
            that return them. Their random draws take ``essl_generator`` (``StepInputs.generator``).

    Returns:
        One row per epoch: the mean over its steps of ``ssl`` (the SSL loss), ``loss`` (the total), with E-SSL
        ``essl_ce`` (unweighted cross-entropy) and ``essl_acc`` (accuracy of the head), and with ``objectives``
        their logs (``"<name>/loss"``, ``"<name>/<key>"``). The logs are summed on the device and read once per
        epoch.

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
    if objectives is not None:
        objectives.train()
    needs_extra = essl is not None or (objectives is not None and "extra" in objectives.requires)
    history: list[dict[str, float]] = []
    step = 0
    for epoch in range(epochs):
        sums: dict[str, Tensor] = {}
        order = torch.randperm(n, generator=order_generator or generator, device=data.device)
        for i in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = lr(step)
            x = data[order[i * batch_size : (i + 1) * batch_size]]
            if prepare is not None:
                x = prepare(x)
            made = views(x, generator)
            params: tuple[Mapping[str, Params], Mapping[str, Params]] | None = None
            if isinstance(made[0], Tensor):
                v1, v2 = made
            else:
                (v1, v2), (p1, p2) = made
                params = (p1, p2)
            autocast = torch.autocast(data.device.type) if use_amp else contextlib.nullcontext()
            with autocast:
                f1 = backbone(v1)
                z1 = head(f1)
                f2 = backbone(v2)
                z2 = head(f2)
                ssl = ssl_loss(z1, z2)
                logs = {"ssl": ssl.detach()}
                loss = ssl
                extra = None
                if needs_extra:
                    extra = x if essl_view is None else essl_view(x, essl_generator or generator)
                if essl is not None:
                    assert extra is not None
                    out = essl(backbone, extra)
                    loss = loss + out.loss
                    logs.update(essl_ce=out.cross_entropy, essl_acc=out.accuracy)
                if objectives is not None:
                    step_inputs = StepInputs(backbone, extra, (f1, f2), (z1, z2), params, essl_generator or generator)
                    res = objectives(step_inputs)
                    loss = loss + res.loss
                    logs.update(res.logs)
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


def seeded_streams(seed: int, device: torch.device | str = "cpu", count: int = 3) -> list[torch.Generator]:
    """``count`` independent generators on ``device`` derived from ``seed`` (one per source of randomness of a run).

    Example:
        >>> g = seeded_streams(0, count=2)
        >>> bool(torch.rand(3, generator=g[0]).ne(torch.rand(3, generator=g[1])).all())
        True
        >>> torch.equal(torch.rand(3, generator=seeded_streams(0)[1]), torch.rand(3, generator=seeded_streams(0)[1]))
        True
    """
    seeds = torch.randint(2**62, (count,), generator=torch.Generator().manual_seed(seed))
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


@dataclass(frozen=True)
class PretrainConfig:
    """One pretraining run of the digits recipe.

    Args:
        essl: family the representation should be *sensitive* to (E-SSL term); ``None`` for the SSL method alone.
        method: the SSL loss, ``"simclr"`` (NT-Xent at ``temperature``) or ``"vicreg"`` (:func:`vicreg_loss` with
            its paper's weights), both on the same projector.
        essl_mode: ``"all"`` (every element of ``essl`` for every image, the reference) or ``"random"`` (one
            uniformly drawn element per image); ``essl_balanced`` draws the random elements exactly balanced.
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
        seed: seeds the model's initialisation and every random draw of the run, in three streams
            (:func:`seeded_streams`): the data order, the two SSL views, the E-SSL branch. Two configurations that
            differ only in the E-SSL branch (or the SSL loss) share the initialisation of the backbone and projector,
            the data order and the SSL views of every step.
        pipeline: make the views with the :mod:`essl_aug.augment` pipelines of ``view`` and ``essl_view``
            (:func:`~essl_aug.experiments.objectives.view_pipeline`: the same crop, flip, jitter and grayscale
            settings; on 1-channel images the jitter is brightness and contrast only), which return every image's
            augmentation parameters for the objectives that read them; ``False``: the
            :class:`~essl_aug.experiments.augment.ViewAugment` views themselves. The Fashion-MNIST view
            (:data:`essl_aug.experiments.demo.FASHION_VIEW`) gives 28 px crops of area 0.2 to 1, flips with
            probability 0.5 and brightness/contrast jitter of 0.4 with probability 0.8.
        objectives: the :mod:`essl_aug.objectives` added to the SSL loss, by name with their weights and options
            (:func:`~essl_aug.experiments.objectives.objective`, e.g. ``(objective("augself", 1.0),)``), built
            after the backbone, projector and ``essl`` head (so those keep their initialisation) and drawing from
            the E-SSL stream. ``"augself"`` and ``"predictor"`` need ``pipeline=True``.
    """

    essl: FamilySpec | None = "rotation"
    method: str = "simclr"
    essl_mode: Mode = "all"
    essl_balanced: bool = False
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
    pipeline: bool = False
    objectives: tuple[ObjectiveSpec, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"`method` must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.essl_mode not in ("all", "random"):
            raise ValueError(f"`essl_mode` must be 'all' or 'random', got {self.essl_mode!r}")
        if not isinstance(self.objectives, tuple):
            raise TypeError(
                f"`objectives` must be a tuple of objective(...) specs (hashable), got {type(self.objectives).__name__}"
            )
        names = [spec.name for spec in self.objectives if isinstance(spec, ObjectiveSpec)]
        if len(names) != len(self.objectives):
            raise TypeError("each of `objectives` must be an essl_aug.experiments.objectives.objective(...) spec")
        if len(set(names)) != len(names):
            raise ValueError(f"`objectives` must have distinct names, got {names}; give repeated kinds `name=`")
        needing = [spec.name for spec in self.objectives if spec.needs_params]
        if needing and not self.pipeline:
            raise ValueError(
                f"objectives {needing} read the views' augmentation parameters: set `pipeline=True` (the views then "
                "come from essl_aug.augment pipelines that return them)"
            )

    @property
    def uses_essl(self) -> bool:
        return self.essl is not None and self.weight > 0


@dataclass
class PretrainResult:
    """A trained backbone with its per-epoch history (``loss``, ``ssl``, ``essl_ce``/``essl_acc`` with E-SSL, and the
    objectives' logs, ``"<name>/<key>"``)."""

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

    Per step (:func:`pretrain_loop`): two augmented views for the SSL loss of ``config.method`` (each also
    transformed by ``config.invariance`` if set) and, with E-SSL, a third, smaller view whose family elements
    (every one, or one per image: ``config.essl_mode``) go through the backbone and an
    :class:`~essl_aug.EquivarianceHead` (:class:`~essl_aug.EquivarianceLoss`), adding ``weight * CE``; then the
    weighted losses of ``config.objectives``. Incomplete last batches are dropped.

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
    gen, order_gen, essl_gen = seeded_streams(config.seed, device)
    backbone = SmallCNN(images.shape[1], config.width).to(device)
    proj = projector(backbone.out_features).to(device)
    params = [*backbone.parameters(), *proj.parameters()]
    essl: EquivarianceLoss | None = None
    if config.essl is not None and config.uses_essl:
        essl = essl_loss(
            config.essl,
            backbone.out_features,
            config.head_hidden,
            config.weight,
            mode=config.essl_mode,
            balanced=config.essl_balanced,
            num_per_batch=config.num_per_batch,
            generator=essl_gen,
        ).to(device)
        params += list(essl.parameters())
    channels = images.shape[1]
    two_views = TwoViews(view_pipeline(config.view, channels)) if config.pipeline else None
    extra_pipeline = view_pipeline(config.essl_view, channels) if config.pipeline else None
    objectives: Objectives | None = None
    if config.objectives:
        objectives = build_objectives(
            config.objectives,
            in_features=backbone.out_features,
            embed_dim=_out_width(proj),
            hidden=config.head_hidden,
            views=two_views,
            generator=essl_gen,
        ).to(device)
        params += list(objectives.parameters())
    inv_family = build_family(config.invariance) if config.invariance is not None else None
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = n // config.batch_size
    total = steps_per_epoch * config.epochs
    warmup = steps_per_epoch * config.warmup_epochs

    def views(x: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor] | tuple[Sequence[Tensor], ViewParams]:
        drawn: ViewParams | None = None
        if two_views is None:
            v1, v2 = config.view(x, gen), config.view(x, gen)
        else:
            (v1, v2), drawn = two_views(x, gen)
        if inv_family is not None:
            v1 = invariance_augment(v1, inv_family, config.invariance_p, gen)
            v2 = invariance_augment(v2, inv_family, config.invariance_p, gen)
        return (v1, v2) if drawn is None else ((v1, v2), drawn)

    def extra_view(x: Tensor, gen: torch.Generator) -> Tensor:
        return config.essl_view(x, gen) if extra_pipeline is None else extra_pipeline(x, gen)[0]

    start = time.perf_counter()
    history = pretrain_loop(
        backbone,
        proj,
        images.to(device),
        views=views,
        ssl_loss=vicreg_loss if config.method == "vicreg" else (lambda z1, z2: nt_xent(z1, z2, config.temperature)),
        optimizer=optimizer,
        lr=lambda step: warmup_cosine(step, total, warmup, config.lr),
        epochs=config.epochs,
        batch_size=config.batch_size,
        generator=gen,
        essl=essl,
        essl_view=extra_view,
        order_generator=order_gen,
        essl_generator=essl_gen,
        objectives=objectives,
        on_step=None if on_step is None else (lambda _logs: on_step()),
    )
    backbone.eval()
    return PretrainResult(backbone, history, time.perf_counter() - start)


def _out_width(module: nn.Module) -> int:
    """The output width of a projector: the ``out_features`` of its last Linear layer."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the projector has no Linear layer to read its output width from")
    return linears[-1].out_features
