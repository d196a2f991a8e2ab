"""Image inputs as the vendor accepts them, turned into bytes without touching the network.

The vendor's SDK reads bytes, paths, file-like objects, ``data:`` URIs and raw base64,
and *fetches* ``http(s)`` URLs itself, from wherever the code runs (its own docstring
warns that this is a server-side request forgery risk with untrusted input). The
facade keeps every local form and refuses URLs with :class:`InvalidInputError`: it
never opens a connection the user's base URL does not name. Fetch the image yourself
and pass the bytes.

Files are read in a worker thread (the vendor reads them asynchronously too), so a
slow disk does not stall the loop that carries the video.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import InvalidInputError
from .types import HasRead

__all__ = ["image_bytes"]


async def image_bytes(image: Any) -> bytes:
    """The bytes of ``image``: bytes, a path, a file-like object or a string (a path, a
    ``data:`` URI or base64); anything else raises :class:`InvalidInputError`."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if isinstance(image, Path):
        return await _read(image)
    if isinstance(image, str):
        return await _from_text(image)
    if isinstance(image, HasRead):
        content = await asyncio.to_thread(image.read)
        return content.encode() if isinstance(content, str) else bytes(content)
    raise InvalidInputError(f"Invalid file input type: {type(image)}")


async def _read(path: Path) -> bytes:
    try:
        return await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise InvalidInputError(f"File not found: {path}") from None
    except OSError as exc:
        raise InvalidInputError(f"Failed to read file {path}: {exc}") from None


async def _from_text(text: str) -> bytes:
    scheme = urlsplit(text).scheme.lower() if ":" in text[:16] else ""
    if scheme == "data":
        header, _, payload = text.partition(",")
        return _b64(payload, f"the data URI {header[:40]!r}")
    if scheme in ("http", "https"):
        raise InvalidInputError(
            f"rxrealtime does not fetch image URLs on your behalf ({text[:80]!r}): download "
            "the image yourself and pass its bytes (the vendor's SDK fetches it, a request "
            "from wherever your code runs that its own documentation warns about)"
        )
    if _is_file(text):
        return await _read(Path(text))
    if len(scheme) > 1:  # one letter is a Windows drive, not a scheme
        raise InvalidInputError(f"Unsupported image URL scheme: {scheme!r}")
    return _b64(text, "the image string (neither a file, a data: URI nor base64)")


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a base64 string too long for a file name, a NUL
        return False


def _b64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"{what} is not valid base64") from None
    if not raw:
        raise InvalidInputError(f"{what} is empty")
    return raw
