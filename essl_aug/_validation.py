"""Input checks shared by every family: clear errors that name the argument and the fix."""

from __future__ import annotations

import torch
from torch import Tensor

FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
EXACT_DTYPES = (*FLOAT_DTYPES, torch.uint8)


def check_images(x: Tensor, name: str = "x") -> None:
    """Raise unless ``x`` is a tensor shaped (B, C, H, W)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor shaped (B, C, H, W) or (C, H, W), got {type(x).__name__}.")
    if x.ndim != 4:
        raise ValueError(
            f"`{name}` must have 4 dimensions (B, C, H, W) or 3 (C, H, W), got shape {tuple(x.shape)}; "
            "add or remove a batch dimension (e.g. `x.unsqueeze(0)`)."
        )


def check_dtype(x: Tensor, allowed: tuple[torch.dtype, ...], op: str, name: str = "x") -> None:
    """Raise unless ``x.dtype`` is one where ``op`` is exact."""
    if x.dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise TypeError(
            f"`{name}` has dtype {str(x.dtype).replace('torch.', '')}, which {op} does not support exactly; "
            f"convert it first (e.g. `{name}.float() / 255`). Supported: {names}."
        )


def check_square(x: Tensor, op: str, name: str = "x") -> None:
    """Raise unless the last two dimensions are equal (needed by quarter turns)."""
    h, w = x.shape[-2:]
    if h != w:
        raise ValueError(
            f"{op} needs square images but `{name}` is {h}x{w} (H x W); crop or resize to a square first "
            "(a quarter turn of a non-square image changes its shape)."
        )


def check_labels(labels: Tensor, batch: int, num_classes: int, device: torch.device, name: str = "labels") -> None:
    """Raise unless ``labels`` is an integer tensor shaped (B,) on ``device`` with values in [0, num_classes).

    The range check runs on the host only for eager CPU tensors; on an accelerator, and inside
    ``torch.compile``, it is an asynchronous assertion, so it never forces a host synchronisation or a graph break.
    """
    if not isinstance(labels, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor of integer class indices, got {type(labels).__name__}.")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(
            f"`{name}` must have an integer dtype (e.g. torch.long), got {labels.dtype}; use `{name}.long()`."
        )
    if labels.shape != (batch,):
        raise ValueError(f"`{name}` must have shape ({batch},), one label per image, got {tuple(labels.shape)}.")
    if labels.device != device:
        raise ValueError(
            f"`{name}` is on {labels.device} but the images are on {device}; move it with `{name}.to(x.device)`."
        )
    if batch == 0:
        return
    if labels.device.type == "cpu" and not torch.compiler.is_compiling():
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"`{name}` must lie in [0, {num_classes}), got values in [{lo}, {hi}].")
    else:
        torch._assert_async(((labels >= 0) & (labels < num_classes)).all(), f"`{name}` must lie in [0, {num_classes}).")


def check_out(out: Tensor | None, like: Tensor, name: str = "out") -> None:
    """Raise unless ``out`` can receive a result shaped and typed like ``like``."""
    if out is None:
        return
    if out.shape != like.shape or out.dtype != like.dtype or out.device != like.device:
        raise ValueError(
            f"`{name}` must match the result: shape {tuple(like.shape)}, {like.dtype} on {like.device}; "
            f"got shape {tuple(out.shape)}, {out.dtype} on {out.device}."
        )
    if out.data_ptr() == like.data_ptr() and out.numel() > 0:
        raise ValueError(f"`{name}` must not be the input tensor: the input is never modified in place.")
