"""The numbers and classifications the session core decides with: pure, no I/O.

What counts as transient, how long to wait and for how long to try are policy, kept
apart from the state machine (:mod:`rxrealtime.core`) so that each can change alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .exceptions import ConfigError, RequestRejected, SessionClosed

__all__ = ["CoreConfig", "retryable"]


def retryable(error: BaseException | None) -> bool:
    """Whether the protocol calls this failure transient (worth another attempt)."""
    if isinstance(error, (ConfigError, RequestRejected, SessionClosed)):
        return False
    return not getattr(error, "permanent", False)


@dataclass
class CoreConfig:
    """The numbers the core decides with (from the validated session options)."""

    connect_timeout_s: float = 30.0
    reconnect_delays: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 10.0)
    prompt_ack_timeout_s: float = 15.0
    image_ack_timeout_s: float = 30.0
    disconnect_drain_s: float = 1.0
    describe: str = "the service"
    """How errors name the server (the URL with secrets removed)."""
    redact: Callable[[str], str] = field(default=lambda text: text)
    """Removes secrets from server-provided text before it becomes an error."""
