"""The DataLoader path: the views' pipelines per image in a ``DataLoader`` with each image's parameters, and the
un-augmented images batched for views made in the training step.

For users who keep augmentation on the CPU workers. :class:`ViewsDataset` wraps a dataset whose items are a
(C, H, W) image tensor (alone or first in a tuple, e.g. ``(image, label)``) and returns
``(views, params, *rest)``: ``views`` one (C, H', W') float tensor per view, ``params`` one ``{name: params}`` dict
per view whose tensors are the image's own (the batch of one squeezed: ``applied`` a 0-d bool, a crop box (4,)).
:func:`collate_views` (the loader's ``collate_fn``) stacks them back: views (B, C, H', W') and params of (B, ...)
tensors, exactly what :class:`~essl_aug.views.pipeline.TwoViews` returns for a batch on the device.
:func:`collate_images` is the other loader path: the un-augmented images as one uint8 batch, for views made on the
device in the training step.

Reproducibility: image ``index`` in epoch ``epoch`` is augmented with its own ``torch.Generator`` seeded with
:func:`sample_seed` ``(seed, epoch, index)`` (splitmix64 mixing applied to the epoch, then to the index). Its views
and parameters depend on nothing else: not on the worker that loads it, the number of workers, the batch size or the
order of the sampler; a loader with ``num_workers=0`` and one with ``num_workers=2`` give identical batches. Call
:meth:`ViewsDataset.set_epoch` before each epoch (the epoch is kept in shared memory, so persistent workers see it
too).

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> from essl_aug.views.recipes import simclr
    >>> images = torch.randint(0, 256, (4, 3, 24, 24), dtype=torch.uint8)
    >>> data = ViewsDataset(TensorDataset(images, torch.arange(4)), simclr(16), seed=0)
    >>> views, params, labels = next(iter(DataLoader(data, batch_size=4, collate_fn=collate_views)))
    >>> [tuple(v.shape) for v in views], tuple(params[0]["resized_crop"].box.shape), labels.tolist()
    ([(4, 3, 16, 16), (4, 3, 16, 16)], (4, 4), [0, 1, 2, 3])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence, Sized
from typing import Any, cast

import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from essl_aug._random import sample_seed
from essl_aug.transforms.base import Params
from essl_aug.views.pipeline import TwoViews, ViewPipeline

__all__ = ["ViewsDataset", "collate_images", "collate_views", "sample_seed", "squeeze_params", "stack_params"]


def squeeze_params(params: Mapping[str, Params]) -> dict[str, Params]:
    """One image's parameters from a batch of one: every tensor's first dimension removed."""
    return {name: p.map(lambda t: t.squeeze(0)) for name, p in params.items()}


def stack_params(items: Sequence[Mapping[str, Params]]) -> dict[str, Params]:
    """A batch's parameters from per-image ones (:func:`squeeze_params`): every field stacked on a new first axis.

    Raises a ``ValueError`` unless every item has the same names and parameter classes.
    """
    if not items:
        raise ValueError("`items` is empty: a batch needs at least one image's parameters")
    first = items[0]
    for i, item in enumerate(items):
        if list(item) != list(first) or any(type(item[n]) is not type(first[n]) for n in first):
            raise ValueError(
                f"`items[{i}]` has parameters {list(item)}, `items[0]` has {list(first)}: every image of a batch "
                "must come from the same pipeline"
            )
    out = {}
    for name, p in first.items():
        fields = {
            f.name: torch.stack([getattr(item[name], f.name) for item in items])
            for f in dataclasses.fields(p)
            if isinstance(getattr(p, f.name), Tensor)
        }
        out[name] = dataclasses.replace(p, **fields)
    return out


def _as_views(views: TwoViews | ViewPipeline) -> TwoViews:
    if isinstance(views, ViewPipeline):
        return TwoViews(views, views)
    if not isinstance(views, TwoViews):
        raise TypeError(
            f"`views` must be a TwoViews (e.g. essl_aug.views.simclr(32)) or a ViewPipeline, got {type(views).__name__}"
        )
    return views


def augment_image(
    views: TwoViews, image: Tensor, generator: torch.Generator | None = None
) -> tuple[list[Tensor], list[dict[str, Params]]]:
    """``(views, params)`` of one (C, H, W) image: each view (C, H', W') and each view's per-image parameters."""
    if not isinstance(image, Tensor):
        raise TypeError(
            f"`image` must be a (C, H, W) torch.Tensor, got {type(image).__name__}; for PIL images give the dataset "
            "`transform=torchvision.transforms.v2.PILToTensor()`"
        )
    if image.ndim != 3:
        raise ValueError(
            f"`image` must be one image shaped (C, H, W), got shape {tuple(image.shape)}; the loader path augments "
            "images one at a time (for batches call the TwoViews directly)"
        )
    out, params = views(image.unsqueeze(0), generator)
    return [v.squeeze(0) for v in out], [squeeze_params(p) for p in params]


