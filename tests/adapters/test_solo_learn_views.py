"""The solo-learn adapter's ``views`` and ``objectives`` keys: the settings (no framework needed), then REAL
solo-learn 1.0.2 (argparse API) and the fake of the GitHub version's API (omegaconf, real Lightning 2.1.2).

The framework tests skip unless the overlays are on the path:
``PYTHONPATH=.solo-overlay:.solo-overlay-head pytest tests/adapters/test_solo_learn_views.py``.
The objectives are a probe defined here (registered by name for the test) that needs every input a step offers,
and the core's :class:`~essl_aug.objectives.base.DiscreteESSL`: what an objective receives is checked against values
computed independently from the same views.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from essl_aug.adapters import _config
from essl_aug.adapters.solo_learn import EsslSettings, equivariant, install, loader_transform

from essl_aug.augment.crop import CropParams
from essl_aug.augment.pipeline import TwoViews
from essl_aug.objectives.base import DiscreteESSL, StepInputs

B, IMAGE, SIZE, SMALL = 4, 20, 16, 8


def _load(name: str, file: str):
    """A helper module of this folder, by path: a solo-learn ``tests`` package may shadow this project's."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(file))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


Probe = _load("essl_objective_probe", "objective_probe.py").Probe


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch):
    """The probe and the discrete E-SSL objective, by name, for these tests; one intra-op thread."""
    monkeypatch.setitem(_config.OBJECTIVES, "probe", Probe)
    monkeypatch.setitem(_config.OBJECTIVES, "discrete", DiscreteESSL)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


PROBE = {"probe": {"weight": 0.5}}


def images(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (B, 3, IMAGE, IMAGE), generator=g, dtype=torch.uint8)


# ---------------------------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------------------------


def test_settings_views_and_objectives_round_trip() -> None:
    s = EsslSettings.from_mapping({"views": "byol", "objectives": {"probe": {"weight": 0.5}}})
    assert s.views == {"name": "byol"} and s.objectives == {"probe": {"weight": 0.5}} and s.enabled
    assert EsslSettings.from_mapping(s.as_config()) == s
    s = EsslSettings.from_mapping({"lambda": 0, "views": '{"name": "simclr", "size": 8, "scale": [0.2, 1.0]}'})
    assert s.views == {"name": "simclr", "size": 8, "scale": [0.2, 1.0]} and not s.active and s.enabled
    assert not EsslSettings.from_mapping({"lambda": 0}).enabled


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({"views": "moco"}, r"essl\.views: unknown recipe 'moco'"),
        ({"views": 3}, r"essl\.views must be null, a recipe name"),
        ({"views": {"name": "simclr", "jitter": 0.5}}, r"essl\.views: .*jitter"),
        ({"views": "simclr", "source": "extra_crop"}, r"essl\.views .*set essl\.source: gpu"),
        ({"objectives": ["probe"]}, r"essl\.objectives must be a mapping"),
        ({"objectives": {"augself2": {}}}, r"essl\.objectives: unknown objective 'augself2'"),
        ({"objectives": {"essl": {}}}, r"'essl' is the discrete E-SSL term"),
        ({"views": "simclr", "objectives": {"probe": {"wieght": 1}}}, r"essl\.objectives\.probe: unknown option"),
        ({"objectives": {"probe": 1.0}}, r"essl\.objectives\.probe must be a mapping"),
        ({"objectives": PROBE}, r"essl\.objectives\.probe needs params, .*set essl\.views"),
        ({"objectives": "{probe"}, "not valid JSON"),
    ],
)
def test_bad_views_and_objectives_name_the_key(block: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EsslSettings.from_mapping(block)


def test_a_named_objective_missing_from_this_install_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_config.OBJECTIVES, "later", "essl_aug.objectives.not_there:Later")
    with pytest.raises(ValueError, match=r"essl\.objectives\.later: this essl-aug has no essl_aug\.objectives"):
        EsslSettings.from_mapping({"objectives": {"later": {}}})


