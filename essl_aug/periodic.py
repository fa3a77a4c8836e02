"""Symmetries of periodic square grids: lattice translations and the square's point group D4.

A periodic cell (a crystal's unit cell, a lattice field configuration) has more symmetries than a photo: every
cyclic shift ``torch.roll`` of the grid describes the same infinite crystal, and a square cell may also have the 8
symmetries of the square. :class:`PeriodicTranslation` (shifts by a fraction of the cell) and :class:`D4` are
exact label families for E-SSL; :class:`RandomPeriodicShift` is the invariance augmentation (a random whole-pixel
shift per image).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from essl_aug import _kernels
from essl_aug import functional as EF
from essl_aug._validation import check_images, check_num_classes, check_square, check_steps
from essl_aug.functional import periodic_roll
from essl_aug.permutation import PixelPermutationFamily

__all__ = ["D4", "PeriodicTranslation", "RandomPeriodicShift", "periodic_roll"]


class PeriodicTranslation(PixelPermutationFamily):
    """Cyclic shifts of a periodic grid by whole fractions of the cell: the group Z_sh x Z_sw.

    Label convention: with ``steps = (sh, sw)``, label ``l = a * sw + b`` (``0 <= a < sh``, ``0 <= b < sw``) is
    ``torch.roll(x, (a * H // sh, b * W // sw), dims=(-2, -1))`` (content moves down by ``a * H / sh`` rows and
    right by ``b * W / sw`` columns, wrapping around). The default ``steps=2`` gives the reference E-SSL photonics
    task (``trans_and_get_labels``): labels 0, 1, 2, 3 are the rolls (0, 0), (0, W/2), (H/2, 0), (H/2, H/2) over
    (H, W). ``compose`` adds the shift indices modulo ``steps``; ``inverse`` negates them. H must be divisible by
    ``sh`` and W by ``sw``.

    Args:
        steps: number of shifts per axis, an int for both or a pair ``(sh, sw)`` (any integers, e.g. ``numpy.int64``);
            ``sh * sw`` classes, at least 2.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> t = PeriodicTranslation()
        >>> t.num_classes
        4
        >>> torch.equal(t.apply(x, torch.tensor([1])), torch.roll(x, (0, 2), dims=(-2, -1)))
        True
        >>> t.compose(torch.tensor([1]), torch.tensor([3])).item()  # (0, 1) + (1, 1) = (1, 0)
        2
    """

    name = "translation"

    def __init__(self, steps: int | tuple[int, int] = 2) -> None:
        super().__init__()
        self.steps = check_steps(steps)
        self.num_classes = self.steps[0] * self.steps[1]
        check_num_classes(self.num_classes, "steps", "use at least 2 shifts on one axis, e.g. steps=2 or (1, 2)")

    def check(self, x: Tensor) -> None:
        super().check(x)
        h, w = x.shape[-2:]
        sh, sw = self.steps
        if h % sh or w % sw:
            raise ValueError(
                f"periodic translation with steps {self.steps} needs H divisible by {sh} and W by {sw}, but `x` is "
                f"{h}x{w}; choose `steps` that divide the grid (e.g. steps=2 for an even-sided cell)."
            )

    def build_table(self, height: int, width: int) -> Tensor:
        return _kernels.translation_table(self.steps, height, width)

    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        return EF.periodic_translate(x, labels, self.steps, out)

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        return EF.periodic_translate(x, None, self.steps, out)

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        sh, sw = self.steps
        return ((a // sw + b // sw) % sh) * sw + (a % sw + b % sw) % sw

    def inverse(self, a: Tensor) -> Tensor:
        sh, sw = self.steps
        return ((-(a // sw)) % sh) * sw + (-(a % sw)) % sw

    def __repr__(self) -> str:
        return f"PeriodicTranslation(steps={self.steps})"


class D4(PixelPermutationFamily):
    """The 8 symmetries of the square (the point group of a square lattice), as one pixel permutation per label.

    Label convention, the same as ``Product([Rotation(), VerticalFlip()])``: label ``l = 2 * k + f`` is
    ``torch.rot90(x, k, dims=(-2, -1))`` (``k`` quarter turns counter-clockwise as displayed) followed by a vertical
    flip ``.flip(-2)`` when ``f == 1``. Labels 0, 2, 4, 6 are the rotations; 1, 3, 5, 7 the four mirrors.
    ``compose(a, b)`` ("``b`` first, then ``a``") is ``k = (-1)**f_b * k_a + k_b`` (mod 4), ``f = f_a xor f_b``;
    each mirror is its own inverse. Works on any number of channels (a permittivity cell is (B, 1, N, N));
    requires H == W.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 2, 2)
        >>> D4().apply(x, torch.tensor([3]))  # a quarter turn, then a vertical flip: the anti-diagonal mirror
        tensor([[[[0., 2.],
                  [1., 3.]]]])
        >>> D4().inverse(torch.tensor([2, 3])).tolist()
        [6, 3]
    """

    name = "d4"
    num_classes = 8

    def check(self, x: Tensor) -> None:
        super().check(x)
        check_square(x, "the d4 family")

    def build_table(self, height: int, width: int) -> Tensor:
        return _kernels.d4_table(height, width)

    def _apply(self, x: Tensor, labels: Tensor, out: Tensor | None) -> Tensor:
        return EF.d4(x, labels, out)

    def _apply_all(self, x: Tensor, out: Tensor) -> Tensor:
        return EF.d4(x, None, out)

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        ka, fa = a // 2, a % 2
        kb, fb = b // 2, b % 2
        k = (ka * (1 - 2 * fb) + kb) % 4
        return 2 * k + (fa ^ fb)

    def inverse(self, a: Tensor) -> Tensor:
        k, f = a // 2, a % 2
        return torch.where(f == 1, a, 2 * ((-k) % 4))


class RandomPeriodicShift(nn.Module):
    """Invariance augmentation for periodic cells: roll each image by a uniformly random whole-pixel shift.

    Every cyclic shift of a periodic cell describes the same crystal, so its physical properties (bands, density
    of states) are unchanged; this is the reference photonics ``translate_cont_tensor`` (a shift in ``0..H-1`` x
    ``0..W-1`` per image). Shifts are drawn on the input's device, without a host synchronisation.

    Args:
        p: probability that an image is shifted at all (otherwise it is returned unchanged).
        generator: optional ``torch.Generator`` (on the input's device) for reproducible shifts.

    Shape:
        - Input: (B, C, H, W) or (C, H, W).
        - Output: same as the input (a new tensor).

    Example:
        >>> shift = RandomPeriodicShift(generator=torch.Generator().manual_seed(0))
        >>> x = torch.rand(4, 1, 8, 8)
        >>> y = shift(x)
        >>> torch.equal(y.flatten(1).sort().values, x.flatten(1).sort().values)  # same pixels, moved
        True
    """

    def __init__(self, p: float = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"`p` must be a probability in [0, 1], got {p!r}.")
        self.p = float(p)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        unbatched = isinstance(x, Tensor) and x.ndim == 3
        if unbatched:
            x = x.unsqueeze(0)
        check_images(x)
        b, _, h, w = x.shape
        size = torch.tensor([h, w], device=x.device)
        u = torch.rand(b, 2, device=x.device, generator=self.generator)
        shifts = (u * size).long().clamp_max(size - 1)
        if self.p < 1.0:
            keep = torch.rand(b, 1, device=x.device, generator=self.generator) >= self.p
            shifts = shifts.masked_fill(keep, 0)
        y = periodic_roll(x, shifts)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self) -> str:
        return f"p={self.p}"
