"""Colour jitter: brightness, contrast, saturation and hue, each image with its own factors and its own op order.

Parameter convention (:class:`ColorJitterParams`):

- ``factors`` (B, 4) float32, columns ``[brightness, contrast, saturation, hue]``: the factors of
  ``torchvision.transforms.v2.functional.adjust_brightness`` / ``adjust_contrast`` / ``adjust_saturation`` /
  ``adjust_hue``, drawn uniformly from torchvision's ``ColorJitter`` ranges (``b`` gives ``[max(0, 1 - b), 1 + b]``,
  ``h`` gives ``[-h, h]``); the identity values ``1, 1, 1, 0`` where ``applied`` is False.
- ``order`` (B, 4) int64: a permutation of ``0..3`` (op indices, 0 brightness ... 3 hue) in the order applied,
  uniform over the 24 permutations as torchvision's ``ColorJitter`` draws it (``torch.randperm(4)``), but per image;
  ``0, 1, 2, 3`` where ``applied`` is False.

An op whose factor is its identity value (a range of zero width, e.g. ``hue=0``) is skipped, as torchvision's
``ColorJitter`` skips the ops it was built without: the image passes through that op unchanged.

Target and relative target follow AugSelf (Lee et al., NeurIPS 2021; hankook/AugSelf ``transforms.py``,
``_extract_w`` for ``ColorJitter``, and ``extract_diff``; the head regresses it with MSE after ``tanh``,
``trainers.py``): per view ``(factor - 1) / (max - min)`` of the factor's range for brightness, contrast and
saturation and ``hue / (max - min)`` for hue, 0 where not applied; the relative target is view a's minus view b's.
A range of zero width gives 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from essl_aug import _cpu
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
    rand,
    select,
)
from essl_aug.functional import GRAY_WEIGHTS

__all__ = ["IDENTITY_FACTORS", "OPS", "ColorJitter", "ColorJitterParams", "jitter", "jitter_per_group"]

#: The four ops, in the column order of ``factors`` (and the indices used in ``order``).
OPS = ("brightness", "contrast", "saturation", "hue")
#: The factor of each op that leaves an image unchanged.
IDENTITY_FACTORS = (1.0, 1.0, 1.0, 0.0)
_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE = range(4)
#: ``torchvision``'s float -> uint8 scale (``to_dtype_image``): ``x * (255 + 1 - 1e-3)``, then truncation.
_TO_UINT8 = 255 + 1.0 - 1e-3


@dataclass(frozen=True)
class ColorJitterParams(Params):
    """Per-image colour jitter: ``factors`` (B, 4) float32 ``[brightness, contrast, saturation, hue]`` and
    ``order`` (B, 4) int64, the op indices in the order applied (see :mod:`essl_aug.augment.color`)."""

    factors: Tensor
    order: Tensor


def factor_range(value: float | Sequence[float], name: str, hue: bool = False) -> tuple[float, float]:
    """torchvision's ``ColorJitter`` range of ``value``: ``[max(0, 1 - v), 1 + v]`` (``[-v, v]`` for hue), or a
    ``(min, max)`` pair checked as torchvision checks it; errors name ``name``."""
    limit = 0.5 if hue else math.inf
    if isinstance(value, (int, float)):
        v = float(value)
        if not 0.0 <= v <= limit:
            bound = "in [0, 0.5]" if hue else "non-negative"
            raise ValueError(f"`{name}` must be {bound} (a jitter amount), got {value}.")
        return (-v, v) if hue else (max(0.0, 1.0 - v), 1.0 + v)
    if not isinstance(value, Sequence):
        raise TypeError(f"`{name}` must be a number or a (min, max) pair of numbers, got {type(value).__name__}.")
    pair = tuple(value)
    if len(pair) != 2 or not all(isinstance(e, (int, float)) for e in pair):
        raise ValueError(f"`{name}` must be a number or a (min, max) pair of numbers, got {value!r}.")
    lo, hi = float(pair[0]), float(pair[1])
    low = -0.5 if hue else 0.0
    if not low <= lo <= hi <= limit:
        span = "[-0.5, 0.5]" if hue else "[0, inf)"
        raise ValueError(f"`{name}` must be a (min, max) pair with min <= max inside {span}, got {value!r}.")
    return lo, hi


def rgb_to_hsv(image: Tensor) -> Tensor:
    """torchvision's RGB -> HSV of float images (..., 3, H, W) in [0, 1]; hue in [0, 1).

    The arithmetic of ``torchvision.transforms.v2.functional._color._rgb_to_hsv`` (after Pillow), op for op but out
    of place (autograd). Not kornia's ``rgb_to_hsv``: that one works in radians and adds an epsilon to the
    saturation's denominator, which moves float32 results by up to ~1.5e-6 and flips about 1e-5 of uint8 pixels by
    one against torchvision's ``adjust_hue``; porting torchvision's steps keeps the op exact.
    """
    return torch.stack(_rgb_to_hsv(image), dim=-3)


def _rgb_to_hsv(image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`rgb_to_hsv` as three planes ``(h, s, v)``: ``adjust_hue`` changes ``h`` and reads the planes back,
    so stacking and unbinding them would only copy."""
    r, g, _ = image.unbind(dim=-3)
    minc, maxc = image.amin(dim=-3), image.amax(dim=-3)
    eqc = maxc == minc
    channels_range = maxc - minc
    ones = torch.ones_like(maxc)
    s = channels_range / torch.where(eqc, ones, maxc)
    divisor = torch.where(eqc, ones, channels_range).unsqueeze(-3)
    rc, gc, bc = ((maxc.unsqueeze(-3) - image) / divisor).unbind(dim=-3)
    maxc_neq_r = maxc != r
    maxc_eq_g = maxc == g
    hg = (rc + 2.0 - bc) * (maxc_eq_g & maxc_neq_r)
    hr = (bc - gc) * ~maxc_neq_r
    hb = (gc + 4.0 - rc) * (maxc_neq_r & ~maxc_eq_g)
    h = torch.frac((hr + hg + hb) * (1.0 / 6.0) + 1.0)  # torchvision's fmod(., 1.0): the same bits, faster on CPU
    return h, s, maxc


