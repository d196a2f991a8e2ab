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
live secret (API keys, TURN credentials, LiveKit room tokens), whatever its letter case
or URL encoding. A server that echoes a key back cannot make an error, an excerpt, a
tape or a log line (through :class:`RedactingFilter`) show it.

A secret lives in a :class:`SecretScope` as long as its owner: a session's key and TURN
credentials until it is closed for good, a link's room token until the link closes.
Registrations are counted, so a key two live sessions share stays redacted until both
released it; :func:`register_secret` holds one for the life of the process. Redaction
costs the same with one live secret or a hundred, and nothing is recompiled when one
comes or goes (a fleet worker registers a room token at every reconnect).

The rule for short secrets: one of at least 8 characters (:data:`SHORT_SECRET_CHARS`) is
redacted wherever it appears, inside a word too; a shorter one only as a whole value,
not next to a letter or digit (``api_key=k&...``, ``"k"``, ``key k``), so that a key
"x" used for a quick experiment does not turn ``user_agent=rxrealtime`` into
``user_agent=r***realtime``. Secret URL parameters and JSON fields are redacted
whatever their value's length.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import logging
import re
import threading
from collections.abc import Iterator
from typing import NamedTuple
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
    "SecretScope",
    "ServerError",
    "SessionClosed",
    "SubscriberError",
    "live_secret_count",
    "redact_secrets",
    "register_secret",
    "secret_pattern",
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


SHORT_SECRET_CHARS = 8
"""Secrets shorter than this are redacted only as whole values (see the module docstring):
replacing every "k" of a text would garble it, and a real key is longer."""


class _Index(NamedTuple):
    """What :func:`redact_secrets` scans, replaced whole (never changed in place) when a
    secret comes or goes, so a redaction on another thread reads a consistent one.

    ``entries`` are ``(casefolded forms, secret)``, longest first, so that a secret that
    contains another is replaced whole; ``neg_lengths`` are minus each entry's shortest
    form's length (ascending, for ``bisect``): a secret longer than the text cannot be in
    it, and most texts are shorter than a room token. A change splices two tuples: no
    sort, no regex compiled.
    """

    entries: tuple[tuple[tuple[str, ...], str], ...] = ()
    neg_lengths: tuple[int, ...] = ()

    def adding(self, secret: str) -> _Index:
        plain, encoded = secret.casefold(), quote(secret, safe="").casefold()
        forms = (plain,) if encoded == plain else (plain, encoded)
        at = bisect.bisect_right(self.neg_lengths, -len(plain))
        entries, negs = self.entries, self.neg_lengths
        return _Index((*entries[:at], (forms, secret), *entries[at:]),
                      (*negs[:at], -len(plain), *negs[at:]))  # fmt: skip

    def removing(self, secret: str) -> _Index:
        at = bisect.bisect_left(self.neg_lengths, -len(secret.casefold()))
        while self.entries[at][1] != secret:
            at += 1
        return _Index(self.entries[:at] + self.entries[at + 1 :],
                      self.neg_lengths[:at] + self.neg_lengths[at + 1 :])  # fmt: skip


_live: dict[str, int] = {}
"""Every live secret -> how many registrations hold it."""
_index = _Index()
"""What :func:`redact_secrets` scans: the secrets of :data:`_live`."""
_forever: set[str] = set()
"""Secrets held by :func:`register_secret` for the life of the process."""
_lock = threading.Lock()
_inside = threading.local()
_released_inside: list[str] = []
"""Secrets released while this thread held :data:`_lock`: a scope's ``release`` run by
the garbage collector (a ``weakref.finalize`` of its owner) in the middle of
:func:`_hold` or :func:`_drop`. Taking the lock again there would deadlock the thread
(seen as a hung test run), so they wait here and are dropped before the lock is let go."""


@contextlib.contextmanager
def _registry() -> Iterator[None]:
    with _lock:
        _inside.active = True
        try:
            yield
            while _released_inside:
                _drop_locked(_released_inside.pop())
        finally:
            _inside.active = False


def _hold(secret: str) -> None:
    global _index
    with _registry():
        count = _live.get(secret, 0)
        _live[secret] = count + 1
        if not count:
            _index = _index.adding(secret)


def _drop(secret: str) -> None:
    if getattr(_inside, "active", False):  # the collector, inside _hold/_drop here
        _released_inside.append(secret)
        return
    with _registry():
        _drop_locked(secret)


def _drop_locked(secret: str) -> None:
    global _index
    count = _live.pop(secret, 0)
    if count > 1:
        _live[secret] = count - 1
    elif count:
        _index = _index.removing(secret)


