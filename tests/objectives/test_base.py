"""The objective API: DiscreteESSL is EquivarianceLoss's loss, Objectives sums and prefixes, missing inputs, weights."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from essl_aug.loss import EquivarianceLoss
from essl_aug.objectives.base import INPUTS, DiscreteESSL, Objective, ObjectiveOutput, Objectives, StepInputs


def _net(width: int = 8) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class _FeatureNorm(Objective):
    """A toy objective on the two views' features: ``weight * mean(f1 * f2)``, logging ``dot``."""

    requires = frozenset({"features"})

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        assert inputs.features is not None
        dot = (inputs.features[0] * inputs.features[1]).mean()
        return ObjectiveOutput(self.weight * dot, {"dot": dot.detach()})


def _identical(a: Tensor, b: Tensor) -> bool:
    return bool(a.view(1).view(torch.int32) == b.view(1).view(torch.int32))


def test_discrete_essl_is_the_equivariance_loss() -> None:
    torch.manual_seed(0)
    net = _net()
    x = torch.rand(6, 3, 12, 12)
    essl = EquivarianceLoss("rotation", in_features=8, hidden=(16,), weight=0.3)
    wrapped = DiscreteESSL(loss=copy.deepcopy(essl))
    expected = essl(net, x)
    out = wrapped(StepInputs(backbone=net, extra=x))
    assert wrapped.weight == 0.3 and wrapped.requires == {"backbone", "extra"}
    assert torch.equal(out.loss, expected.loss)
    assert set(out.logs) == {"ce", "acc"}
    assert torch.equal(out.logs["ce"], expected.cross_entropy) and torch.equal(out.logs["acc"], expected.accuracy)
    assert all(not v.requires_grad for v in out.logs.values())
    # built from EquivarianceLoss's arguments: the same loss (the same head, from the same seed)
    torch.manual_seed(1)
    a = EquivarianceLoss("hflip", in_features=8, hidden=(16,), weight=0.5)
    torch.manual_seed(1)
    b = DiscreteESSL("hflip", in_features=8, hidden=(16,), weight=0.5)
    assert torch.equal(b(StepInputs(backbone=net, extra=x)).loss, a(net, x).loss)
    # the gradient reaches the backbone
    net.zero_grad()
    out.loss.backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in net.parameters())


def test_discrete_essl_takes_a_loss_or_its_arguments() -> None:
    essl = EquivarianceLoss("rotation", in_features=8, hidden=(16,))
    assert DiscreteESSL(loss=essl).loss is essl
    with pytest.raises(ValueError, match="give either `loss`"):
        DiscreteESSL("rotation", loss=essl)
    with pytest.raises(ValueError, match="give either `loss`"):
        DiscreteESSL(loss=essl, in_features=8)
    with pytest.raises(ValueError, match="exactly one of `in_features`"):
        DiscreteESSL("rotation")


def test_discrete_essl_weight_zero_leaves_the_ssl_loss_bit_identical() -> None:
    net = _net()
    x = torch.rand(4, 3, 12, 12)
    essl = DiscreteESSL("rotation", in_features=8, hidden=(16,), weight=0.0)
    ssl = net(x).pow(2).mean()
    out = essl(StepInputs(backbone=net, extra=x))
    assert _identical(ssl + out.loss, ssl)
    assert bool(out.logs["ce"] > 0)  # the logs are still computed


class _InfiniteLogit(nn.Module):
    """A rotation head whose first logit is infinite (the cross-entropy is then infinite or NaN)."""

    num_classes = 4

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 4)

    def forward(self, features: Tensor) -> Tensor:
        return self.linear(features) * 0 + torch.tensor([float("inf"), 0.0, 0.0, 0.0])


@pytest.mark.parametrize("case", ["negative_zero_ssl", "infinite_logit"])
def test_discrete_essl_weight_zero_is_exact_for_any_ssl_and_any_head(case: str) -> None:
    net = _net()
    x = torch.rand(4, 3, 12, 12)
    head = _InfiniteLogit() if case == "infinite_logit" else None
    essl = DiscreteESSL("rotation", in_features=None if head else 8, head=head, hidden=(16,), weight=0.0)
    ssl = (net(x).sum() * 0).abs().neg() if case == "negative_zero_ssl" else net(x).pow(2).mean()
    out = essl(StepInputs(backbone=net, extra=x))
    assert _identical(ssl + out.loss, ssl)


def test_objectives_sum_the_losses_and_prefix_the_logs() -> None:
    torch.manual_seed(0)
    net = _net()
    x = torch.rand(4, 3, 12, 12)
    f = (torch.rand(4, 8), torch.rand(4, 8))
    rot = DiscreteESSL("rotation", in_features=8, hidden=(16,))
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


def test_objectives_errors() -> None:
    with pytest.raises(ValueError, match="`objectives` is empty"):
        Objectives({})
    with pytest.raises(TypeError, match="objective 'ce' must be an essl_aug Objective, got CrossEntropyLoss"):
        Objectives({"ce": nn.CrossEntropyLoss()})  # type: ignore[dict-item]
    for name in ("a/b", "a.b"):
        with pytest.raises(ValueError, match=r"must not contain '/' or '\.'"):
            Objectives({name: _FeatureNorm(1.0)})


def test_missing_inputs_name_what_is_missing_and_who_provides_it() -> None:
    essl = DiscreteESSL("rotation", in_features=8, hidden=(16,))
    with pytest.raises(ValueError, match=r"DiscreteESSL needs backbone, extra in its StepInputs \(it has nothing\)"):
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
    assert set(INPUTS) == {"backbone", "extra", "features", "embeddings", "params"}


@pytest.mark.parametrize("weight", [-0.1, float("nan"), float("inf"), "0.4", True, None])
def test_weight_is_a_finite_number_at_least_zero(weight: object) -> None:
    with pytest.raises(ValueError, match="`weight` must be a finite number >= 0"):
        _FeatureNorm(weight)  # type: ignore[arg-type]
    assert _FeatureNorm(0).weight == 0.0 and isinstance(_FeatureNorm(1).weight, float)


def test_objective_is_abstract_and_reports_its_weight() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Objective(1.0)  # type: ignore[abstract]
    assert "weight=0.25" in repr(_FeatureNorm(0.25))
