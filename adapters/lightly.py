"""E-SSL in lightly pipelines: the extra view in lightly's multi-view transforms, a head, and losses in lightly's shape.

lightly builds the views on the CPU with a multi-view transform and collates them into ``batch[0]``; its losses take
embeddings, and auxiliary heads return ``(loss, log_dict)`` from ``training_step`` (``OnlineLinearClassifier``).
This module only wires the library into those idioms:

- :func:`with_essl_view` appends the reference extra view (:func:`essl_aug.views.extra_view`) as the **last** view;
  the collate function stays the default (split it off before ``torch.cat(views)``: ``*views, x_e = batch[0]``);
- :class:`EquivariancePredictionHead` is :class:`~essl_aug.EquivarianceHead` under lightly's argument names;
- :class:`ESSLLoss` is :class:`~essl_aug.EquivarianceLoss` whose ``forward`` returns the loss and whose
  ``training_step`` returns ``(loss, {"train_essl_loss", "train_essl_acc"})``;
- :class:`ObjectivesLoss` is :class:`~essl_aug.objectives.Objectives` built from a config (:mod:`essl_aug.config`)
  with the same ``training_step``; :class:`GPUViews` makes the two SSL views on the device with their parameters
  (the loader's ``collate_fn`` then is :func:`essl_aug.adapters.loader.collate_images`);
- :class:`EquivariantStep` is that device-views path in two calls of lightly's loop, ``views(images)`` and
  ``loss(z0, z1)``, configured by an ``essl:`` block.

- [0]: Equivariant Contrastive Learning (E-SSL), 2022, https://arxiv.org/abs/2111.00899
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from essl_aug._validation import check_generator
from essl_aug.config import ESSLConfig, build_objectives, check_provided, log_keys
from essl_aug.head import EquivarianceHead, Norm
from essl_aug.loss import EquivarianceLoss, EquivarianceOutput
from essl_aug.objectives import Objectives, StepInputs
from essl_aug.registry import FamilySpec
from essl_aug.streams import StepStreams
from essl_aug.transform import EquivariantTransform, Mode
from essl_aug.views import MultiCrop, TwoViews, ViewPipeline, Views, extra_view
from essl_aug.views import recipe as build_recipe

try:
    from lightly.transforms.multi_view_transform import MultiViewTransform
    from lightly.transforms.multi_view_transform_v2 import MultiViewTransformV2
    from lightly.transforms.utils import IMAGENET_NORMALIZE
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "essl_aug.adapters.lightly needs lightly; install it with `pip install essl-aug[lightly]` "
        "(or `pip install lightly`)."
    ) from err

from .loader import collate_images  # after lightly's imports: without lightly, that is the error to report

__all__ = [
    "ESSLLoss",
    "EquivariancePredictionHead",
    "EquivariantStep",
    "GPUViews",
    "ObjectivesLoss",
    "collate_images",
    "with_essl_view",
]


def _crop_size(view: Any, depth: int = 0) -> int | None:
    """The size of the first random resized crop inside a (lightly or torchvision) view transform, if any."""
    if depth > 8:
        return None
    if type(view).__name__ == "RandomResizedCrop" and hasattr(view, "size"):
        size = view.size
        return int(size[0]) if isinstance(size, (tuple, list)) else int(size)
    inner = getattr(view, "transforms", None)
    for part in (inner if isinstance(inner, list) else []) + [getattr(view, "transform", None)]:
        found = _crop_size(part, depth + 1) if part is not None and part is not view else None
        if found is not None:
            return found
    return None


class ExtraView:
    """One image (PIL or (C, H, W) tensor) -> the extra view of a :class:`~essl_aug.views.ViewPipeline`, on the CPU
    (torch's global random numbers, as torchvision's transforms draw theirs)."""

    def __init__(self, pipeline: ViewPipeline) -> None:
        self.pipeline = pipeline

    def __call__(self, image: Any) -> Tensor:
        view, _ = self.pipeline(collate_images([image])[0])
        return view[0]

    def __repr__(self) -> str:
        return f"ExtraView({self.pipeline!r})"


def with_essl_view(
    transform: Any,
    view: Callable[[Any], Any] | None = None,
    *,
    main_size: int | None = None,
    input_size: int | None = None,
    scale: tuple[float, float] | None = None,
    normalize: Mapping[str, Sequence[float]] | None = IMAGENET_NORMALIZE,
) -> MultiViewTransform | MultiViewTransformV2:
    """Append the E-SSL extra view to a lightly multi-view transform; it comes **last** in ``batch[0]``.

    The default view is the reference extra view for the transform's crop size (:func:`essl_aug.views.extra_view`:
    16 px of scale (0.2, 1) with flip, colour jitter and grayscale for 32 px views; 96 px of scale (0.05, 0.14) at
    ImageNet size), normalised with lightly's ``normalize`` dict.

    Args:
        transform: a lightly ``MultiViewTransform`` (``SimCLRTransform``, ...), a ``MultiViewTransformV2``, or a
            sequence of per-view transforms. It is not modified.
        view: a view transform to use instead (any callable ``image -> Tensor``).
        main_size: the SSL views' crop size (default: read from the first view's random resized crop).
        input_size, scale: the extra view's size and crop area range instead of the reference.
        normalize: lightly's ``{"mean": [...], "std": [...]}`` (default ``IMAGENET_NORMALIZE``), or None.

    Example:
        >>> from lightly.transforms import SimCLRTransform
        >>> t = with_essl_view(SimCLRTransform(input_size=32))
        >>> [tuple(v.shape) for v in t(torch.rand(3, 40, 40))]
        [(3, 32, 32), (3, 32, 32), (3, 16, 16)]
    """
    if isinstance(transform, (MultiViewTransform, MultiViewTransformV2)):
        views = list(transform.transforms)
    elif isinstance(transform, Sequence) and not isinstance(transform, (str, bytes)) and transform:
        views = list(transform)
    else:
        raise TypeError(
            "`transform` must be a lightly MultiViewTransform (e.g. SimCLRTransform(...)) or a non-empty list of "
            f"per-view transforms, got {type(transform).__name__}."
        )
    if view is None:
        size = main_size if main_size is not None else _crop_size(views[0])
        if size is None:
            raise ValueError("the first view has no RandomResizedCrop to read the crop size from; give `main_size`.")
        pair = None if normalize is None else (tuple(normalize["mean"]), tuple(normalize["std"]))
        view = ExtraView(extra_view(size, size=input_size, scale=scale, normalize=pair))
    elif not callable(view):
        raise TypeError(f"`view` must be a callable view transform (image -> tensor), got {type(view).__name__}.")
    elif input_size is not None or scale is not None:
        raise ValueError("`input_size` and `scale` shape the default view: give them or `view`, not both.")
    cls = MultiViewTransformV2 if isinstance(transform, MultiViewTransformV2) else MultiViewTransform
    return cls(transforms=[*views, view])


class EquivariancePredictionHead(EquivarianceHead):
    """:class:`~essl_aug.EquivarianceHead` under lightly's names: ``[Linear-LayerNorm-ReLU] x num_layers`` then
    ``Linear(hidden_dim, output_dim)`` (the reference ``512-2048-2048-4`` for a ResNet-18 and rotations).

    Example:
        >>> EquivariancePredictionHead(input_dim=512, output_dim=4)(torch.rand(8, 512)).shape
        torch.Size([8, 4])
    """

    in_features_arg = "input_dim"

    def __init__(
        self,
        input_dim: int = 2048,
        hidden_dim: int = 2048,
        output_dim: int = 4,
        num_layers: int = 2,
        norm: Norm = "layer",
        activate_last_hidden: bool = True,
    ) -> None:
        if int(num_layers) < 0:
            raise ValueError(f"`num_layers` must be >= 0, got {num_layers}.")
        hidden = (int(hidden_dim),) * int(num_layers)
        super().__init__(input_dim, output_dim, hidden, norm=norm, activate_last_hidden=activate_last_hidden)


class ESSLLoss(EquivarianceLoss):
    """:class:`~essl_aug.EquivarianceLoss` in lightly's shape: ``criterion(z0, z1) + essl(backbone, x_e)``.

    Args:
        transform: a family spec (``"rotation"``, ``["rotation", "vflip"]``, ...), a family, or an
            :class:`~essl_aug.EquivariantTransform`.
        input_dim: width of the backbone features; builds the reference head ``input_dim-hidden_dim-hidden_dim-K``.
        head: a head to use instead.
        weight: the paper's lambda (reference: 0.4 for SimCLR on CIFAR-10).
        mode: ``"all"`` (reference) or ``"random"``, for a spec or a family.
        normalize: lightly's ``{"mean": [...], "std": [...]}`` dict: an inversion of ``transform`` then inverts in
            normalised space (default ``IMAGENET_NORMALIZE``, lightly's transforms' own); None for pixels.
        hidden_dim: hidden width of the built head.

    Make it a submodule of the model (``self.essl = ESSLLoss(...)``): its head has parameters to optimise.

    Example:
        >>> backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> essl = ESSLLoss("rotation", input_dim=8, hidden_dim=16)
        >>> loss, log = essl.training_step((backbone, torch.rand(4, 3, 16, 16)), 0)
        >>> sorted(log), bool(loss == 0.4 * log["train_essl_loss"])
        (['train_essl_acc', 'train_essl_loss'], True)
    """

    in_features_arg = "input_dim"
    extra_arg = "x_e"

    def __init__(
        self,
        transform: EquivariantTransform | FamilySpec,
        input_dim: int | None = None,
        head: nn.Module | None = None,
        weight: float = 0.4,
        mode: Mode = "all",
        normalize: Mapping[str, Sequence[float]] | None = IMAGENET_NORMALIZE,
        hidden_dim: int = 2048,
    ) -> None:
        if normalize is not None and not isinstance(transform, EquivariantTransform):
            transform = _with_normalize(transform, normalize)
        super().__init__(transform, input_dim, head, weight, mode, hidden=(hidden_dim, hidden_dim))

    def forward(self, backbone: Any, x_e: Tensor | None = None) -> Any:
        """The weighted E-SSL loss on the extra view ``x_e`` (B, C, H, W), to add to lightly's loss."""
        out = super().forward(backbone, x_e)
        return out.loss if isinstance(out, EquivarianceOutput) else out

    def _step(self, batch: Sequence[Any], prefix: str) -> tuple[Tensor, dict[str, Tensor]]:
        if not isinstance(batch, Sequence) or len(batch) != 2:
            raise ValueError("`batch` must be (backbone, x_e), or (features, labels) of views made with `.views(x_e)`.")
        first, second = batch
        out = self.from_features(first, second) if isinstance(first, Tensor) else super().forward(first, second)
        return out.loss, {f"{prefix}_essl_loss": out.cross_entropy, f"{prefix}_essl_acc": out.accuracy}

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> tuple[Tensor, dict[str, Tensor]]:
        """``(loss, log_dict)`` in the shape of lightly's ``OnlineLinearClassifier.training_step``."""
        return self._step(batch, "train")

    def validation_step(self, batch: Sequence[Any], batch_idx: int) -> tuple[Tensor, dict[str, Tensor]]:
        """As :meth:`training_step`, with ``val_`` keys."""
        return self._step(batch, "val")


