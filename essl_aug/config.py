"""The ``essl:`` block: one schema and one registry of objectives, read by every adapter and the benchmarks.

==================  =============  =====================================================================================
key                 default        meaning
==================  =============  =====================================================================================
``lambda``          ``0.4``        weight of the E-SSL term (the paper's lambda); ``0`` switches it off
``transform``       ``rotation``   a family name, a list of names (a product), ``{"name": ..., **options}``, or a
                                   continuous transformation's name (``random_rotation``, ``gaussian_blur``, ``zoom``)
``mode``            ``all``        ``all``: every element for every image (reference); ``random``: one per image
``balanced``        ``false``      ``random`` mode: every element on an equal share of the batch
``num_per_batch``   ``null``       ``all`` mode: that many distinct elements per step (e.g. 8 of the 24 jigsaws)
``batch_fraction``  ``1``          E-SSL on that fraction of the batch's images (the first ``ceil(f * B)``): cheaper
``hidden_dim``      ``2048``       the head's width: ``in-h-h-K`` (reference), or a list of hidden widths
``crop_size``       ``null``       the extra view's size; ``null``: the reference (half the SSL views' size up to 64 px,
                                   else 96)
``crop_scale``      ``null``       the extra view's crop area range; ``null``: the reference ((0.2, 1) or (0.05, 0.14));
                                   the extra view is not flipped when the family holds the horizontal mirror (``hflip``,
                                   ``d4``), whose label a random flip would hide
``source``          ``gpu``        the extra view is made on the device (:func:`essl_aug.views.extra_view`) from the
                                   un-augmented images (with ``views``) or from SSL view ``view``; ``views``: no extra
                                   view, both SSL views get one element per image and the head reads their features
                                   (:class:`~essl_aug.objectives.essl.ESSLOnViews`, ``mode`` ``random``)
``view``            ``0``          which SSL view the extra view is derived from (without ``views``)
``views``           ``null``       the two SSL views made on the device by a recipe (``simclr``, ``byol``, or ``{name:
                                   byol, size: 32, **options}``), whose parameters go to the objectives; ``dino``,
                                   ``swav``: multi-crop views (``{name: dino, local_size: 16, num_local: 6}``), whose
                                   two global crops go to the objectives
``objectives``      ``null``       more objectives by name with their options (``{augself: {weight: 1.0}}``; an entry
                                   may name its class with ``objective:``, e.g. ``{angle: {objective: essl,
                                   transform: random_rotation}}``)
``seed``            ``null``       the step's draws (views, extra view, labels) from
                                   :class:`~essl_aug.streams.StepStreams` of this seed, keyed by (rank, epoch, step):
                                   distinct per rank, the same after a resume; ``null``: torch's global generator
``layer``           ``null``       layer decoupling (SER): the E-SSL head and the other objectives read the pooled map
                                   of this backbone layer instead of its output, ``{name: layers.3, channels: 256}``
                                   (``named_modules()`` name, its channels; ``class_tokens``, ``grid`` for ViT tokens);
                                   the step passes the views' maps (``StepInputs.maps``); ``ser`` keeps its own layer
==================  =============  =====================================================================================

:meth:`ESSLConfig.from_mapping` checks a block (errors name the ``essl.<key>`` at fault and the fix); the objectives
by name are :data:`OBJECTIVES` (:func:`register_objective` adds one). ``lambda`` is read by key: ``cfg.essl.lambda`` is
a Python syntax error; in Python the value is ``ESSLConfig.weight``.

Example:
    >>> config = ESSLConfig.from_mapping({"lambda": 0.5, "transform": ["rotation", "vflip"], "crop_size": 16})
    >>> config.weight, config.hidden, config.num_classes
    (0.5, (2048, 2048), 8)
    >>> objectives = config.build_objectives(in_features=8)
    >>> list(objectives.objectives)
    ['essl']
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from essl_aug._kernels import flip_table
from essl_aug._validation import check_fraction
from essl_aug.head import hidden_widths
from essl_aug.layers import check_grid
from essl_aug.objectives import ESSL, SIE, AugSelf, EquiMod, ESSLOnViews, Objective, Objectives, RelativePredictor
from essl_aug.objectives.base import check_weight
from essl_aug.objectives.essl import ContinuousESSL
from essl_aug.objectives.layered import AtLayer
from essl_aug.objectives.ser import SER
from essl_aug.registry import build_transformation
from essl_aug.transforms import Product
from essl_aug.transforms.base import Family, PixelMove
from essl_aug.views import TwoViews, ViewPipeline, extra_view, recipe
from essl_aug.views.recipes import RECIPES

__all__ = [
    "DEFAULTS",
    "OBJECTIVES",
    "ESSLConfig",
    "build_objectives",
    "check_provided",
    "log_keys",
    "parse_json",
    "register_objective",
]

#: The objectives a block names, by name (the name of the E-SSL term itself is ``essl``); each class's own name
#: (``ESSL``, ``AugSelf``, ``RelativePredictor``, ...) selects it too.
OBJECTIVES: dict[str, type[Objective]] = {
    "essl": ESSL,
    "augself": AugSelf,
    "predictor": RelativePredictor,
    "equimod": EquiMod,
    "sie": SIE,
    "continuous": ContinuousESSL,  # the former name of ESSL with a continuous transformation
}
OBJECTIVES["essl_on_views"] = ESSLOnViews
OBJECTIVES.update({cls.__name__: cls for cls in (ESSL, AugSelf, RelativePredictor, ESSLOnViews, EquiMod, SIE)})
OBJECTIVES["PredictorEquivariance"] = RelativePredictor  # the former class name, for one release
OBJECTIVES.update({"ser": SER, "SER": SER})

#: The keys of the block and their defaults (the reference E-SimCLR CIFAR-10 recipe).
DEFAULTS: dict[str, Any] = {
    "lambda": 0.4,
    "transform": "rotation",
    "mode": "all",
    "balanced": False,
    "num_per_batch": None,
    "batch_fraction": 1.0,
    "hidden_dim": 2048,
    "crop_size": None,
    "crop_scale": None,
    "source": "gpu",
    "view": 0,
    "views": None,
    "objectives": None,
    "seed": None,
    "layer": None,
}
SOURCES = ("gpu", "views")
#: How a training step provides each input an objective may need (for the errors).
FIXES = {
    "params": "the views' augmentation parameters: set essl.views (simclr or byol) so that the views are made on the "
    "device with their parameters",
    "embeddings": "the projector's outputs: this model has no projector output to read; read the backbone features "
    "instead (source: features)",
    "images": "the un-augmented images the views are made from: set essl.views (simclr or byol) so that the views "
    "are made on the device from them (a loader that makes the views gives no originals)",
    "maps": "the two SSL views' maps at essl.layer: capture them during the views' forward passes "
    "(essl_aug.layers.capture) and pass StepInputs(maps=(m1, m2))",
}


def register_objective(name: str, cls: type[Objective]) -> None:
    """Make the objective class ``cls`` selectable by ``name`` in a block's ``objectives``."""
    if not isinstance(name, str) or not name or "/" in name or "." in name:
        raise ValueError(f"`name` must be a non-empty string without '/' or '.', got {name!r}.")
    if not (isinstance(cls, type) and issubclass(cls, Objective)):
        raise TypeError(f"`cls` must be an essl_aug Objective class, got {cls!r}.")
    OBJECTIVES[name] = cls


