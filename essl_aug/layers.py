"""Intermediate feature maps of a backbone, read by module name (``named_modules()``) with a forward hook.

SER (:class:`~essl_aug.objectives.SER`) asks for the spatial map of one layer, and the layer-decoupled objectives
(:class:`~essl_aug.objectives.AtLayer`) for that map's pooled features. A convolutional layer gives a map (B, C, h, w);
a transformer block gives tokens (B, N, D), of which the first ``class_tokens`` are dropped and the rest laid out
row-major on a ``grid`` of (h, w) patches (a square grid when ``grid`` is None), as (B, D, h, w). Hooks live only
for the duration of one call (nothing stays registered on the model: the model, the objectives and these wrappers
pickle and deep-copy as before). No value is read back by the host.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> feature_map(net, "1", torch.rand(2, 3, 6, 6)).shape  # the forward stops after module "1"
    torch.Size([2, 8, 6, 6])
    >>> LayerFeatures(net, "1")(torch.rand(2, 3, 6, 6)).shape  # its pooled features
    torch.Size([2, 8])
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn

__all__ = ["LayerFeatures", "capture", "check_grid", "feature_map", "find_layer", "spatial_map"]


def _module_of(backbone: object) -> nn.Module:
    """The module whose ``named_modules()`` name the layers: ``backbone`` itself, or the module of a bound method."""
    if isinstance(backbone, nn.Module):
        return backbone
    owner = getattr(backbone, "__self__", None)
    if isinstance(owner, nn.Module):
        return owner
    raise TypeError(
        f"a layer is read by name from the backbone's modules, but the backbone is a {type(backbone).__name__}, not "
        "an nn.Module; pass the backbone module itself (StepInputs(backbone=model))."
    )


def find_layer(backbone: object, layer: str) -> nn.Module:
    """The submodule of ``backbone`` named ``layer`` in ``named_modules()`` (e.g. ``"layers.3"``, ``"blocks.2"``);
    a ``ValueError`` listing the closest names when there is none.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
        >>> find_layer(net, "1")
        ReLU()
        >>> find_layer(net, "2")
        Traceback (most recent call last):
        ...
        ValueError: `layer` '2' is not a module of Sequential; close names: '0', '1' (all names: model.named_modules()).
    """
    if not isinstance(layer, str) or not layer:
        raise TypeError(f"`layer` must be the non-empty name of a submodule (from named_modules()), got {layer!r}.")
    model = _module_of(backbone)
    modules = dict(model.named_modules())
    modules.pop("", None)
    found = modules.get(layer)
    if found is not None:
        return found
    close = difflib.get_close_matches(layer, list(modules), n=5, cutoff=0.3) or list(modules)[:5]
    names = ", ".join(repr(n) for n in close) or "none (the model has no submodule)"
    raise ValueError(
        f"`layer` {layer!r} is not a module of {type(model).__name__}; close names: {names} (all names: "
        "model.named_modules())."
    )


def check_grid(class_tokens: int, grid: Sequence[int] | None) -> tuple[int, tuple[int, int] | None]:
    """``(class_tokens, grid)`` checked: an int >= 0 and None or ``(h, w)`` of ints > 0; errors name the argument.

    Example:
        >>> check_grid(1, [14, 14])
        (1, (14, 14))
    """
    if isinstance(class_tokens, bool) or not isinstance(class_tokens, int) or class_tokens < 0:
        raise ValueError(f"`class_tokens` must be an integer >= 0 (a ViT's [CLS]: 1), got {class_tokens!r}.")
    if grid is None:
        return class_tokens, None
    ok = isinstance(grid, (tuple, list)) and len(grid) == 2
    ok = ok and all(isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in grid)
    if not ok:
        raise ValueError(f"`grid` must be None or (h, w), the patch grid of the tokens, got {grid!r}.")
    return class_tokens, (grid[0], grid[1])


def spatial_map(
    output: object, class_tokens: int = 0, grid: Sequence[int] | None = None, layer: str = "layer"
) -> Tensor:
    """A layer's output as a spatial map (B, C, h, w): a map as it is, tokens (B, N, D) without their first
    ``class_tokens`` laid out row-major on ``grid`` (h, w) (a square grid when None) as (B, D, h, w) (a view).

    Example:
        >>> tokens = torch.arange(10.).view(1, 5, 2)  # one [CLS] token, then a 2 x 2 grid of 2-d tokens
        >>> spatial_map(tokens, class_tokens=1)[0, 0]
        tensor([[2., 4.],
                [6., 8.]])
    """
    class_tokens, size = check_grid(class_tokens, grid)
    if isinstance(output, (tuple, list)):
        raise TypeError(
            f"layer {layer!r} returns a {type(output).__name__}; hook a module that returns one tensor (a map "
            "(B, C, h, w) or tokens (B, N, D)), e.g. the block itself rather than its attention."
        )
    if not isinstance(output, Tensor):
        raise TypeError(f"layer {layer!r} must return a tensor, got {type(output).__name__}.")
    if output.ndim == 4:
        if class_tokens or size is not None:
            raise ValueError(
                f"layer {layer!r} gives a map {tuple(output.shape)} (B, C, h, w): `class_tokens` and `grid` are for "
                "tokens (B, N, D); leave them out."
            )
        return output
    if output.ndim != 3:
        raise ValueError(
            f"layer {layer!r} gives shape {tuple(output.shape)}, not a spatial map (B, C, h, w) or tokens (B, N, D); "
            "choose a layer before the pooling (a convolution stage, or a transformer block)."
        )
    b, n, d = output.shape
    patches = n - class_tokens
    if size is None:
        side = math.isqrt(max(patches, 0))
        if patches < 1 or side * side != patches:
            raise ValueError(
                f"layer {layer!r} gives {n} tokens; with class_tokens={class_tokens} the {patches} left are not a "
                "square grid: give `grid=(h, w)` and the number of class tokens."
            )
        size = (side, side)
    if size[0] * size[1] != patches:
        raise ValueError(
            f"layer {layer!r} gives {n} tokens, {patches} after class_tokens={class_tokens}, not grid {size} = "
            f"{size[0] * size[1]} patches; fix `grid` or `class_tokens`."
        )
    return output[:, class_tokens:].reshape(b, size[0], size[1], d).permute(0, 3, 1, 2)


class _Stop(Exception):
    """Raised by the hook of :func:`feature_map` once the layer has run: the rest of the forward is skipped."""


@contextmanager
def capture(
    backbone: object, layer: str, class_tokens: int = 0, grid: Sequence[int] | None = None
) -> Iterator[list[Tensor]]:
    """Within the block, every output of ``layer`` is appended, as a spatial map (:func:`spatial_map`), to the list
    it yields (one per forward); the hook is removed on exit. A map modified in place afterwards (an
    ``nn.ReLU(inplace=True)`` after a hooked BatchNorm) raises a ``RuntimeError``: hook the module after it.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> with capture(net, "1") as maps:
        ...     f1, f2 = net(torch.rand(2, 3, 4, 4)), net(torch.rand(2, 3, 4, 4))
        >>> [tuple(m.shape) for m in maps]
        [(2, 4, 4, 4), (2, 4, 4, 4)]
    """
    module = find_layer(backbone, layer)
    check_grid(class_tokens, grid)
    raw: list[tuple[Tensor, int]] = []
    maps: list[Tensor] = []

    def hook(_module: nn.Module, _args: Any, output: Any) -> None:
        out = spatial_map(output, class_tokens, grid, layer)
        raw.append((output, output._version))
        maps.append(out)

    handle = module.register_forward_hook(hook)
    try:
        yield maps
    finally:
        handle.remove()
    for output, version in raw:
        if output._version != version:
            raise RuntimeError(
                f"the output of layer {layer!r} was modified in place after the layer (e.g. by an "
                "nn.ReLU(inplace=True)); read the module that modifies it instead (the ReLU)."
            )


def feature_map(
    backbone: Callable[[Tensor], Any],
    layer: str,
    x: Tensor,
    class_tokens: int = 0,
    grid: Sequence[int] | None = None,
    stride: int | None = None,
) -> Tensor:
    """The spatial map (:func:`spatial_map`) of ``layer`` for the input ``x``; the backbone's forward stops there
    (the layers after it do not run). For tokens without a ``grid``, ``stride`` (pixels per patch) gives it from
    ``x``'s size: ``(H // stride, W // stride)`` (a ViT's grid at any input size).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Flatten())
        >>> feature_map(net, "0", torch.rand(2, 3, 9, 9)).shape
        torch.Size([2, 4, 4, 4])
    """
    module = find_layer(backbone, layer)
    check_grid(class_tokens, grid)
    found: list[Tensor] = []

    def hook(_module: nn.Module, _args: Any, output: Any) -> None:
        size = grid
        if size is None and stride is not None and isinstance(output, Tensor) and output.ndim == 3:
            size = (x.shape[-2] // stride, x.shape[-1] // stride)
        found.append(spatial_map(output, class_tokens, size, layer))
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        backbone(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not found:
        raise RuntimeError(f"layer {layer!r} did not run in the backbone's forward; choose a layer the forward uses.")
    return found[0]


class LayerFeatures(nn.Module):
    """A backbone read at an intermediate layer: the mean over the positions of its map at ``layer``, (N, C).

    The forward stops after ``layer``. This is how the layer-decoupled objectives read a backbone (the SER paper's
    layer decoupling); pooling by the mean over the positions (the patch tokens of a ViT) is this library's choice.

    Args:
        backbone: the model (its ``named_modules()`` name ``layer``).
        layer: the module's name, e.g. ``"layers.3"`` (ResNet stage), ``"blocks.3"`` (ViT block).
        class_tokens, grid: for token maps (:func:`spatial_map`).

    Shape:
        - Input: what ``backbone`` takes.
        - Output: (N, C), C the channels (token width) at ``layer``.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
        >>> LayerFeatures(net, "1")(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 8])
    """

    def __init__(self, backbone: nn.Module, layer: str, class_tokens: int = 0, grid: Sequence[int] | None = None):
        super().__init__()
        find_layer(backbone, layer)
        self.class_tokens, self.grid = check_grid(class_tokens, grid)
        self.backbone = backbone
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        return feature_map(self.backbone, self.layer, x, self.class_tokens, self.grid).mean(dim=(2, 3))

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}, class_tokens={self.class_tokens}, grid={self.grid}"
