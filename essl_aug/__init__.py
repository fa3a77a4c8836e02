"""essl-aug: exact, batched transformations with their parameters and the E-SSL objective for any SSL training loop.

- :mod:`essl_aug.transforms`: every transformation under one protocol (per-image parameters drawn on the device,
  ``apply``, targets): the E-SSL families and the SSL views' augmentations; :mod:`essl_aug.functional` their ops;
- :class:`EquivariantTransform`: a family's elements on a batch, with labels (the paper's entry point);
- :mod:`essl_aug.views`: the SSL views of the usual recipes and the reference extra view, with every parameter;
- :class:`EquivarianceHead`, :class:`EquivarianceLoss` and :mod:`essl_aug.objectives`: what is added to the SSL loss;
  :mod:`essl_aug.config`: the ``essl:`` block every adapter reads.
"""

from essl_aug import _deprecated, transforms
from essl_aug._fast import fast_forms, set_fast_forms
from essl_aug.functional import periodic_roll
from essl_aug.head import EquivarianceHead
from essl_aug.loss import EquivarianceLoss, EquivarianceOutput, equivariance_loss
from essl_aug.registry import build_family, build_transformation, continuous_names, family_names, register_family
from essl_aug.transform import EquivariantTransform
from essl_aug.transforms import *  # noqa: F403 - every transformation, as essl_aug.transforms.__all__ lists them

__version__ = "0.1.0"

__all__ = [
    *transforms.__all__,
    "EquivarianceHead",
    "EquivarianceLoss",
    "EquivarianceOutput",
    "EquivariantTransform",
    "__version__",
    "build_family",
    "build_transformation",
    "continuous_names",
    "equivariance_loss",
    "family_names",
    "fast_forms",
    "periodic_roll",
    "register_family",
    "set_fast_forms",
]

__getattr__ = _deprecated.aliases(
    "essl_aug",
    {
        "Rotation": "essl_aug.transforms:RandomRotation90",
        "VerticalFlip": "essl_aug.transforms:RandomVerticalFlip",
        "HorizontalFlip": "essl_aug.transforms:RandomHorizontalFlip",
        "Jigsaw": "essl_aug.transforms:RandomJigsaw",
        "BlurLevels": "essl_aug.transforms:RandomBlurLevels",
        "Inversion": "essl_aug.transforms:RandomInvert",
        "Grayscale": "essl_aug.transforms:RandomGrayscale",
        "PeriodicTranslation": "essl_aug.transforms:RandomPeriodicTranslation",
        "D4": "essl_aug.transforms:RandomD4",
        "TransformFamily": "essl_aug.transforms:Family",
        "GroupFamily": "essl_aug.transforms:Group",
        "PixelPermutationFamily": "essl_aug.transforms:PixelMove",
    },
)
