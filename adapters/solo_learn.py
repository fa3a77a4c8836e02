"""E-SSL for any solo-learn method (GitHub version): ``equivariant(METHODS[name])`` or one ``install()`` call.

The adapter subclasses a solo-learn method (``SimCLR``, ``BYOL``, ``BarlowTwins``, ``VICReg``, ...) and wires
solo-learn's own extension points to the library: ``add_and_assert_specific_cfg`` checks the ``essl:`` block (the
schema of :mod:`essl_aug.config`) and writes its defaults into the config; ``learnable_params`` adds the objectives'
heads to the optimiser; ``base_training_step`` hands over each large crop's backbone features and projector outputs;
``training_step`` adds the objectives' weighted loss to the method's and logs them as ``train_<name>_<key>``
(``train_essl_ce``, ``train_essl_acc``, ...). Without an ``essl`` block the class is exactly the original method.

The extra view of the E-SSL term is made on the device by :func:`essl_aug.views.extra_view` (the reference recipe,
with ``crop_size`` / ``crop_scale``): from crop ``essl.view`` of the batch (its crop and flip only: the crop is
already colour-augmented and normalised), or, with ``essl.views``, from the un-augmented images, which then also
give the two SSL views with their parameters (a recipe of :mod:`essl_aug.views`). With ``essl.views`` the data set
must yield each image un-augmented in [0, 1]: in solo-learn's config, ``data.dataset: custom`` and one augmentation
entry with ``rrc.enabled: false`` (images of one size; for mixed sizes ``rrc`` with ``crop_min_scale: 1.0`` and
``crop_max_scale: 1.0``), every probability 0, ``mean: [0, 0, 0]``, ``std: [1, 1, 1]`` and ``num_crops: 2``: the
adapter takes crop 0. ``essl.source: extra_crop`` is gone (its successor is ``essl.views``).

Run solo-learn's own ``main_pretrain.py`` with every method adapted (no edit to it)::

    python -m essl_aug.adapters.solo_learn <solo-learn>/main_pretrain.py --config-path ... --config-name ...

The adapted classes are module attributes (``EquivariantSimCLR``), so their instances pickle by reference; in a fresh
process the module rebuilds a class of ``solo.methods`` from its name.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, ClassVar, TypeGuard

import torch
from torch import Tensor, nn

from essl_aug.config import ESSLConfig, check_provided, log_keys
from essl_aug.objectives import Objectives, StepInputs
from essl_aug.streams import StepStreams
from essl_aug.views import MultiCrop, TwoViews, ViewPipeline

from ._hydra import plain

__all__ = ["equivariant", "install", "is_equivariant"]

_EXTRA = "pip install 'essl-aug[solo]' and put a solo-learn clone on the path (pip install -e <clone>)"
_PREFIX = "Equivariant"


def _is_method_class(cls: Any) -> TypeGuard[type]:
    """A solo-learn method class: a subclass of solo's ``BaseMethod`` with its config hook."""
    return (
        isinstance(cls, type)
        and any(base.__name__ == "BaseMethod" for base in cls.__mro__)
        and hasattr(cls, "add_and_assert_specific_cfg")
    )


def is_equivariant(cls: Any) -> bool:
    """Whether ``cls`` (a class or an instance) was made by :func:`equivariant`."""
    cls = cls if isinstance(cls, type) else type(cls)
    return "_essl_base" in vars(cls)


def _block(cfg: Any) -> ESSLConfig | None:
    """The checked ``essl`` block of a solo-learn cfg, or None without one."""
    block = cfg.get("essl") if hasattr(cfg, "get") else None
    return None if block is None else ESSLConfig.from_mapping(plain(block))


