"""Report writing of every experiment: summaries over seeds, the environment, compact JSON and PNG plots, and the
file helpers every script writes through (:func:`check_writable`, :func:`replacing`, :func:`pyplot`,
:func:`save_figure`; the family-grid viewer ``python -m benchmarks.show`` uses them too).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch


def check_writable(folder: Path | str, what: str) -> None:
    """Raise ``NotADirectoryError`` or ``PermissionError`` (the message starts with ``what``) unless ``folder`` is
    a writable folder or can be created: its nearest existing ancestor must be a writable folder."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(f"{what} cannot be created: {str(existing)!r} is a file; give another --out")
    try:  # a file made and removed: permission bits do not stop root, a read-only or special file system does
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise PermissionError(
            f"{what} is not writable (cannot create a file in {str(existing)!r}: {err.strerror}); give a path you "
            "can write to"
        ) from err


@contextlib.contextmanager
def replacing(path: Path | str) -> Iterator[Path]:
    """Write a file whole or not at all: yields a temporary path beside ``path`` (creating the folder) that replaces
    ``path`` when the block ends without error, and is removed when it raises.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "a.txt"
        >>> with replacing(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text(), [p.name for p in target.parent.iterdir()]
        ('done', ['a.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the non-interactive Agg backend (files only); a clear error without matplotlib."""
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('plots need matplotlib; install the extra: pip install "essl-aug[demo]"') from err
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path | str, dpi: int = 100) -> Path:
    """Save a matplotlib figure whole or not at all (:func:`replacing`) in the format of ``path``'s suffix (PNG
    without one), and close it."""
    path = Path(path)
    try:
        with replacing(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        pyplot().close(fig)
    return path


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


#: Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (``scipy.stats.t.ppf(0.975, df)``).
T_975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (a table to 30, then the Cornish-Fisher
    expansion, within 1e-4 of scipy's).

    Example:
        >>> t_quantile_975(4), round(t_quantile_975(1000), 3)
        (2.7764, 1.962)
    """
    if df < 1:
        raise ValueError(f"`df` must be at least 1, got {df}")
    if df <= len(T_975):
        return T_975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df * df)


def confidence_interval(values: Sequence[float]) -> tuple[float, float]:
    """The 95 % confidence interval of the mean of ``values`` (Student's t; needs two values or more).

    For paired differences (one per seed) this is the paired t-interval.

    Example:
        >>> lo, hi = confidence_interval([0.010, 0.012, 0.008, 0.011, 0.009])
        >>> round(lo, 4), round(hi, 4)
        (0.008, 0.012)
    """
    if len(values) < 2:
        raise ValueError(f"a confidence interval needs at least two values, got {len(values)}")
    m, s = mean_std(values)
    half = t_quantile_975(len(values) - 1) * s / math.sqrt(len(values))
    return m - half, m + half


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


def to_json(value: Any, width: int = 120, indent: int = 2) -> str:
    """Compact, readable JSON text: a container that fits in ``width`` characters stays on one line, a list of
    numbers or strings is always one line (a curve is one row), anything else opens one item per line.

    Floats are written as Python's shortest round-trip form, so ``json.loads(to_json(v)) == v``.

    Example:
        >>> print(to_json({"settings": {"seed": 0}, "curve": [0.5, 0.25], "runs": [{"acc": 0.9}, {"acc": 0.8}]}))
        {"settings": {"seed": 0}, "curve": [0.5, 0.25], "runs": [{"acc": 0.9}, {"acc": 0.8}]}
        >>> print(to_json({"runs": [{"acc": 0.9}, {"acc": 0.8}]}, width=20))
        {
          "runs": [
            {"acc": 0.9},
            {"acc": 0.8}
          ]
        }
    """

    def dump(v: Any, level: int) -> str:
        flat = json.dumps(v)
        if not isinstance(v, (dict, list, tuple)) or not v:
            return flat
        scalars = isinstance(v, (list, tuple)) and all(not isinstance(x, (dict, list, tuple)) for x in v)
        if scalars or indent * level + len(flat) <= width:
            return flat
        pad, inner = " " * (indent * level), " " * (indent * (level + 1))
        if isinstance(v, dict):
            items = [f"{inner}{json.dumps(str(k))}: {dump(x, level + 1)}" for k, x in v.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        return "[\n" + ",\n".join(inner + dump(x, level + 1) for x in v) + "\n" + pad + "]"

    return dump(value, 0)


def check_output_dir(out: Path | str, names: Sequence[str] = ()) -> Path:
    """Check, before any work, that the folder ``out`` (the ``--out`` option) can receive the files ``names``.

    ``out`` may exist (files of the same names are replaced) or not (it is created later, with its parents).
    Raises ``NotADirectoryError`` when ``out`` or the nearest existing folder above it is a file,
    ``IsADirectoryError`` when one of ``names`` is a folder in ``out``, and ``PermissionError`` when that folder is
    not writable; each message names ``--out`` and the fix. Returns ``out`` as a ``Path``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"`--out` {str(out)!r} is a file, not a folder; give a folder (created if missing)")
    for name in names:
        if (out / name).is_dir():
            raise IsADirectoryError(
                f"`--out` {str(out)!r} holds a folder named {name!r} where a report file goes; "
                "remove it or give another --out"
            )
    check_writable(out, f"`--out` {str(out)!r}")
    return out


def write_json(path: Path | str, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as compact JSON (:func:`to_json`), creating the folder; the file is replaced whole
    (:func:`replacing`)."""
    path = Path(path)
    text = to_json(dict(payload)) + "\n"
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def rounded(value: Any, digits: int = 6) -> Any:
    """``value`` with every float rounded to ``digits`` significant digits, through dicts, lists and tuples.

    Example:
        >>> rounded({"err": [0.0123456789, 2]}, 3)
        {'err': [0.0123, 2]}
    """
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def plot_groups(
    path: Path | str,
    groups: Mapping[str, Mapping[str, Mapping[str, Any]]],
    title: str,
    reference: float | None = None,
    reference_label: str = "random-init backbone",
    ylabel: str = "linear-probe test accuracy (%)",
) -> Path:
    """Bar chart of mean accuracy +- std with one dot per seed; ``groups`` maps a group (a row) to its methods.

    Args:
        path: PNG file to write.
        groups: ``{group: {method: summary}}``, summaries as :func:`summarise` returns.
        title: figure title.
        reference: optional accuracy drawn as a dashed horizontal line.
        ylabel: the label of the accuracy axis.
    """
    plt = pyplot()
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
    ax.set_ylabel(ylabel)
    ax.set_ylim(max(0.0, min(lows) - 5), 100)
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)
