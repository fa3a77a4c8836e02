"""The equivariance prediction head: a small MLP on pooled backbone features."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Literal

from torch import Tensor, nn

Norm = Literal["layer", "batch", "none"]


def pooled_features(features: object, in_features: int | None = None, in_features_arg: str = "in_features") -> Tensor:
    """The backbone's output as ``(N, C)`` pooled features; a clear error for anything else.

    Accepted: a tensor ``(N, C)``, or ``(N, C, 1, ..., 1)`` (a pooled map, e.g. after ``nn.AdaptiveAvgPool2d(1)``),
    which is flattened to ``(N, C)``. Refused: a spatial feature map ``(N, C, H, W)`` (flattening it would mix
    positions into channels: pool it first), a tuple or list (pass a callable returning the features tensor), and
    ``C != in_features`` when ``in_features`` is given.

    Example:
        >>> pooled_features(torch.rand(2, 8, 1, 1)).shape
        torch.Size([2, 8])
        >>> pooled_features(torch.rand(2, 8, 4, 4))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: the backbone returned a feature map of shape (2, 8, 4, 4), not pooled features (N, C); pool it ...
    """
    if isinstance(features, (tuple, list)):
        raise TypeError(
            f"the backbone returned a {type(features).__name__}, not one (N, C) tensor of pooled features; pass a "
            "callable that returns that tensor, e.g. `lambda x: backbone(x)[0]`."
        )
    if not isinstance(features, Tensor):
        raise TypeError(f"the backbone must return a (N, C) tensor of pooled features, got {type(features).__name__}.")
    if features.ndim < 2:
        raise ValueError(f"the backbone must return pooled features (N, C), got shape {tuple(features.shape)}.")
    if features.ndim > 2 and math.prod(features.shape[2:]) != 1:
        raise ValueError(
            f"the backbone returned a feature map of shape {tuple(features.shape)}, not pooled features (N, C); "
            "pool it first, e.g. end the backbone with nn.AdaptiveAvgPool2d(1) (and nn.Flatten())."
        )
    features = features.flatten(1)
    if in_features is not None and features.shape[1] != in_features:
        raise ValueError(
            f"the backbone gives {features.shape[1]} features per view but the head takes {in_features}; "
            f"set `{in_features_arg}={features.shape[1]}` (the width of the backbone's pooled features)."
        )
    return features


def hidden_widths(hidden: Sequence[int]) -> tuple[int, ...]:
    """The hidden widths of a head as a tuple of positive integers; ``ValueError`` naming ``hidden`` otherwise.

    Example:
        >>> hidden_widths([2048, 2048])
        (2048, 2048)
        >>> hidden_widths((64, 0))
        Traceback (most recent call last):
        ...
        ValueError: `hidden` widths must be positive integers, got (64, 0).
    """
    try:
        widths = tuple(int(w) for w in hidden)
        valid = all(w >= 1 for w in widths)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"`hidden` widths must be positive integers, got {hidden!r}.")
    return widths


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
        num_classes: number of transformation classes (``EquivariantTransform.num_classes``), or of numbers a
            regression head predicts (one or more).
        hidden: widths of the hidden layers (may be empty: a linear head).
        norm: ``"layer"`` (reference), ``"batch"`` or ``"none"``.
        activate_last_hidden: apply ReLU after the last hidden layer.

    Shape:
        - Input: (N, in_features) pooled features; a pooled map (N, in_features, 1, 1) is flattened, a spatial
          map (N, C, H, W) is refused (pool it first), see ``pooled_features`` (in ``essl_aug.head``).
        - Output: (N, num_classes) logits.

    Example:
        >>> head = EquivarianceHead(512, 4)
        >>> head(torch.rand(8, 512)).shape
        torch.Size([8, 4])
    """

    #: How the feature-width argument is spelled in error messages (a subclass that renames it sets its own).
    in_features_arg: ClassVar[str] = "in_features"

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (2048, 2048),
        norm: Norm = "layer",
        activate_last_hidden: bool = True,
    ) -> None:
        super().__init__()
        if int(in_features) < 1 or int(num_classes) < 1:
            raise ValueError(f"need in_features >= 1 and num_classes >= 1, got {in_features} and {num_classes}.")
        if norm not in ("layer", "batch", "none"):
            raise ValueError(f"`norm` must be 'layer', 'batch' or 'none', got {norm!r}.")
        widths = hidden_widths(hidden)
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
        return self.layers(pooled_features(features, self.in_features, self.in_features_arg))
