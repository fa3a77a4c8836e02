"""E-SSL in lightly pipelines: an extra view for lightly's multi-view transforms, a head and a loss module.

lightly builds the views on the CPU with a multi-view transform (a list of per-view transforms) and
collates them into ``batch[0]``, a list of view tensors. E-SSL needs one more, usually smaller, view: it is
transformed on the batch's device by every element of a discrete family, and a head on the backbone's
features predicts which element was applied. This module wires the core pieces into lightly's idioms:

- :func:`with_essl_view` appends the E-view, built with lightly's own view transform, as the **last** view;
  the collate function stays the default. Code doing ``torch.cat(views)`` must split the last view off first
  (``*views, x_e = batch[0]``): the E-view has another size.
- :class:`EquivariancePredictionHead` is the core :class:`~essl_aug.EquivarianceHead` under lightly's
  ``(input_dim, hidden_dim, output_dim)`` argument names.
- :class:`ESSLLoss` is the core :class:`~essl_aug.EquivarianceLoss` in the shape of lightly's auxiliary heads:
  ``forward`` returns the weighted loss and ``training_step`` returns ``(loss, {"train_essl_loss": ...,
  "train_essl_acc": ...})``, like lightly's ``OnlineLinearClassifier``.

The SSL views themselves can be made on the device instead of by lightly's CPU transforms, with every image's
augmentation parameters kept for the objectives that need them:

- :func:`collate_images` (the loader's ``collate_fn``, no dataset transform) stacks the un-augmented images as one
  uint8 batch (B, C, H, W);
- :class:`GPUViews` makes the two views of that batch on its device with a recipe of
  :mod:`essl_aug.augment.recipes` (``"simclr"``, ``"byol"``) and returns ``(views, params)``;
- :class:`ObjectivesLoss` builds the objectives of :mod:`essl_aug.objectives` named in a config
  (``{"augself": {"weight": 1.0, "groups": ["crop", "color"]}, "continuous": {...}}``) and returns, from
  ``training_step``, the summed weighted loss and ``{"train_<name>_<key>": ...}`` to log.

- [0]: Equivariant Contrastive Learning (E-SSL), 2022, https://arxiv.org/abs/2111.00899
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import default_collate

from essl_aug.augment.pipeline import TwoViews, Views
from essl_aug.head import EquivarianceHead, Norm
from essl_aug.loss import EquivarianceLoss, EquivarianceOutput
from essl_aug.objectives.base import Objectives, StepInputs
from essl_aug.registry import FamilySpec
from essl_aug.transform import EquivariantTransform, Mode

try:
    from lightly.transforms.multi_view_transform import MultiViewTransform
    from lightly.transforms.multi_view_transform_v2 import MultiViewTransformV2
    from lightly.transforms.utils import IMAGENET_NORMALIZE
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "essl_aug.adapters.lightly needs lightly; install it with `pip install essl-aug[lightly]` "
        "(or `pip install lightly`)."
    ) from err

# after lightly's imports: without lightly, that is the error to report
from ._config import build_objectives, build_views, check_objectives, check_views, log_keys

__all__ = [
    "ESSLLoss",
    "EquivariancePredictionHead",
    "GPUViews",
    "ObjectivesLoss",
    "collate_images",
    "essl_view_size",
    "with_essl_view",
]

#: Largest main-view crop treated as CIFAR scale by :func:`with_essl_view`'s defaults.
CIFAR_SCALE_MAX_SIZE = 64
#: Reference ImageNet E-view: ``RandomResizedCrop(96, scale=(0.05, 0.14))``.
IMAGENET_ESSL_SIZE = 96
IMAGENET_ESSL_SCALE = (0.05, 0.14)


def _torchvision_rrc_types() -> tuple[type, ...]:
    from torchvision import transforms as v1
    from torchvision.transforms import v2

    return (v1.RandomResizedCrop, v2.RandomResizedCrop)


def _find_crops(obj: Any, depth: int = 0) -> list[tuple[Any, int]]:
    """``(container, index)`` of every RandomResizedCrop inside a (lightly or torchvision) view transform."""
    if depth > 8:
        return []
    found: list[tuple[Any, int]] = []
    inner = getattr(obj, "transforms", None)
    if isinstance(inner, list):
        for i, t in enumerate(inner):
            if isinstance(t, _torchvision_rrc_types()):
                found.append((inner, i))
            else:
                found += _find_crops(t, depth + 1)
    wrapped = getattr(obj, "transform", None)
    if wrapped is not None and wrapped is not obj:
        found += _find_crops(wrapped, depth + 1)
    return found


def _crop_size(crop: Any) -> int:
    size = crop.size
    return int(size[0]) if isinstance(size, (tuple, list)) else int(size)


def essl_view_size(main_size: int) -> tuple[int, tuple[float, float] | None]:
    """The reference E-view crop for a main-view crop of ``main_size`` px: ``(size, scale)``.

    CIFAR scale (``main_size <= 64``): half the main size (16 px for 32 px images), the main views' crop scale
    (``None``). ImageNet scale: 96 px with scale ``(0.05, 0.14)``.

    Example:
        >>> essl_view_size(32), essl_view_size(224)
        ((16, None), (96, (0.05, 0.14)))
    """
    if int(main_size) <= CIFAR_SCALE_MAX_SIZE:
        return max(int(main_size) // 2, 1), None
    return IMAGENET_ESSL_SIZE, IMAGENET_ESSL_SCALE


def _small_view(view: Any, input_size: int | None, scale: tuple[float, float] | None) -> Any:
    crops = _find_crops(view)
    if not crops:
        raise ValueError(
            f"cannot derive the E-view from {type(view).__name__}: it has no RandomResizedCrop; pass the view "
            "explicitly, e.g. `with_essl_view(transform, view=SimCLRViewTransform(input_size=16))`."
        )
    view = copy.deepcopy(view)
    for container, index in _find_crops(view):
        crop = container[index]
        size, default_scale = essl_view_size(_crop_size(crop))
        size = size if input_size is None else int(input_size)
        new_scale = scale if scale is not None else default_scale if default_scale is not None else crop.scale
        container[index] = type(crop)(
            size=size,
            scale=tuple(float(s) for s in new_scale),
            ratio=crop.ratio,
            interpolation=crop.interpolation,
            antialias=crop.antialias,
        )
    return view


def with_essl_view(
    transform: Any,
    view: Callable[[Any], Any] | None = None,
    *,
    input_size: int | None = None,
    scale: tuple[float, float] | None = None,
) -> MultiViewTransform | MultiViewTransformV2:
    """Append the E-SSL view to a lightly multi-view transform; it comes **last** in ``batch[0]``.

    The default E-view is a copy of the first view's transform (same flips, colour jitter, grayscale, blur and
    normalisation: the reference gives the E-view the main views' photometric augmentations) with its
    ``RandomResizedCrop`` resized to the reference E-view crop: at CIFAR scale (main crop <= 64 px) half the main
    size, 16 px for 32 px, with the main views' crop scale; at ImageNet scale 96 px with scale ``(0.05, 0.14)``.
    For ``SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.0, min_scale=0.2)`` this is exactly the
    reference CIFAR E-view, ``SimCLRViewTransform(input_size=16, cj_strength=0.5, gaussian_blur=0.0, min_scale=0.2)``.

    The E-view carries no label (labels are drawn later, on the batch's device, by :class:`ESSLLoss`), so the
    collate function stays lightly's default. Code that does ``torch.cat(views)`` over all views (lightly's
    benchmarks) must split the E-view off first: ``*views, x_e = batch[0]``.

    Args:
        transform: a lightly ``MultiViewTransform`` (``SimCLRTransform``, ``BYOLTransform``, ...), a
            ``MultiViewTransformV2``, or a sequence of per-view transforms. It is not modified.
        view: the E-view transform to use instead of the derived one (any callable ``image -> Tensor``).
        input_size: crop size of the derived E-view, overriding the default.
        scale: ``RandomResizedCrop`` scale of the derived E-view, overriding the default.

    Returns:
        A new ``MultiViewTransform`` (``MultiViewTransformV2`` for a v2 input) with the original views first,
        in order, and the E-view last.

    Example:
        >>> from lightly.transforms import SimCLRTransform
        >>> t = with_essl_view(SimCLRTransform(input_size=32))
        >>> [tuple(v.shape) for v in t(torch.rand(3, 40, 40))]
        [(3, 32, 32), (3, 32, 32), (3, 16, 16)]
    """
    if isinstance(transform, (MultiViewTransform, MultiViewTransformV2)):
        views = list(transform.transforms)
    elif isinstance(transform, Sequence) and not isinstance(transform, (str, bytes)):
        views = list(transform)
    else:
        raise TypeError(
            "`transform` must be a lightly MultiViewTransform (e.g. SimCLRTransform(...)) or a list of per-view "
            f"transforms, got {type(transform).__name__}."
        )
    if not views:
        raise ValueError("`transform` has no views; give a multi-view transform with at least one view.")
    if not all(callable(v) for v in views):
        raise TypeError("every view transform in `transform` must be callable.")
    if view is not None:
        if input_size is not None or scale is not None:
            raise ValueError("`input_size` and `scale` shape the derived E-view; do not combine them with `view`.")
        if not callable(view):
            raise TypeError(f"`view` must be a callable view transform, got {type(view).__name__}.")
    else:
        if input_size is not None and int(input_size) < 1:
            raise ValueError(f"`input_size` must be a positive number of pixels, got {input_size}.")
        if scale is not None and not (len(scale) == 2 and 0 < float(scale[0]) <= float(scale[1]) <= 1):
            raise ValueError(f"`scale` must be (min, max) with 0 < min <= max <= 1, got {scale}.")
        view = _small_view(views[0], input_size, scale)
    cls = MultiViewTransformV2 if isinstance(transform, MultiViewTransformV2) else MultiViewTransform
    return cls(transforms=[*views, view])


class EquivariancePredictionHead(EquivarianceHead):
    """The core :class:`~essl_aug.EquivarianceHead` under lightly's head argument names.

    ``[Linear-LayerNorm-ReLU] x num_layers`` then ``Linear(hidden_dim, output_dim)``: the reference E-SimCLR
    head (``512-2048-2048-4`` for a ResNet-18 and rotations). Like lightly's ``ProjectionHead`` it maps
    ``(batch, input_dim)`` features to ``(batch, output_dim)`` and keeps its layers in ``self.layers``.

    - [0]: Equivariant Contrastive Learning (E-SSL), 2022, https://arxiv.org/abs/2111.00899

    Args:
        input_dim: width of the backbone's pooled features.
        hidden_dim: width of every hidden layer.
        output_dim: number of transformation classes (``EquivariantTransform.num_classes``).
        num_layers: number of hidden layers (0: a linear head).
        norm: ``"layer"`` (reference), ``"batch"`` or ``"none"``.
        activate_last_hidden: ReLU after the last hidden layer (``False`` for the reference E-SimSiam head).

    Example:
        >>> head = EquivariancePredictionHead(input_dim=512, output_dim=4)
        >>> head(torch.rand(8, 512)).shape
        torch.Size([8, 4])
    """

    in_features_arg = "input_dim"

    def __init__(
        self,
        input_dim: int = 2048,
        hidden_dim: int = 2048,
        output_dim: int = 4,
        num_layers: int = 2,
        norm: Norm = "layer",
        activate_last_hidden: bool = True,
    ) -> None:
        if int(num_layers) < 0:
            raise ValueError(f"`num_layers` must be >= 0, got {num_layers}.")
        super().__init__(
            input_dim,
            output_dim,
            hidden=(int(hidden_dim),) * int(num_layers),
            norm=norm,
            activate_last_hidden=activate_last_hidden,
        )


def _with_normalize(spec: Any, normalize: Mapping[str, Sequence[float]]) -> Any:
    """Give every inversion named in ``spec`` lightly's ``{"mean", "std"}`` dict, unless it has its own."""
    if isinstance(spec, str):
        return {"name": "invert", "normalize": normalize} if spec == "invert" else spec
    if isinstance(spec, Mapping):
        own = {"mean", "std", "normalize"} & set(spec)
        if spec.get("name") == "invert" and not own:
            return {**spec, "normalize": normalize}
        return spec
    if isinstance(spec, Sequence):
        return [_with_normalize(s, normalize) for s in spec]
    return spec


