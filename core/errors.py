"""Every error the project raises on purpose, in one tree.

Code raises the most specific class; the edges decide what a class means to a user:
``service/http/errors.py`` maps the branches a search can raise to HTTP statuses (one
table, checked by a test that walks this tree), and the CLI prints the message of any
:class:`RRSError` as one line and exits non-zero. The branches say whose fault it is::

    RRSError
    ├── InvalidRequest        the caller's mistake (HTTP 400): LimitError, FilterError, SearchRejected,
    │                         InputTooLong (413)
    ├── IndexMissing          the named alias or index does not exist (HTTP 404)
    ├── BackendUnavailable    Elasticsearch is down, slow or failing (HTTP 503 + Retry-After)
    │   ├── ClusterUnavailable    no cluster configured or reachable
    │   ├── BackendMisconfigured  it refuses our credentials, privileges, CA or API version
    │   │   └── UnsupportedServer     a server of another major than 8.19.x or 9.x (core/es_compat.py)
    │   └── SearchFailed          a search failed on the server (shard failure, ...)
    │       └── RetrieversMissing     RRS_RETRIEVAL_PATH=retrievers on a node without our plugin
    ├── IndexModelMismatch    the index was built with another bi-encoder than the one loaded
    ├── RerankError           the rerank stage failed; a search degrades to the fused order
    │   ├── RerankerUnavailable, RerankTimeout, RerankOverloaded
    │   └── QueueFull, Abandoned  (the micro-batcher's own signals)
    ├── InputError            a file or record a command was given is unusable
    │   ├── SourceError, RecordRejected, DatasetError > JudgmentsError
    └── OperationFailed       a command could not do its job; the message says what to change
        └── StartupError, NodeError, KibanaError, MiningError, TrainingError, ExportMismatch, IngestLocked

Classes keep the built-in base they always had (``ValueError``, ``LookupError``,
``TimeoutError``, ``RuntimeError``) so ``except ValueError`` around a parser still works.
:class:`IngestInterrupted` stays outside the tree on purpose: it is a ``KeyboardInterrupt``
carrying a report, and ``except Exception`` must not swallow Ctrl-C.
"""

from __future__ import annotations


class RRSError(Exception):
    """Base of every deliberate error; ``field`` names the input at fault, if any."""

    field: str | None = None


# --- search: what the HTTP layer maps ------------------------------------------------


class InvalidRequest(RRSError, ValueError):
    """The request asks for something the service cannot do; the caller can fix it."""


class LimitError(InvalidRequest):
    """A value outside a limit from the settings; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class FilterError(InvalidRequest):
    """A filter the index cannot apply; ``field`` names it as the request did."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class SearchRejected(InvalidRequest):
    """Elasticsearch refused a search as malformed (for us: a filter of the wrong type)."""

    field = "filters"


class InputTooLong(InvalidRequest):
    """A (query, text) pair is longer than the model takes and the caller asked not to truncate."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class IndexMissing(RRSError, LookupError):
    """The alias (or index) a caller named does not exist."""

    field = "index"


class BackendUnavailable(RRSError, RuntimeError):
    """Elasticsearch cannot answer now; retrying later may work."""


class ClusterUnavailable(BackendUnavailable):
    """No cluster configured or reachable; the message says what to do."""


class BackendMisconfigured(BackendUnavailable):
    """Elasticsearch answers but refuses us for good (401, 403, TLS, API version): retrying
    cannot help until an operator changes a credential, a privilege or a setting."""


class UnsupportedServer(BackendMisconfigured):
    """The server speaks neither API version 8 nor 9 (a 7.x cluster): the message names its
    version and the supported ones (core/es_compat.py)."""


class SearchFailed(BackendUnavailable):
    """One of the searches failed on the server for another reason (shard failure, ...)."""


class RetrieversMissing(SearchFailed):
    """The node does not know ``rrs_rrf``/``rrs_linear``: our plugin is missing where
    ``RRS_RETRIEVAL_PATH=retrievers`` needs it (an operator's fix, so the message says it)."""


class IndexModelMismatch(RRSError, RuntimeError):
    """The index was built with another bi-encoder (or vector size) than the service loads."""


class RerankError(RRSError, RuntimeError):
    """The rerank stage could not score this request; the fused order is served instead."""


class RerankerUnavailable(RerankError):
    """The cross-encoder could not be loaded; the message says which and why."""


class RerankTimeout(RerankError, TimeoutError):
    """Scoring did not finish within the request's budget."""


class RerankOverloaded(RerankError):
    """The queue is too deep to rerank even the minimum depth within the budget."""


class QueueFull(RerankError):
    """The micro-batcher's bounded queue cannot take this many more pairs."""


class Abandoned(RerankError):
    """Every job of a micro-batch round gave up (deadline passed) while it was being scored."""


# --- commands: what the CLI prints -----------------------------------------------------


class InputError(RRSError, ValueError):
    """A file or record given to a command is unusable; the message names it."""


class SourceError(InputError):
    """A source that cannot be read at all (missing, unknown format); names the path."""


class RecordRejected(InputError):
    """A record that cannot be ingested; the message is the reason written to the rejects file."""


class DatasetError(InputError):
    """Bad dataset input; the message names the file (and line)."""


class JudgmentsError(DatasetError):
    """Unusable training judgments; the message names the file (and line)."""


class OperationFailed(RRSError, RuntimeError):
    """A command could not finish its job; the message says what to change."""


class StartupError(OperationFailed):
    """The service cannot start as configured; the message says what to change."""


class NodeError(OperationFailed):
    """Something the user can fix: a missing tool, a taken port, a node that won't start."""


class KibanaError(OperationFailed):
    """Kibana could not be reached, refused the request, or the objects are unusable."""


class MiningError(OperationFailed):
    """The index cannot serve the judgments (missing or empty alias, unknown ids)."""


class TrainingError(OperationFailed):
    """Training cannot start or finish; the message says why."""


class IngestLocked(OperationFailed):
    """Another ingest run holds the alias; the message names it and how to break a stale lock."""


class ExportMismatch(OperationFailed):
    """The exported graph's scores differ from the torch model's beyond tolerance."""


class IngestInterrupted(KeyboardInterrupt):
    """Ctrl-C during ingest; ``report`` says what was done (re-run to finish)."""

    def __init__(self, report):
        super().__init__("ingest interrupted")
        self.report = report


def subclasses(root: type = RRSError) -> list[type]:
    """``root`` and every class below it, depth first (the mapping test walks this)."""
    found: list[type] = [root]
    child: type
    for child in root.__subclasses__():
        found.extend(subclasses(child))
    return found
