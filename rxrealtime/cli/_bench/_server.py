"""The embedded server in bench mode, in a child process, driven by JSON lines.

The server runs in its own process (``python -m rxrealtime.cli._bench._server``) so the
measured process holds only the client side, as in production where the server is
remote, and so that on 2 cores the server and the client each get one. A plain
subprocess, not ``multiprocessing``: nothing of the caller's ``__main__`` is re-imported,
so the suite runs the same from a script, ``python -c``, pytest or the CLI.

Commands (one JSON array per line on the child's stdin; one reply per line on stdout):

* ``["wait_sessions", n]`` -> ``["sessions", ids]`` once exactly ``n`` server sessions
  are open (closed ones gone);
* ``["flood", n]`` -> ``["flood", first_ns, last_ns]``: ``n`` ``generation_tick``
  frames to the one open session, written pre-framed to the transport (see
  :func:`_flood`);
* ``["paced", n, interval_s]`` -> ``["paced", first_ns, last_ns, [[seconds, sent_ns],
  ...]]``: frames sent with ``EmbeddedServer.send_raw``, one every ``interval_s``, and
  when each left (``time.monotonic_ns``, one clock for both processes).

Tick values are real billing values: they count up by one from the session's start (a
client refuses ticks that jump further than billing can advance, and values above the
protocol's ceiling), so send times travel beside them, not in them.
* ``["tick_log"]`` -> ``["tick_log", [[session_id, seconds, sent_ns], ...], cpu_s]``:
  every billing tick the server sent since the last call, and the server's CPU time;
* ``["mark"]`` -> ``["mark", snapshot]``: CPU, RSS and CPU per thread group
  (:func:`._scale_probe.snapshot`);
* ``["profile", seconds]`` -> ``["profile", {"main": {"groups", "top"}, "from": snapshot, "to":
  snapshot}]``: cProfile of the server's main thread over ``seconds``
  (:class:`._scale_probe.MainProfile`);
* ``["livekit_cpu"]`` -> ``["livekit_cpu", seconds | null]``: CPU time of the
  livekit-server child the server started (media="livekit"), counted apart from it;
* ``["stop"]``.

:class:`ChildProcess` is the driving side of any such child (the scale suite's client
runs in one too); :class:`ServerProcess` is the one for this server.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ...server import EmbeddedServer

__all__ = ["ChildProcess", "ServerProcess", "bench_transports"]

_MODULE = "rxrealtime.cli._bench._server"
_P = TypeVar("_P", bound="ChildProcess")


def bench_transports() -> tuple[list[str], str]:
    """The transports a suite can run here (LiveKit needs ``make livekit``'s binary), and
    a note for its method text when LiveKit is left out."""
    from ...server.livekit_server import find_livekit_binary

    if find_livekit_binary() is not None:
        return ["aiortc", "livekit"], ""
    return ["aiortc"], "; LiveKit left out: no livekit-server binary (make livekit)"


async def _serve(settings: dict[str, Any]) -> None:
    from ... import protocol as p
    from ...server import ServerSession, serve_embedded
    from ._common import child_stdin, reply
    from ._scale_probe import MainProfile, process_cpu_s, snapshot

    tick_log: list[tuple[str, int, int]] = []

    def log_tick(session: ServerSession, message: p.ServerMessage) -> None:
        # Stamp billing ticks as they leave, to measure tick latency and loss on the
        # client's side.
        if type(message) is p.GenerationTick:
            tick_log.append((session.id, message.seconds, time.monotonic_ns()))

    stdin = await child_stdin()

    counter = 0
    async with serve_embedded(**settings) as server:
        server.on_send.append(log_tick)
        reply("ready", server.url, server.api_key)
        while line := await stdin.readline():
            command, *args = json.loads(line)
            if command == "stop":
                break
            if command == "wait_sessions":
                while len(server.sessions) != args[0]:
                    await asyncio.sleep(0.005)
                counter = 0  # a new server session: its ticks count from 1
                reply("sessions", list(server.sessions))
            elif command == "flood":
                first, last, counter = await _flood(server, args[0], counter)
                reply(command, first, last)
            elif command == "paced":
                n, interval = args
                send, clock = server.send_raw, time.monotonic_ns
                sent: list[tuple[int, int]] = []
                first = clock()
                for _ in range(n):
                    counter += 1
                    sent.append((counter, clock()))
                    await send(f'{{"type":"generation_tick","seconds":{counter}}}')
                    await asyncio.sleep(interval)
                reply(command, first, clock(), sent)
            elif command == "tick_log":
                reply("tick_log", tick_log, time.process_time())
                tick_log.clear()
            elif command == "mark":
                reply("mark", snapshot())
            elif command == "livekit_cpu":
                process = server.livekit.process if server.livekit is not None else None
                pid = process.pid if process is not None else None
                reply("livekit_cpu", process_cpu_s(pid) if pid is not None else None)
            elif command == "profile":
                before, profile = snapshot(), MainProfile()
                profile.start()
                await asyncio.sleep(args[0])
                main_thread = profile.stop()
                reply("profile", {"main": main_thread, "from": before, "to": snapshot()})


async def _flood(
    server: EmbeddedServer, n: int, counter: int, chunk: int = 500
) -> tuple[int, int, int]:
    """Write ``n`` tick frames to the one open session, far faster than any client reads.

    ``send_str`` costs the server about as much per frame as receiving costs the client,
    so a flood through it measures the server. Bench mode therefore writes pre-framed
    WebSocket text frames (FIN + text opcode, unmasked, length < 126) straight to the
    transport, ``chunk`` at a time; the frames of a chunk repeat one tick value (a
    duplicate tick is valid and bills nothing) and each chunk counts on by one.
    Returns the first and last send times and the last tick value.
    """
    (session,) = server.sessions.values()
    transport = session.transport
    if transport is None:
        raise RuntimeError("the session has no transport to flood")
    clock = time.monotonic_ns
    first = clock()
    for start in range(0, n, chunk):
        counter += 1
        payload = f'{{"type":"generation_tick","seconds":{counter}}}'.encode()
        transport.write((bytes((0x81, len(payload))) + payload) * min(chunk, n - start))
        await asyncio.sleep(0)
    return first, clock(), counter


class ChildProcess:
    """A child ``python -m module 'json args'`` spoken to in JSON lines: ``call``, or
    ``send`` then ``reply``. ``async with`` starts it and waits for its first line
    (:attr:`ready`); leaving sends ``["stop"]`` and waits for it to exit."""

    def __init__(self, module: str, args: Any, start_timeout_s: float = 60) -> None:
        self.module, self.args = module, args
        self.start_timeout_s = start_timeout_s
        self.ready: list[Any] = []
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self: _P) -> _P:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            json.dumps(self.args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        self.ready = await self.reply(timeout=self.start_timeout_s)
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def send(self, *command: Any) -> None:
        """Send a command without waiting for its reply (see :meth:`reply`)."""
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(json.dumps(command).encode() + b"\n")

    async def reply(self, timeout: float = 120) -> list[Any]:
        assert self._process is not None and self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"the {self.module} process exited; see its stderr above")
        values: list[Any] = json.loads(line)
        return values

    async def call(self, *command: Any, timeout: float = 120) -> list[Any]:
        self.send(*command)
        return await self.reply(timeout)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None and process.stdin is not None:
            try:
                self.send("stop")
                process.stdin.close()
                await asyncio.wait_for(process.wait(), 30)
            except (OSError, asyncio.TimeoutError):
                process.kill()
                await process.wait()


class ServerProcess(ChildProcess):
    """``async with ServerProcess(tick_interval_s=...) as srv``: ``srv.url``, ``srv.call``."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(_MODULE, settings)
        self.settings = settings
        self.url = ""
        self.api_key = ""

    async def __aenter__(self) -> ServerProcess:
        await super().__aenter__()
        _, self.url, self.api_key = self.ready
        return self


if __name__ == "__main__":
    asyncio.run(_serve(json.loads(sys.argv[1])))