class ESSLLoss(EquivarianceLoss):
    """The E-SSL loss for lightly models: the core :class:`~essl_aug.EquivarianceLoss` in lightly's shape.

    ``loss = weight * CE(head(backbone(g(x_e))), g)`` where ``g`` runs over the family's elements (all of them
    per image with ``mode="all"``, the reference). Add it to lightly's loss: ``criterion(z0, z1) + essl(backbone,
    x_e)``. The transform, head and cross-entropy run on ``x_e``'s device; the cross-entropy is per sample, so
    nothing is gathered under DDP (unlike ``NTXentLoss(gather_distributed=True)``).

    What it adds to the core: lightly's argument names (``input_dim``, ``hidden_dim``), lightly's ``normalize``
    dict for inversion, a ``forward`` that returns the loss tensor (the full output is :meth:`output`), and
    ``training_step`` / ``validation_step`` in the shape of lightly's ``OnlineLinearClassifier``.

    Unlike lightly's parameter-free losses (``criterion = NTXentLoss()`` next to the model), it has a head to train:
    make it a submodule of the model (``self.essl = ESSLLoss(...)``), or add ``essl.parameters()`` to the optimiser.
    A loss whose head is in no optimiser raises ``RuntimeError`` at the second optimiser step instead of silently
    never training it (see :class:`~essl_aug.EquivarianceLoss`). ``train_essl_acc`` is a fraction, as lightly logs
    accuracies.

    Args:
        transform: a family spec (``"rotation"``, ``["rotation", "vflip"]``, ``{"name": "jigsaw", ...}``), a
            family, or an :class:`~essl_aug.EquivariantTransform`.
        input_dim: width of the backbone features; builds the reference head, ``input_dim-hidden_dim-hidden_dim-K``
            (the layers of :class:`EquivariancePredictionHead`).
        head: a head to use instead (any module mapping features to ``num_classes`` logits).
        weight: the weight of the E-SSL term, the paper's lambda (reference: 0.4 for SimCLR on CIFAR-10).
        mode: ``"all"`` (reference: every element for every image) or ``"random"``, for a spec or family.
        normalize: lightly's ``{"mean": [...], "std": [...]}`` dict, given to every ``"invert"`` named in a spec so
            that inversion is exact on normalised tensors. Default: lightly's ``IMAGENET_NORMALIZE``, the default
            of lightly's transforms; pass the dict your transform uses, or ``None`` for unnormalised pixels.
        hidden_dim: hidden width of the built head.

    Example:
        >>> backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> essl = ESSLLoss("rotation", input_dim=8, hidden_dim=16)
        >>> x_e = torch.rand(4, 3, 16, 16)
        >>> loss = essl(backbone, x_e)
        >>> loss.shape
        torch.Size([])
        >>> step_loss, log = essl.training_step((backbone, x_e), 0)
        >>> sorted(log), bool(step_loss == loss), bool(loss == 0.4 * log["train_essl_loss"])
        (['train_essl_acc', 'train_essl_loss'], True, True)
    """

    in_features_arg = "input_dim"

    def __init__(
        self,
        transform: EquivariantTransform | FamilySpec,
        input_dim: int | None = None,
        head: nn.Module | None = None,
        weight: float = 0.4,
        mode: Mode = "all",
        normalize: Mapping[str, Sequence[float]] | None = IMAGENET_NORMALIZE,
        hidden_dim: int = 2048,
    ) -> None:
        if normalize is not None and not isinstance(transform, EquivariantTransform):
            if not isinstance(normalize, Mapping) or set(normalize) != {"mean", "std"}:
                raise ValueError(
                    f"`normalize` must be lightly's dict {{'mean': [...], 'std': [...]}} or None, got {normalize!r}."
                )
            transform = _with_normalize(transform, normalize)
        super().__init__(
            transform, in_features=input_dim, head=head, weight=weight, mode=mode, hidden=(hidden_dim, hidden_dim)
        )

    def views(self, x_e: Tensor) -> tuple[Tensor, Tensor]:
        """The transformed E-views and their labels, on ``x_e``'s device (``x_e`` is detached, not modified)."""
        if not isinstance(x_e, Tensor):
            raise TypeError(f"`x_e` must be the E-view batch as a Tensor (B, C, H, W), got {type(x_e).__name__}.")
        return super().views(x_e)

    def output(self, backbone: Callable[[Tensor], Tensor], x_e: Tensor) -> EquivarianceOutput:
        """Loss, cross-entropy and accuracy on the E-view batch ``x_e`` (B, C, H, W): the core's ``forward``."""
        return super().forward(backbone, x_e)

    # lightly's losses return the loss tensor; the core's full output is `output`.
    def forward(self, backbone: Callable[[Tensor], Tensor], x_e: Tensor) -> Tensor:  # type: ignore[override]
        """The weighted E-SSL loss on the E-view batch ``x_e`` (B, C, H, W), to add to lightly's loss."""
        return self.output(backbone, x_e).loss

    def _step(self, batch: Sequence[Any], prefix: str) -> tuple[Tensor, dict[str, Tensor]]:
        if not isinstance(batch, Sequence) or len(batch) != 2:
            raise ValueError(
                "`batch` must be a pair: (backbone, x_e) with the untransformed E-view, or (features, labels) "
                "of views already transformed with `.views(x_e)`."
            )
        first, second = batch
        out = self.from_features(first, second) if isinstance(first, Tensor) else self.output(first, second)
        return out.loss, {f"{prefix}_essl_loss": out.cross_entropy, f"{prefix}_essl_acc": out.accuracy}

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> tuple[Tensor, dict[str, Tensor]]:
        """``(loss, log_dict)`` in the shape of lightly's ``OnlineLinearClassifier.training_step``.

        Called by the parent LightningModule, which adds ``loss`` (already weighted) to its own and logs
        ``log_dict``: ``train_essl_loss`` (the unweighted cross-entropy) and ``train_essl_acc``.

        Args:
            batch: ``(backbone, x_e)``, a callable and the untransformed E-view batch, or ``(features, labels)``
                for views already transformed with :meth:`views`.
            batch_idx: index of the batch (unused, for the lightly signature).
        """
        return self._step(batch, "train")

    def validation_step(self, batch: Sequence[Any], batch_idx: int) -> tuple[Tensor, dict[str, Tensor]]:
        """As :meth:`training_step`, with ``val_essl_loss`` / ``val_essl_acc`` keys."""
        return self._step(batch, "val")


