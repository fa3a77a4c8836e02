"""The lightly adapter against lightly itself: SimCLR with lightly's transform, collate, head and loss."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("lightly")

from essl_aug.adapters import lightly as essl_lightly
from essl_aug.adapters.lightly import EquivariancePredictionHead, ESSLLoss, with_essl_view
from essl_aug.adapters.loader import collate_images
from lightly.data import LightlyDataset, MultiViewCollate
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from lightly.transforms import SimCLRTransform, SimCLRViewTransform
from lightly.transforms.multi_view_transform import MultiViewTransform
from lightly.transforms.multi_view_transform_v2 import MultiViewTransformV2
from lightly.transforms.utils import IMAGENET_NORMALIZE
from PIL import Image

from essl_aug import EquivarianceHead, EquivariantTransform, RandomInvert
from essl_aug.views import IMAGENET_NORMALIZE as NORMALIZE
from essl_aug.views import extra_view
from tests.docs.doc_blocks import doc_blocks, run_doc_block

FEATURES = 16
pytestmark = pytest.mark.filterwarnings("ignore:The function `to_tensor")


class InMemoryImages(torch.utils.data.Dataset):
    """Small deterministic PIL images with integer targets, held in memory (``transform`` as torchvision's)."""

    def __init__(self, n: int = 32, size: int = 32, seed: int = 0, transform=None) -> None:
        self.transform = transform
        g = torch.Generator().manual_seed(seed)
        pixels = torch.randint(0, 256, (n, size, size, 3), generator=g, dtype=torch.uint8)
        self.images = [Image.fromarray(p.numpy()) for p in pixels]
        self.targets = [i % 10 for i in range(n)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        image = self.images[i]
        return (image if self.transform is None else self.transform(image)), self.targets[i]


def seed_everything(seed: int) -> None:
    """lightly's transforms draw from torch, numpy and ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def small_backbone() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, FEATURES, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))


def all_rotations_oracle(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    views = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
    return views, torch.arange(4).repeat_interleave(len(x))


def test_readme_lightly_recipe_trains_backbone_and_head() -> None:
    code = doc_blocks()["lightly"]
    assert code.count("# E-SSL") == 4
    torch.manual_seed(0)
    ns = run_doc_block("lightly")
    model = ns["model"]
    assert isinstance(model.essl, ESSLLoss)
    optimised = {id(p) for g in ns["optimizer"].param_groups for p in g["params"]}
    head_params = list(model.essl.head.parameters())
    assert head_params and all(id(p) in optimised for p in head_params)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head_params)
    assert torch.isfinite(ns["loss"])
    x0, x1, x_e = next(iter(ns["dataloader"]))[0]
    assert x0.shape == x1.shape == (16, 3, 32, 32)
    assert x_e.shape == (16, 3, 16, 16)


def test_one_epoch_simclr_loss_is_ntxent_plus_weighted_ce() -> None:
    torch.manual_seed(1)
    weight = 0.4
    transform = with_essl_view(SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.0))
    dataset = LightlyDataset.from_torch_dataset(InMemoryImages(32), transform=transform)
    collate = MultiViewCollate()
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True, collate_fn=collate)
    backbone = small_backbone()
    projection_head = SimCLRProjectionHead(FEATURES, 32, 16)
    criterion = NTXentLoss()
    essl = ESSLLoss("rotation", input_dim=FEATURES, hidden_dim=32, weight=weight)
    params = [*backbone.parameters(), *projection_head.parameters(), *essl.parameters()]
    optimizer = torch.optim.SGD(params, lr=0.05)
    head_before = [p.detach().clone() for p in essl.head.parameters()]
    steps = 0
    for views, targets, filenames in loader:
        x0, x1, x_e = views
        assert x0.shape == x1.shape == (8, 3, 32, 32) and x_e.shape == (8, 3, 16, 16)
        assert targets.shape == (8,) and len(filenames) == 8
        x_e_before = x_e.clone()
        nt_xent = criterion(projection_head(backbone(x0).flatten(1)), projection_head(backbone(x1).flatten(1)))
        essl_loss, log = essl.training_step((backbone, x_e), steps)
        loss = nt_xent + essl_loss

        with torch.no_grad():  # independent oracle: all four rot90 of the E-view, plain cross-entropy
            rot, labels = all_rotations_oracle(x_e)
            logits = essl.head(backbone(rot).flatten(1))
            ce = F.cross_entropy(logits, labels)
            acc = (logits.argmax(1) == labels).float().mean()
        torch.testing.assert_close(loss.detach(), nt_xent.detach() + weight * ce, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(log["train_essl_loss"], ce, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(log["train_essl_acc"], acc)
        assert not log["train_essl_acc"].requires_grad and not log["train_essl_loss"].requires_grad
        assert torch.equal(x_e, x_e_before)

        optimizer.zero_grad()
        loss.backward()
        for p in essl.head.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0
        optimizer.step()
        steps += 1
    assert steps == 4
    assert all(not torch.equal(a, b.detach()) for a, b in zip(head_before, essl.head.parameters(), strict=True))


def test_channels_last_and_bf16_autocast_on_cpu() -> None:
    torch.manual_seed(2)
    backbone = small_backbone().to(memory_format=torch.channels_last)
    projection_head = SimCLRProjectionHead(FEATURES, 32, 16)
    essl = ESSLLoss(["rotation", "vflip"], input_dim=FEATURES, hidden_dim=32)
    x0, x1 = (torch.randn(8, 3, 32, 32).contiguous(memory_format=torch.channels_last) for _ in range(2))
    x_e = torch.randn(8, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    views, labels = essl.views(x_e)
    assert labels.shape == (64,)
    assert views.shape == (64, 3, 16, 16) and views.is_contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nt_xent = NTXentLoss()(projection_head(backbone(x0).flatten(1)), projection_head(backbone(x1).flatten(1)))
        essl_loss, log = essl.training_step((backbone, x_e), 0)
        loss = nt_xent + essl_loss
    assert essl_loss.dtype == torch.float32 and torch.isfinite(loss)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # the same forward, recomputed
        hits = essl.head(backbone(views).flatten(1)).argmax(1) == labels
    torch.testing.assert_close(log["train_essl_acc"], hits.float().mean(), rtol=0, atol=0)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in essl.head.parameters())
    assert backbone[0].weight.grad.abs().sum() > 0


def test_extra_view_comes_last_and_original_views_are_untouched() -> None:
    base = SimCLRTransform(input_size=32)
    original = list(base.transforms)
    extended = with_essl_view(base)
    assert isinstance(extended, MultiViewTransform)
    assert base.transforms == original and len(base.transforms) == 2
    assert len(extended.transforms) == 3
    assert extended.transforms[0] is original[0] and extended.transforms[1] is original[1]

    image = InMemoryImages(1, size=40).images[0]
    seed_everything(3)
    expected = base(image)
    seed_everything(3)
    got = extended(image)
    assert [v.shape for v in got] == [(3, 32, 32), (3, 32, 32), (3, 16, 16)]
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_the_default_extra_view_is_the_librarys_reference_view() -> None:
    """The view appended last is :func:`essl_aug.views.extra_view` for the transform's crop size: at CIFAR size a
    16 px crop of scale (0.2, 1) with the flip, colour jitter and grayscale of the reference, normalised with
    lightly's ``IMAGENET_NORMALIZE``; drawn from torch's global random numbers as lightly's own views."""
    extended = with_essl_view(SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.0))
    view = extended.transforms[-1]
    pipeline = view.pipeline
    assert pipeline.names == ("resized_crop", "hflip", "color_jitter", "grayscale")
    assert tuple(pipeline["resized_crop"].size) == (16, 16) and tuple(pipeline["resized_crop"].scale) == (0.2, 1.0)
    assert pipeline["color_jitter"].p == 0.8 and pipeline["grayscale"].p == 0.2 and pipeline["hflip"].p == 0.5
    assert pipeline.normalize == (tuple(IMAGENET_NORMALIZE["mean"]), tuple(IMAGENET_NORMALIZE["std"]))
    image = InMemoryImages(1, size=40).images[0]
    reference = extra_view(32, normalize=NORMALIZE)
    for seed in range(3):
        torch.manual_seed(seed)
        ours = view(image)
        torch.manual_seed(seed)
        expected, _ = reference(collate_images([image])[0])
        assert ours.shape == (3, 16, 16) and torch.equal(ours, expected[0])


def test_extra_view_size_options() -> None:
    imagenet = with_essl_view(SimCLRTransform(input_size=224)).transforms[-1].pipeline
    assert tuple(imagenet["resized_crop"].size) == (96, 96) and tuple(imagenet["resized_crop"].scale) == (0.05, 0.14)
    assert "gaussian_blur" in imagenet.names  # the reference ImageNet extra view blurs with p 0.1
    custom = with_essl_view(SimCLRTransform(input_size=32), input_size=8, scale=(0.5, 1.0))
    crop = custom.transforms[-1].pipeline["resized_crop"]
    assert tuple(crop.size) == (8, 8) and tuple(crop.scale) == (0.5, 1.0)
    assert custom(torch.rand(3, 40, 40))[-1].shape == (3, 8, 8)
    assert with_essl_view(SimCLRTransform(input_size=32), normalize=None).transforms[-1].pipeline.normalize is None
    explicit = SimCLRViewTransform(input_size=12)
    assert with_essl_view(SimCLRTransform(input_size=32), view=explicit).transforms[-1] is explicit
    v2 = with_essl_view(MultiViewTransformV2([SimCLRViewTransform(input_size=32)]))
    assert isinstance(v2, MultiViewTransformV2) and len(v2.transforms) == 2
    from_list = with_essl_view([SimCLRViewTransform(input_size=32)] * 3)
    assert [v.shape for v in from_list(torch.rand(3, 40, 40))][-1] == (3, 16, 16)
    by_size = with_essl_view([lambda img: img], main_size=64)
    assert tuple(by_size.transforms[-1].pipeline["resized_crop"].size) == (32, 32)


def test_extra_view_bad_input() -> None:
    with pytest.raises(TypeError, match="MultiViewTransform"):
        with_essl_view(SimCLRViewTransform(input_size=32))
    with pytest.raises(TypeError, match="non-empty list"):
        with_essl_view([])
    with pytest.raises(ValueError, match=r"RandomResizedCrop.*`main_size`"):
        with_essl_view([lambda img: img])
    with pytest.raises(ValueError, match="`input_size` and `scale`"):
        with_essl_view(SimCLRTransform(input_size=32), view=SimCLRViewTransform(16), input_size=16)
    with pytest.raises(ValueError, match="scale"):
        with_essl_view(SimCLRTransform(input_size=32), scale=(0.5, 0.1))
    with pytest.raises(TypeError, match="`view` must be a callable"):
        with_essl_view(SimCLRTransform(input_size=32), view=3)


def test_prediction_head_is_the_core_head_under_lightly_names() -> None:
    head = EquivariancePredictionHead(input_dim=512, hidden_dim=2048, output_dim=4)
    core = EquivarianceHead(512, 4)
    assert isinstance(head, EquivarianceHead)
    assert [p.shape for p in head.parameters()] == [p.shape for p in core.parameters()]
    assert [type(m) for m in head.layers] == [type(m) for m in core.layers]
    head.load_state_dict(core.state_dict())
    x = torch.randn(5, 512, 1, 1)
    assert torch.equal(head(x), core(x))
    linear = EquivariancePredictionHead(8, output_dim=3, num_layers=0)
    assert [type(m) for m in linear.layers] == [nn.Linear]
    with pytest.raises(ValueError, match="num_layers"):
        EquivariancePredictionHead(8, num_layers=-1)


def test_loss_forward_and_training_step_agree() -> None:
    torch.manual_seed(4)
    backbone = small_backbone()
    essl = ESSLLoss("rotation", input_dim=FEATURES, hidden_dim=32, weight=0.25)
    x_e = torch.rand(6, 3, 16, 16)
    loss = essl(backbone, x_e)
    step_loss, log = essl.training_step((backbone, x_e), 0)
    torch.testing.assert_close(loss, step_loss)
    torch.testing.assert_close(loss.detach(), 0.25 * log["train_essl_loss"])
    views, labels = essl.views(x_e)
    feat_loss, feat_log = essl.training_step((backbone(views), labels), 0)
    torch.testing.assert_close(feat_log, log)
    torch.testing.assert_close(feat_loss, loss)
    val_loss, val_log = essl.validation_step((backbone, x_e), 0)
    assert set(val_log) == {"val_essl_loss", "val_essl_acc"}
    torch.testing.assert_close(val_loss, loss)
    assert essl.num_classes == 4


def test_loss_bad_input() -> None:
    backbone = small_backbone()
    essl = ESSLLoss("rotation", input_dim=FEATURES, hidden_dim=8)
    with pytest.raises(ValueError, match=r"`batch` must be \(backbone, x_e\)"):
        essl.training_step((backbone,), 0)
    with pytest.raises(TypeError, match="backbone"):
        essl.training_step((3, torch.rand(2, 3, 8, 8)), 0)
    with pytest.raises(TypeError, match="x_e"):
        essl(backbone, [torch.rand(2, 3, 8, 8)])
    with pytest.raises(ValueError, match="input_dim"):
        ESSLLoss("rotation")
    with pytest.raises(ValueError, match="input_dim"):
        ESSLLoss("rotation", input_dim=8, head=nn.Linear(8, 4))
    with pytest.raises(ValueError, match="normalize"):
        ESSLLoss("invert", input_dim=8, normalize={"mean": [0.5]})


def test_inversion_uses_lightlys_normalize_dict() -> None:
    mean, std = torch.tensor(IMAGENET_NORMALIZE["mean"]), torch.tensor(IMAGENET_NORMALIZE["std"])

    def normalise(p: torch.Tensor) -> torch.Tensor:
        return (p - mean[:, None, None]) / std[:, None, None]

    pixels = torch.rand(3, 3, 8, 8)
    essl = ESSLLoss("invert", input_dim=4, hidden_dim=4)  # default: lightly's IMAGENET_NORMALIZE
    views, labels = essl.views(normalise(pixels))
    torch.testing.assert_close(views[3:], normalise(1 - pixels))
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]

    custom = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    product = ESSLLoss(["rotation", "invert"], input_dim=4, hidden_dim=4, normalize=custom)
    x = (pixels - 0.5) / 0.25
    views, labels = product.views(x)  # label 2 * k + inverted
    torch.testing.assert_close(views[labels == 3], (1 - torch.rot90(pixels, 1, dims=(-2, -1)) - 0.5) / 0.25)

    plain = ESSLLoss("invert", input_dim=4, hidden_dim=4, normalize=None)
    torch.testing.assert_close(plain.views(pixels)[0][3:], 1 - pixels)
    own = ESSLLoss({"name": "invert", "max_val": 255.0}, input_dim=4, hidden_dim=4, normalize=None)
    torch.testing.assert_close(own.views(pixels)[0][3:], 255.0 - pixels)
    ready = EquivariantTransform(RandomInvert(), mode="all")
    assert ESSLLoss(ready, input_dim=4, hidden_dim=4).transform is ready


