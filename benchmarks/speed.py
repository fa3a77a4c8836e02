"""Speed of every transformation family against the memory floor and its anchors.

For each family x mode (``random``, ``all``) x batch shape x dtype x device, the median time per batch
(``torch.utils.benchmark``, median and IQR of ``blocked_autorange``) of:

- ``floor``: ``x.clone()`` (one read and one write of the batch); in ``all`` mode a K-times larger clone;
- ``essl_aug``: :class:`essl_aug.EquivariantTransform` (labels drawn inside the timed call), the plain forms (the
  default);
- ``essl_aug_fast``: the same call inside ``with essl_aug.fast_forms():`` (the special forms, chosen by that switch
  only), for the cases where they run other ops than the plain forms (their memory traffic differs);
- ``kornia``: kornia's equivalent augmentation (per-image parameters; float only);
- ``torchvision``: the ``torchvision.transforms.v2.functional`` op on the whole batch with one element
  (torchvision cannot draw per-image parameters, so this is a lower bound for it);
- ``reference``: the E-SSL reference ops for rotation (``rotate_images`` all four; the ``single=True``
  per-image Python loop over ``torch.rot90``).

Beside the times, each case's memory traffic (:mod:`benchmarks.traffic`: bytes read and written by the plain and the
special forms, over the floor's bytes, and the kernels run; the label draw excluded).

Ratios are to the floor measured in the same round. Rounds are repeated and the cases interleaved, and the
medians over rounds are reported, because shared machines are noisy. On Linux the script re-executes itself
with glibc's mmap threshold raised (``--default-malloc`` to keep the system default): otherwise every large
fresh output is page-faulted in, which dominates the 224 px timings of every op (floor included).

Usage (from the repository root)::

    python -m benchmarks.speed                 # full run: JSON, PNG and a table under benchmarks/results/
    python -m benchmarks.speed --quick         # seconds: one small shape, float32 (CI smoke test)

The JSON report holds the settings, the machine and one line per case (every op's medians, IQR and rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.benchmark import Timer

import essl_aug
from benchmarks.toolkit.options import batch_shape, parse_device, positive_float, positive_int
from essl_aug import EquivariantTransform, RandomBlurLevels, _kernels, build_family, fast_forms

FAMILIES = ("rotation", "vflip", "hflip", "jigsaw", "invert", "blur", "grayscale")
SHAPES = ((256, 3, 32, 32), (64, 3, 224, 224), (256, 3, 16, 16))
DTYPES = ("float32", "uint8", "bfloat16")
_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "68719476736"}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _images(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8).to(device)
    return torch.rand(shape, generator=gen).to(device=device, dtype=dtype)


# -- anchors -----------------------------------------------------------------------------------------------------------


def _kornia_op(name: str, x: torch.Tensor) -> Callable[[], object] | None:
    """kornia's equivalent of family ``name`` with per-image parameters (None where kornia has none)."""
    if not x.dtype.is_floating_point:
        return None  # kornia rejects integer images
    import kornia.augmentation as K
    from kornia.filters import filter2d_separable

    aug: torch.nn.Module
    if name == "rotation":
        aug = K.RandomRotation90(times=(-2, 2), p=1.0)  # the only range that is uniform mod 4 (kornia#4409)
    elif name == "vflip":
        aug = K.RandomVerticalFlip(p=0.5)
    elif name == "hflip":
        aug = K.RandomHorizontalFlip(p=0.5)
    elif name == "jigsaw":
        aug = K.RandomJigsaw(grid=(2, 2), p=1.0, ensure_perm=False)
    elif name == "invert":
        aug = K.RandomInvert(p=0.5)
    elif name == "grayscale":
        aug = K.RandomGrayscale(p=0.5)
    elif name == "blur":  # kornia's fastest exact equivalent: the family's kernels (zero-padded), one per image
        levels = RandomBlurLevels()
        table = _kernels.blur_kernel_table(levels.kernel_sizes, levels.sigmas).to(x.device, x.dtype)

        def blur() -> torch.Tensor:
            labels = torch.randint(table.shape[0], (x.shape[0],), device=x.device)
            k = table.index_select(0, labels)
            return filter2d_separable(x, k, k, border_type="reflect")

        return blur
    else:
        return None
    aug = aug.to(x.device)
    return lambda: aug(x)


