"""The hot streams of one session, declared once.

A live :class:`~rxrealtime.Session` and anything else that publishes a session's events
(a replay, a test double) share this set, so every consumer (operators, fleets,
dashboards) can take any of them. Every stream is hot and exists from construction on;
none ever calls ``on_error`` (errors are values on ``errors``); all complete when the
session is closed for good, ``errors`` last. Streams that describe "the current value"
replay it to a new subscriber: ``connection_changes`` (always has one),
``session_started``, ``queue_positions``, ``stats``, ``raw_stats`` and ``quality``
(once they have one); the others
are event streams and do not replay.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from . import protocol as p
from .diagnostics import Diagnostic
from .exceptions import RealtimeError, SubscriberError
from .quality import ConnectionQuality, SessionStats
from .states import ConnectionState, SessionInfo
from .streams import HotStream, LatestStream, StateStream

__all__ = ["AckLatency", "SessionStreams"]

logger = logging.getLogger(__name__)


class AckLatency(msgspec.Struct, frozen=True, gc=False):
    """Time from sending a prompt (``kind="prompt"``) or image to its acknowledgement."""

    kind: str
    seconds: float


class SessionStreams:
    """The streams; a subscriber that raises is reported on ``errors`` as a
    :class:`~rxrealtime.SubscriberError` and the other subscribers still get the value."""

    def __init__(self) -> None:
        report = self._report_subscriber_error
        self.errors: HotStream[RealtimeError] = HotStream("errors")
        """Every error, typed (``ProtocolError``, ``ServerError``, ``ConnectionLost``...)."""
        self.messages: HotStream[p.ServerMessage] = HotStream("messages", report)
        """Every decoded server frame."""
        self.sent: HotStream[p.ClientMessage] = HotStream("sent", report)
        """Every frame the client sent (offers, candidates, prompts, images, joins)."""
        self.generation_ticks: HotStream[p.GenerationTick] = HotStream("generation_ticks", report)
        """Billing ticks: cumulative seconds of the current server session."""
        self.generation_started: HotStream[p.GenerationStarted] = HotStream(
            "generation_started", report
        )
        """Media flows and generation (and billing) has begun: once per server session,
        so again after each reconnect; the state is then ``generating``."""
        self.generation_ended: HotStream[p.GenerationEnded] = HotStream("generation_ended", report)
        """The server ended generation after ``seconds`` billed seconds, for ``reason``;
        the session is not reconnected after it."""
        self.connection_changes: StateStream[ConnectionState] = StateStream(
            "connection_changes", ConnectionState.DISCONNECTED, report
        )
        """The connection state; replays the current one to each new subscriber."""
        self.session_started: LatestStream[SessionInfo] = LatestStream("session_started", report)
        """A new server session (once per link): its id and subscribe token; replays the
        latest, so subscribing after ``connect()`` still sees it."""
        self.prompt_acks: HotStream[p.PromptAck] = HotStream("prompt_acks", report)
        """Every ``prompt_ack`` the server sends, accepted or rejected, also one that comes
        after its request timed out."""
        self.image_acks: HotStream[p.SetImageAck] = HotStream("image_acks", report)
        """Every ``set_image_ack`` the server sends, accepted or rejected, also one that
        comes after its request timed out."""
        self.ack_latencies: HotStream[AckLatency] = HotStream("ack_latencies", report)
        """Seconds from sending a prompt or image (also those sent by ``connect()`` and
        on reconnect) to its accepting ack; a rejected or timed-out request has none."""
        self.queue_positions: LatestStream[p.QueuePosition] = LatestStream(
            "queue_positions", report
        )
        """Waiting for capacity: position and queue size; replays the latest."""
        self.remote_tracks: HotStream[Any] = HotStream("remote_tracks", report)
        """Each remote video track the media transport receives."""
        self.frames: HotStream[Any] = HotStream("frames", report)
        """Decoded generated video frames (``av.VideoFrame``)."""
        self.diagnostics: HotStream[Diagnostic] = HotStream("diagnostics", report)
        """Phase timings, reconnect attempts, reconnects and video stalls."""
        self.stats: LatestStream[SessionStats] = LatestStream("stats", report)
        """Typed media figures every ``stats_interval_s`` (fps, bitrate, loss, jitter,
        rtt, freezes), sampled only while observed; replays the latest."""
        self.raw_stats: LatestStream[Any] = LatestStream("raw_stats", report)
        """The transport's own stats report (aiortc's ``RTCStatsReport``), as sampled."""
        self.quality: LatestStream[ConnectionQuality] = LatestStream("quality", report)
        """good / fair / poor / critical and the limiting factor, on change only;
        replays the latest (thresholds: :mod:`rxrealtime.quality`)."""

    @property
    def streams(self) -> dict[str, HotStream[Any]]:
        """Every stream by name."""
        return {v.name: v for v in vars(self).values() if isinstance(v, HotStream)}

    def complete_streams(self) -> None:
        """Complete every stream, ``errors`` last (so a failure while completing is seen)."""
        for stream in self.streams.values():
            if stream is not self.errors:
                stream.complete()
        self.errors.complete()

    def _report_subscriber_error(self, stream: str, error: Exception) -> None:
        logger.warning("subscriber of %s raised %r", stream, error)
        self.errors.emit(SubscriberError(stream, error))
