"""Continuous E-SSL: a trainable CNN learns the angle, the blur and the zoom of a view; losses, weights, errors."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from essl_aug.augment import ColorJitter, GaussianBlur, HorizontalFlip, RandomResizedCrop, RandomRotation
from essl_aug.augment.base import Augmentation
from essl_aug.augment.rotation import RotationParams
from essl_aug.objectives.base import DiscreteESSL, Objectives, StepInputs
from essl_aug.objectives.continuous import PRESETS, ContinuousESSL, InputSizeCrop, angle_error, circular_loss

SIZE = 16


def _cnn(width: int = 32) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def _ramps(g: torch.Generator, n: int) -> Tensor:
    """Images with one clear orientation: brightness rises left to right (random offset, slope and noise)."""
    ramp = torch.linspace(-1, 1, SIZE).expand(SIZE, SIZE)
    slope = 0.5 + torch.rand(n, 1, 1, 1, generator=g)
    offset = 0.5 + 0.1 * torch.randn(n, 1, 1, 1, generator=g)
    return (offset + 0.4 * slope * ramp + 0.05 * torch.randn(n, 3, SIZE, SIZE, generator=g)).clamp(0, 1)


def _noise(g: torch.Generator, n: int) -> Tensor:
    """White noise: its blur tells sigma."""
    return torch.rand(n, 3, SIZE, SIZE, generator=g)


def _stripes(g: torch.Generator, n: int) -> Tensor:
    """Horizontal stripes of period 3 px, random phase: the zoom shows in their period."""
    phase = 2 * math.pi * torch.rand(n, 1, 1, 1, generator=g)
    rows = torch.arange(SIZE, dtype=torch.float32).view(1, 1, SIZE, 1)
    return (0.5 + 0.5 * torch.sin(rows * 2 * math.pi / 3 + phase)).expand(n, 3, SIZE, SIZE)


def _metric(obj: ContinuousESSL, net: nn.Module, images: Tensor, g: torch.Generator) -> float:
    with torch.no_grad():
        logs = obj(StepInputs(backbone=net, extra=images, generator=g)).logs
    return float(logs["angle_error" if "angle_error" in logs else "mae"])


@pytest.mark.parametrize(
    ("preset", "images", "chance", "reached"),
    [
        # (a head that guesses: mean angle error 90 degrees; sigma, uniform in [0.1, 2.0]: 1.9 / 4 px from the
        # middle; scale, about uniform in [0.08, 1.0]: 0.92 / 4 from the middle)
        ("rotation", _ramps, 60.0, 15.0),
        ("blur", _noise, 0.4, 0.3),
        ("crop_scale", _stripes, 0.2, 0.12),
    ],
)
def test_a_trainable_cnn_learns_the_parameter(preset: str, images: object, chance: float, reached: float) -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    net = _cnn()
    obj = ContinuousESSL(preset, in_features=32, hidden=(64,), weight=1.0)
    test_images = images(g, 256)  # type: ignore[operator]
    before = _metric(obj, net, test_images, torch.Generator().manual_seed(2))
    optimizer = torch.optim.Adam([*net.parameters(), *obj.parameters()], lr=3e-3)
    for _ in range(150):
        out = obj(StepInputs(backbone=net, extra=images(g, 64), generator=g))  # type: ignore[operator]
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    after = _metric(obj, net, test_images, torch.Generator().manual_seed(2))
    assert before > chance, before
    assert after < reached, (before, after)


def test_circular_loss_is_invariant_to_full_turns_and_symmetric() -> None:
    rotation = RandomRotation()
    theta = torch.tensor([-170.0, -30.0, 0.0, 45.0, 179.0])

    def target(degrees: Tensor) -> Tensor:
        return rotation.target(RotationParams(applied=torch.ones(len(degrees), dtype=torch.bool), angle=degrees))

    prediction = 3.0 * target(theta + 25.0)  # 25 degrees off, any length
    base = circular_loss(prediction, target(theta))
    for turns in (-2, -1, 1, 3):
        wrapped = target(theta + 360.0 * turns)
        assert torch.allclose(circular_loss(prediction, wrapped), base, atol=1e-5)
        assert torch.allclose(angle_error(prediction, wrapped), torch.full((5,), 25.0), atol=1e-3)
    # an error of +d, -d and 360 - d costs the same; the loss grows with the error up to half a turn
    for d in (10.0, 100.0, 179.0):
        plus = circular_loss(target(theta + d), target(theta))
        assert torch.allclose(circular_loss(target(theta - d), target(theta)), plus, atol=1e-5)
        assert torch.allclose(circular_loss(target(theta + 360.0 - d), target(theta)), plus, atol=1e-5)
    errors = [float(circular_loss(target(theta + d), target(theta))) for d in (0.0, 10.0, 90.0, 180.0)]
    assert errors == sorted(errors) and errors[0] < 1e-6 and abs(errors[2] - 1) < 1e-5 and abs(errors[3] - 2) < 1e-5
    assert torch.allclose(angle_error(target(theta + 350.0), target(theta)), torch.full((5,), 10.0), atol=1e-3)


def test_loss_and_logs_are_the_formulas() -> None:
    net = _cnn(8)
    x = torch.rand(6, 3, SIZE, SIZE)
    for preset in PRESETS:
        obj = ContinuousESSL(preset, in_features=8, hidden=(16,), weight=0.7, copies=2)
        out = obj(StepInputs(backbone=net, extra=x, generator=torch.Generator().manual_seed(3)))
        views, target = obj.views(x, torch.Generator().manual_seed(3))
        assert views.shape == (12, 3, SIZE, SIZE) and target.shape == (12, obj.num_outputs)
        prediction = obj.head(net(views))
        if preset == "rotation":
            assert torch.equal(out.logs["cosine"], circular_loss(prediction, target))
            assert torch.equal(out.logs["angle_error"], angle_error(prediction, target).mean())
            unweighted = out.logs["cosine"]
        else:
            assert torch.equal(out.logs["mse"], (prediction - target).square().mean())
            span = {"blur": 1.9, "crop_scale": 0.92}[preset]
            assert torch.allclose(out.logs["mae"], (prediction - target).abs().mean() * span)
            unweighted = out.logs["mse"]
        assert torch.equal(out.loss, 0.7 * unweighted)
        for value in out.logs.values():
            assert value.shape == () and not value.requires_grad


def test_targets_are_the_documented_normalisation() -> None:
    x = torch.rand(64, 3, SIZE, SIZE)
    g = torch.Generator().manual_seed(0)
    rotation = ContinuousESSL("rotation", in_features=8)
    _, target = rotation.views(x, g)
    assert torch.allclose(target.norm(dim=1), torch.ones(64))
    blur = ContinuousESSL("blur", in_features=8)
    params = blur.augmentation.sample(x.shape, generator=torch.Generator().manual_seed(1))
    _, target = blur.views(x, torch.Generator().manual_seed(1))
    assert torch.equal(target, (params.sigma.view(-1, 1) - 0.1) / (2.0 - 0.1))
    assert float(target.min()) >= 0 and float(target.max()) < 1 and float(target.std()) > 0.2
    crop = ContinuousESSL("crop_scale", in_features=8)
    params = crop.augmentation.sample(x.shape, generator=torch.Generator().manual_seed(2))
    views, target = crop.views(x, torch.Generator().manual_seed(2))
    assert views.shape == x.shape
    assert torch.equal(target, ((params.scale - 0.08) / (1.0 - 0.08)).view(-1, 1))


def test_the_gradient_reaches_the_backbone_and_the_head() -> None:
    net = _cnn(8)
    obj = ContinuousESSL("rotation", in_features=8, hidden=(16,))
    obj(StepInputs(backbone=net, extra=torch.rand(4, 3, SIZE, SIZE))).loss.backward()
    for p in [*net.parameters(), *obj.parameters()]:
        assert p.grad is not None and bool(p.grad.abs().sum() > 0)


class _Constant(nn.Module):
    """A head that predicts ``value`` (a NaN or an infinity to test the weight-0 loss), through a Linear."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 2)
        self.value = value

    def forward(self, features: Tensor) -> Tensor:
        return self.linear(features) * 0 + self.value


