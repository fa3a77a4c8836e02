"""The lightly guide's edit of lightly's own ``examples/pytorch/simclr.py`` (an unmodified snapshot at
``../shared/clients/lightly``): the documented diff applies to the published example, changes as many lines as the
guide says, and the edited example trains with the E-SSL term."""

from __future__ import annotations

import os
import re
import runpy
from pathlib import Path

import pytest

pytest.importorskip("lightly")

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guides" / "lightly.md"
LIGHTLY = Path(os.environ.get("LIGHTLY_SRC") or ROOT.parent / "shared" / "clients" / "lightly").resolve()


WORDS = {2: "two", 3: "three", 5: "five", 6: "six"}


def documented_edits() -> list[tuple[str, list[str], str]]:
    """Each guide ``diff`` block marked ``<!-- lightly-edit: PATH -->``: the example's path, the diff's lines and the
    guide's sentence before it (which states the count)."""
    text = GUIDE.read_text()
    found = list(re.finditer(r"<!-- lightly-edit: (\S+) -->\n```diff\n(.*?)```", text, re.S))
    assert len(found) == 2, "the lightly guide has two <!-- lightly-edit: ... --> diff blocks (loader, device views)"
    paragraphs = [" ".join(text[: m.start()].rstrip().rsplit("\n\n", 1)[-1].split()) for m in found]
    return [(m.group(1), m.group(2).splitlines(), before) for m, before in zip(found, paragraphs, strict=True)]


EDITS = documented_edits()


def apply_unified_diff(text: str, diff: list[str]) -> str:
    """``text`` with the hunks of a unified ``diff`` applied; every context and removed line must match."""
    lines, out, at = text.splitlines(), [], 0
    hunks = [i for i, line in enumerate(diff) if line.startswith("@@")]
    for h, start in enumerate(hunks):
        old_start = int(re.match(r"@@ -(\d+)", diff[start]).group(1)) - 1  # type: ignore[union-attr]
        out += lines[at:old_start]
        at = old_start
        for line in diff[start + 1 : hunks[h + 1] if h + 1 < len(hunks) else len(diff)]:
            tag, body = line[:1], line[1:]
            if tag in (" ", "-"):
                assert lines[at] == body, f"line {at + 1} of the example is {lines[at]!r}, the diff expects {body!r}"
                at += 1
            if tag in (" ", "+"):
                out.append(body)
    return "\n".join(out + lines[at:]) + "\n"


def example(path: str) -> Path:
    source = LIGHTLY / path
    if not source.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"no lightly snapshot at {LIGHTLY}: CI runs this test")
        pytest.skip(f"no lightly snapshot at {LIGHTLY} (set LIGHTLY_SRC)")
    return source


@pytest.mark.parametrize(("path", "diff", "sentence"), EDITS, ids=["loader-view", "device-views"])
def test_the_guide_counts_the_lines_its_diff_changes(path: str, diff: list[str], sentence: str) -> None:
    apply_unified_diff(example(path).read_text(), diff)  # the diff applies to the published example
    body = [line for line in diff if not line.startswith(("---", "+++", "@@"))]
    added = sum(line.startswith("+") for line in body)
    removed = sum(line.startswith("-") for line in body)
    counted = f"is {WORDS[added]} lines, {WORDS[added - removed]} added and {WORDS[removed]} changed"
    assert counted in sentence, (counted, sentence)
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"{WORDS[added]} lines" in readme  # the README's guide list repeats the count


@pytest.mark.parametrize(("path", "diff", "sentence"), EDITS, ids=["loader-view", "device-views"])
def test_the_edited_example_trains_with_the_essl_term(
    path: str, diff: list[str], sentence: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edited = apply_unified_diff(example(path).read_text(), diff)
    # The run only (not the documented edit): a small fake data set, one epoch of two steps, no worker processes.
    for old, new in [
        (
            'torchvision.datasets.CIFAR10(\n    "datasets/cifar10", download=True, transform=transform\n)',
            "torchvision.datasets.FakeData(16, (3, 32, 32), transform=transform)",
        ),
        ("batch_size=256", "batch_size=8"),
        ("num_workers=8", "num_workers=0"),
        ("range(10)", "range(1)"),
    ]:
        assert old in edited, old
        edited = edited.replace(old, new)
    script = tmp_path / "simclr.py"
    script.write_text(edited)
    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(script), run_name="__main__")
    model, loss, optimizer = namespace["model"], namespace["loss"], namespace["optimizer"]
    stepped = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert {id(p) for p in model.essl.parameters()} <= stepped  # the E-SSL head is trained with the model
    assert float(loss) > float(namespace["criterion"](namespace["z0"], namespace["z1"]))  # + the weighted terms
