"""ESSL, the one extra-view objective: cross-entropy for a family (the paper's form), regression for a continuous
transformation (rotation by any angle, blur sigma, a random zoom); weights, gradients, copies, errors."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug import EquivarianceHead, EquivariantTransform
from essl_aug.objectives import ESSL, Objectives, StepInputs
from essl_aug.objectives.essl import angle_error, circular_loss
from essl_aug.transforms import (
    ColorJitter,
    RandomGaussianBlur,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomSolarize,
    RotationParams,
)

SIZE = 16


def _net(width: int = 8) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _bits(t: Tensor) -> int:
    return int(t.detach().reshape(1).view(torch.int32).item())


def _images(n: int = 4, seed: int = 0) -> Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


# -- a family: the paper's cross-entropy -------------------------------------------------------------------------------


def test_family_cross_entropy_is_the_hand_computation_with_the_head() -> None:
    torch.manual_seed(0)
    net = _net()
    essl = ESSL("rotation", in_features=8, hidden=(16,), weight=0.5)
    x = _images(3)
    out = essl(StepInputs(backbone=net, extra=x))
    views = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])  # the reference's rotate_images
    labels = torch.arange(4).repeat_interleave(3)
    logits = essl.head(net(views))
    ce = F.cross_entropy(logits, labels)
    torch.testing.assert_close(out.loss, 0.5 * ce)
    torch.testing.assert_close(out.logs["ce"], ce.detach())
    assert out.logs["acc"] == (logits.argmax(dim=1) == labels).float().mean()
    assert set(out.logs) == {"ce", "acc"}
    assert all(v.shape == () and not v.requires_grad for v in out.logs.values())
    assert essl.num_classes == essl.num_outputs == 4 and essl.spec.kind == "classification"


def test_family_views_are_every_element_in_block_layout() -> None:
    x = _images(3)
    before = x.clone()
    essl = ESSL(["rotation", "vflip"], in_features=8, hidden=(16,))
    views, labels = essl.views(x)
    assert essl.num_classes == 8 and views.shape == (24, 3, SIZE, SIZE)
    assert labels.tolist() == [k for k in range(8) for _ in range(3)]
    for k in range(8):  # label 2 * t + f: t quarter turns, then a vertical flip where f is 1 (mixed radix)
        turned = torch.rot90(x, k // 2, dims=(-2, -1))
        expected = turned.flip(-2) if k % 2 else turned
        assert torch.equal(views[3 * k : 3 * (k + 1)], expected), k
    assert torch.equal(x, before)


def test_family_in_random_mode_draws_one_element_per_image() -> None:
    x = _images(8)
    essl = ESSL("rotation", in_features=8, mode="random", balanced=True, generator=torch.Generator().manual_seed(1))
    views, labels = essl.views(x)
    assert views.shape == x.shape and labels.shape == (8,)
    assert torch.bincount(labels, minlength=4).tolist() == [2, 2, 2, 2]  # balanced
    for i in range(8):
        assert torch.equal(views[i], torch.rot90(x[i], int(labels[i]), dims=(-2, -1)))
    again = ESSL("rotation", in_features=8, mode="random", generator=torch.Generator().manual_seed(3))
    other = ESSL("rotation", in_features=8, mode="random", generator=torch.Generator().manual_seed(3))
    assert torch.equal(again.views(x)[1], other.views(x)[1])
    # a step's generator takes precedence over the objective's
    step = StepInputs(backbone=_net(), extra=x, generator=torch.Generator().manual_seed(5))
    twin = copy.deepcopy(again)
    a, b = again(step), twin(StepInputs(backbone=step.backbone, extra=x, generator=torch.Generator().manual_seed(5)))
    assert torch.equal(a.loss, b.loss)


def test_an_equivariant_transform_is_used_as_given() -> None:
    transform = EquivariantTransform("jigsaw", mode="random")
    essl = ESSL(transform, in_features=8, hidden=(16,))
    assert essl.transform is transform and essl.num_classes == 24
    flip = ESSL(RandomHorizontalFlip(p=0.5), in_features=8)  # a family given as an object: all its elements
    assert isinstance(flip.transform, EquivariantTransform) and flip.transform.mode == "all"
    assert flip.views(_images(2))[1].tolist() == [0, 0, 1, 1]


def test_gradients_reach_backbone_and_head_but_not_the_view_source() -> None:
    torch.manual_seed(0)
    net = _net()
    essl = ESSL(["rotation", "vflip"], in_features=8, hidden=(16,), mode="random")
    x = torch.rand(4, 3, 8, 8, requires_grad=True)
    essl(StepInputs(backbone=net, extra=x * 2)).loss.backward()
    assert x.grad is None
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in net.parameters())
    assert all(p.grad is not None for p in essl.head.parameters())


class _InfiniteLogit(nn.Module):
    """A rotation head whose first logit is infinite (the cross-entropy is then infinite or NaN)."""

    num_classes = 4

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 4)

    def forward(self, features: Tensor) -> Tensor:
        return self.linear(features) * 0 + torch.tensor([float("inf"), 0.0, 0.0, 0.0])


class _Constant(nn.Module):
    """A regression head that predicts ``value`` (a NaN or an infinity), through a Linear."""

    def __init__(self, value: float, outputs: int = 2) -> None:
        super().__init__()
        self.linear = nn.Linear(8, outputs)
        self.value = value

    def forward(self, features: Tensor) -> Tensor:
        return self.linear(features) * 0 + self.value


@pytest.mark.parametrize(
    ("transform", "head"),
    [
        ("rotation", None),
        ("rotation", _InfiniteLogit),
        ("random_rotation", None),
        ("random_rotation", lambda: _Constant(math.inf)),
        ("random_rotation", lambda: _Constant(math.nan)),
        ("gaussian_blur", lambda: _Constant(math.nan, 1)),
    ],
)
@pytest.mark.parametrize("negative_zero", [False, True])
def test_weight_zero_leaves_the_ssl_loss_and_its_gradients_bit_identical(
    transform: str, head: Any, negative_zero: bool
) -> None:
    """``ssl + loss`` is ``ssl`` bit for bit (an exact -0.0, even for an infinite or NaN loss; -0.0 + 0.0 would be
    +0.0), the backbone gets the SSL loss's gradients and nothing else, the logs are still computed."""
    torch.manual_seed(0)
    net = _net()
    x = _images(4)
    built = None if head is None else head()
    essl = ESSL(transform, in_features=None if built else 8, head=built, hidden=(16,), weight=0.0)

    def step(with_objective: bool) -> tuple[Tensor, list[Tensor]]:
        net.zero_grad()
        ssl = (net(x).sum() * 0).abs().neg() if negative_zero else net(x).pow(2).mean()
        if with_objective:
            out = essl(StepInputs(backbone=net, extra=x))
            assert out.loss.requires_grad and _bits(out.loss) == _bits(torch.tensor(-0.0))
            assert out.logs  # still computed
            ssl = ssl + out.loss
        ssl.backward()
        return ssl.detach(), [p.grad.clone() for p in net.parameters() if p.grad is not None]

    alone, grads = step(False)
    assert bool(torch.signbit(alone) and alone == 0) == negative_zero
    total, grads_with = step(True)
    assert _bits(total) == _bits(alone)
    assert len(grads) == len(grads_with) and all(torch.equal(a, b) for a, b in zip(grads, grads_with, strict=True))
    # alone, the objective gives the backbone no gradient at all
    net.zero_grad()
    essl(StepInputs(backbone=net, extra=x)).loss.backward()
    assert all(p.grad is None for p in net.parameters())


