#!/usr/bin/env bash
# The reranker-training benchmark on a GPU machine, in one go (same run as
# bench/train_reranker_bench.py on the CPU, with the settings a GPU affords):
#   ingest SciFact -> mine hybrid negatives -> train (bf16/fp16) -> test-split nDCG@10,
#   hybrid alone vs hybrid + trained reranker over 100 candidates -> rerank latency.
#
#   bash bench/gpu_train_reranker.sh            # JSON to $OUT or bench/results/
#   DATA=/path/to/scifact EPOCHS=2 bash bench/gpu_train_reranker.sh --negatives 16
#
# Needs the project installed (pip install -e .) and either ES_URL or a JDK for the
# local node (`rrs es start`, started and stopped here). Runs offline (HF_HUB_OFFLINE=1).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
export HF_HUB_OFFLINE=1
DATA=${DATA:-../shared/data/scifact}
RESULTS=${OUT:-bench/results}
mkdir -p "$RESULTS"

if [ -z "${ES_URL:-}" ]; then
  export RRS_HOME=${RRS_HOME:-/tmp/rrs-gpu-home}
  export RRS_ES_HEAP=${RRS_ES_HEAP:-4g}
  "$PY" -m rrsearch es start
  trap '"$PY" -m rrsearch es stop' EXIT
fi

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PY" bench/train_reranker_bench.py --data "$DATA" --device cuda \
  --epochs "${EPOCHS:-2}" --negatives "${NEGATIVES:-8}" --batch-size "${BATCH:-32}" --lr "${LR:-3e-5}" \
  --max-length 256 --candidates 100 --latency-queries 50 --eval-depth 30 \
  --model-dir "${MODEL_DIR:-/tmp/rrs-gpu/reranker-scifact}" \
  --out "$RESULTS/train_reranker_scifact_cuda.json" "$@"
