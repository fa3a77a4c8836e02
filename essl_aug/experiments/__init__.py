"""The training toolkit: one copy of every piece the ``essl-aug`` command and the benchmarks train with.

- :mod:`~essl_aug.experiments.data`: the bundled digits, Fashion-MNIST (the Debian package
  ``dataset-fashion-mnist``, read by torchvision) and CIFAR-10 from local files, never downloaded;
- :mod:`~essl_aug.experiments.augment`: batched SSL view augmentations driven by a ``torch.Generator``;
- :mod:`~essl_aug.experiments.models`, :mod:`~essl_aug.experiments.resnet`: the small CNN, the CIFAR ResNet-18
  and the SimCLR projector;
- :mod:`~essl_aug.experiments.simclr`: SimCLR's contrastive losses;
- :mod:`~essl_aug.experiments.pretrain`: the learning-rate schedule, the pre-training loop and the digits recipe;
- :mod:`~essl_aug.experiments.probe`: linear probes of a frozen backbone;
- :mod:`~essl_aug.experiments.study`: studies (a plan of methods over seeds on one dataset, one report);
- :mod:`~essl_aug.experiments.report`: summaries, environment, compact JSON and PNG plots;
- :mod:`~essl_aug.experiments.options`: command-line option parsers;
- :mod:`~essl_aug.experiments.demo`, :mod:`~essl_aug.experiments.show`: the ``essl-aug demo`` and ``show`` jobs.

``import essl_aug`` never imports this package. The digits experiments run on a laptop CPU in minutes and need
the ``demo`` extra (``pip install "essl-aug[demo]"``: scikit-learn, matplotlib, tqdm); Fashion-MNIST also needs
torchvision. Those packages are imported only when a function needs them.
"""

from essl_aug.experiments.augment import ViewAugment, invariance_augment, random_resized_crop
from essl_aug.experiments.data import Digits, LabelledImages, load_cifar10, load_digits_rgb, load_fashion_mnist
from essl_aug.experiments.models import SmallCNN, projector
from essl_aug.experiments.pretrain import PretrainConfig, PretrainResult, pretrain, pretrain_loop, warmup_cosine
from essl_aug.experiments.probe import linear_probe, sgd_linear_probe
from essl_aug.experiments.resnet import CifarResNet18
from essl_aug.experiments.simclr import info_nce_cross_view, nt_xent

__all__ = [
    "CifarResNet18",
    "Digits",
    "LabelledImages",
    "PretrainConfig",
    "PretrainResult",
    "SmallCNN",
    "ViewAugment",
    "info_nce_cross_view",
    "invariance_augment",
    "linear_probe",
    "load_cifar10",
    "load_digits_rgb",
    "load_fashion_mnist",
    "nt_xent",
    "pretrain",
    "pretrain_loop",
    "projector",
    "random_resized_crop",
    "sgd_linear_probe",
    "warmup_cosine",
]
