"""Functional, label-indexed batch operations (the module classes wrap these).

Every function takes images ``x`` (B, C, H, W), integer ``labels`` (B,) on ``x.device`` and an optional
``out`` buffer, and returns a new tensor (or ``out``) with the memory format of ``x``. They do not validate
their arguments: the family classes do. None of them reads a value back to the host.
"""

from __future__ import annotations

import torch
from torch import Tensor

from essl_aug.family import empty_like_images

# Luma weights of ``torchvision.transforms.v2.functional.rgb_to_grayscale`` (ITU-R 601-2).
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


def _pixels_last(x: Tensor) -> bool:
    """True when ``x`` is stored channels-last (pixels outer, channels inner)."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def permute_pixels(x: Tensor, labels: Tensor, table: Tensor, out: Tensor | None = None) -> Tensor:
    """Move pixels of image ``i`` by the permutation ``table[labels[i]]``.

    ``table`` is (K, H*W) int64: ``table[k, p]`` is the flat source index of output pixel ``p`` under
    element ``k``. One gather, one output allocation (none with ``out``), exact for every dtype.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> table = torch.tensor([[0, 1, 2, 3], [1, 3, 0, 2]])  # identity, quarter turn
        >>> permute_pixels(x, torch.tensor([1]), table).view(2, 2)
        tensor([[1., 3.],
                [0., 2.]])
    """
    b, c, h, w = x.shape
    if out is None:
        out = empty_like_images(x)
    index = table.index_select(0, labels)
    if _pixels_last(x) and (out.is_contiguous(memory_format=torch.channels_last)):
        src = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        dst = out.permute(0, 2, 3, 1).view(b, h * w, c)
        torch.gather(src, 1, index.unsqueeze(2).expand(b, h * w, c), out=dst)
    elif out.is_contiguous():
        src = x.reshape(b, c, h * w)
        torch.gather(src, 2, index.unsqueeze(1).expand(b, c, h * w), out=out.view(b, c, h * w))
    else:
        src = x.reshape(b, c, h * w)
        out.copy_(torch.gather(src, 2, index.unsqueeze(1).expand(b, c, h * w)).view(b, c, h, w))
    return out


def permute_pixels_all(x: Tensor, table: Tensor, out: Tensor) -> Tensor:
    """Every permutation of ``table`` applied to every image, in block layout, into ``out`` (K*B, C, H, W)."""
    k = table.shape[0]
    b, c, h, w = x.shape
    if _pixels_last(x) and out.is_contiguous(memory_format=torch.channels_last):
        src = x.permute(0, 2, 3, 1).reshape(1, b, h * w, c).expand(k, b, h * w, c)
        dst = out.permute(0, 2, 3, 1).view(k, b, h * w, c)
        torch.gather(src, 2, table.view(k, 1, h * w, 1).expand(k, b, h * w, c), out=dst)
    else:
        src = x.reshape(1, b, c, h * w).expand(k, b, c, h * w)
        result = out if out.is_contiguous() else torch.empty(out.shape, dtype=out.dtype, device=out.device)
        torch.gather(src, 3, table.view(k, 1, 1, h * w).expand(k, b, c, h * w), out=result.view(k, b, c, h * w))
        if result is not out:
            out.copy_(result)
    return out


def invert(x: Tensor, labels: Tensor, offset: Tensor, out: Tensor | None = None) -> Tensor:
    """Replace image ``i`` by ``offset - x[i]`` where ``labels[i] == 1``, keep it where 0.

    ``offset`` is a per-channel (C,) tensor: ``1`` (or the pixel maximum) in pixel space,
    ``(1 - 2 * mean) / std`` in normalised space. Computed as ``l * offset + (1 - 2l) * x`` in one
    fused pass, which is bit-exact for both labels. uint8 uses ``x ^ 255``.
    """
    if out is None:
        out = empty_like_images(x)
    if x.dtype == torch.uint8:
        mask = (labels.to(torch.uint8) * 255).view(-1, 1, 1, 1)
        return torch.bitwise_xor(x, mask, out=out)
    lab = labels.to(x.dtype).view(-1, 1, 1, 1)
    shift = lab * offset.to(x.dtype).view(1, -1, 1, 1)
    sign = 1 - 2 * lab
    return torch.addcmul(shift, sign, x, out=out)


def grayscale(x: Tensor, labels: Tensor, out: Tensor | None = None) -> Tensor:
    """Replace image ``i`` by its luma, repeated over the 3 channels, where ``labels[i] == 1``.

    Matches ``torchvision.transforms.v2.functional.rgb_to_grayscale(x, num_output_channels=3)``
    bit for bit (same weights, same operation order; uint8 is truncated like torchvision).
    """
    r, g, b = x.unbind(dim=-3)
    luma = r.mul(GRAY_WEIGHTS[0]).add_(g, alpha=GRAY_WEIGHTS[1]).add_(b, alpha=GRAY_WEIGHTS[2])
    luma = luma.unsqueeze(-3).to(x.dtype)
    if out is None:
        out = empty_like_images(x)
    return torch.where(labels.view(-1, 1, 1, 1).bool(), luma, x, out=out)


def blur_levels(x: Tensor, labels: Tensor, kernels: Tensor, out: Tensor | None = None) -> Tensor:
    """Blur image ``i`` with the separable 1-D kernel ``kernels[labels[i]]`` (reflect borders).

    ``kernels`` is (K, S) with S odd; shorter kernels are zero-padded to S, so each row reproduces a
    blur with its own (smaller) kernel size exactly. Uses kornia's separable filter.
    """
    from kornia.filters import filter2d_separable

    table = kernels.to(device=x.device, dtype=x.dtype)
    k = table.index_select(0, labels)
    y = filter2d_separable(x, k, k, border_type="reflect")
    if out is None:
        return y.contiguous(memory_format=torch.channels_last if _pixels_last(x) else torch.contiguous_format)
    out.copy_(y)
    return out
