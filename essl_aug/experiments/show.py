"""``essl-aug show``: a labelled grid of every element of a family applied to one image."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from essl_aug.registry import FamilySpec, build_family

#: The bundled sample image: 96x96 RGB, drawn for this package, asymmetric under every flip and quarter turn
#: (sun top-left, ground at the bottom, a flag pointing right, a letter F), with colours and sharp edges so
#: grayscale, inversion and blur are visible too.
SAMPLE_IMAGE = "sample.png"


def load_image(path: Path | str | None = None, size: int = 96) -> Tensor:
    """Read an image as a (3, size, size) float tensor in [0, 1]; ``None`` reads the bundled sample image.

    Non-square images are centre-cropped to a square first (quarter turns need H == W), then resized to
    ``size`` (bilinear, antialiased) when the side differs.
    """
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('reading images needs Pillow; install the extra: pip install "essl-aug[demo]"') from err
    if path is None:
        with resources.files("essl_aug.experiments").joinpath(SAMPLE_IMAGE).open("rb") as fh:
            img = Image.open(fh).convert("RGB")
    else:
        path = Path(path)
        if path.is_dir():
            raise IsADirectoryError(f"image {str(path)!r} is a folder; give a PNG/JPEG file, or none for the sample.")
        if not path.is_file():
            raise FileNotFoundError(
                f"image {str(path)!r} does not exist; give a PNG/JPEG path, or none for the sample."
            )
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
    """Check, before any work, that ``out`` (the ``--out`` option of ``show``) names an image file that can be written:
    not a folder, a suffix matplotlib writes (``.png``, ``.jpg``, ``.svg``, ``.pdf``, ...), a writable folder.

    Raises ``IsADirectoryError``, ``ValueError``, ``NotADirectoryError`` or ``PermissionError`` naming ``--out`` and
    the fix. Returns ``out`` as a ``Path``.
    """
    from essl_aug.experiments.report import check_writable, pyplot

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
    """Write a PNG grid: tile ``k`` is the image transformed by element ``k`` of ``family``, titled with ``k``.

    ``out`` is checked first (:func:`check_image_path`); the file is written whole or not at all.
    """
    from essl_aug.experiments.report import pyplot, save_figure

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
