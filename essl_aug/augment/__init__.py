"""Deprecated: the SSL views' augmentations are in :mod:`essl_aug.transforms`, their pipelines and recipes in
:mod:`essl_aug.views`, the DataLoader path in :mod:`essl_aug.adapters.loader`. Every name this package had is kept
for one release; ``essl_aug.augment.pipeline`` and ``.recipes`` are :mod:`essl_aug.views`'s modules."""

import sys

from essl_aug import _deprecated
from essl_aug.views import pipeline, recipes

for _name, _module in (("pipeline", pipeline), ("recipes", recipes)):
    sys.modules[f"{__name__}.{_name}"] = _module

_RENAMED = {
    "Augmentation": "essl_aug.transforms:Transformation",
    "HorizontalFlip": "essl_aug.transforms:RandomHorizontalFlip",
    "GaussianBlur": "essl_aug.transforms:RandomGaussianBlur",
    "Solarize": "essl_aug.transforms:RandomSolarize",
    "FlipParams": "essl_aug.transforms:LabelParams",
    "GrayscaleParams": "essl_aug.transforms:LabelParams",
    "SolarizeParams": "essl_aug.transforms:Params",
}
_MOVED = {
    **{n: "essl_aug.transforms" for n in ("BlurParams", "ColorJitter", "ColorJitterParams", "CropParams", "Params")},
    **{n: "essl_aug.transforms" for n in ("RandomGrayscale", "RandomResizedCrop", "RandomRotation", "RotationParams")},
    **{n: "essl_aug.transforms" for n in ("TargetSpec",)},
    **{n: "essl_aug.views" for n in ("IMAGENET_NORMALIZE", "RECIPES", "TwoViews", "ViewPipeline", "Views")},
    **{n: "essl_aug.views" for n in ("byol", "recipe", "simclr")},
    **{n: "essl_aug.adapters.loader" for n in ("ViewsDataset", "collate_views")},
}
__getattr__ = _deprecated.aliases(__name__, {**_RENAMED, **{n: f"{m}:{n}" for n, m in _MOVED.items()}})
