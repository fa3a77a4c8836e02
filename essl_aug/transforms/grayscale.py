"""Random grayscale: the invariance control of the E-SSL diagnostic and the augmentation of the SSL views, one class.

Label convention (:class:`~essl_aug.transforms.base.LabelParams`): 0 is the identity, 1 is the 3-channel grayscale
``torchvision.transforms.v2.functional.rgb_to_grayscale(x, num_output_channels=3)``, bit for bit (its luma weights and
op order; uint8 truncated like torchvision). A 1-channel image is kept (torchvision's behaviour). Grayscale is
idempotent, not invertible: not a group, so :meth:`~essl_aug.transforms.base.Family.relative` is 1 where the two views
differ.
"""

from __future__ import annotations

from torch import Tensor

from essl_aug import functional as EF
from essl_aug._validation import check_channels
from essl_aug.transforms.base import Family


class RandomGrayscale(Family):
    """Make each image gray with probability ``p``, 2 classes.

    Args:
        p: probability that an image is made gray (None: both labels equally likely).

    Example:
        >>> import torch
        >>> y = RandomGrayscale().apply(torch.rand(1, 3, 4, 4), torch.tensor([1]))
        >>> bool((y[:, 0] == y[:, 2]).all())
        True
    """

    name = "grayscale"
    num_classes = 2
    pointwise = True

    def __init__(self, p: float | None = 0.2) -> None:
        super().__init__(p)

    def check(self, x: Tensor, name: str = "x") -> None:
        super().check(x, name)
        check_channels(x, (1, 3), "grayscale", name)

    def _op(self, x: Tensor, labels: Tensor | None) -> Tensor:
        return EF.grayscale(x, labels)
