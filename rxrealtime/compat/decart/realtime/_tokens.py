"""Subscribe tokens as the vendor spells them: urlsafe base64 of ``json.dumps({"room_name":
...})``, default separators (a space after the colon) and padding included.

rxrealtime's own room tokens are compact JSON; both decode either way, but a token this
facade hands out is byte-identical to the vendor's, for code that stores or compares it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

__all__ = ["TokenPayload", "decode_subscribe_token", "encode_subscribe_token"]


@dataclass
class TokenPayload:
    """What a subscribe token names: the LiveKit room of a running session."""

    room_name: str


def encode_subscribe_token(room_name: str) -> str:
    """The token a view-only subscriber of ``room_name`` needs."""
    return base64.urlsafe_b64encode(json.dumps({"room_name": room_name}).encode()).decode()


def decode_subscribe_token(token: str) -> TokenPayload:
    """The room a token names; ``ValueError("Invalid subscribe token")`` otherwise (the
    vendor's class and text: code may catch either)."""
    try:
        text = token.strip()
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode())
        room = data.get("room_name") if isinstance(data, dict) else None
    except (AttributeError, binascii.Error, UnicodeDecodeError, ValueError):
        room = None
    if not isinstance(room, str) or not room:
        raise ValueError("Invalid subscribe token")
    return TokenPayload(room_name=room)
