"""The two-view recipes users already run, by name: SimCLR's and BYOL's, with their reference values.

``simclr(size)`` is lightly's ``SimCLRTransform`` with its defaults (lightly 1.6.0,
``lightly/transforms/simclr_transform.py``), the same for both views (solo-learn's ``imagenet-100/augmentations/
symmetric.yaml`` has the same values); ``byol(size)`` is solo-learn's asymmetric BYOL recipe
(``imagenet-100/augmentations/asymmetric.yaml``, built by ``solo/data/pretrain_dataloader.py``; lightly's
``BYOLView1Transform`` / ``BYOLView2Transform`` defaults are the same numbers); ``extra_view(main_size)`` is the
reference E-SSL extra view (``rdangovs/essl``: ``cifar10/main.py``, ``imagenet/simclr/main.py``). Their values, side
by side, and what differs from the PIL-based references (the flip's place, the resize filter, PIL's box-filter blur;
none changes the distributions, which the distribution tests check against the references' own draws) are in the
views guide (``docs/guides/views.md``, "The recipes' values").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from essl_aug._validation import _real, check_probability
from essl_aug.transforms import (
    ColorJitter,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomSolarize,
    Transformation,
)
from essl_aug.views.pipeline import Normalize, TwoViews, ViewPipeline

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
    augs: list[Transformation[Any]] = [
        RandomResizedCrop(size, scale=scale),
        RandomHorizontalFlip(p=0.5),
        ColorJitter(brightness=b, contrast=c, saturation=s, hue=h, p=jitter_p),
        RandomGrayscale(p=grayscale),
        RandomGaussianBlur(sigma=sigma, kernel_size="sigma", p=blur),  # Pillow's blur by radius, at any size
    ]
    if solarize is not None:
        augs.append(RandomSolarize(p=solarize))
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
        blur: the probability of the Gaussian blur (lightly's ``gaussian_blur``; 0.5 in solo-learn's CIFAR SimCLR
            recipe, ``symmetric.yaml``).
        normalize: ``(mean, std)`` or None.
        compute_dtype: see :class:`~essl_aug.views.pipeline.ViewPipeline`.

    Example:
        >>> import torch
        >>> views, params = simclr(16)(torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8))
        >>> [tuple(v.shape) for v in views], list(params[0])
        ([(2, 3, 16, 16), (2, 3, 16, 16)], ['resized_crop', 'hflip', 'color_jitter', 'grayscale', 'gaussian_blur'])
    """
    strength = _real(jitter_strength)
    if strength is None or not 0.0 <= strength <= 2.5:
        raise ValueError(
            f"`jitter_strength` must be a number in [0, 2.5] (it multiplies (0.8, 0.8, 0.8, 0.2); hue stays <= 0.5), "
            f"got {jitter_strength!r}."
        )
    blur = check_probability(blur, "blur")
    b, c, s, h = (strength * v for v in (0.8, 0.8, 0.8, 0.2))
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
        compute_dtype: see :class:`~essl_aug.views.pipeline.ViewPipeline`.
    """
    jitter = (0.4, 0.4, 0.2, 0.1)
    blur, solarize = _per_view(blur, "blur", (1.0, 0.1)), _per_view(solarize, "solarize", (0.0, 0.2))
    views = [
        _view(size, scale, jitter, 0.8, 0.2, blur[i], (0.1, 2.0), solarize[i], normalize, compute_dtype)
        for i in range(2)
    ]
    return TwoViews(views[0], views[1])


def _per_view(value: object, name: str, default: tuple[float, float]) -> tuple[float, float]:
    """``value`` as a pair (view 1, view 2), or a ``TypeError`` naming ``name`` with ``default`` as the example."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(
            f"`{name}` is one probability per view, a pair (view 1, view 2) such as {default}; got {value!r}."
        )
    return check_probability(value[0], f"{name}[0]"), check_probability(value[1], f"{name}[1]")


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


#: Main views of at most this many pixels a side are CIFAR-sized for :func:`extra_view`.
CIFAR_MAX_SIZE = 64


def extra_view(
    main_size: int,
    *,
    size: int | None = None,
    scale: tuple[float, float] | None = None,
    flip: bool = True,
    photometric: bool = True,
    normalize: Normalize | None = IMAGENET_NORMALIZE,
    compute_dtype: torch.dtype | None = None,
) -> ViewPipeline:
    """The reference E-SSL extra view for main views of ``main_size`` pixels (the module docstring's recipe).

    Args:
        main_size: the SSL views' crop size (32 for CIFAR, 224 for ImageNet).
        size: the extra view's size instead of the reference (half the main size up to 64 px, else 96).
        scale: the crop's area range instead of the reference ((0.2, 1.0) at CIFAR size, else (0.05, 0.14)).
        flip: False leaves the view unflipped (for a family that holds the flip, whose label it would hide).
        photometric: False keeps the crop and the flip only, for an input that is already an augmented (and
            normalised) view: the colour ops would apply twice.
        normalize: ``(mean, std)`` or None (with ``photometric=False``, None unless the input is in [0, 1]).
        compute_dtype: see :class:`~essl_aug.views.pipeline.ViewPipeline`.

    Example:
        >>> extra_view(32).names
        ('resized_crop', 'hflip', 'color_jitter', 'grayscale')
        >>> crop = extra_view(224)["resized_crop"]
        >>> crop.size, crop.scale
        ((96, 96), (0.05, 0.14))
    """
    if isinstance(main_size, bool) or not isinstance(main_size, int) or main_size < 2:
        raise ValueError(f"`main_size` must be the SSL views' crop size in pixels (an int >= 2), got {main_size!r}.")
    cifar = main_size <= CIFAR_MAX_SIZE
    crop = RandomResizedCrop(
        size if size is not None else (main_size // 2 if cifar else 96),
        scale=scale if scale is not None else ((0.2, 1.0) if cifar else (0.05, 0.14)),
    )
    augs: list[Transformation[Any]] = [crop, RandomHorizontalFlip(p=0.5)] if flip else [crop]
    if photometric:
        jitter = (0.4, 0.4, 0.4, 0.1) if cifar else (0.4, 0.4, 0.2, 0.1)
        augs += [ColorJitter(*jitter, p=0.8), RandomGrayscale(p=0.2)]
        if not cifar:
            augs.append(RandomGaussianBlur(sigma=(0.1, 2.0), p=0.1))
    return ViewPipeline(augs, normalize=normalize, compute_dtype=compute_dtype)
