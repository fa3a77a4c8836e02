"""The two-view recipes users already run, by name: SimCLR's and BYOL's, with their reference values.

``simclr(size)`` is lightly's ``SimCLRTransform`` with its defaults (lightly 1.6.0,
``lightly/transforms/simclr_transform.py``, ``SimCLRViewTransform``), the same for both views; solo-learn's
``scripts/pretrain/imagenet-100/augmentations/symmetric.yaml`` has the same values:

==============================  ===============================================================================
random resized crop             ``size``, scale (0.08, 1.0), ratio (3/4, 4/3) (torchvision's default)
horizontal flip                 p = 0.5
colour jitter                   p = 0.8; brightness, contrast, saturation 0.8, hue 0.2 (``cj_strength`` 1.0 x
                                (0.8, 0.8, 0.8, 0.2)): factors uniform in [0.2, 1.8], hue in [-0.2, 0.2],
                                the four in a random order
grayscale                       p = 0.2
Gaussian blur                   p = 0.5, sigma uniform in (0.1, 2.0)
solarization                    none
normalisation                   ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)
==============================  ===============================================================================

``byol(size)`` is solo-learn's asymmetric BYOL recipe (``scripts/pretrain/imagenet-100/augmentations/
asymmetric.yaml``, built by ``build_transform_pipeline`` in ``solo/data/pretrain_dataloader.py``); lightly's
``BYOLView1Transform`` / ``BYOLView2Transform`` defaults are the same numbers:

==============================  ==========================================  ===================================
                                view 1                                      view 2
random resized crop             ``size``, scale (0.08, 1.0)                 the same
horizontal flip                 p = 0.5                                     p = 0.5
colour jitter                   p = 0.8; 0.4, 0.4, 0.2, 0.1                 the same
grayscale                       p = 0.2                                     p = 0.2
Gaussian blur                   p = 1.0, sigma uniform in (0.1, 2.0)        p = 0.1
solarization                    p = 0.0 (kept, so both views have the       p = 0.2
                                same parameters)
normalisation                   ImageNet mean and std                       the same
==============================  ==========================================  ===================================

(solo-learn's CIFAR variant of the recipe turns the blur off in both views: ``byol(32, blur=(0.0, 0.0))``.)

What differs from the references, and why it does not change the distributions: the references run on PIL images
and apply the flip after the colour ops (solo-learn) or right after the crop (lightly; here too): the flip commutes
with the per-pixel colour ops, the grayscale and the symmetric blur kernel, so the order does not change what is
drawn nor the view. solo-learn resizes the crop with bicubic interpolation and lightly with bilinear; here the
crop is bilinear with antialiasing (torchvision's default). The blur is a Gaussian kernel (the size rule of
:class:`~essl_aug.augment.blur.GaussianBlur`) where the references use PIL's ``GaussianBlur(radius=sigma)``, an
iterated box filter approximating it; sigma is drawn from the same range. The distribution tests
(``tests/augment/test_distribution.py``) check every parameter against the reference transforms' own draws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from essl_aug.augment.base import Augmentation
from essl_aug.augment.blur import GaussianBlur
from essl_aug.augment.color import ColorJitter
from essl_aug.augment.crop import RandomResizedCrop
from essl_aug.augment.flip import HorizontalFlip
from essl_aug.augment.grayscale import RandomGrayscale
from essl_aug.augment.pipeline import Normalize, TwoViews, ViewPipeline
from essl_aug.augment.solarize import Solarize

#: ImageNet's per-channel mean and standard deviation (lightly's ``IMAGENET_NORMALIZE``, solo-learn's default).
IMAGENET_NORMALIZE: Normalize = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _view(
    size: int | tuple[int, int],
    scale: tuple[float, float],
    jitter: tuple[float, float, float, float],
    jitter_p: float,
    grayscale: float,
    blur: float,
    sigma: tuple[float, float],
    solarize: float | None,
    normalize: Normalize | None,
    compute_dtype: torch.dtype | None,
) -> ViewPipeline:
    b, c, s, h = jitter
    augs: list[Augmentation[Any]] = [
        RandomResizedCrop(size, scale=scale),
        HorizontalFlip(p=0.5),
        ColorJitter(brightness=b, contrast=c, saturation=s, hue=h, p=jitter_p),
        RandomGrayscale(p=grayscale),
        GaussianBlur(sigma=sigma, p=blur),
    ]
    if solarize is not None:
        augs.append(Solarize(p=solarize))
    return ViewPipeline(augs, normalize=normalize, compute_dtype=compute_dtype)


def simclr(
    size: int | tuple[int, int] = 224,
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    jitter_strength: float = 1.0,
    blur: float = 0.5,
    normalize: Normalize | None = IMAGENET_NORMALIZE,
    compute_dtype: torch.dtype | None = None,
) -> TwoViews:
    """SimCLR's two views (lightly's ``SimCLRTransform`` defaults; the table in the module docstring).

    Args:
        size: the crops' output size (224 for ImageNet, 32 for CIFAR).
        scale: the crop's area range (``min_scale`` in lightly).
        jitter_strength: multiplies (0.8, 0.8, 0.8, 0.2), as lightly's ``cj_strength`` (0.5 for CIFAR-sized images).
        blur: the probability of the Gaussian blur (lightly's ``gaussian_blur``; 0.0 in solo-learn's CIFAR recipe).
        normalize: ``(mean, std)`` or None.
        compute_dtype: see :class:`~essl_aug.augment.pipeline.ViewPipeline`.

    Example:
        >>> import torch
        >>> views, params = simclr(16)(torch.randint(0, 256, (2, 3, 24, 24), dtype=torch.uint8))
        >>> [tuple(v.shape) for v in views], list(params[0])
        ([(2, 3, 16, 16), (2, 3, 16, 16)], ['resized_crop', 'hflip', 'color_jitter', 'grayscale', 'gaussian_blur'])
    """
    b, c, s, h = (jitter_strength * v for v in (0.8, 0.8, 0.8, 0.2))
    view = _view(size, scale, (b, c, s, h), 0.8, 0.2, blur, (0.1, 2.0), None, normalize, compute_dtype)
    return TwoViews(view, view)


def byol(
    size: int | tuple[int, int] = 224,
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    blur: tuple[float, float] = (1.0, 0.1),
    solarize: tuple[float, float] = (0.0, 0.2),
    normalize: Normalize | None = IMAGENET_NORMALIZE,
    compute_dtype: torch.dtype | None = None,
) -> TwoViews:
    """BYOL's asymmetric two views (solo-learn's ``asymmetric.yaml``; the table in the module docstring).

    Args:
        size: the crops' output size.
        scale: the crops' area range.
        blur: the blur probability of view 1 and view 2 (``(0.0, 0.0)``: solo-learn's CIFAR recipe).
        solarize: the solarization probability of view 1 and view 2.
        normalize: ``(mean, std)`` or None.
        compute_dtype: see :class:`~essl_aug.augment.pipeline.ViewPipeline`.
    """
    jitter = (0.4, 0.4, 0.2, 0.1)
    views = [
        _view(size, scale, jitter, 0.8, 0.2, blur[i], (0.1, 2.0), solarize[i], normalize, compute_dtype)
        for i in range(2)
    ]
    return TwoViews(views[0], views[1])


#: The recipes by name.
RECIPES: dict[str, Callable[..., TwoViews]] = {"simclr": simclr, "byol": byol}


def recipe(name: str, size: int | tuple[int, int] = 224, **options: object) -> TwoViews:
    """The two-view recipe ``name`` (``"simclr"`` or ``"byol"``) for crops of ``size``.

    Example:
        >>> recipe("byol", 32).pipelines[1]["solarize"].p
        0.2
    """
    if name not in RECIPES:
        raise ValueError(f"`name` must be one of {sorted(RECIPES)}, got {name!r}")
    return RECIPES[name](size, **options)
