"""The Flask application: ``create_app()`` builds it; routes are thin over the pipeline.

    flask --app service.http.app run        # development
    rrs serve --port 8000                    # gunicorn (service/http/gunicorn.conf.py), behind nginx

Routes: ``api`` (``/search``, ``/readyz``), ``judgments`` (``POST /judgments``), ``common`` to every role (``/healthz``,
``/metrics``, ``/openapi.json``, ``/info``), ``ranking`` (``/rerank``, service/http/ranking.py),
``embedding`` (``/embed``, service/http/embedding.py) and the search page (service/http/web.py).
``RRS_SERVE_ROLE=reranker`` serves only ranking and embedding, for the models ``RRS_POOL_MODELS``
names (service/http/served.py).

Start-up loads the bi-encoder and the cross-encoder once per process and checks the
index's ``_meta`` against the bi-encoder. A reranker that cannot be loaded stops start-up
unless ``RRS_ALLOW_MISSING_RERANKER=true`` (then /readyz and every response say so).
An unreachable Elasticsearch does not stop start-up: searches get 503 until it returns.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from rrsearch.core.errors import IndexMissing, IndexModelMismatch, StartupError
from rrsearch.core.es_errors import describe
from rrsearch.core.settings import Settings, get_settings
from rrsearch.service.embed import Embedder
from rrsearch.service.http.auth import configured_keys, key_is_valid, presented_key
from rrsearch.service.http.embedding import embedding
from rrsearch.service.http.errors import ApiError, answered_as_api_errors, validation_error
from rrsearch.service.http.judgments import judgments
from rrsearch.service.http.metrics import Metrics
from rrsearch.service.http.openapi import build_openapi
from rrsearch.service.http.ranking import ranking
from rrsearch.service.http.served import served_models
from rrsearch.service.http.web import PAGE_PATHS, web
from rrsearch.service.judgments import JudgmentStore
from rrsearch.service.pipeline import SearchPipeline
from rrsearch.service.schemas import Readiness, SearchRequest, check_limits
from rrsearch.service.search_log import SearchLogWriter

log = logging.getLogger("rrs.service")
api = Blueprint("api", __name__)  # the search side: /search, /readyz
common = Blueprint("common", __name__)  # every role: /healthz, /metrics, /openapi.json, /info
pool = Blueprint("pool", __name__)  # the reranker role's /readyz
OPEN_PATHS = {"/healthz", "/health", *PAGE_PATHS}  # the search page is public; its /search calls carry the key
UNSET = object()


# --- the factory ------------------------------------------------------------------------


def create_app(settings: Settings | None = None, *, es=None, bi_encoder=None, reranker=UNSET) -> Flask:
    """Build the app. ``es``, ``bi_encoder`` and ``reranker`` may be passed in (tests share
    loaded models); otherwise they are made from ``settings`` (default: the environment).

    ``RRS_SERVE_ROLE=reranker`` builds only the model pool (no Elasticsearch): ``/rerank`` with
    the cross-encoder and ``/embed`` with the bi-encoder, as ``RRS_POOL_MODELS`` says; the GPU pool
    that CPU search front ends reach with ``RRS_RERANKER_URL``."""
    settings = settings or get_settings()
    serves = served_models(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    assert isinstance(app.json, DefaultJSONProvider)  # Flask's own provider: it has sort_keys
    app.json.sort_keys = False
    metrics = Metrics()
    reranker_problem = None
    if reranker is UNSET and "rerank" not in serves:
        reranker = None
    if reranker is UNSET:
        reranker, reranker_problem = _reranker(settings)
    if getattr(reranker, "batcher", None) is not None:
        reranker.batcher.on_batch = metrics.observe_rerank_batch
    state = app.extensions["rrs"] = {
        "settings": settings,
        "metrics": metrics,
        "keys": configured_keys(settings),
        "reranker": reranker,
        "reranker_problem": reranker_problem,
        "serves": serves,
        "embedder": None,
    }
    if settings.serve_role == "search":
        es = es if es is not None else _client(settings)
        bi_encoder = bi_encoder if bi_encoder is not None else _bi_encoder(settings)
        pipeline = SearchPipeline(settings, es, bi_encoder, reranker, metrics=metrics)
        _check_index(pipeline, settings)
        state.update(
            pipeline=pipeline,
            embedder=Embedder(bi_encoder, settings),  # POST /embed: the model the queries use
            search_log=SearchLogWriter(
                es,
                settings.search_log_index,
                max_queue_bytes=settings.search_log_queue_bytes,
                on_drop=lambda n: metrics.search_log_dropped.inc(n),
                shards=settings.search_log_shards,
                replicas=settings.search_log_replicas,
            )
            if settings.search_log_enabled
            else None,
            allowed_indexes={settings.index_alias, *_split(settings.allowed_indexes)},
            judgments=JudgmentStore(
                es,
                settings.judgments_index,
                shards=settings.judgments_shards,
                replicas=settings.judgments_replicas,
                timeout_s=settings.search_timeout_s,
            ),
        )
        app.register_blueprint(api)
        app.register_blueprint(judgments)  # POST /judgments: marks from the search page (service/http/judgments.py)
        app.register_blueprint(web)  # GET /: the search page (service/http/web.py)
    else:
        if reranker is None and "rerank" in serves:
            raise StartupError(
                f"--role reranker needs a cross-encoder: {reranker_problem or 'RRS_RERANK_ENABLED is false'} "
                "(or RRS_POOL_MODELS=embed for a pool of the bi-encoder alone)"
            )
        if "embed" in serves:
            state["embedder"] = Embedder(bi_encoder if bi_encoder is not None else _bi_encoder(settings), settings)
            state["embedder"].warm_up()
        app.register_blueprint(pool)
    app.register_blueprint(common)
    app.register_blueprint(ranking)  # POST /rerank (service/http/ranking.py)
    app.register_blueprint(embedding)  # POST /embed, and TEI's POST / (service/http/embedding.py)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.before_request(_before)
    app.after_request(_after)
    return app


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _client(settings: Settings):
    from rrsearch.core.errors import ClusterUnavailable
    from rrsearch.core.es_client import make_client

    try:
        # One retry at most: a dead node should give a quick 503, not a long hang.
        return make_client(settings, request_timeout=settings.search_timeout_s, max_retries=1, retry_on_timeout=False)
    except ClusterUnavailable as exc:
        raise StartupError(str(exc)) from exc


def _bi_encoder(settings: Settings):
    from rrsearch.core.encoders import bi_encoder_from

    try:
        return bi_encoder_from(settings)
    except OSError as exc:  # a missing folder or ONNX file: say which, do not crash the worker
        raise StartupError(
            f"cannot load bi-encoder {settings.bi_encoder!r} ({settings.bi_encoder_backend}): {exc}"
        ) from exc


def _reranker(settings: Settings):
    """(reranker or None, problem or None); raises StartupError when it must not be missing."""
    if not settings.rerank_enabled:
        return None, None
    from rrsearch.core.errors import RerankerUnavailable
    from rrsearch.service.rerank import load_reranker

    if settings.reranker_url and settings.serve_role == "search":
        from rrsearch.service.remote_rerank import RemoteReranker

        key = settings.reranker_api_key.get_secret_value() if settings.reranker_api_key else None
        remote = RemoteReranker(settings.reranker_url, pool_size=settings.serve_threads, api_key=key)
        return remote, None  # a pool that is down degrades searches; /readyz says so

    try:
        reranker = load_reranker(settings.cross_encoder, settings)
    except RerankerUnavailable as exc:
        if settings.allow_missing_reranker:
            log.warning("serving WITHOUT a reranker: %s", exc)
            return None, str(exc)
        message = f"{exc}. Set RRS_CROSS_ENCODER to a local model folder, or RRS_ALLOW_MISSING_RERANKER=true to serve without reranking."
        log.error(message)
        raise StartupError(message) from exc
    reranker.warm_up()
    return reranker, None


def _check_index(pipeline: SearchPipeline, settings: Settings) -> None:
    try:
        pipeline.index_info(settings.index_alias)
    except IndexModelMismatch as exc:
        log.error("%s", exc)
        raise StartupError(str(exc)) from exc
    except IndexMissing as exc:
        log.warning("%s (searches answer 404 until it exists)", exc)
    except Exception as exc:  # noqa: BLE001 -- down, blocked, refusing: boot anyway, /readyz says why
        log.warning("Elasticsearch not ready at start-up (%s); searches answer 503 until it is", _describe(exc))


def _describe(exc: Exception) -> str:
    """An Elasticsearch failure in a few words: its kind and status, never its body."""
    status = getattr(getattr(exc, "meta", None), "status", None)
    return f"{exc.__class__.__name__}{f' (status {status})' if isinstance(status, int) else ''}"


# --- request plumbing -------------------------------------------------------------------


def _state() -> dict:
    return current_app.extensions["rrs"]


def _before():
    g.started = time.perf_counter()
    g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    keys = _state()["keys"]
    public = request.path in OPEN_PATHS and request.method in ("GET", "HEAD")  # not POST / (TEI's root route)
    if keys and not public and not key_is_valid(presented_key(request.headers), keys):
        raise ApiError(401, "unauthorized", "a valid API key is required (Authorization: Bearer <key>)")


def _after(response: Response) -> Response:
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    _state()["metrics"].requests.labels(endpoint=endpoint, status=str(response.status_code)).inc()
    response.headers["X-Request-Id"] = g.get("request_id", "")
    return response


def _api_error(exc: ApiError):
    body = {"error": exc.error, "message": exc.message, "field": exc.field}
    response = jsonify(body)
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


def _unexpected_error(exc: Exception):
    """A bug or a failure nobody foresaw: logged with its traceback, answered as our trouble."""
    log.exception("unexpected error answering %s %s (request %s)", request.method, request.path, g.get("request_id"))
    retry = str(_state()["settings"].retry_after_s)
    return _api_error(
        ApiError(503, "internal_error", "the service failed to answer; retry shortly", headers={"Retry-After": retry})
    )


def _http_error(exc: HTTPException):
    if isinstance(exc, RequestEntityTooLarge):
        limit = _state()["settings"].max_request_bytes
        return _api_error(ApiError(413, "body_too_large", f"request body is larger than {limit} bytes", "body"))
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}  # e.g. Allow on a 405
    return _api_error(
        ApiError(exc.code or 500, exc.name.lower().replace(" ", "_"), exc.description or exc.name, headers=headers)
    )


# --- routes -----------------------------------------------------------------------------


@common.get("/healthz")
@common.get("/health")  # text-embeddings-inference's name, which its clients probe
def healthz():
    return jsonify({"status": "ok"})


@api.get("/readyz")
def readyz():
    state = _state()
    settings, pipeline = state["settings"], state["pipeline"]
    problems: list[str] = []
    reachable = present = readable = mismatch = False
    try:
        pipeline.index_info(settings.index_alias, fresh=True)
        reachable = present = True
        pipeline.es.options(request_timeout=settings.search_timeout_s).search(index=settings.index_alias, size=0)
        readable = True
    except IndexMissing as exc:
        reachable = True
        problems.append(str(exc))
    except IndexModelMismatch as exc:
        reachable = present = mismatch = True
        problems.append(str(exc))
    except Exception as exc:  # noqa: BLE001 -- whatever state the node is in, readiness answers 503
        refusal = describe(exc)
        if refusal is not None and refusal.permanent:  # up, but refusing us: not a wait-and-see
            reachable = refusal.kind in ("unauthenticated", "forbidden", "version")
            problems.append(
                f"Elasticsearch refuses the service (misconfigured credentials or privileges): {refusal.message}"
            )
        else:
            problems.append(f"Elasticsearch not ready: {_describe(exc)}")
    if state["reranker_problem"]:
        problems.append(f"serving without reranker: {state['reranker_problem']}")
    pool_problem = pipeline.reranker.problem() if hasattr(pipeline.reranker, "problem") else None
    if pool_problem:  # searches are served, in the fused order, until the pool answers
        problems.append(pool_problem)
    models = pipeline.models
    ready = reachable and present and readable and not mismatch
    body = Readiness(
        ready=ready,
        elasticsearch=reachable,
        index=settings.index_alias,
        index_present=present,
        bi_encoder=models.bi_encoder,
        cross_encoder=models.cross_encoder,
        reranker_loaded=pipeline.reranker is not None and not pool_problem,
        rerank_enabled=settings.rerank_enabled,
        problems=problems,
    )
    return jsonify(body.model_dump()), 200 if ready else 503


@common.get("/metrics")
def metrics():
    state = _state()
    reranker = state["reranker"]
    state["metrics"].rerank_queue_pairs.set(reranker.queued_pairs if reranker is not None else 0)
    return Response(state["metrics"].render(), mimetype="text/plain; version=0.0.4")


@common.get("/openapi.json")
def openapi():
    state = _state()
    settings, pipeline = state["settings"], state.get("pipeline")
    fields = None
    if pipeline is not None:
        try:
            fields = pipeline.index_info(settings.index_alias).filter_fields
        except Exception:  # noqa: BLE001 -- missing or unreachable: the document says no filter applies
            fields = None
    return jsonify(
        build_openapi(
            settings,
            auth=bool(state["keys"]),
            filter_fields=fields,
            indexes=sorted(state.get("allowed_indexes", ())),
            role=settings.serve_role,
            serves=state["serves"],
            embed_dims=state["embedder"].dims if state["embedder"] is not None else None,
        )
    )


@common.get("/info")
def info():
    """What this process serves (the shape of text-embeddings-inference's ``/info``): the
    reranker's model (a pool of the bi-encoder alone: the bi-encoder's); ``serves`` names the
    models and ``embedding`` describes the bi-encoder behind /embed."""
    state = _state()
    settings, reranker, embedder = state["settings"], state["reranker"], state["embedder"]
    model = embedder if settings.serve_role == "reranker" and "rerank" not in state["serves"] else reranker
    role = "search" if settings.serve_role != "reranker" else "reranker" if "rerank" in state["serves"] else "embedding"
    return jsonify(
        {
            "model_id": model.name if model is not None else None,
            "model_type": role,
            "max_input_length": getattr(model, "max_length", None),
            "max_client_batch_size": settings.rerank_api_max_texts,
            "backend": getattr(model, "backend", None),
            "calibration": {**asdict(calibration), "index": getattr(reranker, "calibration_index", None)}
            if (calibration := getattr(reranker, "calibration", None))
            else None,
            "blend": _served_blend(state),
            "serves": list(state["serves"]),
            "embedding": embedder.describe() if embedder is not None else None,
        }
    )


def _served_blend(state) -> dict | None:
    """The serving policy's blend for the default index (null on a pool, or without a reranker)."""
    pipeline = state.get("pipeline")
    if pipeline is None or pipeline.reranker is None:
        return None
    try:
        version = pipeline.index_info(state["settings"].index_alias).version
    except Exception:  # noqa: BLE001 -- no index yet: no corpus calibration can apply
        version = ""
    served = pipeline.policy.served(version)
    return {**asdict(served.config), "source": served.source, "detail": served.detail, "index_version": version}


