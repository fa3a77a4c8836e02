"""The datasets of the experiments: the bundled digits, Fashion-MNIST and CIFAR-10 from local files.

The bundled dataset is scikit-learn's 8x8 handwritten digits, upsampled and coloured explicitly here.

Why these digits: they ship inside the scikit-learn wheel (no download at run time), they are small enough to
pretrain on two CPU cores in seconds, and upright digits are *not* symmetric under quarter turns, vertical flips or
jigsaws (a 6 turned upside down is a 9), so a representation should be sensitive to those transformations, the
situation in which E-SSL is meant to help.

Every change to the raw data happens in :func:`load_digits_rgb`, never inside a transformation:

1. pixel values 0..16 are scaled to [0, 1];
2. the 8x8 images are upsampled to ``size`` x ``size`` (bilinear, ``align_corners=False``), so that the half-size
   extra view of E-SSL (8x8 by default) keeps the original resolution and blur kernels up to 15 fit;
3. with ``colour=True`` (default) each image is painted with its own random foreground and background colour
   (a fixed seed, independent of the class: ``bg + ink * (fg - bg)``). Colour is then a nuisance, as in natural
   images, so the colour families (grayscale, inversion) and colour augmentations are meaningful on this data.

Fashion-MNIST (70,000 real 28x28 grayscale photos of clothes, shoes and bags in 10 classes; :func:`load_fashion_mnist`)
is read by torchvision's own ``torchvision.datasets.FashionMNIST`` from the original IDX files and never downloaded:
by default the files of the Debian package ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``), or
any folder holding the four files (:func:`fashion_mnist_root` says how they reach torchvision).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import pickle
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class LabelledImages:
    """A fixed train/test split of images in [0, 1], (N, C, H, W) float32, with integer labels.

    ``name`` says what the images are (``"sklearn digits"``, ``"Fashion-MNIST"``); the reports record it.
    """

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    name: str = "sklearn digits"

    @property
    def num_classes(self) -> int:
        return 10

    def to(self, device: torch.device | str) -> LabelledImages:
        return dataclasses.replace(
            self,
            train_x=self.train_x.to(device),
            train_y=self.train_y.to(device),
            test_x=self.test_x.to(device),
            test_y=self.test_y.to(device),
        )

    def describe(self) -> dict[str, Any]:
        """What a report records about the data: name, image size and colour, split sizes."""
        c, h, w = self.train_x.shape[1:]
        colour = "RGB" if c == 3 else "gray"
        return {"name": f"{self.name}, {h}x{w} {colour}", "train": len(self.train_x), "test": len(self.test_x)}


#: The former name of :class:`LabelledImages` (the digits were its only data).
Digits = LabelledImages


def _sklearn_digits() -> tuple[Tensor, Tensor]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            'the demo data comes with scikit-learn; install the extra: pip install "essl-aug[demo]"'
        ) from err
    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32) / 16.0
    return images.unsqueeze(1), torch.as_tensor(bunch.target, dtype=torch.long)


def colourise(ink: Tensor, generator: torch.Generator) -> Tensor:
    """Paint (N, 1, H, W) ink in [0, 1] with a random light foreground on a random dark background, per image.

    Foreground channels are drawn from U(0.6, 1), background channels from U(0, 0.4), so the luma contrast is
    at least 0.2 and a digit stays readable in grayscale.

    Example:
        >>> rgb = colourise(torch.ones(2, 1, 4, 4), torch.Generator().manual_seed(0))
        >>> rgb.shape, bool((rgb >= 0.6).all())
        (torch.Size([2, 3, 4, 4]), True)
    """
    n = ink.shape[0]
    fg = 0.6 + 0.4 * torch.rand(n, 3, 1, 1, generator=generator)
    bg = 0.4 * torch.rand(n, 3, 1, 1, generator=generator)
    return bg + ink * (fg - bg)


def load_digits_rgb(
    size: int = 16, colour: bool = True, train_fraction: float = 0.6, seed: int = 0, limit: int | None = None
) -> LabelledImages:
    """Load the 1797 scikit-learn digits as a fixed, class-stratified train/test split.

    Args:
        size: side of the returned images (the raw digits are 8x8; see the module docstring).
        colour: paint each digit with random colours (3 channels); ``False`` gives 1-channel ink.
        train_fraction: share of each class in the training split (the rest is the probe's test split).
        seed: seed of the split and of the colours (not of the training runs).
        limit: keep only the first ``limit`` images of each split (for tests).

    Returns:
        A :class:`LabelledImages` with float32 images in [0, 1].
    """
    if size < 8:
        raise ValueError(f"`size` must be at least 8 (the digits are 8x8), got {size}.")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"`train_fraction` must lie in (0, 1), got {train_fraction}.")
    ink, labels = _sklearn_digits()
    if size != 8:
        ink = F.interpolate(ink, size=(size, size), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    gen = torch.Generator().manual_seed(seed)
    images = colourise(ink, gen) if colour else ink
    train_idx, test_idx = [], []
    for c in range(10):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        cut = round(train_fraction * len(idx))
        train_idx.append(idx[:cut])
        test_idx.append(idx[cut:])
    tr = torch.cat(train_idx)[torch.randperm(sum(len(i) for i in train_idx), generator=gen)]
    te = torch.cat(test_idx).sort().values
    if limit is not None:
        tr, te = tr[:limit], te[:limit]
    return LabelledImages(images[tr].contiguous(), labels[tr], images[te].contiguous(), labels[te], "sklearn digits")


#: Where the Debian package ``dataset-fashion-mnist`` installs the four IDX files of Fashion-MNIST (gzipped).
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: The four IDX files of Fashion-MNIST by their uncompressed names, as torchvision reads them.
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
#: The command that installs Fashion-MNIST on Debian and Ubuntu.
FASHION_MNIST_INSTALL = "apt-get install dataset-fashion-mnist"


def cache_dir() -> Path:
    """The folder of files this package derives and keeps: ``$XDG_CACHE_HOME/essl-aug`` (when that variable holds
    an absolute path), else ``~/.cache/essl-aug``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "essl-aug"


def find_fashion_mnist(data: Path | str | None = None) -> dict[str, Path]:
    """The four Fashion-MNIST IDX files, ``{uncompressed name: path}``; each file may be plain or ``.gz``.

    They are looked for in ``data`` (default: :data:`FASHION_MNIST_DIR`, the Debian package's folder), then in its
    ``FashionMNIST/raw/`` subfolder (the layout of a torchvision root). Missing files raise ``FileNotFoundError``
    naming them, the Debian package and the ``--data`` option.
    """
    folder = FASHION_MNIST_DIR if data is None else Path(data).expanduser()
    best: dict[str, Path] = {}
    for candidate in (folder, folder / "FashionMNIST" / "raw"):
        found: dict[str, Path] = {}
        for name in FASHION_MNIST_FILES:
            path = next((p for p in (candidate / name, candidate / f"{name}.gz") if p.is_file()), None)
            if path is not None:
                found[name] = path
        if len(found) == len(FASHION_MNIST_FILES):
            return found
        if len(found) > len(best):
            best = found
    missing = [f"{n}[.gz]" for n in FASHION_MNIST_FILES if n not in best]
    raise FileNotFoundError(
        f"Fashion-MNIST not found in {str(folder)!r} (nor in its FashionMNIST/raw/): missing {', '.join(missing)}. "
        f"Install the Debian package: `sudo {FASHION_MNIST_INSTALL}` (it puts the files in {FASHION_MNIST_DIR}), "
        "or give `--data DIR`, a folder holding the four IDX files. Nothing is downloaded."
    )


def fashion_mnist_root(data: Path | str | None = None, cache: Path | str | None = None) -> Path:
    """A root folder from which ``torchvision.datasets.FashionMNIST(root, download=False)`` reads the files that
    :func:`find_fashion_mnist` finds in ``data``.

    torchvision reads the *uncompressed* IDX files in ``root/FashionMNIST/raw/``. Files already in that layout,
    uncompressed, are read in place. Otherwise each file is decompressed (``.gz``) or symlinked (plain) into
    ``<cache>/fashion-mnist/<key>/FashionMNIST/raw/``, where ``cache`` defaults to :func:`cache_dir`
    (``~/.cache/essl-aug``) and ``key`` is derived from the source folder's absolute path; the Debian files take
    55 MB there once decompressed. A file is made again when its source's size or modification time changes. Each
    file is written under a temporary name and then renamed, so an interrupted run leaves no partial file.
    """
    files = find_fashion_mnist(data)
    (source,) = {p.parent for p in files.values()}
    if all(p.suffix != ".gz" for p in files.values()) and (source.name, source.parent.name) == ("raw", "FashionMNIST"):
        return source.parent.parent
    key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    root = (cache_dir() if cache is None else Path(cache).expanduser()) / "fashion-mnist" / key
    raw = root / "FashionMNIST" / "raw"
    try:
        raw.mkdir(parents=True, exist_ok=True)
        for name, path in files.items():
            _mirror(path, raw / name)
    except OSError as err:
        raise OSError(
            f"cannot prepare Fashion-MNIST for torchvision in {str(raw)!r} ({err}); set XDG_CACHE_HOME to a writable "
            "folder, or give `--data` a folder holding the four uncompressed files in FashionMNIST/raw/"
        ) from err
    return root


def _mirror(source: Path, target: Path) -> None:
    """Make ``target`` the uncompressed content of ``source`` (a symlink to a plain file), unless it already is."""
    st = source.stat()
    stamp = target.with_name(f".{target.name}.source")
    want = f"{source.resolve()}\n{st.st_size}\n{st.st_mtime_ns}\n"
    if target.is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8") == want:
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if source.suffix == ".gz":
            with gzip.open(source, "rb") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        else:
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(source.resolve())
        os.replace(tmp, target)
        tmp.write_text(want, encoding="utf-8")
        os.replace(tmp, stamp)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(
            f"cannot decompress {str(source)!r} ({err}): the file is damaged; reinstall it "
            "(`sudo apt-get install --reinstall dataset-fashion-mnist`) or give `--data` another copy"
        ) from err
    finally:
        tmp.unlink(missing_ok=True)


def fashion_mnist_splits(
    data: Path | str | None = None, cache: Path | str | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Fashion-MNIST as torchvision's ``FashionMNIST`` reads it: uint8 (60000, 28, 28) train and (10000, 28, 28)
    test images with their int64 labels (0 T-shirt/top .. 9 Ankle boot), from the files of ``data``
    (:func:`fashion_mnist_root`)."""
    root = fashion_mnist_root(data, cache)
    try:
        from torchvision.datasets import FashionMNIST
    except ImportError as err:
        raise ImportError(
            "Fashion-MNIST is read by torchvision's FashionMNIST dataset; install torchvision: pip install torchvision"
        ) from err
    try:
        train = FashionMNIST(root, train=True, download=False)
        test = FashionMNIST(root, train=False, download=False)
    except (AssertionError, RuntimeError, TypeError, ValueError) as err:
        raise ValueError(
            f"torchvision cannot read the Fashion-MNIST files of {str(data or FASHION_MNIST_DIR)!r} ({err!r}); "
            "they are not the IDX files of Fashion-MNIST: reinstall them "
            "(`sudo apt-get install --reinstall dataset-fashion-mnist`) or give `--data` another copy"
        ) from err
    return train.data, train.targets, test.data, test.targets


def load_fashion_mnist(
    data: Path | str | None = None,
    train_size: int | None = None,
    channels: int = 1,
    seed: int = 0,
    limit: int | None = None,
    cache: Path | str | None = None,
    validation_size: int = 0,
) -> LabelledImages:
    """Fashion-MNIST as float32 images in [0, 1] (``pixel / 255``, 28x28): a training subset and the test set.

    With ``validation_size``, the test split is replaced by a validation split carved from the training file:
    the next ``validation_size`` images of the same class-balanced draw, disjoint from the training subset (which
    stays the same). Hyper-parameters are chosen there; the test set is not read.

    Args:
        data: folder holding the four IDX files, plain or ``.gz`` (default: :data:`FASHION_MNIST_DIR`, installed by
            ``apt-get install dataset-fashion-mnist``); see :func:`fashion_mnist_root`.
        train_size: keep this many training images, spread over the classes as evenly as possible (a seeded draw:
            the first ``train_size // 10`` of each class in a random order, and one more for ``train_size % 10``
            classes); ``None`` keeps all 60,000 in their file order.
        channels: 1 (the data) or 3 (the gray image on three channels, for the RGB-only grayscale family).
        seed: seed of the training subset (not of the training runs).
        limit: keep only the first ``limit`` images of each split (for tests).
        cache: folder for the decompressed files (default :func:`cache_dir`).
        validation_size: see above; needs ``train_size``.

    Returns:
        A :class:`LabelledImages` named ``"Fashion-MNIST"``, whose test split is the full 10,000-image test set,
        or ``"Fashion-MNIST validation"`` with the validation split in its place.
    """
    if channels not in (1, 3):
        raise ValueError(f"`channels` must be 1 (gray) or 3 (gray repeated as RGB), got {channels}.")
    if validation_size < 0 or (validation_size and train_size is None):
        raise ValueError(
            f"`validation_size` must be 0 or positive with a `train_size` (it is carved from the rest of the "
            f"training file), got validation_size={validation_size}, train_size={train_size}."
        )
    train_x, train_y, test_x, test_y = fashion_mnist_splits(data, cache)
    name = "Fashion-MNIST"
    if train_size is not None:
        if not 1 <= train_size + validation_size <= len(train_x):
            raise ValueError(
                f"`train_size` (--train-size) plus `validation_size` must lie in 1..{len(train_x)} (the training "
                f"images), got {train_size} + {validation_size}."
            )
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(train_y), generator=gen)
        shuffled = train_y[order]
        rank = torch.empty_like(shuffled)
        for c in range(int(train_y.max()) + 1):
            mask = shuffled == c
            rank[mask] = torch.arange(int(mask.sum()))
        pick = order[torch.sort(rank, stable=True).indices[: train_size + validation_size]]
        if validation_size:
            val = pick[train_size:]
            test_x, test_y, name = train_x[val], train_y[val], "Fashion-MNIST validation"
        train_x, train_y = train_x[pick[:train_size]], train_y[pick[:train_size]]
    if limit is not None:
        train_x, train_y, test_x, test_y = train_x[:limit], train_y[:limit], test_x[:limit], test_y[:limit]

    def images(x: Tensor) -> Tensor:
        return (x.unsqueeze(1).float() / 255.0).expand(-1, channels, -1, -1).contiguous()

    return LabelledImages(images(train_x), train_y.clone(), images(test_x), test_y.clone(), name)


#: Per-channel mean and standard deviation of CIFAR-10 (the reference E-SSL code's normalisation).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"


def normalise(x: Tensor, mean: tuple[float, ...] = CIFAR10_MEAN, std: tuple[float, ...] = CIFAR10_STD) -> Tensor:
    """``(x - mean) / std`` per channel of a (B, C, H, W) batch (a new tensor).

    Example:
        >>> normalise(torch.full((1, 3, 2, 2), 0.4914))[0, 0, 0, 0].item()
        0.0
    """
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def find_cifar10(root: Path | str) -> Path:
    """The folder holding the CIFAR-10 python batches: ``root`` or ``root/cifar-10-batches-py``."""
    root = Path(root).expanduser()
    files = (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE)
    for folder in (root, root / "cifar-10-batches-py"):
        if all((folder / f).is_file() for f in files):
            return folder
    raise FileNotFoundError(
        f"CIFAR-10 not found in {str(root)!r}: expected the extracted python version of CIFAR-10 "
        f"({', '.join(CIFAR10_TRAIN_FILES)}, {CIFAR10_TEST_FILE}) in that folder or in its cifar-10-batches-py/ "
        "subfolder. This loader never downloads data: extract cifar-10-python.tar.gz there first."
    )


def _read_cifar_batch(path: Path) -> tuple[Tensor, Tensor]:
    with path.open("rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    data = batch[b"data"] if b"data" in batch else batch["data"]
    labels = batch[b"labels"] if b"labels" in batch else batch["labels"]
    x = torch.as_tensor(data, dtype=torch.uint8).reshape(-1, 3, 32, 32)
    return x, torch.as_tensor(list(labels), dtype=torch.long)


def load_cifar10(root: Path | str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """uint8 (N, 3, 32, 32) train and test images with their labels, from the python batches under ``root``.

    ``root`` (or ``root/cifar-10-batches-py``) must hold the extracted python version of CIFAR-10
    (``data_batch_1`` .. ``data_batch_5``, ``test_batch``); a missing folder raises ``FileNotFoundError`` saying so.
    """
    folder = find_cifar10(root)
    parts = [_read_cifar_batch(folder / f) for f in CIFAR10_TRAIN_FILES]
    test_x, test_y = _read_cifar_batch(folder / CIFAR10_TEST_FILE)
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), test_x, test_y
