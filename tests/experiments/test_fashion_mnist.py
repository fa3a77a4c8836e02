"""Fashion-MNIST: torchvision's ``FashionMNIST`` reads the files of the Debian package ``dataset-fashion-mnist``
(never a download), the ``--data`` folder of another copy, the error when the files are missing, and the demo on
the real data.

The tests on the real files skip with a reason when the package is not installed, and fail instead when the ``CI``
environment variable is set: CI installs the package (``make system-deps``), so a missing file there is a defect.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

pytest.importorskip("sklearn", reason="the demo needs the demo extra")
pytest.importorskip("matplotlib", reason="the demo needs the demo extra")

from benchmarks import demo
from benchmarks.toolkit.data import (
    FASHION_MNIST_DIR,
    FASHION_MNIST_FILES,
    fashion_mnist_root,
    fashion_mnist_splits,
    find_fashion_mnist,
    load_fashion_mnist,
)


def _require(what: str, ready: bool, reason: str) -> None:
    """Skip with ``reason`` when ``what`` is not ``ready``; fail instead under CI."""
    if ready:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI: {reason}")
    pytest.skip(reason)


def _torchvision() -> None:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        _require("torchvision", False, 'torchvision reads Fashion-MNIST: pip install "essl-aug[test]"')


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private cache folder (``XDG_CACHE_HOME``) for the decompressed files, so the tests leave ~/.cache alone."""
    folder = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(folder))
        yield folder


@pytest.fixture(scope="module")
def real(cache: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The real Fashion-MNIST splits, read by torchvision from the Debian package's files."""
    _torchvision()
    try:
        find_fashion_mnist()
    except FileNotFoundError as err:
        _require("Fashion-MNIST", False, f"Fashion-MNIST is not installed ({err})")
    return fashion_mnist_splits()


def test_torchvision_reads_the_debian_files(
    real: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], cache: Path
) -> None:
    from torchvision.datasets import FashionMNIST

    train_x, train_y, test_x, test_y = real
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
    assert train_x.dtype == test_x.dtype == torch.uint8
    assert train_y.shape == (60000,) and test_y.shape == (10000,)
    assert train_y.dtype == test_y.dtype == torch.int64
    assert torch.bincount(train_y).tolist() == [6000] * 10
    assert torch.bincount(test_y).tolist() == [1000] * 10
    assert int(train_y[0]) == 9 and FashionMNIST.classes[9] == "Ankle boot"  # the first training image
    assert int(test_y[0]) == 9
    assert int(train_x.max()) == 255 and int(train_x.min()) == 0
    # the Debian files are gzipped: torchvision reads decompressed copies in the cache, in its raw/ layout
    root = fashion_mnist_root()
    assert root.is_relative_to(cache / "essl-aug")
    assert sorted(p.name for p in (root / "FashionMNIST" / "raw").iterdir() if not p.name.startswith(".")) == sorted(
        FASHION_MNIST_FILES
    )
    assert all((FASHION_MNIST_DIR / f"{name}.gz").is_file() for name in FASHION_MNIST_FILES)


