"""The multi-crop recipes (DINO, SwAV): every crop's values, parameter distributions and pixels against the upstream
recipes.

References: DINO's ``DataAugmentationDINO`` (``facebookresearch/dino``, ``main_dino.py`` and ``utils.py``), transcribed
below as ``DINO`` and checked against lightly's ``DINOTransform`` (the same values; its objects serve as the reference
transforms, as lightly's do in ``test_distribution.py``); SwAV's ``MultiCropDataset`` (``facebookresearch/swav``,
``src/multicropdataset.py`` with the ImageNet scripts' ``--nmb_crops 2 6 --size_crops 224 96 --min_scale_crops 0.14
0.05 --max_scale_crops 1. 0.14``), transcribed below as torchvision transforms. The distribution tests are those of
``test_distribution.py`` (KS on the crops' boxes, scales and log-ratios against ``RandomResizedCrop.make_params``,
binomial tests on each crop's flip, jitter, grayscale, blur and solarization rates, KS on the jitter factors and the
blur's sigma), run on each crop kind of one multi-crop draw; the pixels are torchvision's functional ops with the
returned parameters.
"""

from __future__ import annotations

import math
from typing import Any

import lightly.transforms as lightly_transforms
import numpy as np
import pytest
import scipy.stats as stats
import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from torchvision.transforms import InterpolationMode, v2

from essl_aug.config import ESSLConfig
from essl_aug.transforms import ColorJitter, RandomGaussianBlur, RandomResizedCrop
from essl_aug.views import (
    IMAGENET_NORMALIZE,
    RECIPES,
    SWAV_NORMALIZE,
    MultiCrop,
    TwoViews,
    ViewPipeline,
    dino,
    recipe,
    swav,
)
from tests.transforms.catalogue import jitter_reference
from tests.views.test_distribution import ALPHA, N, failures, params_p_values, reference_view

