"""One function per transformation: the ops behind the classes of :mod:`essl_aug.transforms`.

Each op takes images ``x`` (B, C, H, W) and per-image parameters on ``x.device`` and returns a new tensor with the
memory format of ``x``; ``x`` is never modified. The family ops (flips, quarter turns, jigsaw, translations, the
symmetries of the square, blur levels, inversion, grayscale) take integer ``labels`` (B,) with the label convention
of the class of the same name (label 0 is always the identity, returned bit for bit), or ``labels=None`` for every
element on every image in block layout: (K*B, C, H, W), rows ``k*B .. (k+1)*B - 1`` holding element ``k``. The other
ops (crop, colour jitter, blur, solarize, rotation by an angle, periodic shift) transform every image; their classes
keep the images not applied.

These functions do not validate their arguments (a wrong shape or an out-of-range label gives a PyTorch error or a
wrong result): the classes check them once, then call these functions. Tables, kernels and coefficients derived from
the parameters are cached per image size, device and dtype, so repeated calls copy nothing from the host. Pixel moves
are exact for every dtype; inside :func:`essl_aug.fast_forms` they run as lookups that move fewer bytes (the same
bits).

Example:
    >>> from essl_aug import functional as EF
    >>> x = torch.rand(2, 3, 8, 8)
    >>> torch.equal(EF.rotate90(x, torch.tensor([0, 1]))[1], torch.rot90(x[1], 1, dims=(-2, -1)))
    True
    >>> EF.rotate90(x, None).shape  # every element for every image, in block layout
    torch.Size([8, 3, 8, 8])
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from essl_aug import _fast, _kernels
from essl_aug._cache import PlanCache
from essl_aug._fast import lookups
from essl_aug._layout import stored_like
from essl_aug._validation import check_blur_levels, check_images, check_jigsaw, check_shifts, check_steps

__all__ = [
    "GRAY_WEIGHTS",
    "PERMUTATIONS",
    "REFERENCE_KERNEL_SIZES",
    "blur_levels",
    "color_jitter",
    "d4",
    "default_sigma",
    "gaussian_blur",
    "grayscale",
    "hflip",
    "invert",
    "jigsaw",
    "periodic_roll",
    "periodic_translate",
    "resized_crop",
    "rotate",
    "rotate90",
    "solarize",
    "vflip",
]

#: Luma weights of ``torchvision.transforms.v2.functional.rgb_to_grayscale`` (ITU-R 601-2).
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)

#: The 24 permutations of 4 tiles in the lexicographic order of ``itertools.permutations(range(4))`` (the jigsaw
#: labels; index 0 is the identity).
PERMUTATIONS = _kernels.PERMUTATIONS

#: The reference E-SSL blur kernel sizes of labels 1, 2, 3 (the default of :func:`blur_levels`).
REFERENCE_KERNEL_SIZES = (5, 9, 15)

#: Tables, kernels and coefficients of the calls made through this module, keyed by parameters, size and device.
_PLANS = PlanCache(max_entries=128)


def default_sigma(kernel_size: int) -> float:
    """torchvision's sigma for ``gaussian_blur(img, kernel_size)`` without sigma: ``0.15 * k + 0.35``.

    Example:
        >>> [round(default_sigma(k), 6) for k in REFERENCE_KERNEL_SIZES]  # the reference blur levels
        [1.1, 1.7, 2.6]
    """
    return 0.15 * kernel_size + 0.35


def _each(op: Callable[[Tensor, Tensor], Tensor], x: Tensor, num_classes: int) -> Tensor:
    """Block layout by one call per element: element ``k`` on every image, for ``k`` in ``range(K)``."""
    blocks = [op(x, torch.full((x.shape[0],), k, dtype=torch.long, device=x.device)) for k in range(num_classes)]
    return torch.cat(blocks) if blocks else x[:0]


# -- pixel moves: exact for every dtype -----------------------------------------------------------------------------


def move_pixels(
    x: Tensor,
    labels: Tensor | None,
    key: Hashable,
    table: Callable[[int, int], Tensor],
    cache: PlanCache | None = None,
) -> Tensor:
    """Move the pixels of image ``i`` by row ``labels[i]`` of the (K, H*W) pixel table ``table(H, W)`` (entry
    ``[k, p]``: the flat source pixel of output pixel ``p``), or every row in block layout for ``labels=None``.

    ``key`` names the table (with the op's parameters); the table and its lookup plan are cached under it per size
    and device, in ``cache`` (an owner's :class:`~essl_aug._cache.PlanCache`) or this module's. The op behind every
    pixel-move family, and behind products of them.
    """
    h, w = x.shape[-2:]
    plans = _PLANS if cache is None else cache
    if labels is not None and h * w and _fast.active(x):
        plan = lookups.plan(plans, ("plan", key, h, w, x.device), lambda: table(h, w), w, x.device)
        return lookups.permute(x, labels, plan)
    cached = plans.get(("table", key, h, w, x.device), lambda: table(h, w).to(x.device, torch.long).contiguous())
    return _kernels.permute_pixels(x, labels, cached)


def rotate90(x: Tensor, labels: Tensor | None) -> Tensor:
    """Quarter turns: label ``k`` is ``torch.rot90(x, k, dims=(-2, -1))`` (:class:`~essl_aug.RandomRotation90`).

    Args:
        x: square images (B, C, H, W), H == W; any dtype.
        labels: (B,) integers in ``[0, 4)``: ``k`` quarter turns counter-clockwise as displayed; or None for all 4.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> rotate90(x, torch.tensor([1]))
        tensor([[[[1., 3.],
                  [0., 2.]]]])
    """
    return move_pixels(x, labels, ("rotate90",), _kernels.rotation_table)


def _flip_table(dim: int) -> Callable[[int, int], Tensor]:
    return lambda height, width: _kernels.flip_table(height, width, dim)


def vflip(x: Tensor, labels: Tensor | None) -> Tensor:
    """Upside-down flip: label 1 is ``x.flip(-2)`` (:class:`~essl_aug.RandomVerticalFlip`); any dtype.

    Example:
        >>> vflip(torch.arange(4.).view(1, 1, 2, 2), torch.tensor([1]))
        tensor([[[[2., 3.],
                  [0., 1.]]]])
    """
    return move_pixels(x, labels, ("vflip",), _flip_table(0))


def hflip(x: Tensor, labels: Tensor | None) -> Tensor:
    """Mirror flip: label 1 is ``x.flip(-1)`` (:class:`~essl_aug.RandomHorizontalFlip`); any dtype.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> hflip(x, torch.tensor([1]))
        tensor([[[[1., 0.],
                  [3., 2.]]]])
        >>> torch.equal(hflip(x, None), torch.cat([x, x.flip(-1)]))
        True
    """
    return move_pixels(x, labels, ("hflip",), _flip_table(1))


def jigsaw(
    x: Tensor, labels: Tensor | None, permutations: Sequence[int] | None = None, tile_order: str = "row-major"
) -> Tensor:
    """Shuffle the four quadrants of each image (:class:`~essl_aug.RandomJigsaw`, its label convention): label ``p``
    is the tile permutation ``PERMUTATIONS[permutations[p]]`` (all 24 when None) in ``tile_order``; even H and W.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> jigsaw(x, torch.tensor([23]))[0, 0]  # tiles reversed: (3, 2, 1, 0)
        tensor([[10., 11.,  8.,  9.],
                [14., 15., 12., 13.],
                [ 2.,  3.,  0.,  1.],
                [ 6.,  7.,  4.,  5.]])
    """
    chosen = check_jigsaw(permutations, tile_order)

    def table(height: int, width: int) -> Tensor:
        return _kernels.jigsaw_table(_kernels.jigsaw_permutations(chosen, tile_order), height, width)

    return move_pixels(x, labels, ("jigsaw", chosen, tile_order), table)


def periodic_translate(x: Tensor, labels: Tensor | None, steps: int | tuple[int, int] = 2) -> Tensor:
    """Cyclic shifts by whole fractions of the cell (:class:`~essl_aug.RandomPeriodicTranslation`).

    With ``steps = (sh, sw)``, label ``l = a * sw + b`` is ``torch.roll(x, (a * H // sh, b * W // sw), dims=(-2,
    -1))``. ``steps=2`` is the reference photonics task: rolls (0, 0), (0, W/2), (H/2, 0), (H/2, W/2).

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> torch.equal(periodic_translate(x, torch.tensor([3])), torch.roll(x, (2, 2), dims=(-2, -1)))
        True
    """
    pair = check_steps(steps)
    return move_pixels(x, labels, ("translate", pair), lambda h, w: _kernels.translation_table(pair, h, w))


def d4(x: Tensor, labels: Tensor | None) -> Tensor:
    """The 8 symmetries of the square (:class:`~essl_aug.RandomD4`): label ``l = 2 * k + f`` is
    ``torch.rot90(x, k, dims=(-2, -1))`` followed by ``.flip(-2)`` when ``f == 1``; square images, any dtype.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> torch.equal(d4(x, torch.tensor([5])), torch.rot90(x, 2, dims=(-2, -1)).flip(-2))
        True
    """
    return move_pixels(x, labels, ("d4",), _kernels.d4_table)


def periodic_roll(x: Tensor, shifts: Tensor) -> Tensor:
    """Roll each image by its own whole-pixel shift, with wrap-around (a batched ``torch.roll``;
    :class:`~essl_aug.RandomPeriodicShift`). Checks its arguments.

    Args:
        x: images (B, C, H, W).
        shifts: (B, 2) integer tensor on ``x.device``: rows moved down and columns moved right per image.

    Example:
        >>> x = torch.arange(8.).view(2, 1, 2, 2)
        >>> torch.equal(periodic_roll(x, torch.tensor([[1, 0], [0, 1]]))[1], torch.roll(x[1], (0, 1), (-2, -1)))
        True
    """
    check_images(x)
    check_shifts(shifts, x)
    return _kernels.roll_images(x, shifts)


# -- values: blur levels, inversion, grayscale -----------------------------------------------------------------------


def blur_levels(
    x: Tensor,
    labels: Tensor | None,
    kernel_sizes: Sequence[int] = REFERENCE_KERNEL_SIZES,
    sigmas: Sequence[float] | None = None,
) -> Tensor:
    """Gaussian blur levels (:class:`~essl_aug.RandomBlurLevels`, its label convention): label ``l >= 1`` is
    torchvision's ``gaussian_blur`` of size ``kernel_sizes[l - 1]`` and sigma ``sigmas[l - 1]`` (its default when
    None), reflect borders; label 0 is the image bit for bit. One separable convolution, each image with its own
    kernel row (smaller kernels zero-padded). Float images larger than the largest kernel's radius.

    Example:
        >>> from torchvision.transforms.v2.functional import gaussian_blur as tv_blur
        >>> x = torch.rand(2, 3, 16, 16)
        >>> y = blur_levels(x, torch.tensor([0, 2]))
        >>> torch.equal(y[0], x[0]), bool((y[1] - tv_blur(x[1], [9, 9])).abs().max() < 1e-6)
        (True, True)
    """
    sizes, chosen = check_blur_levels(kernel_sizes, sigmas, default_sigma)
    key = ("blur", sizes, chosen, x.device, x.dtype)
    kernels = _PLANS.get(key, lambda: _kernels.blur_kernel_table(sizes, chosen).to(device=x.device, dtype=x.dtype))

    def blur(x: Tensor, labels: Tensor) -> Tensor:
        return keep_label0(labels, _kernels.blur_images(x, kernels.index_select(0, labels)), x)

    return _each(blur, x, kernels.shape[0]) if labels is None else blur(x, labels)


def keep_label0(labels: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """``new`` where ``labels != 0``, ``old`` bit for bit where ``labels == 0``."""
    return torch.where(labels.view(-1, 1, 1, 1) != 0, new, old)


def invert(x: Tensor, labels: Tensor | None, offset: float | Sequence[float] = 1.0) -> Tensor:
    """Colour inversion (:class:`~essl_aug.RandomInvert`): label 1 is ``offset - x``, label 0 keeps ``x``.

    ``offset`` is one value or one per channel: ``1`` in pixel space, as ``torchvision``'s ``invert``;
    ``(1 - 2 * mean) / std`` per channel in normalised space (the normalised image of ``1 - pixels``). uint8 images
    are inverted as ``255 - x`` whatever the offset. Label 0 is ``x`` bit for bit.

    Example:
        >>> invert(torch.tensor([[[[0.25]]], [[[0.25]]]]), torch.tensor([0, 1])).flatten()
        tensor([0.2500, 0.7500])
        >>> invert(torch.tensor([[[[3]]]], dtype=torch.uint8), torch.tensor([1])).flatten()
        tensor([252], dtype=torch.uint8)
    """
    if x.dtype == torch.uint8:  # 255 - x by label in one pass: x ^ (255 * label)
        if labels is None:
            return stored_like(torch.cat([x, x.bitwise_not()]), x)
        return stored_like(torch.bitwise_xor(x, labels.view(-1, 1, 1, 1).to(torch.uint8).mul_(255)), x)
    offsets = (float(offset),) if isinstance(offset, (int, float)) else tuple(float(o) for o in offset)
    key = ("invert", x.dtype, x.device, *(o.hex() for o in offsets))  # hex: -0.0 is not 0.0
    shift = _PLANS.get(key, lambda: torch.tensor(offsets, dtype=x.dtype, device=x.device).view(1, -1, 1, 1))
    inverted = shift - x
    if labels is None:
        return stored_like(torch.cat([x, inverted]), x)
    return stored_like(keep_label0(labels, inverted, x), x)


def _luma(x: Tensor) -> Tensor:
    """(B, 1, H, W): torchvision's luma of the RGB images ``x``, in its op order (float32 for uint8 images)."""
    r, g, b = x.unbind(dim=-3)
    return r.mul(GRAY_WEIGHTS[0]).add_(g, alpha=GRAY_WEIGHTS[1]).add_(b, alpha=GRAY_WEIGHTS[2]).unsqueeze(-3)


def grayscale(x: Tensor, labels: Tensor | None) -> Tensor:
    """3-channel grayscale where ``labels[i] == 1`` (:class:`~essl_aug.RandomGrayscale`): bit for bit
    ``torchvision.transforms.v2.functional.rgb_to_grayscale(x, num_output_channels=3)`` on RGB images; a 1-channel
    image is kept.

    Example:
        >>> from torchvision.transforms.v2.functional import rgb_to_grayscale
        >>> x = torch.rand(2, 3, 4, 4)
        >>> y = grayscale(x, torch.tensor([0, 1]))
        >>> torch.equal(y[0], x[0]), torch.equal(y[1], rgb_to_grayscale(x[1], num_output_channels=3))
        (True, True)
    """
    gray = _luma(x).to(x.dtype).expand_as(x) if x.shape[-3] == 3 else x
    if labels is None:
        return stored_like(torch.cat([x, gray]), x)
    return stored_like(keep_label0(labels, gray, x), x)


# -- the SSL views' augmentations -------------------------------------------------------------------------------------


def gaussian_blur(x: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Blur image ``i`` with ``torchvision``'s ``gaussian_blur(img, [k, k], [sigma[i], sigma[i]])``, reflect borders
    (:class:`~essl_aug.RandomGaussianBlur`); two 1-D passes, which differ from torchvision's 2-D pass by float
    rounding. uint8 is blurred in float32 and rounded; a sigma of 0 keeps the image.

    Example:
        >>> from torchvision.transforms.v2.functional import gaussian_blur as tv_blur
        >>> x = torch.rand(1, 3, 16, 16)
        >>> y = gaussian_blur(x, torch.tensor([1.5]), 5)
        >>> bool((y[0] - tv_blur(x[0], [5, 5], [1.5, 1.5])).abs().max() < 1e-6)
        True
    """
    fp = x.is_floating_point()
    work = x.dtype if fp else torch.float32
    y = _kernels.blur_images(x if fp else x.to(work), _kernels.gaussian_kernels(sigma, kernel_size, work))
    return y if fp else y.round().to(x.dtype)


def solarize(x: Tensor, threshold: float) -> Tensor:
    """``torchvision``'s ``solarize``: pixels at or above ``threshold`` (a fraction of the range: ``threshold * 255``
    for uint8) inverted (:class:`~essl_aug.RandomSolarize`).

    Example:
        >>> solarize(torch.tensor([[[[0.25, 0.75]]]]), 0.5).flatten().tolist()
        [0.25, 0.25]
    """
    if x.dtype == torch.uint8:
        return torch.where(x >= threshold * 255, x.bitwise_not(), x)
    return torch.where(x >= threshold, 1.0 - x, x)


def rotate(x: Tensor, angle: Tensor, fill: float = 0.0) -> Tensor:
    """Rotate image ``i`` by ``angle[i]`` degrees counter-clockwise about its centre, bilinear, same size
    (:class:`~essl_aug.RandomRotation`): ``torchvision``'s ``rotate(img, angle, BILINEAR, fill=fill)``.

    Each output pixel samples the input bilinearly at its centre rotated by ``-angle`` (``grid_sample``,
    ``align_corners=False``); with ``s`` the bilinear mix of the pixels inside (outside ones count 0) and ``m`` the
    same mix of an all-ones image, the output is ``m * (s - fill) + fill`` (torchvision's border rule). ``fill`` is
    a fraction of the range (``255 * fill`` for uint8). float32 and float64 are computed in their dtype, the others in
    float32 (uint8 rounded half to even); the angle's cosine and sine are rounded from float64, as torchvision's
    matrix. A multiple of a half turn, and of a quarter turn for square images, is an exact pixel move (torchvision's
    ``rot90`` fast path).

    Example:
        >>> x = torch.rand(1, 3, 8, 8)
        >>> torch.equal(rotate(x, torch.tensor([90.0])), torch.rot90(x, 1, dims=(-2, -1)))
        True
    """
    if not angle.is_floating_point():
        warnings.warn(
            "essl_aug.functional.rotate(x, labels) with integer quarter-turn labels is now "
            "essl_aug.functional.rotate90(x, labels); rotate(x, angle) takes angles in degrees.",
            DeprecationWarning,
            stacklevel=2,
        )
        return rotate90(x, angle)
    batch, _, height, width = x.shape
    compute = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    # The angle's cosine and sine in float64 where the device has it, then rounded to the compute dtype: torchvision
    # builds its matrix in float64 on the host and rounds it the same way.
    wide = torch.float64 if x.device.type != "mps" else compute
    radians = torch.deg2rad(angle.to(wide))
    cos, sin = torch.cos(radians).to(compute), torch.sin(radians).to(compute)
    zero = torch.zeros_like(cos)
    # Source = [[cos, -sin], [sin, cos]] @ output, in pixels about the centre (y down): counter-clockwise on screen.
    # torchvision's _affine_grid arithmetic (pixel-centred coordinates, rotated, then normalised by half the size).
    half_w, half_h = 0.5 * width, 0.5 * height
    rows = [torch.stack([cos / half_w, sin / half_h], -1), torch.stack([-sin / half_w, cos / half_h], -1)]
    theta = torch.stack([*rows, torch.stack([zero, zero], -1)], 1)
    xs = torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, dtype=compute, device=x.device)
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height, dtype=compute, device=x.device)
    ones = torch.ones(height, width, dtype=compute, device=x.device)
    base = torch.stack([xs.expand(height, width), ys[:, None].expand(height, width), ones], dim=-1)
    grid = torch.matmul(base.view(1, height * width, 3), theta).view(-1, height, width, 2)
    # One grid_sample for the image and its coverage (an all-ones channel), as torchvision does.
    cover = torch.ones(batch, 1, height, width, dtype=compute, device=x.device)
    sampled = F.grid_sample(
        torch.cat([x.to(compute), cover], dim=1), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    value = fill * 255.0 if x.dtype == torch.uint8 else fill
    y = sampled[:, -1:] * (sampled[:, :-1] - value) + value
    y = (y.round().clamp(0, 255) if x.dtype == torch.uint8 else y).to(x.dtype)
    # Exact multiples of a half turn (of a quarter turn for square images) are exact pixel moves, as in torchvision.
    turns = torch.remainder(angle.to(wide), 360.0)
    exact = (turns == 0) | (turns == 180)
    if height == width:
        exact = exact | (turns == 90) | (turns == 270)
        moved = rotate90(x, torch.where(exact, torch.round(turns / 90).long() % 4, 0))
    else:
        moved = torch.where((turns == 180).view(-1, 1, 1, 1), x.flip(-2, -1), x)
    return stored_like(torch.where(exact.view(-1, 1, 1, 1), moved, y), x)


def resample_weights(
    start: Tensor, length: Tensor, in_size: int, out_size: int, antialias: bool, interpolation: str = "bilinear"
) -> Tensor:
    """(B, out_size, in_size) weights that resize the pixels ``[start, start + length)`` of one axis to ``out_size``.

    Row ``i`` of image ``b`` holds the weight of every input pixel in output pixel ``i``: PyTorch's bilinear
    interpolation with ``align_corners=False`` (``F.interpolate(..., mode="bilinear")``), and with ``antialias`` its
    antialiased filter (the triangle stretched by the scale when shrinking, renormalised at the borders; ATen's
    ``_compute_indices_min_size_weights_aa``). ``interpolation="bicubic"`` (with ``antialias`` only) is PyTorch's
    antialiased bicubic filter (Keys' cubic with ``a = -0.5``, Pillow's, over twice the support, stretched and
    renormalised the same way). Pixels outside the box weigh 0, so a crop-then-resize of boxes of different sizes is
    two batched matrix products (``W_y @ x @ W_x^T``).

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
        center = scale * (i + 0.5)
        stretch = torch.clamp(scale, min=1.0)
        support = stretch * (2.0 if interpolation == "bicubic" else 1.0)
        xmin = torch.clamp(torch.trunc(center - support + 0.5), min=0.0)
        xmax = torch.minimum(torch.trunc(center + support + 0.5), length)
        distance = ((local - center + 0.5) / stretch).abs()
        w = _cubic(distance) if interpolation == "bicubic" else torch.clamp(1.0 - distance, min=0.0)
        w = torch.where((local >= xmin) & (local < xmax), w, 0.0)
        total = w.sum(dim=-1, keepdim=True)
        return w / torch.where(total == 0, 1.0, total)
    src = torch.minimum(torch.clamp(scale * (i + 0.5) - 0.5, min=0.0), length - 1)
    w = torch.clamp(1.0 - (local - src).abs(), min=0.0)
    return torch.where((local >= 0) & (local < length), w, 0.0)


def _cubic(distance: Tensor) -> Tensor:
    """Keys' cubic convolution kernel with ``a = -0.5`` at ``distance >= 0`` (ATen's antialiased bicubic filter)."""
    a = -0.5
    near = ((a + 2.0) * distance - (a + 3.0)) * distance * distance + 1.0
    far = (((distance - 5.0) * distance + 8.0) * distance - 4.0) * a
    return torch.where(distance < 1.0, near, torch.where(distance < 2.0, far, 0.0))


def _inside(start: Tensor, length: Tensor, size: int) -> Tensor:
    """(B, size) bool: the pixels ``[start, start + length)`` of one axis."""
    index = torch.arange(size, dtype=start.dtype, device=start.device)
    return (index >= start.view(-1, 1)) & (index < (start + length).view(-1, 1))


def resized_crop(
    x: Tensor, box: Tensor, size: tuple[int, int], antialias: bool = True, interpolation: str = "bilinear"
) -> Tensor:
    """Crop ``box[i] = [top, left, height, width]`` (input pixels) of image ``i`` and resize it to ``size``
    (:class:`~essl_aug.RandomResizedCrop`): ``torchvision``'s bilinear (or, with ``interpolation="bicubic"`` and
    ``antialias``, bicubic) ``resized_crop``, as two batched matrix products with ``resample_weights``, computed in
    float32 (float64 in float64; uint8 rounded half to even and clamped).
    A non-finite pixel outside the box is not seen, as with torchvision; one inside spreads along its row (and its
    column) of the output, where torchvision spreads it to the pixels whose filter covers it.

    Example:
        >>> from torchvision.transforms.v2.functional import resized_crop as tv_resized_crop
        >>> x = torch.rand(1, 3, 8, 8)
        >>> y = resized_crop(x, torch.tensor([[2.0, 1.0, 4.0, 6.0]]), (5, 5))
        >>> bool((y - tv_resized_crop(x, 2, 1, 4, 6, [5, 5], antialias=True)).abs().max() < 1e-6)
        True
    """
    if interpolation not in ("bilinear", "bicubic") or (interpolation == "bicubic" and not antialias):
        raise ValueError(
            f"`interpolation` must be 'bilinear', or 'bicubic' with `antialias=True` (Pillow's filter), got "
            f"{interpolation!r} with antialias={antialias}."
        )
    height, width = x.shape[-2:]
    compute = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    box = box.to(compute)
    wy = resample_weights(box[:, 0], box[:, 2], height, size[0], antialias, interpolation)
    wx = resample_weights(box[:, 1], box[:, 3], width, size[1], antialias, interpolation)
    source = x.to(compute)
    if x.is_floating_point():  # pixels outside the box weigh 0, but 0 x NaN is NaN: zero them (integers are finite)
        inside_rows = _inside(box[:, 0], box[:, 2], height).view(-1, 1, height, 1)
        inside_cols = _inside(box[:, 1], box[:, 3], width).view(-1, 1, 1, width)
        source = torch.where(inside_rows & inside_cols, source, 0.0)
    rows = torch.matmul(source, wx.transpose(1, 2).unsqueeze(1))  # the horizontal pass first, as ATen and Pillow
    if x.dtype == torch.uint8 and interpolation == "bicubic":  # their uint8 bicubic keeps the first pass in uint8
        rows = rows.round().clamp(0, 255)
    y = torch.matmul(wy.unsqueeze(1), rows)
    y = y.round().clamp(0, 255) if x.dtype == torch.uint8 else y
    return stored_like(y.to(x.dtype), x)


# -- colour jitter: torchvision's adjust_* per image, in each image's order --------------------------------------------

_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE = range(4)
#: ``torchvision``'s float -> uint8 scale (``to_dtype_image``): ``x * (255 + 1 - 1e-3)``, then truncation.
_TO_UINT8 = 255 + 1.0 - 1e-3
#: torchvision's (3, 6) table of ``_hsv_to_rgb`` (which of ``v, p, q, t`` each channel takes in each hue sector), one
#: row per channel packed in base 4: entry ``k`` is ``(code >> 2 * k) & 3``.
_SECTOR_CODES = tuple(
    sum(entry << (2 * k) for k, entry in enumerate(row))
    for row in ((0, 2, 1, 1, 3, 0), (3, 0, 0, 2, 1, 1), (1, 1, 3, 0, 0, 2))
)


def _rgb_to_hsv(image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """torchvision's ``_rgb_to_hsv`` of float images (..., 3, H, W) in [0, 1] as three planes ``(h, s, v)``, op for op
    but out of place (autograd); hue in [0, 1)."""
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
    h = torch.frac((hr + hg + hb) * (1.0 / 6.0) + 1.0)  # torchvision's fmod(., 1.0): the same bits
    return h, s, maxc


def _hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """torchvision's ``_hsv_to_rgb`` of the three planes, op for op (the sector table packed in integers)."""
    h6 = h * 6
    i = torch.floor(h6)
    f = h6 - i
    sector = (i - 6 * torch.floor(i / 6)).to(torch.int32)  # torchvision's i.to(int32).remainder(6), exact here
    sxf = s * f
    one_minus_s = 1.0 - s
    q = ((1.0 - sxf) * v).clamp(0.0, 1.0)
    t = ((sxf + one_minus_s) * v).clamp(0.0, 1.0)
    p = (one_minus_s * v).clamp(0.0, 1.0)
    index = torch.stack([(code >> (sector * 2)) & 3 for code in _SECTOR_CODES], dim=-3).long()
    return torch.stack((v, p, q, t), dim=-3).gather(-3, index)


def _adjust_hue(y: Tensor, hue: Tensor) -> Tensor:
    """``adjust_hue`` of RGB ``y`` by ``hue`` (B,): computed in float32 as torchvision does, back to ``y.dtype``."""
    z = y.to(torch.float32).mul(1.0 / 255) if y.dtype == torch.uint8 else y.to(torch.float32)
    h, s, v = _rgb_to_hsv(z)
    shifted = h + hue.view(-1, 1, 1)  # torchvision's remainder(h + hue, 1.0), rounded once
    rgb = _hsv_to_rgb(shifted - shifted.floor(), s, v)
    return rgb.mul_(_TO_UINT8).to(y.dtype) if y.dtype == torch.uint8 else rgb.to(y.dtype)


def _blend_round(y: Tensor, op: Tensor, factor: Tensor, active: Tensor) -> Tensor:
    """One round of the blend ops: image ``i`` gets op ``op[i]`` (brightness, contrast or saturation) with
    ``factor[i]`` where ``active[i]``: torchvision's ``_blend`` ``clamp(f * y + (1 - f) * m)`` with ``m`` 0, the mean
    luma or the luma (floored for uint8), converted back to ``y.dtype`` after the op as torchvision does."""
    fp = y.is_floating_point()
    work = y.dtype if y.dtype == torch.float64 else torch.float32
    yf = y.to(work)
    f = factor.to(work).view(-1, 1, 1, 1)
    gray = _luma(yf) if y.shape[1] == 3 else yf
    if not fp:
        gray = gray.floor()
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


def color_jitter(x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """Colour jitter of every image of ``x`` (B, 1 or 3, H, W) (:class:`~essl_aug.ColorJitter`): image ``i`` goes
    through ``adjust_brightness``, ``adjust_contrast``, ``adjust_saturation``, ``adjust_hue`` (torchvision v2, factors
    ``factors[i]`` in that column order) in the order ``order[i]`` (a permutation of 0..3).

    An op whose factor is its identity value (1, 1, 1, 0) is skipped, as torchvision's ``ColorJitter`` skips the ops
    it was built without. float images in [0, 1], uint8 in [0, 255] (clamped and truncated after each op, as
    torchvision); float16 and bfloat16 in float32 rounded after each op; hue always in float32. Hue runs once on the
    whole batch: the blend ops before it in each image's order, then hue, then the blend ops after it.

    Example:
        >>> from torchvision.transforms.v2 import functional as TF
        >>> x = torch.rand(1, 3, 8, 8)
        >>> y = color_jitter(x, torch.tensor([[1.2, 0.8, 1.1, 0.05]]), torch.tensor([[3, 0, 2, 1]]))
        >>> ref = TF.adjust_brightness(TF.adjust_hue(x[0], 0.05), 1.2)  # order [3, 0, 2, 1]: hue, brightness, ...
        >>> ref = TF.adjust_contrast(TF.adjust_saturation(ref, 1.1), 0.8)
        >>> bool((y[0] - ref).abs().max() < 1e-6)
        True
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
    return stored_like(y, x)
