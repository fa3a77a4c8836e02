"""EquivarianceHead reproduces the reference heads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from essl_aug import EquivarianceHead
from essl_aug.head import hidden_widths, pooled_features


def _layout(head: EquivarianceHead) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for m in head.layers:
        if isinstance(m, nn.Linear):
            out.append(("Linear", (m.in_features, m.out_features)))
        elif isinstance(m, nn.LayerNorm):
            out.append(("LayerNorm", tuple(m.normalized_shape)))
        else:
            out.append((type(m).__name__, ()))
    return out


def test_default_is_the_reference_cifar_head() -> None:
    # rdangovs/essl cifar10 predictor2: Linear(512, 2048), LN, ReLU, Linear(2048, 2048), LN, ReLU, Linear(2048, 4)
    assert _layout(EquivarianceHead(512, 4)) == [
        ("Linear", (512, 2048)),
        ("LayerNorm", (2048,)),
        ("ReLU", ()),
        ("Linear", (2048, 2048)),
        ("LayerNorm", (2048,)),
        ("ReLU", ()),
        ("Linear", (2048, 4)),
    ]


def test_reference_imagenet_head_has_a_narrow_layer_without_relu() -> None:
    head = EquivarianceHead(2048, 4, hidden=(2048, 2048, 128), activate_last_hidden=False)
    assert _layout(head)[-3:] == [("Linear", (2048, 128)), ("LayerNorm", (128,)), ("Linear", (128, 4))]
    assert sum(isinstance(m, nn.ReLU) for m in head.layers) == 2


def test_linear_head_and_batch_norm_variants() -> None:
    assert _layout(EquivarianceHead(16, 3, hidden=())) == [("Linear", (16, 3))]
    head = EquivarianceHead(16, 3, hidden=(8,), norm="batch")
    assert isinstance(head.layers[1], nn.BatchNorm1d)
    assert head(torch.rand(5, 16)).shape == (5, 3)


def test_trailing_dimensions_are_flattened() -> None:
    head = EquivarianceHead(8, 4, hidden=(6,))
    x = torch.rand(3, 8, 1, 1)
    assert torch.equal(head(x), head(x.flatten(1)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_features": 0, "num_classes": 4}, "in_features"),
        ({"in_features": 8, "num_classes": 0}, "num_classes"),
        ({"in_features": 8, "num_classes": 4, "norm": "group"}, "norm"),
        ({"in_features": 8, "num_classes": 4, "hidden": (0,)}, "hidden"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EquivarianceHead(**kwargs)


def test_a_regression_head_may_have_one_output() -> None:
    head = EquivarianceHead(8, 1, hidden=(16,))
    assert head(torch.rand(3, 8)).shape == (3, 1) and head.num_classes == 1


@pytest.mark.parametrize("hidden", [(0,), (8, -1), ("wide",), None])
def test_bad_hidden_widths_are_named(hidden: object) -> None:
    with pytest.raises(ValueError, match="`hidden` widths must be positive integers"):
        hidden_widths(hidden)  # type: ignore[arg-type]


def test_hidden_widths_are_ints() -> None:
    assert hidden_widths([64, 32]) == (64, 32) and hidden_widths(()) == ()


def test_wrong_feature_width_is_named() -> None:
    head = EquivarianceHead(8, 4, hidden=(6,))
    with pytest.raises(ValueError, match=r"gives 5 features per view but the head takes 8; set `in_features=5`"):
        head(torch.rand(3, 5))


def test_a_spatial_feature_map_is_not_flattened() -> None:
    head = EquivarianceHead(8, 4, hidden=(6,))
    with pytest.raises(ValueError, match=r"feature map of shape \(3, 2, 2, 2\).*pool it first"):
        head(torch.rand(3, 2, 2, 2))  # 2 * 2 * 2 = 8 "features": flattening would hide the mistake
    with pytest.raises(TypeError, match="tuple"):
        head((torch.rand(3, 8),))  # type: ignore[arg-type]


def test_pooled_features_accepts_pooled_maps_and_names_the_width_argument() -> None:
    features = torch.rand(3, 8, 1, 1)
    assert torch.equal(pooled_features(features), features.flatten(1))
    assert torch.equal(pooled_features(features[..., 0, 0], 8), features.flatten(1))
    with pytest.raises(ValueError, match=r"gives 8 features per view but the head takes 6; set `width=8`"):
        pooled_features(features, 6, "width")


@pytest.mark.parametrize(
    ("features", "error", "match"),
    [
        ((torch.rand(2, 8),), TypeError, r"returned a tuple, not one \(N, C\) tensor"),
        ([torch.rand(2, 8)], TypeError, "returned a list"),
        ("features", TypeError, "must return a .* tensor of pooled features, got str"),
        (torch.rand(8), ValueError, r"pooled features \(N, C\), got shape \(8,\)"),
        (torch.rand(2, 8, 2, 1), ValueError, r"feature map of shape \(2, 8, 2, 1\), not pooled features"),
    ],
)
def test_pooled_features_refuses_what_is_not_pooled_features(features: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        pooled_features(features)
