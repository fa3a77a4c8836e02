"""The stable-pretraining adapter against the real framework (spt.Module, its forward functions, Lightning's loop)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

import pytest
import torch
from torch import nn

from tests.adapters import spt_env

spt_env.require("stable-pretraining", spt_env.spt_missing())

import lightning as pl  # noqa: E402
import stable_pretraining as spt  # noqa: E402
from essl_aug.adapters.stable_pretraining import KEY, ESSLTransform, Module  # noqa: E402
from stable_pretraining import forward as spt_forward  # noqa: E402

from essl_aug.streams import StepStreams  # noqa: E402
from essl_aug.views import extra_view, simclr  # noqa: E402

BLOCK = {
    "hidden_dim": 16,
    "views": {"name": "simclr", "size": 16},
    "objectives": {"augself": {"hidden": [16]}},
    "seed": 3,
}


class Capture(pl.Callback):
    """The batch and the forward's returned dict of every training step, and the SSL loss spt's forward logged."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        ssl = trainer.callback_metrics["fit/loss_step"].clone()
        self.steps.append({"outputs": dict(outputs), "batch": batch, "batch_idx": batch_idx, "ssl": ssl})


def simclr_module(essl: dict[str, Any] | None, **kwargs: Any) -> Module:
    torch.manual_seed(0)
    return Module(
        essl=essl,
        forward=spt_forward.simclr,
        backbone=spt_env.backbone(),
        projector=nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)),
        simclr_loss=spt.losses.NTXEntLoss(temperature=0.5),
        optim={"optimizer": {"type": "SGD", "lr": 0.5}, "scheduler": "ConstantLR"},
        **kwargs,
    )


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    module = simclr_module(BLOCK)
    heads = {name: p.detach().clone() for name, p in module.essl_objectives.named_parameters()}
    capture = Capture()
    trainer = spt_env.trainer(2, [capture])
    trainer.fit(module, datamodule=spt_env.data_module(BLOCK))
    return {"module": module, "heads": heads, "capture": capture, "trainer": trainer}


def test_two_steps_add_the_objectives_to_the_loss_and_return_their_logs(run: dict[str, Any]) -> None:
    steps = run["capture"].steps
    assert [s["batch_idx"] for s in steps] == [0, 1]
    for step in steps:
        out = step["outputs"]
        assert {"essl/ce", "essl/acc", "essl/loss", "augself/loss", "augself/crop", "augself/color"} <= set(out)
        # spt's loss (what the simclr forward logged) plus each objective's weighted loss
        expected = step["ssl"] + out["essl/loss"] + out["augself/loss"]
        assert torch.allclose(out["loss"].detach(), expected, atol=1e-6), (out["loss"], expected)
        assert torch.allclose(out["essl/loss"], 0.4 * out["essl/ce"])
    logged = run["trainer"].callback_metrics
    assert {"fit/essl/ce_step", "fit/essl/acc_step", "fit/augself/loss_step"} <= set(logged)


def test_the_heads_are_in_the_optimiser_and_change(run: dict[str, Any]) -> None:
    module, trainer = run["module"], run["trainer"]
    stepped = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    heads = dict(module.essl_objectives.named_parameters())
    assert {"essl", "augself"} == {name.split(".")[1] for name in heads}
    assert {id(p) for p in heads.values()} <= stepped
    for name, before in run["heads"].items():
        assert not torch.equal(before, heads[name].detach()), name


def test_the_draws_are_the_step_streams_of_rank_epoch_and_batch(run: dict[str, Any]) -> None:
    """Each step's views and extra view are the recipe's on the un-augmented images with the generator of
    ``StepStreams(seed)`` at (epoch 0, batch_idx): made in the gpu_transform, keyed by the module."""
    for step in run["capture"].steps:
        batch, i = step["batch"], step["batch_idx"]
        record = batch[KEY]
        assert record["step"] == (0, i)
        images = spt_env.images(16)[8 * i : 8 * (i + 1)]
        assert torch.equal(record["images"], images)
        gen = StepStreams(BLOCK["seed"], rank=0).generator(0, i)
        recipe = simclr(16)
        (v0, v1), params = recipe(images, gen)
        extra, _ = extra_view(16, normalize=recipe.pipelines[0].normalize)(images, gen)
        assert torch.equal(batch["views"][0]["image"], v0) and torch.equal(batch["views"][1]["image"], v1)
        assert torch.equal(record["params"][1]["resized_crop"].box, params[1]["resized_crop"].box)
        assert torch.equal(record["extra"], extra)
        assert torch.equal(batch["views"][0]["label"], torch.tensor([0, 1] * 4))  # spt's view dicts keep the label
    first, second = (s["batch"]["views"][0]["image"] for s in run["capture"].steps)
    assert not torch.equal(first, second)


