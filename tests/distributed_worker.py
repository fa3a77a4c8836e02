"""Worker process for the 2-rank CPU (gloo) distributed test; importable by spawned children."""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from essl_aug import EquivarianceLoss, EquivariantTransform
from essl_aug.streams import StepStreams
from essl_aug.views import simclr


class _Branch(nn.Module):
    """Backbone plus E-SSL objective in one module, as DDP needs it."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.essl = EquivarianceLoss("rotation", in_features=8, hidden=(16,), mode="all")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.essl(self.backbone, x).loss


def run(rank: int, world: int, init_file: str, out_dir: str, seed: int) -> None:
    early = StepStreams(seed)  # made before the process group, as a model's are in Lightning
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(seed)  # the same seed on every rank, as Lightning's seed_everything does
        per_rank = EquivariantTransform("jigsaw")
        shared = EquivariantTransform("jigsaw", distinct_per_rank=False)
        per_rank_labels = torch.cat([per_rank.sample_labels(64, "cpu") for _ in range(2)])
        torch.manual_seed(seed)
        shared_labels = torch.cat([shared.sample_labels(64, "cpu") for _ in range(2)])

        # The same module, re-seeded: the private per-rank stream must restart (balanced draws included).
        restarted = EquivariantTransform("jigsaw", balanced=True)
        torch.manual_seed(seed + 1)
        first_stream = torch.cat([restarted.sample_labels(30, "cpu") for _ in range(3)])
        torch.manual_seed(seed + 1)
        second_stream = torch.cat([restarted.sample_labels(30, "cpu") for _ in range(3)])

        # The views of step (epoch 1, step 3) from the run's step streams: the rank comes from torch.distributed.
        images = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(seed))  # the same images
        streams = StepStreams(seed)
        (stream_view, _), stream_params = simclr(8)(images, streams.generator(1, 3))
        stream_boxes = stream_params[0]["resized_crop"].box

        torch.manual_seed(seed)
        model = _Branch()
        local = copy.deepcopy(model)
        ddp = DistributedDataParallel(model)
        x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(seed + 100 * rank))
        loss = ddp(x)
        loss.backward()
        local(x).backward()
        flat = lambda m: torch.cat([p.grad.flatten() for p in m.essl.head.parameters()])  # noqa: E731
        torch.save(
            {
                "per_rank_labels": per_rank_labels,
                "shared_labels": shared_labels,
                "first_stream": first_stream,
                "second_stream": second_stream,
                "stream_view": stream_view,
                "stream_boxes": stream_boxes,
                "stream_rank": torch.tensor(streams.rank),
                "early_stream_rank": torch.tensor(early.rank),
                "loss": loss.detach(),
                "synced_head_grad": flat(model),
                "local_head_grad": flat(local),
            },
            f"{out_dir}/rank{rank}.pt",
        )
        del ddp, loss  # DDP's gradient work: freed while the group lives, not by gloo's threads at teardown
        dist.barrier()  # both ranks done before either tears down its connections
    finally:
        dist.destroy_process_group()
