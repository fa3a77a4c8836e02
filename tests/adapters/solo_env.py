"""Where the solo-learn tests find solo-learn and what it runs on.

solo-learn's GitHub version (HEAD) is not on the package index: its code comes from a clone, by default the
unmodified snapshot at ``../shared/clients/solo-learn`` from the repository root (``SOLO_LEARN_SRC`` names another).
It runs on lightning 2.1.2 and torchmetrics < 0.12, which ``scripts/install_solo_overlay.sh`` installs as a pinned
overlay; ``ESSL_SOLO_OVERLAY`` names it and marks the pytest session that runs these tests (``make test-solo``).
Where the clone is absent (a clone of this project on its own) the tests skip and say why; under CI (``CI=true``)
its absence fails them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
#: The test files that need solo-learn: collected only in the session that has the overlay.
SOLO_TESTS = (
    "test_solo_learn.py",
    "test_solo_learn_pretrain.py",
    "test_solo_learn_resume.py",
    "test_solo_learn_multicrop.py",
)


def solo_learn_src() -> Path:
    """The solo-learn clone: ``$SOLO_LEARN_SRC``, else ``../shared/clients/solo-learn`` from the repository root."""
    return Path(os.environ.get("SOLO_LEARN_SRC") or ROOT.parent / "shared" / "clients" / "solo-learn").resolve()


def overlay() -> Path | None:
    """The overlay of solo-learn's dependencies (``$ESSL_SOLO_OVERLAY``), or None outside the solo-learn session."""
    value = os.environ.get("ESSL_SOLO_OVERLAY")
    return Path(value).resolve() if value else None


def missing() -> str | None:
    """Why solo-learn cannot be found, or None."""
    src = solo_learn_src()
    if not (src / "solo" / "methods").is_dir() or not (src / "main_pretrain.py").is_file():
        return f"no solo-learn clone at {src} (set SOLO_LEARN_SRC to a clone of github.com/vturrisi/solo-learn)"
    return None


def require_solo() -> None:
    """At a test module's top: skip it (with the reason) where solo-learn is absent, fail it under CI."""
    reason = missing()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI runs the solo-learn tests against it", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


_LINKS: list[Path] = []


def solo_only_path() -> Path:
    """A folder holding only a link to the clone's ``solo`` package: the clone's root also has a ``tests`` package,
    which would shadow this project's ``tests`` on ``sys.path``."""
    if not _LINKS:
        folder = Path(tempfile.mkdtemp(prefix="essl-solo-path-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        (folder / "solo").symlink_to(solo_learn_src() / "solo", target_is_directory=True)
        _LINKS.append(folder)
    return _LINKS[0]


def setup_session() -> None:
    """Put the overlay and the clone's ``solo`` first on ``sys.path`` (the session with ``ESSL_SOLO_OVERLAY``)."""
    path = overlay()
    if path is None or missing() is not None:
        return
    if not (path / "lightning").is_dir():
        raise pytest.UsageError(f"ESSL_SOLO_OVERLAY={path} is not an overlay: run scripts/install_solo_overlay.sh")
    early = [m for m in ("lightning", "torchmetrics") if m in sys.modules]
    if early:
        raise pytest.UsageError(f"{early} were imported before the solo-learn overlay was put on the path")
    sys.path[:0] = [str(path), str(solo_only_path())]
    with warnings.catch_warnings():  # what solo-learn and its dependencies say on import is theirs to fix
        warnings.simplefilter("ignore")
        import solo.methods  # noqa: F401  (an import error here fails the session: solo-learn must run)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a solo-learn script: the overlay and the clone's ``solo`` on ``PYTHONPATH``, one thread."""
    path = overlay()
    assert path is not None, "the solo-learn session sets ESSL_SOLO_OVERLAY"
    entries = [str(path), str(solo_only_path()), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(e for e in entries if e), "PYTHONDONTWRITEBYTECODE": "1"}
    return {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


def tiny_backbone(method: str, **kwargs: Any) -> nn.Module:
    """A backbone for ``BaseMethod._BACKBONES`` (called as ``fn(method, **kwargs)``): 8 pooled features."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    net.num_features = 8  # what solo-learn reads as the features' width of a backbone other than a ResNet
    return net
