"""The lightly adapter's device views and objectives by config, against lightly itself.

The un-augmented images go through lightly's ``LightlyDataset`` and :func:`collate_images`, the views are made by
:class:`GPUViews` in the step, and the objectives of :class:`ObjectivesLoss` (a probe registered by name for the
test, which needs every input, and the core's ``ESSL`` under another name) receive their parameters; their loss and
logs are checked against values computed independently from the same views.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("lightly")

from essl_aug.adapters import lightly as essl_lightly
from essl_aug.adapters import loader as essl_loader
from essl_aug.adapters.lightly import ESSLLoss, GPUViews, ObjectivesLoss, collate_images
from lightly.data import LightlyDataset
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from PIL import Image

from essl_aug.config import OBJECTIVES
from essl_aug.objectives import StepInputs
from essl_aug.streams import StepStreams
from essl_aug.views import TwoViews, extra_view, recipe
from tests.docs.doc_blocks import doc_blocks, run_doc_block

FEATURES, B, IMAGE, SIZE = 16, 8, 24, 16


def _probe_class():
    name = "essl_objective_probe"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("objective_probe.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].Probe


Probe = _probe_class()


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(OBJECTIVES, "probe", Probe)


class Images(torch.utils.data.Dataset):
    """PIL images with integer targets, no transform (the views are made on the device)."""

    def __init__(self, n: int = 2 * B, size: int = IMAGE) -> None:
        g = torch.Generator().manual_seed(0)
        self.pixels = torch.randint(0, 256, (n, size, size, 3), generator=g, dtype=torch.uint8)

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, i: int):
        return Image.fromarray(self.pixels[i].numpy()), i % 10


def small_backbone() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, FEATURES, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def test_collate_images_is_the_librarys_and_keeps_uint8_with_lightlys_dataset() -> None:
    assert essl_lightly.collate_images is essl_loader.collate_images  # re-exported where lightly users look
    data = Images()
    dataset = LightlyDataset.from_torch_dataset(data)
    loader = torch.utils.data.DataLoader(dataset, batch_size=B, collate_fn=collate_images)
    images, targets, filenames = next(iter(loader))
    assert images.dtype == torch.uint8 and images.shape == (B, 3, IMAGE, IMAGE) and type(images) is torch.Tensor
    assert torch.equal(images, data.pixels[:B].permute(0, 3, 1, 2))
    assert targets.tolist() == [i % 10 for i in range(B)] and len(filenames) == B


def test_gpu_views_are_the_recipe_with_its_params() -> None:
    x = torch.randint(0, 256, (B, 3, IMAGE, IMAGE), dtype=torch.uint8)
    before = x.clone()
    gpu_views = GPUViews("byol", size=SIZE, generator=torch.Generator().manual_seed(7), scale=(0.2, 1.0))
    views, params = gpu_views(x)
    expected, expected_params = recipe("byol", SIZE, scale=(0.2, 1.0))(x, torch.Generator().manual_seed(7))
    assert torch.equal(x, before) and len(views) == 2
    for got, want in zip(views, expected, strict=True):
        assert got.dtype == torch.float32 and torch.equal(got, want)
    assert torch.equal(params[1]["resized_crop"].box, expected_params[1]["resized_crop"].box)
    assert params[1]["solarize"].applied.shape == (B,)
    two = TwoViews(recipe("simclr", 8).pipelines[0])
    assert GPUViews(two).recipe is two


def test_gpu_views_errors() -> None:
    with pytest.raises(ValueError, match=r"`name` must be one of \['byol', 'dino', 'simclr', 'swav'\], got 'moco'"):
        GPUViews("moco", size=SIZE)
    with pytest.raises(TypeError, match="jitter"):
        GPUViews("simclr", size=SIZE, jitter=0.5)
    with pytest.raises(ValueError, match=r"\['scale'\] are options of a recipe given by name"):
        GPUViews(recipe("simclr", 8), scale=(0.5, 1.0))
    with pytest.raises(TypeError, match="collate_images"):
        GPUViews("simclr", size=SIZE)([torch.zeros(3, 8, 8)])
    with pytest.raises(TypeError, match=r"`generator` must be a torch.Generator or None, got int.*manual_seed"):
        GPUViews("simclr", size=SIZE, generator=0)  # at construction, not at the first batch


def test_gpu_views_make_dinos_crops_and_the_step_refuses_them() -> None:
    """GPUViews("dino", num_local=6) makes DINOTransform's 8 crops on the device; EquivariantStep, which reads two
    views, refuses a multi-crop recipe and names the parts to use instead."""
    views, params = GPUViews("dino", size=SIZE, local_size=8, num_local=6)(
        torch.randint(0, 256, (2, 3, 20, 20), dtype=torch.uint8)
    )
    assert [tuple(v.shape[-2:]) for v in views] == [(SIZE, SIZE)] * 2 + [(8, 8)] * 6 and len(params) == 8
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ValueError, match=r"EquivariantStep makes two views; .* use GPUViews and ObjectivesLoss"):
        essl_lightly.EquivariantStep(backbone, 8, size=SIZE, config={"views": {"name": "dino", "local_size": 8}})


def test_objectives_by_config_errors() -> None:
    with pytest.raises(ValueError, match=r"objectives\.augselff: unknown objective 'augselff'"):
        ObjectivesLoss.from_config({"augselff": {}}, in_features=FEATURES)
    with pytest.raises(ValueError, match=r"'essl' is the E-SSL term"):
        ObjectivesLoss.from_config({"essl": {}}, in_features=FEATURES)
    with pytest.raises(ValueError, match=r"objectives\.probe: unknown option\(s\) \['wieght'\]"):
        ObjectivesLoss.from_config({"probe": {"wieght": 1.0}}, in_features=FEATURES, embedding_dim=8)
    with pytest.raises(ValueError, match=r"objectives\.probe: .*embedding_dim"):
        ObjectivesLoss.from_config({"probe": {}}, in_features=FEATURES)  # a required argument nobody gave
    with pytest.raises(ValueError, match="`objectives` is empty"):
        ObjectivesLoss.from_config({}, in_features=FEATURES)
    objectives = ObjectivesLoss.from_config({"probe": {}}, in_features=FEATURES, embedding_dim=8)
    with pytest.raises(ValueError, match="Probe needs extra, features, params"):
        objectives.training_step(StepInputs(backbone=small_backbone(), embeddings=(torch.zeros(2, 8),) * 2), 0)
    with pytest.raises(TypeError, match="an objective takes a StepInputs"):
        objectives.training_step({"features": None}, 0)


class SimCLR(nn.Module):
    """lightly's SimCLR example model with the device views, the E-SSL term and the objectives by config."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.backbone = small_backbone()
        self.projection_head = SimCLRProjectionHead(FEATURES, 32, 8)
        self.views = GPUViews("simclr", size=SIZE)
        self.extra = extra_view(SIZE)  # the reference E-SSL view of the same images (8 px)
        self.essl = ESSLLoss("rotation", input_dim=FEATURES, hidden_dim=16, weight=0.4)
        self.objectives = ObjectivesLoss.from_config(config, in_features=FEATURES, embedding_dim=8)


