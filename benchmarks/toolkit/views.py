"""The views of the recipes, made with the library's pipelines (:mod:`essl_aug.views`).

- :func:`view`: a recipe's SSL view, a :class:`~essl_aug.views.ViewPipeline` of
  :class:`~essl_aug.RandomResizedCrop`, :class:`~essl_aug.RandomHorizontalFlip`, :class:`~essl_aug.ColorJitter` and
  :class:`~essl_aug.RandomGrayscale`, every parameter returned for the objectives that read them;
- :func:`invariance`: a family used as an augmentation of the SSL views (each view keeps the identity with
  probability ``1 - p``, else gets a uniformly drawn non-identity element: the family's own draw given ``p``);
- :func:`output_shape`: the shape of the views a pipeline makes (the extra view's size follows the SSL views').

The extra E-SSL view is the library's reference, :func:`essl_aug.views.extra_view` (through
:meth:`essl_aug.config.ESSLConfig.extra_view`); there is no other.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from essl_aug import ColorJitter, Family, Product, RandomGrayscale, RandomHorizontalFlip, RandomResizedCrop
from essl_aug.registry import FamilySpec, build_family
from essl_aug.transforms import Transformation
from essl_aug.views import ViewPipeline
from essl_aug.views.pipeline import Normalize

__all__ = ["invariance", "output_shape", "view"]


def view(
    size: int,
    scale: tuple[float, float] = (0.2, 1.0),
    *,
    flip: float = 0.0,
    jitter: float = 0.0,
    strength: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
    gray: float = 0.0,
    channels: int = 3,
    normalize: Normalize | None = None,
) -> ViewPipeline:
    """A recipe's SSL view: a random resized crop of ``size`` px (area ``scale``), then, where their probability is
    positive, a horizontal flip (``flip``), colour jitter (``strength``: brightness, contrast, saturation, hue as
    torchvision's ``ColorJitter``; ``p=jitter``) and grayscale (``gray``); float views in [0, 1] (``normalize``:
    ``(mean, std)`` applied last).

    On 1-channel images (``channels=1``) the jitter keeps brightness and contrast only (saturation and hue built at
    0, so that their factors and AugSelf's colour targets are the identity: they would leave gray images unchanged
    anyway) and the grayscale is left out. The same settings give the same pipeline object (cached, however they are
    spelled), so that two configurations of one recipe compare equal.

    Example:
        >>> fashion = view(28, flip=0.5, jitter=0.8, channels=1)
        >>> fashion.names, fashion["color_jitter"].saturation
        (('resized_crop', 'hflip', 'color_jitter'), (1.0, 1.0))
        >>> view(16, jitter=0.8, gray=0.2) is view(16, (0.2, 1), jitter=0.8, gray=0.2, channels=3)
        True
    """
    return _view(
        int(size),
        (float(scale[0]), float(scale[1])),
        float(flip),
        float(jitter),
        (float(strength[0]), float(strength[1]), float(strength[2]), float(strength[3])),
        float(gray),
        int(channels),
        None if normalize is None else (tuple(map(float, normalize[0])), tuple(map(float, normalize[1]))),
    )


@functools.cache
def _view(
    size: int,
    scale: tuple[float, float],
    flip: float,
    jitter: float,
    strength: tuple[float, float, float, float],
    gray: float,
    channels: int,
    normalize: Normalize | None,
) -> ViewPipeline:
    """:func:`view` with its settings in one spelling (the cache's key)."""
    augs: list[Transformation[Any]] = [RandomResizedCrop(size, scale=scale)]
    if flip > 0:
        augs.append(RandomHorizontalFlip(p=flip))
    if jitter > 0:
        b, c, s, h = strength
        if channels == 1:
            s, h = 0.0, 0.0
        augs.append(ColorJitter(brightness=b, contrast=c, saturation=s, hue=h, p=jitter))
    if gray > 0 and channels == 3:
        augs.append(RandomGrayscale(p=gray))
    return ViewPipeline(augs, normalize=normalize)


def invariance(family: FamilySpec, p: float) -> Family:
    """``family`` (a name, a list of names for a product, a mapping) drawing the identity with probability ``1 - p``
    and a uniformly drawn non-identity element otherwise (the co-author E-SSL code's "invariance" mode).

    Example:
        >>> invariance("rotation", 0.5), invariance(["rotation", "vflip"], 0.5).p
        (RandomRotation90(num_classes=4, p=0.5), 0.5)
    """
    if isinstance(family, Sequence) and not isinstance(family, str) and len(family) > 1:
        return Product([build_family(part) for part in family], p=p)
    if isinstance(family, Sequence) and not isinstance(family, str):
        family = family[0]
    return build_family(family, p=p)


def output_shape(pipeline: ViewPipeline, shape: Sequence[int]) -> tuple[int, int, int, int]:
    """The shape of the views ``pipeline`` makes of a batch shaped ``shape`` (B, C, H, W).

    Example:
        >>> output_shape(view(16), (8, 3, 32, 32))
        (8, 3, 16, 16)
    """
    out = tuple(int(s) for s in shape)
    for aug in pipeline:
        out = aug.output_shape(out)
    return out  # type: ignore[return-value]
