"""The recipes' values: SimCLR's and BYOL's two views, by name, and the reference E-SSL extra view."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest
import torch

from essl_aug.transforms import (
    ColorJitter,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
)
from essl_aug.views import IMAGENET_NORMALIZE, RECIPES, ViewPipeline, byol, dino, extra_view, recipe, simclr, swav

MEAN, STD = IMAGENET_NORMALIZE
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
    assert isinstance(flip, RandomHorizontalFlip) and flip.p == 0.5
    assert isinstance(jitter, ColorJitter) and jitter.p == 0.8
    assert ranges(jitter) == [(0.2, 1.8), (0.2, 1.8), (0.2, 1.8), (-0.2, 0.2)]
    assert isinstance(gray, RandomGrayscale) and gray.p == 0.2
    assert isinstance(blur, RandomGaussianBlur) and blur.p == 0.5 and blur.sigma == pytest.approx((0.1, 2.0))
    assert pipe.normalize == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    half = get(simclr(32, jitter_strength=0.5).pipelines[0], "color_jitter", ColorJitter)
    assert ranges(half) == [(0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1)]
    assert get(simclr(16, scale=(0.2, 1.0)).pipelines[0], "resized_crop", RandomResizedCrop).scale == (0.2, 1.0)
    assert simclr(16, normalize=None).pipelines[0].normalize is None
    assert simclr(16, blur=0.0).pipelines[0]["gaussian_blur"].p == 0.0
    assert simclr(16, compute_dtype=torch.float32).pipelines[0].compute_dtype == torch.float32


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
        assert get(pipe, "gaussian_blur", RandomGaussianBlur).sigma == pytest.approx((0.1, 2.0))
    cifar = byol(32, blur=(0.0, 0.0))
    assert [p["gaussian_blur"].p for p in cifar.pipelines] == [0.0, 0.0]


def test_recipes_by_name() -> None:
    assert {"simclr": simclr, "byol": byol, "dino": dino, "swav": swav} == RECIPES
    assert recipe("byol", 32).pipelines[1]["solarize"].p == 0.2
    named = recipe("simclr", 24, jitter_strength=0.5, normalize=None).pipelines[0]
    assert get(named, "resized_crop", RandomResizedCrop).size == (24, 24) and named.normalize is None
    assert ranges(get(named, "color_jitter", ColorJitter))[0] == (0.6, 1.4)
    with pytest.raises(ValueError, match=r"`name` must be one of \['byol', 'dino', 'simclr', 'swav'\], got 'moco'"):
        recipe("moco", 32)
    with pytest.raises(TypeError, match="jitter"):
        recipe("simclr", 32, jitter=0.5)


@pytest.mark.parametrize("name", ["simclr", "byol"])
def test_recipes_make_normalised_float_views_from_uint8(name: str) -> None:
    x = torch.randint(0, 256, (4, 3, 40, 36), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    views, params = recipe(name, 24)(x, torch.Generator().manual_seed(8))
    lo, hi = (0 - max(MEAN)) / min(STD), (1 - min(MEAN)) / min(STD)
    for view in views:
        assert view.shape == (4, 3, 24, 24) and view.dtype == torch.float32
        assert view.min() >= lo - 1e-5 and view.max() <= hi + 1e-5
        assert view.min() < 0 < view.max()  # normalised, not in [0, 1]
    assert len(params) == 2


# -- the reference E-SSL extra view ------------------------------------------------------------------------------------


@pytest.mark.parametrize("main_size", [32, 40, 64])
def test_extra_view_at_cifar_size_is_the_reference_cifar_view(main_size: int) -> None:
    """rdangovs/essl cifar10/main.py: the main views' pipeline with RandomResizedCrop(16) instead of (32): scale
    (0.2, 1), flip, jitter (0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale p 0.2; no blur. Half the main size."""
    pipe = extra_view(main_size)
    assert pipe.names == ("resized_crop", "hflip", "color_jitter", "grayscale")
    crop = get(pipe, "resized_crop", RandomResizedCrop)
    assert crop.size == (main_size // 2,) * 2 and crop.scale == (0.2, 1.0)
    assert crop.ratio == pytest.approx((3 / 4, 4 / 3))
    assert get(pipe, "hflip", RandomHorizontalFlip).p == 0.5
    jitter = get(pipe, "color_jitter", ColorJitter)
    assert jitter.p == 0.8 and ranges(jitter) == [(0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1)]
    assert get(pipe, "grayscale", RandomGrayscale).p == 0.2
    assert pipe.normalize == IMAGENET_NORMALIZE and pipe.compute_dtype is None


@pytest.mark.parametrize("main_size", [65, 224])
def test_extra_view_at_imagenet_size_is_the_reference_imagenet_view(main_size: int) -> None:
    """rdangovs/essl imagenet/simclr/main.py: RandomResizedCrop(96, scale=(0.05, 0.14)), flip, jitter (0.4, 0.4,
    0.2, 0.1) with p 0.8, grayscale p 0.2, blur p 0.1 (sigma in (0.1, 2.0)); the same at any main size above 64."""
    pipe = extra_view(main_size)
    assert pipe.names == ("resized_crop", "hflip", "color_jitter", "grayscale", "gaussian_blur")
    crop = get(pipe, "resized_crop", RandomResizedCrop)
    assert crop.size == (96, 96) and crop.scale == (0.05, 0.14)
    assert get(pipe, "hflip", RandomHorizontalFlip).p == 0.5
    jitter = get(pipe, "color_jitter", ColorJitter)
    assert jitter.p == 0.8 and ranges(jitter) == [(0.6, 1.4), (0.6, 1.4), (0.8, 1.2), (-0.1, 0.1)]
    assert get(pipe, "grayscale", RandomGrayscale).p == 0.2
    blur = get(pipe, "gaussian_blur", RandomGaussianBlur)
    assert blur.p == 0.1 and blur.sigma == pytest.approx((0.1, 2.0))


def test_extra_view_makes_the_views_of_a_uint8_batch() -> None:
    x = torch.randint(0, 256, (4, 3, 32, 32), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    before = x.clone()
    view, params = extra_view(32)(x, torch.Generator().manual_seed(2))
    assert view.shape == (4, 3, 16, 16) and view.dtype == torch.float32 and view.min() < 0
    assert list(params) == ["resized_crop", "hflip", "color_jitter", "grayscale"]
    scale = params["resized_crop"].scale
    assert bool(((scale >= 0.2 - 0.05) & (scale <= 1.0)).all())  # (rounding of the box to whole pixels)
    assert torch.equal(x, before)
    big = torch.randint(0, 256, (2, 3, 128, 112), dtype=torch.uint8)
    assert extra_view(224)(big)[0].shape == (2, 3, 96, 96)


def test_extra_view_without_photometric_ops_keeps_the_crop_and_the_flip() -> None:
    """For an input that is already an augmented view: the colour ops would apply twice."""
    for main_size in (32, 224):
        pipe = extra_view(main_size, photometric=False, normalize=None)
        assert pipe.names == ("resized_crop", "hflip") and pipe.normalize is None
        assert get(pipe, "resized_crop", RandomResizedCrop).size == ((16, 16) if main_size == 32 else (96, 96))
    x = torch.rand(3, 3, 32, 32)
    view, params = extra_view(32, photometric=False, normalize=None)(x, torch.Generator().manual_seed(3))
    crop = RandomResizedCrop(16, scale=(0.2, 1.0))
    flip = RandomHorizontalFlip()
    expected = flip.apply(crop.apply(x, params["resized_crop"]), params["hflip"])
    assert torch.equal(view, expected)  # no colour change, no normalisation


def test_extra_view_size_scale_and_normalize_overrides() -> None:
    pipe = extra_view(32, size=12, scale=(0.3, 0.9), normalize=((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)))
    crop = get(pipe, "resized_crop", RandomResizedCrop)
    assert crop.size == (12, 12) and crop.scale == (0.3, 0.9)
    assert pipe.normalize == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert "gaussian_blur" not in pipe.names  # the CIFAR recipe, whatever the size asked
    imagenet = get(extra_view(224, size=64), "resized_crop", RandomResizedCrop)
    assert imagenet.size == (64, 64) and imagenet.scale == (0.05, 0.14)
    assert get(extra_view(224, scale=(0.08, 1.0)), "resized_crop", RandomResizedCrop).scale == (0.08, 1.0)
    assert extra_view(32, compute_dtype=torch.float32).compute_dtype == torch.float32
    assert extra_view(32, flip=False).names == ("resized_crop", "color_jitter", "grayscale")
    assert extra_view(224, flip=False, photometric=False).names == ("resized_crop",)


@pytest.mark.parametrize("main_size", [1, 0, True, 32.0, "32", None])
def test_extra_view_refuses_a_main_size_that_is_not_a_pixel_count(main_size: Any) -> None:
    with pytest.raises(ValueError, match=r"`main_size` must be the SSL views' crop size in pixels \(an int >= 2\)"):
        extra_view(main_size)


def test_extra_view_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="`size` must be positive"):
        extra_view(32, size=0)
    with pytest.raises(ValueError, match="`scale` must be a finite number or a \\(min, max\\) pair"):
        extra_view(32, scale=(0.5, 0.2))
    with pytest.raises(TypeError, match="`normalize` must be a pair"):
        extra_view(32, normalize=(1, 2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`compute_dtype`"):
        extra_view(32, compute_dtype=torch.int64)


@pytest.mark.parametrize("name", ["blur", "solarize"])
@pytest.mark.parametrize("value", [0.5, (0.5,), (0.5, 0.5, 0.5), "0.5"])
def test_byol_per_view_probabilities_must_be_a_pair(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=f"`{name}` is one probability per view, a pair"):
        byol(16, **{name: value})  # type: ignore[arg-type]
    views = byol(16, **{name: (0.3, 0.7)})
    assert [p[name if name == "solarize" else "gaussian_blur"].p for p in views.pipelines] == [0.3, 0.7]
