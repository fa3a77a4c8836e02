"""Extract the documentation's Python code blocks so the tests execute them.

Every fenced ```` ```python ```` block of ``docs/**/*.md`` runs, in page order, each page in one namespace (a
block may use what an earlier block of its page defined). Two optional markers, on the line before a block:

- ``<!-- run: NAME -->`` names it, as in the README (``tests/readme_blocks.py``): ``run_doc_block(NAME)`` runs it,
  and a block of the same name in the README must have the same code;
- ``<!-- no-run: REASON -->`` keeps a fragment that cannot run on its own (lines to paste into another
  project's file) out of the run; the test reports it as skipped with REASON.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
_FENCE = re.compile(
    r"^(?:<!-- (?P<marker>run|no-run): (?P<arg>[^\n]*?) -->[ \t]*\n)?```python[ \t]*\n(?P<code>.*?)^```[ \t]*$",
    re.DOTALL | re.MULTILINE,
)
_NAME = re.compile(r"[\w-]+")

#: How to get an optional module a block imports (for the skip reason).
INSTALL_HINTS = {
    "lightning": 'pip install "essl-aug[lightning]"',
    "lightly": 'pip install "essl-aug[lightly]"',
    "torchvision": 'pip install "essl-aug[test]"',
    "sklearn": 'pip install "essl-aug[demo]"',
    "matplotlib": 'pip install "essl-aug[demo]"',
    "solo": "scripts/install_solo_overlay.sh",
    "omegaconf": 'pip install "essl-aug[solo]"',
    "stable_pretraining": 'pip install "essl-aug[spt]"',
}


@dataclass(frozen=True)
class Block:
    """One ```` ```python ```` block of a documentation page."""

    page: Path
    line: int
    code: str
    name: str | None = None
    no_run: str | None = None

    @property
    def id(self) -> str:
        """``guides/pytorch.md:12`` (the page relative to ``docs/`` and the block's first line)."""
        page = self.page.relative_to(DOCS).as_posix() if self.page.is_relative_to(DOCS) else self.page.name
        return f"{page}:{self.line}"


def doc_pages() -> list[Path]:
    """Every Markdown page of the documentation (build output excluded), sorted."""
    return sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.relative_to(DOCS).parts)


def page_blocks(page: Path) -> list[Block]:
    """The Python blocks of ``page``, in order."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for m in _FENCE.finditer(text):
        marker, arg = m["marker"], (m["arg"] or "").strip()
        if marker == "run" and not _NAME.fullmatch(arg):
            raise ValueError(f"{page}: `<!-- run: {arg} -->` is not a block name (letters, digits, _ and -)")
        if marker == "no-run" and not arg:
            raise ValueError(f"{page}: `<!-- no-run: -->` needs a reason")
        line = text.count("\n", 0, m.start("code")) + 1
        blocks.append(
            Block(
                page,
                line,
                m["code"].rstrip("\n"),
                name=arg if marker == "run" else None,
                no_run=arg if marker == "no-run" else None,
            )
        )
    return blocks


def all_blocks() -> list[Block]:
    """Every Python block of the documentation, page by page."""
    return [b for page in doc_pages() for b in page_blocks(page)]


def doc_blocks() -> dict[str, str]:
    """Every named block (``<!-- run: NAME -->``) of the documentation, by name; a name used twice is an error."""
    named: dict[str, Block] = {}
    for b in all_blocks():
        if b.name is None:
            continue
        if b.name in named:
            raise ValueError(f"block name {b.name!r} is used twice: {named[b.name].id} and {b.id}")
        named[b.name] = b
    return {name: b.code for name, b in named.items()}


def missing_modules(code: str) -> list[str]:
    """Top-level modules that ``code`` imports and that are not installed, sorted."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return sorted(r for r in roots if importlib.util.find_spec(r) is None)


def skip_reason(block: Block) -> str | None:
    """Why ``block`` cannot run here (marked no-run, or an optional module is absent), or None."""
    if block.no_run is not None:
        return f"{block.id}: not runnable on its own: {block.no_run}"
    missing = missing_modules(block.code)
    if missing:
        hints = "; ".join(f"{m}: {INSTALL_HINTS.get(m, 'not installed')}" for m in missing)
        return f"{block.id} needs {', '.join(missing)} ({hints})"
    return None


def run_block(block: Block, namespace: dict) -> dict:
    """Execute ``block`` in ``namespace`` (its file name in tracebacks is ``docs/PAGE:LINE``) and return it."""
    exec(compile(block.code, f"docs/{block.id}", "exec"), namespace)
    return namespace


def run_doc_block(name: str, namespace: dict | None = None) -> dict:
    """Execute the documentation block ``name`` in ``namespace`` (a fresh one by default) and return it.

    The same contract as ``tests.readme_blocks.run_readme_block``: a block that builds on another one runs in
    that block's namespace.
    """
    named = {b.name: b for b in all_blocks() if b.name is not None}
    if name not in named:
        raise KeyError(f"the docs have no block marked <!-- run: {name} -->; found {sorted(named)}")
    namespace = {"__name__": f"docs_{name.replace('-', '_')}"} if namespace is None else namespace
    return run_block(named[name], namespace)
