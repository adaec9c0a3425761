#!/usr/bin/env bash
# Prepares, here, what a GPU call carries besides the working tree (docs/performance.md):
#   .gpu/wheels/        the packages ganrun imports that the GPU image lacks (pure-Python
#                       wheels: hydra-core, omegaconf, antlr4-python3-runtime, which has no
#                       wheel on the registry and is built here, torch-fidelity), and
#                       MANIFEST: one line per wheel, "<file> <module it provides>"
#   .gpu/fashion-mnist/ Fashion-MNIST's four IDX files
# then prints the size of what a call sends (tracked and untracked-not-ignored files, and the
# carried folder) against the 64 MiB limit. .gpu/ is git-ignored: it travels only when the
# call names it in `carry`.
#   bash scripts/gpu/prepare.sh [--data /usr/share/datasets/fashion-mnist] [--dest .gpu]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=/usr/share/datasets/fashion-mnist
DEST="$ROOT/.gpu"
PYTHON=${PYTHON:-python3}
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA=$2; shift 2 ;;
    --dest) DEST=$2; shift 2 ;;
    *) echo "prepare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
LIMIT=$((64 * 1024 * 1024))

# The versions ganrun is tested with; "<distribution>==<version> <module>".
PACKAGES=(
  "hydra-core==1.3.8 hydra"
  "omegaconf==2.3.1 omegaconf"
  "torch-fidelity==0.4.0 torch_fidelity"
)
ANTLR="antlr4-python3-runtime==4.9.3 antlr4"  # hydra's parser; an sdist only: built here

rm -rf "$DEST/wheels" "$DEST/fashion-mnist"
mkdir -p "$DEST/wheels" "$DEST/fashion-mnist"
: > "$DEST/wheels/MANIFEST"
fetch() {  # fetch <requirement> <module> <command...>: the one new wheel into MANIFEST
  local requirement=$1 module=$2; shift 2
  local before after
  before=$(ls "$DEST/wheels")
  "$@" "$requirement" >/dev/null
  after=$(comm -13 <(echo "$before") <(ls "$DEST/wheels"))
  [ "$(echo "$after" | wc -l)" -eq 1 ] || { echo "prepare.sh: $requirement gave: $after" >&2; exit 1; }
  echo "$after $module" >> "$DEST/wheels/MANIFEST"
}
# The GPU machine's Python is 3.12 on x86-64 (the device README's recipe).
for line in "${PACKAGES[@]}"; do
  read -r requirement module <<< "$line"
  fetch "$requirement" "$module" "$PYTHON" -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$DEST/wheels"
done
read -r requirement module <<< "$ANTLR"
fetch "$requirement" "$module" "$PYTHON" -m pip wheel -q --no-deps -w "$DEST/wheels"
for wheel in "$DEST"/wheels/*.whl; do  # pure Python, or they would not install there
  case "$wheel" in *-none-any.whl) ;; *) echo "prepare.sh: $wheel is not pure Python" >&2; exit 1 ;; esac
done

for stem in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
            t10k-labels-idx1-ubyte; do
  if [ -f "$DATA/$stem.gz" ]; then cp "$DATA/$stem.gz" "$DEST/fashion-mnist/"
  elif [ -f "$DATA/$stem" ]; then gzip -c "$DATA/$stem" > "$DEST/fashion-mnist/$stem.gz"
  else echo "prepare.sh: $DATA has no $stem(.gz): apt-get install dataset-fashion-mnist" >&2; exit 1
  fi
done

# What a call sends: the tree as git sees it (tracked, and untracked files it does not ignore)
# and the carried folder.
cd "$ROOT"
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null \
       | awk '{s += $1} END {print s + 0}')
carried=$(du -sb "$DEST" | cut -f1)
total=$((tree + carried))
printf 'working tree %.1f MiB + %s %.1f MiB = %.1f MiB of the 64 MiB a call carries\n' \
  "$(echo "$tree / 1048576" | bc -l)" "$(basename "$DEST")" "$(echo "$carried / 1048576" | bc -l)" \
  "$(echo "$total / 1048576" | bc -l)"
cat "$DEST/wheels/MANIFEST"
if [ "$total" -ge "$LIMIT" ]; then
  echo "prepare.sh: over the 64 MiB limit: ignore or delete large untracked files" >&2
  exit 1
fi