# -- a continuous transformation: regression ---------------------------------------------------------------------------


def _unit(degrees: Tensor) -> Tensor:
    return RandomRotation().target(RotationParams(applied=torch.ones(len(degrees), dtype=torch.bool), angle=degrees))


def test_circular_loss_is_invariant_to_full_turns_and_symmetric() -> None:
    theta = torch.tensor([-170.0, -30.0, 0.0, 45.0, 179.0])
    prediction = 3.0 * _unit(theta + 25.0)  # 25 degrees off, any length
    base = circular_loss(prediction, _unit(theta))
    torch.testing.assert_close(base, 1 - torch.cos(torch.deg2rad(torch.tensor(25.0))))
    for turns in (-2, -1, 1, 3):
        wrapped = _unit(theta + 360.0 * turns)
        assert torch.allclose(circular_loss(prediction, wrapped), base, atol=1e-5)
        assert torch.allclose(angle_error(prediction, wrapped), torch.full((5,), 25.0), atol=1e-3)
    # an error of +d, -d and 360 - d costs the same; the loss grows with the error up to half a turn
    for d in (10.0, 100.0, 179.0):
        plus = circular_loss(_unit(theta + d), _unit(theta))
        assert torch.allclose(circular_loss(_unit(theta - d), _unit(theta)), plus, atol=1e-5)
        assert torch.allclose(circular_loss(_unit(theta + 360.0 - d), _unit(theta)), plus, atol=1e-5)
    errors = [float(circular_loss(_unit(theta + d), _unit(theta))) for d in (0.0, 10.0, 90.0, 180.0)]
    assert errors == sorted(errors) and errors[0] < 1e-6 and abs(errors[2] - 1) < 1e-5 and abs(errors[3] - 2) < 1e-5
    assert torch.allclose(angle_error(_unit(theta + 350.0), _unit(theta)), torch.full((5,), 10.0), atol=1e-3)


