# The search service (and the ingest / kibana-import one-off jobs) in one image.
# PyPI's torch wheel carries CUDA: with the NVIDIA container runtime the reranker uses the GPU.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HOME=/models
RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 rrs && mkdir -p /models && chown rrs /models

WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY service ./service
COPY ingest ./ingest
COPY rrs ./rrs
COPY evaluation ./evaluation
COPY training ./training
COPY es_mappings ./es_mappings
COPY es_plugin ./es_plugin
COPY rrsearch ./rrsearch
COPY sample ./sample
RUN pip install .

USER rrs
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=5 \
    CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["rrs", "serve", "--host", "0.0.0.0", "--port", "8000"]
