"""`EquivariantTransform`: the entry point that turns a batch into (views, labels)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn

from essl_aug._random import balanced_labels, distinct_labels, rank_seed, uniform_labels
from essl_aug._validation import check_flag, check_generator, check_images, check_num_classes, integer
from essl_aug.registry import FamilySpec, build_family
from essl_aug.transforms.base import Family

__all__ = ["EquivariantTransform", "Mode", "rank_seed"]

Mode = Literal["random", "all"]


class EquivariantTransform(nn.Module):
    """Transform a batch by elements of a discrete family and return the views with their labels.

    Args:
        family: a :class:`~essl_aug.transforms.base.Family`, a name (:func:`~essl_aug.family_names`: ``"rotation"``,
            ``"vflip"``, ``"jigsaw"``, ...), a list of names for a product, or a mapping ``{"name": ..., **options}``.
        mode: ``"random"``: one element per image, B outputs. ``"all"``: every element for every image,
            K*B outputs in the reference block layout (``labels == arange(K).repeat_interleave(B)``).
        balanced: in ``"random"`` mode, give every class exactly ``B // K`` or ``B // K + 1`` images (the
            ``B mod K`` spare slots go to a random subset of the classes, drawn anew per call).
        generator: optional ``torch.Generator`` for the labels (on any device; labels end on the input's).
        num_per_batch: in ``"all"`` mode, use only this many distinct elements, drawn afresh per call
            (e.g. 8 of the 24 jigsaw permutations): ``num_per_batch * B`` outputs.
        distinct_per_rank: without a ``generator``, under ``torch.distributed`` with several ranks, each call
            takes one number from the global CPU generator (the same on ranks seeded alike) and draws its labels
            from a private generator on the input's device seeded with that number mixed with the rank. Ranks
            seeded alike draw different labels, and ``torch.manual_seed(s)`` restarts every rank's stream, as it
            does without ``torch.distributed``; the global CPU generator advances by one draw per call. ``False``
            uses the global RNG on every rank.

    Shape:
        - Input: (B, C, H, W) or (C, H, W).
        - Output: views (B, C, H, W) (``"random"``) or (K*B, C, H, W) (``"all"``), same dtype, device and
          memory format as the input; labels (B,) or (K*B,), ``torch.long`` on the input's device.
          An unbatched input gives (C, H, W) and a 0-d label in ``"random"`` mode.

    Example:
        >>> t = EquivariantTransform("rotation", mode="all")
        >>> views, labels = t(torch.rand(2, 3, 8, 8))
        >>> views.shape, labels.tolist()
        (torch.Size([8, 3, 8, 8]), [0, 0, 1, 1, 2, 2, 3, 3])
    """

    def __init__(
        self,
        family: FamilySpec,
        mode: Mode = "random",
        balanced: bool = False,
        generator: torch.Generator | None = None,
        num_per_batch: int | None = None,
        distinct_per_rank: bool = True,
    ) -> None:
        super().__init__()
        self.family: Family = build_family(family)
        check_num_classes(self.family.num_classes, "family", "choose a family with at least one transformation")
        if mode not in ("random", "all"):
            raise ValueError(f"`mode` must be 'random' or 'all', got {mode!r}.")
        balanced = check_flag(balanced, "balanced")
        distinct_per_rank = check_flag(distinct_per_rank, "distinct_per_rank")
        if balanced and mode != "random":
            raise ValueError("`balanced=True` only applies to mode='random' ('all' is balanced by construction).")
        if num_per_batch is not None:
            if mode != "all":
                raise ValueError("`num_per_batch` only applies to mode='all'.")
            count = integer(num_per_batch)
            if count is None or not 1 <= count <= self.family.num_classes:
                raise ValueError(
                    f"`num_per_batch` must be an integer between 1 and num_classes={self.family.num_classes}, got "
                    f"{num_per_batch!r}."
                )
        check_generator(generator)
        self.mode = mode
        self.balanced = balanced
        self.generator = generator
        self.num_per_batch = None if num_per_batch is None else integer(num_per_batch)
        self.distinct_per_rank = distinct_per_rank
        self._rank_generators: dict[torch.device, torch.Generator] = {}

    @property
    def num_classes(self) -> int:
        """Number of classes the prediction head must output."""
        return self.family.num_classes

    def _generator_for(self, device: torch.device, generator: torch.Generator | None = None) -> torch.Generator | None:
        if generator is not None:
            return generator
        if self.generator is not None:
            return self.generator
        if not (self.distinct_per_rank and dist.is_available() and dist.is_initialized()):
            return None
        if dist.get_world_size() < 2:
            return None
        # One draw from the global CPU generator per call (a host value, no device synchronisation): re-seeding the
        # global RNG restarts the stream, and ranks seeded alike stay in step while drawing different labels.
        shared = int(torch.randint(2**62, (), dtype=torch.long))
        gen = self._rank_generators.get(device)
        if gen is None:
            gen = self._rank_generators[device] = torch.Generator(device=device)
        gen.manual_seed(rank_seed(shared, dist.get_rank()))
        return gen

    def sample_labels(self, batch: int, device: torch.device | str, generator: torch.Generator | None = None) -> Tensor:
        """Draw the labels that :meth:`forward` would use in ``"random"`` mode: uniform (or balanced) over the
        family's elements, the E-SSL label, whatever the family's own ``p``."""
        device = torch.device(device)
        gen = self._generator_for(device, generator)
        sampler = balanced_labels if self.balanced else uniform_labels
        return sampler(batch, self.num_classes, device, gen)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(views, labels)`` of the batch ``x``; ``generator`` draws the labels instead of the module's own."""
        unbatched = isinstance(x, Tensor) and x.ndim == 3
        if unbatched:
            x = x.unsqueeze(0)
        check_images(x, one_image=True)
        b = x.shape[0]
        self.family.check(x)
        if self.mode == "random":
            labels = self.sample_labels(b, x.device, generator)
            views = self.family._op(x, labels)  # labels drawn here: in range by construction
            if unbatched:
                return views.squeeze(0), labels.squeeze(0)
            return views, labels
        if self.num_per_batch is None or self.num_per_batch == self.num_classes:
            views = self.family._op(x, None)
            labels = torch.arange(self.num_classes, device=x.device).repeat_interleave(b)
            return views, labels
        chosen = distinct_labels(
            self.num_per_batch, self.num_classes, x.device, self._generator_for(x.device, generator)
        )
        labels = chosen.repeat_interleave(b)
        views = self.family._op(x.repeat(self.num_per_batch, 1, 1, 1), labels)
        return views, labels

    def extra_repr(self) -> str:
        extra = f", num_per_batch={self.num_per_batch}" if self.num_per_batch else ""
        return f"family={self.family!r}, mode={self.mode!r}, balanced={self.balanced}{extra}"
