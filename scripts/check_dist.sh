#!/usr/bin/env bash
# The package as a pip user gets it: build the sdist and the wheel (the wheel from the sdist, so the sdist is
# complete), `twine check` their metadata, check what each contains, install the wheel into a fresh venv with
# nothing but its declared dependencies, import every module from it and read the data files; then install the
# `demo` extra and the extras that modules asked for and import every module again. The wheel has no command line
# (the family-grid viewer is the repository's `python -m benchmarks.show`).
#
#   scripts/check_dist.sh [PYTHON]    PYTHON: an interpreter with `build` and `twine` (default: .venv/bin/python)
#
# The fresh venv uses the interpreter behind PYTHON and installs torch from the package index (a few minutes).
# Everything is built and installed in a temporary folder, removed at the end; the tree is left as it was
# (except the ignored essl_aug.egg-info that setuptools refreshes).
set -euo pipefail
PY=${1:-}
case $PY in
    */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY") ;;   # a path: relative to where the script was called
    ?*) PY=$(command -v "$PY") || { echo "error: no $1 on PATH" >&2; exit 1; } ;;   # a name on PATH
esac
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
t_start=$(date +%s)
step() { echo "== dist, $(( $(date +%s) - t_start )) s: $*"; }

# The fresh venv holds about 5 GB (torch and its CUDA libraries). On a disk mounted with `discard`, deleting that
# takes a minute or more, so it goes to /dev/shm (memory) when that has 10 GB free, allows executables (torch's
# shared libraries) and TMPDIR is not set.
tmp_root=${TMPDIR:-/tmp}
shm_free_kb=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}' || true)
if [ -z "${TMPDIR:-}" ] && [ "${shm_free_kb:-0}" -gt $(( 10 << 20 )) ] \
    && ! findmnt -no OPTIONS --target /dev/shm 2>/dev/null | grep -qw noexec; then
    tmp_root=/dev/shm
fi
work=$(mktemp -d "$tmp_root/essl-aug-dist.XXXXXX")
trap 'rm -rf "$work"' EXIT

step "build the sdist, then the wheel from it"
if ! "$PY" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1; then
    cat "$work/build.log"
    exit 1
