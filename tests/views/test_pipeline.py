"""The view pipeline and two views: order, replay, the shape asked of each transformation, conversion and
normalisation, errors."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from essl_aug.transforms import (
    ColorJitter,
    CropParams,
    Params,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomSolarize,
    TargetSpec,
    Transformation,
)
from essl_aug.views import IMAGENET_NORMALIZE, TwoViews, ViewPipeline, Views, recipe, simclr

MEAN, STD = IMAGENET_NORMALIZE


def images(dtype: torch.dtype = torch.uint8, shape: tuple[int, ...] = (6, 3, 20, 24), seed: int = 0) -> Tensor:
    x = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    return x if dtype == torch.uint8 else (x.to(dtype) / 255).to(dtype)


def every_aug(size: int = 16) -> list[Transformation[Any]]:
    return [
        RandomResizedCrop(size),
        RandomHorizontalFlip(p=0.5),
        ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        RandomGrayscale(p=0.3),
        RandomGaussianBlur(p=0.5),
        RandomSolarize(p=0.5),
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


def by_hand(augs: list[Transformation[Any]], x: Tensor, params: dict[str, Params]) -> Tensor:
    """Each transformation's ``apply`` in turn (no conversion)."""
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
    assert pipe.names == ("resized_crop", "hflip", "color_jitter", "grayscale", "gaussian_blur", "solarize", "rotation")
    for p in params.values():
        assert p.applied.shape == (6,) and p.applied.dtype == torch.bool
        assert all(t.shape[0] == 6 and t.device == x.device for t in tensors(p).values())
    assert crop(params).input_size[0].tolist() == [20.0, 24.0]
    assert pipe["hflip"] is pipe.augmentations[1] and len(pipe) == 7 and list(pipe) == list(pipe.augmentations)


def test_the_augmentations_run_in_the_given_order() -> None:
    """A crop then a flip is not a flip then a crop: the view is each ``apply`` in the list's order."""
    flip, crop_aug = RandomHorizontalFlip(p=1.0), RandomResizedCrop((6, 8), scale=(0.2, 0.5))
    x = images(torch.float32)
    first = ViewPipeline([crop_aug, flip])
    params = first.sample(x.shape, x.device, torch.Generator().manual_seed(2))
    assert list(params) == ["resized_crop", "hflip"]
    assert torch.equal(first.apply(x, params), flip.apply(crop_aug.apply(x, params["resized_crop"]), params["hflip"]))
    swapped = ViewPipeline([flip, crop_aug])
    assert list(swapped.sample(x.shape)) == ["hflip", "resized_crop"]
    other = swapped.apply(x, {"hflip": params["hflip"], "resized_crop": params["resized_crop"]})
    assert torch.equal(other, crop_aug.apply(flip.apply(x, params["hflip"]), params["resized_crop"]))
    assert not torch.equal(other, first.apply(x, params))  # the boxes are off-centre: the order shows


class _Halve(Transformation[Params]):
    """Keeps every second row and column: an op that changes the size without being a crop."""

    name = "halve"

    @property
    def target_spec(self) -> TargetSpec:
        return TargetSpec("classification", 1)

    def output_shape(self, shape: Any) -> tuple[int, int, int, int]:
        b, c, h, w = (int(s) for s in shape)
        return b, c, (h + 1) // 2, (w + 1) // 2

    def _sample(self, shape: tuple[int, int, int, int], device: torch.device, generator: Any) -> Params:
        return Params(applied=torch.ones(shape[0], dtype=torch.bool, device=device))

    def _apply(self, x: Tensor, params: Params) -> Tensor:
        return x[..., ::2, ::2].clone()

    def _target(self, params: Params) -> Tensor:
        return torch.zeros(params.batch, dtype=torch.long)