#: torchvision's (3, 6) table of ``_hsv_to_rgb`` (which of ``v, p, q, t`` each channel takes in each hue sector),
#: one row per channel packed in base 4: entry ``k`` is ``(code >> 2 * k) & 3``.
_SECTOR_CODES = tuple(
    sum(entry << (2 * k) for k, entry in enumerate(row))
    for row in ((0, 2, 1, 1, 3, 0), (3, 0, 0, 2, 1, 1), (1, 1, 3, 0, 0, 2))
)


def hsv_to_rgb(image: Tensor) -> Tensor:
    """torchvision's HSV -> RGB (``_hsv_to_rgb``), op for op, out of place.

    torchvision gathers from ``(v, p, q, t)`` with indices read from a (3, 6) table; here the indices come from the
    table packed into three integers (:data:`_SECTOR_CODES`, the same entries), so no table is copied to the
    device on each call.
    """
    h, s, v = image.unbind(dim=-3)
    return _hsv_to_rgb(h, s, v)


def _hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor, out: Tensor | None = None) -> Tensor:
    """:func:`hsv_to_rgb` of the three planes ``(h, s, v)``, into ``out`` when given."""
    h6 = h * 6
    i = torch.floor(h6)
    f = h6 - i
    # torchvision's ``i.to(int32).remainder(6)``, in float (exact for |i| < 2**24), as CPU integer division is slow
    sector = (i - 6 * torch.floor(i / 6)).to(torch.int32)
    sxf = s * f
    one_minus_s = 1.0 - s
    q = ((1.0 - sxf) * v).clamp(0.0, 1.0)
    t = ((sxf + one_minus_s) * v).clamp(0.0, 1.0)
    p = (one_minus_s * v).clamp(0.0, 1.0)
    shift = sector * 2
    index = torch.stack([(code >> shift) & 3 for code in _SECTOR_CODES], dim=-3).long()
    stacked = torch.stack((v, p, q, t), dim=-3)
    return stacked.gather(-3, index) if out is None else torch.gather(stacked, -3, index, out=out)


