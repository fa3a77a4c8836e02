"""Random horizontal flip (mirror left-right), with the flip of every image returned.

Parameters (:class:`FlipParams`): ``applied`` (B,) bool, True where the image is mirrored (probability ``p``).

Targets, following AugSelf (Lee et al., NeurIPS 2021; ``hankook/AugSelf``, ``transforms.py``, ``extract_diff``:
``diff['flip'] = (f1 == f2).float()``, a binary classification in ``trainers.py``):

- :meth:`HorizontalFlip.target`: (B,) int64, class 1 where the view is flipped, 0 where not
  (:class:`~essl_aug.augment.base.TargetSpec` ``"classification"`` over 2 classes);
- :meth:`HorizontalFlip.relative`: (B,) int64, class 1 where the two views agree (both flipped or neither), 0 where
  exactly one is flipped. AugSelf's (B, 1) float tensor for a binary cross-entropy is
  ``relative(a, b).float()[:, None]``.

Example:
    >>> from essl_aug.augment.flip import HorizontalFlip
    >>> flip = HorizontalFlip(p=1.0)
    >>> x = torch.arange(3.0).view(1, 1, 1, 3)
    >>> y, params = flip(x)
    >>> y.flatten().tolist(), flip.target(params).tolist()
    ([2.0, 1.0, 0.0], [1])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from essl_aug.augment.base import (
    Augmentation,
    Params,
    TargetSpec,
    batch_shape,
    bernoulli,
    check_params,
    check_views,
    select,
)


@dataclass(frozen=True)
class FlipParams(Params):
    """``applied`` (B,) bool: True where the image is mirrored left-right."""


class HorizontalFlip(Augmentation[FlipParams]):
    """Mirror each image left-right with probability ``p`` (torchvision's ``horizontal_flip``, exact for every dtype).

    Example:
        >>> from essl_aug.augment.flip import HorizontalFlip
        >>> flip = HorizontalFlip(p=0.5)
        >>> params = flip.sample((4, 3, 8, 8), generator=torch.Generator().manual_seed(0))
        >>> params.applied.dtype, flip.target_spec.size
        (torch.bool, 2)
    """

    name = "hflip"

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)

    @property
    def target_spec(self) -> TargetSpec:
        return TargetSpec("classification", 2)

    def sample(
        self, shape: Sequence[int], device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> FlipParams:
        batch = batch_shape(shape)[0]
        return FlipParams(applied=bernoulli(batch, self.p, device, generator))

    def apply(self, x: Tensor, params: FlipParams) -> Tensor:
        """``x`` with the images where ``params.applied`` mirrored left-right; the others bit-identical."""
        self.check(x)
        check_params(params, FlipParams, x)
        return select(params.applied, x.flip(-1), x)

    def target(self, params: FlipParams) -> Tensor:
        """(B,) int64: 1 where the view is flipped, 0 where not."""
        return params.applied.long()

    def relative(self, a: FlipParams, b: FlipParams) -> Tensor:
        """(B,) int64: 1 where both views are flipped or neither is, 0 where one is (AugSelf's ``f1 == f2``)."""
        check_views(a, b)
        return (a.applied == b.applied).long()
