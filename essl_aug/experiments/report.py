"""Summaries, JSON and PNG output of the experiments."""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for a single value).

    Example:
        >>> m, s = mean_std([0.5, 0.7])
        >>> round(m, 3), round(s, 4)
        (0.6, 0.1414)
    """
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("need at least one value.")
    m = sum(vals) / len(vals)
    if len(vals) == 1:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def summarise(accuracies: Sequence[float]) -> dict[str, Any]:
    """``{"accuracies": [...], "mean": m, "std": s}`` for one method."""
    m, s = mean_std(accuracies)
    return {"accuracies": [float(a) for a in accuracies], "mean": m, "std": s}


def fmt(summary: Mapping[str, Any]) -> str:
    """``"97.12 +- 0.31"`` (percent) from a summary."""
    return f"{100 * summary['mean']:.2f} +- {100 * summary['std']:.2f}"


def environment() -> dict[str, Any]:
    """Versions and machine facts recorded with every result."""
    import essl_aug

    return {
        "essl_aug": essl_aug.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }


def write_json(path: Path | str, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('plots need matplotlib; install the extra: pip install "essl-aug[demo]"') from err
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_groups(
    path: Path | str,
    groups: Mapping[str, Mapping[str, Mapping[str, Any]]],
    title: str,
    reference: float | None = None,
    reference_label: str = "random-init backbone",
) -> Path:
    """Bar chart of mean accuracy +- std with one dot per seed; ``groups`` maps a group (a row) to its methods.

    Args:
        path: PNG file to write.
        groups: ``{group: {method: summary}}``, summaries as :func:`summarise` returns.
        title: figure title.
        reference: optional accuracy drawn as a dashed horizontal line.
    """
    plt = _pyplot()
    names = list(groups)
    methods: list[str] = []
    for g in groups.values():
        methods += [m for m in g if m not in methods]
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(max(4.5, 1.4 * len(names) + 2, 0.09 * len(title) + 1), 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lows = []
    for j, method in enumerate(methods):
        for i, name in enumerate(names):
            s = groups[name].get(method)
            if s is None:
                continue
            x = i + (j - (len(methods) - 1) / 2) * width
            ax.bar(
                x,
                100 * s["mean"],
                width * 0.9,
                yerr=100 * s["std"],
                capsize=3,
                color=colours[j % len(colours)],
                label=method if i == 0 or method not in ax.get_legend_handles_labels()[1] else None,
            )
            accs = [100 * a for a in s["accuracies"]]
            ax.plot([x] * len(accs), accs, "k.", ms=4)
            lows.append(min(accs))
    if reference is not None:
        ax.axhline(100 * reference, ls="--", color="gray", lw=1, label=reference_label)
        lows.append(100 * reference)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("linear-probe test accuracy (%)")
    ax.set_ylim(max(0.0, min(lows) - 5), 100)
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
