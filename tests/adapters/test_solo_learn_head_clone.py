"""Opt-in: solo-learn's OWN method tests from a GitHub clone, with the adapter swapped in.

Set ``SOLO_LEARN_SRC=/path/to/solo-learn`` (a clone; its dependencies importable, e.g. both overlays of
``scripts/install_solo_overlay.sh``). ``SOLO_LEARN_TESTS`` picks the test files (default: the four target
methods). Skipped otherwise: the clone cannot come from PyPI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = os.environ.get("SOLO_LEARN_SRC")
TESTS = os.environ.get("SOLO_LEARN_TESTS", "test_simclr.py test_byol.py test_barlow_twins.py test_vicreg.py").split()

pytestmark = pytest.mark.skipif(not SRC, reason="SOLO_LEARN_SRC does not point to a solo-learn clone")


def test_own_method_tests_pass_with_the_adapter_swapped_in() -> None:
    src = Path(SRC).resolve()  # type: ignore[arg-type]
    files = [str(src / "tests" / "methods" / name) for name in TESTS]
    missing = [f for f in files if not Path(f).is_file()]
    assert not missing, f"not a solo-learn clone with tests/methods: {missing}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore"]
    cmd += ["-p", "essl_aug.adapters.solo_learn_swap_plugin", "--rootdir", str(src), *files]
    out = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True, timeout=900)
    tail = (out.stdout + out.stderr)[-4000:]
    assert out.returncode == 0, tail
    assert f"{len(files)} passed" in out.stdout, tail
    steps = [line for line in out.stdout.splitlines() if line.startswith("essl-aug swap:") and "E-SSL steps" in line]
    assert steps and int(steps[-1].split()[2]) > 0, tail
