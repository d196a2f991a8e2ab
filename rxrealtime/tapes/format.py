"""The tape format: one JSON header line, then one ``[t, kind, value]`` line per event.

Pure: no asyncio, no sockets. :mod:`.recorder` writes what :func:`encode_records` and
:func:`encode_frames` make; :mod:`.reader` reads it back (docs/tapes.md describes every
field).

Secrets never reach a tape: every text passes through
:func:`~rxrealtime.exceptions.redact_secrets`, a TURN ``credential`` and a LiveKit room
``token`` are replaced by ``***``, and an image is replaced by its size in bytes.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

import msgspec

from .. import exceptions
from .. import protocol as p
from .._version import __version__
from ..exceptions import ConnectionLost, RealtimeError, SubscriberError, redact_secrets
from ..models import ModelDefinition

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "ErrorRecord",
    "LinkRecord",
    "Record",
    "TapeError",
    "TapeHeader",
    "decode_error",
    "encode_error",
    "encode_frames",
    "encode_header",
    "encode_records",
    "open_for_writing",
]

FORMAT_VERSION = 2
"""The tape format this rxrealtime writes, and the newest it reads. Format 2 added the
header's ``tier``; format 1 tapes (rxrealtime 0.1) are read as they are, with no tier.
The number moved, although the field is optional, because the tier changes what a
tape's seconds cost: an older reader refuses the tape rather than price it wrong."""

SECRET = "***"


class TapeError(RealtimeError):
    """A tape that cannot be read: missing, empty, corrupt, truncated or too new.

    ``path`` is the file and ``line`` the 1-based line that is wrong (``None`` when the
    file as a whole is the problem); the text says what is wrong.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.line = line


class ModelInfo(msgspec.Struct, frozen=True):
    """The model of the recorded session, as :class:`~rxrealtime.ModelDefinition` has it."""

    name: str
    url_path: str = "/v1/stream"
    fps: int = 25
    width: int = 1280
    height: int = 720

    def definition(self) -> ModelDefinition:
        return ModelDefinition(
            name=self.name,
            url_path=self.url_path,
            fps=self.fps,
            width=self.width,
            height=self.height,
        )


class TapeHeader(msgspec.Struct, frozen=True, kw_only=True):
    """The first line of a tape."""

    format: int = msgspec.field(name="rxrealtime_tape", default=FORMAT_VERSION)
    """The format version (this module reads up to :data:`FORMAT_VERSION`)."""
    rxrealtime: str = __version__
    """The rxrealtime version that wrote the tape."""
    model: ModelInfo
    url: str
    """The session's signaling URL, credentials redacted."""
    started_at: str
    """Wall-clock start (UTC, ISO 8601): offsets count from here."""
    video: str | None = None
    """A video file recorded beside the tape (``--record``), if any."""
    tier: str | None = None
    """The speed tier the session was served and billed at (``standard`` or ``fast``,
    ``session.tier``); ``None`` in a format 1 tape, which did not record it (a replay
    then prices it as standard)."""


class Record(NamedTuple):
    """One event: ``t`` seconds after the start, of ``kind``, carrying ``value``."""

    t: float
    kind: str
    value: Any


class LinkRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """A link (one socket: one server session) came up or went down; ``code`` is the
    WebSocket close code of a lost link when it is known (1006: dropped, no close)."""

    up: bool
    code: int | None = None
    error: str | None = None
    """The type of the error that took the link down (``ConnectionLost``, ...)."""


class ErrorRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """An error of ``session.errors``: its type name and redacted text."""

    type: str
    message: str
    code: int | None = None
    permanent: bool | None = None
    stream: str | None = None
    """For a ``SubscriberError``: the stream whose subscriber raised."""
    raised: str | None = None
    """For a ``SubscriberError``: the repr of what the subscriber raised."""


KINDS: dict[str, str] = {
    "in": "a server frame (session.messages); a generation_tick is also on generation_ticks",
    "refused": "a generation_tick the client refused: on messages, not on generation_ticks",
    "out": "a client frame (session.sent); set_image carries the image's size, not the image",
    "state": "connection_changes",
    "link": "a link came up or went down (with the close code)",
    "error": "errors: type and redacted message",
    "session_started": "session_started",
    "prompt_acks": "prompt_acks",
    "image_acks": "image_acks",
    "generation_started": "generation_started",
    "generation_ended": "generation_ended",
    "queue_positions": "queue_positions",
    "ack_latencies": "ack_latencies",
    "diagnostics": "diagnostics (with the diagnostic's type)",
    "stats": "stats",
    "quality": "quality",
    "end": "the recording finished cleanly (how many records it wrote)",
}
"""Every record kind, and the stream or event it stands for."""

_ERRORS: dict[str, type[RealtimeError]] = {
    cls.__name__: cls
    for cls in (*(getattr(exceptions, name) for name in exceptions.__all__), TapeError)
    if isinstance(cls, type) and issubclass(cls, RealtimeError)
}
"""Every public error type by name (a new one is taped and read back without a change)."""

