"""Compatibility names: URL helpers (:mod:`rxrealtime.urls`) and ICE helpers
(:mod:`rxrealtime.transports.ice`), which lived here in 0.1.

The ICE names load aiortc on first access only, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .urls import build_url, is_loopback_host, normalize_base_url, redact, redact_url

if TYPE_CHECKING:
    from .transports.ice import (
        candidate_from_wire,
        candidate_to_wire,
        create_peer_connection,
        gather_on_loopback,
    )

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

_ICE_NAMES = {"candidate_from_wire", "candidate_to_wire", "create_peer_connection",
              "gather_on_loopback"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _ICE_NAMES:
        from .transports import ice

        return getattr(ice, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
