"""Realtime models are data: a name, the URL path they live on, their video format and
the speed tiers the service offers for them.

The catalogue is the service's current one, as its vendor's Python SDK (decart 0.2.4)
lists it: the ``lucy-*`` models at 1280x720 (``lucy-restyle-*`` at 1280x704), 30 fps.
Three names are *moving aliases* that the service resolves on its side, so they are sent
as they are and ``alias_of`` says what they serve today: ``lucy-latest`` (lucy-2.5),
``lucy-vton-latest`` (lucy-vton-3.6) and ``lucy-restyle-latest`` (lucy-restyle-2).
The names of before mid-2026 still work: each resolves to its replacement with a
``DeprecationWarning`` that names it (``mirage_v2`` and ``mirage`` ->
``lucy-restyle-2``, ``lucy_2_rt`` -> ``lucy-2.1``); ``avatar-live`` keeps its own
endpoint, with a warning that the service's current SDKs no longer list it.

Validation uses pydantic because a wrong custom model definition is a user mistake and
deserves pydantic's precise message; the wire never sees these objects.
"""

from __future__ import annotations

import builtins
import warnings
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .exceptions import ConfigError

__all__ = [
    "DEFAULT_MODEL",
    "DEPRECATED",
    "MODELS",
    "STANDARD",
    "ModelDefinition",
    "ModelEntry",
    "check_speed",
    "list",
    "reset_warnings",
    "resolve_model",
    "served_tier",
]

Speed = Literal["fast"]

STANDARD = "standard"
"""The tier a session is served at when it asks for no ``speed`` (or one its model lacks)."""


class ModelDefinition(BaseModel):
    """One realtime model: ``url_path`` is appended to the service base URL.

    ``speeds`` are the tiers beyond standard that the service offers for it (``fast``:
    a higher-compute tier billed at twice the standard rate); ``alias_of`` is set for a
    moving alias, the model the service resolves it to today.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    url_path: str = Field(pattern=r"^/[A-Za-z0-9_\-/.]*$")
    fps: int = Field(gt=0, le=240)
    width: int = Field(gt=0, le=8192)
    height: int = Field(gt=0, le=8192)
    speeds: tuple[Speed, ...] = ()
    alias_of: str | None = None


def _lucy(
    name: str, *, height: int = 720, fast: bool = False, alias_of: str | None = None
) -> ModelDefinition:
    return ModelDefinition(name=name, url_path="/v1/stream", fps=30, width=1280, height=height,
                           speeds=("fast",) if fast else (), alias_of=alias_of)  # fmt: skip


MODELS: dict[str, ModelDefinition] = {
    m.name: m
    for m in (
        _lucy("lucy-2.1"),
        _lucy("lucy-2.5", fast=True),
        _lucy("lucy-2.6", fast=True),
        _lucy("lucy-vton-3.5", fast=True),
        _lucy("lucy-vton-3.6", fast=True),
        _lucy("lucy-restyle-2", height=704),
        _lucy("lucy-latest", fast=True, alias_of="lucy-2.5"),
        _lucy("lucy-vton-latest", fast=True, alias_of="lucy-vton-3.6"),
        _lucy("lucy-restyle-latest", height=704, alias_of="lucy-restyle-2"),
    )
}
"""The service's current realtime models by name (aliases included)."""

DEFAULT_MODEL = "lucy-2.6"
"""What a session streams with when no model is named: the newest pinned lucy model (a
moving alias could change what a user pays for between two runs)."""

_AVATAR = ModelDefinition(name="avatar-live", url_path="/v1/avatar-live/stream", fps=25,
                          width=1280, height=720)  # fmt: skip

DEPRECATED: dict[str, str | None] = {
    "mirage_v2": "lucy-restyle-2",
    "mirage": "lucy-restyle-2",
    "lucy_2_rt": "lucy-2.1",
    "avatar-live": None,
}
"""Names of before mid-2026 -> their replacement (``None``: none; the model keeps its own
definition). Each warns once per process."""

_warned: set[str] = set()
_warned_speeds: set[tuple[str, str]] = set()


def reset_warnings() -> None:
    """Forget which deprecated names and (model, speed) pairs already warned, so the next
    use warns again. The memory is process-wide (once per process, as the vendor's SDK
    warns); tests call this so that what they assert does not depend on their order."""
    _warned.clear()
    _warned_speeds.clear()


