"""The SSL views' own augmentations, batched on the device, with every per-image parameter returned.

Each augmentation draws its parameters per image on the input's device (``sample``), applies them exactly
(``apply``, checked against torchvision's functional op with the same parameters) and turns them into a head's
target (``target``) or the difference between two views (``relative``, AugSelf's targets); :mod:`base
<essl_aug.augment.base>` states the protocol. :class:`TwoViews` and the named recipes (:func:`simclr`,
:func:`byol`) make the two views of the standard recipes with their parameters; :class:`ViewsDataset` runs the same
augmentations per image in a ``DataLoader``.

Example:
    >>> import torch
    >>> from essl_aug.augment import simclr
    >>> views, params = simclr(16)(torch.randint(0, 256, (4, 3, 24, 24), dtype=torch.uint8))
    >>> views[0].shape, params[0]["resized_crop"].box.shape
    (torch.Size([4, 3, 16, 16]), torch.Size([4, 4]))
"""

from essl_aug.augment.base import Augmentation, Params, TargetSpec
from essl_aug.augment.blur import BlurParams, GaussianBlur
from essl_aug.augment.color import ColorJitter, ColorJitterParams
from essl_aug.augment.crop import CropParams, RandomResizedCrop
from essl_aug.augment.flip import FlipParams, HorizontalFlip
from essl_aug.augment.grayscale import GrayscaleParams, RandomGrayscale
from essl_aug.augment.loader import ViewsDataset, collate_views
from essl_aug.augment.pipeline import TwoViews, ViewPipeline, Views
from essl_aug.augment.recipes import IMAGENET_NORMALIZE, RECIPES, byol, recipe, simclr
from essl_aug.augment.rotation import RandomRotation, RotationParams
from essl_aug.augment.solarize import Solarize, SolarizeParams

__all__ = [
    "IMAGENET_NORMALIZE",
    "RECIPES",
    "Augmentation",
    "BlurParams",
    "ColorJitter",
    "ColorJitterParams",
    "CropParams",
    "FlipParams",
    "GaussianBlur",
    "GrayscaleParams",
    "HorizontalFlip",
    "Params",
    "RandomGrayscale",
    "RandomResizedCrop",
    "RandomRotation",
    "RotationParams",
    "Solarize",
    "SolarizeParams",
    "TargetSpec",
    "TwoViews",
    "ViewPipeline",
    "Views",
    "ViewsDataset",
    "byol",
    "collate_views",
    "recipe",
    "simclr",
]