def parse_json(value: Any, key: str) -> Any:
    """A command-line string holding JSON (``{...}`` or ``[...]``) as its value; anything else unchanged."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"{key}: {value!r} is not valid JSON ({err}).") from err
    return value


def _transform(value: Any) -> Any:
    """A command-line string: ``rotation``, ``rotation,vflip`` (a product) or JSON (``["rotation", "vflip"]``)."""
    value = parse_json(value, "essl.transform")
    if isinstance(value, str) and "," in value:
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _core(key: str, build: Any, *args: Any, **kwargs: Any) -> Any:
    """``build(*args, **kwargs)``: a core check or constructor; its error is re-raised under ``essl.<key>``."""
    try:
        return build(*args, **kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"essl.{key}: {err}") from err


def _views(spec: Any) -> dict[str, Any] | None:
    """The ``views`` key as ``{"name": ..., **options}``, checked by building the recipe once (size 32 by default)."""
    spec = parse_json(spec, "essl.views")
    if spec is None:
        return None
    spec = {"name": spec} if isinstance(spec, str) else spec
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise ValueError(
            f"essl.views must be null, a recipe name ({' or '.join(sorted(RECIPES))}) or a mapping "
            f"{{name: simclr, size: 32, ...recipe options}}, got {spec!r}."
        )
    _build_views(dict(spec), 32)
    return dict(spec)


def _build_views(spec: Mapping[str, Any], size: Any) -> TwoViews:
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}
    name = options.pop("name")
    if name not in RECIPES:
        raise ValueError(f"essl.views: unknown recipe {name!r}; the recipes are {sorted(RECIPES)}.")
    size = options.pop("size", size)
    if size is None:
        raise ValueError(f"essl.views needs the crops' size: give it in the block, e.g. {{name: {name}, size: 32}}.")
    return _core("views", recipe, name, size, **options)  # the views check `normalize` (pair or lightly's dict)


def _accepted(cls: type) -> tuple[set[str], bool]:
    """The keyword arguments ``cls`` takes, and whether it takes any (``**kwargs``)."""
    params = list(inspect.signature(cls).parameters.values())
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def _objectives(spec: Any) -> dict[str, dict[str, Any]]:
    """The ``objectives`` key as ``{name: {option: value}}``: known classes, options their constructors take."""
    spec = parse_json(spec, "essl.objectives")
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"essl.objectives must be a mapping {{name: {{option: value}}}}, e.g. {{augself: {{weight: 1.0}}}}, "
            f"got {spec!r}."
        )
    checked: dict[str, dict[str, Any]] = {}
    for name, options in spec.items():
        key = f"essl.objectives.{name}"
        options = dict(options) if isinstance(options, Mapping) else options
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise ValueError(f"{key} must be a mapping of the objective's options (or null), got {options!r}.")
        if name == "essl" and "objective" not in options:
            raise ValueError(f"{key}: 'essl' is the E-SSL term, set by the block's own keys (lambda, transform, ...).")
        kind = options.get("objective", name)
        if kind not in OBJECTIVES:
            raise ValueError(f"{key}: unknown objective {kind!r}; the objectives are {sorted(OBJECTIVES)}.")
        names, any_keyword = _accepted(OBJECTIVES[kind])
        unknown = sorted(set(options) - names - {"objective"})
        if unknown and not any_keyword:
            raise ValueError(f"{key}: unknown option(s) {unknown}; {OBJECTIVES[kind].__name__} takes {sorted(names)}.")
        checked[str(name)] = options
    return checked


def _layer(spec: Any) -> dict[str, Any] | None:
    """The ``layer`` key as ``{name, channels, class_tokens, grid}`` (checked), or None."""
    spec = parse_json(spec, "essl.layer")
    if spec is None:
        return None
    if isinstance(spec, str):
        raise ValueError(
            f"essl.layer: give the layer's channels too, {{name: {spec}, channels: <C>}} (the heads' input width)."
        )
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise ValueError(f"essl.layer must be null or {{name: <module name>, channels: <C>}}, got {spec!r}.")
    unknown = sorted(set(spec) - {"name", "channels", "class_tokens", "grid"})
    if unknown:
        raise ValueError(f"essl.layer: unknown key(s) {unknown}; the keys are name, channels, class_tokens, grid.")
    channels = spec.get("channels")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"essl.layer.channels must be the layer's number of channels (an int >= 1), got {channels!r}.")
    grid = spec.get("grid")
    grid = tuple(grid) if isinstance(grid, list) else grid
    class_tokens = spec.get("class_tokens", 0)
    _core("layer", check_grid, class_tokens, grid)
    return {"name": spec["name"], "channels": channels, "class_tokens": class_tokens, "grid": grid}


def _mirrors(transformation: Any) -> bool:
    """Whether a family holds the horizontal mirror (``hflip``, ``d4``, their products): a randomly flipped extra view
    would then hide its label. Asked of the family's pixel table on a 12 x 12 grid (every built-in accepts it)."""
    if not isinstance(transformation, (PixelMove, Product)) or not getattr(transformation, "_pixel", True):
        parts = getattr(transformation, "families", ())
        return any(_mirrors(part) for part in parts)
    try:
        table = transformation.table(12, 12)
    except (TypeError, ValueError):
        return False
    mirror = flip_table(12, 12, 1)[1]
    return bool((table == mirror).all(dim=1).any())


