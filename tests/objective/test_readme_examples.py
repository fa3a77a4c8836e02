"""The README's quickstart and the plain-PyTorch and Lightning guide's examples run as written."""

from __future__ import annotations

import pytest
import torch

from tests.docs.doc_blocks import doc_blocks, run_doc_block
from tests.readme_blocks import readme_blocks, run_readme_block


def test_readme_and_guide_mark_the_examples() -> None:
    assert "quickstart" in readme_blocks()
    assert {"quickstart", "plain-pytorch", "lightning"} <= set(doc_blocks())


def test_quickstart_runs() -> None:
    ns = run_readme_block("quickstart")
    assert ns["dihedral"].num_classes == 8
    assert ns["labels"].shape == (8,)
    assert int(ns["labels"].max()) < 24


def test_plain_pytorch_example_trains_backbone_and_head() -> None:
    torch.manual_seed(0)
    ns = run_doc_block("plain-pytorch")
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
    nt_xent = run_doc_block("plain-pytorch")["nt_xent"]
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
    ns = run_doc_block("plain-pytorch")
    ns = run_doc_block("lightning", ns)
    metrics = ns["trainer"].callback_metrics
    assert {"essl_loss", "essl_acc"} <= set(metrics)
    hits = float(metrics["essl_acc"]) * 4 * 8  # the last batch: every quarter turn of 8 images
    assert hits == int(hits)  # the fraction of the 32 views predicted right, not a score
    assert ns["trainer"].state.finished
