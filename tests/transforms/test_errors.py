"""Bad input gets a ValueError or TypeError that names the argument (and says how to fix it)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import essl_aug
from essl_aug import functional as EF
from essl_aug import transforms as T
from tests.transforms.catalogue import (
    CIFAR_MEAN,
    CIFAR_STD,
    ENTRIES,
    FAMILIES,
    Entry,
    build,
    entry,
    images,
    shape_for,
)

ENTRY = pytest.mark.parametrize("e", ENTRIES, ids=repr)
FAMILY = pytest.mark.parametrize("e", FAMILIES, ids=repr)


def every_entry_point(t, x, params) -> list:
    """Calls that take ``x``: ``apply``, ``t(x)``, and for a family ``apply_all`` and ``EquivariantTransform``."""
    calls = [lambda: t.apply(x, params), lambda: t(x)]
    if isinstance(t, T.Family):
        calls.append(lambda: t.apply_all(x))
        calls += [lambda mode=mode: essl_aug.EquivariantTransform(t, mode=mode)(x) for mode in ("random", "all")]
    return calls


# -- images ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8,), (8, 8), (1, 1, 3, 8, 8)], ids=["1d", "2d", "5d"])
@ENTRY
def test_wrong_number_of_dimensions(e: Entry, shape: tuple[int, ...]) -> None:
    t = build(e)
    x = torch.rand(*shape)
    params = t.sample((1, e.channels[0], 8, 8))
    for call in every_entry_point(t, x, params):
        with pytest.raises(
            ValueError,
            match=r"`x` must be shaped \(B, C, H, W\) or \(C, H, W\), got shape .*add or remove a batch dimension\.$",
        ):
            call()
    with pytest.raises(ValueError, match=r"`shape` must be a batch shape \(B, C, H, W\), e.g. `x.shape`"):
        t.sample(shape)


@pytest.mark.parametrize("value", [[[1.0]], None, 3.0, np.zeros((1, 3, 4, 4))], ids=["list", "none", "float", "numpy"])
@ENTRY
def test_images_that_are_not_tensors(e: Entry, value: object) -> None:
    t = build(e)
    params = t.sample((1, 3, 8, 8))
    for call in every_entry_point(t, value, params):
        with pytest.raises(TypeError, match=r"`x` must be a torch.Tensor shaped \(B, C, H, W\)"):
            call()


@pytest.mark.parametrize("shape", [(2, 3, 0, 0), (2, 3, 0, 4), (2, 3, 4, 0), (3, 0, 0)], ids=str)
@ENTRY
def test_images_without_pixels(e: Entry, shape: tuple[int, ...]) -> None:
    t = build(e)
    x = torch.rand(*shape)
    params = t.sample((shape[0] if len(shape) == 4 else 1, 3, 4, 4))
    for call in every_entry_point(t, x, params):
        with pytest.raises(ValueError, match=r"`x` has images without pixels \(\d+x\d+, H x W\)"):
            call()
    with pytest.raises(ValueError, match=r"`shape` must have B >= 0, C >= 1 and at least one pixel per side"):
        t.sample((2, 3, 0, 4))


def test_a_batch_without_channels_is_refused_by_sample_only() -> None:
    """``sample`` needs a channel; a pixel move by given labels moves the empty images."""
    x = torch.rand(2, 0, 8, 8)
    with pytest.raises(ValueError, match=r"`shape` must have B >= 0, C >= 1"):
        T.RandomRotation90()(x)
    assert T.RandomRotation90().apply(x, torch.tensor([0, 1])).shape == x.shape
    assert T.RandomRotation90().apply_all(x).shape == (8, 0, 8, 8)


@pytest.mark.parametrize("name", ["rotation90", "d4", "rotation90-x-vflip", "hflip-x-rotation90-x-vflip"])
@pytest.mark.parametrize("shape", [(2, 3, 8, 10), (3, 10, 8)], ids=["batched", "unbatched"])
def test_quarter_turns_need_square_images(name: str, shape: tuple[int, ...]) -> None:
    t = build(entry(name))
    x = torch.rand(*shape)
    labels = torch.zeros(shape[0], dtype=torch.long) if len(shape) == 4 else torch.tensor(0)
    for call in [*every_entry_point(t, x, T.LabelParams.of(labels.reshape(-1))), lambda: t.apply(x, labels)]:
        with pytest.raises(ValueError, match=r"square images but `x` is \d+x\d+ \(H x W\); crop or resize"):
            call()


def test_every_factor_of_a_product_checks_the_images() -> None:
    with pytest.raises(ValueError, match=r"square images but `x` is 16x18"):
        T.Product([T.RandomBlurLevels(), T.RandomRotation90()]).apply(
            torch.rand(2, 3, 16, 18), torch.zeros(2, dtype=torch.long)
        )
    with pytest.raises(ValueError, match=r"`x` is 6x6"):
        T.Product([T.RandomRotation90(), T.RandomBlurLevels()]).apply_all(torch.rand(1, 3, 6, 6))
    with pytest.raises(ValueError, match=r"even height and width"):
        essl_aug.EquivariantTransform(T.Product([T.RandomVerticalFlip(), T.RandomJigsaw()]), mode="all")(
            torch.rand(2, 3, 7, 8)
        )


@pytest.mark.parametrize("name", ["jigsaw", "jigsaw-klein", "jigsaw-open", "jigsaw-clockwise"])
@pytest.mark.parametrize("size", [(7, 8), (8, 7), (9, 9)], ids=str)
def test_the_jigsaw_needs_even_sides(name: str, size: tuple[int, int]) -> None:
    t = build(entry(name))
    x = torch.rand(2, 3, *size)
    for call in every_entry_point(t, x, T.LabelParams.of(torch.zeros(2, dtype=torch.long))):
        with pytest.raises(
            ValueError, match=r"2x2 jigsaw needs even height and width, but `x` is \d+x\d+; crop or pad"
        ):
            call()


def test_periodic_translations_need_sides_their_steps_divide() -> None:
    with pytest.raises(ValueError, match=r"steps \(3, 3\) needs H divisible by 3 and W by 3, but `x` is 8x9"):
        T.RandomPeriodicTranslation(3).apply(torch.rand(1, 1, 8, 9), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"needs H divisible by 2 and W by 4.*choose `steps`"):
        T.RandomPeriodicTranslation((2, 4))(torch.rand(1, 1, 8, 6))


@pytest.mark.parametrize(("kernel_sizes", "side"), [((5, 9, 15), 7), ((5, 9, 15), 3), ((3,), 1), ((5, 7), 3)], ids=str)
def test_blur_levels_need_images_larger_than_the_radius(kernel_sizes: tuple[int, ...], side: int) -> None:
    t = T.RandomBlurLevels(kernel_sizes)
    x = torch.rand(1, 3, side, side + 4)
    for call in every_entry_point(t, x, T.LabelParams.of(torch.zeros(1, dtype=torch.long))):
        with pytest.raises(ValueError, match=r"`x` is \d+x\d+; use larger images or smaller `kernel_sizes`"):
            call()
    r = max(kernel_sizes) // 2 + 1
    assert t.apply(torch.rand(1, 3, r, r), torch.ones(1, dtype=torch.long)).shape == (1, 3, r, r)


def test_gaussian_blur_needs_images_longer_than_the_radius() -> None:
    t = T.RandomGaussianBlur(kernel_size=9, p=1.0)
    with pytest.raises(ValueError, match=r"longer than 4 pixels per side, but `x` is 4x16 .*`kernel_size`"):
        t(torch.rand(2, 3, 4, 16))
    assert t(torch.rand(2, 3, 5, 16))[0].shape == (2, 3, 5, 16)


@ENTRY
def test_dtypes_not_declared_are_refused_with_the_fix(e: Entry) -> None:
    t = build(e)
    shape = shape_for(e, 2, 8, 8)
    for dtype in (torch.int32, torch.int64, torch.complex64, torch.uint8, torch.bool):
        if dtype in t.dtypes:
            continue
        x = torch.zeros(shape, dtype=dtype)
        for call in every_entry_point(t, x, t.sample(shape)):
            with pytest.raises(
                TypeError, match=rf"`x` has dtype {str(dtype)[6:]}, which .* does not support exactly; "
            ):
                call()


def test_uint8_restrictions_of_the_inversion() -> None:
    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    labels = torch.tensor([0, 1])
    with pytest.raises(TypeError, match=r"normalised-space inversion needs a float `x`"):
        T.RandomInvert(mean=CIFAR_MEAN, std=CIFAR_STD).apply(x, labels)
    with pytest.raises(ValueError, match=r"`max_val`=100 does not apply to uint8 images.*255 - x.*`x.float\(\)`"):
        T.RandomInvert(max_val=100).apply(x, labels)
    with pytest.raises(ValueError, match=r"`max_val`=100 does not apply to uint8"):
        essl_aug.EquivariantTransform(T.RandomInvert(max_val=100))(x)
    for fine in (T.RandomInvert(), T.RandomInvert(max_val=255)):
        assert torch.equal(fine.apply(x, labels)[1], 255 - x[1])
    assert torch.equal(T.RandomInvert(max_val=100).apply(x.float(), labels)[1], 100 - x[1].float())


@pytest.mark.parametrize("channels", [2, 4])
def test_channel_counts(channels: int) -> None:
    x = torch.rand(2, channels, 8, 8)
    labels = torch.zeros(2, dtype=torch.long)
    with pytest.raises(
        ValueError, match=rf"grayscale needs images with 1 \(gray\) or 3 \(RGB\) channels, but `x` has {channels}"
    ):
        T.RandomGrayscale().apply(x, labels)
    with pytest.raises(ValueError, match=rf"`x` has {channels}"):
        essl_aug.EquivariantTransform("grayscale", mode="all")(x)
    with pytest.raises(
        ValueError, match=rf"ColorJitter needs images with 1 \(gray\) or 3 \(RGB\) channels, but `x` has {channels}"
    ):
        T.ColorJitter()(x)
    with pytest.raises(ValueError, match=rf"`x` has {channels} channels but `mean`/`std` have 3 entries"):
        T.RandomInvert(mean=CIFAR_MEAN, std=CIFAR_STD).apply(x, labels)
    with pytest.raises(ValueError, match=r"`mean`/`std`"):
        essl_aug.EquivariantTransform({"name": "invert", "mean": CIFAR_MEAN, "std": CIFAR_STD})(x)
    assert torch.equal(T.RandomInvert().apply(x, torch.ones(2, dtype=torch.long)), 1 - x)  # pixel space: any channels


# -- labels ----------------------------------------------------------------------------------------------------------


@FAMILY
def test_bad_labels(e: Entry) -> None:
    f = build(e)
    x = images(shape_for(e, 3, 8, 8), seed=0)
    k = f.num_classes
    for bad in (torch.zeros(2, dtype=torch.long), torch.zeros(3, 1, dtype=torch.long), torch.tensor(0)):
        with pytest.raises(ValueError, match=r"`labels` must have shape \(3,\), one label per image"):
            f.apply(x, bad)
    for bad in (torch.zeros(3), torch.zeros(3, dtype=torch.bool)):
        with pytest.raises(TypeError, match=r"`labels` must have an integer dtype"):
            f.apply(x, bad)
    with pytest.raises(TypeError, match=r"`params` must be a LabelParams"):
        f.apply(x, [0, 0, 0])
    for bad in (torch.tensor([0, k, 0]), torch.tensor([0, -1, 0])):
        with pytest.raises(ValueError, match=rf"`labels` must lie in \[0, {k}\), got values in"):
            f.apply(x, bad)
    with pytest.raises(ValueError, match=rf"`params.labels` must lie in \[0, {k}\)"):
        f.apply(x, T.LabelParams.of(torch.tensor([0, k, 0])))
    with pytest.raises(ValueError, match=r"`params.labels` must have shape \(3,\)"):
        f.apply(x, T.LabelParams(applied=torch.zeros(3, dtype=torch.bool), labels=torch.zeros(2, dtype=torch.long)))
    assert torch.equal(
        f.apply(x, torch.tensor([0, k - 1, 0], dtype=torch.int32)), f.apply(x, torch.tensor([0, k - 1, 0]))
    )


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.bool, torch.float16, torch.float32])
@FAMILY
def test_one_label_dtype_rule_int64_or_int32(e: Entry, dtype: torch.dtype) -> None:
    f = build(e)
    x = images(shape_for(e, 3, 8, 8), seed=1)
    labels = torch.tensor([0, f.num_classes - 1, 1])
    with pytest.raises(TypeError, match=r"`labels` must have an integer dtype int64 or int32.*use `labels.long\(\)`"):
        f.apply(x, labels.to(dtype))
    with pytest.raises(TypeError, match=r"`labels` must have an integer dtype int64 or int32"):
        f.apply(x[0], labels[1].to(dtype))
    with pytest.raises(TypeError, match=r"`params.labels` must have an integer dtype.*`params.labels.long\(\)`"):
        f.apply(x, T.LabelParams.of(labels.to(dtype)))


def test_labels_and_params_on_another_device() -> None:
    x = torch.rand(2, 3, 8, 8)
    labels = torch.zeros(2, dtype=torch.long, device="meta")
    with pytest.raises(ValueError, match=r"`labels` is on meta but the images are on cpu; .*`labels.to\(x.device\)`"):
        T.RandomRotation90().apply(x, labels)
    with pytest.raises(ValueError, match=r"`labels` is on meta"):
        T.RandomInvert().apply(x, labels)
    for t in (
        T.RandomRotation90(),
        T.RandomSolarize(),
        T.RandomResizedCrop(4),
        T.ColorJitter(),
        T.RandomPeriodicShift(),
    ):
        params = t.sample(x.shape, "meta")
        with pytest.raises(
            ValueError, match=r"`params` is on meta but `x` is on cpu; move it with `params.to\(x.device\)`"
        ):
            t.apply(x, params)


def test_one_unbatched_image_takes_one_label() -> None:
    x = torch.rand(3, 8, 8)
    with pytest.raises(ValueError, match=r"`labels` must have shape \(1,\)"):
        T.RandomRotation90().apply(x, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match=r"`labels` must have an integer dtype"):
        T.RandomRotation90().apply(x, torch.tensor(1.0))
    assert T.RandomRotation90().apply(x, torch.tensor(1)).shape == (3, 8, 8)
    with pytest.raises(ValueError, match=r"`params` was drawn for B=2 images, `x` has 1"):
        T.RandomSolarize().apply(x, T.Params(torch.ones(2, dtype=torch.bool)))


# -- parameters --------------------------------------------------------------------------------------------------------


def _other(t) -> T.Params:
    """Parameters of another class than ``t``'s."""
    return (
        T.LabelParams.of(torch.zeros(4, dtype=torch.long))
        if t.params_type is not T.LabelParams
        else T.Params(torch.zeros(4, dtype=torch.bool))
    )


