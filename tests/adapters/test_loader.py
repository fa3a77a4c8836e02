"""The data-loader path: per-image views and parameters, batched by the collate function, reproducible with and
without workers; the un-augmented images batched by ``collate_images``."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import numpy as np
import pytest
import torch
from essl_aug.adapters.loader import (
    ViewsDataset,
    augment_image,
    collate_images,
    collate_views,
    sample_seed,
    squeeze_params,
    stack_params,
)
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from essl_aug.transforms import LabelParams, Params
from essl_aug.views import ViewPipeline, byol, simclr

SEED = 123


def data(n: int = 12, with_labels: bool = True) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 20, 18), generator=g, dtype=torch.uint8)
    return TensorDataset(images, torch.arange(n)) if with_labels else TensorDataset(images)


def fields(params: Params) -> dict[str, Tensor]:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


def assert_same_batch(a: tuple, b: tuple) -> None:
    assert len(a) == len(b)
    for va, vb in zip(a[0], b[0], strict=True):
        assert torch.equal(va, vb)
    for pa, pb in zip(a[1], b[1], strict=True):
        assert list(pa) == list(pb)
        for name in pa:
            assert type(pa[name]) is type(pb[name])
            for key, value in fields(pa[name]).items():
                assert torch.equal(value, fields(pb[name])[key]), (name, key)
    for ra, rb in zip(a[2:], b[2:], strict=True):
        assert torch.equal(ra, rb)


def epoch(dataset: ViewsDataset, num_workers: int = 0) -> list[tuple]:
    g = torch.Generator().manual_seed(1)  # the sampler's order
    return list(
        DataLoader(dataset, batch_size=5, shuffle=True, generator=g, collate_fn=collate_views, num_workers=num_workers)
    )


def test_an_item_is_the_views_of_one_image_with_its_own_params() -> None:
    views_t = byol(16)
    dataset = ViewsDataset(data(), views_t, seed=SEED)
    views, params, label = dataset[3]
    assert [tuple(v.shape) for v in views] == [(3, 16, 16)] * 2 and views[0].dtype == torch.float32
    assert label == 3
    for p in params:
        assert p["hflip"].applied.shape == () and p["resized_crop"].box.shape == (4,)
        assert p["color_jitter"].order.shape == (4,)
    # exactly the batched pipeline on the image alone, drawn with the image's own generator
    g = torch.Generator().manual_seed(sample_seed(SEED, 0, 3))
    ref_views, ref_params = views_t(data().tensors[0][3:4], g)
    assert_same_batch(([v.unsqueeze(0) for v in views], [stack_params([p]) for p in params]), (ref_views, ref_params))


def test_collate_stacks_views_and_params_as_the_batched_pipeline_returns_them() -> None:
    dataset = ViewsDataset(data(), simclr(16), seed=SEED)
    items = [dataset[i] for i in range(4)]
    views, params, labels = collate_views(items)
    assert [tuple(v.shape) for v in views] == [(4, 3, 16, 16)] * 2
    assert labels.tolist() == [0, 1, 2, 3]
    for v, p in enumerate(params):
        assert p["hflip"].applied.shape == (4,) and p["resized_crop"].box.shape == (4, 4)
        assert isinstance(p["hflip"], LabelParams) and p["hflip"].labels.shape == (4,)
        assert p["color_jitter"].factors.shape == (4, 4)
        for i in range(4):
            assert torch.equal(p["resized_crop"].box[i], items[i][1][v]["resized_crop"].box)
            assert torch.equal(views[v][i], items[i][0][v])


def _items(batch: tuple) -> list[tuple]:
    """The per-image (views, params, label) of a collated batch."""
    views, params, labels = batch
    out = []
    for i in range(len(labels)):
        item_params = [
            {k: dataclasses.replace(p, **{f: t[i] for f, t in fields(p).items()}) for k, p in q.items()} for q in params
        ]
        out.append(([v[i] for v in views], item_params, labels[i]))
    return out


def test_num_workers_and_batch_size_do_not_change_the_draws() -> None:
    """Reproducible per (seed, epoch, index): two worker processes give the batches of the main process."""
    dataset = ViewsDataset(data(), simclr(16), seed=SEED)
    main = epoch(dataset, num_workers=0)
    workers = epoch(dataset, num_workers=2)
    assert len(main) == len(workers) == 3
    for a, b in zip(main, workers, strict=True):
        assert_same_batch(a, b)
    # one image at a time, in index order: the same per-image draws
    by_index = {
        int(label): (item_views, item_params) for batch in main for item_views, item_params, label in _items(batch)
    }
    single = list(DataLoader(dataset, batch_size=1, collate_fn=collate_views))
    for i, batch in enumerate(single):
        ((item_views, item_params, _),) = _items(batch)
        assert all(torch.equal(a, b) for a, b in zip(item_views, by_index[i][0], strict=True))
        assert torch.equal(item_params[1]["resized_crop"].box, by_index[i][1][1]["resized_crop"].box)


def test_the_epoch_and_the_seed_change_the_draws_and_persistent_workers_follow_the_epoch() -> None:
    dataset = ViewsDataset(data(), simclr(16), seed=SEED)
    first = epoch(dataset)
    dataset.set_epoch(1)
    second = epoch(dataset)
    assert dataset.epoch == 1
    assert not torch.equal(first[0][1][0]["resized_crop"].box, second[0][1][0]["resized_crop"].box)
    other = epoch(ViewsDataset(data(), simclr(16), seed=SEED + 1))
    assert not torch.equal(first[0][1][0]["resized_crop"].box, other[0][1][0]["resized_crop"].box)
    # persistent workers read the epoch set in the main process
    persistent = ViewsDataset(data(), simclr(16), seed=SEED)
    loader = DataLoader(
        persistent, batch_size=5, shuffle=False, num_workers=2, persistent_workers=True, collate_fn=collate_views
    )
    expected = {}
    for e in (0, 1):
        dataset.set_epoch(e)
        expected[e] = list(DataLoader(dataset, batch_size=5, collate_fn=collate_views))
    assert not torch.equal(expected[0][0][0][0], expected[1][0][0][0])
    for e in (0, 1, 0):
        persistent.set_epoch(e)
        for a, b in zip(loader, expected[e], strict=True):
            assert_same_batch(a, b)


def test_the_dataset_pickles_with_its_epoch() -> None:
    """What a spawned worker receives: the same items after a pickle round trip."""
    dataset = ViewsDataset(data(), byol(16), seed=SEED)
    dataset.set_epoch(2)
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy.epoch == 2
    assert_same_batch(collate_views([copy[4]]), collate_views([dataset[4]]))


def test_sample_seed_mixes_every_argument() -> None:
    seeds = {sample_seed(s, e, i) for s in range(3) for e in range(3) for i in range(50)}
    assert len(seeds) == 450 and all(0 <= s < 2**63 for s in seeds)
    assert sample_seed(0, 1, 0) != sample_seed(0, 0, 1)


def test_a_plain_image_dataset_and_a_single_pipeline() -> None:
    dataset = ViewsDataset(data(with_labels=False), ViewPipeline([]), seed=0)
    item = dataset[0]
    assert len(item) == 2 and len(item[0]) == 2
    assert torch.equal(item[0][0], data().tensors[0][0] * (1 / 255))  # torchvision ToDtype(float32, scale=True)
    views, params = collate_views([dataset[0], dataset[1]])
    assert views[0].shape == (2, 3, 20, 18) and params == [{}, {}]


def test_squeeze_and_stack_are_inverse() -> None:
    params = {"hflip": LabelParams.of(torch.tensor([1]))}
    one = squeeze_params(params)
    assert one["hflip"].applied.shape == () and one["hflip"].labels.shape == ()
    stacked = stack_params([one, one])["hflip"]
    assert isinstance(stacked, LabelParams)
    assert torch.equal(stacked.applied, torch.tensor([True, True])) and torch.equal(
        stacked.labels, torch.tensor([1, 1])
    )


def test_the_errors_name_the_argument_and_the_fix() -> None:
    views = simclr(16)
    not_a_tensor: Any = [[0]]
    with pytest.raises(TypeError, match="PILToTensor"):
        augment_image(views, not_a_tensor)
    with pytest.raises(ValueError, match=r"one image shaped \(C, H, W\)"):
        augment_image(views, torch.zeros(1, 3, 8, 8))
    with pytest.raises(TypeError, match="`views` must be a TwoViews"):
        ViewsDataset(data(), not_a_tensor)
    with pytest.raises(TypeError, match="`dataset` must be a map-style dataset"):
        ViewsDataset(iter([]), views)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`epoch` must be a non-negative"):
        ViewsDataset(data(), views).set_epoch(-1)
    a = {"hflip": LabelParams.of(torch.tensor(1))}
    with pytest.raises(ValueError, match=r"`items\[1\]` has parameters \[\]"):
        stack_params([a, {}])
    with pytest.raises(ValueError, match=r"`items\[1\]`.*same pipeline"):
        stack_params([a, {"hflip": Params(applied=torch.tensor(True))}])  # another parameter class
    with pytest.raises(ValueError, match="`items` is empty"):
        stack_params([])
    with pytest.raises(ValueError, match="`batch` is empty"):
        collate_views([])


# -- collate_images: the un-augmented images, for views made on the device ---------------------------------------------


def _pil(seed: int, size: tuple[int, int] = (10, 6), mode: str = "RGB") -> Image.Image:
    """A random image of ``size`` (W, H) pixels."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)