@pytest.mark.parametrize("head_value", [None, math.inf, math.nan])
@pytest.mark.parametrize("negative_zero", [False, True])
def test_weight_zero_leaves_the_ssl_loss_and_its_gradients_bit_identical(
    head_value: float | None, negative_zero: bool
) -> None:
    torch.manual_seed(0)
    net = _cnn(8)
    x = torch.rand(4, 3, SIZE, SIZE)
    head = None if head_value is None else _Constant(head_value)
    obj = ContinuousESSL("rotation", in_features=None if head else 8, head=head, hidden=(16,), weight=0.0)

    def step(with_objective: bool) -> tuple[Tensor, list[Tensor]]:
        net.zero_grad()
        ssl = (net(x).sum() * 0).abs().neg() if negative_zero else net(x).pow(2).mean()  # -0.0: x + 0.0 is not x
        if with_objective:
            out = obj(StepInputs(backbone=net, extra=x))
            assert out.loss.requires_grad and set(out.logs) == {"cosine", "angle_error"}
            ssl = ssl + out.loss
        ssl.backward()
        return ssl.detach(), [p.grad.clone() for p in net.parameters() if p.grad is not None]

    alone, grads = step(False)
    assert (torch.signbit(alone) and alone == 0) == negative_zero
    total, grads_with = step(True)
    assert alone.view(1).view(torch.int32).item() == total.view(1).view(torch.int32).item()  # bit for bit, sign too
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_with, strict=True))


