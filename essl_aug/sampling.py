"""Label samplers: uniform, exactly balanced, or a subset of distinct elements. Never leave the device."""

from __future__ import annotations

import torch
from torch import Tensor


def _on(gen: torch.Generator | None, device: torch.device) -> torch.device:
    return gen.device if gen is not None else device


def uniform_labels(
    batch: int, num_classes: int, device: torch.device, generator: torch.Generator | None = None
) -> Tensor:
    """``batch`` labels drawn uniformly from ``[0, num_classes)``, on ``device``.

    With a ``generator`` on another device, labels are drawn there and copied without a host sync.
    """
    labels = torch.randint(num_classes, (batch,), device=_on(generator, device), generator=generator)
    return labels.to(device, non_blocking=True)


def balanced_labels(
    batch: int, num_classes: int, device: torch.device, generator: torch.Generator | None = None
) -> Tensor:
    """A random arrangement of ``batch`` labels with every class count ``batch // K`` or ``batch // K + 1``.

    The ``batch % K`` spare slots go to a uniformly random subset of the classes: the labels cycle through a random
    permutation of the classes, so its first ``batch % K`` entries get one image more, and the result is shuffled.
    Both permutations are drawn on the device (with ``generator``), without a host synchronisation.
    """
    where = _on(generator, device)
    classes = torch.randperm(num_classes, device=where, generator=generator)
    labels = classes[torch.arange(batch, device=where) % num_classes]
    order = torch.randperm(batch, device=where, generator=generator)
    return labels[order].to(device, non_blocking=True)


def distinct_labels(
    count: int, num_classes: int, device: torch.device, generator: torch.Generator | None = None
) -> Tensor:
    """``count`` distinct labels drawn uniformly without replacement."""
    where = _on(generator, device)
    return torch.randperm(num_classes, device=where, generator=generator)[:count].to(device, non_blocking=True)
