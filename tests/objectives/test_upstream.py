"""Each objective against a transcription of its upstream loss on a fixed batch: loss, gradients and targets.

The transcriptions below are written from the upstream repositories (file and lines cited at each), in plain torch:

- E-SSL, ``rdangovs/essl`` (commit 70b2cd0): ``cifar10/main.py`` ``rotate_images`` (lines 51-70), ``predictor2``
  (lines 145-152) and the loss ``args.lmbd * F.cross_entropy(predictor2(backbone(rotated)), labels)`` (lines
  292-297); ``imagenet/simclr/main.py``: the same ``rotate_images`` (lines 340-368, ``single=False``), the same loss
  (lines 114-126, ``args.rotation`` default 0.4, line 38) and another head, ``rotation_projector`` (lines 191-200:
  2048-2048-2048-128-4 with LayerNorm, no ReLU after the 128 layer).
- AugSelf, ``hankook/AugSelf`` (commit c131db6): ``trainers.py`` ``SSObjective.__call__`` (lines 14-49),
  ``models.py`` ``load_mlp`` / ``load_ss_predictor`` (lines 34-55), ``transforms.py`` ``RandomResizedCrop.forward``
  (lines 21-27, the crop tensor ``[i/H, j/W, h/H, w/W]``), ``_extract_w`` (lines 105-131) and ``extract_diff``
  (lines 134-184); ``datasets.py`` (lines 134-158: the crop on the PIL image, then flip, jitter, grayscale, blur,
  normalise on the batch).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug.head import EquivarianceHead
from essl_aug.objectives import ESSL, AugSelf, StepInputs
from essl_aug.objectives.augself import relative_target
from essl_aug.transforms import Params
from essl_aug.views import simclr

# -- E-SSL: rdangovs/essl ---------------------------------------------------------------------------------------------


def upstream_rotate_images(images: Tensor, wrong_direction: bool = False) -> tuple[Tensor, Tensor]:
    """``cifar10/main.py`` lines 51-70 (``imagenet/simclr/main.py`` lines 351-368 are the same), on the CPU.

    ``wrong_direction`` swaps the 90 and 270 degree blocks (the other rotation direction), to show the test can fail.
    """
    nimages = images.shape[0]
    n_rot_images = 4 * nimages
    rotated_images = torch.zeros([n_rot_images, images.shape[1], images.shape[2], images.shape[3]])
    rot_classes = torch.zeros([n_rot_images]).long()
    rotated_images[:nimages] = images
    quarter, three_quarters = images.flip(3).transpose(2, 3), images.transpose(2, 3).flip(3)
    if wrong_direction:
        quarter, three_quarters = three_quarters, quarter
    rotated_images[nimages : 2 * nimages] = quarter  # rotate 90
    rot_classes[nimages : 2 * nimages] = 1
    rotated_images[2 * nimages : 3 * nimages] = images.flip(3).flip(2)  # rotate 180
    rot_classes[2 * nimages : 3 * nimages] = 2
    rotated_images[3 * nimages : 4 * nimages] = three_quarters  # rotate 270
    rot_classes[3 * nimages : 4 * nimages] = 3
    return rotated_images, rot_classes


def upstream_predictor2() -> nn.Sequential:
    """``cifar10/main.py`` lines 145-152 (``args.loss == 'simclr'``)."""
    return nn.Sequential(
        nn.Linear(512, 2048),
        nn.LayerNorm(2048),
        nn.ReLU(inplace=True),
        nn.Linear(2048, 2048),
        nn.LayerNorm(2048),
        nn.ReLU(inplace=True),
        nn.Linear(2048, 4),
    )


def upstream_rotation_projector() -> nn.Sequential:
    """``imagenet/simclr/main.py`` lines 192-200."""
    return nn.Sequential(
        nn.Linear(2048, 2048),
        nn.LayerNorm(2048),
        nn.ReLU(inplace=True),
        nn.Linear(2048, 2048),
        nn.LayerNorm(2048),
        nn.ReLU(inplace=True),
        nn.Linear(2048, 128),
        nn.LayerNorm(128),
        nn.Linear(128, 4),
    )


def upstream_essl_loss(backbone: nn.Module, head: nn.Module, extra: Tensor, lmbd: float, **kwargs: Any) -> Tensor:
    """``cifar10/main.py`` lines 292-297 (``imagenet/simclr/main.py`` lines 116 and 123-126): the rotation term."""
    rotated_images, rotated_labels = upstream_rotate_images(extra, **kwargs)
    b = backbone(rotated_images)
    logits = head(b)
    rot_loss = F.cross_entropy(logits, rotated_labels)
    return lmbd * rot_loss


class Backbone(nn.Module):
    """Per image (no batch norm), and sensitive to the orientation (pooled to 2 x 2 positions before a Linear)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, width)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _random_norms(module: nn.Module) -> None:
    """Random affine weights of the normalisation layers, so that copying them matters."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.LayerNorm, nn.BatchNorm1d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


@pytest.mark.parametrize("variant", ["cifar10", "imagenet"])
def test_essl_matches_the_upstream_rotation_loss_and_gradients(variant: str) -> None:
    """ESSL("rotation") against the transcribed ``rotate_images`` + head + ``lmbd * cross_entropy``, same weights:
    the loss (float32, rtol 1e-5), the gradients of the backbone and the head (rtol 1e-4, atol 1e-6); the other
    rotation direction gives another loss."""
    torch.manual_seed(0)
    width = 512 if variant == "cifar10" else 2048
    up_head = upstream_predictor2() if variant == "cifar10" else upstream_rotation_projector()
    _random_norms(up_head)
    with torch.no_grad():  # logits of a few units, not near 0: the four turns get clearly different losses
        up_head[-1].weight.mul_(10.0)
    up_backbone = Backbone(width)
    extra = F.interpolate(torch.rand(6, 3, 2, 2), size=16) + 0.25 * torch.rand(6, 3, 16, 16)  # turns move the blocks
    lmbd = 0.4

    if variant == "cifar10":
        ours = ESSL("rotation", in_features=512, weight=lmbd)  # the reference head: 512-2048-2048-4, LayerNorm
    else:
        head = EquivarianceHead(2048, 4, hidden=(2048, 2048, 128), activate_last_hidden=False)
        ours = ESSL("rotation", head=head, weight=lmbd)
    assert isinstance(ours.head, EquivarianceHead)
    ours.head.layers.load_state_dict(up_head.state_dict())  # the same layers at the same indices
    our_backbone = Backbone(width)
    our_backbone.load_state_dict(up_backbone.state_dict())

    expected = upstream_essl_loss(up_backbone, up_head, extra, lmbd)
    got = ours(StepInputs(backbone=our_backbone, extra=extra))
    torch.testing.assert_close(got.loss, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.logs["ce"], expected.detach() / lmbd, rtol=1e-5, atol=1e-6)
    assert float(expected.detach()) > 0.1  # not a degenerate batch

    expected.backward()
    got.loss.backward()
    up_params = [*up_backbone.named_parameters(), *up_head.named_parameters()]
    our_params = [*our_backbone.parameters(), *ours.head.parameters()]
    for (name, a), b in zip(up_params, our_params, strict=True):
        assert a.grad is not None and b.grad is not None and float(a.grad.abs().max()) > 0, name
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)

    with torch.no_grad():  # the test can fail: the other rotation direction is another number
        wrong = upstream_essl_loss(up_backbone, up_head, extra, lmbd, wrong_direction=True)
    tolerance = 1e-5 * abs(float(expected.detach())) + 1e-6
    assert abs(float(wrong) - float(expected.detach())) > 100 * tolerance


# -- AugSelf: hankook/AugSelf -----------------------------------------------------------------------------------------


def upstream_load_mlp(n_in: int, n_hidden: int, n_out: int, num_layers: int = 3, last_bn: bool = True) -> nn.Sequential:
    """``models.py`` lines 34-46 (``reset_parameters`` is torch's default uniform init: left out)."""
    layers: list[nn.Module] = []
    for _ in range(num_layers - 1):
        layers.append(nn.Linear(n_in, n_hidden, bias=False))
        layers.append(nn.BatchNorm1d(n_hidden))
        layers.append(nn.ReLU())
        n_in = n_hidden
    layers.append(nn.Linear(n_hidden, n_out, bias=not last_bn))
    if last_bn:
        layers.append(nn.BatchNorm1d(n_out))
    return nn.Sequential(*layers)


#: ``trainers.py`` lines 17-24: (name, n_out, loss type) of each group.
UPSTREAM_GROUPS = [
    ("crop", 4, "regression"),
    ("color", 4, "regression"),
    ("flip", 1, "binary_classification"),
    ("blur", 1, "regression"),
    ("rot", 4, "classification"),
    ("sol", 1, "regression"),
]


def upstream_load_ss_predictor(n_in: int, weights: dict[str, float], n_hidden: int = 512) -> dict[str, nn.Sequential]:
    """``models.py`` lines 49-55."""
    return {
        name: upstream_load_mlp(n_in * 2, n_hidden, n_out, num_layers=3, last_bn=False)
        for name, n_out, _ in UPSTREAM_GROUPS
        if weights.get(name, -1) > 0
    }


def upstream_ss_objective(
    ss_predictor: dict[str, nn.Module],
    weights: dict[str, float],
    z1: Tensor,
    z2: Tensor,
    d1: dict[str, Tensor],
    d2: dict[str, Tensor],
    symmetric: bool = True,
) -> dict[str, Tensor]:
    """``trainers.py`` ``SSObjective.__call__``, lines 26-49."""
    if symmetric:
        z = torch.cat([torch.cat([z1, z2], 1), torch.cat([z2, z1], 1)], 0)
        d = {k: torch.cat([d1[k], d2[k]], 0) for k in d1}
    else:
        z = torch.cat([z1, z2], 1)
        d = d1
    losses: dict[str, Any] = {"total": 0}
    for name, _, loss_type in UPSTREAM_GROUPS:
        weight = weights.get(name, -1)
        if weight <= 0:
            continue
        p = ss_predictor[name](z)
        if loss_type == "regression":
            losses[name] = F.mse_loss(torch.tanh(p), d[name])
        elif loss_type == "binary_classification":
            losses[name] = F.binary_cross_entropy_with_logits(p, d[name])
        elif loss_type == "classification":
            losses[name] = F.cross_entropy(p, d[name])
        losses["total"] += losses[name] * weight
    return losses


class KorniaFlip:
    """``K.RandomHorizontalFlip`` after its forward: ``_params['batch_prob']``, the bool mask of flipped images."""

    def __init__(self, batch_prob: Tensor) -> None:
        self._params = {"batch_prob": batch_prob}


class KorniaGrayscale:
    """``K.RandomGrayscale`` (``extract_diff`` skips it)."""


class KorniaNormalize:
    """``K.Normalize`` (``extract_diff`` skips it)."""


class UpstreamColorJitter:
    """``transforms.py`` ``ColorJitter(K.ColorJitter)`` after its forward: the (min, max) ranges as attributes
    (kornia 0.4.1, the README's version: ``[1 - v, 1 + v]`` for brightness, contrast, saturation and ``[-h, h]`` for
    hue, torchvision's ranges, which AugSelf's ``factor - 1`` in ``_extract_w`` presumes), ``batch_prob``, and the
    factors of the applied images only (kornia draws the parameters of the applied rows)."""

    def __init__(self, ranges: list[tuple[float, float]], batch_prob: Tensor, factors: Tensor) -> None:
        self.brightness, self.contrast, self.saturation, self.hue = (torch.tensor(r) for r in ranges)
        applied = factors[batch_prob]
        self._params = {
            "batch_prob": batch_prob,
            "brightness_factor": applied[:, 0],
            "contrast_factor": applied[:, 1],
            "saturation_factor": applied[:, 2],
            "hue_factor": applied[:, 3],
        }


class UpstreamGaussianBlur:
    """``transforms.py`` ``GaussianBlur`` after its forward: ``batch_prob`` and the sigma of the applied images."""

    def __init__(self, batch_prob: Tensor, sigma: Tensor) -> None:
        self._params = {"batch_prob": batch_prob, "sigma": sigma[batch_prob]}


def upstream_extract_w(t: object) -> Tensor | None:
    """``transforms.py`` ``_extract_w``, lines 105-119 (the blur and colour jitter branches)."""
    if isinstance(t, UpstreamGaussianBlur):
        m = t._params["batch_prob"]
        w = torch.zeros(m.shape[0], 1)
        w[m] = t._params["sigma"].unsqueeze(-1)
        return w
    elif isinstance(t, UpstreamColorJitter):
        to_apply = t._params["batch_prob"]
        w = torch.zeros(to_apply.shape[0], 4)
        w[to_apply, 0] = (t._params["brightness_factor"] - 1) / (t.brightness[1] - t.brightness[0])
        w[to_apply, 1] = (t._params["contrast_factor"] - 1) / (t.contrast[1] - t.contrast[0])
        w[to_apply, 2] = (t._params["saturation_factor"] - 1) / (t.saturation[1] - t.saturation[0])
        w[to_apply, 3] = t._params["hue_factor"] / (t.hue[1] - t.hue[0])
        return w
    return None


def upstream_extract_diff(
    transforms1: list[object], transforms2: list[object], crop1: Tensor, crop2: Tensor, mirror_by_own_flip: bool = False
) -> dict[str, Tensor]:
    """``transforms.py`` ``extract_diff``, lines 134-184 (flip, grayscale, blur, normalise and colour branches).

    Upstream mirrors both centres by view 1's flip mask (lines 144-145); ``mirror_by_own_flip`` mirrors each centre
    by its own view's flip instead, to show that the test tells the two apart.
    """
    diff = {}
    for t1, t2 in zip(transforms1, transforms2, strict=True):
        if isinstance(t1, KorniaFlip):
            assert isinstance(t2, KorniaFlip)
            f1 = t1._params["batch_prob"]
            f2 = t2._params["batch_prob"]
            break
    center1 = crop1[:, :2] + crop1[:, 2:] / 2
    center2 = crop2[:, :2] + crop2[:, 2:] / 2
    center1[f1, 1] = 1 - center1[f1, 1]
    center2[f2 if mirror_by_own_flip else f1, 1] = 1 - center2[f2 if mirror_by_own_flip else f1, 1]
    diff["crop"] = torch.cat([center1 - center2, crop1[:, 2:] - crop2[:, 2:]], 1)
    diff["flip"] = (f1 == f2).float().unsqueeze(-1)
    for t1, t2 in zip(transforms1, transforms2, strict=True):
        if isinstance(t1, (KorniaFlip, KorniaGrayscale, KorniaNormalize)):
            pass
        elif isinstance(t1, (UpstreamGaussianBlur, UpstreamColorJitter)):
            w1, w2 = upstream_extract_w(t1), upstream_extract_w(t2)
            assert w1 is not None and w2 is not None
            diff["blur" if isinstance(t1, UpstreamGaussianBlur) else "color"] = w1 - w2
        else:
            raise Exception(f"Unknown transform: {t1.__class__!s}")
    return diff


def to_upstream(
    params: dict[str, Params], jitter_ranges: list[tuple[float, float]], swap_sides: bool = False
) -> tuple[list[object], Tensor]:
    """One view's parameters from our ``simclr()`` views in AugSelf's layout: the kornia transforms after their
    forward (flip, jitter, grayscale, blur, normalise, ``datasets.py`` lines 149-153) and the crop tensor of
    ``transforms.py`` line 27, ``[i/H, j/W, h/H, w/W]`` (top, left, height, width of the box over the input's height
    and width, computed in Python floats, then float32). ``jitter_ranges``: the (min, max) ranges of the jitter that
    made the views (``_extract_w`` divides by the transform's own ranges). ``swap_sides`` divides by ``[W, H]``
    instead, to show that the test tells the two apart."""
    crop = params["resized_crop"]
    size = crop.input_size.double().flip(1) if swap_sides else crop.input_size.double()
    crop_tensor = (crop.box.double() / size.repeat(1, 2)).float()
    jitter, blur = params["color_jitter"], params["gaussian_blur"]
    transforms = [
        KorniaFlip(params["hflip"].applied),
        UpstreamColorJitter(jitter_ranges, jitter.applied, jitter.factors),
        KorniaGrayscale(),
        UpstreamGaussianBlur(blur.applied, blur.sigma),
        KorniaNormalize(),
    ]
    return transforms, crop_tensor


def _simclr_params(batch: int, seed: int) -> tuple[dict[str, Params], dict[str, Params], list[tuple[float, float]]]:
    """Two views' parameters from ``simclr(32)`` on 40 x 48 images (not square: the heights and widths differ),
    and the ranges of its colour jitter."""
    recipe = simclr(32)
    p1, p2 = recipe.sample((batch, 3, 40, 48), generator=torch.Generator().manual_seed(seed))
    jitter = {aug.name: aug for aug in recipe.pipelines[0]}["color_jitter"]
    return p1, p2, list(jitter.ranges)


def test_augself_targets_match_the_upstream_extract_diff() -> None:
    """Our relative targets (crop, color, flip, blur) of ``simclr()`` views against the transcribed ``extract_diff``
    of the same parameters in AugSelf's layout, both orders (float32, atol 1e-6): the crop with both centres mirrored
    by view 1's flip (the upstream quirk), the colour normalised by the jitter's ranges; each can fail (mirroring by
    each view's own flip, dividing by the other side, normalising by AugSelf's own jitter (0.4, 0.4, 0.4, 0.1))."""
    p1, p2, ranges = _simclr_params(512, 0)
    ours = AugSelf(16, groups=("crop", "color", "flip", "blur"))
    (t1, w1), (t2, w2) = to_upstream(p1, ranges), to_upstream(p2, ranges)
    both_orders = [((p1, p2), upstream_extract_diff(t1, t2, w1, w2)), ((p2, p1), upstream_extract_diff(t2, t1, w2, w1))]
    for (a, b), up in both_orders:
        for group, aug in ours.groups.items():
            target = relative_target(aug, a, b)
            expected = up[group]
            if group == "flip":  # upstream (B, 1) floats for the BCE; ours (B,) class indices, 1 where they agree
                target = target.float().unsqueeze(-1)
            torch.testing.assert_close(target, expected, rtol=0, atol=1e-6, msg=group)

    assert abs(ranges[0][1] - ranges[0][0] - 1.6) < 1e-6  # SimCLR's strength: the colour targets are (f - 1) / 1.6
    crop, color = ours.groups["crop"], ours.groups["color"]
    target = relative_target(crop, p1, p2)
    differ = p1["hflip"].applied != p2["hflip"].applied
    assert 100 < int(differ.sum()) < 412
    own_flip = upstream_extract_diff(t1, t2, w1, w2, mirror_by_own_flip=True)["crop"]
    apart = (target[differ, 1] - own_flip[differ, 1]).abs()  # equal only where view 2's centre is at 0.5
    assert float(apart.max()) > 0.2 and float((apart > 1e-3).float().mean()) > 0.9
    torch.testing.assert_close(target[~differ], own_flip[~differ], rtol=0, atol=1e-6)
    sides_swapped = [to_upstream(p, ranges, swap_sides=True)[1] for p in (p1, p2)]
    assert float((target - upstream_extract_diff(t1, t2, *sides_swapped)["crop"]).abs().max()) > 0.05
    augselfs_own = [(0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1)]
    half = upstream_extract_diff(to_upstream(p1, augselfs_own)[0], to_upstream(p2, augselfs_own)[0], w1, w2)["color"]
    assert float((relative_target(color, p1, p2) - half).abs().max()) > 0.1


def test_augself_matches_the_upstream_loss_and_gradients() -> None:
    """AugSelf (crop, color, flip, blur; group weights) against the transcribed ``SSObjective`` with
    ``load_ss_predictor`` heads (same weights; our hidden Linear biases random, cancelled by BatchNorm in training)
    and the transcribed ``extract_diff`` targets of the same ``simclr()`` parameters: the loss and each group's
    (float32, rtol 1e-5), the gradients w.r.t. both views' features and the heads (rtol 1e-4, atol 1e-6); the views
    swapped give another loss."""
    torch.manual_seed(0)
    batch, dim = 8, 32
    p1, p2, ranges = _simclr_params(batch, 1)
    weights = {"crop": 0.5, "color": 0.5, "flip": 0.25, "blur": 0.75}
    up_heads = upstream_load_ss_predictor(dim, weights)
    assert list(up_heads) == list(weights)
    ours = AugSelf(dim, groups=tuple(weights), group_weights=weights)
    for name, up in up_heads.items():
        _random_norms(up)
        layers = ours.heads[name].layers
        assert len(layers) == len(up)
        with torch.no_grad():
            for mine, theirs in zip(layers, up, strict=True):
                if isinstance(theirs, nn.Linear):
                    mine.weight.copy_(theirs.weight)
                    if theirs.bias is not None:
                        mine.bias.copy_(theirs.bias)
                    else:
                        mine.bias.uniform_(-1.0, 1.0)  # AugSelf has none: BatchNorm cancels it in training
                elif isinstance(theirs, nn.BatchNorm1d):
                    mine.load_state_dict(theirs.state_dict())

    features = torch.randn(batch, dim), torch.randn(batch, dim)
    z1, z2 = (f.clone().requires_grad_() for f in features)
    f1, f2 = (f.clone().requires_grad_() for f in features)
    (t1, w1), (t2, w2) = to_upstream(p1, ranges), to_upstream(p2, ranges)
    d1, d2 = upstream_extract_diff(t1, t2, w1, w2), upstream_extract_diff(t2, t1, w2, w1)
    expected = upstream_ss_objective(up_heads, weights, z1, z2, d1, d2)
    got = ours(StepInputs(features=(f1, f2), params=(p1, p2)))
    torch.testing.assert_close(got.loss, expected["total"], rtol=1e-5, atol=1e-6)
    for group in weights:
        torch.testing.assert_close(got.logs[group], expected[group].detach(), rtol=1e-5, atol=1e-6, msg=group)
        assert float(expected[group].detach()) > 1e-3, group  # every group contributes

    expected["total"].backward()
    got.loss.backward()
    for a, b in ((z1, f1), (z2, f2)):
        assert a.grad is not None and b.grad is not None and float(a.grad.abs().max()) > 0
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6)
    for name, up in up_heads.items():
        for mine, theirs in zip(ours.heads[name].layers, up, strict=True):
            for key, theirs_param in theirs.named_parameters():
                mine_param = getattr(mine, key)
                assert theirs_param.grad is not None and mine_param.grad is not None
                torch.testing.assert_close(mine_param.grad, theirs_param.grad, rtol=1e-4, atol=1e-6, msg=name)
            if isinstance(theirs, nn.Linear) and theirs.bias is None:  # BatchNorm cancels the bias: no gradient
                torch.testing.assert_close(mine.bias.grad, torch.zeros_like(mine.bias), rtol=0, atol=1e-6)

    with torch.no_grad():  # the test can fail: the two views swapped are another number
        swapped = upstream_ss_objective(up_heads, weights, z2, z1, d1, d2)["total"]
    tolerance = 1e-5 * abs(float(expected["total"].detach())) + 1e-6
    assert abs(float(swapped) - float(expected["total"].detach())) > 100 * tolerance
