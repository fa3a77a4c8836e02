"""The view pipeline and the two-view recipes: order, replay, conversion and normalisation, errors, recipe values."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import pytest
import torch
from torch import Tensor

from essl_aug.augment.base import Params
from essl_aug.augment.blur import GaussianBlur
from essl_aug.augment.color import ColorJitter
from essl_aug.augment.crop import CropParams, RandomResizedCrop
from essl_aug.augment.flip import HorizontalFlip
from essl_aug.augment.grayscale import RandomGrayscale
from essl_aug.augment.pipeline import TwoViews, ViewPipeline, Views, output_shape
from essl_aug.augment.recipes import IMAGENET_NORMALIZE, byol, recipe, simclr
from essl_aug.augment.rotation import RandomRotation
from essl_aug.augment.solarize import Solarize

TF = pytest.importorskip("torchvision.transforms.v2.functional")

MEAN, STD = IMAGENET_NORMALIZE


def images(dtype: torch.dtype = torch.uint8, shape: tuple[int, ...] = (6, 3, 20, 24), seed: int = 0) -> Tensor:
    x = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    return x if dtype == torch.uint8 else (x.to(dtype) / 255).to(dtype)


def every_aug(size: int = 16) -> list:
    return [
        RandomResizedCrop(size),
        HorizontalFlip(p=0.5),
        ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        RandomGrayscale(p=0.3),
        GaussianBlur(p=0.5),
        Solarize(p=0.5),
        RandomRotation(30.0, p=0.5),
    ]


def tensors(params: Params) -> dict[str, Tensor]:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


def assert_same_params(a: dict[str, Params], b: dict[str, Params]) -> None:
    assert list(a) == list(b)
    for name in a:
        assert type(a[name]) is type(b[name])
        for key, value in tensors(a[name]).items():
            assert torch.equal(value, tensors(b[name])[key]), (name, key)


def crop(params: dict[str, Params]) -> CropParams:
    p = params["resized_crop"]
    assert isinstance(p, CropParams)
    return p


def by_hand(augs: list, x: Tensor, params: dict[str, Params]) -> Tensor:
    """Each augmentation's ``apply`` in turn (no conversion)."""
    for aug in augs:
        x = aug.apply(x, params[aug.name])
    return x


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_view_and_params_have_the_documented_shapes(dtype: torch.dtype) -> None:
    pipe = ViewPipeline(every_aug(16), normalize=IMAGENET_NORMALIZE)
    x = images(dtype)
    view, params = pipe(x, torch.Generator().manual_seed(1))
    assert view.shape == (6, 3, 16, 16) and view.dtype == torch.float32
    assert list(params) == [a.name for a in pipe.augmentations] == list(pipe.names)
    for p in params.values():
        assert p.applied.shape == (6,) and p.applied.dtype == torch.bool
        assert all(t.shape[0] == 6 and t.device == x.device for t in tensors(p).values())
    assert crop(params).input_size[0].tolist() == [20.0, 24.0]
    assert pipe["hflip"] is pipe.augmentations[1]


def test_call_draws_as_sample_and_apply_replays() -> None:
    pipe = ViewPipeline(every_aug(), normalize=IMAGENET_NORMALIZE)
    x = images()
    view, params = pipe(x, torch.Generator().manual_seed(3))
    drawn = pipe.sample(x.shape, x.device, torch.Generator().manual_seed(3))
    assert_same_params(params, drawn)
    assert torch.equal(pipe.apply(x, params), view)
    again, other = pipe(x, torch.Generator().manual_seed(4))
    assert not torch.equal(again, view)
    assert not torch.equal(crop(other).box, crop(params).box)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float16, torch.float64])
def test_normalisation_is_torchvision_to_dtype_then_normalize(dtype: torch.dtype) -> None:
    """One fused pass ``x * (1 / (peak * std)) - mean / std`` against torchvision's two steps: float32 rounding of
    a different formula, within 2e-6 on values of magnitude up to 2.7 (a few float32 ulps)."""
    augs = every_aug()
    plain, normalised = ViewPipeline(augs), ViewPipeline(augs, normalize=IMAGENET_NORMALIZE)
    x = images(dtype)
    params = plain.sample(x.shape, x.device, torch.Generator().manual_seed(5))
    augmented = by_hand(augs, x, params)
    assert augmented.dtype == dtype  # the augmentations run on the input's dtype by default
    reference = TF.normalize(TF.to_dtype(augmented, torch.float32, scale=True), list(MEAN), list(STD))
    torch.testing.assert_close(normalised.apply(x, params), reference, rtol=0, atol=2e-6)
    unnormalised = plain.apply(x, params)
    assert unnormalised.dtype == torch.float32
    if dtype in (torch.uint8, torch.float32):  # torchvision's ToDtype(scale=True), bit for bit
        assert torch.equal(unnormalised, TF.to_dtype(augmented, torch.float32, scale=True))