def test_loader_transform_keeps_uint8_and_sizes() -> None:
    from PIL import Image

    image = Image.fromarray(images()[0].permute(1, 2, 0).numpy())
    kept = loader_transform()(image)
    assert type(kept) is torch.Tensor and kept.dtype == torch.uint8 and torch.equal(kept, images()[0])
    assert tuple(loader_transform(12)(image).shape) == (3, 12, 12)
    with pytest.raises(ValueError, match="`size`"):
        loader_transform(0)


# ---------------------------------------------------------------------------------------------------------------
# real solo-learn 1.0.2 (argparse API)
# ---------------------------------------------------------------------------------------------------------------

BASE = {
    "encoder": "resnet18",
    "num_classes": 10,
    "backbone_args": {"cifar": True},
    "max_epochs": 1,
    "batch_size": B,
    "optimizer": "sgd",
    "lars": False,
    "lr": 0.05,
    "weight_decay": 1e-4,
    "classifier_lr": 0.1,
    "exclude_bias_n_norm": False,
    "accumulate_grad_batches": 1,
    "extra_optimizer_args": {"momentum": 0.9},
    "scheduler": "none",
    "min_lr": 0.0,
    "warmup_start_lr": 0.0,
    "warmup_epochs": 0,
    "num_large_crops": 2,
    "num_small_crops": 0,
    "crop_size": [SIZE],  # main_pretrain.py passes every flag to the method: the views take their size from it
}
SIMCLR = {"proj_output_dim": 32, "proj_hidden_dim": 64, "temperature": 0.2}


@pytest.fixture
def solo():
    methods = pytest.importorskip("solo.methods", reason="solo-learn 1.0.2 overlay not on PYTHONPATH")
    if not hasattr(methods.BaseMethod, "add_model_specific_args"):
        pytest.skip("solo-learn's argparse API (1.0.x) only")
    return methods


