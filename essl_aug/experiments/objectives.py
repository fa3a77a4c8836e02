"""The objectives of :mod:`essl_aug.objectives` in the pretraining recipe, by name, and the views that feed them.

A :class:`~essl_aug.experiments.pretrain.PretrainConfig` names its objectives with :func:`objective` (a hashable
:class:`ObjectiveSpec`: the kind, the weight, the options); :func:`build_objectives` turns them into one
:class:`~essl_aug.objectives.Objectives` for the recipe's backbone and projector. The kinds (:data:`KINDS`):

- ``"essl"``: :class:`~essl_aug.objectives.DiscreteESSL`, E-SSL on the extra view (options ``family``, default
  ``"rotation"``; ``mode``, ``balanced``, ``num_per_batch`` as :class:`~essl_aug.EquivariantTransform`; ``hidden``,
  default the recipe's ``head_hidden``);
- ``"continuous"``: :class:`~essl_aug.objectives.ContinuousESSL` on the extra view (``augmentation``, default
  ``"rotation"``; ``copies``; ``hidden``, default the recipe's ``head_hidden``);
- ``"augself"``: :class:`~essl_aug.objectives.AugSelf` on the two SSL views' features and parameters (its
  keyword arguments; default groups crop and colour, heads of ``(512, 512)``);
- ``"predictor"``: :class:`~essl_aug.objectives.PredictorEquivariance` on the views' features (or embeddings,
  ``source="embeddings"``) and parameters (its keyword arguments).

The last two read the parameters of the SSL views' augmentations, which only the :mod:`essl_aug.augment` pipelines
return: :func:`view_pipeline` is the pipeline equivalent of a :class:`~essl_aug.experiments.augment.ViewAugment`.

Example:
    >>> spec = objective("augself", 1.0, groups=["crop", "color"])
    >>> spec.name, spec.options, hash(spec) == hash(objective("augself", 1.0, groups=("crop", "color")))
    ('augself', (('groups', ('crop', 'color')),), True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from essl_aug import EquivarianceHead, EquivarianceLoss, EquivariantTransform
from essl_aug.augment import ColorJitter, HorizontalFlip, RandomGrayscale, RandomResizedCrop, TwoViews, ViewPipeline
from essl_aug.augment.base import Augmentation
from essl_aug.experiments.augment import ViewAugment
from essl_aug.objectives import AugSelf, ContinuousESSL, DiscreteESSL, Objective, Objectives, PredictorEquivariance
from essl_aug.registry import FamilySpec
from essl_aug.transform import Mode

__all__ = ["KINDS", "ObjectiveSpec", "build_objectives", "essl_loss", "objective", "view_pipeline"]

#: The objective kinds a recipe selects by name, and whether each reads the SSL views' augmentation parameters.
KINDS: dict[str, bool] = {"essl": False, "continuous": False, "augself": True, "predictor": True}


def _frozen(value: Any) -> Any:
    """``value`` made hashable: lists and tuples as tuples, mappings as sorted ``(key, value)`` tuples."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective of a pretraining run: its ``kind`` (a key of :data:`KINDS`), its ``weight`` (finite, >= 0),
    its keyword ``options`` as sorted ``(name, value)`` pairs (hashable, so that two configurations compare and
    hash by value) and its ``name``, the prefix of its logs (default: the kind). Build it with :func:`objective`."""

    kind: str
    weight: float
    options: tuple[tuple[str, Any], ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"objective kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        w = float(self.weight) if isinstance(self.weight, (int, float)) else math.nan
        if not (math.isfinite(w) and w >= 0):
            raise ValueError(f"the weight of objective {self.kind!r} must be a finite number >= 0, got {self.weight!r}")
        if not self.name:
            object.__setattr__(self, "name", self.kind)

    @property
    def needs_params(self) -> bool:
        """Whether the objective reads the SSL views' augmentation parameters (then the views need a pipeline)."""
        return KINDS[self.kind]

    def kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments (``group_weights`` back to a dict)."""
        out = dict(self.options)
        if "group_weights" in out:
            out["group_weights"] = dict(out["group_weights"])
        return out


def objective(kind: str, weight: float, name: str = "", **options: Any) -> ObjectiveSpec:
    """An :class:`ObjectiveSpec`: ``kind`` with ``weight`` and the objective's keyword ``options`` (lists become
    tuples, mappings sorted pairs); ``name`` prefixes its logs (default: ``kind``).

    Example:
        >>> objective("essl", 0.4, family="rotation").kwargs()
        {'family': 'rotation'}
    """
    return ObjectiveSpec(kind, weight, tuple(sorted((k, _frozen(v)) for k, v in options.items())), name)


def view_pipeline(view: ViewAugment, channels: int) -> ViewPipeline:
    """The :mod:`essl_aug.augment` pipeline of a :class:`~essl_aug.experiments.augment.ViewAugment` for images of
    ``channels`` channels: :class:`~essl_aug.augment.RandomResizedCrop` (``size``, ``scale``), then, where their
    probability is positive, :class:`~essl_aug.augment.HorizontalFlip`, :class:`~essl_aug.augment.ColorJitter`
    (``jitter_strength``, ``p=jitter``) and :class:`~essl_aug.augment.RandomGrayscale`; float views in [0, 1],
    not normalised.

    On 1-channel images the jitter keeps brightness and contrast only (saturation and hue built at 0, so that their
    factors and AugSelf's colour targets are the identity: torchvision's ops would leave gray images unchanged by
    them anyway) and the grayscale is left out, as :class:`~essl_aug.experiments.augment.ViewAugment` does. The
    Fashion-MNIST view (28 px, area 0.2 to 1, flip 0.5, jitter 0.8) gives crops of 28 px of area 0.2 to 1, flips
    with probability 0.5, and brightness and contrast factors in [0.6, 1.4] with probability 0.8. What differs from
    ``ViewAugment``: the crop is resized with antialiasing (torchvision's ``resized_crop``, where ``ViewAugment``
    samples one bilinear grid) and the jitter applies its ops in a random order per image (torchvision's
    ``ColorJitter``), where ``ViewAugment`` has a fixed order.

    Example:
        >>> pipe = view_pipeline(ViewAugment(size=28, scale=(0.2, 1.0), hflip=0.5, jitter=0.8), channels=1)
        >>> pipe.names, pipe["color_jitter"].saturation
        (('resized_crop', 'hflip', 'color_jitter'), (1.0, 1.0))
    """
    augs: list[Augmentation[Any]] = [RandomResizedCrop(view.size, scale=view.scale)]
    if view.hflip > 0:
        augs.append(HorizontalFlip(p=view.hflip))
    if view.jitter > 0:
        b, c, s, h = view.jitter_strength
        if channels == 1:
            s, h = 0.0, 0.0
        augs.append(ColorJitter(brightness=b, contrast=c, saturation=s, hue=h, p=view.jitter))
    if view.grayscale > 0 and channels == 3:
        augs.append(RandomGrayscale(p=view.grayscale))
    return ViewPipeline(augs)


def essl_loss(
    family: FamilySpec,
    in_features: int,
    hidden: Sequence[int],
    weight: float,
    mode: Mode = "all",
    balanced: bool = False,
    num_per_batch: int | None = None,
    generator: torch.Generator | None = None,
) -> EquivarianceLoss:
    """The recipe's E-SSL branch: an :class:`~essl_aug.EquivariantTransform` drawing with ``generator`` (the
    run's E-SSL stream) and a fresh :class:`~essl_aug.EquivarianceHead` (initialised from the global generator)."""
    transform = EquivariantTransform(
        family, mode=mode, balanced=balanced, generator=generator, num_per_batch=num_per_batch
    )
    head = EquivarianceHead(in_features, transform.num_classes, hidden=hidden)
    return EquivarianceLoss(transform, head=head, weight=weight)