def _torchvision_op(name: str, x: torch.Tensor) -> Callable[[], object] | None:
    """torchvision's functional op, one element for the whole batch (it has no per-image parameters)."""
    from torchvision.transforms.v2 import functional as TF

    ops = {
        "rotation": lambda: TF.rotate(x, 90.0),
        "vflip": lambda: TF.vertical_flip(x),
        "hflip": lambda: TF.horizontal_flip(x),
        "invert": lambda: TF.invert(x),
        "grayscale": lambda: TF.rgb_to_grayscale(x, num_output_channels=3),
        "blur": (lambda: TF.gaussian_blur(x, [15, 15])) if x.dtype.is_floating_point else None,
    }
    return ops.get(name)


def _reference_op(name: str, mode: str, x: torch.Tensor) -> Callable[[], object] | None:
    """The E-SSL reference rotation ops (rdangovs/essl): all four in blocks, or one per image in a loop."""
    if name != "rotation":
        return None
    if mode == "all":

        def rotate_images() -> torch.Tensor:
            return torch.cat([x, x.flip(3).transpose(2, 3), x.flip(3).flip(2), x.transpose(2, 3).flip(3)])

        return rotate_images

    def single() -> torch.Tensor:
        labels = torch.randint(4, (x.shape[0],), device=x.device)
        return torch.stack([torch.rot90(img, int(k), (1, 2)) for img, k in zip(x, labels, strict=True)])

    return single


def machine(threads: int, device: torch.device) -> dict:
    """What a timing depends on: CPU model, cores, threads, device, malloc settings and load average."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "malloc_env": {k: os.environ[k] for k in _MALLOC_ENV if k in os.environ},
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def raise_mmap_threshold() -> None:
    """Re-execute the running command with glibc's mmap threshold raised (Linux; no-op when it already is).

    The command line is repeated as it was given (``python -m benchmarks.speed ...`` stays a module run).
    """
    if sys.platform.startswith("linux") and any(os.environ.get(k) != v for k, v in _MALLOC_ENV.items()):
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, **_MALLOC_ENV})


def compact_json(report: dict) -> str:
    """``report`` as JSON with one line per top-level key and one line per element of a list of records.

    Example:
        >>> print(compact_json({"machine": {"cores": 2}, "results": [{"a": 1}, {"a": 2.5}]}))
        {
         "machine": {"cores": 2},
         "results": [
          {"a": 1},
          {"a": 2.5}
         ]
        }
    """
    lines = ["{"]
    for i, (key, value) in enumerate(report.items()):
        comma = "," if i < len(report) - 1 else ""
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f" {json.dumps(key)}: [")
            lines += [f"  {json.dumps(v)}{',' if j < len(value) - 1 else ''}" for j, v in enumerate(value)]
            lines.append(f" ]{comma}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}{comma}")
    return "\n".join([*lines, "}"]) + "\n"


def write_report(report: dict, out_dir: Path, stem: str, text: str, plot_to: Callable[[dict, Path], None]) -> None:
    """``stem``.json (:func:`compact_json`), .md (``text``) and .png (``plot_to``) under ``out_dir``; print ``text``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(compact_json(report))
    plot_to(report, out_dir / f"{stem}.png")
    (out_dir / f"{stem}.md").write_text(text + "\n")
    m = report["machine"]
    print(f"{m['cpu']}, {m['threads']} thread(s), device {m['device']}, load {m['load_average']}")
    print(text)


# -- timing ------------------------------------------------------------------------------------------------------------


def time_call(fn: Callable[[], object], device: torch.device, min_run_time: float) -> tuple[float, float]:
    """(median, IQR) in milliseconds per call."""
    if device.type == "cuda":

        def call() -> None:
            fn()
            torch.cuda.synchronize()

        torch.cuda.synchronize()
    else:
        call = fn  # type: ignore[assignment]
    call()  # warm-up (caches, lazy tables)
    m = Timer("call()", globals={"call": call}).blocked_autorange(min_run_time=min_run_time)
    return m.median * 1e3, m.iqr * 1e3


def _traffic(row: dict) -> dict:
    """The traffic of the plain and the special forms (``benchmarks.traffic``): bytes moved over the floor's,
    kernels."""
    return {form: {"ratio_to_floor": row[form]["ratio"], "kernels": row[form]["kernels"]} for form in ("plain", "fast")}


