"""SIE: a split representation, invariant part and equivariant part, trained with SIE's whole VICReg-based loss.

SIE (Garrido, Najman and LeCun, *Self-supervised learning of Split Invariant Equivariant representations*, ICML
2023; code ``facebookresearch/SIE``: ``src/models.py`` class ``SIE``, the default ``--experience``;
``src/hypernetwork.py``; ``src/predictors.py``; ``main.py`` and the README's pre-training command) splits the
backbone's representation (D numbers) into an invariant part (the first ``D - equi``) and an equivariant part (the
last ``equi``, 256 of ResNet-18's 512), and, per step:

- projects each part with its own expander (``projector_inv``, ``projector_equi``): the ``--mlp`` widths
  (``2048-2048-2048``) scaled by each part's share of D and rounded (``np.round``: 1024-1024-1024 each for 256 of
  512), ``Linear BN ReLU`` per hidden layer (Linear with bias), then ``Linear`` without bias; each view through
  them separately (the batch norm sees one view at a time);
- predicts view 2's equivariant embedding from view 1's and the transformation from view 1 to view 2
  (``y_equi_pred = predictor(x_equi, z)``; one direction): by default a hypernetwork
  (``hypernetwork.ParametrizedNet``: ``--hypernetwork linear`` makes ``Linear(P, E * E, bias=False)`` of ``z``,
  the weights of a Linear map E -> E applied to ``x_equi``, no bias, no hidden layer), or an MLP on ``concat(z,
  x_equi)`` (``predictors.MLPPredictor``, ``--predictor-type mlp``);
- the loss: ``sim * mse(x_inv, y_inv) + equi_factor * sim * mse(pred, y_equi) + std * std_loss + std *
  pred_std_loss + cov * cov_loss``, where ``std_loss`` and ``cov_loss`` are VICReg's variance and covariance terms
  of ``x = concat(x_inv, x_equi)`` and ``y`` (the whole embedding: they also decorrelate the two parts), and
  ``pred_std_loss`` the variance term of the prediction (halved, as for one view); SIE's coefficients: ``sim``
  10, ``std`` 10, ``cov`` 1, ``equi_factor`` 0.45 (the README's pre-training command; ``main.py``'s argparse
  default is 4.5).

SIE is a whole SSL method, not a term beside one: this objective computes SIE's whole loss from the two views'
backbone ``features`` and the views' parameters; run it as the step's only loss (give the step no other SSL loss,
or weight it 0) to train SIE as published. :meth:`SIE.invariant` and :meth:`SIE.equivariant` give the two parts of
a representation (e.g. for a linear probe of each, as SIE's evaluations do).

Deliberate differences from the upstream code:

- the transformation ``z``: SIE's are 3-D rotations of the objects of 3DIEBench, ``z`` the quaternion of
  ``rot_1.inv() * rot_2`` (4 numbers, ``src/dataset.py``); with this library's 2-D augmentations ``z`` is the
  relative parameter vector of the selected groups, view 2's against view 1's
  (:func:`~essl_aug.objectives.predictor.relative_parameters` of ``(p2, p1)``: AugSelf's normalised differences, as
  floats), P numbers, and the hypernetwork and the MLP take P inputs where SIE's take 4;
- the variance and covariance terms see the process's batch (SIE gathers every GPU's rows, ``FullGatherLayer``,
  and divides the covariance by the global ``--batch-size - 1``: here the batch's rows minus 1, the same on one
  GPU);
- SIE's online evaluator (linear probes and angle predictors on detached representations, added to its loss) is
  not part of the objective.

Logs: ``inv``, ``equi`` (the two MSE terms), ``std``, ``pred_std``, ``cov`` (unweighted).

Example:
    >>> import torch
    >>> from essl_aug.views import simclr
    >>> from essl_aug.objectives.base import StepInputs
    >>> p1, p2 = simclr(16).sample((4, 3, 24, 24))
    >>> sie = SIE(16, equi=8, mlp=(32, 32))
    >>> out = sie(StepInputs(features=(torch.rand(4, 16), torch.rand(4, 16)), params=(p1, p2)))
    >>> sorted(out.logs), sie.invariant(torch.rand(4, 16)).shape
    (['cov', 'equi', 'inv', 'pred_std', 'std'], torch.Size([4, 8]))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug._validation import check_flag
from essl_aug.objectives.augself import (
    Augmentations,
    check_rows,
    check_view_params,
    head_dtype,
    select_groups,
    two_features,
)
from essl_aug.objectives.base import Objective, ObjectiveOutput, StepInputs, weighted
from essl_aug.objectives.predictor import relative_parameters, relative_width

__all__ = ["SIE", "Hypernetwork", "MLPPredictor", "sie_projector", "vicreg_std_cov"]

Predictor = Literal["hypernetwork", "mlp"]


def sie_projector(in_features: int, widths: Sequence[int]) -> nn.Sequential:
    """SIE's ``Projector`` (``src/models.py``): ``Linear BN ReLU`` per hidden width, then ``Linear`` without bias.

    Example:
        >>> [type(m).__name__ for m in sie_projector(4, (8, 6))]
        ['Linear', 'BatchNorm1d', 'ReLU', 'Linear']
    """
    f = [in_features, *widths]
    layers: list[nn.Module] = []
    for i in range(len(f) - 2):
        layers += [nn.Linear(f[i], f[i + 1]), nn.BatchNorm1d(f[i + 1]), nn.ReLU(True)]
    layers.append(nn.Linear(f[-2], f[-1], bias=False))
    return nn.Sequential(*layers)


class Hypernetwork(nn.Module):
    """SIE's hypernetwork predictor (``src/hypernetwork.py``, ``ParametrizedNet`` and ``HyperNet``): ``z`` (B, P)
    gives, per image, the weights (and biases, ``bias``) of an MLP ``dim -> *hidden -> dim`` applied to ``x``.

    Args:
        dim: the equivariant embedding's width E.
        latent: P, the width of ``z``.
        hidden: the predicted MLP's hidden widths (SIE's ``--predictor``, empty by default: one E x E map).
        deep: the hypernetwork itself is ``Linear ReLU Linear ReLU Linear`` (``--hypernetwork deep``), else one
            Linear (``linear``, the default).
        relu: ReLU between the predicted layers (``--predictor-relu``).
        bias: predict biases too (``--bias-pred``).
        bias_hypernet: the hypernetwork's Linear layers have biases (``--bias-hypernet``).

    Example:
        >>> Hypernetwork(4, 3)(torch.rand(2, 4), torch.rand(2, 3)).shape
        torch.Size([2, 4])
    """

    def __init__(
        self,
        dim: int,
        latent: int,
        hidden: Sequence[int] = (),
        *,
        deep: bool = False,
        relu: bool = False,
        bias: bool = False,
        bias_hypernet: bool = False,
    ) -> None:
        super().__init__()
        self.widths = [dim, *hidden, dim]
        self.bias = check_flag(bias, "bias")
        self.num_weights = [self.widths[i] * self.widths[i + 1] for i in range(len(self.widths) - 1)]
        self.num_biases = [self.widths[i + 1] for i in range(len(self.widths) - 1)] if self.bias else []
        sizes = (
            [w + b for w, b in zip(self.num_weights, self.num_biases, strict=True)] if self.bias else self.num_weights
        )
        self.cum = [0, *torch.tensor(sizes).cumsum(0).tolist()]
        total = self.cum[-1]
        if check_flag(deep, "deep"):
            self.hypernet: nn.Module = nn.Sequential(
                nn.Linear(latent, latent, bias=bias_hypernet),
                nn.ReLU(),
                nn.Linear(latent, latent, bias=bias_hypernet),
                nn.ReLU(),
                nn.Linear(latent, total, bias=bias_hypernet),
            )
        else:
            self.hypernet = nn.Sequential(nn.Linear(latent, total, bias=bias_hypernet))
        self.activation: nn.Module = nn.ReLU() if check_flag(relu, "relu") else nn.Identity()

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        weights = self.hypernet(z)
        out = x.unsqueeze(1)
        n = len(self.widths) - 1
        for i in range(n):
            w = weights[:, self.cum[i] : self.cum[i] + self.num_weights[i]].view(-1, self.widths[i + 1], self.widths[i])
            out = torch.bmm(out, w.transpose(-2, -1))
            if self.bias:
                out = out + weights[:, self.cum[i + 1] - self.num_biases[i] : self.cum[i + 1]].unsqueeze(1)
            if i < n - 1:
                out = self.activation(out)
        return out.squeeze(1)


class MLPPredictor(nn.Module):
    """SIE's ``MLPPredictor`` (``src/predictors.py``): ``layers`` Linear layers on ``concat(z, x)``, ReLU between.

    Example:
        >>> MLPPredictor(4, 3, 2)(torch.rand(2, 4), torch.rand(2, 3)).shape
        torch.Size([2, 4])
    """

    def __init__(self, dim: int, latent: int, layers: int = 1) -> None:
        super().__init__()
        modules: list[nn.Module] = [nn.Linear(dim + latent, dim)] + ([nn.ReLU()] if layers > 1 else [])
        for i in range(layers - 1):
            modules.append(nn.Linear(dim, dim))
            if i < layers - 2:
                modules.append(nn.ReLU())
        self.pred = nn.Sequential(*modules)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        return self.pred(torch.cat([z, x], dim=1))


def _std(x: Tensor) -> Tensor:
    """VICReg's variance term of one (N, E) batch, halved as SIE writes it: ``mean(relu(1 - std)) / 2``."""
    x = x - x.mean(dim=0)
    return F.relu(1 - torch.sqrt(x.var(dim=0) + 0.0001)).mean() / 2


