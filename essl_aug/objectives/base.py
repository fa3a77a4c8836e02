"""One API for every objective added to an SSL loss: what a training step hands over, what an objective returns.

A training step computes its SSL loss and hands the objectives a :class:`~essl_aug.objectives.base.StepInputs`: the
backbone, the extra view's images (E-SSL transforms and encodes them itself), the backbone features and projector
embeddings of the two SSL views, and the parameters of each view's augmentations (from :mod:`essl_aug.views`). Each
:class:`Objective` declares the inputs it needs (:attr:`Objective.requires`), returns an :class:`ObjectiveOutput`
(its weighted loss, ready to add, and detached tensors to log, never synced to the host), and :class:`Objectives`
sums several, each with its own weight, prefixing their logs with their names::

    objectives = Objectives({"essl": ESSL("rotation", in_features=512), "augself": ...})
    out = objectives(StepInputs(backbone=net, extra=x_small, features=(f1, f2), params=(p1, p2)))
    loss = ssl_loss + out.loss          # out.logs: {"essl/ce": ..., "essl/acc": ..., "augself/crop": ...}
"""

from __future__ import annotations

import math
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.hooks import RemovableHandle

from essl_aug._validation import check_generator
from essl_aug.transforms.base import Params

#: The names of the fields of :class:`~essl_aug.objectives.base.StepInputs` an objective may require.
INPUTS = ("backbone", "extra", "features", "embeddings", "params", "images", "maps")


def check_weight(weight: float) -> float:
    """``weight`` as a float; ``ValueError`` naming ``weight`` unless it is a finite number >= 0.

    The E-SSL weight is the paper's lambda (reference: 0.4 for SimCLR on CIFAR-10); 0 switches the term off.

    Example:
        >>> check_weight(0.4)
        0.4
        >>> check_weight(-1)
        Traceback (most recent call last):
        ...
        ValueError: `weight` must be a finite number >= 0 (reference: 0.4), got -1.
    """
    try:
        value = float(weight) if not isinstance(weight, (bool, str, bytes)) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"`weight` must be a finite number >= 0 (reference: 0.4), got {weight!r}.")
    return value


@dataclass(frozen=True)
class StepInputs:
    """What a training step offers to the objectives (each field ``None`` when the step does not provide it).

    Attributes:
        backbone: the backbone, mapping images (N, C, H, W) to pooled features (N, D).
        extra: the images of the extra view (B, C, H, W) that extra-view objectives transform and encode.
        features: backbone features of the two SSL views, ``(f1, f2)``, each (B, D), row ``i`` the same image
            (with multi-crop views, :class:`~essl_aug.views.MultiCrop`, the two global crops; the local crops feed
            the method's own loss only, and ``embeddings`` and ``params`` are the global crops' too).
        embeddings: projector outputs of the two SSL views, ``(z1, z2)``, each (B, E).
        params: the augmentation parameters of each SSL view, ``(p1, p2)``, each ``{name: Params}`` as the
            :mod:`essl_aug.views` pipelines return them.
        generator: draws the objectives' random numbers (on the extra view's device), optional.
        images: the un-augmented images (B, C, H, W) the two SSL views were made from, row ``i`` the views' row
            ``i`` (for objectives that encode the original image, as EquiMod).
        maps: the spatial maps (B, C, h, w) of the two SSL views at one intermediate layer, ``(m1, m2)``, captured
            during the step's forward passes (:func:`essl_aug.layers.capture`), for the objectives read at that layer
            (:class:`~essl_aug.objectives.AtLayer`; :func:`~essl_aug.objectives.layered.maps_layer` names the layer).
    """

    backbone: Callable[[Tensor], Tensor] | None = None
    extra: Tensor | None = None
    features: tuple[Tensor, Tensor] | None = None
    embeddings: tuple[Tensor, Tensor] | None = None
    params: tuple[Mapping[str, Params], Mapping[str, Params]] | None = None
    generator: torch.Generator | None = None
    images: Tensor | None = None
    maps: tuple[Tensor, Tensor] | None = None

    def __post_init__(self) -> None:
        check_generator(self.generator)

    def provided(self) -> frozenset[str]:
        """The names of the fields of :data:`INPUTS` that are set."""
        return frozenset(f.name for f in fields(self) if f.name in INPUTS and getattr(self, f.name) is not None)


def check_inputs(inputs: object) -> None:
    """Raise a ``TypeError`` unless ``inputs`` is a :class:`StepInputs`."""
    if not isinstance(inputs, StepInputs):
        raise TypeError(
            f"an objective takes a StepInputs (backbone, extra, features, embeddings, params), got "
            f"{type(inputs).__name__}."
        )


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

    An objective with a head must be trained with the backbone: make it a submodule of the model or give its
    parameters to the optimiser. One whose head gets gradients but is in no optimiser raises ``RuntimeError`` at the
    second step of an optimiser without it (a module-level ``criterion = ...`` would otherwise never train its head):
    the check watches ``torch.optim`` steps until the head is seen in a stepping optimiser, compares parameters by
    identity and never syncs with the device.
    """

    #: The :class:`~essl_aug.objectives.base.StepInputs` fields the objective needs (a class default; an instance
    #: may set its own).
    requires: frozenset[str] = frozenset()

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = check_weight(weight)
        #: Calls that could train the head; ``None`` once the head was seen in a stepping optimiser (see the class).
        self._head_calls: int | None = 0

    @abstractmethod
    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        """The weighted loss and the logs of one step."""

    def prepare_views(self, views: Sequence[Tensor], generator: torch.Generator | None = None) -> list[Tensor]:
        """The SSL views the backbone should encode this step (before it does): by default ``views`` unchanged; an
        objective that acts on the views themselves (:class:`~essl_aug.objectives.essl.ESSLOnViews`) transforms
        them here."""
        return list(views)

    def forward(self, inputs: StepInputs) -> ObjectiveOutput:
        check_inputs(inputs)
        missing = self.requires - inputs.provided()
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs {', '.join(sorted(missing))} in its StepInputs (it has "
                f"{', '.join(sorted(inputs.provided())) or 'nothing'}); pass them from the training step "
                "(features/embeddings: the backbone and projector outputs of the two views; params: the views' "
                "augmentation parameters from an essl_aug.views pipeline; extra: the extra view's images)."
            )
        out = self.compute(inputs)
        self._count_head_call()
        return out

    def _count_head_call(self) -> None:
        """Count a call that can train the head; the first one starts watching the optimisers' steps."""
        if self._head_calls is None or not torch.is_grad_enabled() or self.weight == 0:
            return
        if torch.compiler.is_compiling() or not any(p.requires_grad for p in self.parameters()):
            return
        self._head_calls += 1
        if self._head_calls == 1:
            _watch_optimisers(self)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


