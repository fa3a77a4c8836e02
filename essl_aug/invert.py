"""Colour inversion, in pixel space or in normalised space."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from essl_aug import functional as F
from essl_aug._validation import EXACT_DTYPES
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

    Example:
        >>> Inversion().apply(torch.tensor([[[[0.25]]]]), torch.tensor([1]))
        tensor([[[[0.7500]]]])
    """

    name = "invert"
    num_classes = 2
    dtypes = EXACT_DTYPES

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
        if std is not None and any(float(s) <= 0 for s in std):
            raise ValueError(f"`std` must be positive, got {list(std)}.")
        if std is not None and len(mean) != len(std):
            raise ValueError(f"`mean` and `std` must have the same length, got {len(mean)} and {len(std)}.")
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)
        self.max_val = float(max_val)
        self.naive_normalized = naive_normalized
        self._offsets: dict[tuple[torch.device, torch.dtype, int], Tensor] = {}
        if self.mean is None or naive_normalized:
            self.offset = torch.tensor([self.max_val], dtype=torch.float64)
        else:
            m = torch.tensor(self.mean, dtype=torch.float64)
            s = torch.tensor(self.std, dtype=torch.float64)
            self.offset = (1 - 2 * m) / s

    def check(self, x: Tensor) -> None:
        super().check(x)
        if x.dtype == torch.uint8 and self.mean is not None:
            raise TypeError("normalised-space inversion needs a float `x`; uint8 images are pixel values.")
        if self.offset.numel() > 1 and x.shape[-3] != self.offset.numel():
            raise ValueError(
                f"`x` has {x.shape[-3]} channels but `mean`/`std` have {self.offset.numel()} entries; "
                "give one mean and std per channel."
            )

    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        key = (x.device, x.dtype, x.shape[-3])
        table = self._offsets.get(key)
        if table is None:  # cached per device: a host-to-device copy on every call would synchronise
            table = self._offsets[key] = F.inversion_table(self.offset, x.shape[-3], x.dtype, x.device)
        return F.blend(x, labels, table, out)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_offsets"] = {}
        return state

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        return a ^ b

    def inverse(self, a: Tensor) -> Tensor:
        return a.clone()