_encoder = msgspec.json.Encoder()


# -- writing -------------------------------------------------------------------------


def encode_header(header: TapeHeader) -> bytes:
    """The header line (with its newline); its texts redacted."""
    clean = msgspec.structs.replace(header, url=redact_secrets(header.url))
    return _encoder.encode(clean) + b"\n"


def _redacted(value: Any) -> msgspec.Raw:
    """``value`` as JSON with every text redacted (the tape's one redaction point)."""
    return msgspec.Raw(redact_secrets(_encoder.encode(value).decode()).encode())


def _image_bytes(data: str) -> int:
    """The size of the image a base64 ``image_data`` carries."""
    return len(data) * 3 // 4 - data[-2:].count("=")


def _sanitized(kind: str, value: Any) -> Any:
    """What the tape holds for one recorded value (see the module docstring)."""
    if isinstance(value, p.IceRestart):
        turn = msgspec.structs.replace(value.turn_config, credential=SECRET)
        return _redacted(p.IceRestart(turn_config=turn))
    if isinstance(value, p.LivekitRoomInfo):
        return _redacted(msgspec.structs.replace(value, token=SECRET))
    if isinstance(value, p.SetImageMessage):
        size = None if value.image_data is None else _image_bytes(value.image_data)
        fields = {
            "type": "set_image",
            "image_data": size,
            "prompt": value.prompt,
            "enhance_prompt": value.enhance_prompt,
        }
        return _redacted({k: v for k, v in fields.items() if v is not None or k == "image_data"})
    if kind == "error":
        return _redacted(encode_error(value))
    if kind == "diagnostics":
        return _redacted({"type": type(value).__name__, **msgspec.structs.asdict(value)})
    if isinstance(value, (int, float, bool, LinkRecord)) or value is None:
        return value
    return _redacted(value)


def encode_records(records: list[tuple[float, str, Any]]) -> bytes:
    """JSON lines for ``(offset, kind, value)`` records, every value sanitized."""
    return _encoder.encode_lines([(t, kind, _sanitized(kind, v)) for t, kind, v in records])


_TICK = b'{"type":"generation_tick",'
_CHUNK = 2048


def encode_frames(frames: list[Any], t: float) -> bytes:
    """JSON lines for server frames that all arrived at offset ``t`` (``in`` records).

    The common case, a run of ticks (no text, nothing to redact), is encoded in one call
    into msgspec and given its ``[t,"in",`` prefix by one ``bytes.replace``: no Python
    per tick. A run with any other frame takes :func:`encode_records`.
    """
    if len(frames) > _CHUNK:  # keep the buffers small (cache-sized)
        return b"".join(encode_frames(frames[i : i + _CHUNK], t)
                        for i in range(0, len(frames), _CHUNK))  # fmt: skip
    body = _encoder.encode_lines(frames)
    if body.count(_TICK) != len(frames):
        return encode_records([(t, "in", frame) for frame in frames])
    prefix = b"[" + _encoder.encode(t) + b',"in",'
    return prefix + body[:-1].replace(b"\n", b"]\n" + prefix) + b"]\n"


def encode_error(error: BaseException) -> ErrorRecord:
    """An error as a tape holds it: type name and redacted text (plus what replay needs)."""
    record = ErrorRecord(type=type(error).__name__, message=redact_secrets(str(error)))
    if isinstance(error, ConnectionLost):
        return msgspec.structs.replace(record, code=error.code, permanent=error.permanent)
    if isinstance(error, SubscriberError):
        return msgspec.structs.replace(
            record, stream=error.stream, raised=redact_secrets(repr(error.error))
        )
    return record


class _Raised(Exception):
    """What a replayed ``SubscriberError`` says its subscriber raised (the recorded repr)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __repr__(self) -> str:
        return self.text


def decode_error(record: ErrorRecord) -> RealtimeError:
    """The typed error a record stands for (an unknown type: a ``RealtimeError``)."""
    cls = _ERRORS.get(record.type)
    if cls is ConnectionLost:
        return ConnectionLost(record.message, code=record.code, permanent=bool(record.permanent))
    if cls is SubscriberError:
        return SubscriberError(record.stream or "?", _Raised(record.raised or record.message))
    if cls is TapeError:
        return TapeError(record.message)
    if cls is None:
        return RealtimeError(f"{record.type}: {record.message}")
    return cls(record.message)


def open_for_writing(path: Path) -> IO[bytes]:
    """The tape file, truncated; gzip-compressed when its name ends in ``.gz``.

    A gzip tape's ``flush()`` is a zlib sync flush: what was flushed can be read back
    even if the process dies before the file is closed.
    """
    if path.suffix == ".gz":
        return cast("IO[bytes]", gzip.open(path, "wb", compresslevel=6))
    return open(path, "wb")  # the recorder closes it
