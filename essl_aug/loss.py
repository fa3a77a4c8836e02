"""The E-SSL objective of the paper: cross-entropy of the head's prediction of the applied transformation.

:class:`EquivarianceLoss` is the public face of :class:`~essl_aug.objectives.ESSL` for a family (the one
implementation): ``essl(backbone, x)`` transforms the extra view ``x``, runs the backbone and the head and returns the
weighted loss with the cross-entropy and the accuracy (:class:`EquivarianceOutput`). In an
:class:`~essl_aug.objectives.Objectives` it behaves as the objective (``essl(StepInputs(...))``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug._validation import check_label_dtype
from essl_aug.objectives.base import StepInputs, check_weight
from essl_aug.objectives.essl import ESSL
from essl_aug.registry import FamilySpec
from essl_aug.transform import EquivariantTransform, Mode

__all__ = ["EquivarianceLoss", "EquivarianceOutput", "check_weight", "equivariance_loss"]


class EquivarianceOutput(NamedTuple):
    """What the objective returns: ``loss`` (``weight * cross_entropy``, to add to the SSL loss), ``cross_entropy``
    (unweighted, for logging) and ``accuracy`` (fraction of views whose transformation was predicted, no gradient)."""

    loss: Tensor
    cross_entropy: Tensor
    accuracy: Tensor


def equivariance_loss(logits: Tensor, labels: Tensor, weight: float = 1.0) -> EquivarianceOutput:
    """Cross-entropy and accuracy of transformation logits; the loss is scaled by ``weight``.

    Computed in float32 whatever the logits' dtype, so it is safe under fp16/bf16 autocast.

    Args:
        logits: (N, K) head outputs, N >= 1.
        labels: (N,) integer labels in ``[0, K)``, int64 or int32.
        weight: the weight of the E-SSL term, the paper's lambda (reference: 0.4 for SimCLR on CIFAR-10).

    Example:
        >>> out = equivariance_loss(torch.tensor([[4.0, 0.0], [0.0, 4.0]]), torch.tensor([0, 0]), weight=0.5)
        >>> round(out.accuracy.item(), 2)
        0.5
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"`logits` must be a (N, K) tensor (the head's output), got {type(logits).__name__}.")
    if logits.ndim != 2:
        raise ValueError(f"`logits` must be a (N, K) tensor (the head's output), got {tuple(logits.shape)}.")
    if logits.shape[0] == 0:
        raise ValueError("`logits` has no views (N = 0): the loss of an empty batch is undefined; skip empty batches.")
    check_label_dtype(labels)
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"`labels` must have shape ({logits.shape[0]},), got {tuple(labels.shape)}.")
    labels = labels.long()
    ce = F.cross_entropy(logits.float(), labels)
    with torch.no_grad():
        acc = (logits.argmax(dim=1) == labels).float().mean()
    return EquivarianceOutput(check_weight(weight) * ce, ce.detach(), acc)


class EquivarianceLoss(ESSL):
    """Transform a view, run the backbone and the head on it, and return the weighted E-SSL loss.

    Args:
        transform: an :class:`EquivariantTransform`, or a family spec (then built with ``mode``).
        in_features: width of the backbone features; builds a reference :class:`~essl_aug.EquivarianceHead`.
        head: a head to use instead (any module mapping (N, C) features to (N, ``num_classes``) logits).
        weight: the weight of the E-SSL term, the paper's lambda (reference: 0.4); a finite number >= 0.
        mode: used when ``transform`` is a family spec (reference: ``"all"``).
        hidden: hidden widths of the built head.

    The backbone must return pooled features ``(B', C)`` (or ``(B', C, 1, 1)``); a spatial map or a tuple is refused
    with the fix, as are a head with another number of outputs than ``num_classes`` and an empty batch. The head must
    be trained with the backbone (see :class:`~essl_aug.objectives.Objective`).

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
    """

    extra_arg = "x"

    def __init__(
        self,
        transform: EquivariantTransform | FamilySpec,
        in_features: int | None = None,
        head: nn.Module | None = None,
        weight: float = 0.4,
        mode: Mode = "all",
        hidden: Sequence[int] = (2048, 2048),
    ) -> None:
        if not isinstance(transform, EquivariantTransform):
            transform = EquivariantTransform(transform, mode=mode)
        super().__init__(transform, in_features, head, weight, hidden=hidden)

    def forward(self, backbone: Callable[[Tensor], Tensor] | StepInputs, x: Tensor | None = None) -> Any:
        """Run the E-SSL branch on the extra view ``x`` (B, C, H, W), B >= 1: :class:`EquivarianceOutput`.

        Given a :class:`~essl_aug.objectives.StepInputs` instead, it is the objective (an ``ObjectiveOutput``).
        """
        if isinstance(backbone, StepInputs):
            return super().forward(backbone)
        if x is None:
            raise TypeError("EquivarianceLoss takes (backbone, x): the backbone and the extra view's images.")
        views, labels = self.views(x)
        loss, logs = self.score(self.predict(backbone, views), labels)
        self._count_head_call()
        return EquivarianceOutput(self.weight * loss, logs["ce"], logs["acc"])

    def from_features(self, features: Tensor, labels: Tensor) -> EquivarianceOutput:
        """The loss from backbone features of already-transformed views (see :meth:`views`)."""
        loss, logs = self.score(self.predict(lambda _: features, labels), labels)
        return EquivarianceOutput(self.weight * loss, logs["ce"], logs["acc"])

    def extra_repr(self) -> str:
        return f"weight={self.weight}"
