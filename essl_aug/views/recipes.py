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

The multi-crop recipes (:class:`~essl_aug.views.pipeline.MultiCrop`: two global crops, then local ones) follow the
methods' own code: ``dino(size)`` is ``DataAugmentationDINO`` of ``facebookresearch/dino`` (``main_dino.py`` and
``utils.py``; bicubic crops, 8 local crops; lightly's ``DINOTransform`` has the same values with 6 local crops:
``num_local=6``), ``swav(size)`` is ``MultiCropDataset`` of ``facebookresearch/swav`` (``src/multicropdataset.py``
with the ImageNet scripts' 2 x 224 px in (0.14, 1) and 6 x 96 px in (0.05, 0.14); bilinear crops, SwAV's std 0.228
for red). The views guide ("Multi-crop") lists them beside solo-learn's configurations.
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
from essl_aug.views.pipeline import MultiCrop, Normalize, TwoViews, ViewPipeline

#: ImageNet's per-channel mean and standard deviation (lightly's ``IMAGENET_NORMALIZE``, solo-learn's default).
IMAGENET_NORMALIZE: Normalize = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
#: SwAV's normalisation (``src/multicropdataset.py``): ImageNet's, with 0.228 for the red channel's std.
SWAV_NORMALIZE: Normalize = ((0.485, 0.456, 0.406), (0.228, 0.224, 0.225))


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
    interpolation: str = "bilinear",
) -> ViewPipeline:
    b, c, s, h = jitter
    augs: list[Transformation[Any]] = [
        RandomResizedCrop(size, scale=scale, interpolation=interpolation),
        RandomHorizontalFlip(p=0.5),
        ColorJitter(brightness=b, contrast=c, saturation=s, hue=h, p=jitter_p),
        RandomGrayscale(p=grayscale),
        RandomGaussianBlur(sigma=sigma, kernel_size="sigma", p=blur),  # Pillow's blur by radius, at any size
    ]
    if solarize is not None:
        augs.append(RandomSolarize(p=solarize))
    return ViewPipeline(augs, normalize=normalize, compute_dtype=compute_dtype)


def _strength(jitter_strength: object) -> float:
    """SimCLR's colour-distortion strength, checked: it multiplies (0.8, 0.8, 0.8, 0.2)."""
    strength = _real(jitter_strength)
    if strength is None or not 0.0 <= strength <= 2.5:
        raise ValueError(
            f"`jitter_strength` must be a number in [0, 2.5] (it multiplies (0.8, 0.8, 0.8, 0.2); hue stays <= 0.5), "
            f"got {jitter_strength!r}."
        )
    return strength


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
    strength = _strength(jitter_strength)
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


def _local(num_local: object) -> int:
    if isinstance(num_local, bool) or not isinstance(num_local, int) or num_local < 0:
        raise ValueError(
            f"`num_local` must be the number of local crops, an int >= 0 (DINO's 8, lightly's 6), got {num_local!r}."
        )
    return num_local