# --------------------------------------------------------------------------------------------------------------
# The SSL views on the device, and the objectives by config
# --------------------------------------------------------------------------------------------------------------


def _as_uint8(image: Any, index: int) -> Tensor:
    """One image (a PIL image or a (C, H, W) tensor) as a plain tensor, uint8 from PIL."""
    if isinstance(image, Tensor):
        if image.ndim != 3:
            raise ValueError(f"image {index} of the batch must be (C, H, W), got shape {tuple(image.shape)}.")
        return image.as_subclass(Tensor)
    if hasattr(image, "getbands"):  # a PIL image
        from torchvision.transforms.v2.functional import pil_to_tensor

        return pil_to_tensor(image.convert("RGB") if image.mode not in ("RGB", "L") else image)
    raise TypeError(
        f"image {index} of the batch must be a PIL image or a (C, H, W) tensor, got {type(image).__name__}; give "
        "the dataset no transform (or one that returns such an image)."
    )


def collate_images(batch: Sequence[Any]) -> list[Any]:
    """A ``collate_fn`` for un-augmented images: ``[(image, *rest), ...]`` -> ``[images, *collated rest]``.

    ``images`` is one (B, C, H, W) tensor of the images' dtype: uint8 for PIL images (no scaling, no
    normalisation: :class:`GPUViews` does both on the device, in one pass). The rest of each item (lightly's
    ``LightlyDataset`` gives ``(image, target, filename)``) is collated by torch's ``default_collate``. The images
    must share one size (resize them in the dataset's transform otherwise).

    Example:
        >>> from PIL import Image
        >>> images, targets = collate_images([(Image.new("RGB", (8, 6)), 0), (Image.new("RGB", (8, 6)), 1)])
        >>> images.dtype, tuple(images.shape), targets.tolist()
        (torch.uint8, (2, 3, 6, 8), [0, 1])
    """
    if not isinstance(batch, Sequence) or not batch:
        raise ValueError("`batch` must be a non-empty list of dataset items, (image, ...) or images.")
    items = [item if isinstance(item, (tuple, list)) else (item,) for item in batch]
    images = [_as_uint8(item[0], i) for i, item in enumerate(items)]
    shapes = sorted({tuple(im.shape) for im in images})
    if len(shapes) > 1:
        raise ValueError(
            f"the images of a batch must share one size to be stacked, got {shapes}; resize them in the dataset's "
            "transform (e.g. torchvision.transforms.v2.Resize + CenterCrop)."
        )
    rest = [default_collate([item[k] for item in items]) for k in range(1, len(items[0]))]
    return [torch.stack(images), *rest]


