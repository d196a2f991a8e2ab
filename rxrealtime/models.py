"""Realtime models are data: a name, the URL path they live on, and their video format.

Validation uses pydantic because a wrong custom model definition is a user mistake and
deserves pydantic's precise message; the wire never sees these objects.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .exceptions import ConfigError

__all__ = ["MODELS", "ModelDefinition", "resolve_model"]


class ModelDefinition(BaseModel):
    """One realtime model: ``url_path`` is appended to the service base URL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    url_path: str = Field(pattern=r"^/[A-Za-z0-9_\-/.]*$")
    fps: int = Field(gt=0, le=240)
    width: int = Field(gt=0, le=8192)
    height: int = Field(gt=0, le=8192)


MODELS: dict[str, ModelDefinition] = {
    m.name: m
    for m in (
        ModelDefinition(name="mirage", url_path="/v1/stream", fps=25, width=1280, height=704),
        ModelDefinition(name="mirage_v2", url_path="/v1/stream", fps=22, width=1280, height=704),
        ModelDefinition(name="lucy_2_rt", url_path="/v1/stream", fps=20, width=1280, height=720),
        ModelDefinition(
            name="avatar-live", url_path="/v1/avatar-live/stream", fps=25, width=1280, height=720
        ),
    )
}
"""The known models by name: ``mirage``, ``mirage_v2``, ``lucy_2_rt``, ``avatar-live``."""


def resolve_model(model: str | ModelDefinition | dict[str, object]) -> ModelDefinition:
    """A known model by name, or a custom definition (a ``ModelDefinition`` or a dict)."""
    if isinstance(model, ModelDefinition):
        return model
    if isinstance(model, str):
        try:
            return MODELS[model]
        except KeyError:
            known = ", ".join(sorted(MODELS))
            raise ConfigError(
                f"unknown model {model!r}; known models: {known} "
                "(or pass a ModelDefinition for a custom one)"
            ) from None
    if isinstance(model, dict):
        try:
            return ModelDefinition.model_validate(model)
        except ValidationError as exc:
            raise ConfigError(f"invalid model definition: {exc}") from None
    raise ConfigError(f"model must be a name or a ModelDefinition, not {type(model).__name__}")
