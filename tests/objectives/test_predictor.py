"""RelativePredictor: g(e1, embed(t)) learns e2; the InfoNCE; a split space; weights, gradients, errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug.objectives import Objectives, RelativePredictor, StepInputs
from essl_aug.objectives.augself import select_groups
from essl_aug.objectives.predictor import info_nce, relative_parameters
from essl_aug.transforms import Params, RandomResizedCrop
from essl_aug.views import simclr

SHAPE = (64, 3, 16, 16)


def _crop_batch(
    generator: torch.Generator, shift: Tensor, width: int, split: int
) -> tuple[Tensor, Tensor, dict[str, Params], dict[str, Params]]:
    """Two views whose last ``split`` numbers move by ``shift @ relative crop``: e2 = e1 - shift(t12)."""
    crop = RandomResizedCrop(8)
    p1, p2 = ({"resized_crop": crop.sample(SHAPE, generator=generator)} for _ in range(2))
    t12 = crop.relative(p1["resized_crop"], p2["resized_crop"])
    z1 = torch.randn(SHAPE[0], width, generator=generator)
    z2 = z1.clone()
    z2[:, width - split :] -= t12 @ shift
    return z1, z2, p1, p2


def _train(objective: nn.Module, batch: Callable[[], StepInputs], steps: int, lr: float = 1e-2) -> None:
    optimizer = torch.optim.Adam(objective.parameters(), lr=lr)
    for _ in range(steps):
        inputs = batch()
        optimizer.zero_grad()
        objective(inputs).loss.backward()
        optimizer.step()


@pytest.mark.parametrize("loss", ["cosine", "infonce"])
def test_the_prediction_beats_the_identity_on_a_learnable_toy(loss: Any, one_thread: None) -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    shift = 4 * torch.randn(4, 8, generator=g)

    def batch() -> StepInputs:
        z1, z2, p1, p2 = _crop_batch(g, shift, 12, 8)
        return StepInputs(embeddings=(z1, z2), params=(p1, p2))

    pred = RelativePredictor(12, groups=("crop",), source="embeddings", split=8, loss=loss, temperature=0.1)
    _train(pred, batch, 300)
    pred.eval()
    with torch.no_grad():
        logs = pred(batch()).logs
    assert float(logs["cos_identity"]) < 0.8, logs  # the toy's views differ
    assert float(logs["cos"]) > 0.98, logs  # stated error: mean cosine of prediction and target above 0.98
    assert float(logs["cos"]) > float(logs["cos_identity"]) + 0.15, logs


def test_an_own_projector_learns_an_equivariant_space(one_thread: None) -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    shift = 4 * torch.randn(4, 16, generator=g)

    def batch() -> StepInputs:
        z1, z2, p1, p2 = _crop_batch(g, shift, 16, 16)
        return StepInputs(features=(z1, z2), params=(p1, p2))

    pred = RelativePredictor(16, groups=("crop",), dim=16, hidden=(64,))
    start = pred(batch()).logs["infonce"]
    _train(pred, batch, 200)
    pred.eval()
    with torch.no_grad():
        logs = pred(batch()).logs
    chance = math.log(4 * SHAPE[0] - 1)  # 2N rows (N = 2B predictions), each against 2N - 1 others
    assert float(start) > 0.5 * chance
    assert float(logs["infonce"]) < 0.5 * chance, (logs, chance)
    assert float(logs["cos"]) > float(logs["cos_identity"]) + 0.1, logs  # EquiMod's eqgain > 0


def test_info_nce_is_equimods_ntxent() -> None:
    torch.manual_seed(0)
    pred, target = torch.randn(6, 5), torch.randn(6, 5)
    # EquiMod's NTXentLoss, src/loss.py: z = cat([z_i, z_j]), -1e8 on the diagonal, positives i <-> i + n
    z = F.normalize(torch.cat([target, pred]))
    sim = z @ z.T / 0.2 - 1e8 * torch.eye(12)
    reference = F.cross_entropy(sim, torch.cat([torch.arange(6, 12), torch.arange(0, 6)]))
    torch.testing.assert_close(info_nce(pred, target, 0.2), reference)


def test_loss_wiring_symmetric_split_and_cosine() -> None:
    torch.manual_seed(0)
    p1, p2 = simclr(16).sample((5, 3, 24, 24), generator=torch.Generator().manual_seed(0))
    z1, z2 = torch.randn(5, 10), torch.randn(5, 10)
    pred = RelativePredictor(10, groups=("crop", "flip", "color"), source="embeddings", split=6, loss="cosine")
    out = pred(StepInputs(embeddings=(z1, z2), params=(p1, p2)))
    groups = select_groups(["crop", "flip", "color"])
    t = torch.cat([relative_parameters(groups, p1, p2), relative_parameters(groups, p2, p1)])
    assert t.shape == (10, 4 + 1 + 4)
    source, target = torch.cat([z1[:, 4:], z2[:, 4:]]), torch.cat([z2[:, 4:], z1[:, 4:]])
    prediction = pred.predictor(torch.cat([source, pred.embed(t)], dim=1))
    cos = F.cosine_similarity(prediction, target, dim=1)
    torch.testing.assert_close(out.loss, (1 - cos).mean())
    torch.testing.assert_close(out.logs["cos"], cos.mean().detach())
    torch.testing.assert_close(out.logs["cos_identity"], F.cosine_similarity(source, target, dim=1).mean())
    torch.testing.assert_close(pred.invariant(z1), z1[:, :4])
    torch.testing.assert_close(pred.equivariant(z1), z1[:, 4:])


def test_cosine_detaches_the_target_and_infonce_does_not() -> None:
    p1, p2 = simclr(16).sample((4, 3, 24, 24))
    for loss in ("cosine", "infonce"):
        z1 = torch.randn(4, 6)
        z2 = torch.randn(4, 6, requires_grad=True)  # view 2 is only the target when not symmetric
        pred = RelativePredictor(6, groups=("crop",), source="embeddings", split=3, loss=loss, symmetric=False)
        pred(StepInputs(embeddings=(z1, z2), params=(p1, p2))).loss.backward()
        if loss == "cosine":
            assert z2.grad is None
        else:
            assert z2.grad is not None and bool(z2.grad[:, 3:].all()) and not z2.grad[:, :3].any()


@pytest.mark.parametrize("split", [None, 4])
def test_gradient_reaches_the_features(split: int | None) -> None:
    p1, p2 = simclr(16).sample((4, 3, 24, 24))
    f1, f2 = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True)
    pred = RelativePredictor(8, split=split, dim=8, hidden=(16,))
    pred(StepInputs(features=(f1, f2), params=(p1, p2))).loss.backward()
    assert f1.grad is not None and f2.grad is not None
    assert float(f1.grad.abs().sum()) > 0 and float(f2.grad.abs().sum()) > 0


@pytest.mark.parametrize("bad", [None, float("inf"), float("nan")])
def test_weight_zero_leaves_the_ssl_loss_bit_identical(bad: float | None) -> None:
    p1, p2 = simclr(16).sample((4, 3, 24, 24))
    f1, f2 = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8)
    if bad is not None:
        f2 = f2.clone()
        f2[0, 0] = bad
    pred = RelativePredictor(8, weight=0.0, dim=8, hidden=(16,))
    out = pred(StepInputs(features=(f1, f2), params=(p1, p2)))
    assert set(out.logs) == {"infonce", "cos", "cos_identity"}
    for value in (1.2345, -0.0, 0.0, -3e-38, float("inf")):
        ssl = torch.tensor(value)
        assert torch.equal((ssl + out.loss).view(torch.int32), ssl.view(torch.int32)), value
    out.loss.backward()
    assert f1.grad is None  # nothing reaches the backbone
    if bad is None:
        assert all(p.grad is not None and not p.grad.any() for p in pred.parameters())


def test_requires_follows_the_source_and_objectives_combine() -> None:
    assert RelativePredictor(8).requires == {"features", "params"}
    emb = RelativePredictor(8, source="embeddings", split=2)
    assert emb.requires == {"embeddings", "params"}
    both = Objectives({"pred": emb, "eq": RelativePredictor(6, dim=4, hidden=(8,), weight=0.5)})
    assert both.requires == {"embeddings", "features", "params"}
    p1, p2 = simclr(16).sample((4, 3, 24, 24))
    out = both(
        StepInputs(
            features=(torch.randn(4, 6), torch.randn(4, 6)), embeddings=(torch.randn(4, 8),) * 2, params=(p1, p2)
        )
    )
    assert {"pred/loss", "pred/infonce", "eq/cos", "eq/cos_identity"} <= set(out.logs)
    assert RelativePredictor(8).invariant(torch.ones(2, 8)).shape == (2, 8)  # no split: the whole vector


def _match(err: type[Exception], *parts: str) -> Any:
    return pytest.raises(err, match=".*".join(parts))


def test_clear_errors() -> None:
    p1, p2 = simclr(16).sample((4, 3, 24, 24))
    features = (torch.randn(4, 8), torch.randn(4, 8))
    with _match(ValueError, "needs embeddings"):
        RelativePredictor(8, source="embeddings", split=2)(StepInputs(features=features, params=(p1, p2)))
    with _match(ValueError, "group 'rotation'", r"add essl_aug\.RandomRotation to the views' pipeline"):
        RelativePredictor(8, groups=("rotation",), dim=4)(StepInputs(features=features, params=(p1, p2)))
    with _match(ValueError, "`in_features=8`"):
        RelativePredictor(6, dim=4)(StepInputs(features=features, params=(p1, p2)))
    for split in (0, 8, 9, 2.5):
        with _match(ValueError, "`split`", r"\[1, 7\]"):
            RelativePredictor(8, split=split)  # type: ignore[arg-type]
    with _match(ValueError, "`source`"):
        RelativePredictor(8, source="projections")  # type: ignore[arg-type]
    with _match(ValueError, "`loss`", "cosine", "infonce"):
        RelativePredictor(8, loss="mse")  # type: ignore[arg-type]
    with _match(ValueError, "`temperature`"):
        RelativePredictor(8, temperature=0.0)
    with _match(ValueError, "`dim`"):
        RelativePredictor(8, dim=1)
    with _match(ValueError, "`groups`"):
        RelativePredictor(8, groups=("zoom",))
    with _match(ValueError, "`weight`"):
        RelativePredictor(8, weight=float("nan"))


def test_runs_on_real_params_of_the_simclr_recipe() -> None:
    torch.manual_seed(0)
    x = torch.randint(0, 256, (8, 3, 24, 24), dtype=torch.uint8)
    views, params = simclr(16)(x, torch.Generator().manual_seed(3))
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    projector = nn.Linear(8, 6)
    groups = ("crop", "color", "flip", "blur", "grayscale")
    f1, f2 = backbone(views[0]), backbone(views[1])
    inputs = StepInputs(features=(f1, f2), embeddings=(projector(f1), projector(f2)), params=(params[0], params[1]))
    projected = RelativePredictor(8, groups=groups, dim=8, hidden=(16, 16))
    split = RelativePredictor(6, groups=groups, source="embeddings", split=3, loss="cosine", predictor_hidden=(12,))
    for objective in (projected, split):
        out = objective(inputs)
        assert out.loss.ndim == 0 and bool(torch.isfinite(out.loss))
        backbone.zero_grad()
        out.loss.backward(retain_graph=True)
        weight = backbone[0].weight
        assert isinstance(weight, Tensor) and weight.grad is not None and bool(weight.grad.abs().sum() > 0)
    assert split.invariant(projector(f1)).shape == (8, 3)


# -- edges: an empty batch, a batch of one, flags ---------------------------------------------------------------------


def _edge_step(batch: int) -> StepInputs:
    params = simclr(16).sample((batch, 3, 24, 24), generator=torch.Generator().manual_seed(0))
    return StepInputs(features=(torch.rand(batch, 8), torch.rand(batch, 8)), params=params)


def test_an_empty_batch_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"empty batch \(B = 0\).*skip empty batches"):
        RelativePredictor(8, dim=16)(_edge_step(0))


def test_a_batch_of_one_names_the_batch_norm_and_the_fixes() -> None:
    with pytest.raises(ValueError, match=r"at least 2 rows.*drop_last=True"):
        RelativePredictor(8, dim=16, symmetric=False)(_edge_step(1))
    assert torch.isfinite(RelativePredictor(8, dim=16, symmetric=False, norm="layer")(_edge_step(1)).loss)


@pytest.mark.parametrize("name", ["detach_target", "symmetric"])
@pytest.mark.parametrize("flag", ["no", "false", 1])
def test_flags_must_be_bools_not_truthy_strings(name: str, flag: object) -> None:
    with pytest.raises(TypeError, match=f"`{name}` must be True or False"):
        RelativePredictor(8, dim=16, **{name: flag})