class Objectives(nn.Module):
    """Several objectives, each with its own weight: the sum of their losses and their logs under their names.

    Example:
        >>> from essl_aug.objectives import ESSL
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> both = Objectives({"rot": ESSL("rotation", in_features=8, hidden=(16,)),
        ...                    "flip": ESSL("vflip", in_features=8, hidden=(16,), weight=0.1)})
        >>> out = both(StepInputs(backbone=net, extra=torch.rand(4, 3, 16, 16)))
        >>> sorted(out.logs)
        ['flip/acc', 'flip/ce', 'flip/loss', 'rot/acc', 'rot/ce', 'rot/loss']
    """

    def __init__(self, objectives: Mapping[str, Objective]) -> None:
        super().__init__()
        if not isinstance(objectives, Mapping):
            raise TypeError(
                f"`objectives` must map a name to each objective, {{name: Objective}} (the name prefixes its logs), "
                f"got {type(objectives).__name__}."
            )
        if not objectives:
            raise ValueError("`objectives` is empty: give at least one {name: Objective}")
        for name, obj in objectives.items():
            if not isinstance(obj, Objective):
                raise TypeError(f"objective {name!r} must be an essl_aug Objective, got {type(obj).__name__}")
            if not isinstance(name, str) or not name or "/" in name or "." in name:
                raise ValueError(
                    f"objective name {name!r} must be a non-empty string and must not contain '/' or '.' (they "
                    "separate log keys)"
                )
        self.objectives = nn.ModuleDict(dict(objectives))

    @property
    def requires(self) -> frozenset[str]:
        """Everything the objectives need together."""
        needed: set[str] = set()
        for obj in self.objectives.values():
            assert isinstance(obj, Objective)
            needed |= obj.requires
        return frozenset(needed)

    def prepare_views(self, views: Sequence[Tensor], generator: torch.Generator | None = None) -> list[Tensor]:
        """The SSL views after each objective's :meth:`Objective.prepare_views`, in order: call it on the two
        views before the backbone encodes them (a no-op unless an objective acts on the views)."""
        out = list(views)
        for obj in self.objectives.values():
            assert isinstance(obj, Objective)
            out = obj.prepare_views(out, generator)
        return out

    def forward(self, inputs: StepInputs) -> ObjectiveOutput:
        check_inputs(inputs)
        total: Tensor | None = None
        logs: dict[str, Tensor] = {}
        for name, obj in self.objectives.items():
            out = obj(inputs)
            total = out.loss if total is None else total + out.loss
            logs[f"{name}/loss"] = out.loss.detach()
            logs.update({f"{name}/{k}": v for k, v in out.logs.items()})
        assert total is not None
        return ObjectiveOutput(total, logs)


#: Hooks whose watch has ended, removed outside the optimiser's loop over its hooks (which must not change size).
_ENDED_WATCHES: list[RemovableHandle] = []


def _watch_optimisers(loss: Objective) -> None:
    """Raise at the second step of one optimiser that lacks the head while the head has fresh gradients.

    "Fresh": the loss ran since that optimiser's previous step without the head, so a loss no longer used is never
    blamed for later training. The watch ends once any stepping optimiser holds the head, or when the loss is
    garbage-collected; its hook is removed at the next watch's start.
    """
    while _ENDED_WATCHES:
        _ENDED_WATCHES.pop().remove()
    ref = weakref.ref(loss)
    missed: dict[int, int] = {}  # id(optimiser) -> the loss's call count at its step without the head

    def end() -> None:
        if handle not in _ENDED_WATCHES:
            _ENDED_WATCHES.append(handle)

    def after_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        owner = ref()
        if owner is None or owner._head_calls is None:
            return end()
        params = [p for p in owner.parameters() if p.requires_grad]
        if params and all(p.grad is None for p in params):
            return None  # nothing to judge yet (no backward through the head since its gradients were cleared)
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if not params or any(id(p) in held for p in params):
            owner._head_calls = None
            return end()
        calls, before = owner._head_calls, missed.get(id(optimizer))
        if calls == before:
            return None
        if before is None:
            missed[id(optimizer)] = calls
            return None
        owner._head_calls = None
        end()
        raise RuntimeError(
            f"the head of {type(owner).__name__} is in no optimiser: it gets gradients but "
            f"{type(optimizer).__name__} stepped twice without it, so it never trains. Make the objective a "
            "submodule of the model (`self.essl = ...` in its __init__, then `model.parameters()`), or add its "
            "`.parameters()` to the optimiser."
        )

    handle = register_optimizer_step_post_hook(after_step)
    weakref.finalize(loss, end)
