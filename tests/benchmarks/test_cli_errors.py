"""The speed, views and traffic benchmarks validate their options before running: a bad value ends in a usage error
naming the option, and nothing is written (a run that did not measure writes no result)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from benchmarks import speed, traffic, views

MAINS = {"speed": speed.main, "views": views.main, "traffic": traffic.main}
#: script, option, value: the start of argparse's message after "argument OPTION: ".
TABLE = """
traffic --families nope: invalid choice: 'nope'
views --size 0: must be positive
views --size -4: must be positive
views --min-run-time -1: must be > 0, got -1
views --min-run-time 0: must be > 0, got 0
views --min-run-time nan: must be a finite number > 0
views --shapes abc: must be a batch shape BxCxHxW
views --repeats 0: must be positive
views --threads 0: must be positive
speed --shapes 1x2: must be a batch shape BxCxHxW
speed --shapes 0x3x8x8: must be a batch shape BxCxHxW
speed --repeats 0: must be positive
traffic --shapes 8x3x16: must be a batch shape BxCxHxW
"""
CASES = [
    (case.split(" ", 3), message) for case, message in (line.split(": ", 1) for line in TABLE.strip().splitlines())
]


@pytest.mark.parametrize(("case", "message"), CASES, ids=[" ".join(case) for case, _ in CASES])
def test_a_bad_option_is_a_usage_error_and_writes_nothing(
    case: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    script, option, value = case
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        MAINS[script]([option, value, "--out-dir", str(out)])
    assert exit_info.value.code == 2
    assert f"argument {option}: {message}" in capsys.readouterr().err
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
