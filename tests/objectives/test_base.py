"""The objective API: Objectives sums and prefixes, missing inputs, weights, and the watch that a head with
gradients is in an optimiser (for every objective with a head)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from essl_aug import EquivarianceHead, EquivarianceLoss
from essl_aug.objectives import (
    ESSL,
    SIE,
    AugSelf,
    EquiMod,
    Objective,
    ObjectiveOutput,
    Objectives,
    RelativePredictor,
    StepInputs,
)
from essl_aug.objectives.base import INPUTS, check_weight, weighted
from essl_aug.transforms import RandomResizedCrop
from essl_aug.views import TwoViews, ViewPipeline


def _net(width: int = 8) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class _FeatureNorm(Objective):
    """A toy objective on the two views' features: ``weight * mean(f1 * f2)``, logging ``dot``."""

    requires = frozenset({"features"})

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        assert inputs.features is not None
        dot = (inputs.features[0] * inputs.features[1]).mean()
        return ObjectiveOutput(self.weight * dot, {"dot": dot.detach()})


def _bits(a: Tensor) -> int:
    return int(a.reshape(1).view(torch.int32).item())


def test_essl_is_the_equivariance_loss() -> None:
    """Built from the same arguments and seed, the objective and the public face give the same loss."""
    net = _net()
    x = torch.rand(4, 3, 12, 12)
    torch.manual_seed(1)
    face = EquivarianceLoss("hflip", in_features=8, hidden=(16,), weight=0.5)
    torch.manual_seed(1)
    objective = ESSL("hflip", in_features=8, hidden=(16,), weight=0.5)
    out, expected = objective(StepInputs(backbone=net, extra=x)), face(net, x)
    assert torch.equal(out.loss, expected.loss)
    assert torch.equal(out.logs["ce"], expected.cross_entropy) and torch.equal(out.logs["acc"], expected.accuracy)


def test_objectives_sum_the_losses_and_prefix_the_logs() -> None:
    torch.manual_seed(0)
    net = _net()
    x = torch.rand(4, 3, 12, 12)
    f = (torch.rand(4, 8), torch.rand(4, 8))
    rot = ESSL("rotation", in_features=8, hidden=(16,))
    dot = _FeatureNorm(0.5)
    both = Objectives({"rot": rot, "dot": dot})
    inputs = StepInputs(backbone=net, extra=x, features=f)
    out = both(inputs)
    a, b = rot(inputs), dot(inputs)
    assert both.requires == {"backbone", "extra", "features"}
    assert torch.equal(out.loss, a.loss + b.loss)
    assert out.logs.keys() == {"rot/loss", "rot/ce", "rot/acc", "dot/loss", "dot/dot"}
    assert torch.equal(out.logs["rot/loss"], a.loss) and torch.equal(out.logs["dot/loss"], b.loss)
    assert torch.equal(out.logs["rot/ce"], a.logs["ce"]) and torch.equal(out.logs["dot/dot"], b.logs["dot"])
    assert torch.equal(out.logs["dot/loss"], 0.5 * out.logs["dot/dot"])
    assert all(not v.requires_grad and v.shape == () for v in out.logs.values())
    assert out.loss.requires_grad
    # one objective alone: its loss, its logs prefixed
    single = Objectives({"dot": _FeatureNorm(2.0)})(inputs)
    assert torch.equal(single.loss, 2.0 * b.logs["dot"]) and set(single.logs) == {"dot/loss", "dot/dot"}
    assert list(both.objectives) == ["rot", "dot"] and both.objectives["rot"] is rot  # submodules: trained with it


def test_objectives_errors() -> None:
    with pytest.raises(ValueError, match="`objectives` is empty"):
        Objectives({})
    with pytest.raises(TypeError, match="objective 'ce' must be an essl_aug Objective, got CrossEntropyLoss"):
        Objectives({"ce": nn.CrossEntropyLoss()})  # type: ignore[dict-item]
    for name in ("a/b", "a.b"):
        with pytest.raises(ValueError, match=r"must not contain '/' or '\.'"):
            Objectives({name: _FeatureNorm(1.0)})