def build(solo, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return equivariant(solo.SimCLR)(**{**BASE, **SIMCLR, **overrides})


def batch_of(x: torch.Tensor) -> list:
    return [torch.arange(B), x, torch.randint(0, 10, (B,), generator=torch.Generator().manual_seed(1))]


def test_views_replace_the_crops_and_the_step_is_the_method_on_them(solo) -> None:
    model = build(solo, essl_lambda=0.0, essl_views="simclr")
    assert isinstance(model.essl_views, TwoViews) and not hasattr(model, "essl")
    assert model.essl_views.pipelines[0]["resized_crop"].size == (SIZE, SIZE)  # the config's crop size
    seen: list[tuple[tuple[int, ...], torch.dtype]] = []
    model.encoder.register_forward_hook(lambda m, i, o: seen.append((tuple(i[0].shape), i[0].dtype)))
    x = images()
    before = x.clone()
    torch.manual_seed(3)
    loss = model.training_step(batch_of(x), 0)
    torch.manual_seed(3)
    views, _ = model.essl_views(x)  # the same draws
    assert torch.equal(x, before)  # the caller's images are not touched
    assert seen == [((B, 3, SIZE, SIZE), torch.float32)] * 2
    base = solo.SimCLR.training_step(model, batch_of(views), 0)
    torch.testing.assert_close(loss, base, rtol=0, atol=0)


def test_objective_receives_the_views_params_features_and_embeddings(solo) -> None:
    model = build(solo, essl_lambda=0.4, essl_crop_size=SMALL, essl_hidden_dim=16, essl_views="byol",
                  essl_objectives=json.dumps(PROBE))  # fmt: skip
    probe = model.essl_objectives.objectives["probe"]
    assert isinstance(probe, Probe) and probe.embedding_dim == 32  # filled in: the projector's output width
    groups = {g.get("name"): g for g in model.learnable_params}
    assert {"essl_head", "essl_objectives"} <= set(groups)
    logged: dict[str, torch.Tensor] = {}
    model.log_dict = lambda metrics, **kwargs: logged.update(metrics)
    x = images()
    torch.manual_seed(4)
    loss = model.training_step(batch_of(x), 0)
    torch.manual_seed(4)
    views, params = model.essl_views(x)
    inputs = probe.seen[-1]
    assert isinstance(inputs.params[0]["resized_crop"], CropParams)
    for got, want in zip(inputs.params, params, strict=True):
        assert got.keys() == want.keys() and torch.equal(got["resized_crop"].box, want["resized_crop"].box)
    with torch.no_grad():
        f1, f2 = (model.encoder(v) for v in views)
        torch.testing.assert_close(inputs.features[0], f1)
        torch.testing.assert_close(inputs.features[1], f2)
        torch.testing.assert_close(inputs.embeddings[0], model.projector(f1))
        small = F.interpolate(views[0], size=(SMALL, SMALL), mode="bilinear", align_corners=False, antialias=True)
        torch.testing.assert_close(inputs.extra, small, rtol=0, atol=0)  # the E-SSL view, as essl.crop_size makes it
        base = solo.SimCLR.training_step(model, batch_of(views), 0)
        rotations = torch.cat([torch.rot90(small, k, dims=(-2, -1)) for k in range(4)])
        ce = F.cross_entropy(model.essl.head(model.encoder(rotations)), torch.arange(4).repeat_interleave(B))
        mse = F.mse_loss(probe.linear(f1 - f2).squeeze(1), probe.target(inputs))
    torch.testing.assert_close(loss.detach(), base + 0.4 * ce + 0.5 * mse, rtol=1e-5, atol=1e-6)
    assert {"train_essl_loss", "train_essl_acc", "train_probe_loss", "train_probe_mse"} <= set(logged)
    torch.testing.assert_close(logged["train_probe_mse"], mse)
    assert not logged["train_probe_loss"].requires_grad
    conv = next(model.encoder.parameters())
    (grad,) = torch.autograd.grad(probe.losses[-1], conv)  # the objective's gradient reaches the backbone
    assert grad.abs().sum() > 0


def test_a_momentum_method_gives_the_online_features_to_the_objective(solo) -> None:
    byol = {"proj_output_dim": 32, "proj_hidden_dim": 64, "pred_hidden_dim": 64, "base_tau_momentum": 0.99,
            "final_tau_momentum": 1.0, "momentum_classifier": False}  # fmt: skip
    torch.manual_seed(0)
    model = equivariant(solo.BYOL)(
        **BASE, **byol, essl_lambda=0.0, essl_views="byol", essl_objectives=json.dumps(PROBE)
    )
    probe = model.essl_objectives.objectives["probe"]
    x = images()
    torch.manual_seed(5)
    loss = model.training_step(batch_of(x), 0)
    torch.manual_seed(5)
    views, _ = model.essl_views(x)
    with torch.no_grad():
        f1, f2 = (model.encoder(v) for v in views)
        base = solo.BYOL.training_step(model, batch_of(views), 0)
        mse = F.mse_loss(probe.linear(f1 - f2).squeeze(1), probe.target(probe.seen[-1]))
    torch.testing.assert_close(probe.seen[-1].features[1], f2)
    torch.testing.assert_close(probe.seen[-1].embeddings[1], model.projector(f2))
    torch.testing.assert_close(loss.detach(), base + 0.5 * mse, rtol=1e-5, atol=1e-6)
    loss.backward()
    assert all(p.grad is None for p in model.momentum_encoder.parameters())
    assert all(p.grad is not None for p in probe.parameters())


def test_discrete_essl_as_a_named_objective_and_lambda_zero(solo) -> None:
    model = build(
        solo,
        essl_lambda=0.0,
        essl_crop_size=SMALL,
        essl_objectives='{"discrete": {"transform": "vflip", "hidden": [16]}}',
    )
    assert not hasattr(model, "essl") and not hasattr(model, "essl_views")
    objective = model.essl_objectives.objectives["discrete"]
    assert objective.loss.head.in_features == model.features_dim  # in_features filled in by the adapter
    crops = [torch.rand(B, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(s)) for s in range(2)]
    logged: dict[str, torch.Tensor] = {}
    model.log_dict = lambda metrics, **kwargs: logged.update(metrics)
    loss = model.training_step(batch_of(crops), 0)
    with torch.no_grad():
        small = F.interpolate(crops[0], size=(SMALL, SMALL), mode="bilinear", align_corners=False, antialias=True)
        views = torch.cat([small, small.flip(-2)])
        ce = F.cross_entropy(objective.loss.head(model.encoder(views)), torch.arange(2).repeat_interleave(B))
        base = solo.SimCLR.training_step(model, batch_of(crops), 0)
    torch.testing.assert_close(loss.detach(), base + 0.4 * ce, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logged["train_discrete_ce"], ce, rtol=1e-5, atol=1e-6)


def test_errors_of_the_views_in_a_model(solo) -> None:
    with pytest.raises(ValueError, match=r"essl\.views makes 2 views, but the method counts 2 large and 1 small"):
        build(solo, essl_views="simclr", num_small_crops=1)
    with pytest.raises(ValueError, match=r"essl\.views needs the crops' size"):
        build(solo, essl_views="simclr", crop_size=None)
    model = build(solo, essl_views="simclr")
    crops = [images().float() / 255, images(1).float() / 255]
    with pytest.raises(
        ValueError, match=r"batch holds 2 crops; build the data set's transform with .*loader_transform"
    ):
        model.training_step(batch_of(crops), 0)


def test_argparse_flags_for_views_and_objectives(solo) -> None:
    cls = equivariant(solo.SimCLR)
    parser = cls.add_model_specific_args(argparse.ArgumentParser())
    argv = ["--encoder", "resnet18", "--optimizer", "sgd", "--essl_lambda", "0", "--essl_views", "byol"]
    args = parser.parse_args([*argv, "--essl_objectives", json.dumps(PROBE)])
    model = build(solo, **{k: v for k, v in vars(args).items() if k.startswith("essl_")})
    assert model.essl_settings.views == {"name": "byol"} and set(model.essl_objectives.objectives) == {"probe"}
    loss = model.training_step(batch_of(images()), 0)
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_fast_dev_run_fit_with_uint8_images_logs_the_objective(solo) -> None:
    pl = pytest.importorskip("pytorch_lightning")
    model = build(solo, essl_lambda=0.0, essl_views="simclr", essl_objectives=json.dumps(PROBE))
    probe = model.essl_objectives.objectives["probe"]
    before = [p.detach().clone() for p in probe.parameters()]
    data = [(i, images(i)[0], i % 10) for i in range(2 * B)]  # solo-learn's (index, image, target) layout
    trainer = pl.Trainer(fast_dev_run=True, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=B))
    assert len(probe.seen) == 1 and probe.seen[0].params[0]["resized_crop"].box.shape == (B, 4)
    metrics = trainer.callback_metrics
    assert float(metrics["train_probe_mse"]) == float(probe.losses[0].detach())
    assert any(not torch.equal(a, b) for a, b in zip(before, probe.parameters(), strict=True))  # optimised


