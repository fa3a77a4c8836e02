"""Every bad input raises a ValueError or TypeError whose message names the argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from essl_aug import (
    BlurLevels,
    EquivariantTransform,
    Grayscale,
    Inversion,
    Jigsaw,
    PeriodicTranslation,
    Product,
    RandomPeriodicShift,
    Rotation,
    TransformFamily,
    VerticalFlip,
    build_family,
    periodic_roll,
    register_family,
)
from tests.core.helpers import CIFAR_MEAN, CIFAR_STD, FAMILIES, family, side


def _x(*shape: int) -> torch.Tensor:
    return torch.rand(*shape)


# -- images ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8,), (8, 8), (1, 1, 3, 8, 8)], ids=["1d", "2d", "5d"])
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_wrong_ndim(name: str, shape: tuple[int, ...]) -> None:
    f = family(name)
    x = _x(*shape)
    with pytest.raises(ValueError, match=r"`x` must have 4 dimensions"):
        f.apply(x, torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`x` must have 4 dimensions"):
        f.apply_all(x)
    for mode in ("random", "all"):
        with pytest.raises(ValueError, match=r"`x` must have 4 dimensions"):
            EquivariantTransform(f, mode=mode)(x)


@pytest.mark.parametrize("value", [[[1.0]], None, 3.0], ids=["list", "none", "float"])
def test_not_a_tensor(value: object) -> None:
    f = Rotation()
    with pytest.raises(TypeError, match=r"`x` must be a torch.Tensor"):
        f.apply(value, torch.zeros(1, dtype=torch.long))
    with pytest.raises(TypeError, match=r"`x` must be a torch.Tensor"):
        f.apply_all(value)
    with pytest.raises(TypeError, match=r"`x` must be a torch.Tensor"):
        EquivariantTransform(f)(value)


@pytest.mark.parametrize("name", ["rotation", "dihedral", "rotation-x-hflip"])
@pytest.mark.parametrize("shape", [(2, 3, 8, 10), (3, 10, 8)], ids=["batched", "unbatched"])
def test_rotation_needs_square_images(name: str, shape: tuple[int, ...]) -> None:
    f = family(name)
    x = _x(*shape)
    labels = torch.zeros(shape[0], dtype=torch.long) if len(shape) == 4 else torch.tensor(0)
    with pytest.raises(ValueError, match=r"square images but `x` is"):
        f.apply(x, labels)
    with pytest.raises(ValueError, match=r"square images but `x` is"):
        f.apply_all(x)
    for mode in ("random", "all"):
        with pytest.raises(ValueError, match=r"square images but `x` is"):
            EquivariantTransform(f, mode=mode)(x)


def test_every_factor_of_a_product_checks_its_input() -> None:
    x = _x(2, 3, 16, 18)
    with pytest.raises(ValueError, match=r"square images but `x` is 16x18"):
        Product([BlurLevels(), Rotation()]).apply(x, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`x` is 6x6"):
        Product([Rotation(), BlurLevels()]).apply_all(_x(1, 3, 6, 6))


@pytest.mark.parametrize("name", ["jigsaw", "jigsaw-klein", "jigsaw-open", "jigsaw-clockwise"])
@pytest.mark.parametrize("size", [(7, 8), (8, 7), (9, 9)], ids=str)
def test_jigsaw_needs_even_sides(name: str, size: tuple[int, int]) -> None:
    f = family(name)
    x = _x(2, 3, *size)
    with pytest.raises(ValueError, match=r"even height and width, but `x` is"):
        f.apply(x, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"even height and width, but `x` is"):
        f.apply_all(x)
    with pytest.raises(ValueError, match=r"even height and width"):
        EquivariantTransform(f)(x)
    with pytest.raises(ValueError, match=r"even height and width"):
        EquivariantTransform(Product([VerticalFlip(), f]), mode="all")(x)


@pytest.mark.parametrize(("kernel_sizes", "side"), [((5, 9, 15), 7), ((5, 9, 15), 3), ((3,), 1), ((5, 7), 3)], ids=str)
def test_blur_needs_images_larger_than_its_radius(kernel_sizes: tuple[int, ...], side: int) -> None:
    f = BlurLevels(kernel_sizes)
    x = _x(1, 3, side, side + 4)
    with pytest.raises(ValueError, match=r"`x` is \d+x\d+.*`kernel_sizes`"):
        f.apply(x, torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`x` is"):
        EquivariantTransform(f)(x)
    f.apply(_x(1, 3, max(kernel_sizes) // 2 + 1, max(kernel_sizes) // 2 + 1), torch.ones(1, dtype=torch.long))


@pytest.mark.parametrize("name", ["blur", "blur-custom", "vflip-x-blur3"])
def test_blur_rejects_uint8(name: str) -> None:
    x = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    f = family(name)
    with pytest.raises(TypeError, match=r"`x` has dtype uint8.*blur"):
        f.apply(x, torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match=r"`x` has dtype uint8"):
        f.apply_all(x)
    with pytest.raises(TypeError, match=r"`x` has dtype uint8"):
        EquivariantTransform(f, balanced=True)(x)


def test_unsupported_dtypes() -> None:
    with pytest.raises(TypeError, match=r"`x` has dtype int32"):
        Inversion().apply(torch.zeros(1, 3, 4, 4, dtype=torch.int32), torch.zeros(1, dtype=torch.long))
    with pytest.raises(TypeError, match=r"`x` has dtype complex64"):
        Rotation().apply(torch.zeros(1, 3, 4, 4, dtype=torch.complex64), torch.zeros(1, dtype=torch.long))
    with pytest.raises(TypeError, match=r"float `x`"):
        Inversion(mean=CIFAR_MEAN, std=CIFAR_STD).apply(
            torch.zeros(1, 3, 4, 4, dtype=torch.uint8), torch.zeros(1, dtype=torch.long)
        )


@pytest.mark.parametrize("channels", [1, 4])
def test_channel_count(channels: int) -> None:
    x = _x(2, channels, 8, 8)
    labels = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match=rf"`x` has {channels}"):
        Grayscale().apply(x, labels)
    with pytest.raises(ValueError, match=rf"`x` has {channels}"):
        EquivariantTransform("grayscale", mode="all")(x)
    with pytest.raises(ValueError, match=rf"`x` has {channels} channels but `mean`/`std` have 3"):
        Inversion(mean=CIFAR_MEAN, std=CIFAR_STD).apply(x, labels)
    with pytest.raises(ValueError, match=r"`mean`/`std`"):
        EquivariantTransform({"name": "invert", "mean": CIFAR_MEAN, "std": CIFAR_STD})(x)
    assert torch.equal(Inversion().apply(x, torch.ones(2, dtype=torch.long)), 1 - x)  # pixel space: any channels


# -- labels ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_bad_labels(name: str) -> None:
    f = family(name)
    s = side(f, 8)
    x = _x(3, 3, s, s)
    k = f.num_classes
    with pytest.raises(ValueError, match=r"`labels` must have shape \(3,\)"):
        f.apply(x, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`labels` must have shape \(3,\)"):
        f.apply(x, torch.zeros(3, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`labels` must have shape \(3,\)"):
        f.apply(x, torch.tensor(0))
    with pytest.raises(TypeError, match=r"`labels` must have an integer dtype"):
        f.apply(x, torch.zeros(3))
    with pytest.raises(TypeError, match=r"`labels` must have an integer dtype"):
        f.apply(x, torch.zeros(3, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"`labels` must be a torch.Tensor"):
        f.apply(x, [0, 0, 0])
    with pytest.raises(ValueError, match=rf"`labels` must lie in \[0, {k}\)"):
        f.apply(x, torch.tensor([0, k, 0]))
    with pytest.raises(ValueError, match=rf"`labels` must lie in \[0, {k}\)"):
        f.apply(x, torch.tensor([0, -1, 0]))
    f.apply(x, torch.tensor([0, k - 1, 0], dtype=torch.int32))  # any integer dtype in range is fine


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.bool, torch.float16])
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_one_label_dtype_rule_int64_or_int32(name: str, dtype: torch.dtype) -> None:
    """Every family accepts int64 and int32 labels (the same result) and refuses every other dtype with the fix."""
    f = family(name)
    s = side(f, 8)
    x = _x(3, 3, s, s)
    labels = torch.tensor([0, f.num_classes - 1, 1])
    assert torch.equal(f.apply(x, labels.int()), f.apply(x, labels))
    with pytest.raises(TypeError, match=r"`labels` must have an integer dtype int64 or int32.*use `labels.long\(\)`"):
        f.apply(x, labels.to(dtype))
    with pytest.raises(TypeError, match=r"`labels` must have an integer dtype int64 or int32"):
        f.apply(x[0], labels[1].to(dtype))


def test_labels_on_another_device() -> None:
    x = _x(2, 3, 8, 8)
    try:
        labels = torch.zeros(2, dtype=torch.long, device="meta")
    except (RuntimeError, NotImplementedError):  # pragma: no cover - builds without the meta device
        pytest.skip("this torch build has no meta device")
    with pytest.raises(ValueError, match=r"`labels` is on meta.*`labels.to\(x.device\)`"):
        Rotation().apply(x, labels)
    with pytest.raises(ValueError, match=r"`labels` is on meta"):
        Inversion().apply(x, labels)


def test_unbatched_image_needs_a_single_label() -> None:
    x = _x(3, 8, 8)
    with pytest.raises(ValueError, match=r"`labels` must have shape \(1,\)"):
        Rotation().apply(x, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match=r"`labels` must have an integer dtype"):
        Rotation().apply(x, torch.tensor(1.0))
    assert Rotation().apply(x, torch.tensor(1)).shape == (3, 8, 8)


# -- out= --------------------------------------------------------------------------------------------------------------


def test_bad_out_buffers() -> None:
    x = _x(2, 3, 8, 8)
    labels = torch.zeros(2, dtype=torch.long)
    for bad in (torch.empty(1, 3, 8, 8), torch.empty(2, 3, 8, 8, dtype=torch.float64), torch.empty(2, 3, 8, 9)):
        with pytest.raises(ValueError, match=r"`out` must match the result"):
            Rotation().apply(x, labels, out=bad)
        with pytest.raises(ValueError, match=r"`out` must have shape \(8, 3, 8, 8\)"):
            Rotation().apply_all(x, out=bad)
    with pytest.raises(ValueError, match=r"`out` must not be the input"):
        Inversion().apply(x, labels, out=x)


def _sharing(shape: tuple[int, ...], out_shape: tuple[int, ...], shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` shaped ``shape`` and ``out`` shaped ``out_shape`` in one buffer, ``out`` starting ``shift`` elements
    after ``x`` (before it when negative)."""
    n, m = int(np.prod(shape)), int(np.prod(out_shape))
    base = torch.rand(n + m + abs(shift))
    x_start, out_start = (0, shift) if shift >= 0 else (-shift, 0)
    return base[x_start : x_start + n].view(shape), base[out_start : out_start + m].view(out_shape)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_out_sharing_any_memory_with_x_is_refused(name: str) -> None:
    """Partial overlaps (not only ``out is x``) would change ``x`` while it is read, for ``apply`` and ``apply_all``."""
    f = family(name)
    s = side(f, 8)
    shape = (2, 3, s, s)
    n = int(np.prod(shape))
    labels = torch.tensor([1, f.num_classes - 1])
    k = f.num_classes
    for shift in (1, n // 2, n - 1, -1, -(n // 2)):
        x, out = _sharing(shape, shape, shift)
        before = x.clone()
        with pytest.raises(ValueError, match=r"`out` must not be the input `x` or share any memory with it"):
            f.apply(x, labels, out=out)
        assert torch.equal(x, before)
    for shift in (1, n // 2, n - 1, -1, -(k - 1) * n, -(k * n - 1)):  # the last two: `x` inside `out`
        x, out = _sharing(shape, (k * 2, 3, s, s), shift)
        before = x.clone()
        with pytest.raises(ValueError, match=r"`out` must not be the input `x` or share any memory with it"):
            f.apply_all(x, out=out)
        assert torch.equal(x, before)
    x, out = _sharing(shape, shape, n)  # adjacent, not overlapping: accepted
    assert f.apply(x, labels, out=out) is out
    assert torch.equal(out, f.apply(x, labels))
    x, out = _sharing(shape, (k * 2, 3, s, s), -k * n)
    assert f.apply_all(x, out=out) is out
    with pytest.raises(ValueError, match=r"`out` has elements that share memory"):
        f.apply(x, labels, out=torch.empty(1, 3, s, s).expand(2, 3, s, s))


# -- images without pixels -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 0, 0), (2, 3, 0, 4), (2, 3, 4, 0), (3, 0, 0)], ids=str)
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_images_without_pixels_are_refused_by_every_family(name: str, shape: tuple[int, ...]) -> None:
    f = family(name)
    x = torch.rand(*shape)
    labels = torch.zeros(shape[0], dtype=torch.long) if len(shape) == 4 else torch.tensor(0)
    message = r"`x` has images without pixels \(\d+x\d+, H x W\)"
    with pytest.raises(ValueError, match=message):
        f.apply(x, labels)
    with pytest.raises(ValueError, match=message):
        f.apply_all(x)
    for mode in ("random", "all"):
        with pytest.raises(ValueError, match=message):
            EquivariantTransform(f, mode=mode)(x)


def test_images_without_pixels_are_refused_by_the_periodic_shifts() -> None:
    x = torch.rand(2, 1, 0, 4)
    with pytest.raises(ValueError, match=r"`x` has images without pixels"):
        RandomPeriodicShift()(x)
    with pytest.raises(ValueError, match=r"`x` has images without pixels"):
        periodic_roll(x, torch.zeros(2, 2, dtype=torch.long))


def test_empty_batches_and_channels_still_work() -> None:
    """A batch of no images, or images of no channels, is an empty result of the right shape (not an error)."""
    for x in (torch.rand(0, 3, 8, 8), torch.rand(2, 0, 8, 8)):
        y = Rotation().apply(x, torch.zeros(x.shape[0], dtype=torch.long))
        assert y.shape == x.shape
        assert Rotation().apply_all(x).shape == (4 * x.shape[0], *x.shape[1:])


# -- names, modes and options --------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["rotate", "Rotation", "", ["rotation", "flip"], {"name": "jigsaws"}], ids=str)
def test_unknown_family_name(spec: object) -> None:
    with pytest.raises(ValueError, match=r"unknown family name .*; choose one of \["):
        EquivariantTransform(spec)
    with pytest.raises(ValueError, match=r"unknown family name"):
        build_family(spec)


def test_bad_family_specs() -> None:
    with pytest.raises(TypeError, match=r"`family` must be a name"):
        EquivariantTransform(3)
    with pytest.raises(ValueError, match=r"needs a 'name' key"):
        build_family({"kernel_sizes": [3]})
    with pytest.raises(ValueError, match=r"invalid options for family 'blur'"):
        build_family({"name": "blur", "size": 3})
    with pytest.raises(ValueError, match=r"options"):
        build_family(Rotation(), permutations=[0])
    with pytest.raises(ValueError, match=r"`name` must be a non-empty string"):
        register_family("", Rotation)


@pytest.mark.parametrize("mode", ["every", "ALL", None, "balanced"])
def test_bad_mode(mode: object) -> None:
    with pytest.raises(ValueError, match=r"`mode` must be 'random' or 'all'"):
        EquivariantTransform("rotation", mode=mode)


def test_bad_transform_options() -> None:
    with pytest.raises(ValueError, match=r"`balanced=True` only applies to mode='random'"):
        EquivariantTransform("rotation", mode="all", balanced=True)
    for n in (0, -1, 5):
        with pytest.raises(ValueError, match=r"`num_per_batch` must be between 1 and num_classes=4"):
            EquivariantTransform("rotation", mode="all", num_per_batch=n)
    with pytest.raises(ValueError, match=r"`num_per_batch` only applies to mode='all'"):
        EquivariantTransform("rotation", num_per_batch=2)
    with pytest.raises(TypeError, match=r"`generator` must be a torch.Generator"):
        EquivariantTransform("rotation", generator=0)
    for flag in ("no", 1, None):
        with pytest.raises(TypeError, match=r"`balanced` must be True or False"):
            EquivariantTransform("rotation", balanced=flag)
        with pytest.raises(TypeError, match=r"`distinct_per_rank` must be True or False"):
            EquivariantTransform("rotation", distinct_per_rank=flag)


class _OnlyIdentity(TransformFamily):
    name = "only-identity"
    num_classes = 1

    def _apply(self, x: torch.Tensor, labels: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
        return x.clone() if out is None else out.copy_(x)


def test_one_class_families_are_refused() -> None:
    """One class is the identity alone: the head would have nothing to predict."""
    with pytest.raises(ValueError, match=r"`permutations` gives 1 class"):
        Jigsaw([0])
    for steps in (1, (1, 1)):
        with pytest.raises(ValueError, match=r"`steps` gives 1 class"):
            PeriodicTranslation(steps)
    with pytest.raises(ValueError, match=r"`family` gives 1 class"):
        EquivariantTransform(_OnlyIdentity())
    with pytest.raises(ValueError, match=r"`family` gives 1 class"):
        EquivariantTransform(_OnlyIdentity(), mode="all")
    assert PeriodicTranslation((1, 2)).num_classes == 2 and Jigsaw([0, 23]).num_classes == 2


def test_non_finite_and_non_integer_parameters_are_refused() -> None:
    nan, inf = float("nan"), float("inf")
    for sigmas in ([nan], [inf], [-inf]):
        with pytest.raises(ValueError, match=r"`sigmas` must be 1 positive finite"):
            BlurLevels((3,), sigmas)
    for sizes in ([3.5], [3.0], [True], ["3"]):
        with pytest.raises(ValueError, match=r"`kernel_sizes` must be positive odd integers"):
            BlurLevels(sizes)
    assert BlurLevels([np.int64(3)]).kernel_sizes == (3,)
    for std in ([nan], [inf], [-1.0]):
        with pytest.raises(ValueError, match=r"`std` must be positive finite"):
            Inversion(mean=[0.5], std=std)
    with pytest.raises(ValueError, match=r"`mean` must be finite"):
        Inversion(mean=[nan], std=[0.2])
    with pytest.raises(ValueError, match=r"`std` must be positive finite"):
        Inversion(normalize={"mean": [0.5], "std": [nan]})
    with pytest.raises(ValueError, match=r"`max_val` must be finite"):
        Inversion(max_val=nan)
    for perms in ([0, 1.5], [0.0, 1]):
        with pytest.raises(ValueError, match=r"`permutations` must be integer indices"):
            Jigsaw(perms)
    for steps in (2.0, (2, 2.5), "2", (True, 2)):
        with pytest.raises(ValueError, match=r"`steps` must be a positive int or a pair"):
            PeriodicTranslation(steps)


def test_integer_types_other_than_int_are_accepted() -> None:
    x = torch.rand(2, 1, 4, 6)
    labels = torch.tensor([1, 3])
    for steps in (np.int64(2), (np.int32(2), np.int64(2)), torch.tensor(2)):
        t = PeriodicTranslation(steps)
        assert t.steps == (2, 2) and t.num_classes == 4
        assert torch.equal(t.apply(x, labels), PeriodicTranslation(2).apply(x, labels))
    assert Jigsaw([np.int64(0), np.int64(23)]).num_classes == 2


def test_pixel_space_max_val_does_not_apply_to_uint8() -> None:
    """uint8 is always inverted as 255 - x, so another ``max_val`` would be silently ignored."""
    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    labels = torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"`max_val`=100 does not apply to uint8 images.*255 - x"):
        Inversion(max_val=100).apply(x, labels)
    with pytest.raises(ValueError, match=r"`max_val`=100 does not apply to uint8"):
        EquivariantTransform(Inversion(max_val=100))(x)
    for ok in (Inversion(), Inversion(max_val=255)):
        assert torch.equal(ok.apply(x, labels)[1], 255 - x[1])
    assert torch.equal(Inversion(max_val=100).apply(x.float(), labels)[1], 100 - x[1].float())


def test_bad_family_options() -> None:
    with pytest.raises(ValueError, match=r"`permutations` must start with 0"):
        Jigsaw([1, 0])
    with pytest.raises(ValueError, match=r"`permutations` must be distinct indices in \[0, 24\)"):
        Jigsaw([0, 0])
    with pytest.raises(ValueError, match=r"`permutations` must be distinct indices in \[0, 24\)"):
        Jigsaw([0, 24])
    with pytest.raises(ValueError, match=r"`permutations`"):
        Jigsaw([])
    with pytest.raises(ValueError, match=r"`tile_order` must be 'row-major' or 'clockwise'"):
        Jigsaw(tile_order="cw")
    with pytest.raises(ValueError, match=r"`kernel_sizes` must be positive odd integers"):
        BlurLevels((4,))
    with pytest.raises(ValueError, match=r"`kernel_sizes`"):
        BlurLevels(())
    with pytest.raises(ValueError, match=r"`sigmas` must be 1 positive"):
        BlurLevels((3,), (0.0,))
    with pytest.raises(ValueError, match=r"`sigmas` must be 2 positive"):
        BlurLevels((3, 5), (1.0,))
    with pytest.raises(ValueError, match=r"`mean` and `std` must be given together"):
        Inversion(mean=CIFAR_MEAN)
    with pytest.raises(ValueError, match=r"`std` must be positive"):
        Inversion(mean=[0.5], std=[0.0])
    with pytest.raises(ValueError, match=r"`mean` and `std` must have the same length"):
        Inversion(mean=[0.5, 0.5], std=[0.2])
    with pytest.raises(ValueError, match=r"`normalize` must be a dict with keys 'mean' and 'std'"):
        Inversion(normalize={"mean": [0.5]})
    with pytest.raises(ValueError, match=r"either `normalize` or `mean`/`std`"):
        Inversion(mean=[0.5], std=[0.2], normalize={"mean": [0.5], "std": [0.2]})
    with pytest.raises(ValueError, match=r"`families` needs at least two"):
        Product([Rotation()])
    with pytest.raises(TypeError, match=r"`families` must be a TransformFamily"):
        Product([Rotation(), "vflip"])
