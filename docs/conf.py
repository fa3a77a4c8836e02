"""Sphinx configuration of the essl-aug documentation: ``make docs`` (warnings are errors)."""

from __future__ import annotations

import sys
from pathlib import Path

import essl_aug

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "essl-aug"
author = "the essl-aug authors"
copyright = "the essl-aug authors"
release = essl_aug.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "public_api",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

# Broken references fail the build (with -W); only third-party names, which this site does not document, are let
# through: the reference links this package's own names and nothing else.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|torchvision|kornia|lightly|lightning|solo|omegaconf|numpy|PIL|stable_pretraining)(\..*)?"),
    (r"py:.*", r"(collections\.abc|abc|typing|types|contextlib)\..*"),
    (r"py:.*", r"Tensor|nn\..*"),  # torch's names as the source writes them (string annotations)
    # private names (a private base class or module, a private method named in a docstring) have no entry by design
    (r"py:.*", r"(.*\.)?_[A-Za-z]\w*(\..*)?"),
    (r"py:.*", r"essl_aug\.transforms\.\w+\.P"),  # the type variable of the parameters
    # a dataclass's signature under autodoc_preserve_defaults: Sphinx cuts a field's annotation at its first comma
    # (``hidden: tuple[int, ...]`` links ``tuple[int``); the rendered signature itself is right
    (r"py:class", r"(tuple|dict)\[\w+"),
]

# The public API: every name of these modules gets a rendered entry and a docstring, or the build fails
# (docs/_ext/public_api.py). Every submodule of `public_api_packages` must be listed here or in `public_api_skip`.
TRANSFORM_MODULES = (
    "base",
    "horizontal_flip",
    "vertical_flip",
    "rotation90",
    "d4",
    "jigsaw",
    "periodic_translation",
    "product",
    "blur_levels",
    "invert",
    "grayscale",
    "resized_crop",
    "color_jitter",
    "gaussian_blur",
    "solarize",
    "rotation",
    "periodic_shift",
)
public_api_modules = [
    "essl_aug",
    "essl_aug.transforms",
    "essl_aug.views",
    "essl_aug.objectives",
    "essl_aug.functional",
    "essl_aug.config",
    "essl_aug.adapters.lightly",
    "essl_aug.adapters.per_sample",
    "essl_aug.adapters.solo_learn",
    "essl_aug.adapters.stable_pretraining",
    *(f"essl_aug.transforms.{m}" for m in TRANSFORM_MODULES),
    "essl_aug.adapters.loader",
    *(f"essl_aug.views.{m}" for m in ("pipeline", "recipes")),
    *(f"essl_aug.objectives.{m}" for m in ("base", "essl", "augself", "predictor", "equimod", "sie")),
    *(f"essl_aug.objectives.{m}" for m in ("ser", "layered")),
    "essl_aug.layers",
]
public_api_packages = ["essl_aug.adapters", "essl_aug.transforms", "essl_aug.views", "essl_aug.objectives"]
public_api_skip: list[str] = []  # submodules that are not public (none today)
public_api_exempt = ["essl_aug.__version__"]  # the version string: its name says it all

autodoc_default_options = {"show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autoclass_content = "class"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = [("Shape", "notes_style")]
napoleon_use_rtype = False

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

html_theme = "furo"
html_title = f"essl-aug {release}"
