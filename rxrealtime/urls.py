"""Service URLs and secret redaction: pure string work shared by client and server.

Kept apart from every I/O module so that the session core, the errors and the CLI can
build and redact URLs without importing aiohttp or aiortc.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlencode, urlsplit, urlunsplit

from .exceptions import ConfigError, redact_secrets, secret_pattern

__all__ = [
    "build_url",
    "is_loopback_host",
    "normalize_base_url",
    "redact",
    "redact_url",
]


redact_url = redact_secrets
"""``url`` (or a JSON frame) with secret query parameters or fields replaced by ``***``."""


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every given secret, and any secret URL parameter, replaced by ``***``.

    The given secrets follow the rule of :mod:`rxrealtime.exceptions` (any letter case,
    plain or URL-encoded; one shorter than 8 characters only as a whole value), so a
    session's texts hide its key even once the key is no longer registered, and a key
    "x" does not garble ``user_agent=rxrealtime``.
    """
    for secret in sorted(filter(None, secrets), key=len, reverse=True):  # longest first
        text = secret_pattern(secret).sub("***", text)
    return redact_url(text)


def normalize_base_url(base: str) -> str:
    """Check a service base URL and rewrite ``http(s)`` to ``ws(s)`` as the protocol says."""
    parts = urlsplit(base.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ConfigError(
            f"invalid service URL {redact_url(base)!r}: expected ws://host:port, wss://host, "
            "http(s)://host"
        )
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def build_url(base: str, path: str, query: dict[str, str]) -> str:
    """``{base}{path}?{query}`` with the query values URL-encoded."""
    return f"{normalize_base_url(base)}{path}?{urlencode(query)}"


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