class SecretScope:
    """Secrets redacted while their owner lives: a session's API key and TURN
    credentials, a link's LiveKit room token.

    :meth:`add` registers a secret, :meth:`release` unregisters every secret of the scope
    (its owner ended: the session closed for good, the link closed), so a long-lived
    process does not grow with every session and reconnect. Registrations are counted:
    a key that two live sessions share stays redacted until both released it. Use it as
    a context manager, or call :meth:`release` (safe to call many times). It never shows
    its secrets, not even in its ``repr``.
    """

    __slots__ = ("__weakref__", "_held")

    def __init__(self, *secrets: str | None) -> None:
        self._held: list[str] = []
        for secret in secrets:
            self.add(secret)

    def __repr__(self) -> str:
        return f"<SecretScope holding {len(self._held)}>"

    def __len__(self) -> int:
        return len(self._held)

    def add(self, secret: str | None) -> None:
        """Redact ``secret`` until this scope is released (``None`` and "" are ignored)."""
        if secret:
            _hold(secret)
            self._held.append(secret)

    def share(self) -> SecretScope:
        """A new scope holding the same secrets once more, released on its own: for what
        outlives the owner and still writes its texts (a tape flushed after its session
        closed)."""
        return SecretScope(*self._held)

    def release(self) -> None:
        """Unregister this scope's secrets (others' registrations of them remain)."""
        held, self._held = self._held, []
        for secret in held:
            _drop(secret)

    def __enter__(self) -> SecretScope:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def register_secret(secret: str | None) -> None:
    """Redact ``secret`` for the life of the process (registering it again is free).

    For secrets that live as long as the process (one read from the environment at
    start-up); what belongs to a session, a link or a server goes to a
    :class:`SecretScope`, released with it, so that the registry does not only grow.
    """
    if not secret or secret in _forever:
        return
    with _registry():  # the check again, under the lock: registered once however many threads
        if secret in _forever:
            return
        _forever.add(secret)
    _hold(secret)


def live_secret_count() -> int:
    """How many distinct secrets are redacted now (the size of the registry)."""
    return len(_live)


@functools.lru_cache(maxsize=256)
def secret_pattern(secret: str) -> re.Pattern[str]:
    """What finds ``secret`` in a text (any letter case, plain or URL-encoded), under the
    rule of the module docstring: a short secret only as a whole value."""
    forms = sorted({secret, quote(secret, safe="")}, key=len, reverse=True)
    body = "|".join(map(re.escape, forms))
    if len(secret) < SHORT_SECRET_CHARS:
        body = f"(?<![A-Za-z0-9])(?:{body})(?![A-Za-z0-9])"
    return re.compile(body, re.IGNORECASE)


_QUERY_NAMES = ("api_key=", "token=", "credential=", "password=")
_JSON_NAMES = ('"api_key"', '"credential"', '"password"')


def redact_secrets(text: str) -> str:
    """``text`` without secrets: URL parameters and JSON fields named like secrets, and
    every registered secret (any letter case, plain or URL-encoded), become ``***``.

    Cheap whatever the number of live secrets: each pattern runs only on a text whose
    casefolded copy contains what it looks for (a superset of what ``re.IGNORECASE``
    matches), and secrets longer than the text are skipped by length.
    """
    folded = text.casefold()
    if any(name in folded for name in _QUERY_NAMES):
        text = _SECRET_QUERY.sub(r"\1***", text)
        folded = text.casefold()
    if '"' in folded and any(name in folded for name in _JSON_NAMES):
        text = _SECRET_JSON.sub(r"\1***", text)
        folded = text.casefold()
    index = _index
    start = bisect.bisect_left(index.neg_lengths, -len(folded))
    for forms, secret in index.entries[start:]:
        for form in forms:
            if form in folded:
                text = secret_pattern(secret).sub("***", text)
                folded = text.casefold()
                break
    return text


def excerpt(frame: bytes | str | None, limit: int = FRAME_EXCERPT_LIMIT) -> str | None:
    """At most ``limit`` characters of ``frame``, redacted before the cut: a secret that
    straddles the limit is still found whole, however far the redaction shortened the
    text before it (the window grows until no partial secret can reach the cut)."""
    if frame is None:
        return None
    longest = max((len(form) for forms, _ in _index.entries for form in forms), default=0)
    size = limit + 1 + longest
    while True:
        piece = frame[:size]
        raw = bytes(piece).decode("utf-8", "replace") if not isinstance(piece, str) else piece
        text = redact_secrets(raw)
        deficit = limit + longest + max(len(raw) - len(text), 0) - len(raw)
        if deficit <= 0 or len(frame) <= size:
            break
        size += deficit
    return text[:limit] + "…" if len(text) > limit else text


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
