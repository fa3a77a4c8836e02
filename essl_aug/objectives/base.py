"""One API for every objective added to an SSL loss: what a training step hands over, what an objective returns.

A training step computes its SSL loss and hands the objectives a :class:`~essl_aug.objectives.base.StepInputs`: the
backbone, the extra view's images (E-SSL and its continuous form transform and encode them themselves), the backbone
features and projector embeddings of the two SSL views, and the parameters of each view's augmentations (from
:mod:`essl_aug.augment`). Each :class:`Objective` declares the inputs it needs (:attr:`Objective.requires`), returns
an :class:`ObjectiveOutput` (its weighted loss, ready to add, and detached tensors to log, never synced to the
host), and :class:`Objectives` sums several, each with its own weight, prefixing their logs with their names::

    objectives = Objectives({"essl": DiscreteESSL("rotation", in_features=512), "augself": ...})
    out = objectives(StepInputs(backbone=net, extra=x_small, features=(f1, f2), params=(p1, p2)))
    loss = ssl_loss + out.loss          # out.logs: {"essl/ce": ..., "essl/acc": ..., "augself/crop": ...}
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from essl_aug.augment.base import Params
from essl_aug.loss import EquivarianceLoss, check_weight

#: The names of the fields of :class:`~essl_aug.objectives.base.StepInputs` an objective may require.
INPUTS = ("backbone", "extra", "features", "embeddings", "params")


@dataclass(frozen=True)
class StepInputs:
    """What a training step offers to the objectives (each field ``None`` when the step does not provide it).

    Attributes:
        backbone: the backbone, mapping images (N, C, H, W) to pooled features (N, D).
        extra: the images of the extra view (B, C, H, W) that extra-view objectives transform and encode.
        features: backbone features of the two SSL views, ``(f1, f2)``, each (B, D), row ``i`` the same image.
        embeddings: projector outputs of the two SSL views, ``(z1, z2)``, each (B, E).
        params: the augmentation parameters of each SSL view, ``(p1, p2)``, each ``{name: Params}`` as the
            :mod:`essl_aug.augment` pipelines return them.
        generator: draws the objectives' random numbers (on the extra view's device), optional.
    """

    backbone: Callable[[Tensor], Tensor] | None = None
    extra: Tensor | None = None
    features: tuple[Tensor, Tensor] | None = None
    embeddings: tuple[Tensor, Tensor] | None = None
    params: tuple[Mapping[str, Params], Mapping[str, Params]] | None = None
    generator: torch.Generator | None = None

    def provided(self) -> frozenset[str]:
        """The names of the fields of :data:`INPUTS` that are set."""
        return frozenset(f.name for f in fields(self) if f.name in INPUTS and getattr(self, f.name) is not None)


class ObjectiveOutput(NamedTuple):
    """An objective's result: ``loss`` (weighted, a scalar to add to the SSL loss) and ``logs`` (detached scalars)."""

    loss: Tensor
    logs: dict[str, Tensor]


def weighted(weight: float, loss: Tensor) -> Tensor:
    """``weight * loss``; for ``weight == 0`` an exact ``-0.0`` that keeps the graph (zero gradients), so that
    ``ssl + weighted(0, loss)`` is ``ssl`` bit for bit (``x + -0.0 == x`` for every ``x``, ``-0.0`` included),
    whatever ``loss`` is (``0 * inf`` would be NaN).

    Example:
        >>> weighted(0.0, torch.tensor(float("inf")))
        tensor(-0.)
    """
    if weight == 0:
        return torch.where(torch.zeros((), dtype=torch.bool, device=loss.device), loss, -0.0)
    return weight * loss


