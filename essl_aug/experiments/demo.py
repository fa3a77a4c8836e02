"""The main job, ``essl-aug demo``: SimCLR vs E-SimCLR on the bundled digits (or Fashion-MNIST), several seeds,
linear-probe accuracy mean +- std (a study of :mod:`essl_aug.experiments.study`).

The datasets (:data:`DATASETS`):

- ``digits`` (the default): scikit-learn's digits, 16x16 RGB (:func:`~essl_aug.experiments.data.load_digits_rgb`),
  1078 training and 719 test images; 30 epochs.
- ``fashion-mnist``: Fashion-MNIST (:func:`~essl_aug.experiments.data.load_fashion_mnist`), 28x28 gray (one
  channel, the data as they are), pre-trained on a class-stratified subset of 5,000 training images that the linear
  probe also trains on, scored on the full 10,000-image test set; 10 epochs. The SimCLR views are random resized
  crops of 28 px (area 0.2 to 1), horizontal flips with probability 0.5 (clothes are nearly mirror-symmetric;
  digits are not, so their recipe has none) and brightness/contrast jitter; the E-SSL view is the same at 14 px
  without the flip, so that every family, hflip included, stays predictable. Quarter turns need square views and
  the jigsaw an even side: 28 and 14 are both. The grayscale family needs RGB images: it is refused on this data.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from essl_aug.experiments.augment import ViewAugment
from essl_aug.experiments.data import LabelledImages, load_digits_rgb, load_fashion_mnist
from essl_aug.experiments.pretrain import PretrainConfig
from essl_aug.experiments.report import check_output_dir, fmt
from essl_aug.experiments.study import family_label, paired_difference, random_init_accuracy, run_study, write_study
from essl_aug.registry import FamilySpec

#: The default recipe of the demo (docs/guides/demo.md says how it was chosen).
DEFAULT_VIEW = ViewAugment(size=16, scale=(0.2, 1.0), jitter=0.8, grayscale=0.2)
DEFAULT_ESSL_VIEW = dataclasses.replace(DEFAULT_VIEW, size=8)
DEFAULT_EPOCHS = 30
#: The files the demo writes into its ``--out`` folder.
DEMO_FILES = ("demo.json", "demo.png")


@dataclass(frozen=True)
class DemoDataset:
    """A dataset of the demo and its recipe.

    Args:
        title: what the demo prints.
        view: the base augmentation of the two SimCLR views.
        essl_view: the base augmentation of the extra E-SSL view (half size).
        epochs: the default number of pretraining epochs.
        train_size: the default pre-training subset (``None``: the dataset's fixed training split).
    """

    title: str
    view: ViewAugment
    essl_view: ViewAugment
    epochs: int
    train_size: int | None = None


FASHION_VIEW = ViewAugment(size=28, scale=(0.2, 1.0), hflip=0.5, jitter=0.8)
DATASETS = {
    "digits": DemoDataset("scikit-learn digits", DEFAULT_VIEW, DEFAULT_ESSL_VIEW, DEFAULT_EPOCHS),
    "fashion-mnist": DemoDataset(
        "Fashion-MNIST", FASHION_VIEW, dataclasses.replace(FASHION_VIEW, size=14, hflip=0.0), 10, 5_000
    ),
}


def load_dataset(
    dataset: str = "digits", data: Path | str | None = None, train_size: int | None = None, limit: int | None = None
) -> LabelledImages:
    """The images of ``dataset`` (a key of :data:`DATASETS`) as the demo and the quality benchmark use them.

    ``data`` (a folder with the four IDX files) and ``train_size`` (default: the recipe's) apply to Fashion-MNIST
    only; ``limit`` keeps the first ``limit`` images of each split.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if dataset == "digits":
        if data is not None:
            raise ValueError("`--data` applies to --dataset fashion-mnist; the digits come with scikit-learn")
        if train_size is not None:
            raise ValueError("`--train-size` applies to --dataset fashion-mnist; the digits split is fixed")
        return load_digits_rgb(limit=limit)
    return load_fashion_mnist(data, train_size=train_size or DATASETS[dataset].train_size, limit=limit)


def run_demo(
    family: FamilySpec = "rotation",
    weight: float = 0.4,
    epochs: int | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    device: torch.device | str = "cpu",
    out: Path | str = "essl-demo",
    batch_size: int = 256,
    width: int = 16,
    limit: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    dataset: str = "digits",
    data: Path | str | None = None,
    train_size: int | None = None,
) -> dict[str, Any]:
    """Run the demo and write ``demo.json`` and ``demo.png`` into ``out``; returns the JSON payload.

    Both methods share everything (data, augmentations, optimiser, epochs, seeds); E-SimCLR adds
    ``weight * CE`` of an :class:`~essl_aug.EquivarianceHead` predicting every element of ``family`` on an
    extra half-size view. ``epochs`` defaults to the dataset's (:data:`DATASETS`); ``dataset``, ``data`` and
    ``train_size`` are as in :func:`load_dataset`. Before any training, ``out`` is checked
    (:func:`~essl_aug.experiments.report.check_output_dir`), the data are loaded and the runs are checked
    (:func:`~essl_aug.experiments.study.check_plan`); the two files are written whole or not at all.
    """
    started = time.perf_counter()
    check_output_dir(out, DEMO_FILES)
    images = load_dataset(dataset, data, train_size, limit)
    recipe = DATASETS[dataset]
    epochs = recipe.epochs if epochs is None else epochs
    base = PretrainConfig(
        essl=None, epochs=epochs, batch_size=batch_size, width=width, view=recipe.view, essl_view=recipe.essl_view
    )
    name = family_label(family)
    methods = {"SimCLR": base, f"E-SimCLR ({name})": dataclasses.replace(base, essl=family, weight=weight)}
    c, h, w = images.train_x.shape[1:]
    echo(
        f"essl-aug demo: SimCLR vs E-SimCLR ({name}, lambda={weight}) on {recipe.title} "
        f"({len(images.train_x)} train / {len(images.test_x)} test images, {h}x{w} {'RGB' if c == 3 else 'gray'}), "
        f"{epochs} epochs, seeds {list(seeds)}, device {device}, {torch.get_num_threads()} torch threads"
    )
    groups = run_study(images, {dataset: methods}, seeds, device, progress, "demo")
    results = groups[dataset]
    floor = random_init_accuracy(images, width, seeds, device)
    (sim, ess) = results.values()
    paired = paired_difference(sim["accuracies"], ess["accuracies"])
    payload = write_study(
        out,
        "demo",
        {
            "family": name,
            "lambda": weight,
            "epochs": epochs,
            "seeds": list(seeds),
            "batch_size": batch_size,
            "width": width,
            "device": str(device),
        },
        images,
        {"results": results},
        groups,
        floor,
        started,
        f"SimCLR vs E-SimCLR ({name}), {len(seeds)} seeds, {epochs} epochs",
        extra={"paired_difference": paired},
    )
    width_col = max(len(k) for k in results) + 2
    echo("linear-probe test accuracy (%), mean +- std over seeds:")
    for k, v in results.items():
        echo(f"  {k:<{width_col}} {fmt(v)}   per seed: {', '.join(f'{100 * a:.2f}' for a in v['accuracies'])}")
    echo(f"  {'random-init backbone':<{width_col}} {fmt(floor)}")
    gap = ess["mean"] - sim["mean"]
    spread = max(sim["std"], ess["std"])
    verdict = "beyond" if abs(gap) > spread and len(seeds) > 1 else "within"
    echo(f"E-SimCLR - SimCLR: {100 * gap:+.2f} points ({verdict} the seed spread of {100 * spread:.2f})")
    ci = ""
    if "ci95" in paired:
        lo, hi = paired["ci95"]
        ci = f", 95 % CI [{100 * lo:+.2f}, {100 * hi:+.2f}] ({'excludes' if lo > 0 or hi < 0 else 'contains'} 0)"
    echo(
        f"paired by seed (same initialisation, data order and SSL views): {100 * paired['mean']:+.2f} +- "
        f"{100 * paired['std']:.2f} points{ci}, E-SimCLR ahead on {paired['wins']} of {len(seeds)} seeds"
    )
    out = Path(out)
    echo(f"wrote {out / 'demo.json'} and {out / 'demo.png'} in {payload['wall_seconds']:.0f} s")
    return payload
