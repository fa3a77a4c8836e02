"""The solo-learn adapter against REAL solo-learn 1.0.2 from PyPI (the argparse API).

Skipped unless solo-learn is importable: ``scripts/install_solo_overlay.sh`` creates the overlay, then
``PYTHONPATH=.solo-overlay:.solo-overlay-head pytest tests/adapters/``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F

solo_methods = pytest.importorskip("solo.methods", reason="solo-learn 1.0.2 overlay not on PYTHONPATH")
pl = pytest.importorskip("pytorch_lightning")

from essl_aug.adapters.solo_learn import equivariant, install, is_equivariant  # noqa: E402

warnings.filterwarnings("ignore", module="pytorch_lightning")
warnings.filterwarnings("ignore", module="pl_bolts")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny batches: one intra-op thread is as fast, and immune to oversubscription on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


if not hasattr(solo_methods.BaseMethod, "add_model_specific_args"):
    pytest.skip("these tests target solo-learn's argparse API (1.0.x)", allow_module_level=True)

B, SIZE, SMALL, CLASSES = 4, 16, 8, 10

BASE = {
    "encoder": "resnet18",
    "num_classes": CLASSES,
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
}
METHOD_KWARGS = {
    "SimCLR": {"proj_output_dim": 32, "proj_hidden_dim": 64, "temperature": 0.2},
    "BYOL": {
        "proj_output_dim": 32,
        "proj_hidden_dim": 64,
        "pred_hidden_dim": 64,
        "base_tau_momentum": 0.99,
        "final_tau_momentum": 1.0,
        "momentum_classifier": True,
    },
    "BarlowTwins": {"proj_output_dim": 32, "proj_hidden_dim": 64, "lamb": 0.0051, "scale_loss": 0.1},
    "VICReg": {
        "proj_output_dim": 32,
        "proj_hidden_dim": 64,
        "sim_loss_weight": 25.0,
        "var_loss_weight": 25.0,
        "cov_loss_weight": 1.0,
    },
}
ESSL = {"essl_lambda": 0.4, "essl_crop_size": SMALL, "essl_hidden_dim": 64}
NAMES = list(METHOD_KWARGS)


def build(name: str, seed: int = 0, adapted: bool = True, **overrides):
    cls = getattr(solo_methods, name)
    torch.manual_seed(seed)
    kwargs = {**BASE, **METHOD_KWARGS[name], **overrides}
    return (equivariant(cls) if adapted else cls)(**kwargs)


def make_batch(crops: int = 2, seed: int = 1, small: int = 0):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.rand(B, 3, SIZE, SIZE, generator=g) for _ in range(crops)]
    xs += [torch.rand(B, 3, SMALL, SMALL, generator=g) for _ in range(small)]
    return [torch.arange(B), xs, torch.randint(0, CLASSES, (B,), generator=g)]


def oracle_ce(model, x: torch.Tensor, size: int | None = SMALL) -> torch.Tensor:
    """E-SSL cross-entropy computed independently: torch.rot90 blocks, the online encoder, the head."""
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    views = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
    labels = torch.arange(4).repeat_interleave(x.shape[0])
    return F.cross_entropy(model.essl.head(model.encoder(views)), labels)


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_the_unwrapped_step_plus_weighted_ce(name: str) -> None:
    model = build(name, **ESSL)
    assert type(model).__name__ == f"Equivariant{name}" and model.essl_active
    batch = make_batch()
    loss = model.training_step(batch, 0)
    base = getattr(solo_methods, name).training_step(model, batch, 0)  # the unwrapped method's step
    with torch.no_grad():
        expected = base + 0.4 * oracle_ce(model, batch[1][0])
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    torch.testing.assert_close(loss.detach(), expected.detach(), rtol=1e-5, atol=1e-6)
    assert not torch.isclose(loss.detach(), base.detach())


@pytest.mark.parametrize("name", ["SimCLR", "BYOL"])
def test_head_is_optimised_and_receives_gradients(name: str) -> None:
    model = build(name, **ESSL)
    groups = {g.get("name"): g for g in model.learnable_params}
    assert "essl_head" in groups
    opt = model.configure_optimizers()
    opt = opt[0][0] if isinstance(opt, tuple) else opt
    optimised = {id(p) for group in opt.param_groups for p in group["params"]}
    assert all(id(p) in optimised for p in model.essl.head.parameters())
    model.training_step(make_batch(), 0).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.essl.head.parameters())
    if name == "BYOL":  # the E-SSL view goes through the online encoder only
        assert all(p.grad is None for p in model.momentum_encoder.parameters())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("essl", [{}, {"essl_lambda": 0.0}], ids=["no-essl", "lambda0"])
def test_weight_zero_or_no_block_is_the_original_model(name: str, essl: dict) -> None:
    original = build(name, adapted=False)
    model = build(name, **essl)
    assert not model.essl_active and not hasattr(model, "essl")
    assert model.state_dict().keys() == original.state_dict().keys()
    assert [g.get("name") for g in model.learnable_params] == [g.get("name") for g in original.learnable_params]
    calls = []
    model.encoder.register_forward_hook(lambda *_: calls.append(1))
    original.encoder.register_forward_hook(lambda *_: calls.append(2))
    batch = make_batch()
    torch.testing.assert_close(model.training_step(batch, 0), original.training_step(batch, 0))
    assert calls.count(1) == calls.count(2)  # no extra forward


def test_extra_crop_is_removed_before_the_base_step() -> None:
    kwargs = {**ESSL, "essl_source": "extra_crop", "num_small_crops": 1}
    frozen = dict(kwargs)
    model = build("SimCLR", **kwargs)
    assert kwargs == frozen  # the caller's arguments are not touched
    assert model.num_crops == 2 and not model.multicrop
    batch = make_batch(crops=2, small=1)
    crops = list(batch[1])
    loss = model.training_step(batch, 0)
    assert batch[1] == crops and len(batch[1]) == 3  # the caller's batch is not touched
    base = solo_methods.SimCLR.training_step(model, [batch[0], crops[:2], batch[2]], 0)
    with torch.no_grad():
        expected = base + 0.4 * oracle_ce(model, crops[2])
    torch.testing.assert_close(loss.detach(), expected.detach(), rtol=1e-5, atol=1e-6)
    # lambda == 0: the crop is still dropped, the rest is the base method on the 2 main crops
    model0 = build("SimCLR", essl_lambda=0.0, essl_source="extra_crop", num_small_crops=1)
    assert not hasattr(model0, "essl")
    torch.testing.assert_close(
        model0.training_step(batch, 0), solo_methods.SimCLR.training_step(model0, [batch[0], crops[:2], batch[2]], 0)
    )


def test_random_resized_crop_and_product_transform() -> None:
    model = build("VICReg", essl_transform="rotation,vflip", essl_crop_scale=[0.2, 1.0], **ESSL)
    assert model.essl.transform.num_classes == 8 and model.essl.head.num_classes == 8
    seen = []
    model.encoder.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
    loss = model.training_step(make_batch(), 0)
    assert torch.isfinite(loss) and (8 * B, 3, SMALL, SMALL) in seen


def test_argparse_flags() -> None:
    cls = equivariant(solo_methods.SimCLR)
    parser = cls.add_model_specific_args(argparse.ArgumentParser())
    args = parser.parse_args(["--encoder", "resnet18", "--optimizer", "sgd"])
    assert all(getattr(args, k) is None for k in vars(args) if k.startswith("essl_"))
    argv = ["--encoder", "resnet18", "--optimizer", "sgd", "--essl_lambda", "0.5", "--essl_transform", "rotation,vflip"]
    args = parser.parse_args([*argv, "--essl_mode", "random", "--essl_crop_size", "16", "--essl_hidden_dim", "32"])
    essl = {k: v for k, v in vars(args).items() if k.startswith("essl_")}
    model = build("SimCLR", **essl)
    s = model.essl_settings
    assert (s.weight, s.transform, s.mode, s.crop_size, s.hidden) == (
        0.5,
        ["rotation", "vflip"],
        "random",
        16,
        (32, 32),
    )
    assert "extra_args" in vars(model) and not any(k.startswith("essl") for k in model.extra_args)
    with pytest.raises(SystemExit):
        parser.parse_args(["--encoder", "resnet18", "--optimizer", "sgd", "--essl_source", "dataloader"])


def test_bad_settings_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"essl\.lambda"):
        build("SimCLR", essl_lambda=-1.0)
    with pytest.raises(ValueError, match=r"essl\.view=2"):
        build("SimCLR", essl_lambda=0.4, essl_view=2)
    with pytest.raises(ValueError, match=r"essl\.transform"):
        build("SimCLR", essl_transform="spin")
    with pytest.raises(TypeError, match="BaseMethod subclass"):
        equivariant(solo_methods.LinearModel)


def test_install_wraps_the_registry_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = dict(solo_methods.METHODS)
    monkeypatch.setattr(solo_methods, "METHODS", registry)
    assert install() is registry
    assert registry["simclr"] is equivariant(solo_methods.SimCLR)
    assert registry["linear"] is solo_methods.LinearModel and registry["base"] is solo_methods.BaseMethod
    wrapped = sum(is_equivariant(c) for c in registry.values())
    assert wrapped == len(registry) - 2
    install(registry)  # idempotent
    assert registry["byol"] is equivariant(solo_methods.BYOL)
    assert not build("BYOL").essl_active  # inactive without --essl_* flags


class _PerfectHead(torch.nn.Module):
    """Logits that name the label of every view of the ``mode="all"`` block layout: accuracy 1."""

    num_classes = 4

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        labels = torch.arange(4).repeat_interleave(features.shape[0] // 4)
        return 10 * F.one_hot(labels, 4).float() + 0 * features.sum()


def test_train_essl_acc_is_logged_in_percent() -> None:
    model = build("SimCLR", **ESSL)
    model.essl.head = _PerfectHead()
    logged: dict[str, torch.Tensor] = {}
    model.log_dict = lambda metrics, **kwargs: logged.update(metrics)
    out = model._essl_loss(make_batch()[1][0])
    assert float(out.accuracy) == 1.0  # the output keeps the fraction
    assert float(logged["train_essl_acc"]) == 100.0  # solo-learn logs its accuracies in percent (acc1, acc5)


def test_autocast_bf16() -> None:
    model = build("BarlowTwins", **ESSL)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.training_step(make_batch(), 0)
    assert torch.isfinite(loss)


def test_instances_and_classes_pickle(tmp_path) -> None:
    cls = equivariant(solo_methods.SimCLR)
    assert pickle.loads(pickle.dumps(cls)) is cls
    model = build("SimCLR", **ESSL)
    clone = pickle.loads(pickle.dumps(model))
    assert type(clone) is cls and clone.essl_settings == model.essl_settings
    torch.testing.assert_close(clone.state_dict(), model.state_dict())
    # with class defaults (e.g. the swap plugin's), in a fresh process
    with_defaults = equivariant(solo_methods.BYOL, weight=0.3, hidden_dim=32)
    torch.manual_seed(0)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(with_defaults(**BASE, **METHOD_KWARGS["BYOL"])))
    code = (
        "import pickle, sys, warnings; warnings.simplefilter('ignore');"
        "m = pickle.load(open(sys.argv[1], 'rb'));"
        "print(type(m).__name__, m.essl_settings.weight, m.essl.head.layers[0].out_features)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-3:] == ["EquivariantBYOL", "0.3", "32"]


class _Crops(torch.utils.data.Dataset):
    """solo-learn's batch layout: (index, [crop, crop], target)."""

    def __init__(self, n: int = 8) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 2, 3, SIZE, SIZE, generator=g)
        self.y = torch.randint(0, CLASSES, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return i, [self.x[i, 0], self.x[i, 1]], self.y[i]


@pytest.mark.parametrize("name", NAMES)
def test_fast_dev_run_fit_logs_and_runs_the_momentum_hooks(name: str) -> None:
    model = build(name, **ESSL)
    outputs = []  # what the E-SSL branch computed, to compare with what was logged
    branch = model._essl_loss
    model._essl_loss = lambda x: outputs.append(branch(x)) or outputs[-1]
    before = [p.detach().clone() for p in model.essl.head.parameters()]
    momentum = [p.detach().clone() for p in model.momentum_encoder.parameters()] if name == "BYOL" else None
    trainer = pl.Trainer(
        fast_dev_run=True,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, torch.utils.data.DataLoader(_Crops(), batch_size=B))
    metrics = trainer.callback_metrics
    assert any(k.startswith("train_essl_loss") for k in metrics) and any(
        k.startswith("train_essl_acc") for k in metrics
    )
    acc = next(v for k, v in metrics.items() if k.startswith("train_essl_acc"))
    assert len(outputs) == 1 and float(acc) == float(100 * outputs[0].accuracy)  # percent, as solo-learn logs
    assert any(not torch.equal(a, b) for a, b in zip(before, model.essl.head.parameters(), strict=True))
    if momentum is not None:  # on_train_batch_end ran the EMA update and logged tau
        assert "tau" in metrics
        assert any(not torch.equal(a, b) for a, b in zip(momentum, model.momentum_encoder.parameters(), strict=True))
