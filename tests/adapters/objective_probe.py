"""A probe objective for the adapters' tests: it needs every input a step offers and keeps what it received.

It regresses the difference of the two views' crop scales from ``f1 - f2`` (AugSelf's idea, one number), so a test
can recompute its loss from the views and parameters it made itself. Loaded by path (``importlib``) by the tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from essl_aug.objectives.base import Objective, ObjectiveOutput, StepInputs


class Probe(Objective):
    """Regresses the difference of the two crops' scales from ``f1 - f2`` (AugSelf's idea, one number), and keeps
    what it received."""

    requires = frozenset({"backbone", "extra", "features", "embeddings", "params"})

    def __init__(self, in_features: int, embedding_dim: int, weight: float = 1.0) -> None:
        super().__init__(weight)
        self.embedding_dim = embedding_dim
        self.linear = nn.Linear(in_features, 1)
        self.seen: list[StepInputs] = []
        self.losses: list[torch.Tensor] = []

    def target(self, inputs: StepInputs) -> torch.Tensor:
        assert inputs.params is not None
        return inputs.params[0]["resized_crop"].scale - inputs.params[1]["resized_crop"].scale

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        assert inputs.features is not None
        self.seen.append(inputs)
        f1, f2 = inputs.features
        mse = F.mse_loss(self.linear(f1 - f2).squeeze(1), self.target(inputs))
        self.losses.append(mse)
        return ObjectiveOutput(self.weight * mse, {"mse": mse.detach()})
