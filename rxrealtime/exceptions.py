"""Every error rxrealtime raises or publishes on ``session.errors``.

Catch :class:`RealtimeError` for all of them, or a precise subclass::

    RealtimeError
    ├── ProtocolError          a frame that breaks docs/protocol.md (bad JSON, unknown type,
    │                          wrong field type, binary, oversized); the session goes on
    ├── ServerError            an ``error`` frame sent by the server
    │   └── AuthError          a permanent one (invalid api key, unauthorized, ...): never retried
    ├── ConnectionLost         the signaling socket or the peer connection died unexpectedly
    ├── ConnectTimeout         ``connect()`` did not finish in time (also a ``TimeoutError``)
    ├── AckTimeout             no prompt or image ack in time (also a ``TimeoutError``)
    ├── RequestRejected        the server answered a prompt or image with ``success: false``
    ├── SubscriberError        a subscriber raised; the others still got the value
    ├── SessionClosed          the session was closed for good while the call waited
    ├── NotConnected           a call that needs a connection, made while disconnected
    └── ConfigError            a bad user argument or option (also a ``ValueError``)
        └── InvalidToken       a subscribe token that cannot be decoded

Errors published on streams are values, never ``on_error``: one error never ends a stream.

Secrets never reach an error's text: every argument of every error passes through
:func:`redact_secrets`, which removes secret URL parameters and JSON fields and every
secret registered with :func:`register_secret` (API keys, TURN credentials), whatever
its letter case or URL encoding. A server that echoes a key back cannot make an error,
an excerpt or a traceback show it.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import quote

__all__ = [
    "AckTimeout",
    "AuthError",
    "ConfigError",
    "ConnectTimeout",
    "ConnectionLost",
    "InvalidToken",
    "NotConnected",
    "ProtocolError",
    "RealtimeError",
    "RedactingFilter",
    "RequestRejected",
    "ServerError",
    "SessionClosed",
    "SubscriberError",
    "redact_secrets",
    "register_secret",
]

#: Substrings (lower case) that make a server error permanent, as docs/protocol.md lists them.
PERMANENT_ERROR_MARKERS = (
    "invalid api key",
    "unauthorized",
    "401",
    "permission denied",
    "not allowed",
    "invalid session",
)

FRAME_EXCERPT_LIMIT = 200

_SECRET_QUERY = re.compile(r"((?:api_key|token|credential|password)=)[^&\s'\"]+", re.IGNORECASE)
_SECRET_JSON = re.compile(r'("(?:api_key|credential|password)"\s*:\s*")[^"]*', re.IGNORECASE)


class RealtimeError(Exception):
    """Base class of every rxrealtime error; its text arguments are redacted."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact_secrets(a) if isinstance(a, str) else a for a in args))

    def __eq__(self, other: object) -> bool:
        # Errors travel as values through streams; equal type and text is equal value,
        # which keeps marble-test expectations simple.
        return type(self) is type(other) and self.args == getattr(other, "args", None)

    def __hash__(self) -> int:
        return hash((type(self), self.args))


class ProtocolError(RealtimeError):
    """A frame that does not follow docs/protocol.md.

    ``reason`` says what is wrong; ``frame`` is a truncated copy of the offending frame
    (at most 200 characters) so that a log line never carries a whole oversized payload.
    """

    def __init__(self, reason: str, frame: bytes | str | None = None) -> None:
        self.reason = redact_secrets(reason)
        self.frame = excerpt(frame)
        super().__init__(reason, self.frame)

    def __str__(self) -> str:
        if self.frame is None:
            return self.reason
        return f"{self.reason} (frame: {self.frame})"


class ServerError(RealtimeError):
    """The server sent an ``error`` frame; ``message`` is its text."""

    def __init__(self, message: str) -> None:
        self.message = redact_secrets(message)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    @property
    def permanent(self) -> bool:
        """Whether the text marks the error as permanent (never retried), as
        docs/protocol.md lists them: ``invalid api key``, ``unauthorized``, ``401``..."""
        return is_permanent_error(self.message)