def test_without_a_block_the_module_is_spt_module() -> None:
    module = simclr_module(None)
    assert module.essl_objectives is None and module.forward.__func__ is spt_forward.simclr


def test_the_extra_view_from_the_cpu_views_of_spt_multiviewtransform() -> None:
    """Without ``essl.views``: spt's CPU two-view transform, the extra view from view 0 (crop and flip only)."""
    block = {"hidden_dim": 16}
    view = spt.data.transforms.Compose(
        spt.data.transforms.RGB(),
        spt.data.transforms.RandomResizedCrop((16, 16)),
        spt.data.transforms.ToImage(mean=[0.5] * 3, std=[0.25] * 3),
    )
    dataset = spt.data.FromTorchDataset(
        torchvision_fake(16),
        names=["image", "label"],
        transform=spt.data.transforms.MultiViewTransform([view, view]),
        gpu_transform=ESSLTransform(block),
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, drop_last=True)
    capture = Capture()
    module = simclr_module(block)
    spt_env.trainer(2, [capture]).fit(module, datamodule=spt.data.DataModule(train=loader))
    for step in capture.steps:
        record, out = step["batch"][KEY], step["outputs"]
        assert tuple(record["extra"].shape) == (8, 3, 8, 8)  # the reference: half the views' 16 px
        assert "params" not in record and torch.isfinite(out["loss"])
        assert torch.allclose(out["loss"].detach(), step["ssl"] + out["essl/loss"], atol=1e-6)


def torchvision_fake(n: int) -> Any:
    from torchvision.datasets import FakeData

    return FakeData(n, (3, 20, 20), num_classes=2, random_offset=0)


def test_the_block_must_match_what_the_step_provides() -> None:
    with pytest.raises(ValueError, match="augself needs params"):
        simclr_module({"objectives": {"augself": {}}})
    with pytest.raises(ValueError, match="in_features"):
        Module(essl={}, forward=spt_forward.simclr, backbone=spt_env.backbone())
    with pytest.raises(ValueError, match="`forward` is required"):
        Module(essl={}, backbone=spt_env.backbone(), projector=nn.Linear(8, 4))


def test_the_transform_must_be_attached() -> None:
    """The module alone (no ESSLTransform on the dataset) fails at the first step, saying what to attach."""
    dataset = spt.data.FromTorchDataset(spt_env.Images(spt_env.images(8)), names=["image", "label"])
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    with pytest.raises(RuntimeError, match="attach ESSLTransform"):
        spt_env.trainer(1).fit(simclr_module(BLOCK), datamodule=spt.data.DataModule(train=loader))


def test_the_transform_refuses_a_batch_without_images() -> None:
    with pytest.raises(ValueError, match="un-augmented"):
        ESSLTransform(BLOCK)({"views": []})
    with pytest.raises(ValueError, match=r"essl.view=0 of batch\['views'\]"):
        ESSLTransform({})({"image": spt_env.images(2)})