def _per_crop(value: object, name: str, default: tuple[float, float, float]) -> tuple[float, float, float]:
    """``value`` as a triple (global 1, global 2, locals), or a ``TypeError`` naming ``name``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
        raise TypeError(
            f"`{name}` is one probability per crop kind, a triple (global 1, global 2, locals) such as {default}; "
            f"got {value!r}."
        )
    return tuple(check_probability(v, f"{name}[{i}]") for i, v in enumerate(value))  # type: ignore[return-value]


def dino(
    size: int | tuple[int, int] = 224,
    *,
    local_size: int | tuple[int, int] = 96,
    num_local: int = 8,
    global_scale: tuple[float, float] = (0.4, 1.0),
    local_scale: tuple[float, float] = (0.05, 0.4),
    blur: tuple[float, float, float] = (1.0, 0.1, 0.5),
    solarize: tuple[float, float, float] = (0.0, 0.2, 0.0),
    interpolation: str = "bicubic",
    normalize: Normalize | None = IMAGENET_NORMALIZE,
    compute_dtype: torch.dtype | None = None,
) -> MultiCrop:
    """DINO's multi-crop views (``facebookresearch/dino``, ``DataAugmentationDINO``; the module docstring).

    Every crop: a bicubic random resized crop, a flip (p 0.5), colour jitter (0.4, 0.4, 0.2, 0.1) with p 0.8,
    grayscale (p 0.2), Pillow's Gaussian blur with sigma in (0.1, 2.0), solarization at 128, ImageNet's normalisation;
    global crop 1 is always blurred, global crop 2 blurred with p 0.1 and solarized with p 0.2, the local crops
    blurred with p 0.5. Every crop has the same augmentations (a probability 0 where DINO has none), so all crops'
    parameters have the same names.

    Args:
        size: the global crops' size (224).
        local_size: the local crops' size (96).
        num_local: the number of local crops (DINO's default 8; lightly's ``DINOTransform`` 6).
        global_scale: the global crops' area range (DINO's ``--global_crops_scale``; (0.14, 1.0) without locals).
        local_scale: the local crops' area range (DINO's ``--local_crops_scale``).
        blur: the blur probability of global crop 1, global crop 2 and the local crops.
        solarize: the solarization probability of global crop 1, global crop 2 and the local crops.
        interpolation: the crops' resize filter, ``"bicubic"`` (DINO's, lightly's) or ``"bilinear"``.
        normalize: ``(mean, std)`` or None.
        compute_dtype: see :class:`~essl_aug.views.pipeline.ViewPipeline`.

    Example:
        >>> import torch
        >>> x = torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)
        >>> views, params = dino(16, local_size=8, num_local=2)(x)
        >>> [tuple(v.shape[-2:]) for v in views], [p["gaussian_blur"].p for p in dino().pipelines[1:3]]
        ([(16, 16), (16, 16), (8, 8), (8, 8)], [0.1, 0.5])
    """
    num_local = _local(num_local)
    blur = _per_crop(blur, "blur", (1.0, 0.1, 0.5))
    solarize = _per_crop(solarize, "solarize", (0.0, 0.2, 0.0))
    jitter = (0.4, 0.4, 0.2, 0.1)
    sizes, scales = (size, size, local_size), (global_scale, global_scale, local_scale)
    crops = [
        _view(s, sc, jitter, 0.8, 0.2, b, (0.1, 2.0), so, normalize, compute_dtype, interpolation)
        for s, sc, b, so in zip(sizes, scales, blur, solarize, strict=True)
    ]
    return MultiCrop((crops[0], crops[1]), crops[2], num_local)


def swav(
    size: int | tuple[int, int] = 224,
    *,
    local_size: int | tuple[int, int] = 96,
    num_local: int = 6,
    global_scale: tuple[float, float] = (0.14, 1.0),
    local_scale: tuple[float, float] = (0.05, 0.14),
    jitter_strength: float = 1.0,
    blur: float = 0.5,
    interpolation: str = "bilinear",
    normalize: Normalize | None = SWAV_NORMALIZE,
    compute_dtype: torch.dtype | None = None,
) -> MultiCrop:
    """SwAV's multi-crop views (``facebookresearch/swav``, ``MultiCropDataset``; the module docstring).

    Every crop: a bilinear random resized crop, a flip (p 0.5), colour jitter ``jitter_strength`` x (0.8, 0.8, 0.8,
    0.2) with p 0.8, grayscale (p 0.2), Pillow's Gaussian blur with sigma in (0.1, 2.0) with p 0.5, SwAV's
    normalisation (:data:`SWAV_NORMALIZE`); the global and the local crops differ only in size and area range.

    Args:
        size: the global crops' size (SwAV's ``--size_crops`` 224).
        local_size: the local crops' size (96).
        num_local: the number of local crops (SwAV's ``--nmb_crops 2 6``: 6).
        global_scale: the global crops' area range (``--min_scale_crops`` / ``--max_scale_crops``: (0.14, 1)).
        local_scale: the local crops' area range ((0.05, 0.14)).
        jitter_strength: multiplies (0.8, 0.8, 0.8, 0.2), SwAV's ``get_color_distortion(s)``.
        blur: the blur probability of every crop.
        interpolation: the crops' resize filter, ``"bilinear"`` (SwAV's) or ``"bicubic"``.
        normalize: ``(mean, std)`` or None.
        compute_dtype: see :class:`~essl_aug.views.pipeline.ViewPipeline`.

    Example:
        >>> crops = swav()
        >>> crops.num_local, crops.pipelines[2]["resized_crop"].size, crops.pipelines[2]["resized_crop"].scale
        (6, (96, 96), (0.05, 0.14))
    """
    num_local = _local(num_local)
    strength = _strength(jitter_strength)
    blur = check_probability(blur, "blur")
    jitter = (0.8 * strength, 0.8 * strength, 0.8 * strength, 0.2 * strength)
    crops = [
        _view(s, sc, jitter, 0.8, 0.2, blur, (0.1, 2.0), None, normalize, compute_dtype, interpolation)
        for s, sc in ((size, global_scale), (local_size, local_scale))
    ]
    return MultiCrop((crops[0], crops[0]), crops[1], num_local)


#: The recipes by name (:func:`dino` and :func:`swav` make :class:`~essl_aug.views.pipeline.MultiCrop` views, a
#: :class:`~essl_aug.views.pipeline.TwoViews` whose first two views are the global crops).
RECIPES: dict[str, Callable[..., TwoViews]] = {"simclr": simclr, "byol": byol, "dino": dino, "swav": swav}


def recipe(name: str, size: int | tuple[int, int] = 224, **options: object) -> TwoViews:
    """The recipe ``name`` (``"simclr"``, ``"byol"``, or the multi-crop ``"dino"``, ``"swav"``) for crops of
    ``size`` (the global crops' size for a multi-crop recipe; ``local_size`` and the others as ``options``).

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
