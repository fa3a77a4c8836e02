#!/usr/bin/env bash
# Install stable-pretraining for the adapter's tests as a `pip --target` overlay next to an existing venv, and unpack
# its own examples and benchmark scripts (from its source distribution: the wheel has none) into DEST/source.
#
#   scripts/install_spt_overlay.sh [PYTHON] [DEST]
#
# PYTHON: the venv's python (default .venv/bin/python); DEST: the overlay folder (default .spt-overlay).
# Why an overlay and not the venv: stable-pretraining registers a Lightning entry point
# (`lightning.pytorch.callbacks_factory`) that adds 14 callbacks (a hardware-monitor thread, environment dumps, its
# progress printer, checkpoint exporters) to every Lightning Trainer of every process that can see it, the solo-learn
# session's and the other tests' included. On PYTHONPATH=DEST only, it is seen by the stable-pretraining session
# alone. Every package is pinned to what `pip install stable-pretraining==0.1.8` resolves to next to the venv
# (torch 2.14, Lightning 2.6, kornia 0.9, numpy 2.4 stay the venv's) and installed with --no-deps, so pip never
# touches the venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${1:-$root/.venv/bin/python}"
dest="${2:-$root/.spt-overlay}"
version=0.1.8
start=$(date +%s)

rm -rf "$dest.tmp"
"$py" -m pip install --quiet --disable-pip-version-check --no-deps --target "$dest.tmp" \
  "stable-pretraining==$version" \
  Farama-Notifications==0.0.6 annotated-doc==0.0.7 annotated-types==0.8.0 anyio==4.16.0 cattrs==26.2.1 \
  click==8.5.1 cwevals==0.0.1b1 datasets==5.2.0 dill==0.4.1 distro==1.9.0 googleapis-common-protos==1.76.0 \
  gymnasium==1.4.0 h11==0.16.0 hf-xet==1.8.0 httpcore==1.0.9 httpcore2==2.17.0 httpx==0.29.0 httpx2==2.17.0 \
  huggingface_hub==2.4.0 hydra-submitit-launcher==1.2.0 kernels==0.19.1 lance-namespace==0.13.0 \
  lance-namespace-urllib3-client==0.13.0 loguru==0.7.3 minari==0.5.4 multiprocess==0.70.19 \
  opencv-python-headless==5.1.0.95 opentelemetry-api==1.45.2 opentelemetry-exporter-http-transport==0.66b2 \
  opentelemetry-exporter-otlp-common==0.66b2 opentelemetry-exporter-otlp-proto-common==1.45.2 \
  opentelemetry-exporter-otlp-proto-http==1.45.2 opentelemetry-proto==1.45.2 opentelemetry-sdk==1.45.2 \
  opentelemetry-semantic-conventions==0.66b2 opt_einsum==3.4.0 pandas==3.1.1 platformdirs==4.14.9 \
  prettytable==3.19.0 protobuf==7.36.2 pyarrow==26.0.1 pydantic==2.14.4 pydantic_core==2.50.5 pylance==14.0.3 \
  regex==2026.12.2 requests-cache==1.3.3 richuru==0.1.1 safetensors==0.8.0 shellingham==1.5.4 sniffio==1.3.1 \
  submitit==1.5.4 tabulate==0.10.0 timm==1.0.31 tokenizers==0.23.3 tomlkit==0.15.3 transformers==5.25.0 \
  truststore==0.10.5 typer==0.29.2 typing-inspection==0.4.5 url-normalize==3.1.0 wandb==0.31.0 wcwidth==0.9.5 \
  xxhash==4.1.0 zstandard==0.25.0
rm -rf "$dest.tmp/bin"

# Its own examples and benchmark scripts, from the source distribution of the same version.
"$py" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
  "stable-pretraining==$version" -d "$dest.tmp/sdist"
mkdir -p "$dest.tmp/source"
tar -xzf "$dest.tmp/sdist/stable_pretraining-$version.tar.gz" -C "$dest.tmp/source" --strip-components=1 \
  "stable_pretraining-$version/benchmarks" "stable_pretraining-$version/examples"
rm -rf "$dest.tmp/sdist" "$dest"
mv "$dest.tmp" "$dest"

PYTHONPATH="$dest" "$py" -W ignore -c "
import lightning, torch, stable_pretraining as spt
from stable_pretraining import forward
from stable_pretraining.callbacks import factories
print('stable-pretraining', spt.__version__, '| lightning', lightning.__version__, '| torch', torch.__version__)"
echo "stable-pretraining overlay ready in $(( $(date +%s) - start )) s: $dest ($(du -sh "$dest" | cut -f1))"
