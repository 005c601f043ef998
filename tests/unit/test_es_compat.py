"""core/es_compat.py without a server: reading a refusal, rewriting headers, and the
negotiation against a fake transport that answers like an 8.19, a 9.x and a 7.17 node."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from elastic_transport import TransportApiResponse
from elasticsearch import Elasticsearch

from rrsearch.core.errors import BackendMisconfigured, UnsupportedServer
from rrsearch.core.es_compat import (
    CLIENT_MAJOR,
    SUPPORTED_SERVERS,
    VersionNegotiator,
    accepted_versions,
    choose_major,
    compat_headers,
    compat_version,
    negotiate,
    unsupported_message,
)


def refusal(header: str, accepted: tuple[int, int], found: int) -> dict:
    """The body an Elasticsearch server answers a compatible-with it does not speak with."""
    first, second = accepted
    return {
        "error": {
            "root_cause": [
                {
                    "type": "media_type_header_exception",
                    "reason": "Invalid media-type value on headers [Accept, Content-Type]",
                }
            ],
            "type": "media_type_header_exception",
            "reason": "Invalid media-type value on headers [Accept, Content-Type]",
            "caused_by": {
                "type": "status_exception",
                "reason": f"{header} version must be either version {first} or {second}, but found {found}. "
                f"{header}=application/vnd.elasticsearch+json; compatible-with={found}",
            },
        },
        "status": 400,
    }


def test_client_line_is_9():
    assert CLIENT_MAJOR == 9


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (refusal("Accept", (8, 7), 9), (8, 7)),
        (refusal("Content-Type", (8, 7), 9), (8, 7)),
        (refusal("Accept", (9, 8), 7), (9, 8)),
        (refusal("Accept", (7, 6), 9), (7, 6)),
        ({"error": {"type": "illegal_argument_exception", "reason": "must be either version 8 or 7"}}, None),
        ({"error": {"type": "media_type_header_exception", "reason": "A compatible version is required"}}, None),
        ({"error": "parsing_exception"}, None),
        (None, None),
        (b"bytes", None),
    ],
)
def test_accepted_versions(body, expected):
    assert accepted_versions(body) == expected


def test_choose_major_prefers_9_then_8():
    assert choose_major((9, 8)) == 9
    assert choose_major((10, 9)) == 9
    assert choose_major((8, 7)) == 8
    assert choose_major((7, 6)) is None


def test_compat_headers_rewrites_json_and_ndjson_alike():
    headers = {
        "Accept": "application/vnd.elasticsearch+json; compatible-with=9",
        "content-type": "application/vnd.elasticsearch+x-ndjson; compatible-with=9",
        "x-opaque-id": "compatible-with=9 stays",
        "authorization": "ApiKey abc",
    }
    assert compat_headers(headers, 8) == {
        "Accept": "application/vnd.elasticsearch+json; compatible-with=8",
        "content-type": "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
        "x-opaque-id": "compatible-with=9 stays",
        "authorization": "ApiKey abc",
    }
    assert compat_headers({"Accept": "application/json"}, 8) == {"Accept": "application/json"}
    assert compat_headers(None, 8) == {}


def test_unsupported_message_is_one_line_naming_both_versions():
    message = unsupported_message("7.17.3", (7, 6), "http://es:9200")
    assert "\n" not in message
    assert "Elasticsearch 7.17.3 at http://es:9200" in message
    assert SUPPORTED_SERVERS in message and "8.19" in message and "9.x" in message
    assert "An Elasticsearch 7.x server" in unsupported_message(None, (7, 6), None)


# --- the negotiation, against a fake transport -------------------------------------------


class FakeServer:
    """Answers like a node that accepts ``accepts`` (a pair), recording each request's headers."""

    def __init__(self, accepts: tuple[int, int], version: str):
        self.accepts, self.version = accepts, version
        self.calls: list[tuple[str, str, dict, object]] = []
        self.lock = threading.Lock()

    def perform_request(self, method, target, *, headers=None, body=None, **_kwargs):
        headers = {name.lower(): value for name, value in (headers or {}).items()}
        if body is not None and not isinstance(body, (dict, list, str, bytes)):
            body = list(body)  # what the serializer would do: consume it
        with self.lock:
            self.calls.append((method, target, headers, body))
        meta = SimpleNamespace(status=200, node=SimpleNamespace(base_url="http://127.0.0.1:9419"))
        if headers.get("accept") == "application/json":
            return TransportApiResponse(meta, {"version": {"number": self.version}})
        for name in ("accept", "content-type"):
            value = headers.get(name, "")
            found = int(value.rsplit("=", 1)[1]) if "compatible-with=" in value else None
            if found is not None and found not in self.accepts:
                meta.status = 400
                answer = None if method == "HEAD" else refusal(name.title(), self.accepts, found)
                return TransportApiResponse(meta, answer)
        return TransportApiResponse(meta, {"ok": True, "body": body})


JSON9 = {
    "accept": "application/vnd.elasticsearch+json; compatible-with=9",
    "content-type": "application/vnd.elasticsearch+json; compatible-with=9",
}


def test_an_8x_server_is_asked_again_with_8_and_the_choice_is_kept():
    server = FakeServer((8, 7), "8.19.21")
    send = VersionNegotiator(server.perform_request)
    assert send("POST", "/x/_search", headers=JSON9, body={"size": 1}).body["ok"]
    assert send.major == 8
    assert [c[2]["accept"][-1] for c in server.calls] == ["9", "8"]
    send("POST", "/x/_search", headers=JSON9, body={"size": 1})
    assert len(server.calls) == 3 and server.calls[-1][2]["content-type"].endswith("compatible-with=8")


