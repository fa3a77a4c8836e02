"""E-SSL for any solo-learn method: ``equivariant(METHODS[name])`` or one ``install()`` call.

The adapter subclasses a solo-learn method (``SimCLR``, ``BYOL``, ``BarlowTwins``, ``VICReg``, ...) and only wires:
it takes the E-SSL view from the batch, runs the core's :class:`~essl_aug.EquivariantTransform`, the online
backbone and an :class:`~essl_aug.EquivarianceHead`, and adds ``lambda * cross_entropy``
(:func:`~essl_aug.equivariance_loss`) to the loss that the method's ``training_step`` returns.

Both solo-learn APIs are supported, detected from the class, not from a version number:

- the omegaconf API (GitHub, 1.0.6): ``Method(cfg)``, an ``essl:`` block in the config, defaults filled by the
  method's ``add_and_assert_specific_cfg`` hook;
- the argparse API (PyPI, 1.0.2): ``Method(**kwargs)``, flags ``--essl_lambda 0.4 --essl_transform rotation ...``
  added by the method's ``add_model_specific_args`` hook, arriving as ``essl_*`` keyword arguments.

Settings (the ``essl:`` block; ``lambda`` is read by key, ``cfg.essl.lambda`` would be a Python syntax error):

==============  =============  ============================================================================
key             default        meaning
==============  =============  ============================================================================
``lambda``      ``0.4``        weight of the E-SSL term; ``0`` keeps the original model (no head, no forward)
``transform``   ``rotation``   a family name, a list of names (a product) or ``{"name": ..., **options}``
``mode``        ``all``        ``all``: every element for every image (reference); ``random``: one per image
``crop_size``   ``null``       resize the E-SSL view to this size (reference CIFAR-10: 16); ``null`` keeps it
``crop_scale``  ``null``       ``[lo, hi]``: a random resized crop of that area range instead of a resize
``source``      ``gpu``        ``gpu``: derive the view from crop ``view`` of the batch; ``extra_crop``: the
                               last crop of the batch is the E-SSL view (declared in the crop counts)
``view``        ``0``          which crop ``source: gpu`` derives the view from
``hidden_dim``  ``2048``       head width: ``in-h-h-K`` (reference), or a list of hidden widths
==============  =============  ============================================================================

Without an ``essl`` block (and without ``defaults`` given to :func:`equivariant`) the adapted class is inactive:
exactly the original method.
"""

from __future__ import annotations

import copy
import copyreg
import json
import math
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug.head import EquivarianceHead
from essl_aug.loss import EquivarianceLoss, EquivarianceOutput
from essl_aug.registry import build_family
from essl_aug.transform import EquivariantTransform

__all__ = ["DEFAULTS", "EsslSettings", "equivariant", "install", "is_equivariant"]

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
}
_SOURCES = ("gpu", "extra_crop")
_MODES = ("all", "random")


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
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"essl.transform: {value!r} is not valid JSON ({err}).") from err
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else parts