class ModelEntry(BaseModel):
    """One row of :func:`list`: what ``rxrealtime models`` prints."""

    model_config = ConfigDict(frozen=True)

    name: str
    width: int
    height: int
    fps: int
    speeds: tuple[str, ...]
    alias_of: str | None = None
    replaced_by: str | None = None
    deprecated: bool = False


def list(*, include_deprecated: bool = False) -> builtins.list[ModelEntry]:
    """The catalogue, current models first; with ``include_deprecated``, the old names
    too, each with the model it resolves to (``replaced_by``)."""
    rows = [ModelEntry(name=m.name, width=m.width, height=m.height, fps=m.fps,
                       speeds=("standard", *m.speeds), alias_of=m.alias_of)
            for m in MODELS.values()]  # fmt: skip
    if include_deprecated:
        for old, new in DEPRECATED.items():
            target = MODELS[new] if new else _AVATAR
            rows.append(ModelEntry(name=old, width=target.width, height=target.height,
                                   fps=target.fps, speeds=("standard", *target.speeds),
                                   replaced_by=new, deprecated=True))  # fmt: skip
    return rows


def _deprecated(name: str) -> ModelDefinition:
    new = DEPRECATED[name]
    if name not in _warned:
        _warned.add(name)
        if new is None:
            text = (f"model {name!r} is no longer in the service's catalogue and has no "
                    "replacement; it may stop working")  # fmt: skip
        else:
            text = f"model {name!r} is deprecated: use {new!r} (what {name!r} now resolves to)"
        warnings.warn(text, DeprecationWarning, stacklevel=4)
    return MODELS[new] if new else _AVATAR


def resolve_model(model: str | ModelDefinition | dict[str, object]) -> ModelDefinition:
    """A known model by name, or a custom definition (a ``ModelDefinition`` or a dict)."""
    if isinstance(model, ModelDefinition):
        return model
    if isinstance(model, str):
        found = MODELS.get(model)
        if found is not None:
            return found
        if model in DEPRECATED:
            return _deprecated(model)
        known = ", ".join(MODELS)
        raise ConfigError(
            f"unknown model {model!r}; known models: {known} "
            "(or pass a ModelDefinition for a custom one; `rxrealtime models` lists them)"
        )
    if isinstance(model, dict):
        try:
            return ModelDefinition.model_validate(model)
        except ValidationError as exc:
            raise ConfigError(f"invalid model definition: {exc}") from None
    raise ConfigError(f"model must be a name or a ModelDefinition, not {type(model).__name__}")


def check_speed(model: ModelDefinition, speed: str | None) -> None:
    """Warn once per (model, speed) when ``model`` does not offer the tier, as the
    vendor's SDK does: the option is still sent, and the service ignores it (a custom
    model may know better than this catalogue)."""
    if speed is None or speed in model.speeds or (model.name, speed) in _warned_speeds:
        return
    _warned_speeds.add((model.name, speed))
    offered = ", ".join(n for n, m in MODELS.items() if speed in m.speeds) or "no model"
    warnings.warn(
        f"model {model.name!r} does not offer speed={speed!r}; the service ignores it for "
        f"this model (offered for {offered})",
        UserWarning,
        stacklevel=4,
    )


def served_tier(model: str | ModelDefinition, speed: str | None) -> str:
    """The tier a session is served, and billed, at: ``speed`` when the model offers it,
    else :data:`STANDARD` (the service ignores a tier the model lacks, see
    :func:`check_speed`, so pricing it would overcharge).

    A definition answers with its own ``speeds``; a name is looked up in the catalogue
    (a deprecated one through its replacement) without warning. A name outside the
    catalogue keeps ``speed`` as it is: only the service knows what it offers. The
    embedded server uses this to record each session's tier from its query.
    """
    if not speed or speed == STANDARD:
        return STANDARD
    if isinstance(model, str):
        found = MODELS.get(model)
        if found is None and model in DEPRECATED:
            replacement = DEPRECATED[model]
            found = MODELS[replacement] if replacement else _AVATAR
        if found is None:
            return speed
        model = found
    return speed if speed in model.speeds else STANDARD
