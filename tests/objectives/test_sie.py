"""SIE: the upstream modules and loss on a fixed batch (forward and gradients), the split, weights, errors."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug.objectives import SIE, StepInputs
from essl_aug.transforms import CropParams
from essl_aug.views import simclr

# -- an independent transcription of facebookresearch/SIE ----------------------------------------------------------


def up_projector(embedding: int, mlp: str) -> nn.Sequential:
    """``src/models.py`` ``Projector`` (lines 1661-1672)."""
    f = list(map(int, f"{embedding}-{mlp}".split("-")))
    layers: list[nn.Module] = []
    for i in range(len(f) - 2):
        layers += [nn.Linear(f[i], f[i + 1]), nn.BatchNorm1d(f[i + 1]), nn.ReLU(True)]
    layers.append(nn.Linear(f[-2], f[-1], bias=False))
    return nn.Sequential(*layers)


class UpParametrizedNet(nn.Module):
    """``src/hypernetwork.py`` ``ParametrizedNet`` and ``HyperNet`` (lines 12-84)."""

    def __init__(self, equivariant_size: int, latent_size: int, args: Any) -> None:
        super().__init__()
        archi = str(equivariant_size) + "-" + (args.predictor + "-" if args.predictor else "") + str(equivariant_size)
        self.predictor = [int(x) for x in archi.split("-")]
        self.args = args
        self.num_weights_each = [self.predictor[i] * self.predictor[i + 1] for i in range(len(self.predictor) - 1)]
        if args.bias_pred:
            self.num_biases_each = [self.predictor[i + 1] for i in range(len(self.predictor) - 1)]
            self.num_params_each = [w + b for w, b in zip(self.num_weights_each, self.num_biases_each, strict=True)]
        else:
            self.num_params_each = self.num_weights_each
        self.cum_params = [0, *np.cumsum(self.num_params_each)]
        total, bias = int(self.cum_params[-1]), args.bias_hypernet
        if args.hypernetwork == "linear":
            self.net = nn.Sequential(nn.Linear(latent_size, total, bias=bias))
        else:
            self.net = nn.Sequential(
                nn.Linear(latent_size, latent_size, bias=bias),
                nn.ReLU(),
                nn.Linear(latent_size, latent_size, bias=bias),
                nn.ReLU(),
                nn.Linear(latent_size, total, bias=bias),
            )
        self.activation = nn.ReLU() if args.predictor_relu else nn.Identity()

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        weights = self.net(z)
        out = x
        for i in range(len(self.predictor) - 1):
            w = weights[..., self.cum_params[i] : self.cum_params[i] + self.num_weights_each[i]].view(
                -1, self.predictor[i + 1], self.predictor[i]
            )
            out = torch.bmm(out, torch.transpose(w, -2, -1))
            if self.args.bias_pred:
                out = out + weights[
                    ..., self.cum_params[i + 1] - self.num_biases_each[i] : self.cum_params[i + 1]
                ].unsqueeze(1)
            if i < len(self.predictor) - 2:
                out = self.activation(out)
        return out.squeeze()


class UpMLPPredictor(nn.Module):
    """``src/predictors.py`` ``MLPPredictor`` (lines 11-34), ``latent_dim`` the width of ``z``."""

    def __init__(self, repr_dim: int, latent_dim: int, n_layers: int) -> None:
        super().__init__()
        first = [nn.Linear(repr_dim + latent_dim, repr_dim)] + ([] if n_layers == 1 else [nn.ReLU()])
        layers: list[nn.Module] = []
        for i in range(n_layers - 1):
            layers.append(nn.Linear(repr_dim, repr_dim))
            if i < n_layers - 2:
                layers.append(nn.ReLU())
        self.pred = nn.Sequential(*(first + layers))

    def forward(self, representation: Tensor, latent: Tensor) -> Tensor:
        return self.pred(torch.concat((latent, representation), dim=1))


def off_diagonal(x: Tensor) -> Tensor:
    n, _ = x.shape
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def up_sie_loss(m: Any, args: Any, x_emb: Tensor, y_emb: Tensor, z: Tensor) -> Tensor:
    """``src/models.py`` class ``SIE`` ``forward`` (lines 346-431), one process (``FullGatherLayer`` the identity)."""
    x_inv, y_inv = x_emb[..., : m.inv_repr_size], y_emb[..., : m.inv_repr_size]
    x_equi, y_equi = x_emb[..., m.inv_repr_size :], y_emb[..., m.inv_repr_size :]
    x_inv, y_inv = m.projector_inv(x_inv), m.projector_inv(y_inv)
    x_equi, y_equi = m.projector_equi(x_equi), m.projector_equi(y_equi)
    x, y = torch.cat((x_inv, x_equi), dim=1), torch.cat((y_inv, y_equi), dim=1)
    repr_loss_inv = F.mse_loss(x_inv, y_inv)
    if args.predictor_type == "hypernetwork":
        y_equi_pred = m.predictor(x_equi.unsqueeze(1), z)
    else:
        y_equi_pred = m.predictor(x_equi, z)
    repr_loss_equi = F.mse_loss(y_equi_pred, y_equi)
    y_equi_pred = y_equi_pred - y_equi_pred.mean(dim=0)
    pred_std_loss = torch.mean(F.relu(1 - torch.sqrt(y_equi_pred.var(dim=0) + 0.0001))) / 2
    x, y = x - x.mean(dim=0), y - y.mean(dim=0)
    std_x, std_y = torch.sqrt(x.var(dim=0) + 0.0001), torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    cov_x, cov_y = (x.T @ x) / (args.batch_size - 1), (y.T @ y) / (args.batch_size - 1)
    cov_loss = off_diagonal(cov_x).pow_(2).sum().div(cov_x.shape[0]) + off_diagonal(cov_y).pow_(2).sum().div(
        cov_x.shape[0]
    )
    return (
        args.sim_coeff * repr_loss_inv
        + args.equi_factor * args.sim_coeff * repr_loss_equi
        + args.std_coeff * std_loss
        + args.std_coeff * pred_std_loss
        + args.cov_coeff * cov_loss
    )


def up_model(repr_size: int, equi: int, mlp: str, latent: int, args: Any) -> SimpleNamespace:
    """``src/models.py`` class ``SIE`` ``__init__`` (lines 296-330): the split expanders and the predictor."""
    inv = repr_size - equi
    dims = np.array([int(d) for d in mlp.split("-")])
    mlp_inv = [str(e) for e in np.round(dims * inv / float(repr_size)).astype(int)]
    mlp_equi = [str(e) for e in np.round(dims * equi / float(repr_size)).astype(int)]
    e = int(mlp_equi[-1])
    predictor = (
        UpParametrizedNet(e, latent, args)
        if args.predictor_type == "hypernetwork"
        else UpMLPPredictor(e, latent, args.tf_num_layers)
    )
    return SimpleNamespace(
        inv_repr_size=inv,
        projector_inv=up_projector(inv, "-".join(mlp_inv)),
        projector_equi=up_projector(equi, "-".join(mlp_equi)),
        predictor=predictor,
    )


# -- the comparison ----------------------------------------------------------------------------------------------------

B, D = 6, 10
BOX1 = [
    [1.0, 2.0, 20.0, 24.0],
    [0.0, 0.0, 32.0, 32.0],
    [5.0, 3.0, 14.0, 12.0],
    [7.0, 9.0, 18.0, 16.0],
    [2.0, 4.0, 25.0, 20.0],
    [10.0, 6.0, 12.0, 22.0],
]
BOX2 = [
    [4.0, 0.0, 28.0, 30.0],
    [3.0, 5.0, 16.0, 18.0],
    [0.0, 1.0, 30.0, 24.0],
    [8.0, 8.0, 20.0, 20.0],
    [6.0, 2.0, 22.0, 26.0],
    [1.0, 1.0, 31.0, 29.0],
]


def crop(boxes: list) -> dict[str, CropParams]:
    box = torch.tensor(boxes)
    return {
        "resized_crop": CropParams(
            applied=torch.ones(len(boxes), dtype=torch.bool), box=box, input_size=torch.full((len(boxes), 2), 32.0)
        )
    }


def crop_target(boxes: list) -> Tensor:
    """AugSelf's crop target by hand: ``[centre_y, centre_x, height, width] / 32``."""
    return torch.tensor([[(t + h / 2) / 32, (left + w / 2) / 32, h / 32, w / 32] for t, left, h, w in boxes])