def _gray(y: Tensor) -> Tensor:
    """torchvision's luma of RGB ``y`` (B, 3, H, W) as (B, 1, H, W), in the same op order (float images)."""
    r, g, b = y.unbind(dim=-3)
    return r.mul(GRAY_WEIGHTS[0]).add_(g, alpha=GRAY_WEIGHTS[1]).add_(b, alpha=GRAY_WEIGHTS[2]).unsqueeze(-3)


def _adjust_hue(y: Tensor, hue: Tensor, out: Tensor | None = None) -> Tensor:
    """``adjust_hue`` of RGB ``y`` by ``hue`` (B,): computed in float32 as torchvision does, back to ``y.dtype``.

    With ``out`` (shaped and typed as ``y``; ``y`` itself allowed: it is read before ``out`` is written), the
    result is written there (float32: by the last op, without a copy).
    """
    z = y.to(torch.float32).mul(1.0 / 255) if y.dtype == torch.uint8 else y.to(torch.float32)
    h, s, v = _rgb_to_hsv(z)
    direct = out if out is not None and out.dtype == torch.float32 else None
    # torchvision's remainder(h + hue, 1.0) as (h + hue) - floor(h + hue): the same value rounded once (a zero may
    # change sign, which the conversion back to RGB ignores), without the slower CPU fmod.
    shifted = h + hue.view(-1, 1, 1)
    rgb = _hsv_to_rgb(shifted - shifted.floor(), s, v, direct)
    if direct is not None:
        return direct
    if y.dtype == torch.uint8:
        rgb = rgb.mul_(_TO_UINT8)  # then truncated by the conversion
    return rgb.to(y.dtype) if out is None else out.copy_(rgb)


def _blend_round(y: Tensor, op: Tensor, factor: Tensor, active: Tensor) -> Tensor:
    """One round of the three blend ops: image ``i`` gets op ``op[i]`` with ``factor[i]`` where ``active[i]``.

    Brightness, contrast and saturation are one blend ``clamp(f * y + (1 - f) * m)``, as torchvision computes them
    (``_blend``; brightness is the blend with ``m = 0``, which adds an exact ``+0``), with ``m`` per image: 0, the
    mean luma (contrast) or the luma (saturation), floored for uint8. ``torch.addcmul`` gives the same rounding as
    torchvision's ``mul(f).add_(m, alpha=1 - f)``. The result is converted back to ``y.dtype`` after the op (uint8
    clamped and truncated) as torchvision returns it. Inactive images, hue rows and identity factors keep ``y``.
    """
    fp = y.is_floating_point()
    work = y.dtype if y.dtype == torch.float64 else torch.float32
    yf = y.to(work)
    f = factor.to(work).view(-1, 1, 1, 1)
    if y.shape[1] == 3:
        gray = _gray(yf)
        if not fp:
            gray = gray.floor()
    else:
        gray = yf
    mean = gray.mean(dim=(-3, -2, -1), keepdim=True)
    partner = torch.where(
        (op == _BRIGHTNESS).view(-1, 1, 1, 1),
        torch.zeros_like(mean),
        torch.where((op == _CONTRAST).view(-1, 1, 1, 1), mean, gray),
    )
    blended = torch.addcmul(yf * f, partner, 1.0 - f).clamp(0.0, 1.0 if fp else 255.0).to(y.dtype)
    skip = ~active | (op == _HUE) | (factor == 1.0)
    if y.shape[1] == 1:  # torchvision leaves a 1-channel image unchanged by saturation
        skip = skip | (op == _SATURATION)
    return torch.where(skip.view(-1, 1, 1, 1), y, blended)