# ---------------------------------------------------------------------------------------------------------------
# the GitHub version's API (omegaconf), on the fake and real Lightning 2.1.2
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def fake():
    pytest.importorskip("omegaconf", reason="the head overlay (omegaconf, lightning 2.1.2) is not on PYTHONPATH")
    pytest.importorskip("lightning")
    return _load("essl_solo_head_fake", "solo_head_fake.py")


def head_cfg(fake, essl: dict):
    cfg = fake.make_cfg(essl=essl)
    cfg.augmentations = [{"crop_size": SIZE, "num_crops": 2}]
    return cfg


def test_head_api_views_and_objectives_from_the_config(fake) -> None:
    import lightning

    essl = {"lambda": 0.4, "crop_size": SMALL, "hidden_dim": 16, "views": "simclr", "objectives": PROBE}
    model, args = fake.main_pretrain(head_cfg(fake, essl), install(dict(fake.METHODS)))
    assert args["essl"]["views"] == {"name": "simclr"} and args["essl"]["objectives"] == PROBE  # saved, filled
    assert model.essl_views.pipelines[0]["resized_crop"].size == (SIZE, SIZE)  # cfg.augmentations[0].crop_size
    probe = model.essl_objectives.objectives["probe"]
    assert probe.embedding_dim == 4  # the fake projector's width
    data = [(i, images(i)[0], i % 5) for i in range(2 * B)]
    trainer = lightning.pytorch.Trainer(fast_dev_run=2, accelerator="cpu", devices=1, logger=False,
                                        enable_checkpointing=False, enable_progress_bar=False,
                                        enable_model_summary=False)  # fmt: skip
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=B))
    assert len(probe.seen) == 2 and all(s.params[1]["resized_crop"].box.shape == (B, 4) for s in probe.seen)
    assert all(s.embeddings[0].shape == (B, 4) and s.extra.shape == (B, 3, SMALL, SMALL) for s in probe.seen)
    metrics = trainer.callback_metrics
    assert {"train_essl_loss_step", "train_probe_loss_step", "train_probe_mse_step"} <= set(metrics)
    assert float(metrics["train_probe_mse_step"]) == float(probe.losses[-1].detach())