def build_objectives(
    specs: Sequence[ObjectiveSpec],
    *,
    in_features: int,
    embed_dim: int,
    hidden: Sequence[int],
    views: TwoViews | None = None,
    generator: torch.Generator | None = None,
) -> Objectives:
    """The :class:`~essl_aug.objectives.Objectives` of ``specs``, in order, each under its ``name``.

    Args:
        specs: the objectives (:func:`objective`), at least one, with distinct names.
        in_features: the backbone's feature width; ``embed_dim``: the projector's output width (the predictor's
            source with ``source="embeddings"``).
        hidden: the default hidden widths of the E-SSL heads (``"essl"``, ``"continuous"``).
        views: the SSL views' pipelines (their settings normalise AugSelf's and the predictor's targets); needed
            by the kinds that read parameters.
        generator: the E-SSL stream (the discrete transform's draws; the other objectives get it per step).

    Example:
        >>> objs = build_objectives([objective("essl", 0.4)], in_features=8, embed_dim=4, hidden=(16,))
        >>> list(objs.objectives)
        ['essl']
    """
    if not specs:
        raise ValueError("`objectives` is empty: name at least one with essl_aug.experiments.objectives.objective()")
    built: dict[str, Objective] = {}
    for spec in specs:
        if not isinstance(spec, ObjectiveSpec):
            raise TypeError(
                f"each objective must be an ObjectiveSpec (essl_aug.experiments.objectives.objective(kind, weight, "
                f"...)), got {type(spec).__name__}"
            )
        if spec.name in built:
            raise ValueError(f"two objectives are named {spec.name!r}; give one of them `name=`")
        if spec.needs_params and views is None:
            raise ValueError(
                f"objective {spec.name!r} ({spec.kind}) reads the views' augmentation parameters; build the views "
                "with an essl_aug.augment pipeline (PretrainConfig(pipeline=True))"
            )
        kw = spec.kwargs()
        try:
            if spec.kind == "essl":
                loss = essl_loss(
                    kw.pop("family", "rotation"),
                    in_features,
                    kw.pop("hidden", hidden),
                    spec.weight,
                    generator=generator,
                    **kw,
                )
                built[spec.name] = DiscreteESSL(loss=loss)
            elif spec.kind == "continuous":
                built[spec.name] = ContinuousESSL(
                    kw.pop("augmentation", "rotation"),
                    in_features=in_features,
                    hidden=kw.pop("hidden", hidden),
                    weight=spec.weight,
                    **kw,
                )
            elif spec.kind == "augself":
                built[spec.name] = AugSelf(in_features, weight=spec.weight, augmentations=views, **kw)
            else:
                width = embed_dim if kw.get("source") == "embeddings" else in_features
                built[spec.name] = PredictorEquivariance(width, weight=spec.weight, augmentations=views, **kw)
        except TypeError as err:
            raise TypeError(f"objective {spec.name!r} ({spec.kind}): {err}; check its options") from err
    return Objectives(built)
