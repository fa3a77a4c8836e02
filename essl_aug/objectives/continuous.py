"""Continuous E-SSL: transform an extra view by a continuous amount and regress that amount from its features.

E-SSL (Dangovski et al., *Equivariant Contrastive Learning*, ICLR 2022; code ``rdangovs/essl``, ``cifar10/main.py``)
rotates an extra view by the four quarter turns and classifies the turn from the backbone's features with an MLP
head and a cross-entropy (:class:`~essl_aug.objectives.base.DiscreteESSL`). This is the same branch for continuous
transformations (no reference code has it; the target and loss choices are stated here): each image of the extra
view is transformed once per copy with its own parameters, drawn on the view's device (every image is transformed,
whatever the augmentation's ``p``), encoded by the backbone, and a head regresses the parameter:

- ``"rotation"``: :class:`~essl_aug.augment.rotation.RandomRotation` by any angle in [-180, 180); the target is the
  angle's ``(cos, sin)`` (B, 2); loss ``cosine`` (``1 - cos`` of the angle error), metric ``angle_error`` (mean
  absolute angle error in degrees).
- ``"blur"``: :class:`~essl_aug.augment.blur.GaussianBlur` with SimCLR's sigma range (0.1, 2.0) and kernel size;
  the target is sigma rescaled to [0, 1] over the range, ``(sigma - 0.1) / 1.9`` (B, 1); loss ``mse`` (rescaled
  units), metric ``mae`` (mean absolute error of sigma, in pixels).
- ``"crop_scale"``: :class:`InputSizeCrop`, a random resized crop back to the input's size with torchvision's
  ``scale=(0.08, 1.0)`` and ``ratio=(3/4, 4/3)``; the target is the box's area fraction rescaled to [0, 1] over
  ``scale``, ``(scale - 0.08) / 0.92`` (B, 1); loss ``mse`` (rescaled units), metric ``mae`` (area fraction).

The losses:

- angles: the head outputs two numbers ``u``; the loss is ``1 - <u / |u|, (cos, sin)>``, the cosine loss on the
  circle (``1 - cos`` of the difference between the predicted angle ``atan2(u)`` and the true one), so angles that
  differ by a full turn have one target and one loss, and an error of ``+d`` costs as much as one of ``-d`` or of
  ``360 - d``. It is bounded (0 to 2) and ignores ``|u|`` (the von Mises negative log-likelihood, which would read
  ``|u|`` as a concentration, is not used: its scale grows without bound as the head grows confident).
- blur sigma and crop scale: the mean squared error of the head's output against the target rescaled to [0, 1] over
  the augmentation's range (a constant prediction of the middle scores 1/12 for a uniform draw). The crop's
  target is its scale only (``CropParams.scale``: box area over image area); its aspect ratio and position vary
  too but are not predicted. Any other augmentation with a regression target (e.g. ``ColorJitter``) regresses
  its :meth:`~essl_aug.augment.base.Augmentation.target` as it is, with the MSE; one with a classification target
  (flips, grayscale) is a discrete family: use :class:`~essl_aug.objectives.base.DiscreteESSL`.

A rotation by an angle that is not a quarter turn fills the corners with ``fill`` (black by default): their shape
tells the angle modulo 90 degrees, so the head can get that part from the corners alone; the quarter turn itself
must come from the content.

Example:
    >>> import torch
    >>> from essl_aug.objectives.base import StepInputs
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    >>> rotation = ContinuousESSL("rotation", in_features=8, hidden=(16,))
    >>> out = rotation(StepInputs(backbone=net, extra=torch.rand(4, 3, 16, 16)))
    >>> sorted(out.logs), bool(out.loss == 0.4 * out.logs["cosine"])
    (['angle_error', 'cosine'], True)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from essl_aug.augment.base import Augmentation, TargetSpec
from essl_aug.augment.blur import GaussianBlur
from essl_aug.augment.crop import CropParams, RandomResizedCrop
from essl_aug.augment.rotation import RandomRotation
from essl_aug.head import EquivarianceHead, pooled_features
from essl_aug.objectives.augself import mlp
from essl_aug.objectives.base import Objective, ObjectiveOutput, StepInputs, weighted

__all__ = ["PRESETS", "ContinuousESSL", "InputSizeCrop", "angle_error", "circular_loss"]


class InputSizeCrop(RandomResizedCrop):
    """A :class:`~essl_aug.augment.crop.RandomResizedCrop` whose output has the input's size (the box is resized
    back to ``H x W``): the zoom changes, the image size does not.

    Example:
        >>> crop = InputSizeCrop(scale=(0.25, 0.5))
        >>> y, params = crop(torch.rand(2, 3, 12, 10))
        >>> y.shape, bool(((params.scale > 0.2) & (params.scale < 0.6)).all())
        (torch.Size([2, 3, 12, 10]), True)
    """

    def __init__(
        self,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        antialias: bool = True,
    ) -> None:
        super().__init__(1, scale=scale, ratio=ratio, antialias=antialias)

    def apply(self, x: Tensor, params: CropParams) -> Tensor:
        self.check(x)
        height, width = x.shape[-2:]
        return RandomResizedCrop((height, width), self.scale, self.ratio, self.antialias).apply(x, params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale}, ratio={self.ratio}, antialias={self.antialias})"


#: The named augmentations of the continuous objective (see the module docstring), each built with ``p = 1``.
PRESETS: dict[str, Callable[[], Augmentation[Any]]] = {
    "rotation": lambda: RandomRotation(180.0, p=1.0),
    "blur": lambda: GaussianBlur(sigma=(0.1, 2.0), p=1.0),
    "crop_scale": lambda: InputSizeCrop(scale=(0.08, 1.0)),
}


def circular_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """The mean of ``1 - cos(predicted angle - true angle)``: ``prediction`` (N, 2) any non-zero vectors (their
    direction is the angle), ``target`` (N, 2) the true ``(cos, sin)``; in float32, between 0 and 2.

    Example:
        >>> quarter = torch.tensor([[0.0, 1.0]])  # 90 degrees
        >>> circular_loss(torch.tensor([[0.0, 5.0]]), quarter), circular_loss(torch.tensor([[1.0, 0.0]]), quarter)
        (tensor(0.), tensor(1.))
    """
    unit = nn.functional.normalize(prediction.float(), dim=1)
    return (1.0 - (unit * target.float()).sum(dim=1)).mean()


def angle_error(prediction: Tensor, target: Tensor) -> Tensor:
    """The absolute angle (N,) between each ``prediction`` (N, 2) and ``target`` (N, 2) vector, in degrees, in
    [0, 180] (the shorter way round the circle).

    Example:
        >>> angle_error(torch.tensor([[1.0, 0.0], [0.0, -2.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
        tensor([ 90., 180.])
    """
    p, t = prediction.float(), target.float()
    cross = p[:, 0] * t[:, 1] - p[:, 1] * t[:, 0]
    dot = (p * t).sum(dim=1)
    return torch.rad2deg(torch.atan2(cross, dot)).abs()


@dataclass(frozen=True)
class _Regression:
    """What the head of one augmentation regresses: ``size`` numbers from ``target(params)``; circular (``cos``,
    ``sin``) or not; the metric's unit per unit of the regressed target (``unit``)."""

    size: int
    circular: bool
    target: Callable[[Any], Tensor]
    unit: float = 1.0


def _range(low: float, high: float, name: str, what: str) -> float:
    if not high > low:
        raise ValueError(
            f"`augmentation` draws one fixed {what} ({name}=({low}, {high})): there is nothing to predict; give it "
            f"a range with min < max."
        )
    return high - low


def _regression(aug: Augmentation[Any]) -> _Regression:
    """The target of ``aug`` for the head (see the module docstring), or an error for targets it cannot regress."""
    if isinstance(aug, RandomRotation):
        _range(*aug.degrees, "degrees", "angle")
        return _Regression(2, True, aug.target)
    if isinstance(aug, GaussianBlur):
        low, span = aug.sigma[0], _range(*aug.sigma, "sigma", "sigma")
        return _Regression(1, False, lambda p: (aug.target(p) - low) / span, unit=span)
    if isinstance(aug, RandomResizedCrop):
        low, span = aug.scale[0], _range(*aug.scale, "scale", "area fraction")

        def scale(p: CropParams) -> Tensor:
            return ((p.scale - low) / span).to(torch.float32).view(-1, 1)

        return _Regression(1, False, scale, unit=span)
    spec: TargetSpec = aug.target_spec
    if spec.kind != "regression":
        raise ValueError(
            f"`augmentation` {type(aug).__name__} has a {spec.kind} target ({spec.size} classes): it is a discrete "
            "transformation; use DiscreteESSL with its discrete family (e.g. DiscreteESSL('hflip', ...))."
        )
    return _Regression(spec.size, False, lambda p: aug.target(p).to(torch.float32).view(-1, spec.size))


def _augmentation(augmentation: Augmentation[Any] | str) -> Augmentation[Any]:
    """The preset named ``augmentation``, or a copy of the given one with ``p = 1`` (every image transformed)."""
    if isinstance(augmentation, str):
        if augmentation not in PRESETS:
            raise ValueError(
                f"`augmentation` {augmentation!r} is not a preset; the presets are {sorted(PRESETS)}, or give an "
                "essl_aug.augment augmentation (e.g. RandomRotation(45.0))."
            )
        return PRESETS[augmentation]()
    if not isinstance(augmentation, Augmentation):
        raise TypeError(
            f"`augmentation` must be a preset name ({', '.join(sorted(PRESETS))}) or an essl_aug.augment "
            f"Augmentation, got {type(augmentation).__name__}."
        )
    forced = copy.copy(augmentation)  # the caller's object keeps its p
    forced.p = 1.0
    return forced


class ContinuousESSL(Objective):
    """E-SSL with a continuous transformation: regress the parameter of a transformed extra view (the module
    docstring has the presets, the targets and the losses).

    Requires ``backbone`` and ``extra``. Each step draws the parameters of ``copies`` transformed versions of every
    image of ``extra`` on its device (with ``StepInputs.generator`` when given), applies them (``extra`` is
    detached and never modified), runs the backbone and the head on the ``copies * B`` views (block layout: copy
    ``k`` of image ``i`` is row ``k * B + i``) and returns ``weight`` times the loss.

    Args:
        augmentation: a preset name (``"rotation"``, ``"blur"``, ``"crop_scale"``) or an :mod:`essl_aug.augment`
            augmentation with a regression target (copied with ``p = 1``: every image is transformed).
        in_features: width of the backbone's pooled features; builds the reference head
            (:class:`~essl_aug.head.EquivarianceHead` layers: Linear-LayerNorm-ReLU per hidden width, then Linear).
        head: a head to use instead (any module mapping (N, C) features to (N, ``num_outputs``) numbers).
        weight: the objective's weight, a finite number >= 0. 0: the loss is ``-0.0`` (``ssl + loss`` is ``ssl``
            bit for bit), the features are detached (no gradient reaches the backbone), the logs still computed.
        hidden: hidden widths of the built head.
        copies: transformed versions of each image per step, each with its own parameters (an int >= 1).

    Logs: the unweighted loss (``cosine`` for angles, ``mse`` otherwise, as
    :class:`~essl_aug.objectives.base.DiscreteESSL` logs ``ce``) and the metric (``angle_error``: mean absolute
    angle error in degrees, about 90 for a head that guesses; ``mae``: mean absolute error in the augmentation's
    units, sigma in pixels for the blur, area fraction for the crop).

    Example:
        >>> from essl_aug.augment import RandomRotation
        >>> from essl_aug.objectives.base import StepInputs
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> blur = ContinuousESSL("blur", in_features=8, hidden=(16,), weight=1.0, copies=2)
        >>> out = blur(StepInputs(backbone=net, extra=torch.rand(4, 3, 32, 32)))
        >>> sorted(out.logs), blur.num_outputs, bool(out.loss == out.logs["mse"])
        (['mae', 'mse'], 1, True)
        >>> ContinuousESSL(RandomRotation(30.0, p=0.5), in_features=8).augmentation  # every image rotated
        RandomRotation(degrees=(-30.0, 30.0), p=1.0, fill=0.0)
    """

    requires = frozenset({"backbone", "extra"})

    def __init__(
        self,
        augmentation: Augmentation[Any] | str,
        in_features: int | None = None,
        head: nn.Module | None = None,
        weight: float = 0.4,
        hidden: Sequence[int] = (2048, 2048),
        copies: int = 1,
    ) -> None:
        super().__init__(weight)
        self.augmentation = _augmentation(augmentation)
        self._regression = _regression(self.augmentation)
        if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
            raise ValueError(f"`copies` must be an int >= 1 (transformed versions of each image), got {copies!r}.")
        self.copies = copies
        if (head is None) == (in_features is None):
            raise ValueError("give exactly one of `in_features` (to build the reference head) or `head`.")
        if in_features is not None:
            if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
                raise ValueError(
                    f"`in_features` must be the backbone's feature width (an int >= 1), got {in_features!r}."
                )
            head = mlp(in_features, self.num_outputs, hidden, norm="layer")
        if not isinstance(head, nn.Module):
            raise TypeError(f"`head` must be an nn.Module mapping features to predictions, got {type(head).__name__}.")
        self.head = head
        #: The argument that sets the head's width (named in width errors).
        self._width_arg = "in_features" if in_features is not None else EquivarianceHead.in_features_arg

    @property
    def num_outputs(self) -> int:
        """The numbers the head predicts per view (2 for an angle's ``(cos, sin)``, 1 for blur sigma or crop scale)."""
        return self._regression.size

    def views(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """The ``copies * B`` transformed views of ``x`` (B, C, H, W) and the head's targets (``copies * B``,
        ``num_outputs``) float32, on ``x``'s device (``x`` is detached, not modified)."""
        self.augmentation.check(x, "extra")
        if x.shape[0] == 0:
            raise ValueError(
                "`extra` is an empty batch (B = 0): the loss of no views is undefined; skip empty batches."
            )
        x = x.detach()
        if self.copies > 1:
            x = x.repeat(self.copies, 1, 1, 1)
        params = self.augmentation.sample(x.shape, x.device, generator)
        with torch.no_grad():
            target = self._regression.target(params)
        return self.augmentation.apply(x, params), target

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        assert inputs.backbone is not None and inputs.extra is not None  # checked by forward
        views, target = self.views(inputs.extra, inputs.generator)
        width = self.head.in_features if isinstance(self.head, EquivarianceHead) else None
        features = pooled_features(inputs.backbone(views), width, self._width_arg)
        if self.weight == 0:  # nothing flows back to the backbone (its gradients stay the SSL loss's, bit for bit)
            features = features.detach()
        prediction = self.head(features)
        if not isinstance(prediction, Tensor) or prediction.shape != target.shape:
            got = tuple(prediction.shape) if isinstance(prediction, Tensor) else type(prediction).__name__
            raise ValueError(
                f"`head` returned {got} for {target.shape[0]} views but this objective regresses {self.num_outputs} "
                f"numbers per view; build it with {self.num_outputs} outputs (the objective's `num_outputs`)."
            )
        prediction = prediction.float()
        if self._regression.circular:
            loss = circular_loss(prediction, target)
            with torch.no_grad():
                logs = {"cosine": loss.detach(), "angle_error": angle_error(prediction, target).mean()}
        else:
            loss = (prediction - target).square().mean()
            with torch.no_grad():
                mae = (prediction - target).abs().mean() * self._regression.unit
                logs = {"mse": loss.detach(), "mae": mae}
        return ObjectiveOutput(weighted(self.weight, loss), logs)

    def extra_repr(self) -> str:
        return f"augmentation={self.augmentation!r}, weight={self.weight}, copies={self.copies}"
