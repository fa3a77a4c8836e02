"""Random grayscale: each image replaced by its luma with probability ``p``, keeping its channels.

Parameter convention (:class:`GrayscaleParams`): ``applied`` (B,) bool only. An RGB image where ``applied`` is
``torchvision.transforms.v2.functional.rgb_to_grayscale(img, num_output_channels=3)`` (weights 0.2989, 0.587,
0.114; uint8 truncated as torchvision); a 1-channel image is already gray and is returned unchanged
(``rgb_to_grayscale(img, num_output_channels=1)`` copies it).

Target: whether the view is gray, a class (B,) int64 in {0, 1}. AugSelf (hankook/AugSelf ``transforms.py``,
``extract_diff``) has no grayscale target; the relative target follows its rule for the other binary augmentation,
the horizontal flip (``diff['flip'] = (f1 == f2)``, a binary class): 1 where both views agree (both gray or both
colour), 0 where they differ, as (B,) int64 class indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from essl_aug import functional as EF
from essl_aug.augment.base import (
    Augmentation,
    Params,
    TargetSpec,
    batch_shape,
    bernoulli,
    check_channels,
    check_params,
    check_probability,
    check_views,
)

__all__ = ["GrayscaleParams", "RandomGrayscale"]


@dataclass(frozen=True)
class GrayscaleParams(Params):
    """Per-image grayscale: ``applied`` (B,) bool only."""


class RandomGrayscale(Augmentation[GrayscaleParams]):
    """Grayscale (luma copied to every channel) with probability ``p`` per image.

    Exactly ``torchvision.transforms.v2.functional.rgb_to_grayscale(img, num_output_channels=3)`` on each applied
    RGB image (the same kernel as :class:`essl_aug.Grayscale`); 1-channel images are returned unchanged, other
    channel counts raise. :meth:`target` (B,) int64: 1 where gray; :meth:`relative` (B,) int64: 1 where the two
    views agree (AugSelf's flip rule; see the module docstring).

    Args:
        p: probability that an image is made gray.

    Example:
        >>> from torchvision.transforms.v2.functional import rgb_to_grayscale
        >>> aug = RandomGrayscale(p=0.5)
        >>> x = torch.rand(4, 3, 8, 8)
        >>> params = GrayscaleParams(applied=torch.tensor([True, False, True, False]))
        >>> y = aug.apply(x, params)
        >>> torch.equal(y[0], rgb_to_grayscale(x[0], num_output_channels=3)), torch.equal(y[1], x[1])
        (True, True)
        >>> aug.target(params).tolist(), aug.relative(params, GrayscaleParams(torch.ones(4, dtype=torch.bool))).tolist()
        ([1, 0, 1, 0], [1, 0, 1, 0])
    """

    name: ClassVar[str] = "grayscale"

    def __init__(self, p: float = 0.2) -> None:
        super().__init__(check_probability(p))

    @property
    def target_spec(self) -> TargetSpec:
        return TargetSpec("classification", 2)

    def sample(
        self, shape: Sequence[int], device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> GrayscaleParams:
        return GrayscaleParams(applied=bernoulli(batch_shape(shape)[0], self.p, device, generator))

    def apply(self, x: Tensor, params: GrayscaleParams) -> Tensor:
        self.check(x)
        check_params(params, GrayscaleParams, x)
        if check_channels(x, (1, 3), "RandomGrayscale") == 1:
            return x.clone()
        return EF.grayscale(x, params.applied)

    def target(self, params: GrayscaleParams) -> Tensor:
        return params.applied.long()

    def relative(self, a: GrayscaleParams, b: GrayscaleParams) -> Tensor:
        check_views(a, b)
        return (a.applied == b.applied).long()
