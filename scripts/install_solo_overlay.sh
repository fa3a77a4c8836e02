#!/usr/bin/env bash
# Install real solo-learn for the adapter tests as `pip --target` overlays next to an existing venv.
#
#   scripts/install_solo_overlay.sh [PYTHON] [DEST]
#
# PYTHON: the venv's python (default .venv/bin/python); DEST: where the overlays go (default: the repository root).
# Creates DEST/.solo-overlay      solo-learn 1.0.2 (PyPI) and the exact versions it runs with on torch 2.x
#         DEST/.solo-overlay-head lightning 2.1.2, omegaconf, hydra-core (the API of solo-learn's GitHub version)
# Everything is pinned and installed with --no-deps, so the venv's torch/torchvision are never touched.
# Use them with PYTHONPATH=DEST/.solo-overlay:DEST/.solo-overlay-head (numpy 1.26.4 shadows the venv's only there).
# pytorch-lightning 1.6.5.post0 is 1.6.5 with metadata that pip >= 24.1 accepts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${1:-$root/.venv/bin/python}"
dest="${2:-$root}"
ov="$dest/.solo-overlay"
ov_head="$dest/.solo-overlay-head"
start=$(date +%s)

pip_target() {  # pip_target DIR SPEC...
  local dir="$1"; shift
  rm -rf "$dir.tmp"
  "$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-compile --target "$dir.tmp" "$@"
  rm -rf "$dir" "$dir.tmp/bin"
  mv "$dir.tmp" "$dir"
}

pip_target "$ov" \
  solo-learn==1.0.2 lightning-bolts==0.7.0 pytorch-lightning==1.6.5.post0 torchmetrics==0.11.4 \
  lightning-utilities==0.15.3 numpy==1.26.4 scipy==1.17.1 setuptools==81.0.0 pyDeprecate==0.14.0 \
  PyYAML==6.0.4 tqdm==4.70.1 tensorboard==2.20.0 tensorboard-data-server==0.7.2 protobuf==3.20.1 \
  absl-py==2.5.1 grpcio==1.85.3 Markdown==3.11.3 Werkzeug==3.1.9 MarkupSafe==3.0.4 \
  einops==0.8.2 timm==1.0.31 safetensors==0.8.0 filelock==4.2.12

pip_target "$ov_head" lightning==2.1.2 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 hydra-core==1.3.8

PYTHONPATH="$ov:$ov_head" "$py" -W ignore -c "
import importlib.metadata as md, lightning, numpy, omegaconf, pytorch_lightning, solo.methods, torch
print('solo-learn', md.version('solo-learn'), '| pytorch-lightning', pytorch_lightning.__version__, '| lightning',
      lightning.__version__, '| numpy', numpy.__version__, '| torch', torch.__version__)" 2>&1 | tail -1
echo "solo overlays ready in $(( $(date +%s) - start )) s: $ov $ov_head"
