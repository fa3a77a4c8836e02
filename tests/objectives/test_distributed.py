"""Two CPU processes (gloo): per-rank label streams, DDP-synchronised head gradients, reproducibility."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")


def _spawn(tmp: Path, seed: int = 7) -> list[dict]:
    from tests.distributed_worker import run

    tmp.mkdir(parents=True, exist_ok=True)
    mp.spawn(run, args=(2, str(tmp / "init"), str(tmp), seed), nprocs=2, join=True)
    return [torch.load(tmp / f"rank{r}.pt") for r in range(2)]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], list[dict]]:
    return _spawn(tmp_path_factory.mktemp("first")), _spawn(tmp_path_factory.mktemp("second"))


def test_ranks_draw_different_label_streams_by_default(two_runs: tuple[list[dict], list[dict]]) -> None:
    r0, r1 = two_runs[0]
    assert not torch.equal(r0["per_rank_labels"], r1["per_rank_labels"])


def test_ranks_share_the_global_stream_when_asked(two_runs: tuple[list[dict], list[dict]]) -> None:
    r0, r1 = two_runs[0]
    assert torch.equal(r0["shared_labels"], r1["shared_labels"])


def test_reseeding_restarts_each_ranks_label_stream(two_runs: tuple[list[dict], list[dict]]) -> None:
    """``torch.manual_seed(s)`` again restarts the private per-rank labels of the same module (not a fresh one)."""
    r0, r1 = two_runs[0]
    for r in (r0, r1):
        assert torch.equal(r["first_stream"], r["second_stream"])
        assert not torch.equal(r["first_stream"][:30], r["first_stream"][30:60])  # the stream moves between calls
    assert not torch.equal(r0["first_stream"], r1["first_stream"])  # still one stream per rank


def test_step_streams_take_the_rank_and_differ_between_ranks(two_runs: tuple[list[dict], list[dict]]) -> None:
    """``StepStreams(seed)`` on each rank of a gloo group: the rank from torch.distributed, the same images made into
    other views on each rank (reproduced by the second run: see the last test)."""
    r0, r1 = two_runs[0]
    assert (int(r0["stream_rank"]), int(r1["stream_rank"])) == (0, 1)
    assert (int(r0["early_stream_rank"]), int(r1["early_stream_rank"])) == (0, 1)  # made before the group
    assert not torch.equal(r0["stream_boxes"], r1["stream_boxes"]) and not torch.equal(
        r0["stream_view"], r1["stream_view"]
    )


def test_head_gradients_are_synchronised_by_ddp(two_runs: tuple[list[dict], list[dict]]) -> None:
    r0, r1 = two_runs[0]
    assert not torch.allclose(r0["local_head_grad"], r1["local_head_grad"])  # different data per rank
    assert torch.allclose(r0["synced_head_grad"], r1["synced_head_grad"])
    mean = (r0["local_head_grad"] + r1["local_head_grad"]) / 2
    assert torch.allclose(r0["synced_head_grad"], mean, atol=1e-6)


def test_runs_are_reproducible_under_fixed_seeds(two_runs: tuple[list[dict], list[dict]]) -> None:
    first, second = two_runs
    for a, b in zip(first, second, strict=True):
        for key in a:
            assert torch.equal(a[key], b[key]), key
