"""The data-loader path: one image in, ``(image', label)`` out, for plain torchvision pipelines.

The primary path runs :class:`~essl_aug.EquivariantTransform` on the whole batch on its device, next to
the loss. When the transformation must happen in the data loader instead (CPU workers, a torchvision
dataset with a ``transform=`` argument), :class:`PerSample` runs the same batched family on a single image.

It is a plain callable, not a ``torchvision.transforms.v2.Transform`` subclass: a v2 transform draws one set
of parameters per call and returns the same structure it received, so it cannot return the label of the
element it applied. Place it after ``v2.Compose([...])`` (or last inside it): its output is a tuple
``(image', label)`` that the default collate turns into ``(images (B, C, H, W), labels (B,))``.
"""

from __future__ import annotations

from torch import Tensor

from essl_aug.family import TransformFamily
from essl_aug.registry import FamilySpec
from essl_aug.transform import EquivariantTransform

__all__ = ["PerSample"]


class PerSample:
    """Apply one random element of a family to one image and return it with its label.

    Labels come from torch's global RNG in the calling process. A ``DataLoader`` seeds that RNG in each
    worker with ``base_seed + worker_id`` (``base_seed`` drawn from the loader's ``generator``), so labels
    differ between workers and a seeded loader (``DataLoader(..., generator=torch.Generator().manual_seed(0))``
    or ``torch.manual_seed`` before iterating) reproduces them exactly, whatever ``num_workers``.
    An explicit ``torch.Generator`` is deliberately not accepted: each worker would get an identical copy
    and draw the same label sequence.

    Args:
        family: a family spec (``"rotation"``, ``["rotation", "vflip"]``, ``{"name": "invert", ...}``) or a
            :class:`~essl_aug.TransformFamily`, or an :class:`~essl_aug.EquivariantTransform` in ``"random"``
            mode without a generator.

    Shape:
        - Input: (C, H, W) tensor (e.g. after ``v2.ToImage()`` / ``v2.ToDtype``), any dtype the family supports.
        - Output: ``(image', label)``: a (C, H, W) tensor of the input's dtype and a Python ``int`` in
          ``[0, num_classes)``.

    Example:
        >>> rotate = PerSample("rotation")
        >>> img = torch.rand(3, 8, 8)
        >>> out, label = rotate(img)
        >>> torch.equal(out, torch.rot90(img, label, dims=(-2, -1)))
        True
    """

    def __init__(self, family: FamilySpec | EquivariantTransform) -> None:
        if isinstance(family, EquivariantTransform):
            if family.mode != "random":
                raise ValueError(
                    "PerSample needs one element per image: give an EquivariantTransform with mode='random' "
                    f"(got mode={family.mode!r}), or a family spec."
                )
            if family.generator is not None:
                raise ValueError(
                    "PerSample draws labels from torch's global RNG, which DataLoader seeds per worker; an explicit "
                    "generator would be copied into every worker unchanged. Build the transform without `generator`."
                )
            if family.balanced:
                raise ValueError("`balanced=True` needs a batch; it has no meaning for one image at a time.")
            transform = family
        else:
            if not isinstance(family, (str, list, tuple, dict, TransformFamily)):
                raise TypeError(
                    "`family` must be a family name, a list of names, a {'name': ...} mapping, a TransformFamily "
                    f"or an EquivariantTransform, got {type(family).__name__}."
                )
            transform = EquivariantTransform(family, mode="random")
        self.transform = transform

    @property
    def num_classes(self) -> int:
        """Number of labels, ``[0, num_classes)``."""
        return self.transform.num_classes

    def __call__(self, img: Tensor) -> tuple[Tensor, int]:
        if not isinstance(img, Tensor):
            raise TypeError(
                f"`img` must be a (C, H, W) tensor, got {type(img).__name__}; convert PIL images first with "
                "`v2.ToImage()` (and `v2.ToDtype(torch.float32, scale=True)`) before PerSample."
            )
        if img.ndim != 3:
            raise ValueError(
                f"`img` must be one image (C, H, W), got shape {tuple(img.shape)}; for batches use "
                "`essl_aug.EquivariantTransform` on the batch's device instead."
            )
        out, label = self.transform(img.as_subclass(Tensor))
        return out, int(label)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transform.family!r})"