@ENTRY
def test_params_of_another_class_batch_or_kind(e: Entry) -> None:
    t = build(e)
    shape = shape_for(e, 4, 8, 8)
    x = images(shape, seed=2)
    params = t.sample(shape)
    name = t.params_type.__name__
    if t.params_type is not T.Params:  # a plain Params type takes every Params (solarize's: ``applied`` only)
        with pytest.raises(TypeError, match=rf"`params` must be a {name} \(from this transformation's `sample`\)"):
            t.apply(x, _other(t))
    with pytest.raises(TypeError, match=rf"`params` must be a {name}"):
        t.apply(x, "params")
    with pytest.raises(
        ValueError, match=r"`params` was drawn for B=4 images, `x` has 3; .*`sample\(x.shape, x.device\)`"
    ):
        t.apply(x[:3], params)
    with pytest.raises(ValueError, match=r"`a` and `b` must be two views of one batch, got B=4 and B=2"):
        t.relative(params, t.sample(shape_for(e, 2, 8, 8)))
    with pytest.raises(TypeError, match=rf"`a` must be a {name}"):
        t.relative("a", params)
    with pytest.raises(TypeError, match=rf"`b` must be a {name}"):
        t.relative(params, None)
    if t.params_type is not T.Params:
        with pytest.raises(TypeError, match=rf"`a` must be a {name}"):
            t.relative(_other(t), params)
    with pytest.raises(TypeError, match=r"`generator` must be a torch.Generator or None, got int"):
        t.sample(shape, generator=0)
    with pytest.raises(TypeError, match=r"`generator` must be a torch.Generator or None"):
        t(x, 0)