class GPUViews(nn.Module):
    """The two SSL views of a batch, made on its device by a recipe of :mod:`essl_aug.augment.recipes`.

    ``forward(x)`` takes the un-augmented batch (B, C, H, W), uint8 in [0, 255] (e.g. from :func:`collate_images`)
    or float in [0, 1], and returns :class:`~essl_aug.augment.pipeline.Views` ``(views, params)``: the two
    normalised float32 views and, per view, ``{augmentation name: params}``, what the objectives of
    :class:`ObjectivesLoss` need (``StepInputs(params=tuple(params))``). The views are made outside autocast (in
    the recipe's dtypes) and off the autograd graph of ``x``; ``x`` is not modified. It replaces lightly's
    ``SimCLRTransform`` / ``BYOLTransform`` in the dataset.

    Args:
        recipe: a recipe name (``"simclr"``, ``"byol"``) or a :class:`~essl_aug.augment.pipeline.TwoViews`.
        size: the views' size (the recipe's ``size``); for a name only.
        generator: draws the parameters (on its device), optional; default: torch's global RNG.
        options: the recipe's options (``scale``, ``normalize``, ``jitter_strength``, ...), for a name only.

    Example:
        >>> gpu_views = GPUViews("simclr", size=16)
        >>> views, params = gpu_views(torch.randint(0, 256, (4, 3, 24, 24), dtype=torch.uint8))
        >>> [tuple(v.shape) for v in views], tuple(params[0]["resized_crop"].box.shape)
        ([(4, 3, 16, 16), (4, 3, 16, 16)], (4, 4))
    """

    def __init__(
        self,
        recipe: str | TwoViews = "simclr",
        size: int | tuple[int, int] | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if isinstance(recipe, TwoViews):
            if size is not None or options:
                raise ValueError("`size` and recipe options shape a recipe given by name; not with a TwoViews.")
            self.recipe = recipe
        elif isinstance(recipe, str):
            spec = check_views({"name": recipe, **options}, "`recipe`")
            assert spec is not None
            self.recipe = build_views(spec, 224 if size is None else size, "`recipe`")
        else:
            raise TypeError(
                f"`recipe` must be a recipe name ('simclr', 'byol') or a TwoViews, got {type(recipe).__name__}."
            )
        self.generator = generator

    def forward(self, x: Tensor) -> Views:
        if not isinstance(x, Tensor):
            raise TypeError(
                f"`x` must be the un-augmented batch as a (B, C, H, W) tensor, got {type(x).__name__}; use "
                "collate_images as the DataLoader's collate_fn."
            )
        with torch.autocast(x.device.type, enabled=False), torch.no_grad():
            return self.recipe(x, self.generator)

    def extra_repr(self) -> str:
        return repr(self.recipe)


class ObjectivesLoss(Objectives):
    """The objectives of :mod:`essl_aug.objectives` selected by a config, in the shape of lightly's heads.

    :meth:`from_config` builds them by name (``continuous``: ``essl_aug.objectives.continuous.ContinuousESSL``,
    ``augself``: ``essl_aug.objectives.augself.AugSelf``, ``predictor``:
    ``essl_aug.objectives.predictor.PredictorEquivariance``), each with its options, giving each the
    ``in_features`` (and the other context values, e.g. ``augmentations``, ``embedding_dim``) its constructor names. The
    discrete E-SSL term stays :class:`ESSLLoss`. Like :class:`ESSLLoss`, make it a submodule of the model: its heads
    have parameters to optimise. ``forward(inputs)`` is the core's (:class:`~essl_aug.objectives.base.ObjectiveOutput`);
    :meth:`training_step` returns ``(loss, {"train_<name>_<key>": ...})``.
    """

    @classmethod
    def from_config(cls, config: Mapping[str, Any], in_features: int, **context: Any) -> ObjectivesLoss:
        """The objectives of ``config`` (``{name: {option: value}}``); errors name ``objectives.<name>``.

        Args:
            config: the objectives and their options, e.g. ``{"augself": {"weight": 1.0, "groups": ["crop"]}}``.
            in_features: width of the backbone's pooled features.
            context: more values for the constructors that name them (``augmentations``: the :class:`GPUViews` recipe,
                ``embedding_dim``: the projector's output width, ...).
        """
        spec = check_objectives(config, "objectives")
        if not spec:
            raise ValueError("`config` names no objective; give e.g. {'augself': {'weight': 1.0}}.")
        return cls(build_objectives(spec, {"in_features": in_features, **context}, "objectives"))

    def _step(self, inputs: StepInputs, prefix: str) -> tuple[Tensor, dict[str, Tensor]]:
        if not isinstance(inputs, StepInputs):
            raise TypeError(
                f"`inputs` must be a StepInputs (backbone, extra, features, embeddings, params), got "
                f"{type(inputs).__name__}."
            )
        out = self(inputs)
        return out.loss, log_keys(out.logs, prefix)

    def training_step(self, inputs: StepInputs, batch_idx: int) -> tuple[Tensor, dict[str, Tensor]]:
        """``(loss, log_dict)``: the objectives' summed weighted loss, to add to lightly's, and their logs as
        ``train_<name>_<key>`` (``train_<name>_loss`` the weighted loss), detached."""
        return self._step(inputs, "train")

    def validation_step(self, inputs: StepInputs, batch_idx: int) -> tuple[Tensor, dict[str, Tensor]]:
        """As :meth:`training_step`, with ``val_`` keys."""
        return self._step(inputs, "val")
