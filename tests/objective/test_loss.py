"""The E-SSL objective: weighted cross-entropy, accuracy, and the whole branch in EquivarianceLoss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from essl_aug import EquivarianceHead, EquivarianceLoss, EquivariantTransform, equivariance_loss


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
    views = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
    labels = torch.arange(4).repeat_interleave(3)
    manual = 0.5 * F.cross_entropy(essl.head(backbone(views)), labels)
    assert torch.allclose(out.loss, manual, atol=1e-6)
    assert essl.head.num_classes == 4 and essl.transform.mode == "all"


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


def test_from_features_matches_forward() -> None:
    torch.manual_seed(0)
    backbone = _backbone()
    essl = EquivarianceLoss("rotation", head=EquivarianceHead(8, 4, hidden=(16,)))
    x = torch.rand(2, 3, 8, 8)
    views, labels = essl.transform(x)
    assert torch.allclose(essl(backbone, x).loss, essl.from_features(backbone(views), labels).loss)


def test_head_xor_in_features() -> None:
    with pytest.raises(ValueError, match="in_features"):
        EquivarianceLoss("rotation")
    with pytest.raises(ValueError, match="in_features"):
        EquivarianceLoss("rotation", in_features=8, head=EquivarianceHead(8, 4))
