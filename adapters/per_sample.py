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

import os
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import get_worker_info

from essl_aug._random import rank_seed
from essl_aug.registry import FamilySpec
from essl_aug.transform import EquivariantTransform
from essl_aug.transforms import Family

__all__ = ["PerSample"]


class PerSample:
    """Apply one random element of a family to one image and return it with its label.

    Where the labels come from, and what reproduces them run to run:

    - ``seed=s`` (recommended): a private generator. In the main process (``num_workers=0``) it is seeded with
      ``s``, so the labels are the same in every run, whatever else draws random numbers. In a ``DataLoader``
      worker it is seeded with ``s`` mixed with the worker's seed (``get_worker_info().seed``: ``base_seed +
      worker_id``, ``base_seed`` drawn per epoch from the loader's ``generator``), so workers and epochs draw
      different labels and a seeded loader (``DataLoader(..., generator=torch.Generator().manual_seed(0))``)
      reproduces them.
    - ``seed=None``: torch's global RNG of the calling process, like torchvision's random transforms: reproduced by
      ``torch.manual_seed`` before iterating, and in workers by a seeded loader (DataLoader seeds each worker's
      global RNG with its worker seed). With ``num_workers=0`` a seeded loader alone does **not** reproduce them.

    An explicit ``torch.Generator`` is deliberately not accepted: each worker would get an identical copy
    and draw the same label sequence.

    Args:
        family: a family spec (``"rotation"``, ``["rotation", "vflip"]``, ``{"name": "invert", ...}``) or a
            :class:`~essl_aug.Family`, or an :class:`~essl_aug.EquivariantTransform` in ``"random"``
            mode without a generator.
        seed: an integer >= 0 for reproducible labels (see above), or ``None`` for torch's global RNG.

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
        >>> a, b = PerSample("rotation", seed=0), PerSample("rotation", seed=0)  # same seed, same labels
        >>> [a(img)[1] for _ in range(8)] == [b(img)[1] for _ in range(8)]
        True
    """

    def __init__(self, family: FamilySpec | EquivariantTransform, seed: int | None = None) -> None:
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
            if not isinstance(family, (str, list, tuple, dict, Family)):
                raise TypeError(
                    "`family` must be a family name, a list of names, a {'name': ...} mapping, a Family "
                    f"or an EquivariantTransform, got {type(family).__name__}."
                )
            transform = EquivariantTransform(family, mode="random")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
            raise ValueError(f"`seed` must be an integer in [0, 2**63) or None (torch's global RNG), got {seed!r}.")
        self.transform = transform
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._stream: tuple[int, int | None] | None = None  # (process id, worker seed) the generator was seeded for

    def _labels_generator(self) -> torch.Generator | None:
        """The private generator, (re)seeded on first use in each process: ``seed``, or mixed with a worker's seed."""
        if self.seed is None:
            return None
        info = get_worker_info()
        stream = (os.getpid(), None if info is None else int(info.seed))
        if self._generator is None or self._stream != stream:
            self._generator = torch.Generator()
            self._generator.manual_seed(self.seed if info is None else rank_seed(self.seed, int(info.seed)))
            self._stream = stream
        return self._generator

    def __getstate__(self) -> dict[str, Any]:
        """Workers start from the settings, not from the main process's generator (reseeded on first use)."""
        return {**self.__dict__, "_generator": None, "_stream": None}

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
        img = img.as_subclass(Tensor)
        generator = self._labels_generator()
        if generator is None:
            out, label = self.transform(img)
            return out, int(label)
        label = torch.randint(self.num_classes, (1,), generator=generator)  # on the CPU: no device sync for int()
        return self.transform.family.apply(img.unsqueeze(0), label.to(img.device))[0], int(label)

    def __repr__(self) -> str:
        seed = "" if self.seed is None else f", seed={self.seed}"
        return f"{type(self).__name__}({self.transform.family!r}{seed})"
