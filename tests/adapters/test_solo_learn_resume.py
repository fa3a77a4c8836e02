"""A solo-learn run with ``essl.seed`` stopped at a checkpoint and resumed by Lightning's trainer draws what the
uninterrupted run draws: the same losses, step for step, bit for bit (CPU).

The method is solo-learn's own SimCLR (its GitHub version, from the clone) adapted, with its views made on the device
(``essl.views``) and the E-SSL extra view, both drawn from the streams of ``essl.seed``; Lightning's ``Trainer`` runs
it on a tiny dataset, saves a checkpoint after the first epoch, and a second trainer resumes from it
(``fit(ckpt_path=...)``). Runs in the session of ``make test-solo``.
"""

from __future__ import annotations

from tests.adapters import solo_env

solo_env.require_solo()

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import lightning.pytorch as pl  # noqa: E402
import pytest  # noqa: E402
import solo.methods as solo_methods  # noqa: E402
import torch  # noqa: E402
from essl_aug.adapters.solo_learn import equivariant  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

# the adapter tests' config and their autouse fixture (the tiny backbone in solo-learn's registry, one thread)
from tests.adapters.test_solo_learn import CLASSES, SIZE, B, _tiny_backbone, make_cfg  # noqa: E402, F401

IMAGES = 8
BLOCK = {"lambda": 0.4, "hidden_dim": 16, "crop_size": 8, "views": {"name": "simclr", "scale": [0.2, 1.0]}}
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),  # Lightning's advice on loader workers and log intervals
    pytest.mark.filterwarnings("ignore:The 'warn' function is deprecated"),  # solo-learn's logging.warn
]


class Images(Dataset):
    """What solo-learn's loader yields for ``essl.views``: the index, the un-augmented image twice, the target."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(IMAGES, 3, SIZE, SIZE, generator=g)
        self.y = torch.randint(0, CLASSES, (IMAGES,), generator=g)

    def __len__(self) -> int:
        return IMAGES

    def __getitem__(self, i: int) -> Any:
        return i, [self.x[i], self.x[i]], self.y[i]


def make_model(seed: int, init: int = 0) -> Any:
    """solo-learn's SimCLR, adapted, from the adapter tests' config (as ``main_pretrain.py`` passes it), 2 epochs."""
    cfg = make_cfg("simclr", {**BLOCK, "seed": seed})
    cfg.max_epochs = 2
    cls = equivariant(solo_methods.METHODS["simclr"])
    torch.manual_seed(init)
    return cls(cls.add_and_assert_specific_cfg(cfg))


class Losses(pl.Callback):
    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(loss.detach().clone())


def fit(model: Any, epochs: int, root: Path, ckpt: Path | None = None) -> tuple[list[torch.Tensor], pl.Trainer]:
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
    loader = DataLoader(Images(), batch_size=B, shuffle=False, num_workers=0)
    trainer.fit(model, loader, ckpt_path=str(ckpt) if ckpt else None)
    return losses.losses, trainer


def test_a_run_resumed_from_its_checkpoint_draws_and_trains_as_the_uninterrupted_run(tmp_path: Path) -> None:
    whole, _ = fit(make_model(seed=3), 2, tmp_path / "whole")
    assert len(whole) == 2 * IMAGES // B

    first, trainer = fit(make_model(seed=3), 1, tmp_path / "first")
    ckpt = tmp_path / "epoch1.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=False)
    assert saved["essl_streams"]["seed"] == 3

    # another initialisation and another configured seed: the checkpoint restores the weights and the streams
    resumed_model = make_model(seed=99, init=1)
    rest, _ = fit(resumed_model, 2, tmp_path / "rest", ckpt=ckpt)
    assert resumed_model._essl_streams.seed == 3
    assert len(first) + len(rest) == len(whole)
    for step, (a, b) in enumerate(zip(whole, [*first, *rest], strict=True)):
        assert torch.equal(a, b), f"step {step}: {float(a)} != {float(b)}"


def test_without_the_checkpoints_streams_a_resumed_run_draws_otherwise(tmp_path: Path) -> None:
    """The check above can fail: resuming with another seed and no streams in the checkpoint changes the draws."""
    whole, _ = fit(make_model(seed=3), 2, tmp_path / "whole")
    _, trainer = fit(make_model(seed=3), 1, tmp_path / "first")
    ckpt = tmp_path / "epoch1.ckpt"
    trainer.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=False)
    del state["essl_streams"]
    torch.save(state, ckpt)
    rest, _ = fit(make_model(seed=99), 2, tmp_path / "rest", ckpt=ckpt)
    assert not torch.equal(whole[-1], rest[-1])
