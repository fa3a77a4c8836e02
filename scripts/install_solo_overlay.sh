#!/usr/bin/env bash
# Install what solo-learn's GitHub version (HEAD) runs on, for the adapter's tests, as a `pip --target` overlay
# next to an existing venv. The solo-learn code itself is not installed: the tests take it from a clone
# (default ../shared/clients/solo-learn, or $SOLO_LEARN_SRC).
#
#   scripts/install_solo_overlay.sh [PYTHON] [DEST]
#
# PYTHON: the venv's python (default .venv/bin/python); DEST: the overlay folder (default .solo-overlay).
# Every package is pinned to the version solo-learn's requirements.txt resolves to on Python 3.11 (lightning 2.1.2,
# torchmetrics < 0.12 and their own dependencies) and installed with --no-deps, so pip never touches the venv's
# torch / torchvision (they stay the venv's). setuptools < 82 still has pkg_resources, which torchmetrics 0.11 and
# lightning 2.1 import. Use it with PYTHONPATH=DEST: lightning 2.1.2 and torchmetrics 0.11.4 then shadow the
# venv's versions in that process only.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${1:-$root/.venv/bin/python}"
dest="${2:-$root/.solo-overlay}"
start=$(date +%s)

rm -rf "$dest.tmp"
"$py" -m pip install --quiet --disable-pip-version-check --no-deps --target "$dest.tmp" \
  lightning==2.1.2 torchmetrics==0.11.4 lightning-utilities==0.15.3 setuptools==81.0.0 \
  hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 PyYAML==6.0.4 packaging==26.4 \
  timm==1.0.31 einops==0.8.2 tqdm==4.70.1 scipy==1.17.1
rm -rf "$dest" "$dest.tmp/bin"
mv "$dest.tmp" "$dest"

PYTHONPATH="$dest" "$py" -W ignore -c "
import hydra, lightning, omegaconf, timm, torch, torchmetrics
print('lightning', lightning.__version__, '| torchmetrics', torchmetrics.__version__, '| hydra', hydra.__version__,
      '| timm', timm.__version__, '| torch', torch.__version__)"
echo "solo-learn overlay ready in $(( $(date +%s) - start )) s: $dest ($(du -sh "$dest" | cut -f1))"
