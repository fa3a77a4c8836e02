"""The solo-learn adapter on solo-learn's own method classes (its GitHub version, from the clone), built from a config.

Runs in the session of ``make test-solo`` (``conftest.py``): the methods get a tiny backbone registered in solo-learn's
``BaseMethod._BACKBONES`` and 16 px crops, on the CPU. Each adapted model is compared with the unadapted class on the
same weights and batch; the E-SSL term is recomputed with an independent oracle (``torch.rot90`` of the extra view,
redrawn from the same seed).
"""

from __future__ import annotations

from tests.adapters import solo_env

solo_env.require_solo()

import copy  # noqa: E402
import importlib.util  # noqa: E402
import pickle  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import solo.methods as solo_methods  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from essl_aug.adapters.solo_learn import equivariant, install, is_equivariant, main  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from PIL import Image  # noqa: E402
from solo.data.pretrain_dataloader import FullTransformPipeline, NCropAugmentation, build_transform_pipeline  # noqa: E402
from solo.methods.base import BaseMethod  # noqa: E402

from essl_aug.config import OBJECTIVES, ESSLConfig  # noqa: E402
from essl_aug.views import extra_view  # noqa: E402

B, SIZE, CLASSES = 4, 16, 10
EXAMPLES = solo_env.ROOT / "examples" / "solo_learn"
PROJECTOR = {"proj_hidden_dim": 16, "proj_output_dim": 8}
METHOD_KWARGS = {
    "simclr": {**PROJECTOR, "temperature": 0.2},
    "byol": {**PROJECTOR, "pred_hidden_dim": 16},
    "barlow_twins": PROJECTOR,
    "vicreg": PROJECTOR,
}
METHODS = list(METHOD_KWARGS)
pytestmark = [
    pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`"),  # no Trainer in these tests
    pytest.mark.filterwarnings("ignore:The 'warn' function is deprecated"),  # solo-learn's logging.warn
]
ORIGINALS = dict(solo_methods.METHODS)  # before any test adapts the registry
ESSL = {"lambda": 0.4, "hidden_dim": 16, "crop_size": 8}


def _probe_class() -> type:
    name = "essl_objective_probe"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("objective_probe.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].Probe


Probe = _probe_class()


@pytest.fixture(autouse=True)
def _tiny_backbone(monkeypatch: pytest.MonkeyPatch):
    """solo-learn's registry of backbones takes a test backbone; one thread for tiny batches."""
    monkeypatch.setitem(BaseMethod._BACKBONES, "essl_tiny", solo_env.tiny_backbone)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_cfg(method: str, essl: dict | None = None, small: int = 0):
    """A solo-learn config as ``main_pretrain.py`` passes it (solo-learn fills its own defaults)."""
    cfg = {
        "name": "test",
        "method": method,
        "backbone": {"name": "essl_tiny"},
        "data": {"dataset": "custom", "num_classes": CLASSES, "num_large_crops": 2, "num_small_crops": small},
        "optimizer": {
            "name": "sgd",
            "batch_size": B,
            "lr": 0.1,
            "classifier_lr": 0.1,
            "weight_decay": 1e-4,
            "kwargs": {"momentum": 0.9},
        },
        "scheduler": {"name": "none"},
        "max_epochs": 1,
        "method_kwargs": dict(METHOD_KWARGS[method]),
        "augmentations": [{"crop_size": SIZE, "num_crops": 2}],
    }
    if method == "byol":
        cfg["momentum"] = {"base_tau": 0.99, "final_tau": 1.0}
    if essl is not None:
        cfg["essl"] = essl
    out = OmegaConf.create(cfg)
    OmegaConf.set_struct(out, False)  # as main_pretrain.py does
    return out


def build(method: str, essl: dict | None = None, seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    return equivariant(ORIGINALS[method])(make_cfg(method, essl, **kwargs))


def original(method: str, model) -> BaseMethod:
    """The unadapted class with the adapted model's weights (every key but the objectives' heads)."""
    plain = ORIGINALS[method](make_cfg(method))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("essl_")}
    plain.load_state_dict(state)  # strict: the adapted model has the method's keys and no others but essl_*
    return plain


def make_batch(seed: int = 1, same: bool = False) -> list:
    g = torch.Generator().manual_seed(seed)
    first = torch.rand(B, 3, SIZE, SIZE, generator=g)
    second = first.clone() if same else torch.rand(B, 3, SIZE, SIZE, generator=g)
    return [torch.arange(B), [first, second], torch.randint(0, CLASSES, (B,), generator=g)]


def recording(model) -> dict:
    """Record what the model logs (no Trainer here)."""
    logged: dict = {}
    model.log_dict = lambda metrics, **kwargs: logged.update(metrics)
    return logged


def rotation_ce(model, extra: torch.Tensor) -> torch.Tensor:
    """The E-SSL cross-entropy of the four quarter turns of ``extra``, computed with ``torch.rot90``."""
    views = torch.cat([torch.rot90(extra, k, dims=(-2, -1)) for k in range(4)])
    labels = torch.arange(4).repeat_interleave(extra.shape[0])
    head = model.essl_objectives.objectives["essl"].head
    return F.cross_entropy(head(model.backbone(views.to(memory_format=torch.channels_last))), labels)


@pytest.mark.parametrize("method", METHODS)
def test_the_loss_is_the_methods_loss_plus_the_weighted_essl_term(method: str) -> None:
    model = build(method, ESSL)
    assert type(model).__name__ == f"Equivariant{ORIGINALS[method].__name__}"
    plain = original(method, model)
    batch = make_batch()
    logged = recording(model)
    torch.manual_seed(5)
    loss = model.training_step(batch, 0)
    base = plain.training_step(batch, 0)
    # The extra view: the reference crop (8 px here) and flip of crop 0, redrawn from the same seed (the method's own
    # step draws nothing); a crop of the batch is already augmented, so no colour ops and no normalisation.
    torch.manual_seed(5)
    extra, params = extra_view(SIZE, size=8, photometric=False, normalize=None)(batch[1][0])
    assert list(params) == ["resized_crop", "hflip"] and extra.shape == (B, 3, 8, 8)
    with torch.no_grad():
        ce = rotation_ce(model, extra)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    torch.testing.assert_close(loss.detach(), base.detach() + 0.4 * ce, rtol=1e-5, atol=1e-6)
    assert {"train_essl_loss", "train_essl_ce", "train_essl_acc"} <= set(logged)
    torch.testing.assert_close(logged["train_essl_ce"], ce, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logged["train_essl_loss"], 0.4 * ce, rtol=1e-5, atol=1e-6)
    assert model._essl_outs is None  # nothing of the step kept past it


def test_with_a_seed_the_step_draws_from_its_streams_not_the_global_generator() -> None:
    """``essl.seed``: the extra view and the labels come from ``StepStreams(seed)`` at the trainer's (rank, epoch,
    step), so the step is the same whatever the global generator holds, and another seed draws otherwise."""
    batch = make_batch()

    def step_loss(seed: int, global_seed: int, batch_idx: int = 0) -> torch.Tensor:
        model = build("simclr", {**ESSL, "seed": seed, "mode": "random"})
        torch.manual_seed(global_seed)
        return model.training_step(batch, batch_idx).detach()

    first = step_loss(3, 0)
    assert torch.equal(first, step_loss(3, 1)) and not torch.equal(first, step_loss(4, 0))
    assert not torch.equal(first, step_loss(3, 0, batch_idx=1))  # each batch of the epoch its own draws
    model = build("simclr", {**ESSL, "seed": 3})
    assert model.essl_config.as_mapping()["seed"] == 3 and model._essl_generator(torch.device("cpu"), 0) is not None


@pytest.mark.parametrize("method", ["simclr", "byol"])
def test_essl_on_the_views_turns_the_large_crops_and_reads_their_features(method: str) -> None:
    """``essl.source: views``: the method's loss on its two crops turned alike (one quarter turn per image), plus
    the weighted cross-entropy of the head on the method's own features of those crops (no extra view)."""
    model = build(method, {"source": "views", "lambda": 0.4, "hidden_dim": 16})
    plain = original(method, model)
    batch = make_batch()
    logged = recording(model)
    torch.manual_seed(5)
    loss = model.training_step(batch, 0)
    on_views = model.essl_objectives.objectives["essl"]
    torch.manual_seed(5)
    labels = on_views.transform.sample_labels(B, "cpu")
    turned = [torch.stack([c.rot90(int(k), (-2, -1)) for c, k in zip(crop, labels, strict=True)]) for crop in batch[1]]
    base = plain.training_step([batch[0], turned, batch[2]], 0)
    with torch.no_grad():
        features = [model.backbone(t.to(memory_format=torch.channels_last)) for t in turned]
        ce = F.cross_entropy(on_views.head(torch.cat(features)), labels.repeat(2))
    torch.testing.assert_close(loss.detach(), base.detach() + 0.4 * ce, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logged["train_essl_ce"], ce, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["simclr", "byol"])
def test_views_on_the_device_replace_the_crops_and_feed_the_objectives(method: str, monkeypatch) -> None:
    """``essl.views``: crop 0 (the un-augmented image) makes the two views and the extra view; an objective by config
    gets the online backbone's features of the two views (the very tensors the method computed: a forward hook
    here, in the test, sees them), the projector's outputs and the views' parameters."""
    monkeypatch.setitem(OBJECTIVES, "probe", Probe)
    block = {**ESSL, "views": {"name": "simclr", "scale": [0.2, 1.0]}, "objectives": {"probe": {"weight": 0.5}}}
    model = build(method, block)
    plain = original(method, model)
    seen: list = []
    model.backbone.register_forward_hook(lambda module, args, out: seen.append((args[0], out)))
    batch = make_batch(same=True)  # the loader's two identical, un-augmented crops
    source = batch[1][0]
    torch.manual_seed(3)
    loss = model.training_step(batch, 0)

    probe = model.essl_objectives.objectives["probe"]
    inputs = probe.seen[-1]
    assert inputs.features[0] is seen[0][1] and inputs.features[1] is seen[1][1]
    assert inputs.images is source  # the un-augmented images the views were made from (EquiMod's third pass)
    torch.manual_seed(3)  # the draws of the step, in its order: the two views, then the extra view
    views, params = model.essl_views(source)
    extra, extra_params = model._essl_extra(SIZE)(source)
    assert "color_jitter" in extra_params  # un-augmented source: the extra view has the photometric ops
    for i in range(2):
        assert torch.equal(seen[i][0], views[i])
        assert torch.equal(inputs.params[i]["resized_crop"].box, params[i]["resized_crop"].box)
        torch.testing.assert_close(inputs.embeddings[i], model.projector(seen[i][1]))
    with torch.no_grad():
        base = plain.training_step([batch[0], views, batch[2]], 0)
        scales = [p["resized_crop"].scale for p in params]
        features = [model.backbone(v.to(memory_format=torch.channels_last)) for v in views]
        mse = F.mse_loss(probe.linear(features[0] - features[1]).squeeze(1), scales[0] - scales[1])
        ce = rotation_ce(model, extra)
    torch.testing.assert_close(loss.detach(), base + 0.5 * mse + 0.4 * ce, rtol=1e-5, atol=1e-6)


def test_the_views_example_has_solo_learns_loader_yield_the_images_as_they_are() -> None:
    """The config route of ``essl.views``, no change to solo-learn: its own pipeline, built from the example's
    ``augmentations`` entry, yields each 32 px image untouched, in [0, 1] (``ToTensor``), as crops 0 and 1; with ``rrc``
    of scale [1, 1], an image of another size is resized whole to 32 x 32."""
    cfg = OmegaConf.load(EXAMPLES / "esimclr_cifar10_gpu_views.yaml")
    assert cfg.data.dataset == "custom" and cfg.essl.views.name == "simclr"
    transform = FullTransformPipeline(
        [NCropAugmentation(build_transform_pipeline(cfg.data.dataset, a), a.num_crops) for a in cfg.augmentations]
    )
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    crops = transform(Image.fromarray(pixels))
    expected = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    assert len(crops) == 2 and all(torch.equal(crop, expected) for crop in crops)
    whole = copy.deepcopy(cfg.augmentations[0])
    whole.rrc.enabled = True
    other = Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    resized = np.array(other.resize((32, 32), Image.BICUBIC))
    out = build_transform_pipeline(cfg.data.dataset, whole)(other)
    assert torch.equal(out, torch.from_numpy(resized).permute(2, 0, 1).float() / 255)


def test_the_heads_are_optimised_and_get_gradients() -> None:
    model = build("byol", ESSL)
    heads = list(model.essl_objectives.parameters())
    groups = {g.get("name"): g for g in model.learnable_params}
    assert {id(p) for p in groups["essl"]["params"]} == {id(p) for p in heads}
    optimizer = model.configure_optimizers()  # scheduler "none": the optimiser alone
    optimised = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert heads and all(id(p) in optimised for p in heads)
    model.training_step(make_batch(), 0).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in heads)
    assert model.momentum_backbone[0].weight.grad is None  # the extra view goes through the online backbone only


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("essl", [None, {"lambda": 0}], ids=["no-block", "lambda-0"])
def test_without_an_active_block_the_model_is_the_original(method: str, essl: dict | None) -> None:
    model = build(method, essl)
    torch.manual_seed(0)
    plain = ORIGINALS[method](make_cfg(method))
    assert list(model.state_dict()) == list(plain.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values(), strict=True))
    assert [g.get("name") for g in model.learnable_params] == [g.get("name") for g in plain.learnable_params]
    batch = make_batch()
    assert torch.equal(model.training_step(batch, 0), plain.training_step(batch, 0))
    assert model._essl_outs is None
    assert ("essl" in model.cfg) == (essl is not None)


def test_the_config_hook_fills_the_blocks_defaults_in_place() -> None:
    cls = equivariant(solo_methods.SimCLR)
    cfg = make_cfg("simclr", {"lambda": 0.5, "transform": "rotation,vflip"})
    assert cls.add_and_assert_specific_cfg(cfg) is cfg
    expected = ESSLConfig.from_mapping({"lambda": 0.5, "transform": ["rotation", "vflip"]}).as_mapping()
    assert OmegaConf.to_container(cfg.essl) == expected
    assert expected["mode"] == "all" and expected["hidden_dim"] == [2048, 2048]  # the defaults, written out
    assert cfg.performance.disable_channel_last is False  # solo-learn's own defaults still filled
    again = copy.deepcopy(cfg)
    cls.add_and_assert_specific_cfg(again)
    assert again == cfg  # idempotent: solo-learn's tests call the hook a second time
    plain = make_cfg("simclr")
    cls.add_and_assert_specific_cfg(plain)
    assert "essl" not in plain


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({"lambda": -1}, r"essl\.lambda"),
        ({"lamda": 0.4}, r"unknown essl setting.*'lamda'"),
        ({"transform": "rotatoin"}, r"essl\.transform"),
        ({"mode": "some"}, r"essl\.mode"),
        ({"hidden_dim": "wide"}, r"essl\.hidden_dim"),
        ({"crop_size": 1}, r"essl\.crop_size"),
        ({"view": 2}, r"essl\.view must be the index of one of the 2 crops"),
        ({"views": "moco"}, r"essl\.views"),
        ({"objectives": {"augselff": {}}}, r"essl\.objectives\.augselff"),
        ({"objectives": {"augself": {}}}, r"essl\.objectives\.augself needs params.*essl\.views"),
        ({"objectives": {"equimod": {}}}, r"essl\.objectives\.equimod needs params.*essl\.views"),
        ({"source": "extra_crop"}, r"essl\.source: extra_crop .*successor is essl\.views"),
    ],
)
def test_bad_blocks_name_the_key(block: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build("simclr", block)


def test_views_need_two_large_crops_and_no_small_ones() -> None:
    with pytest.raises(ValueError, match=r"essl\.views makes 2 large crops and 0 small ones .*has 2 and 2\."):
        build("simclr", {"views": "simclr"}, small=2)


def test_an_adapted_model_unpickles_in_a_fresh_process(tmp_path: Path) -> None:
    model = build("byol", ESSL)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    batch = make_batch()
    torch.save(batch, tmp_path / "batch.pt")
    code = f"""
import pickle, sys, torch
assert "essl_aug.adapters.solo_learn" not in sys.modules  # a fresh process: unpickling rebuilds the class
model = pickle.loads(open({str(path)!r}, "rb").read())
print(type(model).__module__, type(model).__name__)
torch.manual_seed(5)
print(repr(float(model.training_step(torch.load({str(tmp_path / "batch.pt")!r}), 0))))
"""
    env = solo_env.subprocess_env()
    env["PYTHONPATH"] = f"{solo_env.ROOT}:{env['PYTHONPATH']}"
    run = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    name, loss = run.stdout.split("\n")[:2]
    assert name == "essl_aug.adapters.solo_learn EquivariantBYOL"
    torch.manual_seed(5)
    assert float(loss) == model.training_step(batch, 0).item()


def test_install_adapts_every_method_of_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = dict(ORIGINALS)
    monkeypatch.setattr(solo_methods, "METHODS", registry)
    assert install() is registry  # default: solo.methods.METHODS, in place
    for name, cls in registry.items():
        before = ORIGINALS[name]
        if name in ("base", "linear"):  # BaseMethod itself and the linear evaluation model are no methods
            assert cls is before
        else:
            assert is_equivariant(cls) and issubclass(cls, before) and vars(cls)["_essl_base"] is before
            assert cls is getattr(sys.modules["essl_aug.adapters.solo_learn"], f"Equivariant{before.__name__}")
    snapshot = dict(registry)
    assert install(registry) == snapshot  # installing twice changes nothing
    with pytest.raises(TypeError, match="solo-learn method class"):
        equivariant(ORIGINALS["linear"])


def test_the_entry_point_needs_a_script() -> None:
    with pytest.raises(SystemExit, match=r"usage: python -m essl_aug\.adapters\.solo_learn"):
        main([])
