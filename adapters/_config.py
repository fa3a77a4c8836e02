"""What both adapters' configs select by name: the GPU two-view recipe (``views``) and the objectives.

Only parsing and wiring: the views come from :func:`essl_aug.augment.recipes.recipe`, the objectives from the
classes of :mod:`essl_aug.objectives`, each imported when first named (a class not present in this install is an
error naming it). Errors name the config key at fault (``key``, e.g. ``essl.objectives``) and the fix.

Example:
    >>> check_views("simclr", "essl.views")
    {'name': 'simclr'}
    >>> two = build_views({"name": "byol", "size": 8}, None, "essl.views")
    >>> [p["solarize"].p for p in two.pipelines]
    [0.0, 0.2]
    >>> log_keys({"augself/loss": torch.zeros(())}, "train")
    {'train_augself_loss': tensor(0.)}
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from essl_aug.augment.pipeline import TwoViews
from essl_aug.augment.recipes import RECIPES, recipe
from essl_aug.objectives.base import Objective

#: The objectives a config names: ``module:class`` (imported when named) or the class. ``essl``, the discrete E-SSL
#: term of the paper, is configured by the adapters' own keys, not here.
OBJECTIVES: dict[str, str | type[Objective]] = {
    "continuous": "essl_aug.objectives.continuous:ContinuousESSL",
    "augself": "essl_aug.objectives.augself:AugSelf",
    "predictor": "essl_aug.objectives.predictor:PredictorEquivariance",
}
#: The name of the discrete E-SSL term in the objectives and in the logs.
ESSL = "essl"


def parse_json(value: Any, key: str) -> Any:
    """A command-line string holding JSON (``{...}`` or ``[...]``) as its value; anything else unchanged."""
    if isinstance(value, str) and value.strip()[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"{key}: {value!r} is not valid JSON ({err}).") from err
    return value


def check_views(spec: Any, key: str) -> dict[str, Any] | None:
    """``spec`` (``None``, a recipe name or ``{"name": ..., "size": ..., **recipe options}``) as a dict, checked
    by building the recipe once (with ``size`` 32 when the spec has none)."""
    spec = parse_json(spec, key)
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise ValueError(
            f"{key} must be null, a recipe name ({' or '.join(sorted(RECIPES))}) or a mapping "
            f"{{name: simclr, size: 32, ...recipe options}}, got {spec!r}."
        )
    spec = dict(spec)
    build_views(spec, 32, key)
    return spec


def build_views(spec: Mapping[str, Any], size: Any, key: str) -> TwoViews:
    """The two-view recipe of a checked ``spec``; ``size`` (the framework's crop size) unless the spec has one."""
    options = dict(spec)
    name = options.pop("name")
    if name not in RECIPES:
        raise ValueError(f"{key}: unknown recipe {name!r}; the recipes are {sorted(RECIPES)}.")
    size = options.pop("size", size)
    if size is None:
        raise ValueError(f"{key} needs the crops' size: give it in the block, e.g. {{name: {name}, size: 32}}.")
    if isinstance(size, list):
        size = tuple(size)
    if "normalize" in options and options["normalize"] is not None:
        options["normalize"] = tuple(tuple(v) for v in options["normalize"])
    for option in ("scale", "blur", "solarize"):
        if isinstance(options.get(option), list):
            options[option] = tuple(options[option])
    try:
        return recipe(name, size, **options)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{key}: {err}") from err


def objective_class(name: str, key: str) -> type[Objective]:
    """The class of the objective ``name`` (imported now)."""
    if name == ESSL:
        raise ValueError(
            f"{key}: '{ESSL}' is the discrete E-SSL term, set by its own keys (lambda, transform, ...); "
            f"name only the other objectives here ({sorted(OBJECTIVES)})."
        )
    if name not in OBJECTIVES:
        raise ValueError(f"{key}: unknown objective {name!r}; the objectives are {sorted(OBJECTIVES)}.")
    entry = OBJECTIVES[name]
    if isinstance(entry, str):
        module_name, _, class_name = entry.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"{key}.{name}: this essl-aug has no {entry} ({err}).") from err
    else:
        found = entry
    if not (isinstance(found, type) and issubclass(found, Objective)):
        raise TypeError(f"the objective {name!r} ({entry}) is not an essl_aug Objective class.")
    return found


