"""``check_connectivity``: can this machine reach the service, before anything is billed?

Three steps, each timed, each with a hint when it fails: the WebSocket endpoint answers,
the API key is accepted, and (for the direct-peer transport) a peer connection gathers
candidates and reaches ICE connected. The check closes everything as soon as media is
up, so no generating session is left behind; at most the first second of a session may
be billed by a service that bills from the first frame.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import msgspec

from .diagnostics import PhaseTiming
from .exceptions import AuthError, RealtimeError, ServerError
from .models import DEFAULT_MODEL, ModelDefinition
from .session import Session

__all__ = ["CheckStep", "ConnectivityReport", "check_connectivity"]

T = TypeVar("T")


class CheckStep(msgspec.Struct, frozen=True):
    """One step of the check: whether it passed, how long it took, what to do if not."""

    name: str
    ok: bool
    seconds: float
    detail: str = ""
    hint: str = ""


class ConnectivityReport(msgspec.Struct, frozen=True):
    """Every step run, in order; ``ok`` when all passed (later steps are skipped after a
    failure)."""

    url: str
    steps: list[CheckStep]

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def to_json(self) -> bytes:
        return msgspec.json.encode({"url": self.url, "ok": self.ok, "steps": self.steps})


HINTS = {
    "websocket": "is the server running and is the URL right (ws://host:port or wss://host)? "
    "a firewall or proxy may block WebSockets",
    "auth": "the API key was refused: check it (RXREALTIME_API_KEY or --api-key-file)",
    "media": "WebRTC could not connect: UDP may be blocked; ask for a TURN server "
    "(ice_servers=...)",
}


async def check_connectivity(
    url: str,
    *,
    api_key: str | None = None,
    model: str | ModelDefinition = DEFAULT_MODEL,
    timeout_s: float = 10.0,
    **options: Any,
) -> ConnectivityReport:
    """Check ``url`` step by step; see the module docstring. Never raises for a failed
    step (the report says what failed); bad arguments raise :class:`ConfigError`."""
    session = Session(url, api_key=api_key, model=model, connect_timeout_s=timeout_s,
                      reconnect={"max_attempts": 0}, **options)  # fmt: skip
    steps: list[CheckStep] = []
    started = time.monotonic()

    phases: dict[str, float] = {}  # the session's own phase timings, from connect()

    def step(name: str, ok: bool, detail: str = "") -> CheckStep:
        measured = {"websocket": "websocket", "media": "media"}.get(name)
        seconds = phases.get(measured or "", time.monotonic() - started)
        done = CheckStep(name, ok, round(seconds, 3), detail, "" if ok else HINTS[name])
        steps.append(done)
        return done

    def on_diagnostic(event: object) -> None:
        if isinstance(event, PhaseTiming):
            phases.setdefault(event.phase, event.seconds)

    session.diagnostics.subscribe(on_diagnostic)
    errors: list[RealtimeError] = []
    session.errors.subscribe(errors.append)
    try:
        await _within(session.connect(), timeout_s)
        step("websocket", True, "the endpoint answered")
        step("auth", True, "the key was accepted")
        step("media", True, f"{session.options.transport} media connected")
    except RealtimeError as exc:
        error = errors[0] if errors else exc
        if "websocket" not in phases:
            if isinstance(error, AuthError):
                step("websocket", True, "the endpoint answered")
                step("auth", False, str(error))
            else:
                step("websocket", False, str(error))
        elif isinstance(error, AuthError) or (isinstance(error, ServerError) and error.permanent):
            step("websocket", True, "the endpoint answered")
            step("auth", False, str(error))
        else:
            step("websocket", True, "the endpoint answered")
            step("auth", True, "no refusal from the server")
            step("media", False, str(error))
    finally:
        await session.disconnect()
    return ConnectivityReport(url=session.url, steps=steps)


async def _within(awaitable: Awaitable[T], timeout_s: float) -> T:
    return await asyncio.wait_for(awaitable, timeout_s + 1.0)


def render(report: ConnectivityReport) -> str:
    """The report as lines for a terminal."""
    lines = [f"rxrealtime check {report.url}"]
    for s in report.steps:
        mark = "ok  " if s.ok else "FAIL"
        lines.append(f"  {mark} {s.name:<9} {s.seconds:6.3f} s  {s.detail}")
        if s.hint:
            lines.append(f"       hint: {s.hint}")
    lines.append("all steps passed" if report.ok else "connectivity check failed")
    return "\n".join(lines)
