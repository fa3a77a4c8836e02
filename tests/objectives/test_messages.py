"""Mistakes a new user makes with the objectives, the views and the recipes: each error names the argument at fault
and the fix (none is a raw AttributeError, KeyError, IndexError or unpacking error)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from essl_aug.adapters.lightly import GPUViews
from essl_aug.adapters.loader import ViewsDataset, collate_views, stack_params

from essl_aug.objectives import AugSelf, Objectives, RelativePredictor, StepInputs
from essl_aug.transforms import RandomHorizontalFlip, RandomResizedCrop, RandomRotation, RandomSolarize
from essl_aug.views import IMAGENET_NORMALIZE, ViewPipeline, simclr

P1, P2 = simclr(16).sample((4, 3, 24, 24), generator=torch.Generator().manual_seed(0))
FEATURES = (torch.rand(4, 8), torch.rand(4, 8))
ONE_IMAGE = ViewsDataset([torch.rand(3, 24, 24)] * 2, simclr(16))[0]  # (views, params): one image's, not a batch's

CASES: list[tuple[Callable[[], object], type[Exception], str]] = [
    (
        lambda: AugSelf(8)(StepInputs(features=FEATURES, params=P1)),  # type: ignore[arg-type]
        ValueError,
        r"needs the params of the two SSL views, a pair \(p1, p2\).*got dict",
    ),
    (
        lambda: RelativePredictor(8, dim=8)(StepInputs(features=FEATURES, params=(P1,))),  # type: ignore[arg-type]
        ValueError,
        r"a pair \(p1, p2\).*got tuple of 1",
    ),
    (lambda: simclr(16, blur=1.5), ValueError, r"`blur` is a probability"),
    (lambda: simclr(16, jitter_strength=3), ValueError, r"`jitter_strength` must be a number in \[0, 2.5\]"),
    (
        lambda: RandomRotation(30, fill=(0.1, 0.2, 0.3)),
        ValueError,
        r"`fill` is a fraction.*one number in \[0, 1\] for every channel",
    ),
    (lambda: Objectives([AugSelf(8)]), TypeError, r"`objectives` must map a name to each objective.*got list"),  # type: ignore[arg-type]
    (lambda: Objectives({"": AugSelf(8)}), ValueError, r"objective name '' must be a non-empty string"),
    (lambda: AugSelf(8, group_weights=[1.0]), TypeError, r"`group_weights` must map a group to its weight"),  # type: ignore[arg-type]
    (
        lambda: AugSelf(8, augmentations=GPUViews("simclr", size=16)),  # type: ignore[arg-type]
        TypeError,
        r"`augmentations` must be .*got GPUViews .*pass its recipe",
    ),
    (lambda: RandomResizedCrop(8).sample((4.5, 3, 16, 16)), ValueError, r"`shape` must be a batch shape"),
    (
        lambda: RandomResizedCrop(8).target(ONE_IMAGE[1][0]["resized_crop"]),
        ValueError,
        r"`params` must hold a batch's parameters.*shaped \(\); .*batched by `collate_views`",
    ),
    (
        lambda: RandomResizedCrop(8).relative(ONE_IMAGE[1][0]["resized_crop"], ONE_IMAGE[1][1]["resized_crop"]),
        ValueError,
        r"`a` must hold a batch's parameters",
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), CASES, ids=[m[:40] for _, _, m in CASES])
def test_the_error_names_the_argument_and_the_fix(
    call: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call()


def test_lightlys_normalize_dict_is_taken_as_mean_and_std() -> None:
    lightly_form = {"mean": list(IMAGENET_NORMALIZE[0]), "std": list(IMAGENET_NORMALIZE[1])}
    x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    as_dict = ViewPipeline([RandomHorizontalFlip(p=0.5)], normalize=lightly_form)  # type: ignore[arg-type]
    as_pair = ViewPipeline([RandomHorizontalFlip(p=0.5)], normalize=IMAGENET_NORMALIZE)
    g = torch.Generator().manual_seed(1)
    assert torch.equal(as_dict(x, g)[0], as_pair(x, torch.Generator().manual_seed(1))[0])
    assert GPUViews("simclr", size=16, normalize=lightly_form).recipe.pipelines[0].normalize == as_pair.normalize


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_features_of_another_dtype_outside_autocast(dtype: torch.dtype) -> None:
    """fp16 / fp64 features from a backbone run without autocast reach float32 heads: cast, not a dtype error."""
    f = tuple(t.to(dtype) for t in FEATURES)
    for objective in (AugSelf(8), RelativePredictor(8, dim=8)):
        assert torch.isfinite(objective(StepInputs(features=f, params=(P1, P2))).loss)


def test_the_loaders_parameters_once_collated_give_the_targets() -> None:
    """The fix the message above names: the parameters of ViewsDataset's items, batched by collate_views, give each
    image's target in its row."""
    dataset = ViewsDataset([torch.rand(3, 24, 24) for _ in range(3)], simclr(16))
    items = [dataset[i] for i in range(3)]
    _, params = collate_views(items)
    crop = RandomResizedCrop(16)
    rows = [crop.target(stack_params([item[1][0]])["resized_crop"]) for item in items]
    assert torch.equal(crop.target(params[0]["resized_crop"]), torch.cat(rows))


def test_numpy_scalars_are_numbers() -> None:
    assert RandomHorizontalFlip(p=np.float32(0.5)).p == 0.5
    rotation = RandomRotation(np.float32(30.0), fill=np.float32(0.25))
    assert rotation.degrees == (-30.0, 30.0) and rotation.fill == 0.25
    assert RandomSolarize(np.float32(0.5)).threshold == 0.5
