"""A lightly SimCLR module with :class:`~essl_aug.adapters.lightly.EquivariantStep` and ``essl.seed``, stopped at a
Lightning checkpoint and resumed by a new trainer, trains as the uninterrupted run: the same losses, step for step,
bit for bit (CPU); the streams' state travels in the module's ``state_dict``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pytest.importorskip("lightly")

import pytorch_lightning as pl
from essl_aug.adapters.lightly import EquivariantStep
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead

B, SIZE, IMAGES = 4, 16, 8
BLOCK = {"lambda": 0.4, "hidden_dim": 16, "crop_size": 8}
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Lightning's advice on loader workers and logging


class SimCLR(pl.LightningModule):
    """lightly's examples/pytorch_lightning/simclr.py with a tiny backbone and the device-views step."""

    def __init__(self, seed: int, init: int = 0) -> None:
        super().__init__()
        torch.manual_seed(init)
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.projection_head = SimCLRProjectionHead(8, 16, 8)
        self.criterion = NTXentLoss()
        self.essl = EquivariantStep(self.backbone, input_dim=8, size=SIZE, config={**BLOCK, "seed": seed})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.backbone(x).flatten(start_dim=1))

    def training_step(self, batch: Any, batch_index: int) -> torch.Tensor:
        x0, x1 = self.essl.views(batch[0], epoch=self.current_epoch, step=batch_index)
        z0, z1 = self.forward(x0), self.forward(x1)
        return self.criterion(z0, z1) + self.essl.loss(z0, z1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.06, momentum=0.9)


class Losses(pl.Callback):
    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.losses.append(outputs["loss"].detach().clone())


def fit(model: SimCLR, epochs: int, root: Path, ckpt: Path | None = None) -> tuple[list[torch.Tensor], Any]:
    images = torch.randint(0, 256, (IMAGES, 3, SIZE + 4, SIZE + 4), generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(images.to(torch.uint8)), batch_size=B, shuffle=False)
    losses = Losses()
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[losses],
        default_root_dir=root,
    )
    trainer.fit(model, loader, ckpt_path=str(ckpt) if ckpt else None)
    return losses.losses, trainer


def test_the_streams_state_is_in_the_state_dict_and_restored_from_it() -> None:
    state = SimCLR(seed=3).state_dict()
    assert state["essl._extra_state"]["seed"] == 3
    other = SimCLR(seed=99, init=1)
    other.load_state_dict(state)
    assert other.essl.streams is not None and other.essl.streams.seed == 3


def test_a_run_resumed_from_its_checkpoint_trains_as_the_uninterrupted_run(tmp_path: Path) -> None:
    whole, _ = fit(SimCLR(seed=3), 2, tmp_path / "whole")
    assert len(whole) == 2 * IMAGES // B
    first, trainer = fit(SimCLR(seed=3), 1, tmp_path / "first")
    ckpt = tmp_path / "epoch1.ckpt"
    trainer.save_checkpoint(ckpt)
    rest, _ = fit(SimCLR(seed=99, init=1), 2, tmp_path / "rest", ckpt=ckpt)  # weights and streams from the ckpt
    assert len(first) + len(rest) == len(whole)
    for step, (a, b) in enumerate(zip(whole, [*first, *rest], strict=True)):
        assert torch.equal(a, b), f"step {step}: {float(a)} != {float(b)}"
    # the check can fail: another seed's streams draw other views from the same weights
    torch.manual_seed(0)
    other, _ = fit(SimCLR(seed=4), 2, tmp_path / "other")
    assert not torch.equal(other[-1], whole[-1])
