"""The thin I/O shell: URLs, secret redaction, and aiortc peer-connection plumbing.

Everything here is shared by the client session and the embedded server, so both
sides gather ICE candidates, parse trickled candidates and redact keys the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aioice.ice
from aiortc import RTCConfiguration, RTCIceCandidate, RTCIceServer, RTCPeerConnection
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp

from .exceptions import ConfigError, redact_secrets
from .protocol import IceCandidate

__all__ = [
    "build_url",
    "candidate_from_wire",
    "candidate_to_wire",
    "create_peer_connection",
    "gather_on_loopback",
    "is_loopback_host",
    "normalize_base_url",
    "redact",
    "redact_url",
]


redact_url = redact_secrets
"""``url`` (or a JSON frame) with secret query parameters or fields replaced by ``***``."""


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every given secret, and any secret URL parameter, replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return redact_url(text)


def normalize_base_url(base: str) -> str:
    """Check a service base URL and rewrite ``http(s)`` to ``ws(s)`` as PROTOCOL.md says."""
    parts = urlsplit(base.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ConfigError(
            f"invalid service URL {redact_url(base)!r}: expected ws://host:port, wss://host, "
            "http(s)://host"
        )
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def build_url(base: str, path: str, query: dict[str, str]) -> str:
    """``{base}{path}?{query}`` with ``None``-free query values URL-encoded."""
    return f"{normalize_base_url(base)}{path}?{urlencode(query)}"


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# -- ICE on loopback ---------------------------------------------------------------
#
# aioice gathers host candidates on every interface except loopback. A session whose
# signaling runs on loopback (the embedded server, every test) must not send media
# through any other interface, so inside `gather_on_loopback()` candidate gathering is
# limited to 127.0.0.1. A context variable scopes the override to the coroutine that
# gathers, so other peer connections of the process are unaffected.

_loopback_only: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "rxrealtime_loopback_only", default=False
)
_original_get_host_addresses = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _loopback_only.get():
        return ["127.0.0.1"] if use_ipv4 else []
    return _original_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)


aioice.ice.get_host_addresses = _get_host_addresses


@contextlib.contextmanager
def gather_on_loopback(enabled: bool = True) -> Iterator[None]:
    """Within this block, ICE gathering offers loopback host candidates only."""
    token = _loopback_only.set(enabled)
    try:
        yield
    finally:
        _loopback_only.reset(token)


def create_peer_connection(ice_servers: Sequence[dict[str, Any]] = ()) -> RTCPeerConnection:
    """A peer connection that uses exactly ``ice_servers``.

    aiortc falls back to a public STUN server when given none; an explicit empty list
    keeps a session from contacting anything it was not told to.
    """
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in ice_servers
    ]
    return RTCPeerConnection(RTCConfiguration(iceServers=servers))


def candidate_from_wire(candidate: IceCandidate) -> RTCIceCandidate | None:
    """An aiortc candidate from a trickled one; ``None`` for the end-of-candidates marker."""
    text = candidate.candidate
    if not text:
        return None
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    parsed = candidate_from_sdp(text)
    parsed.sdpMid = candidate.sdpMid
    parsed.sdpMLineIndex = candidate.sdpMLineIndex
    return parsed


def candidate_to_wire(candidate: RTCIceCandidate) -> IceCandidate:
    return IceCandidate(
        candidate="candidate:" + candidate_to_sdp(candidate),
        sdpMLineIndex=candidate.sdpMLineIndex,
        sdpMid=candidate.sdpMid,
    )