class _Equivariant:
    """What every adapted class adds (before the solo-learn method in the MRO)."""

    _essl_base: ClassVar[type[Any]]
    # provided by the solo-learn method
    cfg: Any
    backbone: nn.Module
    features_dim: int
    no_channel_last: bool
    num_crops: int
    num_large_crops: int
    num_small_crops: int
    log_dict: Callable[..., None]

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)  # type: ignore[call-arg]
        self.essl_config = _block(cfg)
        seed = None if self.essl_config is None else self.essl_config.seed
        self._essl_streams = None if seed is None else StepStreams(seed)  # the rank read at each step
        self._essl_outs: list[Mapping[str, Any]] | None = None  # the large crops' outputs, collected in a step only
        self._essl_extras: dict[int, ViewPipeline] = {}  # the extra view by the source's size
        config = self.essl_config
        if config is None or not config.enabled:
            return
        if not 0 <= config.view < self.num_crops:
            raise ValueError(f"essl.view must be the index of one of the {self.num_crops} crops, got {config.view}.")
        size = plain(cfg.get("augmentations") or [{}])[0].get("crop_size")
        self.essl_views: TwoViews | None = config.build_views(size)
        local = self.essl_views.num_local if isinstance(self.essl_views, MultiCrop) else 0
        if self.essl_views is not None and (self.num_large_crops != 2 or self.num_small_crops != local):
            raise ValueError(
                f"essl.views makes 2 large crops and {local} small ones from the un-augmented images: configure 2 "
                f"large crops and {local} small ones (one augmentation entry with num_crops: 2"
                + (f", and one of a smaller crop_size with num_crops: {local}); " if local else "); ")
                + f"the config has {self.num_large_crops} and {self.num_small_crops}."
            )
        if size is not None:
            self._essl_extra(int(size))  # checks crop_size / crop_scale now rather than at the first step
        projector = getattr(self, "projector", None)
        width = [m.out_features for m in projector.modules() if isinstance(m, nn.Linear)] if projector else []
        context = {"augmentations": self.essl_views, "embedding_dim": width[-1] if width else None}
        objectives = config.build_objectives(self.features_dim, **{k: v for k, v in context.items() if v})
        if objectives is not None:
            provided = {"backbone", "extra", "features"}
            provided |= ({"embeddings"} if width else set()) | (
                {"params", "images"} if self.essl_views is not None else set()
            )
            check_provided(objectives, frozenset(provided))
        self.essl_objectives: Objectives | None = objectives

    def _essl_extra(self, size: int) -> ViewPipeline:
        """The extra view for sources of ``size`` pixels: the photometric ops and the views' normalisation only
        for un-augmented images (``essl.views``); a crop of the batch is already augmented and normalised."""
        if size not in self._essl_extras:
            views, config = self.essl_views, self.essl_config
            assert config is not None
            normalize = views.pipelines[0].normalize if views is not None else None
            self._essl_extras[size] = config.extra_view(size, views is not None, normalize)
        return self._essl_extras[size]

    @staticmethod
    def _essl_hook(base: Any, cfg: Any) -> Any:
        cfg = base.add_and_assert_specific_cfg(cfg)
        config = _block(cfg)
        if config is not None:
            from omegaconf import open_dict

            with open_dict(cfg):
                cfg.essl = config.as_mapping()  # the defaults, as solo-learn fills its own (main_pretrain saves cfg)
        return cfg

    @property
    def learnable_params(self) -> list[dict[str, Any]]:
        params: list[dict[str, Any]] = super().learnable_params  # type: ignore[misc]
        objectives = vars(self).get("_modules", {}).get("essl_objectives")
        return params if objectives is None else [*params, {"name": "essl", "params": objectives.parameters()}]

    def base_training_step(self, X: Tensor, targets: Tensor) -> Any:
        out = super().base_training_step(X, targets)  # type: ignore[misc]
        if self._essl_outs is not None:
            self._essl_outs.append(out)  # each large crop's feats (and the method's z): no second forward
        return out

    def _essl_generator(self, device: torch.device, batch_idx: int) -> torch.Generator | None:
        """The step's generator with ``essl.seed`` (:class:`~essl_aug.streams.StepStreams`, keyed by the process's
        rank, the epoch and the batch index, which a resumed run restores; each batch of an accumulation its own),
        else None (torch's global generator)."""
        streams = self._essl_streams
        if streams is None:
            return None
        return streams.generator(int(getattr(self, "current_epoch", 0)), int(batch_idx), device)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Lightning's hook: the checkpoint also keeps the ``essl.seed`` streams' state (``essl_streams``)."""
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]
        if self._essl_streams is not None:
            checkpoint["essl_streams"] = self._essl_streams.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Lightning's hook: a resumed run draws from the checkpoint's streams (its seed; the trainer restores the
        epoch and the step), so it draws what the uninterrupted run would have."""
        super().on_load_checkpoint(checkpoint)  # type: ignore[misc]
        state = checkpoint.get("essl_streams")
        if state is not None and self._essl_streams is not None:
            self._essl_streams.load_state_dict(state)

    def _essl_backbone(self, x: Tensor) -> Tensor:
        return self.backbone(x if self.no_channel_last else x.to(memory_format=torch.channels_last))

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        config, objectives = self.essl_config, vars(self).get("_modules", {}).get("essl_objectives")
        if config is None or (objectives is None and getattr(self, "essl_views", None) is None):
            return super().training_step(batch, batch_idx)  # type: ignore[misc]
        indexes, crops, targets = batch
        crops = [crops] if isinstance(crops, Tensor) else list(crops)
        source, params = crops[0 if self.essl_views is not None else config.view], None
        gen = self._essl_generator(source.device, batch_idx)
        if self.essl_views is not None:
            with torch.autocast(source.device.type, enabled=False), torch.no_grad():
                crops, params = self.essl_views(source, gen)
        if objectives is not None:  # unchanged unless an objective acts on the views (essl.source: views)
            large = self.num_large_crops
            crops = [*objectives.prepare_views(crops[:large], gen), *crops[large:]]
        self._essl_outs = [] if objectives is not None else None
        try:
            out = super().training_step([indexes, crops, targets], batch_idx)  # type: ignore[misc]
            first = (self._essl_outs or [])[:2]
        finally:
            self._essl_outs = None
        if objectives is None:
            return out
        extra = None
        if "extra" in objectives.requires:
            with torch.autocast(source.device.type, enabled=False), torch.no_grad():
                extra, _ = self._essl_extra(min(source.shape[-2:]))(source.detach(), gen)
        inputs = StepInputs(
            backbone=self._essl_backbone,
            extra=extra,
            features=(first[0]["feats"], first[1]["feats"]) if len(first) == 2 else None,
            embeddings=(first[0]["z"], first[1]["z"]) if len(first) == 2 and "z" in first[0] else None,
            params=None if params is None else (params[0], params[1]),
            generator=gen,
            images=source if self.essl_views is not None else None,  # the un-augmented batch the views came from
        )
        result = objectives(inputs)
        self.log_dict(log_keys(result.logs, "train"), on_epoch=True, sync_dist=True)
        return out + result.loss if isinstance(out, Tensor) else {**out, "loss": out["loss"] + result.loss}