def _with_normalize(spec: Any, normalize: Mapping[str, Sequence[float]]) -> Any:
    """Give every inversion named in ``spec`` lightly's ``{"mean", "std"}`` dict, unless it has its own."""
    if isinstance(spec, str):
        return {"name": "invert", "normalize": dict(normalize)} if spec == "invert" else spec
    if isinstance(spec, Mapping):
        own = {"mean", "std", "normalize", "naive_normalized"} & set(spec)
        return {**spec, "normalize": dict(normalize)} if spec.get("name") == "invert" and not own else spec
    if isinstance(spec, Sequence):
        return [_with_normalize(s, normalize) for s in spec]
    return spec


class GPUViews(nn.Module):
    """The two SSL views of an un-augmented batch (from :func:`~essl_aug.adapters.loader.collate_images`), made on its
    device by a recipe (``"simclr"``, ``"byol"``, or a :class:`~essl_aug.views.TwoViews`), outside autocast and
    autograd: ``(views, params)``; ``params`` feed :class:`ObjectivesLoss` (``StepInputs(params=tuple(params))``).
    A multi-crop recipe (``"dino"``, ``"swav"``: lightly's ``DINOTransform`` on the device, ``num_local=6`` for its
    default) gives every crop, the two global ones first; the objectives take the global crops' ``params[:2]``.

    Example:
        >>> views, params = GPUViews("simclr", size=16)(torch.randint(0, 256, (4, 3, 24, 24), dtype=torch.uint8))
        >>> [tuple(v.shape) for v in views], tuple(params[0]["resized_crop"].box.shape)
        ([(4, 3, 16, 16), (4, 3, 16, 16)], (4, 4))
    """

    def __init__(
        self,
        recipe: str | TwoViews = "simclr",
        size: int | tuple[int, int] = 224,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if isinstance(recipe, TwoViews) and options:
            raise ValueError(f"{sorted(options)} are options of a recipe given by name; this TwoViews has its own.")
        self.recipe = recipe if isinstance(recipe, TwoViews) else build_recipe(recipe, size, **options)
        check_generator(generator)
        self.generator = generator

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Views:
        """``(views, params)`` of the batch ``x``; ``generator`` draws them instead of the module's own."""
        if not isinstance(x, Tensor):
            raise TypeError(f"`x` must be a (B, C, H, W) batch (collate_images makes one), got {type(x).__name__}.")
        check_generator(generator)
        with torch.autocast(x.device.type, enabled=False), torch.no_grad():
            return self.recipe(x, generator if generator is not None else self.generator)


class ObjectivesLoss(Objectives):
    """:class:`~essl_aug.objectives.Objectives` built by name (:mod:`essl_aug.config`), with lightly's step shape:
    :meth:`training_step` returns the summed weighted loss and ``{"train_<name>_<key>": ...}``."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any], in_features: int, **context: Any) -> ObjectivesLoss:
        """The objectives of ``config`` (``{name: {option: value}}``), given ``in_features`` and the ``context``
        values their constructors name (``augmentations``: the views' recipe, ``embedding_dim``, ...)."""
        return cls(build_objectives(config, {"in_features": in_features, **context}))

    def training_step(self, inputs: StepInputs, batch_idx: int) -> tuple[Tensor, dict[str, Tensor]]:
        """``(loss, log_dict)``: the summed weighted loss and the logs as ``train_<name>_<key>``."""
        return self._step(inputs, "train")

    def validation_step(self, inputs: StepInputs, batch_idx: int) -> tuple[Tensor, dict[str, Tensor]]:
        """As :meth:`training_step`, with ``val_`` keys."""
        return self._step(inputs, "val")

    def _step(self, inputs: StepInputs, prefix: str) -> tuple[Tensor, dict[str, Tensor]]:
        out = self(inputs)
        return out.loss, log_keys(out.logs, prefix)


class EquivariantStep(nn.Module):
    """The device-views path of a lightly loop in two calls: ``x0, x1 = step.views(images)`` makes the SSL views on
    the images' device with their parameters (:class:`GPUViews`), and ``step.loss(z0, z1)`` returns the weighted
    E-SSL term on the reference extra view of the same images plus the config's objectives.

    The backbone features of the two views are read by a forward hook on ``backbone`` while it runs on them (the
    model's own ``model(x0)``, ``model(x1)``, or one call on both), so lightly's forward stays as it is.

    Args:
        backbone: the model's backbone (a reference, not a submodule: the model's state dict holds it once).
        input_dim: the width of its (flattened) features.
        size: the views' size (32 on CIFAR-10).
        config: an ``essl:`` block (:mod:`essl_aug.config`); ``views`` defaults to ``simclr`` (lightly's
            ``SimCLRTransform`` defaults), the E-SSL term to the reference (``lambda`` 0.4, four rotations).
        embedding_dim: the projector's width, for objectives that read the embeddings.
        generator: draws the views, the extra view and the labels (on the images' device); default torch's.

    Make it a submodule of the model (``self.essl = EquivariantStep(self.backbone, ...)``): its heads are optimised,
    and the state of the ``essl.seed`` streams is saved with the model's ``state_dict`` (Lightning's checkpoints).

    Example:
        >>> backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> step = EquivariantStep(backbone, input_dim=8, size=16, config={"hidden_dim": 16})
        >>> x0, x1 = step.views(torch.randint(0, 256, (4, 3, 24, 24), dtype=torch.uint8))
        >>> projector = nn.Linear(8, 4)
        >>> z0, z1 = projector(backbone(x0)), projector(backbone(x1))
        >>> loss, log = step.training_step((z0, z1), 0)
        >>> sorted(log), tuple(step.params[0]["resized_crop"].box.shape)
        (['train_essl_acc', 'train_essl_ce', 'train_essl_loss'], (4, 4))
    """

    def __init__(
        self,
        backbone: nn.Module,
        input_dim: int,
        size: int,
        config: Mapping[str, Any] | None = None,
        embedding_dim: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"`backbone` must be the model's backbone (an nn.Module), got {type(backbone).__name__}.")
        block = ESSLConfig.from_mapping(config, {"views": "simclr"})
        self.gpu_views = GPUViews(block.build_views(size) or build_recipe("simclr", size), generator=generator)
        recipe = self.gpu_views.recipe
        if isinstance(recipe, MultiCrop):
            raise ValueError(
                "EquivariantStep makes two views; for the multi-crop views of essl.views (dino, swav) use GPUViews "
                "and ObjectivesLoss, given the global crops' features and params[:2] (the lightly guide, Multi-crop)."
            )
        self.extra_view = block.extra_view(size, True, recipe.pipelines[0].normalize)
        context = {"augmentations": recipe, **({"embedding_dim": embedding_dim} if embedding_dim else {})}
        built = block.build_objectives(input_dim, **context)
        if built is None:
            raise ValueError("the essl block has no term to add (lambda 0 and no objectives): drop the step instead.")
        check_provided(built, frozenset({"backbone", "extra", "features", "params", "embeddings", "images"}))
        self.objectives = built
        self.generator = generator
        #: The step streams of ``essl.seed`` (the rank read at each step), or None.
        self.streams = None if block.seed is None else StepStreams(block.seed)
        self.params: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None
        self._generator: torch.Generator | None = generator
        self._images: Tensor | None = None
        self._seen: list[Tensor] | None = None
        vars(self)["_backbone"] = backbone  # not a submodule
        backbone.register_forward_hook(self._record)

    def get_extra_state(self) -> dict[str, int] | None:
        """The ``essl.seed`` streams' state (None without a seed), kept in the module's ``state_dict`` and so in
        Lightning's checkpoints."""
        return None if self.streams is None else self.streams.state_dict()

    def set_extra_state(self, state: Any) -> None:
        """Restore the streams' state of a ``state_dict`` (a resumed run draws from the checkpoint's seed)."""
        if state is not None and self.streams is not None:
            self.streams.load_state_dict(state)

    def _record(self, module: nn.Module, args: Any, output: Tensor) -> None:
        if self._seen is not None:
            self._seen.append(output)

    def _features(self, x: Tensor) -> Tensor:
        return vars(self)["_backbone"](x).flatten(start_dim=1)

    def views(
        self,
        images: Tensor,
        generator: torch.Generator | None = None,
        *,
        epoch: int | None = None,
        step: int | None = None,
    ) -> list[Tensor]:
        """The two SSL views of ``images`` (an un-augmented (B, C, H, W) batch, uint8 or float in [0, 1]); their
        parameters are in ``params`` until the next call. ``generator`` draws everything of this step (the views,
        the extra view, the labels) instead of the step's own; with ``essl.seed`` in the config, give the step's
        ``epoch`` and ``step`` instead: the draws then come from :class:`~essl_aug.streams.StepStreams` (distinct per
        rank, the same after a resume)."""
        check_generator(generator)
        if self.streams is not None and generator is None:
            if epoch is None or step is None:
                raise ValueError("essl.seed is set: call views(images, epoch=..., step=...) with the step's position.")
            generator = self.streams.generator(epoch, step, images.device)
        gen = generator if generator is not None else self.generator
        views, params = self.gpu_views(images, gen)
        self.params, self._images, self._seen, self._generator = (params[0], params[1]), images, [], gen
        return self.objectives.prepare_views(views, gen)  # unchanged unless essl.source: views

    def loss(self, *embeddings: Tensor) -> Tensor:
        """The weighted terms to add to lightly's loss; ``embeddings``: the projector outputs ``z0, z1``."""
        return self.training_step(embeddings, 0)[0]

    def training_step(self, embeddings: Sequence[Tensor], batch_idx: int) -> tuple[Tensor, dict[str, Tensor]]:
        """``(loss, log_dict)``, the logs as ``train_<name>_<key>``."""
        if self._images is None or self._seen is None or self.params is None:
            raise RuntimeError("call `views(images)` first, then the model on both views, then `loss(z0, z1)`.")
        seen, images, b = self._seen, self._images, self._images.shape[0]
        self._seen, self._images = None, None
        features = torch.cat([f.flatten(start_dim=1) for f in seen]) if seen else None
        if features is None or features.shape[0] != 2 * b:
            rows = 0 if features is None else features.shape[0]
            raise RuntimeError(
                f"the backbone saw {rows} images between `views()` and `loss()`, not the {2 * b} of the two views: "
                "run the model on x0 and x1 (each once, or once on both) in between."
            )
        extra = None
        if "extra" in self.objectives.requires:
            with torch.autocast(images.device.type, enabled=False), torch.no_grad():
                extra, _ = self.extra_view(images, self._generator)
        pair = tuple(embeddings) if len(embeddings) == 2 else None
        inputs = StepInputs(
            backbone=self._features,
            extra=extra,
            features=(features[:b], features[b:]),
            embeddings=pair,  # type: ignore[arg-type]
            params=self.params,
            generator=self._generator,
            images=images,
        )
        out = self.objectives(inputs)
        return out.loss, log_keys(out.logs, "train")
