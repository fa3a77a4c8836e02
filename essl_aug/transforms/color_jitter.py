"""Colour jitter: brightness, contrast, saturation and hue, each image with its own factors and its own op order.

Parameter convention (:class:`ColorJitterParams`):

- ``factors`` (B, 4) float32, columns ``[brightness, contrast, saturation, hue]``: the factors of
  ``torchvision.transforms.v2.functional.adjust_brightness`` / ``adjust_contrast`` / ``adjust_saturation`` /
  ``adjust_hue``, drawn uniformly from torchvision's ``ColorJitter`` ranges (``b`` gives ``[max(0, 1 - b), 1 + b]``,
  ``h`` gives ``[-h, h]``); the identity values ``1, 1, 1, 0`` where ``applied`` is False.
- ``order`` (B, 4) int64: a permutation of ``0..3`` (op indices, 0 brightness ... 3 hue) in the order applied,
  uniform over the 24 permutations as torchvision's ``ColorJitter`` draws it (``torch.randperm(4)``), but per image;
  ``0, 1, 2, 3`` where ``applied`` is False;
- ``ranges`` (B, 4, 2) float32: the ``(min, max)`` each factor was drawn from (the jitter that made the view), so
  that the targets are normalised by the ranges that made the views, whatever object computes them; ``None`` in
  hand-made parameters, which then take the ranges of the transformation computing the target.

An op whose factor is its identity value (a range of zero width, e.g. ``hue=0``) is skipped, as torchvision's
``ColorJitter`` skips the ops it was built without.

Target and relative target follow AugSelf (Lee et al., NeurIPS 2021; hankook/AugSelf ``transforms.py``,
``_extract_w`` for ``ColorJitter``, and ``extract_diff``): per view ``(factor - 1) / (max - min)`` of the factor's
range for brightness, contrast and saturation and ``hue / (max - min)`` for hue, 0 where not applied (and for a
range of zero width), the range being the one the view was drawn from (``ranges``); the relative target is view a's
minus view b's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from essl_aug import _random
from essl_aug import functional as EF
from essl_aug._validation import check_channels, number_or_pair
from essl_aug.transforms.base import Params, TargetSpec, Transformation

__all__ = ["IDENTITY_FACTORS", "OPS", "ColorJitter", "ColorJitterParams"]

#: The four ops, in the column order of ``factors`` (and the indices used in ``order``).
OPS = ("brightness", "contrast", "saturation", "hue")
#: The factor of each op that leaves an image unchanged.
IDENTITY_FACTORS = (1.0, 1.0, 1.0, 0.0)


@dataclass(frozen=True)
class ColorJitterParams(Params):
    """``factors`` (B, 4) float32 ``[brightness, contrast, saturation, hue]`` and ``order`` (B, 4) int64, the op
    indices in the order applied (see the module docstring)."""

    factors: Tensor
    order: Tensor
    ranges: Tensor | None = None


def factor_range(value: float | Sequence[float], name: str, hue: bool = False) -> tuple[float, float]:
    """torchvision's ``ColorJitter`` range of ``value``: ``[max(0, 1 - v), 1 + v]`` (``[-v, v]`` for hue), or a
    ``(min, max)`` pair inside ``[0, inf)`` (``[-0.5, 0.5]`` for hue), as torchvision checks it."""
    parsed = number_or_pair(value, name, "0.4 or (0.6, 1.4)" if not hue else "0.1 or (-0.1, 0.1)")
    low, limit = (-0.5, 0.5) if hue else (0.0, math.inf)
    if isinstance(parsed, float):
        if not 0.0 <= parsed <= limit:
            raise ValueError(
                f"`{name}` must be {'in [0, 0.5]' if hue else 'non-negative'} (a jitter amount), got {value}."
            )
        return (-parsed, parsed) if hue else (max(0.0, 1.0 - parsed), 1.0 + parsed)
    if not (low <= parsed[0] and parsed[1] <= limit):
        raise ValueError(f"`{name}` must be a (min, max) pair inside [{low}, {limit}], got {value!r}.")
    return parsed


class ColorJitter(Transformation[ColorJitterParams]):
    """Random brightness, contrast, saturation and hue with probability ``p``, in a random order per image.

    Each applied image goes through :func:`essl_aug.functional.color_jitter` with its factors and order (torchvision
    v2 semantics). 1-channel images: brightness and contrast apply, saturation and hue leave them unchanged
    (torchvision's behaviour); other channel counts raise.

    Args:
        brightness: jitter amount ``b`` (factor in ``[max(0, 1 - b), 1 + b]``) or a ``(min, max)`` factor range.
        contrast: as ``brightness``.
        saturation: as ``brightness``.
        hue: ``h`` in [0, 0.5] (factor in ``[-h, h]``) or a ``(min, max)`` range inside [-0.5, 0.5].
        p: probability that an image is jittered.

    Example:
        >>> from torchvision.transforms.v2 import functional as TF
        >>> aug = ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0)
        >>> x = torch.rand(2, 3, 8, 8)
        >>> y, params = aug(x, torch.Generator().manual_seed(0))
        >>> ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
        >>> ref = x[1]
        >>> for k in params.order[1].tolist():
        ...     ref = ops[k](ref, params.factors[1, k].item())
        >>> bool((y[1] - ref).abs().max() < 1e-6), aug.target(params).shape
        (True, torch.Size([2, 4]))
    """

    name = "color_jitter"
    params_type = ColorJitterParams

    def __init__(
        self,
        brightness: float | Sequence[float] = 0.4,
        contrast: float | Sequence[float] = 0.4,
        saturation: float | Sequence[float] = 0.4,
        hue: float | Sequence[float] = 0.1,
        p: float = 0.8,
    ) -> None:
        super().__init__(p)
        self.brightness = factor_range(brightness, "brightness")
        self.contrast = factor_range(contrast, "contrast")
        self.saturation = factor_range(saturation, "saturation")
        self.hue = factor_range(hue, "hue", hue=True)

    @property
    def ranges(self) -> tuple[tuple[float, float], ...]:
        """The (min, max) range of each factor, in the column order of ``factors``."""
        return (self.brightness, self.contrast, self.saturation, self.hue)

    def check(self, x: Tensor, name: str = "x") -> None:
        super().check(x, name)
        check_channels(x, (1, 3), "ColorJitter", name)

    @property
    def target_spec(self) -> TargetSpec:
        ranges = tuple(
            ((lo - one) / (hi - lo), (hi - one) / (hi - lo)) if hi > lo else (0.0, 0.0)
            for (lo, hi), one in zip(self.ranges, IDENTITY_FACTORS, strict=True)
        )
        return TargetSpec("regression", 4, OPS, ranges=ranges)

    def _sample(
        self, shape: tuple[int, int, int, int], device: torch.device, generator: torch.Generator | None
    ) -> ColorJitterParams:
        """``applied``, then the factors (one uniform per op and image), then the order (per image)."""
        batch = shape[0]
        applied = _random.bernoulli(batch, self.p if self.p is not None else 1.0, device, generator)
        u = _random.rand((batch, 4), device, generator)
        keys = _random.rand((batch, 4), device, generator)
        drawn = torch.stack([(lo + (hi - lo) * u[:, k]).clamp(lo, hi) for k, (lo, hi) in enumerate(self.ranges)], 1)
        identity = (torch.arange(4, device=drawn.device) != 3).to(torch.float32)  # 1, 1, 1, 0: no host copy
        factors = torch.where(applied.view(-1, 1), drawn, identity)
        # argsort of i.i.d. uniform keys: each of the 24 orders equally likely, per image
        order = torch.where(applied.view(-1, 1), keys.argsort(dim=1), torch.arange(4, device=keys.device))
        return ColorJitterParams(applied=applied, factors=factors, order=order, ranges=self._ranges(batch, device))

    def _ranges(self, batch: int, device: torch.device) -> Tensor:
        """(B, 4, 2) float32: this jitter's ranges for every image (filled on ``device``: no host copy)."""
        bounds = [torch.full((batch,), v, dtype=torch.float32, device=device) for pair in self.ranges for v in pair]
        return torch.stack(bounds, dim=1).view(batch, 4, 2)

    def check_params(self, params: Params, x: Tensor, name: str = "params") -> None:
        super().check_params(params, x, name)
        assert isinstance(params, ColorJitterParams)
        shapes_ok = params.order.shape[1:] == (4,) and params.factors.shape[1:] == (4,)
        if (
            not shapes_ok
            or params.order.dtype != torch.int64
            or (params.ranges is not None and params.ranges.shape[1:] != (4, 2))
        ):
            ranges = "" if params.ranges is None else f" and `ranges` {tuple(params.ranges.shape)}"
            raise ValueError(
                f"`{name}` must hold `factors` (B, 4), `order` (B, 4) int64 and `ranges` (B, 4, 2) or None, got "
                f"{tuple(params.factors.shape)} and {tuple(params.order.shape)} {params.order.dtype}{ranges}; draw "
                "them with `sample(x.shape, x.device)`."
            )
        steps = torch.arange(4, device=params.order.device)
        self.require(
            (params.order.sort(dim=1).values == steps).all(),
            f"`{name}.order` must be a permutation of 0..3 per image (the four ops in the order applied).",
        )

    def _apply(self, x: Tensor, params: ColorJitterParams) -> Tensor:
        return EF.color_jitter(x, params.factors, params.order)

    def _target(self, params: ColorJitterParams) -> Tensor:
        """(B, 4) float32: AugSelf's normalised factors (module docstring), 0 where not applied."""
        factors = params.factors.float()
        ranges = self._ranges(len(factors), factors.device) if params.ranges is None else params.ranges.float()
        width = ranges[..., 1] - ranges[..., 0]
        identity = (torch.arange(4, device=factors.device) != 3).to(torch.float32)  # 1, 1, 1, 0
        normalised = torch.where(width > 0, (factors - identity) / width.clamp_min(1e-12), torch.zeros_like(factors))
        return torch.where(params.applied.view(-1, 1), normalised, torch.zeros_like(normalised))

    def __repr__(self) -> str:
        return (
            f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, saturation={self.saturation}, "
            f"hue={self.hue}, p={self.p})"
        )
