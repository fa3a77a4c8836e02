"""The one-line error exit shared by the tests of the scripts (``benchmarks.demo``, ``benchmarks.show``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest


def fail(main: Callable[[list[str]], object], argv: list[str], match: str) -> str:
    """Run ``main(argv)``, expect a one-line error exit (no traceback) matching ``match``; return the message (empty
    for an argparse usage error, whose message went to stderr)."""
    with pytest.raises(SystemExit) as done:
        main(argv)
    code = done.value.code
    message = code if isinstance(code, str) else ""
    if code == 2:  # an argparse usage error: its message went to stderr
        return ""
    assert isinstance(code, str) and match in code and "\n" not in code, code
    return message