def test_a_9x_server_keeps_9_and_costs_nothing():
    server = FakeServer((9, 8), "9.5.4")
    send = VersionNegotiator(server.perform_request)
    send("GET", "/_cluster/health", headers=JSON9)
    assert send.major == 9 and len(server.calls) == 1


def test_head_without_a_body_learns_from_a_get():
    server = FakeServer((8, 7), "8.19.21")
    send = VersionNegotiator(server.perform_request)
    assert send("HEAD", "/passages", headers=JSON9).meta.status == 200
    assert [c[0] for c in server.calls] == ["HEAD", "GET", "HEAD"]
    assert send.major == 8


def test_a_generator_body_survives_the_retry():
    server = FakeServer((8, 7), "8.19.21")
    send = VersionNegotiator(server.perform_request)
    ndjson = {
        "accept": "application/vnd.elasticsearch+json; compatible-with=9",
        "content-type": "application/vnd.elasticsearch+x-ndjson; compatible-with=9",
    }
    lines = (line for line in ['{"index":{}}', '{"a":1}'])
    answer = send("PUT", "/_bulk", headers=ndjson, body=lines)
    assert answer.body["body"] == ['{"index":{}}', '{"a":1}']
    assert server.calls[-1][2]["content-type"] == "application/vnd.elasticsearch+x-ndjson; compatible-with=8"


def test_other_400s_pass_through_untouched():
    def bad_request(method, target, **_kwargs):
        meta = SimpleNamespace(status=400, node=None)
        return TransportApiResponse(meta, {"error": {"type": "parsing_exception"}})

    send = VersionNegotiator(bad_request)
    assert send("POST", "/x/_search", headers=JSON9, body={}).body == {"error": {"type": "parsing_exception"}}
    assert send.major == 9


def test_a_7x_server_gets_one_clear_error():
    server = FakeServer((7, 6), "7.17.3")
    send = VersionNegotiator(server.perform_request)
    with pytest.raises(UnsupportedServer) as raised:
        send("GET", "/_cluster/health", headers=JSON9)
    assert isinstance(raised.value, BackendMisconfigured)
    message = str(raised.value)
    assert "Elasticsearch 7.17.3 at http://127.0.0.1:9419" in message and SUPPORTED_SERVERS in message


def test_threads_agree_on_one_version():
    server = FakeServer((8, 7), "8.19.21")
    send = VersionNegotiator(server.perform_request)
    threads = [
        threading.Thread(target=send, args=("GET", "/_cluster/health"), kwargs={"headers": JSON9}) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert send.major == 8
    assert sum(1 for c in server.calls if c[2]["accept"].endswith("=8")) >= 8  # every request got through on 8


def test_negotiate_wraps_once_and_options_copies_share_the_choice():
    es = Elasticsearch("http://127.0.0.1:1")
    assert negotiate(negotiate(es)) is es
    assert isinstance(es.transport.perform_request, VersionNegotiator)
    assert not isinstance(es.transport.perform_request._perform, VersionNegotiator)
    es.transport.perform_request.major = 8
    assert compat_version(es.options(request_timeout=5)) == 8
    assert compat_version(Elasticsearch("http://127.0.0.1:1")) == CLIENT_MAJOR


def test_the_real_client_switches_against_an_8x_transport():
    """The client's own header handling (_base.py) end to end, with the node's answers faked."""
    es = negotiate(Elasticsearch("http://127.0.0.1:1"))
    server = FakeServer((8, 7), "8.19.21")

    def node_answer(method, target, *, headers=None, body=None, **kwargs):
        answer = server.perform_request(method, target, headers=headers, body=body)
        meta = SimpleNamespace(
            status=answer.meta.status,
            node=answer.meta.node,
            headers={"x-elastic-product": "Elasticsearch"},
            mimetype="application/json",
        )
        return TransportApiResponse(meta, {"status": "green"} if meta.status == 200 else answer.body)

    es.transport.perform_request._perform = node_answer
    es.cluster.health()
    assert compat_version(es) == 8
    es.options(request_timeout=3).index(index="x", document={"a": 1})
    assert server.calls[-1][2]["content-type"] == "application/vnd.elasticsearch+json; compatible-with=8"


# --- the local node's side: which versions it runs, and what an 8.x node lacks ------------


def test_rrs_es_version_of_another_major_is_one_line_naming_both():
    from pathlib import Path

    from rrsearch.core.errors import NodeError
    from rrsearch.rrs.es_distribution import PINNED_VERSIONS, Jdk, choose_version

    jdks = [Jdk(Path("/jdk25"), 25), Jdk(Path("/jdk17"), 17)]
    assert choose_version(jdks, PINNED_VERSIONS[8]) == (PINNED_VERSIONS[8], jdks[0])
    assert choose_version(jdks, "9.1.0")[0] == "9.1.0"
    for wrong in ("7.17.3", "10.0.0", "latest"):
        with pytest.raises(NodeError) as raised:
            choose_version(jdks, wrong)
        message = str(raised.value)
        assert "\n" not in message and f"RRS_ES_VERSION={wrong}" in message
        assert PINNED_VERSIONS[8] in message and PINNED_VERSIONS[9] in message


def test_only_an_8x_node_is_told_it_has_no_retrievers():
    from rrsearch.rrs.es_plugin import retrievers_note

    note = retrievers_note("8.19.21")
    assert note is not None and "\n" not in note
    assert "rrs_rrf" in note and "RRS_RETRIEVAL_PATH=retrievers is unavailable" in note and "msearch" in note
    assert retrievers_note("9.5.4") is None and retrievers_note(None) is None
