"""Random resized crop: a box of the image, resized to a fixed output size, with the box of every image returned.

Parameters (:class:`CropParams`), per image, in input pixels:

- ``box`` (B, 4) float32 ``[top, left, height, width]``: integers, drawn as torchvision's
  ``RandomResizedCrop.get_params`` draws them (area fraction uniform in ``scale``, log aspect ratio ``log(w / h)``
  uniform in ``log(ratio)``, sides rounded half to even, up to 10 tries, then the central crop of the closest
  allowed ratio, at least one pixel a side); the box always lies inside the image;
- ``input_size`` (B, 2) float32 ``[H, W]``, the size of the image the box was drawn in;
- ``scale`` = ``height * width / (H * W)`` and ``log_ratio`` = ``log(width / height)`` (properties);
- ``applied``: always True (every view is cropped).

Normalisation, following AugSelf (Lee et al., NeurIPS 2021; ``hankook/AugSelf``, ``transforms.py``:
``RandomResizedCrop.forward`` records ``[i/H, j/W, h/H, w/W]``, and ``extract_diff`` turns two of them into
``[centre_1 - centre_2, size_1 - size_2]``):

- :meth:`RandomResizedCrop.target`: (B, 4) float32 ``[centre_y, centre_x, height, width]`` of the box as fractions of
  the input's height and width (``centre_y = (top + height / 2) / H``, ...), each in [0, 1];
- :meth:`RandomResizedCrop.relative`: ``target(a) - target(b)``, (B, 4) float32 in [-1, 1], AugSelf's ``diff['crop']``;
  with ``flipped`` (the first view's flip), the horizontal centres of both views are mirrored (``1 - centre_x``)
  where the first view is flipped, as ``extract_diff`` does.

The resize is torchvision's bilinear ``resized_crop`` (``antialias=True``: PyTorch's antialiased bilinear filter
when the box is larger than the output, plain bilinear otherwise; ``align_corners=False``) in one of two forms,
chosen once per call as the discrete ops choose theirs (:mod:`essl_aug._cpu`): eager CPU calls without autograd
resize image by image with ``F.interpolate``, torchvision's own kernel (:func:`resized_crops_per_image`); on a
GPU, under autograd or ``torch.compile``, one batched pass over boxes of different sizes (:func:`resized_crops`,
:func:`resample_weights`).

Example:
    >>> from essl_aug.augment.crop import RandomResizedCrop
    >>> crop = RandomResizedCrop(4)
    >>> x = torch.rand(2, 3, 8, 8)
    >>> params = crop.sample(x.shape, generator=torch.Generator().manual_seed(0))
    >>> crop.apply(x, params).shape, params.box.shape, crop.target(params).shape
    (torch.Size([2, 3, 4, 4]), torch.Size([2, 4]), torch.Size([2, 4]))
    >>> crop.relative(params, params).abs().max().item()  # one view against itself
    0.0
"""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from essl_aug import _cpu
from essl_aug.augment.base import Augmentation, Params, TargetSpec, batch_shape, check_params, check_views, rand, select
from essl_aug.augment.flip import FlipParams

#: torchvision's number of tries before the central-crop fallback.
TRIES = 10


@dataclass(frozen=True)
class CropParams(Params):
    """Per-image crop boxes: ``box`` (B, 4) ``[top, left, height, width]`` and ``input_size`` (B, 2) ``[H, W]``,
    float32, in input pixels (see the module docstring)."""

    box: Tensor
    input_size: Tensor

    @property
    def scale(self) -> Tensor:
        """The box's area as a fraction of the image's, ``height * width / (H * W)``, (B,) float32."""
        return self.box[:, 2] * self.box[:, 3] / (self.input_size[:, 0] * self.input_size[:, 1])

    @property
    def log_ratio(self) -> Tensor:
        """The box's log aspect ratio, ``log(width / height)``, (B,) float32."""
        return torch.log(self.box[:, 3] / self.box[:, 2])