@pool.get("/readyz")
def pool_readyz():
    state = _state()
    reranker, embedder = state["reranker"], state["embedder"]
    return jsonify(
        {
            "ready": True,
            "reranker_loaded": reranker is not None,
            "cross_encoder": reranker.name if reranker is not None else None,
            "bi_encoder": embedder.name if embedder is not None else None,
            "serves": list(state["serves"]),
            "problems": [],
        }
    ), 200


@api.route("/search", methods=["GET", "POST"])
def search():
    state = _state()
    record: dict = {"request_id": g.request_id, "client": request.remote_addr}
    status = 500
    try:
        search_request = _parse_search_request()
        _check_limits(search_request, state["settings"])  # before the record holds a huge query
        record.update(_request_record(search_request, state["settings"]))
        if search_request.index is not None and search_request.index not in state["allowed_indexes"]:
            raise ApiError(404, "index_not_found", f"unknown index {search_request.index!r}", "index")
        result = _run(state["pipeline"], search_request)
        status = 200
        record.update(_result_record(result))
        state["metrics"].observe_timings(result.timings_ms.model_dump())
        return jsonify(result.model_dump(by_alias=True)), 200
    except ApiError as exc:
        status = exc.status
        record.update(error=exc.error, error_field=exc.field)
        raise
    except HTTPException as exc:  # a body over the limit (413), ...
        status = exc.code or 500
        raise
    except Exception:
        status = 503  # answered by _unexpected_error
        raise
    finally:
        record["status"] = status
        writer = state["search_log"]
        if writer is not None:
            writer.log(record)


