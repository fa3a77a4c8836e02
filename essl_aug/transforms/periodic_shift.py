"""Random periodic shift: roll each periodic cell by a random whole-pixel shift (the invariance augmentation).

Every cyclic shift of a periodic cell describes the same crystal, so its physical properties (bands, density of
states) are unchanged: this is the reference photonics ``translate_cont_tensor`` (a shift in ``0..H-1`` x
``0..W-1`` per image). Parameters (:class:`ShiftParams`): ``shifts`` (B, 2) int64, rows down and columns right
(``torch.roll`` of ``(shifts[i, 0], shifts[i, 1])``), 0 where not applied; ``input_size`` (B, 2) ``[H, W]``.
``target`` is the shift as a fraction of the cell, (B, 2) in [0, 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from essl_aug import _random
from essl_aug import functional as EF
from essl_aug.transforms.base import Params, TargetSpec, Transformation


@dataclass(frozen=True)
class ShiftParams(Params):
    """``shifts`` (B, 2) int64 (rows down, columns right) and ``input_size`` (B, 2) int64 ``[H, W]``."""

    shifts: Tensor
    input_size: Tensor


class RandomPeriodicShift(Transformation[ShiftParams]):
    """Roll each image by a uniformly random whole-pixel shift with probability ``p``.

    Example:
        >>> shift = RandomPeriodicShift()
        >>> x = torch.rand(4, 1, 8, 8)
        >>> y, params = shift(x, torch.Generator().manual_seed(0))
        >>> torch.equal(y[1], torch.roll(x[1], tuple(params.shifts[1].tolist()), dims=(-2, -1)))
        True
    """

    name = "periodic_shift"
    params_type = ShiftParams

    def __init__(self, p: float = 1.0) -> None:
        super().__init__(p)

    def _sample(
        self, shape: tuple[int, int, int, int], device: torch.device, generator: torch.Generator | None
    ) -> ShiftParams:
        batch, _, height, width = shape
        size = torch.tensor([height, width], device=device)
        u = _random.rand((batch, 2), device, generator)
        if self.p is None or self.p == 1.0:  # every image shifted: no draw (the shifts are the only numbers drawn)
            applied = torch.ones(batch, dtype=torch.bool, device=u.device)
        else:
            applied = _random.bernoulli(batch, self.p, device, generator)
        shifts = torch.minimum((u * size).long(), size - 1) * applied.view(-1, 1)
        return ShiftParams(applied=applied, shifts=shifts, input_size=size.expand(batch, 2))

    def _apply(self, x: Tensor, params: ShiftParams) -> Tensor:
        return EF.periodic_roll(x, params.shifts)

    @property
    def target_spec(self) -> TargetSpec:
        return TargetSpec("regression", 2, ("rows", "cols"), ranges=((0.0, 1.0), (0.0, 1.0)))

    def _target(self, params: ShiftParams) -> Tensor:
        """(B, 2) float32: the shift as a fraction of the cell's height and width."""
        return params.shifts.to(torch.float32) / params.input_size.to(torch.float32)

    def relative(self, a: ShiftParams, b: ShiftParams) -> Tensor:
        """(B, 2) float32: the shift that takes view ``b`` to view ``a``, a fraction of the cell in [0, 1)."""
        self._check_pair(a, b)
        return torch.remainder(self.target(a) - self.target(b), 1.0)
