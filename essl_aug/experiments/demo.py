"""The main job: SimCLR vs E-SimCLR on the bundled digits, several seeds, linear-probe accuracy mean +- std."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from essl_aug.experiments.augment import ViewAugment
from essl_aug.experiments.data import Digits, load_digits_rgb
from essl_aug.experiments.models import SmallCNN
from essl_aug.experiments.pretrain import PretrainConfig, pretrain
from essl_aug.experiments.probe import linear_probe
from essl_aug.experiments.report import environment, fmt, mean_std, plot_groups, summarise, write_json
from essl_aug.registry import FamilySpec

#: The default recipe of the demo (see the README for how it was chosen).
DEFAULT_VIEW = ViewAugment(size=16, scale=(0.2, 1.0), jitter=0.8, grayscale=0.2)
DEFAULT_ESSL_VIEW = dataclasses.replace(DEFAULT_VIEW, size=8)
DEFAULT_EPOCHS = 30


def family_label(family: FamilySpec) -> str:
    """A short printable name of a family spec (``"rotation"``, ``"rotation x vflip"``)."""
    if isinstance(family, str):
        return family
    if isinstance(family, (list, tuple)):
        return " x ".join(family_label(f) for f in family)
    return getattr(family, "name", str(family))


def paired_difference(baseline: Sequence[float], candidate: Sequence[float]) -> dict[str, Any]:
    """Per-seed ``candidate - baseline``: mean, std and the number of seeds where the candidate is ahead.

    Example:
        >>> d = paired_difference([0.90, 0.92, 0.91], [0.91, 0.94, 0.91])
        >>> round(d["mean"], 4), d["wins"]
        (0.01, 2)
    """
    diffs = [float(c) - float(b) for b, c in zip(baseline, candidate, strict=True)]
    m, s = mean_std(diffs)
    return {"differences": diffs, "mean": m, "std": s, "wins": sum(d > 0 for d in diffs)}


def random_init_accuracy(data: Digits, width: int, seeds: Sequence[int], device: torch.device | str) -> dict:
    """Linear-probe accuracy of untrained backbones (the floor any pretraining should beat)."""
    accs = []
    for seed in seeds:
        torch.manual_seed(seed)
        net = SmallCNN(data.train_x.shape[1], width).to(device).eval()
        accs.append(linear_probe(net, data.train_x, data.train_y, data.test_x, data.test_y))
    return summarise(accs)


def run_comparison(
    data: Digits,
    methods: dict[str, PretrainConfig],
    seeds: Sequence[int],
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "",
) -> dict[str, dict[str, Any]]:
    """Pretrain and probe every method for every seed; returns ``{method: summary + seconds + last epoch}``."""
    total = sum(cfg.epochs * (len(data.train_x) // cfg.batch_size) for cfg in methods.values()) * len(seeds)
    bar = _progress_bar(total, progress, desc)
    results: dict[str, dict[str, Any]] = {}
    try:
        for name, base in methods.items():
            accs, seconds, last = [], 0.0, []
            for seed in seeds:
                if bar is not None:
                    bar.set_postfix_str(f"{name} seed {seed}")
                res = pretrain(data.train_x, dataclasses.replace(base, seed=seed), device, _updater(bar))
                accs.append(linear_probe(res.backbone, data.train_x, data.train_y, data.test_x, data.test_y))
                seconds += res.seconds
                last.append(res.history[-1] if res.history else {})
            results[name] = {**summarise(accs), "pretrain_seconds": seconds, "last_epoch": last}
    finally:
        if bar is not None:
            bar.close()
    return results


def _progress_bar(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('the progress bar needs tqdm; install the extra: pip install "essl-aug[demo]"') from err
    return tqdm(total=total, desc=desc or "pretraining", unit="step", dynamic_ncols=True)


def _updater(bar) -> Callable[[], None] | None:
    return None if bar is None else (lambda: bar.update(1))


def run_demo(
    family: FamilySpec = "rotation",
    lam: float = 0.4,
    epochs: int = DEFAULT_EPOCHS,
    seeds: Sequence[int] = (0, 1, 2),
    device: torch.device | str = "cpu",
    out: Path | str = "essl-demo",
    batch_size: int = 256,
    width: int = 16,
    limit: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo and write ``demo.json`` and ``demo.png`` into ``out``; returns the JSON payload.

    Both methods share everything (data, augmentations, optimiser, epochs, seeds); E-SimCLR adds
    ``lam * CE`` of an :class:`~essl_aug.EquivarianceHead` predicting every element of ``family`` on an
    extra 8x8 view.
    """
    start = time.perf_counter()
    data = load_digits_rgb(limit=limit)
    base = PretrainConfig(
        essl=None, epochs=epochs, batch_size=batch_size, width=width, view=DEFAULT_VIEW, essl_view=DEFAULT_ESSL_VIEW
    )
    name = family_label(family)
    methods = {"SimCLR": base, f"E-SimCLR ({name})": dataclasses.replace(base, essl=family, lam=lam)}
    echo(
        f"essl-aug demo: SimCLR vs E-SimCLR ({name}, lambda={lam}) on scikit-learn digits "
        f"({len(data.train_x)} train / {len(data.test_x)} test images, 16x16 RGB), {epochs} epochs, "
        f"seeds {list(seeds)}, device {device}, {torch.get_num_threads()} torch threads"
    )
    results = run_comparison(data, methods, seeds, device, progress, "demo")
    floor = random_init_accuracy(data, width, seeds, device)
    wall = time.perf_counter() - start
    payload = {
        "job": "demo",
        "family": name,
        "lambda": lam,
        "epochs": epochs,
        "seeds": list(seeds),
        "batch_size": batch_size,
        "width": width,
        "device": str(device),
        "dataset": {"name": "sklearn digits, 16x16 RGB", "train": len(data.train_x), "test": len(data.test_x)},
        "results": results,
        "random_init": floor,
        "wall_seconds": wall,
        "environment": environment(),
    }
    out = Path(out)
    write_json(out / "demo.json", payload)
    plot_groups(
        out / "demo.png",
        {"digits": {k: v for k, v in results.items()}},
        f"SimCLR vs E-SimCLR ({name}), {len(seeds)} seeds, {epochs} epochs",
        reference=floor["mean"],
    )
    width_col = max(len(k) for k in results) + 2
    echo("linear-probe test accuracy (%), mean +- std over seeds:")
    for k, v in results.items():
        echo(f"  {k:<{width_col}} {fmt(v)}   per seed: {', '.join(f'{100 * a:.2f}' for a in v['accuracies'])}")
    echo(f"  {'random-init backbone':<{width_col}} {fmt(floor)}")
    (sim, ess) = results.values()
    gap = ess["mean"] - sim["mean"]
    spread = max(sim["std"], ess["std"])
    verdict = "beyond" if abs(gap) > spread and len(seeds) > 1 else "within"
    echo(f"E-SimCLR - SimCLR: {100 * gap:+.2f} points ({verdict} the seed spread of {100 * spread:.2f})")
    paired = paired_difference(sim["accuracies"], ess["accuracies"])
    payload["paired_difference"] = paired
    write_json(out / "demo.json", payload)
    echo(
        f"paired by seed (same initialisation and data): {100 * paired['mean']:+.2f} +- {100 * paired['std']:.2f} "
        f"points, E-SimCLR ahead on {paired['wins']} of {len(seeds)} seeds"
    )
    echo(f"wrote {out / 'demo.json'} and {out / 'demo.png'} in {wall:.0f} s")
    return payload