@pytest.mark.parametrize(
    ("name", "kind", "outputs", "spans"),
    [
        ("random_rotation", RandomRotation, 2, None),
        ("gaussian_blur", RandomGaussianBlur, 1, (1.9,)),
        ("zoom", RandomResizedCrop, 4, (1.0, 1.0, 1.0, 1.0)),
    ],
)
def test_continuous_loss_and_logs_are_the_formulas(name: str, kind: type, outputs: int, spans: Any) -> None:
    """The targets are the transformation's own for the parameters drawn (replayed from the same generator),
    normalised over its ranges; the circular target takes the cosine loss, the others the mean squared error."""
    net = _net()
    x = _images(6)
    obj = ESSL(name, in_features=8, hidden=(16,), weight=0.7, copies=2)
    assert isinstance(obj.transform, kind) and obj.num_outputs == outputs and obj.spec.kind == "regression"
    out = obj(StepInputs(backbone=net, extra=x, generator=torch.Generator().manual_seed(3)))
    views, target = obj.views(x, torch.Generator().manual_seed(3))
    params = obj.transform.sample((12, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(3))
    assert views.shape == (12, 3, SIZE, SIZE) and target.shape == (12, outputs) and target.dtype == torch.float32
    assert torch.equal(views, obj.transform.apply(x.repeat(2, 1, 1, 1), params))
    prediction = obj.head(net(views))
    if spans is None:  # (cos, sin) of the angle, compared on the circle
        assert torch.equal(target, _unit(params.angle))
        assert set(out.logs) == {"cosine", "angle_error"}
        torch.testing.assert_close(out.logs["cosine"], circular_loss(prediction, target).detach())
        torch.testing.assert_close(out.logs["angle_error"], angle_error(prediction, target).mean())
        unweighted = out.logs["cosine"]
    else:
        raw = obj.transform.target(params)
        lows = torch.tensor([lo for lo, _ in obj.spec.ranges])
        expected = (raw - lows) / torch.tensor(spans)
        torch.testing.assert_close(target, expected)
        assert float(target.min()) >= 0 and float(target.max()) <= 1 and float(target.std()) > 0.05
        assert set(out.logs) == {"mse", "mae"}
        torch.testing.assert_close(out.logs["mse"], (prediction - target).square().mean().detach())
        mae = ((prediction - target).abs().mean(dim=0) * torch.tensor(spans)).mean()  # in the transformation's units
        torch.testing.assert_close(out.logs["mae"], mae.detach())
        unweighted = out.logs["mse"]
    torch.testing.assert_close(out.loss, 0.7 * unweighted)
    assert all(v.shape == () and not v.requires_grad for v in out.logs.values())


def test_the_continuous_names_build_the_documented_transformations() -> None:
    rotation, blur, zoom = (ESSL(n, in_features=8).transform for n in ("random_rotation", "gaussian_blur", "zoom"))
    assert isinstance(rotation, RandomRotation) and rotation.degrees == (-180.0, 180.0) and rotation.p == 1.0
    assert isinstance(blur, RandomGaussianBlur) and blur.sigma == (0.1, 2.0) and blur.kernel_size is None
    assert blur.p == 1.0
    assert isinstance(zoom, RandomResizedCrop) and zoom.size is None  # back to the input's size: a random zoom
    assert zoom.scale == (0.08, 1.0) and zoom.ratio == pytest.approx((3 / 4, 4 / 3))
    views, target = ESSL("zoom", in_features=8).views(_images(3))
    assert views.shape == (3, 3, SIZE, SIZE) and target.shape == (3, 4)


def test_the_blur_target_is_sigma_over_its_range() -> None:
    obj = ESSL("gaussian_blur", in_features=8)
    x = _images(64)
    params = obj.transform.sample(x.shape, generator=torch.Generator().manual_seed(1))
    _, target = obj.views(x, torch.Generator().manual_seed(1))
    assert torch.equal(target, (params.sigma.view(-1, 1) - 0.1) / (2.0 - 0.1))
    assert bool(params.applied.all())  # every image blurred


def test_copies_are_blocks_with_their_own_parameters() -> None:
    x = _images(4)
    obj = ESSL(RandomRotation((0.0, 1e-3)), in_features=8, copies=3)
    views, _ = obj.views(x, torch.Generator().manual_seed(0))
    assert views.shape == (12, 3, SIZE, SIZE)
    assert torch.allclose(views, x.repeat(3, 1, 1, 1), atol=1e-3)  # copy k of image i is row k * B + i
    _, target = ESSL("random_rotation", in_features=8, copies=3).views(x, torch.Generator().manual_seed(0))
    assert len({round(float(v), 6) for v in target[:, 0]}) == 12  # each copy its own angle


def test_mode_and_balanced_are_for_families() -> None:
    for kwargs in ({"mode": "all"}, {"balanced": True}, {"num_per_batch": 2}):
        message = "`mode`, `balanced` and `num_per_batch` apply to families; RandomRotation"
        with pytest.raises(ValueError, match=message):
            ESSL("random_rotation", in_features=8, **kwargs)
    assert ESSL("random_rotation", in_features=8, mode="random").num_outputs == 2  # "random" is what it does
    with pytest.raises(ValueError, match="`copies` applies to continuous transformations"):
        ESSL("rotation", in_features=8, copies=2)
    jigsaw = ESSL("jigsaw", in_features=8, hidden=(16,), num_per_batch=3)  # 3 of the 24 permutations per step
    views, labels = jigsaw.views(torch.rand(2, 3, 8, 8), torch.Generator().manual_seed(0))
    assert views.shape == (6, 3, 8, 8) and len(set(labels.tolist())) == 3


@pytest.mark.parametrize(
    "transform",
    [
        RandomGaussianBlur(sigma=1.0, p=1.0),
        RandomRotation((5.0, 5.0)),
        RandomSolarize(0.5, p=0.2),  # varies through p alone, but the extra view is always transformed
        ColorJitter(0, 0, 0, 0),
    ],
)
def test_a_target_that_never_varies_is_refused(transform: Any) -> None:
    with pytest.raises(ValueError, match=r"has a target that never varies.*nothing to predict"):
        ESSL(transform, in_features=8)


def test_every_image_is_transformed_and_the_callers_transformation_is_kept() -> None:
    given = RandomRotation(30.0, p=0.0)
    obj = ESSL(given, in_features=8)
    assert obj.transform.p == 1.0 and given.p == 0.0 and obj.transform is not given
    assert obj.transform.degrees == given.degrees
    _, target = obj.views(torch.rand(32, 3, SIZE, SIZE), torch.Generator().manual_seed(0))
    assert bool((target[:, 1] != 0).all())  # no image left at angle 0
    always = RandomRotation(30.0, p=1.0)
    assert ESSL(always, in_features=8).transform is always


def test_other_continuous_transformations_and_heads() -> None:
    net = _net()
    x = _images(4)
    jitter = ESSL(ColorJitter(0.4, 0.4, 0.4, 0.1), in_features=8, hidden=(16,))
    assert jitter.num_outputs == 4
    assert set(jitter(StepInputs(backbone=net, extra=x)).logs) == {"mse", "mae"}
    fixed_size = ESSL(RandomResizedCrop(8, scale=(0.2, 1.0)), in_features=8, hidden=(16,))
    views, target = fixed_size.views(x)
    assert views.shape == (4, 3, 8, 8) and target.shape == (4, 4)
    custom = ESSL("random_rotation", head=nn.Linear(8, 2))
    assert set(custom(StepInputs(backbone=net, extra=x)).logs) == {"cosine", "angle_error"}
    spec = ESSL({"name": "random_rotation", "degrees": 45.0}, in_features=8).transform
    assert isinstance(spec, RandomRotation) and spec.degrees == (-45.0, 45.0)


def _ramps(g: torch.Generator, n: int, size: int = 12) -> Tensor:
    """Images with one clear orientation: brightness rises left to right (random offset, slope and noise)."""
    ramp = torch.linspace(-1, 1, size).expand(size, size)
    slope = 0.5 + torch.rand(n, 1, 1, 1, generator=g)
    offset = 0.5 + 0.1 * torch.randn(n, 1, 1, 1, generator=g)
    return (offset + 0.4 * slope * ramp + 0.05 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)


def test_a_trainable_backbone_learns_the_angle(one_thread: None) -> None:
    """On images with one orientation the mean angle error falls from chance (90 degrees) under 15 degrees."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 12 * 12, 16))
    obj = ESSL("random_rotation", in_features=16, hidden=(32,), weight=1.0)
    test = _ramps(g, 128)

    def error() -> float:
        with torch.no_grad():
            logs = obj(StepInputs(backbone=net, extra=test, generator=torch.Generator().manual_seed(2))).logs
        return float(logs["angle_error"])

    before = error()
    optimizer = torch.optim.Adam([*net.parameters(), *obj.parameters()], lr=1e-2)
    for _ in range(60):
        out = obj(StepInputs(backbone=net, extra=_ramps(g, 32), generator=g))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    after = error()
    assert before > 60.0, before
    assert after < 15.0, (before, after)


def test_generator_makes_steps_reproducible_and_extra_is_not_modified() -> None:
    torch.manual_seed(0)
    net = _net()
    obj = ESSL("gaussian_blur", in_features=8, hidden=(16,), copies=2)
    twin = copy.deepcopy(obj)
    x = _images(5)
    kept = x.clone()
    a = obj(StepInputs(backbone=net, extra=x, generator=torch.Generator().manual_seed(7)))
    b = twin(StepInputs(backbone=net, extra=x, generator=torch.Generator().manual_seed(7)))
    c = obj(StepInputs(backbone=net, extra=x, generator=torch.Generator().manual_seed(8)))
    assert torch.equal(a.loss, b.loss) and all(torch.equal(a.logs[k], b.logs[k]) for k in a.logs)
    assert not torch.equal(a.loss, c.loss)
    assert torch.equal(x, kept)


def test_in_objectives_beside_the_family_term() -> None:
    net = _net()
    both = Objectives(
        {
            "essl": ESSL("rotation", in_features=8, hidden=(16,)),
            "angle": ESSL("random_rotation", in_features=8, hidden=(16,), weight=0.2),
        }
    )
    out = both(StepInputs(backbone=net, extra=_images(4)))
    assert sorted(out.logs) == ["angle/angle_error", "angle/cosine", "angle/loss", "essl/acc", "essl/ce", "essl/loss"]
    assert torch.equal(out.loss, out.logs["essl/loss"] + out.logs["angle/loss"])


def test_clear_errors() -> None:
    net = _net()
    x = _images(4)
    with pytest.raises(ValueError, match="unknown family name 'spin'"):
        ESSL("spin", in_features=8)
    with pytest.raises(ValueError, match="exactly one of `in_features`"):
        ESSL("random_rotation")
    with pytest.raises(ValueError, match="exactly one of `in_features`"):
        ESSL("random_rotation", in_features=8, head=nn.Linear(8, 2))
    with pytest.raises(ValueError, match="need in_features >= 1"):
        ESSL("random_rotation", in_features=0)
    with pytest.raises(TypeError, match=r"`head` must be an nn\.Module"):
        ESSL("random_rotation", head=lambda f: f)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`head` has 3 outputs but the transformation's target has 4"):
        ESSL("rotation", head=EquivarianceHead(8, 3))  # known at construction
    for copies in (0, True, 1.5):
        with pytest.raises(ValueError, match="`copies` must be an int >= 1"):
            ESSL("random_rotation", in_features=8, copies=copies)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`weight` must be a finite number >= 0"):
        ESSL("random_rotation", in_features=8, weight=-0.1)
    with pytest.raises(ValueError, match="`hidden` widths must be positive"):
        ESSL("random_rotation", in_features=8, hidden=(0,))
    with pytest.raises(ValueError, match=r"ESSL needs backbone, extra in its StepInputs \(it has nothing\)"):
        ESSL("random_rotation", in_features=8)(StepInputs())
    with pytest.raises(ValueError, match=r"`head` returned \(4, 3\) per batch.*target has 2 outputs"):
        ESSL("random_rotation", head=nn.Linear(8, 3))(StepInputs(backbone=net, extra=x))
    with pytest.raises(ValueError, match=r"`head` returned \(16, 3\) per batch.*target has 4 outputs"):
        ESSL("rotation", head=nn.Linear(8, 3))(StepInputs(backbone=net, extra=x))
    with pytest.raises(ValueError, match="gives 8 features per view but the head takes 16; set `in_features=8`"):
        ESSL("random_rotation", in_features=16)(StepInputs(backbone=net, extra=x))
    with pytest.raises(ValueError, match="not pooled features"):
        ESSL("random_rotation", in_features=8)(StepInputs(backbone=nn.Conv2d(3, 8, 3), extra=x))
    with pytest.raises(TypeError, match="`backbone` must be a callable"):
        ESSL("random_rotation", in_features=8)(StepInputs(backbone=3, extra=x))  # type: ignore[arg-type]
    for name in ("random_rotation", "rotation"):
        essl = ESSL(name, in_features=8)
        with pytest.raises(ValueError, match=r"`extra` is an empty batch \(B = 0\)"):
            essl(StepInputs(backbone=net, extra=x[:0]))
        with pytest.raises(
            ValueError, match=r"`extra` must be shaped \(B, C, H, W\), got shape \(3, 16, 16\).*`extra.unsqueeze\(0\)`"
        ):
            essl(StepInputs(backbone=net, extra=x[0]))
        with pytest.raises(TypeError, match="`extra` must be the extra view as a"):
            essl.views([x])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`extra` has dtype int64"):
        ESSL("random_rotation", in_features=8)(StepInputs(backbone=net, extra=x.long()))
    with pytest.raises(ValueError, match="rotation needs square images but `extra` is 16x12"):
        ESSL("rotation", in_features=8)(StepInputs(backbone=net, extra=x[..., :12]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_with_a_cuda_generator() -> None:
    net = _net().cuda()
    for name in ("zoom", "rotation"):
        obj = ESSL(name, in_features=8, hidden=(16,), mode="random" if name == "rotation" else None).cuda()
        x = torch.rand(4, 3, SIZE, SIZE, device="cuda")
        a = obj(StepInputs(backbone=net, extra=x, generator=torch.Generator("cuda").manual_seed(0)))
        b = obj(StepInputs(backbone=net, extra=x, generator=torch.Generator("cuda").manual_seed(0)))
        assert a.loss.device.type == "cuda" and torch.equal(a.loss, b.loss)
        assert all(v.device.type == "cuda" for v in a.logs.values())