@dataclass(frozen=True)
class EsslSettings:
    """The validated ``essl`` block. Build it with :meth:`from_mapping`.

    Example:
        >>> s = EsslSettings.from_mapping({"lambda": 0.5, "transform": "rotation,vflip", "crop_size": 16})
        >>> s.lambda_, s.transform, s.num_classes, s.hidden
        (0.5, ['rotation', 'vflip'], 8, (2048, 2048))
    """

    lambda_: float
    transform: Any
    mode: str
    crop_size: int | None
    crop_scale: tuple[float, float] | None
    source: str
    view: int
    hidden_dim: Any
    num_classes: int

    @property
    def active(self) -> bool:
        """Whether the E-SSL branch runs (``lambda > 0``)."""
        return self.lambda_ > 0

    @property
    def hidden(self) -> tuple[int, ...]:
        """Hidden widths of the head."""
        if isinstance(self.hidden_dim, int):
            return (self.hidden_dim, self.hidden_dim)
        return tuple(self.hidden_dim)

    def as_config(self) -> dict[str, Any]:
        """The settings as an ``essl`` block (plain types, key ``lambda``)."""
        block = asdict(self)
        block["lambda"] = block.pop("lambda_")
        block.pop("num_classes")
        if block["crop_scale"] is not None:
            block["crop_scale"] = list(block["crop_scale"])
        return block

    @classmethod
    def from_mapping(cls, block: Mapping[str, Any] | None, defaults: Mapping[str, Any] | None = None) -> EsslSettings:
        """Merge ``DEFAULTS`` < ``defaults`` < ``block`` and validate; errors name the ``essl.<key>`` at fault."""
        merged: dict[str, Any] = dict(DEFAULTS)
        for source in (defaults or {}, _plain(block) or {}):
            if not isinstance(source, Mapping):
                raise TypeError(f"the essl block must be a mapping of settings, got {type(source).__name__}.")
            unknown = sorted(set(source) - set(DEFAULTS))
            if unknown:
                raise ValueError(f"unknown essl setting(s) {unknown}; valid keys are {sorted(DEFAULTS)}.")
            merged.update({k: _plain(v) for k, v in source.items()})

        lam = merged["lambda"]
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
            raise ValueError(f"essl.lambda must be a finite number >= 0 (reference: 0.4), got {lam!r}.")
        mode = merged["mode"]
        if mode not in _MODES:
            raise ValueError(f"essl.mode must be one of {list(_MODES)}, got {mode!r}.")
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
        widths = [hidden] if isinstance(hidden, int) and not isinstance(hidden, bool) else hidden
        if (
            not isinstance(widths, (list, tuple))
            or not widths
            or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths)
        ):
            raise ValueError(f"essl.hidden_dim must be a positive integer or a list of them, got {hidden!r}.")
        transform = _parse_transform(merged["transform"])
        try:
            num_classes = build_family(transform).num_classes
        except (TypeError, ValueError) as err:
            raise ValueError(f"essl.transform: {err}") from err
        return cls(
            lambda_=float(lam),
            transform=transform,
            mode=mode,
            crop_size=size,
            crop_scale=scale,
            source=source,
            view=view,
            hidden_dim=hidden if isinstance(hidden, int) else list(hidden),
            num_classes=num_classes,
        )


# --------------------------------------------------------------------------------------------------------------
# The adapted class
# --------------------------------------------------------------------------------------------------------------


def _is_method_class(cls: Any) -> bool:
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


def _kwargs_without_last_crop(kwargs: dict[str, Any]) -> None:
    key = "num_small_crops" if int(kwargs.get("num_small_crops") or 0) > 0 else "num_large_crops"
    if key not in kwargs:
        raise ValueError("essl_source=extra_crop needs num_large_crops / num_small_crops keyword arguments.")
    kwargs[key] = int(kwargs[key]) - 1


