"""Relative predictor: predict one view's representation from the other's and the views' relative augmentation.

``g(e1, embed(t)) ~ e2``, where ``e1``, ``e2`` are the two SSL views' representations in an equivariant space and
``t`` the relative parameters of the selected augmentation groups (:func:`relative_parameters`: AugSelf's
normalised differences, :func:`~essl_aug.objectives.augself.relative_target`, as floats, concatenated). It is a
generic, configurable predictor; it is neither EquiMod nor SIE, whose papers' objectives are
:class:`~essl_aug.objectives.EquiMod` and :class:`~essl_aug.objectives.SIE`. What it borrows:

- from EquiMod (Devillers and Lefort, ICLR 2023; ``ADevillers/EquiMod``, ``src/loss.py``): the InfoNCE on
  ``concat(targets, predictions)`` (:func:`info_nce`, temperature 0.2) and the shape of an own projector, a
  parameter embedding and a predictor on their concatenation; EquiMod itself predicts each view from the
  un-augmented image with absolute parameters, which this class does not;
- from SIE (Garrido, Najman and LeCun, ICML 2023; ``facebookresearch/SIE``): the idea of a split representation
  (``split=k``: the last ``k`` numbers are the equivariant part, :meth:`RelativePredictor.invariant` the rest); SIE
  has its own projectors per part, a hypernetwork predictor and a VICReg-based loss, which this class does not.

Two ways to get the equivariant space: an own projector (``split=None``: an MLP from the source to ``dim``
numbers), or a slice of the source (``split=k``). Which pairs: with ``symmetric`` (the default), both ``(e1,
relative(p1, p2)) -> e2`` and ``(e2, relative(p2, p1)) -> e1``, stacked (N = 2B). The target is detached for the
``"cosine"`` loss (no negatives; a stop-gradient as BYOL's and SimSiam's) and not for ``"infonce"``, unless
``detach_target`` says otherwise.

Logs: the unweighted loss (``cosine``: ``1 - cos``, or ``infonce``), ``cos`` (mean cosine similarity of prediction
and target) and ``cos_identity`` (mean cosine similarity of ``e1`` and ``e2``: the prediction "nothing changed";
``cos - cos_identity`` is akin to EquiMod's ``eqgain``).

Example:
    >>> import torch
    >>> from essl_aug.views import simclr
    >>> from essl_aug.objectives.base import StepInputs
    >>> p1, p2 = simclr(16).sample((4, 3, 24, 24))
    >>> pred = RelativePredictor(8, groups=("crop", "flip"), source="embeddings", split=4)
    >>> out = pred(StepInputs(embeddings=(torch.rand(4, 8), torch.rand(4, 8)), params=(p1, p2)))
    >>> sorted(out.logs), pred.invariant(torch.rand(4, 8)).shape
    (['cos', 'cos_identity', 'infonce'], torch.Size([4, 4]))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug._validation import check_flag
from essl_aug.head import Norm
from essl_aug.objectives.augself import (
    Augmentations,
    check_rows,
    check_view_params,
    head_dtype,
    mlp,
    relative_target,
    select_groups,
    two_features,
)
from essl_aug.objectives.base import Objective, ObjectiveOutput, StepInputs, weighted
from essl_aug.transforms.base import Params, Transformation

__all__ = ["RelativePredictor", "info_nce", "relative_parameters", "relative_width"]

Source = Literal["features", "embeddings"]
Loss = Literal["cosine", "infonce"]


def relative_width(groups: Mapping[str, Transformation[Any]]) -> int:
    """The number of columns :func:`relative_parameters` gives for ``groups``.

    Example:
        >>> from essl_aug.objectives.augself import select_groups
        >>> relative_width(select_groups(["crop", "flip", "blur"]))
        6
    """

    def columns(aug: Transformation[Any]) -> int:
        spec = aug.relative_spec
        return spec.size if spec.kind == "regression" or spec.size > 2 else 1

    return sum(columns(aug) for aug in groups.values())


def relative_parameters(
    groups: Mapping[str, Transformation[Any]], a: Mapping[str, Params], b: Mapping[str, Params]
) -> Tensor:
    """The relative parameters of the groups, (B, P) float32: each group's
    :func:`~essl_aug.objectives.augself.relative_target`, a two-class target as one 0/1 column, more classes
    one-hot, regression targets as they are.

    Example:
        >>> from essl_aug.views import simclr
        >>> from essl_aug.objectives.augself import select_groups
        >>> p1, p2 = simclr(8).sample((3, 3, 16, 16))
        >>> relative_parameters(select_groups(["crop", "flip", "blur"]), p1, p2).shape
        torch.Size([3, 6])
    """
    columns = []
    for aug in groups.values():
        target = relative_target(aug, a, b)
        spec = aug.relative_spec
        if spec.kind == "classification" and spec.size > 2:
            target = F.one_hot(target, spec.size)
        columns.append(target.to(torch.float32).view(target.shape[0], -1))
    return torch.cat(columns, dim=1)


def info_nce(predictions: Tensor, targets: Tensor, temperature: float) -> Tensor:
    """EquiMod's InfoNCE (``NTXentLoss`` on ``concat(targets, predictions)``): for each of the 2N rows, the
    cross-entropy of its positive (target ``i`` <-> prediction ``i``) against the other 2N - 2 rows, cosine
    similarities over ``temperature``; the mean over the 2N rows, in float32 (float64 for float64 inputs).

    Example:
        >>> z = torch.eye(4)
        >>> bool(info_nce(z, z, 0.1) < info_nce(z, z.roll(1, 0), 0.1))
        True
    """
    n = predictions.shape[0]
    z = torch.cat([targets, predictions], dim=0)
    z = F.normalize(z.to(torch.promote_types(z.dtype, torch.float32)), dim=1)  # float32 at least (autocast)
    logits = (z @ z.T) / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), -math.inf)
    positives = torch.arange(2 * n, device=z.device).roll(n)
    return F.cross_entropy(logits, positives)


class RelativePredictor(Objective):
    """A predictor of one view's representation from the other's and their relative augmentation: the module
    docstring says what it borrows from EquiMod and SIE (it is neither).

    Requires ``params`` and the two views' ``features`` (``source="features"``) or ``embeddings``
    (``source="embeddings"``).

    Args:
        in_features: the width of the source (the backbone's features, or the projector's embeddings).
        groups: the augmentation groups whose relative parameters condition the predictor (see
            :data:`~essl_aug.objectives.augself.GROUPS`).
        weight: the objective's weight, a finite number >= 0. 0: the loss is ``-0.0`` (``ssl + loss`` is ``ssl``
            bit for bit), the source is detached (no gradient reaches the backbone), the logs still computed.
        source: ``"features"`` or ``"embeddings"``: which of the step's tensors the objective reads.
        split: None: an own projector to a ``dim``-wide space; ``k``: the last ``k`` numbers of the source are the
            equivariant part (a split as SIE's), ``1 <= k < in_features``.
        dim: the width of the own projector's space (128); unused with ``split``.
        hidden: the own projector's hidden widths.
        param_hidden: the hidden widths of the MLP that embeds the relative parameters (``()``: a Linear).
        predictor_hidden: the predictor's hidden widths (``()``: a Linear).
        loss: ``"infonce"`` (EquiMod's InfoNCE, the default) or ``"cosine"`` (``1 - cos``, the target detached).
        temperature: the InfoNCE temperature (0.2), > 0.
        detach_target: stop the gradient through the target (None: for ``"cosine"`` only).
        symmetric: predict both ways (see the module docstring).
        norm: the MLPs' normalisation, ``"batch"``, ``"layer"`` or ``"none"``.
        augmentations: the augmentations that made the views (see
            :func:`~essl_aug.objectives.augself.select_groups`); None: SimCLR's.

    Example:
        >>> from essl_aug.views import simclr
        >>> from essl_aug.objectives.base import StepInputs
        >>> p1, p2 = simclr(16).sample((4, 3, 24, 24))
        >>> pred = RelativePredictor(8, groups=("crop", "color"), dim=16, hidden=(32,), loss="cosine")
        >>> out = pred(StepInputs(features=(torch.rand(4, 8), torch.rand(4, 8)), params=(p1, p2)))
        >>> sorted(out.logs), sorted(pred.requires)
        (['cos', 'cos_identity', 'cosine'], ['features', 'params'])
    """

    #: The default ``source``'s needs (an instance sets its own, from its ``source``).
    requires = frozenset({"features", "params"})

    def __init__(
        self,
        in_features: int,
        groups: Sequence[str] = ("crop", "color"),
        weight: float = 1.0,
        *,
        source: Source = "features",
        split: int | None = None,
        dim: int = 128,
        hidden: Sequence[int] = (2048, 2048),
        param_hidden: Sequence[int] = (),
        predictor_hidden: Sequence[int] = (),
        loss: Loss = "infonce",
        temperature: float = 0.2,
        detach_target: bool | None = None,
        symmetric: bool = True,
        norm: Norm = "batch",
        augmentations: Augmentations | None = None,
    ) -> None:
        super().__init__(weight)
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"`in_features` must be the width of the `source` (an int >= 1), got {in_features!r}.")
        if source not in ("features", "embeddings"):
            raise ValueError(f"`source` must be 'features' or 'embeddings', got {source!r}.")
        if loss not in ("cosine", "infonce"):
            raise ValueError(f"`loss` must be 'cosine' (1 - cos) or 'infonce' (EquiMod's), got {loss!r}.")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"`temperature` must be a finite number > 0 (EquiMod: 0.2), got {temperature!r}.")
        if split is not None and (
            isinstance(split, bool) or not isinstance(split, int) or not 1 <= split < in_features
        ):
            raise ValueError(
                f"`split` is the width of the equivariant part, the last `split` of the {in_features} numbers of the "
                f"source: an int in [1, {in_features - 1}], or None for an own projector; got {split!r}."
            )
        if split is None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 2):
            raise ValueError(f"`dim` is the width of the own projector's space, an int >= 2; got {dim!r}.")
        self.in_features = in_features
        self.source: Source = source
        self.split = split
        self.loss_name: Loss = loss
        self.temperature = float(temperature)
        self.detach_target = loss == "cosine" if detach_target is None else check_flag(detach_target, "detach_target")
        self.symmetric = check_flag(symmetric, "symmetric")
        self.requires = frozenset({self.source, "params"})
        self.groups = select_groups(groups, augmentations, "RelativePredictor")
        width = dim if split is None else split
        self.projector: nn.Module = mlp(in_features, dim, hidden, norm) if split is None else nn.Identity()
        self.embed = mlp(relative_width(self.groups), width, param_hidden, norm)
        self.predictor = mlp(2 * width, width, predictor_hidden, norm)

    def equivariant(self, z: Tensor) -> Tensor:
        """The equivariant part of a source tensor (B, in_features): the projection, or the last ``split``."""
        return self.projector(z) if self.split is None else z[..., -self.split :]

    def invariant(self, z: Tensor) -> Tensor:
        """What the SSL loss should see of a source tensor (..., in_features): with ``split``, the first
        ``in_features - split`` numbers (the invariant part); without, ``z`` itself."""
        return z if self.split is None else z[..., : -self.split]

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        assert inputs.params is not None  # checked by forward
        given = inputs.features if self.source == "features" else inputs.embeddings
        assert given is not None
        z1, z2 = two_features(given, self.in_features, "in_features", head_dtype(self))
        if self.weight == 0:  # nothing flows back to the backbone (its gradients stay the SSL loss's, bit for bit)
            z1, z2 = z1.detach(), z2.detach()
        check_view_params("RelativePredictor", self.groups, inputs.params, z1.shape[0])
        p1, p2 = inputs.params
        check_rows(self, z1.shape[0] * (2 if self.symmetric else 1))
        with torch.no_grad():
            t = relative_parameters(self.groups, p1, p2)
            if self.symmetric:
                t = torch.cat([t, relative_parameters(self.groups, p2, p1)], dim=0)
            t = t.to(z1.device, non_blocking=True)
        if self.symmetric:
            e = self.equivariant(torch.cat([z1, z2], dim=0))
            source, target = e, e.roll(z1.shape[0], dims=0)
        else:
            source, target = self.equivariant(z1), self.equivariant(z2)
        t = t.to(source.dtype)
        prediction = self.predictor(torch.cat([source, self.embed(t)], dim=1)).float()
        goal = target.detach() if self.detach_target else target
        cos = F.cosine_similarity(prediction, goal.float(), dim=1)
        loss = (1 - cos).mean() if self.loss_name == "cosine" else info_nce(prediction, goal, self.temperature)
        logs = {
            self.loss_name: loss.detach(),
            "cos": cos.detach().mean(),
            "cos_identity": F.cosine_similarity(source.detach().float(), target.detach().float(), dim=1).mean(),
        }
        return ObjectiveOutput(weighted(self.weight, loss), logs)

    def extra_repr(self) -> str:
        space = f"split={self.split}" if self.split is not None else "own projector"
        return (
            f"in_features={self.in_features}, weight={self.weight}, source={self.source}, {space}, "
            f"groups={list(self.groups)}, loss={self.loss_name}, symmetric={self.symmetric}"
        )
