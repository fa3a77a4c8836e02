"""E-SSL in stable-pretraining: an ``spt.Module`` with the objectives of an ``essl:`` block, and its ``gpu_transform``.

stable-pretraining trains an ``spt.Module(forward=fn, **components)`` whose ``forward(self, batch, stage)`` returns a
dict holding ``"loss"``; GPU augmentation is a ``gpu_transform`` attached to the dataset (or the DataModule), run on
the device in ``on_after_batch_transfer``. This module only wires the library into those extension points:

- :class:`ESSLTransform` is the block's ``gpu_transform``: with ``essl.views`` it makes the two SSL views of
  ``batch["image"]`` (the un-augmented images) with a recipe of :mod:`essl_aug.views`, in spt's multi-view schema
  (``batch["views"]``, a list of ``{"image", "label", ...}`` dicts, as ``StackedMultiView`` writes it); without it it
  reads the views of spt's CPU ``MultiViewTransform``. It makes the E-SSL extra view (:func:`essl_aug.views.extra_view`,
  from the un-augmented images, or from view ``essl.view`` with its crop and flip only) and puts the views'
  parameters, the images and the extra view into ``batch["essl"]``.
- :class:`Module` is ``spt.Module`` plus the block: the objectives (:mod:`essl_aug.config`) are a component
  (``essl_objectives``), so the optimiser, DDP and FSDP2 see their heads; the user's ``forward`` runs unchanged and the
  module adds the objectives' weighted loss to its ``"loss"`` and their logs to the returned dict (``essl/ce``,
  ``essl/acc``, ``augself/loss``, ...; logged as ``fit/essl/ce``). The backbone features and projector outputs of the
  two views are read by forward hooks on the ``backbone`` and ``projector`` components (their students under a
  ``TeacherStudentWrapper``) while ``forward`` runs, so spt's forward functions (``simclr``, ``byol``, ``vicreg``,
  ``barlow_twins``, ...) need no change. With ``essl.seed`` every draw of a step comes from
  :class:`~essl_aug.streams.StepStreams` keyed by the trainer's rank, epoch and batch index.

Importing this module needs only ``essl_aug``; building a :class:`Module` needs stable-pretraining (an ImportError
naming the ``spt`` extra otherwise). In spt's Hydra config the block is one top-level ``essl:`` key, given to both
(``essl: ${essl}``); the guide (``docs/guides/stable_pretraining.md``) has the lines.

- [0]: Equivariant Contrastive Learning (E-SSL), 2022, https://arxiv.org/abs/2111.00899
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from essl_aug._validation import check_generator
from essl_aug.config import ESSLConfig, check_provided
from essl_aug.objectives import Objectives, StepInputs
from essl_aug.streams import StepStreams
from essl_aug.views import TwoViews, ViewPipeline

from ._hydra import plain


def _framework() -> Any:
    """stable-pretraining, or None: the module imports without it (ESSLTransform needs none; Module refuses)."""
    try:
        import stable_pretraining
    except ImportError:
        return None
    return stable_pretraining


spt = _framework()

_EXTRA = "install it with `pip install essl-aug[spt]` (or `pip install stable-pretraining`)"


class _Unavailable(nn.Module):
    """Stands for ``spt.Module`` where stable-pretraining is not installed: building a :class:`Module` raises."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ImportError(f"essl_aug.adapters.stable_pretraining.Module needs stable-pretraining; {_EXTRA}.")


_SptModule: Any = _Unavailable if spt is None else spt.Module

__all__ = ["KEY", "ESSLTransform", "Module"]

#: The key of the step's record in spt's batch dict, which holds ``generator``, ``step`` and ``requires`` (set by
#: :class:`Module`), then ``params``, ``images`` and ``extra`` (set by :class:`ESSLTransform`).
KEY = "essl"


def _block(essl: Any) -> ESSLConfig:
    """The checked ``essl`` block (a mapping or an omegaconf node)."""
    return ESSLConfig.from_mapping(plain(essl))


def _online(module: Any) -> Any:
    """The trained network of a component: the student of a ``TeacherStudentWrapper``, else the component."""
    wrapped = spt is not None and isinstance(module, spt.TeacherStudentWrapper)
    return module.student if wrapped else module