def vicreg_std_cov(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """SIE's (and VICReg's) variance and covariance terms of two (N, E) batches, ``(std_loss, cov_loss)``.

    ``std_loss = mean(relu(1 - std(x))) / 2 + mean(relu(1 - std(y))) / 2`` (``std`` of each column, ``+ 1e-4``
    inside the square root); ``cov_loss`` the squared off-diagonal covariances of ``x`` and of ``y``, each summed
    and divided by E, covariances over ``N - 1``.

    Example:
        >>> std, cov = vicreg_std_cov(torch.eye(4), torch.eye(4))
        >>> round(float(std), 4), round(float(cov), 4)
        (0.4999, 0.0417)
    """
    n, e = x.shape
    xc, yc = x - x.mean(dim=0), y - y.mean(dim=0)
    std = _std(x) + _std(y)
    off = ~torch.eye(e, dtype=torch.bool, device=x.device)
    cov_x, cov_y = (xc.T @ xc) / (n - 1), (yc.T @ yc) / (n - 1)
    cov = cov_x[off].pow(2).sum() / e + cov_y[off].pow(2).sum() / e
    return std, cov


def _number(value: object, name: str, default: float) -> float:
    v = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"`{name}` must be a finite number >= 0 (SIE: {default}), got {value!r}.")
    return v


