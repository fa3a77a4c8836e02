"""2x2 jigsaw: the 24 permutations of the four quadrants, or a chosen subset.

Label convention: label ``p`` is ``PERMUTATIONS[p]``, the ``p``-th element of ``itertools.permutations(range(4))``
(lexicographic, so label 0 is the identity); output cell ``i`` receives input tile ``PERMUTATIONS[p][i]``. With
``tile_order="row-major"`` (default) cells and tiles are numbered 0 top-left, 1 top-right, 2 bottom-left, 3
bottom-right; with ``"clockwise"`` top-left, top-right, bottom-right, bottom-left, which reproduces the E-SSL co-author
code's labels (its tiles ``[[s0, s1], [s3, s2]]``). A subset (``permutations``: indices into the 24, identity first)
has ``len(permutations)`` classes and keeps ``compose`` / ``inverse`` only if it is a subgroup. Even H and W.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from essl_aug import _kernels
from essl_aug import functional as EF
from essl_aug._validation import check_jigsaw, check_num_classes
from essl_aug.functional import PERMUTATIONS
from essl_aug.transforms.base import PixelMove

__all__ = ["PERMUTATIONS", "RandomJigsaw"]


class RandomJigsaw(PixelMove):
    """Shuffle the four quadrants of each image (kornia's ``RandomJigsaw`` with labels and the identity included).

    Args:
        permutations: indices into the 24 permutations (the identity 0 first), or None for all 24.
        tile_order: ``"row-major"`` or ``"clockwise"`` (see the module docstring).
        p: None (default): every permutation equally likely; a probability: the identity with probability ``1 - p``.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> RandomJigsaw().apply(x, torch.tensor([23]))[0, 0]  # tiles reversed: (3, 2, 1, 0)
        tensor([[10., 11.,  8.,  9.],
                [14., 15., 12., 13.],
                [ 2.,  3.,  0.,  1.],
                [ 6.,  7.,  4.,  5.]])
    """

    name = "jigsaw"

    def __init__(
        self, permutations: Sequence[int] | None = None, tile_order: str = "row-major", p: float | None = None
    ) -> None:
        super().__init__(p)
        self.permutation_indices = check_jigsaw(permutations, tile_order)
        check_num_classes(len(self.permutation_indices), "permutations", "give the identity 0 and at least one more")
        self.tile_order = tile_order
        self.perms = _kernels.jigsaw_permutations(self.permutation_indices, tile_order)
        self.num_classes = len(self.permutation_indices)
        self._cayley = self._build_cayley()

    def _build_cayley(self) -> Tensor | None:
        lookup = {tuple(p.tolist()): i for i, p in enumerate(self.perms)}
        k = self.num_classes
        table = torch.empty(k, k, dtype=torch.long)
        for a in range(k):
            for b in range(k):  # b first, then a: out[i] = (b-applied)[pa[i]] = x[pb[pa[i]]]
                c = lookup.get(tuple(self.perms[b][self.perms[a]].tolist()))
                if c is None:
                    return None
                table[a, b] = c
        return table

    @property
    def is_group(self) -> bool:
        """Whether the chosen permutations are closed under composition (always true for all 24)."""
        return self._cayley is not None

    def check(self, x: Tensor, name: str = "x") -> None:
        super().check(x, name)
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            raise ValueError(
                f"2x2 jigsaw needs even height and width, but `{name}` is {h}x{w}; crop or pad to an even size first "
                "(the tiles must be equal)."
            )

    def build_table(self, height: int, width: int) -> Tensor:
        return _kernels.jigsaw_table(self.perms, height, width)

    def _op(self, x: Tensor, labels: Tensor | None) -> Tensor:
        return EF.jigsaw(x, labels, self.permutation_indices, self.tile_order)

    def _group(self) -> Tensor:
        if self._cayley is None:
            raise TypeError(
                "this jigsaw subset is not closed under composition, so it has no compose/inverse; "
                "use all 24 permutations or a subgroup."
            )
        return self._cayley

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        return self._group().to(a.device)[a, b]

    def inverse(self, a: Tensor) -> Tensor:
        return (self._group().to(a.device) == 0).float().argmax(dim=0)[a]

    def __repr__(self) -> str:
        return f"RandomJigsaw(num_classes={self.num_classes}, tile_order={self.tile_order!r})"