def class_requires(cls: type[Objective]) -> frozenset[str] | None:
    """What every instance of ``cls`` requires (``None`` when each instance decides, e.g. by its ``source``)."""
    requires = inspect.getattr_static(cls, "requires", None)
    return requires if isinstance(requires, frozenset) else None


def check_provided(
    objectives: Mapping[str, Objective], provided: frozenset[str], key: str, fixes: Mapping[str, str]
) -> None:
    """Raise unless each built objective's inputs are among what the step ``provided``; ``fixes`` says, per input,
    how to provide it."""
    for name, objective in objectives.items():
        missing = sorted(objective.requires - provided)
        if missing:
            how = "; ".join(fixes.get(m, f"{m}: not provided by this adapter") for m in missing)
            raise ValueError(f"{key}.{name} needs {', '.join(missing)}, which the training step does not have ({how}).")


def _accepted(cls: type) -> tuple[set[str], bool]:
    """The keyword arguments ``cls`` takes, and whether it takes any (``**kwargs``)."""
    params = list(inspect.signature(cls).parameters.values())
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def check_objectives(spec: Any, key: str) -> dict[str, dict[str, Any]]:
    """``spec`` (``None`` or ``{name: {option: value}}``, an option mapping may be null) as plain dicts, checked:
    known names, mappings of options the class takes."""
    spec = parse_json(spec, key)
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"{key} must be a mapping {{name: {{option: value}}}}, e.g. {{augself: {{weight: 1.0, groups: [crop]}}}}, "
            f"got {spec!r}."
        )
    checked: dict[str, dict[str, Any]] = {}
    for name, options in spec.items():
        options = {} if options is None else options
        if not isinstance(options, Mapping):
            raise ValueError(f"{key}.{name} must be a mapping of the objective's options (or null), got {options!r}.")
        cls = objective_class(str(name), key)
        names, any_keyword = _accepted(cls)
        unknown = sorted(set(options) - names)
        if unknown and not any_keyword:
            raise ValueError(f"{key}.{name}: unknown option(s) {unknown}; {cls.__name__} takes {sorted(names)}.")
        checked[str(name)] = dict(options)
    return checked


def build_objectives(
    spec: Mapping[str, Mapping[str, Any]], context: Mapping[str, Any], key: str
) -> dict[str, Objective]:
    """The objectives of a checked ``spec``, each given the ``context`` values that its constructor names and its
    options do not set (``in_features`` also to a constructor taking ``**kwargs``, e.g.
    :class:`~essl_aug.objectives.base.DiscreteESSL`; for an objective reading the embeddings, option
    ``source: embeddings``, ``in_features`` is the context's ``embedding_dim``); a constructor's error is re-raised
    under ``key.<name>``."""
    built: dict[str, Objective] = {}
    for name, options in spec.items():
        cls = objective_class(name, key)
        names, any_keyword = _accepted(cls)
        wanted = names | ({"in_features"} if any_keyword else set())
        kwargs = {k: v for k, v in context.items() if k in wanted and k not in options}
        if options.get("source") == "embeddings" and "in_features" in kwargs and "embedding_dim" in context:
            kwargs["in_features"] = context["embedding_dim"]
        try:
            built[name] = cls(**kwargs, **options)
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{key}.{name}: {err}") from err
    return built


def log_keys(logs: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """``{"name/key": value}`` (what :class:`~essl_aug.objectives.base.Objectives` returns) as
    ``{"<prefix>_name_key": value}``, the frameworks' log names."""
    return {f"{prefix}_{k.replace('/', '_')}": v for k, v in logs.items()}
