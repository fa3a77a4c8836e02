#!/usr/bin/env bash
# One-shot GPU check of essl-aug, runnable unchanged on any Linux machine with a CUDA GPU and Python >= 3.10:
#   1. a fresh virtual environment with torch 2.14.1 and the project (about 2-4 min, most of it the torch wheel);
#   2. the CUDA tests (tests/transforms/test_cuda.py: every transformation on the device, no host synchronisation
#      under torch.cuda.set_sync_debug_mode("error"));
#   3. the speed benchmark on cuda, float32 / bfloat16 / uint8 at 256x3x224x224 and 256x3x32x32, both modes, the
#      plain forms and the special forms (`with essl_aug.fast_forms():`);
#   4. torch.compile of every family's `apply` (random mode, float32, 256x3x224x224): same bits as eager (pixel moves
#      must; arithmetic may round differently, reported), time against eager and x.clone();
#   5. the traffic count on cuda (its plain and fast columns must equal those of benchmarks/results/traffic.json);
#   6. the view recipes on cuda at 256x3x224x224 uint8 against kornia: SimCLR's two views and DINO's multi-crop
#      views (2 x 224 + 8 x 96 px) (benchmarks/views.py), and one full E-SSL training step (E-SimCLR against SimCLR,
#      ResNet-18, benchmarks/gpu_step.py);
# then one report: benchmarks/results/gpu/gpu_check.{json,md}. Budget: under 8 minutes on one GPU, install included
# (each step has a time limit and all end within a 465 s budget; a step that runs over is recorded with exit 124
# and the next one runs).
#
# Usage, from anywhere:   bash benchmarks/gpu_check.sh
# Environment: PYTHON (default python3), GPU_CHECK_VENV (default: a fresh folder under ${TMPDIR:-/tmp}),
# PIP_INDEX_URL as pip reads it (the default PyPI torch wheel for Linux carries its CUDA libraries).
# Exit status: 0 all steps passed, 1 a step failed, 2 no CUDA GPU on this machine (nothing installed).
set -uo pipefail

START=$(date +%s)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/benchmarks/results/gpu"
PYTHON="${PYTHON:-python3}"

elapsed() { echo $(($(date +%s) - START)); }
log() { echo "[gpu_check $(elapsed)s] $*"; }

# -- 0. a CUDA GPU, before anything is installed ------------------------------------------------------------------------
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
    echo "gpu_check: no CUDA GPU on this machine (nvidia-smi is missing or lists no GPU); nothing was run." >&2
    echo "gpu_check: run this script on a machine with an NVIDIA GPU and its driver installed." >&2
    exit 2
fi
nvidia-smi -L

# -- 1. install -----------------------------------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/essl-aug-gpu-check.XXXXXX")"
VENV="${GPU_CHECK_VENV:-$WORK/venv}"
log "creating $VENV"
"$PYTHON" -m venv "$VENV" || { echo "gpu_check: '$PYTHON -m venv' failed (install python3-venv)." >&2; exit 1; }
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip
log "installing torch 2.14.1 and the project"
if ! timeout 270 "$PY" -m pip install --quiet "torch==2.14.1" -e "$ROOT[test]" "matplotlib>=3.5"; then
    echo "gpu_check: the install failed or ran over 4.5 minutes (see pip's output above)." >&2
    exit 1
fi
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch $("$PY" -c 'import torch; print(torch.__version__)') sees no CUDA device" \
        "(driver too old for its CUDA runtime?); nothing was measured." >&2
    exit 2
fi
cd "$ROOT" || exit 1
declare -A STATUS

BUDGET_S=465  # every step ends by then, so that the whole run (report included) stays under 8 minutes

step() {  # step NAME LIMIT_S COMMAND...: run with a time limit (and within the budget), record its exit status
    local name=$1 limit=$2 left
    shift 2
    left=$((BUDGET_S - $(elapsed)))
    ((left < limit)) && limit=$left
    if ((limit < 5)); then
        log "step $name: skipped, the ${BUDGET_S}s budget is spent"
        STATUS[$name]=124
        return
    fi
    log "step $name (limit ${limit}s)"
    timeout "$limit" "$@"
    STATUS[$name]=$?
    log "step $name: exit ${STATUS[$name]}"
}

