"""Cyclic shifts of a periodic grid by whole fractions of the cell: the group Z_sh x Z_sw.

A periodic cell (a crystal's unit cell) describes the same infinite crystal after any cyclic shift. Label convention:
with ``steps = (sh, sw)``, label ``l = a * sw + b`` (``0 <= a < sh``, ``0 <= b < sw``) is ``torch.roll(x, (a * H //
sh, b * W // sw), dims=(-2, -1))``: content moves down by ``a * H / sh`` rows and right by ``b * W / sw`` columns,
wrapping around. ``steps=2`` is the reference E-SSL photonics task (``trans_and_get_labels``): labels 0..3 are the
rolls (0, 0), (0, W/2), (H/2, 0), (H/2, W/2). ``compose`` adds the shift indices modulo ``steps``.
"""

from __future__ import annotations

from torch import Tensor

from essl_aug import _kernels
from essl_aug import functional as EF
from essl_aug._validation import check_num_classes, check_steps
from essl_aug.transforms.base import PixelMove


class RandomPeriodicTranslation(PixelMove):
    """A random cyclic shift by a whole fraction of the cell per image; ``sh * sw`` classes.

    Args:
        steps: shifts per axis, an int for both or a pair ``(sh, sw)``; at least 2 classes.
        p: None (default): every shift equally likely; a probability: no shift with probability ``1 - p``.

    Example:
        >>> import torch
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> t = RandomPeriodicTranslation()
        >>> torch.equal(t.apply(x, torch.tensor([1])), torch.roll(x, (0, 2), dims=(-2, -1)))
        True
        >>> t.compose(torch.tensor([1]), torch.tensor([3])).item()  # (0, 1) + (1, 1) = (1, 0)
        2
    """

    name = "translation"

    def __init__(self, steps: int | tuple[int, int] = 2, p: float | None = None) -> None:
        super().__init__(p)
        self.steps = check_steps(steps)
        self.num_classes = self.steps[0] * self.steps[1]
        check_num_classes(self.num_classes, "steps", "use at least 2 shifts on one axis, e.g. steps=2 or (1, 2)")

    def check(self, x: Tensor, name: str = "x") -> None:
        super().check(x, name)
        h, w = x.shape[-2:]
        sh, sw = self.steps
        if h % sh or w % sw:
            raise ValueError(
                f"periodic translation with steps {self.steps} needs H divisible by {sh} and W by {sw}, but `{name}` "
                f"is {h}x{w}; choose `steps` that divide the grid (e.g. steps=2 for an even-sided cell)."
            )

    def build_table(self, height: int, width: int) -> Tensor:
        return _kernels.translation_table(self.steps, height, width)

    def _op(self, x: Tensor, labels: Tensor | None) -> Tensor:
        return EF.periodic_translate(x, labels, self.steps)

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        sh, sw = self.steps
        return ((a // sw + b // sw) % sh) * sw + (a % sw + b % sw) % sw

    def inverse(self, a: Tensor) -> Tensor:
        sh, sw = self.steps
        return ((-(a // sw)) % sh) * sw + (-(a % sw)) % sw

    def __repr__(self) -> str:
        return f"RandomPeriodicTranslation(steps={self.steps})"
