"""Which models this process serves, and the answer for a route whose model it does not load.

The search role serves both (it loads the bi-encoder for its queries and a reranker, local or
remote). A pool (``RRS_SERVE_ROLE=reranker``) loads what ``RRS_POOL_MODELS`` names: ``rerank``
(the cross-encoder: ``/rerank``, ``/v1/rerank``, ``/v2/rerank``), ``embed`` (the bi-encoder:
``/embed``), or both. A route of a model that is not loaded answers 404 ``model_not_served``.
"""

from __future__ import annotations

from flask import current_app

from rrsearch.service.http.errors import ApiError

MODELS = ("rerank", "embed")
ROUTES = {"rerank": "/rerank, /v1/rerank and /v2/rerank", "embed": "/embed"}


def served_models(settings) -> tuple[str, ...]:
    """The models a process with these settings serves, in :data:`MODELS` order."""
    if settings.serve_role != "reranker":
        return MODELS
    wanted = {part.strip() for part in settings.pool_models.split(",")}
    return tuple(model for model in MODELS if model in wanted)


def require_served(model: str) -> None:
    """Raise the 404 that says why, when this process does not serve ``model``."""
    serves = current_app.extensions["rrs"]["serves"]
    if model not in serves:
        raise ApiError(
            404,
            "model_not_served",
            f"this pool serves only {', '.join(serves)} (RRS_POOL_MODELS={','.join(serves)}): "
            f"{ROUTES[model]} need{'s' if model == 'embed' else ''} a pool that loads the "
            f"{'bi-encoder' if model == 'embed' else 'cross-encoder'} (add {model} to RRS_POOL_MODELS)",
        )
