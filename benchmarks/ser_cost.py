"""The cost of SER per training step: the small CNN at batch 256 on 28x28 gray images, SimCLR with and without SER.

One step: two views (the batch and its mirror image), the backbone and projector on each, NT-Xent, then SER
(:class:`~essl_aug.objectives.SER` at ``features.5``, the second block's output, 14 x 14 with stride 2) on the first
``round(batch_fraction * 256)`` images, backward and an SGD step. The two kinds of step alternate (after warm-up
steps) so that other work on the machine disturbs both alike; the medians are printed.

Usage (from the repository root)::

    python -m benchmarks.ser_cost --threads 1           # CPU, one thread (a busy machine's thread pool adds noise)
    python -m benchmarks.ser_cost --device cuda --steps 50
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.toolkit import SmallCNN, nt_xent, projector
from essl_aug.objectives import SER, StepInputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10, help="timed steps of each kind")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    net, proj = SmallCNN(1, width=32).to(device), projector(128).to(device)
    sers = {f: SER("features.5", in_channels=64, stride=2, batch_fraction=f).to(device) for f in args.fractions}
    params = [*net.parameters(), *proj.parameters(), *(p for s in sers.values() for p in s.parameters())]
    opt = torch.optim.SGD(params, lr=0.01)
    x = torch.rand(args.batch, 1, 28, 28, device=device)
    gen = torch.Generator().manual_seed(0)

    def step(ser: SER | None) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        f1, f2 = net(x), net(x.flip(-1))
        loss = nt_xent(proj(f1), proj(f2))
        if ser is not None:
            loss = loss + ser(StepInputs(backbone=net, images=x, generator=gen)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    kinds: list[SER | None] = [None, *sers.values()]
    for kind in kinds * 3:  # warm-up
        step(kind)
    times: dict[int, list[float]] = {i: [] for i in range(len(kinds))}
    for _ in range(args.steps):
        for i, kind in enumerate(kinds):
            times[i].append(step(kind))
    base = statistics.median(times[0])
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(f"device {device}{threads}, batch {args.batch}, 28x28 gray, SmallCNN(width=32), {args.steps} steps each")
    print(f"SimCLR alone: {1000 * base:.1f} ms per step")
    for i, f in enumerate(args.fractions, start=1):
        t = statistics.median(times[i])
        n = min(args.batch, max(2, round(f * args.batch)))
        print(f"+ SER (batch_fraction {f}: {n} images): {1000 * t:.1f} ms per step, {t / base:.3f}x")


if __name__ == "__main__":
    main()
