"""The equivariance prediction head: a small MLP on pooled backbone features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

Norm = Literal["layer", "batch", "none"]


def _norm(kind: Norm, width: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(width)
    if kind == "batch":
        return nn.BatchNorm1d(width)
    return nn.Identity()


class EquivarianceHead(nn.Module):
    """MLP that predicts which transformation was applied: ``[Linear-Norm-ReLU] x len(hidden)`` then Linear.

    Defaults reproduce the reference CIFAR E-SimCLR head: ``in-2048-2048-K`` with LayerNorm and ReLU.
    The reference ImageNet head is ``hidden=(2048, 2048, 128), activate_last_hidden=False`` (its narrow
    128 layer has LayerNorm but no ReLU); the reference E-SimSiam CIFAR head is
    ``activate_last_hidden=False``.

    Args:
        in_features: width of the backbone's pooled features (512 for ResNet-18, 2048 for ResNet-50).
        num_classes: number of transformation classes (``EquivariantTransform.num_classes``).
        hidden: widths of the hidden layers (may be empty: a linear head).
        norm: ``"layer"`` (reference), ``"batch"`` or ``"none"``.
        activate_last_hidden: apply ReLU after the last hidden layer.

    Shape:
        - Input: (N, in_features); extra trailing dimensions are flattened.
        - Output: (N, num_classes) logits.

    Example:
        >>> head = EquivarianceHead(512, 4)
        >>> head(torch.rand(8, 512)).shape
        torch.Size([8, 4])
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (2048, 2048),
        norm: Norm = "layer",
        activate_last_hidden: bool = True,
    ) -> None:
        super().__init__()
        if int(in_features) < 1 or int(num_classes) < 2:
            raise ValueError(f"need in_features >= 1 and num_classes >= 2, got {in_features} and {num_classes}.")
        if norm not in ("layer", "batch", "none"):
            raise ValueError(f"`norm` must be 'layer', 'batch' or 'none', got {norm!r}.")
        widths = [int(w) for w in hidden]
        if any(w < 1 for w in widths):
            raise ValueError(f"`hidden` widths must be positive, got {list(hidden)}.")
        layers: list[nn.Module] = []
        prev = int(in_features)
        for i, width in enumerate(widths):
            layers += [nn.Linear(prev, width), _norm(norm, width)]
            if activate_last_hidden or i < len(widths) - 1:
                layers.append(nn.ReLU(inplace=True))
            prev = width
        layers.append(nn.Linear(prev, int(num_classes)))
        self.in_features = int(in_features)
        self.num_classes = int(num_classes)
        self.layers = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        return self.layers(features.flatten(1))
