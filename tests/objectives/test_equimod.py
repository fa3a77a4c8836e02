"""EquiMod: the upstream modules and loss on a fixed batch (forward and gradients), the parameter encoding, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from essl_aug.objectives import EquiMod, StepInputs
from essl_aug.objectives.equimod import STATISTICS, equimod_parameters, equimod_statistics
from essl_aug.transforms import BlurParams, ColorJitterParams, CropParams, LabelParams, Params
from essl_aug.views import simclr

# -- an independent transcription of ADevillers/EquiMod (branch SimCLR+EquiMod) -----------------------------------


def upstream_heads(h_dim: int, y_dim: int, p_dim: int, eq_layers: str, t_layers: str) -> dict[str, nn.Sequential]:
    """``src/model.py`` ``EquiMod.__init__``: ``proj_head_eq``, ``proj_head_t`` and ``predictor_eq`` (lines 40-85),
    with ``predictor_eq_layers="one"`` (one Linear, then BN(affine=False))."""
    layers: list[nn.Module] = []
    last = h_dim
    for n in (int(x) for x in eq_layers.split("-")[:-1]):
        layers += [nn.Linear(last, n, bias=False), nn.BatchNorm1d(n), nn.ReLU()]
        last = n
    layers += [nn.Linear(last, y_dim, bias=False), nn.BatchNorm1d(y_dim, affine=False)]
    proj_head_eq = nn.Sequential(*layers)
    pp_dim = int(t_layers.split("-")[-1])
    proj_head_t = nn.Sequential(nn.Linear(p_dim, pp_dim, bias=False), nn.BatchNorm1d(pp_dim))
    predictor_eq = nn.Sequential(nn.Linear(y_dim + pp_dim, y_dim, bias=False), nn.BatchNorm1d(y_dim, affine=False))
    return {"proj_head_eq": proj_head_eq, "proj_head_t": proj_head_t, "predictor_eq": predictor_eq}


def upstream_ntxent(z: Tensor, temperature: float, zeta: float = 1e8) -> Tensor:
    """``src/loss.py`` ``NTXentLoss.forward`` (lines 15-27): ``z = cat(z_i, z_j)``."""
    n = z.shape[0] // 2
    z_norm = nn.functional.normalize(z)
    m_sim = z_norm @ z_norm.t() / temperature - zeta * torch.eye(2 * n)
    i_pos = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return nn.functional.cross_entropy(m_sim, i_pos)


def upstream_step(
    backbone: nn.Module,
    heads: dict[str, nn.Sequential],
    x0: Tensor,
    x1: Tensor,
    x2: Tensor,
    p: Tensor,
    p_mean: Tensor,
    p_std: Tensor,
) -> Tensor:
    """``src/main.py`` ``train_repr`` (lines 112-140) and ``EquiMod.forward`` (model.py lines 87-99): loss_eq_y."""
    h = backbone(torch.cat([x0, x1, x2]))
    p = (p - p_mean) / p_std
    y = heads["proj_head_eq"](h)
    y0 = torch.cat([y[: y.shape[0] // 3], y[: y.shape[0] // 3]])
    yt = y[y.shape[0] // 3 :]
    yt_hat = heads["predictor_eq"](torch.cat([y0, heads["proj_head_t"](p)], dim=1))
    return upstream_ntxent(torch.cat([yt, yt_hat]), 0.2)


def upstream_vector(
    i: float, j: float, h: float, w: float, flip: int, jitter: int, fn_idx: list[int], factors: list[float], gray: int
) -> list[float]:
    """``src/transforms.py``: ``ParamRandomResizedCrop.apply`` then ``ParamColorJitter.apply`` (ParamCompose cat)."""
    return [i, j, h, w, flip, jitter, *fn_idx, *factors, gray]


# -- hand-made parameters ------------------------------------------------------------------------------------------

ROWS = [  # (box, flip, jitter, order, factors, gray)
    ((1.0, 2.0, 20.0, 24.0), 1, 1, [2, 0, 3, 1], [1.2, 0.7, 1.3, -0.05], 0),
    ((0.0, 0.0, 32.0, 32.0), 0, 0, [0, 1, 2, 3], [1.0, 1.0, 1.0, 0.0], 1),
    ((5.0, 3.0, 14.0, 12.0), 0, 1, [3, 2, 1, 0], [0.8, 1.1, 0.9, 0.08], 1),
    ((7.0, 9.0, 18.0, 16.0), 1, 1, [1, 3, 0, 2], [1.35, 1.25, 0.65, 0.01], 0),
]


def view_params(rows: list) -> dict[str, Params]:
    t = torch.tensor
    applied = t([r[2] == 1 for r in rows])
    return {
        "resized_crop": CropParams(
            applied=t([True] * len(rows)), box=t([r[0] for r in rows]), input_size=t([[32.0, 32.0]] * len(rows))
        ),
        "hflip": LabelParams.of(t([r[1] for r in rows])),
        "color_jitter": ColorJitterParams(
            applied=applied, factors=t([r[4] for r in rows]), order=t([r[3] for r in rows])
        ),
        "grayscale": LabelParams.of(t([r[5] for r in rows])),
    }


def upstream_params(rows: list) -> Tensor:
    return torch.tensor([upstream_vector(*r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows])


class Backbone(nn.Module):
    """Per-image (no batch norm): one pass on 3B images is three passes on B."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def test_equimod_matches_the_upstream_loss_and_gradients() -> None:
    """In float64, so that the only differences are the order of the sums (one backbone pass or three)."""
    torch.manual_seed(0)
    rows2 = [ROWS[3], ROWS[2], ROWS[0], ROWS[1]]
    p1, p2 = view_params(ROWS), view_params(rows2)
    x0, x1, x2 = (torch.rand(4, 3, 12, 12, dtype=torch.float64) for _ in range(3))
    mean, std = STATISTICS[("cifar10", 15)]
    ours = EquiMod(10, dim=8, hidden=(16, 12), param_dim=6, statistics="cifar10")
    up_backbone = Backbone()
    heads = upstream_heads(10, 8, 15, "16-12-", "6")
    with torch.no_grad():  # random BN affine weights so that they matter
        for m in [*heads["proj_head_eq"], *heads["proj_head_t"]]:
            if isinstance(m, nn.BatchNorm1d) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    for head in heads.values():
        head.double()
    ours.double()
    up_backbone.double()
    ours.projector.load_state_dict(heads["proj_head_eq"].state_dict())
    ours.embed.load_state_dict(heads["proj_head_t"].state_dict())
    ours.predictor.load_state_dict(heads["predictor_eq"].state_dict())
    our_backbone = Backbone().double()
    our_backbone.load_state_dict(up_backbone.state_dict())

    p_up = torch.cat([upstream_params(ROWS), upstream_params(rows2)]).double()
    p_mean, p_std = (
        torch.tensor([mean], dtype=torch.float32).double(),
        torch.tensor([std], dtype=torch.float32).double(),
    )
    expected = upstream_step(up_backbone, heads, x0, x1, x2, p_up, p_mean, p_std)
    f1, f2 = our_backbone(x1), our_backbone(x2)
    got = ours(StepInputs(backbone=our_backbone, images=x0, features=(f1, f2), params=(p1, p2)))
    torch.testing.assert_close(got.loss, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got.logs["infonce"], expected.detach(), rtol=1e-10, atol=1e-12)
    assert float(expected.detach()) > 0.5  # not a degenerate batch

    expected.backward()
    got.loss.backward()
    for (name, a), b in zip(up_backbone.named_parameters(), our_backbone.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None and float(a.grad.abs().max()) > 0, name
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-9, atol=1e-12, msg=name)
    up_heads = [
        *heads["proj_head_eq"].parameters(),
        *heads["proj_head_t"].parameters(),
        *heads["predictor_eq"].parameters(),
    ]
    our_heads = [*ours.projector.parameters(), *ours.embed.parameters(), *ours.predictor.parameters()]
    for a, b in zip(up_heads, our_heads, strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-9, atol=1e-12)