CONFIGS = {
    "default": dict(
        predictor_type="hypernetwork",
        hypernetwork="linear",
        predictor="",
        predictor_relu=False,
        bias_pred=False,
        bias_hypernet=False,
        tf_num_layers=1,
    ),
    "deep-biased": dict(
        predictor_type="hypernetwork",
        hypernetwork="deep",
        predictor="5",
        predictor_relu=True,
        bias_pred=True,
        bias_hypernet=True,
        tf_num_layers=1,
    ),
    "mlp": dict(
        predictor_type="mlp",
        hypernetwork="linear",
        predictor="",
        predictor_relu=False,
        bias_pred=False,
        bias_hypernet=False,
        tf_num_layers=3,
    ),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_sie_matches_the_upstream_loss_and_gradients(config: str) -> None:
    torch.manual_seed(0)
    args = SimpleNamespace(
        **CONFIGS[config], sim_coeff=10.0, equi_factor=0.45, std_coeff=10.0, cov_coeff=1.0, batch_size=B
    )
    up = up_model(D, 4, "12-12-16", 4, args)
    ours = SIE(
        D,
        equi=4,
        groups=("crop",),
        mlp=(12, 12, 16),
        predictor=args.predictor_type,
        hypernetwork=args.hypernetwork,
        predictor_hidden=(5,) if args.predictor else (),
        predictor_relu=args.predictor_relu,
        bias_pred=args.bias_pred,
        bias_hypernet=args.bias_hypernet,
        mlp_layers=args.tf_num_layers,
    )
    ours.projector_inv.load_state_dict(up.projector_inv.state_dict())
    ours.projector_equi.load_state_dict(up.projector_equi.state_dict())
    if config == "mlp":
        ours.predictor.load_state_dict(up.predictor.state_dict())
    else:
        ours.predictor.hypernet.load_state_dict(up.predictor.net.state_dict())
    f1 = torch.randn(B, D, requires_grad=True)
    f2 = torch.randn(B, D, requires_grad=True)
    z = crop_target(BOX2) - crop_target(BOX1)  # the transformation from view 1 to view 2
    expected = up_sie_loss(up, args, f1, f2, z)
    got = ours(StepInputs(features=(f1, f2), params=(crop(BOX1), crop(BOX2))))
    torch.testing.assert_close(got.loss, expected, rtol=1e-5, atol=1e-6)
    (g1, g2) = torch.autograd.grad(expected, (f1, f2))
    (o1, o2) = torch.autograd.grad(got.loss, (f1, f2))
    assert float(g1.abs().max()) > 0
    torch.testing.assert_close(o1, g1, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(o2, g2, rtol=1e-4, atol=1e-6)
    # the logs are the unweighted terms
    c = ours.coefficients
    total = (
        c["sim"] * got.logs["inv"]
        + c["equi"] * c["sim"] * got.logs["equi"]
        + c["std"] * (got.logs["std"] + got.logs["pred_std"])
        + c["cov"] * got.logs["cov"]
    )
    torch.testing.assert_close(total, expected.detach(), rtol=1e-5, atol=1e-6)


def test_the_modules_have_sies_default_shapes() -> None:
    sie = SIE(512)
    assert sie.equi == 256
    assert [m.out_features for m in sie.projector_inv if isinstance(m, nn.Linear)] == [1024, 1024, 1024]
    assert [m.bias is None for m in sie.projector_equi if isinstance(m, nn.Linear)] == [False, False, True]
    hyper = [m for m in sie.predictor.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features, m.bias is None) for m in hyper] == [(8, 1024 * 1024, True)]
    assert sie.coefficients == {"sim": 10.0, "equi": 0.45, "std": 10.0, "cov": 1.0}


def test_the_split_and_the_uneven_widths() -> None:
    sie = SIE(10, equi=3, mlp=(20, 20))
    x = torch.arange(10.0).view(1, 10)
    assert sie.invariant(x).tolist() == [[0, 1, 2, 3, 4, 5, 6]] and sie.equivariant(x).tolist() == [[7, 8, 9]]
    assert sie.projector_inv[0].out_features == 14 and sie.projector_equi[0].out_features == 6


def _inputs(**kw: Any) -> StepInputs:
    g = torch.Generator().manual_seed(0)
    p1, p2 = simclr(12).sample((8, 3, 16, 16), generator=g)
    base = {
        "features": (
            torch.randn(8, D, generator=g, requires_grad=True),
            torch.randn(8, D, generator=g, requires_grad=True),
        ),
        "params": (p1, p2),
    }
    return StepInputs(**{**base, **kw})


def test_weight_zero_is_an_exact_zero_that_reaches_nothing() -> None:
    inputs = _inputs()
    out = SIE(D, weight=0.0, mlp=(8, 8))(inputs)
    assert out.loss.item() == 0 and math.copysign(1, out.loss.item()) == -1
    assert math.isfinite(float(out.logs["inv"]))
    ssl = inputs.features[0].sum()  # type: ignore[index]
    grad = torch.autograd.grad(ssl + out.loss, inputs.features[0])[0]  # type: ignore[index]
    assert torch.equal(grad, torch.ones_like(grad))


def test_requires_and_bad_inputs_name_the_argument() -> None:
    sie = SIE(D, mlp=(8, 8))
    assert sie.requires == {"features", "params"}
    with pytest.raises(ValueError, match="params"):
        sie(_inputs(params=None))
    with pytest.raises(ValueError, match="in_features"):
        SIE(D + 2, mlp=(8, 8))(_inputs())
    with pytest.raises(ValueError, match="resized_crop"):
        sie(_inputs(params=({}, {})))
    with pytest.raises(ValueError, match="equi"):
        SIE(D, equi=D)
    with pytest.raises(ValueError, match="predictor"):
        SIE(D, predictor="transformer")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="equi_factor"):
        SIE(D, equi_factor=-1)
    with pytest.raises(ValueError, match="mlp"):
        SIE(D, equi=1, mlp=(2, 2))
