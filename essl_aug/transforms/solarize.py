"""Random solarization: with probability ``p`` an image's pixels at or above a threshold are inverted.

Parameter convention: ``applied`` (B,) bool only (:class:`~essl_aug.transforms.base.Params`); the threshold is the
transformation's ``threshold``, a fraction of the dtype's range: float images invert pixels ``>= threshold`` (to ``1 -
x``), uint8 images pixels ``>= threshold * 255`` (to ``255 - x``), so the default 0.5 inverts uint8 pixels ``>= 128``,
the threshold of Pillow's ``ImageOps.solarize`` used by the BYOL recipes (solo-learn, lightly). The op is
:func:`essl_aug.functional.solarize` (``torchvision``'s ``solarize``).

Target and relative target follow AugSelf (hankook/AugSelf ``transforms.py``, ``_extract_w`` for ``RandomSolarize``):
per view the threshold where applied and 1 where not, (B, 1) float32; the relative target is view a's minus view b's.
"""

from __future__ import annotations

import torch
from torch import Tensor

from essl_aug import _random
from essl_aug import functional as EF
from essl_aug._validation import check_fraction
from essl_aug.transforms.base import Params, TargetSpec, Transformation


class RandomSolarize(Transformation[Params]):
    """Invert the pixels at or above ``threshold`` with probability ``p`` per image.

    Args:
        threshold: in [0, 1], the fraction of the dtype's range from which pixels are inverted.
        p: probability that an image is solarized.

    Example:
        >>> aug = RandomSolarize(threshold=0.5)
        >>> x = torch.tensor([[[[0.25, 0.75]]]])
        >>> aug.apply(x, Params(applied=torch.tensor([True]))).flatten().tolist()
        [0.25, 0.25]
        >>> aug.target(Params(applied=torch.tensor([True, False]))).flatten().tolist()
        [0.5, 1.0]
    """

    name = "solarize"

    def __init__(self, threshold: float = 0.5, p: float = 0.2) -> None:
        super().__init__(p)
        self.threshold = check_fraction(
            threshold, "threshold", "is a fraction of the pixel range and must lie in [0, 1] (0.5 is 128 for uint8)"
        )

    @property
    def target_spec(self) -> TargetSpec:
        p = 1.0 if self.p is None else self.p
        value = self.threshold if p == 1.0 else 1.0  # the target when it cannot vary
        varies = 0.0 < p < 1.0 and self.threshold < 1.0
        return TargetSpec(
            "regression", 1, ("threshold",), ranges=((self.threshold, 1.0) if varies else (value, value),)
        )

    def _sample(
        self, shape: tuple[int, int, int, int], device: torch.device, generator: torch.Generator | None
    ) -> Params:
        return Params(applied=_random.bernoulli(shape[0], self.p if self.p is not None else 1.0, device, generator))

    def _apply(self, x: Tensor, params: Params) -> Tensor:
        return EF.solarize(x, self.threshold)

    def _target(self, params: Params) -> Tensor:
        """(B, 1) float32: the threshold where applied, 1 where not."""
        value = torch.full_like(params.applied, self.threshold, dtype=torch.float32)
        return torch.where(params.applied, value, torch.ones_like(value)).view(-1, 1)

    def __repr__(self) -> str:
        return f"RandomSolarize(threshold={self.threshold}, p={self.p})"
