#!/usr/bin/env bash
# The GPU call rehearsed on this machine's CPU, as the device will see it (docs/performance.md):
#   - a fresh virtual environment that holds only the packages of the GPU image
#     (scripts/gpu/image_packages.txt), linked from an environment that has them (--from, by
#     default the python3 on the PATH): torch, torchvision, pytorch-lightning, torchmetrics,
#     safetensors, numpy, pillow, tensorboard, ...; no ganrun install, no hydra, no omegaconf,
#     no torch-fidelity;
#   - an empty HOME and TORCH_HOME (no FID weights, no caches);
#   - the tree copied as a call sends it (tracked and untracked-not-ignored files) with the
#     carried folder (scripts/gpu/prepare.sh's .gpu) beside it;
#   - then scripts/gpu/run.sh --smoke there: the preflight, the wheels installed with
#     pip --no-index --no-deps --target as on the device, every measurement with tiny sizes.
# Fails unless every measurement finished (ok, or a fallback the CPU explains).
#   bash scripts/gpu/rehearse.sh [--carried .gpu] [--work DIR] [--from PYTHON] [--keep]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CARRIED="$ROOT/.gpu"; WORK=""; SOURCE=python3; KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --carried) CARRIED=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --from) SOURCE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "rehearse.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
START=$(date +%s)
[ -d "$CARRIED/wheels" ] || { echo "rehearse.sh: no $CARRIED/wheels: run scripts/gpu/prepare.sh first" >&2; exit 2; }
if [ -z "$WORK" ]; then WORK=$(mktemp -d /tmp/ganrun_rehearsal.XXXXXX); fi
mkdir -p "$WORK"
[ "$KEEP" -eq 1 ] || [ -z "${WORK##/tmp/ganrun_rehearsal.*}" ] || KEEP=1  # never delete a given folder
cleanup() { [ "$KEEP" -eq 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT

# 1. The image's packages only: each allowed distribution's top-level files, linked.
"$SOURCE" -m venv --without-pip "$WORK/venv"
VENV_SITE=$("$WORK/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
"$SOURCE" - "$ROOT/scripts/gpu/image_packages.txt" "$VENV_SITE" <<'EOF'
import re, sys, sysconfig
from importlib import metadata
from pathlib import Path

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

allowed = {norm(line) for line in Path(sys.argv[1]).read_text().split("\n")
           if line.strip() and not line.startswith("#")}
target = Path(sys.argv[2])
source = Path(sysconfig.get_paths()["purelib"])
linked, left = set(), []
for dist in metadata.distributions(path=[str(source)]):
    name = norm(dist.metadata["Name"])
    if name not in allowed:
        left.append(name)
        continue
    tops = {Path(f).parts[0] for f in (dist.files or []) if not str(f).startswith("..")}
    for top in tops:
        if top not in linked and (source / top).exists() and not top.endswith(".pth"):
            (target / top).symlink_to(source / top)
            linked.add(top)
print(f"rehearse.sh: {len(linked)} entries linked from {source}; left out: "
      f"{', '.join(sorted(n for n in left if n in ('ganrun', 'hydra-core', 'omegaconf', 'antlr4-python3-runtime', 'torch-fidelity')))}"
      f" and {len(left)} others not in the image")
EOF

# 2. The tree as a call sends it, and the carried folder.
mkdir -p "$WORK/tree"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
   | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
   | tar --null -T - -cf -) | tar -xf - -C "$WORK/tree"
cp -r "$CARRIED" "$WORK/tree/.gpu"

# 3. The call, with nothing of this machine's caches or paths.
mkdir -p "$WORK/home" "$WORK/torch_home" "$WORK/out"
env -i PATH="$WORK/venv/bin:/usr/bin:/bin" HOME="$WORK/home" TORCH_HOME="$WORK/torch_home" \
  LANG=C.UTF-8 OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" GANRUN_GPU_SITE="$WORK/site" \
  OUT="$WORK/out" PYTHON=python \
  bash "$WORK/tree/scripts/gpu/run.sh" --smoke --deadline "${REHEARSAL_DEADLINE:-900}" \
  -- --work "$WORK/work"

# 4. Every measurement finished.
"$WORK/venv/bin/python" - "$WORK/out/results.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
if "preflight_failed" in report:
    sys.exit(f"rehearse.sh: the preflight failed: {report['preflight_failed']}")
bad = {name: r for name, r in report["results"].items() if r["status"] not in ("ok", "fallback")}
for name, r in report["results"].items():
    print(f"  {name}: {r['status']}" + (f" ({r.get('reason')})" if r.get("reason") else ""))
if bad:
    sys.exit(f"rehearse.sh: {len(bad)} measurement(s) did not finish: {', '.join(bad)}")
EOF
echo "rehearse.sh: passed in $(( $(date +%s) - START )) s (folder: $WORK$([ "$KEEP" -eq 1 ] || echo ', removed'))"
