"""The cheaper E-SSL forms: E-SSL on a fraction of the batch (``ESSL(batch_fraction=...)``) and E-SSL on the SSL
views themselves (:class:`ESSLOnViews`, no extra view, no extra backbone pass): their views, labels, losses and
gradient paths against ``torch.rot90`` and a cross-entropy written here, and their config keys."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.toolkit.pretrain import PretrainConfig, pretrain, pretrain_loop
from benchmarks.toolkit.simclr import nt_xent
from essl_aug.config import ESSLConfig
from essl_aug.objectives import ESSL, ESSLOnViews, Objectives, StepInputs


class Recording(nn.Module):
    """A small backbone that keeps the batches it encoded."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x)
        return self.net(x)


def turned(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.rot90(img, int(k), (-2, -1)) for img, k in zip(x, labels, strict=True)])


@pytest.mark.parametrize(("fraction", "kept"), [(0.25, 2), (0.3, 3), (0.01, 1), (1.0, 8)])
def test_a_fraction_of_the_batch_gets_every_rotation(fraction: float, kept: int) -> None:
    x, backbone = torch.rand(8, 3, 8, 8), Recording()
    essl = ESSL("rotation", in_features=8, hidden=(16,), batch_fraction=fraction)
    out = essl(StepInputs(backbone=backbone, extra=x))
    (seen,) = backbone.seen
    labels = torch.arange(4).repeat_interleave(kept)
    assert torch.equal(seen, turned(x[:kept].repeat(4, 1, 1, 1), labels))  # the first ceil(f * B) images
    with torch.no_grad():
        ce = F.cross_entropy(essl.head(backbone.net(seen)), labels)
    torch.testing.assert_close(out.logs["ce"], ce)
    out.loss.backward()
    assert backbone.net[0].weight.grad.abs().sum() > 0 and all(p.grad is not None for p in essl.head.parameters())


def test_a_fraction_with_one_random_rotation_per_image() -> None:
    backbone = Recording()
    essl = ESSL("rotation", in_features=8, hidden=(16,), mode="random", balanced=True, batch_fraction=0.5)
    essl(StepInputs(backbone=backbone, extra=torch.rand(8, 3, 8, 8), generator=torch.Generator().manual_seed(0)))
    assert backbone.seen[0].shape == (4, 3, 8, 8)


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5, float("nan"), "half"])
def test_a_bad_fraction_names_the_argument(fraction: object) -> None:
    with pytest.raises((ValueError, TypeError), match="`batch_fraction`"):
        ESSL("rotation", in_features=8, batch_fraction=fraction)  # type: ignore[arg-type]


def test_on_views_turns_both_views_of_an_image_alike_and_predicts_it_from_their_features() -> None:
    v1, v2 = torch.rand(8, 3, 8, 8), torch.rand(8, 3, 8, 8)
    before = (v1.clone(), v2.clone())
    objective = ESSLOnViews("rotation", in_features=8, hidden=(16,), weight=0.5, balanced=True)
    g = torch.Generator().manual_seed(1)
    t1, t2 = objective.prepare_views([v1, v2], g)
    assert torch.equal(v1, before[0]) and torch.equal(v2, before[1])  # the caller's views untouched
    labels = objective.transform.sample_labels(8, "cpu", torch.Generator().manual_seed(1))
    assert torch.equal(torch.bincount(labels, minlength=4), torch.full((4,), 2))  # balanced: 2 of each
    assert torch.equal(t1, turned(v1, labels)) and torch.equal(t2, turned(v2, labels))  # one turn per image
    backbone = Recording()
    f1, f2 = backbone(t1), backbone(t2)
    out = objective(StepInputs(features=(f1, f2)))
    with torch.no_grad():
        ce = F.cross_entropy(objective.head(torch.cat([f1, f2])), labels.repeat(2))
    torch.testing.assert_close(out.logs["ce"], ce)
    torch.testing.assert_close(out.loss.detach(), 0.5 * ce)
    out.loss.backward()
    assert backbone.net[0].weight.grad.abs().sum() > 0  # through the SSL views' own pass: no other
    assert len(backbone.seen) == 2
    with pytest.raises(RuntimeError, match="call `prepare_views` on the SSL views"):
        objective(StepInputs(features=(f1, f2)))  # the labels serve one step