class ViewsDataset(Dataset[tuple[Any, ...]]):
    """A dataset whose items are ``(views, params, *rest)``: the two views of each image with its parameters.

    Args:
        dataset: a map-style dataset whose items are a (C, H, W) tensor (uint8 or float in [0, 1]) or a tuple
            whose first element is one (the rest, e.g. the label, is passed through).
        views: a :class:`~essl_aug.views.pipeline.TwoViews` (e.g. ``simclr(32)``), or one
            :class:`~essl_aug.views.pipeline.ViewPipeline` used for both views.
        seed: the base seed; image ``index`` in epoch ``epoch`` draws with ``sample_seed(seed, epoch, index)``.

    Use :func:`collate_views` as the loader's ``collate_fn``.
    """

    def __init__(self, dataset: Dataset[Any], views: TwoViews | ViewPipeline, seed: int = 0) -> None:
        if not (hasattr(dataset, "__getitem__") and isinstance(dataset, Sized)):
            raise TypeError(
                f"`dataset` must be a map-style dataset (with __getitem__ and __len__), got {type(dataset).__name__}"
            )
        self.dataset = dataset
        self.views = _as_views(views)
        self.seed = int(seed)
        # In shared memory: DataLoader workers (persistent ones too) read the epoch the main process sets.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Draw the next items for ``epoch`` (call it before iterating the loader for that epoch)."""
        if int(epoch) < 0:
            raise ValueError(f"`epoch` must be a non-negative integer, got {epoch}")
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        return len(cast(Sized, self.dataset))

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        item = self.dataset[index]
        image, rest = (item[0], tuple(item[1:])) if isinstance(item, (tuple, list)) else (item, ())
        generator = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, int(index)))
        views, params = augment_image(self.views, image, generator)
        return (views, params, *rest)


def collate_views(batch: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """``collate_fn`` for :class:`ViewsDataset`: ``(views, params, *rest)`` with views (B, C, H', W') per view,
    params of (B, ...) tensors per view (:func:`~essl_aug.adapters.loader.stack_params`) and ``rest`` by
    ``default_collate``."""
    if not batch:
        raise ValueError("`batch` is empty")
    num_views = len(batch[0][0])
    views = [torch.stack([item[0][v] for item in batch]) for v in range(num_views)]
    params = [stack_params([item[1][v] for item in batch]) for v in range(num_views)]
    rest = [default_collate([item[k] for item in batch]) for k in range(2, len(batch[0]))]
    return (views, params, *rest)


def _as_image(image: Any, index: int) -> Tensor:
    """One image (a PIL image or a (C, H, W) tensor) as a plain tensor, uint8 from PIL."""
    if isinstance(image, Tensor):
        if image.ndim != 3:
            raise ValueError(f"image {index} of the batch must be (C, H, W), got shape {tuple(image.shape)}.")
        return image.as_subclass(Tensor)
    if hasattr(image, "getbands"):  # a PIL image
        from torchvision.transforms.v2.functional import pil_to_tensor

        if image.mode.startswith(("I", "F")):
            raise ValueError(
                f"image {index} of the batch is a PIL image of mode {image.mode!r} (16-bit, 32-bit or float pixels): "
                "an 8-bit image would clip or truncate them; give a (C, H, W) tensor of one dtype from the dataset's "
                "transform instead (float in [0, 1], or uint8)."
            )
        return pil_to_tensor(image.convert("RGB") if image.mode not in ("RGB", "L") else image)
    raise TypeError(
        f"image {index} of the batch must be a PIL image or a (C, H, W) tensor, got {type(image).__name__}; give "
        "the dataset no transform (or one that returns such an image)."
    )


def collate_images(batch: Sequence[Any]) -> list[Any]:
    """A ``collate_fn`` for un-augmented images: ``[(image, *rest), ...]`` -> ``[images, *collated rest]``.

    ``images`` is one (B, C, H, W) tensor of the images' dtype, uint8 for PIL images (not scaled, not normalised: the
    views are made on the device, in one pass). The rest of each item (a label, lightly's filename) is collated by
    torch's ``default_collate``. The images must share one size and one dtype; PIL images of 16-bit, 32-bit or float
    modes are refused (an 8-bit conversion would clip them).

    Example:
        >>> images, targets = collate_images([(torch.zeros(3, 6, 8, dtype=torch.uint8), 0)] * 2)
        >>> images.dtype, tuple(images.shape), targets.tolist()
        (torch.uint8, (2, 3, 6, 8), [0, 0])
    """
    if not isinstance(batch, Sequence) or not batch:
        raise ValueError("`batch` must be a non-empty list of dataset items, (image, ...) or images.")
    items = [item if isinstance(item, (tuple, list)) else (item,) for item in batch]
    images = [_as_image(item[0], i) for i, item in enumerate(items)]
    shapes = sorted({tuple(im.shape) for im in images})
    if len(shapes) > 1:
        raise ValueError(
            f"the images of a batch must share one size to be stacked, got {shapes}; resize them in the dataset's "
            "transform (e.g. torchvision.transforms.v2.Resize + CenterCrop)."
        )
    dtypes = sorted({str(im.dtype) for im in images})
    if len(dtypes) > 1:
        raise ValueError(
            f"the images of a batch must share one dtype, got {dtypes}: a float image reads as [0, 1] and a uint8 one "
            "as [0, 255], so stacking them would mis-scale some; make the dataset return one dtype."
        )
    rest = [default_collate([item[k] for item in items]) for k in range(1, len(items[0]))]
    return [torch.stack(images), *rest]
