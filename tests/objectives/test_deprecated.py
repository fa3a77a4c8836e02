"""The deprecated names of the objectives: each warns once used and still works, for one release."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import essl_aug.objectives
from essl_aug.config import ESSLConfig
from essl_aug.objectives import ESSL, StepInputs
from essl_aug.transforms import RandomGaussianBlur, RandomResizedCrop, RandomRotation


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def test_discrete_essl_is_essl() -> None:
    with pytest.warns(DeprecationWarning, match=r"DiscreteESSL is deprecated .*use essl_aug\.objectives\.essl\.ESSL"):
        cls = essl_aug.objectives.DiscreteESSL
    assert cls is ESSL
    out = cls("rotation", in_features=8, hidden=(16,))(StepInputs(backbone=_net(), extra=torch.rand(2, 3, 8, 8)))
    assert set(out.logs) == {"ce", "acc"}


@pytest.mark.parametrize(
    ("preset", "kind", "outputs", "logs"),
    [
        ("rotation", RandomRotation, 2, {"cosine", "angle_error"}),
        ("blur", RandomGaussianBlur, 1, {"mse", "mae"}),
        ("crop_scale", RandomResizedCrop, 4, {"mse", "mae"}),
    ],
)
def test_continuous_essl_presets_are_essl_with_the_new_names(preset: str, kind: type, outputs: int, logs: set) -> None:
    with pytest.warns(DeprecationWarning, match=r"essl_aug\.objectives\.ContinuousESSL is deprecated"):
        cls = essl_aug.objectives.ContinuousESSL
    with pytest.warns(DeprecationWarning, match=r"ContinuousESSL is deprecated.*use ESSL with a continuous"):
        obj = cls(preset, in_features=8, hidden=(16,), weight=0.5)
    assert isinstance(obj, ESSL) and isinstance(obj.transform, kind) and obj.num_outputs == outputs
    assert obj.transform.p == 1.0
    out = obj(StepInputs(backbone=_net(), extra=torch.rand(4, 3, 16, 16)))
    assert set(out.logs) == logs and out.loss.requires_grad
    assert torch.isfinite(out.loss)


def test_continuous_by_its_former_config_name() -> None:
    c = ESSLConfig.from_mapping({"lambda": 0, "objectives": {"continuous": {"augmentation": "blur", "weight": 0.3}}})
    with pytest.warns(DeprecationWarning, match="ContinuousESSL is deprecated"):
        built = c.build_objectives(in_features=8)
    assert built is not None
    obj = built.objectives["continuous"]
    assert isinstance(obj, ESSL) and isinstance(obj.transform, RandomGaussianBlur) and obj.weight == 0.3


def test_predictor_equivariance_is_relative_predictor() -> None:
    from essl_aug.objectives import RelativePredictor

    with pytest.warns(DeprecationWarning, match=r"PredictorEquivariance is deprecated .*predictor\.RelativePredictor"):
        cls = essl_aug.objectives.PredictorEquivariance
    assert cls is RelativePredictor
    c = ESSLConfig.from_mapping(
        {"lambda": 0, "objectives": {"p": {"objective": "PredictorEquivariance"}}}, has_params=True
    )
    built = c.build_objectives(in_features=8)
    assert built is not None and type(built.objectives["p"]) is RelativePredictor