def _cases(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """Every (shape, dtype, family, mode) with its timed callables and its memory traffic."""
    from benchmarks import traffic  # imports this module

    cases = []
    for shape in args.shapes:
        for dtype_name in args.dtypes:
            dtype = getattr(torch, dtype_name)
            x = _images(shape, dtype, device)
            for name in args.families:
                family = build_family(name)
                if dtype not in family.dtypes:
                    continue
                try:
                    family.check(x)
                except (ValueError, TypeError):
                    continue
                for mode in args.modes:
                    t = EquivariantTransform(family, mode=mode)
                    k = family.num_classes if mode == "all" else 1
                    big = x.repeat(k, 1, 1, 1) if k > 1 else x
                    moved = traffic.measure(family, mode, x)
                    special = moved["plain"]["ops"] != moved["fast"]["ops"]  # the switch runs other ops here
                    ops: dict[str, Callable[[], object] | None] = {
                        "floor": big.clone,
                        "essl_aug": partial(t, x),
                        "essl_aug_fast": fast_forms()(partial(t, x)) if special else None,
                        "kornia": _kornia_op(name, x) if mode == "random" else None,
                        "torchvision": _torchvision_op(name, x),
                        "reference": _reference_op(name, mode, x),
                    }
                    cases.append(
                        {
                            "family": name,
                            "mode": mode,
                            "shape": list(shape),
                            "dtype": dtype_name,
                            "device": device.type,
                            "num_classes": family.num_classes,
                            "traffic": _traffic(moved),
                            "ops": {key: op for key, op in ops.items() if op is not None},
                        }
                    )
    return cases


def time_rounds(
    cases: list[dict[str, Any]], device: torch.device, repeats: int, min_run_time: float
) -> list[list[dict[str, tuple[float, float]]]]:
    """Time every op of every case (``case["ops"]``: name -> call) in ``repeats`` interleaved rounds: every op of a
    case back to back, every round; returns per case the rounds' ``{op: (median ms, iqr ms)}`` (NaN for an op that
    raised, its error recorded in ``case["errors"]``)."""
    rounds: list[list[dict[str, tuple[float, float]]]] = [[] for _ in cases]
    for r in range(repeats):
        for i, case in enumerate(cases):
            times = {}
            for key, op in case["ops"].items():
                try:
                    times[key] = time_call(op, device, min_run_time)
                except Exception as err:  # an anchor that does not support this dtype or device
                    times[key] = (float("nan"), float("nan"))
                    case.setdefault("errors", {})[key] = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
            rounds[i].append(times)
        print(f"  round {r + 1}/{repeats} done", file=sys.stderr)
    return rounds


def summarise(per_round: list[dict[str, tuple[float, float]]], key: str) -> dict[str, Any]:
    """Op ``key``'s timings over the rounds of one case (:func:`time_rounds`): the median over rounds of its median
    and IQR, the median of its ratio to the floor of the same round, and every round's median."""
    ms = [t[key][0] for t in per_round]
    return {
        "median_ms": statistics.median(ms),
        "iqr_ms": statistics.median(t[key][1] for t in per_round),
        "ratio_to_floor": statistics.median(t[key][0] / t["floor"][0] for t in per_round),
        "rounds_ms": ms,
    }


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cases = _cases(args, device)
    rounds = time_rounds(cases, device, args.repeats, args.min_run_time)
    results = []
    for case, per_round in zip(cases, rounds, strict=True):
        row = {k: v for k, v in case.items() if k != "ops"}
        row.update({key: summarise(per_round, key) for key in case["ops"]})
        results.append(row)
    return {
        "machine": machine(args.threads, device),
        "versions": {"torch": torch.__version__, "essl_aug": essl_aug.__version__, "python": platform.python_version()},
        "command": " ".join(["python", *sys.argv]),
        "repeats": args.repeats,
        "min_run_time_s": args.min_run_time,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "results": results,
    }


# -- reporting ---------------------------------------------------------------------------------------------------------


def ratio_cell(row: dict, key: str) -> str:
    """Op ``key``'s ratio to the floor in a table cell (``"-"`` where it was not timed or failed)."""
    entry = row.get(key)
    if entry is None or entry["ratio_to_floor"] != entry["ratio_to_floor"]:
        return "-"
    return f"{entry['ratio_to_floor']:.1f}x"


def _fmt_traffic(row: dict, form: str) -> str:
    entry = row.get("traffic", {}).get(form)  # absent from reports written before it was measured
    return "-" if entry is None else f"{entry['ratio_to_floor']:.2f}x ({entry['kernels']})"


def table(report: dict) -> str:
    """A Markdown table of the results: ms of the floor and of essl_aug, every op's ratio to the floor (essl_aug's
    plain forms, and its special forms under ``essl_aug.fast_forms()`` where they differ), and essl_aug's memory
    traffic in both forms (bytes read and written over the floor's, and kernels run; labels' draw excluded)."""
    lines = [
        "| family | mode | shape | dtype | floor ms | essl_aug ms | essl_aug | essl_aug fast forms | kornia "
        "| torchvision (1 elem.) | reference | traffic (kernels) | fast-form traffic (kernels) |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["results"]:
        shape = "x".join(str(s) for s in row["shape"])
        lines.append(
            f"| {row['family']} | {row['mode']} | {shape} | {row['dtype']} | {row['floor']['median_ms']:.3f} | "
            f"{row['essl_aug']['median_ms']:.3f} | {ratio_cell(row, 'essl_aug')} | "
            f"{ratio_cell(row, 'essl_aug_fast')} | {ratio_cell(row, 'kornia')} | {ratio_cell(row, 'torchvision')} | "
            f"{ratio_cell(row, 'reference')} | "
            f"{_fmt_traffic(row, 'plain')} | {_fmt_traffic(row, 'fast')} |"
        )
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Bar chart of the ratio to the floor (log scale), one panel per shape, float32."""
    from benchmarks.toolkit.report import pyplot

    plt = pyplot()

    rows = [r for r in report["results"] if r["dtype"] == "float32"] or report["results"]
    shapes = sorted({tuple(r["shape"]) for r in rows}, key=lambda s: -s[-1])
    keys = ("essl_aug", "essl_aug_fast", "kornia", "torchvision", "reference")
    fig, axes = plt.subplots(len(shapes), 1, figsize=(11, 3.2 * len(shapes)), squeeze=False)
    for ax, shape in zip(axes[:, 0], shapes, strict=True):
        sub = [r for r in rows if tuple(r["shape"]) == shape]
        names = [f"{r['family']}\n{r['mode']}" for r in sub]
        width = 0.8 / len(keys)
        for j, key in enumerate(keys):
            vals = [r[key]["ratio_to_floor"] if key in r else float("nan") for r in sub]
            ax.bar([i + j * width for i in range(len(sub))], vals, width, label=key)
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(sub))], names, fontsize=7)
        ax.set_ylabel("time / x.clone()")
        ax.set_title(f"{'x'.join(map(str, shape))} {sub[0]['dtype']}, {report['machine']['threads']} thread(s)")
    axes[0, 0].legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def batch_shapes(
    args: argparse.Namespace, quick: Sequence[tuple[int, ...]], full: Sequence[tuple[int, ...]]
) -> list[tuple[int, ...]]:
    """The batch shapes of a run: ``--shapes`` (parsed by ``batch_shape``) when given, else ``quick`` under
    ``--quick``, else ``full``."""
    if args.shapes is not None:
        return list(args.shapes)
    return list(quick) if args.quick else list(full)


def report_run(
    args: argparse.Namespace,
    argv: Sequence[str] | None,
    run: Callable[[argparse.Namespace], dict],
    stem: str,
    table: Callable[[dict], str],
    plot: Callable[[dict, Path], None],
) -> dict:
    """A timing script's main: re-execute with the mmap threshold raised (a command-line run, ``argv`` None, that is
    neither ``--quick`` nor ``--default-malloc``), ``run(args)``, and write the report ``stem`` (``stem_quick`` under
    ``--quick``) into ``--out-dir`` (:func:`write_report`); returns the report."""
    if argv is None and not args.quick and not args.default_malloc:
        raise_mmap_threshold()
    report = run(args)
    write_report(report, args.out_dir, f"{stem}_quick" if args.quick else stem, table(report), plot)
    return report


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI smoke run: one small shape, float32, one round")
    p.add_argument("--device", type=parse_device, default="auto", help="cpu, cuda or auto (default)")
    p.add_argument(
        "--threads", type=positive_int, default=1, help="torch.set_num_threads (default 1, like the anchors)"
    )
    p.add_argument(
        "--repeats", type=positive_int, default=3, help="interleaved rounds; medians over rounds are reported"
    )
    p.add_argument("--min-run-time", type=positive_float, default=0.2, help="seconds per blocked_autorange")
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--modes", nargs="+", default=["random", "all"], choices=["random", "all"])
    p.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    p.add_argument("--shapes", nargs="+", type=batch_shape, default=None, help="batch shapes as BxCxHxW")
    p.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--default-malloc", action="store_true", help="keep glibc's default mmap threshold")
    args = p.parse_args(argv)
    args.shapes = batch_shapes(args, [(8, 3, 16, 16)], SHAPES)
    if args.quick:
        args.repeats, args.min_run_time, args.dtypes = 1, 0.01, ["float32"]
    return args


def main(argv: list[str] | None = None) -> dict:
    return report_run(_parse(argv), argv, run, "speed", table, plot)


if __name__ == "__main__":
    main()
