"""essl-aug: exact, batched transformation families and the E-SSL objective for any SSL training loop."""

from essl_aug.blur import BlurLevels
from essl_aug.family import GroupFamily, TransformFamily
from essl_aug.flip import HorizontalFlip, VerticalFlip
from essl_aug.functional import periodic_roll
from essl_aug.grayscale import Grayscale
from essl_aug.head import EquivarianceHead
from essl_aug.invert import Inversion
from essl_aug.jigsaw import PERMUTATIONS, Jigsaw
from essl_aug.loss import EquivarianceLoss, EquivarianceOutput, equivariance_loss
from essl_aug.periodic import D4, PeriodicTranslation, RandomPeriodicShift
from essl_aug.permutation import PixelPermutationFamily
from essl_aug.product import Product
from essl_aug.registry import build_family, family_names, register_family
from essl_aug.rotation import Rotation
from essl_aug.transform import EquivariantTransform

__version__ = "0.1.0"

__all__ = [
    "D4",
    "PERMUTATIONS",
    "BlurLevels",
    "EquivarianceHead",
    "EquivarianceLoss",
    "EquivarianceOutput",
    "EquivariantTransform",
    "Grayscale",
    "GroupFamily",
    "HorizontalFlip",
    "Inversion",
    "Jigsaw",
    "PeriodicTranslation",
    "PixelPermutationFamily",
    "Product",
    "RandomPeriodicShift",
    "Rotation",
    "TransformFamily",
    "VerticalFlip",
    "__version__",
    "build_family",
    "equivariance_loss",
    "family_names",
    "periodic_roll",
    "register_family",
]
