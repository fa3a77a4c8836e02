"""The main job, ``make demo``: SimCLR vs E-SimCLR on the bundled digits (or Fashion-MNIST), several seeds,
linear-probe accuracy mean +- std (a study of :mod:`benchmarks.toolkit.study`).

The datasets (:data:`DATASETS`):

- ``digits`` (the default): scikit-learn's digits, 16x16 RGB (:func:`~benchmarks.toolkit.data.load_digits_rgb`),
  1078 training and 719 test images; 30 epochs.
- ``fashion-mnist``: Fashion-MNIST (:func:`~benchmarks.toolkit.data.load_fashion_mnist`), 28x28 gray (one
  channel, the data as they are), pre-trained on a class-stratified subset of 5,000 training images that the linear
  probe also trains on, scored on the full 10,000-image test set; 10 epochs. The SimCLR views are random resized
  crops of 28 px (area 0.2 to 1), horizontal flips with probability 0.5 (clothes are nearly mirror-symmetric;
  digits are not, so their recipe has none) and brightness/contrast jitter. Quarter turns need square views and
  the jigsaw an even side: 28 and 14 are both. The grayscale family leaves gray images as they are: it is refused
  on this data.

Every dataset's SSL view is a pipeline of the library (:func:`~benchmarks.toolkit.views.view`); the extra E-SSL view
is the library's reference (:func:`essl_aug.views.extra_view`: a random resized crop of half the SSL views' size,
area 0.2 to 1, with a horizontal flip, colour jitter and grayscale), 8 px on the digits and 14 px on Fashion-MNIST.
Its flip makes the horizontal flip itself unpredictable: ``--family hflip`` (and families holding it, d4) give the
head nothing to learn.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.toolkit.data import LabelledImages, load_digits_rgb, load_fashion_mnist
from benchmarks.toolkit.pretrain import DIGITS_VIEW, PretrainConfig
from benchmarks.toolkit.report import check_output_dir, fmt
from benchmarks.toolkit.study import family_label, paired_difference, random_init_accuracy, run_study, write_study
from benchmarks.toolkit.views import view
from essl_aug.registry import FamilySpec
from essl_aug.views import ViewPipeline

#: The default recipe of the demo (docs/guides/demo.md says how it was chosen): 16 px crops of area 0.2 to 1,
#: colour jitter with probability 0.8, grayscale with probability 0.2.
DEFAULT_VIEW = DIGITS_VIEW
DEFAULT_EPOCHS = 30
#: The files the demo writes into its ``--out`` folder.
DEMO_FILES = ("demo.json", "demo.png")


@dataclass(frozen=True)
class DemoDataset:
    """A dataset of the demo and its recipe.

    Args:
        title: what the demo prints.
        view: the pipeline of the two SimCLR views (the extra E-SSL view is the reference at half their size).
        size: the side of the views.
        channels: the images' channels.
        epochs: the default number of pretraining epochs.
        train_size: the default pre-training subset (``None``: the dataset's fixed training split).
    """

    title: str
    view: ViewPipeline
    size: int
    channels: int
    epochs: int
    train_size: int | None = None


def fashion_view(scale: float = 0.2) -> ViewPipeline:
    """The Fashion-MNIST recipe's SSL view with crops of area ``scale`` to 1: 28 px, flips with probability 0.5,
    brightness and contrast jitter of 0.4 with probability 0.8, on 1-channel images."""
    return view(28, (scale, 1.0), flip=0.5, jitter=0.8, channels=1)


FASHION_VIEW = fashion_view()
DATASETS = {
    "digits": DemoDataset("scikit-learn digits", DEFAULT_VIEW, 16, 3, DEFAULT_EPOCHS),
    "fashion-mnist": DemoDataset("Fashion-MNIST", FASHION_VIEW, 28, 1, 10, 5_000),
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
    ``weight * CE`` of the head of :class:`~essl_aug.objectives.ESSL` predicting every element of ``family`` on the
    reference extra view (half size). ``epochs`` defaults to the dataset's (:data:`DATASETS`); ``dataset``, ``data`` and
    ``train_size`` are as in :func:`load_dataset`. Before any training, ``out`` is checked
    (:func:`~benchmarks.toolkit.report.check_output_dir`), the data are loaded and the runs are checked
    (:func:`~benchmarks.toolkit.study.check_plan`); the two files are written whole or not at all.
    """
    started = time.perf_counter()
    check_output_dir(out, DEMO_FILES)
    images = load_dataset(dataset, data, train_size, limit)
    recipe = DATASETS[dataset]
    epochs = recipe.epochs if epochs is None else epochs
    base = PretrainConfig(essl=None, epochs=epochs, batch_size=batch_size, width=width, view=recipe.view)
    name = family_label(family)
    essl = {"transform": family, "lambda": weight}
    methods = {"SimCLR": base, f"E-SimCLR ({name})": dataclasses.replace(base, essl=essl)}
    c, h, w = images.train_x.shape[1:]
    echo(
        f"demo: SimCLR vs E-SimCLR ({name}, lambda={weight}) on {recipe.title} "
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