def test_head_api_errors(fake) -> None:
    with pytest.raises(ValueError, match=r"essl\.objectives: unknown objective 'probes'"):
        equivariant(fake.FakeSimCLR)(head_cfg(fake, {"views": "simclr", "objectives": {"probes": {}}}))
    cfg = fake.make_cfg(essl={"views": "simclr"})  # no cfg.augmentations: no crop size
    with pytest.raises(ValueError, match=r"essl\.views needs the crops' size.*size: 32"):
        equivariant(fake.FakeSimCLR)(cfg)
    model = equivariant(fake.FakeSimCLR)(fake.make_cfg(essl={"views": {"name": "byol", "size": 8}}))
    assert model.essl_views.pipelines[1]["resized_crop"].size == (8, 8)


def test_the_gpu_views_example_config(fake) -> None:
    hydra = pytest.importorskip("hydra")
    from omegaconf import OmegaConf

    config_dir = str(Path(__file__).resolve().parents[2] / "examples" / "solo_learn")
    with hydra.initialize_config_dir(config_dir=config_dir, version_base="1.2"):
        cfg = hydra.compose(config_name="esimclr_cifar10_gpu_views.yaml")
    block = OmegaConf.to_container(cfg.essl)
    assert block["objectives"] == {"augself": {"weight": 1.0, "groups": ["crop", "color"]}}
    if importlib.util.find_spec("essl_aug.objectives.augself") is None:  # the objective's module is named
        with pytest.raises(ValueError, match=r"essl\.objectives\.augself: this essl-aug has no"):
            EsslSettings.from_mapping(block)
    else:
        assert EsslSettings.from_mapping(block).objectives == block["objectives"]
    small = fake.make_cfg(essl={**{k: v for k, v in block.items() if k != "objectives"}, "hidden_dim": 16})
    small.augmentations = cfg.augmentations
    model = equivariant(fake.FakeSimCLR)(small)
    pipe = model.essl_views.pipelines[0]
    assert pipe["resized_crop"].size == (32, 32) and pipe["resized_crop"].scale == (0.2, 1.0)
    assert pipe["color_jitter"].brightness == pytest.approx((0.6, 1.4))
    assert pipe.normalize == ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


def test_augself_by_config_gets_the_views_params(solo) -> None:
    pytest.importorskip("essl_aug.objectives.augself")
    objectives = json.dumps({"augself": {"weight": 0.7, "groups": ["crop", "color", "flip"], "hidden": [16]}})
    model = build(solo, essl_lambda=0.0, essl_views="simclr", essl_objectives=objectives)
    augself = model.essl_objectives.objectives["augself"]
    assert augself.in_features == model.features_dim and set(augself.groups) == {"crop", "color", "flip"}
    logged: dict[str, torch.Tensor] = {}
    model.log_dict = lambda metrics, **kwargs: logged.update(metrics)
    x = images()
    torch.manual_seed(6)
    loss = model.training_step(batch_of(x), 0)
    torch.manual_seed(6)
    views, params = model.essl_views(x)
    with torch.no_grad():
        base = solo.SimCLR.training_step(model, batch_of(views), 0)
        features = tuple(model.encoder(v) for v in views)
        expected = augself(StepInputs(features=features, params=tuple(params)))
    torch.testing.assert_close(loss.detach(), base + expected.loss, rtol=1e-5, atol=1e-6)
    assert {"train_augself_loss", "train_augself_crop", "train_augself_color", "train_augself_flip"} <= set(logged)
    torch.testing.assert_close(logged["train_augself_crop"], expected.logs["crop"], rtol=1e-5, atol=1e-6)
    loss.backward()
    assert all(p.grad is not None for p in augself.parameters())
    assert next(model.encoder.parameters()).grad is not None


