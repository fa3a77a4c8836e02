"""The E-SSL diagnostic in miniature (Figure 1 of Dangovski et al., 2022) on the bundled digits.

For each family, three SimCLR pretrainings of the demo's small CNN, each over several seeds, scored by the
linear probe of the demo:

- ``baseline``: SimCLR with the base augmentation only (shared by all rows);
- ``invariant``: the family is added to the augmentation of both views (each view keeps the identity with
  probability 0.5, otherwise gets one non-identity element, uniformly: the co-author code's invariance mode);
- ``E-SSL``: SimCLR + lambda * cross-entropy of an ``EquivarianceHead`` predicting every element of the family
  on an extra half-size view (mode "all", the reference).

Rows: rotation, vflip, jigsaw, blur, invert (the paper: invariance hurts, sensitivity helps) and hflip,
grayscale (the paper's controls: invariance helps). Prints a table and writes ``quality.json`` and
``quality.png``.

Usage::

    nice -n 10 python benchmarks/quality.py --out results/quality        # the README table
    python benchmarks/quality.py --quick --out /tmp/quality               # seconds: a smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from essl_aug.cli import default_threads, parse_family, parse_seeds, resolve_device
from essl_aug.experiments.augment import ViewAugment
from essl_aug.experiments.data import load_digits_rgb
from essl_aug.experiments.demo import DEFAULT_VIEW, paired_difference, random_init_accuracy, run_comparison
from essl_aug.experiments.pretrain import PretrainConfig
from essl_aug.experiments.report import environment, fmt, plot_groups, write_json

FAMILIES = ("rotation", "vflip", "jigsaw", "blur", "invert", "hflip", "grayscale")
#: Base augmentations: ``crop`` is the paper's diagnostic (random resized crops only); ``demo`` adds the
#: colour jitter and grayscale of the demo's SimCLR recipe.
BASES = {"crop": ViewAugment(size=16, scale=(0.2, 1.0)), "demo": DEFAULT_VIEW}


def quality(
    families: Sequence[str | list[str]] = FAMILIES,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 20,
    lam: float = 0.4,
    base: str = "crop",
    jigsaw_per_batch: int | None = 8,
    device: torch.device | str = "cpu",
    out: Path | str = "results/quality",
    width: int = 16,
    batch_size: int = 256,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Run the diagnostic; returns the JSON payload (also written to ``out/quality.json``, plot ``quality.png``)."""
    start = time.perf_counter()
    data = load_digits_rgb(limit=limit)
    view = BASES[base]
    cfg = PretrainConfig(
        essl=None,
        lam=lam,
        epochs=epochs,
        batch_size=batch_size,
        width=width,
        view=view,
        essl_view=dataclasses.replace(view, size=view.size // 2),
    )
    baseline = run_comparison(data, {"baseline": cfg}, seeds, device, progress, "baseline")["baseline"]
    rows: dict[str, dict] = {}
    for fam in families:
        name = fam if isinstance(fam, str) else ",".join(fam)
        per_batch = jigsaw_per_batch if fam == "jigsaw" else None
        methods = {
            "invariant": dataclasses.replace(cfg, invariance=fam),
            "E-SSL": dataclasses.replace(cfg, essl=fam, num_per_batch=per_batch),
        }
        rows[name] = {"baseline": baseline, **run_comparison(data, methods, seeds, device, progress, name)}
    floor = random_init_accuracy(data, width, seeds, device)
    wall = time.perf_counter() - start
    payload = {
        "job": "quality",
        "base_augmentation": base,
        "epochs": epochs,
        "lambda": lam,
        "seeds": list(seeds),
        "jigsaw_per_batch": jigsaw_per_batch,
        "dataset": {"name": "sklearn digits, 16x16 RGB", "train": len(data.train_x), "test": len(data.test_x)},
        "rows": rows,
        "random_init": floor,
        "wall_seconds": wall,
        "environment": environment(),
    }
    out = Path(out)
    write_json(out / "quality.json", payload)
    plot_groups(
        out / "quality.png",
        rows,
        f"invariant vs sensitive (E-SSL), base '{base}', {len(seeds)} seeds",
        reference=floor["mean"],
    )
    print(table(payload))
    print(f"wrote {out / 'quality.json'} and {out / 'quality.png'} in {wall:.0f} s")
    return payload


def table(payload: dict) -> str:
    """The result as a Markdown table (linear-probe accuracy %, mean +- std over seeds)."""
    n = len(payload["seeds"])
    lines = [
        "| family | baseline | invariant to it | E-SSL, sensitive to it | E-SSL - baseline, paired by seed |",
        "|---|---|---|---|---|",
    ]
    for name, row in payload["rows"].items():
        gap = paired_difference(row["baseline"]["accuracies"], row["E-SSL"]["accuracies"])
        paired = f"{100 * gap['mean']:+.2f} +- {100 * gap['std']:.2f} (ahead on {gap['wins']}/{n})"
        lines.append(f"| {name} | {fmt(row['baseline'])} | {fmt(row['invariant'])} | {fmt(row['E-SSL'])} | {paired} |")
    lines.append(f"| (random-init backbone) | {fmt(payload['random_init'])} | | | |")
    lines.append(
        f"\n{n} seeds, {payload['epochs']} epochs, lambda {payload['lambda']}, "
        f"base augmentation '{payload['base_augmentation']}', {payload['wall_seconds']:.0f} s"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--families",
        default=",".join(FAMILIES),
        help="comma list of families, one row each; join with + for a product (rotation+vflip)",
    )
    p.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2], help="count or comma list (default 3)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lambda", dest="lam", type=float, default=0.4)
    p.add_argument("--base", choices=sorted(BASES), default="crop", help="base augmentation (default: crop)")
    p.add_argument(
        "--jigsaw-per-batch",
        type=int,
        default=8,
        help="jigsaw permutations per step in E-SSL (default 8 of 24, as the reference ImageNet; 24 = all)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="results/quality")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 seed, 1 epoch, 128 images, tiny CNN (numbers are meaningless)",
    )
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    families = [parse_family(f.replace("+", ",")) for f in args.families.split(",") if f]
    torch.set_num_threads(args.threads or default_threads())
    kwargs = dict(seeds=args.seeds, epochs=args.epochs, width=16, batch_size=256, limit=None)
    if args.quick:
        kwargs = dict(seeds=[0], epochs=1, width=4, batch_size=64, limit=128)
    quality(
        families,
        lam=args.lam,
        base=args.base,
        jigsaw_per_batch=args.jigsaw_per_batch,
        device=resolve_device(args.device),
        out=args.out,
        progress=not args.no_progress,
        **kwargs,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