def test_each_transformation_is_asked_its_output_shape() -> None:
    """The parameters of each transformation are drawn for the shape its input has, as the object reports it (a
    transformation of the user's that resizes, not only the library's crop)."""
    pipe = ViewPipeline([_Halve(), RandomResizedCrop((6, 4), scale=(0.5, 1.0)), RandomGaussianBlur(p=1.0)])
    x = images(torch.float32, shape=(3, 3, 20, 24))
    view, params = pipe(x, torch.Generator().manual_seed(3))
    assert crop(params).input_size.tolist() == [[10.0, 12.0]] * 3  # drawn for the halved image
    assert view.shape == (3, 3, 6, 4)
    crop_first = ViewPipeline([RandomResizedCrop((8, 12)), _Halve()])
    assert crop_first(x)[0].shape == (3, 3, 4, 6)


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
        ViewPipeline([RandomHorizontalFlip(p=0.0)]),
    ):
        view, _ = pipe(x)
        assert view is not x and view.data_ptr() != x.data_ptr()
        assert torch.equal(x, before)
    empty = ViewPipeline([])(x)[0]
    assert torch.equal(empty, x)


def test_output_dtype() -> None:
    pipe = ViewPipeline([RandomHorizontalFlip()], normalize=IMAGENET_NORMALIZE, dtype=torch.bfloat16)
    assert pipe(images())[0].dtype == torch.bfloat16
    assert ViewPipeline([RandomHorizontalFlip()], dtype=torch.float64)(images())[0].dtype == torch.float64


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


def test_two_views_run_each_its_own_pipeline() -> None:
    small, large = ViewPipeline([RandomResizedCrop(8)]), ViewPipeline([RandomResizedCrop(12), RandomSolarize(p=1.0)])
    views, params = TwoViews(small, large)(images(), torch.Generator().manual_seed(8))
    assert [tuple(v.shape) for v in views] == [(6, 3, 8, 8), (6, 3, 12, 12)]
    assert [list(p) for p in params] == [["resized_crop"], ["resized_crop", "solarize"]]


def test_the_errors_name_the_argument_and_the_fix() -> None:
    not_an_augmentation: Any = lambda x: x  # noqa: E731
    flat: Any = (0.5, 0.5)
    with pytest.raises(ValueError, match=r"distinct names.*\['hflip'\]"):
        ViewPipeline([RandomHorizontalFlip(), RandomHorizontalFlip()])
    with pytest.raises(TypeError, match=r"`augmentations\[1\]` must be an essl_aug Transformation"):
        ViewPipeline([RandomHorizontalFlip(), not_an_augmentation])
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
    pipe = ViewPipeline([RandomHorizontalFlip()], normalize=IMAGENET_NORMALIZE)
    with pytest.raises(ValueError, match="`x` has 1 channels but `normalize` has 3"):
        pipe(images(shape=(2, 1, 8, 8)))
    with pytest.raises(TypeError, match="`x` has dtype int32"):
        pipe(images().to(torch.int32))
    with pytest.raises(
        ValueError, match=r"`x` must be shaped \(B, C, H, W\), got shape \(3, 20, 24\).*`x.unsqueeze\(0\)`"
    ):
        pipe(images()[0])  # the message does not offer (C, H, W), which a pipeline refuses
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


@pytest.mark.parametrize(
    ("normalize", "message"),
    [
        (((math.nan, 0.5, 0.5), (0.2, 0.2, 0.2)), "mean must be finite"),
        (((0.5, math.inf, 0.5), (0.2, 0.2, 0.2)), "mean must be finite"),
        (((0.5, 0.5, 0.5), (0.2, math.inf, 0.2)), "std must be positive and finite"),
        (((0.5, 0.5, 0.5), (0.2, math.nan, 0.2)), "std must be positive and finite"),
    ],
)
def test_normalize_must_be_finite(normalize: Any, message: str) -> None:
    """A NaN mean or an infinite std would make NaN or constant views."""
    with pytest.raises(ValueError, match=message):
        ViewPipeline([RandomResizedCrop(8)], normalize=normalize)
    with pytest.raises(ValueError, match=message):
        simclr(8, normalize=normalize)