def test_collate_images_keeps_pil_images_as_uint8_and_collates_the_rest() -> None:
    batch = [(_pil(i), i, f"img{i}.png") for i in range(3)]
    images, targets, names = collate_images(batch)
    assert type(images) is torch.Tensor and images.dtype == torch.uint8 and images.shape == (3, 3, 6, 10)
    for i, (image, _, _) in enumerate(batch):  # not scaled, not normalised: the pixels as PIL has them
        assert torch.equal(images[i], torch.from_numpy(np.array(image)).permute(2, 0, 1))
    assert targets.tolist() == [0, 1, 2] and names == ["img0.png", "img1.png", "img2.png"]


class _Tagged(torch.Tensor):
    """A tensor subclass that survives ``torch.stack`` (as a dataset's image type may)."""


def test_collate_images_takes_tensors_gray_and_rgba_images_and_bare_items() -> None:
    tensors = [torch.rand(3, 4, 5), torch.rand(3, 4, 5)]
    (stacked,) = collate_images(tensors)  # items without a rest
    assert stacked.dtype == torch.float32 and torch.equal(stacked, torch.stack(tensors))
    wrapped = collate_images([(_Tagged(t), 0) for t in tensors])[0]
    assert type(wrapped) is torch.Tensor and torch.equal(wrapped, stacked)  # a plain tensor, not a subclass
    gray = collate_images([(_pil(0, mode="L"), 0)])[0]
    assert gray.shape == (1, 1, 6, 10) and torch.equal(gray[0, 0], torch.from_numpy(np.array(_pil(0, mode="L"))))
    rgba = _pil(1, mode="RGBA")
    rgb = collate_images([(rgba, 0)])[0]
    assert rgb.shape == (1, 3, 6, 10) and torch.equal(
        rgb[0], torch.from_numpy(np.array(rgba.convert("RGB"))).permute(2, 0, 1)
    )


