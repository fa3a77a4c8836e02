"""The README's marked examples run as written; the ones these tests know (the quickstart, the guide's plain-PyTorch
and Lightning examples) also do what their text says.

Every block marked ``<!-- run: NAME -->`` in the README runs, whatever its name: a block that fails fails its test.
A known block that is no longer there is skipped with the reason (the README's examples may be renamed or dropped).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import tests.readme_blocks as readme_module
from tests.docs.doc_blocks import doc_blocks, missing_modules, run_doc_block
from tests.readme_blocks import README, readme_blocks, run_readme_block

BLOCKS = readme_blocks()


def test_the_readme_marks_runnable_examples() -> None:
    assert BLOCKS, f"{README} has no block marked <!-- run: NAME --> before a ```python block"
    assert all(code.strip() for code in BLOCKS.values())


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_every_marked_readme_block_runs(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = missing_modules(BLOCKS[name])
    if missing:
        pytest.skip(f"README block {name!r} needs {', '.join(missing)} (not installed)")
    monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
    namespace = run_readme_block(name)
    assert namespace["__name__"] == f"readme_{name.replace('-', '_')}"


def test_a_failing_block_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the runner does with a block that raises: the error reaches the test."""
    page = tmp_path / "README.md"
    page.write_text("<!-- run: broken -->\n```python\nraise ValueError('from the block')\n```\n", encoding="utf-8")
    monkeypatch.setattr(readme_module, "README", page)
    assert readme_module.readme_blocks() == {"broken": "raise ValueError('from the block')"}
    with pytest.raises(ValueError, match="from the block"):
        readme_module.run_readme_block("broken")
    with pytest.raises(KeyError, match=r"no block marked <!-- run: absent -->; found \['broken'\]"):
        readme_module.run_readme_block("absent")


def _readme(name: str) -> dict:
    if name not in BLOCKS:
        pytest.skip(f"the README has no block marked <!-- run: {name} --> any more")
    return run_readme_block(name)


def _guide(name: str, namespace: dict | None = None) -> dict:
    if name not in doc_blocks():
        pytest.skip(f"the guides have no block marked <!-- run: {name} --> any more")
    return run_doc_block(name, namespace)


def test_quickstart_makes_what_it_says() -> None:
    ns = _readme("quickstart")
    assert ns["dihedral"].num_classes == 8
    assert ns["labels"].shape == (8,)
    assert int(ns["labels"].max()) < 24


def test_plain_pytorch_example_trains_backbone_and_head() -> None:
    torch.manual_seed(0)
    ns = _guide("plain-pytorch")
    out = ns["essl_out"]
    assert out.loss.requires_grad
    assert torch.isclose(out.loss.detach(), 0.4 * out.cross_entropy)
    hits = float(out.accuracy) * 4 * len(ns["images"])  # every quarter turn of the 16 images
    assert hits == int(hits)  # the fraction of the 64 views predicted right, not a score
    head_params = list(ns["essl"].head.parameters())
    optimised = {id(p) for group in ns["optimizer"].param_groups for p in group["params"]}
    assert all(id(p) in optimised for p in head_params)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head_params)
    assert ns["backbone"][0].weight.grad.abs().sum() > 0


def test_plain_pytorch_nt_xent_is_the_simclr_loss() -> None:
    nt_xent = _guide("plain-pytorch")["nt_xent"]
    z = torch.randn(6, 5)
    # Identical views with a tiny temperature: the positive dominates, the loss is ~0.
    assert float(nt_xent(z, z, temperature=0.01)) < 1e-3
    # Brute-force definition: -log softmax over the 2N - 2 other samples.
    z1, z2 = torch.randn(4, 3), torch.randn(4, 3)
    zz = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    losses = []
    for i in range(8):
        j = (i + 4) % 8
        others = [k for k in range(8) if k != i]
        logits = torch.stack([zz[i] @ zz[k] / 0.5 for k in others])
        losses.append(-(zz[i] @ zz[j] / 0.5 - torch.logsumexp(logits, 0)))
    assert torch.isclose(nt_xent(z1, z2), torch.stack(losses).mean(), atol=1e-6)


def test_lightning_example_fits_and_logs() -> None:
    pytest.importorskip("lightning")
    ns = _guide("lightning", _guide("plain-pytorch"))
    metrics = ns["trainer"].callback_metrics
    assert {"essl_loss", "essl_acc"} <= set(metrics)
    hits = float(metrics["essl_acc"]) * 4 * 8  # the last batch: every quarter turn of 8 images
    assert hits == int(hits)  # the fraction of the 32 views predicted right, not a score
    assert ns["trainer"].state.finished