def test_compute_dtype_converts_first_and_skips_the_intermediate_rounding() -> None:
    augs = every_aug()
    pipe = ViewPipeline(augs, normalize=IMAGENET_NORMALIZE, compute_dtype=torch.float32)
    x = images()
    view, params = pipe(x, torch.Generator().manual_seed(6))
    augmented = by_hand(augs, TF.to_dtype(x, torch.float32, scale=True), params)
    reference = TF.normalize(augmented, list(MEAN), list(STD))
    torch.testing.assert_close(view, reference, rtol=0, atol=2e-6)
    rounded = ViewPipeline(augs, normalize=IMAGENET_NORMALIZE).apply(x, params)
    assert (rounded - view).abs().max() > 1e-3  # the uint8 path rounds after every op


def test_the_input_is_never_modified_nor_returned() -> None:
    x = images(torch.float32)
    before = x.clone()
    for pipe in (
        ViewPipeline(every_aug(), normalize=IMAGENET_NORMALIZE),
        ViewPipeline([]),
        ViewPipeline([HorizontalFlip(p=0.0)]),
    ):
        view, _ = pipe(x)
        assert view is not x and view.data_ptr() != x.data_ptr()
        assert torch.equal(x, before)
    empty = ViewPipeline([])(x)[0]
    assert torch.equal(empty, x)


def test_output_dtype() -> None:
    pipe = ViewPipeline([HorizontalFlip()], normalize=IMAGENET_NORMALIZE, dtype=torch.bfloat16)
    assert pipe(images())[0].dtype == torch.bfloat16
    assert ViewPipeline([HorizontalFlip()], dtype=torch.float64)(images())[0].dtype == torch.float64


def test_output_shape_follows_the_crop() -> None:
    assert output_shape(RandomResizedCrop((8, 12)), (5, 3, 40, 40)) == (5, 3, 8, 12)
    assert output_shape(HorizontalFlip(), (5, 3, 40, 30)) == (5, 3, 40, 30)


def test_two_views_draw_each_view_independently_and_replay() -> None:
    pipe = ViewPipeline(every_aug(), normalize=IMAGENET_NORMALIZE)
    two = TwoViews(pipe)
    assert two.pipelines == (pipe, pipe)
    x = images()
    out = two(x, torch.Generator().manual_seed(7))
    assert isinstance(out, Views)
    views, params = out
    assert len(views) == len(params) == 2
    assert not torch.equal(crop(params[0]).box, crop(params[1]).box)
    assert not torch.equal(views[0], views[1])
    drawn = two.sample(x.shape, x.device, torch.Generator().manual_seed(7))
    for a, b in zip(params, drawn, strict=True):
        assert_same_params(a, b)
    replay = two.apply(x, params)
    assert all(torch.equal(a, b) for a, b in zip(replay, views, strict=True))
    # view 1 draws first, then view 2, from the same generator
    g = torch.Generator().manual_seed(7)
    first, _ = pipe(x, g)
    second, _ = pipe(x, g)
    assert torch.equal(first, views[0]) and torch.equal(second, views[1])


def test_the_errors_name_the_argument_and_the_fix() -> None:
    not_an_augmentation: Any = lambda x: x  # noqa: E731
    flat: Any = (0.5, 0.5)
    with pytest.raises(ValueError, match=r"distinct names.*\['hflip'\]"):
        ViewPipeline([HorizontalFlip(), HorizontalFlip()])
    with pytest.raises(TypeError, match=r"`augmentations\[1\]` must be an essl_aug.augment Augmentation"):
        ViewPipeline([HorizontalFlip(), not_an_augmentation])
    with pytest.raises(TypeError, match="`normalize` must be a pair"):
        ViewPipeline([], normalize=flat)
    with pytest.raises(ValueError, match="one mean and one std per channel"):
        ViewPipeline([], normalize=((0.5, 0.5), (0.2,)))
    with pytest.raises(ValueError, match="std must be positive"):
        ViewPipeline([], normalize=((0.5,), (0.0,)))
    with pytest.raises(TypeError, match="`dtype` must be a float dtype"):
        ViewPipeline([], dtype=torch.uint8)
    with pytest.raises(TypeError, match="`compute_dtype`"):
        ViewPipeline([], compute_dtype=torch.int32)
    pipe = ViewPipeline([HorizontalFlip()], normalize=IMAGENET_NORMALIZE)
    with pytest.raises(ValueError, match="`x` has 1 channels but `normalize` has 3"):
        pipe(images(shape=(2, 1, 8, 8)))
    with pytest.raises(TypeError, match="`x` has dtype int32"):
        pipe(images().to(torch.int32))
    with pytest.raises(ValueError, match="4 dimensions"):
        pipe(images()[0])
    with pytest.raises(KeyError, match=r"no entry for \['hflip'\]"):
        pipe.apply(images(), {})
    with pytest.raises(KeyError, match="no augmentation named 'blur'"):
        pipe["blur"]
    with pytest.raises(TypeError, match="`view2` must be a ViewPipeline"):
        TwoViews(pipe, not_an_augmentation)
    with pytest.raises(ValueError, match="one dict per view"):
        TwoViews(pipe).apply(images(), [{}])
    with pytest.raises(ValueError, match="`name` must be one of"):
        recipe("moco", 32)


