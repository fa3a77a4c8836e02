"""Products of families: several transformations at once, one label in mixed radix."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from essl_aug.family import GroupFamily, TransformFamily
from essl_aug.permutation import PixelPermutationFamily, apply_pixel_table, apply_pixel_table_all

#: Side of the generic probe image used to find a product's multiplication table.
_PROBE_SIZE = 16


def _cayley_table(family: TransformFamily) -> Tensor | None:
    """(K, K) labels of "b then a", found by applying every element to a generic image; None if not closed."""
    k = family.num_classes
    gen = torch.Generator().manual_seed(0)
    probe = torch.rand(1, 3, _PROBE_SIZE, _PROBE_SIZE, generator=gen, dtype=torch.float64)
    elements = family.apply_all(probe)  # (K, 3, S, S): element b applied to the probe
    flat = elements.reshape(k, -1)
    table = torch.empty(k, k, dtype=torch.long)
    for a in range(k):
        composed = family.apply(elements, torch.full((k,), a, dtype=torch.long)).reshape(k, -1)
        dist = torch.cdist(composed, flat)
        best = dist.argmin(dim=1)
        if not torch.all(dist.gather(1, best[:, None]) < 1e-9):
            return None
        table[a] = best
    return table


class Product(GroupFamily):
    """Apply several families in sequence; one label encodes one element of each (mixed radix).

    Label convention: for families ``F_1 .. F_n`` with ``K_1 .. K_n`` classes, label
    ``l = ((a_1 * K_2 + a_2) * K_3 + a_3) ...``, i.e. the first family is the most significant digit,
    and the image is transformed by ``F_1`` with ``a_1`` first, then ``F_2`` with ``a_2``, and so on.
    Label 0 is the identity. ``Product([Rotation(), VerticalFlip()])`` is the 8-element dihedral group
    of the square: label ``2 * k + f`` is ``rot90(x, k)`` followed by a vertical flip when ``f == 1``.

    When every factor moves pixels only, the product is a single gather (the tables are composed). Group
    operations are available when every factor is a group and the product set is closed under
    composition (checked numerically on first use).

    Example:
        >>> d4 = Product([Rotation(), VerticalFlip()])
        >>> d4.num_classes
        8
        >>> x = torch.rand(1, 1, 4, 4)
        >>> torch.equal(d4.apply(x, torch.tensor([3])), torch.rot90(x, 1, (-2, -1)).flip(-2))
        True
    """

    name = "product"

    def __init__(self, families: Sequence[TransformFamily]) -> None:
        families = list(families)
        if len(families) < 2:
            raise ValueError(f"`families` needs at least two families for a product, got {len(families)}.")
        for f in families:
            if not isinstance(f, TransformFamily):
                raise TypeError(f"every entry of `families` must be a TransformFamily, got {type(f).__name__}.")
        self.families = tuple(families)
        self.radices = tuple(f.num_classes for f in families)
        self.num_classes = math.prod(self.radices)
        self.name = "x".join(f.name for f in families)
        dtypes = set(families[0].dtypes)
        for f in families[1:]:
            dtypes &= set(f.dtypes)
        self.dtypes = tuple(d for d in families[0].dtypes if d in dtypes)
        self._pixel = all(isinstance(f, PixelPermutationFamily) for f in families)
        self._tables: dict[tuple[int, int, torch.device], Tensor] = {}
        self._cayley: Tensor | None = None
        self._cayley_done = False

    def digits(self, labels: Tensor) -> list[Tensor]:
        """Split product labels into one label tensor per factor (first factor first)."""
        out = []
        rest = labels
        for radix in reversed(self.radices):
            out.append(rest % radix)
            rest = torch.div(rest, radix, rounding_mode="floor")
        return out[::-1]

    def combine(self, digits: Sequence[Tensor]) -> Tensor:
        """Inverse of :meth:`digits`: one product label from per-factor labels."""
        label = torch.zeros_like(digits[0])
        for d, radix in zip(digits, self.radices, strict=True):
            label = label * radix + d
        return label

    def check(self, x: Tensor) -> None:
        super().check(x)
        for f in self.families:
            f.check(x)

    def table(self, height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
        """Composed (K, H*W) pixel table, when every factor is a pixel permutation."""
        key = (height, width, torch.device(device))
        table = self._tables.get(key)
        if table is None:
            table = self.families[0].table(height, width)  # type: ignore[attr-defined]
            for f in self.families[1:]:
                t = f.table(height, width)  # type: ignore[attr-defined]
                # first table, then t: x[t_first][t_next] == x[t_first[:, t_next]]
                table = table[:, None, :].expand(-1, t.shape[0], -1).gather(2, t[None].expand(table.shape[0], -1, -1))
                table = table.reshape(-1, height * width)
            table = self._tables[key] = table.to(key[2]).contiguous()
        return table

    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:

        if self._pixel:
            return apply_pixel_table(self, x, labels, out)
        y = x
        parts = self.digits(labels)
        last = len(self.families) - 1
        for i, (f, d) in enumerate(zip(self.families, parts, strict=True)):
            y = f._apply(y, d, out if i == last else None)
        return y

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        if self._pixel:
            return apply_pixel_table_all(self, x, out)
        return super()._apply_all(x, out)

    def _group(self) -> Tensor:
        if not self._cayley_done:
            if all(isinstance(f, GroupFamily) for f in self.families):
                self._cayley = _cayley_table(self)
            self._cayley_done = True
        if self._cayley is None:
            raise TypeError(f"the product {self.name} is not a group (a factor is not a group, or it is not closed).")
        return self._cayley

    @property
    def is_group(self) -> bool:
        """Whether compose/inverse are available."""
        try:
            self._group()
        except TypeError:
            return False
        return True

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        return self._group().to(a.device)[a, b]

    def inverse(self, a: Tensor) -> Tensor:
        cayley = self._group().to(a.device)
        return (cayley == 0).to(torch.uint8).argmax(dim=0)[a]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_tables"] = {}
        state.pop("_plans", None)
        return state

    def __repr__(self) -> str:
        return f"Product([{', '.join(repr(f) for f in self.families)}])"
