"""VICReg's loss (Bardes et al., ICLR 2022): the non-contrastive SSL method of the toolkit."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def vicreg_loss(
    z1: Tensor,
    z2: Tensor,
    invariance: float = 25.0,
    variance: float = 25.0,
    covariance: float = 1.0,
    eps: float = 1e-4,
) -> Tensor:
    """VICReg: ``invariance * MSE(z1, z2) + variance * v + covariance * c`` with the paper's default weights.

    ``v`` is the mean over both branches and every dimension of ``relu(1 - sqrt(var + eps))`` (each dimension's
    standard deviation over the batch kept at 1 or more), ``c`` the sum over both branches of the squared
    off-diagonal entries of the batch covariance divided by the dimension D (the official implementation,
    facebookresearch/vicreg ``main_vicreg.py``, with the variance term averaged over the two branches as there).

    Args:
        z1, z2: (N, D) embeddings of the two views, N >= 2 (row ``i`` pairs with ``z1[i]``).

    Example:
        >>> import torch
        >>> z = torch.randn(64, 8)
        >>> bool(vicreg_loss(z, z) < vicreg_loss(z, torch.randn(64, 8)))
        True
        >>> float(vicreg_loss(z, z, variance=0, covariance=0))
        0.0
    """
    if z1.shape != z2.shape or z1.ndim != 2 or z1.shape[0] < 2:
        raise ValueError(f"`z1` and `z2` must both be (N, D) with N >= 2, got {tuple(z1.shape)} and {tuple(z2.shape)}.")
    n, d = z1.shape
    a, b = z1.float(), z2.float()
    loss = invariance * F.mse_loss(a, b)
    a, b = a - a.mean(0), b - b.mean(0)
    std_a, std_b = (a.var(0) + eps).sqrt(), (b.var(0) + eps).sqrt()
    loss = loss + variance * (F.relu(1 - std_a).mean() + F.relu(1 - std_b).mean()) / 2
    cov = 0.0 * loss
    for z in (a, b):
        c = z.T @ z / (n - 1)
        cov = cov + (c.pow(2).sum() - c.diagonal().pow(2).sum()) / d
    return loss + covariance * cov
