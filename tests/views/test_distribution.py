"""The recipes draw what the reference recipes draw: per parameter, a statistical test against the reference
transforms' own draws.

The references are lightly's ``SimCLRTransform`` and ``BYOLTransform`` objects (their torchvision v2 transforms draw
with ``make_params``; lightly's blur draws ``np.random.uniform`` inside ``__call__``, recorded here from its PIL
filter calls); solo-learn's asymmetric BYOL recipe has the same values as lightly's ``BYOLTransform`` (checked below).
The E-SSL extra view's references are the torchvision pipelines of ``rdangovs/essl`` (``cifar10/main.py``: the main
views' transforms with ``RandomResizedCrop(16)``; ``imagenet/simclr/main.py``: ``RandomResizedCrop(96, scale=(0.05,
0.14))`` and its ``GaussianBlur(p=0.1)``, sigma uniform in (0.1, 2.0), the draw of lightly's ``GaussianBlur``).

Each test draws ``N`` parameter sets of one view on the CPU with fixed seeds (so it is deterministic) and compares:

- the crop's box (top, left, height, width), scale and log-ratio with torchvision ``RandomResizedCrop.make_params``
  draws: two-sample Kolmogorov-Smirnov (``scipy.stats.ks_2samp``);
- the application rate of the flip, colour jitter, grayscale, blur and solarization with the reference probability:
  exact binomial test (``scipy.stats.binomtest``);
- the jitter factors (applied images) with ``ColorJitter.make_params`` draws, and the blur sigma with the reference
  blur's draws: two-sample KS;
- the jitter order with the uniform distribution over the 24 permutations: chi-square (``scipy.stats.chisquare``).

A test passes when every p-value is above ``ALPHA``. The same functions reject deliberately wrong distributions
(last tests), so the tests can fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from itertools import permutations
from typing import Any

import lightly.transforms as lightly_transforms
import numpy as np
import pytest
import scipy.stats as stats
import torch
from torchvision.transforms import v2

from essl_aug.transforms import (
    ColorJitter,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
)
from essl_aug.views import IMAGENET_NORMALIZE, TwoViews, ViewPipeline, byol, extra_view, simclr

ALPHA = 1e-3
N = 20_000
#: Input image sizes: a landscape image, and a narrow one where torchvision's central-crop fallback is frequent.
SIZES = ((48, 64), (16, 96))
PERMUTATIONS = {p: i for i, p in enumerate(permutations(range(4)))}

# solo-learn, scripts/pretrain/imagenet-100/augmentations/asymmetric.yaml (views 1 and 2)
SOLO_BYOL: list[dict[str, Any]] = [
    {"min_scale": 0.08, "jitter": (0.4, 0.4, 0.2, 0.1), "jitter_p": 0.8, "gray": 0.2, "blur": 1.0, "solar": 0.0},
    {"min_scale": 0.08, "jitter": (0.4, 0.4, 0.2, 0.1), "jitter_p": 0.8, "gray": 0.2, "blur": 0.1, "solar": 0.2},
]


# -- the reference recipes ---------------------------------------------------------------------------------------------


def reference_view(compose: Any) -> dict[str, Any]:
    """The reference transforms of one view, taken out of a torchvision ``Compose``."""
    ref: dict[str, Any] = {"solarize": 0.0, "blur": None, "vflip": 0.0, "rotate": 0.0}
    for t in compose.transforms:
        kind = type(t).__name__
        if kind == "RandomResizedCrop":
            ref["crop"] = t
        elif kind == "RandomHorizontalFlip":
            ref["hflip"] = t.p
        elif kind == "RandomVerticalFlip":
            ref["vflip"] = t.p
        elif kind == "RandomRotate":
            ref["rotate"] = t.prob
        elif kind == "RandomApply":
            (ref["jitter"],) = t.transforms
            ref["jitter_p"] = t.p
        elif kind == "RandomGrayscale":
            ref["grayscale"] = t.p
        elif kind == "GaussianBlur":
            ref["blur"] = t
        elif kind == "RandomSolarization":
            ref["solarize"] = t.prob
        elif kind == "Normalize":
            ref["normalize"] = (tuple(t.mean), tuple(t.std))
    return ref


def reference_views(name: str) -> list[dict[str, Any]]:
    """The reference transforms of each view of recipe ``name``, taken out of lightly's objects."""
    if name == "simclr":
        composes = [t.transform for t in lightly_transforms.SimCLRTransform(input_size=32).transforms]
    else:
        composes = [t.transform for t in lightly_transforms.BYOLTransform().transforms]
    return [reference_view(compose) for compose in composes]


