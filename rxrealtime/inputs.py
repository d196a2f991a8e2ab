"""Checks of what users hand to a session (prompts, images), before any I/O.

A bad argument is the caller's mistake: it is raised at the call as
:class:`~rxrealtime.ConfigError` and nothing is sent.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from .exceptions import ConfigError

__all__ = ["ImageInput", "check_prompt", "load_image"]

ImageInput = bytes | str | os.PathLike[str]


def check_prompt(prompt: str, max_chars: int) -> None:
    """A prompt must be a non-empty string within the service's length limit."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError("prompt must be a non-empty string")
    if len(prompt) > max_chars:
        raise ConfigError(f"prompt is {len(prompt)} characters; the limit is {max_chars}")


def load_image(image: ImageInput, limit: int) -> str:
    """Base64 of an image given as bytes, a path or a ``data:`` URI, at most ``limit`` bytes."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        raw = bytes(image)
    elif isinstance(image, str) and image.startswith("data:"):
        header, _, payload = image.partition(",")
        if ";base64" not in header or not payload:
            raise ConfigError("a data URI image must be base64: data:image/png;base64,...")
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("the data URI image is not valid base64") from None
    elif isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise ConfigError(f"image file not found: {path}")
        if path.stat().st_size > limit:
            raise ConfigError(f"image file {path} is larger than {limit} bytes")
        raw = path.read_bytes()
    else:
        raise ConfigError(f"image must be bytes, a path or a data URI, not {type(image).__name__}")
    if not raw:
        raise ConfigError("image is empty")
    if len(raw) > limit:
        raise ConfigError(f"image is {len(raw)} bytes; the limit is {limit}")
    return base64.b64encode(raw).decode("ascii")
