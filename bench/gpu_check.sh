#!/usr/bin/env bash
# Everything a lent GPU machine should measure, in one run (about 10 minutes on one H100):
#   1. rerank throughput: the service's reranker (fp16, micro-batched) vs plain CrossEncoder.predict
#   2. bi-encoder throughput: torch fp16 vs fp32 (ingest's encoder on CUDA)
#   3. end-to-end /search latency with 100 candidates under gunicorn (bench/service_bench.py, torch fp16)
#   4. the bigger reranker training on SciFact, then test-split nDCG@10 and rerank latency
#      (bench/gpu_train_reranker.sh: ingests SciFact with the GPU bi-encoder, mines, trains)
# Results land in $OUT (the device tool brings that folder back) or bench/results/.
#
#   OUT=/tmp/out bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
export HF_HUB_OFFLINE=1 OUT=${OUT:-bench/results}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt" || true
"$PY" bench/gpu_rerank.py --requests 64 --pairs 100 2>&1 | tail -40 | tee "$OUT/gpu_rerank.log"
cp bench/results/gpu_rerank.json "$OUT/" 2>/dev/null || true
"$PY" bench/gpu_encode.py 2>&1 | tail -20 | tee "$OUT/gpu_encode.log"
if [ -z "${ES_URL:-}" ]; then
  export RRS_HOME=${RRS_HOME:-/tmp/rrs-gpu-home} RRS_ES_HEAP=${RRS_ES_HEAP:-4g}
  "$PY" -m rrsearch es start
  trap '"$PY" -m rrsearch es stop' EXIT
  ES_URL=$("$PY" -m rrsearch es status --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["url"])')
  export ES_URL
fi
"$PY" bench/service_bench.py --backend torch --concurrency 1 16 --requests 32 2>&1 | tail -40 | tee "$OUT/service.log"
cp bench/results/service.json "$OUT/service_cuda.json" 2>/dev/null || true
EPOCHS=${EPOCHS:-2} bash bench/gpu_train_reranker.sh 2>&1 | tail -60 | tee "$OUT/gpu_train.log"