def test_crop_params_of_another_image_size_and_a_bad_flip() -> None:
    crop = T.RandomResizedCrop(4)
    params = crop.sample((3, 3, 8, 8))
    with pytest.raises(ValueError, match=r"`params` was drawn for images of 8x8 \(H x W\) pixels, `x` has 9x8"):
        crop.apply(torch.rand(3, 3, 9, 8), params)
    for bad in (torch.ones(2, dtype=torch.bool), torch.ones(3), "yes"):
        with pytest.raises(ValueError, match=r"`flipped` must be a \(3,\) bool tensor or the first view's flip"):
            crop.relative(params, params, flipped=bad)  # type: ignore[arg-type]
    box = dataclasses.replace(params, input_size=params.input_size.clone())
    box.input_size[1, 0] = 16.0
    with pytest.raises(ValueError, match=r"`params` was drawn for images of"):
        crop.apply(torch.rand(3, 3, 8, 8), box)
    assert isinstance(params, T.CropParams)


@pytest.mark.parametrize(
    "shift",
    [
        [0.0, 0.0, 20.0, 0.0],  # taller than the image: the eager and batched forms disagreed
        [-50.0, 0.0, 0.0, 0.0],  # a negative top
        [0.0, 0.0, 0.0, -100.0],  # no width
    ],
)
def test_a_hand_made_crop_box_outside_the_image_is_refused(shift: list[float]) -> None:
    crop = T.RandomResizedCrop(4)
    params = crop.sample((3, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    bad = dataclasses.replace(params, box=params.box + torch.tensor(shift))
    with pytest.raises(ValueError, match=r"`params.box` must lie inside the 8x8 images"):
        crop.apply(torch.rand(3, 3, 8, 8), bad)


@pytest.mark.parametrize("order", [[0, 0, 1, 2], [7, 0, 1, 2], [3, 2, 1, 4]])
def test_a_jitter_order_that_is_not_a_permutation_is_refused(order: list[int]) -> None:
    jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0)
    params = jitter.sample((2, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    bad = dataclasses.replace(params, order=torch.tensor([order, [0, 1, 2, 3]]))
    with pytest.raises(ValueError, match=r"`params.order` must be a permutation of 0..3 per image"):
        jitter.apply(torch.rand(2, 3, 8, 8), bad)
    with pytest.raises(ValueError, match=r"`params` must hold `factors` \(B, 4\), `order` \(B, 4\) int64"):
        jitter.apply(torch.rand(2, 3, 8, 8), dataclasses.replace(params, order=params.order.int()))
    with pytest.raises(ValueError, match=r"and `ranges` \(B, 4, 2\) or None, .* and `ranges` \(2, 4\)"):
        jitter.apply(torch.rand(2, 3, 8, 8), dataclasses.replace(params, ranges=params.ranges[..., 0]))


@pytest.mark.parametrize(
    "t", [T.RandomGaussianBlur(sigma=(0.1, 2.0), p=1.0), T.ColorJitter(p=1.0), T.RandomRotation(30)]
)
def test_hand_made_params_need_a_bool_mask_and_one_row_per_image(t: T.Transformation) -> None:
    x = torch.rand(4, 3, 8, 8)
    params = t.sample(x.shape, generator=torch.Generator().manual_seed(0))
    with pytest.raises(TypeError, match=r"`params.applied` must be a bool mask, got torch.int64"):
        t.apply(x, dataclasses.replace(params, applied=params.applied.long()))
    field = next(f.name for f in dataclasses.fields(params) if f.name != "applied")
    value = getattr(params, field)
    with pytest.raises(ValueError, match=rf"`params.{field}` has shape .*not one row per image of `x` \(B=4\)"):
        t.apply(x, dataclasses.replace(params, **{field: torch.cat([value, value])}))


def test_periodic_roll_checks_its_arguments() -> None:
    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(
        TypeError, match=r"`shifts` must be an integer torch.Tensor shaped \(B, 2\); use `shifts.long\(\)`"
    ):
        EF.periodic_roll(x, torch.zeros(2, 2))
    with pytest.raises(TypeError, match=r"`shifts` must be an integer"):
        EF.periodic_roll(x, [[0, 0], [0, 0]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`shifts` must have shape \(2, 2\), one \(rows, cols\) pair per image"):
        EF.periodic_roll(x, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`shifts` is on meta but `x` is on cpu"):
        EF.periodic_roll(x, torch.zeros(2, 2, dtype=torch.long, device="meta"))
    with pytest.raises(
        ValueError, match=r"`x` must be shaped \(B, C, H, W\), got shape \(1, 4, 4\).*`x.unsqueeze\(0\)`"
    ):
        EF.periodic_roll(x[0], torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`x` has images without pixels"):
        EF.periodic_roll(torch.rand(2, 1, 0, 4), torch.zeros(2, 2, dtype=torch.long))


# -- constructor arguments -----------------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")

BAD_ARGUMENTS = [
    # probabilities: a bool, a string, out of [0, 1], NaN
    *[(lambda p=p: T.RandomSolarize(p=p), "`p` is a probability") for p in (1.5, -0.1, True, "0.5", NAN)],
    *[(lambda p=p: T.RandomRotation90(p=p), "`p` is a probability") for p in (2, True, "1")],
    (lambda: T.ColorJitter(p=1.5), "`p`"),
    (lambda: T.RandomGrayscale(p=-0.1), "`p`"),
    (lambda: T.RandomGaussianBlur(p=2.0), "`p`"),
    (lambda: T.RandomPeriodicShift(p=1.5), "`p`"),
    (lambda: T.Product([T.RandomRotation90(), T.RandomVerticalFlip()], p=False), "`p`"),
    # rotation by any angle
    *[
        (
            lambda d=d: T.RandomRotation(degrees=d),
            r"`degrees` (must be a (finite )?number|as one number .* must be >= 0)",
        )
        for d in (-5.0, (10.0, -10.0), (1.0, 2.0, 3.0), True, "30", NAN, (True, 3), (0, INF))
    ],
    *[
        (lambda f=f: T.RandomRotation(fill=f), "`fill` is a fraction of the dtype's range")
        for f in (2.0, -0.5, True, "0")
    ],
    # resized crop
    *[
        (lambda s=s: T.RandomResizedCrop(s), "`size` must be")
        for s in (0, (4, 4, 4), 4.5, True, "4", (4, 0), (4, True))
    ],
    *[
        (lambda s=s: T.RandomResizedCrop(4, scale=s), "`scale`")
        for s in ((0.9, 0.1), (0.0, 0.5), 0.5, ("a", 1), (True, 1.0), (0.1, INF), "ab")
    ],
    *[
        (lambda r=r: T.RandomResizedCrop(4, ratio=r), "`ratio`")
        for r in ((-1.0, 1.0), (2.0, 1.0), (NAN, 1.0), (1, None))
    ],
    # colour jitter
    (lambda: T.ColorJitter(brightness=-0.1), "`brightness` must be non-negative"),
    (lambda: T.ColorJitter(brightness=INF), "`brightness` must be a finite number"),
    (lambda: T.ColorJitter(brightness=NAN), "`brightness`"),
    (lambda: T.ColorJitter(contrast=(1.5, 0.5)), "`contrast` must be a finite number or a \\(min, max\\) pair"),
    (lambda: T.ColorJitter(contrast=(0.5, INF)), "`contrast`"),
    (
        lambda: T.ColorJitter(saturation=(0.5, 1.0, 2.0)),
        "`saturation` must be a finite number or a \\(min, max\\) pair",
    ),
    (lambda: T.ColorJitter(saturation=(0.5, True)), "`saturation`"),
    (lambda: T.ColorJitter(hue=0.6), "`hue` must be in \\[0, 0.5\\]"),
    (lambda: T.ColorJitter(hue=(-0.7, 0.1)), "`hue` must be a \\(min, max\\) pair .*\\[-0.5, 0.5\\]"),
    # Gaussian blur
    *[
        (
            lambda s=s: T.RandomGaussianBlur(sigma=s),
            r"`sigma` must be (positive|a (finite )?number or a \(min, max\) pair)",
        )
        for s in ((0.0, 1.0), (2.0, 1.0), True, "1", (1.0, INF), NAN)
    ],
    *[
        (lambda k=k: T.RandomGaussianBlur(kernel_size=k), "`kernel_size` must be an odd positive integer")
        for k in (4, 0, -3, True, 3.0, "3")
    ],
    # solarize
    *[
        (lambda v=v: T.RandomSolarize(threshold=v), "`threshold` is a fraction of the pixel range")
        for v in (1.5, -0.1, True, "0.5", NAN)
    ],
    # jigsaw
    (lambda: T.RandomJigsaw([1, 0]), "`permutations` must start with 0, the identity"),
    (lambda: T.RandomJigsaw([0, 0]), "`permutations` must be distinct indices in \\[0, 24\\)"),
    (lambda: T.RandomJigsaw([0, 24]), "`permutations` must be distinct indices in \\[0, 24\\)"),
    (lambda: T.RandomJigsaw([]), "`permutations`"),
    (lambda: T.RandomJigsaw([0]), "`permutations` gives 1 class \\(the identity alone"),
    *[
        (lambda v=v: T.RandomJigsaw(v), "`permutations` must be integer indices in \\[0, 24\\)")
        for v in ([0, 1.5], [0.0, 1], [True, 1], 3, "0123")
    ],
    (lambda: T.RandomJigsaw(tile_order="cw"), "`tile_order` must be 'row-major' or 'clockwise'"),
    (lambda: T.RandomJigsaw(tile_order=1), "`tile_order`"),
    # blur levels
    *[
        (lambda k=k: T.RandomBlurLevels(k), "`kernel_sizes` must be positive odd integers")
        for k in ((4,), (), [3.5], [3.0], [True], ["3"], 3, (0,))
    ],
    *[
        (lambda s=s: T.RandomBlurLevels((3,), s), "`sigmas` must be 1 positive finite")
        for s in ((0.0,), [NAN], [INF], [-INF], [True], 1.0, ["1"])
    ],
    (lambda: T.RandomBlurLevels((3, 5), (1.0,)), "`sigmas` must be 2 positive"),
    # inversion
    (lambda: T.RandomInvert(mean=CIFAR_MEAN), "`mean` and `std` must be given together"),
    (lambda: T.RandomInvert(std=CIFAR_STD), "`mean` and `std` must be given together"),
    *[
        (lambda s=s: T.RandomInvert(mean=[0.5], std=s), "`std` must be positive finite numbers")
        for s in ([0.0], [-1.0], [NAN], [INF], [True])
    ],
    (lambda: T.RandomInvert(mean=[NAN], std=[0.2]), "`mean` must be finite numbers"),
    (lambda: T.RandomInvert(mean=[0.5, 0.5], std=[0.2]), "`mean` and `std` must have the same length"),
    (lambda: T.RandomInvert(normalize={"mean": [0.5]}), "`normalize` must be a dict with keys 'mean' and 'std'"),
    (lambda: T.RandomInvert(normalize={"mean": [0.5], "std": [NAN]}), "`std` must be positive finite"),
    (
        lambda: T.RandomInvert(mean=[0.5], std=[0.2], normalize={"mean": [0.5], "std": [0.2]}),
        "either `normalize` or `mean`/`std`",
    ),
    *[(lambda v=v: T.RandomInvert(max_val=v), "`max_val` must be finite numbers") for v in (NAN, INF, True, "1")],
    (lambda: T.RandomInvert(naive_normalized="yes"), "`naive_normalized` must be True or False"),
    # periodic translations
    *[
        (lambda s=s: T.RandomPeriodicTranslation(s), "`steps` must be a positive int or a pair")
        for s in (0, 2.0, (2, 2.5), "2", (True, 2), True, (2, 2, 2), -1)
    ],
    *[(lambda s=s: T.RandomPeriodicTranslation(s), "`steps` gives 1 class") for s in (1, (1, 1))],
    # products
    (lambda: T.Product([T.RandomRotation90()]), "`families` needs at least two families"),
    (lambda: T.Product([T.RandomRotation90(), "vflip"]), "every entry of `families` must be a Family, got str"),
    (
        lambda: T.Product([T.RandomRotation90(), T.RandomSolarize()]),
        "every entry of `families` must be a Family, got RandomSolarize",
    ),
    (lambda: T.Product(T.RandomRotation90()), "`families` must be a list of families"),
    # crop flag
    (lambda: T.RandomResizedCrop(4, antialias="yes"), "`antialias` must be True or False"),
    (lambda: T.RandomResizedCrop(4, antialias=1), "`antialias` must be True or False"),
]


@pytest.mark.parametrize(("make", "match"), BAD_ARGUMENTS)
def test_bad_constructor_arguments_are_named(make, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_wrong_argument_types_raise_type_errors() -> None:
    with pytest.raises(TypeError, match=r"`hue` must be a number or a \(min, max\) pair of numbers, got NoneType"):
        T.ColorJitter(hue=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`brightness` must be a number or a \(min, max\) pair of numbers, got bool"):
        T.ColorJitter(brightness=True)
    with pytest.raises(TypeError, match=r"`brightness`.*got str"):
        T.ColorJitter(brightness="0.4")  # type: ignore[arg-type]


def test_integers_of_any_kind_are_accepted_and_never_truncated() -> None:
    x = torch.rand(2, 1, 4, 6)
    labels = torch.tensor([1, 3])
    for steps in (np.int64(2), (np.int32(2), np.int64(2)), torch.tensor(2)):
        t = T.RandomPeriodicTranslation(steps)
        assert t.steps == (2, 2) and t.num_classes == 4
        assert torch.equal(t.apply(x, labels), T.RandomPeriodicTranslation(2).apply(x, labels))
    assert T.RandomJigsaw([np.int64(0), np.int64(23)]).num_classes == 2
    assert T.RandomBlurLevels([np.int64(3)]).kernel_sizes == (3,)
    transform = essl_aug.EquivariantTransform("rotation", mode="all", num_per_batch=np.int64(2))
    assert transform.num_per_batch == 2 and type(transform.num_per_batch) is int
    assert T.RandomPeriodicTranslation((1, 2)).num_classes == 2 and T.RandomJigsaw([0, 23]).num_classes == 2


def test_functional_ops_check_their_parameters_and_never_truncate() -> None:
    x, labels = torch.rand(2, 3, 12, 12), torch.tensor([0, 1])
    EF.blur_levels(x, labels, (3,))  # good calls first: a cached plan must not hide a bad call after them
    EF.jigsaw(x, labels, [0, 1])
    bad = [
        (lambda: EF.jigsaw(x, labels, [1, 0]), "`permutations` must start with 0"),
        (lambda: EF.jigsaw(x, labels, tile_order="cw"), "`tile_order`"),
        (lambda: EF.jigsaw(x, labels, [0, 1.5]), "`permutations` must be integer indices"),
        (lambda: EF.periodic_translate(x, labels, 0), "`steps`"),
        (lambda: EF.periodic_translate(x, labels, 2.0), "`steps`"),
        (lambda: EF.blur_levels(x, labels, (4,)), "`kernel_sizes` must be positive odd"),
        (lambda: EF.blur_levels(x, labels, [3.5]), "`kernel_sizes` must be positive odd integers"),
        (lambda: EF.blur_levels(x, labels, [3.0]), "`kernel_sizes` must be positive odd integers"),
        (lambda: EF.blur_levels(x, labels, (3,), (-1.0,)), "`sigmas` must be 1 positive"),
        (lambda: EF.blur_levels(x, labels, (3,), [NAN]), "`sigmas` must be 1 positive finite"),
    ]
    for call, match in bad:
        with pytest.raises(ValueError, match=match):
            call()
    assert EF.jigsaw(x, labels, [0, 1]).shape == x.shape  # a good call after the bad ones still works


# -- EquivariantTransform and one-class families -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["every", "ALL", None, "balanced"])
def test_bad_mode(mode: object) -> None:
    with pytest.raises(ValueError, match=r"`mode` must be 'random' or 'all'"):
        essl_aug.EquivariantTransform("rotation", mode=mode)  # type: ignore[arg-type]


def test_bad_transform_options() -> None:
    with pytest.raises(ValueError, match=r"`balanced=True` only applies to mode='random'"):
        essl_aug.EquivariantTransform("rotation", mode="all", balanced=True)
    for n in (0, -1, 5, 2.5, True, "2"):
        with pytest.raises(ValueError, match=r"`num_per_batch` must be an integer between 1 and num_classes=4"):
            essl_aug.EquivariantTransform("rotation", mode="all", num_per_batch=n)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`num_per_batch` only applies to mode='all'"):
        essl_aug.EquivariantTransform("rotation", num_per_batch=2)
    with pytest.raises(TypeError, match=r"`generator` must be a torch.Generator"):
        essl_aug.EquivariantTransform("rotation", generator=0)  # type: ignore[arg-type]
    for flag in ("no", 1, None):
        with pytest.raises(TypeError, match=r"`balanced` must be True or False"):
            essl_aug.EquivariantTransform("rotation", balanced=flag)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"`distinct_per_rank` must be True or False"):
            essl_aug.EquivariantTransform("rotation", distinct_per_rank=flag)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"`family` must be a name, a list of names, a mapping with 'name', or a Family"
    ):
        essl_aug.EquivariantTransform(T.RandomSolarize())  # type: ignore[arg-type]


class _OnlyIdentity(T.Family):
    name = "only-identity"
    num_classes = 1

    def _op(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return x.clone()


def test_one_class_families_are_refused() -> None:
    """One class is the identity alone: a head would have nothing to predict."""
    for mode in ("random", "all"):
        with pytest.raises(ValueError, match=r"`family` gives 1 class \(the identity alone, nothing to predict\)"):
            essl_aug.EquivariantTransform(_OnlyIdentity(), mode=mode)  # type: ignore[arg-type]


def test_target_spec_checks_its_fields() -> None:
    for bad in (lambda: T.TargetSpec("ordinal", 2), lambda: T.TargetSpec("classification", 0)):  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"`kind`|`size`"):
            bad()
    with pytest.raises(ValueError, match=r"`names` must name each of the 3 outputs, got 2 names"):
        T.TargetSpec("regression", 3, ("a", "b"))
    with pytest.raises(ValueError, match=r"`ranges` must give each of the 2 outputs a range, got 1"):
        T.TargetSpec("regression", 2, ranges=((0.0, 1.0),))
