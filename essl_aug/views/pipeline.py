"""The view pipeline: parameterised augmentations applied in order, with every image's parameters returned.

:class:`ViewPipeline` is a ``Compose`` for :class:`~essl_aug.transforms.base.Transformation` objects: it draws each
augmentation's per-image parameters on the input's device (one optional ``torch.Generator`` for all of them, in the
pipeline's order), applies them in order, and returns the view with ``{name: params}``. :class:`TwoViews` runs two
pipelines (the same one twice for a symmetric recipe such as SimCLR, two for an asymmetric one such as BYOL) on the
same batch and returns ``views`` (one tensor per view) and ``params`` (one ``{name: params}`` per view);
:class:`MultiCrop` is the multi-crop form (DINO's, SwAV's): two global crops, then ``num_local`` local crops.

Dtypes: the input is a (B, C, H, W) batch, uint8 in [0, 255] or float in [0, 1]. By default the augmentations run
on the input's dtype (a uint8 batch stays uint8 and is rounded after every op, as the PIL-based reference recipes
are) and one pass at the end converts to float32 and normalises: ``x * (1 / (255 * std)) + (-mean / std)`` in a
single ``torch.addcmul`` that reads uint8 and writes float32 (without ``normalize``: ``x * (1 / 255)``,
bit-identical to torchvision's ``ToDtype(float32, scale=True)``). ``compute_dtype=torch.float32`` converts first
instead and runs every augmentation in float32, without the intermediate rounding.

Example:
    >>> import torch
    >>> from essl_aug.transforms import RandomHorizontalFlip
    >>> pipe = ViewPipeline([RandomHorizontalFlip()], normalize=((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)))
    >>> x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    >>> view, params = pipe(x, torch.Generator().manual_seed(0))
    >>> view.dtype, tuple(view.shape), list(params), tuple(params["hflip"].applied.shape)
    (torch.float32, (4, 3, 8, 8), ['hflip'], (4,))
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from essl_aug._cache import PlanCache
from essl_aug._validation import EXACT_DTYPES, FLOAT_DTYPES, check_dtype, check_images
from essl_aug.transforms.base import Params, Transformation

#: Mean and standard deviation per channel, e.g. ImageNet's ``((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))``.
#: ``(mean, std)``, one number per channel each (or lightly's ``{"mean": ..., "std": ...}``).
Normalize = tuple[Sequence[float], Sequence[float]] | Mapping[str, Sequence[float]]


def _check_normalize(normalize: Normalize | None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    if normalize is None:
        return None
    if isinstance(normalize, Mapping) and set(normalize) == {"mean", "std"}:  # lightly's IMAGENET_NORMALIZE form
        normalize = (normalize["mean"], normalize["std"])
    try:
        mean, std = normalize
        mean_t, std_t = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"`normalize` must be a pair (mean, std) of per-channel sequences, e.g. ((0.485, 0.456, 0.406), "
            f"(0.229, 0.224, 0.225)), or None; got {normalize!r}"
        ) from err
    if len(mean_t) != len(std_t) or not mean_t:
        raise ValueError(
            f"`normalize` needs one mean and one std per channel, got {len(mean_t)} means and {len(std_t)} stds"
        )
    if not all(math.isfinite(m) for m in mean_t):
        raise ValueError(f"`normalize` mean must be finite per channel, got {mean_t}")
    if not all(math.isfinite(s) and s > 0 for s in std_t):
        raise ValueError(f"`normalize` std must be positive and finite per channel, got {std_t}")
    return mean_t, std_t


class ViewPipeline:
    """Parameterised augmentations applied in order to a batch; returns ``(view, {name: params})``.

    Args:
        augmentations: :class:`~essl_aug.transforms.base.Transformation` objects, applied in this order; their
            ``name`` attributes key the returned parameters and must be distinct.
        normalize: ``(mean, std)`` per channel, applied last (on values in [0, 1]), or None for none.
        dtype: the float dtype of the view (default float32).
        compute_dtype: None (default): the augmentations run on the input's dtype and the conversion to ``dtype``
            and the normalisation are fused in one pass at the end; a float dtype: the input is converted to it
            (uint8 scaled to [0, 1]) before the first augmentation.

    Shape:
        - Input: (B, C, H, W), uint8 in [0, 255] or float in [0, 1], on any device.
        - Output: the view (B, C, H', W') in ``dtype`` ((H', W') the crop's size, else (H, W)) and a dict
          ``{name: params}`` of (B, ...) tensors on the input's device. The input is never modified.

    :meth:`sample` draws every augmentation's parameters for a batch shape (in the order a call draws
    them, so ``pipe(x, g1)`` and ``pipe.apply(x, pipe.sample(x.shape, x.device, g2))`` agree when ``g1`` and
    ``g2`` start in the same state); :meth:`apply` replays given parameters.
    """

    def __init__(
        self,
        augmentations: Sequence[Transformation[Any]],
        normalize: Normalize | None = None,
        dtype: torch.dtype = torch.float32,
        compute_dtype: torch.dtype | None = None,
    ) -> None:
        augs = tuple(augmentations)
        for i, aug in enumerate(augs):
            if not isinstance(aug, Transformation):
                raise TypeError(
                    f"`augmentations[{i}]` must be an essl_aug Transformation (e.g. RandomResizedCrop(32)), "
                    f"got {type(aug).__name__}"
                )
        names = [aug.name for aug in augs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(
                f"`augmentations` must have distinct names (they key the returned params), {repeated} repeats; "
                "combine the repeated augmentation's settings into one"
            )
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"`dtype` must be a float dtype (the view's), e.g. torch.float32; got {dtype}")
        if compute_dtype is not None and compute_dtype not in FLOAT_DTYPES:
            raise TypeError(f"`compute_dtype` must be None (the input's dtype) or a float dtype, got {compute_dtype}")
        self.augmentations = augs
        self.names = tuple(names)
        self.normalize = _check_normalize(normalize)
        self.dtype = dtype
        self.compute_dtype = compute_dtype
        self._constants = PlanCache()

    def __len__(self) -> int:
        return len(self.augmentations)

    def __iter__(self) -> Iterator[Transformation[Any]]:
        return iter(self.augmentations)

    def __getitem__(self, name: str) -> Transformation[Any]:
        """The augmentation named ``name``."""
        try:
            return self.augmentations[self.names.index(name)]
        except ValueError:
            raise KeyError(f"no augmentation named {name!r} in this pipeline; it has {list(self.names)}") from None

    def check(self, x: Tensor, name: str = "x") -> None:
        """Raise a clear error unless ``x`` is a (B, C, H, W) uint8 or float batch this pipeline can take."""
        check_images(x, name)
        check_dtype(x, EXACT_DTYPES, "ViewPipeline", name)
        if self.normalize is not None and len(self.normalize[0]) != x.shape[1]:
            raise ValueError(
                f"`{name}` has {x.shape[1]} channels but `normalize` has {len(self.normalize[0])} means and stds; "
                "give one per channel"
            )

    def sample(
        self, shape: Sequence[int], device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> dict[str, Params]:
        """Every augmentation's parameters for a batch shaped ``shape`` (B, C, H, W), drawn on ``device`` in the
        pipeline's order (each for the shape its input has, e.g. the crop's size after a crop)."""
        params: dict[str, Params] = {}
        shape = tuple(int(s) for s in shape)
        for aug in self.augmentations:
            params[aug.name] = aug.sample(shape, device, generator)
            shape = aug.output_shape(shape)
        return params

    def apply(self, x: Tensor, params: Mapping[str, Params]) -> Tensor:
        """``x`` augmented with ``params`` (as :meth:`sample` returns them), converted and normalised."""
        self.check(x)
        missing = [n for n in self.names if n not in params]
        if missing:
            raise KeyError(f"`params` has no entry for {missing}; pass the dict this pipeline's `sample` returned")
        y = x
        if self.compute_dtype is not None and y.dtype != self.compute_dtype:
            y = self._to_float(y, self.compute_dtype)
        for aug in self.augmentations:
            y = aug.apply(y, params[aug.name])
        return self._finish(y, x)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Params]]:
        """Draw the parameters for ``x`` on its device and apply them: ``(view, {name: params})``."""
        self.check(x)
        params = self.sample(x.shape, x.device, generator)
        return self.apply(x, params), params

    # -- conversion and normalisation ----------------------------------------------------------------------------------

    @staticmethod
    def _to_float(x: Tensor, dtype: torch.dtype) -> Tensor:
        """``x`` as ``dtype`` in [0, 1]: uint8 times ``1 / 255``, bit-identical to torchvision's ``ToDtype(dtype,
        scale=True)`` (one pass for float32: the product reads uint8 and writes float32)."""
        if x.dtype == torch.uint8:
            return torch.mul(x, 1.0 / 255) if dtype == torch.float32 else x.to(dtype).mul_(1.0 / 255)
        return x.to(dtype)

    def _scale_shift(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(scale, shift), (C, 1, 1) on ``x``'s device: ``view = x * scale + shift``; float64 for a float64 view,
        else float32 (a float16 or bfloat16 view is rounded once, at the end)."""
        assert self.normalize is not None
        mean, std = self.normalize
        dtype = torch.float64 if self.dtype == torch.float64 else torch.float32
        key = (x.device, dtype, x.dtype == torch.uint8)

        def build() -> tuple[Tensor, Tensor]:
            peak = 255.0 if x.dtype == torch.uint8 else 1.0
            m = torch.tensor(mean, dtype=torch.float64).view(-1, 1, 1)
            s = torch.tensor(std, dtype=torch.float64).view(-1, 1, 1)
            scale, shift = 1.0 / (peak * s), -m / s
            return scale.to(x.device, dtype), shift.to(x.device, dtype)

        return self._constants.get(key, build)

    def _finish(self, y: Tensor, x: Tensor) -> Tensor:
        """The view in ``self.dtype``, normalised, in one pass where the dtypes allow; never ``x`` itself."""
        if self.normalize is None:
            out = self._to_float(y, self.dtype)
        else:
            scale, shift = self._scale_shift(y)
            # uint8 or a narrower float is read once and written as ``self.dtype`` (type promotion).
            out = torch.addcmul(shift, y, scale)
            if out.dtype != self.dtype:
                out = out.to(self.dtype)
        return out.clone() if out is x else out

    def __repr__(self) -> str:
        inner = ", ".join(repr(a) for a in self.augmentations)
        return f"{type(self).__name__}([{inner}], normalize={self.normalize})"