@dataclass(frozen=True)
class ESSLConfig:
    """The ``essl`` block, checked (the module docstring has the keys). Build it with :meth:`from_mapping`."""

    weight: float = 0.4
    transform: Any = "rotation"
    mode: str = "all"
    balanced: bool = False
    num_per_batch: int | None = None
    batch_fraction: float = 1.0
    hidden: tuple[int, ...] = (2048, 2048)
    crop_size: int | None = None
    crop_scale: tuple[float, float] | None = None
    source: str = "gpu"
    view: int = 0
    views: dict[str, Any] | None = None
    objectives: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int | None = None
    layer: dict[str, Any] | None = None
    #: The E-SSL transformation, built once from ``transform``.
    transformation: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_mapping(
        cls, block: Mapping[str, Any] | None, defaults: Mapping[str, Any] | None = None, *, has_params: bool = False
    ) -> ESSLConfig:
        """Merge :data:`DEFAULTS` < ``defaults`` < ``block`` (plain mappings) and check every key; ``has_params``:
        the training step hands the objectives its views' parameters itself (without ``views``)."""
        merged: dict[str, Any] = dict(DEFAULTS)
        for given in (defaults or {}, block or {}):
            if not isinstance(given, Mapping):
                raise TypeError(f"the essl block must be a mapping of settings, got {type(given).__name__}.")
            unknown = sorted(set(given) - set(DEFAULTS))
            if unknown:
                raise ValueError(f"unknown essl setting(s) {unknown}; valid keys are {sorted(DEFAULTS)}.")
            merged.update(given)
        source, view, size = merged["source"], merged["view"], merged["crop_size"]
        if source == "extra_crop":
            raise ValueError(
                "essl.source: extra_crop is gone; its successor is essl.views (simclr or byol): the two SSL views and "
                "the reference extra view are then made on the device from the un-augmented images."
            )
        if source not in SOURCES:
            raise ValueError(f"essl.source must be one of {list(SOURCES)}, got {source!r}.")
        if isinstance(view, bool) or not isinstance(view, int) or view < 0:
            raise ValueError(f"essl.view must be a view index >= 0, got {view!r}.")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 2):
            raise ValueError(f"essl.crop_size must be null or an integer >= 2 (reference CIFAR-10: 16), got {size!r}.")
        scale = merged["crop_scale"]
        if scale is not None:
            ok = isinstance(scale, (list, tuple)) and len(scale) == 2
            ok = ok and all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scale)
            if not ok or not 0 < scale[0] <= scale[1] <= 1:
                raise ValueError(f"essl.crop_scale must be null or [lo, hi] with 0 < lo <= hi <= 1, got {scale!r}.")
            scale = (float(scale[0]), float(scale[1]))
        hidden = merged["hidden_dim"]
        widths = [hidden, hidden] if isinstance(hidden, int) and not isinstance(hidden, bool) else hidden
        if not isinstance(widths, (list, tuple)) or not widths:
            raise ValueError(f"essl.hidden_dim must be a positive integer or a list of them, got {hidden!r}.")
        views = _views(merged["views"])
        objectives = _objectives(merged["objectives"])
        for name, options in objectives.items():
            requires: object = getattr(OBJECTIVES[options.get("objective", name)], "requires", frozenset())
            if isinstance(requires, frozenset) and "params" in requires and views is None and not has_params:
                raise ValueError(
                    f"essl.objectives.{name} needs params, which the step does not have ({FIXES['params']})."
                )
        mode = merged["mode"]
        if mode not in ("all", "random"):
            raise ValueError(f"essl.mode must be 'all' or 'random', got {mode!r}.")
        balanced, num = merged["balanced"], merged["num_per_batch"]
        if not isinstance(balanced, bool):
            raise ValueError(f"essl.balanced must be true or false, got {balanced!r}.")
        if num is not None and (isinstance(num, bool) or not isinstance(num, int) or num < 1):
            raise ValueError(f"essl.num_per_batch must be null or a positive integer, got {num!r}.")
        fraction = _core(
            "batch_fraction", check_fraction, merged["batch_fraction"], "batch_fraction", "must be in (0, 1]"
        )
        if fraction == 0:
            raise ValueError("essl.batch_fraction must be in (0, 1] (E-SSL on that share of the batch), got 0.")
        if source == "views":
            named = {k for g in (defaults or {}, block or {}) for k in g}
            if (mode == "all" and "mode" in named) or num is not None or fraction != 1:
                raise ValueError(
                    "essl.source: views draws one element per image for both SSL views (mode random, the whole "
                    "batch): drop essl.mode: all, essl.num_per_batch and essl.batch_fraction."
                )
            mode = "random"  # what it does (the filled block says so)
        seed = merged["seed"]
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"essl.seed must be null or an integer >= 0 (the step streams' seed), got {seed!r}.")
        transform = _transform(merged["transform"])
        layer = _layer(merged["layer"])
        return cls(
            weight=_core("lambda", check_weight, merged["lambda"]),
            transform=transform,
            mode=mode,
            balanced=balanced,
            num_per_batch=num,
            batch_fraction=fraction,
            hidden=_core("hidden_dim", hidden_widths, widths),
            crop_size=size,
            crop_scale=scale,
            source=source,
            view=view,
            views=views,
            objectives=objectives,
            seed=seed,
            layer=layer,
            transformation=_core("transform", build_transformation, transform),
        )

    @property
    def active(self) -> bool:
        """Whether the E-SSL term runs (``weight > 0``)."""
        return self.weight > 0

    @property
    def enabled(self) -> bool:
        """True when the block changes anything (the E-SSL term, the views or other objectives)."""
        return self.active or self.views is not None or bool(self.objectives)

    @property
    def num_classes(self) -> int:
        """The number of outputs of the E-SSL head (the family's classes)."""
        return int(self.transformation.target_spec.size)

    def as_mapping(self) -> dict[str, Any]:
        """The block with plain values (key ``lambda``), e.g. to write back into a framework's config."""
        return {
            "lambda": self.weight,
            "transform": copy.deepcopy(self.transform),
            "mode": self.mode,
            "balanced": self.balanced,
            "num_per_batch": self.num_per_batch,
            "batch_fraction": self.batch_fraction,
            "hidden_dim": list(self.hidden),
            "crop_size": self.crop_size,
            "crop_scale": None if self.crop_scale is None else list(self.crop_scale),
            "source": self.source,
            "view": self.view,
            "views": copy.deepcopy(self.views),
            "objectives": copy.deepcopy(self.objectives) or None,
            "seed": self.seed,
            "layer": None
            if self.layer is None
            else {**self.layer, "grid": self.layer["grid"] and list(self.layer["grid"])},
        }

    def build_views(self, size: int | None) -> TwoViews | None:
        """The SSL views' recipe (``views``) for crops of ``size`` (unless the block gives a size), or None."""
        return None if self.views is None else _build_views(self.views, size)

    def extra_view(self, main_size: int, photometric: bool, normalize: Any = None) -> ViewPipeline:
        """The extra view (:func:`essl_aug.views.extra_view`) for SSL views of ``main_size`` pixels, with this
        block's ``crop_size`` and ``crop_scale``; ``photometric`` False for an already augmented source."""
        return _core(
            "crop_size",
            extra_view,
            main_size,
            size=self.crop_size,
            scale=self.crop_scale,
            flip=not _mirrors(self.transformation),
            photometric=photometric,
            normalize=normalize,
        )

    def build_objectives(self, in_features: int, **context: Any) -> Objectives | None:
        """The E-SSL term (when active, named ``essl``) and the other objectives, or None when there is none.

        Each constructor gets the ``context`` values it names and its options do not set: ``in_features`` (the
        backbone's width; the projector's, ``embedding_dim``, for an objective with ``source: embeddings``),
        ``augmentations`` (the views' recipe), ... A constructor's error is re-raised under ``essl.objectives.<name>``.
        """
        built: dict[str, Objective] = {}
        if self.layer is not None:  # the heads read the layer's pooled map: its channels
            in_features = self.layer["channels"]
        if self.active:
            cls: type[ESSL] = ESSLOnViews if self.source == "views" else ESSL
            options: dict[str, Any] = {"balanced": self.balanced}
            if cls is ESSL:
                family = {"mode": self.mode, "num_per_batch": self.num_per_batch, **options}
                options = {"batch_fraction": self.batch_fraction}
                options |= family if isinstance(self.transformation, Family) else {}
            built["essl"] = _core(
                "transform", cls, self.transformation, in_features, weight=self.weight, hidden=self.hidden, **options
            )
        built.update(build_objectives(self.objectives, {"in_features": in_features, **context}))
        if self.layer is not None:
            at = self.layer
            for name, objective in built.items():
                if not isinstance(objective, SER) and {"features", "backbone"} & objective.requires:
                    built[name] = AtLayer(objective, at["name"], at["class_tokens"], at["grid"])
        return Objectives(built) if built else None


