"""Random resized crop: a box of each image, resized to a fixed size, with the box of every image returned.

Parameters (:class:`CropParams`), per image, in input pixels:

- ``box`` (B, 4) float32 ``[top, left, height, width]``: integers, drawn as torchvision's
  ``RandomResizedCrop.get_params`` draws them (area fraction uniform in ``scale``, log aspect ratio uniform in
  ``log(ratio)``, sides rounded half to even, up to 10 tries, then the central crop of the closest allowed ratio, at
  least one pixel a side); the box always lies inside the image;
- ``input_size`` (B, 2) float32 ``[H, W]``, the size of the image the box was drawn in;
- ``scale`` = ``height * width / (H * W)`` and ``log_ratio`` = ``log(width / height)`` (properties);
- ``applied``: True (a row with ``applied`` False is the whole image resized).

Targets follow AugSelf (Lee et al., NeurIPS 2021; ``hankook/AugSelf``, ``transforms.py``: ``RandomResizedCrop``
records ``[i/H, j/W, h/H, w/W]`` and ``extract_diff`` turns two of them into ``[centre_1 - centre_2, size_1 -
size_2]``): ``target`` is ``[centre_y, centre_x, height, width]`` as fractions of the input's
sides, (B, 4) in [0, 1]; :meth:`RandomResizedCrop.relative` is ``target(a) - target(b)``, with the horizontal centres
mirrored where the first view is flipped (``flipped``), as ``extract_diff`` does.

The resize is :func:`essl_aug.functional.resized_crop`: torchvision's bilinear ``resized_crop`` (``antialias=True``:
PyTorch's antialiased filter where the box is shrunk), or its antialiased bicubic one (``interpolation="bicubic"``,
the filter of DINO's crops), as batched matrix products, within a few units of 1e-7 of torchvision for float32 (1e-5
for bicubic) and within 1 for uint8 (2 for bicubic, whose uint8 first pass is rounded and clamped as torchvision's
and Pillow's are).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from essl_aug import _random
from essl_aug import functional as EF
from essl_aug._validation import check_flag, number_or_pair
from essl_aug.transforms.base import LabelParams, Params, TargetSpec, Transformation, batch_shape

__all__ = ["CropParams", "RandomResizedCrop"]

#: torchvision's number of tries before the central-crop fallback.
TRIES = 10
#: The resize filters (torchvision's ``InterpolationMode`` values).
INTERPOLATIONS = ("bilinear", "bicubic")


@dataclass(frozen=True)
class CropParams(Params):
    """``box`` (B, 4) ``[top, left, height, width]`` and ``input_size`` (B, 2) ``[H, W]``, float32, input pixels."""

    box: Tensor
    input_size: Tensor

    @property
    def scale(self) -> Tensor:
        """The box's area as a fraction of the image's, (B,) float32."""
        return self.box[:, 2] * self.box[:, 3] / (self.input_size[:, 0] * self.input_size[:, 1])

    @property
    def log_ratio(self) -> Tensor:
        """The box's log aspect ratio, ``log(width / height)``, (B,) float32."""
        return torch.log(self.box[:, 3] / self.box[:, 2])


def _pair(value: Sequence[float], name: str) -> tuple[float, float]:
    """``(low, high)`` from a pair with ``0 < low <= high`` (finite)."""
    pair = number_or_pair(value, name, "(0.08, 1.0)")
    if isinstance(pair, float) or not pair[0] > 0:
        raise ValueError(
            f"`{name}` must be a pair (min, max) with 0 < min <= max, e.g. {name}=(0.08, 1.0), got {value!r}."
        )
    return pair


def _size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    """The output size ``(height, width)`` from an int, a pair of positive ints, or None (the input's size)."""
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) else tuple(size) if isinstance(size, Sequence) else None
    if pair is None or len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) for s in pair):
        raise ValueError(f"`size` must be an int, a pair of ints (height, width) or None, got {size!r}.")
    if min(pair) < 1:
        raise ValueError(f"`size` must be positive (the output height and width), got {size!r}.")
    return pair[0], pair[1]