class Views(NamedTuple):
    """What :class:`TwoViews` returns: ``views`` (one (B, C, H, W) tensor per view) and ``params`` (one
    ``{name: params}`` dict per view, in the same order)."""

    views: list[Tensor]
    params: list[dict[str, Params]]


class TwoViews:
    """Two views of a batch, each from its own pipeline (``view2`` defaults to ``view1``: a symmetric recipe).

    The parameters are drawn on the input's device, view 1's first, then view 2's, from the one optional
    ``generator``; the two views' parameters are independent.

    Example:
        >>> import torch
        >>> from essl_aug.transforms import RandomHorizontalFlip
        >>> two = TwoViews(ViewPipeline([RandomHorizontalFlip()]))
        >>> views, params = two(torch.rand(2, 3, 8, 8), torch.Generator().manual_seed(0))
        >>> len(views), [tuple(v.shape) for v in views], [list(p) for p in params]
        (2, [(2, 3, 8, 8), (2, 3, 8, 8)], [['hflip'], ['hflip']])
    """

    def __init__(self, view1: ViewPipeline, view2: ViewPipeline | None = None) -> None:
        for name, pipe in (("view1", view1), ("view2", view2)):
            if pipe is not None and not isinstance(pipe, ViewPipeline):
                raise TypeError(
                    f"`{name}` must be a ViewPipeline (wrap a list of augmentations: ViewPipeline([...])), "
                    f"got {type(pipe).__name__}"
                )
        self.pipelines: tuple[ViewPipeline, ...] = (view1, view1 if view2 is None else view2)

    def sample(
        self, shape: Sequence[int], device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> list[dict[str, Params]]:
        """Each view's parameters for a batch shaped ``shape``, in view order."""
        return [pipe.sample(shape, device, generator) for pipe in self.pipelines]

    def apply(self, x: Tensor, params: Sequence[Mapping[str, Params]]) -> list[Tensor]:
        """Each view of ``x`` with its parameters."""
        if len(params) != len(self.pipelines):
            raise ValueError(f"`params` must hold one dict per view ({len(self.pipelines)}), got {len(params)}")
        return [pipe.apply(x, p) for pipe, p in zip(self.pipelines, params, strict=True)]

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Views:
        """``(views, params)`` for the batch ``x`` (B, C, H, W), drawn on its device."""
        self.pipelines[0].check(x)
        params = self.sample(x.shape, x.device, generator)
        return Views(self.apply(x, params), params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pipelines[0]!r}, {self.pipelines[1]!r})"


