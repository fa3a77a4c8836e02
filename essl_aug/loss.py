"""The E-SSL objective: cross-entropy of the head's prediction of the applied transformation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug.head import EquivarianceHead
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


def equivariance_loss(logits: Tensor, labels: Tensor, weight: float = 1.0) -> EquivarianceOutput:
    """Cross-entropy and accuracy of transformation logits; the loss is scaled by ``weight``.

    Computed in float32 whatever the logits' dtype, so it is safe under fp16/bf16 autocast.

    Args:
        logits: (N, K) head outputs.
        labels: (N,) integer labels in ``[0, K)``.
        weight: lambda, the weight of the E-SSL term (reference: 0.4 for SimCLR on CIFAR-10).

    Example:
        >>> out = equivariance_loss(torch.tensor([[4.0, 0.0], [0.0, 4.0]]), torch.tensor([0, 0]), weight=0.5)
        >>> round(out.accuracy.item(), 2)
        0.5
    """
    if logits.ndim != 2:
        raise ValueError(f"`logits` must be (N, K), got shape {tuple(logits.shape)}.")
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"`labels` must have shape ({logits.shape[0]},), got {tuple(labels.shape)}.")
    ce = F.cross_entropy(logits.float(), labels)
    with torch.no_grad():
        acc = (logits.argmax(dim=1) == labels).float().mean()
    return EquivarianceOutput(weight * ce, ce.detach(), acc)


class EquivarianceLoss(nn.Module):
    """Transform a view, run the backbone and the head on it, and return the weighted E-SSL loss.

    Args:
        transform: an :class:`EquivariantTransform`, or a family spec (then built with ``mode``).
        in_features: width of the backbone features; builds a reference :class:`EquivarianceHead`.
        head: a head to use instead (any module mapping features to ``num_classes`` logits).
        weight: lambda (reference: 0.4).
        mode: used when ``transform`` is a family spec (reference: ``"all"``).
        hidden: hidden widths of the built head.

    Example:
        >>> backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> essl = EquivarianceLoss("rotation", in_features=8, hidden=(16,))
        >>> out = essl(backbone, torch.rand(4, 3, 16, 16))
        >>> out.loss.shape, 0 <= out.accuracy.item() <= 1
        (torch.Size([]), True)
    """

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
        if (head is None) == (in_features is None):
            raise ValueError("give exactly one of `in_features` (to build the reference head) or `head`.")
        if head is None:
            head = EquivarianceHead(int(in_features), transform.num_classes, hidden=hidden)  # type: ignore[arg-type]
        self.transform = transform
        self.head = head
        self.weight = float(weight)

    def forward(self, backbone: Callable[[Tensor], Tensor], x: Tensor) -> EquivarianceOutput:
        """Run the whole E-SSL branch on the extra view ``x`` (B, C, H, W).

        The view is detached from any graph that produced ``x``; gradients flow through ``backbone``
        and the head, as in the reference.
        """
        views, labels = self.transform(x.detach())
        return self.from_features(backbone(views), labels)

    def from_features(self, features: Tensor, labels: Tensor) -> EquivarianceOutput:
        """The loss from backbone features of already-transformed views."""
        return equivariance_loss(self.head(features.flatten(1)), labels, self.weight)
