"""The speed, views and traffic benchmarks validate their options before running: a bad value ends in a usage error
naming the option, and nothing is written (a run that did not measure writes no result)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from benchmarks import speed, traffic, views

CASES: list[tuple[Callable[[list[str]], object], list[str], str]] = [
    (traffic.main, ["--families", "nope"], "argument --families: invalid choice: 'nope'"),
    (views.main, ["--size", "0"], "argument --size: must be positive"),
    (views.main, ["--size", "-4"], "argument --size: must be positive"),
    (views.main, ["--min-run-time", "-1"], "argument --min-run-time: must be > 0, got -1"),
    (views.main, ["--min-run-time", "0"], "argument --min-run-time: must be > 0, got 0"),
    (views.main, ["--min-run-time", "nan"], "argument --min-run-time: must be a finite number > 0"),
    (views.main, ["--shapes", "abc"], "argument --shapes: must be a batch shape BxCxHxW"),
    (views.main, ["--repeats", "0"], "argument --repeats: must be positive"),
    (views.main, ["--threads", "0"], "argument --threads: must be positive"),
    (speed.main, ["--shapes", "1x2"], "argument --shapes: must be a batch shape BxCxHxW"),
    (speed.main, ["--shapes", "0x3x8x8"], "argument --shapes: must be a batch shape BxCxHxW"),
    (speed.main, ["--repeats", "0"], "argument --repeats: must be positive"),
    (traffic.main, ["--shapes", "8x3x16"], "argument --shapes: must be a batch shape BxCxHxW"),
]


@pytest.mark.parametrize(("main", "argv", "message"), CASES, ids=[f"{m.__module__}{a}" for m, a, _ in CASES])
def test_a_bad_option_is_a_usage_error_and_writes_nothing(
    main: Callable[[list[str]], object], argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out-dir", str(out)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
@pytest.mark.parametrize("main", [speed.main, views.main, traffic.main])
def test_cuda_without_a_gpu_is_a_usage_error(
    main: Callable[[list[str]], object], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit):
        main(["--device", "cuda", "--out-dir", str(tmp_path / "results")])
    assert "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
