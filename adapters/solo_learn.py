"""E-SSL for any solo-learn method: ``equivariant(METHODS[name])`` or one ``install()`` call.

The adapter subclasses a solo-learn method (``SimCLR``, ``BYOL``, ``BarlowTwins``, ``VICReg``, ...) and only wires:
it translates the ``essl`` settings into the core's :class:`~essl_aug.EquivarianceLoss` (which checks them), takes
the E-SSL view from the batch, runs it through the online backbone and adds the weighted cross-entropy to the loss
that the method's ``training_step`` returns.

Both solo-learn APIs are supported, detected from the class, not from a version number:

- the omegaconf API (GitHub, 1.0.6): ``Method(cfg)``, an ``essl:`` block in the config, defaults filled by the
  method's ``add_and_assert_specific_cfg`` hook;
- the argparse API (PyPI, 1.0.2): ``Method(**kwargs)``, flags ``--essl_lambda 0.4 --essl_transform rotation ...``
  (one ``--essl_<key>`` per key of the block) added by the method's ``add_model_specific_args`` hook, arriving as
  ``essl_*`` keyword arguments.

Settings (the ``essl:`` block; ``lambda`` is the paper's name for the weight, read by key: ``cfg.essl.lambda`` would
be a Python syntax error; in Python the value is ``EsslSettings.weight``):

==============  =============  ============================================================================
key             default        meaning
==============  =============  ============================================================================
``lambda``      ``0.4``        weight of the E-SSL term; ``0`` keeps the original model (no head, no forward)
``transform``   ``rotation``   a family name, a list of names (a product) or ``{"name": ..., **options}``
``mode``        ``all``        ``all``: every element for every image (reference); ``random``: one per image
``crop_size``   ``null``       resize the E-SSL view to this size (reference CIFAR-10: 16); ``null`` keeps it
                               (a backbone with a fixed input size, a ViT or MAE, refuses any other size)
``crop_scale``  ``null``       ``[lo, hi]``: a random resized crop of that area range instead of a resize
``source``      ``gpu``        ``gpu``: derive the view from crop ``view`` of the batch; ``extra_crop``: the
                               last crop of the batch is the E-SSL view (declared in the crop counts)
``view``        ``0``          which crop ``source: gpu`` derives the view from
``hidden_dim``  ``2048``       head width: ``in-h-h-K`` (reference), or a list of hidden widths
``views``       ``null``       the two views made on the device by a recipe of :mod:`essl_aug.augment.recipes`
                               (``simclr``, ``byol``, or ``{name: byol, size: 32, **recipe options}``; the
                               size defaults to the config's crop size) from the un-augmented images the
                               loader yields (see :func:`loader_transform`); their parameters go to the
                               objectives. ``null``: solo-learn's own crops
``objectives``  ``null``       more objectives by name, each with its options: ``continuous``, ``augself``,
                               ``predictor`` (``{augself: {weight: 1.0, groups: [crop, color]}}``); built
                               with ``in_features`` (and the recipe) filled in, added to the loss; logged as
                               ``train_<name>_<key>``
==============  =============  ============================================================================

Without an ``essl`` block (and without ``defaults`` given to :func:`equivariant`) the adapted class is inactive:
exactly the original method.

Logged per step and epoch: ``train_essl_loss`` (the unweighted cross-entropy) and ``train_essl_acc``, the accuracy of
the head **in percent**, like solo-learn's own accuracies (``train_acc1``); :class:`~essl_aug.EquivarianceOutput`
keeps the fraction. The discrete E-SSL term is the ``essl`` objective (its keys above; ``lambda: 0`` switches it off
while other objectives run); each objective of ``objectives`` logs ``train_<name>_loss`` (weighted) and its own
``train_<name>_<key>``. An objective receives the online backbone, the E-SSL view (``extra``, as ``source``,
``view``, ``crop_size`` and ``crop_scale`` make it), the backbone features and projector outputs of the first two
crops (``features``, ``embeddings``: read from the method's own forward, no extra pass) and, with ``views``, the
views' augmentation parameters (``params``); one that needs ``params`` needs ``views``.

With ``views``, the data set yields one un-augmented image per sample (uint8 or float, all of one size: build its
transform with :func:`loader_transform` in place of solo-learn's crop pipeline), the method counts two large crops
and no small ones (the config's crop settings, whose ``crop_size`` sizes the views), and ``source`` must be ``gpu``.

The method's config hook fills solo-learn's defaults into the caller's config in place (``main_pretrain.py`` reads
them there and saves that config as ``args.json``), with the ``essl`` block filled in too; with
``source: extra_crop`` the method itself is built on a copy that counts one crop fewer.

The adapted classes are made once and kept as attributes of this module (``EquivariantSimCLR``; with class defaults,
or for a method outside ``solo.methods``, ``EquivariantSimCLR__<hex of a JSON key>``), so their instances pickle by
reference like any class; in a fresh process the module rebuilds a class from its name.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeGuard, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug.augment.pipeline import TwoViews
from essl_aug.head import hidden_widths
from essl_aug.loss import EquivarianceLoss, EquivarianceOutput, check_weight
from essl_aug.objectives.base import Objectives, StepInputs
from essl_aug.registry import build_family
from essl_aug.transform import EquivariantTransform, Mode

from ._config import (
    build_objectives,
    build_views,
    check_objectives,
    check_provided,
    check_views,
    class_requires,
    log_keys,
    objective_class,
    parse_json,
)

__all__ = ["DEFAULTS", "EsslSettings", "equivariant", "install", "is_equivariant", "loader_transform"]

_EXTRA = "pip install -e <solo-learn clone> 'essl-aug[solo]', or PyPI's 1.0.2 via scripts/install_solo_overlay.sh"

#: Defaults of the ``essl`` block (the reference E-SimCLR CIFAR-10 recipe, except ``crop_size``).
DEFAULTS: dict[str, Any] = {
    "lambda": 0.4,
    "transform": "rotation",
    "mode": "all",
    "crop_size": None,
    "crop_scale": None,
    "source": "gpu",
    "view": 0,
    "hidden_dim": 2048,
    "views": None,
    "objectives": None,
}
_SOURCES = ("gpu", "extra_crop")
#: How a config provides the inputs of an objective that a step may lack.
_FIXES = {
    "params": "the views' augmentation parameters: set essl.views (simclr or byol) so that the views are made on "
    "the device with their parameters",
    "embeddings": "the projector's outputs: the method has no `projector` module; read the backbone features "
    "instead (e.g. source: features)",
}
_PREFIX = "Equivariant"


def _plain(value: Any) -> Any:
    """omegaconf containers -> plain Python containers (other values unchanged)."""
    if type(value).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    return value


def _parse_transform(value: Any) -> Any:
    """A command-line string: ``rotation``, ``rotation,vflip`` (a product) or JSON (``["rotation", "vflip"]``)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text[:1] in "[{":
        return parse_json(value, "essl.transform")
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else parts


