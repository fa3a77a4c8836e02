"""The catalogue of every transformation the tests run: constructor settings, input constraints and oracles.

Each :class:`Entry` builds one transformation with representative settings and says what images it accepts
(``channels``, ``square``, sides a multiple of ``multiple``, at least ``min_side``; its dtypes are the object's own
``dtypes``). Its oracle is written independently of the library, from torch and torchvision ops one image at a time:

- a family's ``element(img, label)`` (``torch.rot90``, ``flip``, ``roll``, a jigsaw from the tiles of
  ``itertools.permutations``, ``torchvision.transforms.v2.functional``'s ``gaussian_blur``, ``invert``,
  ``rgb_to_grayscale``; a product composes its factors' elements in mixed radix);
- a continuous transformation's ``reference(t, img, params, i)``, the op of image ``i`` with its drawn parameters
  (torchvision's ``resized_crop``, ``rotate``, ``gaussian_blur``, ``solarize``, ``adjust_*`` in the drawn order;
  ``torch.roll``), with the tolerance its module documents (``tol`` for float32, ``uint8_tol`` / ``uint8_fraction``
  for uint8).

The constructor arguments are repeated in the oracles (kernel sizes, steps, permutations, means): an oracle never reads
a value the library computed.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from hypothesis import HealthCheck, settings
from kornia.enhance import invert as kornia_invert
from torch import Tensor
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from essl_aug import transforms as T

#: Hypothesis settings: no deadline (shared CPUs), few examples (the suite stays fast on 2 cores).
FAST = settings(deadline=None, max_examples=15, suppress_health_check=[HealthCheck.too_slow])
#: For properties whose examples run several convolutions or torchvision calls per image.
FEW = settings(deadline=None, max_examples=8, suppress_health_check=[HealthCheck.too_slow])

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)

#: The 24 tile permutations, lexicographic: the jigsaw labels.
ALL_PERMUTATIONS = list(itertools.permutations(range(4)))
#: Subgroups of S4 as indices into :data:`ALL_PERMUTATIONS`, identity first.
KLEIN_FOUR = [ALL_PERMUTATIONS.index(p) for p in [(0, 1, 2, 3), (1, 0, 3, 2), (2, 3, 0, 1), (3, 2, 1, 0)]]
CYCLIC_FOUR = [ALL_PERMUTATIONS.index(p) for p in [(0, 1, 2, 3), (1, 3, 0, 2), (3, 2, 1, 0), (2, 0, 3, 1)]]
#: Not closed: (1, 0, 2, 3) then (0, 2, 1, 3) is a 3-cycle outside the set.
OPEN_SUBSET = [ALL_PERMUTATIONS.index(p) for p in [(0, 1, 2, 3), (1, 0, 2, 3), (0, 2, 1, 3), (0, 1, 3, 2)]]

Element = Callable[[Tensor, int], Tensor]
Reference = Callable[[Any, Tensor, Any, int], Tensor]

_BITS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


@dataclass(frozen=True)
class Entry:
    """One catalogue transformation: how to build it, what it accepts, its oracle and tolerances."""

    id: str
    make: Callable[[], T.Transformation[Any]]
    #: Channel counts it accepts (the first is the default of the tests).
    channels: tuple[int, ...] = (3, 1, 2)
    square: bool = False
    #: H and W must be multiples of this.
    multiple: int = 1
    min_side: int = 1
    #: A family's element oracle, one image and one label.
    element: Element | None = None
    #: A continuous transformation's oracle: ``reference(t, img, params, i)``.
    reference: Reference | None = None
    #: Only moves pixels: exact for every dtype, the same bits in the fast forms.
    pixel_move: bool = False
    #: float32 tolerance against the oracle (0: bit for bit).
    tol: float = 0.0
    #: uint8: the largest difference and the fraction of values that may differ.
    uint8_tol: int = 0
    uint8_fraction: float = 0.0
    #: uint8 against the float path at 255 scale: how far apart (a rounding; torchvision's jitter truncates after each
    #: of its ops).
    uint8_steps: float = 1.0
    #: Is ``compose`` / ``inverse`` defined (families only).
    group: bool = False
    #: Adjusts drawn parameters before a float64 gradcheck (e.g. a colour jitter computes its hue in float32).
    grad_params: Callable[[Any], Any] | None = None

    @property
    def is_family(self) -> bool:
        return self.element is not None

    def __repr__(self) -> str:
        return self.id


_INSTANCES: dict[str, T.Transformation[Any]] = {}


def build(entry: Entry) -> Any:
    """One shared instance per entry (their caches make repeated calls cheap)."""
    if entry.id not in _INSTANCES:
        _INSTANCES[entry.id] = entry.make()
    return _INSTANCES[entry.id]


def side(entry: Entry, at_least: int) -> int:
    """The smallest side ``>= at_least`` that ``entry`` accepts."""
    s = max(at_least, entry.min_side)
    return s + (-s) % entry.multiple


def shape_for(entry: Entry, batch: int, height: int, width: int | None = None, channels: int | None = None) -> tuple:
    """An accepted (B, C, H, W) near the requested size (square when the entry needs it)."""
    h = side(entry, height)
    w = h if entry.square or width is None else side(entry, width)
    return (batch, channels or entry.channels[0], h, w)


def images(shape: Sequence[int], seed: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Generic images: floats uniform in [0, 1) (all pixels distinct with probability one), uint8 in [0, 255],
    other integers in [-50, 50), bools at random."""
    gen = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, tuple(shape), generator=gen, dtype=torch.uint8)
    if dtype == torch.bool:
        return torch.rand(tuple(shape), generator=gen) < 0.5
    if not dtype.is_floating_point:
        return torch.randint(-50, 50, tuple(shape), generator=gen).to(dtype)
    return torch.rand(tuple(shape), generator=gen, dtype=torch.float64).to(dtype)


