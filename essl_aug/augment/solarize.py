"""Random solarization: with probability ``p`` an image's pixels at or above a threshold are inverted.

Parameter convention (:class:`SolarizeParams`): ``applied`` (B,) bool only; the threshold is the augmentation's
``threshold``, a fraction of the dtype's range: float images invert pixels ``>= threshold`` (to ``1 - x``), uint8
images pixels ``>= threshold * 255`` (to ``255 - x``), so the default 0.5 inverts uint8 pixels ``>= 128``, the
threshold of Pillow's ``ImageOps.solarize`` used by the BYOL recipes (solo-learn, lightly). The op is
``torchvision.transforms.v2.functional.solarize(img, threshold)`` with ``threshold * 255`` for uint8.

Target and relative target follow AugSelf (hankook/AugSelf ``transforms.py``, ``_extract_w`` for
``RandomSolarize`` and ``extract_diff``): per view the threshold (a fraction of the range) where applied and 1
where not, (B, 1) float32; the relative target is view a's minus view b's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from essl_aug.augment.base import (
    Augmentation,
    Params,
    TargetSpec,
    batch_shape,
    bernoulli,
    check_params,
    check_probability,
    check_views,
)

__all__ = ["Solarize", "SolarizeParams"]


@dataclass(frozen=True)
class SolarizeParams(Params):
    """Per-image solarization: ``applied`` (B,) bool only (the threshold is the augmentation's)."""


class Solarize(Augmentation[SolarizeParams]):
    """Invert the pixels at or above ``threshold`` with probability ``p`` per image.

    Each applied image is ``torchvision.transforms.v2.functional.solarize(img, t)`` with ``t = threshold`` for float
    images (in [0, 1]) and ``t = threshold * 255`` for uint8 (bit for bit; differentiable for float, the gradient
    of an inverted pixel is -1). :meth:`target` (B, 1) float32: ``threshold`` where applied, 1 where not (AugSelf);
    :meth:`relative` is ``target(a) - target(b)``.

    Args:
        threshold: in [0, 1], the fraction of the dtype's range from which pixels are inverted.
        p: probability that an image is solarized.

    Example:
        >>> aug = Solarize(threshold=0.5, p=1.0)
        >>> x = torch.tensor([[[[0.25, 0.75]]]])
        >>> aug.apply(x, SolarizeParams(applied=torch.tensor([True]))).flatten().tolist()
        [0.25, 0.25]
        >>> u = torch.tensor([[[[127, 128]]]], dtype=torch.uint8)
        >>> aug.apply(u, SolarizeParams(applied=torch.tensor([True]))).flatten().tolist()
        [127, 127]
        >>> aug.target(SolarizeParams(applied=torch.tensor([True, False]))).flatten().tolist()
        [0.5, 1.0]
    """

    name: ClassVar[str] = "solarize"

    def __init__(self, threshold: float = 0.5, p: float = 0.2) -> None:
        super().__init__(check_probability(p))
        if not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(
                f"`threshold` is a fraction of the pixel range and must lie in [0, 1] (0.5 is 128 for uint8), "
                f"got {threshold!r}."
            )
        self.threshold = float(threshold)

    @property
    def target_spec(self) -> TargetSpec:
        return TargetSpec("regression", 1, ("threshold",))

    def sample(
        self, shape: Sequence[int], device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> SolarizeParams:
        return SolarizeParams(applied=bernoulli(batch_shape(shape)[0], self.p, device, generator))

    def apply(self, x: Tensor, params: SolarizeParams) -> Tensor:
        self.check(x)
        check_params(params, SolarizeParams, x)
        if x.dtype == torch.uint8:
            threshold, inverted = self.threshold * 255, x.bitwise_not()
        else:
            threshold, inverted = self.threshold, 1.0 - x
        chosen = (x >= threshold) & params.applied.view(-1, 1, 1, 1)
        return torch.where(chosen, inverted, x)

    def target(self, params: SolarizeParams) -> Tensor:
        value = torch.full_like(params.applied, self.threshold, dtype=torch.float32)
        return torch.where(params.applied, value, torch.ones_like(value)).view(-1, 1)

    def relative(self, a: SolarizeParams, b: SolarizeParams) -> Tensor:
        check_views(a, b)
        return self.target(a) - self.target(b)

    def __repr__(self) -> str:
        return f"Solarize(threshold={self.threshold}, p={self.p})"
