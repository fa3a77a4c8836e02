"""Self-supervised pre-training: the learning-rate schedule, the loop every recipe runs, and the digits recipe.

:func:`pretrain_loop` is the one training loop of the project (the digits demo and quality benchmark, the CIFAR-10
recipe, the step-cost benchmark and the photonics benchmark): a recipe hands it the backbone, projector, views, SSL
loss, optimiser and schedule, and the :class:`~essl_aug.objectives.Objectives` added to the SSL loss (the E-SSL term
is the library's :class:`~essl_aug.objectives.ESSL`, named ``essl``), fed a
:class:`~essl_aug.objectives.StepInputs` per step. :func:`pretrain` is the digits recipe on top of it (a
:class:`SmallCNN`, AdamW, SimCLR's NT-Xent), configured by a :class:`PretrainConfig` whose E-SSL settings are the
library's ``essl:`` block (:class:`essl_aug.config.ESSLConfig`) and whose other objectives are named as the library's
config layer names them (:func:`essl_aug.config.build_objectives`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import Tensor, nn

from benchmarks.toolkit.models import SmallCNN, projector
from benchmarks.toolkit.simclr import nt_xent
from benchmarks.toolkit.vicreg import vicreg_loss
from benchmarks.toolkit.views import invariance as invariance_family
from benchmarks.toolkit.views import output_shape, view
from essl_aug import EquivariantTransform
from essl_aug.config import ESSLConfig, build_objectives
from essl_aug.layers import capture
from essl_aug.objectives import ESSL, Objective, Objectives, StepInputs
from essl_aug.objectives.base import weighted
from essl_aug.objectives.layered import maps_layer
from essl_aug.registry import FamilySpec
from essl_aug.transform import Mode
from essl_aug.transforms import Params
from essl_aug.views import TwoViews, ViewPipeline

#: The SSL methods of :class:`PretrainConfig` (``method``).
METHODS = ("simclr", "vicreg", "none")
#: The toolkit's defaults under a run's ``essl:`` block (the rest are the library's,
#: :data:`essl_aug.config.DEFAULTS`): the small CNN's E-SSL head, 256-256.
ESSL_DEFAULTS: dict[str, Any] = {"hidden_dim": [256, 256]}
#: The SSL view of the digits recipe (:mod:`benchmarks.toolkit.demo` has every dataset's).
DIGITS_VIEW = view(16, (0.2, 1.0), jitter=0.8, gray=0.2)

#: The augmentation parameters of the two SSL views, ``(p1, p2)``, each ``{name: Params}`` (:mod:`essl_aug.views`).
ViewParams = Sequence[Mapping[str, Params]]
#: Makes the two SSL views of a batch: ``views(x, generator) -> (v1, v2)``, or ``((v1, v2), (p1, p2))`` with their
#: augmentation parameters (what a :class:`~essl_aug.views.TwoViews` returns).
ViewPair = Callable[[Tensor, torch.Generator], tuple[Tensor, Tensor] | tuple[Sequence[Tensor], ViewParams]]
#: Makes the extra view of a batch (the input of the E-SSL objective): ``extra(x, generator) -> v``.
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
    objectives: Objectives | None = None,
    extra: View | None = None,
    order_generator: torch.Generator | None = None,
    essl_generator: torch.Generator | None = None,
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
    ``ssl_loss(z1, z2)`` with ``f = backbone(v)`` and ``z = head(f)`` computed once per view (the views first go
    through ``objectives.prepare_views``, a no-op unless an objective acts on them); the extra view
    ``extra(x, essl_generator)`` (``x`` itself without ``extra``) is made when an objective needs it; the
    ``objectives`` add their weighted loss, given ``StepInputs(backbone, extra, (f1, f2), (z1, z2), (p1, p2),
    essl_generator, images=x, maps=(m1, m2))`` (``maps``: the views' maps at the layer an
    :class:`~essl_aug.objectives.AtLayer` objective reads, else None); then one optimiser step (under autocast with a
    gradient scaler when ``amp``, CUDA only).

    Args:
        backbone, head: the trained modules (set to training mode here); ``optimizer`` holds their parameters
            (and those of ``objectives``).
        data: (N, ...) unlabelled inputs, on the training device.
        lr: the learning rate of a step, e.g. ``lambda s: warmup_cosine(s, total, warmup, peak)``.
        on_step: called after every step with the step's detached losses (no host sync here).
        on_epoch: called after every epoch with its index and its row of the returned history.
        generator: draws the two views (``views(x, generator)``); ``order_generator`` the data order and
            ``essl_generator`` the extra view and the objectives' draws (``StepInputs.generator``; both default to
            ``generator``). Separate streams keep the data order and the SSL views of a seed the same with and
            without the objectives (paired comparisons).
        objectives: added to the SSL loss (:mod:`essl_aug.objectives`; E-SSL is :class:`~essl_aug.objectives.ESSL`);
            those that read ``params`` need ``views`` that return them.

    Returns:
        One row per epoch: the mean over its steps of ``ssl`` (the SSL loss), ``loss`` (the total) and the
        objectives' logs (``"<name>/loss"``, ``"<name>/<key>"``: ``essl/ce`` and ``essl/acc`` for E-SSL). The logs
        are summed on the device and read once per epoch.

    Example:
        >>> from benchmarks.toolkit import SmallCNN, nt_xent, projector
        >>> from essl_aug.objectives import ESSL, Objectives
        >>> net, proj = SmallCNN(3, width=4), projector(16)
        >>> essl = Objectives({"essl": ESSL("rotation", in_features=16, hidden=(8,))})
        >>> opt = torch.optim.SGD([*net.parameters(), *proj.parameters(), *essl.parameters()], lr=0.1)
        >>> history = pretrain_loop(
        ...     net, proj, torch.rand(8, 3, 8, 8), views=lambda x, g: (x, x.flip(-1)), ssl_loss=nt_xent,
        ...     optimizer=opt, lr=lambda step: 0.1, epochs=2, batch_size=4, generator=torch.Generator(),
        ...     objectives=essl)
        >>> len(history), sorted(history[0])
        (2, ['essl/acc', 'essl/ce', 'essl/loss', 'loss', 'ssl'])
    """
    n = data.shape[0]
    steps = n // batch_size
    if steps == 0:
        raise ValueError(f"need at least `batch_size`={batch_size} inputs, got {n}; lower the batch size.")
    use_amp = amp and data.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    backbone.train()
    head.train()
    if objectives is not None:
        objectives.train()
    needs_extra = objectives is not None and "extra" in objectives.requires
    at_layer = maps_layer(objectives) if objectives is not None else None  # the views' maps some objective reads
    essl_gen = essl_generator or generator
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
            if objectives is not None:  # a no-op unless an objective acts on the views (ESSLOnViews)
                v1, v2 = objectives.prepare_views([v1, v2], essl_gen)
            autocast = torch.autocast(data.device.type) if use_amp else contextlib.nullcontext()
            catch: contextlib.AbstractContextManager[list[Tensor]] = (
                capture(backbone, *at_layer) if at_layer else contextlib.nullcontext([])
            )
            with autocast:
                with catch as maps:
                    f1 = backbone(v1)
                    z1 = head(f1)
                    f2 = backbone(v2)
                    z2 = head(f2)
                ssl = ssl_loss(z1, z2)
                logs = {"ssl": ssl.detach()}
                loss = ssl
                if objectives is not None:
                    extra_view = (x if extra is None else extra(x, essl_gen)) if needs_extra else None
                    pair = (maps[0], maps[1]) if at_layer else None
                    res = objectives(
                        StepInputs(backbone, extra_view, (f1, f2), (z1, z2), params, essl_gen, images=x, maps=pair)
                    )
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