def test_the_modules_have_equimods_shapes() -> None:
    m = EquiMod(512)
    linears = [(x.in_features, x.out_features, x.bias is None) for x in m.modules() if isinstance(x, nn.Linear)]
    assert linears == [(512, 2048, True), (2048, 2048, True), (2048, 128, True), (15, 128, True), (256, 128, True)]
    bns = [(b.num_features, b.affine) for b in m.modules() if isinstance(b, nn.BatchNorm1d)]
    assert bns == [(2048, True), (2048, True), (128, False), (128, True), (128, False)]


# -- the parameter encoding ------------------------------------------------------------------------------------------


def test_the_encoding_follows_equimods_layout_by_hand() -> None:
    p = view_params(ROWS[:2])
    got = equimod_parameters(p)
    assert got.dtype == torch.float32
    expected = [
        [1, 2, 20, 24, 1, 1, 2, 0, 3, 1, 1.2, 0.7, 1.3, -0.05, 0],
        [0, 0, 32, 32, 0, 0, 0, 1, 2, 3, 1, 1, 1, 0, 1],
    ]
    torch.testing.assert_close(got, torch.tensor(expected))
    p["gaussian_blur"] = BlurParams(applied=torch.tensor([True, False]), sigma=torch.tensor([1.5, 0.0]))
    p["solarize"] = Params(applied=torch.tensor([False, True]))
    assert equimod_parameters(p, blur=True).tolist()[0][15:] == pytest.approx([1, 1.5])
    assert equimod_parameters(p, blur=True, solarize=True).tolist()[1][15:] == [0, 0, 1]


def test_absent_groups_get_equimods_not_applied_values() -> None:
    crop = view_params(ROWS[:1])["resized_crop"]
    got = equimod_parameters({"resized_crop": crop}, blur=True, solarize=True)
    assert got.tolist() == [[1, 2, 20, 24, 0, 0, 0, 1, 2, 3, 1, 1, 1, 0, 0, 0, 0, 0]]