def test_the_training_subset_is_stratified_seeded_and_scaled(
    real: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    train_x, train_y, test_x, test_y = real
    d = load_fashion_mnist(train_size=1003)
    assert d.train_x.shape == (1003, 1, 28, 28) and d.train_x.dtype == torch.float32
    counts = torch.bincount(d.train_y, minlength=10)
    assert int(counts.sum()) == 1003 and set(counts.tolist()) == {100, 101}
    assert torch.equal(d.test_x, test_x.unsqueeze(1).float() / 255) and torch.equal(d.test_y, test_y)
    assert d.describe() == {"name": "Fashion-MNIST, 28x28 gray", "train": 1003, "test": 10000}
    # every subset image is a training image divided by 255, with its own label, and none twice
    flat = train_x.flatten(1).float() / 255
    index = {bytes(row.numpy()): i for i, row in enumerate(train_x.flatten(1))}
    picked = [index[bytes((255 * img).round().to(torch.uint8).flatten().numpy())] for img in d.train_x]
    assert len(set(picked)) == 1003
    assert torch.equal(d.train_x.flatten(1), flat[picked]) and torch.equal(d.train_y, train_y[picked])
    again, other = load_fashion_mnist(train_size=1003), load_fashion_mnist(train_size=1003, seed=1)
    assert torch.equal(again.train_x, d.train_x) and not torch.equal(other.train_y, d.train_y)
    rgb = load_fashion_mnist(train_size=20, channels=3, limit=5)
    assert rgb.train_x.shape == (5, 3, 28, 28) and rgb.test_x.shape == (5, 3, 28, 28)
    assert torch.equal(rgb.train_x[:, 0], rgb.train_x[:, 2]) and torch.equal(rgb.train_x[:, :1], d.train_x[:5])
    for bad in (0, 60001):
        with pytest.raises(ValueError, match="train_size"):
            load_fashion_mnist(train_size=bad)
    with pytest.raises(ValueError, match="channels"):
        load_fashion_mnist(channels=2)


def test_demo_on_fashion_mnist_writes_its_json_and_png(
    real: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = ["--dataset", "fashion-mnist", "--epochs", "1", "--seeds", "1", "--train-size", "500"]
    argv += ["--width", "4", "--batch-size", "100", "--threads", "1", "--no-progress", "--out", str(out)]
    assert demo.main(argv) == 0
    payload = json.loads((out / "demo.json").read_text())
    assert payload["dataset"] == {"name": "Fashion-MNIST, 28x28 gray", "train": 500, "test": 10000}
    assert payload["epochs"] == 1 and payload["seeds"] == [0]
    for summary in payload["results"].values():
        (acc,) = summary["accuracies"]
        assert acc * 10000 == pytest.approx(round(acc * 10000), abs=1e-3)  # a count of the 10,000 test images
    ess = payload["results"]["E-SimCLR (rotation)"]["last_epoch"][0]
    assert ess["loss"] == pytest.approx(ess["ssl"] + 0.4 * ess["essl/ce"], rel=1e-5)
    assert (out / "demo.png").stat().st_size > 0


def _idx(path: Path, data: torch.Tensor, compress: bool) -> None:
    """Write ``data`` (uint8) as an IDX file (the format of MNIST and Fashion-MNIST)."""
    header = struct.pack(">I", 0x0800 + data.ndim) + b"".join(struct.pack(">I", n) for n in data.shape)
    raw = header + data.numpy().tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def _fake_copy(folder: Path, compress: tuple[bool, bool, bool, bool], n: int = 20) -> None:
    """A small Fashion-MNIST-shaped copy: ``n`` train and ``n // 2`` test images, labels ``i % 10``."""
    gen = torch.Generator().manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    parts = [
        torch.randint(0, 256, (n, 28, 28), generator=gen, dtype=torch.uint8),
        (torch.arange(n) % 10).to(torch.uint8),
        torch.randint(0, 256, (n // 2, 28, 28), generator=gen, dtype=torch.uint8),
        (torch.arange(n // 2) % 10).to(torch.uint8),
    ]
    for name, part, gz in zip(FASHION_MNIST_FILES, parts, compress, strict=True):
        _idx(folder / name, part, gz)


def test_data_option_reads_another_copy_plain_or_gzipped(tmp_path: Path, cache: Path) -> None:
    _torchvision()
    src = tmp_path / "copy"
    _fake_copy(src, (True, False, False, True))
    d = load_fashion_mnist(src)
    assert d.train_x.shape == (20, 1, 28, 28) and d.test_x.shape == (10, 1, 28, 28)
    assert d.train_y.tolist() == [i % 10 for i in range(20)]
    root = fashion_mnist_root(src)
    raw = root / "FashionMNIST" / "raw"
    assert (raw / "train-labels-idx1-ubyte").is_symlink() and not (raw / "train-images-idx3-ubyte").is_symlink()
    assert fashion_mnist_root(src) == root  # the same source, the same cache folder
    # a changed source is decompressed again
    _fake_copy(src, (True, False, False, True), n=40)
    assert load_fashion_mnist(src).train_x.shape == (40, 1, 28, 28)
    # a torchvision root with uncompressed files is read in place
    tv_root = tmp_path / "tv"
    _fake_copy(tv_root / "FashionMNIST" / "raw", (False,) * 4)
    assert fashion_mnist_root(tv_root) == tv_root and load_fashion_mnist(tv_root).test_x.shape == (10, 1, 28, 28)
    # a damaged archive is named
    bad = tmp_path / "bad"
    _fake_copy(bad, (True,) * 4)
    archive = bad / "t10k-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:-100])  # truncated
    with pytest.raises(ValueError, match="damaged"):
        load_fashion_mnist(bad, cache=tmp_path / "c")
    assert not [p for p in (tmp_path / "c").rglob("*") if p.name.endswith(".tmp")]  # no partial file left


def test_missing_files_name_the_debian_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as info:
        find_fashion_mnist(empty)
    assert "--data" in str(info.value) and "train-images-idx3-ubyte" in str(info.value)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as done:
        demo.main(["--dataset", "fashion-mnist", "--data", str(empty), "--out", str(out), "--no-progress"])
    message = str(done.value.code)
    assert message.startswith("benchmarks.demo: Fashion-MNIST not found") and "\n" not in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert not out.exists()  # nothing written
    with pytest.raises(SystemExit, match="applies to --dataset fashion-mnist"):
        demo.main(["--data", str(empty), "--out", str(out)])


def test_quality_benchmark_on_fashion_mnist(
    real: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from benchmarks import quality

    argv = ["--quick", "--dataset", "fashion-mnist", "--families", "rotation,hflip", "--threads", "1"]
    assert quality.main([*argv, "--no-progress", "--out", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "quality.json").read_text())
    assert payload["dataset"] == {"name": "Fashion-MNIST, 28x28 gray", "train": 128, "test": 128}
    assert list(payload["rows"]) == ["rotation", "hflip"]
    # grayscale leaves gray images as they are (nothing to tell apart): refused before any training, in one line,
    # nothing written
    out = tmp_path / "gray"
    assert quality.main(["--quick", "--dataset", "fashion-mnist", "--families", "grayscale", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "family grayscale cannot act on the 28x28 1-channel views of Fashion-MNIST" in err and not out.exists()


def test_the_validation_split_is_carved_from_the_training_file(
    real: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    train_x, train_y, test_x, _ = real
    plain = load_fashion_mnist(train_size=1000)
    val = load_fashion_mnist(train_size=1000, validation_size=500)
    assert val.name == "Fashion-MNIST validation" and val.test_x.shape == (500, 1, 28, 28)
    assert torch.equal(val.train_x, plain.train_x) and torch.equal(val.train_y, plain.train_y)
    assert torch.bincount(val.test_y, minlength=10).tolist() == [50] * 10
    index = {bytes(row.numpy()): i for i, row in enumerate(train_x.flatten(1))}

    def rows(x: torch.Tensor) -> list[int]:
        return [index[bytes((255 * img).round().to(torch.uint8).flatten().numpy())] for img in x]

    picked, held = rows(val.train_x), rows(val.test_x)
    assert not set(picked) & set(held) and len(set(held)) == 500
    assert torch.equal(val.test_y, train_y[held])
    assert not any(torch.equal(val.test_x[0, 0], img.float() / 255) for img in test_x[:2000])
    with pytest.raises(ValueError, match="validation_size"):
        load_fashion_mnist(validation_size=10)
    with pytest.raises(ValueError, match="validation_size"):
        load_fashion_mnist(train_size=59_990, validation_size=11)


def test_headline_chooses_on_validation_and_reports_paired_intervals(
    real: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from benchmarks import fashion_mnist

    seen: list[tuple[str, str]] = []
    run_study = fashion_mnist.run_study

    def recording(data, plan, seeds, device, progress, desc, probes):  # type: ignore[no-untyped-def]
        seen.append((data.name, desc))
        return run_study(data, plan, seeds, device, progress, desc, probes)

    monkeypatch.setattr(fashion_mnist, "run_study", recording)
    assert (
        fashion_mnist.main(["--quick", "--seeds", "2", "--threads", "1", "--no-progress", "--out", str(tmp_path)]) == 0
    )
    assert [name for name, desc in seen if desc.startswith("validation")] == ["Fashion-MNIST validation"] * 2
    assert [name for name, desc in seen if desc == "test"] == ["Fashion-MNIST"]
    payload = json.loads((tmp_path / "fashion_mnist.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(fashion_mnist.FILES)
    assert set(payload["validation"]["chosen"]) == {
        "scale",
        "epochs",
        "lambda_simclr",
        "lambda_vicreg",
        "probe_weight_decay",
    }
    for row, base in fashion_mnist.PAIRS.items():
        for probe in ("linear", "knn"):
            got = payload["paired"][row][probe]
            a, b = (
                payload["rows"][base]["probes"][probe]["accuracies"],
                payload["rows"][row]["probes"][probe]["accuracies"],
            )
            assert got["differences"] == pytest.approx([y - x for x, y in zip(a, b, strict=True)])
            lo, hi = got["ci95"]
            assert lo <= got["mean"] <= hi
    text = (tmp_path / "fashion_mnist.md").read_text()
    assert "| E-SimCLR, all 4 rotations | SimCLR |" in text and "validation stage" in text
    # --render joins a step-cost report: its fashion_cnn ratios become the step-time column
    rows = [
        {"model": "fashion_cnn", "variant": v, "ratio_to_simclr": r} for v, r in (("all", 1.61), ("random", 1.17))
    ] + [{"model": "demo_cnn", "variant": "all", "ratio_to_simclr": 9.0}]
    cost = {"command": "python -m benchmarks.step_cost", "date": "d", "machine": {"cpu": "c", "threads": 1}}
    (tmp_path / "cost.json").write_text(json.dumps({**cost, "results": rows}))
    argv = ["--render", str(tmp_path / "fashion_mnist.json"), "--step-cost", str(tmp_path / "cost.json")]
    assert fashion_mnist.main(argv) == 0
    text = (tmp_path / "fashion_mnist.md").read_text()
    assert "| E-SimCLR, 1 random rotation | SimCLR |" in text and "| 1.17x |" in text and "9.00x" not in text
    assert text.count("| 1.61x |") == 2
    # one seed cannot give a paired interval: refused before any training
    assert fashion_mnist.main(["--quick", "--seeds", "1", "--out", str(tmp_path / "one")]) == 2


def test_headline_selection_rules() -> None:
    from benchmarks.fashion_mnist import best, score

    def result(*means: float) -> dict:
        return {"probes": {f"linear wd={i}": {"mean": m} for i, m in enumerate(means)} | {"knn": {"mean": 1.0}}}

    results = {"a": result(0.5, 0.7), "b": result(0.69, 0.6), "c": result(0.7, 0.1)}
    assert score(results["a"]) == 0.7  # the best penalty; the k-NN probe is not a selection criterion
    assert best(results, ["a", "b", "c"]) == "a" and best(results, ["c", "a"]) == "c"  # ties: the first listed
