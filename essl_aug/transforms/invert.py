"""Random colour inversion, in pixel space or in normalised space (a group of 2: inverting twice is the identity).

Label convention: 0 is the identity (bit for bit, NaN payloads and signed zeros included); 1 is the inverted image:

- pixel space (default): ``max_val - x`` for float (``max_val=1``), ``255 - x`` for uint8, as
  ``torchvision.transforms.v2.functional.invert``;
- normalised space (``mean`` and ``std`` given, or ``normalize={"mean": ..., "std": ...}`` as in lightly):
  ``(1 - 2 * mean) / std - x``, the normalised image of ``1 - pixels``;
- ``naive_normalized=True`` reproduces the co-author code's ``1 - x`` on normalised tensors (not a true inversion;
  for comparisons only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from essl_aug import functional as EF
from essl_aug._validation import check_finite, check_flag
from essl_aug.transforms.base import Involution


class RandomInvert(Involution):
    """Invert each image's colours with probability ``p`` (torchvision's ``RandomInvert``), 2 classes.

    Args:
        mean, std: per-channel normalisation of the images (normalised-space inversion), or None for pixel space.
        normalize: lightly's ``{"mean": [...], "std": [...]}`` dict instead of ``mean`` and ``std``.
        max_val: the float pixel maximum of pixel space (uint8 is always ``255 - x``).
        naive_normalized: ``1 - x`` whatever the normalisation (the co-author code's).
        p: None (default) or 0.5: both labels equally likely; another probability of inversion.

    Example:
        >>> RandomInvert().apply(torch.tensor([[[[0.25]]]]), torch.tensor([1]))
        tensor([[[[0.7500]]]])
    """

    name = "invert"
    pointwise = True

    def __init__(
        self,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        *,
        normalize: Mapping[str, Sequence[float]] | None = None,
        max_val: float = 1.0,
        naive_normalized: bool = False,
        p: float | None = None,
    ) -> None:
        super().__init__(p)
        if normalize is not None:
            if not isinstance(normalize, Mapping) or set(normalize) != {"mean", "std"}:
                raise ValueError(f"`normalize` must be a dict with keys 'mean' and 'std', got {normalize!r}.")
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
        self.naive_normalized = check_flag(naive_normalized, "naive_normalized")
        if self.mean is None or self.std is None or naive_normalized:
            self.offsets: tuple[float, ...] = (self.max_val,)
        else:
            m = torch.tensor(self.mean, dtype=torch.float64)
            s = torch.tensor(self.std, dtype=torch.float64)
            self.offsets = tuple(((1 - 2 * m) / s).tolist())

    def check(self, x: Tensor, name: str = "x") -> None:
        super().check(x, name)
        if x.dtype == torch.uint8 and self.mean is not None and not self.naive_normalized:
            raise TypeError(f"normalised-space inversion needs a float `{name}`; uint8 images are pixel values.")
        if x.dtype == torch.uint8 and self.max_val not in (1.0, 255.0):
            raise ValueError(
                f"`max_val`={self.max_val:g} does not apply to uint8 images, which are inverted as 255 - x; leave "
                f"`max_val` at its default (or 255) for uint8, or convert `{name}` to float first (`{name}.float()`)."
            )
        if len(self.offsets) > 1 and x.shape[-3] != len(self.offsets):
            raise ValueError(
                f"`{name}` has {x.shape[-3]} channels but `mean`/`std` have {len(self.offsets)} entries; "
                "give one mean and std per channel."
            )

    def _op(self, x: Tensor, labels: Tensor | None) -> Tensor:
        return EF.invert(x, labels, self.offsets)