def bits(t: Tensor) -> Tensor:
    """``t`` as integers of the same width (every bit, NaN payloads and signed zeros included)."""
    t = t.detach().contiguous()
    return t if not t.dtype.is_floating_point else t.view(_BITS[t.element_size()])


def largest(t: Tensor) -> float:
    """The largest absolute value of ``t`` (0 when empty)."""
    return float(t.abs().max()) if t.numel() else 0.0


def accepts(t: T.Transformation[Any], shape: Sequence[int], dtype: torch.dtype = torch.float32) -> bool:
    try:
        t.check(torch.empty(tuple(shape), dtype=dtype))
    except (TypeError, ValueError):
        return False
    return True


# -- family elements ----------------------------------------------------------------------------------------------


def identity_or(op: Callable[[Tensor], Tensor]) -> Element:
    return lambda img, label: op(img) if label else img


def rot90(img: Tensor, label: int) -> Tensor:
    return torch.rot90(img, label, dims=(-2, -1))


def d4(img: Tensor, label: int) -> Tensor:
    turned = torch.rot90(img, label // 2, dims=(-2, -1))
    return turned.flip(-2) if label % 2 else turned


def jigsaw_tiles(img: Tensor, perm: Sequence[int], tile_order: str) -> Tensor:
    """Reassemble the 2x2 tiles of ``img``: output cell ``i`` holds input tile ``perm[i]``, cells numbered row-major
    (TL, TR, BL, BR) or clockwise (TL, TR, BR, BL)."""
    h, w = img.shape[-2] // 2, img.shape[-1] // 2
    tl, tr, bl, br = img[..., :h, :w], img[..., :h, w:], img[..., h:, :w], img[..., h:, w:]
    tiles = [tl, tr, bl, br] if tile_order == "row-major" else [tl, tr, br, bl]
    c = [tiles[p] for p in perm]
    grid = [[c[0], c[1]], [c[2], c[3]]] if tile_order == "row-major" else [[c[0], c[1]], [c[3], c[2]]]
    return torch.cat([torch.cat(row, dim=-1) for row in grid], dim=-2)


def jigsaw(indices: Sequence[int] | None = None, tile_order: str = "row-major") -> Element:
    chosen = list(range(24)) if indices is None else list(indices)
    return lambda img, label: jigsaw_tiles(img, ALL_PERMUTATIONS[chosen[label]], tile_order)


def translation(steps: int | tuple[int, int]) -> Element:
    sh, sw = (steps, steps) if isinstance(steps, int) else steps

    def roll(img: Tensor, label: int) -> Tensor:
        h, w = img.shape[-2:]
        a, b = divmod(label, sw)  # rows outer, columns inner: the reference trans_and_get_labels order
        return torch.roll(img, (a * h // sh, b * w // sw), dims=(-2, -1))

    return roll


def blur_levels(kernel_sizes: Sequence[int] = (5, 9, 15), sigmas: Sequence[float] | None = None) -> Element:
    def blur(img: Tensor, label: int) -> Tensor:
        if label == 0:
            return img
        k = kernel_sizes[label - 1]
        if sigmas is None:  # torchvision's own default sigma for the size
            return TF.gaussian_blur(img, [k, k])
        return TF.gaussian_blur(img, [k, k], [sigmas[label - 1]] * 2)

    return blur


def normalised_invert(mean: Sequence[float], std: Sequence[float]) -> Element:
    """kornia's ``invert`` with the maximum ``(1 - 2 mean) / std`` (the normalised image of ``1 - pixels``)."""

    def invert(img: Tensor, label: int) -> Tensor:
        m = torch.tensor(mean, dtype=torch.float64).view(-1, 1, 1)
        s = torch.tensor(std, dtype=torch.float64).view(-1, 1, 1)
        return kornia_invert(img, ((1 - 2 * m) / s).to(img.dtype)) if label else img

    return invert


def gray(img: Tensor) -> Tensor:
    return TF.rgb_to_grayscale(img, num_output_channels=3) if img.shape[-3] == 3 else img


def product(*factors: tuple[Element, int]) -> Element:
    """Mixed radix: the first factor is the most significant digit and is applied first."""

    def element(img: Tensor, label: int) -> Tensor:
        digits = []
        for _, k in reversed(factors):
            label, d = divmod(label, k)
            digits.append(d)
        for (op, _), d in zip(factors, reversed(digits), strict=True):
            img = op(img, d)
        return img

    return element


HFLIP: Element = identity_or(lambda img: img.flip(-1))
VFLIP: Element = identity_or(lambda img: img.flip(-2))
INVERT: Element = identity_or(TF.invert)
GRAY: Element = identity_or(gray)


# -- continuous references ----------------------------------------------------------------------------------------


def tv_resized_crop(image: Tensor, box: Sequence[int], size: Sequence[int], antialias: bool) -> Tensor:
    """torchvision's ``resized_crop``, around two faults of the PyTorch CPU kernels it calls.

    - Antialiased, to an output width of 1 (and a height other than 1), PyTorch's CPU kernel disagrees with PIL and with
      itself on the transposed image: there the reference is torchvision on the transposed image.
    - torchvision resizes uint8 on the CPU with a fixed-point kernel (and fails on a 1x1 output); the library resizes
      in float32 and rounds once, as torchvision does on the GPU: the reference is that float path, before its
      rounding (float32, which :func:`assert_matches` compares with a nearest integer, either way at a tie).
    """
    top, left, h, w = box
    if image.dtype == torch.uint8:
        return tv_resized_crop(image.float(), box, size, antialias)
    if antialias and size[1] == 1 and size[0] != 1:
        turned = TF.resized_crop(image.transpose(-1, -2), left, top, w, h, [1, size[0]], antialias=True)
        return turned.transpose(-1, -2)
    return TF.resized_crop(image, top, left, h, w, list(size), antialias=antialias)


def crop_reference(t: T.RandomResizedCrop, img: Tensor, params: Any, i: int) -> Tensor:
    height, width = img.shape[-2:]
    box = [int(v) for v in params.box[i]] if bool(params.applied[i]) else [0, 0, height, width]
    return tv_resized_crop(img, box, t.size or (height, width), t.antialias)


TV_JITTER = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
JITTER_IDENTITY = (1.0, 1.0, 1.0, 0.0)


def jitter_reference(t: T.ColorJitter, img: Tensor, params: Any, i: int) -> Tensor:
    """torchvision's ``adjust_*`` in the image's drawn order, skipping identity factors as ``ColorJitter`` does."""
    if not bool(params.applied[i]):
        return img
    for k in params.order[i].tolist():
        factor = float(params.factors[i, k])
        if factor != JITTER_IDENTITY[k]:
            img = TV_JITTER[k](img, factor)
    return img


def blur_reference(kernel_size: int | None) -> Reference:
    def reference(t: T.RandomGaussianBlur, img: Tensor, params: Any, i: int) -> Tensor:
        if not bool(params.applied[i]):
            return img
        h, w = img.shape[-2:]
        k = kernel_size if kernel_size is not None else max(3, 2 * (min(h, w) // 20) + 1)  # SimCLR's 10 %, odd
        s = float(params.sigma[i])
        return TF.gaussian_blur(img, [k, k], [s, s])

    return reference


def solarize_reference(threshold: float) -> Reference:
    def reference(t: T.RandomSolarize, img: Tensor, params: Any, i: int) -> Tensor:
        if not bool(params.applied[i]):
            return img
        return TF.solarize(img, threshold * 255 if img.dtype == torch.uint8 else threshold)

    return reference


def rotation_reference(fill: float) -> Reference:
    def reference(t: T.RandomRotation, img: Tensor, params: Any, i: int) -> Tensor:
        if not bool(params.applied[i]):
            return img
        value = fill * 255 if img.dtype == torch.uint8 else fill
        return TF.rotate(img, float(params.angle[i]), InterpolationMode.BILINEAR, fill=value)

    return reference


def shift_reference(t: T.RandomPeriodicShift, img: Tensor, params: Any, i: int) -> Tensor:
    return torch.roll(img, tuple(int(s) for s in params.shifts[i]), dims=(-2, -1))


def no_hue(params: Any) -> Any:
    """Jitter parameters without hue (computed in float32 as torchvision does: no float64 gradcheck there)."""
    factors = params.factors.clone()
    factors[:, 3] = 0.0
    return dataclasses.replace(params, factors=factors)


# -- the catalogue ------------------------------------------------------------------------------------------------

_PIXEL = {"pixel_move": True, "group": True}

ENTRIES: list[Entry] = [
    # pixel moves
    Entry("hflip", T.RandomHorizontalFlip, element=HFLIP, **_PIXEL),
    Entry("vflip", T.RandomVerticalFlip, element=VFLIP, **_PIXEL),
    Entry("rotation90", T.RandomRotation90, square=True, element=rot90, **_PIXEL),
    Entry("d4", T.RandomD4, square=True, element=d4, **_PIXEL),
    Entry("jigsaw", T.RandomJigsaw, multiple=2, element=jigsaw(), **_PIXEL),
    Entry(
        "jigsaw-clockwise",
        lambda: T.RandomJigsaw(tile_order="clockwise"),
        multiple=2,
        element=jigsaw(None, "clockwise"),
        **_PIXEL,
    ),
    Entry("jigsaw-klein", lambda: T.RandomJigsaw(KLEIN_FOUR), multiple=2, element=jigsaw(KLEIN_FOUR), **_PIXEL),
    Entry(
        "jigsaw-c4-clockwise",
        lambda: T.RandomJigsaw(CYCLIC_FOUR, tile_order="clockwise"),
        multiple=2,
        element=jigsaw(CYCLIC_FOUR, "clockwise"),
        **_PIXEL,
    ),
    Entry("jigsaw-open", lambda: T.RandomJigsaw(OPEN_SUBSET), multiple=2, element=jigsaw(OPEN_SUBSET), pixel_move=True),
    Entry("translation", T.RandomPeriodicTranslation, multiple=2, element=translation(2), **_PIXEL),
    Entry("translation-4", lambda: T.RandomPeriodicTranslation(4), multiple=4, element=translation(4), **_PIXEL),
    Entry(
        "translation-2x4",
        lambda: T.RandomPeriodicTranslation((2, 4)),
        multiple=4,
        element=translation((2, 4)),
        **_PIXEL,
    ),
    Entry(
        "translation-3x4",
        lambda: T.RandomPeriodicTranslation((3, 4)),
        multiple=12,
        element=translation((3, 4)),
        **_PIXEL,
    ),
    Entry(
        "rotation90-x-vflip",
        lambda: T.Product([T.RandomRotation90(), T.RandomVerticalFlip()]),
        square=True,
        element=product((rot90, 4), (VFLIP, 2)),
        **_PIXEL,
    ),
    Entry(
        "rotation90-x-hflip",
        lambda: T.Product([T.RandomRotation90(), T.RandomHorizontalFlip()]),
        square=True,
        element=product((rot90, 4), (HFLIP, 2)),
        **_PIXEL,
    ),
    Entry(
        "hflip-x-rotation90-x-vflip",
        lambda: T.Product([T.RandomHorizontalFlip(), T.RandomRotation90(), T.RandomVerticalFlip()]),
        square=True,
        element=product((HFLIP, 2), (rot90, 4), (VFLIP, 2)),
        **_PIXEL,
    ),
    Entry(
        "d4-x-translation",
        lambda: T.Product([T.RandomD4(), T.RandomPeriodicTranslation()]),
        square=True,
        multiple=2,
        element=product((d4, 8), (translation(2), 4)),
        **_PIXEL,
    ),
    Entry(
        "rotation90-x-translation-2x4",  # a turn maps W/4 shifts to H/4 ones: not closed, not a group
        lambda: T.Product([T.RandomRotation90(), T.RandomPeriodicTranslation((2, 4))]),
        square=True,
        multiple=4,
        element=product((rot90, 4), (translation((2, 4)), 8)),
        pixel_move=True,
    ),
    # values
    Entry(
        "blur",
        T.RandomBlurLevels,
        min_side=8,
        element=blur_levels(),
        tol=1e-6,
    ),
    Entry(
        "blur-custom",
        lambda: T.RandomBlurLevels(kernel_sizes=(3, 7), sigmas=(0.8, 2.0)),
        min_side=4,
        element=blur_levels((3, 7), (0.8, 2.0)),
        tol=1e-6,
    ),
    Entry("invert", T.RandomInvert, element=INVERT, group=True),
    Entry(
        "invert-normalised",
        lambda: T.RandomInvert(mean=CIFAR_MEAN, std=CIFAR_STD),
        channels=(3,),
        element=normalised_invert(CIFAR_MEAN, CIFAR_STD),
        group=True,
    ),
    Entry(
        "invert-normalize-dict",
        lambda: T.RandomInvert(normalize={"mean": [0.5], "std": [0.25]}),
        channels=(1,),
        element=normalised_invert([0.5], [0.25]),
        group=True,
    ),
    Entry("grayscale", T.RandomGrayscale, channels=(3, 1), element=GRAY, uint8_tol=0),
    Entry(
        "vflip-x-invert",
        lambda: T.Product([T.RandomVerticalFlip(), T.RandomInvert()]),
        element=product((VFLIP, 2), (INVERT, 2)),
        group=True,
    ),
    Entry(
        "translation-x-invert",
        lambda: T.Product([T.RandomPeriodicTranslation((1, 2)), T.RandomInvert()]),
        multiple=2,
        element=product((translation((1, 2)), 2), (INVERT, 2)),
        group=True,
    ),
    Entry(
        "vflip-x-blur3",
        lambda: T.Product([T.RandomVerticalFlip(), T.RandomBlurLevels(kernel_sizes=(3,))]),
        min_side=2,
        element=product((VFLIP, 2), (blur_levels((3,)), 2)),
        tol=1e-6,
    ),
    Entry(
        "grayscale-x-vflip",
        lambda: T.Product([T.RandomGrayscale(), T.RandomVerticalFlip()]),
        channels=(3, 1),
        element=product((GRAY, 2), (VFLIP, 2)),
    ),
    # continuous
    Entry(
        "solarize",
        lambda: T.RandomSolarize(threshold=0.5, p=0.5),
        reference=solarize_reference(0.5),
    ),
    Entry(
        "color-jitter",
        lambda: T.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        channels=(3, 1),
        reference=jitter_reference,
        tol=1e-6,
        uint8_tol=1,
        uint8_fraction=0.01,
        uint8_steps=6.0,
        grad_params=no_hue,
    ),
    Entry(
        "color-jitter-pairs",
        lambda: T.ColorJitter(brightness=(0.5, 1.5), contrast=0.0, saturation=(0.0, 2.0), hue=(-0.5, 0.5), p=1.0),
        channels=(3, 1),
        reference=jitter_reference,
        tol=1e-6,
        uint8_tol=1,
        uint8_fraction=0.01,
        uint8_steps=6.0,
        grad_params=no_hue,
    ),
    Entry(
        "resized-crop",
        lambda: T.RandomResizedCrop(6),
        reference=crop_reference,
        tol=2e-6,
        uint8_tol=1,
        uint8_fraction=0.01,
    ),
    Entry(
        "resized-crop-rectangle",
        lambda: T.RandomResizedCrop((5, 7), scale=(0.3, 1.0), ratio=(0.5, 2.0), antialias=False),
        reference=crop_reference,
        tol=2e-6,
        uint8_tol=1,
        uint8_fraction=0.01,
    ),
    Entry(
        "zoom",
        lambda: T.RandomResizedCrop(None, scale=(0.25, 0.75)),
        reference=crop_reference,
        tol=2e-6,
        uint8_tol=1,
        uint8_fraction=0.01,
    ),
    Entry(
        "gaussian-blur",
        lambda: T.RandomGaussianBlur(p=0.5),
        min_side=2,
        reference=blur_reference(None),
        tol=2e-6,
        uint8_tol=1,
        uint8_fraction=0.01,
    ),
    Entry(
        "gaussian-blur-5",
        lambda: T.RandomGaussianBlur(sigma=(0.5, 3.0), kernel_size=5, p=0.7),
        min_side=3,
        reference=blur_reference(5),
        tol=2e-6,
        uint8_tol=1,
        uint8_fraction=0.01,
    ),
    Entry(
        "rotation",
        lambda: T.RandomRotation(180.0, p=0.5, fill=0.25),
        reference=rotation_reference(0.25),
        tol=1e-6,
        uint8_tol=1,
        uint8_fraction=0.01,
    ),
    Entry(
        "rotation-30",
        lambda: T.RandomRotation((-30.0, 30.0), p=1.0, fill=1.0),
        reference=rotation_reference(1.0),
        tol=1e-6,
        uint8_tol=1,
        uint8_fraction=0.01,
    ),
    Entry("periodic-shift", lambda: T.RandomPeriodicShift(p=0.5), reference=shift_reference),
]

BY_ID = {e.id: e for e in ENTRIES}
FAMILIES = [e for e in ENTRIES if e.is_family]
GROUPS = [e for e in FAMILIES if e.group]
PIXEL_MOVES = [e for e in ENTRIES if e.pixel_move]
CONTINUOUS = [e for e in ENTRIES if not e.is_family]


def entry(name: str) -> Entry:
    return BY_ID[name]


def exported_transformations() -> list[type]:
    """Every concrete transformation class that ``essl_aug.transforms`` exports."""
    import inspect

    import essl_aug.transforms as module

    classes = [getattr(module, name) for name in module.__all__]
    return [c for c in classes if inspect.isclass(c) and issubclass(c, T.Transformation) and not inspect.isabstract(c)]


# -- helpers shared by the test modules ---------------------------------------------------------------------------


def oracle(entry: Entry, t: Any, x: Tensor, params: Any) -> Tensor:
    """The oracle of ``entry`` on the batch ``x`` with ``params``, image by image."""
    out = []
    for i in range(x.shape[0]):
        if entry.element is not None:
            out.append(entry.element(x[i], int(params.labels[i])))
        else:
            assert entry.reference is not None
            out.append(entry.reference(t, x[i], params, i))
    return torch.stack(out) if out else x.new_empty(t.output_shape(x.shape))


def assert_matches(actual: Tensor, expected: Tensor, entry: Entry) -> None:
    """``actual`` equals ``expected`` within ``entry``'s documented tolerance (bits when it is 0). A uint8 ``actual``
    against a float ``expected`` (a float path before its rounding) must be a nearest integer of it (a tie either
    way)."""
    assert actual.shape == expected.shape
    if actual.dtype == torch.uint8 and expected.is_floating_point():
        assert largest(actual.float() - expected) <= 0.5 + 1e-3
        return
    assert actual.dtype == expected.dtype
    if actual.dtype == torch.uint8:
        diff = (actual.int() - expected.int()).abs()
        assert largest(diff) <= entry.uint8_tol
        if entry.uint8_tol:  # on at most that fraction of the values (one value of a small image)
            assert int((diff > 0).sum()) <= max(1.0, entry.uint8_fraction * diff.numel())
    elif entry.tol == 0 or not actual.dtype.is_floating_point:
        assert torch.equal(actual, expected)
    else:
        torch.testing.assert_close(actual, expected, rtol=0, atol=entry.tol)


def unapplied_params(t: Any, shape: Sequence[int], seed: int) -> Any:
    """Parameters for ``shape`` with ``applied`` False on the even rows and True on the odd ones (families: label 0
    on the even rows, a non-identity label on the odd ones)."""
    batch = shape[0]
    mask = torch.arange(batch) % 2 == 1
    params = t.sample(shape, generator=torch.Generator().manual_seed(seed))
    if isinstance(t, T.Family):
        moved = 1 + params.labels % (t.num_classes - 1)
        return T.LabelParams.of(torch.where(mask, moved, torch.zeros_like(moved)))
    return dataclasses.replace(params, applied=mask)


#: The machine epsilon of each float dtype: the unit of the low-precision tolerances.
EPS = {torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7, torch.float32: 2.0**-23, torch.float64: 2.0**-52}
