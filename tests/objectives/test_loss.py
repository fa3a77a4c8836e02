"""EquivarianceLoss, the public face of the paper's E-SSL: ``essl(backbone, x)``, ``from_features``, ``views``, and
``essl(StepInputs)`` as the objective; ``equivariance_loss`` on logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from essl_aug import EquivarianceHead, EquivarianceLoss, EquivariantTransform, equivariance_loss
from essl_aug._validation import LABEL_DTYPES
from essl_aug.loss import EquivarianceOutput, check_weight
from essl_aug.objectives import ESSL, ObjectiveOutput, Objectives, StepInputs


def _backbone(width: int = 8) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def test_loss_is_weighted_cross_entropy_and_accuracy_counts_hits() -> None:
    torch.manual_seed(0)
    logits = torch.randn(10, 4, requires_grad=True)
    labels = torch.randint(4, (10,))
    out = equivariance_loss(logits, labels, weight=0.4)
    ce = F.cross_entropy(logits, labels)
    assert torch.allclose(out.loss, 0.4 * ce)
    assert torch.allclose(out.cross_entropy, ce)
    assert not out.cross_entropy.requires_grad and not out.accuracy.requires_grad
    expected = sum(int(logits[i].argmax() == labels[i]) for i in range(10)) / 10
    assert out.accuracy.item() == pytest.approx(expected)
    out.loss.backward()
    assert logits.grad is not None


def test_low_precision_logits_give_a_float32_loss() -> None:
    logits = torch.randn(6, 4).to(torch.bfloat16)
    labels = torch.randint(4, (6,))
    out = equivariance_loss(logits, labels)
    assert out.loss.dtype == torch.float32
    assert torch.allclose(out.loss, F.cross_entropy(logits.float(), labels))


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [(torch.rand(4), torch.zeros(4, dtype=torch.long), "logits"), (torch.rand(4, 3), torch.zeros(3).long(), "labels")],
)
def test_bad_shapes_are_named(logits: torch.Tensor, labels: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        equivariance_loss(logits, labels)


def test_branch_equals_manual_composition() -> None:
    torch.manual_seed(0)
    backbone = _backbone()
    essl = EquivarianceLoss("rotation", in_features=8, hidden=(16,), weight=0.5)
    x = torch.rand(3, 3, 12, 12)
    out = essl(backbone, x)
    assert isinstance(out, EquivarianceOutput)
    views = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
    labels = torch.arange(4).repeat_interleave(3)
    manual = F.cross_entropy(essl.head(backbone(views)), labels)
    assert torch.allclose(out.loss, 0.5 * manual, atol=1e-6)
    assert torch.allclose(out.cross_entropy, manual, atol=1e-6)
    assert essl.head.num_classes == 4 and essl.transform.mode == "all"


def test_views_are_the_block_layout_and_from_features_matches_forward() -> None:
    torch.manual_seed(0)
    backbone = _backbone()
    essl = EquivarianceLoss("rotation", head=EquivarianceHead(8, 4, hidden=(16,)))
    x = torch.rand(2, 3, 8, 8)
    views, labels = essl.views(x)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(views[2:4], torch.rot90(x, 1, dims=(-2, -1)))
    out, again = essl(backbone, x), essl.from_features(backbone(views), labels)
    assert isinstance(again, EquivarianceOutput)
    assert torch.equal(out.loss, again.loss) and torch.equal(out.accuracy, again.accuracy)


def test_given_step_inputs_it_is_the_objective() -> None:
    """``essl(StepInputs(...))`` returns the objective's output (in an ``Objectives`` too): the same loss as
    ``essl(backbone, x)``, logs ``ce`` and ``acc``."""
    torch.manual_seed(0)
    backbone = _backbone()
    essl = EquivarianceLoss("rotation", in_features=8, hidden=(16,), weight=0.3)
    assert isinstance(essl, ESSL) and essl.requires == {"backbone", "extra"}
    x = torch.rand(3, 3, 8, 8)
    face = essl(backbone, x)
    out = essl(StepInputs(backbone=backbone, extra=x))
    assert isinstance(out, ObjectiveOutput) and set(out.logs) == {"ce", "acc"}
    assert torch.equal(out.loss, face.loss)
    assert torch.equal(out.logs["ce"], face.cross_entropy) and torch.equal(out.logs["acc"], face.accuracy)
    both = Objectives({"essl": essl})(StepInputs(backbone=backbone, extra=x))
    assert sorted(both.logs) == ["essl/acc", "essl/ce", "essl/loss"] and torch.equal(both.loss, face.loss)
    with pytest.raises(ValueError, match=r"EquivarianceLoss needs backbone in its StepInputs \(it has extra\)"):
        essl(StepInputs(extra=x))
    with pytest.raises(TypeError, match=r"takes \(backbone, x\)"):
        essl(backbone)


def test_gradients_reach_backbone_and_head_but_not_the_view_source() -> None:
    torch.manual_seed(0)
    backbone = _backbone()
    essl = EquivarianceLoss(EquivariantTransform(["rotation", "vflip"], mode="random"), in_features=8, hidden=(16,))
    x = torch.rand(4, 3, 8, 8, requires_grad=True)
    essl(backbone, x * 2).loss.backward()
    assert x.grad is None
    assert backbone[0].weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in essl.head.parameters())
    assert essl.head.num_classes == 8


def test_weight_zero_gives_no_gradient_to_the_backbone() -> None:
    backbone = _backbone()
    out = EquivarianceLoss("rotation", in_features=8, hidden=(4,), weight=0)(backbone, torch.rand(2, 3, 8, 8))
    assert float(out.loss.detach()) == 0 and float(out.cross_entropy) > 0
    out.loss.backward()
    assert all(p.grad is None for p in backbone.parameters())


def test_channels_last_backbone_and_bf16_autocast() -> None:
    torch.manual_seed(0)
    backbone = _backbone().to(memory_format=torch.channels_last)
    essl = EquivarianceLoss("vflip", in_features=8, hidden=(16,))
    x = torch.rand(4, 3, 8, 8).to(memory_format=torch.channels_last)
    reference = essl(backbone, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = essl(backbone, x)
    assert out.loss.dtype == torch.float32
    assert torch.isfinite(out.loss)
    assert abs(out.cross_entropy.item() - reference.cross_entropy.item()) < 0.05
    out.loss.backward()
    assert backbone[0].weight.grad is not None


def test_head_xor_in_features() -> None:
    with pytest.raises(ValueError, match="in_features"):
        EquivarianceLoss("rotation")
    with pytest.raises(ValueError, match="in_features"):
        EquivarianceLoss("rotation", in_features=8, head=EquivarianceHead(8, 4))


def _corner_images(n: int, generator: torch.Generator) -> torch.Tensor:
    """Noise with a bright top-left corner: which quarter turn was applied is visible, and learnable."""
    x = 0.3 * torch.rand(n, 3, 8, 8, generator=generator)
    x[..., :3, :3] = 1.0
    return x


def test_head_beats_chance_on_a_learnable_toy(one_thread: None) -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16))  # keeps where the corner is
    essl = EquivarianceLoss("rotation", in_features=16, hidden=(32,), weight=1.0)
    optimizer = torch.optim.Adam([*backbone.parameters(), *essl.parameters()], lr=1e-2)
    for _ in range(60):
        out = essl(backbone, _corner_images(16, g))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    with torch.no_grad():
        test = _corner_images(64, g)
        out = essl(backbone, test)
        views, labels = essl.views(test)
        hits = essl.head(backbone(views)).argmax(dim=1) == labels
    assert float(out.accuracy) > 0.9  # chance is 0.25
    assert torch.equal(out.accuracy, hits.float().mean())


@pytest.mark.parametrize("weight", [-0.1, float("nan"), float("inf"), True, "0.4", None])
def test_weight_must_be_a_finite_number_at_least_zero(weight: object) -> None:
    with pytest.raises(ValueError, match="`weight` must be a finite number >= 0"):
        EquivarianceLoss("rotation", in_features=8, weight=weight)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`weight`"):
        check_weight(weight)  # type: ignore[arg-type]


def test_weight_zero_and_tensor_weights_are_accepted() -> None:
    assert EquivarianceLoss("rotation", in_features=8, hidden=(), weight=0).weight == 0.0
    assert check_weight(torch.tensor(0.25)) == 0.25  # type: ignore[arg-type]


def test_other_settings_are_checked_by_the_core() -> None:
    with pytest.raises(ValueError, match="mode"):
        EquivarianceLoss("rotation", in_features=8, mode="every")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown family name 'spin'"):
        EquivarianceLoss("spin", in_features=8)
    with pytest.raises(ValueError, match="hidden"):
        EquivarianceLoss("rotation", in_features=8, hidden=(0,))
    with pytest.raises(TypeError, match="head"):
        EquivarianceLoss("rotation", head=lambda f: f)  # type: ignore[arg-type]
    essl = EquivarianceLoss(["rotation", "vflip"], in_features=8, hidden=(4,), weight=0.25)
    assert essl.num_classes == 8 and "weight=0.25" in repr(essl)
    with pytest.raises(TypeError, match="`backbone` must be a callable"):
        essl(3, torch.rand(2, 3, 8, 8))  # type: ignore[arg-type]


# --- wrong heads, feature maps, tuples, empty batches: a clear error, never a silent result or a NaN -------------


@pytest.mark.parametrize("outputs", [3, 5])
def test_a_head_with_another_number_of_outputs_is_refused(outputs: int) -> None:
    backbone = _backbone()
    essl = EquivarianceLoss("rotation", head=nn.Linear(8, outputs))  # 4 classes
    with pytest.raises(ValueError, match=rf"`head` returned \(8, {outputs}\) per batch but .* target has 4 outputs"):
        essl(backbone, torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"`head` has 3 outputs but the transformation's target has 4; build it"):
        EquivarianceLoss("rotation", head=EquivarianceHead(8, 3))  # known at construction


def test_wrong_in_features_is_named_not_a_matmul_error() -> None:
    essl = EquivarianceLoss("rotation", in_features=16, hidden=(4,))
    with pytest.raises(ValueError, match=r"gives 8 features per view but the head takes 16; set `in_features=8`"):
        essl(_backbone(8), torch.rand(2, 3, 8, 8))
    head = EquivarianceHead(16, 4, hidden=(4,))  # a head given by the caller: its own argument is named
    with pytest.raises(ValueError, match=r"set `in_features=8`"):
        EquivarianceLoss("rotation", head=head)(_backbone(8), torch.rand(2, 3, 8, 8))


def test_a_spatial_feature_map_is_refused_a_pooled_one_accepted() -> None:
    unpooled = nn.Conv2d(3, 8, 3, padding=1)  # (N, 8, 8, 8): flattening would give 512 "features"
    essl = EquivarianceLoss("rotation", in_features=8, hidden=(4,))
    with pytest.raises(ValueError, match=r"feature map of shape \(8, 8, 8, 8\).*nn\.AdaptiveAvgPool2d\(1\)"):
        essl(unpooled, torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="feature map"):  # also when the map's size happens to match in_features
        EquivarianceLoss("rotation", in_features=8 * 64, hidden=(4,))(unpooled, torch.rand(2, 3, 8, 8))
    pooled = nn.Sequential(unpooled, nn.AdaptiveAvgPool2d(1))  # (N, 8, 1, 1): accepted, as (N, 8)
    x = torch.rand(2, 3, 8, 8)
    views, labels = essl.views(x)
    torch.testing.assert_close(essl(pooled, x).loss, essl.from_features(pooled(views).flatten(1), labels).loss)


def test_a_tuple_from_the_backbone_is_refused_with_the_fix() -> None:
    essl = EquivarianceLoss("rotation", in_features=8, hidden=(4,))
    backbone = _backbone()
    with pytest.raises(TypeError, match=r"returned a tuple.*lambda x: backbone\(x\)\[0\]"):
        essl(lambda v: (backbone(v), None), torch.rand(2, 3, 8, 8))
    with pytest.raises(TypeError, match="`logits` must be a"):
        equivariance_loss((torch.rand(2, 4),), torch.zeros(2, dtype=torch.long))  # type: ignore[arg-type]


def test_an_empty_batch_or_one_image_is_refused_naming_x() -> None:
    essl = EquivarianceLoss("rotation", in_features=8, hidden=(4,))
    with pytest.raises(ValueError, match=r"`x` is an empty batch \(B = 0\)"):
        essl(_backbone(), torch.rand(0, 3, 8, 8))
    with pytest.raises(ValueError, match=r"`x` must be shaped \(B, C, H, W\)"):
        essl(_backbone(), torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match=r"`logits` has no views \(N = 0\)"):
        equivariance_loss(torch.rand(0, 4), torch.zeros(0, dtype=torch.long))


# --- label dtypes: the one rule of the transforms (int64, int32) ------------------------------------------------


def test_int32_labels_are_accepted_like_int64() -> None:
    logits = torch.randn(6, 4)
    labels = torch.tensor([0, 1, 2, 3, 1, 0])
    want = equivariance_loss(logits, labels, weight=0.5)
    got = equivariance_loss(logits, labels.int(), weight=0.5)
    assert torch.equal(got.loss, want.loss) and torch.equal(got.accuracy, want.accuracy)
    for dtype in LABEL_DTYPES:  # the transforms' rule, one list
        assert torch.equal(equivariance_loss(logits, labels.to(dtype), weight=0.5).loss, want.loss)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.float32, torch.bool])
def test_other_label_dtypes_are_named_with_the_fix(dtype: torch.dtype) -> None:
    with pytest.raises(TypeError, match=r"`labels` must have an integer dtype int64 or int32.*labels\.long\(\)"):
        equivariance_loss(torch.randn(2, 4), torch.zeros(2, dtype=dtype))