# -- 2. CUDA tests --------------------------------------------------------------------------------------------------
step cuda_tests 90 "$PY" -m pytest -q -p no:cacheprovider tests/transforms/test_cuda.py --junitxml "$WORK/cuda_tests.xml"

# -- 3. speed -------------------------------------------------------------------------------------------------------
step speed 150 "$PY" -m benchmarks.speed --device cuda --shapes 256x3x224x224 256x3x32x32 \
    --dtypes float32 bfloat16 uint8 --repeats 2 --min-run-time 0.05 --out-dir "$WORK/speed"

# -- 6. view recipes and one training step (run before 4 and 5, which the budget may cut) -----------------------------
VIEWS_ROW="--device cuda --shapes 256x3x224x224 --ops essl_aug kornia --repeats 2 --min-run-time 0.05"
step views 45 "$PY" -m benchmarks.views $VIEWS_ROW --out-dir "$WORK/views"
step views_dino 60 "$PY" -m benchmarks.views --recipe dino $VIEWS_ROW --out-dir "$WORK/views"
step train_step 60 "$PY" -m benchmarks.gpu_step --device cuda --shape 256x3x224x224 --repeats 3 --out-dir "$WORK/step"

# -- 4. torch.compile per family --------------------------------------------------------------------------------------
cat >"$WORK/compile_check.py" <<'EOF'
"""torch.compile of every family's apply in random mode on cuda: same bits as eager, times against eager and clone."""

import json
import sys
from functools import partial

import torch
from torch.utils.benchmark import Timer

from benchmarks import traffic
from essl_aug import EquivariantTransform

out_path = sys.argv[1]
rows = []
for shape in ((256, 3, 224, 224),):
    x = torch.rand(shape, device="cuda")
    for name, family in traffic.families().items():
        row = {"family": name, "shape": list(shape), "dtype": "float32"}
        torch._dynamo.reset()  # every family compiles `Family.apply` afresh (one code object: the recompile limit)
        try:
            labels = EquivariantTransform(family).sample_labels(shape[0], x.device)
            eager = partial(family.apply, x, labels)
            compiled = partial(torch.compile(family.apply, dynamic=False, fullgraph=True), x, labels)
            a, b = eager(), compiled()
            row["same_bits"] = bool(torch.equal(a, b))
            row["max_abs_diff"] = float((a.double() - b.double()).abs().max())
            for key, fn in (("floor", x.clone), ("eager", eager), ("compiled", compiled)):
                fn()
                torch.cuda.synchronize()
                m = Timer("fn(); torch.cuda.synchronize()", globals={"fn": fn, "torch": torch})
                row[f"{key}_ms"] = m.blocked_autorange(min_run_time=0.05).median * 1e3
            row["eager_ratio"] = row["eager_ms"] / row["floor_ms"]
            row["compiled_ratio"] = row["compiled_ms"] / row["floor_ms"]
        except Exception as err:  # recorded, not raised: one family's failure must not hide the others
            row["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        print(row, flush=True)
        rows.append(row)
        with open(out_path, "w") as f:  # rewritten after every family: a time limit keeps what was done
            json.dump(rows, f)
# Pixel moves must keep every bit when compiled; arithmetic (blur, inversion, grayscale) may round differently.
moves_only = [r for r in rows if not any(w in r["family"] for w in ("blur", "invert", "grayscale"))]
sys.exit(1 if any("error" in r for r in rows) or not all(r.get("same_bits") for r in moves_only) else 0)
EOF
step compile 120 env PYTHONPATH="$ROOT" "$PY" "$WORK/compile_check.py" "$WORK/compile.json"

# -- 5. traffic on cuda -----------------------------------------------------------------------------------------------
step traffic 45 "$PY" -m benchmarks.traffic --device cuda --shapes 64x3x32x32 8x3x224x224 --out-dir "$WORK/traffic"

# -- report ---------------------------------------------------------------------------------------------------------
mkdir -p "$OUT"
STATUS_JSON="{"
for name in cuda_tests speed views views_dino train_step compile traffic; do STATUS_JSON+="\"$name\": ${STATUS[$name]:-null}, "; done
STATUS_JSON="${STATUS_JSON%, }}"
log "writing $OUT/gpu_check.{json,md}"
"$PY" - "$WORK" "$OUT" "$STATUS_JSON" "$(elapsed)" <<'EOF'
import json
import platform
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

import essl_aug
from benchmarks import gpu_step, speed, views

work, out, status, seconds = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])


