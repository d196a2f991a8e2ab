"""Reading a tape back: :func:`load` checks every line and names the first one that is
wrong (what a :class:`Tape` holds is described in docs/tapes.md)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from .. import diagnostics as dg
from .. import protocol as p
from .._version import __version__
from ..exceptions import ProtocolError
from ..quality import ConnectionQuality, SessionStats
from ..session_streams import AckLatency
from ..states import ConnectionState, SessionInfo
from .format import (
    FORMAT_VERSION,
    ErrorRecord,
    LinkRecord,
    Record,
    TapeError,
    TapeHeader,
    decode_error,
)

__all__ = ["Tape", "load"]

_FRAME_KINDS = {
    "in",
    "refused",
    "prompt_acks",
    "image_acks",
    "generation_started",
    "generation_ended",
    "queue_positions",
}
_DIAGNOSTICS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (dg.PhaseTiming, dg.ReconnectAttempt, dg.Reconnected, dg.VideoStall)
}

_line = msgspec.json.Decoder(tuple[float, str, msgspec.Raw])
_header = msgspec.json.Decoder(TapeHeader)
_client = msgspec.json.Decoder(p.ClientMessage)
_VALUE_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "state": msgspec.json.Decoder(str),
    "link": msgspec.json.Decoder(LinkRecord),
    "error": msgspec.json.Decoder(ErrorRecord),
    "session_started": msgspec.json.Decoder(SessionInfo),
    "ack_latencies": msgspec.json.Decoder(AckLatency),
    "stats": msgspec.json.Decoder(SessionStats),
    "quality": msgspec.json.Decoder(ConnectionQuality),
    "end": msgspec.json.Decoder(dict[str, Any]),
    "diagnostics": msgspec.json.Decoder(dict[str, Any]),
}


@dataclass
class Tape:
    """A loaded tape: its header and records, oldest first.

    ``complete`` is false for a recording that did not finish (the process was killed):
    the records are then those flushed before it died. ``problem`` is set, with
    ``strict=False``, when the tape broke off at a bad line: the records are the valid
    prefix before it.
    """

    path: str
    header: TapeHeader
    records: list[Record]
    complete: bool
    problem: TapeError | None = None

    @property
    def duration_s(self) -> float:
        """The offset of the last record: how long the recording ran, in seconds."""
        return self.records[-1].t if self.records else 0.0

    def __repr__(self) -> str:
        state = "complete" if self.complete else "incomplete"
        return f"<Tape {self.path!r} {len(self.records)} records, {self.duration_s:.1f} s, {state}>"


def _lines(path: Path) -> Iterator[bytes]:
    """The file's lines (with their newline, the last one maybe without); a gzip stream
    that ends early (a killed recorder) yields what decompresses."""
    if path.suffix != ".gz":
        with open(path, "rb") as fh:
            yield from fh
        return
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 16):
            try:
                pending += inflate.decompress(chunk)
            except zlib.error as exc:
                raise TapeError(f"not a gzip tape ({exc})", path=str(path)) from None
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line + b"\n"
    if pending:
        yield pending


def _decode_value(kind: str, raw: msgspec.Raw) -> Any:
    if kind in _FRAME_KINDS:
        return p.decode(bytes(raw))
    if kind == "out":
        return _decode_sent(raw)
    decoder = _VALUE_DECODERS.get(kind)
    if decoder is None:
        raise ValueError(f"unknown record kind {kind!r}")
    value = decoder.decode(raw)
    if kind == "state":
        return ConnectionState(value)
    if kind == "error":
        return decode_error(value)
    if kind == "diagnostics":
        cls = _DIAGNOSTICS.get(value.pop("type", None))
        if cls is None:
            raise ValueError("diagnostic of unknown type")
        return msgspec.convert(value, cls)
    return value


def _decode_sent(raw: msgspec.Raw) -> p.ClientMessage:
    fields = msgspec.json.decode(raw, type=dict[str, Any])
    if fields.get("type") == "set_image" and isinstance(fields.get("image_data"), int):
        size = fields["image_data"]
        return p.SetImageMessage(
            image_data=f"<image of {size} bytes>",
            prompt=fields.get("prompt"),
            enhance_prompt=fields.get("enhance_prompt"),
        )
    message: p.ClientMessage = _client.decode(raw)
    return message


def _read_header(first: bytes, where: str) -> TapeHeader:
    try:
        fields = msgspec.json.decode(first, type=dict[str, Any])
    except msgspec.DecodeError:
        raise TapeError(
            "not a tape: the first line is not a JSON header", path=where, line=1
        ) from None
    version = fields.get("rxrealtime_tape")
    if not isinstance(version, int):
        raise TapeError(
            "not a tape: the header has no rxrealtime_tape format number", path=where, line=1
        )
    if version > FORMAT_VERSION:
        raise TapeError(
            f"tape format {version} needs a newer rxrealtime (this is {__version__}, which "
            f"reads formats up to {FORMAT_VERSION}; the tape was written by rxrealtime "
            f"{fields.get('rxrealtime', '?')})",
            path=where,
        )
    try:
        return _header.decode(first)
    except msgspec.DecodeError as exc:
        raise TapeError(f"bad header: {exc}", path=where, line=1) from None


def load(path: str | Path, *, strict: bool = True) -> Tape:
    """Read and check a tape (``.gz``: gzip).

    Raises :class:`TapeError` naming the file, the line and what is wrong: a missing
    file, a directory, an empty file, a bad or too new header. A bad record line raises
    too, unless ``strict=False``: then the tape holds the records before it and its
    ``problem`` says what broke off.
    """
    where = str(path)
    path = Path(path)
    if path.is_dir():
        raise TapeError("is a directory, not a tape", path=where)
    if not path.exists():
        raise TapeError("no such file", path=where)
    records: list[Record] = []
    header: TapeHeader | None = None
    complete, problem, last = False, None, 0.0
    try:
        for number, line in enumerate(_lines(path), start=1):
            if header is None:
                header = _read_header(line, where)
                continue
            if complete:
                problem = TapeError("a record after the end record", path=where, line=number)
                break
            try:
                t, kind, raw = _line.decode(line)
                value = _decode_value(kind, raw)
            except (msgspec.DecodeError, ProtocolError, ValueError, TypeError) as exc:
                cut = "" if line.endswith(b"\n") else " (cut off: the recording was interrupted)"
                problem = TapeError(f"bad record{cut}: {exc}", path=where, line=number)
                break
            if not t >= last:
                problem = TapeError(
                    f"offset {t} s goes back in time (previous {last} s)", path=where, line=number
                )
                break
            last = t
            if kind == "end":
                complete = True
            records.append(Record(t, kind, value))
    except OSError as exc:
        raise TapeError(f"cannot read: {exc.strerror or exc}", path=where) from None
    except UnicodeDecodeError:
        raise TapeError("not a tape: not UTF-8 text", path=where) from None
    if header is None:
        raise TapeError("empty file, not a tape", path=where)
    if problem is not None and strict:
        raise problem
    return Tape(where, header, records, complete, problem)
