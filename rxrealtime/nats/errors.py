"""The errors of the NATS fleet: typed like every other :class:`~rxrealtime.RealtimeError`.

* :class:`FleetPublishError`: events of a session could not be published and were
  dropped (the worker's buffer filled while NATS was unreachable, or NATS was still down
  when the publisher closed). Published on that session's ``errors`` stream, so the
  session's own subscribers, and through the publisher the fleet, hear of the loss.
* :class:`FleetConnectError`: NATS or its JetStream cannot be reached; raised at the
  call (``connect``, ``fleet``, ``publish``) with what to check.
* :class:`RemoteError`: an error a session reported on another machine, as the
  aggregator republishes it on ``fleet.errors`` (``kind`` is the original class name).
"""

from __future__ import annotations

from ..exceptions import RealtimeError

__all__ = ["FleetConnectError", "FleetError", "FleetPublishError", "RemoteError"]


class FleetError(RealtimeError):
    """Base class of the NATS fleet's errors."""


class FleetPublishError(FleetError):
    """Events of one session were dropped instead of published.

    ``dropped`` counts every dropped event; ``superseded`` how many of them were ticks
    with a newer tick of the same server session still buffered (ticks are cumulative,
    so those cost no billing); ``billing`` how many were the newest tick or the end of a
    server session, whose seconds the fleet may then miss.
    """

    def __init__(self, message: str, *, dropped: int = 0, superseded: int = 0, billing: int = 0):
        super().__init__(message)
        self.dropped = dropped
        self.superseded = superseded
        self.billing = billing


class FleetConnectError(FleetError, ConnectionError):
    """NATS (or JetStream on it) cannot be reached or used."""


class RemoteError(FleetError):
    """An error published by a session of the fleet, as the aggregator received it."""

    def __init__(self, kind: str, message: str, worker: str = "") -> None:
        super().__init__(kind, message, worker)
        self.kind = kind
        self.message = message
        self.worker = worker

    def __str__(self) -> str:
        where = f" (worker {self.worker})" if self.worker else ""
        return f"{self.kind}: {self.message}{where}"