def _core(key: str, build: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``build(*args, **kwargs)``: a core check or constructor; its error is re-raised under ``essl.<key>``."""
    try:
        return build(*args, **kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"essl.{key}: {err}") from err


@dataclass(frozen=True)
class EsslSettings:
    """The ``essl`` block, checked. Build it with :meth:`from_mapping`.

    The core checks ``lambda`` (as ``weight``), ``transform``, ``mode`` and ``hidden_dim``; the view keys
    (``crop_size``, ``crop_scale``, ``source``, ``view``) are the adapter's own. The transform is built once,
    here, and is the one the model uses.

    Example:
        >>> s = EsslSettings.from_mapping({"lambda": 0.5, "transform": "rotation,vflip", "crop_size": 16})
        >>> s.weight, s.transform, s.num_classes, s.hidden
        (0.5, ['rotation', 'vflip'], 8, (2048, 2048))
    """

    weight: float
    transform: Any
    mode: Mode
    crop_size: int | None
    crop_scale: tuple[float, float] | None
    source: str
    view: int
    hidden_dim: int | list[int]
    #: The two-view recipe (``{"name": ..., **options}``) or ``None``.
    views: dict[str, Any] | None
    #: The other objectives, ``{name: {option: value}}`` (empty: none).
    objectives: dict[str, dict[str, Any]]
    #: The core transform built from ``transform`` and ``mode``.
    equivariant_transform: EquivariantTransform = field(compare=False, repr=False)

    @property
    def active(self) -> bool:
        """Whether the E-SSL branch runs (``weight > 0``)."""
        return self.weight > 0

    @property
    def enabled(self) -> bool:
        """Whether the adapter does anything in ``training_step``: the E-SSL term, views or objectives."""
        return self.active or self.views is not None or bool(self.objectives)

    @property
    def hidden(self) -> tuple[int, ...]:
        """Hidden widths of the head."""
        return (self.hidden_dim, self.hidden_dim) if isinstance(self.hidden_dim, int) else tuple(self.hidden_dim)

    @property
    def num_classes(self) -> int:
        """Number of transformation classes the head predicts."""
        return self.equivariant_transform.num_classes

    def as_config(self) -> dict[str, Any]:
        """The settings as an ``essl`` block (plain types, key ``lambda``)."""
        block = {f.name: getattr(self, f.name) for f in fields(self) if f.compare}  # not the built transform
        block["lambda"] = block.pop("weight")
        block["crop_scale"] = None if self.crop_scale is None else list(self.crop_scale)
        block["objectives"] = copy.deepcopy(self.objectives) or None
        block["views"] = copy.deepcopy(self.views)
        return block

    @classmethod
    def from_mapping(cls, block: Mapping[str, Any] | None, defaults: Mapping[str, Any] | None = None) -> EsslSettings:
        """Merge ``DEFAULTS`` < ``defaults`` < ``block`` and check; errors name the ``essl.<key>`` at fault."""
        merged: dict[str, Any] = dict(DEFAULTS)
        for source in (defaults or {}, _plain(block) or {}):
            if not isinstance(source, Mapping):
                raise TypeError(f"the essl block must be a mapping of settings, got {type(source).__name__}.")
            unknown = sorted(set(source) - set(DEFAULTS))
            if unknown:
                raise ValueError(f"unknown essl setting(s) {unknown}; valid keys are {sorted(DEFAULTS)}.")
            merged.update({k: _plain(v) for k, v in source.items()})

        source = merged["source"]
        if source not in _SOURCES:
            raise ValueError(f"essl.source must be one of {list(_SOURCES)}, got {source!r}.")
        view = merged["view"]
        if isinstance(view, bool) or not isinstance(view, int) or view < 0:
            raise ValueError(f"essl.view must be a crop index >= 0, got {view!r}.")
        size = merged["crop_size"]
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 2):
            raise ValueError(f"essl.crop_size must be null or an integer >= 2 (reference CIFAR-10: 16), got {size!r}.")
        scale = merged["crop_scale"]
        if scale is not None:
            ok = isinstance(scale, (list, tuple)) and len(scale) == 2
            ok = ok and all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scale)
            if not ok or not 0 < scale[0] <= scale[1] <= 1:
                raise ValueError(f"essl.crop_scale must be null or [lo, hi] with 0 < lo <= hi <= 1, got {scale!r}.")
            if size is None:
                raise ValueError("essl.crop_scale needs essl.crop_size (the output size of the random resized crop).")
            scale = (float(scale[0]), float(scale[1]))
        hidden = merged["hidden_dim"]
        if isinstance(hidden, int) and not isinstance(hidden, bool):
            _core("hidden_dim", hidden_widths, [hidden])
        elif isinstance(hidden, (list, tuple)) and hidden:
            hidden = list(_core("hidden_dim", hidden_widths, hidden))
        else:
            raise ValueError(f"essl.hidden_dim must be a positive integer or a list of them, got {hidden!r}.")

        views = check_views(merged["views"], "essl.views")
        if views is not None and source != "gpu":
            raise ValueError(
                "essl.views makes both views on the device from one un-augmented image per sample, so there is no "
                "extra crop in the batch: set essl.source: gpu (the E-SSL view is then derived from view essl.view)."
            )
        objectives = check_objectives(merged["objectives"], "essl.objectives")
        for name in objectives:
            if "params" in (class_requires(objective_class(name, "essl.objectives")) or ()) and views is None:
                raise ValueError(
                    f"essl.objectives.{name} needs params, which the training step does not have ({_FIXES['params']})."
                )
        weight = _core("lambda", check_weight, merged["lambda"])
        transform = _parse_transform(merged["transform"])
        family = _core("transform", build_family, transform)
        return cls(
            weight=weight,
            transform=transform,
            mode=merged["mode"],
            crop_size=size,
            crop_scale=scale,
            source=source,
            view=view,
            hidden_dim=hidden,
            views=views,
            objectives=objectives,
            equivariant_transform=_core("mode", EquivariantTransform, family, mode=merged["mode"]),
        )


# --------------------------------------------------------------------------------------------------------------
# The adapted classes: Equivariant<Method>(<API mixin>, <Method>)
# --------------------------------------------------------------------------------------------------------------

#: The settings read from a constructor's arguments, and the arguments left for the method.
_Arguments = tuple[EsslSettings | None, tuple[Any, ...], dict[str, Any]]


def _is_method_class(cls: Any) -> TypeGuard[type]:
    """A solo-learn method class: a subclass of solo's ``BaseMethod`` with one of the two config hooks."""
    if not isinstance(cls, type):
        return False
    if not any(base.__name__ == "BaseMethod" for base in cls.__mro__):
        return False
    return hasattr(cls, "add_and_assert_specific_cfg") or hasattr(cls, "add_model_specific_args")


def is_equivariant(cls: Any) -> bool:
    """Whether ``cls`` (a class or an instance) was made by :func:`equivariant`."""
    cls = cls if isinstance(cls, type) else type(cls)
    return "_essl_base" in vars(cls)


def _select(cfg: Any, key: str) -> Any:
    """``cfg[key]`` for a DictConfig or a mapping; ``None`` when absent."""
    if isinstance(cfg, Mapping) or hasattr(cfg, "keys"):
        return cfg.get(key) if key in cfg else None
    return getattr(cfg, key, None)


def _cfg_without_last_crop(cfg: Any) -> Any:
    """A copy of a solo-learn cfg that counts one crop fewer (the last one: small if there are small crops)."""
    cfg = copy.deepcopy(cfg)
    data = _select(cfg, "data")
    if data is None:
        raise ValueError("essl.source=extra_crop needs cfg.data.num_large_crops / num_small_crops.")
    key = "num_small_crops" if int(_select(data, "num_small_crops") or 0) > 0 else "num_large_crops"
    data[key] = int(data[key]) - 1
    return cfg


def _fixed_input_size(backbone: object) -> tuple[int, int] | None:
    """``(H, W)`` if the backbone takes only that input size (timm's ``PatchEmbed`` with a strict ``img_size``: ViTs,
    MAE's encoder); ``None`` for a backbone that takes any size (ResNets, a ViT with ``dynamic_img_size``)."""
    embed = getattr(backbone, "patch_embed", None)
    size = getattr(embed, "img_size", None)
    if not isinstance(embed, nn.Module) or size is None or getattr(backbone, "dynamic_img_size", False):
        return None
    if not getattr(embed, "strict_img_size", True):
        return None
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return int(height), int(width)


def _output_width(module: object) -> int | None:
    """The output width of a projector: its last ``nn.Linear``'s ``out_features`` (``None`` if it has none)."""
    if not isinstance(module, nn.Module):
        return None
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return int(linears[-1].out_features) if linears else None


class _Capture:
    """The outputs of the first two calls of some modules while it is open: the two views' features and embeddings,
    read from the method's own forward (forward hooks, removed on exit)."""

    def __init__(self, modules: Mapping[str, nn.Module]) -> None:
        self.modules = modules
        self.outputs: dict[str, list[Tensor]] = {name: [] for name in modules}
        self._handles: list[Any] = []

    def __enter__(self) -> _Capture:
        for name, module in self.modules.items():
            seen = self.outputs[name]

            def hook(_module: nn.Module, _inputs: Any, output: Any, seen: list[Tensor] = seen) -> None:
                if len(seen) < 2 and isinstance(output, Tensor):
                    seen.append(output)

            self._handles.append(module.register_forward_hook(hook))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def pair(self, name: str) -> tuple[Tensor, Tensor] | None:
        """The first two outputs of module ``name`` (``None`` if it was not captured)."""
        seen = self.outputs.get(name, [])
        if name in self.modules and len(seen) < 2:
            raise RuntimeError(
                f"the method's training step called its {name} {len(seen)} time(s), fewer than the two views; "
                "the objectives that need it cannot run with this method."
            )
        return (seen[0], seen[1]) if name in self.modules else None


def _kwargs_without_last_crop(kwargs: dict[str, Any]) -> None:
    key = "num_small_crops" if int(kwargs.get("num_small_crops") or 0) > 0 else "num_large_crops"
    if key not in kwargs:
        raise ValueError("essl_source=extra_crop needs num_large_crops / num_small_crops keyword arguments.")
    kwargs[key] = int(kwargs[key]) - 1


class _EquivariantMethod:
    """Behaviour shared by every adapted class (before the solo-learn method in the MRO)."""

    _essl_base: ClassVar[type[Any]]
    _essl_defaults: ClassVar[dict[str, Any]]
    # provided by the solo-learn method
    num_crops: int
    num_large_crops: int
    num_small_crops: int
    features_dim: int
    log_dict: Callable[..., None]

    essl_settings: EsslSettings | None
    essl: EquivarianceLoss
    essl_crop: Callable[[Tensor], Tensor]
    #: The two-view recipe of ``essl.views`` (absent without it).
    essl_views: TwoViews
    #: The objectives of ``essl.objectives`` (absent without them).
    essl_objectives: Objectives
    _essl_fixed_size: tuple[int, int] | None

    @classmethod
    def _essl_arguments(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Arguments:
        """The settings from the constructor's arguments, and the arguments for the method (API-specific)."""
        raise NotImplementedError

    def _essl_crop_size(self) -> Any:
        """The crop size of the method's config (API-specific); ``None`` when it has none."""
        return None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings, args, kwargs = self._essl_arguments(args, kwargs)
        super().__init__(*args, **kwargs)
        self.essl_settings = settings
        if settings is None or not settings.enabled:
            return
        if settings.views is not None:
            if self.num_large_crops != 2 or self.num_small_crops:
                raise ValueError(
                    f"essl.views makes 2 views, but the method counts {self.num_large_crops} large and "
                    f"{self.num_small_crops} small crops; configure 2 large crops and no small ones (one entry in "
                    "cfg.augmentations with num_crops: 2; --num_crops_per_aug 2 in solo-learn 1.0.2)."
                )
            self.essl_views = build_views(settings.views, self._essl_crop_size(), "essl.views")
        if settings.objectives:
            built = build_objectives(settings.objectives, self._essl_context(), "essl.objectives")
            provided = {"backbone", "extra", "features"} | ({"params"} if settings.views is not None else set())
            if isinstance(getattr(self, "projector", None), nn.Module):
                provided.add("embeddings")
            check_provided(built, frozenset(provided), "essl.objectives", _FIXES)
            self.essl_objectives = Objectives(built)
        if not self._essl_needs_extra():
            return
        if settings.source == "gpu" and settings.view >= self.num_crops:
            raise ValueError(f"essl.view={settings.view} but the method has only {self.num_crops} crops.")
        if settings.active:
            self.essl = EquivarianceLoss(
                settings.equivariant_transform,
                in_features=self.features_dim,
                weight=settings.weight,
                hidden=settings.hidden,
            )
        backbone = getattr(self, "backbone", None)
        backbone = backbone if isinstance(backbone, nn.Module) else getattr(self, "encoder", None)
        fixed = _fixed_input_size(backbone)
        if fixed is not None and settings.crop_size is not None and (settings.crop_size,) * 2 != fixed:
            raise ValueError(
                f"essl.crop_size={settings.crop_size} but the backbone ({type(backbone).__name__}) takes "
                f"only {fixed[0]}x{fixed[1]} images (a fixed input size, e.g. a ViT or MAE); set essl.crop_size: null "
                f"(the view keeps its crop's size) or {fixed[0]}."
            )
        self._essl_fixed_size = fixed
        if settings.crop_scale is not None and settings.crop_size is not None:
            from kornia.augmentation import RandomResizedCrop

            self.essl_crop = RandomResizedCrop((settings.crop_size, settings.crop_size), scale=settings.crop_scale)

    @property
    def essl_active(self) -> bool:
        """Whether the E-SSL branch runs in ``training_step``."""
        return self.essl_settings is not None and self.essl_settings.active

    def _essl_objectives(self) -> Objectives | None:
        objectives = vars(self).get("_modules", {}).get("essl_objectives")
        return objectives if isinstance(objectives, Objectives) else None

    def _essl_needs_extra(self) -> bool:
        """Whether a step makes the E-SSL view: for the E-SSL term, or for an objective that needs ``extra``."""
        objectives = self._essl_objectives()
        return self.essl_active or (objectives is not None and "extra" in objectives.requires)

    def _essl_context(self) -> dict[str, Any]:
        """What the adapter fills into an objective's constructor when the objective takes it."""
        context: dict[str, Any] = {"in_features": self.features_dim}
        views = vars(self).get("essl_views")
        if views is not None:
            context["augmentations"] = views
        width = _output_width(getattr(self, "projector", None))
        if width is not None:
            context["embedding_dim"] = width
        return context

    @property
    def learnable_params(self) -> list[dict[str, Any]]:
        params = super().learnable_params  # type: ignore[misc]
        if self.essl_active:
            params = [*params, {"name": "essl_head", "params": self.essl.head.parameters()}]
        objectives = self._essl_objectives()
        if objectives is not None:
            params = [*params, {"name": "essl_objectives", "params": objectives.parameters()}]
        return params

    def _essl_view(self, x: Tensor, settings: EsslSettings) -> Tensor:
        """Resize (or random-resized-crop) the E-SSL view to ``crop_size``; a new tensor, off the input's graph."""
        x = x.detach()
        size = settings.crop_size
        if settings.crop_scale is not None:
            return self.essl_crop(x)
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        fixed = self._essl_fixed_size
        if fixed is not None and tuple(x.shape[-2:]) != fixed:
            what = "the last crop" if settings.source == "extra_crop" else f"crop {settings.view}"
            raise ValueError(
                f"the E-SSL view ({what} of the batch) is {x.shape[-2]}x{x.shape[-1]} but the backbone takes only "
                f"{fixed[0]}x{fixed[1]} images; give that crop the backbone's size (crop_size: {fixed[0]})."
            )
        return x

    def _essl_backbone(self) -> nn.Module:
        """The online backbone: ``backbone`` in the omegaconf API, ``encoder`` in the argparse API."""
        backbone = getattr(self, "backbone", None)
        return backbone if isinstance(backbone, nn.Module) else getattr(self, "encoder")  # noqa: B009

    def _essl_features(self, views: Tensor) -> Tensor:
        """The online backbone on the views."""
        if getattr(self, "no_channel_last", True) is False:  # follow the method's own forward
            views = views.to(memory_format=torch.channels_last)
        return self._essl_backbone()(views)

    def _essl_loss(self, x: Tensor) -> EquivarianceOutput:
        """The E-SSL branch on the crop ``x``: views, backbone, head, weighted cross-entropy; logs it."""
        assert self.essl_settings is not None, "the E-SSL branch runs only with settings"
        out = self.essl(self._essl_features, self._essl_view(x, self.essl_settings))
        # in percent, like solo-learn's own accuracies (train_acc1, ...); the output keeps the fraction
        self.log_dict(
            {"train_essl_loss": out.cross_entropy, "train_essl_acc": 100 * out.accuracy}, on_epoch=True, sync_dist=True
        )
        return out

    def _essl_make_views(self, crops: Any) -> tuple[list[Tensor], list[dict[str, Any]]]:
        """``essl.views``: the two views of the un-augmented images of the batch and their parameters."""
        images = crops[0] if isinstance(crops, (list, tuple)) and len(crops) == 1 else crops
        if not isinstance(images, Tensor):
            raise ValueError(
                f"essl.views makes the views from the un-augmented images, one per sample, but the batch holds "
                f"{len(crops)} crops; build the data set's transform with "
                "essl_aug.adapters.solo_learn.loader_transform() instead of solo-learn's crop pipeline."
            )
        with torch.autocast(images.device.type, enabled=False):  # the views in the recipe's dtypes, not autocast's
            views, params = self.essl_views(images)
        return views, params

    def _essl_inputs(self, x: Tensor, capture: _Capture | None, params: list[dict[str, Any]] | None) -> StepInputs:
        """What a step hands to the objectives."""
        assert self.essl_settings is not None
        objectives = self._essl_objectives()
        needs_extra = objectives is not None and "extra" in objectives.requires
        return StepInputs(
            backbone=self._essl_features,
            extra=self._essl_view(x, self.essl_settings) if needs_extra else None,
            features=None if capture is None else capture.pair("backbone"),
            embeddings=None if capture is None else capture.pair("projector"),
            params=None if params is None else (params[0], params[1]),
        )

    def _essl_capture(self) -> _Capture | None:
        """Hooks on the online backbone and projector for the objectives that need their outputs."""
        objectives = self._essl_objectives()
        if objectives is None:
            return None
        modules: dict[str, nn.Module] = {}
        if "features" in objectives.requires:
            modules["backbone"] = self._essl_backbone()
        if "embeddings" in objectives.requires:
            modules["projector"] = getattr(self, "projector")  # noqa: B009
        return _Capture(modules)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        settings = self.essl_settings
        if settings is None:
            return super().training_step(batch, batch_idx)  # type: ignore[misc]
        indexes, crops, targets = batch
        params = None
        if settings.views is not None:
            crops, params = self._essl_make_views(crops)
            batch = [indexes, crops, targets]
        crops = [crops] if isinstance(crops, Tensor) else list(crops)
        if settings.source == "extra_crop":
            x = crops.pop()
            batch = [indexes, crops, targets]
        else:
            x = crops[settings.view]
        capture = self._essl_capture()
        if capture is None:
            out = super().training_step(batch, batch_idx)  # type: ignore[misc]
        else:
            with capture:
                out = super().training_step(batch, batch_idx)  # type: ignore[misc]
        terms: list[Tensor] = []
        if settings.active:
            terms.append(self._essl_loss(x).loss)
        objectives = self._essl_objectives()
        if objectives is not None:
            result = objectives(self._essl_inputs(x, capture, params))
            self.log_dict(log_keys(result.logs, "train"), on_epoch=True, sync_dist=True)
            terms.append(result.loss)
        if not terms:
            return out
        essl = terms[0] if len(terms) == 1 else terms[0] + terms[1]
        if isinstance(out, Tensor):
            return out + essl
        if isinstance(out, Mapping) and "loss" in out:
            return {**out, "loss": out["loss"] + essl}
        raise TypeError(f"{self._essl_base.__name__}.training_step returned {type(out).__name__}, not a loss.")


class _OmegaconfMethod(_EquivariantMethod):
    """solo-learn's omegaconf API (GitHub 1.0.6): ``Method(cfg)`` with an ``essl:`` block in the config."""

    @classmethod
    def add_and_assert_specific_cfg(cls, cfg: Any) -> Any:
        """The method's hook, then fill and check the ``essl`` block (left absent when the class is inactive)."""
        cfg = cls._essl_base.add_and_assert_specific_cfg(cfg)
        block = _select(cfg, "essl")
        if block is None and not cls._essl_defaults:
            return cfg  # inactive: the config is left as the method leaves it
        settings = EsslSettings.from_mapping(block, cls._essl_defaults)
        from omegaconf import open_dict

        with open_dict(cfg):
            cfg.essl = settings.as_config()
        return cfg

    @classmethod
    def _essl_arguments(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Arguments:
        cfg = args[0] if args else kwargs.get("cfg")
        if cfg is None:
            raise TypeError(f"{cls.__name__} takes the solo-learn cfg (a DictConfig) as first argument.")
        block = _select(cfg, "essl")
        if block is None and not cls._essl_defaults:
            return None, args, kwargs
        settings = EsslSettings.from_mapping(block, cls._essl_defaults)
        if settings.source == "extra_crop":
            # main_pretrain.py reads the defaults that the method's hook fills into the caller's cfg (and saves that
            # cfg as args.json): fill them in place, as the method itself would, then build the method on a copy
            # with one crop fewer (the caller's crop counts stay: its data module draws every crop).
            cls.add_and_assert_specific_cfg(cfg)
            cfg = _cfg_without_last_crop(cfg)
            args, kwargs = ((cfg, *args[1:]), kwargs) if args else (args, {**kwargs, "cfg": cfg})
        return settings, args, kwargs

    def _essl_crop_size(self) -> Any:
        """``cfg.augmentations[0].crop_size`` (the large crops' size)."""
        augmentations = _select(getattr(self, "cfg", {}), "augmentations")
        return _select(augmentations[0], "crop_size") if augmentations else None


class _ArgparseMethod(_EquivariantMethod):
    """solo-learn's argparse API (PyPI 1.0.2): ``Method(**kwargs)`` with ``essl_*`` keyword arguments."""

    @classmethod
    def add_model_specific_args(cls, parent_parser: Any) -> Any:
        """The method's arguments plus one ``--essl_<key>`` flag per key of the ``essl`` block."""
        parent_parser = cls._essl_base.add_model_specific_args(parent_parser)
        if "--essl_lambda" in getattr(parent_parser, "_option_string_actions", {}):
            return parent_parser
        group = parent_parser.add_argument_group("essl")
        group.add_argument("--essl_lambda", type=float, default=None, help="E-SSL weight (reference 0.4)")
        group.add_argument("--essl_transform", type=str, default=None, help="rotation | rotation,vflip | JSON")
        group.add_argument("--essl_mode", type=str, default=None, choices=get_args(Mode))
        group.add_argument("--essl_crop_size", type=int, default=None)
        group.add_argument("--essl_crop_scale", type=float, nargs=2, default=None)
        group.add_argument("--essl_source", type=str, default=None, choices=_SOURCES)
        group.add_argument("--essl_view", type=int, default=None)
        group.add_argument("--essl_hidden_dim", type=int, default=None)
        group.add_argument("--essl_views", type=str, default=None, help="simclr | byol | JSON {name, size, ...}")
        group.add_argument("--essl_objectives", type=str, default=None, help='JSON: {"augself": {"weight": 1.0}}')
        return parent_parser

    @classmethod
    def _essl_arguments(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Arguments:
        block = {k.removeprefix("essl_"): kwargs.pop(k) for k in list(kwargs) if k.startswith("essl_")}
        block = {k: v for k, v in block.items() if v is not None}
        if not block and not cls._essl_defaults:
            return None, args, kwargs
        settings = EsslSettings.from_mapping(block, cls._essl_defaults)
        if settings.source == "extra_crop":
            _kwargs_without_last_crop(kwargs)
        return settings, args, kwargs

    def _essl_crop_size(self) -> Any:
        """The first ``--crop_size`` (the large crops' size; main_pretrain.py passes every flag to the method)."""
        size = vars(self).get("extra_args", {}).get("crop_size")
        return size[0] if isinstance(size, (list, tuple)) and size else size


def _class_name(method_cls: type, defaults: Mapping[str, Any]) -> str:
    """``Equivariant<Method>``, then ``__<hex of a JSON key>`` if there are class defaults or the method is not
    solo-learn's own (the key then names its module and qualified name, for a fresh process to import it)."""
    key = dict(defaults)
    if not method_cls.__module__.startswith("solo."):
        key["method"] = f"{method_cls.__module__}:{method_cls.__qualname__}"
    name = f"{_PREFIX}{method_cls.__name__}"
    return f"{name}__{json.dumps(key, sort_keys=True, separators=(',', ':')).encode().hex()}" if key else name


def _method_class(name: str, path: str | None) -> Any:
    """The class ``name`` of ``solo.methods``, or the one at ``path`` (``module:qualified.name``)."""
    module_name, _, qualname = path.partition(":") if path else ("solo.methods", "", name)
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise AttributeError(f"{_PREFIX}{name}: cannot import {module_name} ({_EXTRA}).") from err
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found


def equivariant(method_cls: type, **defaults: Any) -> type:
    """The E-SSL version of a solo-learn method class, ``Equivariant<Name>``, made once and kept in this module.

    Args:
        method_cls: a solo-learn method class (a ``BaseMethod`` subclass: ``SimCLR``, ``BYOL``, ...).
        defaults: ``essl`` settings used where the config gives none, by their block keys; ``weight`` stands for
            ``lambda`` (a Python keyword). Plain values (numbers, strings, lists, mappings). With defaults the
            class is active even without an ``essl`` block; without, only with one.

    Example (needs solo-learn; omegaconf API)::

        from solo.methods import METHODS
        from essl_aug.adapters.solo_learn import equivariant

        model = (equivariant(METHODS[cfg.method]) if "essl" in cfg else METHODS[cfg.method])(cfg)
    """
    if is_equivariant(method_cls):
        method_cls = vars(method_cls)["_essl_base"]
    if not _is_method_class(method_cls):
        name = getattr(method_cls, "__name__", type(method_cls).__name__)
        raise TypeError(
            f"equivariant() needs a solo-learn method class (a BaseMethod subclass such as SimCLR or BYOL), got {name}."
        )
    if "weight" in defaults:
        if "lambda" in defaults:
            raise TypeError("give the E-SSL weight once: `weight=` (or the block key 'lambda'), not both.")
        defaults["lambda"] = defaults.pop("weight")
    try:  # the plain form: what the class name spells, and what a fresh process rebuilds
        defaults = json.loads(json.dumps({k: _plain(v) for k, v in defaults.items()}))
    except TypeError as err:
        raise TypeError(
            f"equivariant() defaults must be plain settings (numbers, strings, lists, mappings): {err}"
        ) from err
    if defaults:
        EsslSettings.from_mapping(defaults)  # fail early on bad defaults
    name = _class_name(method_cls, defaults)
    cls = globals().get(name)
    if isinstance(cls, type) and vars(cls).get("_essl_base") is method_cls:
        return cls
    api = _OmegaconfMethod if hasattr(method_cls, "add_and_assert_specific_cfg") else _ArgparseMethod
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"{method_cls.__name__} with the E-SSL objective (see :mod:`essl_aug.adapters.solo_learn`).",
        "_essl_base": method_cls,
        "_essl_defaults": defaults,
    }
    cls = type(f"{_PREFIX}{method_cls.__name__}", (api, method_cls), namespace)
    globals()[name] = cls  # a module attribute: the class and its instances pickle by reference (latest of a name)
    return cls


def __getattr__(name: str) -> type:
    """``Equivariant<Method>[__<key>]`` in a fresh process (unpickling by reference): rebuilt from its name."""
    base_name, sep, code = name.removeprefix(_PREFIX).rpartition("__")
    base_name, code = (base_name, code) if sep else (code, "")
    try:
        key = json.loads(bytes.fromhex(code)) if code else {}
    except ValueError:
        key = None
    if name.startswith(_PREFIX) and base_name and isinstance(key, dict):
        base = _method_class(base_name, key.pop("method", None))
        if _is_method_class(base):
            return equivariant(base, **key)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def install(methods: MutableMapping[str, Any] | None = None) -> MutableMapping[str, Any]:
    """Replace every method class of a registry by its E-SSL version, in place; return the registry.

    The adapted classes stay inactive (exactly the original methods) unless the config has an ``essl`` block
    (``--essl_*`` flags in the argparse API). Non-method entries (``linear``) and ``BaseMethod`` are left alone.

    Args:
        methods: the registry; default ``solo.methods.METHODS``.
    """
    if methods is None:
        try:
            from solo.methods import METHODS
        except ImportError as err:
            raise ImportError(f"install() needs solo-learn: {_EXTRA}.") from err
        methods = METHODS
    if not isinstance(methods, MutableMapping):
        raise TypeError(f"`methods` must be a mutable mapping name -> method class, got {type(methods).__name__}.")
    for name, cls in list(methods.items()):
        if _is_method_class(cls) and cls.__name__ != "BaseMethod" and not is_equivariant(cls):
            methods[name] = equivariant(cls)
    return methods


def loader_transform(size: int | None = None) -> Callable[[Any], Tensor]:
    """The data set's transform with ``essl.views``: each image as one un-augmented uint8 tensor (C, H, W).

    It replaces solo-learn's crop pipeline (``FullTransformPipeline(...)`` in the GitHub version,
    ``prepare_n_crop_transform(...)`` in 1.0.2) in ``main_pretrain.py``; the views are then made on the device, in
    the training step. A batch needs images of one size: ``size`` resizes the shorter side to ``size`` and
    centre-crops a square (for data sets of mixed sizes, e.g. an image folder); ``None`` keeps the images (CIFAR,
    STL-10). The view's random resized crop then crops inside that square.

    Example:
        >>> from PIL import Image
        >>> image = loader_transform(16)(Image.new("RGB", (40, 24)))
        >>> type(image).__name__, image.dtype, tuple(image.shape)
        ('Tensor', torch.uint8, (3, 16, 16))
    """
    from torchvision.transforms import v2

    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"`size` must be None (keep the images) or a positive number of pixels, got {size!r}.")
    steps: list[Callable[[Any], Any]] = [v2.ToImage()]
    if size is not None:
        steps += [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    return v2.Compose([*steps, v2.ToPureTensor()])
