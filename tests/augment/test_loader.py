"""The data-loader path: per-image views and parameters, batched by the collate function, reproducible with and
without workers."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from essl_aug.augment.base import Params
from essl_aug.augment.flip import FlipParams
from essl_aug.augment.loader import (
    ViewsDataset,
    augment_image,
    collate_views,
    sample_seed,
    squeeze_params,
    stack_params,
)
from essl_aug.augment.pipeline import ViewPipeline
from essl_aug.augment.recipes import byol, simclr

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
        assert p["color_jitter"].factors.shape == (4, 4)
        for i in range(4):
            assert torch.equal(p["resized_crop"].box[i], items[i][1][v]["resized_crop"].box)
            assert torch.equal(views[v][i], items[i][0][v])


def test_num_workers_and_batch_size_do_not_change_the_draws() -> None:
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
    params = {"hflip": FlipParams(applied=torch.tensor([True]))}
    one = squeeze_params(params)
    assert one["hflip"].applied.shape == ()
    assert torch.equal(stack_params([one, one])["hflip"].applied, torch.tensor([True, True]))


def test_the_errors_name_the_argument_and_the_fix() -> None:
    views = simclr(16)
    not_a_tensor: Any = [[0]]
    with pytest.raises(TypeError, match="PILToTensor"):
        augment_image(views, not_a_tensor)
    with pytest.raises(ValueError, match=r"one image shaped \(C, H, W\)"):
        augment_image(views, torch.zeros(1, 3, 8, 8))
    with pytest.raises(TypeError, match="`views` must be a TwoViews"):
        ViewsDataset(data(), not_a_tensor)
    with pytest.raises(ValueError, match="`epoch` must be a non-negative"):
        ViewsDataset(data(), views).set_epoch(-1)
    a = {"hflip": FlipParams(applied=torch.tensor(True))}
    with pytest.raises(ValueError, match=r"`items\[1\]` has parameters \[\]"):
        stack_params([a, {}])
    with pytest.raises(ValueError, match="`items` is empty"):
        stack_params([])
