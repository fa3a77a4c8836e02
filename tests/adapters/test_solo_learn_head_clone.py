"""Opt-in: a GitHub clone of solo-learn, its OWN method tests and its OWN ``main_pretrain.py``, with the adapter.

Set ``SOLO_LEARN_SRC=/path/to/solo-learn`` (a clone; its dependencies importable, e.g. both overlays of
``scripts/install_solo_overlay.sh``: no more is needed with wandb disabled). ``SOLO_LEARN_TESTS`` picks the test
files (default: the four target methods). Skipped otherwise: the clone cannot come from PyPI.

``main_pretrain.py`` runs with ``install()`` called first (the solo-learn guide's alternative to the two-line change),
on a 16-image folder for two CPU steps: both example configs, and six of solo-learn's own CIFAR configs with E-SSL added
by Hydra overrides. Each run must write ``args.json`` with solo-learn's defaults and the filled ``essl`` block.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = os.environ.get("SOLO_LEARN_SRC")
TESTS = os.environ.get("SOLO_LEARN_TESTS", "test_simclr.py test_byol.py test_barlow_twins.py test_vicreg.py").split()

pytestmark = pytest.mark.skipif(not SRC, reason="SOLO_LEARN_SRC does not point to a solo-learn clone")


def test_own_method_tests_pass_with_the_adapter_swapped_in() -> None:
    src = Path(SRC).resolve()  # type: ignore[arg-type]
    files = [str(src / "tests" / "methods" / name) for name in TESTS]
    missing = [f for f in files if not Path(f).is_file()]
    assert not missing, f"not a solo-learn clone with tests/methods: {missing}"
    path = [str(src), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]  # + the swap plugin's folder
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore"]
    cmd += ["-p", "solo_learn_swap_plugin", "--rootdir", str(src), *files]
    out = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True, timeout=900)
    tail = (out.stdout + out.stderr)[-4000:]
    assert out.returncode == 0, tail
    assert f"{len(files)} passed" in out.stdout, tail
    steps = [line for line in out.stdout.splitlines() if line.startswith("essl-aug swap:") and "E-SSL steps" in line]
    assert steps and int(steps[-1].split()[2]) > 0, tail


#: main_pretrain.py with the adapter installed; prints the number of E-SSL steps when the script ends.
_RUNNER = """
import atexit, runpy, sys
from essl_aug.adapters import solo_learn
from solo.methods import METHODS
solo_learn.install(METHODS)
steps = []
branch = solo_learn._EquivariantMethod._essl_loss
solo_learn._EquivariantMethod._essl_loss = lambda self, x: steps.append(1) or branch(self, x)
atexit.register(lambda: print("E-SSL steps:", len(steps), flush=True))
script = sys.argv.pop(1)
sys.argv[0] = script
runpy.run_path(script, run_name="__main__")
"""
#: Two CPU steps on a folder of 16 images; no wandb, DDP, mixed precision or resuming.
_TINY = [
    "data.dataset=custom", "data.val_path=null", "data.num_workers=0", "optimizer.batch_size=4", 'devices="1"',
    "accelerator=cpu", "strategy=auto", "precision=32", "sync_batchnorm=False", "max_epochs=1", "++max_steps=2",
    "++limit_train_batches=2", "wandb.enabled=False", "auto_resume.enabled=False", "checkpoint.enabled=True",
    "checkpoint.frequency=1",
]  # fmt: skip
_ESSL = ["++essl.lambda=0.4", "++essl.crop_size=16"]
_EXAMPLES = str(Path(__file__).resolve().parents[2] / "examples" / "solo_learn")
#: name: (config folder, relative to the clone unless absolute; config name; extra overrides; essl transform)
_RUNS = {
    "example-gpu": (_EXAMPLES, "esimclr_cifar10.yaml", [], "rotation"),
    "example-extra-crop": (_EXAMPLES, "esimclr_cifar10_extra_crop.yaml", [], "rotation"),
    "simclr": ("scripts/pretrain/cifar", "simclr.yaml", _ESSL, "rotation"),
    "byol": (
        "scripts/pretrain/cifar",
        "byol.yaml",
        [*_ESSL, "++essl.transform=[rotation,vflip]"],
        ["rotation", "vflip"],
    ),
    "barlow-twins": ("scripts/pretrain/cifar", "barlow.yaml", _ESSL, "rotation"),
    "vicreg": ("scripts/pretrain/cifar", "vicreg.yaml", _ESSL, "rotation"),
    "mocov3": ("scripts/pretrain/cifar", "mocov3.yaml", _ESSL, "rotation"),
    "mae": ("scripts/pretrain/cifar", "mae.yaml", ["++essl.lambda=0.4"], "rotation"),  # a ViT: the view keeps 32 px
}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    for i in range(16):
        (root / f"class{i % 2}").mkdir(exist_ok=True)
        pixels = bytes((i * 37 + j * 11) % 256 for j in range(32 * 32 * 3))
        Image.frombytes("RGB", (32, 32), pixels).save(root / f"class{i % 2}" / f"{i}.png")
    return root


@pytest.mark.parametrize("name", list(_RUNS))
def test_main_pretrain_runs_with_the_adapter(name: str, image_folder: Path, tmp_path: Path) -> None:
    src = Path(SRC).resolve()  # type: ignore[arg-type]
    folder, config, overrides, transform = _RUNS[name]
    runner = tmp_path / "run_pretrain.py"
    runner.write_text(_RUNNER)
    path = [str(src), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    cmd = [sys.executable, "-W", "ignore", str(runner), str(src / "main_pretrain.py")]
    cmd += ["--config-path", str(src / folder), "--config-name", config, *_TINY, *overrides]
    cmd += [f"data.train_path={image_folder}", f"checkpoint.dir={tmp_path / 'ckpt'}"]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    tail = (out.stdout + out.stderr)[-4000:]
    assert out.returncode == 0, tail
    assert "E-SSL steps: 2" in out.stdout, tail
    (args_json,) = (tmp_path / "ckpt").rglob("args.json")
    args = json.loads(args_json.read_text())
    assert "disable_channel_last" in args["performance"]  # solo-learn's defaults, filled into main_pretrain's cfg
    assert args["essl"]["lambda"] == 0.4 and args["essl"]["transform"] == transform and "hidden_dim" in args["essl"]
    assert args["data"]["num_small_crops"] == (1 if name == "example-extra-crop" else 0)