class _EquivariantMethod:
    """Behaviour shared by every adapted class (mixed in before the solo-learn method)."""

    _essl_base: type
    _essl_defaults: dict[str, Any]
    _essl_omegaconf: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        defaults = self._essl_defaults
        if self._essl_omegaconf:
            cfg = args[0] if args else kwargs.get("cfg")
            if cfg is None:
                raise TypeError(f"{type(self).__name__} takes the solo-learn cfg (a DictConfig) as first argument.")
            block = _select(cfg, "essl")
            settings = EsslSettings.from_mapping(block, defaults) if (block is not None or defaults) else None
            if settings is not None and settings.source == "extra_crop":
                cfg = _cfg_without_last_crop(cfg)  # never mutate the caller's cfg (the data module reads it)
                args, kwargs = ((cfg, *args[1:]), kwargs) if args else (args, {**kwargs, "cfg": cfg})
        else:
            block = {k[len("essl_") :]: kwargs.pop(k) for k in list(kwargs) if k.startswith("essl_")}
            block = {k: v for k, v in block.items() if v is not None}
            settings = EsslSettings.from_mapping(block, defaults) if (block or defaults) else None
            if settings is not None and settings.source == "extra_crop":
                _kwargs_without_last_crop(kwargs)
        super().__init__(*args, **kwargs)
        self.essl_settings = settings
        if settings is None or not settings.active:
            return
        if settings.source == "gpu" and settings.view >= self.num_crops:
            raise ValueError(f"essl.view={settings.view} but the method has only {self.num_crops} crops.")
        features_dim = getattr(self, "features_dim", None)
        if not isinstance(features_dim, int):
            raise TypeError(f"{self._essl_base.__name__} has no integer `features_dim`; cannot size the E-SSL head.")
        transform = EquivariantTransform(settings.transform, mode=settings.mode)
        head = EquivarianceHead(features_dim, transform.num_classes, hidden=settings.hidden)
        self.essl = EquivarianceLoss(transform, head=head, weight=settings.lambda_)
        if settings.crop_scale is not None:
            from kornia.augmentation import RandomResizedCrop

            size = (settings.crop_size, settings.crop_size)
            self.essl_crop = RandomResizedCrop(size, scale=settings.crop_scale)

    @property
    def essl_active(self) -> bool:
        """Whether the E-SSL branch runs in ``training_step``."""
        return self.essl_settings is not None and self.essl_settings.active

    @property
    def learnable_params(self) -> list[dict[str, Any]]:
        params = super().learnable_params  # type: ignore[misc]
        if self.essl_active:
            params = [*params, {"name": "essl_head", "params": self.essl.head.parameters()}]
        return params

    def _essl_backbone(self) -> nn.Module:
        """The online backbone (``backbone`` in the omegaconf API, ``encoder`` in the argparse API)."""
        net = getattr(self, "backbone", None)
        return net if isinstance(net, nn.Module) else self.encoder

    def _essl_view(self, x: Tensor) -> Tensor:
        """Resize (or random-resized-crop) the E-SSL view to ``crop_size``; a new tensor, off the input's graph."""
        x = x.detach()
        size = self.essl_settings.crop_size
        if self.essl_settings.crop_scale is not None:
            return self.essl_crop(x)
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return x

    def _essl_features(self, views: Tensor) -> Tensor:
        if getattr(self, "no_channel_last", True) is False:  # follow the method's own forward
            views = views.to(memory_format=torch.channels_last)
        return self._essl_backbone()(views)

    def _essl_loss(self, x: Tensor) -> EquivarianceOutput:
        """The E-SSL branch on the crop ``x``: views, backbone, head, weighted cross-entropy; logs it."""
        out = self.essl(self._essl_features, self._essl_view(x))
        self.log_dict(  # type: ignore[attr-defined]
            {"train_essl_loss": out.cross_entropy, "train_essl_acc": out.accuracy}, on_epoch=True, sync_dist=True
        )
        return out

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        settings = self.essl_settings
        if settings is None:
            return super().training_step(batch, batch_idx)  # type: ignore[misc]
        indexes, crops, targets = batch
        crops = [crops] if isinstance(crops, Tensor) else list(crops)
        if settings.source == "extra_crop":
            x = crops.pop()
            batch = [indexes, crops, targets]
        else:
            x = crops[settings.view]
        out = super().training_step(batch, batch_idx)  # type: ignore[misc]
        if not settings.active:
            return out
        essl = self._essl_loss(x).loss
        if isinstance(out, Tensor):
            return out + essl
        if isinstance(out, Mapping) and "loss" in out:
            return {**out, "loss": out["loss"] + essl}
        raise TypeError(f"{self._essl_base.__name__}.training_step returned {type(out).__name__}, not a loss.")

    def __reduce_ex__(self, protocol: int) -> Any:
        # Rebuild the class from (method class, defaults) when unpickling, in any process.
        rv = super().__reduce_ex__(protocol)
        if isinstance(rv, tuple) and rv and rv[0] is copyreg.__newobj__ and rv[1][0] is type(self):
            return (_new_instance, (self._essl_base, self._essl_defaults, *rv[1][1:]), *rv[2:])
        return rv


def _new_instance(base: type, defaults: dict[str, Any], *args: Any) -> Any:
    cls = equivariant(base, **defaults)
    return cls.__new__(cls, *args)


def _omegaconf_hook(base: type, defaults: dict[str, Any]) -> staticmethod:
    def add_and_assert_specific_cfg(cfg: Any) -> Any:
        cfg = base.add_and_assert_specific_cfg(cfg)
        block = _select(cfg, "essl")
        if block is None and not defaults:
            return cfg  # inactive: the config is left as the method leaves it
        settings = EsslSettings.from_mapping(block, defaults)
        from omegaconf import open_dict

        with open_dict(cfg):
            cfg.essl = settings.as_config()
        return cfg

    add_and_assert_specific_cfg.__doc__ = f"{base.__name__}'s hook, then fill and check the ``essl`` block."
    return staticmethod(add_and_assert_specific_cfg)


