"""The memory-traffic counter counts exactly, and no family's one-pass form moves more bytes than its bound.

The bounds are a regression guard: today's counts (``python -m benchmarks.traffic``) rounded up a little, on the
forms a GPU runs (the eager CPU forms turned off). Tighten a bound when an op improves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import speed, traffic
from essl_aug import _cpu, build_family

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (64, 3, 32, 32)

#: (family, dtype) -> (bytes read + written / the floor's bytes, kernels) in ``random`` mode on SHAPE, one-pass form.
BOUNDS: dict[tuple[str, str], tuple[float, int]] = {
    ("blur", "float32"): (5.4, 7),
    ("d4", "float32"): (1.15, 5),
    ("grayscale", "float32"): (2.75, 5),
    ("hflip", "float32"): (1.15, 5),
    ("invert", "float32"): (2.75, 3),
    ("jigsaw", "float32"): (1.15, 2),
    ("rotation", "float32"): (1.15, 5),
    ("translation", "float32"): (1.15, 2),
    ("vflip", "float32"): (1.1, 2),
    ("rotation x vflip", "float32"): (1.15, 5),
    ("rotation x jigsaw", "float32"): (2.2, 2),
    ("hflip", "uint8"): (1.2, 5),
    ("invert", "uint8"): (1.1, 2),
    ("jigsaw", "uint8"): (1.3, 2),
    ("rotation", "uint8"): (1.3, 5),
    ("vflip", "uint8"): (1.2, 2),
}

#: The pixel moves whose one-pass forms read no per-pixel index: at most this many times the floor's bytes in
#: every dtype (the lookups with broadcast row and column indices; the products with a jigsaw still gather).
MOVES = ("rotation", "vflip", "hflip", "jigsaw", "d4", "translation", "rotation x vflip")
MOVES_BOUND = 1.5


def test_every_family_has_a_bound() -> None:
    assert {name for name, _ in BOUNDS} == set(traffic.families())


@pytest.mark.parametrize(("name", "dtype"), sorted(BOUNDS))
def test_one_pass_traffic_stays_under_its_bound(name: str, dtype: str) -> None:
    family = traffic.families()[name]
    x = speed._images(SHAPE, getattr(torch, dtype), torch.device("cpu"))
    row = traffic.measure(family, "random", x)
    ratio, kernels = BOUNDS[name, dtype]
    assert row["floor_bytes"] == 2 * x.numel() * x.element_size()
    one = row["one_pass"]
    assert one["ratio"] == pytest.approx((one["read"] + one["written"]) / row["floor_bytes"], abs=1e-3)
    assert one["written"] >= x.numel() * x.element_size()  # the result is written at least once
    assert one["ratio"] <= ratio, (name, dtype, one)
    assert one["kernels"] <= kernels, (name, dtype, one)
    assert row["labels"]["kernels"] >= 1 and row["labels"]["bytes"] == 8 * x.shape[0]  # int64 labels, drawn once


@pytest.mark.parametrize("name", MOVES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "uint8"])
@pytest.mark.parametrize("shape", [SHAPE, (4, 3, 96, 96)])
def test_one_pass_moves_read_no_per_pixel_index(name: str, dtype: str, shape: tuple[int, ...]) -> None:
    x = speed._images(shape, getattr(torch, dtype), torch.device("cpu"))
    row = traffic.measure(traffic.families()[name], "random", x)
    assert row["one_pass"]["ratio"] <= MOVES_BOUND, (name, dtype, row["one_pass"])


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


def test_the_one_pass_forms_are_selected_and_restored() -> None:
    hflip = build_family("hflip")
    x = speed._images(SHAPE, torch.uint8, torch.device("cpu"))
    with traffic.one_pass_forms():
        assert not _cpu.enabled(x)
    assert _cpu.enabled(x)
    row = traffic.measure(hflip, "random", x)
    assert row["one_pass"]["ops"] != row["cpu"]["ops"]  # the two forms are different code paths


def test_the_committed_report_is_compact_and_covers_every_case() -> None:
    text = (ROOT / "benchmarks" / "results" / "traffic.json").read_text()
    report = json.loads(text)
    assert text == speed.compact_json(report)
    cases = {(r["family"], r["mode"], tuple(r["shape"]), r["dtype"]) for r in report["results"]}
    for name in traffic.families():
        for mode in traffic.MODES:
            for shape in traffic.SHAPES:
                assert (name, mode, shape, "float32") in cases
