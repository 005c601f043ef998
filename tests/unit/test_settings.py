import pytest
from pydantic import ValidationError

from rrsearch.core.settings import Settings


def test_defaults_are_offline_and_local(monkeypatch):
    for name in ("ES_URL", "RRS_ES_URL", "RRS_INDEX_ALIAS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.es_url is None
    assert settings.index_alias == "passages"
    assert settings.bi_encoder == "all-MiniLM-L6-v2"
    assert settings.node_dir == settings.home / "node"


def test_bare_es_url_and_prefixed_names_are_read(monkeypatch):
    monkeypatch.setenv("ES_URL", "http://search.example:9200/")
    monkeypatch.setenv("RRS_INDEX_ALIAS", "docs")
    settings = Settings(_env_file=None)
    assert settings.es_url == "http://search.example:9200"
    assert settings.index_alias == "docs"


def test_secrets_do_not_show_in_repr(monkeypatch):
    monkeypatch.setenv("ES_API_KEY", "very-secret-key")
    settings = Settings(_env_file=None)
    assert settings.es_api_key.get_secret_value() == "very-secret-key"
    assert "very-secret-key" not in repr(settings)
    assert "very-secret-key" not in str(settings.model_dump())


@pytest.mark.parametrize(
    "field, value",
    [
        ("es_url", "localhost:9200"),
        ("es_port", 70000),
        ("es_heap", "2 gigs"),
        ("index_alias", "Bad Alias"),
        ("vector_similarity", "l2"),
        ("vector_index_type", "annoy"),
    ],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValidationError, match=rf"(?m)^{field}\n  "):  # the error is filed under the field's name
        Settings(_env_file=None, **{field: value})


def test_username_needs_password(monkeypatch):
    monkeypatch.delenv("ES_PASSWORD", raising=False)
    monkeypatch.delenv("RRS_ES_PASSWORD", raising=False)
    with pytest.raises(ValidationError, match="together"):
        Settings(_env_file=None, es_username="elastic")


@pytest.mark.parametrize("value", ["", " ", " , ,"])
def test_an_api_key_list_without_a_key_fails_closed(value, monkeypatch):
    from pydantic import SecretStr, ValidationError

    with pytest.raises(ValidationError, match="holds no key"):
        Settings(api_keys=SecretStr(value))


def test_an_empty_variable_means_unset_but_a_blank_one_fails(monkeypatch):
    monkeypatch.setenv("RRS_API_KEYS", "")
    assert Settings().api_keys is None  # compose passes ${RRS_API_KEYS:-}
    monkeypatch.setenv("RRS_API_KEYS", "  ")
    with pytest.raises(ValidationError, match="holds no key"):
        Settings()
