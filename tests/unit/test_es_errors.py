"""What an Elasticsearch failure tells the person who must fix it (core/es_errors.py), and
how the service answers it (service/http/errors.py): the shapes are those a 9.5 node sends."""

from __future__ import annotations

import ssl

import pytest
from elastic_transport import ApiResponseMeta, ConnectionError, HttpHeaders, TlsError
from elasticsearch import ApiError, AuthenticationException, AuthorizationException

from rrsearch.core.console import failure_line
from rrsearch.core.errors import BackendMisconfigured, ClusterUnavailable
from rrsearch.core.es_errors import describe, parse_forbidden
from rrsearch.service.http.errors import MISCONFIGURED_MESSAGE, to_api_error

BULK_403 = (
    "action [indices:data/write/bulk[s]] is unauthorized for API key id [Xk3p] of user [elastic/api] "
    "on indices [passages-v2], this action is granted by the index privileges [create_doc,create,index,write,all]"
)
MONITOR_403 = (
    "action [cluster:monitor/nodes/info] is unauthorized for user [reader] with effective roles [rrs_reader], "
    "this action is granted by the cluster privileges [monitor,manage,all]"
)


def _api_error(cls, status: int, reason: str, kind: str = "security_exception"):
    meta = ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(), duration=0.0, node=None)
    body = {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}}
    return cls(kind, meta, body)


def test_a_403_names_the_privilege_the_index_and_the_key():
    refused = parse_forbidden(BULK_403)
    assert refused.action == "indices:data/write/bulk[s]"
    assert refused.indices == "passages-v2"
    assert refused.principal == "API key id [Xk3p]"
    assert (refused.privilege_kind, refused.privileges[:2]) == ("index", ("create_doc", "create"))
    problem = describe(_api_error(AuthorizationException, 403, BULK_403), "https://127.0.0.1:9200")
    assert problem is not None and problem.kind == "forbidden" and problem.permanent
    assert "grant index privilege create_doc or create on passages-v2 to API key id [Xk3p]" in problem.message
    assert "https://127.0.0.1:9200" in problem.message


def test_a_cluster_403_names_the_cluster_privilege():
    problem = describe(_api_error(AuthorizationException, 403, MONITOR_403))
    assert problem is not None
    assert "grant cluster privilege monitor or manage to user [reader]" in problem.message


def test_a_401_names_the_credential_settings():
    reason = "unable to authenticate user [elastic] for REST request [/_nodes]"
    problem = describe(_api_error(AuthenticationException, 401, reason))
    assert problem is not None and problem.kind == "unauthenticated" and problem.status == 401
    assert "ES_API_KEY" in problem.message and "ES_PASSWORD" in problem.message


def test_tls_failures_name_es_ca_certs_or_the_scheme():
    unverified = TlsError(ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate"))
    problem = describe(unverified)
    assert problem is not None and problem.kind == "tls" and "ES_CA_CERTS" in problem.message
    plain_node = TlsError(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"))
    problem = describe(plain_node)
    assert problem is not None and problem.kind == "scheme" and "http://" in problem.message
    scheme = describe(ValueError("TLS options require scheme to be 'https'"), "http://127.0.0.1:9200")
    assert scheme is not None and scheme.kind == "scheme" and "https://" in scheme.message


def test_a_server_of_another_major_names_the_supported_ones():
    reason = "Accept version must be either version 8 or 7, but found 9. Accept=application/vnd.elasticsearch+json"
    problem = describe(_api_error(ApiError, 400, reason, kind="media_type_header_exception"))
    assert problem is not None and problem.kind == "version" and "8.19" in problem.message and "9.x" in problem.message


def test_a_node_that_does_not_answer_is_the_only_passing_problem():
    problem = describe(ConnectionError("Connection refused"))
    assert problem is not None and problem.kind == "unreachable" and not problem.permanent
    assert "rrs es status" in problem.message
    assert describe(KeyError("x")) is None
    assert describe(_api_error(ApiError, 404, "no such index", kind="index_not_found_exception")) is None


def test_the_command_line_says_the_cause_of_a_deliberate_error():
    """An error of ours raised because of a 401 says 401, not its own generic words."""
    try:
        try:
            raise _api_error(AuthenticationException, 401, "unable to authenticate user [elastic]")
        except AuthenticationException as exc:
            raise ClusterUnavailable("Elasticsearch is unreachable") from exc
    except ClusterUnavailable as wrapped:
        line = failure_line(wrapped)
    assert line is not None and "refused the credentials (401" in line
    assert failure_line(ClusterUnavailable("run `rrs es start`")) == "run `rrs es start`"
    assert failure_line(KeyError("a bug")) is None  # a bug keeps its traceback


@pytest.mark.parametrize(
    "exc",
    [
        _api_error(AuthenticationException, 401, "unable to authenticate user [svc]"),
        _api_error(AuthorizationException, 403, MONITOR_403),
        TlsError(ssl.SSLCertVerificationError(1, "CERTIFICATE_VERIFY_FAILED")),
        BackendMisconfigured("403 on passages-v2"),
    ],
)
def test_the_service_answers_a_refusal_as_misconfigured_not_retry_shortly(exc):
    answer = to_api_error(exc, retry_after_s=5)
    assert answer is not None and answer.status == 503
    assert answer.error == "search_backend_misconfigured" and answer.message == MISCONFIGURED_MESSAGE
    assert "misconfigured credentials or privileges" in answer.message and "retry shortly" not in answer.message


def test_a_node_that_is_down_is_still_retry_shortly():
    answer = to_api_error(ConnectionError("Connection refused"), retry_after_s=5)
    assert answer is not None and answer.error == "search_backend_unavailable" and "retry shortly" in answer.message


def test_a_bulk_item_refused_for_privileges_stops_the_run_instead_of_rejecting_the_record():
    from rrsearch.core.es_errors import raise_if_refused

    raise_if_refused(400, {"type": "mapper_parsing_exception", "reason": "bad field"})  # the record's fault: no raise
    raise_if_refused(429, {"type": "es_rejected_execution_exception", "reason": "busy"})
    with pytest.raises(BackendMisconfigured, match="grant index privilege create_doc or create on passages-v2"):
        raise_if_refused(403, {"type": "security_exception", "reason": BULK_403})
    with pytest.raises(BackendMisconfigured, match="ES_API_KEY"):
        raise_if_refused(401, {"type": "security_exception", "reason": "unable to authenticate"})


def test_a_refused_head_request_has_no_reason_to_quote():
    meta = ApiResponseMeta(status=403, http_version="1.1", headers=HttpHeaders(), duration=0.0, node=None)
    problem = describe(AuthorizationException(message="None", meta=meta, body=None))
    assert problem is not None and problem.kind == "forbidden"
    assert "None" not in problem.message and "(403)" in problem.message


def test_an_index_block_is_not_a_missing_privilege():
    """A read-blocked index answers 403 too (cluster_block_exception): that is an operator's
    block, lifted later, not credentials; it keeps its old handling."""
    from rrsearch.core.es_errors import raise_if_refused

    reason = "index [passages-v2] blocked by: [FORBIDDEN/7/index read (api)];"
    raise_if_refused(403, {"type": "cluster_block_exception", "reason": reason})
    assert describe(_api_error(ApiError, 403, reason, kind="cluster_block_exception")) is None