fi
sdist=$(ls "$work"/dist/*.tar.gz)
wheel=$(ls "$work"/dist/*.whl)
echo "   $(basename "$sdist"), $(basename "$wheel")"

step "twine check --strict"
"$PY" -m twine check --strict "$sdist" "$wheel"

step "content of the sdist and the wheel"
"$PY" - "$sdist" "$wheel" <<'PYEOF'
"""Compare both archives with the source tree: every module and data file present, nothing else at the top."""

import ast
import sys
import tarfile
import zipfile
from pathlib import Path

sdist, wheel = map(Path, sys.argv[1:])
errors: list[str] = []


def tree_files(folder: str, patterns: tuple[str, ...]) -> set[str]:
    return {
        p.as_posix()
        for pattern in patterns
        for p in Path(folder).rglob(pattern)
        if p.is_file() and "__pycache__" not in p.parts
    }


# repository path -> path in the wheel. The package: every file under essl_aug/ (modules and py.typed);
# adapters/*.py installed as essl_aug.adapters; the solo-learn example configs and CPU smoke overrides as
# essl_aug/examples/solo_learn/*.yaml and *.txt. The benchmarks, their training toolkit (benchmarks/toolkit/) and
# the family-grid viewer with its sample image (benchmarks/show.py) stay out.
source = {p: p for p in tree_files("essl_aug", ("*",)) if not p.endswith((".pyc", ".pyo"))}
source |= {p: "essl_aug/" + p for p in tree_files("adapters", ("*.py",))}
source |= {p: "essl_aug/" + p for p in tree_files("examples/solo_learn", ("*.yaml", "*.txt"))}
for required in ("essl_aug/__init__.py", "adapters/__init__.py"):
    if required not in source:
        errors.append(f"the tree has no {required}: run from the repository root")
if not any(p.startswith("examples/solo_learn/") for p in source):
    errors.append("the tree has no examples/solo_learn/*.yaml")

init = ast.parse(Path("essl_aug/__init__.py").read_text())
version = next(
    node.value.value
    for node in init.body
    if isinstance(node, ast.Assign)
    and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
    and isinstance(node.value, ast.Constant)
)
dist_info = f"essl_aug-{version}.dist-info"
if not wheel.name.startswith(f"essl_aug-{version}-"):
    errors.append(f"wheel {wheel.name} does not carry __version__ {version}")

with zipfile.ZipFile(wheel) as zf:
    names = set(zf.namelist())
    metadata = zf.read(f"{dist_info}/METADATA").decode() if f"{dist_info}/METADATA" in names else ""
    entry_points = zf.read(f"{dist_info}/entry_points.txt").decode() if f"{dist_info}/entry_points.txt" in names else ""
missing = sorted(src if src == dst else f"{src} (as {dst})" for src, dst in source.items() if dst not in names)
if missing:
    errors.append("missing from the wheel (list the package or its data in pyproject.toml): " + ", ".join(missing))
tops = {n.split("/", 1)[0] for n in names}
if tops != {"essl_aug", dist_info}:
    errors.append(f"the wheel's top level must be essl_aug/ and {dist_info}/ only, found {sorted(tops)}")
extra = sorted(n for n in names if n.startswith("essl_aug/") and n not in source.values())
if extra:
    errors.append(f"in the wheel but not in the tree (stale build/?): {extra}")
toolkit = sorted(n for n in names if n.startswith(("essl_aug/experiments/", "essl_aug/benchmarks/")))
if toolkit:
    errors.append(f"the training toolkit belongs to benchmarks/, outside the wheel; found {toolkit}")
viewer = sorted(n for n in names if n in ("essl_aug/cli.py", "essl_aug/__main__.py", "essl_aug/sample.png"))
if viewer:
    errors.append(f"the family-grid viewer is benchmarks/show.py, outside the wheel; found {viewer}")
if f"{dist_info}/licenses/LICENSE" not in names:
    errors.append(f"the wheel has no {dist_info}/licenses/LICENSE")
for line in (f"Version: {version}", "License-Expression: MIT", "License-File: LICENSE"):
    if line not in metadata.splitlines():
        errors.append(f"the wheel's METADATA lacks the line {line!r}")
if entry_points.strip():
    errors.append(f"the wheel declares entry points (it has no command line): {entry_points.strip()!r}")

with tarfile.open(sdist) as tf:
    root = f"essl_aug-{version}/"
    members = {m.name.removeprefix(root) for m in tf.getmembers() if m.isfile()}
missing = sorted(p for p in [*source, "LICENSE", "README.md", "pyproject.toml"] if p not in members)
if missing:
    errors.append(f"missing from the sdist: {missing}")
allowed = {"essl_aug", "adapters", "examples", "essl_aug.egg-info", "PKG-INFO", "setup.cfg"}
allowed |= {"LICENSE", "MANIFEST.in", "README.md", "pyproject.toml"}
strays = sorted(m for m in members if m.split("/", 1)[0] not in allowed)
if strays:
    errors.append(f"unexpected files in the sdist: {strays[:20]}")

if errors:
    print("\n".join(f"error: {e}" for e in errors), file=sys.stderr)
    sys.exit(1)
print(f"   wheel: {len(names)} files; sdist: {len(members)} files; version {version}")
PYEOF

step "install the wheel into a fresh venv (its declared dependencies only)"
base=$("$PY" -c 'import sys; print(sys._base_executable)')
"$base" -m venv "$work/venv"
vpy=$work/venv/bin/python
pip_install() { "$vpy" -m pip install -qq --no-compile "$@"; }   # -qq: errors only; no .pyc for torch
pip_install "$wheel"
"$vpy" -m pip list --format=freeze 2>/dev/null | grep -iE '^(essl[-_]aug|torch|kornia)==' | sed 's/^/   /'

# Imports every module of the installed package. A module may refuse only with an ImportError that names a declared
# extra (`essl-aug[lightly]`); with --extras-installed, none may refuse. Writes the extras asked for to $1.
cat >"$work/import_all.py" <<'PYEOF'
import importlib
import importlib.metadata
import pkgutil
import re
import sys
import sysconfig
from pathlib import Path

import essl_aug

extras_file, extras_installed = Path(sys.argv[1]), "--extras-installed" in sys.argv
site = Path(sysconfig.get_paths()["purelib"]).resolve()
if not Path(essl_aug.__file__).resolve().is_relative_to(site):
    sys.exit(f"error: essl_aug imported from {essl_aug.__file__}, not from the venv's {site}")
if importlib.metadata.version("essl-aug") != essl_aug.__version__:
    sys.exit(f"error: metadata version {importlib.metadata.version('essl-aug')} != {essl_aug.__version__}")
declared = set(importlib.metadata.metadata("essl-aug").get_all("Provides-Extra") or [])

names = sorted(m.name for m in pkgutil.walk_packages(essl_aug.__path__, "essl_aug."))
if "essl_aug.adapters" not in names:
    sys.exit("error: essl_aug.adapters is not in the installed package")
if "essl_aug.experiments" in names:
    sys.exit("error: essl_aug.experiments is in the installed package; the toolkit is benchmarks/toolkit, outside it")
needs: dict[str, str] = {}
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as err:
        extra = re.search(r"essl-aug\[(\w+)\]", str(err))
        if extras_installed or not extra or extra.group(1) not in declared:
            raise
        needs[name] = extra.group(1)
extras_file.write_text(",".join(sorted(set(needs.values()))))
asked = ", ".join(f"{n} [{e}]" for n, e in needs.items())
print(f"   imported {len(names) - len(needs)} of {len(names)} modules" + (f"; need an extra: {asked}" if needs else ""))
PYEOF

step "import every module from the installed wheel; the data files; every family"
cd "$work"   # away from the tree, so nothing is imported from the checkout
"$vpy" import_all.py extras.txt
"$vpy" - <<'PYEOF'
import importlib.resources
import sys

import torch

import essl_aug

configs = importlib.resources.files("essl_aug").joinpath("examples", "solo_learn")
yamls = sorted(p.name for p in configs.iterdir() if p.name.endswith(".yaml"))
if not yamls or any("essl:" not in configs.joinpath(n).read_text() for n in yamls):
    sys.exit(f"error: the solo-learn example configs are missing or lack their essl: block: {yamls}")
print(f"   data: examples/solo_learn/{{{', '.join(yamls)}}}")

x = torch.rand(2, 3, 8, 8)
for family in essl_aug.family_names():
    transform = essl_aug.EquivariantTransform(family, mode="all")
    views, labels = transform(x)
    expected = torch.arange(transform.num_classes).repeat_interleave(2)
    if views.shape != (len(expected), 3, 8, 8) or not torch.equal(labels, expected) or not torch.equal(views[:2], x):
        sys.exit(f"error: {family}: views {tuple(views.shape)}, labels {labels.tolist()} (expected the block layout)")
print(f"   every family ran: {', '.join(essl_aug.family_names())}")
PYEOF
if [ -e "$work/venv/bin/essl-aug" ]; then
    echo "error: the wheel installed an essl-aug command; the viewer is the repository's python -m benchmarks.show" >&2
    exit 1
fi

extras=demo$(sed "s/^./,&/" extras.txt)
step "the extras [$extras]: every module imports"
pip_install "essl-aug[$extras] @ $("$vpy" -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).as_uri())' "$wheel")"
"$vpy" import_all.py extras.txt --extras-installed

step "OK"