def reference_extra_view(setting: str) -> dict[str, Any]:
    """The reference E-SSL extra view (rdangovs/essl) as torchvision transforms."""
    if setting == "cifar":
        crop, jitter, blur = v2.RandomResizedCrop(16, scale=(0.2, 1.0)), (0.4, 0.4, 0.4, 0.1), []
    else:
        crop, jitter = v2.RandomResizedCrop(96, scale=(0.05, 0.14)), (0.4, 0.4, 0.2, 0.1)
        blur = [lightly_transforms.GaussianBlur(prob=0.1, sigmas=(0.1, 2.0))]
    return reference_view(
        v2.Compose(
            [
                crop,
                v2.RandomHorizontalFlip(),
                v2.RandomApply([v2.ColorJitter(*jitter)], p=0.8),
                v2.RandomGrayscale(p=0.2),
                *blur,
            ]
        )
    )


RECIPES: dict[str, Callable[..., TwoViews]] = {"simclr": simclr, "byol": byol}


def test_the_references_have_the_documented_values() -> None:
    """lightly's recipes: no vertical flip nor rotation (so the recipes omit them), ImageNet normalisation;
    lightly's BYOL views have solo-learn's asymmetric values."""
    for name in RECIPES:
        for ref in reference_views(name):
            assert ref["vflip"] == 0.0 and ref["rotate"] == 0.0
            assert ref["normalize"] == tuple(tuple(v) for v in IMAGENET_NORMALIZE)
            assert ref["crop"].ratio == pytest.approx((3 / 4, 4 / 3))
    for ref, solo in zip(reference_views("byol"), SOLO_BYOL, strict=True):
        jitter = ref["jitter"]
        assert ref["crop"].scale == (solo["min_scale"], 1.0)
        assert jitter.brightness == pytest.approx((1 - solo["jitter"][0], 1 + solo["jitter"][0]))
        assert jitter.contrast == pytest.approx((1 - solo["jitter"][1], 1 + solo["jitter"][1]))
        assert jitter.saturation == pytest.approx((1 - solo["jitter"][2], 1 + solo["jitter"][2]))
        assert jitter.hue == pytest.approx((-solo["jitter"][3], solo["jitter"][3]))
        assert (ref["jitter_p"], ref["grayscale"], ref["blur"].prob, ref["solarize"]) == (
            solo["jitter_p"],
            solo["gray"],
            solo["blur"],
            solo["solar"],
        )


# -- the reference draws (cached: the same reference serves several tests) ---------------------------------------------


@cache
def crop_reference(scale: tuple[float, float], ratio: tuple[float, float], size: tuple[int, int]) -> np.ndarray:
    """(N, 4) [top, left, height, width] drawn by torchvision's ``RandomResizedCrop.make_params``."""
    t = v2.RandomResizedCrop(8, scale=scale, ratio=ratio)
    img = torch.zeros(1, *size, dtype=torch.uint8)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        draws = [t.make_params([img]) for _ in range(N)]
    return np.array([[d["top"], d["left"], d["height"], d["width"]] for d in draws], dtype=np.float64)


@cache
def jitter_reference(ranges: tuple[tuple[float, float], ...]) -> np.ndarray:
    """(N, 4) [brightness, contrast, saturation, hue] drawn by torchvision's ``ColorJitter.make_params``."""
    t = v2.ColorJitter(*ranges)
    img = torch.zeros(3, 2, 2)
    with torch.random.fork_rng():
        torch.manual_seed(2)
        draws = [t.make_params([img]) for _ in range(N)]
    keys = ("brightness_factor", "contrast_factor", "saturation_factor", "hue_factor")
    return np.array([[d[k] for k in keys] for d in draws], dtype=np.float64)


