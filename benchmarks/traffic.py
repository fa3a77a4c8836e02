"""Memory traffic of every transformation family: bytes read and written and kernels run per call, counted exactly.

On a GPU a pixel-moving op's time is its memory traffic, and traffic can be counted on any machine: every aten op
that a call executes is intercepted by a :class:`~torch.utils._python_dispatch.TorchDispatchMode`, which sums

- bytes read: for every tensor argument, the bytes its strides actually span (``numel * element_size`` for a dense
  tensor; a broadcast table expanded with stride 0 counts once), index tensors included; an in-place op's ``self``
  is read too, except where the op overwrites it without reading it (``copy_``, ``fill_``, ``zero_``, ...); a
  lookup (``index_select``, ``gather``, ``index``) reads from its source at most the bytes it returns (a cached
  table of every element's indices is not read whole), but its index tensor whole;
- bytes written: the span of every result that is not a view, and of every mutated argument (``out=``, in place;
  an indexed write such as ``index_copy_`` writes the bytes of its source, not the whole destination);
- kernels: the ops that move data. View and metadata ops (``view``, ``permute``, ``expand``, ``as_strided``,
  ``detach``, ``alias``, ...: a result aliasing an argument without writing it) and allocations (``empty*``)
  launch no kernel and are not counted.

Why a dispatch mode and not ``torch.profiler``: the count is exact and deterministic (it depends on the code
path, not on timers or sampling), machine-independent (the same numbers on a laptop and in CI), and works on the
CPU, where the forms that a GPU runs can be selected without a GPU; the profiler records times and, on CPU, no
byte counts. What it cannot see is what a kernel does inside (a ``gather`` reading its source twice, a cache
hit): bytes here are what each kernel must move at least, its compulsory traffic.

Each family x mode (``random``, ``all``) x dtype (float32, bfloat16, uint8 where the family is exact) x shape is
measured on the call that moves pixels: the family's op on checked images and labels (``Family._op``: what
:class:`essl_aug.EquivariantTransform` runs once it has drawn the labels, without the checks of ``apply``), with
labels drawn beforehand in ``random`` mode and every element in ``all`` mode. The label draw is reported on its own
(``labels`` columns). Ratios are to the floor's bytes: one read and one write of the output (``x.clone()``; a
K-times larger one in ``all`` mode).

Two forms per case: the plain forms (the default, and what autograd and ``torch.compile`` always run; the ``plain``
column), and the special forms chosen by the library's one switch, ``with essl_aug.fast_forms():`` (the ``fast``
column; the same as the plain forms where the op has no special form).

Usage (from the repository root)::

    python -m benchmarks.traffic      # seconds: benchmarks/results/traffic.{json,md}
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import essl_aug
from benchmarks.speed import _images, compact_json
from benchmarks.toolkit.options import batch_shape, parse_device
from essl_aug import EquivariantTransform, Family, build_family, fast_forms
from essl_aug.registry import family_names

#: Products measured beside the single families (the dihedral group as a product, and a three-factor one).
PRODUCTS: dict[str, list[str]] = {
    "rotation x vflip": ["rotation", "vflip"],
    "rotation x jigsaw": ["rotation", "jigsaw"],
}
SHAPES = ((64, 3, 32, 32), (8, 3, 224, 224))
DTYPES = ("float32", "bfloat16", "uint8")
MODES: tuple[Literal["random", "all"], ...] = ("random", "all")
#: In-place ops that overwrite ``self`` without reading it.
_OVERWRITES = {"copy_", "fill_", "zero_", "random_", "uniform_", "normal_", "bernoulli_", "exponential_", "set_"}
#: In-place ops that write only where an index or mask points: they write (and ``*_add_`` reads) the source's bytes.
_SCATTERS = {
    "index_copy_",
    "index_put_",
    "_index_put_impl_",
    "index_add_",
    "scatter_",
    "scatter_add_",
    "masked_scatter_",
}
_SOURCES = ("source", "src", "values", "value")
#: Lookups: they read from their source (``self``) at most the bytes they return, not the whole table.
_LOOKUPS = {"index_select", "gather", "index", "take", "embedding"}
#: Ops that allocate or only describe a tensor: no data moved, no kernel.
_NO_KERNEL = {"empty", "empty_like", "empty_strided", "empty_permuted", "lift_fresh", "_local_scalar_dense", "set_"}


def span_bytes(t: torch.Tensor) -> int:
    """The bytes of storage that ``t``'s strides span, at most ``numel * element_size`` (broadcasts count once).

    Example:
        >>> span_bytes(torch.zeros(4, 5))
        80
        >>> span_bytes(torch.zeros(5).expand(4, 5))
        20
    """
    if t.numel() == 0:
        return 0
    extent = 1 + sum((n - 1) * abs(s) for n, s in zip(t.shape, t.stride(), strict=True))
    return min(extent, t.numel()) * t.element_size()


@dataclass
class Traffic:
    """Bytes read and written and kernels run, with the ops that ran (name -> [calls, bytes read + written])."""

    read: int = 0
    written: int = 0
    kernels: int = 0
    ops: dict[str, list[int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.read + self.written


def _tensors(tree: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


class TrafficCounter(TorchDispatchMode):
    """Sums the bytes every aten op reads and writes, and counts the ops that move data (see the module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self.traffic = Traffic()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        schema = func._schema
        name = schema.name.split("::")[-1]
        if name in _NO_KERNEL:
            return result
        bound: list[tuple[Any, Any]] = list(zip(schema.arguments, args, strict=False))
        bound += [(a, kwargs[a.name]) for a in schema.arguments if a.kwarg_only and a.name in kwargs]
        read = written = 0
        if name in _SCATTERS:
            moved = sum(span_bytes(t) for a, v in bound if a.name in _SOURCES for t in _tensors(v))
            written += moved
            if name.endswith("add_"):
                read += moved  # the destination's old values where the source lands
            bound = [(a, v) for a, v in bound if a.name != "self"]
        if name in _LOOKUPS:
            source = sum(span_bytes(t) for a, v in bound if a.name in ("self", "weight") for t in _tensors(v))
            returned = sum(span_bytes(t) for t in _tensors(result))
            read += min(source, returned)
            bound = [(a, v) for a, v in bound if a.name not in ("self", "weight")]
        for arg, value in bound:
            tensors = _tensors(value)
            mutated = arg.alias_info is not None and arg.alias_info.is_write
            if mutated:
                written += sum(span_bytes(t) for t in tensors)
                if arg.kwarg_only or name in _OVERWRITES:
                    continue  # an ``out=`` argument or an overwritten ``self``: not read
            read += sum(span_bytes(t) for t in tensors)
        returns = schema.returns
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        views = 0
        for ret, value in zip(returns, outputs, strict=False):
            if ret.alias_info is None:
                written += sum(span_bytes(t) for t in _tensors(value))
            elif not ret.alias_info.is_write:
                views += 1
        if views and views == len(returns):
            return result  # a view or metadata op: no kernel, no traffic
        if read or written:
            self.traffic.read += read
            self.traffic.written += written
            self.traffic.kernels += 1
            calls, moved = self.traffic.ops.get(name, (0, 0))
            self.traffic.ops[name] = [calls + 1, moved + read + written]
        return result


def count(fn: Callable[[], object]) -> Traffic:
    """The traffic of one call of ``fn``.

    Example:
        >>> x = torch.zeros(4, 5)
        >>> t = count(x.clone)
        >>> (t.read, t.written, t.kernels)
        (80, 80, 1)
    """
    with torch.no_grad(), TrafficCounter() as counter:
        fn()
    return counter.traffic


def families() -> dict[str, Family]:
    """Every registered family by name, then the products of :data:`PRODUCTS`."""
    out = {name: build_family(name) for name in family_names()}
    out.update({name: build_family(parts) for name, parts in PRODUCTS.items()})
    return out


def _accepts(family: Family, x: torch.Tensor) -> bool:
    if x.dtype not in family.dtypes:
        return False
    try:
        family.check(x)
    except (TypeError, ValueError):
        return False
    return True


def _entry(t: Traffic, floor: int) -> dict:
    return {
        "read": t.read,
        "written": t.written,
        "ratio": round(t.total / floor, 3),
        "kernels": t.kernels,
        "ops": dict(sorted(t.ops.items())),
    }


def measure(family: Family, mode: Literal["random", "all"], x: torch.Tensor, seed: int = 0) -> dict:
    """One row: the plain and the special forms' traffic of ``family`` in ``mode`` on ``x``, and the labels' draw."""
    transform = EquivariantTransform(family, mode=mode, generator=torch.Generator(device=x.device).manual_seed(seed))
    k = family.num_classes if mode == "all" else 1
    floor = 2 * k * x.numel() * x.element_size()
    if mode == "random":
        labels_traffic = count(lambda: transform.sample_labels(x.shape[0], x.device))
        labels = transform.sample_labels(x.shape[0], x.device)

        def call() -> object:
            return family._op(x, labels)
    else:
        b, n = x.shape[0], family.num_classes
        labels_traffic = count(lambda: torch.arange(n, device=x.device).repeat_interleave(b))

        def call() -> object:
            return family._op(x, None)

    family.check(x)
    call()  # warm-up: the tables each op caches are built once, outside the count
    plain = count(call)
    with fast_forms():
        call()
        fast = count(call)
    return {
        "floor_bytes": floor,
        "plain": _entry(plain, floor),
        "fast": _entry(fast, floor),
        "labels": {"bytes": labels_traffic.total, "kernels": labels_traffic.kernels},
    }


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    fams = families()
    results = []
    for shape in args.shapes:
        for dtype_name in args.dtypes:
            x = _images(shape, getattr(torch, dtype_name), device)
            for name, family in fams.items():
                if args.families and name not in args.families:
                    continue
                if not _accepts(family, x):
                    continue
                for mode in args.modes:
                    row = {"family": name, "mode": mode, "shape": list(shape), "dtype": dtype_name}
                    row["num_classes"] = family.num_classes
                    results.append({**row, **measure(family, mode, x)})
    return {
        "versions": {"torch": torch.__version__, "essl_aug": essl_aug.__version__, "python": platform.python_version()},
        "command": " ".join(["python", *sys.argv]),
        "device": device.type,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "results": results,
    }


def table(report: dict) -> str:
    """Markdown: per case the total traffic as a ratio to the floor and the kernels, plain and special forms."""
    lines = [
        "| family | mode | shape | dtype | plain-form traffic | kernels | fast-form traffic | kernels | labels bytes |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["results"]:
        shape = "x".join(str(s) for s in row["shape"])
        plain, fast = row["plain"], row["fast"]
        lines.append(
            f"| {row['family']} | {row['mode']} | {shape} | {row['dtype']} | {plain['ratio']:.2f}x | "
            f"{plain['kernels']} | {fast['ratio']:.2f}x | {fast['kernels']} | {row['labels']['bytes']} |"
        )
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--device", type=parse_device, default="cpu", help="where the tensors live (the counts do not depend on it)"
    )
    p.add_argument(
        "--families", nargs="+", default=None, choices=list(families()), help="default: every family and product"
    )
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    p.add_argument("--shapes", nargs="+", type=batch_shape, default=None, help="batch shapes as BxCxHxW")
    p.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)
    args.shapes = args.shapes or list(SHAPES)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    report = run(args)
    text = table(report)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "traffic.json").write_text(compact_json(report))
    (args.out_dir / "traffic.md").write_text(text + "\n")
    print(text)
    return report


if __name__ == "__main__":
    main()
