"""One rank of the 2-process CPU (gloo) DDP run of the stable-pretraining adapter through Lightning's trainer.

Launched as ``python -m tests.adapters.spt_ddp_worker OUT_DIR`` with ``LOCAL_RANK``, ``NODE_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT`` set (as torchrun does): Lightning then joins the group instead of spawning. Each
rank saves what it drew and trained to ``OUT_DIR/rank<r>.pt``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import lightning as pl
import stable_pretraining as spt
import torch
from essl_aug.adapters.stable_pretraining import KEY, Module
from lightning.pytorch.strategies import DDPStrategy
from stable_pretraining import forward as spt_forward
from torch import nn

from tests.adapters import spt_env

BLOCK = {
    "hidden_dim": 16,
    "views": {"name": "simclr", "size": 16},
    "objectives": {"augself": {"hidden": [16]}},
    "seed": 5,
}


class Record(pl.Callback):
    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        record = batch[KEY]
        self.steps.append(
            {
                "step": record["step"],
                "images": record["images"],
                "view0": batch["views"][0]["image"],
                "box0": record["params"][0]["resized_crop"].box,
                "loss": outputs["loss"].detach(),
                "essl_ce": outputs["essl/ce"],
            }
        )


def main(out: Path) -> None:
    torch.manual_seed(0)  # the same initial weights on both ranks
    module = Module(
        essl=BLOCK,
        forward=spt_forward.simclr,
        backbone=spt_env.backbone(),
        projector=nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)),
        simclr_loss=spt.losses.NTXEntLoss(temperature=0.5),
        optim={"optimizer": {"type": "SGD", "lr": 0.5}, "scheduler": "ConstantLR"},
    )
    initial = {k: v.detach().clone() for k, v in module.essl_objectives.named_parameters()}
    record = Record()
    trainer = spt_env.trainer(2, [record], devices=2, strategy=DDPStrategy(process_group_backend="gloo"))
    trainer.fit(module, datamodule=spt_env.data_module(BLOCK, batch_size=4, n=16))
    # the heads' parameters (BatchNorm's running statistics stay per rank under DDP)
    heads = {k: v.detach().clone() for k, v in module.essl_objectives.named_parameters()}
    torch.save(
        {
            "rank": trainer.global_rank,
            "world": trainer.world_size,
            "steps": record.steps,
            "initial": initial,
            "heads": heads,
        },
        out / f"rank{trainer.global_rank}.pt",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
