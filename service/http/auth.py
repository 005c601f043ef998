"""Optional API-key check: keys come from ``RRS_API_KEYS`` (comma-separated).

A request presents its key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
Every configured key is compared in constant time (``hmac.compare_digest``), and all of
them are always checked, so timing reveals neither a key nor which one matched.
"""

from __future__ import annotations

import hmac

from rrsearch.core.settings import Settings


def configured_keys(settings: Settings) -> list[bytes]:
    """The accepted keys (empty: auth is off)."""
    if settings.api_keys is None:
        return []
    return [k.strip().encode() for k in settings.api_keys.get_secret_value().split(",") if k.strip()]


def presented_key(headers) -> str | None:
    """The key a request carries, if any."""
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get("X-API-Key")


def key_is_valid(presented: str | None, keys: list[bytes]) -> bool:
    """True when ``presented`` equals one of ``keys`` (constant time per key)."""
    if presented is None:
        return False
    candidate = presented.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key)
    return matched