def load(path: Path) -> object:
    return json.loads(path.read_text()) if path.exists() else None


tests = None
if (work / "cuda_tests.xml").exists():
    root = ET.parse(work / "cuda_tests.xml").getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    tests = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
speed_report = load(work / "speed" / "speed.json")
compile_rows = load(work / "compile.json") or []
traffic_report = load(work / "traffic" / "traffic.json")
views_reports = [r for r in (load(work / "views" / f"{n}.json") for n in ("views", "views_dino")) if r]
step_report = load(work / "step" / "gpu_step.json")
committed = load(Path("benchmarks/results/traffic.json"))
traffic_matches = None
if traffic_report and committed:
    forms = ("plain", "fast")
    ref = {
        (r["family"], r["mode"], tuple(r["shape"]), r["dtype"]): [r.get(f) for f in forms] for r in committed["results"]
    }
    keys = [(r["family"], r["mode"], tuple(r["shape"]), r["dtype"]) for r in traffic_report["results"]]
    traffic_matches = all(
        ref.get(k) == [r[f] for f in forms] for k, r in zip(keys, traffic_report["results"], strict=True)
    )
report = {
    "gpu": torch.cuda.get_device_name(0),
    "versions": {"torch": torch.__version__, "cuda": torch.version.cuda, "essl_aug": essl_aug.__version__,
                 "python": platform.python_version()},
    "date": time.strftime("%Y-%m-%d %H:%M"),
    "seconds": seconds,
    "exit_status": status,
    "cuda_tests": tests,
    "traffic_equals_the_committed_counts": traffic_matches,
    "speed_machine": speed_report["machine"] if speed_report else None,
    "compile": compile_rows,
    "speed": speed_report["results"] if speed_report else [],
    "views": [row for r in views_reports for row in r["results"]],
    "train_step": step_report,
}
out.mkdir(parents=True, exist_ok=True)
(out / "gpu_check.json").write_text(speed.compact_json(report))
lines = [
    f"# GPU check: {report['gpu']}",
    "",
    f"torch {torch.__version__} (CUDA {torch.version.cuda}), essl-aug {essl_aug.__version__}, {report['date']}, "
    f"{seconds} s including the install. Steps' exit status: {status}.",
    "",
    f"CUDA tests (`tests/transforms/test_cuda.py`, sync debug mode `error`): {tests}.",
    f"Traffic on cuda equals the committed counts (plain and fast forms): {traffic_matches}.",
    "",
    "## torch.compile, random mode, float32, 256x3x224x224",
    "",
    "| family | shape | same bits | eager | compiled | floor ms |",
    "|---|---|---|---:|---:|---:|",
]
for r in compile_rows:
    shape = "x".join(map(str, r["shape"]))
    if "error" in r:
        lines.append(f"| {r['family']} | {shape} | error: {r['error']} | - | - | - |")
    else:
        lines.append(f"| {r['family']} | {shape} | {r['same_bits']} | {r['eager_ratio']:.2f}x | "
                     f"{r['compiled_ratio']:.2f}x | {r['floor_ms']:.3f} |")
lines += ["", "## Speed (ratio to x.clone(), plain and fast forms; their traffic)", ""]
lines.append(speed.table(speed_report) if speed_report else "(the speed step wrote no report)")
lines += ["", "## View recipes, uint8 input (SimCLR two views; DINO 2 global + 8 local crops), against kornia", ""]
lines += [views.table(r) for r in views_reports] or ["(the views steps wrote no report)"]
lines += ["", "## One full training step, E-SimCLR against SimCLR (ResNet-18)", ""]
lines.append(gpu_step.table(step_report) if step_report else "(the train_step step wrote no report)")
(out / "gpu_check.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
log "done in $(elapsed)s; report in $OUT"
for name in cuda_tests speed views views_dino train_step compile traffic; do
    [ "${STATUS[$name]:-1}" = 0 ] || { echo "gpu_check: step $name failed (exit ${STATUS[$name]:-none})." >&2; exit 1; }
done
exit 0