def blur_reference(blur: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[int, np.ndarray]:
    """(times applied, sigmas) of ``N`` calls of lightly's ``GaussianBlur``, recorded from its PIL filter calls."""
    from lightly.transforms import gaussian_blur as module
    from PIL import Image, ImageFilter

    radii: list[float] = []

    class Recorder:
        @staticmethod
        def GaussianBlur(radius: float) -> Any:
            radii.append(radius)
            return ImageFilter.GaussianBlur(radius)

    monkeypatch.setattr(module, "ImageFilter", Recorder)
    img = Image.new("RGB", (1, 1))
    state = np.random.get_state()
    np.random.seed(3)
    try:
        for _ in range(N):
            blur(img)
    finally:
        np.random.set_state(state)
    return len(radii), np.array(radii)


# -- the tests (each returns p-values) ---------------------------------------------------------------------------------


def ks(ours: np.ndarray | torch.Tensor, reference: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov p-value."""
    return float(stats.ks_2samp(np.asarray(ours, dtype=np.float64), reference).pvalue)


def binomial(applied: torch.Tensor, p: float) -> float:
    """Exact binomial test p-value of ``applied.sum()`` successes in ``len(applied)`` draws with probability ``p``."""
    return float(stats.binomtest(int(applied.sum()), len(applied), p).pvalue)


def uniform_order(order: torch.Tensor) -> float:
    """Chi-square p-value of the (n, 4) permutations against the uniform distribution over the 24."""
    counts = np.bincount([PERMUTATIONS[tuple(row)] for row in order.tolist()], minlength=24)
    return float(stats.chisquare(counts).pvalue)


def crop_p_values(box: torch.Tensor, reference: np.ndarray, size: tuple[int, int]) -> dict[str, float]:
    """KS p-values of the box's top, left, height, width, scale and log-ratio against ``reference`` boxes."""
    ours = box.double().numpy()
    area = size[0] * size[1]
    out = {name: ks(ours[:, k], reference[:, k]) for k, name in enumerate(("top", "left", "height", "width"))}
    out["scale"] = ks(ours[:, 2] * ours[:, 3] / area, reference[:, 2] * reference[:, 3] / area)
    out["log_ratio"] = ks(np.log(ours[:, 3] / ours[:, 2]), np.log(reference[:, 3] / reference[:, 2]))
    return out


def jitter_p_values(factors: torch.Tensor, order: torch.Tensor, reference: np.ndarray) -> dict[str, float]:
    """KS p-values of each factor against ``reference`` draws, and the order's chi-square p-value."""
    out = {name: ks(factors[:, k], reference[:, k]) for k, name in enumerate(("b", "c", "s", "h"))}
    out["order"] = uniform_order(order)
    return out


def view_p_values(
    pipe: ViewPipeline, ref: dict[str, Any], size: tuple[int, int], seed: int, monkeypatch: pytest.MonkeyPatch
) -> dict[str, float]:
    """Every parameter's p-value for ``N`` draws of ``pipe`` against the reference view ``ref``."""
    params = pipe.sample((N, 3, *size), "cpu", torch.Generator().manual_seed(seed))
    return params_p_values(pipe, params, ref, size, monkeypatch)


def params_p_values(
    pipe: ViewPipeline,
    params: dict[str, Any],
    ref: dict[str, Any],
    size: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, float]:
    """Every parameter's p-value for ``params`` (drawn by ``pipe`` for images of ``size``) against ``ref``."""
    crop_ref = ref["crop"]
    crop = pipe["resized_crop"]
    assert isinstance(crop, RandomResizedCrop) and crop.size == tuple(crop_ref.size)
    reference_boxes = crop_reference(tuple(crop_ref.scale), tuple(crop_ref.ratio), size)
    p = {f"crop.{k}": v for k, v in crop_p_values(params["resized_crop"].box, reference_boxes, size).items()}
    p["hflip.rate"] = binomial(params["hflip"].applied, ref["hflip"])
    jitter = params["color_jitter"]
    p["jitter.rate"] = binomial(jitter.applied, ref["jitter_p"])
    j = ref["jitter"]
    reference = jitter_reference(tuple(tuple(r) for r in (j.brightness, j.contrast, j.saturation, j.hue)))
    applied = jitter.applied
    p.update(
        {
            f"jitter.{k}": v
            for k, v in jitter_p_values(jitter.factors[applied], jitter.order[applied], reference).items()
        }
    )
    p["grayscale.rate"] = binomial(params["grayscale"].applied, ref["grayscale"])
    assert ("gaussian_blur" in params) == (ref["blur"] is not None)
    if ref["blur"] is not None:
        blur = params["gaussian_blur"]
        _, sigmas = blur_reference(ref["blur"], monkeypatch)
        p["blur.rate"] = binomial(blur.applied, ref["blur"].prob)
        if blur.applied.any():
            p["blur.sigma"] = ks(blur.sigma[blur.applied], sigmas)
    if ref["solarize"] > 0 or "solarize" in params:
        p["solarize.rate"] = binomial(params["solarize"].applied, ref["solarize"])
    return p


def failures(p_values: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in p_values.items() if not v > ALPHA}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_parameter_matches_the_reference_recipe(
    name: str, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = reference_views(name)
    two = RECIPES[name](refs[0]["crop"].size[0])  # lightly's sizes: SimCLR's given (32), BYOL's default (224)
    assert len(two.pipelines) == len(refs) == 2
    for v, (pipe, ref) in enumerate(zip(two.pipelines, refs, strict=True)):
        p = view_p_values(pipe, ref, size, seed=10 * v + SIZES.index(size), monkeypatch=monkeypatch)
        assert len(p) >= 15
        assert not failures(p), f"{name} view {v + 1} on {size}: {failures(p)}"


@pytest.mark.parametrize(("setting", "main_size", "size"), [("cifar", 32, (32, 32)), ("imagenet", 224, (48, 64))])
def test_every_parameter_of_the_extra_view_matches_the_reference(
    setting: str, main_size: int, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = extra_view(main_size)
    p = view_p_values(pipe, reference_extra_view(setting), size, seed=20 + main_size, monkeypatch=monkeypatch)
    assert len(p) >= (13 if setting == "cifar" else 15)
    assert not failures(p), f"extra view at {setting} size on {size}: {failures(p)}"


def test_the_two_views_are_drawn_independently() -> None:
    """The views' flips are independent (chi-square on the 2x2 table) and their crop scales uncorrelated."""
    two = simclr(32)
    params = two.sample((N, 3, 48, 64), "cpu", torch.Generator().manual_seed(5))
    f1, f2 = (p["hflip"].applied for p in params)
    table = np.array([[int((f1 & f2).sum()), int((f1 & ~f2).sum())], [int((~f1 & f2).sum()), int((~f1 & ~f2).sum())]])
    assert stats.chi2_contingency(table).pvalue > ALPHA
    s1, s2 = (p["resized_crop"].scale.numpy() for p in params)
    assert stats.spearmanr(s1, s2).pvalue > ALPHA


# -- the same tests reject wrong distributions -------------------------------------------------------------------------


def test_a_wrong_crop_scale_is_rejected() -> None:
    size = SIZES[0]
    reference = crop_reference((0.08, 1.0), (3 / 4, 4 / 3), size)
    right = RandomResizedCrop(32).sample((N, 3, *size), "cpu", torch.Generator().manual_seed(6))
    wrong = RandomResizedCrop(32, scale=(0.2, 1.0)).sample((N, 3, *size), "cpu", torch.Generator().manual_seed(6))
    assert not failures(crop_p_values(right.box, reference, size))
    rejected = failures(crop_p_values(wrong.box, reference, size))
    assert "scale" in rejected and "height" in rejected and "width" in rejected


def test_a_crop_without_the_fallback_is_rejected() -> None:
    """On a narrow image torchvision falls back to the central crop after 10 tries: a box drawn from the first try
    that fits among 100 (no fallback) is rejected."""
    size = SIZES[1]
    reference = crop_reference((0.08, 1.0), (3 / 4, 4 / 3), size)
    g = torch.Generator().manual_seed(7)
    h, w = size
    area = h * w * (0.08 + 0.92 * torch.rand(N, 100, generator=g, dtype=torch.float64))
    log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * torch.rand(N, 100, generator=g, dtype=torch.float64)
    bw, bh = torch.round(torch.sqrt(area * torch.exp(log_r))), torch.round(torch.sqrt(area / torch.exp(log_r)))
    first = ((bw <= w) & (bh <= h)).double().argmax(dim=1, keepdim=True)
    bh, bw = bh.gather(1, first).squeeze(1), bw.gather(1, first).squeeze(1)
    top = torch.floor(torch.rand(N, generator=g, dtype=torch.float64) * (h - bh + 1))
    left = torch.floor(torch.rand(N, generator=g, dtype=torch.float64) * (w - bw + 1))
    rejected = failures(crop_p_values(torch.stack([top, left, bh, bw], dim=1), reference, size))
    assert "width" in rejected or "log_ratio" in rejected


def test_wrong_rates_are_rejected() -> None:
    g = torch.Generator().manual_seed(8)
    assert binomial(RandomHorizontalFlip(p=0.5).sample((N, 3, 4, 4), "cpu", g).applied, 0.5) > ALPHA
    assert binomial(RandomHorizontalFlip(p=0.48).sample((N, 3, 4, 4), "cpu", g).applied, 0.5) < ALPHA
    assert binomial(RandomGrayscale(p=0.18).sample((N, 3, 4, 4), "cpu", g).applied, 0.2) < ALPHA


def test_a_wrong_jitter_and_a_wrong_order_are_rejected() -> None:
    t = v2.ColorJitter(0.8, 0.8, 0.8, 0.2)
    reference = jitter_reference(tuple(tuple(r) for r in (t.brightness, t.contrast, t.saturation, t.hue)))
    g = torch.Generator().manual_seed(9)
    right = ColorJitter(0.8, 0.8, 0.8, 0.2, p=1.0).sample((N, 3, 4, 4), "cpu", g)
    assert not failures(jitter_p_values(right.factors, right.order, reference))
    wrong = ColorJitter(0.7, 0.8, 0.8, 0.25, p=1.0).sample((N, 3, 4, 4), "cpu", g)
    assert set(failures(jitter_p_values(wrong.factors, wrong.order, reference))) == {"b", "h"}
    # only the 12 even permutations: not uniform over the 24
    even = [p for p in PERMUTATIONS if sum(p[i] > p[j] for i in range(4) for j in range(i + 1, 4)) % 2 == 0]
    order = torch.tensor(even)[torch.randint(12, (N,), generator=g)]
    assert uniform_order(order) < ALPHA
    assert uniform_order(right.order) > ALPHA


def test_a_wrong_blur_sigma_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = reference_views("simclr")[0]["blur"]
    _, sigmas = blur_reference(ref, monkeypatch)
    g = torch.Generator().manual_seed(11)
    right = RandomGaussianBlur(sigma=(0.1, 2.0), p=1.0).sample((N, 3, 32, 32), "cpu", g)
    wrong = RandomGaussianBlur(sigma=(0.1, 1.8), p=1.0).sample((N, 3, 32, 32), "cpu", g)
    assert ks(right.sigma, sigmas) > ALPHA
    assert ks(wrong.sigma, sigmas) < ALPHA


def test_an_extra_view_of_the_main_views_scale_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CIFAR extra view with the main views' crop scale (0.08, 1) instead of the reference (0.2, 1) fails."""
    pipe = extra_view(32, scale=(0.08, 1.0))
    rejected = failures(view_p_values(pipe, reference_extra_view("cifar"), (32, 32), 30, monkeypatch))
    assert {"crop.scale", "crop.height", "crop.width"} <= set(rejected)
