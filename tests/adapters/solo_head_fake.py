"""A FAKE of solo-learn's omegaconf method API (GitHub 1.0.6), written from its documented contract only.

This is not solo-learn: its code cannot be installed from PyPI nor vendored. It reproduces, on real Lightning
2.x, the parts of the contract the adapter relies on, so the adapter's omegaconf path is tested without the
real package (``SOLO_LEARN_SRC`` runs the real one):

- ``Method(cfg)``; ``BaseMethod.__init__`` calls ``self.add_and_assert_specific_cfg(cfg)`` first and keeps the
  returned cfg as ``self.cfg``; hooks are static and chain with ``super(Cls, Cls)``; defaults fill missing keys;
- backbones from the class dict ``_BACKBONES`` called as ``fn(cfg.method, **kwargs)``, ``features_dim``,
  ``backbone`` (``tiny_vit``: timm's ``PatchEmbed`` contract, a fixed input size, like solo-learn's ViTs and
  MAE); ``no_channel_last`` from ``cfg.performance.disable_channel_last`` (inputs to channels_last);
- the batch ``[indexes, [crops], targets]``; the base ``training_step`` asserts ``len(X) == num_crops`` and
  returns a dict; a method's ``training_step`` returns a Tensor;
- ``learnable_params``: a list of dicts with ``name``; a momentum base with ``momentum_backbone``,
  ``momentum_pairs`` and a three-argument ``on_train_batch_end``;
- ``main_pretrain.py`` (:func:`main_pretrain`): the model is built from the caller's cfg, whose hooks fill the
  defaults into that cfg **in place**; the script then reads them from its own cfg
  (``cfg.performance.disable_channel_last``, an omegaconf "Missing key" error if absent), builds the data from its
  crop counts and saves it as ``args.json`` (the ``Checkpointer``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
import torch
import torch.nn.functional as F
from torch import nn

lpl = pytest.importorskip("lightning.pytorch")
omegaconf = pytest.importorskip("omegaconf")
DictConfig, OmegaConf = omegaconf.DictConfig, omegaconf.OmegaConf


def _default(cfg: DictConfig, key: str, value: Any) -> Any:
    return OmegaConf.select(cfg, key, default=value)


class TinyBackbone(nn.Module):
    """Conv-ReLU-pool: ``num_features`` pooled features; remembers whether its last input was channels_last."""

    num_features = 8

    def __init__(self, method: str) -> None:
        super().__init__()
        self.method = method
        self.conv = nn.Conv2d(3, self.num_features, 3, padding=1)
        self.bn = nn.BatchNorm2d(self.num_features)
        self.last_channels_last: bool | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.last_channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        return F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(x))), 1).flatten(1)


class TinyPatchEmbed(nn.Module):
    """timm's ``PatchEmbed`` contract (solo-learn's ViTs, MAE's encoder): ``img_size``, ``strict_img_size``."""

    def __init__(self, img_size: int, patch_size: int, dim: int) -> None:
        super().__init__()
        self.img_size = (img_size, img_size)
        self.strict_img_size = True
        self.proj = nn.Conv2d(3, dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert tuple(x.shape[-2:]) == self.img_size, f"Input height ({x.shape[-2]}) doesn't match model."
        return self.proj(x).flatten(2).transpose(1, 2)


class TinyViT(nn.Module):
    """A ViT-shaped backbone with a fixed input size (``img_size``), pooled tokens as features."""

    num_features = 8

    def __init__(self, method: str, img_size: int = 16, patch_size: int = 8) -> None:
        super().__init__()
        self.patch_embed = TinyPatchEmbed(img_size, patch_size, self.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch_embed(x).mean(1)


class BaseMethod(lpl.LightningModule):
    _BACKBONES: ClassVar[dict[str, type[nn.Module]]] = {"tiny": TinyBackbone, "tiny_vit": TinyViT}

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__()
        cfg = self.add_and_assert_specific_cfg(cfg)
        self.cfg = cfg
        self.backbone = self._BACKBONES[cfg.backbone.name](cfg.method, **cfg.backbone.kwargs)
        self.features_dim = self.backbone.num_features
        self.num_classes = cfg.data.num_classes
        self.classifier = nn.Linear(self.features_dim, self.num_classes)
        self.lr = cfg.optimizer.lr
        self.classifier_lr = cfg.optimizer.classifier_lr
        self.num_large_crops = cfg.data.num_large_crops
        self.num_small_crops = cfg.data.num_small_crops
        self.num_crops = self.num_large_crops + self.num_small_crops
        self.multicrop = self.num_small_crops != 0
        self.no_channel_last = cfg.performance.disable_channel_last

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        cfg.backbone.kwargs = _default(cfg, "backbone.kwargs", {})
        cfg.optimizer.classifier_lr = _default(cfg, "optimizer.classifier_lr", 0.1)
        cfg.performance = _default(cfg, "performance", {})
        cfg.performance.disable_channel_last = _default(cfg, "performance.disable_channel_last", False)
        cfg.method_kwargs = _default(cfg, "method_kwargs", {})
        return cfg

    @property
    def learnable_params(self) -> list[dict[str, Any]]:
        return [
            {"name": "backbone", "params": self.backbone.parameters()},
            {"name": "classifier", "params": self.classifier.parameters(), "lr": self.classifier_lr, "weight_decay": 0},
        ]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.learnable_params, lr=self.lr, momentum=0.9)

    def forward(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.no_channel_last:
            X = X.to(memory_format=torch.channels_last)
        feats = self.backbone(X)
        return {"logits": self.classifier(feats.detach()), "feats": feats}

    def base_training_step(self, X: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
        out = self(X)
        return {**out, "loss": F.cross_entropy(out["logits"], targets)}

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        _, X, targets = batch
        X = [X] if isinstance(X, torch.Tensor) else X
        assert len(X) == self.num_crops
        outs = [self.base_training_step(x, targets) for x in X[: self.num_large_crops]]
        outs = {k: [o[k] for o in outs] for k in outs[0]}
        if self.multicrop:
            outs["feats"].extend(self.backbone(x) for x in X[self.num_large_crops :])
        outs["loss"] = sum(outs["loss"]) / self.num_large_crops
        self.log("train_class_loss", outs["loss"], on_epoch=True, sync_dist=True)
        return outs


class BaseMomentumMethod(BaseMethod):
    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        self.momentum_backbone = copy.deepcopy(self.backbone)
        for p in self.momentum_backbone.parameters():
            p.requires_grad = False
        self.tau = cfg.momentum.base_tau
        self.last_step = 0

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        cfg = super(BaseMomentumMethod, BaseMomentumMethod).add_and_assert_specific_cfg(cfg)
        cfg.momentum = _default(cfg, "momentum", {})
        cfg.momentum.base_tau = _default(cfg, "momentum.base_tau", 0.99)
        return cfg

    @property
    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.backbone, self.momentum_backbone)]

    def on_train_start(self) -> None:
        self.last_step = 0

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        outs = super().training_step(batch, batch_idx)
        _, X, _ = batch
        with torch.no_grad():
            outs["momentum_feats"] = [self.momentum_backbone(x) for x in X[: self.num_large_crops]]
        return outs

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.trainer.global_step > self.last_step:
            with torch.no_grad():
                for online, target in self.momentum_pairs:
                    for po, pt in zip(online.parameters(), target.parameters(), strict=True):
                        pt.mul_(self.tau).add_(po, alpha=1 - self.tau)
            self.log("tau", self.tau)
        self.last_step = self.trainer.global_step


class FakeSimCLR(BaseMethod):
    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        self.projector = nn.Linear(self.features_dim, cfg.method_kwargs.proj_output_dim)

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        cfg = super(FakeSimCLR, FakeSimCLR).add_and_assert_specific_cfg(cfg)
        cfg.method_kwargs.proj_output_dim = _default(cfg, "method_kwargs.proj_output_dim", 4)
        return cfg

    @property
    def learnable_params(self) -> list[dict[str, Any]]:
        return [*super().learnable_params, {"name": "projector", "params": self.projector.parameters()}]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        out = super().training_step(batch, batch_idx)
        z1, z2 = (F.normalize(self.projector(f), dim=1) for f in out["feats"][:2])
        ssl = -(z1 * z2).sum(1).mean()
        self.log("train_fake_ssl_loss", ssl, on_epoch=True, sync_dist=True)
        return ssl + out["loss"]


class FakeBYOL(BaseMomentumMethod):
    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        self.predictor = nn.Linear(self.features_dim, self.features_dim)

    @property
    def learnable_params(self) -> list[dict[str, Any]]:
        return [*super().learnable_params, {"name": "predictor", "params": self.predictor.parameters()}]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        out = super().training_step(batch, batch_idx)
        p1, p2 = (self.predictor(f) for f in out["feats"][:2])
        t1, t2 = out["momentum_feats"]
        ssl = -(F.cosine_similarity(p1, t2).mean() + F.cosine_similarity(p2, t1).mean())
        return ssl + out["loss"]


class FakeLinear(lpl.LightningModule):
    """Like solo-learn's linear-evaluation model: not a BaseMethod."""

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        return cfg


METHODS = {"base": BaseMethod, "linear": FakeLinear, "simclr": FakeSimCLR, "byol": FakeBYOL}


def main_pretrain(cfg: DictConfig, methods: Mapping[str, Any] = METHODS) -> tuple[Any, dict[str, Any]]:
    """What solo-learn's ``main_pretrain.py`` does around the model: ``(model, args.json)``.

    The model is ``methods[cfg.method](cfg)``; the script then reads the method's defaults from its own ``cfg``
    (main_pretrain.py:78, ``cfg.performance.disable_channel_last``), counts the crops of the data module from it,
    and the ``Checkpointer`` saves it as ``args.json``.
    """
    OmegaConf.set_struct(cfg, False)  # hydra's cfg is struct; main_pretrain.py lifts it first
    model = methods[cfg.method](cfg)
    if not cfg.performance.disable_channel_last:
        model = model.to(memory_format=torch.channels_last)
    crops = cfg.data.num_large_crops + cfg.data.num_small_crops  # the data module draws this many crops
    assert crops >= model.num_crops
    args = json.loads(json.dumps(OmegaConf.to_container(cfg), default=lambda o: "<not serializable>"))
    return model, args


def make_cfg(method: str = "simclr", num_small_crops: int = 0, essl: dict[str, Any] | None = None) -> DictConfig:
    """A minimal config of the shape solo-learn's ``main_pretrain.py`` builds (not struct)."""
    cfg: dict[str, Any] = {
        "method": method,
        "backbone": {"name": "tiny"},
        "data": {"num_large_crops": 2, "num_small_crops": num_small_crops, "num_classes": 5},
        "optimizer": {"lr": 0.05},
        "momentum": {"base_tau": 0.9},
    }
    if essl is not None:
        cfg["essl"] = essl
    return OmegaConf.create(cfg)
