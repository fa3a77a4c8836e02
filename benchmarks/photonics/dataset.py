"""Labelled (cell -> DOS) and unlabelled photonic-crystal data, computed once and cached in an ``.npz`` file.

Labels come from legume's plane-wave expansion (``solvers.bands_legume``: 0.5 s per cell on one core, about 4x
faster here than driving MPB, which the physics tests use as the cross-check). The file name encodes every
setting that changes the data, so a cached file is only reused for the same data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.photonics import cells, dos, solvers

#: Bump when the data definition changes (invalidates caches).
DATA_VERSION = 1
DEFAULT_CACHE = Path("results") / "photonics"


@dataclass(frozen=True)
class DataSpec:
    """Everything that defines a dataset file."""

    labelled: int = 800
    unlabelled: int = 4000
    family: str = "blob"
    seed: int = 0
    kgrid: int = dos.KGRID
    gmax: float = solvers.GMAX
    num_bands: int = solvers.NUM_BANDS
    sigma: float = dos.SIGMA
    version: int = DATA_VERSION

    def path(self, cache_dir: str | os.PathLike = DEFAULT_CACHE) -> Path:
        key = hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        return Path(cache_dir) / f"phc-{self.family}-{self.labelled}l-{self.unlabelled}u-s{self.seed}-{key}.npz"


#: Cells per solved chunk; chunk ``i`` of a seed is always the same 25 cells, so a smaller dataset is a prefix
#: of a larger one and an interrupted generation resumes from its finished chunks.
CHUNK = 25
#: Seed-sequence entry of the unlabelled pool (chunk ``i`` uses ``[seed, i]``; no chunk index reaches this).
UNLABELLED_STREAM = 2**32 - 1


def chunk_cells(spec: DataSpec, index: int) -> np.ndarray:
    """(25, 32, 32) labelled cells of chunk ``index`` (deterministic in ``spec.seed`` and ``index``)."""
    return cells.random_cells(CHUNK, seed=[spec.seed, index], family=spec.family)


def _solve(args: tuple[np.ndarray, DataSpec]) -> tuple[np.ndarray, np.ndarray]:
    chunk, spec = args
    k = dos.kgrid(spec.kgrid)
    freqs, targets = [], []
    for eps in chunk:
        f = solvers.bands_legume(eps, k, num_bands=spec.num_bands, gmax=spec.gmax)
        if not dos.bands_cover(f, float(eps.mean()), spec.sigma):
            raise RuntimeError("too few bands to cover the DOS window; raise NUM_BANDS.")
        freqs.append(f)
        targets.append(dos.dos(f, float(eps.mean()), spec.sigma, n=spec.kgrid))
    return np.asarray(freqs, dtype=np.float32), np.asarray(targets, dtype=np.float32)


def _chunk_dir(spec: DataSpec, cache_dir: str | os.PathLike) -> Path:
    key = dataclasses.replace(spec, labelled=0, unlabelled=0)
    return Path(cache_dir) / "chunks" / key.path(cache_dir).stem


@contextlib.contextmanager
def _one_blas_thread():
    """One BLAS thread in the worker processes started inside (the processes are the parallelism)."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def label_chunks(spec: DataSpec, cache_dir: str | os.PathLike, workers: int = 2, log=print) -> dict[str, np.ndarray]:
    """Cells, bands and DOS of the first ``spec.labelled`` cells, solving (and caching) the missing chunks."""
    n_chunks = -(-spec.labelled // CHUNK)
    folder = _chunk_dir(spec, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(n_chunks) if not (folder / f"{i}.npz").exists()]
    start = time.time()
    jobs = [(chunk_cells(spec, i), spec) for i in todo]

    def save(i: int, eps: np.ndarray, result: tuple[np.ndarray, np.ndarray], done: int) -> None:
        np.savez(folder / f"{i}.tmp.npz", eps=eps.astype(np.float32), freqs=result[0], dos=result[1])
        (folder / f"{i}.tmp.npz").replace(folder / f"{i}.npz")
        if done % 4 == 0 or done == len(todo):
            log(f"  solved {done * CHUNK}/{len(todo) * CHUNK} new cells in {time.time() - start:.0f} s")

    if jobs:  # worker processes even for workers=1: BLAS reads its thread count only when it starts
        with _one_blas_thread(), mp.get_context("spawn").Pool(max(1, min(workers, len(jobs)))) as pool:
            for done, (i, job, result) in enumerate(zip(todo, jobs, pool.imap(_solve, jobs), strict=True), 1):
                save(i, job[0], result, done)
    parts = [np.load(folder / f"{i}.npz") for i in range(n_chunks)]
    return {key: np.concatenate([p[key] for p in parts])[: spec.labelled] for key in ("eps", "freqs", "dos")}


def load_or_generate(
    spec: DataSpec, cache_dir: str | os.PathLike = DEFAULT_CACHE, workers: int = 2, log=print
) -> dict[str, np.ndarray]:
    """The dataset of ``spec``: read from the cache, or generated (and cached) when absent.

    Keys: ``eps`` (N, 32, 32) labelled cells, ``dos`` (N, 400), ``freqs`` (N, N_k, N_bands), ``eps_avg`` (N,),
    ``eps_unlabelled`` (M, 32, 32), ``wvec`` (400,), ``seconds`` (generation time of this call).
    """
    path = spec.path(cache_dir)
    if path.exists():
        with np.load(path) as data:
            return dict(data)
    log(f"generating {spec.labelled} labelled + {spec.unlabelled} unlabelled {spec.family} cells -> {path}")
    start = time.time()
    labelled = label_chunks(spec, cache_dir, workers=workers, log=log)
    unlabelled = cells.random_cells(spec.unlabelled, seed=[spec.seed, UNLABELLED_STREAM], family=spec.family)
    data = {
        **labelled,
        "eps_avg": labelled["eps"].astype(np.float64).mean(axis=(1, 2)).astype(np.float32),
        "eps_unlabelled": unlabelled.astype(np.float32),
        "wvec": dos.WVEC.astype(np.float32),
        "seconds": np.float64(time.time() - start),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **data)
    tmp.replace(path)
    log(f"  done in {data['seconds']:.0f} s")
    return data
