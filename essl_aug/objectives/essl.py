"""E-SSL on an extra view: transform it, encode it with the backbone, and predict the transformation with a head.

E-SSL (Dangovski et al., *Equivariant Contrastive Learning*, ICLR 2022; code ``rdangovs/essl``, ``cifar10/main.py``)
rotates an extra view by the four quarter turns and classifies the turn from the backbone's pooled features with an
MLP head and a cross-entropy. :class:`ESSL` is that branch for any transformation, the loss chosen from the
transformation's :attr:`~essl_aug.transforms.base.Transformation.target_spec`:

- a **family** (a label per image: quarter turns, flips, jigsaws, blur levels, ...): the paper's form, the family's
  elements applied by :class:`~essl_aug.EquivariantTransform` (``mode="all"``, every element of every image in block
  layout, the reference; or ``"random"``, one per image), cross-entropy; logs ``ce`` and ``acc``;
- a **continuous** transformation (rotation by any angle, blur sigma, a random zoom; no reference code has these, the
  choices are stated here): ``copies`` transformed versions of each image, each with its own parameters (every image
  transformed), the head regressing the target. A circular target (an angle's ``(cos, sin)``) takes the cosine loss
  ``1 - <u / |u|, (cos, sin)>`` (angles a full turn apart have one loss; bounded; ``|u|`` ignored), logs ``cosine``
  and ``angle_error`` (mean absolute error in degrees); any other the mean squared error of the target normalised to
  [0, 1] over the transformation's ranges (:meth:`~essl_aug.transforms.base.TargetSpec.normalize`), logs ``mse`` and
  ``mae`` (mean absolute error in the transformation's units).

:class:`~essl_aug.EquivarianceLoss` is the public face of the paper's case (its ``forward(backbone, x)`` returns the
loss, the cross-entropy and the accuracy).

Example:
    >>> import torch
    >>> from essl_aug.objectives.base import StepInputs
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    >>> essl = ESSL("rotation", in_features=8, hidden=(16,))
    >>> out = essl(StepInputs(backbone=net, extra=torch.rand(4, 3, 16, 16)))
    >>> sorted(out.logs), bool(out.loss == 0.4 * out.logs["ce"])
    (['acc', 'ce'], True)
    >>> angle = ESSL("random_rotation", in_features=8, hidden=(16,), weight=1.0)
    >>> sorted(angle(StepInputs(backbone=net, extra=torch.rand(4, 3, 16, 16))).logs)
    ['angle_error', 'cosine']
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug._validation import check_fraction
from essl_aug.head import EquivarianceHead, pooled_features
from essl_aug.objectives.base import Objective, ObjectiveOutput, StepInputs, weighted
from essl_aug.registry import TransformSpec, build_transformation
from essl_aug.transform import EquivariantTransform
from essl_aug.transforms.base import Family, Transformation

__all__ = ["ESSL", "ESSLOnViews", "angle_error", "circular_loss"]

Mode = Literal["all", "random"]


def circular_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """The mean of ``1 - cos(predicted angle - true angle)``: ``prediction`` (N, 2) any non-zero vectors (their
    direction is the angle), ``target`` (N, 2) the true ``(cos, sin)``; in float32, between 0 and 2.

    Example:
        >>> quarter = torch.tensor([[0.0, 1.0]])  # 90 degrees
        >>> circular_loss(torch.tensor([[0.0, 5.0]]), quarter), circular_loss(torch.tensor([[1.0, 0.0]]), quarter)
        (tensor(0.), tensor(1.))
    """
    unit = F.normalize(prediction.float(), dim=1)
    return (1.0 - (unit * target.float()).sum(dim=1)).mean()


def angle_error(prediction: Tensor, target: Tensor) -> Tensor:
    """The absolute angle (N,) between each ``prediction`` (N, 2) and ``target`` (N, 2) vector, in degrees, in
    [0, 180].

    Example:
        >>> angle_error(torch.tensor([[1.0, 0.0], [0.0, -2.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
        tensor([ 90., 180.])
    """
    p, t = prediction.float(), target.float()
    cross = p[:, 0] * t[:, 1] - p[:, 1] * t[:, 0]
    return torch.rad2deg(torch.atan2(cross, (p * t).sum(dim=1))).abs()


def _every_image(transformation: Transformation[Any]) -> Transformation[Any]:
    """A copy of a continuous transformation that transforms every image (``p = 1``); the caller's keeps its p."""
    if transformation.p == 1.0:
        return transformation
    forced = copy.copy(transformation)
    forced.p = 1.0
    return forced


class ESSL(Objective):
    """E-SSL on an extra view (the module docstring has the two forms, their targets and losses).

    Requires ``backbone`` and ``extra``. The view ``extra`` is detached and never modified; gradients flow through
    the backbone and the head, as in the reference.

    Args:
        transform: a family spec (``"rotation"``, ``["rotation", "vflip"]``, ``{"name": "jigsaw", ...}``), a
            continuous transformation's name (``"random_rotation"``, ``"gaussian_blur"``, ``"zoom"``), a
            transformation, or an :class:`~essl_aug.EquivariantTransform`.
        in_features: width of the backbone's pooled features; builds the reference head
            (:class:`~essl_aug.EquivarianceHead`: Linear-LayerNorm-ReLU per hidden width, then Linear).
        head: a head to use instead (any module mapping (N, C) features to (N, ``num_outputs``)).
        weight: the paper's lambda (reference: 0.4), a finite number >= 0. 0: the loss is ``-0.0`` (``ssl + loss``
            is ``ssl`` bit for bit) and the features are detached; the logs are still computed.
        mode: for a family, ``"all"`` (default, the reference) or ``"random"``; continuous transformations draw.
        hidden: hidden widths of the built head (reference CIFAR-10: ``(2048, 2048)``).
        copies: for a continuous transformation, transformed versions of each image per step (an int >= 1).
        balanced: for a family in ``"random"`` mode, exactly balanced labels (see EquivariantTransform).
        num_per_batch: for a family in ``"all"`` mode, that many distinct elements per step (see EquivariantTransform).
        batch_fraction: E-SSL on the first ``ceil(batch_fraction * B)`` images of the extra view only (at least one;
            the batch order is random in SSL training): a cheaper step; 1 (default) is the paper's whole batch.
        generator: draws the transformations' random numbers (``StepInputs.generator`` takes precedence).
    """

    requires = frozenset({"backbone", "extra"})
    #: How the feature-width argument is spelled in error messages (a subclass that renames it sets its own).
    in_features_arg = "in_features"
    #: How the extra view's argument is spelled in error messages.
    extra_arg = "extra"

    def __init__(
        self,
        transform: TransformSpec | EquivariantTransform,
        in_features: int | None = None,
        head: nn.Module | None = None,
        weight: float = 0.4,
        mode: Mode | None = None,
        hidden: Sequence[int] = (2048, 2048),
        copies: int = 1,
        balanced: bool = False,
        num_per_batch: int | None = None,
        batch_fraction: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(weight)
        self.batch_fraction = check_fraction(batch_fraction, "batch_fraction", "must be a number in (0, 1]")
        if self.batch_fraction == 0:
            raise ValueError("`batch_fraction` must be a number in (0, 1], got 0: E-SSL on no image is no term.")
        if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
            raise ValueError(f"`copies` must be an int >= 1 (transformed versions of each image), got {copies!r}.")
        self.copies = copies
        self.generator = generator
        if isinstance(transform, EquivariantTransform):
            self.transform: EquivariantTransform | Transformation[Any] = transform
            spec = transform.family.target_spec
        else:
            built = build_transformation(transform)
            spec = built.target_spec
            if isinstance(built, Family):
                self.transform = EquivariantTransform(
                    built, mode or "all", balanced=balanced, generator=generator, num_per_batch=num_per_batch
                )
            else:
                if mode not in (None, "random") or balanced or num_per_batch is not None:
                    raise ValueError(
                        f"`mode`, `balanced` and `num_per_batch` apply to families; {type(built).__name__} is "
                        "continuous: each image gets its own drawn parameters (give `copies` for more versions)."
                    )
                self.transform = _every_image(built)
                spec = self.transform.target_spec  # every image transformed: a fixed threshold no longer varies
                if not spec.varies:
                    raise ValueError(
                        f"`transform` {built!r} has a target that never varies on an extra view that is always "
                        f"transformed ({spec.names}): there is nothing to predict; give it a range of parameters (e.g. "
                        "degrees=(-45, 45))."
                    )
        if copies > 1 and isinstance(self.transform, EquivariantTransform):
            raise ValueError("`copies` applies to continuous transformations; a family's `mode='all'` gives every one.")
        self.spec = spec
        self.num_outputs = spec.size
        if (head is None) == (in_features is None):
            raise ValueError(f"give exactly one of `{self.in_features_arg}` (to build the reference head) or `head`.")
        if in_features is not None:
            head = EquivarianceHead(in_features, self.num_outputs, hidden)
        if not isinstance(head, nn.Module):
            raise TypeError(f"`head` must be an nn.Module mapping features to predictions, got {type(head).__name__}.")
        outputs = getattr(head, "num_classes", None)
        if isinstance(outputs, int) and outputs != self.num_outputs:
            raise ValueError(
                f"`head` has {outputs} outputs but the transformation's target has {self.num_outputs}; build it with "
                f"{self.num_outputs} outputs (the objective's `num_outputs`)."
            )
        self.head = head

    @property
    def num_classes(self) -> int:
        """The number of outputs of the head (the family's classes)."""
        return self.num_outputs

    def views(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """The transformed views of ``x`` (B, C, H, W) and their targets, on ``x``'s device (``x`` detached, not
        modified): labels (N,) for a family, (N, num_outputs) float32 targets for a continuous transformation."""
        name = self.extra_arg
        if not isinstance(x, Tensor):
            raise TypeError(f"`{name}` must be the extra view as a (B, C, H, W) tensor, got {type(x).__name__}.")
        if x.ndim >= 1 and x.shape[0] == 0:
            raise ValueError(
                f"`{name}` is an empty batch (B = 0): the loss of no views is undefined; skip empty batches."
            )
        family = self.transform.family if isinstance(self.transform, EquivariantTransform) else self.transform
        family.check(x, name)  # a (B, C, H, W) batch the transformation takes, not one image
        x = x.detach()
        if self.batch_fraction < 1:
            x = x[: max(1, math.ceil(self.batch_fraction * x.shape[0]))]
        generator = generator if generator is not None else self.generator
        if isinstance(self.transform, EquivariantTransform):
            return self.transform(x, generator)
        if self.copies > 1:
            x = x.repeat(self.copies, 1, 1, 1)
        views, params = self.transform(x, generator)
        with torch.no_grad():
            target = self.transform.target(params)
            target = target if self.spec.circular else self.spec.normalize(target)
        return views, target

    def score(self, prediction: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The unweighted loss of the head's ``prediction`` against ``target`` and the detached logs."""
        if not isinstance(prediction, Tensor) or prediction.ndim != 2 or prediction.shape[1] != self.num_outputs:
            got = tuple(prediction.shape) if isinstance(prediction, Tensor) else type(prediction).__name__
            raise ValueError(
                f"`head` returned {got} per batch but the transformation's target has {self.num_outputs} outputs; "
                f"build it with {self.num_outputs} outputs (the objective's `num_outputs`)."
            )
        prediction = prediction.float()
        if self.spec.kind == "classification":
            labels = target.long()
            loss = F.cross_entropy(prediction, labels)
            with torch.no_grad():
                return loss, {"ce": loss.detach(), "acc": (prediction.argmax(dim=1) == labels).float().mean()}
        if self.spec.circular:
            loss = circular_loss(prediction, target)
            with torch.no_grad():
                return loss, {"cosine": loss.detach(), "angle_error": angle_error(prediction, target).mean()}
        loss = (prediction - target).square().mean()
        with torch.no_grad():
            error = (prediction - target).abs().mean(dim=0)  # per output, normalised units
            mae = sum(error[k] * span for k, span in enumerate(self.spec.spans)) / self.num_outputs
            return loss, {"mse": loss.detach(), "mae": torch.as_tensor(mae)}

    def predict(self, backbone: Callable[[Tensor], Tensor], views: Tensor) -> Tensor:
        """The head's prediction on the backbone's pooled features of ``views`` (detached at weight 0)."""
        if not callable(backbone):
            raise TypeError(f"`backbone` must be a callable (the backbone module), got {type(backbone).__name__}.")
        width = self.head.in_features if isinstance(self.head, EquivarianceHead) else None
        features = pooled_features(backbone(views), width, self.in_features_arg)
        return self.head(features.detach() if self.weight == 0 else features)

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        assert inputs.backbone is not None and inputs.extra is not None  # checked by forward
        views, target = self.views(inputs.extra, inputs.generator)
        loss, logs = self.score(self.predict(inputs.backbone, views), target)
        return ObjectiveOutput(weighted(self.weight, loss), logs)

    def extra_repr(self) -> str:
        copies = f", copies={self.copies}" if self.copies > 1 else ""
        fraction = f", batch_fraction={self.batch_fraction}" if self.batch_fraction < 1 else ""
        return f"transform={self.transform!r}, weight={self.weight}{copies}{fraction}"


class ESSLOnViews(ESSL):
    """E-SSL with no extra view and no extra backbone pass: the two SSL views of each image get the same element of a
    family (one per image, drawn by :meth:`prepare_views` before the backbone encodes them), and the head predicts it
    from each view's features.

    Not the paper's E-SSL (which transforms a separate extra view, ``rdangovs/essl`` ``cifar10/main.py``): the SSL
    loss sees the transformed views, and since both views of an image get the same element, the invariance between
    them is kept. The cost is the head alone. Requires ``features``; call :meth:`prepare_views` on the two views
    each step (``Objectives.prepare_views`` does, and the adapters with ``essl.source: views``).

    Args:
        transform: a family spec (``"rotation"``, ...) or a family.
        in_features, head, weight, hidden, balanced, generator: as :class:`ESSL` (one element per image: ``"random"``
            mode, ``balanced`` for exactly balanced labels).

    Example:
        >>> on_views = ESSLOnViews("rotation", in_features=8, hidden=(16,))
        >>> v1, v2 = on_views.prepare_views([torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)])
        >>> f = (torch.rand(4, 8), torch.rand(4, 8))  # the backbone's features of v1, v2
        >>> sorted(on_views(StepInputs(features=f)).logs)
        ['acc', 'ce']
    """

    requires = frozenset({"features"})

    def __init__(
        self,
        transform: TransformSpec = "rotation",
        in_features: int | None = None,
        head: nn.Module | None = None,
        weight: float = 0.4,
        hidden: Sequence[int] = (2048, 2048),
        balanced: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(transform, in_features, head, weight, "random", hidden, balanced=balanced, generator=generator)
        if not isinstance(self.transform, EquivariantTransform):
            raise ValueError(
                f"`transform` must be a family (a label per image) for E-SSL on the views, got {transform!r}; a "
                "continuous transformation takes ESSL on an extra view."
            )
        self._labels: Tensor | None = None

    def prepare_views(self, views: Sequence[Tensor], generator: torch.Generator | None = None) -> list[Tensor]:
        """``views`` (each (B, C, H, W), one per SSL view), each image's views transformed by one drawn element."""
        assert isinstance(self.transform, EquivariantTransform)
        views = list(views)
        if not views or not all(isinstance(v, Tensor) and v.ndim == 4 for v in views):
            raise ValueError("`views` must be the SSL views of one batch, each a (B, C, H, W) tensor.")
        b = views[0].shape[0]
        if b == 0 or any(v.shape[0] != b for v in views):
            raise ValueError(f"`views` must share one non-empty batch size, got {[v.shape[0] for v in views]}.")
        for v in views:
            self.transform.family.check(v, "views")
        labels = self.transform.sample_labels(
            b, views[0].device, generator if generator is not None else self.generator
        )
        self._labels = labels
        return [self.transform.family._op(v, labels) for v in views]  # labels drawn here: in range

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        assert inputs.features is not None  # checked by forward
        labels, self._labels = self._labels, None
        if labels is None:
            raise RuntimeError(
                "ESSLOnViews: call `prepare_views` on the SSL views before the backbone encodes them, every step."
            )
        f1, f2 = inputs.features
        if f1.shape[0] != labels.shape[0]:
            raise ValueError(
                f"`features` are of {f1.shape[0]} images but the views prepared this step were {labels.shape[0]}."
            )
        width = self.head.in_features if isinstance(self.head, EquivarianceHead) else None
        features = pooled_features(torch.cat([f1, f2]), width, self.in_features_arg)
        prediction = self.head(features.detach() if self.weight == 0 else features)
        loss, logs = self.score(prediction, labels.repeat(2))
        return ObjectiveOutput(weighted(self.weight, loss), logs)


#: The presets of the former ``ContinuousESSL``, by their new transformation names.
_PRESETS = {"rotation": "random_rotation", "blur": "gaussian_blur", "crop_scale": "zoom"}


class ContinuousESSL(ESSL):
    """Deprecated: :class:`ESSL` with a continuous transformation (this release keeps the former presets:
    ``"rotation"`` is ``"random_rotation"``, ``"blur"`` is ``"gaussian_blur"``, ``"crop_scale"`` is ``"zoom"``, which
    regresses the whole box, not its scale alone)."""

    def __init__(self, augmentation: TransformSpec, *args: Any, **kwargs: Any) -> None:
        warnings.warn(
            "ContinuousESSL is deprecated and will be removed in the next release; use ESSL with a continuous "
            f"transformation (presets: {_PRESETS}).",
            DeprecationWarning,
            stacklevel=2,
        )
        if isinstance(augmentation, str) and augmentation in _PRESETS:
            augmentation = _PRESETS[augmentation]
        super().__init__(augmentation, *args, **kwargs)