def _widths(value: object, name: str, example: str) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"`{name}` must be a sequence of widths, e.g. {example}, got {value!r}.")
    if not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in value):
        raise ValueError(f"`{name}` must hold ints >= 1, e.g. {example}, got {value!r}.")
    return list(value)


class SIE(Objective):
    """SIE's whole loss from the two views' backbone features (the module docstring: what it follows, where it
    differs). Requires ``features`` and ``params``.

    Args:
        in_features: D, the backbone's feature width.
        weight: multiplies SIE's loss (1.0 as published), a finite number >= 0. 0: the loss is ``-0.0``, the
            features are detached, the logs still computed.
        equi: the equivariant part's width, the last ``equi`` of the D numbers (SIE: ``--equi 256`` of 512);
            None: half of D.
        groups: the augmentation groups whose relative parameters form ``z`` (see
            :data:`~essl_aug.objectives.augself.GROUPS`).
        augmentations: the augmentations that made the views (see
            :func:`~essl_aug.objectives.augself.select_groups`); None: SimCLR's.
        mlp: the expander widths of the whole representation (``--mlp 2048-2048-2048``), shared out to the two parts
            in proportion to their widths.
        predictor: ``"hypernetwork"`` (SIE's default) or ``"mlp"`` (``--predictor-type``).
        hypernetwork: ``"linear"`` (the default) or ``"deep"`` (``--hypernetwork``).
        predictor_hidden: the predicted network's hidden widths (``--predictor``, empty).
        predictor_relu, bias_pred, bias_hypernet: ``--predictor-relu``, ``--bias-pred``, ``--bias-hypernet``
            (all off).
        mlp_layers: the MLP predictor's Linear layers (``--tf-num-layers``, 1).
        sim_coeff, equi_factor, std_coeff, cov_coeff: SIE's coefficients (10, 0.45, 10, 1).
        pred_variance: the variance term of the prediction (class ``SIE``; False: ``SIENoVar``).

    Example:
        >>> sie = SIE(512)
        >>> sie.projector_inv[0].out_features, sie.projector_equi[-1].out_features, sie.equi
        (1024, 1024, 256)
    """

    requires = frozenset({"features", "params"})

    def __init__(
        self,
        in_features: int,
        weight: float = 1.0,
        *,
        equi: int | None = None,
        groups: Sequence[str] = ("crop", "color"),
        augmentations: Augmentations | None = None,
        mlp: Sequence[int] = (2048, 2048, 2048),
        predictor: Predictor = "hypernetwork",
        hypernetwork: Literal["linear", "deep"] = "linear",
        predictor_hidden: Sequence[int] = (),
        predictor_relu: bool = False,
        bias_pred: bool = False,
        bias_hypernet: bool = False,
        mlp_layers: int = 1,
        sim_coeff: float = 10.0,
        equi_factor: float = 0.45,
        std_coeff: float = 10.0,
        cov_coeff: float = 1.0,
        pred_variance: bool = True,
    ) -> None:
        super().__init__(weight)
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 2:
            raise ValueError(f"`in_features` must be the backbone's feature width (an int >= 2), got {in_features!r}.")
        equi = in_features // 2 if equi is None else equi
        if isinstance(equi, bool) or not isinstance(equi, int) or not 1 <= equi < in_features:
            raise ValueError(
                f"`equi` is the equivariant part's width, the last `equi` of the {in_features} features: an int in "
                f"[1, {in_features - 1}] (SIE: 256 of 512), got {equi!r}."
            )
        if predictor not in ("hypernetwork", "mlp"):
            raise ValueError(f"`predictor` must be 'hypernetwork' (SIE's default) or 'mlp', got {predictor!r}.")
        if hypernetwork not in ("linear", "deep"):
            raise ValueError(f"`hypernetwork` must be 'linear' (SIE's default) or 'deep', got {hypernetwork!r}.")
        if isinstance(mlp_layers, bool) or not isinstance(mlp_layers, int) or mlp_layers < 1:
            raise ValueError(
                f"`mlp_layers` must be an int >= 1 (the MLP predictor's layers; SIE: 1), got {mlp_layers!r}."
            )
        dims = _widths(mlp, "mlp", "(2048, 2048, 2048)")
        hidden = _widths(predictor_hidden, "predictor_hidden", "() or (512,)")
        self.in_features, self.equi = in_features, equi
        self.coefficients = {
            "sim": _number(sim_coeff, "sim_coeff", 10.0),
            "equi": _number(equi_factor, "equi_factor", 0.45),
            "std": _number(std_coeff, "std_coeff", 10.0),
            "cov": _number(cov_coeff, "cov_coeff", 1.0),
        }
        self.pred_variance = check_flag(pred_variance, "pred_variance")
        self.groups = select_groups(groups, augmentations, "SIE")
        inv = in_features - equi
        # np.round of the scaled widths: Python's round, half to even, as numpy's
        mlp_inv = [round(d * inv / in_features) for d in dims]
        mlp_equi = [round(d * equi / in_features) for d in dims]
        if min(mlp_inv + mlp_equi) < 1:
            raise ValueError(
                f"`mlp` {dims} shared out to the parts ({inv} and {equi} of {in_features}) gives a width 0 "
                f"({mlp_inv}, {mlp_equi}): widen `mlp` or balance `equi`."
            )
        self.projector_inv = sie_projector(inv, mlp_inv)
        self.projector_equi = sie_projector(equi, mlp_equi)
        latent = relative_width(self.groups)
        self.predictor: nn.Module
        if predictor == "hypernetwork":
            self.predictor = Hypernetwork(
                mlp_equi[-1],
                latent,
                hidden,
                deep=hypernetwork == "deep",
                relu=predictor_relu,
                bias=bias_pred,
                bias_hypernet=check_flag(bias_hypernet, "bias_hypernet"),
            )
        else:
            self.predictor = MLPPredictor(mlp_equi[-1], latent, mlp_layers)

    def invariant(self, features: Tensor) -> Tensor:
        """The invariant part of representations (..., D): the first ``D - equi`` numbers."""
        return features[..., : self.in_features - self.equi]

    def equivariant(self, features: Tensor) -> Tensor:
        """The equivariant part of representations (..., D): the last ``equi`` numbers."""
        return features[..., self.in_features - self.equi :]

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        assert inputs.features is not None and inputs.params is not None  # checked by forward
        f1, f2 = two_features(inputs.features, self.in_features, "in_features", head_dtype(self))
        if self.weight == 0:  # nothing flows back to the backbone (its gradients stay the SSL loss's, bit for bit)
            f1, f2 = f1.detach(), f2.detach()
        b = f1.shape[0]
        check_view_params("SIE", self.groups, inputs.params, b)
        check_rows(self, b)
        p1, p2 = inputs.params
        with torch.no_grad():  # the transformation from view 1 to view 2
            z = relative_parameters(self.groups, p2, p1).to(f1.device, non_blocking=True)
        x_inv, y_inv = self.projector_inv(self.invariant(f1)), self.projector_inv(self.invariant(f2))
        x_equi, y_equi = self.projector_equi(self.equivariant(f1)), self.projector_equi(self.equivariant(f2))
        pred = self.predictor(x_equi, z.to(x_equi.dtype)).float()
        x_inv, y_inv, x_equi, y_equi = (t.float() for t in (x_inv, y_inv, x_equi, y_equi))
        inv = F.mse_loss(x_inv, y_inv)
        equi = F.mse_loss(pred, y_equi)
        std, cov = vicreg_std_cov(torch.cat([x_inv, x_equi], dim=1), torch.cat([y_inv, y_equi], dim=1))
        c = self.coefficients
        loss = c["sim"] * inv + c["equi"] * c["sim"] * equi + c["std"] * std + c["cov"] * cov
        pred_std = _std(pred)
        if self.pred_variance:
            loss = loss + c["std"] * pred_std
        logs = {"inv": inv, "equi": equi, "std": std, "pred_std": pred_std, "cov": cov}
        return ObjectiveOutput(weighted(self.weight, loss), {k: v.detach() for k, v in logs.items()})

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, equi={self.equi}, weight={self.weight}, groups={list(self.groups)}, "
            f"coefficients={self.coefficients}, pred_variance={self.pred_variance}"
        )