def jitter(x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """Colour jitter of every image of ``x`` (B, 1 or 3, H, W) with its ``factors`` (B, 4) in its ``order`` (B, 4).

    Image ``i`` goes through the ops ``order[i]`` one after the other, each as torchvision's ``adjust_*``. Hue, the
    costly op, runs once on the whole batch: first the blend ops that come before hue in each image's order (rounds
    0 to 2, each image stopping at its hue position), then hue, then the blend ops after it (rounds 1 to 3). An op
    whose factor is its identity value is skipped (as torchvision's ``ColorJitter`` skips the ops it was built
    without).
    """
    hue_at = (order == _HUE).to(torch.int64).argmax(dim=1)
    y = x
    for r in range(3):
        op = order[:, r]
        y = _blend_round(y, op, factors.gather(1, op.view(-1, 1)).view(-1), hue_at > r)
    if x.shape[1] == 3:  # torchvision leaves a 1-channel image unchanged by hue
        hue = factors[:, _HUE]
        y = torch.where((hue == 0).view(-1, 1, 1, 1), y, _adjust_hue(y, hue))
    for r in range(1, 4):
        op = order[:, r]
        y = _blend_round(y, op, factors.gather(1, op.view(-1, 1)).view(-1), hue_at < r)
    return y


def _blend_into(y: Tensor, op: int, factor: Tensor) -> None:
    """Op ``op`` (brightness, contrast, or saturation of RGB images) of every image of ``y`` with its ``factor``
    (B,), in place: the arithmetic of :func:`_blend_round` for one op, without the partners of the other two.

    float32 and float64 are blended in ``y`` itself; other dtypes in a float32 copy, written back with the
    conversion :func:`_blend_round` makes (uint8: truncation of the clamped value).
    """
    fp = y.is_floating_point()
    work = y.dtype if y.dtype in (torch.float32, torch.float64) else torch.float32
    yf = y if y.dtype == work else y.to(work)
    f = factor.to(work).view(-1, 1, 1, 1)
    partner = None
    if op != _BRIGHTNESS:  # brightness blends with 0: ``+ 0 * (1 - f)`` adds an exact zero
        gray = _gray(yf) if y.shape[1] == 3 else yf
        if not fp:
            gray = gray.floor()
        partner = gray.mean(dim=(-3, -2, -1), keepdim=True) if op == _CONTRAST else gray
    yf.mul_(f)
    if partner is not None:
        yf.addcmul_(partner, 1.0 - f)
    yf.clamp_(0.0, 1.0 if fp else 255.0)
    if yf is not y:
        y.copy_(yf)


#: Pixels per image plane that :func:`jitter_per_group` processes at a time: a chunk of images small enough for
#: the temporaries of every op (hue makes about thirty passes) to stay in a CPU's cache, large enough that the
#: per-call overhead of small images is paid once per chunk.
CHUNK_PIXELS = 2**17

Runs = list[tuple[int, int, tuple[int, ...]]]


def _runs(keys: Sequence[object]) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of equal consecutive ``keys``."""
    starts = [j for j in range(len(keys)) if j == 0 or keys[j] != keys[j - 1]]
    return list(zip(starts, [*starts[1:], len(keys)], strict=True))


def _blend_runs(y: Tensor, f: Tensor, runs: Runs, lo: int, hi: int) -> None:
    """Apply to the images ``[start, stop)`` of each run their blend ops in order (factors ``f``), in place in
    ``y``, for the images of the run inside ``[lo, hi)``."""
    for start, stop, ops in runs:
        a, b = max(start, lo), min(stop, hi)
        if a >= b or not ops:
            continue
        for k in ops:
            _blend_into(y[a:b], k, f[a:b, k])


def jitter_per_group(x: Tensor, factors: Tensor, order: Tensor, applied: Tensor) -> Tensor:
    """The eager CPU form of :meth:`ColorJitter.apply`: each op run only on the images it changes, on slices of
    images that share it.

    :func:`jitter` runs six blend rounds and hue over the whole batch, each computing every op's partner and
    keeping the images it does not apply to, which suits a GPU. Here the factors and orders are read on the host
    (eager CPU tensors only, :func:`essl_aug._cpu.enabled`) and only the ops that change an image run on it
    (identity factors and rows with ``applied`` False skipped). Each image's sequence of ops splits at hue into the
    blends before it and those after it; the images are gathered once, sorted by (hue or not, blends before, blends
    after), so that the images sharing their blends before hue (at most 16 sequences), those taking hue, and those
    sharing all their ops (at most 24 orders) are contiguous slices; then scattered back. The slices are processed
    a chunk of images at a time (``CHUNK_PIXELS``). Same arithmetic per op and per image as :func:`jitter`
    (the contrast's mean luma summed per image either way), so both forms give the same bits. The blends are run
    in place (float32 and float64) but not fused into one pass: torchvision clamps, and rounds uint8, after each
    op, and the luma that contrast and saturation blend with is the one of the image as the previous op left it.
    (Keeping uint8 images in a float32 buffer between ops, converted once, was tried: the four times larger
    buffer costs more in cache misses than the conversions it saves.)
    """
    one_channel = x.shape[1] == 1
    keys: list[tuple[bool, tuple[int, ...], tuple[int, ...], int]] = []
    rows = zip(applied.tolist(), factors.tolist(), order.tolist(), strict=True)
    for i, (on, factor, ops) in enumerate(rows):
        # torchvision leaves a 1-channel image unchanged by saturation and hue
        done = [k for k in ops if factor[k] != IDENTITY_FACTORS[k] and not (one_channel and k in (_SATURATION, _HUE))]
        if on and done:
            at = done.index(_HUE) if _HUE in done else len(done)
            keys.append((at < len(done), tuple(done[:at]), tuple(done[at + 1 :]), i))
    out = x.clone()
    if not keys:
        return out
    keys.sort()
    index = torch.tensor([key[-1] for key in keys], device=x.device)
    y, f = x.index_select(0, index), factors.index_select(0, index)
    before = [(a, b, keys[a][1]) for a, b in _runs([key[:2] for key in keys])]
    after = [(a, b, keys[a][2]) for a, b in _runs([key[:3] for key in keys])]
    first_hue = next((j for j, key in enumerate(keys) if key[0]), len(keys))
    step = max(1, CHUNK_PIXELS // (x.shape[-2] * x.shape[-1]))
    for lo in range(0, len(keys), step):
        hi = min(lo + step, len(keys))
        _blend_runs(y, f, before, lo, hi)
        a = max(lo, first_hue)
        if a < hi:
            _adjust_hue(y[a:hi], f[a:hi, _HUE], out=y[a:hi])
        _blend_runs(y, f, after, lo, hi)
    return out.index_copy_(0, index, y)


class ColorJitter(Augmentation[ColorJitterParams]):
    """Random brightness, contrast, saturation and hue with probability ``p``, in a random order per image.

    Each image ``i`` with ``applied[i]`` goes through ``adjust_brightness``, ``adjust_contrast``,
    ``adjust_saturation`` and ``adjust_hue`` (torchvision v2 semantics, factors ``params.factors[i]``) in the order
    ``params.order[i]``, in one of two forms that give the same bits, chosen once per call as the discrete ops
    choose theirs (:mod:`essl_aug._cpu`): on a GPU, under autograd or ``torch.compile``, batched
    (:func:`~essl_aug.augment.color.jitter`: rounds over the order positions, never a loop over images); in eager
    CPU calls without autograd, each op only on the images it changes (:func:`jitter_per_group`, which reads the
    parameters on the host).
    float images are in [0, 1], uint8 images in [0, 255]; uint8 results are clamped and truncated after each op as
    torchvision does. float16 and bfloat16 are computed in float32 and rounded after each op, float64 in float64
    (hue, as torchvision, in float32). 1-channel images: brightness and contrast apply,
    saturation and hue leave them unchanged (torchvision's behaviour); other channel counts raise.

    Targets (AugSelf's normalisation; see the module docstring): :meth:`target` (B, 4) float32
    ``[(b - 1) / w_b, (c - 1) / w_c, (s - 1) / w_s, h / w_h]`` with ``w`` the width of each factor's range (0 where
    not applied or where a range has zero width); :meth:`relative` is ``target(a) - target(b)``.

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
        >>> params = aug.sample(x.shape, generator=torch.Generator().manual_seed(0))
        >>> y = aug.apply(x, params)
        >>> ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
        >>> ref = x[1]
        >>> for k in params.order[1].tolist():
        ...     ref = ops[k](ref, params.factors[1, k].item())
        >>> bool((y[1] - ref).abs().max() < 1e-6), sorted(params.order[1].tolist()), aug.target(params).shape
        (True, [0, 1, 2, 3], torch.Size([2, 4]))
    """

    name: ClassVar[str] = "color_jitter"

    def __init__(
        self,
        brightness: float | Sequence[float] = 0.4,
        contrast: float | Sequence[float] = 0.4,
        saturation: float | Sequence[float] = 0.4,
        hue: float | Sequence[float] = 0.1,
        p: float = 0.8,
    ) -> None:
        super().__init__(check_probability(p))
        self.brightness = factor_range(brightness, "brightness")
        self.contrast = factor_range(contrast, "contrast")
        self.saturation = factor_range(saturation, "saturation")
        self.hue = factor_range(hue, "hue", hue=True)

    @property
    def ranges(self) -> tuple[tuple[float, float], ...]:
        """The (min, max) range of each factor, in the column order of ``factors``."""
        return (self.brightness, self.contrast, self.saturation, self.hue)

    @property
    def target_spec(self) -> TargetSpec:
        return TargetSpec("regression", 4, OPS)

    def sample(
        self, shape: Sequence[int], device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> ColorJitterParams:
        """Draw ``applied``, then the factors (one uniform per op and image), then the order (per image)."""
        batch = batch_shape(shape)[0]
        applied = bernoulli(batch, self.p, device, generator)
        u = rand((batch, 4), device, generator)
        keys = rand((batch, 4), device, generator)
        # clamped: the float32 rounding of ``lo + (hi - lo) * u`` must not step outside the range
        drawn = torch.stack([(lo + (hi - lo) * u[:, k]).clamp(lo, hi) for k, (lo, hi) in enumerate(self.ranges)], 1)
        identity = (torch.arange(4, device=drawn.device) != _HUE).to(torch.float32)  # 1, 1, 1, 0
        factors = torch.where(applied.view(-1, 1), drawn, identity)
        # argsort of i.i.d. uniform keys: each of the 24 orders equally likely, per image
        order = torch.where(applied.view(-1, 1), keys.argsort(dim=1), torch.arange(4, device=keys.device))
        return ColorJitterParams(applied=applied, factors=factors, order=order)

    def apply(self, x: Tensor, params: ColorJitterParams) -> Tensor:
        self.check(x)
        check_params(params, ColorJitterParams, x)
        check_channels(x, (1, 3), "ColorJitter")
        if _cpu.enabled(x):
            return jitter_per_group(x, params.factors, params.order, params.applied)
        return select(params.applied, jitter(x, params.factors, params.order), x)

    def target(self, params: ColorJitterParams) -> Tensor:
        factors = params.factors.float()
        columns = [
            (factors[:, k] - IDENTITY_FACTORS[k]) / (hi - lo) if hi > lo else torch.zeros_like(factors[:, k])
            for k, (lo, hi) in enumerate(self.ranges)
        ]
        normalised = torch.stack(columns, dim=1)
        return torch.where(params.applied.view(-1, 1), normalised, torch.zeros_like(normalised))

    def relative(self, a: ColorJitterParams, b: ColorJitterParams) -> Tensor:
        check_views(a, b)
        return self.target(a) - self.target(b)

    def __repr__(self) -> str:
        return (
            f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, saturation={self.saturation}, "
            f"hue={self.hue}, p={self.p})"
        )
