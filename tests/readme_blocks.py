"""Extract the README's runnable code blocks (marked ``<!-- run: NAME -->``) so the tests execute them."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"<!-- run: (?P<name>[\w-]+) -->\s*\n```python\n(?P<code>.*?)\n```", re.DOTALL)


def readme_blocks() -> dict[str, str]:
    """Every marked block of the README, by name."""
    return {m["name"]: m["code"] for m in _BLOCK.finditer(README.read_text(encoding="utf-8"))}


def run_readme_block(name: str, namespace: dict | None = None) -> dict:
    """Execute the README block ``name`` in ``namespace`` (a fresh one by default) and return the namespace."""
    blocks = readme_blocks()
    if name not in blocks:
        raise KeyError(f"README has no block marked <!-- run: {name} -->; found {sorted(blocks)}")
    namespace = {"__name__": f"readme_{name.replace('-', '_')}"} if namespace is None else namespace
    exec(compile(blocks[name], f"README.md[{name}]", "exec"), namespace)
    return namespace
