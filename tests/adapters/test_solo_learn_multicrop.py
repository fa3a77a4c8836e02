"""solo-learn's multi-crop methods (DINO, SwAV) with the crops made on the device by essl-aug's multi-crop recipes,
through solo-learn's own ``main_pretrain.py``, unmodified, run by ``python -m essl_aug.adapters.solo_learn`` on the CPU.

Each run trains two steps on a tiny image folder from the example config ``edino_cifar10_multicrop_views.yaml`` (2
global crops of 32 px and 6 local crops of 16 px by :func:`essl_aug.views.dino`, the E-SSL term and AugSelf on the
global crops), for SwAV with overrides (``method=swav``, ``essl.views.name=swav``); a third run with a crop count that
does not match the recipe's must stop with the adapter's error. Runs in the session of ``make test-solo``.
"""

from __future__ import annotations

from tests.adapters import solo_env

solo_env.require_solo()

import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from essl_aug.config import ESSLConfig  # noqa: E402
from essl_aug.views import MultiCrop  # noqa: E402
from tests.adapters.test_solo_learn_pretrain import CPU, EXAMPLES, finished, image_folder, metrics  # noqa: E402

CONFIG = "edino_cifar10_multicrop_views.yaml"
SMALL = ["method_kwargs.proj_hidden_dim=64", "method_kwargs.proj_output_dim=32", "method_kwargs.num_prototypes=16"]
SMALL += ["++essl.hidden_dim=64", "optimizer.name=sgd", "~optimizer.kwargs", "++optimizer.kwargs.momentum=0.9"]
SWAV = ["method=swav", "++essl.views.name=swav", "++method_kwargs.temperature=0.1", "++method_kwargs.queue_size=0"]
#: name: (overrides, metrics it logs)
RUNS = {
    "e_dino": (SMALL, {"train_essl_ce", "train_augself_loss", "train_augself_crop", "dino_loss"}),
    "e_swav": ([*SMALL, *SWAV], {"train_essl_ce", "train_augself_loss", "train_augself_color", "train_swav_loss"}),
    "wrong_count": ([*SMALL, "augmentations.1.num_crops=2"], set()),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.Popen]]:
    data = image_folder(tmp_path_factory.mktemp("images"))
    started = {}
    for name, (overrides, _) in RUNS.items():
        out = tmp_path_factory.mktemp(name)
        command = [sys.executable, "-W", "ignore", "-m", "essl_aug.adapters.solo_learn"]
        command += [str(solo_env.solo_learn_src() / "main_pretrain.py"), "--config-path", str(EXAMPLES)]
        command += ["--config-name", CONFIG, f"data.train_path={data}", f"++default_root_dir={out}"]
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


def test_the_example_block_makes_dinos_crops_at_cifar_sizes() -> None:
    cfg = OmegaConf.load(EXAMPLES / CONFIG)
    crops = ESSLConfig.from_mapping(OmegaConf.to_container(cfg.essl)).build_views(cfg.augmentations[0].crop_size)
    assert isinstance(crops, MultiCrop) and crops.num_local == 6
    sizes = [p["resized_crop"].size for p in crops.pipelines]
    assert sizes == [(32, 32)] * 2 + [(16, 16)] * 6
    assert [a.crop_size for a in cfg.augmentations] == [32, 16]
    assert [a.num_crops for a in cfg.augmentations] == [2, crops.num_local]  # solo-learn's large and small counts


@pytest.mark.parametrize("name", ["e_dino", "e_swav"])
def test_main_pretrain_trains_on_the_device_crops(runs, name: str) -> None:
    logged = metrics(finished(runs, name))
    for key in RUNS[name][1]:
        steps = logged.get(f"{key}_step", logged.get(key, []))
        assert len(steps) == 2, (key, sorted(logged))  # two steps, log_every_n_steps=1
        assert all(math.isfinite(v) for v in steps), (key, steps)
    assert abs(logged["train_essl_ce_step"][0] - math.log(4)) < 0.5  # the head classifies the 4 rotations


def test_a_crop_count_unlike_the_recipes_stops_with_the_fix(runs) -> None:
    out, process = runs["wrong_count"]
    assert process.wait(timeout=600) != 0
    log = " ".join((out / "log.txt").read_text().split())
    assert "essl.views makes 2 large crops and 6 small ones from the un-augmented images" in log
    assert "the config has 2 and 2." in log
