"""``python -m benchmarks.photonics [--quick]``: the photonic-crystal DOS benchmark (see experiment.py)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from benchmarks.photonics.dataset import DEFAULT_CACHE, load_or_generate
from benchmarks.photonics.experiment import METHODS, Config, run
from benchmarks.toolkit.options import positive_int


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.photonics", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small data and short schedules (a few CPU minutes)")
    p.add_argument("--seeds", type=positive_int, help="number of seeds (pre-training and fine-tuning)")
    p.add_argument("--methods", nargs="+", choices=METHODS, help="subset of methods to run")
    p.add_argument("--family", choices=("blob", "rods", "p4m", "mixed"), help="unit-cell generator family")
    p.add_argument("--width", type=float, help="encoder width multiplier (1.0 = reference channels)")
    p.add_argument("--pretrain-epochs", type=positive_int)
    p.add_argument("--finetune-epochs", type=positive_int)
    p.add_argument("--workers", type=positive_int, default=2, help="processes for solving the labelled cells")
    p.add_argument("--threads", type=positive_int, help="torch threads for training")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="where the dataset .npz is cached")
    p.add_argument("--out", default="results/photonics", help="where photonics.json / photonics.png go")
    p.add_argument("--generate-only", action="store_true", help="only build (or find) the cached dataset")
    args = p.parse_args(argv)

    cfg = Config.quick() if args.quick else Config()
    data = cfg.data
    if args.family:
        data = dataclasses.replace(data, family=args.family)
    overrides = {
        "seeds": args.seeds,
        "methods": tuple(args.methods) if args.methods else None,
        "width": args.width,
        "pretrain_epochs": args.pretrain_epochs,
        "finetune_epochs": args.finetune_epochs,
        "threads": args.threads,
    }
    cfg = dataclasses.replace(cfg, data=data, **{k: v for k, v in overrides.items() if v is not None})
    if args.generate_only:
        raw = load_or_generate(cfg.data, cache_dir=args.cache_dir, workers=args.workers)
        where = cfg.data.path(args.cache_dir)
        print(f"{len(raw['eps'])} labelled, {len(raw['eps_unlabelled'])} unlabelled cells: {where}")
        return 0
    report = run(cfg, args.out, args.cache_dir, workers=args.workers)
    print(
        f"\nrelative L1 DOS error on the test split (mean +- std over {cfg.seeds} seeds), total {report['seconds']} s"
    )
    for method, row in report["table"].items():
        print(
            f"  {method:13s} {row['test_err_mean']:.4f} +- {row['test_err_std']:.4f}  (val {row['val_err_mean']:.4f})"
        )
    print(f"wrote {args.out}/photonics.json and {args.out}/photonics.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
