"""Random rotation by any angle (bilinear, about the image centre), with the angle of every image returned.

Parameters (:class:`RotationParams`): ``angle`` (B,) float32 in degrees, counter-clockwise positive (as
torchvision's ``rotate``), uniform in ``degrees``, 0 where ``applied`` is False. The op is
:func:`essl_aug.functional.rotate` (torchvision's ``rotate(img, angle, BILINEAR, fill=...)``; same size; corners
filled with ``fill``).

Targets (AugSelf has only the four quarter turns, ``(r1 - r2) % 4``; this is its continuous counterpart):
``target`` is ``[cos, sin]`` of the angle, (B, 2) float32 ((1, 0) where not applied), a circular target;
:meth:`RandomRotation.relative` is ``[cos, sin]`` of ``angle_a - angle_b``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from essl_aug import _random
from essl_aug import functional as EF
from essl_aug._validation import check_fraction, number_or_pair
from essl_aug.transforms.base import Params, TargetSpec, Transformation

__all__ = ["RandomRotation", "RotationParams"]


@dataclass(frozen=True)
class RotationParams(Params):
    """``angle`` (B,) float32 degrees, counter-clockwise positive, 0 where ``applied`` is False."""

    angle: Tensor


def _unit(degrees: Tensor) -> Tensor:
    radians = torch.deg2rad(degrees.to(torch.float32))
    return torch.stack([torch.cos(radians), torch.sin(radians)], dim=1)


class RandomRotation(Transformation[RotationParams]):
    """Rotate each image by a random angle in ``degrees`` (uniform) with probability ``p``; bilinear, same size.

    Args:
        degrees: the angle range in degrees: ``d`` for ``(-d, d)`` (default: any angle), or a pair ``(min, max)``.
        p: the probability that an image is rotated.
        fill: the value of the pixels that come from outside the image, a fraction of the dtype's range in [0, 1].

    Agreement with torchvision's ``rotate``: float32 within 1e-6 and uint8 within 1 (bit for bit on the CPU at 32
    to 320 px in the tests); an angle that is a multiple of a half turn (of a quarter turn for square images) moves
    the pixels exactly, as torchvision's ``rot90`` fast path does.

    Example:
        >>> rotation = RandomRotation(degrees=(90.0, 90.0))
        >>> x = torch.rand(2, 3, 8, 8)
        >>> y, params = rotation(x)
        >>> params.angle.tolist(), torch.equal(y, torch.rot90(x, 1, dims=(-2, -1)))
        ([90.0, 90.0], True)
    """

    name = "rotation"
    params_type = RotationParams

    def __init__(self, degrees: float | tuple[float, float] = 180.0, p: float = 1.0, fill: float = 0.0) -> None:
        super().__init__(p)
        value = number_or_pair(degrees, "degrees", "30.0 (for (-30, 30))")
        if isinstance(value, float) and value < 0:
            raise ValueError(f"`degrees` as one number is the range (-degrees, degrees) and must be >= 0, got {value}.")
        self.degrees = (-value, value) if isinstance(value, float) else value
        self.fill = check_fraction(
            fill,
            "fill",
            "is a fraction of the dtype's range, one number in [0, 1] for every channel (0 black, 1 white; a value "
            "per channel is not supported)",
        )

    @property
    def target_spec(self) -> TargetSpec:
        low, high = self.degrees
        if high > low:
            return TargetSpec("regression", 2, ("cos", "sin"), circular=True)
        fixed = _unit(torch.tensor([low])).flatten().tolist()  # one angle: a target that cannot vary
        return TargetSpec("regression", 2, ("cos", "sin"), ranges=tuple((v, v) for v in fixed), circular=True)

    def _sample(
        self, shape: tuple[int, int, int, int], device: torch.device, generator: torch.Generator | None
    ) -> RotationParams:
        batch = shape[0]
        applied = _random.bernoulli(batch, self.p if self.p is not None else 1.0, device, generator)
        angle = _random.uniform(batch, self.degrees[0], self.degrees[1], device, generator)
        return RotationParams(applied=applied, angle=torch.where(applied, angle, 0.0))

    def _apply(self, x: Tensor, params: RotationParams) -> Tensor:
        return EF.rotate(x, params.angle, self.fill)

    def _target(self, params: RotationParams) -> Tensor:
        """(B, 2) float32 ``[cos, sin]`` of the angle."""
        return _unit(params.angle)

    def relative(self, a: RotationParams, b: RotationParams) -> Tensor:
        """(B, 2) float32 ``[cos, sin]`` of ``a.angle - b.angle``."""
        self._check_pair(a, b)
        return _unit(a.angle.to(torch.float32) - b.angle.to(torch.float32))

    def __repr__(self) -> str:
        return f"RandomRotation(degrees={self.degrees}, p={self.p}, fill={self.fill})"