class MultiCrop(TwoViews):
    """Multi-crop views of a batch (DINO, SwAV): two global crops, each from its own pipeline, then ``num_local``
    local crops from ``local_view``, every crop with its own parameters.

    A :class:`TwoViews` whose first two views are the global crops: what reads the two views of a :class:`TwoViews`
    (the objectives' ``params`` pair, AugSelf's augmentations) reads the global crops. ``views`` and ``params`` hold
    the global crops first, then the local ones (``views[:2]`` at the global size, ``views[2:]`` at the local size);
    the parameters are drawn in that order, each crop's independently, from the one optional ``generator``.

    Args:
        global_views: the two global crops' pipelines (the same one twice for a symmetric recipe).
        local_view: the local crops' pipeline, or None when ``num_local`` is 0.
        num_local: how many local crops (each with its own draws), ``>= 0``.

    Example:
        >>> import torch
        >>> from essl_aug.transforms import RandomResizedCrop
        >>> big, small = ViewPipeline([RandomResizedCrop(8)]), ViewPipeline([RandomResizedCrop(4)])
        >>> crops = MultiCrop((big, big), small, num_local=3)
        >>> views, params = crops(torch.rand(2, 3, 12, 12), torch.Generator().manual_seed(0))
        >>> [tuple(v.shape[-2:]) for v in views], len(params), crops.num_global, crops.num_local
        ([(8, 8), (8, 8), (4, 4), (4, 4), (4, 4)], 5, 2, 3)
    """

    #: The number of global crops, the first views.
    num_global = 2

    def __init__(
        self, global_views: Sequence[ViewPipeline], local_view: ViewPipeline | None = None, num_local: int = 0
    ) -> None:
        given: object = global_views  # anything a caller passes, checked
        if isinstance(given, ViewPipeline) or not isinstance(given, Sequence) or len(given) != 2:
            raise TypeError(
                "`global_views` must be the two global crops' pipelines, a pair (view1, view2) of ViewPipeline "
                f"(the same one twice for a symmetric recipe), got {global_views!r}"
            )
        super().__init__(global_views[0], global_views[1])
        if isinstance(num_local, bool) or not isinstance(num_local, int) or num_local < 0:
            raise ValueError(f"`num_local` must be the number of local crops, an int >= 0, got {num_local!r}")
        if num_local and not isinstance(local_view, ViewPipeline):
            raise TypeError(
                f"`local_view` must be the local crops' ViewPipeline for num_local={num_local}, "
                f"got {type(local_view).__name__}"
            )
        if local_view is not None and not isinstance(local_view, ViewPipeline):
            raise TypeError(f"`local_view` must be a ViewPipeline or None, got {type(local_view).__name__}")
        self.local_view = local_view
        self.num_local = num_local
        self.pipelines = (*self.pipelines, *([local_view] * num_local if local_view is not None else []))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(({self.pipelines[0]!r}, {self.pipelines[1]!r}), {self.local_view!r}, "
            f"num_local={self.num_local})"
        )
