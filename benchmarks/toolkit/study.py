"""Studies: pretrain and probe a plan of methods over seeds on one dataset, write the JSON and PNG report.

The main job, ``make demo`` (:mod:`benchmarks.toolkit.demo`), is one such study; the quality benchmark
(``python -m benchmarks.quality``) is another.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import torch

from benchmarks.toolkit.data import LabelledImages
from benchmarks.toolkit.models import SmallCNN
from benchmarks.toolkit.pretrain import PretrainConfig, pretrain
from benchmarks.toolkit.probe import extract_features, linear_accuracy, linear_probe
from benchmarks.toolkit.report import (
    confidence_interval,
    environment,
    mean_std,
    plot_groups,
    replacing,
    summarise,
    to_json,
)
from benchmarks.toolkit.views import invariance, output_shape
from essl_aug import EquivariantTransform, Family, Transformation
from essl_aug.config import build_objectives
from essl_aug.registry import FamilySpec
from essl_aug.transform import Mode
from essl_aug.views import TwoViews


def family_label(family: FamilySpec) -> str:
    """A short printable name of a family spec (``"rotation"``, ``"rotation x vflip"``)."""
    if isinstance(family, str):
        return family
    if isinstance(family, (list, tuple)):
        return " x ".join(family_label(f) for f in family)
    return getattr(family, "name", str(family))


def paired_difference(baseline: Sequence[float], candidate: Sequence[float]) -> dict[str, Any]:
    """Per-seed ``candidate - baseline``: mean, std, the number of seeds where the candidate is ahead and, with two
    seeds or more, ``ci95``, the paired 95 % t-interval of the mean difference
    (:func:`~benchmarks.toolkit.report.confidence_interval`).

    Example:
        >>> d = paired_difference([0.90, 0.92, 0.91], [0.91, 0.94, 0.91])
        >>> round(d["mean"], 4), d["wins"], [round(v, 4) for v in d["ci95"]]
        (0.01, 2, [-0.0148, 0.0348])
    """
    diffs = [float(c) - float(b) for b, c in zip(baseline, candidate, strict=True)]
    m, s = mean_std(diffs)
    out: dict[str, Any] = {"differences": diffs, "mean": m, "std": s, "wins": sum(d > 0 for d in diffs)}
    if len(diffs) > 1:
        out["ci95"] = list(confidence_interval(diffs))
    return out


def random_init_accuracy(
    data: LabelledImages, width: int, seeds: Sequence[int], device: torch.device | str
) -> dict[str, Any]:
    """Linear-probe accuracy of untrained backbones (the floor any pretraining should beat)."""
    accs = []
    for seed in seeds:
        torch.manual_seed(seed)
        net = SmallCNN(data.train_x.shape[1], width).to(device).eval()
        accs.append(linear_probe(net, data.train_x, data.train_y, data.test_x, data.test_y))
    return summarise(accs)


#: A probe on frozen features: ``probe(f_train, train_y, f_test, test_y) -> accuracy``.
Probe = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], float]

Plan = Mapping[str, Mapping[str, PretrainConfig]]
#: Scores a trained backbone on tasks of its own (``{task: score}``), beside the probes on the frozen features.
Evaluate = Callable[[torch.nn.Module], Mapping[str, float]]
"""What a study runs: ``{group: {method: config}}``; a group is a row of the report (a family, a dataset)."""


def check_plan(data: LabelledImages, plan: Plan) -> None:
    """Fail before any training when a run of ``plan`` cannot work on ``data``: a batch of fewer than 2 images or
    more than the training split, a family that cannot act on the views it gets (a jigsaw on an odd size) or whose
    elements cannot be told apart there (grayscale on 1-channel images), E-SSL settings the transform refuses, or
    objectives whose options their classes refuse. Raises ``ValueError`` naming the run and the cause; leaves the
    random state as it was.
    """
    n = data.train_x.shape[0]
    images = (1, *data.train_x.shape[1:])
    for group, methods in plan.items():
        for method, cfg in methods.items():
            where = f"{group}: {method}" if len(plan) > 1 else method
            if cfg.batch_size < 2:
                raise ValueError(
                    f"{where}: `--batch-size` must be at least 2 (the contrastive loss needs a negative, batch "
                    f"normalisation two images), got {cfg.batch_size}"
                )
            if cfg.batch_size > n:
                raise ValueError(
                    f"{where}: `--batch-size` {cfg.batch_size} exceeds the {n} training images of {data.name}; lower it"
                )
            main = output_shape(cfg.view, images)
            if cfg.invariance is not None:
                family = invariance(cfg.invariance, cfg.invariance_p)
                _check_acts(family, cfg.invariance, main, f"{where}: family", "views", data.name)
            if cfg.uses_essl:
                block = cfg.block
                extra = output_shape(cfg.extra_view(main[-1]), images)
                _check_acts(block.transformation, block.transform, extra, f"{where}: family", "E-SSL view", data.name)
                if cfg.balanced or cfg.num_per_batch is not None:
                    try:
                        mode = cast(Mode, block.mode)
                        EquivariantTransform(
                            block.transformation, mode, balanced=cfg.balanced, num_per_batch=cfg.num_per_batch
                        )
                    except (ValueError, TypeError) as err:
                        raise ValueError(f"{where}: {err}") from err
            if cfg.objectives:
                context = {"in_features": 8, "embedding_dim": 8, "augmentations": TwoViews(cfg.view)}
                try:
                    with torch.random.fork_rng(devices=[]):
                        build_objectives(cfg.objectives, context)
                except (ValueError, TypeError) as err:
                    raise ValueError(f"{where}: {err}") from err


def _check_acts(
    transformation: Transformation, spec: Any, shape: tuple[int, ...], where: str, role: str, name: str
) -> None:
    """Raise unless ``transformation`` takes images of ``shape`` and, a family, gives each of its elements a
    different image there (a fixed random image: no global random number drawn)."""
    _, channels, h, w = shape
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    try:
        transformation.check(x, "view")
        if isinstance(transformation, Family):
            out = transformation.apply_all(x)
            same = [(j, i) for i in range(len(out)) for j in range(i) if torch.equal(out[i], out[j])]
            if same:
                raise ValueError(
                    f"its elements {same[0][0]} and {same[0][1]} give the same image there (nothing to tell apart)"
                )
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{where} {family_label(spec)} cannot act on the {h}x{w} {channels}-channel {role} of {name}: {err}"
        ) from err


def run_study(
    data: LabelledImages,
    plan: Plan,
    seeds: Sequence[int],
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "",
    probes: Mapping[str, Probe] | None = None,
    workers: int = 1,
    evaluate: Evaluate | None = None,
    cache: Path | str | None = None,
    cache_tag: str = "",
) -> dict[str, dict[str, dict[str, Any]]]:
    """Pretrain and probe every method of every group of ``plan`` for every seed.

    Returns ``{group: {method: summary}}``: the per-seed accuracies of the linear probe
    (:func:`~benchmarks.toolkit.probe.linear_probe`) with their mean and std
    (:func:`~benchmarks.toolkit.report.summarise`), ``pretrain_seconds`` and the ``last_epoch`` of each seed's
    history; with ``probes``, also ``"probes": {name: summary}`` of each extra probe on the same frozen features.
    A configuration equal to one that already ran (a baseline shared by every group) is not run again:
    its summary is reused, which changes nothing because every run is seeded by its configuration. The plan is
    checked first (:func:`check_plan`). ``workers`` > 1 runs that many (configuration, seed) runs at once in
    processes of one torch thread each (CPU only; every run is seeded by its configuration, so the results are
    those of one process). ``evaluate`` scores each trained backbone on tasks of its own: its scores join the
    probes' (``"probes": {task: summary}``). With ``cache`` (a folder), each finished (configuration, seed) run is
    kept there as JSON and reused by a later study with the same configuration, seed and ``cache_tag`` (which
    describes the probes and the evaluation): a study stopped part-way goes on where it stopped. The library's
    code is not part of the key: empty the folder after changing it.
    """
    check_plan(data, plan)
    todo: list[tuple[PretrainConfig, str]] = []
    for group, methods in plan.items():
        for method, cfg in methods.items():
            if not any(cfg == done for done, _ in todo):
                todo.append((cfg, f"{group}: {method}" if len(plan) > 1 else method))
    tasks = [(cfg, seed) for cfg, _ in todo for seed in seeds]
    done: dict[int, RunResult] = {}
    store = RunCache(cache, cache_tag) if cache is not None else None
    if store is not None:
        done = {i: r for i, (cfg, seed) in enumerate(tasks) if (r := store.get(cfg, seed)) is not None}
    pending = [i for i in range(len(tasks)) if i not in done]
    if workers > 1 and torch.device(device).type == "cpu":
        import concurrent.futures
        import multiprocessing

        bar = _progress_bar(len(pending), progress, (desc or "pretraining") + f" ({workers} processes, runs)")
        context = multiprocessing.get_context("spawn")
        try:
            with concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=context, initializer=_worker_init, initargs=(data, dict(probes or {}), evaluate)
            ) as pool:
                futures = {pool.submit(_worker_run, *tasks[i]): i for i in pending}
                for future in concurrent.futures.as_completed(futures):
                    i = futures[future]
                    done[i] = future.result()
                    if store is not None:
                        store.put(*tasks[i], done[i])
                    if bar is not None:
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()
    else:
        total = sum(tasks[i][0].epochs * (len(data.train_x) // tasks[i][0].batch_size) for i in pending)
        bar = _progress_bar(total, progress, desc)
        try:
            for i in pending:
                cfg, seed = tasks[i]
                if bar is not None:
                    bar.set_postfix_str(f"{next(label for c, label in todo if c is cfg)} seed {seed}")
                done[i] = _run(data, cfg, seed, device, probes or {}, _updater(bar), evaluate)
                if store is not None:
                    store.put(cfg, seed, done[i])
        finally:
            if bar is not None:
                bar.close()
    runs: list[tuple[PretrainConfig, dict[str, Any]]] = []
    for k, (cfg, _) in enumerate(todo):
        results = [done[k * len(seeds) + j] for j in range(len(seeds))]
        summary = {
            **summarise([r[0] for r in results]),
            "pretrain_seconds": sum(r[2] for r in results),
            "last_epoch": [r[3] for r in results],
        }
        if probes or evaluate is not None:
            summary["probes"] = {name: summarise([r[1][name] for r in results]) for name in results[0][1]}
        runs.append((cfg, summary))
    return {
        group: {
            method: next(summary for done_cfg, summary in runs if done_cfg == cfg) for method, cfg in methods.items()
        }
        for group, methods in plan.items()
    }


#: One run's result: linear accuracy, ``{probe or task: score}``, pre-training seconds, the last epoch's history row.
RunResult = tuple[float, dict[str, float], float, dict[str, float]]


def _run(
    data: LabelledImages,
    cfg: PretrainConfig,
    seed: int,
    device: torch.device | str,
    probes: Mapping[str, Probe],
    on_step: Callable[[], None] | None = None,
    evaluate: Evaluate | None = None,
) -> RunResult:
    """One run: ``(linear accuracy, {probe or task: score}, pre-training seconds, last epoch's history row)``."""
    res = pretrain(data.train_x, dataclasses.replace(cfg, seed=seed), device, on_step)
    f_train = extract_features(res.backbone, data.train_x)
    f_test = extract_features(res.backbone, data.test_x)
    acc = linear_accuracy(f_train, data.train_y, f_test, data.test_y)
    extra = {name: probe(f_train, data.train_y, f_test, data.test_y) for name, probe in probes.items()}
    if evaluate is not None:
        extra.update({name: float(v) for name, v in evaluate(res.backbone).items()})
    return acc, extra, res.seconds, res.history[-1] if res.history else {}


class RunCache:
    """Finished runs kept as JSON files in ``folder``, keyed by the configuration, the seed and ``tag``.

    Example:
        >>> import tempfile
        >>> cache, cfg = RunCache(tempfile.mkdtemp(), "linear"), PretrainConfig(essl=None)
        >>> cache.put(cfg, 0, (0.5, {"knn": 0.4}, 1.0, {"loss": 2.0}))
        >>> cache.get(cfg, 0), cache.get(cfg, 1)
        ((0.5, {'knn': 0.4}, 1.0, {'loss': 2.0}), None)
    """

    def __init__(self, folder: Path | str, tag: str = "") -> None:
        self.folder = Path(folder)
        self.tag = tag
        self.folder.mkdir(parents=True, exist_ok=True)

    def _key(self, cfg: PretrainConfig, seed: int) -> tuple[str, Path]:
        key = f"{dataclasses.replace(cfg, seed=seed)!r}|{self.tag}"
        return key, self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"

    def get(self, cfg: PretrainConfig, seed: int) -> RunResult | None:
        key, path = self._key(cfg, seed)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if entry.get("key") != key:
            return None
        acc, extra, seconds, last = entry["result"]
        return float(acc), dict(extra), float(seconds), dict(last)

    def put(self, cfg: PretrainConfig, seed: int, result: RunResult) -> None:
        key, path = self._key(cfg, seed)
        with replacing(path) as tmp:
            tmp.write_text(to_json({"key": key, "result": list(result)}) + "\n", encoding="utf-8")


_WORKER: dict[str, Any] = {}


def _worker_init(data: LabelledImages, probes: Mapping[str, Probe], evaluate: Evaluate | None = None) -> None:
    torch.set_num_threads(1)
    _WORKER.update(data=data, probes=probes, evaluate=evaluate)


def _worker_run(cfg: PretrainConfig, seed: int) -> RunResult:
    return _run(_WORKER["data"], cfg, seed, "cpu", _WORKER["probes"], evaluate=_WORKER["evaluate"])


def write_study(
    out: Path | str,
    job: str,
    settings: Mapping[str, Any],
    data: LabelledImages,
    results: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, Mapping[str, Any]]],
    random_init: Mapping[str, Any],
    started: float,
    title: str,
    extra: Mapping[str, Any] | None = None,
    ylabel: str = "linear-probe test accuracy (%)",
    reference_label: str = "random-init backbone",
) -> dict[str, Any]:
    """Write ``out/<job>.json`` and ``out/<job>.png`` for a study; returns the JSON payload.

    The payload: ``job``, the ``settings``, the ``dataset``, the ``results`` entries, ``random_init`` (the
    untrained backbone's probe accuracy), ``wall_seconds`` since ``started`` (a ``time.perf_counter()`` value),
    the ``environment`` and the ``extra`` entries. The plot shows ``groups`` (as :func:`plot_groups`) against
    the random-init accuracy. Both files are written whole or not at all (a failure leaves neither new file).
    """
    payload: dict[str, Any] = {
        "job": job,
        **settings,
        "dataset": data.describe(),
        **results,
        "random_init": dict(random_init),
        "wall_seconds": time.perf_counter() - started,
        "environment": environment(),
        **(extra or {}),
    }
    out = Path(out)
    text = to_json(payload) + "\n"
    with replacing(out / f"{job}.json") as tmp:
        tmp.write_text(text, encoding="utf-8")
        plot_groups(
            out / f"{job}.png",
            groups,
            title,
            reference=random_init["mean"],
            reference_label=reference_label,
            ylabel=ylabel,
        )
    return payload


def _progress_bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('the progress bar needs tqdm; install the extra: pip install "essl-aug[demo]"') from err
    return tqdm(total=total, desc=desc or "pretraining", unit="step", dynamic_ncols=True)


def _updater(bar: Any) -> Callable[[], None] | None:
    return None if bar is None else (lambda: bar.update(1))
