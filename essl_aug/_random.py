"""Random draws: on the input's device, from an optional ``torch.Generator``, never read back by the host.

With a generator on another device than the images (a CPU generator for CUDA images), the numbers are drawn on the
generator's device and moved without blocking. Seeds for several streams (ranks, epochs, images) are mixed with
splitmix64 (``rank_seed``), so that streams with one base seed are unrelated.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

_MASK64 = 2**64 - 1


def draw_device(device: torch.device | str, generator: torch.Generator | None) -> torch.device:
    """Where to draw: the generator's device when one is given (the draws are then moved to ``device``)."""
    return generator.device if generator is not None else torch.device(device)


def moved(t: Tensor, device: torch.device | str) -> Tensor:
    """``t`` on ``device``: without blocking towards an accelerator; a copy to the host waits for its values (an
    asynchronous device-to-host copy could be read before it lands)."""
    device = torch.device(device)
    return t.to(device, non_blocking=device.type != "cpu")


def rand(size: Sequence[int], device: torch.device | str, generator: torch.Generator | None = None) -> Tensor:
    """float32 numbers uniform in ``[0, 1)`` shaped ``size`` on ``device``.

    Example:
        >>> rand((2, 3), "cpu", torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3])
    """
    u = torch.rand(tuple(size), device=draw_device(device, generator), generator=generator)
    return moved(u, device)


def uniform(
    batch: int, low: float, high: float, device: torch.device | str, generator: torch.Generator | None = None
) -> Tensor:
    """``batch`` float32 numbers uniform in ``[low, high]`` (clamped: float32 rounding never leaves the range).

    Example:
        >>> u = uniform(1000, 2.0, 3.0, "cpu", torch.Generator().manual_seed(0))
        >>> bool(((u >= 2) & (u <= 3)).all()), u.dtype
        (True, torch.float32)
    """
    return (low + (high - low) * rand((batch,), device, generator)).clamp(low, high)


def bernoulli(batch: int, p: float, device: torch.device | str, generator: torch.Generator | None = None) -> Tensor:
    """``batch`` booleans, each True with probability ``p`` (``p=1``: all True, ``p=0``: all False).

    Example:
        >>> bernoulli(4, 1.0, "cpu").tolist(), bernoulli(4, 0.0, "cpu").tolist()
        ([True, True, True, True], [False, False, False, False])
    """
    return rand((batch,), device, generator) < p


def uniform_labels(
    batch: int, num_classes: int, device: torch.device | str, generator: torch.Generator | None = None
) -> Tensor:
    """``batch`` int64 labels drawn uniformly from ``[0, num_classes)``."""
    labels = torch.randint(num_classes, (batch,), device=draw_device(device, generator), generator=generator)
    return moved(labels, device)


def labels_with_p(
    batch: int, num_classes: int, p: float, device: torch.device | str, generator: torch.Generator | None = None
) -> Tensor:
    """Label 0 (the identity) with probability ``1 - p``, else one of ``1 .. K-1`` uniformly.

    For two classes this is a Bernoulli(``p``) draw (torchvision's ``RandomHorizontalFlip(p)``); for more, the
    "invariance" mode of the E-SSL co-author code (each image moved by a non-identity element with probability p).

    Example:
        >>> labels_with_p(6, 4, 0.0, "cpu").tolist()
        [0, 0, 0, 0, 0, 0]
        >>> bool((labels_with_p(100, 4, 1.0, "cpu") > 0).all())
        True
    """
    moved = bernoulli(batch, p, device, generator)
    if num_classes == 2:
        return moved.long()
    other = 1 + uniform_labels(batch, num_classes - 1, device, generator)
    return torch.where(moved, other, torch.zeros_like(other))


def balanced_labels(
    batch: int, num_classes: int, device: torch.device | str, generator: torch.Generator | None = None
) -> Tensor:
    """A random arrangement of ``batch`` labels with every class count ``batch // K`` or ``batch // K + 1``.

    The ``batch % K`` spare slots go to a uniformly random subset of the classes: the labels cycle through a random
    permutation of the classes, so its first ``batch % K`` entries get one image more, and the result is shuffled.

    Example:
        >>> torch.bincount(balanced_labels(10, 4, "cpu", torch.Generator().manual_seed(0))).sort().values.tolist()
        [2, 2, 3, 3]
    """
    where = draw_device(device, generator)
    classes = torch.randperm(num_classes, device=where, generator=generator)
    labels = classes[torch.arange(batch, device=where) % num_classes]
    order = torch.randperm(batch, device=where, generator=generator)
    return moved(labels[order], device)


def distinct_labels(
    count: int, num_classes: int, device: torch.device | str, generator: torch.Generator | None = None
) -> Tensor:
    """``count`` distinct labels drawn uniformly without replacement."""
    where = draw_device(device, generator)
    return moved(torch.randperm(num_classes, device=where, generator=generator)[:count], device)


def rank_seed(seed: int, rank: int) -> int:
    """A seed in ``[0, 2**63)`` for ``rank`` from a shared ``seed``: splitmix64 of ``seed`` offset by the rank.

    Ranks with the same ``seed`` get unrelated seeds (every bit of the result depends on both arguments).

    Example:
        >>> rank_seed(0, 0) != rank_seed(0, 1)
        True
    """
    z = (seed + (rank + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of image ``index`` in epoch ``epoch``: ``rank_seed`` of the epoch, then of the index.

    Example:
        >>> len({sample_seed(0, e, i) for e in range(3) for i in range(100)})
        300
    """
    return rank_seed(rank_seed(seed, epoch), index)
