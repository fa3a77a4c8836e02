"""The per-sample wrapper: one image -> (image', label), in torchvision pipelines and DataLoader workers."""

from __future__ import annotations

import doctest

import pytest
import torch
import torchvision
from essl_aug.adapters import per_sample
from essl_aug.adapters.per_sample import PerSample
from PIL import Image
from torch import nn
from torchvision.transforms import v2

from essl_aug import EquivariantTransform, Rotation
from tests.readme_blocks import run_readme_block


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
    assert PerSample(Rotation()).num_classes == 4
    assert "Rotation" in repr(rotate)


def test_readme_data_loader_recipe_runs() -> None:
    torch.manual_seed(0)
    ns = run_readme_block("data-loader")
    assert ns["loader"].num_workers > 0
    assert ns["x_rot"].shape == (16, 3, 16, 16) and ns["labels"].shape == (16,)
    assert 0.0 <= float(ns["out"].accuracy) <= 1.0
    head = ns["head"]
    assert isinstance(head, nn.Module)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_docstring_examples() -> None:
    for test in doctest.DocTestFinder().find(per_sample, extraglobs={"torch": torch}):
        result = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE).run(test)
        assert result.failed == 0, test.name