def test_a_training_loop_passes_the_params_to_the_objectives() -> None:
    torch.manual_seed(0)
    flip = {"objective": "essl", "transform": "vflip", "hidden": [16], "weight": 0.2}
    model = SimCLR({"probe": {"weight": 0.5}, "flip": flip})
    probe = model.objectives.objectives["probe"]
    discrete = model.objectives.objectives["flip"]
    assert probe.embedding_dim == 8 and discrete.head.in_features == FEATURES
    criterion = NTXentLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    loader = torch.utils.data.DataLoader(
        LightlyDataset.from_torch_dataset(Images()), batch_size=B, collate_fn=collate_images
    )
    before = [p.detach().clone() for p in model.objectives.parameters()]
    steps = 0
    for images, _, _ in loader:
        torch.manual_seed(steps)
        (x0, x1), params = model.views(images)
        f0, f1 = model.backbone(x0), model.backbone(x1)
        z0, z1 = model.projection_head(f0), model.projection_head(f1)
        x_e, _ = model.extra(images)
        inputs = StepInputs(model.backbone, x_e, (f0, f1), (z0, z1), tuple(params))
        extra, log = model.objectives.training_step(inputs, steps)
        loss = criterion(z0, z1) + model.essl(model.backbone, x_e) + extra

        with torch.no_grad():  # the probe's loss from the views this loop made, and the vflip CE, independently
            torch.manual_seed(steps)
            views, expected_params = model.views.recipe(images)
            assert torch.equal(views[0], x0) and torch.equal(views[1], x1)
            scales = [p["resized_crop"].scale for p in expected_params]
            mse = F.mse_loss(probe.linear(f0 - f1).squeeze(1), scales[0] - scales[1])
            flipped = torch.cat([x_e, x_e.flip(-2)])
            ce = F.cross_entropy(discrete.head(model.backbone(flipped)), torch.arange(2).repeat_interleave(B))
        assert probe.seen[-1].params[0] is params[0]
        torch.testing.assert_close(extra.detach(), 0.5 * mse + 0.2 * ce, rtol=1e-5, atol=1e-6)
        assert set(log) == {"train_probe_loss", "train_probe_mse", "train_flip_loss", "train_flip_ce", "train_flip_acc"}
        torch.testing.assert_close(log["train_probe_mse"], mse)
        assert not any(v.requires_grad for v in log.values())
        (grad,) = torch.autograd.grad(probe.losses[-1], model.backbone[0].weight, retain_graph=True)
        assert grad.abs().sum() > 0  # the objective's gradient reaches the backbone
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    assert steps == 2
    assert all(not torch.equal(a, b) for a, b in zip(before, model.objectives.parameters(), strict=True))