def test_on_views_errors() -> None:
    with pytest.raises(ValueError, match="must be a family"):
        ESSLOnViews("random_rotation", in_features=8)
    objective = ESSLOnViews("rotation", in_features=8, hidden=(16,))
    with pytest.raises(ValueError, match="share one non-empty batch size"):
        objective.prepare_views([torch.rand(4, 3, 8, 8), torch.rand(3, 3, 8, 8)])
    objective.prepare_views([torch.rand(4, 3, 8, 8)] * 2)
    with pytest.raises(ValueError, match="`features` are of 3 images but the views prepared this step were 4"):
        objective(StepInputs(features=(torch.rand(3, 8), torch.rand(3, 8))))
    with pytest.raises(ValueError, match="needs features"):
        objective(StepInputs(extra=torch.rand(4, 3, 8, 8)))


def test_objectives_prepare_the_views_in_order_and_leave_them_otherwise() -> None:
    views = [torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)]
    plain = Objectives({"essl": ESSL("rotation", in_features=8, hidden=(16,))})
    assert all(a is b for a, b in zip(plain.prepare_views(views), views, strict=True))
    both = Objectives({"on": ESSLOnViews("vflip", in_features=8, hidden=(16,)), "x": ESSL("rotation", in_features=8)})
    out = both.prepare_views(views, torch.Generator().manual_seed(0))
    labels = both.objectives["on"].transform.sample_labels(4, "cpu", torch.Generator().manual_seed(0))
    flipped = [torch.where(labels.view(-1, 1, 1, 1) == 1, v.flip(-2), v) for v in views]
    assert all(torch.equal(a, b) for a, b in zip(out, flipped, strict=True))


def test_the_config_keys() -> None:
    on_views = ESSLConfig.from_mapping({"source": "views", "hidden_dim": [16]}).build_objectives(8)
    assert on_views is not None and type(on_views.objectives["essl"]) is ESSLOnViews
    fraction = ESSLConfig.from_mapping({"batch_fraction": 0.25, "hidden_dim": [16]}).build_objectives(8)
    assert fraction is not None and fraction.objectives["essl"].batch_fraction == 0.25
    assert ESSLConfig.from_mapping({"batch_fraction": 0.25}).as_mapping()["batch_fraction"] == 0.25
    filled = ESSLConfig.from_mapping({"source": "views"}).as_mapping()  # what an adapter writes back, re-read
    assert filled["mode"] == "random" and ESSLConfig.from_mapping(filled).source == "views"
    for block in ({"source": "views", "mode": "all"}, {"source": "views", "batch_fraction": 0.5}):
        with pytest.raises(ValueError, match=r"essl\.source: views draws one element per image"):
            ESSLConfig.from_mapping(block)
    with pytest.raises(ValueError, match=r"essl\.batch_fraction"):
        ESSLConfig.from_mapping({"batch_fraction": 2})


def test_the_training_loop_encodes_the_turned_views_once() -> None:
    """The toolkit's loop with E-SSL on the views: per step the backbone encodes the two SSL views, turned alike,
    and nothing else; the E-SSL term is logged."""
    backbone, data = Recording(), torch.rand(8, 3, 8, 8)
    on_views = ESSLOnViews("rotation", in_features=8, hidden=(8,))
    objectives = Objectives({"essl": on_views})
    head = nn.Linear(8, 4)
    optimizer = torch.optim.SGD([*backbone.parameters(), *head.parameters(), *objectives.parameters()], lr=0.1)
    essl_gen = torch.Generator().manual_seed(5)
    history = pretrain_loop(
        backbone,
        head,
        data,
        views=lambda x, g: (x, x.flip(-1)),
        ssl_loss=nt_xent,
        optimizer=optimizer,
        lr=lambda step: 0.1,
        epochs=1,
        batch_size=8,
        generator=torch.Generator().manual_seed(0),
        objectives=objectives,
        order_generator=torch.Generator().manual_seed(1),
        essl_generator=essl_gen,
    )
    assert {"essl/ce", "essl/acc"} <= set(history[0])
    order = torch.randperm(8, generator=torch.Generator().manual_seed(1))
    labels = on_views.transform.sample_labels(8, "cpu", torch.Generator().manual_seed(5))
    x = data[order]
    assert len(backbone.seen) == 2
    assert torch.equal(backbone.seen[0], turned(x, labels)) and torch.equal(
        backbone.seen[1], turned(x.flip(-1), labels)
    )


def test_the_toolkit_recipe_takes_the_block() -> None:
    config = PretrainConfig(essl={"source": "views", "hidden_dim": [8]}, epochs=1, batch_size=8, width=4)
    assert {"essl/ce", "essl/acc"} <= set(pretrain(torch.rand(16, 3, 16, 16), config).history[0])


@pytest.mark.parametrize("block", [{"views": "simclr"}, {"seed": 1}])
def test_the_toolkit_refuses_the_keys_it_decides_itself(block: dict) -> None:
    with pytest.raises(ValueError, match=r"essl\.views / essl\.seed: the toolkit makes the SSL views itself"):
        PretrainConfig(essl=block)