def test_lightning_fast_dev_run_logs_essl_keys() -> None:
    pl = pytest.importorskip("pytorch_lightning")

    class ESimCLR(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = small_backbone()
            self.projection_head = SimCLRProjectionHead(FEATURES, 32, 16)
            self.criterion = NTXentLoss()
            self.essl = ESSLLoss("rotation", input_dim=FEATURES, hidden_dim=32)
            self.seen: dict[str, float] = {}

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.projection_head(self.backbone(x).flatten(start_dim=1))

        def training_step(self, batch, batch_idx):  # type: ignore[override]
            x0, x1, x_e = batch[0]
            loss = self.criterion(self(x0), self(x1))
            essl_loss, log = self.essl.training_step((self.backbone, x_e), batch_idx)
            self.log_dict(log)
            self.seen = {
                "essl": float(essl_loss.detach()),
                "ce": float(log["train_essl_loss"]),
                "acc": float(log["train_essl_acc"]),
            }
            return loss + essl_loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    torch.manual_seed(5)
    transform = with_essl_view(SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.0))
    dataset = LightlyDataset.from_torch_dataset(InMemoryImages(16), transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, collate_fn=MultiViewCollate())
    model = ESimCLR()
    trainer = pl.Trainer(
        fast_dev_run=True, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(model, loader)
    assert trainer.state.finished
    metrics = trainer.callback_metrics
    assert {"train_essl_loss", "train_essl_acc"} <= set(metrics)
    assert float(metrics["train_essl_acc"]) == model.seen["acc"]
    assert float(metrics["train_essl_loss"]) == pytest.approx(model.seen["ce"], rel=1e-5)
    assert model.seen["essl"] == pytest.approx(0.4 * model.seen["ce"], rel=1e-5)
    optimised = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert all(id(p) in optimised for p in model.essl.head.parameters())


class LightlySimCLR(nn.Module):
    """lightly's SimCLR example model (examples/pytorch/simclr.py), on the small backbone."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = small_backbone()
        self.projection_head = SimCLRProjectionHead(FEATURES, 32, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.backbone(x).flatten(start_dim=1))


def _lightly_loader() -> torch.utils.data.DataLoader:
    transform = with_essl_view(SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.0))
    dataset = LightlyDataset.from_torch_dataset(InMemoryImages(32), transform=transform)
    return torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True)


def test_a_module_level_loss_whose_head_is_never_optimised_fails_loudly() -> None:
    """lightly's idiom: ``criterion = NTXentLoss()`` next to the model, ``optimizer = SGD(model.parameters())``.

    An ``ESSLLoss`` made the same way has its head outside ``model.parameters()``: instead of a head that silently
    never trains, the second optimiser step raises, naming both fixes.
    """
    torch.manual_seed(0)
    model = LightlySimCLR()
    criterion = NTXentLoss()
    essl = ESSLLoss("rotation", input_dim=FEATURES, hidden_dim=16)  # E-SSL, the same idiom as `criterion`
    optimizer = torch.optim.SGD(model.parameters(), lr=0.06)
    head_before = [p.detach().clone() for p in essl.head.parameters()]
    steps = 0
    with pytest.raises(RuntimeError, match=r"head of ESSLLoss is in no optimiser.*submodule.*\.parameters\(\)"):
        for batch in _lightly_loader():  # the training loop of lightly's example, plus the E-SSL term
            x0, x1, x_e = batch[0]
            loss = criterion(model(x0), model(x1)) + essl(model.backbone, x_e)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            steps += 1
    assert steps == 1  # raised by the second step
    assert all(torch.equal(a, b) for a, b in zip(head_before, essl.head.parameters(), strict=True))

    # Either fix trains the head, without a complaint: the loss as a submodule, or its parameters in the optimiser.
    for fix in ("submodule", "parameters"):
        model = LightlySimCLR()
        essl = ESSLLoss("rotation", input_dim=FEATURES, hidden_dim=16)
        if fix == "submodule":
            model.essl = essl
            params = list(model.parameters())
        else:
            params = [*model.parameters(), *essl.parameters()]
        optimizer = torch.optim.SGD(params, lr=0.06)
        head_before = [p.detach().clone() for p in essl.head.parameters()]
        for batch in _lightly_loader():
            x0, x1, x_e = batch[0]
            loss = criterion(model(x0), model(x1)) + essl(model.backbone, x_e)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        assert all(not torch.equal(a, b) for a, b in zip(head_before, essl.head.parameters(), strict=True))


def test_a_module_level_loss_in_a_lightning_module_fails_loudly() -> None:
    """lightly's Lightning examples optimise ``self.parameters()``: a loss kept outside the module is caught too."""
    lightning = pytest.importorskip("lightning.pytorch")
    essl = ESSLLoss("rotation", input_dim=FEATURES, hidden_dim=16)  # module level, not `self.essl`

    class ESimCLR(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = LightlySimCLR()
            self.criterion = NTXentLoss()

        def training_step(self, batch, batch_idx):  # type: ignore[override]
            x0, x1, x_e = batch[0]
            essl_loss, _ = essl.training_step((self.model.backbone, x_e), batch_idx)
            return self.criterion(self.model(x0), self.model(x1)) + essl_loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.06)

    torch.manual_seed(0)
    trainer = lightning.Trainer(
        max_steps=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with pytest.raises(RuntimeError, match="head of ESSLLoss is in no optimiser"):
        trainer.fit(ESimCLR(), _lightly_loader())
    assert trainer.global_step == 1  # one step done: the second raised


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_the_batch_device() -> None:
    backbone = small_backbone().cuda()
    essl = ESSLLoss("rotation", input_dim=FEATURES, hidden_dim=32).cuda()
    x_e = torch.rand(4, 3, 16, 16, device="cuda")
    views, labels = essl.views(x_e)
    assert views.is_cuda and labels.is_cuda
    loss, log = essl.training_step((backbone, x_e), 0)
    assert loss.is_cuda and log["train_essl_acc"].is_cuda
    loss.backward()


def test_missing_lightly_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    monkeypatch.setitem(sys.modules, "lightly.transforms.multi_view_transform", None)
    spec = importlib.util.spec_from_file_location("_essl_lightly_without_lightly", essl_lightly.__file__)
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(ImportError, match=r"essl-aug\[lightly\]"):
        spec.loader.exec_module(module)
