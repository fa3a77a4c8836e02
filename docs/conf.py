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
    (r"py:.*", r"(torch|torchvision|kornia|lightly|lightning|solo|omegaconf|numpy|PIL)(\..*)?"),
    (r"py:.*", r"(collections\.abc|abc|typing|types)\..*"),
    (r"py:.*", r"Tensor|nn\..*"),  # torch's names as the source writes them (string annotations)
    # private names (a private base class or module, a private method named in a docstring) have no entry by design
    (r"py:.*", r"(.*\.)?_[A-Za-z]\w*(\..*)?"),
    (r"py:.*", r"essl_aug\.augment\.\w+\.P"),  # the type variable of the parameters
]

# The public API: every name of these modules gets a rendered entry and a docstring, or the build fails
# (docs/_ext/public_api.py). Every submodule of `public_api_packages` must be listed here or in `public_api_skip`.
AUGMENT_MODULES = (
    "base",
    "crop",
    "flip",
    "rotation",
    "color",
    "grayscale",
    "blur",
    "solarize",
    "pipeline",
    "recipes",
    "loader",
)
public_api_modules = [
    "essl_aug",
    "essl_aug.functional",
    "essl_aug.adapters.lightly",
    "essl_aug.adapters.per_sample",
    "essl_aug.adapters.solo_learn",
    *(f"essl_aug.augment.{m}" for m in AUGMENT_MODULES),
    *(f"essl_aug.objectives.{m}" for m in ("base", "continuous", "augself", "predictor")),
]
public_api_packages = ["essl_aug.adapters", "essl_aug.augment", "essl_aug.objectives"]
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