@pytest.fixture(scope="module")
def ddp_ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The two ranks of a CPU gloo DDP run through Lightning's trainer (tests/adapters/spt_ddp_worker.py)."""
    out = tmp_path_factory.mktemp("spt_ddp")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2", "NODE_RANK": "0"}
    base |= {
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(spt_env.ROOT), base.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "tests.adapters.spt_ddp_worker", str(out)]
    procs = [
        subprocess.Popen(
            command,
            cwd=spt_env.ROOT,
            env={**base, "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(2)
    ]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-4000:]
    return [torch.load(out / f"rank{r}.pt") for r in range(2)]


def test_ddp_ranks_draw_their_own_views_and_train_the_same_heads(ddp_ranks: list[dict[str, Any]]) -> None:
    from tests.adapters.spt_ddp_worker import BLOCK as DDP_BLOCK

    assert [(r["rank"], r["world"]) for r in ddp_ranks] == [(0, 2), (1, 2)]
    for rank, result in enumerate(ddp_ranks):
        assert [s["step"] for s in result["steps"]] == [(0, 0), (0, 1)]
        for i, step in enumerate(result["steps"]):
            assert torch.isfinite(step["loss"]) and torch.isfinite(step["essl_ce"])
            # this rank's draws: StepStreams(seed) at (rank, epoch 0, batch i), on the images of its shard
            (v0, _), params = simclr(16)(step["images"], StepStreams(DDP_BLOCK["seed"], rank=rank).generator(0, i))
            assert torch.equal(step["view0"], v0) and torch.equal(step["box0"], params[0]["resized_crop"].box)
    r0, r1 = ddp_ranks
    for s0, s1 in zip(r0["steps"], r1["steps"], strict=True):
        assert not torch.equal(s0["images"], s1["images"])  # the DistributedSampler's shards
        assert not torch.equal(s0["box0"], s1["box0"])  # same image size: the crops differ by the rank's stream
    for key, value in r0["heads"].items():  # DDP averaged the heads' gradients: one model on both ranks
        assert torch.equal(value, r1["heads"][key]), key
    assert any(not torch.equal(r0["initial"][k], v) for k, v in r0["heads"].items())


def test_a_block_that_adds_nothing_leaves_the_step_as_spt_makes_it() -> None:
    """``lambda: 0`` and nothing else: no objectives, no record, spt's forward and loss as they are."""
    capture = Capture()
    dataset = spt.data.FromTorchDataset(spt_env.Images(spt_env.images(8)), names=["image", "label"])
    two_views = spt.data.gpu_transforms.StackedMultiView(nn.Identity(), n_views=2)
    dataset.gpu_transform = lambda batch: two_views({**batch, "image": batch["image"].float() / 255})
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    module = simclr_module({"lambda": 0})
    spt_env.trainer(1, [capture]).fit(module, datamodule=spt.data.DataModule(train=loader))
    assert module.essl_objectives is None
    (step,) = capture.steps
    assert KEY not in step["batch"] and not any(k.startswith("essl/") for k in step["outputs"])
    assert torch.equal(step["outputs"]["loss"].detach(), step["ssl"])


def test_byol_reads_the_students_features() -> None:
    """spt's ``byol`` forward (TeacherStudentWrapper components): the objectives read the student backbone and
    projector (the teacher's outputs are detached), and train with it."""
    torch.manual_seed(0)
    backbone = spt.TeacherStudentWrapper(spt_env.backbone())
    module = Module(
        essl=BLOCK,
        forward=spt_forward.byol,
        backbone=backbone,
        projector=spt.TeacherStudentWrapper(nn.Linear(8, 4)),
        predictor=nn.Linear(4, 4),
        byol_loss=spt.losses.BYOLLoss(),
        optim={"optimizer": {"type": "SGD", "lr": 0.5}, "scheduler": "ConstantLR"},
    )
    seen: list[torch.Tensor] = []
    backbone.student.register_forward_hook(lambda m, args, out: seen.append(out))
    capture = Capture()
    spt_env.trainer(1, [capture]).fit(module, datamodule=spt_env.data_module(BLOCK))
    (step,) = capture.steps
    out = step["outputs"]
    assert torch.allclose(out["loss"].detach(), step["ssl"] + out["essl/loss"] + out["augself/loss"], atol=1e-6)
    # the student saw the two views, then the E-SSL term's extra view (4 rotations of each image): 2 + 1 calls
    assert [tuple(t.shape) for t in seen] == [(8, 8), (8, 8), (32, 8)]


def test_without_the_framework_the_module_imports_and_module_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['stable_pretraining'] = None\n"
        "from essl_aug.adapters.stable_pretraining import ESSLTransform, Module\n"
        "ESSLTransform({})\n"
        "try:\n    Module(essl={}, forward=print)\nexcept ImportError as err:\n    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install essl-aug[spt]" in out, out


def test_a_resumed_run_draws_what_the_uninterrupted_run_drew(tmp_path: Any) -> None:
    """``essl.seed``: the step keys are Lightning's (epoch, batch index), which a checkpoint restores: resumed after
    step 0, step 1 crops the boxes the uninterrupted run cropped at step 1 (the same image size)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    full = Capture()
    spt_env.trainer(2, [full]).fit(simclr_module(BLOCK), datamodule=spt_env.data_module(BLOCK))
    saver = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1, save_top_k=-1)
    spt_env.trainer(1, [saver], enable_checkpointing=True).fit(
        simclr_module(BLOCK), datamodule=spt_env.data_module(BLOCK)
    )
    resumed = Capture()
    (checkpoint,) = tmp_path.glob("*.ckpt")
    spt_env.trainer(2, [resumed]).fit(
        simclr_module(BLOCK), datamodule=spt_env.data_module(BLOCK, seed=1), ckpt_path=str(checkpoint)
    )
    (step,) = resumed.steps
    assert step["batch"][KEY]["step"] == full.steps[1]["batch"][KEY]["step"] == (0, 1)
    for view in range(2):
        box, expected = (s["batch"][KEY]["params"][view]["resized_crop"].box for s in (step, full.steps[1]))
        assert torch.equal(box, expected), view
    assert not torch.equal(step["batch"][KEY]["images"], full.steps[1]["batch"][KEY]["images"])  # other images
