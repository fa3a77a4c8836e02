"""The E-SSL objective: cross-entropy of the head's prediction of the applied transformation."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.hooks import RemovableHandle

from essl_aug._validation import check_label_dtype
from essl_aug.head import EquivarianceHead, pooled_features
from essl_aug.registry import FamilySpec
from essl_aug.transform import EquivariantTransform, Mode


class EquivarianceOutput(NamedTuple):
    """What the objective returns.

    Attributes:
        loss: ``weight * cross_entropy``, to add to the invariant SSL loss.
        cross_entropy: the unweighted cross-entropy (for logging).
        accuracy: fraction of views whose transformation was predicted correctly (no gradient).
    """

    loss: Tensor
    cross_entropy: Tensor
    accuracy: Tensor


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


def equivariance_loss(logits: Tensor, labels: Tensor, weight: float = 1.0) -> EquivarianceOutput:
    """Cross-entropy and accuracy of transformation logits; the loss is scaled by ``weight``.

    Computed in float32 whatever the logits' dtype, so it is safe under fp16/bf16 autocast.

    Args:
        logits: (N, K) head outputs, N >= 1 (the loss of no views is undefined).
        labels: (N,) integer labels in ``[0, K)``, int64 or int32 (the dtypes the transforms return and accept).
        weight: the weight of the E-SSL term, the paper's lambda (reference: 0.4 for SimCLR on CIFAR-10).

    Example:
        >>> out = equivariance_loss(torch.tensor([[4.0, 0.0], [0.0, 4.0]]), torch.tensor([0, 0]), weight=0.5)
        >>> round(out.accuracy.item(), 2)
        0.5
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"`logits` must be a (N, K) tensor (the head's output), got {type(logits).__name__}.")
    if logits.ndim != 2:
        raise ValueError(f"`logits` must be (N, K), got shape {tuple(logits.shape)}.")
    if logits.shape[0] == 0:
        raise ValueError("`logits` has no views (N = 0): the loss of an empty batch is undefined; skip empty batches.")
    check_label_dtype(labels)
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"`labels` must have shape ({logits.shape[0]},), got {tuple(labels.shape)}.")
    labels = labels.long()  # int32 -> int64 for cross_entropy (a no-op for int64)
    ce = F.cross_entropy(logits.float(), labels)
    with torch.no_grad():
        acc = (logits.argmax(dim=1) == labels).float().mean()
    return EquivarianceOutput(weight * ce, ce.detach(), acc)