def test_the_views_statistics_match_equimods_cifar_constants() -> None:
    """EquiMod's CIFAR-10 pipeline (scale (0.2, 1), jitter (0.4, 0.4, 0.4, 0.1) p 0.8, gray 0.2, no blur) drawn by
    this library's views: the estimated statistics are EquiMod's constants (src/main.py) within sampling error."""
    mean, std = equimod_statistics(simclr(32, scale=(0.2, 1.0), jitter_strength=0.5, blur=0.0), 32, samples=32768)
    up_mean, up_std = (torch.tensor(v) for v in STATISTICS[("cifar10", 15)])
    assert float(((mean - up_mean) / up_std).abs().max()) < 0.03
    assert float(((std - up_std) / up_std).abs().max()) < 0.03


def test_a_constant_column_is_centred_to_zero() -> None:
    from benchmarks.toolkit.demo import fashion_view
    from essl_aug.views import TwoViews

    mean, std = equimod_statistics(TwoViews(fashion_view()), 28, samples=256)
    assert std[12] == 1 and mean[12] == 1  # saturation: built at 0 on 1-channel views, always the identity
    assert std[14] == 1 and mean[14] == 0  # no grayscale


# -- weights, inputs, errors -----------------------------------------------------------------------------------------


def _inputs(backbone: nn.Module, **kw: object) -> StepInputs:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 16, generator=g)
    views, params = simclr(12, normalize=None)(x, g)
    base = {
        "backbone": backbone,
        "images": x,
        "features": (backbone(views[0]), backbone(views[1])),
        "params": tuple(params),
    }
    return StepInputs(**{**base, **kw})  # type: ignore[arg-type]


def test_weight_zero_leaves_the_ssl_loss_and_its_gradients_unchanged() -> None:
    torch.manual_seed(0)
    net = Backbone()
    inputs = _inputs(net)
    out = EquiMod(10, weight=0.0, hidden=(8,), dim=4, param_dim=4)(inputs)
    assert out.loss.item() == 0 and math.copysign(1, out.loss.item()) == -1
    assert math.isfinite(float(out.logs["infonce"]))
    ssl = inputs.features[0].square().mean()  # type: ignore[index]
    (ssl + out.loss).backward()
    grads = [p.grad.clone() for p in net.parameters()]  # type: ignore[union-attr]
    net.zero_grad()
    inputs2 = _inputs(net)
    inputs2.features[0].square().mean().backward()  # type: ignore[index]
    for a, p in zip(grads, net.parameters(), strict=True):
        assert torch.equal(a, p.grad)  # type: ignore[arg-type]


def test_requires_and_missing_inputs_name_them() -> None:
    net = Backbone()
    m = EquiMod(10, hidden=(8,), dim=4, param_dim=4)
    assert m.requires == {"backbone", "images", "features", "params"}
    with pytest.raises(ValueError, match="images"):
        m(_inputs(net, images=None))
    with pytest.raises(ValueError, match="params"):
        m(_inputs(net, params=None))


def test_bad_inputs_name_the_argument() -> None:
    net = Backbone()
    m = EquiMod(10, hidden=(8,), dim=4, param_dim=4)
    inputs = _inputs(net)
    with pytest.raises(ValueError, match="in_features"):
        EquiMod(12, hidden=(8,), dim=4, param_dim=4)(inputs)
    with pytest.raises(ValueError, match="images"):
        m(_inputs(net, images=torch.rand(3, 3, 16, 16)))
    no_crop = tuple({k: v for k, v in p.items() if k != "resized_crop"} for p in inputs.params)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="resized_crop"):
        m(_inputs(net, params=no_crop))
    with pytest.raises(ValueError, match="statistics"):
        EquiMod(10, blur=True, statistics="cifar10")
    with pytest.raises(ValueError, match="image_size"):
        EquiMod(10, statistics="views", augmentations=simclr(32))
    with pytest.raises(ValueError, match="statistics"):
        EquiMod(10, statistics=([0.0] * 15, [0.0] * 15))
    with pytest.raises(ValueError, match="temperature"):
        EquiMod(10, temperature=0)


def test_the_caller_tensors_are_not_modified_and_uint8_images_are_scaled() -> None:
    torch.manual_seed(0)
    net = Backbone()
    inputs = _inputs(net)
    x = (inputs.images * 255).round().to(torch.uint8)  # type: ignore[operator]
    before = x.clone()
    m = EquiMod(10, hidden=(8,), dim=4, param_dim=4).eval()
    with torch.no_grad():
        a = m(_inputs(net, images=x)).loss
        b = m(_inputs(net, images=x.float() / 255)).loss
    assert torch.equal(x, before)
    torch.testing.assert_close(a, b)


def test_a_step_without_originals_is_refused_at_build_time_naming_essl_views() -> None:
    from essl_aug.config import check_provided
    from essl_aug.objectives import Objectives

    objectives = Objectives({"equimod": EquiMod(10, hidden=(8,), dim=4, param_dim=4)})
    with pytest.raises(ValueError, match=r"essl\.objectives\.equimod needs images \(the un-augmented .*essl\.views"):
        check_provided(objectives, frozenset({"backbone", "features", "params"}))
    check_provided(objectives, frozenset({"backbone", "features", "params", "images"}))
