"""Every Python block of the documentation runs as written; named blocks match the README's."""

from __future__ import annotations

from pathlib import Path

import pytest

from essl_aug import family_names
from tests.docs.doc_blocks import DOCS, Block, all_blocks, doc_blocks, missing_modules, page_blocks, skip_reason
from tests.readme_blocks import readme_blocks

BLOCKS = all_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the page's blocks up to this one in one namespace, in an empty working directory."""
    chain = [b for b in page_blocks(block.page) if b.line <= block.line]
    reason = skip_reason(block) or next((r for b in chain if b.no_run is None and (r := skip_reason(b))), None)
    if reason:
        pytest.skip(reason)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{block.page.stem}"}
    for b in chain:
        if b.no_run is None:
            exec(compile(b.code, f"docs/{b.id}", "exec"), namespace)


def test_the_guides_hold_the_readme_examples() -> None:
    """The examples the README's tests check are in the guides, under the README's names."""
    assert {"quickstart", "plain-pytorch", "lightning", "lightly", "data-loader"} <= set(doc_blocks())


def test_named_blocks_are_the_readme_blocks() -> None:
    """A block in both the README and a guide is the same code (no silent drift between the two copies)."""
    readme, docs = readme_blocks(), doc_blocks()
    drifted = sorted(name for name in set(readme) & set(docs) if readme[name] != docs[name])
    assert not drifted, f"README and docs differ in blocks {drifted}; copy one into the other"


def test_every_family_has_its_grid() -> None:
    """Each registered family has a `python -m benchmarks.show` grid on the label conventions page."""
    labels = (DOCS / "guides" / "labels.md").read_text(encoding="utf-8")
    for name in family_names():
        grid = DOCS / "_static" / "grids" / f"{name}.png"
        assert grid.is_file(), f"no grid for {name!r}: python -m benchmarks.show --family {name} --out {grid}"
        assert f"](../_static/grids/{name}.png)" in labels, f"guides/labels.md does not show the {name!r} grid"


def test_block_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n<!-- run: first -->\n```python\nx = 1\n```\n\n```bash\nls\n```\n\n"
        "<!-- no-run: a fragment -->\n```python\n    y = x\n```\n\n```python\nz = x + 1\n```\n",
        encoding="utf-8",
    )
    blocks = page_blocks(page)
    assert [(b.name, b.no_run, b.code, b.line) for b in blocks] == [
        ("first", None, "x = 1", 5),
        (None, "a fragment", "    y = x", 14),
        (None, None, "z = x + 1", 18),
    ]
    assert skip_reason(blocks[1]) == "page.md:14: not runnable on its own: a fragment"
    assert skip_reason(blocks[2]) is None


@pytest.mark.parametrize("marker", ["<!-- run: two words -->", "<!-- no-run:  -->"])
def test_bad_markers_are_errors(marker: str, tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"{marker}\n```python\nx = 1\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="run"):
        page_blocks(page)


def test_missing_modules_are_found() -> None:
    code = "import torch\nimport not_a_module_xyz.sub\nfrom also_missing_xyz import a\nfrom . import b\n"
    assert missing_modules(code) == ["also_missing_xyz", "not_a_module_xyz"]
    reason = skip_reason(Block(DOCS / "guides" / "x.md", 3, "import lightly_missing_xyz"))
    assert reason == "guides/x.md:3 needs lightly_missing_xyz (lightly_missing_xyz: not installed)"


@pytest.mark.parametrize("name", ["quickstart", "plain-pytorch", "lightning"])
def test_a_framework_example_runs_alone(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader copies one example, not the page: it must define everything it uses (its own imports and loss)."""
    (block,) = (b for b in BLOCKS if b.name == name)
    if reason := skip_reason(block):
        pytest.skip(reason)
    monkeypatch.chdir(tmp_path)
    exec(compile(block.code, f"docs/{block.id}", "exec"), {"__name__": f"docs_{name}"})
