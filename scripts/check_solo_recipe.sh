#!/usr/bin/env bash
# The solo-learn guide's install recipe on a fresh virtual environment, then its CPU smoke test, as documented:
# docs/guides/solo_learn.md's bash blocks marked <!-- solo-install --> and <!-- solo-smoke --> run in one shell, with
# two substitutions only: the `git clone` of solo-learn becomes a copy of SOLO_LEARN_SRC (default
# ../shared/clients/solo-learn; nothing is downloaded but packages), and `<essl-aug>` this clone.
#
#   scripts/check_solo_recipe.sh
#
# Passes when both blocks exit 0 and solo-learn's main_pretrain.py logged the E-SSL term at both of its steps.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$(cd "${SOLO_LEARN_SRC:-$root/../shared/clients/solo-learn}" && pwd)"
guide="$root/docs/guides/solo_learn.md"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

block() {  # block MARKER: the bash block after <!-- MARKER --> in the guide
    python3 - "$guide" "$1" <<'PY'
import re, sys
text, marker = open(sys.argv[1]).read(), sys.argv[2]
found = re.search(rf"<!-- {marker} -->\n```bash\n(.*?)```", text, re.S)
if not found:
    sys.exit(f"{sys.argv[1]}: no bash block marked <!-- {marker} -->")
print(found.group(1), end="")
PY
}
install="$(block solo-install)"
smoke="$(block solo-smoke)"
clone="git clone https://github.com/vturrisi/solo-learn && cd solo-learn"
[ "$(head -n1 <<<"$install" | sed 's/ *#.*//')" = "$clone" ] || { echo "the recipe's first line is not: $clone" >&2; exit 1; }
install="cp -r '$src' solo-learn && cd solo-learn${install#"$clone"}"
install="${install//<essl-aug>/$root}"
smoke="${smoke//<essl-aug>/$root}"
smoke="${smoke//<an image folder: one sub-folder per class>/$work/images}"

images="python - <<'PY'
import numpy as np
from pathlib import Path
from PIL import Image
rng = np.random.default_rng(0)
for c in range(2):
    (Path('$work/images') / f'class{c}').mkdir(parents=True)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(f'$work/images/class{c}/{i}.png')
PY"

echo "== the recipe (a fresh venv in $work/solo-learn/.venv):"
echo "$install"
echo "== the smoke test:"
echo "$smoke"
cd "$work"
if ! env -u VIRTUAL_ENV -u PYTHONPATH bash -euo pipefail -c "$install
$images
$smoke" >"$work/log" 2>&1; then
    tail -n 60 "$work/log" >&2
    echo "error: the solo-learn guide's recipe or smoke test failed (the log's end is above)" >&2
    exit 1
fi
grep -E "^(lightning|torchmetrics|hydra-core|setuptools|torch) " <("$work/solo-learn/.venv/bin/pip" list 2>/dev/null) \
    | tr -s ' ' | paste -sd, -
# Lightning's CSV logger (wandb is off): the E-SSL term logged at each of the two steps
python3 - "$work/solo-learn" <<'PY' || { tail -n 40 "$work/log" >&2; exit 1; }
import csv, pathlib, sys
files = sorted(pathlib.Path(sys.argv[1]).rglob("metrics.csv"))
rows = [r for f in files for r in csv.DictReader(f.open()) if r.get("train_essl_loss_step")]
steps = sorted({int(r["step"]) for r in rows})
if len(steps) < 2 or not all(float(r["train_essl_loss_step"]) > 0 for r in rows):
    sys.exit(f"error: main_pretrain.py did not log the E-SSL term at two steps (metrics files: {files})")
print(f"train_essl_loss logged at steps {steps}: {[round(float(r['train_essl_loss_step']), 4) for r in rows]}")
PY
echo "solo-learn recipe and CPU smoke test passed in $(( $(date +%s) - start )) s"
