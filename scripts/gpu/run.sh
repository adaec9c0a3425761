#!/usr/bin/env bash
# Every GPU figure of ganrun in one call of at most 5 minutes on a bare GPU machine that holds
# a copy of this tree and the carried folder of scripts/gpu/prepare.sh (docs/performance.md):
#   bash scripts/gpu/run.sh [--smoke] [--out DIR] [--deadline SECONDS] [--carried DIR] [-- bench.py options]
# A preflight that fails in seconds with one line (CUDA unless --smoke, the carried wheels and
# data, the imports, free disk), the missing packages installed from the carried wheels into
# $GANRUN_GPU_SITE (default /tmp/site) as the device README says, then scripts/gpu/bench.py
# under a global deadline (default 270 s from the start), restarted with --resume if the
# process dies while time is left. Everything lands in --out (default $OUT, the folder the
# device returns): results.json (rewritten after every measurement), run.log (this output),
# fail-*.log (failed measurements), lucic_generator.tar (the protocol's generator).
set -uo pipefail
START=$(date +%s)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SMOKE=""; DEADLINE=270; CARRIED="$ROOT/.gpu"; OUT_DIR="${OUT:-$ROOT/gpu_out}"
SITE="${GANRUN_GPU_SITE:-/tmp/site}"; PYTHON=${PYTHON:-python3}; EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE="--smoke"; shift ;;
    --out) OUT_DIR=$2; shift 2 ;;
    --deadline) DEADLINE=$2; shift 2 ;;
    --carried) CARRIED=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "run.sh: unknown option $1 (see the head of $0)"; exit 2 ;;
  esac
done
mkdir -p "$OUT_DIR" || { echo "run.sh: cannot create $OUT_DIR"; exit 2; }
exec > >(tee -a "$OUT_DIR/run.log") 2>&1

fail() {  # the one line a failed preflight leaves, in run.log and results.json
  local message="run.sh: preflight failed after $(( $(date +%s) - START )) s: $*"
  echo "$message"
  printf '{"preflight_failed": "%s"}\n' "$(echo "$*" | sed 's/\\/\\\\/g; s/"/\\"/g')" \
    > "$OUT_DIR/results.json"
  exit 2
}

command -v "$PYTHON" >/dev/null || fail "no $PYTHON on the PATH"
DATA="$CARRIED/fashion-mnist"
for stem in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
            t10k-labels-idx1-ubyte; do
  [ -f "$DATA/$stem.gz" ] || fail "$DATA/$stem.gz is missing: run scripts/gpu/prepare.sh here and name $(basename "$CARRIED") in the call's carry"
done
[ -f "$CARRIED/wheels/MANIFEST" ] || fail "$CARRIED/wheels/MANIFEST is missing: run scripts/gpu/prepare.sh"
need_kb=3000000  # the protocol's checkpoints, the compile caches, the Inception's weights
[ -z "$SMOKE" ] || need_kb=500000
for folder in /tmp "$OUT_DIR"; do
  free_kb=$(df -Pk "$folder" | awk 'NR == 2 {print $4}')
  [ "${free_kb:-0}" -ge "$need_kb" ] || fail "$folder has $((free_kb / 1024)) MiB free, $((need_kb / 1024)) MiB needed"
done

# The packages the image lacks, from the carried wheels (only those whose module is missing).
missing=()
while read -r wheel module; do
  [ -n "$wheel" ] || continue
  [ -f "$CARRIED/wheels/$wheel" ] || fail "$CARRIED/wheels/$wheel (in MANIFEST) is missing"
  "$PYTHON" -c "import $module" 2>/dev/null || missing+=("$CARRIED/wheels/$wheel")
done < "$CARRIED/wheels/MANIFEST"
if [ ${#missing[@]} -gt 0 ]; then
  echo "run.sh: installing ${#missing[@]} carried wheel(s) into $SITE"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "${missing[@]}" || fail "pip could not install the carried wheels into $SITE"
fi
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

# Imports and the device, in one interpreter.
"$PYTHON" - "${SMOKE:-gpu}" "$OUT_DIR/.preflight" <<'EOF' || fail "$(cat "$OUT_DIR/.preflight" 2>/dev/null || echo "the import check died")"
import importlib, sys
def stop(message):  # run.sh prints it, as its one line
    open(sys.argv[2], "w").write(message)
    sys.exit(1)
try:
    import torch
except Exception as err:
    stop(f"cannot import torch: {type(err).__name__}: {err}")
if sys.argv[1] != "--smoke" and not torch.cuda.is_available():  # before the slower imports
    stop(f"no CUDA device (torch {torch.__version__}, CUDA build {torch.version.cuda}); "
         "--smoke runs on a CPU")
for name in ("torchvision", "pytorch_lightning", "torchmetrics", "hydra", "omegaconf",
             "torch_fidelity", "scipy", "safetensors", "tensorboard", "rich", "matplotlib",
             "PIL", "yaml", "ganrun.cli", "ganrun.commands.train", "ganrun.commands.eval"):
    try:
        importlib.import_module(name)
    except Exception as err:
        stop(f"cannot import {name}: {type(err).__name__}: {err}")
where = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
print(f"run.sh: preflight ok: python {sys.version.split()[0]}, torch {torch.__version__}, {where}")
EOF
rm -f "$OUT_DIR/.preflight"
echo "run.sh: preflight done in $(( $(date +%s) - START )) s"

# The measurements, under the deadline; a process that dies is resumed while time is left.
DEADLINE_AT=$((START + DEADLINE))
RESUME=""
for attempt in 1 2 3; do
  left=$((DEADLINE_AT - $(date +%s)))
  [ "$left" -gt 5 ] || break
  timeout -s KILL $((left + 15)) "$PYTHON" -u "$ROOT/scripts/gpu/bench.py" --data "$DATA" \
    --out "$OUT_DIR" --deadline-at "$DEADLINE_AT" $SMOKE $RESUME "${EXTRA[@]}"
  code=$?
  [ "$code" -eq 0 ] && break
  echo "run.sh: bench.py exited $code (attempt $attempt); going on with what is left"
  RESUME="--resume"
done
echo "run.sh: done in $(( $(date +%s) - START )) s; $OUT_DIR: $(ls "$OUT_DIR" | tr '\n' ' ')"
[ -f "$OUT_DIR/results.json" ] || exit 1