def build_objectives(spec: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Objective]:
    """The objectives of ``spec`` (``{name: {option: value}}``, checked), each given the ``context`` values its
    constructor names and its options do not set (``in_features``; ``embedding_dim`` as ``in_features`` for an
    objective with ``source: embeddings``); errors are re-raised under ``essl.objectives.<name>``.

    Example:
        >>> sorted(build_objectives({"augself": {"groups": ["crop"]}}, {"in_features": 8}))
        ['augself']
    """
    built: dict[str, Objective] = {}
    for name, options in _objectives(spec).items():
        options = dict(options)
        cls = OBJECTIVES[options.pop("objective", name)]
        names, any_keyword = _accepted(cls)
        wanted = names | ({"in_features"} if any_keyword else set())
        kwargs = {k: v for k, v in context.items() if k in wanted and k not in options}
        if options.get("source") == "embeddings" and "embedding_dim" in context:
            kwargs["in_features"] = context["embedding_dim"]
        built[name] = _core(f"objectives.{name}", cls, **kwargs, **options)
    return built


def check_provided(objectives: Objectives, provided: frozenset[str]) -> None:
    """Raise unless each objective's inputs are among what the step ``provided``, saying how to provide them."""
    for name, objective in objectives.objectives.items():
        assert isinstance(objective, Objective)
        missing = sorted(objective.requires - provided)
        if missing:
            how = "; ".join(FIXES.get(m, f"{m}: not provided by this training step") for m in missing)
            raise ValueError(f"essl.objectives.{name} needs {', '.join(missing)} ({how}).")


def log_keys(logs: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """``{"name/key": value}`` (what :class:`~essl_aug.objectives.Objectives` returns) as
    ``{"<prefix>_name_key": value}``, the frameworks' log names.

    Example:
        >>> import torch
        >>> log_keys({"augself/loss": torch.zeros(())}, "train")
        {'train_augself_loss': tensor(0.)}
    """
    return {f"{prefix}_{k.replace('/', '_')}": v for k, v in logs.items()}
