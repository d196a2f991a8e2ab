"""aiortc ICE plumbing shared by the client's peer link and the embedded server.

Both sides create peer connections the same way, keep trickled candidates until the
remote description is applied, and gather on loopback only when they talk to loopback.
Importing this module imports aiortc; nothing on ``import rxrealtime`` does.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceCandidate, RTCIceServer, RTCPeerConnection
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp

from ..protocol import IceCandidate

__all__ = [
    "CandidateBuffer",
    "candidate_from_wire",
    "candidate_to_wire",
    "create_peer_connection",
    "gather_on_loopback",
]


# -- ICE on loopback ---------------------------------------------------------------
#
# aioice gathers host candidates on every interface except loopback. A session whose
# signaling runs on loopback (the embedded server, every test) must not send media
# through any other interface, so inside `gather_on_loopback()` candidate gathering is
# limited to 127.0.0.1. A context variable scopes the override to the coroutine that
# gathers, so other peer connections of the process are unaffected; the hook itself is
# installed on the first use of `gather_on_loopback`, never at import.

_loopback_only: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "rxrealtime_loopback_only", default=False
)
_original_get_host_addresses: Any = None


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _loopback_only.get():
        return ["127.0.0.1"] if use_ipv4 else []
    result: list[str] = _original_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return result


def _install_loopback_hook() -> None:
    global _original_get_host_addresses
    if _original_get_host_addresses is None:
        _original_get_host_addresses = aioice.ice.get_host_addresses
        aioice.ice.get_host_addresses = _get_host_addresses


@contextlib.contextmanager
def gather_on_loopback(enabled: bool = True) -> Iterator[None]:
    """Within this block, ICE gathering offers loopback host candidates only."""
    if enabled:
        _install_loopback_hook()
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


class CandidateBuffer:
    """Trickled candidates that arrive before the remote description is applied.

    aiortc cannot add a candidate to a peer without a remote description, and the
    protocol lets candidates overtake the answer (or the offer, on the server), so
    both sides queue them here and add them once the description is set.
    """

    __slots__ = ("_early", "remote_set")

    def __init__(self) -> None:
        self._early: list[IceCandidate] = []
        self.remote_set = False

    def reset(self) -> None:
        """A new peer connection: nothing is applied, nothing is queued."""
        self._early = []
        self.remote_set = False

    def hold(self, candidate: IceCandidate) -> bool:
        """Queue ``candidate`` if it is early; True if it was queued."""
        if self.remote_set:
            return False
        self._early.append(candidate)
        return True

    def release(self) -> list[IceCandidate]:
        """The remote description is now set: the queued candidates, to add in order."""
        self.remote_set = True
        early, self._early = self._early, []
        return early
