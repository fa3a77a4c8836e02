"""EquiMod: predict each augmented view's embedding from the un-augmented image's and the view's absolute parameters.

EquiMod (Devillers and Lefort, *EquiMod: An Equivariance Module to Improve Visual Instance Discrimination*, ICLR
2023; code ``ADevillers/EquiMod``, branches ``SimCLR+EquiMod`` and ``BYOL+EquiMod``: ``src/model.py``,
``src/loss.py``, ``src/transforms.py``, ``src/dataset.py``, ``src/main.py``) adds to an SSL loss, per step:

- a third backbone pass on the un-augmented images ``x0`` (``AugDatasetWrapper`` returns ``img_0``, the image
  without augmentation, beside the two views), so that ``h = backbone(cat(x0, x1, x2))``;
- an equivariant projector on all 3B features at once (``proj_head_eq``: Linear(D, 2048) BN ReLU, Linear(2048,
  2048) BN ReLU, Linear(2048, 128) BN(affine=False), no biases), giving ``y0``, ``y1``, ``y2``;
- each view's absolute parameters (:func:`equimod_parameters`, standardised by fixed per-column statistics)
  embedded by ``proj_head_t`` (Linear(P, 128, no bias) BN);
- a predictor ``predictor_eq`` (Linear(256, 128, no bias) BN(affine=False)) of ``y_t`` from ``concat(y0,
  embed(p_t))`` for both views: ``yt_hat`` (2B rows) against ``yt = cat(y1, y2)``;
- the loss ``NTXentLoss(cat(yt, yt_hat), temperature_y=0.2)``: for each of the 4B rows the cross-entropy of its
  positive (``yt`` row ``i`` <-> ``yt_hat`` row ``i``) against the other 4B - 2 rows, nothing detached; the total of
  the upstream step is ``loss_z + lmbd * loss_eq`` with ``lmbd`` 1: this objective is ``weight * loss_eq``.

The parameter vector (:func:`equimod_parameters`; ``src/transforms.py``): per view, in this order, 15 numbers
(EquiMod's CIFAR-10 layout), 17 with ``blur`` (ImageNet), 18 with ``blur`` and ``solarize`` (both datasets of the
BYOL branch):

======  =========================================================================================================
column  value (EquiMod's, and where this library's views give it)
======  =========================================================================================================
0-3     the crop box ``i, j, h, w`` (top, left, height, width) in pixels of the un-augmented image:
        ``resized_crop.box``
4       the flip, 0 or 1: ``hflip.applied``
5       the jitter flag, 0 or 1: ``color_jitter.applied``
6-9     the op order ``fn_idx``, a permutation of 0..3 (0 brightness, 1 contrast, 2 saturation, 3 hue, in the
        order applied; 0, 1, 2, 3 without jitter): ``color_jitter.order``
10-13   the brightness, contrast, saturation and hue factors (1, 1, 1, 0 without jitter): ``color_jitter.factors``
14      the grayscale flag: ``grayscale.applied``
15-16   (``blur``) the blur flag and its sigma (0 without blur): ``gaussian_blur.applied`` and ``.sigma``
17      (``solarize``) the solarization flag: ``solarize.applied``
======  =========================================================================================================

An augmentation the views do not have gets the value EquiMod writes when that op is not applied (no flip, no
jitter with the identity factors and order, no grayscale, no blur, no solarization); the crop is required. The
vector is standardised as ``(p - mean) / std`` with EquiMod's constants (``src/main.py`` of the branch:
``"cifar10"``, ``"imagenet"``), or with the statistics of the step's own views (``"views"``:
:func:`equimod_statistics`, estimated from many draws of the pipelines at the images' size, as EquiMod's constants
are estimates for its pipelines); a column that never varies gets ``std`` 1 (it is then 0 after centring).

Deliberate differences from the upstream code:

- the two views' features come from the training step (its backbone passes), and the un-augmented images are
  encoded by a separate pass here: the backbone's batch norm sees the B originals apart from the 2B views, where
  EquiMod runs one pass on all 3B (``src/main.py``, ``train_repr``: ``x = torch.cat([img_0, img_1, img_2])``); the
  equivariant projector does see all 3B rows at once, as upstream;
- the un-augmented images are taken at their own size, converted to float and normalised as the views are (the
  normalisation of ``augmentations``' first pipeline); EquiMod's ImageNet ``img_0`` is ``Resize(256)`` and
  ``CenterCrop(224)`` (``src/dataset.py``; CIFAR's is the image itself, as here);
- the diagonal of the similarity matrix is masked with ``-inf`` where ``NTXentLoss`` subtracts ``1e8``: the same
  softmax (both weigh it exactly 0 in float32); a single process's batch, as upstream on one GPU (its multi-GPU run
  gathers the rows of every GPU, ``gather_pairs``, and scales the loss by the world size).

Logs: ``infonce`` (the unweighted loss) and ``eqgain`` (upstream's ``train_eqgain``: the mean over the 2B rows of
``cos(yt, yt_hat) - cos(yt, y0)``, how much better the prediction is than "nothing changed").

Example:
    >>> import torch
    >>> from essl_aug.views import simclr
    >>> from essl_aug.objectives.base import StepInputs
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    >>> x = torch.rand(4, 3, 16, 16)
    >>> views, params = simclr(16, normalize=None)(x)
    >>> equimod = EquiMod(8, hidden=(32,), dim=16, param_dim=16)
    >>> out = equimod(StepInputs(backbone=net, images=x, features=(net(views[0]), net(views[1])), params=tuple(params)))
    >>> sorted(out.logs), sorted(equimod.requires)
    (['eqgain', 'infonce'], ['backbone', 'features', 'images', 'params'])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug._validation import check_flag
from essl_aug.head import pooled_features
from essl_aug.objectives.augself import Augmentations, head_dtype, two_features
from essl_aug.objectives.base import Objective, ObjectiveOutput, StepInputs, weighted
from essl_aug.objectives.predictor import info_nce
from essl_aug.transforms import (
    BlurParams,
    ColorJitterParams,
    CropParams,
    Params,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomSolarize,
)
from essl_aug.transforms.color_jitter import ColorJitter
from essl_aug.views.pipeline import TwoViews, ViewPipeline

__all__ = ["COLUMNS", "STATISTICS", "EquiMod", "equimod_parameters", "equimod_statistics"]

#: The names of the columns of :func:`equimod_parameters` (all 18; the first 15, 17 or 18 are used).
COLUMNS = (
    "crop_top",
    "crop_left",
    "crop_height",
    "crop_width",
    "flip",
    "jitter",
    "order_0",
    "order_1",
    "order_2",
    "order_3",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "grayscale",
    "blur",
    "sigma",
    "solarize",
)

# fmt: off
_CIFAR_15 = (
    (4.3122, 4.3216, 23.369, 23.374, 0.49998, 0.80087, 1.2025, 1.4007, 1.5964, 1.8004, 0.99993, 1.0002, 0.99986,
     2.2321e-07, 0.19965),
    (3.9740, 3.9851, 4.9544, 4.9539, 0.5000, 0.3993, 1.1651, 1.0210, 1.0200, 1.1669, 0.2066, 0.2068, 0.2066,
     0.0517, 0.3997),
)
_IMAGENET_15 = (
    (68.162, 99.199, 269.33, 274.57, 0.49905, 0.80054, 1.1998, 1.3994, 1.6014, 1.7995, 1.0001, 1.0000, 1.0005,
     1.5640e-04, 0.20018),
    (77.370, 98.681, 136.86, 143.49, 0.50000, 0.39959, 1.1661, 1.0201, 1.0201, 1.1657, 0.41347, 0.41323, 0.41349,
     0.10333, 0.40013),
)
# fmt: on
_BYOL_TAIL = ((0.27256, 0.52507, 0.050149), (0.30381, 0.65251, 0.064719))

#: EquiMod's standardisation constants ``(mean, std)`` by ``(dataset, width)``: ``src/main.py`` (``train_repr``,
#: ``p_mean`` / ``p_std``) of ``SimCLR+EquiMod`` (15 and 17 columns) and ``BYOL+EquiMod`` (18 columns).
STATISTICS: dict[tuple[str, int], tuple[tuple[float, ...], tuple[float, ...]]] = {
    ("cifar10", 15): _CIFAR_15,
    ("imagenet", 17): ((*_IMAGENET_15[0], 0.50030, 0.52507), (*_IMAGENET_15[1], 0.50000, 0.65251)),
    ("cifar10", 18): ((*_CIFAR_15[0], *_BYOL_TAIL[0]), (*_CIFAR_15[1], *_BYOL_TAIL[1])),
    ("imagenet", 18): ((*_IMAGENET_15[0], *_BYOL_TAIL[0]), (*_IMAGENET_15[1], *_BYOL_TAIL[1])),
}

Statistics = Literal["cifar10", "imagenet", "views"] | tuple[Sequence[float], Sequence[float]]


def _width(blur: bool, solarize: bool) -> int:
    return 15 + 2 * int(blur) + int(solarize)


def _get(params: Mapping[str, Params], name: str, kind: type[Params] | None = None) -> Params | None:
    p = params.get(name)
    if p is not None and kind is not None and not isinstance(p, kind):
        raise TypeError(f"`params[{name!r}]` must be {kind.__name__} (as the views' pipeline returns it), got {p!r}.")
    return p


def equimod_parameters(params: Mapping[str, Params], *, blur: bool = False, solarize: bool = False) -> Tensor:
    """One view's absolute parameters in EquiMod's layout, (B, 15 | 17 | 18) float32, not standardised.

    The columns are :data:`COLUMNS` (the module docstring's table): the crop box in pixels, the flip, the jitter
    flag, its op order and factors, the grayscale flag, then with ``blur`` the blur flag and sigma, with ``solarize``
    the solarization flag. An augmentation the views lack gets EquiMod's value for "not applied"; the crop
    (``resized_crop``) is required.

    Args:
        params: one view's ``{name: Params}``, as an :mod:`essl_aug.views` pipeline returns them.
        blur: add the blur columns (EquiMod's ImageNet layout, and BYOL's).
        solarize: add the solarization column (EquiMod's BYOL layout).

    Example:
        >>> import torch
        >>> from essl_aug.transforms import CropParams
        >>> crop = CropParams(applied=torch.tensor([True]), box=torch.tensor([[1.0, 2.0, 20.0, 24.0]]),
        ...                   input_size=torch.tensor([[32.0, 32.0]]))
        >>> equimod_parameters({"resized_crop": crop}).tolist()[0]
        [1.0, 2.0, 20.0, 24.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"`params` must be one view's {{name: Params}} as a views pipeline returns it, got {params!r}.")
    check_flag(blur, "blur")
    check_flag(solarize, "solarize")
    crop = _get(params, RandomResizedCrop.name, CropParams)
    if crop is None:
        raise ValueError(
            f"`params` has no {RandomResizedCrop.name!r} entry ({sorted(params)}): EquiMod's parameters start with the "
            "crop box; add essl_aug.RandomResizedCrop to the views' pipeline."
        )
    assert isinstance(crop, CropParams)
    box = crop.box.float()
    b, device = box.shape[0], box.device

    def flag(name: str) -> Tensor:
        p = _get(params, name)
        return torch.zeros(b, 1, device=device) if p is None else p.applied.to(device, torch.float32).view(b, 1)

    jitter = _get(params, ColorJitter.name, ColorJitterParams)
    if jitter is None:
        jitter_cols = torch.tensor([[0.0, 0.0, 1.0, 2.0, 3.0, 1.0, 1.0, 1.0, 0.0]], device=device).expand(b, 9)
    else:
        assert isinstance(jitter, ColorJitterParams)
        jitter_cols = torch.cat(
            [
                jitter.applied.to(device, torch.float32).view(b, 1),
                jitter.order.to(device, torch.float32),
                jitter.factors.to(device, torch.float32),
            ],
            dim=1,
        )
    columns = [box, flag(RandomHorizontalFlip.name), jitter_cols, flag(RandomGrayscale.name)]
    if blur:
        blurred = _get(params, RandomGaussianBlur.name, BlurParams)
        if blurred is None:
            columns.append(torch.zeros(b, 2, device=device))
        else:
            assert isinstance(blurred, BlurParams)
            sigma = torch.where(blurred.applied, blurred.sigma.float(), 0.0).to(device).view(b, 1)
            columns += [flag(RandomGaussianBlur.name), sigma]
    if solarize:
        columns.append(flag(RandomSolarize.name))
    return torch.cat(columns, dim=1)


def equimod_statistics(
    augmentations: TwoViews | ViewPipeline,
    image_size: int | Sequence[int],
    *,
    blur: bool = False,
    solarize: bool = False,
    samples: int = 65536,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """The per-column ``(mean, std)`` of :func:`equimod_parameters` over ``samples`` draws of each view's pipeline
    for images of ``image_size`` (both views pooled, as EquiMod standardises ``cat(param_1, param_2)``); a column
    that never varies gets ``std`` 1. Drawn on the CPU from a generator seeded with ``seed`` (the same numbers on
    every call), float32.

    Args:
        augmentations: the views' recipe (a :class:`~essl_aug.views.TwoViews`) or one pipeline (both views).
        image_size: the un-augmented images' size, ``H`` or ``(H, W)`` (the crop box is in their pixels).
        blur, solarize: the layout (:func:`equimod_parameters`).
        samples: draws per view.
        seed: seeds the draws.

    Example:
        >>> from essl_aug.views import simclr
        >>> mean, std = equimod_statistics(simclr(32, scale=(0.2, 1.0), jitter_strength=0.5), 32, samples=4096)
        >>> mean.shape, round(float(mean[4]), 1), float(std[13]) > 0
        (torch.Size([15]), 0.5, True)
    """
    pipes = augmentations.pipelines if isinstance(augmentations, TwoViews) else (augmentations,) * 2
    if not all(isinstance(p, ViewPipeline) for p in pipes):
        raise TypeError(
            f"`augmentations` must be the views' TwoViews (e.g. essl_aug.views.simclr(32)) or a ViewPipeline, got "
            f"{type(augmentations).__name__}."
        )
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size):
        raise ValueError(f"`image_size` must be the images' size, an int or (H, W) of ints >= 1; got {image_size!r}.")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ValueError(f"`samples` must be an int >= 2 (draws per view), got {samples!r}.")
    gen = torch.Generator().manual_seed(seed)
    drawn = [
        equimod_parameters(pipe.sample((samples, 3, size[0], size[1]), "cpu", gen), blur=blur, solarize=solarize)
        for pipe in pipes
    ]
    p = torch.cat(drawn).double()
    mean, std = p.mean(dim=0), p.std(dim=0)
    std = torch.where(std > 1e-6 * mean.abs().clamp_min(1.0), std, 1.0)
    return mean.float(), std.float()


def _bn_mlp(widths: Sequence[int], affine_last: bool) -> nn.Sequential:
    """EquiMod's MLPs: ``Linear(no bias) BN ReLU`` per hidden width, then ``Linear(no bias) BN(affine_last)``."""
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1], bias=False))
        last = i == len(widths) - 2
        layers.append(nn.BatchNorm1d(widths[i + 1], affine=affine_last or not last))
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _positive_int(value: object, name: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be {what} (an int >= 1), got {value!r}.")
    return value


class EquiMod(Objective):
    """EquiMod's equivariance module as an objective (the module docstring: what it follows and where it differs).

    Requires ``backbone`` (it encodes ``images``, the third pass), ``images`` (the un-augmented images of the
    views, uint8 or float in [0, 1]), ``features`` (the two views' backbone features) and ``params``.

    Args:
        in_features: D, the backbone's feature width.
        weight: EquiMod's ``lmbd`` (1.0), a finite number >= 0. 0: the loss is ``-0.0`` (``ssl + loss`` is ``ssl``
            bit for bit), the features are detached and the third pass runs without gradients, the logs still
            computed.
        blur, solarize: the parameter layout (:func:`equimod_parameters`): 15 columns (CIFAR-10), 17 with ``blur``
            (ImageNet), 18 with both (the BYOL branch).
        statistics: the standardisation: ``"cifar10"`` or ``"imagenet"`` (EquiMod's constants,
            :data:`STATISTICS`, for the layout), ``"views"`` (:func:`equimod_statistics` of ``augmentations`` at
            ``image_size``), or ``(mean, std)``, one number per column each.
        image_size: the un-augmented images' size, for ``statistics="views"``.
        augmentations: the views' recipe (:class:`~essl_aug.views.TwoViews`), for ``"views"`` and for the
            normalisation of the un-augmented images (that of its first pipeline; None: not normalised).
        dim: the equivariant space's width (EquiMod's ``y_dim``, 128).
        hidden: the equivariant projector's hidden widths (``proj_head_eq_layers`` ``2048-2048-``).
        param_dim: the parameter embedding's width (``proj_head_t_layers`` ``128``).
        temperature: the InfoNCE temperature (``temperature_y``, 0.2), > 0.

    Example:
        >>> EquiMod(512).param_dim, EquiMod(512, blur=True, statistics="imagenet").statistics[0].shape
        (128, torch.Size([17]))
    """

    requires = frozenset({"backbone", "images", "features", "params"})
    #: The standardisation's mean and standard deviation (buffers), one number per column.
    param_mean: Tensor
    param_std: Tensor

    def __init__(
        self,
        in_features: int,
        weight: float = 1.0,
        *,
        blur: bool = False,
        solarize: bool = False,
        statistics: Statistics = "cifar10",
        image_size: int | Sequence[int] | None = None,
        augmentations: Augmentations | None = None,
        dim: int = 128,
        hidden: Sequence[int] = (2048, 2048),
        param_dim: int = 128,
        temperature: float = 0.2,
    ) -> None:
        super().__init__(weight)
        self.in_features = _positive_int(in_features, "in_features", "the backbone's feature width")
        self.blur, self.solarize = check_flag(blur, "blur"), check_flag(solarize, "solarize")
        self.dim = _positive_int(dim, "dim", "the equivariant space's width (EquiMod: 128)")
        self.param_dim = _positive_int(param_dim, "param_dim", "the parameter embedding's width (EquiMod: 128)")
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise TypeError(f"`hidden` must be a sequence of widths, e.g. (2048, 2048), got {hidden!r}.")
        widths = [_positive_int(w, "hidden", "a sequence of hidden widths") for w in hidden]
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"`temperature` must be a finite number > 0 (EquiMod: 0.2), got {temperature!r}.")
        self.temperature = float(temperature)
        views = augmentations if isinstance(augmentations, (TwoViews, ViewPipeline)) else None
        width = _width(self.blur, self.solarize)
        mean, std = self._statistics(statistics, width, views, image_size)
        self.register_buffer("param_mean", mean)
        self.register_buffer("param_std", std)
        first = views.pipelines[0] if isinstance(views, TwoViews) else views
        #: The views' normalisation, ``(mean, std)`` or None, applied to the un-augmented images.
        self.normalize = None if first is None else first.normalize
        self._plain: dict[torch.dtype, ViewPipeline] = {}
        self.projector = _bn_mlp([self.in_features, *widths, self.dim], affine_last=False)
        self.embed = _bn_mlp([width, self.param_dim], affine_last=True)
        self.predictor = _bn_mlp([self.dim + self.param_dim, self.dim], affine_last=False)

    @staticmethod
    def _statistics(
        statistics: object, width: int, views: TwoViews | ViewPipeline | None, image_size: object
    ) -> tuple[Tensor, Tensor]:
        if isinstance(statistics, str):
            if statistics == "views":
                if views is None or image_size is None:
                    raise ValueError(
                        "statistics='views' estimates the standardisation from the views' pipelines: give "
                        "`augmentations` (the views' TwoViews) and `image_size` (the un-augmented images' size)."
                    )
                return equimod_statistics(views, image_size, blur=width > 15, solarize=width == 18)  # type: ignore[arg-type]
            key = (statistics, width)
            if key not in STATISTICS:
                known = sorted(f"{name} ({w} columns)" for name, w in STATISTICS)
                raise ValueError(
                    f"`statistics` {statistics!r} has no constants for {width} columns; EquiMod's are {known}; use "
                    "'views' (estimated from the views) or (mean, std)."
                )
            mean, std = STATISTICS[key]
            return torch.tensor(mean), torch.tensor(std)
        if isinstance(statistics, Sequence) and len(statistics) == 2:
            try:
                mean_t, std_t = (torch.as_tensor(s, dtype=torch.float32).flatten() for s in statistics)
            except (TypeError, ValueError, RuntimeError):
                mean_t = std_t = torch.empty(0)
            if mean_t.numel() == std_t.numel() == width and bool((std_t > 0).all()) and bool(mean_t.isfinite().all()):
                return mean_t.clone(), std_t.clone()
        raise ValueError(
            f"`statistics` must be 'cifar10', 'imagenet', 'views' or (mean, std) with {width} numbers each (std > 0), "
            f"got {statistics!r}."
        )

    @property
    def statistics(self) -> tuple[Tensor, Tensor]:
        """The standardisation ``(mean, std)``, one number per column of :func:`equimod_parameters`."""
        return self.param_mean, self.param_std

    def encode_parameters(self, params: Mapping[str, Params]) -> Tensor:
        """One view's standardised parameters (B, P): :func:`equimod_parameters` minus ``mean``, over ``std``."""
        p = equimod_parameters(params, blur=self.blur, solarize=self.solarize).to(self.param_mean.device)
        return (p - self.param_mean) / self.param_std

    def originals(self, images: Tensor) -> Tensor:
        """The un-augmented images as the backbone takes them: uint8 scaled to float32 in [0, 1] (a float batch
        keeps its dtype), normalised as the views are (:attr:`normalize`); a new tensor."""
        dtype = images.dtype if images.is_floating_point() else torch.float32
        if dtype not in self._plain:
            self._plain[dtype] = ViewPipeline([], normalize=self.normalize, dtype=dtype)
        return self._plain[dtype].apply(images, {})

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        assert inputs.features is not None and inputs.params is not None and inputs.images is not None
        assert inputs.backbone is not None
        f1, f2 = two_features(inputs.features, self.in_features, "in_features", head_dtype(self))
        b = f1.shape[0]
        images = inputs.images
        if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[0] != b:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(
                f"EquiMod: `images` must be the B={b} un-augmented images the views were made from, (B, C, H, W), "
                f"got {shape}."
            )
        params = inputs.params
        if isinstance(params, Mapping) or len(params) != 2 or not all(isinstance(p, Mapping) for p in params):
            raise ValueError("EquiMod needs `params`, a pair (p1, p2) of {name: Params} as a TwoViews returns them.")
        with torch.no_grad():
            p = torch.cat([self.encode_parameters(params[0]), self.encode_parameters(params[1])]).to(f1.device)
        if p.shape[0] != 2 * b:
            raise ValueError(f"EquiMod: the views' params are for {p.shape[0] // 2} images, the features for {b}.")
        backbone: Callable[[Tensor], Any] = inputs.backbone
        x0 = self.originals(images)
        if self.weight == 0:  # nothing flows back to the backbone (its gradients stay the SSL loss's, bit for bit)
            f1, f2 = f1.detach(), f2.detach()
            with torch.no_grad():
                f0 = backbone(x0)
        else:
            f0 = backbone(x0)
        f0 = pooled_features(f0, self.in_features, "in_features").to(f1.dtype)
        y = self.projector(torch.cat([f0, f1, f2]))
        y0, yt = torch.cat([y[:b], y[:b]]), y[b:]
        yt_hat = self.predictor(torch.cat([y0, self.embed(p.to(y.dtype))], dim=1))
        loss = info_nce(yt_hat, yt, self.temperature)
        with torch.no_grad():
            gain = F.cosine_similarity(yt.float(), yt_hat.float(), dim=1) - F.cosine_similarity(
                yt.float(), y0.float(), dim=1
            )
        return ObjectiveOutput(weighted(self.weight, loss), {"infonce": loss.detach(), "eqgain": gain.mean()})

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, weight={self.weight}, columns={self.param_mean.numel()}, dim={self.dim}, "
            f"param_dim={self.param_dim}, temperature={self.temperature}"
        )
