"""The per-sample wrapper: one image -> (image', label), in torchvision pipelines and DataLoader workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from essl_aug.adapters.per_sample import PerSample
from PIL import Image
from torch import nn
from torchvision.transforms import v2

from essl_aug import EquivariantTransform, RandomRotation90
from tests.docs.doc_blocks import run_doc_block


def rotation_oracle(img: torch.Tensor, k: int) -> torch.Tensor:
    return torch.rot90(img, k, dims=(-2, -1))


def test_output_matches_the_label() -> None:
    torch.manual_seed(0)
    rotate = PerSample("rotation")
    img = torch.rand(3, 8, 8)
    before = img.clone()
    seen = set()
    for _ in range(40):
        out, label = rotate(img)
        assert type(label) is int and 0 <= label < 4
        assert out.shape == img.shape and out.dtype == img.dtype
        assert torch.equal(out, rotation_oracle(img, label))
        seen.add(label)
    assert seen == {0, 1, 2, 3}
    assert torch.equal(img, before)


def test_product_label_convention_and_uint8() -> None:
    torch.manual_seed(1)
    dihedral = PerSample(["rotation", "vflip"])
    assert dihedral.num_classes == 8
    img = torch.randint(0, 256, (3, 6, 6), dtype=torch.uint8)
    for _ in range(30):
        out, label = dihedral(img)
        k, flip = divmod(label, 2)
        expected = rotation_oracle(img, k)
        expected = expected.flip(-2) if flip else expected
        assert out.dtype == torch.uint8 and torch.equal(out, expected)


def test_last_in_v2_compose_with_tv_tensor_image() -> None:
    torch.manual_seed(2)
    pil = Image.fromarray(torch.randint(0, 256, (12, 12, 3), dtype=torch.uint8).numpy())
    to_tensor = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    pipeline = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), PerSample("rotation")])
    out, label = pipeline(pil)
    assert torch.equal(out, rotation_oracle(to_tensor(pil).as_subclass(torch.Tensor), label))


def _loader(seed: int, num_workers: int) -> torch.utils.data.DataLoader:
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), PerSample("rotation")])
    dataset = torchvision.datasets.FakeData(48, (3, 8, 8), num_classes=3, transform=transform, random_offset=7)
    return torch.utils.data.DataLoader(
        dataset, batch_size=8, num_workers=num_workers, generator=torch.Generator().manual_seed(seed)
    )


def _epoch(loader: torch.utils.data.DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for (x, y), _ in loader:
        images.append(x)
        labels.append(y)
    return torch.cat(images), torch.cat(labels)


def test_dataloader_with_workers_is_seeded_and_reproducible() -> None:
    x_a, y_a = _epoch(_loader(seed=0, num_workers=2))
    x_b, y_b = _epoch(_loader(seed=0, num_workers=2))
    assert x_a.shape == (48, 3, 8, 8) and y_a.shape == (48,) and y_a.dtype == torch.long
    assert torch.equal(y_a, y_b) and torch.equal(x_a, x_b)
    # The views really are the labelled rotations of the (deterministic) FakeData images.
    clean = torch.utils.data.DataLoader(
        torchvision.datasets.FakeData(
            48,
            (3, 8, 8),
            num_classes=3,
            transform=v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]),
            random_offset=7,
        ),
        batch_size=48,
    )
    originals = next(iter(clean))[0]
    for img, out, k in zip(originals, x_a, y_a.tolist(), strict=True):
        assert torch.equal(out, rotation_oracle(img, k))
    # Another seed draws other labels; the two workers draw different streams.
    _, y_c = _epoch(_loader(seed=1, num_workers=2))
    assert not torch.equal(y_a, y_c)
    assert not torch.equal(y_a[0:8], y_a[8:16])
    assert set(y_a.tolist()) == {0, 1, 2, 3}


#: One epoch of a seeded loader in a fresh process whose global RNG was seeded with something else (argv[2]: the
#: model's init, another library, `torch.seed()` ... in a real run); prints the labels and a checksum of the images.
_EPOCH_SCRIPT = """
import json, sys, torch, torchvision
from torchvision.transforms import v2
from essl_aug.adapters.per_sample import PerSample
num_workers, unrelated = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(unrelated)
transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), PerSample("rotation", seed=0)])
dataset = torchvision.datasets.FakeData(32, (3, 8, 8), num_classes=3, transform=transform, random_offset=7)
loader = torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=True, num_workers=num_workers,
                                     generator=torch.Generator().manual_seed(0))