def _run(pipeline: SearchPipeline, search_request: SearchRequest):
    """The pipeline, with its errors turned into API errors (service/http/errors.py)."""
    with answered_as_api_errors(pipeline.settings.retry_after_s):
        return pipeline.search(search_request)


def _check_limits(search_request: SearchRequest, settings: Settings) -> None:
    with answered_as_api_errors(settings.retry_after_s):
        check_limits(search_request, settings)


def _parse_search_request() -> SearchRequest:
    try:
        if request.method == "GET":
            params = request.args.to_dict()
            if "q" in params:
                params["query"] = params.pop("q")
            return SearchRequest.model_validate_strings(params)
        return SearchRequest.model_validate_json(request.get_data() or b"", strict=True)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def _request_record(req: SearchRequest, settings: Settings) -> dict:
    return {
        "query": req.query,
        "index": req.index or settings.index_alias,
        "mode": req.mode,
        "fusion": req.fusion.method,
        "rerank_requested": req.rerank,
        "top_k": req.top_k,
        "from": req.from_,
        "candidates": req.candidates or settings.default_candidates,
        "filters": {
            k: (v.model_dump(exclude_none=True) if hasattr(v, "model_dump") else v) for k, v in req.filters.items()
        },
    }


def _result_record(result) -> dict:
    return {
        "reranked": result.reranked,
        "reranked_count": result.reranked_count,
        "degraded": result.degraded,
        "hit_count": len(result.hits),
        "zero_hits": not result.hits,
        "hit_ids": [h.id for h in result.hits],
        "timings_ms": result.timings_ms.model_dump(),
        "bi_encoder": result.models.bi_encoder,
        "cross_encoder": result.models.cross_encoder,
        "cached": result.cached,
    }