class Objective(nn.Module, ABC):
    """Base class of the objectives: a weight, the inputs needed, and :meth:`compute`.

    Subclasses set :attr:`requires` and implement :meth:`compute`; calling the objective checks that the step
    provides what it requires (a ``ValueError`` naming the missing inputs and who provides them) and returns
    :meth:`compute`'s output. ``weight`` is a finite number >= 0; 0 returns a zero loss that leaves the SSL loss
    bit-identical (the objective still runs, so its logs stay available).
    """

    #: The :class:`~essl_aug.objectives.base.StepInputs` fields the objective needs (a class default; an instance
    #: may set its own).
    requires: frozenset[str] = frozenset()

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = check_weight(weight)

    @abstractmethod
    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        """The weighted loss and the logs of one step."""

    def forward(self, inputs: StepInputs) -> ObjectiveOutput:
        missing = self.requires - inputs.provided()
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs {', '.join(sorted(missing))} in its StepInputs (it has "
                f"{', '.join(sorted(inputs.provided())) or 'nothing'}); pass them from the training step "
                "(features/embeddings: the backbone and projector outputs of the two views; params: the views' "
                "augmentation parameters from an essl_aug.augment pipeline; extra: the extra view's images)."
            )
        return self.compute(inputs)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


class DiscreteESSL(Objective):
    """E-SSL as the paper defines it (:class:`~essl_aug.EquivarianceLoss`) as an objective of this API.

    Takes the arguments of :class:`~essl_aug.EquivarianceLoss` (or one, ``loss=``). Requires ``backbone`` and
    ``extra``; logs ``ce`` (the unweighted cross-entropy) and ``acc`` (the head's accuracy).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> essl = DiscreteESSL("rotation", in_features=8, hidden=(16,))
        >>> out = essl(StepInputs(backbone=net, extra=torch.rand(4, 3, 16, 16)))
        >>> sorted(out.logs), bool(out.loss == 0.4 * out.logs["ce"])
        (['acc', 'ce'], True)
    """

    requires = frozenset({"backbone", "extra"})

    def __init__(self, *args: Any, loss: EquivarianceLoss | None = None, **kwargs: Any) -> None:
        if loss is not None and (args or kwargs):
            raise ValueError("give either `loss` (an EquivarianceLoss) or the arguments to build one, not both")
        loss = EquivarianceLoss(*args, **kwargs) if loss is None else loss
        super().__init__(loss.weight)
        self.loss = loss

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        assert inputs.backbone is not None and inputs.extra is not None  # checked by forward
        out = self.loss(inputs.backbone, inputs.extra)
        loss = out.loss if self.weight else weighted(0.0, out.loss)  # an exact -0.0 at weight 0
        return ObjectiveOutput(loss, {"ce": out.cross_entropy.detach(), "acc": out.accuracy})


class Objectives(nn.Module):
    """Several objectives, each with its own weight: the sum of their losses and their logs under their names.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> both = Objectives({"rot": DiscreteESSL("rotation", in_features=8, hidden=(16,)),
        ...                    "flip": DiscreteESSL("vflip", in_features=8, hidden=(16,), weight=0.1)})
        >>> out = both(StepInputs(backbone=net, extra=torch.rand(4, 3, 16, 16)))
        >>> sorted(out.logs)
        ['flip/acc', 'flip/ce', 'flip/loss', 'rot/acc', 'rot/ce', 'rot/loss']
    """

    def __init__(self, objectives: Mapping[str, Objective]) -> None:
        super().__init__()
        if not objectives:
            raise ValueError("`objectives` is empty: give at least one {name: Objective}")
        for name, obj in objectives.items():
            if not isinstance(obj, Objective):
                raise TypeError(f"objective {name!r} must be an essl_aug Objective, got {type(obj).__name__}")
            if "/" in name or "." in name:
                raise ValueError(f"objective name {name!r} must not contain '/' or '.' (they separate log keys)")
        self.objectives = nn.ModuleDict(dict(objectives))

    @property
    def requires(self) -> frozenset[str]:
        """Everything the objectives need together."""
        needed: set[str] = set()
        for obj in self.objectives.values():
            assert isinstance(obj, Objective)
            needed |= obj.requires
        return frozenset(needed)

    def forward(self, inputs: StepInputs) -> ObjectiveOutput:
        total: Tensor | None = None
        logs: dict[str, Tensor] = {}
        for name, obj in self.objectives.items():
            out = obj(inputs)
            total = out.loss if total is None else total + out.loss
            logs[f"{name}/loss"] = out.loss.detach()
            logs.update({f"{name}/{k}": v for k, v in out.logs.items()})
        assert total is not None
        return ObjectiveOutput(total, logs)
