#!/usr/bin/env bash
# What `make gpu-run` runs on a lent GPU (and what to run where the machine has no make): the bundle's
# wheels installed beside the image's packages, then experiments/gpu_run.py with its output kept in
# $OUT/run.log. The image's python3 is used as it is: there is no venv there.
set -euo pipefail
started=$(date +%s)
cd "$(dirname "$0")/.."
bundle=${GPU_BUNDLE:-.gpu-bundle}
site=${GPU_SITE:-/tmp/compzoo-site}
out=${OUT:-runs/gpu-run}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$bundle"/wheels/*.whl
mkdir -p "$out"
PYTHONPATH="$site:$PWD" PYTHONUNBUFFERED=1 python3 -m experiments.gpu_run --bundle="$bundle" --out="$out" \
  --started_at="$started" "$@" 2>&1 | tee "$out/run.log"