def test_generator_makes_steps_reproducible_and_extra_is_not_modified() -> None:
    torch.manual_seed(0)
    net = _cnn(8)
    obj = ContinuousESSL("blur", in_features=8, hidden=(16,), copies=2)
    twin = copy.deepcopy(obj)
    x = torch.rand(5, 3, SIZE, SIZE)
    kept = x.clone()
    a = obj(StepInputs(backbone=net, extra=x, generator=torch.Generator().manual_seed(7)))
    b = twin(StepInputs(backbone=net, extra=x, generator=torch.Generator().manual_seed(7)))
    c = obj(StepInputs(backbone=net, extra=x, generator=torch.Generator().manual_seed(8)))
    assert torch.equal(a.loss, b.loss) and all(torch.equal(a.logs[k], b.logs[k]) for k in a.logs)
    assert not torch.equal(a.loss, c.loss)
    assert torch.equal(x, kept)


def test_copies_are_blocks_with_their_own_parameters() -> None:
    obj = ContinuousESSL(RandomRotation((0.0, 1e-3)), in_features=8, copies=3)
    x = torch.rand(4, 3, SIZE, SIZE)
    views, target = obj.views(x, torch.Generator().manual_seed(0))
    assert views.shape == (12, 3, SIZE, SIZE)
    assert torch.allclose(views, x.repeat(3, 1, 1, 1), atol=1e-3)  # copy k of image i is row k * B + i
    _, target = ContinuousESSL("rotation", in_features=8, copies=3).views(x, torch.Generator().manual_seed(0))
    assert len({round(float(v), 6) for v in target[:, 0]}) == 12


def test_every_image_is_transformed_and_the_callers_augmentation_is_kept() -> None:
    given = RandomRotation(30.0, p=0.0)
    obj = ContinuousESSL(given, in_features=8)
    assert obj.augmentation.p == 1.0 and given.p == 0.0 and obj.augmentation is not given
    _, target = obj.views(torch.rand(32, 3, SIZE, SIZE), torch.Generator().manual_seed(0))
    assert bool((target[:, 1] != 0).all())  # no image left at angle 0


def test_presets_and_other_augmentations() -> None:
    rotation, blur, crop = (PRESETS[name]() for name in ("rotation", "blur", "crop_scale"))
    assert isinstance(rotation, RandomRotation) and rotation.degrees == (-180.0, 180.0) and rotation.p == 1.0
    assert isinstance(blur, GaussianBlur) and blur.sigma == (0.1, 2.0) and blur.kernel_size is None and blur.p == 1.0
    assert isinstance(crop, InputSizeCrop) and crop.scale == (0.08, 1.0) and crop.ratio == (3 / 4, 4 / 3)
    assert [ContinuousESSL(n, in_features=8).num_outputs for n in ("rotation", "blur", "crop_scale")] == [2, 1, 1]
    net = _cnn(8)
    x = torch.rand(4, 3, SIZE, SIZE)
    jitter = ContinuousESSL(ColorJitter(0.4, 0.4, 0.4, 0.1), in_features=8, hidden=(16,))
    assert jitter.num_outputs == 4
    assert set(jitter(StepInputs(backbone=net, extra=x)).logs) == {"mse", "mae"}
    fixed_size = ContinuousESSL(RandomResizedCrop(8, scale=(0.2, 1.0)), in_features=8, hidden=(16,))
    views, target = fixed_size.views(x)
    assert views.shape == (4, 3, 8, 8) and target.shape == (4, 1)
    custom = ContinuousESSL("rotation", head=nn.Linear(8, 2))
    assert set(custom(StepInputs(backbone=net, extra=x)).logs) == {"cosine", "angle_error"}