def _pair(value: float | Sequence[float], name: str, positive: bool) -> tuple[float, float]:
    """``(low, high)`` from a 2-sequence with ``0 < low <= high`` (or ``0 <= low`` unless ``positive``)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"`{name}` must be a pair (min, max), e.g. {name}=(0.08, 1.0), got {value!r}.")
    low, high = float(value[0]), float(value[1])
    if not (math.isfinite(low) and math.isfinite(high)) or low > high or low < 0 or (positive and low == 0):
        bound = "0 < min" if positive else "0 <= min"
        raise ValueError(f"`{name}` must satisfy {bound} <= max (finite), got {value!r}.")
    if high == 0:
        raise ValueError(f"`{name}` must have max > 0, got {value!r}.")
    return low, high


def _size(size: int | Sequence[int]) -> tuple[int, int]:
    """The output size ``(height, width)`` from an int or a pair of positive ints."""
    pair = (size, size) if isinstance(size, int) else tuple(size) if isinstance(size, Sequence) else None
    if pair is None or len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) for s in pair):
        raise ValueError(f"`size` must be an int or a pair of ints (height, width), got {size!r}.")
    if min(pair) < 1:
        raise ValueError(f"`size` must be positive (the output height and width), got {size!r}.")
    return pair[0], pair[1]


def resample_weights(start: Tensor, length: Tensor, in_size: int, out_size: int, antialias: bool) -> Tensor:
    """(B, out_size, in_size) weights that resize the pixels ``[start, start + length)`` of one axis to ``out_size``.

    Row ``i`` of image ``b`` holds the weight of every input pixel in output pixel ``i``: PyTorch's bilinear
    interpolation with ``align_corners=False`` (the weights of ``F.interpolate(..., mode="bilinear")``), and with
    ``antialias`` its antialiased filter (the triangle stretched by the scale when shrinking, renormalised at the
    borders; ``_compute_indices_min_size_weights_aa`` in ATen's ``UpSampleKernel.cpp``). Pixels outside the
    box weigh 0, so a crop-then-resize of boxes of different sizes is two batched matrix products
    (``W_y @ x @ W_x^T``), one per axis. Computed in the dtype of ``start`` (float32 as PyTorch's float kernel).

    ``F.interpolate`` takes one box per call (one output size for the whole batch) and ``grid_sample`` has no
    antialiased mode, hence this hand-written form of the same weights for the batched form. (A gather of the few
    taps per output pixel does less arithmetic but runs slower than the two dense batched matrix products; eager CPU
    calls take :func:`resized_crops_per_image` instead.)

    Example:
        >>> w = resample_weights(torch.tensor([2.0]), torch.tensor([4.0]), 8, 2, antialias=True)
        >>> w[0]
        tensor([[0.0000, 0.0000, 0.4286, 0.4286, 0.1429, 0.0000, 0.0000, 0.0000],
                [0.0000, 0.0000, 0.0000, 0.1429, 0.4286, 0.4286, 0.0000, 0.0000]])
    """
    dtype, device = start.dtype, start.device
    i = torch.arange(out_size, dtype=dtype, device=device).view(1, -1, 1)
    local = torch.arange(in_size, dtype=dtype, device=device).view(1, 1, -1) - start.view(-1, 1, 1)
    length = length.view(-1, 1, 1)
    scale = length / out_size
    if antialias:
        # The bilinear filter has radius 1, stretched by the scale when shrinking (support = max(scale, 1)).
        center = scale * (i + 0.5)
        support = torch.clamp(scale, min=1.0)
        xmin = torch.clamp(torch.trunc(center - support + 0.5), min=0.0)
        xmax = torch.minimum(torch.trunc(center + support + 0.5), length)
        w = torch.clamp(1.0 - ((local - center + 0.5) / support).abs(), min=0.0)
        w = torch.where((local >= xmin) & (local < xmax), w, 0.0)
        total = w.sum(dim=-1, keepdim=True)
        return w / torch.where(total == 0, 1.0, total)
    # Plain bilinear: the source coordinate clamped to the box, shared between its two nearest pixels.
    src = torch.minimum(torch.clamp(scale * (i + 0.5) - 0.5, min=0.0), length - 1)
    w = torch.clamp(1.0 - (local - src).abs(), min=0.0)
    return torch.where((local >= 0) & (local < length), w, 0.0)


def resized_crops(x: Tensor, box: Tensor, applied: Tensor, size: tuple[int, int], antialias: bool) -> Tensor:
    """The batched form of :meth:`RandomResizedCrop.apply` (GPU, autograd, ``torch.compile``): every image's box
    resized to ``size`` by two batched matrix products with :func:`resample_weights`, no host synchronisation.

    Computed in float32 (float64 in float64), then rounded back (uint8: half to even, clamped to [0, 255]). A row with
    ``applied`` False is the whole image resized (the image itself, bit for bit, when ``size`` is its size).
    """
    height, width = x.shape[-2:]
    compute = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    zero = box.new_zeros(2)
    full = torch.cat([zero, box.new_full((1,), height), box.new_full((1,), width)])
    box = torch.where(applied[:, None], box, full).to(compute)
    out_h, out_w = size
    wy = resample_weights(box[:, 0], box[:, 2], height, out_h, antialias)
    wx = resample_weights(box[:, 1], box[:, 3], width, out_w, antialias)
    # Width first, then height, as ATen's separable kernel.
    y = torch.matmul(wy.unsqueeze(1), torch.matmul(x.to(compute), wx.transpose(1, 2).unsqueeze(1)))
    y = y.round().clamp(0, 255).to(x.dtype) if x.dtype == torch.uint8 else y.to(x.dtype)
    return select(applied, y, x) if (out_h, out_w) == (height, width) else y


def native_uint8_resize() -> bool:
    """True where torchvision resizes uint8 images with PyTorch's native uint8 bilinear kernel on the CPU (CPUs
    with AVX2 or AVX-512, and ARM; ``_do_native_uint8_resize_on_cpu``); elsewhere it resizes them in float32 and
    rounds."""
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") or platform.machine() in ("aarch64", "arm64")


def resize_image(patch: Tensor, size: tuple[int, int], antialias: bool) -> Tensor:
    """torchvision's bilinear ``resize`` of ``patch`` (1, C, h, w) to ``size``: ``F.interpolate``, the kernel it calls.

    As torchvision: a patch of the output size is returned as is; float16 and bfloat16 are resized in float32;
    uint8 with PyTorch's native uint8 kernel where torchvision uses it (:func:`native_uint8_resize`), else in
    float32 and rounded. Two cases of PyTorch's CPU kernels are routed around: antialiased to an output width of 1
    (and a height other than 1) the kernel disagrees with PIL's filter, which it reproduces elsewhere, so the
    transposed patch is resized to a height of 1 instead; to a 1 x 1 uint8 output the native kernel can fail an
    internal assertion, so it takes the float32 path there.
    """
    if tuple(patch.shape[-2:]) == size:
        return patch
    out_h, out_w = size
    if antialias and out_w == 1 and out_h != 1:
        return resize_image(patch.transpose(-1, -2), (1, out_h), antialias).transpose(-1, -2)
    native = patch.dtype in (torch.float32, torch.float64) or (
        patch.dtype == torch.uint8 and size != (1, 1) and native_uint8_resize()
    )
    work = patch if native else patch.to(torch.float32)
    y = F.interpolate(work, size=size, mode="bilinear", align_corners=False, antialias=antialias)
    if native:
        return y
    return y.round_().to(patch.dtype) if patch.dtype == torch.uint8 else y.to(patch.dtype)


def resized_crops_per_image(x: Tensor, box: Tensor, applied: Tensor, size: tuple[int, int], antialias: bool) -> Tensor:
    """The eager CPU form of :meth:`RandomResizedCrop.apply`: torchvision's ``resized_crop`` image by image.

    A crop is a view and :func:`resize_image` is the kernel torchvision calls, so the result is torchvision's bit
    for bit, float and uint8 (with its native uint8 kernel where it uses it). The batched form's dense
    (B, out, in) weights and matrix products suit a GPU; on a CPU one ``F.interpolate`` per image does far less
    arithmetic. Reads the boxes on the host (``tolist``), so eager CPU tensors only (:func:`essl_aug._cpu.enabled`).
    A row with ``applied`` False is the whole image resized.
    """
    height, width = x.shape[-2:]
    out = x.new_empty((x.shape[0], x.shape[1], *size))
    boxes = box.to(torch.int64).tolist()
    for i, (row, on) in enumerate(zip(boxes, applied.tolist(), strict=True)):
        top, left, h, w = row if on else (0, 0, height, width)
        out[i : i + 1] = resize_image(x[i : i + 1, :, top : top + h, left : left + w], size, antialias)
    return out


def _check_input_size(params: CropParams, height: int, width: int) -> None:
    """Raise unless the boxes were drawn for images of ``height`` x ``width``: on the host for eager CPU tensors, an
    asynchronous assertion elsewhere (never a host synchronisation), as the label checks do."""
    size = params.input_size
    if size.device.type == "cpu" and not torch.compiler.is_compiling():
        if size.numel() and not bool(((size[:, 0] == height) & (size[:, 1] == width)).all()):
            drawn = "x".join(str(int(v)) for v in size[0])
            raise ValueError(
                f"`params` was drawn for images of {drawn} (H x W) pixels, `x` has {height}x{width}; draw them with "
                "`sample(x.shape, x.device)`."
            )
    else:
        torch._assert_async(
            ((size[:, 0] == height) & (size[:, 1] == width)).all(), "`params` was drawn for images of another size."
        )


def _mirror_x(target: Tensor, mask: Tensor) -> Tensor:
    """``target`` (B, 4) with ``centre_x`` replaced by ``1 - centre_x`` where ``mask`` (B,) is True."""
    cx = target[:, 1:2]
    return torch.cat([target[:, :1], torch.where(mask[:, None], 1 - cx, cx), target[:, 2:]], dim=1)


class RandomResizedCrop(Augmentation[CropParams]):
    """Crop a random box of each image and resize it to ``size`` (bilinear), recording every box.

    Args:
        size: the output ``(height, width)``, or one int for a square.
        scale: the range of the box's area as a fraction of the image's, ``0 < min <= max``.
        ratio: the range of the box's aspect ratio ``width / height``, ``0 < min <= max``; drawn log-uniformly.
        antialias: resize with PyTorch's antialiased bilinear filter where the box is shrunk (torchvision's
            default), or with plain bilinear interpolation.

    Parameters, :meth:`target` and :meth:`relative` are described in the module docstring (AugSelf's
    normalisation). Float input is resized in its dtype (float16 and bfloat16 in float32, then rounded back).
    Eager CPU calls without autograd (:func:`resized_crops_per_image`) give torchvision's ``resized_crop`` bit for
    bit, float and uint8 (uint8 with PyTorch's native CPU uint8 kernel where torchvision uses it). The batched form
    (GPU, autograd, ``torch.compile``: :func:`resized_crops`) resizes uint8 in float32, rounded half to even and
    clamped to [0, 255]; it agrees with torchvision's ``resized_crop`` to a few units of 1e-7 for float32 (the same
    weights summed in another order) and, for uint8, equals, ties aside, torchvision's float path (its path on GPU
    and on CPUs without AVX2) and is within 1 of its native CPU uint8 kernel (fixed-point weights, rounded to
    integers between its two passes: about 15 % of the values differ by 1). To an output width of 1 with
    ``antialias``, PyTorch's CPU kernel disagrees with PIL's filter, which it reproduces elsewhere; both forms agree
    with PIL there. Under CUDA with TF32 matrix products enabled (``torch.backends.cuda.matmul.allow_tf32``), the
    result has TF32 accuracy.

    Example:
        >>> from essl_aug.augment.crop import RandomResizedCrop
        >>> crop = RandomResizedCrop((6, 4), scale=(0.5, 1.0))
        >>> views, params = crop(torch.rand(5, 3, 10, 10), torch.Generator().manual_seed(1))
        >>> views.shape, bool(((params.scale >= 0.4) & (params.scale <= 1.0)).all())
        (torch.Size([5, 3, 6, 4]), True)
    """

    name = "resized_crop"

    def __init__(
        self,
        size: int | tuple[int, int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        antialias: bool = True,
    ) -> None:
        super().__init__(p=1.0)
        self.size = _size(size)
        self.scale = _pair(scale, "scale", positive=True)
        self.ratio = _pair(ratio, "ratio", positive=True)
        self.antialias = bool(antialias)

    @property
    def target_spec(self) -> TargetSpec:
        return TargetSpec("regression", 4, ("center_y", "center_x", "height", "width"))

    def _fallback(self, height: int, width: int) -> tuple[int, int]:
        """torchvision's central-crop fallback: the whole image, cut to the closest allowed aspect ratio.

        Each side is at least one pixel (torchvision's rounds the cut side to 0 for an image of a pixel or two).
        """
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            return max(1, round(width / self.ratio[0])), width
        if in_ratio > self.ratio[1]:
            return height, max(1, round(height * self.ratio[1]))
        return height, width

    def sample(
        self, shape: Sequence[int], device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> CropParams:
        """Draw one box per image as torchvision's ``get_params`` (10 tries, then the central crop), vectorised."""
        batch, _, height, width = batch_shape(shape)
        tries = rand((batch, TRIES, 2), device, generator)
        position = rand((batch, 2), device, generator)
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
        applied = torch.ones(batch, dtype=torch.bool, device=box.device)
        return CropParams(applied=applied, box=box, input_size=input_size)

    def apply(self, x: Tensor, params: CropParams) -> Tensor:
        """Crop ``params.box`` of each image and resize it to ``size``: ``(B, C, *size)`` images of ``x``'s dtype.

        A row with ``applied`` False is the whole image resized to ``size`` (bit-identical to the input when
        ``size`` is the input's size); :meth:`~essl_aug.augment.crop.RandomResizedCrop.sample` always sets
        ``applied`` True.
        """
        self.check(x)
        check_params(params, CropParams, x)
        height, width = x.shape[-2:]
        _check_input_size(params, height, width)
        if _cpu.enabled(x):
            return resized_crops_per_image(x, params.box, params.applied, self.size, self.antialias)
        return resized_crops(x, params.box, params.applied, self.size, self.antialias)

    def target(self, params: CropParams) -> Tensor:
        """(B, 4) float32 ``[centre_y, centre_x, height, width]`` of the box, as fractions of the input's sides."""
        size = params.input_size.repeat(1, 2)
        corner, sides = params.box[:, :2], params.box[:, 2:]
        return (torch.cat([corner + sides / 2, sides], dim=1) / size).to(torch.float32)

    def relative(self, a: CropParams, b: CropParams, *, flipped: Tensor | FlipParams | None = None) -> Tensor:
        """AugSelf's crop difference ``target(a) - target(b)``, (B, 4) float32 in [-1, 1].

        Args:
            a: the first view's boxes.
            b: the second view's boxes, of the same images.
            flipped: optional (B,) bool (or the :class:`~essl_aug.augment.flip.FlipParams`) of the first view's
                horizontal flip: where True, both views' ``centre_x`` become ``1 - centre_x`` before the
                difference, as AugSelf's ``extract_diff`` does.
        """
        check_views(a, b)
        ta, tb = self.target(a), self.target(b)
        if flipped is not None:
            mask = flipped.applied if isinstance(flipped, FlipParams) else flipped
            if mask.shape != (a.batch,) or mask.dtype != torch.bool:
                raise ValueError(
                    f"`flipped` must be a ({a.batch},) bool tensor or FlipParams of the first view, got "
                    f"{tuple(mask.shape)} {mask.dtype}."
                )
            ta, tb = _mirror_x(ta, mask), _mirror_x(tb, mask)
        return ta - tb

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(size={self.size}, scale={self.scale}, ratio={self.ratio}, "
            f"antialias={self.antialias})"
        )
