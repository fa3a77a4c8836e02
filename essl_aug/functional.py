"""One function per transformation: the operations behind the family classes, label by label.

Each operation takes images ``x`` (B, C, H, W), integer ``labels`` (B,) on ``x.device``, the parameters of its
family, and an optional ``out`` buffer; it returns a new tensor (or ``out``) with the memory format of ``x``, and
never modifies ``x``. Label ``labels[i]`` picks the element applied to image ``i`` with the label convention of the
family class of the same name (documented on each function; label 0 is always the identity). ``labels=None``
applies every element to every image in block layout: (K*B, C, H, W), rows ``k*B .. (k+1)*B - 1`` holding
element ``k`` (the family's ``apply_all``, labels ``arange(K).repeat_interleave(B)``).

These functions do not validate ``x``, ``labels`` or ``out`` (a wrong shape or an out-of-range label gives a
PyTorch error or a wrong result): the family classes check them once and then call these functions, so use a
class (``Rotation().apply(x, labels)``) for checked calls. A family's parameters (``steps``, ``permutations``,
``kernel_sizes``, ...) are checked when their tables are first built. The tables, kernels and coefficients
derived from the parameters are cached per image size, device and dtype, so repeated calls copy nothing from the
host. :func:`periodic_roll`, which has no family class, checks its arguments.

Example:
    >>> from essl_aug import functional as EF
    >>> x = torch.rand(2, 3, 8, 8)
    >>> torch.equal(EF.rotate(x, torch.tensor([0, 1]))[1], torch.rot90(x[1], 1, dims=(-2, -1)))
    True
    >>> EF.rotate(x, None).shape  # every element for every image, in block layout
    torch.Size([8, 3, 8, 8])
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import torch
from torch import Tensor

from essl_aug import _cpu, _kernels
from essl_aug._cache import PlanCache
from essl_aug._layout import empty_like_images
from essl_aug._validation import check_blur_levels, check_images, check_jigsaw, check_shifts, check_steps, integers

__all__ = [
    "GRAY_WEIGHTS",
    "PERMUTATIONS",
    "REFERENCE_KERNEL_SIZES",
    "blur_levels",
    "d4",
    "grayscale",
    "hflip",
    "invert",
    "jigsaw",
    "periodic_roll",
    "periodic_translate",
    "rotate",
    "vflip",
]

#: Luma weights of ``torchvision.transforms.v2.functional.rgb_to_grayscale`` (ITU-R 601-2).
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)

#: The 24 permutations of 4 tiles in the lexicographic order of ``itertools.permutations(range(4))`` (the jigsaw
#: labels; index 0 is the identity).
PERMUTATIONS = _kernels.PERMUTATIONS

#: The reference E-SSL blur kernel sizes of labels 1, 2, 3 (the default of :func:`blur_levels`).
REFERENCE_KERNEL_SIZES = _kernels.REFERENCE_KERNEL_SIZES

#: Tables, kernels and coefficients of the calls made through this module, keyed by parameters, size and device.
_PLANS = PlanCache(max_entries=128)


def _ints(values: Sequence[int], check: Callable[[], object]) -> tuple[int, ...]:
    """``values`` as a tuple of ints (a cache key that compares by value, whatever sequence was given).

    ``check()`` runs when a value is not an integer (``3.5`` is not truncated to 3): it raises the parameter's error.
    """
    if isinstance(values, tuple) and all(type(v) is int for v in values):
        return values
    ints = integers(values)
    if ints is None:
        check()
        raise AssertionError("unreachable: `check` raises for a value that is not an integer")
    return tuple(ints)


def _floats(values: Sequence[float], check: Callable[[], object]) -> tuple[float, ...]:
    """``values`` as a tuple of floats; ``check()`` runs (and raises) when one is not a number."""
    if isinstance(values, tuple) and all(type(v) is float for v in values):
        return values
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        check()
        raise


def _pixels(
    x: Tensor, labels: Tensor | None, key: tuple[Hashable, ...], table: Callable[[int, int], Tensor], out: Tensor | None
) -> Tensor:
    """The pixel permutation ``table(H, W)`` (K, H*W), per label or (``labels=None``) every element in blocks."""
    h, w = x.shape[-2:]
    plan = _kernels.pixel_plan(_PLANS, (*key, h, w, x.device), lambda: table(h, w), w, x.device)
    if labels is None:
        return permute_all_by_plan(x, plan, _kernels.block_output(x, plan.table.shape[0], out))
    return permute_by_plan(x, labels, plan, out)


def permute_by_plan(x: Tensor, labels: Tensor, plan: _kernels.PixelPlan, out: Tensor | None) -> Tensor:
    """Move the pixels of image ``i`` by element ``labels[i]`` of ``plan``: the eager CPU form or the one-pass form."""
    if _cpu.enabled(x):
        return _cpu.permute(x, labels, plan, out)
    return _kernels.permute(x, labels, plan, out)


def permute_all_by_plan(x: Tensor, plan: _kernels.PixelPlan, out: Tensor) -> Tensor:
    """Every element of ``plan`` on every image into ``out`` (block layout): the eager CPU form or the one-pass form."""
    if _cpu.enabled(x):
        return _cpu.permute_all(x, plan, out)
    return _kernels.permute_all(x, plan, out)


# -- pixel moves: exact for every dtype -----------------------------------------------------------------------------


def rotate(x: Tensor, labels: Tensor | None, out: Tensor | None = None) -> Tensor:
    """Quarter turns: label ``k`` is ``torch.rot90(x, k, dims=(-2, -1))`` (the :class:`~essl_aug.Rotation` family).

    Args:
        x: square images (B, C, H, W), H == W; any dtype.
        labels: (B,) integers in ``[0, 4)``: ``k`` quarter turns counter-clockwise as displayed; or None for all 4.
        out: optional result buffer.

    Returns:
        (B, C, H, W), or (4B, C, H, W) in block layout for ``labels=None``.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> rotate(x, torch.tensor([1]))
        tensor([[[[1., 3.],
                  [0., 2.]]]])
        >>> torch.equal(rotate(x, torch.tensor([3])), torch.rot90(x, 3, dims=(-2, -1)))
        True
    """
    return _pixels(x, labels, ("rotate",), _kernels.rotation_table, out)


def _vflip_table(height: int, width: int) -> Tensor:
    return _kernels.flip_table(height, width, 0)


def _hflip_table(height: int, width: int) -> Tensor:
    return _kernels.flip_table(height, width, 1)


def vflip(x: Tensor, labels: Tensor | None, out: Tensor | None = None) -> Tensor:
    """Upside-down flip: label 0 is the identity, 1 is ``x.flip(-2)`` (the :class:`~essl_aug.VerticalFlip` family).

    Args:
        x: images (B, C, H, W); any dtype.
        labels: (B,) integers in ``[0, 2)``, or None for both elements.
        out: optional result buffer.

    Returns:
        (B, C, H, W), or (2B, C, H, W) in block layout for ``labels=None``.

    Example:
        >>> vflip(torch.arange(4.).view(1, 1, 2, 2), torch.tensor([1]))
        tensor([[[[2., 3.],
                  [0., 1.]]]])
    """
    return _pixels(x, labels, ("vflip",), _vflip_table, out)


def hflip(x: Tensor, labels: Tensor | None, out: Tensor | None = None) -> Tensor:
    """Mirror flip: label 0 is the identity, 1 is ``x.flip(-1)`` (the :class:`~essl_aug.HorizontalFlip` family).

    One gather with a per-image column index; eager CPU calls without ``out`` flip the whole batch and put the
    unflipped images back (the same bits).

    Args:
        x: images (B, C, H, W); any dtype.
        labels: (B,) integers in ``[0, 2)``, or None for both elements.
        out: optional result buffer.

    Returns:
        (B, C, H, W), or (2B, C, H, W) in block layout for ``labels=None``.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> hflip(x, torch.tensor([1]))
        tensor([[[[1., 0.],
                  [3., 2.]]]])
        >>> torch.equal(hflip(x, None), torch.cat([x, x.flip(-1)]))
        True
    """
    if labels is None:
        if _cpu.enabled(x):
            return _cpu.hflip_all(x, _kernels.block_output(x, 2, out))
        return _pixels(x, None, ("hflip",), _hflip_table, out)
    if out is None and _cpu.enabled(x):
        return _cpu.hflip(x, labels)
    return _kernels.flip_columns(x, labels, out)


def jigsaw(
    x: Tensor,
    labels: Tensor | None,
    permutations: Sequence[int] | None = None,
    tile_order: str = "row-major",
    out: Tensor | None = None,
) -> Tensor:
    """Shuffle the four quadrants of each image (the :class:`~essl_aug.Jigsaw` family).

    Label ``p`` is the tile permutation ``PERMUTATIONS[permutations[p]]`` (all 24 in the lexicographic order of
    ``itertools.permutations(range(4))`` when ``permutations`` is None): output cell ``i`` receives input tile
    ``perm[i]``, cells and tiles numbered row-major (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right), or
    top-left, top-right, bottom-right, bottom-left with ``tile_order="clockwise"``.

    Args:
        x: images (B, C, H, W) with even H and W; any dtype.
        labels: (B,) integers in ``[0, K)``, or None for all K elements.
        permutations: indices into the 24 permutations, the identity (0) first; None for all 24.
        tile_order: ``"row-major"`` or ``"clockwise"``.
        out: optional result buffer.

    Returns:
        (B, C, H, W), or (K*B, C, H, W) in block layout for ``labels=None``.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> jigsaw(x, torch.tensor([23]))[0, 0]  # tiles reversed: (3, 2, 1, 0)
        tensor([[10., 11.,  8.,  9.],
                [14., 15., 12., 13.],
                [ 2.,  3.,  0.,  1.],
                [ 6.,  7.,  4.,  5.]])
        >>> jigsaw(x, None, permutations=[0, 23]).shape
        torch.Size([2, 1, 4, 4])
    """
    indices = None if permutations is None else _ints(permutations, lambda: check_jigsaw(permutations, tile_order))

    def table(height: int, width: int) -> Tensor:
        chosen = check_jigsaw(indices, tile_order)
        return _kernels.jigsaw_table(_kernels.jigsaw_permutations(chosen, tile_order), height, width)

    return _pixels(x, labels, ("jigsaw", indices, tile_order), table, out)


def periodic_translate(
    x: Tensor, labels: Tensor | None, steps: int | tuple[int, int] = 2, out: Tensor | None = None
) -> Tensor:
    """Cyclic shifts by whole fractions of the cell (the :class:`~essl_aug.PeriodicTranslation` family).

    With ``steps = (sh, sw)``, label ``l = a * sw + b`` is ``torch.roll(x, (a * H // sh, b * W // sw),
    dims=(-2, -1))``: content moves down by ``a * H / sh`` rows and right by ``b * W / sw`` columns, wrapping
    around. ``steps=2`` is the reference photonics task: rolls (0, 0), (0, W/2), (H/2, 0), (H/2, W/2).

    Args:
        x: images (B, C, H, W) with H divisible by ``sh`` and W by ``sw``; any dtype.
        labels: (B,) integers in ``[0, sh * sw)``, or None for every shift.
        steps: shifts per axis, an int for both or a pair ``(sh, sw)`` (any integers, e.g. ``numpy.int64``).
        out: optional result buffer.

    Returns:
        (B, C, H, W), or (sh*sw*B, C, H, W) in block layout for ``labels=None``.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> torch.equal(periodic_translate(x, torch.tensor([3])), torch.roll(x, (2, 2), dims=(-2, -1)))
        True
        >>> torch.equal(periodic_translate(x, torch.tensor([1]), steps=(1, 4)), torch.roll(x, 1, dims=-1))
        True
    """
    if type(steps) is int:
        pair: tuple[int, int] = (steps, steps)
    elif type(steps) is tuple and len(steps) == 2 and type(steps[0]) is int and type(steps[1]) is int:
        pair = steps
    else:  # other integer types (numpy.int64, ...): checked and converted now
        pair = check_steps(steps)

    def table(height: int, width: int) -> Tensor:
        return _kernels.translation_table(check_steps(pair), height, width)

    return _pixels(x, labels, ("translate", pair), table, out)


def d4(x: Tensor, labels: Tensor | None, out: Tensor | None = None) -> Tensor:
    """The 8 symmetries of the square (the :class:`~essl_aug.D4` family).

    Label ``l = 2 * k + f`` is ``torch.rot90(x, k, dims=(-2, -1))`` followed by ``.flip(-2)`` when ``f == 1``
    (the labels of ``Product([Rotation(), VerticalFlip()])``): 0, 2, 4, 6 are the rotations, 1, 3, 5, 7 the mirrors.

    Args:
        x: square images (B, C, H, W), H == W; any dtype and channel count.
        labels: (B,) integers in ``[0, 8)``, or None for all 8.
        out: optional result buffer.

    Returns:
        (B, C, H, W), or (8B, C, H, W) in block layout for ``labels=None``.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> d4(x, torch.tensor([3]))  # a quarter turn, then a vertical flip: the anti-diagonal mirror
        tensor([[[[0., 2.],
                  [1., 3.]]]])
        >>> torch.equal(d4(x, torch.tensor([5])), torch.rot90(x, 2, dims=(-2, -1)).flip(-2))
        True
    """
    return _pixels(x, labels, ("d4",), _kernels.d4_table, out)


def periodic_roll(x: Tensor, shifts: Tensor) -> Tensor:
    """Roll each image by its own whole-pixel shift, with wrap-around (a batched ``torch.roll``).

    Not a label family: any shift per image (the invariance augmentation
    :class:`~essl_aug.RandomPeriodicShift` draws them). Checks its arguments.

    Args:
        x: images (B, C, H, W).
        shifts: (B, 2) integer tensor on ``x.device``: rows moved down and columns moved right per image
            (any integers; taken modulo H and W).

    Returns:
        (B, C, H, W): ``out[i] == torch.roll(x[i], tuple(shifts[i]), dims=(-2, -1))``; ``x`` is not modified.

    Example:
        >>> x = torch.arange(8.).view(2, 1, 2, 2)
        >>> torch.equal(periodic_roll(x, torch.tensor([[1, 0], [0, 1]]))[1], torch.roll(x[1], (0, 1), (-2, -1)))
        True
    """
    check_images(x)
    check_shifts(shifts, x)
    return _kernels.roll_images(x, shifts)


# -- values: blur, inversion, grayscale ------------------------------------------------------------------------------


def blur_levels(
    x: Tensor,
    labels: Tensor | None,
    kernel_sizes: Sequence[int] = REFERENCE_KERNEL_SIZES,
    sigmas: Sequence[float] | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """Gaussian blur levels (the :class:`~essl_aug.BlurLevels` family): label 0 keeps the image.

    Label ``l >= 1`` blurs with ``torchvision.transforms.v2.functional.gaussian_blur`` of kernel size
    ``kernel_sizes[l - 1]`` and sigma ``sigmas[l - 1]`` (torchvision's default ``0.15 * k + 0.35`` when None),
    reflect borders: by default kernels 5, 9, 15, the reference E-SSL levels. Every image goes through one
    separable convolution with its own kernel row (smaller kernels zero-padded, so each matches its own size to
    float rounding; the same arithmetic as kornia's ``filter2d_separable``, bit for bit).

    Args:
        x: float images (B, C, H, W), larger than the largest kernel's radius; finite pixels (a NaN or infinity
            spreads over its window, for label 0 too).
        labels: (B,) integers in ``[0, len(kernel_sizes) + 1)``, or None for every level.
        kernel_sizes: odd size of each level's kernel.
        sigmas: standard deviation of each level, or None for torchvision's default.
        out: optional result buffer.

    Returns:
        (B, C, H, W), or (K*B, C, H, W) in block layout for ``labels=None``.

    Example:
        >>> from torchvision.transforms.v2.functional import gaussian_blur
        >>> x = torch.rand(2, 3, 16, 16)
        >>> y = blur_levels(x, torch.tensor([0, 2]))
        >>> torch.equal(y[0], x[0]), bool((y[1] - gaussian_blur(x[1], [9, 9])).abs().max() < 1e-6)
        (True, True)
    """
    sizes = _ints(kernel_sizes, lambda: check_blur_levels(kernel_sizes, sigmas, _kernels.default_sigma))
    chosen = (
        None if sigmas is None else _floats(sigmas, lambda: check_blur_levels(sizes, sigmas, _kernels.default_sigma))
    )

    def build() -> Tensor:
        table = _kernels.blur_kernel_table(*check_blur_levels(sizes, chosen, _kernels.default_sigma))
        return table.to(device=x.device, dtype=x.dtype)

    kernels = _PLANS.get(("blur", sizes, chosen, x.device, x.dtype), build)

    def blur(x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        if _cpu.enabled(x):
            return _cpu.blur(x, labels, kernels, sizes, out)
        return _kernels.separable_blur(x, labels, kernels, out)

    if labels is None:
        return _kernels.each_element(blur, x, kernels.shape[0], _kernels.block_output(x, kernels.shape[0], out))
    return blur(x, labels, out)


def invert(
    x: Tensor, labels: Tensor | None, offset: float | Sequence[float] = 1.0, out: Tensor | None = None
) -> Tensor:
    """Colour inversion (the :class:`~essl_aug.Inversion` family): label 1 is ``offset - x``, label 0 keeps ``x``.

    ``offset`` is one value or one per channel: ``1`` (or the pixel maximum) in pixel space, as
    ``torchvision.transforms.v2.functional.invert``; ``(1 - 2 * mean) / std`` per channel in normalised space (the
    normalised image of ``1 - pixels``). uint8 images are inverted as ``255 - x`` (``x ^ 255``) whatever the
    offset. Label 1 is computed as ``offset - x`` (one rounding, the offset first rounded to the dtype of ``x``);
    label 0 is a copy of ``x``, every bit kept (``-0.0``, NaN payloads, signalling NaNs).

    Args:
        x: images (B, C, H, W), float or uint8.
        labels: (B,) integers in ``[0, 2)``, or None for both elements.
        offset: the value each pixel is reflected to, a float or a sequence of C floats.
        out: optional result buffer.

    Returns:
        (B, C, H, W), or (2B, C, H, W) in block layout for ``labels=None``.

    Example:
        >>> invert(torch.tensor([[[[0.25]]], [[[0.25]]]]), torch.tensor([0, 1])).flatten()
        tensor([0.2500, 0.7500])
        >>> invert(torch.tensor([[[[3]]]], dtype=torch.uint8), torch.tensor([1])).flatten()
        tensor([252], dtype=torch.uint8)
    """
    channels = x.shape[1]
    if x.dtype == torch.uint8:
        key: tuple[Hashable, ...] = ("invert", x.dtype, x.device)
        offsets: tuple[float, ...] = ()
    else:
        offsets = (float(offset),) if isinstance(offset, (int, float)) else tuple(float(o) for o in offset)
        key = ("invert", x.dtype, x.device, channels, *(o.hex() for o in offsets))  # hex: -0.0 is not 0.0
    table = _PLANS.get(key, lambda: _kernels.inversion_table(offsets, channels, x.dtype, x.device))
    cpu = x.dtype != torch.uint8 and _cpu.enabled(x)
    if labels is None:
        if cpu:
            return _cpu.blend_all(x, table, _kernels.block_output(x, 2, out))
        return _kernels.each_element(
            lambda x, labels, out: _kernels.blend(x, labels, table, out), x, 2, _kernels.block_output(x, 2, out)
        )
    if cpu:
        return _cpu.blend(x, labels, table, out)
    return _kernels.blend(x, labels, table, out)


def _luma(x: Tensor) -> Tensor:
    """(B, 1, H, W): torchvision's luma of the RGB images ``x``, in their dtype."""
    r, g, b = x.unbind(dim=-3)
    luma = r.mul(GRAY_WEIGHTS[0]).add_(g, alpha=GRAY_WEIGHTS[1]).add_(b, alpha=GRAY_WEIGHTS[2])
    return luma.unsqueeze(-3).to(x.dtype)


def grayscale(x: Tensor, labels: Tensor | None, out: Tensor | None = None) -> Tensor:
    """3-channel grayscale where ``labels[i] == 1`` (the :class:`~essl_aug.Grayscale` family).

    Matches ``torchvision.transforms.v2.functional.rgb_to_grayscale(x, num_output_channels=3)`` bit for bit
    (the weights :data:`GRAY_WEIGHTS`, the same operation order; uint8 is truncated like torchvision).

    Args:
        x: RGB images (B, 3, H, W), float or uint8.
        labels: (B,) integers in ``[0, 2)``, or None for both elements.
        out: optional result buffer.

    Returns:
        (B, 3, H, W), or (2B, 3, H, W) in block layout for ``labels=None``.

    Example:
        >>> from torchvision.transforms.v2.functional import rgb_to_grayscale
        >>> x = torch.rand(2, 3, 4, 4)
        >>> y = grayscale(x, torch.tensor([0, 1]))
        >>> torch.equal(y[0], x[0]), torch.equal(y[1], rgb_to_grayscale(x[1], num_output_channels=3))
        (True, True)
    """
    if labels is None:
        return _kernels.each_element(grayscale, x, 2, _kernels.block_output(x, 2, out))
    if out is None:
        out = empty_like_images(x)
    if _cpu.enabled(x) and _cpu.large(x):  # run by run: the luma of the label-1 images only, then one copy each
        for start, stop, label in _cpu.runs(labels):
            part = x[start:stop]
            _kernels.bits(out[start:stop]).copy_(_kernels.bits(_luma(part) if label else part))
        return out
    luma = _luma(x)
    if _cpu.selects(x):
        return _kernels.select_images(labels, luma, x, out)
    return _kernels.where_images(labels, luma, x, out)