class EquivarianceLoss(nn.Module):
    """Transform a view, run the backbone and the head on it, and return the weighted E-SSL loss.

    Every setting is checked here, once; framework adapters pass their configuration through.

    The head must be trained with the backbone: make the loss a submodule of the model (``self.essl = ...`` in its
    ``__init__``) or give ``essl.parameters()`` to the optimiser. A loss whose head gets gradients but is in no
    optimiser raises ``RuntimeError`` at the second step of an optimiser without it (a loss created outside the
    model, lightly's module-level ``criterion = ...`` idiom, would otherwise never train its head): the check watches
    ``torch.optim`` steps (``register_optimizer_step_post_hook``) until the head is seen in a stepping optimiser,
    compares parameters by identity and never syncs with the device.

    Args:
        transform: an :class:`EquivariantTransform`, or a family spec (then built with ``mode``).
        in_features: width of the backbone features; builds a reference :class:`EquivarianceHead`.
        head: a head to use instead (any module mapping (N, C) features to (N, ``num_classes``) logits).
        weight: the weight of the E-SSL term, the paper's lambda (reference: 0.4); a finite number >= 0.
        mode: used when ``transform`` is a family spec (reference: ``"all"``).
        hidden: hidden widths of the built head.

    The backbone must return pooled features ``(B', C)`` (or ``(B', C, 1, 1)``); a spatial map or a tuple is refused
    with the fix (see ``essl_aug.head.pooled_features``), as are a head with another number of outputs than
    ``num_classes`` and an empty batch.

    Example:
        >>> backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> essl = EquivarianceLoss("rotation", in_features=8, hidden=(16,))
        >>> x = torch.rand(4, 3, 16, 16)
        >>> out = essl(backbone, x)
        >>> out.loss.shape, bool(out.loss == 0.4 * out.cross_entropy)
        (torch.Size([]), True)
        >>> views, labels = essl.views(x)  # every quarter turn of every image, labels in block layout
        >>> labels.tolist()
        [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
        >>> hits = essl.head(backbone(views)).argmax(dim=1) == labels
        >>> bool(out.accuracy == hits.float().mean())
        True
    """

    #: How the feature-width argument is spelled in error messages (a subclass that renames it sets its own).
    in_features_arg: ClassVar[str] = "in_features"

    def __init__(
        self,
        transform: EquivariantTransform | FamilySpec,
        in_features: int | None = None,
        head: nn.Module | None = None,
        weight: float = 0.4,
        mode: Mode = "all",
        hidden: Sequence[int] = (2048, 2048),
    ) -> None:
        super().__init__()
        if not isinstance(transform, EquivariantTransform):
            transform = EquivariantTransform(transform, mode=mode)
        self.weight = check_weight(weight)
        if (head is None) == (in_features is None):
            raise ValueError(f"give exactly one of `{self.in_features_arg}` (to build the reference head) or `head`.")
        if in_features is not None:
            head = EquivarianceHead(int(in_features), transform.num_classes, hidden=hidden)
        if not isinstance(head, nn.Module):
            raise TypeError(f"`head` must be an nn.Module mapping features to logits, got {type(head).__name__}.")
        outputs = getattr(head, "num_classes", None)
        if isinstance(outputs, int) and outputs != transform.num_classes:
            raise ValueError(
                f"`head` predicts {outputs} classes but the transform has {transform.num_classes}; build it with "
                f"num_classes={transform.num_classes} (`transform.num_classes`)."
            )
        self.transform = transform
        self.head = head
        #: ``in_features_arg`` if the loss built the head (errors about its width name the loss's argument).
        self._width_arg = self.in_features_arg if in_features is not None else EquivarianceHead.in_features_arg
        #: Calls that can train the head; ``None`` once the head was seen in a stepping optimiser (see the class).
        self._head_calls: int | None = 0

    @property
    def num_classes(self) -> int:
        """Number of transformation classes the head predicts."""
        return self.transform.num_classes

    def views(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The transformed views of ``x`` and their labels, on ``x``'s device (``x`` is detached, not modified)."""
        return self.transform(x.detach())

    def forward(self, backbone: Callable[[Tensor], Tensor], x: Tensor) -> EquivarianceOutput:
        """Run the whole E-SSL branch on the extra view ``x`` (B, C, H, W), B >= 1.

        The view is detached from any graph that produced ``x``; gradients flow through ``backbone``
        and the head, as in the reference.
        """
        if not callable(backbone):
            raise TypeError(f"`backbone` must be a callable (the backbone module), got {type(backbone).__name__}.")
        if isinstance(x, Tensor) and x.ndim >= 1 and x.shape[0] == 0:
            raise ValueError(
                "`x` is an empty batch (B = 0): the E-SSL loss of no views is undefined; skip empty batches."
            )
        views, labels = self.views(x)
        return self.from_features(backbone(views), labels)

    def from_features(self, features: Tensor, labels: Tensor) -> EquivarianceOutput:
        """The loss from backbone features of already-transformed views (see :meth:`views`)."""
        width = self.head.in_features if isinstance(self.head, EquivarianceHead) else None
        logits = self.head(pooled_features(features, width, self._width_arg))
        if isinstance(logits, Tensor) and logits.ndim == 2 and logits.shape[1] != self.num_classes:
            raise ValueError(
                f"`head` returned {logits.shape[1]} logits per view but the transform has {self.num_classes} classes; "
                f"build it with {self.num_classes} outputs (the loss's `num_classes`)."
            )
        self._count_head_call()
        return equivariance_loss(logits, labels, self.weight)

    def _count_head_call(self) -> None:
        """Count a call that can train the head; the first one starts watching the optimisers' steps."""
        if self._head_calls is None or not torch.is_grad_enabled() or self.weight == 0:
            return
        if torch.compiler.is_compiling():
            return
        self._head_calls += 1
        if self._head_calls == 1:
            _watch_optimisers(self)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


#: Hooks whose watch has ended, removed outside the optimiser's loop over its hooks (which must not change size).
_ENDED_WATCHES: list[RemovableHandle] = []


def _watch_optimisers(loss: EquivarianceLoss) -> None:
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
        params = [p for p in owner.head.parameters() if p.requires_grad]
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
            f"{type(optimizer).__name__} stepped twice without it, so it never trains. Make the loss a submodule "
            "of the model (`self.essl = ...` in its __init__, then `model.parameters()`), or add "
            "`essl.parameters()` to the optimiser."
        )

    handle = register_optimizer_step_post_hook(after_step)
    weakref.finalize(loss, end)
