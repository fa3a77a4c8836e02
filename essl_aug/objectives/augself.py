"""AugSelf: predict how the two SSL views' augmentations differ, from the two views' backbone features.

AugSelf (Lee, Lee, Shin, Lee and Jeong, *Improving Transferability of Representations via Augmentation-Aware
Self-Supervision*, NeurIPS 2021; code ``hankook/AugSelf``, ``trainers.py`` ``SSObjective``, ``models.py``
``load_ss_predictor``, ``transforms.py`` ``extract_diff``) adds to any SSL loss, for each selected augmentation
group, a head on ``concat(f1, f2)`` that predicts the difference of the two views' parameters. No extra forward
pass: it reads the features the SSL loss already computed and the parameters the :mod:`essl_aug.views`
pipelines return. What this module follows, from that code:

- the targets (:func:`relative_target`): each transformation's
  :meth:`~essl_aug.transforms.base.Transformation.relative` (its module states the normalisation, AugSelf's); for a
  two-class group, 1 where the two views agree (AugSelf's ``f1 == f2``); the crop difference mirrors the horizontal
  centres where the first view is flipped when the views' params hold the flip (``extract_diff``);
- symmetric (``symmetric=True``, AugSelf's default): the heads see ``concat(f1, f2)`` with ``relative(p1, p2)``
  and ``concat(f2, f1)`` with ``relative(p2, p1)``, stacked in one batch of 2B;
- the heads: one per group, ``load_mlp(2 * D, 512, n_out, num_layers=3, last_bn=False)``: two hidden layers of
  512 with BatchNorm and ReLU, then Linear; here :class:`~essl_aug.head.EquivarianceHead` with ``hidden=(512,
  512), norm="batch"`` (the same layers; its hidden Linear layers keep their bias, which BatchNorm cancels);
- the losses: regression groups ``mse(tanh(head), target)``, two-class groups a binary cross-entropy on one logit
  (AugSelf's flip: class 1 where the views agree), groups with more classes a cross-entropy; the total is
  ``weight * sum(group_weight * loss)`` (AugSelf: ``--ss-crop 1.0 --ss-color 1.0`` on STL-10, 0.5 and 0.5 on
  ImageNet-100). A regression target beyond [-1, 1] cannot be reached through the tanh (the blur's sigma
  difference, up to 1.9 for SimCLR's sigma range): AugSelf does the same.

Deliberate differences from that code: the ``rotation`` group reads the library's rotation by any angle and
regresses ``(cos, sin)`` of the difference, where AugSelf's ``rot`` is a 4-class cross-entropy of ``(r1 - r2) % 4``
quarter turns (``transforms.py``, ``trainers.py``); the ``solarize`` group's target comes from the library's
fixed-threshold solarize (two values), where AugSelf's kornia ``RandomSolarize`` (``datasets.py``, ``stl10_sol``)
draws a threshold per image. ``tests/objectives/test_upstream.py`` checks the rest against a transcription.

Groups (:data:`GROUPS`) and the augmentation each reads: ``crop`` (``resized_crop``, regression of 4), ``color``
(``color_jitter``, regression of 4), ``flip`` (``hflip``, 2 classes), ``blur`` (``gaussian_blur``, regression of
1), ``grayscale`` (2 classes), ``solarize`` (regression of 1), ``rotation`` (continuous, regression of (cos, sin)).

Example:
    >>> import torch
    >>> from essl_aug.views import simclr
    >>> from essl_aug.objectives.base import StepInputs
    >>> views, params = simclr(16)(torch.randint(0, 256, (4, 3, 24, 24), dtype=torch.uint8))
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    >>> augself = AugSelf(8, groups=("crop", "color", "flip"))
    >>> out = augself(StepInputs(features=(net(views[0]), net(views[1])), params=tuple(params)))
    >>> sorted(out.logs)
    ['color', 'crop', 'flip', 'flip_acc']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug._validation import check_flag
from essl_aug.head import EquivarianceHead, Norm, pooled_features
from essl_aug.objectives.base import Objective, ObjectiveOutput, StepInputs, weighted
from essl_aug.transforms import (
    CropParams,
    Params,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomSolarize,
    Transformation,
)
from essl_aug.views.pipeline import TwoViews, ViewPipeline
from essl_aug.views.recipes import simclr

__all__ = ["GROUPS", "AugSelf", "Augmentations", "default_augmentations", "relative_target", "select_groups"]

#: The groups an objective on relative parameters can select, and the name of the augmentation each reads.
GROUPS: dict[str, str] = {
    "crop": "resized_crop",
    "color": "color_jitter",
    "flip": "hflip",
    "blur": "gaussian_blur",
    "grayscale": "grayscale",
    "solarize": "solarize",
    "rotation": "rotation",
}

#: What ``augmentations=`` takes: a pipeline, a two-view recipe (view 1's augmentations), or augmentations.
Augmentations = ViewPipeline | TwoViews | Iterable[Transformation[Any]] | Mapping[str, Transformation[Any]]


def default_augmentations() -> dict[str, Transformation[Any]]:
    """The transformations of :func:`~essl_aug.views.simclr` (its default strengths), plus the default
    :class:`~essl_aug.RandomRotation` and :class:`~essl_aug.RandomSolarize`, by name.

    Example:
        >>> sorted(default_augmentations())
        ['color_jitter', 'gaussian_blur', 'grayscale', 'hflip', 'resized_crop', 'rotation', 'solarize']
    """
    augs: dict[str, Transformation[Any]] = {aug.name: aug for aug in simclr().pipelines[0]}
    for extra in (RandomRotation(), RandomSolarize()):
        augs.setdefault(extra.name, extra)
    return augs


def _by_name(augmentations: Augmentations | None) -> dict[str, Transformation[Any]]:
    augs = default_augmentations()
    if augmentations is None:
        return augs
    if isinstance(augmentations, TwoViews):
        augmentations = augmentations.pipelines[0]
    given: object = augmentations  # anything a caller passes, checked
    if not isinstance(given, Iterable):
        recipe = (
            " (a module that makes views: pass its recipe, e.g. `views.recipe`)" if hasattr(given, "recipe") else ""
        )
        raise TypeError(
            "`augmentations` must be the views' ViewPipeline or TwoViews, or essl_aug Transformation objects, got "
            f"{type(given).__name__}{recipe}."
        )
    values = augmentations.values() if isinstance(augmentations, Mapping) else augmentations
    for aug in values:
        if not isinstance(aug, Transformation):
            raise TypeError(
                "`augmentations` must be the views' ViewPipeline or TwoViews, or essl_aug Transformation objects "
                f"(e.g. ColorJitter(0.4, 0.4, 0.4, 0.1)), got a {type(aug).__name__} in it."
            )
        augs[aug.name] = aug
    return augs


def select_groups(
    groups: Sequence[str], augmentations: Augmentations | None = None, owner: str = "AugSelf"
) -> dict[str, Transformation[Any]]:
    """The augmentation of each selected group, ``{group: augmentation}``, in the order of ``groups``.

    Args:
        groups: group names (keys of :data:`GROUPS`, or the augmentation names they map to), at least one.
        augmentations: the augmentations that made the views; the groups it does not cover, and all when None,
            take :func:`default_augmentations`. The targets come from the views' parameters, which carry what
            normalises them (the colour jitter's ranges, the crop's input size), so a pipeline with other settings
            than SimCLR's (``jitter_strength``, another recipe) gets its own normalisation either way.
        owner: the objective's name, for the error messages.

    Example:
        >>> from essl_aug.transforms import ColorJitter
        >>> groups = select_groups(["crop", "color_jitter"], [ColorJitter(0.4, 0.4, 0.4, 0.1)])
        >>> list(groups), groups["color"].brightness
        (['crop', 'color'], (0.6, 1.4))
    """
    if isinstance(groups, str):
        raise TypeError(f"`groups` must be a sequence of group names, e.g. ({groups!r},), not a string.")
    by_aug = {aug: group for group, aug in GROUPS.items()}
    keys = [by_aug.get(g, g) for g in groups]
    unknown = [g for g, k in zip(groups, keys, strict=True) if k not in GROUPS]
    if unknown or not keys:
        raise ValueError(f"{owner}: `groups` must name at least one of {list(GROUPS)}, got {list(groups)!r}.")
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"{owner}: `groups` names {repeated} more than once; name each group once.")
    augs = _by_name(augmentations)
    return {k: augs[GROUPS[k]] for k in keys}


def check_view_params(
    owner: str, groups: Mapping[str, Transformation[Any]], params: Sequence[Mapping[str, Params]], batch: int
) -> None:
    """Raise a clear error unless both views' ``params`` hold each group's parameters for ``batch`` images."""
    if isinstance(params, Mapping) or len(params) != 2 or not all(isinstance(p, Mapping) for p in params):
        raise ValueError(
            f"{owner} needs the params of the two SSL views, a pair (p1, p2) of {{name: Params}} as a TwoViews "
            f"returns them; got {type(params).__name__}"
            + (f" of {len(params)}" if isinstance(params, Sequence) else "")
            + "."
        )
    for view, p in enumerate(params, 1):
        for group, aug in groups.items():
            if aug.name not in p:
                raise ValueError(
                    f"{owner} group {group!r} needs the {aug.name!r} parameters of each view, but view {view}'s "
                    f"params have {sorted(p)}; add essl_aug.{type(aug).__name__} to the views' pipeline, "
                    f"or drop {group!r} from `groups`."
                )
            if p[aug.name].batch != batch:
                raise ValueError(
                    f"{owner}: view {view}'s {aug.name!r} params are for {p[aug.name].batch} images but the step has "
                    f"{batch}; pass the params the pipeline returned with these views."
                )


def relative_target(aug: Transformation[Any], a: Mapping[str, Params], b: Mapping[str, Params]) -> Tensor:
    """AugSelf's target of one group: ``aug.relative`` of two views' params; for a two-class group 1 where the views
    agree (AugSelf's ``f1 == f2``); the crop's horizontal centres mirrored where ``a`` holds a flip.

    Example:
        >>> from essl_aug.views import simclr
        >>> p1, p2 = simclr(8).sample((3, 3, 16, 16))
        >>> relative_target(default_augmentations()["resized_crop"], p1, p2).shape
        torch.Size([3, 4])
    """
    pa, pb, flip = a[aug.name], b[aug.name], a.get(RandomHorizontalFlip.name)
    if isinstance(aug, RandomResizedCrop) and flip is not None:
        assert isinstance(pa, CropParams) and isinstance(pb, CropParams)
        return aug.relative(pa, pb, flipped=flip.applied)
    spec = aug.relative_spec
    if spec.kind == "classification" and spec.size == 2:
        return (aug.relative(pa, pb) == 0).long()
    return aug.relative(pa, pb)


def mlp(in_features: int, out_features: int, hidden: Sequence[int], norm: Norm = "batch") -> EquivarianceHead:
    """An :class:`~essl_aug.head.EquivarianceHead` with ``out_features`` outputs, one included (a regression of
    one number: the head's last Linear then has one output).

    Example:
        >>> mlp(8, 1, (16,), "layer")(torch.rand(3, 8)).shape
        torch.Size([3, 1])
    """
    return EquivarianceHead(in_features, int(out_features), hidden, norm=norm)


def two_features(
    features: tuple[Tensor, Tensor], width: int, arg: str, dtype: torch.dtype | None = None
) -> tuple[Tensor, Tensor]:
    """The two views' (B, width) features (cast to ``dtype``, the heads' own, outside autocast), or a clear error
    naming ``arg`` (the objective's width argument)."""
    f1, f2 = (pooled_features(f, width, arg) for f in features)
    if dtype is not None and not torch.is_autocast_enabled(f1.device.type):
        f1, f2 = f1.to(dtype), f2.to(dtype)
    if f1.shape != f2.shape:
        raise ValueError(
            f"the two views' features must have one shape (B, {width}), got {tuple(f1.shape)} and {tuple(f2.shape)}."
        )
    if f1.shape[0] == 0:
        raise ValueError(
            "the two views are an empty batch (B = 0): the loss of no views is undefined; skip empty batches."
        )
    return f1, f2


def head_dtype(module: nn.Module) -> torch.dtype | None:
    """The dtype of ``module``'s first parameter (its heads'), None without parameters."""
    return next((p.dtype for p in module.parameters()), None)


def check_rows(objective: nn.Module, rows: int) -> None:
    """Raise a clear error where the heads' batch norm would see ``rows < 2`` rows in training (torch's own error
    does not name the fix)."""
    if objective.training and rows < 2 and any(isinstance(m, nn.BatchNorm1d) for m in objective.modules()):
        raise ValueError(
            f"{type(objective).__name__} with norm='batch' needs at least 2 rows per training step, got a batch of 1 "
            "with symmetric=False: use drop_last=True in the DataLoader, symmetric=True, or norm='layer'."
        )


class AugSelf(Objective):
    """AugSelf's relative-parameter prediction as an objective (module docstring: the paper and code followed).

    Requires ``features`` (the two views' backbone features, (B, D) each) and ``params`` (each view's
    ``{name: Params}`` from an :mod:`essl_aug.views` pipeline).

    Args:
        in_features: D, the width of the backbone's pooled features (a head takes ``2 * D``).
        groups: the groups to predict (:data:`GROUPS`; default crop and colour, AugSelf's choice).
        weight: the objective's weight, a finite number >= 0. 0: the loss is ``-0.0`` (``ssl + loss`` is ``ssl``
            bit for bit), the features are detached (no gradient reaches the backbone), the logs still computed.
        hidden: the heads' hidden widths (AugSelf: ``(512, 512)``).
        group_weights: ``{group: weight}`` for some groups (the others 1.0), each a finite number >= 0.
        augmentations: the augmentations that made the views (see :func:`select_groups`); None: SimCLR's.
        norm: the heads' normalisation (AugSelf: ``"batch"``; ``"layer"`` or ``"none"``).
        symmetric: also predict ``relative(p2, p1)`` from ``concat(f2, f1)`` (AugSelf's default).

    Logs, per group: ``<group>``, its unweighted loss; ``<group>_acc`` for the classification groups, the share
    of the 2B (or B) pairs classified right.

    Example:
        >>> from essl_aug.views import simclr
        >>> from essl_aug.objectives.base import StepInputs
        >>> p1, p2 = simclr(16).sample((4, 3, 24, 24))
        >>> augself = AugSelf(8, groups=("crop", "blur"), group_weights={"blur": 0.5})
        >>> out = augself(StepInputs(features=(torch.rand(4, 8), torch.rand(4, 8)), params=(p1, p2)))
        >>> bool(out.loss == out.logs["crop"] + 0.5 * out.logs["blur"])
        True
    """

    requires = frozenset({"features", "params"})

    def __init__(
        self,
        in_features: int,
        groups: Sequence[str] = ("crop", "color"),
        weight: float = 1.0,
        hidden: Sequence[int] = (512, 512),
        group_weights: Mapping[str, float] | None = None,
        augmentations: Augmentations | None = None,
        norm: Norm = "batch",
        symmetric: bool = True,
    ) -> None:
        super().__init__(weight)
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"`in_features` must be the backbone's feature width (an int >= 1), got {in_features!r}.")
        self.in_features = in_features
        self.groups = select_groups(groups, augmentations, "AugSelf")
        self.group_weights = self._group_weights(group_weights or {})
        self.symmetric = check_flag(symmetric, "symmetric")
        heads: dict[str, nn.Module] = {}
        for group, aug in self.groups.items():
            spec = aug.relative_spec
            size = 1 if spec.kind == "classification" and spec.size == 2 else spec.size
            heads[group] = mlp(2 * in_features, size, hidden, norm)
        self.heads = nn.ModuleDict(heads)

    def _group_weights(self, given: Mapping[str, float]) -> dict[str, float]:
        if not isinstance(given, Mapping):
            raise TypeError(
                f"`group_weights` must map a group to its weight (e.g. {{'color': 0.5}}), got {type(given).__name__}."
            )
        by_aug = {aug: group for group, aug in GROUPS.items()}
        weights = dict.fromkeys(self.groups, 1.0)
        for name, value in given.items():
            group = by_aug.get(name, name)
            if group not in self.groups:
                raise ValueError(
                    f"`group_weights` has {name!r}, which is not a selected group ({list(self.groups)}); "
                    "add it to `groups` or remove it from `group_weights`."
                )
            try:
                w = float(value)
            except (TypeError, ValueError):
                w = math.nan
            if not (math.isfinite(w) and w >= 0):
                raise ValueError(f"`group_weights[{name!r}]` must be a finite number >= 0, got {value!r}.")
            weights[group] = w
        return weights

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        assert inputs.features is not None and inputs.params is not None  # checked by forward
        f1, f2 = two_features(inputs.features, self.in_features, "in_features", head_dtype(self))
        if self.weight == 0:  # nothing flows back to the backbone (its gradients stay the SSL loss's, bit for bit)
            f1, f2 = f1.detach(), f2.detach()
        check_view_params("AugSelf", self.groups, inputs.params, f1.shape[0])
        p1, p2 = inputs.params
        check_rows(self, f1.shape[0] * (2 if self.symmetric else 1))
        if self.symmetric:
            pairs = torch.cat([torch.cat([f1, f2], dim=1), torch.cat([f2, f1], dim=1)], dim=0)
        else:
            pairs = torch.cat([f1, f2], dim=1)
        total: Tensor | None = None
        logs: dict[str, Tensor] = {}
        for group, aug in self.groups.items():
            with torch.no_grad():
                target = relative_target(aug, p1, p2)
                if self.symmetric:
                    target = torch.cat([target, relative_target(aug, p2, p1)], dim=0)
                target = target.to(pairs.device, non_blocking=True)
            out = self.heads[group](pairs).float()
            spec = aug.relative_spec
            if spec.kind == "regression":
                loss = F.mse_loss(torch.tanh(out), target.float())
            elif spec.size == 2:
                logit = out[:, 0]
                loss = F.binary_cross_entropy_with_logits(logit, target.float())
                logs[f"{group}_acc"] = ((logit.detach() > 0) == (target == 1)).float().mean()
            else:
                loss = F.cross_entropy(out, target)
                logs[f"{group}_acc"] = (out.detach().argmax(dim=1) == target).float().mean()
            logs[group] = loss.detach()
            term = loss if self.group_weights[group] == 1.0 else self.group_weights[group] * loss
            total = term if total is None else total + term
        assert total is not None
        return ObjectiveOutput(weighted(self.weight, total), logs)

    def extra_repr(self) -> str:
        groups = ", ".join(f"{g}={w}" for g, w in self.group_weights.items())
        return f"in_features={self.in_features}, weight={self.weight}, groups=({groups}), symmetric={self.symmetric}"
