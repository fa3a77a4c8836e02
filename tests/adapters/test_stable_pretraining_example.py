"""The stable-pretraining guide's edit of stable-pretraining's own ``benchmarks/cifar10/simclr-resnet18.py`` (from
the published source distribution, unpacked by ``scripts/install_spt_overlay.sh``): the documented diff applies,
changes as many lines as the guide says, and the edited script trains with the E-SSL term; the guide's Hydra block
instantiates through spt's own config path and trains."""

from __future__ import annotations

import re
import runpy
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.adapters import spt_env

spt_env.require("stable-pretraining", spt_env.spt_missing())

from tests.adapters.test_lightly_example import apply_unified_diff  # noqa: E402

GUIDE = spt_env.ROOT / "docs" / "guides" / "stable_pretraining.md"
WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def documented_edit() -> tuple[str, list[str], str]:
    """The guide's ``diff`` block marked ``<!-- spt-edit: PATH -->``: the path, the diff's lines and the sentence
    before it (which states the count)."""
    text = GUIDE.read_text()
    found = list(re.finditer(r"<!-- spt-edit: (\S+) -->\n```diff\n(.*?)```", text, re.S))
    assert len(found) == 1, "the guide has one <!-- spt-edit: ... --> diff block"
    match = found[0]
    before = " ".join(text[: match.start()].rstrip().rsplit("\n\n", 1)[-1].split())
    return match.group(1), match.group(2).splitlines(), before


def published(path: str) -> Path:
    source = spt_env.examples() / path
    if not source.is_file():
        spt_env.require("stable-pretraining example", f"no {path} in {spt_env.examples()}: run `make test-spt`")
    return source


def test_the_guide_counts_the_lines_its_diff_changes() -> None:
    path, diff, sentence = documented_edit()
    apply_unified_diff(published(path).read_text(), diff)  # the diff applies to the published script
    body = [line for line in diff if not line.startswith(("---", "+++", "@@"))]
    added = sum(line.startswith("+") for line in body)
    removed = sum(line.startswith("-") for line in body)
    counted = f"is {WORDS[added]} lines, {WORDS[added - removed]} added and {WORDS[removed]} changed"
    assert counted in sentence, (counted, sentence)


def test_the_edited_script_trains_with_the_essl_term(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, diff, _ = documented_edit()
    edited = apply_unified_diff(published(path).read_text(), diff)
    # The run only (not the documented edit): fake data, two steps on the CPU, no logger, no worker processes.
    for old, new in [
        (
            "torchvision.datasets.CIFAR10(\n    root=str(data_dir), train=True, download=True\n)",
            "torchvision.datasets.FakeData(16, (3, 32, 32), num_classes=10)",
        ),
        (
            "torchvision.datasets.CIFAR10(root=str(data_dir), train=False, download=True)",
            "torchvision.datasets.FakeData(8, (3, 32, 32), num_classes=10)",
        ),
        ("batch_size=256", "batch_size=8"),
        ("num_workers=8", "num_workers=0"),
        ("num_workers=10", "num_workers=0"),
        ("max_epochs=1000,", 'max_epochs=1, max_steps=2, accelerator="cpu", limit_val_batches=0,'),
        ('precision="16-mixed",', "precision=32, enable_progress_bar=False,"),
        ("logger=wandb_logger,", "logger=False,"),
        ("callbacks=[knn_probe, linear_probe, lr_monitor],", "callbacks=[knn_probe, linear_probe],"),
        (
            "\nmanager()\n",
            "\nheads = {k: p.detach().clone() for k, p in module.essl_objectives.named_parameters()}\nmanager()\n",
        ),
    ]:
        assert old in edited, old
        edited = edited.replace(old, new)
    (tmp_path / "cifar10").mkdir()
    script = tmp_path / "cifar10" / "simclr-resnet18.py"
    script.write_text(edited)
    shutil.copy(published("benchmarks/utils.py"), tmp_path / "utils.py")  # the script's own helper, beside it
    monkeypatch.setenv("STABLE_PRETRAINING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace = runpy.run_path(str(script), run_name="__main__")
    module, trainer = namespace["module"], namespace["trainer"]
    assert trainer.global_step == 2
    logged = trainer.callback_metrics
    assert torch.isfinite(logged["fit/essl/ce_step"]) and "fit/essl/acc_step" in logged
    trained = dict(module.essl_objectives.named_parameters())
    stepped = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert {id(p) for p in trained.values()} <= stepped
    assert all(not torch.equal(before, trained[k].detach()) for k, before in namespace["heads"].items())


def hydra_block() -> str:
    text = GUIDE.read_text()
    found = re.findall(r"```yaml\n(essl:.*?)```", text, re.S)
    assert len(found) == 1, "the guide has one Hydra block starting with `essl:`"
    return found[0]


def test_the_guides_hydra_block_trains_through_spts_config_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's ``essl:`` / ``module`` / ``data`` block, with the parts it leaves as before filled in, instantiated
    by spt's own ``recursive_instantiate`` (what its Hydra runner calls), then two steps."""
    from omegaconf import OmegaConf
    from stable_pretraining.config import recursive_instantiate

    cfg = OmegaConf.create(hydra_block())
    filled = {
        "module": {
            "backbone": {"_target_": "tests.adapters.spt_env.backbone"},
            "projector": {"_target_": "torch.nn.Linear", "in_features": 8, "out_features": 4},
            "simclr_loss": {"_target_": "stable_pretraining.losses.NTXEntLoss"},
            "optim": {"optimizer": {"type": "SGD", "lr": 0.1}, "scheduler": "ConstantLR"},
        },
        "data": {
            stage: {
                "batch_size": 8,
                "drop_last": True,
                "dataset": {
                    "dataset": {"_target_": "tests.adapters.spt_env.fake_images", "n": 16, "size": 40},
                    "names": ["image", "label"],
                },
            }
            for stage in ("train", "val")  # spt's DataModule makes the validation set too when it fits
        },
    }
    filled["data"]["val"]["dataset"]["transform"] = {"_target_": "stable_pretraining.data.transforms.ToImage"}
    cfg = OmegaConf.merge(cfg, filled)
    components: dict[str, Any] = recursive_instantiate(cfg)
    module, data = components["module"], components["data"]
    assert sorted(module.essl_objectives.objectives) == ["augself", "essl"]
    spt_env.trainer(2).fit(module, datamodule=data)
    assert module.trainer.global_step == 2
    assert torch.isfinite(module.trainer.callback_metrics["fit/augself/loss_step"])
