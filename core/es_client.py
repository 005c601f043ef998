"""One way to build an Elasticsearch client from the settings.

``ES_URL`` (with basic auth or an API key from the environment) wins; otherwise the URL
of the local node started by ``rrs es start`` is read from its state file, and for a node
started with ``--secure`` its CA and the ``elastic`` user's password file too
(:mod:`rrsearch.core.node_access`). What the environment sets (``ES_API_KEY``,
``ES_USERNAME``/``ES_PASSWORD``, ``ES_CA_CERTS``) wins over what the state file says.
"""

from __future__ import annotations

from elasticsearch import Elasticsearch

from rrsearch.core.errors import ClusterUnavailable
from rrsearch.core.es_compat import negotiate
from rrsearch.core.node_access import ClientAccess, local_access
from rrsearch.core.settings import Settings


def resolve_url(settings: Settings) -> str:
    """The cluster URL(s), comma-separated: ES_URL, else the running local node's or cluster's."""
    if settings.es_url:
        return settings.es_url
    access = local_access(settings.node_dir)
    if access is not None:
        return access.url
    raise ClusterUnavailable("No Elasticsearch configured: run `rrs es start` for a local node, or set ES_URL.")


def make_client(settings: Settings, **overrides) -> Elasticsearch:
    """A client with auth, timeouts and retries on 429/5xx set from the settings."""
    kwargs: dict = {
        "request_timeout": settings.es_request_timeout_s,
        "retry_on_timeout": True,
        "max_retries": 3,
        "retry_on_status": (429, 502, 503, 504),
    }
    kwargs.update(connection_options(settings))
    kwargs.update(overrides)
    return negotiate(Elasticsearch(hosts(resolve_url(settings)), **kwargs))  # 8.19.x and 9.x servers


def local_node_access(settings: Settings) -> ClientAccess | None:
    """The local node's recorded access when the settings name no cluster (no ES_URL); else None."""
    return None if settings.es_url else local_access(settings.node_dir)


def connection_options(settings: Settings) -> dict:
    """Auth and CA for the cluster: ``api_key`` or ``basic_auth``, and ``ca_certs``. The
    environment's settings win; a local ``--secure`` node fills in what they leave unset."""
    options: dict = {}
    local = local_node_access(settings)
    own = local if local is not None and local.secure else None  # a --secure node's CA and password
    if settings.es_api_key is not None:
        options["api_key"] = settings.es_api_key.get_secret_value()
    elif settings.es_username is not None and settings.es_password is not None:
        options["basic_auth"] = (settings.es_username, settings.es_password.get_secret_value())
    elif own is not None:
        options["basic_auth"] = own.basic_auth()
    if settings.es_ca_certs:
        options["ca_certs"] = settings.es_ca_certs
    elif own is not None:
        options["ca_certs"] = own.ca_certs
    return options


def hosts(url: str) -> list[str]:
    """``"http://a:9200,http://b:9200"`` -> both URLs: the client spreads requests over them and
    skips a node that stops answering."""
    return [part.strip() for part in url.split(",") if part.strip()]


def server_version(es: Elasticsearch) -> str:
    """The cluster's lowest node version. (``GET /`` is absent from the integ-test node.)"""
    nodes = es.nodes.info(filter_path="nodes.*.version")["nodes"]
    return min((n["version"] for n in nodes.values()), key=lambda v: tuple(map(int, v.split(".")[:3])))
