"""The eager CPU forms of the operations: whole-batch vectorised passes, or image by image for large images.

PyTorch's CPU ``gather``, ``where``, advanced indexing and broadcast ``addcmul`` kernels are not vectorised, while
a flip, a multiply, an add, a bitwise op or a contiguous copy runs close to the speed of a copy. So eager CPU
calls without autograd (:func:`enabled`) flip the whole batch and put the unflipped images back, blend in two
passes, and choose between two images with bitwise passes; on :func:`large` images (a call per image or per run
of images with one label costs little beside them) they move quarter turns image by image, copy runs of images,
and blur each level with its own kernel (finite batches). They read the labels on the host, which a CPU
does for free. On a GPU, under autograd or ``torch.compile`` (which fuses the one-pass forms) the one-pass forms
of :mod:`essl_aug._kernels` stay. Both forms give the same bits (blur's per-level form: to float rounding; a
test compares them); what each form gains is measured in ``benchmarks/results/speed_profile.md``.

Each operation of :mod:`essl_aug.functional` asks :func:`enabled` (or :func:`selects`) once and then runs one
form or the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from essl_aug import _kernels
from essl_aug._kernels import PixelPlan, bits, blend_rows, copy_images, inversion_offsets, needs_grad, select_images
from essl_aug._layout import empty_like_images, memory_format


def enabled(x: Tensor) -> bool:
    """True for eager CPU calls without autograd: the calls that take the forms of this module."""
    return x.device.type == "cpu" and not needs_grad(x) and not torch.compiler.is_compiling()


#: Above this batch size (bytes) a 4- or 8-byte ``where`` beats the three bitwise passes of ``select_images`` on
#: a CPU: the batch no longer fits in cache, so each pass costs memory traffic. ``where`` has no vectorised 1- and
#: 2-byte kernel, so those always select.
SELECT_MAX_BYTES = 16 * 2**20


def selects(x: Tensor) -> bool:
    """True when a per-image choice between two batches like ``x`` should use the bitwise selection."""
    return enabled(x) and (x.element_size() < 4 or x.numel() * x.element_size() <= SELECT_MAX_BYTES)


#: From this many bytes per image the forms work image by image, or run by run of consecutive images with the
#: same label: a flipped or transposed image then stays in the cache while PyTorch's strided copy reads it across
#: (a whole-batch gather or transpose misses on every row), and a run is one ``memcpy`` where ``index_copy_`` and
#: the bitwise selection make several passes. Below it the fixed cost of a call per image or run dominates.
LARGE_IMAGE_BYTES = 64 * 2**10


def large(x: Tensor) -> bool:
    """True when the images of ``x`` have at least :data:`LARGE_IMAGE_BYTES` each."""
    return x[0:1].numel() * x.element_size() >= LARGE_IMAGE_BYTES


def runs(labels: Tensor) -> list[tuple[int, int, int]]:
    """``(start, stop, label)`` of each run of consecutive images with the same label (reads ``labels``).

    Example:
        >>> runs(torch.tensor([1, 1, 0, 1]))
        [(0, 2, 1), (2, 3, 0), (3, 4, 1)]
    """
    values = labels.tolist()
    found: list[tuple[int, int, int]] = []
    for i, label in enumerate(values):
        if found and found[-1][2] == label:
            found[-1] = (found[-1][0], i + 1, label)
        else:
            found.append((i, i + 1, label))
    return found


def put_back(mask: Tensor, src: Tensor, out: Tensor) -> Tensor:
    """``out[i] = src[i]`` where ``mask[i]``, every bit: one copy per run of such images when they are
    :func:`large`, else :func:`essl_aug._kernels.copy_images`."""
    if not large(src):
        return copy_images(mask, src, out)
    for start, stop, keep in runs(mask):
        if keep:
            bits(out[start:stop]).copy_(bits(src[start:stop]))
    return out


def permute(x: Tensor, labels: Tensor, plan: PixelPlan, out: Tensor | None) -> Tensor:
    """The per-image pixel permutation of :func:`essl_aug._kernels.permute` on the CPU.

    Quarter turns, flips and their products on :func:`large` images move image by image
    (``x[i].flip(...)``, then a transposing copy into ``out[i]``, on the integer view: every bit kept); row moves
    copy their runs (:func:`essl_aug._kernels.permute_rows`) and smaller images take the gather (PyTorch's CPU
    advanced indexing, which the one-pass lookups use, is several times slower than its gather).

    Example:
        >>> from essl_aug._cache import PlanCache
        >>> x = torch.arange(2 * 128 * 128.).view(1, 2, 128, 128)
        >>> table = lambda: _kernels.rotation_table(128, 128)
        >>> plan = _kernels.pixel_plan(PlanCache(), "rotation", table, 128, x.device)
        >>> torch.equal(permute(x, torch.tensor([1]), plan, None), torch.rot90(x, 1, dims=(-2, -1)))
        True
    """
    moves = plan.moves
    if plan.units is not None:
        return _kernels.permute_rows(x, labels, plan.units, plan.run, out)
    if moves is None or not large(x):
        return _kernels.permute_pixels(x, labels, plan.table, out)
    return move_images(x, labels, moves, empty_like_images(x) if out is None else out)


def move_images(x: Tensor, labels: Tensor, moves: Sequence[_kernels.Move], out: Tensor) -> Tensor:
    """``out[i]`` = ``x[i]`` moved by ``moves[labels[i]]`` (flips, then a transpose), image by image on the
    integer view (every bit kept); each run of consecutive images whose move is the identity is one copy.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> move_images(x, torch.tensor([1]), [(False, False, False), (False, True, False)], torch.empty_like(x))
        tensor([[[[1., 0.],
                  [3., 2.]]]])
    """
    src, dst = bits(x), bits(out)
    for start, stop, label in runs(labels):
        flip_rows, flip_cols, transpose = moves[label]
        dims = [d for d, f in ((1, flip_rows), (2, flip_cols)) if f]
        if not dims and not transpose:
            dst[start:stop].copy_(src[start:stop])
            continue
        for i in range(start, stop):
            image = src[i].flip(dims) if dims else src[i]
            dst[i].copy_(image.transpose(1, 2) if transpose else image)
    return out


def permute_all(x: Tensor, plan: PixelPlan, out: Tensor) -> Tensor:
    """Every element of ``plan`` on every image, in block layout, into ``out`` (K*B, C, H, W), on the CPU.

    :func:`large` images under quarter turns, flips and their products move image by image as in
    :func:`permute`; other batches take :func:`essl_aug._kernels.permute_all`.
    """
    if plan.units is not None or plan.moves is None or not large(x):
        return _kernels.permute_all(x, plan, out)
    return _kernels.each_element(lambda x, labels, out: permute(x, labels, plan, out), x, len(plan.moves), out)


#: The horizontal flip's labels as :func:`move_images` moves: the identity, then the columns flipped.
_MIRROR = ((False, False, False), (False, True, False))


def hflip(x: Tensor, labels: Tensor) -> Tensor:
    """Mirror image ``i`` where ``labels[i] == 1``: flip the whole batch, then put the unflipped images back.

    The flip runs on the integer view (faster for 1- and 2-byte dtypes) and is the one allocation; the unflipped
    images go back by whole-image copies (:func:`put_back`: 4- and 8-byte dtypes, and 1- and 2-byte ones on large
    images) or by the bitwise selection in place (1 and 2). Large images of 4 and 8 bytes per value go image by
    image instead: each flipped image is flipped while it is in the cache, then copied, and each run of unflipped
    images is one copy.
    """
    if large(x) and x.element_size() >= 4:  # image by image: each flipped while in the cache, then copied
        return move_images(x, labels, _MIRROR, empty_like_images(x))
    out = bits(x).flip(3).view(x.dtype)
    if not out.is_contiguous(memory_format=memory_format(x)):  # a strided input: select into a fresh result
        return select_images(labels, out, x, empty_like_images(x))
    if x.element_size() >= 4 or large(x):
        return put_back(labels == 0, x, out)
    return select_images(labels, out, x, out)


def hflip_all(x: Tensor, out: Tensor) -> Tensor:
    """The identity then the mirror of every image, in block layout, into ``out`` (2B, C, H, W).

    Two copies, one of them from a whole-batch ``flip`` of the integer view.

    Example:
        >>> hflip_all(torch.arange(2.).view(1, 1, 1, 2), torch.empty(2, 1, 1, 2)).flatten()
        tensor([0., 1., 1., 0.])
    """
    b = x.shape[0]
    out[:b].copy_(x)
    out[b:].copy_(bits(x).flip(3).view(x.dtype))
    return out


def blend_all(x: Tensor, table: Tensor, out: Tensor) -> Tensor:
    """Both elements of the float inversion into ``out`` (2B, C, H, W): a copy of ``x``, then ``offset - x``.

    Example:
        >>> table = _kernels.inversion_table((1.0,), 1, torch.float32, torch.device("cpu"))
        >>> blend_all(torch.tensor([[[[0.25]]]]), table, torch.empty(2, 1, 1, 1)).flatten()
        tensor([0.2500, 0.7500])
    """
    b = x.shape[0]
    bits(out[:b]).copy_(bits(x))
    torch.sub(inversion_offsets(table, x.shape[1]), x, out=out[b:])
    return out


def blend(x: Tensor, labels: Tensor, table: Tensor, out: Tensor | None) -> Tensor:
    """Colour inversion of float ``x`` by label: ``shift + sign * x`` per image as ``x * sign`` then ``+ shift``,
    two vectorised passes (the coefficients of :func:`essl_aug._kernels.inversion_table`).

    ``x * sign`` is exact (the sign is +-1), so the sum rounds once, as ``offset - x`` does, and label 0
    (``x * 1 + -0.0``) keeps every value but a NaN bit for bit. Arithmetic quiets a signalling NaN and rewrites
    half-precision NaN payloads, so a batch holding a NaN (its sum is NaN: one read-only pass) takes the exact form
    instead: ``offset - x`` for the whole batch, then the label-0 images copied back from ``x``. :func:`large`
    images go run by run of images with the same label instead: a copy or ``offset - x``, one exact pass.
    """
    if out is None:
        out = empty_like_images(x)
    if large(x):  # one pass, exact: each run of label 0 copied, each run of label 1 ``offset - x``
        offsets = inversion_offsets(table, x.shape[1])
        for start, stop, label in runs(labels):
            if label:
                torch.sub(offsets, x[start:stop], out=out[start:stop])
            else:
                bits(out[start:stop]).copy_(bits(x[start:stop]))
        return out
    if bool(x.sum().isnan()):
        torch.sub(inversion_offsets(table, x.shape[1]), x, out=out)
        return put_back(labels == 0, x, out)
    shift, sign = blend_rows(table, labels, x.shape[1])
    return torch.mul(x, sign, out=out).add_(shift)


def blur(x: Tensor, labels: Tensor, kernels: Tensor, sizes: Sequence[int], out: Tensor | None) -> Tensor:
    """The blur levels of :func:`essl_aug._kernels.separable_blur` on the CPU: each image at its own level's cost.

    The one-pass form convolves every image with the largest kernel (the shorter ones zero-padded), so it pays
    the largest level's arithmetic for every image. :func:`large` batches of finite pixels (one read-only pass:
    their sum is finite) convolve each level with its own ``sizes[l - 1]`` taps instead and copy label 0: run by
    run when the labels come in at most K runs of consecutive images (``all`` mode: one), else one group per level
    (``index_select``, the two convolutions, ``index_copy_``; finite values, so the copies keep every bit). The
    result equals the one-pass form's to float rounding (the zero taps are not summed; label 0 keeps ``-0.0``).
    Other batches take the one-pass form: on small images the calls per group cost more than the shorter kernels
    save, and a non-finite pixel would spread over a different window.

    Example:
        >>> from essl_aug._kernels import blur_kernel_table
        >>> x = torch.rand(2, 3, 96, 96)
        >>> kernels, labels = blur_kernel_table((5, 9), (1.1, 1.7)).float(), torch.tensor([2, 0])
        >>> y = blur(x, labels, kernels, (5, 9), None)
        >>> torch.equal(y[1], x[1]), torch.allclose(y, _kernels.separable_blur(x, labels, kernels), atol=1e-6)
        (True, True)
    """
    wide = torch.float32 if x.element_size() < 4 else x.dtype  # a float16 sum would overflow before a pixel does
    if not large(x) or not bool(x.sum(dtype=wide).isfinite()):
        return _kernels.separable_blur(x, labels, kernels, out)
    if out is None:
        out = empty_like_images(x)
    width = kernels.shape[1]

    def level(images: Tensor, label: int) -> Tensor:
        size = sizes[label - 1]
        first = (width - size) // 2
        taps = kernels[label, first : first + size].view(1, 1, size)
        return _kernels.convolve_separable(images, taps.expand(images.shape[0] * images.shape[1], 1, size))

    found = runs(labels)
    if len(found) <= kernels.shape[0]:  # a few runs (``all`` mode: one): each convolved where it lies
        for start, stop, label in found:
            part = x[start:stop]
            out[start:stop].copy_(level(part, label) if label else part)
        return out
    for label in range(kernels.shape[0]):  # one group per level: gathered, convolved, put back
        index = (labels == label).nonzero().squeeze(1)
        if index.numel():
            group = x.index_select(0, index)
            out.index_copy_(0, index, level(group, label) if label else group)
    return out