def equivariant(method_cls: type) -> type:
    """The E-SSL version of a solo-learn method class, ``Equivariant<Name>``, made once and kept in this module.

    Example (needs solo-learn)::

        from solo.methods import METHODS
        from essl_aug.adapters.solo_learn import equivariant

        model = equivariant(METHODS[cfg.method])(cfg)  # exactly the method without an `essl:` block

    Anything else is refused:

        >>> equivariant(dict)
        Traceback (most recent call last):
        ...
        TypeError: equivariant() needs a solo-learn method class (a BaseMethod subclass), got dict.
    """
    if is_equivariant(method_cls):
        return method_cls
    if not _is_method_class(method_cls):
        name = getattr(method_cls, "__name__", type(method_cls).__name__)
        raise TypeError(f"equivariant() needs a solo-learn method class (a BaseMethod subclass), got {name}.")
    name = f"{_PREFIX}{method_cls.__name__}"
    cls = globals().get(name)
    if isinstance(cls, type) and vars(cls).get("_essl_base") is method_cls:
        return cls

    def add_and_assert_specific_cfg(cfg: Any) -> Any:
        return _Equivariant._essl_hook(method_cls, cfg)

    namespace = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"{method_cls.__name__} with the objectives of an `essl:` block (see {__name__}).",
        "_essl_base": method_cls,
        "add_and_assert_specific_cfg": staticmethod(add_and_assert_specific_cfg),
    }
    cls = type(name, (_Equivariant, method_cls), namespace)
    globals()[name] = cls  # a module attribute: the class and its instances pickle by reference
    return cls


def __getattr__(name: str) -> type:
    """``Equivariant<Method>`` in a fresh process (unpickling by reference): rebuilt from ``solo.methods``."""
    if name.startswith(_PREFIX):
        try:
            import solo.methods as methods
        except ImportError as err:
            raise AttributeError(f"{name}: cannot import solo.methods ({_EXTRA}).") from err
        base = getattr(methods, name.removeprefix(_PREFIX), None)
        if _is_method_class(base):
            return equivariant(base)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def install(methods: MutableMapping[str, Any] | None = None) -> MutableMapping[str, Any]:
    """Replace every method class of a registry (default ``solo.methods.METHODS``) by its E-SSL version, in place.

    The adapted classes are exactly the original methods unless the config has an ``essl`` block.
    """
    if methods is None:
        try:
            from solo.methods import METHODS
        except ImportError as err:
            raise ImportError(f"install() needs solo-learn: {_EXTRA}.") from err
        methods = METHODS
    for name, cls in list(methods.items()):
        if _is_method_class(cls) and cls.__name__ != "BaseMethod":
            methods[name] = equivariant(cls)
    return methods


def main(argv: list[str] | None = None) -> None:
    """``python -m essl_aug.adapters.solo_learn SCRIPT [ARGS...]``: :func:`install`, then run solo-learn's script
    (``main_pretrain.py``) unchanged, with its own command-line arguments."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m essl_aug.adapters.solo_learn <solo-learn>/main_pretrain.py [ARGS...]")
    install()
    sys.argv = list(argv)
    runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":  # run as a script: the adapted classes live in the importable module
    import importlib

    importlib.import_module("essl_aug.adapters.solo_learn").main()
