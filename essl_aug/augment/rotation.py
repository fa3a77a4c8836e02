"""Random rotation by any angle (bilinear, about the image centre), with the angle of every image returned.

Parameters (:class:`RotationParams`):

- ``angle`` (B,) float32, in degrees, counter-clockwise positive (as torchvision's ``rotate``), uniform in
  ``degrees``; 0 where not applied;
- ``applied`` (B,) bool, True where the image is rotated (probability ``p``).

The rotation is torchvision's ``rotate(img, angle, InterpolationMode.BILINEAR, fill=...)``: the output has the
input's size, each output pixel samples the input bilinearly at its centre rotated by ``-angle`` about the image
centre (``grid_sample``, ``align_corners=False``). Border rule (torchvision's): a sample is the bilinear mix of the
pixels inside the image (outside pixels count 0), ``s``, and ``m`` is the same mix of an all-ones image (the part of
the sample that lies inside); the output is ``m * (s - fill) + fill``. Pixels whose sample lies wholly outside are
``fill``; ``fill`` is a fraction of the dtype's range (0 black, 1 white; ``255 * fill`` for uint8).

Targets (AugSelf, Lee et al., NeurIPS 2021, only has the four quarter turns, ``(r1 - r2) % 4`` as a class; this
is its continuous counterpart):

- :meth:`RandomRotation.target`: (B, 2) float32 ``[cos, sin]`` of the angle ((1, 0) where not applied);
- :meth:`RandomRotation.relative`: (B, 2) float32 ``[cos, sin]`` of ``angle_a - angle_b``, the rotation that takes
  the second view's orientation to the first's ((1, 0) for two views rotated alike).

Example:
    >>> from essl_aug.augment.rotation import RandomRotation
    >>> rotation = RandomRotation(degrees=(90.0, 90.0))
    >>> x = torch.rand(2, 3, 8, 8)
    >>> y, params = rotation(x)
    >>> params.angle.tolist(), rotation.target(params)[0].round(decimals=6).abs().tolist()  # (cos, sin)
    ([90.0, 90.0], [0.0, 1.0])
    >>> torch.allclose(y, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)  # a quarter turn counter-clockwise
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
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
    uniform,
)


@dataclass(frozen=True)
class RotationParams(Params):
    """``angle`` (B,) float32 degrees, counter-clockwise positive, 0 where ``applied`` is False."""

    angle: Tensor


def _degrees(degrees: float | tuple[float, float]) -> tuple[float, float]:
    """The angle range ``(low, high)``: ``(-d, d)`` for one number ``d >= 0``, or a pair with ``low <= high``."""
    if isinstance(degrees, (int, float)) and not isinstance(degrees, bool):
        if not math.isfinite(degrees) or degrees < 0:
            raise ValueError(
                f"`degrees` as one number is the range (-degrees, degrees) and must be >= 0, got {degrees}."
            )
        return -float(degrees), float(degrees)
    if isinstance(degrees, Sequence) and len(degrees) == 2:
        low, high = float(degrees[0]), float(degrees[1])
        if math.isfinite(low) and math.isfinite(high) and low <= high:
            return low, high
    raise ValueError(f"`degrees` must be a number >= 0 or a pair (min, max) with min <= max, got {degrees!r}.")


def _rotation_grid(angle: Tensor, height: int, width: int) -> Tensor:
    """(B, H, W, 2) ``grid_sample`` coordinates of each output pixel centre rotated by ``-angle`` about the centre.

    The arithmetic is torchvision's ``_affine_grid`` (pixel-centred coordinates, rotated, then normalised by half
    the image size) rather than ``F.affine_grid`` (normalised first), so that non-square images agree with it.
    """
    dtype, device = angle.dtype, angle.device
    radians = torch.deg2rad(angle)
    cos, sin = torch.cos(radians), torch.sin(radians)
    zero = torch.zeros_like(cos)
    # Source = [[cos, -sin], [sin, cos]] @ output, in pixels about the centre (y pointing down): a counter-clockwise
    # rotation on screen.
    # Rows: the x and y coordinates of the output pixel, and 1; columns: source x and y, normalised by half the size.
    half_w, half_h = 0.5 * width, 0.5 * height
    rows = [torch.stack([cos / half_w, sin / half_h], -1), torch.stack([-sin / half_w, cos / half_h], -1)]
    theta = torch.stack([*rows, torch.stack([zero, zero], -1)], 1)
    xs = torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, dtype=dtype, device=device)
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height, dtype=dtype, device=device)
    base = torch.stack(
        [
            xs.expand(height, width),
            ys[:, None].expand(height, width),
            torch.ones(height, width, dtype=dtype, device=device),
        ],
        dim=-1,
    ).view(1, height * width, 3)
    return torch.matmul(base, theta).view(-1, height, width, 2)


class RandomRotation(Augmentation[RotationParams]):
    """Rotate each image by a random angle in ``degrees`` (uniform) with probability ``p``; bilinear, same size.

    Args:
        degrees: the angle range in degrees: ``d`` for ``(-d, d)`` (default: any angle), or a pair ``(min, max)``.
        p: the probability that an image is rotated.
        fill: the value of the pixels that come from outside the image, a fraction of the dtype's range in [0, 1]
            (``255 * fill`` for uint8; see the border rule in the module docstring).

    Float32 and float64 are rotated in their dtype, float16, bfloat16 and uint8 in float32 (uint8 then rounded half to
    even). Agreement with torchvision's ``rotate``: float32 within 1e-5 (the angle's cosine and sine are computed in
    float32 on the device, torchvision's in float64 on the host; quarter and half turns, which torchvision computes
    as exact ``rot90``, included); uint8 within 1 (rounding of values that land near a half).

    Example:
        >>> from essl_aug.augment.rotation import RandomRotation
        >>> rotation = RandomRotation(30.0, p=0.5)
        >>> params = rotation.sample((4, 3, 16, 16), generator=torch.Generator().manual_seed(0))
        >>> bool((params.angle.abs() <= 30).all()), bool((params.angle[~params.applied] == 0).all())
        (True, True)
    """

    name = "rotation"

    def __init__(self, degrees: float | tuple[float, float] = 180.0, p: float = 1.0, fill: float = 0.0) -> None:
        super().__init__(p)
        self.degrees = _degrees(degrees)
        fill = float(fill)
        if not 0.0 <= fill <= 1.0:
            raise ValueError(
                f"`fill` is a fraction of the dtype's range and must lie in [0, 1] (0 black, 1 white), got {fill}."
            )
        self.fill = fill

    @property
    def target_spec(self) -> TargetSpec:
        return TargetSpec("regression", 2, ("cos", "sin"))

    def sample(
        self, shape: Sequence[int], device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> RotationParams:
        batch = batch_shape(shape)[0]
        applied = bernoulli(batch, self.p, device, generator)
        angle = uniform(batch, self.degrees[0], self.degrees[1], device, generator)
        return RotationParams(applied=applied, angle=torch.where(applied, angle, 0.0))

    def apply(self, x: Tensor, params: RotationParams) -> Tensor:
        """``x`` with the images where ``params.applied`` rotated by ``params.angle``; the others bit-identical."""
        self.check(x)
        check_params(params, RotationParams, x)
        batch, _, height, width = x.shape
        compute = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        grid = _rotation_grid(params.angle.to(compute), height, width)
        # One grid_sample for the image and its coverage (an all-ones channel), as torchvision does.
        ones = torch.ones(batch, 1, height, width, dtype=compute, device=x.device)
        sampled = F.grid_sample(
            torch.cat([x.to(compute), ones], dim=1), grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        image, coverage = sampled[:, :-1], sampled[:, -1:]
        fill = self.fill * 255.0 if x.dtype == torch.uint8 else self.fill
        y = coverage * (image - fill) + fill
        y = y.round().clamp(0, 255).to(x.dtype) if x.dtype == torch.uint8 else y.to(x.dtype)
        return select(params.applied, y, x)

    def target(self, params: RotationParams) -> Tensor:
        """(B, 2) float32 ``[cos, sin]`` of the angle."""
        radians = torch.deg2rad(params.angle.to(torch.float32))
        return torch.stack([torch.cos(radians), torch.sin(radians)], dim=1)

    def relative(self, a: RotationParams, b: RotationParams) -> Tensor:
        """(B, 2) float32 ``[cos, sin]`` of ``a.angle - b.angle``."""
        check_views(a, b)
        radians = torch.deg2rad(a.angle.to(torch.float32) - b.angle.to(torch.float32))
        return torch.stack([torch.cos(radians), torch.sin(radians)], dim=1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(degrees={self.degrees}, p={self.p}, fill={self.fill})"
