"""Step streams keyed by (seed, rank, epoch, step): distinct per rank, reproducible, and a run resumed from its
checkpoint draws, and trains, step for step as the uninterrupted run."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from essl_aug.streams import StepStreams, step_seed

lightly = pytest.importorskip("lightly", reason="the resume test trains through lightly's adapter")


def test_each_position_rank_and_seed_has_its_own_numbers() -> None:
    def draw(seed: int, rank: int, epoch: int, step: int) -> torch.Tensor:
        return torch.rand(4, generator=StepStreams(seed, rank).generator(epoch, step))

    first = draw(0, 0, 1, 2)
    assert torch.equal(first, draw(0, 0, 1, 2))  # a rerun
    for other in ((1, 0, 1, 2), (0, 1, 1, 2), (0, 0, 2, 2), (0, 0, 1, 3), (0, 0, 2, 1)):
        assert not torch.equal(first, draw(*other)), other
    assert len({step_seed(0, r, e, s) for r in range(4) for e in range(10) for s in range(100)}) == 4000


def test_the_generator_is_reseeded_not_read_and_the_position_is_kept() -> None:
    streams = StepStreams(seed=3, rank=1)
    g = streams.generator(2, 7)
    torch.rand(10, generator=g)  # drawing moves the generator; the next position reseeds it
    assert streams.generator(2, 8) is g and streams.resume() == (2, 9)
    assert torch.equal(
        torch.rand(3, generator=streams.generator(2, 7)), torch.rand(3, generator=StepStreams(3, 1).generator(2, 7))
    )
    restored = StepStreams(seed=0, rank=1)
    restored.load_state_dict(streams.state_dict())
    assert restored.seed == 3 and restored.resume() == streams.resume()


def test_the_rank_is_the_process_own_when_a_checkpoint_is_loaded() -> None:
    saved = StepStreams(seed=5, rank=0).state_dict()
    on_rank_1 = StepStreams(seed=0, rank=1)
    on_rank_1.load_state_dict(saved)  # Lightning saves rank 0's state; every rank loads it
    assert on_rank_1.rank == 1 and on_rank_1.seed == 5


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: StepStreams(seed=-1), r"`seed` must be an integer >= 0"),
        (lambda: StepStreams(seed=1.5), r"`seed` must be an integer >= 0"),  # type: ignore[arg-type]
        (lambda: StepStreams(rank=-2), r"`rank` must be an integer >= 0"),
        (lambda: StepStreams().generator(-1, 0), r"`epoch` must be an integer >= 0"),
        (lambda: StepStreams().load_state_dict({"seed": 1}), r"must be a StepStreams.state_dict\(\)"),
    ],
)
def test_bad_input_names_the_argument(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


class _Model(nn.Module):
    def __init__(self) -> None:
        from essl_aug.adapters.lightly import EquivariantStep

        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.projector = nn.Linear(8, 4)
        self.essl = EquivariantStep(self.backbone, 8, size=16, config={"hidden_dim": 16})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(x))


def _train(
    model: _Model, optimizer: torch.optim.Optimizer, streams: StepStreams, data: torch.Tensor, epochs: range, steps: int
) -> list[torch.Tensor]:
    losses = []
    for epoch in epochs:
        for step in range(steps):
            images = data[epoch * steps + step]
            x0, x1 = model.essl.views(images, streams.generator(epoch, step))
            z0, z1 = model(x0), model(x1)
            loss = (z0 - z1).square().mean() + model.essl.loss(z0, z1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
    return losses


def test_a_resumed_run_is_the_uninterrupted_run_step_for_step() -> None:
    data = torch.randint(0, 256, (6, 4, 3, 20, 20), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

    def fresh(seed: int) -> tuple[_Model, torch.optim.Optimizer]:
        torch.manual_seed(seed)
        model = _Model()
        return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    model, opt = fresh(0)
    whole = _train(model, opt, StepStreams(seed=11, rank=0), data, range(3), 2)

    model, opt = fresh(0)
    streams = StepStreams(seed=11, rank=0)
    first = _train(model, opt, streams, data, range(2), 2)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "streams": streams.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer)
    model, opt = fresh(123)  # another process: other weights, another global random state until restored
    torch.rand(100)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    resumed_streams = StepStreams(seed=0, rank=0)
    resumed_streams.load_state_dict(state["streams"])
    assert resumed_streams.resume() == (1, 2)  # after step 1 of epoch 1: the next epoch starts
    rest = _train(model, opt, resumed_streams, data, range(2, 3), 2)
    assert all(torch.equal(a, b) for a, b in zip(whole, first + rest, strict=True))
    other = _train(*fresh(0), StepStreams(seed=12, rank=0), data, range(1), 2)
    assert not torch.equal(other[0], whole[0])  # the stream, not the data, made them equal
