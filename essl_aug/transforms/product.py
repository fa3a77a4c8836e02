"""Products of families: several transformations at once, one label in mixed radix.

Label convention: for families ``F_1 .. F_n`` with ``K_1 .. K_n`` classes, label ``l = ((a_1 * K_2 + a_2) * K_3 + a_3)
...``: the first family is the most significant digit, and the image is transformed by ``F_1`` with ``a_1`` first,
then ``F_2`` with ``a_2``, and so on. Label 0 is the identity. ``Product([RandomRotation90(), RandomVerticalFlip()])``
is the 8-element dihedral group of the square: label ``2 * k + f`` is ``rot90(x, k)`` followed by a vertical flip when
``f == 1``. When every factor moves pixels only, the product is one pixel move (the tables are composed).

Group operations (``compose``, ``inverse``, ``is_group``) are derived from the factors on first use, without any probe
image: every factor must be a group; pointwise factors (``Family.pointwise``, e.g. inversion) commute with every pixel
move and compose per factor (at most one of them, since two need not commute with each other); the pixel-moving
factors compose per factor when their tables commute (a direct product, e.g. translations x inversion), otherwise by
the Cayley table of their composed tables (rotation x vflip is the dihedral group, not a direct product), found on a
grid the factors accept. A product whose pixel factors are not closed (rotation x translations by (2, 4) steps) is not
a group.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from essl_aug import _kernels
from essl_aug import functional as EF
from essl_aug._cache import PlanCache
from essl_aug.transforms.base import Family, Group, PixelMove

#: Largest square side tried when deriving the composition law of a product's pixel factors from their tables.
_MAX_SIDE = 256


def _moves_pixels(family: Family) -> bool:
    """True when every element of ``family`` is a pixel permutation with a table (see :meth:`Product.table`)."""
    if isinstance(family, Product):
        return family._pixel
    return isinstance(family, PixelMove)


def _is_group(family: Family) -> bool:
    return family.is_group


def _accepts(family: Family, side: int) -> bool:
    try:
        family.check(torch.empty(1, 3, side, side))
    except (TypeError, ValueError):
        return False
    return True


def _row_keys(rows: Tensor, weights: Tensor) -> Tensor:
    """One int64 key per row of pixel indices (a hash: equal rows give equal keys; matches are verified)."""
    return (rows * weights).sum(dim=-1)


def _cayley(table: Tensor) -> Tensor | None:
    """(K, K) labels of "``b`` first, then ``a``" for the (K, N) pixel table; None when the set is not closed.

    Entry ``[a, b]`` is the smallest label whose row equals ``table[b][table[a]]`` (moving by ``b``, then by
    ``a``): the smallest, so that labels which move pixels alike resolve the same way on every grid.
    """
    k, n = table.shape
    weights = torch.randint(-(2**62), 2**62, (n,), generator=torch.Generator().manual_seed(0))
    keys = _row_keys(table, weights)
    order = keys.argsort(stable=True)  # equal rows: the smallest label first
    sorted_keys = keys.index_select(0, order)
    result = torch.empty(k, k, dtype=torch.long)
    for a in range(k):
        composed = table.gather(1, table[a].expand(k, n))  # row b: table[b] gathered at table[a]
        found = order.index_select(0, torch.searchsorted(sorted_keys, _row_keys(composed, weights)).clamp_max(k - 1))
        missed = (table.index_select(0, found) != composed).any(dim=1)
        for b in missed.nonzero().flatten().tolist():  # a key collision, or a row outside the set
            same = (table == composed[b]).all(dim=1).nonzero()
            if same.numel() == 0:
                return None
            found[b] = same[0, 0]
        result[a] = found
    return result


class _PixelLaw:
    """How the pixel factors of a product compose: per factor when they commute, else by a Cayley table.

    ``cayley`` is None for commuting factors; otherwise (K_P, K_P) over the mixed-radix labels of the pixel
    factors alone.
    """

    def __init__(self, cayley: Tensor | None) -> None:
        self.cayley = cayley
        self.inverses = None if cayley is None else (cayley == 0).to(torch.uint8).argmax(dim=0)
        self._on: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def tables(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """The Cayley table and the inverses on ``device`` (copied once per device)."""
        if self.cayley is None or self.inverses is None:
            raise TypeError("the pixel factors compose per factor; there is no table")
        if device not in self._on:
            self._on[device] = (self.cayley.to(device), self.inverses.to(device))
        return self._on[device]

    @staticmethod
    def derive(factors: Sequence[Family]) -> _PixelLaw | str:
        """The law of ``factors`` (pixel permutation groups, in the order they are applied), or why there is none.

        Found from the factors' own pixel tables on the smallest square grid they accept, and confirmed on the grid
        twice as large (a small grid can make distinct elements coincide); the first pair of grids that agree is
        kept.
        """
        side = next((s for s in range(2, _MAX_SIDE + 1) if all(_accepts(f, s) for f in factors)), 0)
        previous: tuple[bool, Tensor | None] | None = None
        while side and side <= _MAX_SIDE:
            law = _PixelLaw._at(factors, side)
            if previous is not None and previous[0] == law[0] and _same(previous[1], law[1]):
                return _PixelLaw(law[1]) if law[0] else "it is not closed under composition"
            previous, side = law, 2 * side
        return f"the law of its pixel factors could not be found from their tables (square grids up to {_MAX_SIDE})"

    @staticmethod
    def _at(factors: Sequence[Family], side: int) -> tuple[bool, Tensor | None]:
        """(closed, Cayley table or None when the factors commute) on a ``side`` x ``side`` grid."""
        tables = [_table(f, side) for f in factors]
        if all(_commute(tables[i], tables[j]) for i in range(len(tables)) for j in range(i + 1, len(tables))):
            return True, None
        composed = tables[0]
        for t in tables[1:]:
            composed = _kernels.compose_tables(composed, t)
        cayley = _cayley(composed)
        return cayley is not None, cayley


def _table(family: Family, side: int) -> Tensor:
    if isinstance(family, (PixelMove, Product)):
        return family.table(side, side)
    raise TypeError(f"{family!r} has no pixel table")


def _commute(p: Tensor, q: Tensor) -> bool:
    """Whether every row of ``p`` commutes with every row of ``q`` (as pixel permutations)."""
    pq = p[:, None, :].expand(-1, q.shape[0], -1).gather(2, q[None].expand(p.shape[0], -1, -1))
    qp = q[None, :, :].expand(p.shape[0], -1, -1).gather(2, p[:, None, :].expand(-1, q.shape[0], -1))
    return torch.equal(pq, qp)


def _same(a: Tensor | None, b: Tensor | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))


class Product(Group):
    """Apply several families in sequence; one label encodes one element of each (the module docstring).

    Args:
        families: two or more families, applied in this order.
        p: how labels are drawn (see :class:`~essl_aug.transforms.base.Family`).

    Example:
        >>> from essl_aug import RandomRotation90, RandomVerticalFlip
        >>> d4 = Product([RandomRotation90(), RandomVerticalFlip()])
        >>> d4.num_classes
        8
        >>> x = torch.rand(1, 1, 4, 4)
        >>> torch.equal(d4.apply(x, torch.tensor([3])), torch.rot90(x, 1, (-2, -1)).flip(-2))
        True
    """

    name = "product"

    def __init__(self, families: Sequence[Family], p: float | None = None) -> None:
        super().__init__(p)
        if isinstance(families, Family) or not isinstance(families, Sequence):
            raise TypeError(f"`families` must be a list of families, got {type(families).__name__}.")
        families = list(families)
        if len(families) < 2:
            raise ValueError(f"`families` needs at least two families for a product, got {len(families)}.")
        for f in families:
            if not isinstance(f, Family):
                raise TypeError(f"every entry of `families` must be a Family, got {type(f).__name__}.")
        self.families = tuple(families)
        self.radices = tuple(f.num_classes for f in families)
        self.num_classes = math.prod(self.radices)
        self.name = "x".join(f.name for f in families)
        common = set(families[0].dtypes).intersection(*(f.dtypes for f in families[1:]))
        self.dtypes = tuple(d for d in families[0].dtypes if d in common)
        self.pointwise = all(f.pointwise for f in families)
        self._pixel = all(_moves_pixels(f) for f in families)
        #: Positions of the factors that only move pixels (their digits compose together).
        self._pixel_digits = [i for i, f in enumerate(families) if _moves_pixels(f)]
        self._cache = PlanCache()
        self._law_or_reason: _PixelLaw | str | None = None

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

    def check(self, x: Tensor, name: str = "x") -> None:
        super().check(x, name)
        for f in self.families:
            f.check(x, name)

    def table(self, height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
        """Composed (K, H*W) pixel table, when every factor is a pixel move."""
        if not self._pixel:
            raise TypeError(f"the product {self.name} has a factor that does not only move pixels, so it has no table.")
        key = ("table", height, width, torch.device(device))

        def build() -> Tensor:
            pixel_factors = [f for f in self.families if isinstance(f, (PixelMove, Product))]
            table = pixel_factors[0].table(height, width)
            for f in pixel_factors[1:]:
                table = _kernels.compose_tables(table, f.table(height, width))
            return table.to(key[3]).contiguous()

        return self._cache.get(key, build)

    def _op(self, x: Tensor, labels: Tensor | None) -> Tensor:
        if self._pixel:
            return EF.move_pixels(x, labels, ("product",), self.table, cache=self._cache)
        if labels is None:
            full = [torch.full((x.shape[0],), k, dtype=torch.long, device=x.device) for k in range(self.num_classes)]
            return torch.cat([self._op(x, k) for k in full])
        y = x
        for f, d in zip(self.families, self.digits(labels), strict=True):
            y = f._op(y, d)
        return y

    def _law(self) -> _PixelLaw:
        """The composition law of the pixel factors; ``TypeError`` saying why when the product is not a group."""
        if self._law_or_reason is None:
            self._law_or_reason = self._derive_law()
        if isinstance(self._law_or_reason, str):
            raise TypeError(f"the product {self.name} is not a group: {self._law_or_reason}.")
        return self._law_or_reason

    def _derive_law(self) -> _PixelLaw | str:
        for f in self.families:
            if not _is_group(f):
                return f"its factor {f.name} is not a group"
        others = [f.name for i, f in enumerate(self.families) if i not in self._pixel_digits and not f.pointwise]
        if others:
            return (
                f"how its factor {others[0]} composes with the others is unknown (it neither only moves pixels "
                "nor is pointwise)"
            )
        pointwise = [f.name for f in self.families if f.pointwise]
        if len(pointwise) > 1:
            return f"its pointwise factors {' and '.join(pointwise)} need not commute with each other"
        pixels = [self.families[i] for i in self._pixel_digits]
        if len(pixels) < 2:
            return _PixelLaw(None)
        return _PixelLaw.derive(pixels)

    @property
    def is_group(self) -> bool:
        """Whether compose/inverse are available (derived from the factors; see the module docstring)."""
        try:
            self._law()
        except TypeError:
            return False
        return True

    def _pixel_label(self, digits: Sequence[Tensor]) -> Tensor:
        label = torch.zeros_like(digits[0])
        for i in self._pixel_digits:
            label = label * self.radices[i] + digits[i]
        return label

    def _set_pixel_digits(self, digits: list[Tensor], label: Tensor) -> None:
        for i in reversed(self._pixel_digits):
            digits[i] = label % self.radices[i]
            label = torch.div(label, self.radices[i], rounding_mode="floor")

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        law = self._law()
        da, db = self.digits(a), self.digits(b)
        out = [f.compose(x, y) for f, x, y in zip(self.families, da, db, strict=True)]
        if law.cayley is not None:
            cayley, _ = law.tables(a.device)
            self._set_pixel_digits(out, cayley[self._pixel_label(da), self._pixel_label(db)])
        return self.combine(out)

    def inverse(self, a: Tensor) -> Tensor:
        law = self._law()
        da = self.digits(a)
        out = [f.inverse(x) for f, x in zip(self.families, da, strict=True)]
        if law.cayley is not None:
            _, inverses = law.tables(a.device)
            self._set_pixel_digits(out, inverses[self._pixel_label(da)])
        return self.combine(out)

    def __repr__(self) -> str:
        return f"Product([{', '.join(repr(f) for f in self.families)}])"