def test_lightning_fast_dev_run_logs_the_objectives() -> None:
    pl = pytest.importorskip("pytorch_lightning")

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = SimCLR({"probe": {"weight": 0.5}})
            self.criterion = NTXentLoss()

        def training_step(self, batch, batch_idx):  # type: ignore[override]
            images = batch[0]
            (x0, x1), params = self.model.views(images)
            f0, f1 = self.model.backbone(x0), self.model.backbone(x1)
            z0, z1 = self.model.projection_head(f0), self.model.projection_head(f1)
            x_e, _ = self.model.extra(images)
            extra, log = self.model.objectives.training_step(
                StepInputs(self.model.backbone, x_e, (f0, f1), (z0, z1), tuple(params)), batch_idx
            )
            self.log_dict(log)
            return self.criterion(z0, z1) + extra

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    module = Module()
    loader = torch.utils.data.DataLoader(Images(), batch_size=B, collate_fn=collate_images)
    trainer = pl.Trainer(
        fast_dev_run=True, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(module, loader)
    probe = module.model.objectives.objectives["probe"]
    assert {"train_probe_loss", "train_probe_mse"} <= set(trainer.callback_metrics)
    assert float(trainer.callback_metrics["train_probe_mse"]) == float(probe.losses[-1].detach())


def test_guide_example_runs_the_views_on_the_device() -> None:
    code = doc_blocks()["lightly-gpu-views"]
    assert "EquivariantStep" in code and "collate_images" in code and "StepInputs" not in code
    torch.manual_seed(0)
    ns = run_doc_block("lightly-gpu-views")
    assert torch.isfinite(ns["loss"])
    images = next(iter(ns["dataloader"]))[0]
    assert images.dtype == torch.uint8
    assert ns["params"][0]["resized_crop"].box.shape == (images.shape[0], 4)
    essl = {"train_essl_loss", "train_essl_ce", "train_essl_acc"}
    assert essl | {"train_augself_loss", "train_augself_crop", "train_augself_color"} == set(ns["log"])
    optimised = {id(p) for g in ns["optimizer"].param_groups for p in g["params"]}
    assert all(id(p) in optimised for p in ns["model"].essl.parameters())


def _step(config: dict, generator: torch.Generator | None = None) -> tuple[nn.Module, nn.Module, object]:
    backbone, projector = small_backbone(), nn.Linear(FEATURES, 8)
    step = essl_lightly.EquivariantStep(
        backbone, FEATURES, size=SIZE, config=config, embedding_dim=8, generator=generator
    )
    return backbone, projector, step


def test_the_step_gives_the_objectives_what_a_hand_written_step_would() -> None:
    """views() / loss() against the same step written by hand (GPUViews, the extra view, StepInputs) from the same
    generator: the same views, parameters, features, embeddings and extra view reach the objectives, and the loss is
    theirs; one call of the model on both views gives the same features as two."""
    config = {"lambda": 0.3, "hidden_dim": 16, "objectives": {"probe": {"weight": 0.5}}}
    images = torch.randint(0, 256, (B, 3, IMAGE, IMAGE), dtype=torch.uint8)
    for together in (False, True):
        backbone, projector, step = _step(config, torch.Generator().manual_seed(3))
        x0, x1 = step.views(images)
        f = backbone(torch.cat([x0, x1])) if together else torch.cat([backbone(x0), backbone(x1)])
        z0, z1 = projector(f[:B]), projector(f[B:])
        loss, log = step.training_step((z0, z1), 0)
        probe, essl = step.objectives.objectives["probe"], step.objectives.objectives["essl"]
        seen = probe.seen[-1]

        g = torch.Generator().manual_seed(3)  # the same step by hand
        (v0, v1), params = GPUViews(recipe("simclr", SIZE), generator=g)(images)
        x_e, _ = extra_view(SIZE)(images, g)
        assert torch.equal(v0, x0) and torch.equal(v1, x1) and torch.equal(seen.extra, x_e)
        assert torch.equal(seen.params[0]["resized_crop"].box, params[0]["resized_crop"].box)
        assert seen.features[0] is not None and torch.equal(seen.features[0], f[:B])
        assert torch.equal(seen.features[1], f[B:]) and seen.embeddings[0] is z0
        with torch.no_grad():
            turned = torch.cat([x_e.rot90(k, (-2, -1)) for k in range(4)])
            ce = F.cross_entropy(essl.head(backbone(turned)), torch.arange(4).repeat_interleave(B))
        torch.testing.assert_close(loss.detach(), 0.5 * probe.losses[-1].detach() + 0.3 * ce, rtol=1e-5, atol=1e-6)
        assert {"train_essl_ce", "train_probe_mse"} <= set(log)
        loss.backward()
        assert all(p.grad is not None for p in step.parameters())  # the heads are trained
        assert backbone[0].weight.grad.abs().sum() > 0


def test_the_step_is_no_second_copy_of_the_backbone_and_pickles() -> None:
    import pickle

    backbone, _projector, step = _step({"hidden_dim": 16})
    model = nn.ModuleDict({"backbone": backbone, "essl": step})
    assert not any(k.startswith("essl.") and "backbone" in k for k in model.state_dict())
    copy = pickle.loads(pickle.dumps(model))
    x0, x1 = copy["essl"].views(torch.randint(0, 256, (B, 3, IMAGE, IMAGE), dtype=torch.uint8))
    copy["backbone"](x0), copy["backbone"](x1)  # the copy's hook sees the copy's backbone
    assert torch.isfinite(copy["essl"].loss())


def test_the_step_says_what_to_call_in_which_order() -> None:
    backbone, _, step = _step({"hidden_dim": 16})
    with pytest.raises(RuntimeError, match=r"call `views\(images\)` first"):
        step.loss()
    x0, _ = step.views(torch.randint(0, 256, (B, 3, IMAGE, IMAGE), dtype=torch.uint8))
    backbone(x0)
    with pytest.raises(RuntimeError, match=rf"the backbone saw {B} images .* not the {2 * B} of the two views"):
        step.loss()
    with pytest.raises(ValueError, match="no term to add"):
        _step({"lambda": 0})
    with pytest.raises(TypeError, match="`backbone` must be the model's backbone"):
        essl_lightly.EquivariantStep(lambda x: x, FEATURES, size=SIZE)  # type: ignore[arg-type]
    backbone, _projector, step = _step({"hidden_dim": 16, "objectives": {"probe": {}}})
    x0, x1 = step.views(torch.randint(0, 256, (B, 3, IMAGE, IMAGE), dtype=torch.uint8))
    backbone(x0), backbone(x1)
    with pytest.raises(ValueError, match=r"needs embeddings"):
        step.loss()  # the probe reads the projector's outputs: loss(z0, z1)


def test_augself_by_config_in_a_lightly_step() -> None:
    gpu_views = GPUViews("simclr", size=SIZE)
    objectives = ObjectivesLoss.from_config(
        {"augself": {"groups": ["crop", "color"], "hidden": [16]}}, in_features=FEATURES, augmentations=gpu_views.recipe
    )
    augself = objectives.objectives["augself"]
    assert augself.in_features == FEATURES and list(augself.groups) == ["crop", "color"]
    backbone = small_backbone()
    images = torch.randint(0, 256, (B, 3, IMAGE, IMAGE), dtype=torch.uint8)
    (x0, x1), params = gpu_views(images)
    f0, f1 = backbone(x0), backbone(x1)
    loss, log = objectives.training_step(StepInputs(features=(f0, f1), params=tuple(params)), 0)
    with torch.no_grad():
        expected = augself(StepInputs(features=(f0, f1), params=tuple(params)))
    torch.testing.assert_close(loss.detach(), expected.loss)
    assert set(log) == {"train_augself_loss", "train_augself_crop", "train_augself_color"}
    loss.backward()
    assert backbone[0].weight.grad is not None and backbone[0].weight.grad.abs().sum() > 0


def test_continuous_essl_and_predictor_by_config_in_a_lightly_step() -> None:
    gpu_views = GPUViews("byol", size=SIZE)
    config = {
        "angle": {"objective": "essl", "transform": "random_rotation", "hidden": [16], "weight": 0.3},
        "predictor": {"groups": ["crop"], "dim": 8, "hidden": [16], "source": "embeddings"},
    }
    objectives = ObjectivesLoss.from_config(
        config, in_features=FEATURES, embedding_dim=8, augmentations=gpu_views.recipe
    )
    assert objectives.objectives["predictor"].in_features == 8  # the embeddings' width, for `source: embeddings`
    backbone, head = small_backbone(), nn.Linear(FEATURES, 8)
    images = torch.randint(0, 256, (B, 3, IMAGE, IMAGE), dtype=torch.uint8)
    (x0, x1), params = gpu_views(images)
    f0, f1 = backbone(x0), backbone(x1)
    x_e, _ = extra_view(SIZE)(images)
    inputs = StepInputs(backbone, x_e, (f0, f1), (head(f0), head(f1)), tuple(params))
    torch.manual_seed(2)
    loss, log = objectives.training_step(inputs, 0)
    torch.manual_seed(2)
    with torch.no_grad():
        expected = [objectives.objectives[n](inputs).loss for n in ("angle", "predictor")]
    torch.testing.assert_close(loss.detach(), expected[0] + expected[1], rtol=1e-5, atol=1e-6)
    assert {"train_angle_angle_error", "train_angle_cosine", "train_predictor_loss", "train_predictor_cos"} <= set(log)
    loss.backward()
    assert backbone[0].weight.grad.abs().sum() > 0 and head.weight.grad.abs().sum() > 0


def test_the_step_with_essl_on_the_views_turns_them_and_makes_no_extra_view() -> None:
    """``essl.source: views``: ``views()`` returns the recipe's views, both turned by one quarter turn per image, and
    ``loss()`` runs no backbone pass of its own (no extra view)."""
    backbone, projector, step = _step({"source": "views", "hidden_dim": 16}, torch.Generator().manual_seed(4))
    images = torch.randint(0, 256, (B, 3, IMAGE, IMAGE), dtype=torch.uint8)
    x0, x1 = step.views(images)
    g = torch.Generator().manual_seed(4)
    (v0, v1), _ = GPUViews(recipe("simclr", SIZE), generator=g)(images)
    on_views = step.objectives.objectives["essl"]
    labels = on_views.transform.sample_labels(B, "cpu", g)
    for turned, view in ((x0, v0), (x1, v1)):
        assert torch.equal(turned, torch.stack([v.rot90(int(k), (-2, -1)) for v, k in zip(view, labels, strict=True)]))
    calls: list[int] = []
    handle = backbone.register_forward_hook(lambda *_: calls.append(1))
    z0, z1 = projector(backbone(x0)), projector(backbone(x1))
    loss, log = step.training_step((z0, z1), 0)
    handle.remove()
    assert len(calls) == 2 and torch.isfinite(loss) and {"train_essl_ce", "train_essl_acc"} <= set(log)


def test_the_step_with_a_seed_draws_from_its_streams_at_the_position_given() -> None:
    images = torch.randint(0, 256, (B, 3, IMAGE, IMAGE), dtype=torch.uint8)
    _, _, step = _step({"seed": 5, "hidden_dim": 16})
    with pytest.raises(ValueError, match=r"essl.seed is set: call views\(images, epoch=..., step=...\)"):
        step.views(images)
    torch.manual_seed(0)
    first = step.views(images, epoch=2, step=7)
    torch.manual_seed(1)
    again = step.views(images, epoch=2, step=7)
    other = step.views(images, epoch=2, step=8)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    (expected, _), _ = GPUViews(recipe("simclr", SIZE))(images, StepStreams(5, 0).generator(2, 7))
    assert torch.equal(first[0], expected)


def test_the_step_hands_equimod_the_un_augmented_images() -> None:
    """``EquivariantStep`` passes the images given to ``views()`` as ``StepInputs.images``: EquiMod's loss is the one
    computed by hand on those images, normalised as the recipe's views are."""
    config = {"lambda": 0, "objectives": {"equimod": {"hidden": [16], "dim": 8, "param_dim": 8}}}
    backbone, projector, step = _step(config, torch.Generator().manual_seed(5))
    equimod = step.objectives.objectives["equimod"]
    assert equimod.normalize == step.gpu_views.recipe.pipelines[0].normalize  # the views' normalisation
    images = torch.randint(0, 256, (B, 3, IMAGE, IMAGE), dtype=torch.uint8)
    x0, x1 = step.views(images)
    params = step.params
    f0, f1 = backbone(x0), backbone(x1)
    loss, log = step.training_step((projector(f0), projector(f1)), 0)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in equimod.normalize)
    torch.testing.assert_close(equimod.originals(images), (images.float() / 255 - mean) / std)
    with torch.no_grad():  # the same images as floats in [0, 1]
        expected = equimod(StepInputs(backbone=backbone, images=images.float() / 255, features=(f0, f1), params=params))
    torch.testing.assert_close(loss.detach(), expected.loss, rtol=1e-5, atol=1e-6)
    assert {"train_equimod_infonce", "train_equimod_eqgain"} <= set(log)
