"""solo-learn's own ``main_pretrain.py``, unmodified, run by ``python -m essl_aug.adapters.solo_learn``, on the CPU.

Each run trains two steps on a tiny image folder made here, from solo-learn's own CIFAR configs or this project's
example configs, with overrides that make it CPU-sized; the four runs start together (one thread each) and each test
reads its run from outside: the exit status, Lightning's CSV metrics and, for E-SimCLR, solo-learn's checkpoints and
``args.json``. Runs in the session of ``make test-solo`` (``conftest.py``).
"""

from __future__ import annotations

from tests.adapters import solo_env

solo_env.require_solo()

import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from essl_aug.config import ESSLConfig  # noqa: E402

EXAMPLES = solo_env.ROOT / "examples" / "solo_learn"
SOLO_CIFAR = solo_env.solo_learn_src() / "scripts" / "pretrain" / "cifar"
SMALL = ["method_kwargs.proj_hidden_dim=64", "method_kwargs.proj_output_dim=32", "++essl.hidden_dim=64"]
CHECKPOINTS = ["checkpoint.enabled=True", "checkpoint.frequency=1", "++checkpoint.keep_prev=True"]
#: name: (config folder, config name, overrides, metrics it logs)
RUNS = {
    "e_simclr": (  # the example config (rotation, 16 px view); two epochs of one step, a checkpoint after each
        EXAMPLES,
        "esimclr_cifar10.yaml",
        [*SMALL, "max_epochs=2", "++limit_train_batches=1", *CHECKPOINTS],
        {"train_essl_loss", "train_essl_ce", "train_essl_acc", "train_nce_loss"},
    ),
    "e_byol_product": (  # solo-learn's own BYOL config, E-SSL by overrides: 4 rotations x 2 vertical flips
        SOLO_CIFAR,
        "byol.yaml",
        [*SMALL, "method_kwargs.pred_hidden_dim=64", "++essl.transform=[rotation,vflip]", "++essl.crop_size=16"],
        {"train_essl_loss", "train_essl_ce", "train_essl_acc", "train_neg_cos_sim"},
    ),
    "augself_views": (  # the example with the views on the device and AugSelf by config
        EXAMPLES,
        "esimclr_cifar10_gpu_views.yaml",
        SMALL,
        {"train_essl_ce", "train_augself_loss", "train_augself_crop", "train_augself_color", "train_nce_loss"},
    ),
    "plain_simclr": (SOLO_CIFAR, "simclr.yaml", [], {"train_nce_loss", "train_class_loss"}),
}
#: What makes a run CPU-sized (2 steps of 4 images of 32 px; no logger but Lightning's CSV default): the override
#: set the guide documents (``devices='1'``, a string: solo-learn scales the lr by len(devices)).
CPU = [line for line in (EXAMPLES / "cpu_smoke.txt").read_text().splitlines() if line and not line.startswith("#")]


def image_folder(root: Path) -> Path:
    """Two classes of eight random 32 x 32 RGB images (PNG)."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.Popen]]:
    """Every run of RUNS, started together; each test waits for its own."""
    data = image_folder(tmp_path_factory.mktemp("images"))
    started = {}
    for name, (folder, config, overrides, _) in RUNS.items():
        out = tmp_path_factory.mktemp(name)
        command = [sys.executable, "-W", "ignore", "-m", "essl_aug.adapters.solo_learn"]
        command += [str(solo_env.solo_learn_src() / "main_pretrain.py"), "--config-path", str(folder)]
        command += ["--config-name", config, f"data.train_path={data}", f"++default_root_dir={out}"]
        command += [f"checkpoint.dir={out / 'ckpt'}", *CPU, *overrides]
        log = (out / "log.txt").open("w")
        started[name] = (
            out,
            subprocess.Popen(command, cwd=out, env=solo_env.subprocess_env(), stdout=log, stderr=subprocess.STDOUT),
        )
    yield started
    for _, process in started.values():
        if process.poll() is None:
            process.kill()


def finished(runs: dict, name: str) -> Path:
    out, process = runs[name]
    code = process.wait(timeout=600)
    assert code == 0, (out / "log.txt").read_text()[-4000:]
    return out


def metrics(out: Path) -> dict[str, list[float]]:
    """Lightning's CSV metrics of the run (its default logger: main_pretrain.py passes logger=None)."""
    (path,) = out.glob("lightning_logs/version_*/metrics.csv")
    values: dict[str, list[float]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if value:
                    values.setdefault(key, []).append(float(value))
    return values


@pytest.mark.parametrize("name", list(RUNS))
def test_main_pretrain_runs_and_logs_the_objectives(runs, name: str) -> None:
    logged = metrics(finished(runs, name))
    for key in RUNS[name][3]:
        steps, epochs = logged.get(f"{key}_step", []), logged.get(f"{key}_epoch", [])
        assert len(steps) == 2 and epochs, (key, sorted(logged))  # two steps, log_every_n_steps=1
        assert all(math.isfinite(v) for v in steps + epochs), (key, steps, epochs)
    for key in ("train_essl_acc_step", "train_augself_flip_acc_step"):
        assert all(0 <= v <= 1 for v in logged.get(key, []))
    if name == "plain_simclr":  # install() alone changes nothing without an essl block
        assert not [k for k in logged if "essl" in k or "augself" in k]
    if name == "e_byol_product":  # the head classifies 8 elements (4 rotations x 2 flips): at first near ln 8
        assert abs(logged["train_essl_ce_step"][0] - math.log(8)) < 0.5


def test_e_simclr_saves_the_filled_block_and_trains_the_essl_head(runs) -> None:
    """solo-learn's own checkpointer saves the config after the adapter filled the ``essl`` block's defaults, and
    a checkpoint after each one-step epoch: the E-SSL head's weights differ from one to the next, so its loss
    reached the optimiser (a head outside the loss gets no gradient, and SGD leaves such a parameter as it is)."""
    out = finished(runs, "e_simclr")
    (args,) = (out / "ckpt").glob("simclr/*/args.json")
    block = json.loads(args.read_text())["essl"]
    given = {"lambda": 0.4, "transform": "rotation", "mode": "all", "crop_size": 16, "crop_scale": [0.2, 1.0]}
    assert block == ESSLConfig.from_mapping({**given, "view": 0, "hidden_dim": 64}).as_mapping()
    first, second = (torch.load(p, map_location="cpu")["state_dict"] for p in sorted(args.parent.glob("*.ckpt")))
    head = [k for k in first if k.startswith("essl_objectives.objectives.essl.head.")]
    assert head and set(first) == set(second)
    assert first[head[-1]].shape[0] == 4  # the quarter turns
    assert all(not torch.equal(first[k], second[k]) for k in head if k.endswith("weight"))