epochs = [[(y.tolist(), float(x.sum())) for (x, y), _ in loader] for _ in range(2)]
print(json.dumps(epochs))
"""


@pytest.mark.parametrize("num_workers", [0, 2])
def test_labels_are_reproduced_across_processes_by_the_seeds(num_workers: int) -> None:
    """The data-loader guide's promise: a seeded loader (and ``seed=``) gives the same labels run to run, with or
    without workers, whatever the global RNG of the process (num_workers=0 once drew from it: two runs differed)."""
    root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    }
    runs = []
    for unrelated in (1, 2):
        cmd = [sys.executable, "-c", _EPOCH_SCRIPT, str(num_workers), str(unrelated)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        runs.append(json.loads(out.stdout.splitlines()[-1]))
    assert runs[0] == runs[1]
    first, second = runs[0]
    labels = [label for batch, _ in first for label in batch]
    assert len(labels) == 32 and set(labels) == {0, 1, 2, 3}
    assert [b for b, _ in first] != [b for b, _ in second]  # each epoch draws new labels


def test_seeded_labels_differ_per_seed_and_per_worker() -> None:
    img = torch.rand(3, 4, 4)
    draw = lambda t: [t(img)[1] for _ in range(16)]  # noqa: E731
    assert draw(PerSample("rotation", seed=0)) == draw(PerSample("rotation", seed=0))
    assert draw(PerSample("rotation", seed=0)) != draw(PerSample("rotation", seed=1))
    torch.manual_seed(0)
    unseeded = draw(PerSample("rotation"))
    torch.manual_seed(0)
    assert draw(PerSample("rotation")) == unseeded  # seed=None: torch's global RNG, as before
    _, y = _epoch(_seeded_loader(num_workers=2))
    assert not torch.equal(y[0:8], y[8:16])  # the two workers draw different streams
    for bad in (-1, 2**63, 1.5, True, "0"):
        with pytest.raises(ValueError, match="`seed` must be an integer"):
            PerSample("rotation", seed=bad)  # type: ignore[arg-type]
    assert "seed=3" in repr(PerSample("rotation", seed=3))


def _seeded_loader(num_workers: int) -> torch.utils.data.DataLoader:
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), PerSample("rotation", seed=0)])
    dataset = torchvision.datasets.FakeData(48, (3, 8, 8), num_classes=3, transform=transform, random_offset=7)
    return torch.utils.data.DataLoader(
        dataset, batch_size=8, num_workers=num_workers, generator=torch.Generator().manual_seed(0)
    )


def test_bad_input() -> None:
    rotate = PerSample("rotation")
    with pytest.raises(TypeError, match="ToImage"):
        rotate(Image.new("RGB", (8, 8)))
    with pytest.raises(ValueError, match="EquivariantTransform"):
        rotate(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="square"):
        rotate(torch.rand(3, 8, 6))
    with pytest.raises(ValueError, match="mode='random'"):
        PerSample(EquivariantTransform("rotation", mode="all"))
    with pytest.raises(ValueError, match="generator"):
        PerSample(EquivariantTransform("rotation", generator=torch.Generator()))
    with pytest.raises(ValueError, match="balanced"):
        PerSample(EquivariantTransform("rotation", balanced=True))
    with pytest.raises(TypeError, match="family"):
        PerSample(3)
    assert PerSample(RandomRotation90()).num_classes == 4
    assert "Rotation" in repr(rotate)


def test_readme_data_loader_recipe_runs() -> None:
    torch.manual_seed(0)
    ns = run_doc_block("data-loader")
    assert ns["loader"].num_workers > 0
    assert ns["x_rot"].shape == (16, 3, 16, 16) and ns["labels"].shape == (16,)
    hits = float(ns["out"].accuracy) * len(ns["labels"])
    assert hits == int(hits)  # the fraction of the batch's 16 labels predicted right, not a score
    head = ns["head"]
    assert isinstance(head, nn.Module)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
