"""The training toolkit: one copy of every piece the demo and the benchmarks train with (outside the wheel).

- :mod:`~benchmarks.toolkit.data`: the bundled digits, Fashion-MNIST (the Debian package
  ``dataset-fashion-mnist``, read by torchvision) and CIFAR-10 from local files, never downloaded;
- :mod:`~benchmarks.toolkit.views`: the recipes' SSL views as the library's pipelines (:mod:`essl_aug.views`), and
  a family as an invariance augmentation;
- :mod:`~benchmarks.toolkit.models`, :mod:`~benchmarks.toolkit.resnet`: the small CNN, the CIFAR ResNet-18
  and the SimCLR projector;
- :mod:`~benchmarks.toolkit.simclr`, :mod:`~benchmarks.toolkit.vicreg`: the SSL losses;
- :mod:`~benchmarks.toolkit.pretrain`: the learning-rate schedule, the pre-training loop (every objective added
  through :class:`essl_aug.objectives.Objectives`, E-SSL's being :class:`essl_aug.objectives.ESSL`) and the digits
  recipe, configured by the library's ``essl:`` block (:mod:`essl_aug.config`);
- :mod:`~benchmarks.toolkit.probe`: linear probes of a frozen backbone;
- :mod:`~benchmarks.toolkit.study`: studies (a plan of methods over seeds on one dataset, one report);
- :mod:`~benchmarks.toolkit.report`: summaries, environment, compact JSON, PNG plots, files written whole;
- :mod:`~benchmarks.toolkit.options`: command-line option parsers;
- :mod:`~benchmarks.toolkit.demo`: the main job (``make demo``, ``python -m benchmarks.demo``).

``import essl_aug`` never imports this package. The digits experiments run on a laptop CPU in minutes and need
the ``demo`` extra (``pip install "essl-aug[demo]"``: scikit-learn, matplotlib, tqdm); Fashion-MNIST also needs
torchvision. Those packages are imported only when a function needs them.
"""

from benchmarks.toolkit.data import Digits, LabelledImages, load_cifar10, load_digits_rgb, load_fashion_mnist
from benchmarks.toolkit.models import SmallCNN, projector
from benchmarks.toolkit.pretrain import (
    PretrainConfig,
    PretrainResult,
    essl_config,
    pretrain,
    pretrain_loop,
    warmup_cosine,
)
from benchmarks.toolkit.probe import linear_probe, sgd_linear_probe
from benchmarks.toolkit.resnet import CifarResNet18
from benchmarks.toolkit.simclr import info_nce_cross_view, nt_xent
from benchmarks.toolkit.views import invariance, view

__all__ = [
    "CifarResNet18",
    "Digits",
    "LabelledImages",
    "PretrainConfig",
    "PretrainResult",
    "SmallCNN",
    "essl_config",
    "info_nce_cross_view",
    "invariance",
    "linear_probe",
    "load_cifar10",
    "load_digits_rgb",
    "load_fashion_mnist",
    "nt_xent",
    "pretrain",
    "pretrain_loop",
    "projector",
    "sgd_linear_probe",
    "view",
    "warmup_cosine",
]
