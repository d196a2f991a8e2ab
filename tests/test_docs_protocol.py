"""docs/protocol.md cannot drift from rxrealtime.protocol.

Every fenced ``json`` block of the document is preceded by a marker comment saying
whose frame it is: ``<!-- client -->`` (must decode with ``decode_client_message``),
``<!-- server -->`` (must decode with ``decode``) or ``<!-- planned -->`` (frames the
protocol module does not implement yet: valid JSON with a ``type``, rejected by both
decoders until someone implements them and moves the block to a real marker).
Each direction's frame types must all have an example, and the permanent-error list and
the model table must be the ones the client uses.
"""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest

from rxrealtime import protocol as p
from rxrealtime.exceptions import PERMANENT_ERROR_MARKERS, ProtocolError
from rxrealtime.models import MODELS

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"

_BLOCK = re.compile(
    r"(?:<!--\s*(?P<marker>[\w-]+)\s*-->\s*\n)?```(?P<info>[^\n]*)\n(?P<body>.*?)\n```",
    re.DOTALL,
)
_MARKERS = ("client", "server", "planned")


def _blocks() -> list[tuple[str | None, str, str, int]]:
    """(marker, info string, body, line) of every fenced block of the document."""
    text = DOC.read_text(encoding="utf-8")
    return [
        (m["marker"], m["info"].strip(), m["body"], text.count("\n", 0, m.start("body")) + 1)
        for m in _BLOCK.finditer(text)
    ]


def _json_examples() -> list[tuple[str, str, int]]:
    return [(marker or "", body, line) for marker, info, body, line in _blocks() if info == "json"]


def _tags(union: Any) -> set[str]:
    return {typing.cast(str, msgspec.inspect.type_info(t).tag) for t in typing.get_args(union)}


def test_the_document_has_examples() -> None:
    assert len(_json_examples()) >= 20


@pytest.mark.parametrize(
    ("marker", "body", "line"),
    [pytest.param(*example, id=f"line-{example[2]}") for example in _json_examples()],
)
def test_every_json_example_decodes_and_is_what_encode_produces(
    marker: str, body: str, line: int
) -> None:
    assert marker in _MARKERS, f"line {line}: a json block needs <!-- client|server|planned -->"
    data = json.loads(body)
    assert isinstance(data, dict) and isinstance(data.get("type"), str), f"line {line}"
    if marker == "planned":
        for decoder in (p.decode, p.decode_client_message):
            with pytest.raises(ProtocolError):
                decoder(body)  # implemented now? then document it as client/server
        return
    decoded = p.decode_client_message(body) if marker == "client" else p.decode(body)
    # Byte for byte: the examples are what encode() sends (no field dropped or added).
    assert p.encode(decoded).decode() == body, f"line {line}: not what encode() produces"


@pytest.mark.parametrize(
    ("marker", "union"), [("client", p.ClientMessage), ("server", p.ServerMessage)]
)
def test_every_frame_type_of_each_direction_has_an_example(marker: str, union: Any) -> None:
    shown = {json.loads(body)["type"] for m, body, _ in _json_examples() if m == marker}
    assert shown == _tags(union)


def test_the_subscribe_token_example_names_the_session_id_example() -> None:
    tokens = [body for marker, _, body, _ in _blocks() if marker == "subscribe-token"]
    assert len(tokens) == 1
    target = p.parse_subscribe_token(tokens[0])
    frames = [p.decode(body) for m, body, _ in _json_examples() if m == "server"]
    ids = [f for f in frames if isinstance(f, p.SessionIdMessage)]
    assert (target.sid, target.ip, target.port) == (
        ids[0].session_id,
        ids[0].server_ip,
        ids[0].server_port,
    )
    assert p.make_subscribe_token(target.sid, target.ip, target.port) == tokens[0]


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_permanent_error_list_is_the_one_the_client_uses() -> None:
    listed = re.findall(r"^- `([^`]+)`$", _section("Errors and retries"), re.MULTILINE)
    assert tuple(listed) == PERMANENT_ERROR_MARKERS


def test_the_model_table_is_the_one_the_client_uses() -> None:
    rows = re.findall(
        r"^\| `([^`]+)` \| `([^`]+)` \| (\d+) \| (\d+) x (\d+) \|$",
        _section("Models"),
        re.MULTILINE,
    )
    documented = {(n, path, int(fps), int(w), int(h)) for n, path, fps, w, h in rows}
    assert documented == {(m.name, m.url_path, m.fps, m.width, m.height) for m in MODELS.values()}