def test_input_size_crop_is_the_crop_resized_to_the_input() -> None:
    crop = InputSizeCrop(scale=(0.2, 0.6))
    x = torch.rand(3, 3, 12, 10)
    params = crop.sample(x.shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(crop.apply(x, params), RandomResizedCrop((12, 10), scale=(0.2, 0.6)).apply(x, params))


def test_in_objectives_with_the_discrete_loss() -> None:
    net = _cnn(8)
    both = Objectives(
        {
            "essl": DiscreteESSL("rotation", in_features=8, hidden=(16,)),
            "angle": ContinuousESSL("rotation", in_features=8, hidden=(16,), weight=0.2),
        }
    )
    out = both(StepInputs(backbone=net, extra=torch.rand(4, 3, SIZE, SIZE)))
    assert sorted(out.logs) == [
        "angle/angle_error",
        "angle/cosine",
        "angle/loss",
        "essl/acc",
        "essl/ce",
        "essl/loss",
    ]
    assert torch.equal(out.loss, out.logs["essl/loss"] + out.logs["angle/loss"])


def test_built_by_the_adapters_config() -> None:
    config = pytest.importorskip("essl_aug.adapters._config")
    spec = config.check_objectives({"continuous": {"augmentation": "blur", "weight": 0.3}}, "essl.objectives")
    built = config.build_objectives(spec, {"in_features": 8, "embedding_dim": 4}, "essl.objectives")
    assert isinstance(built["continuous"], ContinuousESSL) and built["continuous"].weight == 0.3
    with pytest.raises(ValueError, match=r"essl.objectives.continuous: `augmentation` 'spin' is not a preset"):
        config.build_objectives({"continuous": {"augmentation": "spin"}}, {"in_features": 8}, "essl.objectives")


def test_clear_errors() -> None:
    net = _cnn(8)
    x = torch.rand(4, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match=r"`augmentation` 'spin' is not a preset; the presets are \['blur'"):
        ContinuousESSL("spin", in_features=8)
    with pytest.raises(TypeError, match="`augmentation` must be a preset name"):
        ContinuousESSL(3, in_features=8)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"classification target.*use DiscreteESSL"):
        ContinuousESSL(HorizontalFlip(), in_features=8)
    fixed: list[tuple[Augmentation[Any], str]] = [
        (GaussianBlur(sigma=1.0), "sigma"),
        (RandomRotation((5.0, 5.0)), "degrees"),
        (RandomResizedCrop(8, scale=(0.5, 0.5)), "scale"),
    ]
    for augmentation, arg in fixed:
        with pytest.raises(ValueError, match=f"nothing to predict.*{arg}|{arg}.*nothing to predict"):
            ContinuousESSL(augmentation, in_features=8)
    with pytest.raises(ValueError, match="exactly one of `in_features`"):
        ContinuousESSL("rotation")
    with pytest.raises(ValueError, match="exactly one of `in_features`"):
        ContinuousESSL("rotation", in_features=8, head=nn.Linear(8, 2))
    with pytest.raises(ValueError, match="`in_features` must be the backbone's feature width"):
        ContinuousESSL("rotation", in_features=0)
    with pytest.raises(TypeError, match=r"`head` must be an nn\.Module"):
        ContinuousESSL("rotation", head=lambda f: f)  # type: ignore[arg-type]
    for copies in (0, True, 1.5):
        with pytest.raises(ValueError, match="`copies` must be an int >= 1"):
            ContinuousESSL("rotation", in_features=8, copies=copies)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`weight` must be a finite number >= 0"):
        ContinuousESSL("rotation", in_features=8, weight=-0.1)
    with pytest.raises(ValueError, match="`hidden` widths must be positive"):
        ContinuousESSL("rotation", in_features=8, hidden=(0,))
    with pytest.raises(ValueError, match=r"needs backbone, extra.*has nothing"):
        ContinuousESSL("rotation", in_features=8)(StepInputs())
    with pytest.raises(ValueError, match=r"`head` returned \(4, 3\).*regresses 2 numbers.*2 outputs"):
        ContinuousESSL("rotation", head=nn.Linear(8, 3))(StepInputs(backbone=net, extra=x))
    with pytest.raises(ValueError, match="gives 8 features per view but the head takes 16; set `in_features=8`"):
        ContinuousESSL("rotation", in_features=16)(StepInputs(backbone=net, extra=x))
    spatial = nn.Conv2d(3, 8, 3)
    with pytest.raises(ValueError, match="not pooled features"):
        ContinuousESSL("rotation", in_features=8)(StepInputs(backbone=spatial, extra=x))
    with pytest.raises(ValueError, match="`extra` is an empty batch"):
        ContinuousESSL("rotation", in_features=8)(StepInputs(backbone=net, extra=x[:0]))
    with pytest.raises(ValueError, match="`extra` must have 4 dimensions"):
        ContinuousESSL("rotation", in_features=8)(StepInputs(backbone=net, extra=x[0]))
    with pytest.raises(TypeError, match="`extra` has dtype int64"):
        ContinuousESSL("rotation", in_features=8)(StepInputs(backbone=net, extra=x.long()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_with_a_cuda_generator() -> None:
    net = _cnn(8).cuda()
    obj = ContinuousESSL("crop_scale", in_features=8, hidden=(16,)).cuda()
    x = torch.rand(4, 3, SIZE, SIZE, device="cuda")
    a = obj(StepInputs(backbone=net, extra=x, generator=torch.Generator("cuda").manual_seed(0)))
    b = obj(StepInputs(backbone=net, extra=x, generator=torch.Generator("cuda").manual_seed(0)))
    assert a.loss.device.type == "cuda" and torch.equal(a.loss, b.loss)
    assert all(v.device.type == "cuda" for v in a.logs.values())
