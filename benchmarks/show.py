"""The family-grid viewer: every element of a family applied to an image, in one labelled grid.

Applies every element of a family to an image (the bundled ``benchmarks/toolkit/sample.png`` by default) and writes
a grid, each tile titled with its class label (the grids of docs/guides/labels.md). Pillow and matplotlib (the
``demo`` extra) are imported only when a function needs them.

Usage (from the repository root)::

    python -m benchmarks.show --family jigsaw                     # grid.png
    python -m benchmarks.show photo.jpg --family rotation,vflip --out grid.svg
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmarks.toolkit.options import parse_family, positive_int
from benchmarks.toolkit.report import check_writable, pyplot, save_figure
from essl_aug.registry import FamilySpec, build_family

#: The bundled sample image: 96x96 RGB, drawn for this project, asymmetric under every flip and quarter turn (sun
#: top-left, ground at the bottom, a flag pointing right, a letter F), with colours and sharp edges so grayscale,
#: inversion and blur are visible too.
SAMPLE_IMAGE = Path(__file__).resolve().parent / "toolkit" / "sample.png"


def load_image(path: Path | str | None = None, size: int = 96) -> Tensor:
    """Read an image as a (3, size, size) float tensor in [0, 1]; ``None`` reads the bundled sample image.

    Non-square images are centre-cropped to a square first (quarter turns need H == W), then resized to
    ``size`` (bilinear, antialiased) when the side differs.
    """
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('reading images needs Pillow; install the extra: pip install "essl-aug[demo]"') from err
    path = SAMPLE_IMAGE if path is None else Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"image {str(path)!r} is a folder; give a PNG/JPEG file, or none for the sample.")
    if not path.is_file():
        raise FileNotFoundError(f"image {str(path)!r} does not exist; give a PNG/JPEG path, or none for the sample.")
    try:
        with Image.open(path) as opened:
            img = opened.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(
            f"cannot read image {str(path)!r} ({err}); it is not an image, or it is truncated: give a PNG/JPEG file"
        ) from err
    x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(img.height, img.width, 3)
    x = x.permute(2, 0, 1).float() / 255.0
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[:, top : top + side, left : left + side]
    if side != size:
        x = F.interpolate(x[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    return x.clamp(0.0, 1.0).contiguous()


def family_grid(image: Tensor, family: FamilySpec) -> tuple[Tensor, int]:
    """Every element of ``family`` applied to ``image`` (C, H, W): (K, C, H, W) in label order, and K."""
    fam = build_family(family)
    return fam.apply_all(image.unsqueeze(0)).clamp(0.0, 1.0), fam.num_classes


def check_image_path(out: Path | str) -> Path:
    """Check, before any work, that ``out`` (the ``--out`` option) names an image file that can be written: not a
    folder, a suffix matplotlib writes (``.png``, ``.jpg``, ``.svg``, ``.pdf``, ...), a writable folder.

    Raises ``IsADirectoryError``, ``ValueError``, ``NotADirectoryError`` or ``PermissionError`` naming ``--out`` and
    the fix. Returns ``out`` as a ``Path``.
    """
    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"`--out` {str(out)!r} is a folder; give a file name such as {str(out / 'grid.png')!r}")
    pyplot()  # matplotlib, or the error naming the extra
    from matplotlib.backend_bases import FigureCanvasBase

    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    if out.suffix.lstrip(".").lower() not in formats:
        raise ValueError(
            f"`--out` {str(out)!r} must name an image file ending in .png (or {', '.join(f'.{f}' for f in formats)})"
        )
    check_writable(out.parent, f"`--out` {str(out)!r}")
    return out


def show(
    image: Path | str | None = None, family: FamilySpec = "rotation", out: Path | str = "grid.png", size: int = 96
) -> Path:
    """Write a grid: tile ``k`` is the image transformed by element ``k`` of ``family``, titled with ``k``.

    ``out`` is checked first (:func:`check_image_path`); the file is written whole or not at all.
    """
    out = check_image_path(out)
    x = load_image(image, size)
    views, k = family_grid(x, family)
    fam = build_family(family)
    cols = min(k, 6 if k > 8 else k)
    rows = math.ceil(k / cols)
    plt = pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.75 * rows + 0.3), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < k:
            ax.imshow(views[i].permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_title(f"label {i}" + (" (identity)" if i == 0 else ""), fontsize=8)
    fig.suptitle(f"{fam!r}: {k} classes", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out, dpi=100)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.show",
        description="Apply every element of a family to an image and write a grid, each tile titled with its class "
        "label. Without IMAGE, uses the bundled 96x96 sample image.",
    )
    parser.add_argument("image", nargs="?", default=None, help="PNG/JPEG file (default: the bundled sample image)")
    parser.add_argument("--family", type=parse_family, default="rotation", help="family name or comma list")
    parser.add_argument(
        "--out", default="grid.png", help="image file to write, .png (or .jpg, .svg, .pdf, ...) (default: grid.png)"
    )
    parser.add_argument(
        "--size",
        type=positive_int,
        default=96,
        help="side of the (centre-cropped, square) image in pixels (default: 96)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Write the grid; returns the exit status.

    A mistake in the options or the files (a bad value, an ``--out`` that cannot be written, an image that cannot be
    read) ends with a one-line message on stderr and exit status 2 (argparse) or 1, and nothing is written.
    """
    args = build_parser().parse_args(argv)
    try:
        path = show(args.image, args.family, args.out, args.size)
    except (OSError, ValueError, ImportError) as err:
        raise SystemExit(f"benchmarks.show: {err}") from None
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