class ESSLTransform(nn.Module):
    """The ``gpu_transform`` of an ``essl:`` block: the SSL views (with ``essl.views``), the extra view and their
    parameters, in the batch dict; attach it to the training dataset (``gpu_transform=``), as spt recommends.

    Args:
        essl: the ``essl:`` block (:mod:`essl_aug.config`; the same as :class:`Module`'s). A recipe in ``views``
            gives its size: ``{"views": {"name": "simclr", "size": 32}}``.
        generator: draws the views when no :class:`Module` keys the step (default torch's).

    Shape:
        With ``essl.views``, ``batch["image"]`` (B, C, H, W), uint8 or float in [0, 1], is replaced by
        ``batch["views"]``; ``batch["essl"]["params"]``: each view's ``{name: Params}``. Without it,
        ``batch["views"]`` (spt's ``MultiViewTransform``) is read. ``batch["essl"]["extra"]``: (B, C, h, w), made when
        the module's objectives need it.

    Example:
        >>> t = ESSLTransform({"views": {"name": "simclr", "size": 16}})
        >>> batch = t({"image": torch.randint(0, 256, (4, 3, 24, 24), dtype=torch.uint8), "label": torch.zeros(4)})
        >>> [tuple(v["image"].shape) for v in batch["views"]], sorted(batch["views"][0]), sorted(batch["essl"])
        ([(4, 3, 16, 16), (4, 3, 16, 16)], ['image', 'label'], ['images', 'params'])
        >>> tuple(batch["essl"]["params"][0]["resized_crop"].box.shape)
        (4, 4)
    """

    def __init__(self, essl: Mapping[str, Any] | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = _block(essl)
        #: The views' recipe (``essl.views``), or None: the views come from spt's CPU ``MultiViewTransform``.
        self.views: TwoViews | None = self.config.build_views(None)
        check_generator(generator)
        self.generator = generator
        self._extras: dict[tuple[int, bool], ViewPipeline] = {}

    def _extra(self, size: int, photometric: bool) -> ViewPipeline:
        if (size, photometric) not in self._extras:
            normalize = self.views.pipelines[0].normalize if self.views is not None else None
            self._extras[size, photometric] = self.config.extra_view(size, photometric, normalize)
        return self._extras[size, photometric]

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The batch with the views (``essl.views``), their parameters and the extra view (in ``batch["essl"]``)."""
        if not isinstance(batch, dict):
            raise TypeError(f"`batch` must be spt's batch dict, got {type(batch).__name__}.")
        record = dict(batch.get(KEY) or {})
        generator = record.get("generator", self.generator)
        if self.views is not None:
            images = batch.get("image")
            if not isinstance(images, Tensor) or images.dim() != 4:
                raise ValueError(
                    "essl.views makes the views from batch['image'], the un-augmented (B, C, H, W) images: give the "
                    "dataset a CPU transform without random augmentation (e.g. ToImage) and no MultiViewTransform; "
                    f"got {type(images).__name__} under 'image'."
                )
            source, photometric = images, True
        else:
            views_list, view = batch.get("views"), self.config.view
            if not isinstance(views_list, list) or len(views_list) <= view:
                raise ValueError(
                    f"the extra view is made from view essl.view={view} of batch['views'] (spt's MultiViewTransform "
                    "with a list of views); set essl.views to make the views on the device."
                )
            source, photometric = views_list[view]["image"], False
        with torch.autocast(source.device.type, enabled=False), torch.no_grad():
            size = min(source.shape[-2:])
            if self.views is not None:
                views, params = self.views(source, generator)
                shared = {k: v for k, v in batch.items() if k not in ("image", "views", KEY)}
                batch["views"] = [{**shared, "image": view} for view in views]
                del batch["image"]
                record.update(params=(params[0], params[1]), images=source)
                size = min(views[0].shape[-2:])
            if "extra" in record.get("requires", ()):
                record["extra"], _ = self._extra(int(size), photometric)(source, generator)
        batch[KEY] = record
        return batch


class _Forward:
    """The user's ``forward`` with the module's objectives (bound to the module by spt as its ``forward``)."""

    __name__ = "forward"  # spt names its forward (spawned workers pickle it)

    def __init__(self, forward: Callable[..., Any]) -> None:
        self.forward = forward

    def __call__(self, module: Module, batch: Any, stage: str) -> Any:
        return module._essl_forward(self.forward, batch, stage)


class Module(_SptModule):
    """``spt.Module`` with the objectives of an ``essl:`` block; exactly ``spt.Module`` without one.

    Args:
        essl: the ``essl:`` block (:mod:`essl_aug.config`; a mapping or Hydra's node), the same as the
            :class:`ESSLTransform`'s on the training dataset.
        forward: the spt forward (``stable_pretraining.forward.simclr``, ...); it runs unchanged.
        in_features: the backbone's (flattened) width; default: the ``in_features`` of the projector's first Linear.
        embedding_dim: the projector's width; default: the ``out_features`` of its last Linear.
        **kwargs: ``spt.Module``'s (``backbone``, ``projector``, losses, ``optim``, ``hparams``, ...).

    The objectives are the component ``essl_objectives`` (in the single optimiser; with several, give a ``modules``
    pattern that matches it). The features and embeddings of the two views are the outputs of the ``backbone`` and
    ``projector`` components (their students under a ``TeacherStudentWrapper``) on the first ``2 B`` images of the
    step's ``forward``.

    Example (needs stable-pretraining)::

        from stable_pretraining import forward

        module = Module(essl={"lambda": 0.4}, forward=forward.simclr, backbone=backbone, projector=projector,
                        simclr_loss=spt.losses.NTXEntLoss(temperature=0.5), optim=optim)

    The block is checked first:

        >>> Module(essl={"lambda": -1}, forward=print)
        Traceback (most recent call last):
        ...
        ValueError: essl.lambda: `weight` must be a finite number >= 0 (reference: 0.4), got -1.
    """

    def __init__(
        self,
        *args: Any,
        essl: Mapping[str, Any] | None = None,
        forward: Callable[..., Any] | None = None,
        in_features: int | None = None,
        embedding_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        config = None if essl is None else _block(essl)
        if config is not None and forward is None:
            raise ValueError("`forward` is required with an `essl` block: the spt forward the objectives are added to.")
        super().__init__(*args, forward=forward if config is None else _Forward(forward), **kwargs)  # type: ignore[arg-type]
        self.essl_config = config
        self.essl_objectives: Objectives | None = None
        #: The step streams of ``essl.seed`` (the rank read at each step), or None.
        self.essl_streams = None if config is None or config.seed is None else StepStreams(config.seed)
        self._essl_seen: dict[str, list[Tensor]] | None = None
        if config is None or not config.enabled:
            return
        backbone = _online(getattr(self, "backbone", None))
        if not isinstance(backbone, nn.Module):
            raise ValueError("an `essl` block needs the `backbone` component (an nn.Module) that spt's forward calls.")
        projector = _online(getattr(self, "projector", None))
        has_projector = isinstance(projector, nn.Module)
        linears = [m for m in projector.modules() if isinstance(m, nn.Linear)] if has_projector else []
        in_features = in_features if in_features is not None else (linears[0].in_features if linears else None)
        if in_features is None:
            raise ValueError("give `in_features` (the backbone's width): there is no projector Linear to read it from.")
        embedding_dim = embedding_dim if embedding_dim is not None else (linears[-1].out_features if linears else None)
        context = {"augmentations": config.build_views(None), "embedding_dim": embedding_dim}
        objectives = config.build_objectives(int(in_features), **{k: v for k, v in context.items() if v is not None})
        if objectives is not None:
            provided = {"backbone", "extra", "features"} | ({"embeddings"} if has_projector else set())
            provided |= {"params", "images"} if config.views is not None else set()
            check_provided(objectives, frozenset(provided))
        self.essl_objectives = objectives
        backbone.register_forward_hook(partial(self._essl_record, "features"))
        if has_projector:
            projector.register_forward_hook(partial(self._essl_record, "embeddings"))

    def _essl_record(self, name: str, module: nn.Module, args: Any, output: Any) -> None:
        if self._essl_seen is not None and isinstance(output, Tensor):
            self._essl_seen[name].append(output)

    def _essl_backbone(self, x: Tensor) -> Tensor:
        return _online(self.backbone)(x).flatten(start_dim=1)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Key the training step's draws (``essl.seed``) before spt runs the ``gpu_transform``: the record
        ``batch["essl"]`` holds the step's generator, its ``(epoch, batch_idx)`` and what the objectives need."""
        trainer, config = getattr(self, "_trainer", None), self.essl_config
        if config is not None and config.enabled and trainer is not None and trainer.training and type(batch) is dict:
            epoch, step = int(self.current_epoch), int(trainer.fit_loop.epoch_loop.batch_progress.current.ready)
            streams = self.essl_streams
            generator = None if streams is None else streams.generator(epoch, step, self.device)
            objectives = self.essl_objectives
            requires = frozenset() if objectives is None else objectives.requires
            batch[KEY] = {"generator": generator, "step": (epoch, step), "requires": requires}
        return super().on_after_batch_transfer(batch, dataloader_idx)

    def _essl_forward(self, forward: Callable[..., Any], batch: Any, stage: str) -> Any:
        config, objectives = self.essl_config, self.essl_objectives
        if stage != "fit" or config is None or not config.enabled or not isinstance(batch, dict):
            return forward(self, batch, stage)
        record = batch.get(KEY)
        if not isinstance(record, dict) or "step" not in record:
            raise RuntimeError(
                "the batch has no essl record: the module writes it in on_after_batch_transfer, which Lightning calls "
                "in trainer.fit (a direct call of the module skips it)."
            )
        if record["step"][1] != batch.get("batch_idx", record["step"][1]):
            raise RuntimeError(
                f"the essl draws were keyed to (epoch, batch) {record['step']}, but the step is batch "
                f"{batch['batch_idx']}: Lightning's batch progress no longer counts as the adapter reads it."
            )
        if config.views is not None and "params" not in record:
            raise RuntimeError(
                "essl.views is set but the batch's views were not made by ESSLTransform: attach "
                "ESSLTransform(essl) to the training dataset (gpu_transform=...) or the DataModule."
            )
        if objectives is None:
            return forward(self, batch, stage)
        if "extra" in objectives.requires and record.get("extra") is None:
            raise RuntimeError(
                "the E-SSL term needs the extra view, which ESSLTransform makes: attach ESSLTransform(essl) to the "
                "training dataset (gpu_transform=...) or the DataModule."
            )
        generator = record.get("generator")
        views = batch.get("views")
        if not isinstance(views, list) or len(views) < 2:
            raise ValueError("the objectives read two views: batch['views'] must be spt's list of view dicts.")
        prepared = objectives.prepare_views([views[0]["image"], views[1]["image"]], generator)
        # the views change only with essl.source: views (ESSLOnViews transforms them before the backbone)
        if any(new is not old["image"] for new, old in zip(prepared, views[:2], strict=True)):
            batch["views"] = [{**views[0], "image": prepared[0]}, {**views[1], "image": prepared[1]}, *views[2:]]
        b = prepared[0].shape[0]
        self._essl_seen = {"features": [], "embeddings": []}
        try:
            out = forward(self, batch, stage)
            seen = self._essl_seen
        finally:
            self._essl_seen = None
        if not isinstance(out, dict) or "loss" not in out:
            raise ValueError("the forward must return spt's dict with 'loss' in training for the objectives to add to.")
        pairs = {}
        for name, outputs in seen.items():
            rows = torch.cat([o.flatten(start_dim=1) for o in outputs]) if outputs else None
            if rows is not None and rows.shape[0] >= 2 * b and outputs[0].shape[0] in (b, 2 * b):
                pairs[name] = (rows[:b], rows[b : 2 * b])
            elif name in objectives.requires:
                raise RuntimeError(
                    f"the {name} of the two views: the {'backbone' if name == 'features' else 'projector'} saw "
                    f"{0 if rows is None else rows.shape[0]} images in forward, not the 2 x {b} of the two views."
                )
        inputs = StepInputs(
            backbone=self._essl_backbone,
            extra=record.get("extra"),
            features=pairs.get("features"),
            embeddings=pairs.get("embeddings"),
            params=record.get("params"),
            generator=generator,
            images=record.get("images"),
        )
        result = objectives(inputs)
        self.log_dict({f"{stage}/{k}": v for k, v in result.logs.items()}, on_epoch=True, sync_dist=True)
        return {**out, "loss": out["loss"] + result.loss, **result.logs}
