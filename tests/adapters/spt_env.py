"""What the stable-pretraining tests share: the framework (skipped without it, failed under CI), a tiny run.

stable-pretraining is not in the venv: its Lightning entry point would add its callbacks to every Trainer of the other
tests (the solo-learn session's included). ``scripts/install_spt_overlay.sh`` installs it as an overlay, with its own
examples and benchmark scripts (from its source distribution) in ``<overlay>/source``; ``make test-spt`` runs these
tests with the overlay on ``PYTHONPATH`` and ``ESSL_SPT_OVERLAY`` naming it, and the other sessions leave them out
(``tests/adapters/conftest.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
#: The test files that need stable-pretraining: collected only in the session that has the overlay.
SPT_TESTS = ("test_stable_pretraining.py", "test_stable_pretraining_example.py")


def overlay() -> Path | None:
    """The stable-pretraining overlay (``$ESSL_SPT_OVERLAY``), or None outside its session."""
    value = os.environ.get("ESSL_SPT_OVERLAY")
    return Path(value).resolve() if value else None


def require(what: str, reason: str | None) -> None:
    """Skip the module with ``reason`` (when not None); under CI (``CI=true``) fail it instead."""
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI runs the {what} tests", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def spt_missing() -> str | None:
    """Why stable-pretraining cannot be imported, or None."""
    try:
        import stable_pretraining  # noqa: F401
    except ImportError as err:
        return f"stable-pretraining cannot be imported ({err}): run `make test-spt` (its overlay on PYTHONPATH)"
    return None


def examples() -> Path:
    """stable-pretraining's own examples and benchmark scripts, unpacked by ``scripts/install_spt_overlay.sh``."""
    return (overlay() or ROOT / ".spt-overlay") / "source"


def backbone() -> nn.Module:
    """8 pooled features of a (B, 3, H, W) batch."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def images(n: int = 16, size: int = 24, seed: int = 0) -> torch.Tensor:
    """``n`` uint8 images (n, 3, size, size) with a fixed content."""
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


class Images(torch.utils.data.Dataset):
    """``(image, label)`` pairs of fixed uint8 images (the un-augmented images of the device-views path)."""

    def __init__(self, data: torch.Tensor) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.data[i], i % 2


def data_module(essl: dict[str, Any], batch_size: int = 8, n: int = 16, seed: int = 0) -> Any:
    """spt's DataModule over :class:`Images` with the block's :class:`ESSLTransform` on the training dataset."""
    import stable_pretraining as spt
    from essl_aug.adapters.stable_pretraining import ESSLTransform

    dataset = spt.data.FromTorchDataset(
        Images(images(n, seed=seed)), names=["image", "label"], gpu_transform=ESSLTransform(essl)
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=True)
    return spt.data.DataModule(train=loader)


def trainer(steps: int = 2, callbacks: list[Any] | None = None, **kwargs: Any) -> Any:
    """A CPU Lightning trainer of ``steps`` steps, without logger, checkpoints, validation or progress bar (unless
    ``kwargs`` set them)."""
    import lightning as pl

    options = {
        "accelerator": "cpu",
        "max_steps": steps,
        "max_epochs": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "limit_val_batches": 0,
        "num_sanity_val_steps": 0,
    }
    return pl.Trainer(callbacks=callbacks or [], **{**options, **kwargs})


def fake_images(n: int = 16, size: int = 24) -> Images:
    """:class:`Images` of :func:`images` (a Hydra ``_target_``)."""
    return Images(images(n, size))
