"""The solo-learn adapter's omegaconf path (solo-learn GitHub 1.0.6 API), against a FAKE of that API.

The fake (``solo_head_fake.py``) is written from the documented contract and runs on real Lightning 2.x
(``lightning==2.1.2`` from the head overlay, as solo-learn pins). ``test_solo_learn_head_clone.py`` runs the
real code when ``SOLO_LEARN_SRC`` points to a clone.
"""

from __future__ import annotations

import importlib.util
import pickle
import shlex
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("omegaconf", reason="the head overlay (omegaconf, lightning 2.1.2) is not on PYTHONPATH")
lightning = pytest.importorskip("lightning")

from essl_aug.adapters import solo_learn  # noqa: E402
from essl_aug.adapters.solo_learn import EsslSettings, equivariant, install, is_equivariant  # noqa: E402


def _load_fake():
    name = "essl_solo_head_fake"
    if name not in sys.modules:  # by path: a solo-learn `tests` package may shadow this project's
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("solo_head_fake.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fake = _load_fake()


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


B, SIZE, SMALL = 4, 16, 8
ESSL = {"lambda": 0.4, "crop_size": SMALL, "hidden_dim": 16}


def make_batch(crops: int = 2, small: int = 0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.rand(B, 3, SIZE, SIZE, generator=g) for _ in range(crops)]
    xs += [torch.rand(B, 3, SMALL, SMALL, generator=g) for _ in range(small)]
    return [torch.arange(B), xs, torch.randint(0, 5, (B,), generator=g)]


def oracle_ce(model, x: torch.Tensor) -> torch.Tensor:
    if x.shape[-1] != SMALL:
        x = F.interpolate(x, size=(SMALL, SMALL), mode="bilinear", align_corners=False, antialias=True)
    views = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
    labels = torch.arange(4).repeat_interleave(x.shape[0])
    if not model.no_channel_last:
        views = views.to(memory_format=torch.channels_last)
    return F.cross_entropy(model.essl.head(model.backbone(views)), labels)


def test_fake_runs_on_real_lightning() -> None:
    assert issubclass(fake.BaseMethod, lightning.pytorch.LightningModule)


@pytest.mark.parametrize("method", ["FakeSimCLR", "FakeBYOL"])
def test_loss_is_the_unwrapped_step_plus_weighted_ce(method: str) -> None:
    base_cls = getattr(fake, method)
    torch.manual_seed(0)
    model = equivariant(base_cls)(fake.make_cfg(essl=dict(ESSL)))
    assert type(model).__name__ == f"Equivariant{method}"
    batch = make_batch()
    loss = model.training_step(batch, 0)
    base = base_cls.training_step(model, batch, 0)
    with torch.no_grad():
        expected = base + 0.4 * oracle_ce(model, batch[1][0])
    torch.testing.assert_close(loss.detach(), expected.detach(), rtol=1e-5, atol=1e-6)
    names = [g.get("name") for g in model.learnable_params]
    assert names[-1] == "essl_head" and names[:-1] == [g.get("name") for g in base_cls.learnable_params.fget(model)]


def test_config_hook_fills_defaults_and_is_idempotent() -> None:
    cfg = fake.make_cfg(essl={"lambda": 0.5, "transform": ["rotation", "vflip"]})
    model = equivariant(fake.FakeSimCLR)(cfg)
    assert model.cfg.essl["lambda"] == 0.5 and model.cfg.essl.mode == "all" and model.cfg.essl.source == "gpu"
    assert model.essl.head.num_classes == 8
    block = dict(model.cfg.essl)
    assert model.add_and_assert_specific_cfg(cfg) is cfg and dict(cfg.essl) == block
    assert model.cfg.method_kwargs.proj_output_dim == 4  # the method's own hook still ran


def test_without_essl_block_the_model_and_config_are_the_originals() -> None:
    cfg, plain_cfg = fake.make_cfg(), fake.make_cfg()
    torch.manual_seed(0)
    model = equivariant(fake.FakeBYOL)(cfg)
    torch.manual_seed(0)
    original = fake.FakeBYOL(plain_cfg)
    assert "essl" not in cfg and not hasattr(model, "essl") and not model.essl_active
    assert cfg == plain_cfg and model.state_dict().keys() == original.state_dict().keys()
    batch = make_batch()
    torch.testing.assert_close(model.training_step(batch, 0), original.training_step(batch, 0))


def test_bad_blocks_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown essl setting"):
        equivariant(fake.FakeSimCLR)(fake.make_cfg(essl={"lamb": 0.4}))
    with pytest.raises(ValueError, match=r"essl\.source"):
        equivariant(fake.FakeSimCLR)(fake.make_cfg(essl={"source": "dali"}))
    with pytest.raises(ValueError, match=r"essl\.crop_scale needs essl\.crop_size"):
        equivariant(fake.FakeSimCLR)(fake.make_cfg(essl={"crop_scale": [0.2, 1.0]}))
    with pytest.raises(TypeError, match="BaseMethod subclass"):
        equivariant(fake.FakeLinear)


def test_extra_crop_does_not_mutate_the_shared_config() -> None:
    cfg = fake.make_cfg(num_small_crops=1, essl={**ESSL, "source": "extra_crop"})
    model = equivariant(fake.FakeSimCLR)(cfg)
    assert cfg.data.num_small_crops == 1  # the data module is built from it after the model
    assert model.num_crops == 2 and model.cfg.data.num_small_crops == 0
    batch = make_batch(small=1)
    loss = model.training_step(batch, 0)  # the fake's base asserts len(X) == num_crops
    base = fake.FakeSimCLR.training_step(model, [batch[0], batch[1][:2], batch[2]], 0)
    with torch.no_grad():
        expected = base + 0.4 * oracle_ce(model, batch[1][2])
    torch.testing.assert_close(loss.detach(), expected.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("source", ["gpu", "extra_crop"])
def test_main_pretrain_reads_the_defaults_from_its_own_cfg(source: str) -> None:
    """main_pretrain.py reads the method's defaults from the cfg it passed (filled in place) and saves it."""
    small = int(source == "extra_crop")
    cfg = fake.make_cfg(num_small_crops=small, essl={**ESSL, "source": source})
    model, args = fake.main_pretrain(cfg, install(dict(fake.METHODS)))
    assert is_equivariant(model) and model.essl_active and model.num_crops == 2
    assert args["performance"] == {"disable_channel_last": False}  # BaseMethod's hook (main_pretrain.py:78 reads it)
    assert args["method_kwargs"] == {"proj_output_dim": 4} and args["optimizer"]["classifier_lr"] == 0.1
    assert args["essl"] == model.essl_settings.as_config()  # the checked block, every key filled
    assert args["data"]["num_small_crops"] == small  # the data module still draws the E-SSL crop
    assert model.cfg.data.num_small_crops == 0


def test_a_fixed_size_backbone_takes_the_view_at_its_size_or_names_the_fix() -> None:
    """MAE and solo-learn's ViTs take one input size: a ``crop_size`` view would fail inside timm."""
    cfg = fake.make_cfg(essl=dict(ESSL))  # crop_size 8, the ViT takes 16
    cfg.backbone = {"name": "tiny_vit"}
    with pytest.raises(ValueError, match=r"essl\.crop_size=8 .*takes only 16x16 images.*set essl\.crop_size: null"):
        equivariant(fake.FakeSimCLR)(cfg)
    cfg.essl.crop_size = None  # the view keeps crop 0's size, 16
    model = equivariant(fake.FakeSimCLR)(cfg)
    batch = make_batch()
    loss = model.training_step(batch, 0)
    base = fake.FakeSimCLR.training_step(model, batch, 0)
    x = batch[1][0]
    views = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
    with torch.no_grad():
        ce = F.cross_entropy(model.essl.head(model.backbone(views)), torch.arange(4).repeat_interleave(B))
    torch.testing.assert_close(loss.detach(), (base + 0.4 * ce).detach(), rtol=1e-5, atol=1e-6)
    cfg = fake.make_cfg(num_small_crops=1, essl={"hidden_dim": 16, "source": "extra_crop"})
    cfg.backbone = {"name": "tiny_vit"}
    model = equivariant(fake.FakeSimCLR)(cfg)  # an 8 px extra crop cannot go through a 16 px ViT
    with pytest.raises(ValueError, match=r"the last crop of the batch\) is 8x8 but the backbone takes only 16x16"):
        model.training_step(make_batch(small=1), 0)


def _readme_essl_overrides() -> list[list[str]]:
    """The Hydra ``++essl.*`` overrides of the solo-learn guide's commands, one list per command."""
    section = (Path(__file__).resolve().parents[2] / "docs" / "guides" / "solo_learn.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in section.split("```bash\n")[1:]]
    commands = "\n".join(blocks).replace("\\\n", " ").splitlines()
    found = [[t for t in shlex.split(c.split("#")[0]) if t.startswith("++essl.")] for c in commands]
    return [o for o in found if o]


def test_readme_hydra_overrides_compose_with_the_example_config() -> None:
    """Hydra reads ``++essl.transform=rotation,vflip`` as a sweep ("Ambiguous value"): the solo-learn guide shows
    the list."""
    hydra = pytest.importorskip("hydra")
    overrides = _readme_essl_overrides()
    assert ["++essl.lambda=0.4", "++essl.crop_size=16", "++essl.transform=[rotation,vflip]"] in overrides
    config_dir = str(Path(__file__).resolve().parents[2] / "examples" / "solo_learn")
    with hydra.initialize_config_dir(config_dir=config_dir, version_base="1.2"):
        for command in overrides:
            cfg = hydra.compose(config_name="esimclr_cifar10.yaml", overrides=command)
            settings = EsslSettings.from_mapping(cfg.essl)
            assert settings.crop_size == 16 and settings.weight == 0.4
        assert settings.transform == ["rotation", "vflip"] and settings.num_classes == 8  # the last: the product
        with pytest.raises(hydra.errors.ConfigCompositionException, match="Ambiguous value"):
            hydra.compose(config_name="esimclr_cifar10.yaml", overrides=["++essl.transform=rotation,vflip"])


class _PerfectHead(torch.nn.Module):
    """Logits that name the label of every view of the ``mode="all"`` block layout: accuracy 1."""

    num_classes = 4

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        labels = torch.arange(4).repeat_interleave(features.shape[0] // 4)
        return 10 * F.one_hot(labels, 4).float() + 0 * features.sum()


def test_train_essl_acc_is_logged_in_percent() -> None:
    model = equivariant(fake.FakeSimCLR)(fake.make_cfg(essl=dict(ESSL)))
    model.essl.head = _PerfectHead()
    logged: dict[str, torch.Tensor] = {}
    model.log_dict = lambda metrics, **kwargs: logged.update(metrics)
    out = model._essl_loss(make_batch()[1][0])
    assert float(out.accuracy) == 1.0  # the output keeps the fraction
    assert float(logged["train_essl_acc"]) == 100.0  # solo-learn logs accuracies in percent (train_acc1)


@pytest.mark.parametrize("disable", [False, True])
def test_channels_last_follows_the_method(disable: bool) -> None:
    cfg = fake.make_cfg(essl=dict(ESSL))
    cfg.performance = {"disable_channel_last": disable}
    model = equivariant(fake.FakeSimCLR)(cfg)
    model.essl.head.register_forward_pre_hook(lambda m, i: seen.append(model.backbone.last_channels_last))
    seen: list[bool | None] = []
    model.training_step(make_batch(), 0)
    assert seen == [not disable]


def test_momentum_backbone_is_not_used_by_the_essl_branch() -> None:
    model = equivariant(fake.FakeBYOL)(fake.make_cfg(essl=dict(ESSL)))
    calls: list[int] = []
    model.momentum_backbone.register_forward_hook(lambda *_: calls.append(1))
    model.training_step(make_batch(), 0).backward()
    assert len(calls) == 2  # the two large crops of the method itself
    assert all(p.grad is not None for p in model.essl.head.parameters())


def test_install_and_pickle() -> None:
    registry = dict(fake.METHODS)
    install(registry)
    assert registry["base"] is fake.BaseMethod and registry["linear"] is fake.FakeLinear
    assert is_equivariant(registry["simclr"]) and is_equivariant(registry["byol"])
    model = registry["byol"](fake.make_cfg(essl=dict(ESSL)))
    clone = pickle.loads(pickle.dumps(model))
    assert type(clone) is type(model) and clone.essl_settings == model.essl_settings
    torch.testing.assert_close(clone.state_dict(), model.state_dict())
    defaults = equivariant(fake.FakeSimCLR, weight=0.2, hidden_dim=8)(fake.make_cfg())
    assert defaults.cfg.essl["lambda"] == 0.2  # class defaults activate the adapter without a block
    assert pickle.loads(pickle.dumps(defaults)).essl_settings.weight == 0.2
    assert getattr(solo_learn, type(defaults).__qualname__) is type(defaults)  # a module attribute: plain pickling
    assert pickle.loads(pickle.dumps(type(defaults))) is type(defaults)


class _Crops(torch.utils.data.Dataset):
    def __init__(self, n: int = 8, crops: int = 2) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, crops, 3, SIZE, SIZE, generator=g)
        self.y = torch.randint(0, 5, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return i, list(self.x[i]), self.y[i]


@pytest.mark.parametrize(("method", "precision"), [("FakeSimCLR", "32-true"), ("FakeBYOL", "bf16-mixed")])
def test_lightning_fit_logs_and_runs_hooks(method: str, precision: str) -> None:
    model = equivariant(getattr(fake, method))(fake.make_cfg(essl=dict(ESSL)))
    outputs = []  # what the E-SSL branch computed, to compare with what was logged
    branch = model._essl_loss
    model._essl_loss = lambda x: outputs.append(branch(x)) or outputs[-1]
    momentum = [p.detach().clone() for p in getattr(model, "momentum_backbone", torch.nn.Identity()).parameters()]
    trainer = lightning.pytorch.Trainer(
        fast_dev_run=2,
        accelerator="cpu",
        devices=1,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, torch.utils.data.DataLoader(_Crops(), batch_size=B))
    metrics = trainer.callback_metrics
    assert {"train_essl_loss_step", "train_essl_acc_step"} <= set(metrics)
    assert len(outputs) == 2  # fast_dev_run=2: two steps
    assert float(metrics["train_essl_loss_step"]) == float(outputs[-1].cross_entropy)
    assert float(metrics["train_essl_acc_step"]) == float(100 * outputs[-1].accuracy)  # percent, as solo-learn logs
    if momentum:  # the three-argument on_train_batch_end ran the EMA update
        assert "tau" in metrics
        assert any(not torch.equal(a, b) for a, b in zip(momentum, model.momentum_backbone.parameters(), strict=True))