class AuthError(ServerError):
    """A permanent server error: the key, the permission or the session is refused."""


class ConnectionLost(RealtimeError):
    """The transport went away without the session asking for it.

    ``code`` is the WebSocket close code when the signaling socket closed (``None`` for
    a peer connection or a network failure); ``permanent`` says the server's close means
    "do not come back" (a normal close, or an application code 4000-4999), so the
    session does not reconnect.
    """

    def __init__(self, message: str, *, code: int | None = None, permanent: bool = False):
        super().__init__(message)
        self.code = code
        self.permanent = permanent


class ConnectTimeout(RealtimeError, TimeoutError):
    """``connect()`` did not reach the ``connected`` state within its timeout."""


class AckTimeout(RealtimeError, TimeoutError):
    """The server did not acknowledge a prompt or an image in time."""


class RequestRejected(RealtimeError):
    """The server acknowledged a prompt or image with ``success: false``."""


class SubscriberError(RealtimeError):
    """A subscriber of ``stream`` raised ``error``; other subscribers were not affected."""

    def __init__(self, stream: str, error: BaseException) -> None:
        self.stream = stream
        self.error = error
        super().__init__(stream, repr(error))

    def __str__(self) -> str:
        return redact_secrets(f"subscriber of {self.stream!r} raised {self.error!r}")


class SessionClosed(RealtimeError):
    """The session was closed for good; it cannot be used again."""


class NotConnected(RealtimeError):
    """The call needs a live connection; ``connect()`` first (or wait for the reconnect)."""


class ConfigError(RealtimeError, ValueError):
    """A user argument or option is invalid; raised at the call, before any I/O."""


class InvalidToken(ConfigError):
    """A subscribe token is not urlsafe base64 JSON with ``sid``, ``ip`` and ``port``."""


def is_permanent_error(message: str) -> bool:
    """Whether a server error text means "never retry" under docs/protocol.md."""
    lowered = message.lower()
    return any(marker in lowered for marker in PERMANENT_ERROR_MARKERS)


def server_error(message: str) -> ServerError:
    """The typed error for an ``error`` frame's text."""
    return AuthError(message) if is_permanent_error(message) else ServerError(message)


#: Registered secrets shorter than this are only redacted as URL parameters or JSON
#: fields: replacing every "k" of a text would garble it (and a real key is longer).
MIN_SECRET_CHARS = 6

_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Never show ``secret`` in any error, excerpt or redacted text of this process.

    Sessions register their API key, and TURN credentials as they learn them.
    """
    global _secret_pattern
    if not secret or len(secret) < MIN_SECRET_CHARS or secret in _secrets:
        return
    with _lock:
        _secrets.add(secret)
        forms = {form for s in _secrets for form in (s, quote(s, safe=""))}
        alternatives = sorted(forms, key=len, reverse=True)  # longest first
        _secret_pattern = re.compile("|".join(map(re.escape, alternatives)), re.IGNORECASE)


def redact_secrets(text: str) -> str:
    """``text`` without secrets: URL parameters and JSON fields named like secrets, and
    every registered secret (any letter case, plain or URL-encoded), become ``***``."""
    text = _SECRET_JSON.sub(r"\1***", _SECRET_QUERY.sub(r"\1***", text))
    pattern = _secret_pattern
    return pattern.sub("***", text) if pattern is not None else text


def excerpt(frame: bytes | str | None, limit: int = FRAME_EXCERPT_LIMIT) -> str | None:
    if frame is None:
        return None
    if isinstance(frame, (bytes, bytearray, memoryview)):
        text = bytes(frame[: limit + 1]).decode("utf-8", errors="replace")
    else:
        text = frame[: limit + 1]
    if len(text) > limit:
        text = text[:limit] + "…"
    return redact_secrets(text)


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record through :func:`redact_secrets`.

    Installed on the loggers of libraries that log what we hand them (LiveKit's SDK logs
    a refused access token whole), so that no log line of the process shows a secret.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
