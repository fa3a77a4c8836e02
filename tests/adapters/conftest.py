"""The adapters' tests run in two pytest sessions.

solo-learn's GitHub version runs on lightning 2.1.2 and torchmetrics 0.11 (a pinned overlay), lightly's tests on the
venv's Lightning, so the two cannot share a process. The session with ``ESSL_SOLO_OVERLAY`` set (``make test-solo``)
collects only the solo-learn tests (``solo_env.SOLO_TESTS``), with the overlay and the clone's ``solo`` first on
``sys.path``; every other session leaves them out and says so at the end::

    ESSL_SOLO_OVERLAY=.solo-overlay .venv/bin/python -m pytest tests/adapters/test_solo_learn.py \\
        tests/adapters/test_solo_learn_pretrain.py
"""

from __future__ import annotations

from pathlib import Path

from tests.adapters import solo_env, spt_env

_SOLO_SESSION = solo_env.overlay() is not None
_SPT_SESSION = spt_env.overlay() is not None  # make test-spt: the only session that collects spt_env.SPT_TESTS
collect_ignore = sorted(
    p.name
    for p in Path(__file__).parent.glob("test_*.py")
    if (p.name in solo_env.SOLO_TESTS) != _SOLO_SESSION or (p.name in spt_env.SPT_TESTS and not _SPT_SESSION)
) + ([] if _SPT_SESSION else ["spt_ddp_worker.py"])  # imports the framework (collected for its doctests)
solo_env.setup_session()


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not _SOLO_SESSION:
        terminalreporter.write_line(
            f"solo-learn adapter tests ({', '.join(solo_env.SOLO_TESTS)}) run in their own session: make test-solo"
        )
    if not _SPT_SESSION:
        terminalreporter.write_line(
            f"stable-pretraining adapter tests ({', '.join(spt_env.SPT_TESTS)}) run in their own session: make test-spt"
        )