#: DINO's ``DataAugmentationDINO`` with ``main_dino.py``'s defaults (``--global_crops_scale 0.4 1.``,
#: ``--local_crops_scale 0.05 0.4``, ``--local_crops_number 8``), per crop kind (global 1, global 2, local).
DINO: dict[str, Any] = {
    "size": (224, 224, 96),
    "scale": ((0.4, 1.0), (0.4, 1.0), (0.05, 0.4)),
    "num_local": 8,
    "jitter": (0.4, 0.4, 0.2, 0.1),
    "jitter_p": 0.8,
    "grayscale": 0.2,
    "blur": (1.0, 0.1, 0.5),
    "sigma": (0.1, 2.0),
    "solarize": (0.0, 0.2, 0.0),
    "normalize": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
#: SwAV's normalisation (``src/multicropdataset.py``: std 0.228 for red).
SWAV_STD = (0.228, 0.224, 0.225)
#: The input images the parameters are drawn for: landscape, large enough for the local crops' smallest boxes.
SIZE = (96, 128)


def dino_references(num_local: int = 8) -> list[dict[str, Any]]:
    """The reference transforms of global crop 1, global crop 2 and a local crop: lightly's ``DINOTransform``."""
    composes = [t.transform for t in lightly_transforms.DINOTransform(n_local_views=num_local).transforms]
    return [reference_view(c) for c in composes[:3]]


def swav_references() -> list[dict[str, Any]]:
    """SwAV's global and local crop transforms (``MultiCropDataset``) as torchvision transforms."""
    refs = []
    for size, scale in ((224, (0.14, 1.0)), (96, (0.05, 0.14))):
        compose = v2.Compose(
            [
                v2.RandomResizedCrop(size, scale=scale),
                v2.RandomHorizontalFlip(p=0.5),
                v2.RandomApply([v2.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
                v2.RandomGrayscale(p=0.2),
                lightly_transforms.GaussianBlur(prob=0.5, sigmas=(0.1, 2.0)),  # PILRandomGaussianBlur's draws
                v2.Normalize(mean=[0.485, 0.456, 0.406], std=list(SWAV_STD)),
            ]
        )
        refs.append(reference_view(compose))
    return [refs[0], refs[0], refs[1]]


# -- the values --------------------------------------------------------------------------------------------------------


def test_lightlys_dino_transform_has_dinos_values() -> None:
    """lightly's ``DINOTransform`` (the distribution reference) is DINO's recipe, with 6 local crops by default."""
    transform = lightly_transforms.DINOTransform()
    assert len(transform.transforms) == 2 + 6
    for i, ref in enumerate(dino_references()):
        crop, jitter = ref["crop"], ref["jitter"]
        assert tuple(crop.size) == (DINO["size"][i],) * 2 and crop.scale == DINO["scale"][i]
        assert crop.interpolation == InterpolationMode.BICUBIC and crop.ratio == pytest.approx((3 / 4, 4 / 3))
        b, c, s, h = DINO["jitter"]
        assert jitter.brightness == pytest.approx((1 - b, 1 + b)) and jitter.contrast == pytest.approx((1 - c, 1 + c))
        assert jitter.saturation == pytest.approx((1 - s, 1 + s)) and jitter.hue == pytest.approx((-h, h))
        assert (ref["hflip"], ref["jitter_p"], ref["grayscale"]) == (0.5, DINO["jitter_p"], DINO["grayscale"])
        assert (ref["blur"].prob, ref["solarize"]) == (DINO["blur"][i], DINO["solarize"][i])
        assert tuple(ref["blur"].sigmas) == DINO["sigma"] and (ref["vflip"], ref["rotate"]) == (0.0, 0.0)
        assert ref["normalize"] == DINO["normalize"]


def check_crop(pipe: ViewPipeline, ref: dict[str, Any], size: int, interpolation: str) -> None:
    crop, flip, jitter, gray, blur = (
        pipe[n] for n in ("resized_crop", "hflip", "color_jitter", "grayscale", "gaussian_blur")
    )
    assert isinstance(crop, RandomResizedCrop) and isinstance(jitter, ColorJitter)
    assert isinstance(blur, RandomGaussianBlur)
    assert crop.size == (size, size) and crop.scale == tuple(ref["crop"].scale) and crop.antialias
    assert crop.ratio == pytest.approx(tuple(ref["crop"].ratio)) and crop.interpolation == interpolation
    assert flip.p == ref["hflip"] and jitter.p == ref["jitter_p"] and gray.p == ref["grayscale"]
    j = ref["jitter"]
    assert [pytest.approx(r) for r in jitter.ranges] == [j.brightness, j.contrast, j.saturation, j.hue]
    assert blur.p == ref["blur"].prob and blur.sigma == pytest.approx(tuple(ref["blur"].sigmas))
    assert blur.sized_by_sigma  # Pillow's blur by radius, as both upstreams' PIL blur
    assert (pipe["solarize"].p if "solarize" in pipe.names else 0.0) == ref["solarize"]
    assert pipe.normalize == ref["normalize"]


def test_dino_has_dinos_values() -> None:
    crops = dino()
    assert isinstance(crops, MultiCrop) and isinstance(crops, TwoViews)
    assert (crops.num_global, crops.num_local, len(crops.pipelines)) == (2, DINO["num_local"], 10)
    assert crops.pipelines[0] is not crops.pipelines[1] and all(p is crops.pipelines[2] for p in crops.pipelines[2:])
    for i, ref in enumerate(dino_references()):
        check_crop(crops.pipelines[i], ref, DINO["size"][i], "bicubic")
    names = {p.names for p in crops.pipelines}
    assert names == {("resized_crop", "hflip", "color_jitter", "grayscale", "gaussian_blur", "solarize")}
    assert dino(num_local=6).num_local == len(lightly_transforms.DINOTransform().transforms) - 2


def test_swav_has_swavs_values() -> None:
    crops = swav()
    assert (crops.num_global, crops.num_local, len(crops.pipelines)) == (2, 6, 8)
    assert crops.pipelines[0] is crops.pipelines[1] and all(p is crops.pipelines[2] for p in crops.pipelines[2:])
    for i, ref in enumerate(swav_references()):
        check_crop(crops.pipelines[i], ref, (224, 224, 96)[i], "bilinear")
    assert SWAV_NORMALIZE == ((0.485, 0.456, 0.406), SWAV_STD) and IMAGENET_NORMALIZE[1][0] == 0.229


def test_the_recipes_options_and_names() -> None:
    assert RECIPES["dino"] is dino and RECIPES["swav"] is swav
    crops = recipe("dino", 32, local_size=16, num_local=2, global_scale=(0.14, 1.0), interpolation="bilinear")
    assert isinstance(crops, MultiCrop) and crops.num_local == 2
    assert crops.pipelines[0]["resized_crop"].size == (32, 32) and crops.pipelines[2]["resized_crop"].size == (16, 16)
    assert crops.pipelines[0]["resized_crop"].scale == (0.14, 1.0)
    assert crops.pipelines[2]["resized_crop"].interpolation == "bilinear"
    assert [p["gaussian_blur"].p for p in dino(blur=(0.5, 0.5, 0.2)).pipelines[:3]] == [0.5, 0.5, 0.2]
    assert len(dino(num_local=0).pipelines) == 2
    light = swav(32, local_size=18, num_local=4, local_scale=(0.08, 0.5), jitter_strength=0.5, blur=0.0)
    assert light.pipelines[2]["resized_crop"].scale == (0.08, 0.5) and light.pipelines[3]["gaussian_blur"].p == 0.0
    assert light.pipelines[0]["color_jitter"].ranges[0] == pytest.approx((0.6, 1.4))


def test_the_config_block_builds_a_multi_crop_recipe() -> None:
    block = ESSLConfig.from_mapping({"views": {"name": "dino", "size": 32, "local_size": 16, "num_local": 3}})
    crops = block.build_views(None)
    assert isinstance(crops, MultiCrop) and crops.num_local == 3
    assert [p["resized_crop"].size for p in crops.pipelines] == [(32, 32)] * 2 + [(16, 16)] * 3
    with pytest.raises(ValueError, match=r"essl.views: `num_local` must be"):
        ESSLConfig.from_mapping({"views": {"name": "swav", "num_local": -1}})


# -- the distributions -------------------------------------------------------------------------------------------------


def per_crop_p_values(
    crops: MultiCrop, refs: list[dict[str, Any]], seed: int, monkeypatch: pytest.MonkeyPatch
) -> dict[str, dict[str, float]]:
    """p-values of global crop 1, global crop 2, the first and the last local crop of one draw of ``crops``."""
    params = crops.sample((N, 3, *SIZE), "cpu", torch.Generator().manual_seed(seed))
    kinds = {"global 1": (0, 0), "global 2": (1, 1), "local 1": (2, 2), "local last": (len(params) - 1, 2)}
    return {
        kind: params_p_values(crops.pipelines[k], params[k], refs[r], SIZE, monkeypatch)
        for kind, (k, r) in kinds.items()
    }


@pytest.mark.parametrize("name", ["dino", "swav"])
def test_every_crops_parameters_match_the_upstream_recipe(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    crops, refs = (dino(), dino_references()) if name == "dino" else (swav(), swav_references())
    for kind, p in per_crop_p_values(crops, refs, 40 + len(name), monkeypatch).items():
        assert len(p) >= 15 and "blur.rate" in p and "crop.scale" in p
        assert not failures(p), f"{name} {kind}: {failures(p)}"


def test_the_crops_are_drawn_independently() -> None:
    """Flips independent between crops (chi-square on the 2x2 tables), crop scales uncorrelated (Spearman)."""
    params = dino(num_local=2).sample((N, 3, *SIZE), "cpu", torch.Generator().manual_seed(12))
    for a, b in ((0, 1), (0, 2), (2, 3)):
        f1, f2 = params[a]["hflip"].applied, params[b]["hflip"].applied
        table = [[int((f1 & f2).sum()), int((f1 & ~f2).sum())], [int((~f1 & f2).sum()), int((~f1 & ~f2).sum())]]
        assert stats.chi2_contingency(np.array(table)).pvalue > ALPHA, (a, b)
        s1, s2 = params[a]["resized_crop"].scale.numpy(), params[b]["resized_crop"].scale.numpy()
        assert stats.spearmanr(s1, s2).pvalue > ALPHA, (a, b)


def test_swapped_per_crop_probabilities_and_a_wrong_local_scale_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same tests fail for the global crops' blur probabilities swapped, solarization on the first global crop,
    and SwAV's local scale in DINO's local crops."""
    wrong = dino(blur=(0.1, 1.0, 0.5), solarize=(0.2, 0.0, 0.0), local_scale=(0.05, 0.14))
    rejected = {
        kind: set(failures(p)) for kind, p in per_crop_p_values(wrong, dino_references(), 7, monkeypatch).items()
    }
    assert {"blur.rate", "solarize.rate"} <= rejected["global 1"] and {"blur.rate", "solarize.rate"} <= rejected[
        "global 2"
    ]
    assert (
        {"crop.scale", "crop.height", "crop.width"}
        <= rejected["local 1"]
        <= {
            "crop.scale",
            "crop.height",
            "crop.width",
            "crop.top",
            "crop.left",
            "crop.log_ratio",
        }
    )


# -- the pixels --------------------------------------------------------------------------------------------------------


def torchvision_crop(pipe: ViewPipeline, x: Tensor, params: dict[str, Any], i: int) -> Tensor:
    """Image ``i``'s crop made by torchvision's functional ops with the returned parameters (float images)."""
    crop = pipe["resized_crop"]
    assert isinstance(crop, RandomResizedCrop) and crop.size is not None
    top, left, h, w = (int(v) for v in params["resized_crop"].box[i])
    mode = InterpolationMode.BICUBIC if crop.interpolation == "bicubic" else InterpolationMode.BILINEAR
    img = TF.resized_crop(x[i], top, left, h, w, list(crop.size), interpolation=mode, antialias=True)
    if bool(params["hflip"].applied[i]):
        img = TF.horizontal_flip(img)
    img = jitter_reference(None, img, params["color_jitter"], i)
    if bool(params["grayscale"].applied[i]):
        img = TF.rgb_to_grayscale(img, num_output_channels=3)
    blur = params["gaussian_blur"]
    if bool(blur.applied[i]):
        k, sigma = 2 * math.ceil(3 * 2.0) + 1, float(blur.sigma[i])  # Pillow's radius: 13 taps for sigma <= 2
        img = TF.gaussian_blur(img, [k, k], [sigma, sigma])
    if "solarize" in params and bool(params["solarize"].applied[i]):
        img = TF.solarize(img, 0.5)
    assert pipe.normalize is not None
    return TF.normalize(img, list(pipe.normalize[0]), list(pipe.normalize[1]))


@pytest.mark.parametrize("name", ["dino", "swav"])
def test_every_crop_is_torchvisions_ops_with_the_returned_parameters(name: str) -> None:
    """Float32 compute: each crop of each image equals torchvision's ops with its parameters (1e-4 after the
    normalisation's division by the std)."""
    crops = RECIPES[name](32, local_size=16, num_local=2, compute_dtype=torch.float32)
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (6, 3, 48, 56), generator=g, dtype=torch.uint8)
    views, params = crops(x, g)
    xf = TF.to_dtype(x, torch.float32, scale=True)
    assert [tuple(v.shape) for v in views] == [(6, 3, 32, 32)] * 2 + [(6, 3, 16, 16)] * 2
    for k, (view, p) in enumerate(zip(views, params, strict=True)):
        for i in range(len(x)):
            expected = torchvision_crop(crops.pipelines[k], xf, p, i)
            torch.testing.assert_close(view[i], expected, rtol=0, atol=1e-4, msg=f"{name} crop {k} image {i}")
    blurred = [bool(params[k]["gaussian_blur"].applied.any()) for k in range(len(views))]
    assert any(blurred) and any(bool(p["color_jitter"].applied.any()) for p in params)


def test_the_uint8_bicubic_crop_is_torchvisions_within_two_levels() -> None:
    """uint8 images: the bicubic crop is torchvision's uint8 ``resized_crop`` (its Pillow-like fixed-point passes)
    within 2 levels, mostly equal."""
    crops = dino(40, local_size=16, num_local=1, normalize=None)
    g = torch.Generator().manual_seed(4)
    x = torch.randint(0, 256, (8, 3, 64, 72), generator=g, dtype=torch.uint8)
    x = torch.nn.functional.avg_pool2d(x.float(), 3, 1, 1).round().to(torch.uint8)  # a smoother image
    params = crops.sample(x.shape, x.device, g)
    for k in (0, 2):
        crop = crops.pipelines[k]["resized_crop"]
        assert isinstance(crop, RandomResizedCrop) and crop.size is not None
        ours = crop.apply(x, params[k]["resized_crop"])
        ref = torch.stack(
            [
                TF.resized_crop(
                    x[i],
                    *(int(v) for v in params[k]["resized_crop"].box[i]),
                    list(crop.size),
                    InterpolationMode.BICUBIC,
                    antialias=True,
                )
                for i in range(len(x))
            ]
        )
        diff = (ours.int() - ref.int()).abs()
        assert ours.dtype == torch.uint8 and int(diff.max()) <= 2 and float((diff > 0).float().mean()) < 0.05


def test_multi_crop_views_replay_and_leave_the_input_alone() -> None:
    crops = swav(24, local_size=12, num_local=3)
    x = torch.randint(0, 256, (4, 3, 40, 40), generator=torch.Generator().manual_seed(5), dtype=torch.uint8)
    before = x.clone()
    views, params = crops(x, torch.Generator().manual_seed(6))
    again = crops.apply(x, crops.sample(x.shape, x.device, torch.Generator().manual_seed(6)))
    assert all(torch.equal(a, b) for a, b in zip(views, again, strict=True)) and torch.equal(x, before)
    assert len(views) == len(params) == 5 and all(v.dtype == torch.float32 for v in views)
    boxes = [p["resized_crop"].box for p in params[2:]]
    assert not torch.equal(boxes[0], boxes[1])  # each local crop its own draw


# -- errors ------------------------------------------------------------------------------------------------------------


def test_the_errors_name_the_argument_and_the_fix() -> None:
    with pytest.raises(ValueError, match=r"`num_local` must be the number of local crops, an int >= 0"):
        dino(num_local=-1)
    with pytest.raises(TypeError, match=r"`blur` is one probability per crop kind, a triple \(global 1, global 2"):
        dino(blur=(1.0, 0.1))
    with pytest.raises(ValueError, match=r"`solarize\[1\]`"):
        dino(solarize=(0.0, 1.5, 0.0))
    with pytest.raises(ValueError, match=r"`interpolation` must be one of \('bilinear', 'bicubic'\)"):
        swav(interpolation="nearest")
    with pytest.raises(ValueError, match=r"keep `antialias=True`"):
        RandomResizedCrop(8, antialias=False, interpolation="bicubic")
    pipe = ViewPipeline([RandomResizedCrop(8)])
    with pytest.raises(TypeError, match=r"`global_views` must be the two global crops' pipelines"):
        MultiCrop(pipe)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`local_view` must be the local crops' ViewPipeline for num_local=2"):
        MultiCrop((pipe, pipe), None, 2)
    with pytest.raises(ValueError, match=r"`num_local` must be the number of local crops"):
        MultiCrop((pipe, pipe), pipe, True)


def test_the_loader_path_makes_the_same_crops_per_image() -> None:
    """``ViewsDataset`` runs the multi-crop recipe per image on the workers: every crop, each with its parameters,
    which replay to the same pixels on the batch."""
    from essl_aug.adapters.loader import ViewsDataset, collate_views

    crops = dino(32, local_size=16, num_local=2)
    g = torch.Generator().manual_seed(9)
    data = [(torch.randint(0, 256, (3, 40, 44), generator=g, dtype=torch.uint8), i) for i in range(4)]
    batch = collate_views([ViewsDataset(data, crops, seed=0)[i] for i in range(4)])
    views, params, labels = batch
    assert [tuple(v.shape) for v in views] == [(4, 3, 32, 32)] * 2 + [(4, 3, 16, 16)] * 2 and labels.tolist() == [
        0,
        1,
        2,
        3,
    ]
    replayed = crops.apply(torch.stack([image for image, _ in data]), params)
    for view, again in zip(views, replayed, strict=True):
        torch.testing.assert_close(view, again, rtol=0, atol=1e-6)
