"""Small, self-contained E-SSL experiments: the ``essl-aug demo`` job, ``essl-aug show`` and the quality benchmark.

Everything here runs on a laptop CPU in minutes on scikit-learn's bundled digits (no download). It needs the
``demo`` extra (``pip install "essl-aug[demo]"``: scikit-learn, matplotlib, tqdm); those packages are imported
only when a function needs them.
"""

from essl_aug.experiments.augment import ViewAugment, invariance_augment, random_resized_crop
from essl_aug.experiments.data import Digits, load_digits_rgb
from essl_aug.experiments.models import SmallCNN, projector
from essl_aug.experiments.pretrain import PretrainConfig, PretrainResult, pretrain
from essl_aug.experiments.probe import linear_probe
from essl_aug.experiments.simclr import info_nce_cross_view, nt_xent

__all__ = [
    "Digits",
    "PretrainConfig",
    "PretrainResult",
    "SmallCNN",
    "ViewAugment",
    "info_nce_cross_view",
    "invariance_augment",
    "linear_probe",
    "load_digits_rgb",
    "nt_xent",
    "pretrain",
    "projector",
    "random_resized_crop",
]
