"""The model catalogue: the service's current models (decart 0.2.4's list), the
deprecated names of before mid-2026, speed tiers and custom definitions.

The deprecation and speed warnings are once per process, as the vendor's SDK does; each
test that asserts one first forgets what warned (``models.reset_warnings()``, an autouse
fixture here), so the assertions hold whatever ran before in the process.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

import rxrealtime as rt
from rxrealtime import models

KEY = "rt_models_test_key"

VENDOR = {  # decart 0.2.4, models.realtime(...): (width, height, fps, speeds)
    "lucy-2.1": (1280, 720, 30, ()),
    "lucy-2.5": (1280, 720, 30, ("fast",)),
    "lucy-2.6": (1280, 720, 30, ("fast",)),
    "lucy-vton-3.5": (1280, 720, 30, ("fast",)),
    "lucy-vton-3.6": (1280, 720, 30, ("fast",)),
    "lucy-restyle-2": (1280, 704, 30, ()),
    "lucy-latest": (1280, 720, 30, ("fast",)),
    "lucy-vton-latest": (1280, 720, 30, ("fast",)),
    "lucy-restyle-latest": (1280, 704, 30, ()),
}


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    models.reset_warnings()
    yield
    models.reset_warnings()


def session(model: str | rt.ModelDefinition | dict[str, object], **options: object) -> rt.Session:
    return rt.Session("ws://127.0.0.1:9", api_key=KEY, model=model, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(VENDOR))
def test_every_current_name_has_the_vendors_size_fps_and_tiers(name: str) -> None:
    width, height, fps, speeds = VENDOR[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a current name never warns
        model = models.resolve_model(name)
    assert (model.name, model.width, model.height, model.fps) == (name, width, height, fps)
    assert model.speeds == speeds and model.url_path == "/v1/stream"


def test_the_catalogue_is_the_vendors_and_the_default_is_current() -> None:
    assert set(models.MODELS) == set(VENDOR)
    assert models.DEFAULT_MODEL == "lucy-2.6" and models.DEFAULT_MODEL in models.MODELS
    assert session(models.DEFAULT_MODEL).model is rt.Session("ws://h", api_key=KEY).model
    aliases = {n: m.alias_of for n, m in models.MODELS.items() if m.alias_of}
    assert aliases == {"lucy-latest": "lucy-2.5", "lucy-vton-latest": "lucy-vton-3.6",
                       "lucy-restyle-latest": "lucy-restyle-2"}  # fmt: skip
    assert "model=lucy-latest&" in session("lucy-latest").url  # sent as is: a moving alias


@pytest.mark.parametrize(
    ("old", "new"),
    [("mirage_v2", "lucy-restyle-2"), ("mirage", "lucy-restyle-2"), ("lucy_2_rt", "lucy-2.1")],
)
def test_a_deprecated_name_resolves_to_its_replacement_and_says_so(old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"model '{old}' is deprecated: use '{new}'"):
        s = session(old)
    assert s.model is models.MODELS[new]
    assert f"model={new}&" in s.url


def test_a_deprecated_name_warns_once_per_process_until_reset() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models.resolve_model("mirage_v2")
        models.resolve_model("mirage_v2")
        models.reset_warnings()
        models.resolve_model("mirage_v2")
    assert [w.category for w in caught] == [DeprecationWarning, DeprecationWarning]


def test_avatar_live_keeps_its_own_endpoint_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="'avatar-live' is no longer in the service"):
        s = session("avatar-live")
    assert "/v1/avatar-live/stream?" in s.url and "model=avatar-live&" in s.url
    assert (s.model.fps, s.model.width, s.model.height) == (25, 1280, 720)


def test_an_unknown_name_is_a_config_error_listing_the_current_ones() -> None:
    with pytest.raises(rt.ConfigError, match="unknown model 'lucy-9'") as info:
        session("lucy-9")
    listed = str(info.value).split("known models: ")[1].split(" (")[0].split(", ")
    assert listed == list(models.MODELS)
    assert "mirage" not in str(info.value)  # old names are not advertised


def test_list_rows_current_first_then_the_deprecated_ones() -> None:
    rows = models.list()
    assert [r.name for r in rows] == list(models.MODELS)
    row = {r.name: r for r in rows}
    assert row["lucy-2.6"].speeds == ("standard", "fast") and not row["lucy-2.6"].deprecated
    assert row["lucy-2.1"].speeds == ("standard",)
    assert row["lucy-latest"].alias_of == "lucy-2.5"
    assert (row["lucy-restyle-2"].width, row["lucy-restyle-2"].height) == (1280, 704)
    everything = models.list(include_deprecated=True)
    assert everything[: len(rows)] == rows
    old = {r.name: r for r in everything[len(rows) :]}
    assert set(old) == set(models.DEPRECATED)
    assert all(r.deprecated for r in old.values())
    assert old["mirage_v2"].replaced_by == "lucy-restyle-2"
    assert old["lucy_2_rt"].replaced_by == "lucy-2.1"
    assert old["avatar-live"].replaced_by is None and old["avatar-live"].fps == 25
    assert rt.models.list is models.list


def test_a_custom_definition_and_a_dict_keep_working_without_a_warning() -> None:
    mine = rt.ModelDefinition(name="mine", url_path="/v2/gen", fps=10, width=64, height=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert session(mine).model is mine and "/v2/gen?" in session(mine).url
        raw = {"name": "lucy-3", "url_path": "/v1/stream", "fps": 30, "width": 1280,
               "height": 720, "speeds": ["fast"]}  # fmt: skip
        from_dict = session(raw, speed="fast")
    assert from_dict.model.name == "lucy-3" and from_dict.tier == "fast"
    with pytest.raises(rt.ConfigError, match="invalid model definition"):
        session({"name": "x", "url_path": "/v1/stream", "fps": 30, "width": 1, "height": 1,
                 "speeds": ["warp"]})  # fmt: skip


def test_fast_on_a_model_without_the_tier_warns_once_and_is_still_sent() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = session("lucy-2.1", speed="fast")
        session("lucy-2.1", speed="fast")  # once per (model, speed)
    assert [w.category for w in caught] == [UserWarning]
    assert "'lucy-2.1' does not offer speed='fast'" in str(caught[0].message)
    assert "speed=fast" in first.url  # the vendor's SDK sends it too; the service ignores it
    assert first.tier == "standard"  # ... so it is billed at the standard rate


@pytest.mark.parametrize("name", ["lucy-2.6", "lucy-2.5", "lucy-latest", "lucy-vton-3.6"])
def test_fast_on_a_model_with_the_tier_does_not_warn(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = session(name, speed="fast")
    assert "speed=fast" in s.url and s.tier == "fast"
    assert session(name).tier == "standard" and "speed=" not in session(name).url


def test_served_tier_by_name_as_the_embedded_server_sees_it() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # looking a name up never warns
        assert models.served_tier("lucy-2.6", "fast") == "fast"
        assert models.served_tier("lucy-2.1", "fast") == "standard"
        assert models.served_tier("mirage_v2", "fast") == "standard"  # lucy-restyle-2
        assert models.served_tier("avatar-live", "fast") == "standard"
        assert models.served_tier("lucy-2.6", None) == "standard"
        assert models.served_tier("not-in-the-catalogue", "fast") == "fast"  # only it knows
