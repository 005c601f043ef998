"""RRS_POOL_MODELS: what a pool loads and serves (service/http/served.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rrsearch.core.settings import Settings
from rrsearch.service.http.served import served_models


def test_the_models_are_named_and_put_in_one_order():
    assert Settings(pool_models=" Embed ,rerank").pool_models == "rerank,embed"
    assert Settings(pool_models="embed").pool_models == "embed"
    for wrong in ("bm25", "rerank,knn", " , "):
        with pytest.raises(ValidationError, match="must name rerank, embed or both"):
            Settings(pool_models=wrong)


def test_a_pool_serves_what_it_names_and_the_search_role_serves_both():
    assert served_models(Settings(serve_role="reranker")) == ("rerank", "embed")  # the default: both
    assert served_models(Settings(serve_role="reranker", pool_models="embed")) == ("embed",)
    assert served_models(Settings(serve_role="reranker", pool_models="rerank")) == ("rerank",)
    assert served_models(Settings(serve_role="search", pool_models="rerank")) == ("rerank", "embed")