def test_predictor_by_config_reads_the_embeddings(solo) -> None:
    pytest.importorskip("essl_aug.objectives.predictor")
    options = {"source": "embeddings", "groups": ["crop", "flip"], "dim": 8, "hidden": [16], "loss": "cosine"}
    model = build(solo, essl_lambda=0.0, essl_views="simclr", essl_objectives=json.dumps({"predictor": options}))
    predictor = model.essl_objectives.objectives["predictor"]
    assert predictor.in_features == 32  # the projector's width, for `source: embeddings`
    logged: dict[str, torch.Tensor] = {}
    model.log_dict = lambda metrics, **kwargs: logged.update(metrics)
    x = images()
    torch.manual_seed(8)
    loss = model.training_step(batch_of(x), 0)
    torch.manual_seed(8)
    views, params = model.essl_views(x)
    with torch.no_grad():
        base = solo.SimCLR.training_step(model, batch_of(views), 0)
        embeddings = tuple(model.projector(model.encoder(v)) for v in views)
        expected = predictor(StepInputs(embeddings=embeddings, params=tuple(params)))
    torch.testing.assert_close(loss.detach(), base + expected.loss, rtol=1e-5, atol=1e-6)
    assert {"train_predictor_loss", "train_predictor_cos", "train_predictor_cos_identity"} <= set(logged)
    with pytest.raises(ValueError, match=r"essl\.objectives\.predictor needs params, .*set essl\.views"):
        build(solo, essl_objectives=json.dumps({"predictor": options}))  # an instance's requires, checked at build


def test_continuous_essl_by_config_on_the_essl_view(solo) -> None:
    pytest.importorskip("essl_aug.objectives.continuous")
    options = {"augmentation": "rotation", "weight": 0.3, "hidden": [16]}
    model = build(solo, essl_lambda=0.0, essl_crop_size=SMALL, essl_objectives=json.dumps({"continuous": options}))
    continuous = model.essl_objectives.objectives["continuous"]
    logged: dict[str, torch.Tensor] = {}
    model.log_dict = lambda metrics, **kwargs: logged.update(metrics)
    crops = [torch.rand(B, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(s)) for s in range(2)]
    torch.manual_seed(9)
    loss = model.training_step(batch_of(crops), 0)
    torch.manual_seed(9)
    with torch.no_grad():
        base = solo.SimCLR.training_step(model, batch_of(crops), 0)
        small = F.interpolate(crops[0], size=(SMALL, SMALL), mode="bilinear", align_corners=False, antialias=True)
        expected = continuous(StepInputs(backbone=model.encoder, extra=small))
    torch.testing.assert_close(loss.detach(), base + expected.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logged["train_continuous_angle_error"], expected.logs["angle_error"])
    assert "train_continuous_cosine" in logged


OBJECTIVES = {
    "continuous": {"augmentation": "rotation", "hidden": [16]},
    "augself": {"groups": ["crop", "color", "flip"], "hidden": [16]},
    "predictor": {"groups": ["crop"], "dim": 8, "hidden": [16]},
}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_head_api_each_objective_by_config_in_a_lightning_fit(fake, name: str) -> None:
    pytest.importorskip(f"essl_aug.objectives.{name}")
    import lightning

    essl = {
        "lambda": 0.4,
        "crop_size": SMALL,
        "hidden_dim": 16,
        "views": "byol",
        "objectives": {name: OBJECTIVES[name]},
    }
    model = equivariant(fake.FakeBYOL)(head_cfg(fake, essl))
    objective = model.essl_objectives.objectives[name]
    before = [p.detach().clone() for p in objective.parameters()]
    data = [(i, images(i)[0], i % 5) for i in range(2 * B)]
    trainer = lightning.pytorch.Trainer(fast_dev_run=1, accelerator="cpu", devices=1, logger=False,
                                        enable_checkpointing=False, enable_progress_bar=False,
                                        enable_model_summary=False)  # fmt: skip
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=B))
    metrics = trainer.callback_metrics
    assert {"train_essl_loss_step", f"train_{name}_loss_step"} <= set(metrics)
    assert any(not torch.equal(a, b) for a, b in zip(before, objective.parameters(), strict=True))  # optimised