A = TypeVar("A")


def get(pipe: ViewPipeline, name: str, kind: type[A]) -> A:
    aug = pipe[name]
    assert isinstance(aug, kind)
    return aug


def ranges(aug: ColorJitter) -> list[Any]:
    return [pytest.approx(r) for r in aug.ranges]


def test_simclr_has_lightlys_values() -> None:
    two = simclr(32)
    assert two.pipelines[0] is two.pipelines[1]
    pipe = two.pipelines[0]
    crop, flip, jitter, gray, blur = pipe.augmentations
    assert isinstance(crop, RandomResizedCrop) and crop.size == (32, 32)
    assert crop.scale == (0.08, 1.0) and crop.ratio == pytest.approx((3 / 4, 4 / 3)) and crop.antialias
    assert isinstance(flip, HorizontalFlip) and flip.p == 0.5
    assert isinstance(jitter, ColorJitter) and jitter.p == 0.8
    assert ranges(jitter) == [(0.2, 1.8), (0.2, 1.8), (0.2, 1.8), (-0.2, 0.2)]
    assert isinstance(gray, RandomGrayscale) and gray.p == 0.2
    assert isinstance(blur, GaussianBlur) and blur.p == 0.5
    assert pipe.normalize == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    half = get(simclr(32, jitter_strength=0.5).pipelines[0], "color_jitter", ColorJitter)
    assert ranges(half) == [(0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1)]
    assert get(simclr(16, scale=(0.2, 1.0)).pipelines[0], "resized_crop", RandomResizedCrop).scale == (0.2, 1.0)
    assert simclr(16, normalize=None).pipelines[0].normalize is None


def test_byol_has_solo_learns_asymmetric_values() -> None:
    two = byol(32)
    assert [p.names for p in two.pipelines] == [
        ("resized_crop", "hflip", "color_jitter", "grayscale", "gaussian_blur", "solarize")
    ] * 2
    for pipe, blur_p, solar_p in zip(two.pipelines, (1.0, 0.1), (0.0, 0.2), strict=True):
        assert get(pipe, "resized_crop", RandomResizedCrop).scale == (0.08, 1.0)
        assert pipe["hflip"].p == 0.5 and pipe["grayscale"].p == 0.2
        assert pipe["color_jitter"].p == 0.8
        assert ranges(get(pipe, "color_jitter", ColorJitter)) == [(0.6, 1.4), (0.6, 1.4), (0.8, 1.2), (-0.1, 0.1)]
        assert pipe["gaussian_blur"].p == blur_p and pipe["solarize"].p == solar_p
        assert get(pipe, "gaussian_blur", GaussianBlur).sigma == pytest.approx((0.1, 2.0))
    cifar = byol(32, blur=(0.0, 0.0))
    assert [p["gaussian_blur"].p for p in cifar.pipelines] == [0.0, 0.0]
    assert recipe("byol", 32).pipelines[1]["solarize"].p == 0.2


@pytest.mark.parametrize("name", ["simclr", "byol"])
def test_recipes_make_normalised_float_views_from_uint8(name: str) -> None:
    x = images(shape=(4, 3, 40, 36))
    views, params = recipe(name, 24)(x, torch.Generator().manual_seed(8))
    for view in views:
        assert view.shape == (4, 3, 24, 24) and view.dtype == torch.float32
        lo, hi = (0 - max(MEAN)) / min(STD), (1 - min(MEAN)) / min(STD)
        assert view.min() >= lo - 1e-5 and view.max() <= hi + 1e-5
    assert len(params) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_views_and_params_stay_on_the_device() -> None:
    """Drawn and applied on the GPU; replayed on the CPU with the same parameters (float32 compute, so the two
    differ by float rounding only: mean absolute difference below 1e-3)."""
    two = simclr(16, compute_dtype=torch.float32)
    x = images().cuda()
    views, params = two(x, torch.Generator(device="cuda").manual_seed(0))
    assert all(v.is_cuda for v in views)
    assert all(t.is_cuda for p in params for q in p.values() for t in tensors(q).values())
    cpu_views = two.apply(x.cpu(), [{k: q.to("cpu") for k, q in p.items()} for p in params])
    for a, b in zip(views, cpu_views, strict=True):
        assert (a.cpu() - b).abs().mean() < 1e-3
