"""The vendor SDK's input types (``decart.types``): a prompt, a model's initial state, and
what counts as a file.

Pydantic models, as the vendor's are, so that code building them (``Prompt(text=...)``,
``ModelState(prompt=..., image=...)``) gets the same validation: an empty prompt text
is refused when the object is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Union, runtime_checkable

from pydantic import BaseModel, Field

__all__ = ["FileInput", "HasRead", "ModelState", "Prompt"]


@runtime_checkable
class HasRead(Protocol):
    """A file-like object: anything with ``read()``."""

    def read(self) -> bytes | str: ...


FileInput = Union[HasRead, bytes, str, Path]  # noqa: UP007 - a runtime alias on 3.10
"""An image: bytes, a path, a file-like object, or a string (a path, a ``data:`` URI or
base64; an ``http(s)`` URL is refused, see :mod:`rxrealtime.compat.decart`)."""


class Prompt(BaseModel):
    """A prompt and whether the service may enhance it."""

    text: str = Field(..., min_length=1)
    enhance: bool = True


class ModelState(BaseModel):
    """What a session starts with (``RealtimeConnectOptions.initial_state``): a prompt,
    an image, or both; acknowledged by the service before the video starts."""

    prompt: Prompt | None = None
    image: bytes | str | Path | None = None