def essl_config(block: ESSLConfig | Mapping[str, Any] | None) -> ESSLConfig:
    """A run's ``essl:`` block as the library checks it: a mapping (its keys: :mod:`essl_aug.config`) over
    :data:`ESSL_DEFAULTS`, an :class:`~essl_aug.config.ESSLConfig` as it is, or ``None`` (no E-SSL term: ``lambda``
    0). The SSL views are the run's own (:attr:`PretrainConfig.view`), so the keys ``views`` and ``source`` keep
    their defaults, and the other objectives go in :attr:`PretrainConfig.objectives`.

    Example:
        >>> block = essl_config({"transform": ["rotation", "vflip"], "lambda": 0.5})
        >>> block.weight, block.num_classes, block.hidden, essl_config(None).active
        (0.5, 8, (256, 256), False)
    """
    if block is None:
        block = {"lambda": 0.0}
    config = block if isinstance(block, ESSLConfig) else ESSLConfig.from_mapping(block, ESSL_DEFAULTS)
    if config.views is not None or config.seed is not None:
        raise ValueError(
            "essl.views / essl.seed: the toolkit makes the SSL views itself (PretrainConfig.view), the extra view "
            "from the batch, and seeds its streams with PretrainConfig.seed; leave both keys out"
        )
    if config.objectives:
        raise ValueError(
            f"essl.objectives: give the other objectives as PretrainConfig(objectives={config.objectives!r}), "
            "where the views' parameters are provided"
        )
    return config