def _argparse_hook(base: type) -> staticmethod:
    def add_model_specific_args(parent_parser: Any) -> Any:
        parent_parser = base.add_model_specific_args(parent_parser)
        if "--essl_lambda" in getattr(parent_parser, "_option_string_actions", {}):
            return parent_parser
        group = parent_parser.add_argument_group("essl")
        group.add_argument("--essl_lambda", type=float, default=None, help="E-SSL weight (reference 0.4)")
        group.add_argument("--essl_transform", type=str, default=None, help="rotation | rotation,vflip | JSON")
        group.add_argument("--essl_mode", type=str, default=None, choices=_MODES)
        group.add_argument("--essl_crop_size", type=int, default=None)
        group.add_argument("--essl_crop_scale", type=float, nargs=2, default=None)
        group.add_argument("--essl_source", type=str, default=None, choices=_SOURCES)
        group.add_argument("--essl_view", type=int, default=None)
        group.add_argument("--essl_hidden_dim", type=int, default=None)
        return parent_parser

    add_model_specific_args.__doc__ = f"{base.__name__}'s arguments plus the ``--essl_*`` flags."
    return staticmethod(add_model_specific_args)


_CACHE: dict[tuple[type, str], type] = {}


def equivariant(method_cls: type, **defaults: Any) -> type:
    """The E-SSL version of a solo-learn method class, ``Equivariant<Name>`` (cached; its instances pickle).

    Args:
        method_cls: a solo-learn method class (a ``BaseMethod`` subclass: ``SimCLR``, ``BYOL``, ...).
        defaults: ``essl`` settings used where the config gives none (``lambda_`` is accepted for ``lambda``).
            With defaults the class is active even without an ``essl`` block; without, only with one.

    Example (needs solo-learn; omegaconf API)::

        from solo.methods import METHODS
        from essl_aug.adapters.solo_learn import equivariant

        model = (equivariant(METHODS[cfg.method]) if "essl" in cfg else METHODS[cfg.method])(cfg)
    """
    if is_equivariant(method_cls):
        method_cls = method_cls._essl_base  # type: ignore[attr-defined]
    if not _is_method_class(method_cls):
        name = getattr(method_cls, "__name__", type(method_cls).__name__)
        raise TypeError(
            f"equivariant() needs a solo-learn method class (a BaseMethod subclass such as SimCLR or BYOL), got {name}."
        )
    if "lambda_" in defaults:
        defaults["lambda"] = defaults.pop("lambda_")
    if defaults:
        EsslSettings.from_mapping(defaults)  # fail early on bad defaults
    key = (method_cls, json.dumps(defaults, sort_keys=True, default=repr))
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    omegaconf_api = hasattr(method_cls, "add_and_assert_specific_cfg")
    name = f"Equivariant{method_cls.__name__}"
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"{method_cls.__name__} with the E-SSL objective (see :mod:`essl_aug.adapters.solo_learn`).",
        "_essl_base": method_cls,
        "_essl_defaults": dict(defaults),
        "_essl_omegaconf": omegaconf_api,
    }
    if omegaconf_api:
        namespace["add_and_assert_specific_cfg"] = _omegaconf_hook(method_cls, dict(defaults))
    else:
        namespace["add_model_specific_args"] = _argparse_hook(method_cls)
    cls = type(name, (_EquivariantMethod, method_cls), namespace)
    _CACHE[key] = cls
    module_globals = vars(sys.modules[__name__])
    if not defaults and name not in module_globals:  # not hasattr: that would run the module __getattr__
        module_globals[name] = cls  # the class itself pickles by reference
    return cls


def __getattr__(name: str) -> type:
    """``EquivariantSimCLR`` etc. in a fresh process (unpickling by reference): rebuilt from ``solo.methods``."""
    if name.startswith("Equivariant") and len(name) > len("Equivariant"):
        try:
            import solo.methods as methods
        except ImportError as err:
            raise AttributeError(f"{name}: solo-learn is not importable ({_EXTRA}).") from err
        base = getattr(methods, name[len("Equivariant") :], None)
        if _is_method_class(base):
            return equivariant(base)
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
            from solo.methods import METHODS as methods
        except ImportError as err:
            raise ImportError(f"install() needs solo-learn: {_EXTRA}.") from err
    if not isinstance(methods, MutableMapping):
        raise TypeError(f"`methods` must be a mutable mapping name -> method class, got {type(methods).__name__}.")
    for name, cls in list(methods.items()):
        if _is_method_class(cls) and cls.__name__ != "BaseMethod" and not is_equivariant(cls):
            methods[name] = equivariant(cls)
    return methods
