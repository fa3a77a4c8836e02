"""The SSL views made on the device, with every per-image parameter: pipelines and the recipes users run.

:class:`ViewPipeline` applies transformations in order and returns ``(view, {name: params})``; :class:`TwoViews` makes
the two views of a recipe (:func:`simclr`, :func:`byol`, by name with :func:`recipe`), :class:`MultiCrop` the
multi-crop views (:func:`dino`, :func:`swav`: two global crops, then local ones); :func:`extra_view` is the
reference E-SSL extra view. The DataLoader path (the same pipelines per image on the workers, and the un-augmented
images batched for views made in the training step) is :mod:`essl_aug.adapters.loader`.

Example:
    >>> import torch
    >>> from essl_aug.views import simclr
    >>> views, params = simclr(16)(torch.randint(0, 256, (4, 3, 24, 24), dtype=torch.uint8))
    >>> views[0].shape, params[0]["resized_crop"].box.shape
    (torch.Size([4, 3, 16, 16]), torch.Size([4, 4]))
"""

from essl_aug.views.pipeline import MultiCrop, Normalize, TwoViews, ViewPipeline, Views
from essl_aug.views.recipes import (
    IMAGENET_NORMALIZE,
    RECIPES,
    SWAV_NORMALIZE,
    byol,
    dino,
    extra_view,
    recipe,
    simclr,
    swav,
)

__all__ = [
    "IMAGENET_NORMALIZE",
    "RECIPES",
    "SWAV_NORMALIZE",
    "MultiCrop",
    "Normalize",
    "TwoViews",
    "ViewPipeline",
    "Views",
    "byol",
    "dino",
    "extra_view",
    "recipe",
    "simclr",
    "swav",
]
