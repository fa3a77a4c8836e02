"""Colour inversion, in pixel space or in normalised space."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from essl_aug import functional as EF
from essl_aug._validation import EXACT_DTYPES, check_finite
from essl_aug.family import GroupFamily


class Inversion(GroupFamily):
    """Colour inversion, 2 classes (a group: inverting twice is the identity).

    Label 0: identity. Label 1: the inverted image,
      - pixel space (default): ``max_val - x`` for float (``max_val=1``), ``255 - x`` for uint8, as
        ``torchvision.transforms.v2.functional.invert``;
      - normalised space (``mean`` and ``std`` given, or ``normalize={"mean": ..., "std": ...}`` as in
        lightly): ``(1 - 2 * mean) / std - x``, the normalised image of ``1 - pixels``.
      - ``naive_normalized=True`` reproduces the co-author code's ``1 - x`` on normalised tensors (not a
        true inversion; for comparisons only).

    Label 0 returns ``x`` bit for bit (NaN payloads and signed zeros included). uint8 images are always inverted as
    ``255 - x``, so on uint8 ``max_val`` must be left at its default (or be 255).

    Example:
        >>> Inversion().apply(torch.tensor([[[[0.25]]]]), torch.tensor([1]))
        tensor([[[[0.7500]]]])
    """

    name = "invert"
    num_classes = 2
    dtypes = EXACT_DTYPES
    pointwise = True

    def __init__(
        self,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        *,
        normalize: Mapping[str, Sequence[float]] | None = None,
        max_val: float = 1.0,
        naive_normalized: bool = False,
    ) -> None:
        if normalize is not None:
            unknown = set(normalize) - {"mean", "std"}
            if unknown or "mean" not in normalize or "std" not in normalize:
                raise ValueError(
                    f"`normalize` must be a dict with keys 'mean' and 'std', got keys {sorted(normalize)}."
                )
            if mean is not None or std is not None:
                raise ValueError("give either `normalize` or `mean`/`std`, not both.")
            mean, std = normalize["mean"], normalize["std"]
        if (mean is None) != (std is None):
            raise ValueError("`mean` and `std` must be given together (normalised-space inversion).")
        self.mean = None if mean is None else check_finite(mean, "mean")
        self.std = None if std is None else check_finite(std, "std", positive=True)
        if self.mean is not None and self.std is not None and len(self.mean) != len(self.std):
            raise ValueError(f"`mean` and `std` must have the same length, got {len(self.mean)} and {len(self.std)}.")
        (self.max_val,) = check_finite([max_val], "max_val")
        self.naive_normalized = naive_normalized
        if self.mean is None or self.std is None or naive_normalized:
            self.offset = torch.tensor([self.max_val], dtype=torch.float64)
        else:
            m = torch.tensor(self.mean, dtype=torch.float64)
            s = torch.tensor(self.std, dtype=torch.float64)
            self.offset = (1 - 2 * m) / s
        self._offsets = tuple(self.offset.tolist())  # the float64 values, as the functional op takes them

    def check(self, x: Tensor) -> None:
        super().check(x)
        if x.dtype == torch.uint8 and self.mean is not None:
            raise TypeError("normalised-space inversion needs a float `x`; uint8 images are pixel values.")
        if x.dtype == torch.uint8 and self.max_val not in (1.0, 255.0):
            raise ValueError(
                f"`max_val`={self.max_val:g} does not apply to uint8 images, which are inverted as 255 - x; leave "
                "`max_val` at its default (or 255) for uint8, or convert `x` to float first (e.g. `x.float()`)."
            )
        if self.offset.numel() > 1 and x.shape[-3] != self.offset.numel():
            raise ValueError(
                f"`x` has {x.shape[-3]} channels but `mean`/`std` have {self.offset.numel()} entries; "
                "give one mean and std per channel."
            )

    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        return EF.invert(x, labels, self._offsets, out)

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        return EF.invert(x, None, self._offsets, out)

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        return a ^ b

    def inverse(self, a: Tensor) -> Tensor:
        return a.clone()
