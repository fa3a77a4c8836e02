"""Grayscale conversion: the invariance control of the E-SSL diagnostic (not a group)."""

from __future__ import annotations

from torch import Tensor

from essl_aug import functional as EF
from essl_aug._validation import EXACT_DTYPES
from essl_aug.family import TransformFamily


class Grayscale(TransformFamily):
    """Label 0: identity. Label 1: 3-channel grayscale, as
    ``torchvision.transforms.v2.functional.rgb_to_grayscale(x, num_output_channels=3)``.

    Needs 3-channel (RGB) input. Grayscale is idempotent, not invertible, so this family is not a group.

    Example:
        >>> import torch
        >>> y = Grayscale().apply(torch.rand(1, 3, 4, 4), torch.tensor([1]))
        >>> bool((y[:, 0] == y[:, 2]).all())
        True
    """

    name = "grayscale"
    num_classes = 2
    dtypes = EXACT_DTYPES
    pointwise = True

    def check(self, x: Tensor) -> None:
        super().check(x)
        if x.shape[-3] != 3:
            raise ValueError(f"grayscale needs RGB images with 3 channels, but `x` has {x.shape[-3]}; convert to RGB.")

    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        return EF.grayscale(x, labels, out)

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        return EF.grayscale(x, None, out)