def test_collate_images_feeds_the_device_views() -> None:
    loader = DataLoader([(_pil(i, (24, 24)), i) for i in range(4)], batch_size=4, collate_fn=collate_images)
    images, labels = next(iter(loader))
    views, params = simclr(16)(images, torch.Generator().manual_seed(0))
    assert [tuple(v.shape) for v in views] == [(4, 3, 16, 16)] * 2 and labels.tolist() == [0, 1, 2, 3]
    assert params[0]["resized_crop"].input_size[0].tolist() == [24.0, 24.0]


def test_collate_images_errors() -> None:
    with pytest.raises(ValueError, match="share one size"):
        collate_images([(_pil(0, (8, 8)), 0), (_pil(1, (9, 8)), 1)])
    with pytest.raises(TypeError, match=r"image 0 of the batch must be a PIL image or a \(C, H, W\) tensor, got str"):
        collate_images([("not an image", 0)])
    with pytest.raises(ValueError, match=r"image 1 of the batch must be \(C, H, W\), got shape \(1, 3, 4, 4\)"):
        collate_images([torch.zeros(3, 4, 4), torch.zeros(1, 3, 4, 4)])
    with pytest.raises(ValueError, match="non-empty"):
        collate_images([])


def test_collate_images_refuses_a_batch_of_mixed_dtypes() -> None:
    """A uint8 image beside a float one would keep 200.0 in a float batch that the views read as [0, 1]."""
    with pytest.raises(ValueError, match=r"one dtype, got \['torch.float32', 'torch.uint8'\]"):
        collate_images([torch.full((3, 4, 4), 200, dtype=torch.uint8), torch.rand(3, 4, 4)])


@pytest.mark.parametrize(
    "image",
    [
        Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)),  # I;16: would collapse to {0, 255}
        Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)),  # F in [0, 1]: would become {0, 1}
        Image.fromarray(np.full((4, 4), 70000, dtype=np.int32)),  # I
    ],
)
def test_collate_images_refuses_pil_images_an_8_bit_conversion_would_clip(image: Any) -> None:
    with pytest.raises(ValueError, match=rf"PIL image of mode '{image.mode}'.*clip or truncate"):
        collate_images([(image, 0)])
