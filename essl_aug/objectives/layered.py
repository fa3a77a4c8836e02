"""Layer decoupling: any objective read at an intermediate layer of the backbone instead of its output.

The SER paper (Lee et al., ICLR 2026) keeps the SSL loss on the final embedding and moves the augmentation-aware
objective to an intermediate layer; applied to EquiMod and AugSelf this raises their accuracy too. :class:`AtLayer`
does it once for every objective: where the objective reads ``StepInputs.features`` (AugSelf, the predictor,
E-SSL on the views) it gets the pooled maps of the two SSL views at ``layer`` (``StepInputs.maps``, which the step
captures with :func:`essl_aug.layers.capture`); where it encodes images with ``StepInputs.backbone`` (E-SSL's extra
view) it gets the backbone read at ``layer`` (:func:`essl_aug.layers.feature_map`, pooled; the forward stops there).
Pooling is the mean over the map's positions (this library's choice: the published SER code has no layer-decoupled
AugSelf or EquiMod; its ``train_augself`` raises ``NotImplementedError`` and its other baselines assert layer 12).
The wrapped objective's ``in_features`` is the number of channels at ``layer``.

Example:
    >>> import torch
    >>> from essl_aug.objectives import ESSL, StepInputs
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 8, 3))
    >>> early = AtLayer(ESSL("rotation", in_features=4, hidden=(8,)), "1")  # 4 channels after the ReLU
    >>> sorted(early(StepInputs(backbone=net, extra=torch.rand(2, 3, 8, 8))).logs)
    ['acc', 'ce']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from essl_aug.layers import check_grid, feature_map, find_layer
from essl_aug.objectives.base import Objective, ObjectiveOutput, Objectives, StepInputs

__all__ = ["AtLayer", "maps_layer"]


class _ReadAt:
    """The backbone read at one layer: the pooled map (N, C)."""

    def __init__(self, backbone: object, layer: str, class_tokens: int, grid: tuple[int, int] | None) -> None:
        find_layer(backbone, layer)
        self.backbone, self.layer, self.class_tokens, self.grid = backbone, layer, class_tokens, grid

    def __call__(self, x: Tensor) -> Tensor:
        return feature_map(self.backbone, self.layer, x, self.class_tokens, self.grid).mean(dim=(2, 3))  # type: ignore[arg-type]


class AtLayer(Objective):
    """``objective`` read at the intermediate ``layer`` of the backbone (layer decoupling; the module docstring).

    Args:
        objective: the objective to move (its ``in_features``: the channels at ``layer``).
        layer: the module's name in the backbone's ``named_modules()``.
        class_tokens, grid: for token maps (:func:`~essl_aug.layers.spatial_map`).

    Requires what ``objective`` requires, with ``maps`` (the two SSL views' maps at ``layer``) in place of
    ``features``. The weight and the logs are the objective's.

    Example:
        >>> from essl_aug.objectives import ESSLOnViews
        >>> early = AtLayer(ESSLOnViews("rotation", in_features=4), "layers.1")
        >>> sorted(early.requires)
        ['maps']
    """

    def __init__(
        self, objective: Objective, layer: str, class_tokens: int = 0, grid: Sequence[int] | None = None
    ) -> None:
        if not isinstance(objective, Objective):
            raise TypeError(f"`objective` must be an essl_aug Objective, got {type(objective).__name__}.")
        if isinstance(objective, AtLayer):
            raise TypeError("`objective` is already read at a layer (AtLayer); give the objective itself.")
        if not isinstance(layer, str) or not layer:
            raise TypeError(f"`layer` must be the name of a module of the backbone (named_modules()), got {layer!r}.")
        super().__init__(objective.weight)
        self.objective = objective
        self.layer = layer
        self.class_tokens, self.grid = check_grid(class_tokens, grid)
        needs = set(objective.requires)
        if "features" in needs:
            needs = (needs - {"features"}) | {"maps"}
        self.requires = frozenset(needs)

    def prepare_views(self, views: Sequence[Tensor], generator: torch.Generator | None = None) -> list[Tensor]:
        return self.objective.prepare_views(views, generator)

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        changes: dict[str, object] = {}
        if "backbone" in self.objective.requires and inputs.backbone is not None:
            changes["backbone"] = _ReadAt(inputs.backbone, self.layer, self.class_tokens, self.grid)
        if "features" in self.objective.requires:
            assert inputs.maps is not None  # checked by forward
            m1, m2 = inputs.maps
            for m in (m1, m2):
                if not isinstance(m, Tensor) or m.ndim != 4:
                    raise ValueError(
                        f"StepInputs.maps must hold the two views' maps (B, C, h, w) at layer {self.layer!r}, got "
                        f"{tuple(m.shape) if isinstance(m, Tensor) else type(m).__name__}."
                    )
            changes["features"] = (m1.mean(dim=(2, 3)), m2.mean(dim=(2, 3)))
        return self.objective(dataclasses.replace(inputs, **changes))  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}, class_tokens={self.class_tokens}, grid={self.grid}"


def maps_layer(
    objectives: Objectives | Iterable[Objective] | Objective,
) -> tuple[str, int, tuple[int, int] | None] | None:
    """The layer (name, class tokens, grid) whose maps of the two SSL views the ``objectives`` need (``maps``), or
    None; a ``ValueError`` when they need two different layers (one capture per step).

    Example:
        >>> from essl_aug.objectives import AugSelf, Objectives
        >>> maps_layer(Objectives({"augself": AtLayer(AugSelf(8, groups=("crop",)), "layers.3")}))
        ('layers.3', 0, None)
    """
    items: Iterable[object]
    if isinstance(objectives, Objectives):
        items = objectives.objectives.values()
    elif isinstance(objectives, Objective):
        items = [objectives]
    else:
        items = objectives
    found: set[tuple[str, int, tuple[int, int] | None]] = set()
    for obj in items:
        if isinstance(obj, AtLayer) and "maps" in obj.requires:
            found.add((obj.layer, obj.class_tokens, obj.grid))
    if len(found) > 1:
        raise ValueError(f"the objectives read the views' maps at several layers {sorted(found)}; use one layer.")
    return found.pop() if found else None
