"""The lightly guide's multi-crop edit of lightly's own ``examples/pytorch/dino.py`` (an unmodified snapshot at
``../shared/clients/lightly``): the documented diff applies to the published example, changes as many lines as the
guide says, and the edited example trains DINO on the device crops of ``GPUViews("dino")``, which are
``DINOTransform``'s."""

from __future__ import annotations

import math
import re
import runpy
from pathlib import Path

import pytest

pytest.importorskip("lightly")

import lightly.transforms as lightly_transforms
import torch

from essl_aug.views import MultiCrop
from tests.adapters.test_lightly_example import GUIDE, WORDS, apply_unified_diff, example


def documented_edit() -> tuple[str, list[str], str]:
    """The guide's ``diff`` block marked ``<!-- lightly-multicrop-edit: PATH -->``, with the paragraph before it."""
    text = GUIDE.read_text()
    (m,) = re.finditer(r"<!-- lightly-multicrop-edit: (\S+) -->\n```diff\n(.*?)```", text, re.S)
    before = " ".join(text[: m.start()].rstrip().rsplit("\n\n", 1)[-1].split())
    return m.group(1), m.group(2).splitlines(), before


PATH, DIFF, SENTENCE = documented_edit()


def test_the_guide_counts_the_lines_its_diff_changes() -> None:
    apply_unified_diff(example(PATH).read_text(), DIFF)  # the diff applies to the published example
    body = [line for line in DIFF if not line.startswith(("---", "+++", "@@"))]
    added = sum(line.startswith("+") for line in body)
    removed = sum(line.startswith("-") for line in body)
    counted = f"is {WORDS[added]} lines, {WORDS[added - removed]} added and {WORDS[removed]} changed"
    assert counted in SENTENCE, (counted, SENTENCE)


def test_the_edited_example_trains_dino_on_the_device_crops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edited = apply_unified_diff(example(PATH).read_text(), DIFF)
    # The run only (not the documented edit): a small fake data set at CIFAR sizes, one epoch of two steps.
    for old, new in [
        (
            'torchvision.datasets.VOCDetection(\n    "datasets/pascal_voc",\n    download=True,\n'
            "    transform=transform,\n    target_transform=target_transform,\n)",
            "torchvision.datasets.FakeData(16, (3, 40, 48), transform=transform)",
        ),
        ("Resize(256), torchvision.transforms.CenterCrop(256)", "Resize(36), torchvision.transforms.CenterCrop(36)"),
        ('GPUViews("dino", size=224,', 'GPUViews("dino", size=32, local_size=16,'),
        ("batch_size=64", "batch_size=8"),
        ("num_workers=8", "num_workers=0"),
        ("epochs = 10", "epochs = 1"),
    ]:
        assert old in edited, old
        edited = edited.replace(old, new)
    script = tmp_path / "dino.py"
    script.write_text(edited)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    namespace = runpy.run_path(str(script), run_name="__main__")
    crops, views, params = namespace["gpu_views"].recipe, namespace["views"], namespace["params"]
    assert isinstance(crops, MultiCrop) and crops.num_local == len(lightly_transforms.DINOTransform().transforms) - 2
    assert [tuple(v.shape) for v in views] == [(8, 3, 32, 32)] * 2 + [(8, 3, 16, 16)] * 6
    assert len(params) == 8 and all(p["resized_crop"].box.shape == (8, 4) for p in params)
    assert all(bool(p["resized_crop"].input_size.eq(36).all()) for p in params)  # drawn on the resized images
    assert len(namespace["student_out"]) == 8 and len(namespace["teacher_out"]) == 2
    assert math.isfinite(float(namespace["loss"]))
