"""2x2 jigsaw: the 24 permutations of the four quadrants."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor

from essl_aug.permutation import PixelPermutationFamily, grid_index

#: All 24 permutations of 4 tiles in lexicographic order; index 0 is the identity.
PERMUTATIONS: tuple[tuple[int, ...], ...] = tuple(itertools.permutations(range(4)))

#: Row-major position of each cell when the cells are numbered clockwise (TL, TR, BR, BL).
_CLOCKWISE = (0, 1, 3, 2)


def _to_row_major(perm: Sequence[int], tile_order: str) -> tuple[int, ...]:
    if tile_order == "row-major":
        return tuple(perm)
    row = [0] * 4
    for j, src in enumerate(perm):
        row[_CLOCKWISE[j]] = _CLOCKWISE[src]
    return tuple(row)


class Jigsaw(PixelPermutationFamily):
    """Shuffle the four quadrants of each image: 24 classes, or a chosen subset.

    Label convention: label ``p`` is ``PERMUTATIONS[p]``, the ``p``-th element of
    ``itertools.permutations(range(4))`` (lexicographic, so label 0 is the identity). Output cell ``i``
    receives input tile ``PERMUTATIONS[p][i]``. With ``tile_order="row-major"`` (default) cells and tiles
    are numbered 0 = top-left, 1 = top-right, 2 = bottom-left, 3 = bottom-right; with
    ``tile_order="clockwise"`` they are numbered top-left, top-right, bottom-right, bottom-left, which
    reproduces the co-author E-SSL code's labels (its tiles ``[[s0, s1], [s3, s2]]``).

    ``permutations`` picks a subset (indices into the 24, identity first); the family then has
    ``len(permutations)`` classes and keeps group operations only if the subset is a subgroup.
    Requires even H and W.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> Jigsaw().apply(x, torch.tensor([23]))[0, 0]  # tiles reversed: (3, 2, 1, 0)
        tensor([[10., 11.,  8.,  9.],
                [14., 15., 12., 13.],
                [ 2.,  3.,  0.,  1.],
                [ 6.,  7.,  4.,  5.]])
    """

    name = "jigsaw"

    def __init__(self, permutations: Sequence[int] | None = None, tile_order: str = "row-major") -> None:
        super().__init__()
        if tile_order not in ("row-major", "clockwise"):
            raise ValueError(f"`tile_order` must be 'row-major' or 'clockwise', got {tile_order!r}.")
        chosen = list(range(24)) if permutations is None else [int(p) for p in permutations]
        if not chosen or chosen[0] != 0:
            raise ValueError("`permutations` must start with 0, the identity (label 0 is always the identity).")
        if len(set(chosen)) != len(chosen) or not all(0 <= p < 24 for p in chosen):
            raise ValueError(f"`permutations` must be distinct indices in [0, 24), got {chosen}.")
        self.permutation_indices = tuple(chosen)
        self.tile_order = tile_order
        self.perms = torch.tensor([_to_row_major(PERMUTATIONS[p], tile_order) for p in chosen], dtype=torch.long)
        self.num_classes = len(chosen)
        self._cayley = self._build_cayley()

    def _build_cayley(self) -> Tensor | None:
        lookup = {tuple(p.tolist()): i for i, p in enumerate(self.perms)}
        k = self.num_classes
        table = torch.empty(k, k, dtype=torch.long)
        for a in range(k):
            for b in range(k):
                # b first, then a: out[i] = (b-applied)[pa[i]] = x[pb[pa[i]]]
                c = lookup.get(tuple(self.perms[b][self.perms[a]].tolist()))
                if c is None:
                    return None
                table[a, b] = c
        return table

    @property
    def is_group(self) -> bool:
        """Whether the chosen permutations are closed under composition (always true for all 24)."""
        return self._cayley is not None

    def check(self, x: Tensor) -> None:
        super().check(x)
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            raise ValueError(
                f"2x2 jigsaw needs even height and width, but `x` is {h}x{w}; crop or pad to an even size first "
                "(the tiles must be equal)."
            )

    def build_table(self, height: int, width: int) -> Tensor:
        th, tw = height // 2, width // 2
        tiles = grid_index(height, width).view(2, th, 2, tw).permute(0, 2, 1, 3).reshape(4, th, tw)
        out = tiles[self.perms]  # (K, 4, th, tw): output cell i holds tile perms[k, i]
        return out.view(-1, 2, 2, th, tw).permute(0, 1, 3, 2, 4).reshape(self.num_classes, height * width)

    def _require_group(self) -> Tensor:
        if self._cayley is None:
            raise TypeError(
                "this jigsaw subset is not closed under composition, so it has no compose/inverse; "
                "use all 24 permutations or a subgroup."
            )
        return self._cayley

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        cayley = self._require_group().to(a.device)
        return cayley[a, b]

    def inverse(self, a: Tensor) -> Tensor:
        cayley = self._require_group().to(a.device)
        return (cayley == 0).float().argmax(dim=0)[a]

    def __repr__(self) -> str:
        return f"Jigsaw(num_classes={self.num_classes}, tile_order={self.tile_order!r})"
