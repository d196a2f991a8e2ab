"""What ``session.diagnostics`` publishes: how a session's connection is doing over time.

Plain frozen values, so dashboards, logs and tests can compare and store them: how long
each phase of connecting took, each reconnect attempt and the downtime it ended, and
video that stopped arriving while the session was billed for generating.
"""

from __future__ import annotations

import msgspec

__all__ = ["Diagnostic", "PhaseTiming", "ReconnectAttempt", "Reconnected", "VideoStall"]


class PhaseTiming(msgspec.Struct, frozen=True, gc=False):
    """One phase of a connection attempt finished after ``seconds`` (since the attempt
    began): ``websocket`` (socket open), ``media`` (the transport negotiated and its media
    is up: offer/answer and ICE, or the LiveKit room), ``first_frame`` (the first
    generated frame arrived), ``first_tick`` (the first billing tick arrived)."""

    phase: str
    seconds: float
    attempt: int = 1


class ReconnectAttempt(msgspec.Struct, frozen=True, gc=False):
    """Reconnect attempt number ``attempt`` starts after ``delay_s`` (backoff, with
    jitter), because of ``error`` (the failure's type and text)."""

    attempt: int
    delay_s: float
    error: str


class Reconnected(msgspec.Struct, frozen=True, gc=False):
    """A lost session is back after ``attempts`` attempts and ``downtime_s`` seconds
    without a link (a new server session: ticks restart at 0)."""

    attempts: int
    downtime_s: float


class VideoStall(msgspec.Struct, frozen=True, gc=False):
    """Generated video stopped arriving while generating: ``seconds`` without a frame so
    far (``ongoing``), or in all once frames resumed (``ongoing=False``)."""

    seconds: float
    ongoing: bool = True


Diagnostic = PhaseTiming | ReconnectAttempt | Reconnected | VideoStall
"""Every value of ``session.diagnostics``."""
