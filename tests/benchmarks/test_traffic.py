"""The memory-traffic counter counts exactly, no family moves more bytes than its bound in either form, and the
special forms chosen by ``essl_aug.fast_forms()`` move fewer bytes than the plain forms where they exist.

The bounds are a regression guard: today's counts (``python -m benchmarks.traffic``) rounded up a little, for the
plain forms (the default) and the special forms. Tighten a bound when an op improves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import essl_aug
from benchmarks import speed, traffic
from essl_aug import build_family

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (64, 3, 32, 32)

#: (family, dtype) -> {form: (bytes read + written / the floor's bytes, kernels)} in ``random`` mode on SHAPE.
BOUNDS: dict[tuple[str, str], dict[str, tuple[float, int]]] = {
    ("blur", "float32"): {"plain": (6.1, 8), "fast": (6.1, 8)},
    ("d4", "float32"): {"plain": (1.75, 2), "fast": (1.15, 8)},
    ("grayscale", "float32"): {"plain": (2.55, 5), "fast": (2.55, 5)},
    ("hflip", "float32"): {"plain": (1.7, 2), "fast": (1.1, 3)},
    ("invert", "float32"): {"plain": (2.55, 3), "fast": (2.55, 3)},
    ("jigsaw", "float32"): {"plain": (1.8, 2), "fast": (1.1, 2)},
    ("rotation", "float32"): {"plain": (1.7, 2), "fast": (1.15, 8)},
    ("translation", "float32"): {"plain": (1.7, 2), "fast": (1.1, 2)},
    ("vflip", "float32"): {"plain": (1.7, 2), "fast": (1.05, 2)},
    ("rotation x vflip", "float32"): {"plain": (1.75, 2), "fast": (1.15, 8)},
    ("rotation x jigsaw", "float32"): {"plain": (2.05, 2), "fast": (2.05, 2)},
    ("hflip", "uint8"): {"plain": (3.75, 2), "fast": (1.35, 3)},
    ("invert", "uint8"): {"plain": (2.55, 3), "fast": (2.55, 3)},
    ("jigsaw", "uint8"): {"plain": (4.2, 2), "fast": (1.25, 2)},
    ("rotation", "uint8"): {"plain": (3.8, 2), "fast": (1.4, 8)},
    ("vflip", "uint8"): {"plain": (3.75, 2), "fast": (1.1, 2)},
}

#: The pixel moves: their special forms read no per-pixel index (lookups with broadcast row and column indices, or
#: runs of pixels), so they move fewer bytes than the plain gather in every dtype, and at most this many times the
#: floor's.
MOVES = ("rotation", "vflip", "hflip", "jigsaw", "d4", "translation", "rotation x vflip")
MOVES_BOUND = 1.7


def test_every_family_has_a_bound() -> None:
    assert {name for name, _ in BOUNDS} == set(traffic.families())


@pytest.mark.parametrize(("name", "dtype"), sorted(BOUNDS))
def test_traffic_stays_under_its_bound_in_both_forms(name: str, dtype: str) -> None:
    family = traffic.families()[name]
    x = speed._images(SHAPE, getattr(torch, dtype), torch.device("cpu"))
    row = traffic.measure(family, "random", x)
    assert row["floor_bytes"] == 2 * x.numel() * x.element_size()
    for form, (ratio, kernels) in BOUNDS[name, dtype].items():
        entry = row[form]
        assert entry["ratio"] == pytest.approx((entry["read"] + entry["written"]) / row["floor_bytes"], abs=1e-3)
        assert entry["written"] >= x.numel() * x.element_size()  # the result is written at least once
        assert entry["ratio"] <= ratio, (name, dtype, form, entry)
        assert entry["kernels"] <= kernels, (name, dtype, form, entry)
    assert row["labels"]["kernels"] >= 1 and row["labels"]["bytes"] == 8 * x.shape[0]  # int64 labels, drawn once


@pytest.mark.parametrize("name", MOVES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "uint8"])
@pytest.mark.parametrize("shape", [SHAPE, (4, 3, 96, 96)])
def test_special_forms_of_pixel_moves_read_no_per_pixel_index(name: str, dtype: str, shape: tuple[int, ...]) -> None:
    x = speed._images(shape, getattr(torch, dtype), torch.device("cpu"))
    row = traffic.measure(traffic.families()[name], "random", x)
    assert row["fast"]["ratio"] <= MOVES_BOUND, (name, dtype, row["fast"])
    assert row["fast"]["ratio"] < row["plain"]["ratio"], (name, dtype, row)


def test_clone_counts_one_read_and_one_write() -> None:
    x = torch.rand(3, 5, 7)
    t = traffic.count(x.clone)
    assert (t.read, t.written, t.kernels, t.ops) == (x.nbytes, x.nbytes, 1, {"clone": [1, 2 * x.nbytes]})


def test_known_ops_count_exactly() -> None:
    a, b = torch.rand(4, 6), torch.rand(4, 6, dtype=torch.float64)
    t = traffic.count(lambda: torch.add(a, b))  # float32 + float64 -> float64
    assert (t.read, t.written, t.kernels) == (96 + 192, 192, 1)
    row = torch.rand(6)
    t = traffic.count(lambda: a * row)  # the broadcast row is read once
    assert (t.read, t.written, t.kernels) == (96 + 24, 96, 1)
    index = torch.tensor([3, 0])
    t = traffic.count(lambda: a.index_select(0, index))  # a lookup reads the rows it returns and its index
    assert (t.read, t.written, t.kernels) == (48 + 16, 48, 1)


def test_views_and_allocations_are_free_and_out_arguments_are_not_read() -> None:
    x = torch.rand(2, 3, 4, 5)
    t = traffic.count(lambda: x.view(6, 20).t().unsqueeze(0).expand(3, 20, 6).permute(2, 0, 1).detach())
    assert (t.read, t.written, t.kernels) == (0, 0, 0)
    out = torch.empty(2, 3, 4, 5)
    t = traffic.count(lambda: torch.neg(x, out=out))
    assert (t.read, t.written, t.kernels) == (x.nbytes, x.nbytes, 1)
    t = traffic.count(lambda: out.copy_(x))
    assert (t.read, t.written) == (x.nbytes, x.nbytes)
    t = traffic.count(lambda: out.add_(x))  # in place: self is read and written
    assert (t.read, t.written) == (2 * x.nbytes, x.nbytes)


def test_the_special_forms_are_chosen_by_the_switch_only_and_give_the_same_bits() -> None:
    hflip = build_family("hflip")
    x = speed._images(SHAPE, torch.uint8, torch.device("cpu"))
    assert not essl_aug._fast.active(x)
    row = traffic.measure(hflip, "random", x)
    assert not essl_aug._fast.active(x)  # measured inside `with fast_forms():`, and switched back
    assert row["plain"]["ops"] != row["fast"]["ops"]  # the two forms are different code paths
    labels = torch.randint(2, (SHAPE[0],), generator=torch.Generator().manual_seed(0))
    with essl_aug.fast_forms():
        assert essl_aug._fast.active(x)
        fast = hflip.apply(x, labels)
    assert torch.equal(fast, hflip.apply(x, labels))


def test_the_committed_report_is_compact_and_covers_every_case() -> None:
    text = (ROOT / "benchmarks" / "results" / "traffic.json").read_text()
    report = json.loads(text)
    assert text == speed.compact_json(report)
    cases = {(r["family"], r["mode"], tuple(r["shape"]), r["dtype"]) for r in report["results"]}
    for name in traffic.families():
        for mode in traffic.MODES:
            for shape in traffic.SHAPES:
                assert (name, mode, shape, "float32") in cases