def test_missing_inputs_name_what_is_missing_and_who_provides_it() -> None:
    essl = ESSL("rotation", in_features=8, hidden=(16,))
    with pytest.raises(ValueError, match=r"ESSL needs backbone, extra in its StepInputs \(it has nothing\)"):
        essl(StepInputs())
    with pytest.raises(ValueError, match=r"needs backbone in its StepInputs \(it has extra\).*pass them"):
        essl(StepInputs(extra=torch.rand(2, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"_FeatureNorm needs features .*it has backbone, extra"):
        Objectives({"essl": essl, "dot": _FeatureNorm(1.0)})(StepInputs(backbone=_net(), extra=torch.rand(2, 3, 8, 8)))


def test_step_inputs_provided() -> None:
    assert StepInputs().provided() == frozenset()
    generator = torch.Generator()
    inputs = StepInputs(extra=torch.rand(1, 3, 4, 4), params=({}, {}), generator=generator)
    assert inputs.provided() == {"extra", "params"}  # the generator is not an input an objective requires
    assert set(INPUTS) == {"backbone", "extra", "features", "embeddings", "params", "images", "maps"}


@pytest.mark.parametrize("weight", [-0.1, float("nan"), float("inf"), "0.4", True, None])
def test_weight_is_a_finite_number_at_least_zero(weight: object) -> None:
    with pytest.raises(ValueError, match="`weight` must be a finite number >= 0"):
        _FeatureNorm(weight)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`weight` must be a finite number >= 0 \(reference: 0\.4\)"):
        check_weight(weight)  # type: ignore[arg-type]
    assert _FeatureNorm(0).weight == 0.0 and isinstance(_FeatureNorm(1).weight, float)


def test_weighted_keeps_every_value_and_scales_otherwise() -> None:
    x = torch.tensor(2.0, requires_grad=True)
    assert torch.equal(weighted(0.5, x), torch.tensor(1.0))
    zero = weighted(0.0, x)
    assert zero.requires_grad and _bits(zero.detach()) == _bits(torch.tensor(-0.0))
    for value in (1.2345, -0.0, 0.0, -3e-38, float("inf"), float("nan")):
        ssl = torch.tensor(value)
        assert _bits(ssl + weighted(0.0, torch.tensor(float("inf")))) == _bits(ssl), value
    zero.backward()
    assert x.grad is not None and float(x.grad) == 0.0


def test_objective_is_abstract_and_reports_its_weight() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Objective(1.0)  # type: ignore[abstract]
    assert "weight=0.25" in repr(_FeatureNorm(0.25))


# --- a head in no optimiser (an objective made outside the model) fails loudly, whatever the objective ---------

_VIEWS = TwoViews(ViewPipeline([RandomResizedCrop(8)]))


def _step(objective: nn.Module, backbone: nn.Module) -> Tensor:
    """One forward pass of ``objective`` with what it needs, the backbone's gradients flowing."""
    x = torch.rand(2, 3, 12, 12)
    if isinstance(objective, EquivarianceLoss):
        return objective(backbone, x[..., :8, :8]).loss
    views, params = _VIEWS(x)
    f1, f2 = backbone(views[0]), backbone(views[1])
    inputs = StepInputs(
        backbone=backbone, extra=x[..., :8, :8], features=(f1, f2), params=(params[0], params[1]), images=x
    )
    return objective(inputs).loss


OBJECTIVES: dict[str, Callable[[], Objective]] = {
    "EquivarianceLoss": lambda: EquivarianceLoss("rotation", in_features=8, hidden=(4,)),
    "ESSL": lambda: ESSL("vflip", in_features=8, hidden=(4,)),
    "ESSL, continuous": lambda: ESSL("random_rotation", in_features=8, hidden=(4,)),
    "AugSelf": lambda: AugSelf(8, groups=("crop",), hidden=(4,)),
    "RelativePredictor": lambda: RelativePredictor(8, groups=("crop",), dim=4, hidden=(4,)),
    "EquiMod": lambda: EquiMod(8, dim=4, hidden=(4,), param_dim=4),
    "SIE": lambda: SIE(8, groups=("crop",), mlp=(8, 8)),
}


def _train(objective: nn.Module, optimizers: list[torch.optim.Optimizer], backbone: nn.Module, steps: int) -> int:
    done = 0
    for _ in range(steps):
        _step(objective, backbone).backward()
        for optimizer in optimizers:
            optimizer.step()
            optimizer.zero_grad()
        done += 1
    return done


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_a_head_in_no_optimiser_raises_at_the_second_step(name: str) -> None:
    backbone = _net()
    objective = OBJECTIVES[name]()
    optimizer = torch.optim.SGD(backbone.parameters(), lr=0.1)  # forgot objective.parameters()
    head = [p.detach().clone() for p in objective.parameters()]
    assert head  # it has a head to forget
    kind = type(objective).__name__
    with pytest.raises(RuntimeError, match=rf"head of {kind} is in no optimiser.*SGD stepped twice.*parameters\(\)"):
        _train(objective, [optimizer], backbone, 3)
    assert all(torch.equal(a, b) for a, b in zip(head, objective.parameters(), strict=True))  # never trained


@pytest.mark.parametrize("name", ["EquivarianceLoss", "AugSelf"])
def test_the_head_check_raises_no_false_alarm(name: str) -> None:
    backbone = _net()
    # the head in the second of two optimisers that step in the same iteration
    objective = OBJECTIVES[name]()
    probe = nn.Linear(8, 2)
    probe(torch.rand(1, 8)).sum().backward()
    first = torch.optim.SGD(probe.parameters(), lr=0.1)
    second = torch.optim.SGD([*backbone.parameters(), *objective.parameters()], lr=0.1)
    assert _train(objective, [first, second], backbone, 3) == 3
    # an objective no longer called is not blamed for the training that follows
    stale = OBJECTIVES[name]()
    _step(stale, backbone).backward()  # head gradients left in place
    other = torch.optim.SGD(backbone.parameters(), lr=0.1)
    for _ in range(3):
        backbone(torch.rand(2, 3, 8, 8)).sum().backward()
        other.step()
    # a submodule of the model is trained with it
    model = nn.ModuleDict({"backbone": backbone, "objective": OBJECTIVES[name]()})
    assert _train(model["objective"], [torch.optim.SGD(model.parameters(), lr=0.1)], backbone, 3) == 3
    # weight 0 (the term is off), a frozen head, and evaluation without gradients are never checked
    off = OBJECTIVES[name]()
    off.weight = 0.0
    frozen = OBJECTIVES[name]().requires_grad_(False)
    for objective_ in (off, frozen):
        assert _train(objective_, [torch.optim.SGD(backbone.parameters(), lr=0.1)], backbone, 3) == 3
    with torch.no_grad():
        for _ in range(3):
            _step(OBJECTIVES[name](), backbone)
            other.step()


def test_a_custom_head_given_to_essl_is_watched_too() -> None:
    backbone = _net()
    essl = ESSL("rotation", head=EquivarianceHead(8, 4, hidden=(4,)))
    with pytest.raises(RuntimeError, match="head of ESSL is in no optimiser"):
        _train(essl, [torch.optim.SGD(backbone.parameters(), lr=0.1)], backbone, 3)


@pytest.mark.parametrize("generator", [0, 1234, "seed", torch.tensor(0)])
def test_step_inputs_refuse_a_seed_for_a_generator(generator: object) -> None:
    """A seed given as the generator fails at construction with the fix, not deep inside a draw."""
    with pytest.raises(TypeError, match=r"`generator` must be a torch.Generator or None.*manual_seed"):
        StepInputs(generator=generator)  # type: ignore[arg-type]
    assert StepInputs(generator=torch.Generator().manual_seed(0)).generator is not None
