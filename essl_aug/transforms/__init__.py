"""Every transformation of the library, under one protocol (:mod:`essl_aug.transforms.base`).

The E-SSL families (a label per image, label 0 the identity): :class:`RandomRotation90`, :class:`RandomVerticalFlip`,
:class:`RandomHorizontalFlip`, :class:`RandomJigsaw`, :class:`RandomBlurLevels`, :class:`RandomInvert`,
:class:`RandomGrayscale`, :class:`RandomPeriodicTranslation`, :class:`RandomD4` and their :class:`Product`. The SSL
views' augmentations (continuous parameters): :class:`RandomResizedCrop`, :class:`ColorJitter`,
:class:`RandomGaussianBlur`, :class:`RandomSolarize`, :class:`RandomRotation`, :class:`RandomPeriodicShift`. A
family is an augmentation too (its ``p``), and an augmentation's parameters are targets too (``target``).

Example:
    >>> import torch
    >>> from essl_aug.transforms import RandomResizedCrop, RandomRotation90
    >>> x = torch.rand(4, 3, 32, 32)
    >>> crops, box = RandomResizedCrop(16)(x)
    >>> turned, labels = RandomRotation90()(crops)
    >>> turned.shape, box.box.shape, labels.labels.shape
    (torch.Size([4, 3, 16, 16]), torch.Size([4, 4]), torch.Size([4]))
"""

from essl_aug.transforms import base
from essl_aug.transforms.base import *  # noqa: F403 - the protocol: Transformation, Params, Family, ...
from essl_aug.transforms.blur_levels import RandomBlurLevels
from essl_aug.transforms.color_jitter import ColorJitter, ColorJitterParams
from essl_aug.transforms.d4 import RandomD4
from essl_aug.transforms.gaussian_blur import BlurParams, RandomGaussianBlur
from essl_aug.transforms.grayscale import RandomGrayscale
from essl_aug.transforms.horizontal_flip import RandomHorizontalFlip
from essl_aug.transforms.invert import RandomInvert
from essl_aug.transforms.jigsaw import PERMUTATIONS, RandomJigsaw
from essl_aug.transforms.periodic_shift import RandomPeriodicShift, ShiftParams
from essl_aug.transforms.periodic_translation import RandomPeriodicTranslation
from essl_aug.transforms.product import Product
from essl_aug.transforms.resized_crop import CropParams, RandomResizedCrop
from essl_aug.transforms.rotation import RandomRotation, RotationParams
from essl_aug.transforms.rotation90 import RandomRotation90
from essl_aug.transforms.solarize import RandomSolarize
from essl_aug.transforms.vertical_flip import RandomVerticalFlip

__all__ = [
    *base.__all__,
    "PERMUTATIONS",
    "BlurParams",
    "ColorJitter",
    "ColorJitterParams",
    "CropParams",
    "Product",
    "RandomBlurLevels",
    "RandomD4",
    "RandomGaussianBlur",
    "RandomGrayscale",
    "RandomHorizontalFlip",
    "RandomInvert",
    "RandomJigsaw",
    "RandomPeriodicShift",
    "RandomPeriodicTranslation",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomRotation90",
    "RandomSolarize",
    "RandomVerticalFlip",
    "RotationParams",
    "ShiftParams",
]
