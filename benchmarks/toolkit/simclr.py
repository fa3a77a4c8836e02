"""SimCLR's contrastive losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_pair(z1: Tensor, z2: Tensor) -> None:
    """Both projections (N, D) with the same shape, row ``i`` of one pairing with row ``i`` of the other."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"`z1` and `z2` must both be (N, D), got {tuple(z1.shape)} and {tuple(z2.shape)}.")


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """The NT-Xent loss of SimCLR: each of the 2N embeddings against its pair, with 2N - 2 negatives.

    Args:
        z1: (N, D) projections of the first views.
        z2: (N, D) projections of the second views (row ``i`` pairs with ``z1[i]``).
        temperature: softmax temperature.

    Example:
        >>> z = torch.randn(4, 8)
        >>> bool(nt_xent(z, z) < nt_xent(z, torch.randn(4, 8)))
        True
    """
    _check_pair(z1, z2)
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, targets)


def info_nce_cross_view(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """The reference E-SSL CIFAR-10 SimCLR loss: symmetrised InfoNCE on the N x N cross-view logits only
    (N - 1 negatives per anchor): ``info_nce(z1, z2) / 2 + info_nce(z2, z1) / 2``.

    Example:
        >>> z = torch.randn(4, 8)
        >>> bool(info_nce_cross_view(z, z) < info_nce_cross_view(z, torch.randn(4, 8)))
        True
    """
    _check_pair(z1, z2)
    a, b = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    logits = a @ b.T / temperature
    targets = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
