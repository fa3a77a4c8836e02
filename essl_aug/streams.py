"""Random streams of the training step, keyed by ``(seed, rank, epoch, step)``.

What the library draws in a step (the SSL views made on the device, the extra view, the E-SSL labels) should differ
between ranks, repeat when the run is repeated, and, after a resume from a checkpoint, be what the uninterrupted run
drew at that step. :class:`StepStreams` gives each step its own generator, seeded by :func:`step_seed` of the four
numbers (splitmix64 mixing, :func:`essl_aug._random.rank_seed`): nothing depends on how many draws came before, so a
run resumed at ``(epoch, step)`` needs only the seed and the position, which :meth:`StepStreams.state_dict` holds
(a checkpoint's ``callbacks`` state in Lightning). Generators are reseeded, never read back: no host synchronisation.

Example:
    >>> streams = StepStreams(seed=0, rank=0)
    >>> a = torch.rand(2, generator=streams.generator(epoch=3, step=10))
    >>> b = torch.rand(2, generator=StepStreams(seed=0, rank=0).generator(epoch=3, step=10))
    >>> c = torch.rand(2, generator=StepStreams(seed=0, rank=1).generator(epoch=3, step=10))
    >>> torch.equal(a, b), torch.equal(a, c)
    (True, False)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from essl_aug._random import rank_seed
from essl_aug._validation import integer

__all__ = ["StepStreams", "step_seed"]


def step_seed(seed: int, rank: int, epoch: int, step: int) -> int:
    """The seed of step ``step`` of epoch ``epoch`` on rank ``rank`` of a run seeded ``seed``, in ``[0, 2**63)``.

    Example:
        >>> len({step_seed(0, r, e, s) for r in range(2) for e in range(3) for s in range(50)})
        300
    """
    return rank_seed(rank_seed(rank_seed(seed, rank), epoch), step)


def _count(value: object, name: str) -> int:
    number = integer(value)
    if number is None or number < 0:
        raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}.")
    return number


class StepStreams:
    """One generator per training step, seeded by ``(seed, rank, epoch, step)``.

    Args:
        seed: the run's seed (an integer >= 0).
        rank: this process's rank; None: ``torch.distributed``'s at each step (when it is initialised, else 0), so
            that streams made before the process group (as a model's are, in Lightning) still take their rank.

    :meth:`generator` returns the step's generator on a device (one generator per device, reseeded per call);
    :meth:`state_dict` / :meth:`load_state_dict` save and restore the seed, the rank it was made for and the last
    position asked for, which :meth:`resume` continues from.

    Example:
        >>> streams = StepStreams(seed=7, rank=0)
        >>> g = streams.generator(0, 5)
        >>> streams.state_dict()
        {'seed': 7, 'rank': 0, 'epoch': 0, 'step': 5}
    """

    def __init__(self, seed: int = 0, rank: int | None = None) -> None:
        self.seed = _count(seed, "seed")
        self._rank = None if rank is None else _count(rank, "rank")
        self.epoch, self.step = 0, -1
        self._generators: dict[torch.device, torch.Generator] = {}

    @property
    def rank(self) -> int:
        """The rank the streams draw for, the one given or else ``torch.distributed``'s now (0 without a group)."""
        if self._rank is not None:
            return self._rank
        return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0

    def seed_of(self, epoch: int, step: int) -> int:
        """The seed of step ``step`` of epoch ``epoch`` on this rank (:func:`step_seed`)."""
        return step_seed(self.seed, self.rank, _count(epoch, "epoch"), _count(step, "step"))

    def generator(self, epoch: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
        """The generator of step ``step`` (counted over the run or within the epoch, as long as it is always the
        same) of epoch ``epoch``, on ``device``, seeded afresh: the same numbers for the same position."""
        seed = self.seed_of(epoch, step)
        device = torch.device(device)
        if str(device) == "cuda":  # one generator per physical device
            device = torch.device("cuda", torch.cuda.current_device())
        gen = self._generators.get(device)
        if gen is None:
            gen = self._generators[device] = torch.Generator(device=device)
        gen.manual_seed(seed)
        self.epoch, self.step = int(epoch), int(step)
        return gen

    def resume(self) -> tuple[int, int]:
        """The position after the last one asked for (``(epoch, step + 1)``): where a resumed run goes on."""
        return self.epoch, self.step + 1

    def state_dict(self) -> dict[str, int]:
        """The seed, the rank and the last position asked for."""
        return {"seed": self.seed, "rank": self.rank, "epoch": self.epoch, "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`: the seed and the position. The rank stays this process's own (a checkpoint
        holds one rank's state, which every rank of the resumed run loads; the seed and position are shared)."""
        if not isinstance(state, dict) or not {"seed", "epoch", "step"} <= set(state):
            raise ValueError(f"`state` must be a StepStreams.state_dict() (seed, rank, epoch, step), got {state!r}.")
        self.seed = _count(state["seed"], "state['seed']")
        self.epoch, self.step = int(state["epoch"]), int(state["step"])

    def __repr__(self) -> str:
        return f"StepStreams(seed={self.seed}, rank={self.rank})"