class RandomResizedCrop(Transformation[CropParams]):
    """Crop a random box of each image and resize it to ``size`` (bilinear), recording every box.

    Args:
        size: the output ``(height, width)``, one int for a square, or None for the input's size (a random zoom).
        scale: the range of the box's area as a fraction of the image's, ``0 < min <= max``.
        ratio: the range of the box's aspect ratio ``width / height``, ``0 < min <= max``; drawn log-uniformly.
        antialias: PyTorch's antialiased bilinear filter where the box is shrunk (torchvision's default), or plain
            bilinear interpolation.
        interpolation: ``"bilinear"`` (torchvision's default) or ``"bicubic"`` (DINO's and solo-learn's crops;
            with ``antialias`` only, as Pillow resizes).

    Example:
        >>> crop = RandomResizedCrop((6, 4), scale=(0.5, 1.0))
        >>> views, params = crop(torch.rand(5, 3, 10, 10), torch.Generator().manual_seed(1))
        >>> views.shape, params.box.shape, bool(((params.scale >= 0.4) & (params.scale <= 1.0)).all())
        (torch.Size([5, 3, 6, 4]), torch.Size([5, 4]), True)
        >>> crop.relative(params, params).abs().max().item()  # one view against itself
        0.0
    """

    name = "resized_crop"
    params_type = CropParams

    def __init__(
        self,
        size: int | tuple[int, int] | None,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        antialias: bool = True,
        interpolation: str = "bilinear",
    ) -> None:
        super().__init__(p=1.0)
        self.size = _size(size)
        self.scale = _pair(scale, "scale")
        self.ratio = _pair(ratio, "ratio")
        self.antialias = check_flag(antialias, "antialias")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"`interpolation` must be one of {INTERPOLATIONS}, got {interpolation!r}.")
        if interpolation == "bicubic" and not self.antialias:
            raise ValueError(
                "`interpolation='bicubic'` is the antialiased bicubic filter (Pillow's, torchvision's default): "
                "keep `antialias=True`, or use `interpolation='bilinear'` without antialiasing."
            )
        self.interpolation = interpolation

    @property
    def target_spec(self) -> TargetSpec:
        return TargetSpec("regression", 4, ("center_y", "center_x", "height", "width"), ranges=((0.0, 1.0),) * 4)

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int, int, int]:
        b, c, h, w = batch_shape(shape)
        return (b, c, *self.size) if self.size is not None else (b, c, h, w)

    def _fallback(self, height: int, width: int) -> tuple[int, int]:
        """torchvision's central-crop fallback: the whole image, cut to the closest allowed aspect ratio."""
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            return max(1, round(width / self.ratio[0])), width
        if in_ratio > self.ratio[1]:
            return height, max(1, round(height * self.ratio[1]))
        return height, width

    def _sample(
        self, shape: tuple[int, int, int, int], device: torch.device, generator: torch.Generator | None
    ) -> CropParams:
        """One box per image as torchvision's ``get_params`` (10 tries, then the central crop), vectorised."""
        batch, _, height, width = shape
        tries = _random.rand((batch, TRIES, 2), device, generator)
        position = _random.rand((batch, 2), device, generator)
        low, high = math.log(self.ratio[0]), math.log(self.ratio[1])
        area = height * width * (self.scale[0] + (self.scale[1] - self.scale[0]) * tries[..., 0])
        aspect = torch.exp(low + (high - low) * tries[..., 1])
        w = torch.round(torch.sqrt(area * aspect))  # round half to even, as Python's round
        h = torch.round(torch.sqrt(area / aspect))
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = torch.argmax(fits.to(torch.float32), dim=1, keepdim=True)  # the first try that fits
        found = fits.any(dim=1)
        fallback_h, fallback_w = self._fallback(height, width)
        h = torch.where(found, h.gather(1, first).squeeze(1), float(fallback_h))
        w = torch.where(found, w.gather(1, first).squeeze(1), float(fallback_w))
        # torch.randint(0, n) as floor(u * n), clamped against rounding of u * n up to n.
        top = torch.minimum(torch.floor(position[:, 0] * (height - h + 1)), height - h)
        left = torch.minimum(torch.floor(position[:, 1] * (width - w + 1)), width - w)
        top = torch.where(found, top, float((height - fallback_h) // 2))
        left = torch.where(found, left, float((width - fallback_w) // 2))
        box = torch.stack([top, left, h, w], dim=1)
        input_size = torch.stack([torch.full_like(h, height), torch.full_like(w, width)], dim=1)
        return CropParams(applied=torch.ones_like(found), box=box, input_size=input_size)

    def check_params(self, params: Params, x: Tensor, name: str = "params") -> None:
        super().check_params(params, x, name)
        assert isinstance(params, CropParams)
        size, (height, width) = params.input_size, x.shape[-2:]
        same = ((size[:, 0] == height) & (size[:, 1] == width)).all()
        if size.device.type == "cpu" and not torch.compiler.is_compiling():
            if size.numel() and not bool(same):
                drawn = "x".join(str(int(v)) for v in size[0])
                raise ValueError(
                    f"`{name}` was drawn for images of {drawn} (H x W) pixels, `x` has {height}x{width}; draw them "
                    "with `sample(x.shape, x.device)`."
                )
        else:  # an asynchronous assertion: never a host synchronisation
            torch._assert_async(same, f"`{name}` was drawn for images of another size.")
        top, left, h, w = params.box.unbind(dim=1)
        inside = ((top >= 0) & (left >= 0) & (h >= 1) & (w >= 1) & (top + h <= height) & (left + w <= width)).all()
        self.require(
            inside,
            f"`{name}.box` must lie inside the {height}x{width} images (top, left >= 0; height, width >= 1; top + "
            "height <= H; left + width <= W); draw it with `sample(x.shape, x.device)`.",
        )

    def _apply(self, x: Tensor, params: CropParams) -> Tensor:
        height, width = x.shape[-2:]
        box = params.box
        full = torch.cat([box.new_zeros(2), box.new_full((1,), height), box.new_full((1,), width)])  # no host copy
        box = torch.where(params.applied[:, None], box, full)
        return EF.resized_crop(x, box, self.size or (height, width), self.antialias, self.interpolation)

    def _target(self, params: CropParams) -> Tensor:
        """(B, 4) float32 ``[centre_y, centre_x, height, width]`` of the box, as fractions of the input's sides."""
        size = params.input_size.repeat(1, 2)
        corner, sides = params.box[:, :2], params.box[:, 2:]
        return (torch.cat([corner + sides / 2, sides], dim=1) / size).to(torch.float32)

    def relative(self, a: CropParams, b: CropParams, *, flipped: Tensor | LabelParams | None = None) -> Tensor:
        """AugSelf's crop difference ``target(a) - target(b)``, (B, 4) float32 in [-1, 1].

        Args:
            a, b: the two views' boxes, of the same images.
            flipped: optional (B,) bool (or the flip's parameters) of the first view: where True, both views'
                ``centre_x`` become ``1 - centre_x`` before the difference, as AugSelf's ``extract_diff`` does.
        """
        self._check_pair(a, b)
        ta, tb = self.target(a), self.target(b)
        if flipped is not None:
            mask = flipped.applied if isinstance(flipped, Params) else flipped
            if not isinstance(mask, Tensor) or mask.shape != (a.batch,) or mask.dtype != torch.bool:
                raise ValueError(f"`flipped` must be a ({a.batch},) bool tensor or the first view's flip parameters.")
            ta, tb = _mirror_x(ta, mask), _mirror_x(tb, mask)
        return ta - tb

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(size={self.size}, scale={self.scale}, ratio={self.ratio}, "
            f"antialias={self.antialias}, interpolation={self.interpolation!r})"
        )


def _mirror_x(target: Tensor, mask: Tensor) -> Tensor:
    """``target`` (B, 4) with ``centre_x`` replaced by ``1 - centre_x`` where ``mask`` (B,) is True."""
    cx = target[:, 1:2]
    return torch.cat([target[:, :1], torch.where(mask[:, None], 1 - cx, cx), target[:, 2:]], dim=1)