@dataclass(frozen=True)
class PretrainConfig:
    """One pretraining run of the digits recipe.

    Args:
        essl: the E-SSL term, as the library's ``essl:`` block (:func:`essl_config`: a mapping with the keys of
            :mod:`essl_aug.config`, e.g. ``{"transform": "rotation", "lambda": 0.4, "mode": "all"}``, over
            :data:`ESSL_DEFAULTS`; the default ``{}`` is the reference term, all four rotations at 0.4; ``None`` for the
            SSL method alone), checked once into :attr:`block`, an :class:`~essl_aug.config.ESSLConfig`. ``transform``:
            the family (or continuous transformation) the representation should be *sensitive* to; ``lambda``: its
            weight (reference 0.4; 0 switches it off); ``mode``: ``"all"`` (every element for every image, the
            reference) or ``"random"`` (one per image); ``hidden_dim``: the head's hidden widths; ``crop_size`` /
            ``crop_scale``: the extra view's, instead of the reference (:func:`essl_aug.views.extra_view`: half the SSL
            views' size, area 0.2 to 1).
        balanced: in ``"random"`` mode, exactly balanced labels (:class:`~essl_aug.EquivariantTransform`).
        num_per_batch: in ``"all"`` mode, use only this many elements of the family per step (all by default).
        objectives: the other :mod:`essl_aug.objectives` added to the SSL loss, by name with their options as the
            library's config layer takes them (:func:`essl_aug.config.build_objectives`, registry
            :data:`essl_aug.config.OBJECTIVES`), e.g. ``{"augself": {"weight": 1.0, "groups": ["crop", "color"]}}``;
            built after the backbone, projector and E-SSL head (so those keep their initialisation), drawing from
            the E-SSL stream, given the SSL views' parameters.
        method: the SSL loss, ``"simclr"`` (NT-Xent at ``temperature``) or ``"vicreg"`` (:func:`vicreg_loss` with
            its paper's weights), both on the same projector; ``"none"``: no SSL loss (an exact 0), for an objective
            that is the whole loss (SIE).
        invariance: a family applied as an augmentation to each SSL view (identity with probability
            ``1 - invariance_p``, else a uniform non-identity element: :func:`~benchmarks.toolkit.views.invariance`);
            ``None`` for none.
        epochs, batch_size, lr, weight_decay, warmup_epochs: AdamW with linear warmup then cosine to 0, per step.
        temperature: NT-Xent temperature.
        width: :class:`SmallCNN` width (features ``4 * width``).
        view: the pipeline of the two SSL views (:func:`~benchmarks.toolkit.views.view`; float views in [0, 1]).
        extra_photometric: the extra view's colour ops (the reference's, True); False keeps its crop and flip only
            (for SSL views without colour ops).
        seed: seeds the model's initialisation and every random draw of the run, in three streams
            (:func:`seeded_streams`): the data order, the two SSL views, the E-SSL branch (the extra view and the
            objectives' draws). Two configurations that differ only in the objectives (or the SSL loss) share the
            initialisation of the backbone and projector, the data order and the SSL views of every step.
    """

    essl: ESSLConfig | Mapping[str, Any] | None = field(default_factory=dict)
    balanced: bool = False
    num_per_batch: int | None = None
    objectives: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    method: str = "simclr"
    invariance: FamilySpec | None = None
    invariance_p: float = 0.5
    epochs: int = 30
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 2
    temperature: float = 0.5
    width: int = 32
    view: ViewPipeline = DIGITS_VIEW
    extra_photometric: bool = True
    seed: int = 0
    #: ``essl`` as the library checked it (:func:`essl_config`).
    block: ESSLConfig = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "block", essl_config(self.essl))
        if self.method not in METHODS:
            raise ValueError(f"`method` must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not isinstance(self.view, ViewPipeline):
            raise TypeError(
                f"`view` must be an essl_aug.views.ViewPipeline (benchmarks.toolkit.views.view(...)), got "
                f"{type(self.view).__name__}"
            )
        if not isinstance(self.objectives, Mapping) or "essl" in self.objectives:
            raise ValueError(
                "`objectives` must be a mapping {name: {option: value}} of the objectives beside the E-SSL term "
                f"(the block `essl` sets that one), got {self.objectives!r}"
            )

    @property
    def uses_essl(self) -> bool:
        """Whether the E-SSL term runs (``lambda > 0``)."""
        return self.block.active

    def extra_view(self, main_size: int) -> ViewPipeline:
        """The extra view for SSL views of ``main_size`` px (:meth:`essl_aug.config.ESSLConfig.extra_view`, float
        views in [0, 1])."""
        return self.block.extra_view(main_size, photometric=self.extra_photometric, normalize=None)


def ssl_loss(config: PretrainConfig) -> Callable[[Tensor, Tensor], Tensor]:
    """The SSL loss of ``config.method`` on the projector outputs of the two views (``"none"``: an exact ``-0.0``
    that keeps the graph, :func:`~essl_aug.objectives.base.weighted`, so that the objectives are the whole loss).

    Example:
        >>> z = torch.randn(4, 8, requires_grad=True)
        >>> loss = ssl_loss(PretrainConfig(essl=None, method="none"))(z, z)
        >>> float(loss), loss.requires_grad
        (-0.0, True)
    """
    if config.method == "vicreg":
        return vicreg_loss
    if config.method == "none":
        return lambda z1, z2: weighted(0.0, (z1 + z2).sum())
    return lambda z1, z2: nt_xent(z1, z2, config.temperature)


def essl_objective(config: PretrainConfig, in_features: int) -> dict[str, Objective]:
    """The E-SSL term of ``config`` as ``{"essl": ESSL}`` (empty when it is off), built by the library's config layer
    (:meth:`essl_aug.config.ESSLConfig.build_objectives`); with ``balanced`` or ``num_per_batch``, which the block has
    no key for, the same :class:`~essl_aug.objectives.ESSL` over an :class:`~essl_aug.EquivariantTransform` with them.

    Example:
        >>> sorted(essl_objective(PretrainConfig(essl={"transform": "vflip"}), in_features=8))
        ['essl']
    """
    block = config.block
    if not block.active:
        return {}
    if not config.balanced and config.num_per_batch is None:
        built = block.build_objectives(in_features)
        assert built is not None  # active: it holds the E-SSL term
        return {name: cast(Objective, term) for name, term in built.objectives.items()}
    mode = cast(Mode, block.mode)
    transform = EquivariantTransform(
        block.transformation, mode=mode, balanced=config.balanced, num_per_batch=config.num_per_batch
    )
    return {"essl": ESSL(transform, in_features, weight=block.weight, hidden=block.hidden)}


@dataclass
class PretrainResult:
    """A trained backbone with its per-epoch history (``loss``, ``ssl``, and the objectives' logs,
    ``"<name>/<key>"``: ``essl/ce`` and ``essl/acc`` with E-SSL)."""

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

    Per step (:func:`pretrain_loop`): two views of ``config.view`` for the SSL loss of ``config.method`` (each also
    transformed by ``config.invariance`` if set) and, with E-SSL, the reference extra view
    (:meth:`PretrainConfig.extra_view`: half the SSL views' size) whose family elements (every one, or one per
    image) go through the backbone and the head of :class:`~essl_aug.objectives.ESSL`, adding ``lambda * CE``; then
    the weighted losses of ``config.objectives``, given the views' parameters. Incomplete last batches are dropped.

    Example:
        >>> cfg = PretrainConfig(essl={"transform": "rotation", "hidden_dim": [8]}, epochs=1, batch_size=8, width=4)
        >>> res = pretrain(torch.rand(16, 3, 16, 16), cfg)
        >>> sorted(res.history[0])
        ['essl/acc', 'essl/ce', 'essl/loss', 'loss', 'ssl']
    """
    device = torch.device(device)
    n = images.shape[0]
    if n < config.batch_size:
        raise ValueError(f"need at least `batch_size`={config.batch_size} images, got {n}; lower the batch size.")
    torch.manual_seed(config.seed)
    gen, order_gen, essl_gen = seeded_streams(config.seed, device)
    backbone = SmallCNN(images.shape[1], config.width).to(device)
    proj = projector(backbone.out_features).to(device)
    two_views = TwoViews(config.view)
    built = essl_objective(config, backbone.out_features)
    context = {"in_features": backbone.out_features, "embedding_dim": _out_width(proj), "augmentations": two_views}
    built.update(build_objectives(config.objectives, context))
    objectives = Objectives(built).to(device) if built else None
    params = [*backbone.parameters(), *proj.parameters(), *(objectives.parameters() if objectives else ())]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    inv = invariance_family(config.invariance, config.invariance_p) if config.invariance is not None else None
    extra_pipeline = config.extra_view(output_shape(config.view, images.shape)[-1])
    steps_per_epoch = n // config.batch_size
    total = steps_per_epoch * config.epochs
    warmup = steps_per_epoch * config.warmup_epochs

    def views(x: Tensor, g: torch.Generator) -> tuple[Sequence[Tensor], ViewParams]:
        made, drawn = two_views(x, g)
        if inv is not None:  # the family's own draw with p, after the views (its parameters are not returned)
            made = [inv(v, g)[0] for v in made]
        return made, drawn

    start = time.perf_counter()
    history = pretrain_loop(
        backbone,
        proj,
        images.to(device),
        views=views,
        ssl_loss=ssl_loss(config),
        optimizer=optimizer,
        lr=lambda step: warmup_cosine(step, total, warmup, config.lr),
        epochs=config.epochs,
        batch_size=config.batch_size,
        generator=gen,
        objectives=objectives,
        extra=lambda x, g: extra_pipeline(x, g)[0],
        order_generator=order_gen,
        essl_generator=essl_gen,
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
