"""The vendor SDK's model definitions (``decart.models``), read from rxrealtime's catalogue.

``models.realtime(name)`` answers from :mod:`rxrealtime.models`, so the facade and
:class:`~rxrealtime.Session` can never disagree on a model: the same names, aliases
(``lucy-latest``...), formats and speed tiers, and the same deprecation warnings for
the names of before mid-2026 (a vendor script of an older SDK that asks for
``mirage_v2`` gets ``lucy-restyle-2`` and a warning naming it, where the vendor's 0.2.4
raises). An unknown name raises :class:`ModelNotFoundError`, as the vendor's does.

The vendor's batch models (``models.video``, ``models.image``) are not realtime and are
not offered: those calls raise ``NotImplementedError`` saying so.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, NoReturn, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ... import models as catalogue
from ...exceptions import ConfigError
from .errors import ModelNotFoundError

__all__ = [
    "CustomModelDefinition",
    "ModelDefinition",
    "Models",
    "RealTimeModelDefinition",
    "RealtimeSpeed",
    "models",
    "to_rxrealtime",
]

RealtimeSpeed = Literal["fast"]
"""A realtime speed tier: ``"fast"`` (billed at twice the standard rate where offered)."""

ModelT = TypeVar("ModelT", bound=str)


class ModelDefinition(BaseModel, Generic[ModelT]):
    """A model as the vendor describes it: ``url_path`` is appended to the base URL,
    ``supported_speeds`` are the tiers beyond standard it offers."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: ModelT
    url_path: str
    fps: int = Field(ge=1)
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    input_schema: type[BaseModel] | None = None
    supported_speeds: tuple[RealtimeSpeed, ...] = ()


RealTimeModelDefinition = ModelDefinition[str]
"""A realtime model's definition (the vendor's alias; names are checked at run time)."""

CustomModelDefinition = ModelDefinition[str]
"""A definition made by hand, for a model the catalogue does not list."""


class Models:
    """``models.realtime(name)``: a definition from rxrealtime's catalogue."""

    @staticmethod
    def realtime(model: str) -> RealTimeModelDefinition:
        """The realtime model ``model`` (a name or a moving alias); unknown names raise
        :class:`ModelNotFoundError`, deprecated ones warn and give their replacement."""
        if not isinstance(model, str):
            raise ModelNotFoundError(str(model))
        try:
            ours = catalogue.resolve_model(model)
        except ConfigError:
            raise ModelNotFoundError(model) from None
        return ModelDefinition[str](name=ours.name, url_path=ours.url_path, fps=ours.fps,
                                    width=ours.width, height=ours.height,
                                    supported_speeds=ours.speeds)  # fmt: skip

    @staticmethod
    def video(model: str) -> NoReturn:
        """Not offered: the facade covers the realtime API only."""
        _batch_api("models.video")

    @staticmethod
    def image(model: str) -> NoReturn:
        """Not offered: the facade covers the realtime API only."""
        _batch_api("models.image")


def _batch_api(what: str) -> NoReturn:
    raise NotImplementedError(
        f"{what}() belongs to the vendor's batch API; rxrealtime.compat.decart covers the "
        "realtime API only (use the decart package for batch jobs)"
    )


models = Models()
"""The catalogue, as the vendor's ``from decart import models`` spells it."""


def to_rxrealtime(model: Any) -> catalogue.ModelDefinition:
    """The :class:`rxrealtime.ModelDefinition` a :class:`Session` streams with.

    A definition the catalogue holds unchanged is the catalogue's own (so an alias keeps
    ``alias_of``); another is a custom one, checked by rxrealtime's rules (a
    :class:`~rxrealtime.ConfigError` says what is wrong).
    """
    if isinstance(model, catalogue.ModelDefinition):
        return model
    if not isinstance(model, ModelDefinition):
        raise ConfigError(
            f"options.model must be a ModelDefinition (models.realtime(name)), "
            f"not {type(model).__name__}"
        )
    known = catalogue.MODELS.get(model.name)
    speeds = tuple(model.supported_speeds)
    shape = (model.url_path, model.fps, model.width, model.height, speeds)
    if known is not None and shape == (known.url_path, known.fps, known.width, known.height,
                                       known.speeds):  # fmt: skip
        return known
    return catalogue.resolve_model(
        {"name": model.name, "url_path": model.url_path, "fps": model.fps,
         "width": model.width, "height": model.height, "speeds": speeds}
    )  # fmt: skip
