"""A local livekit-server on free loopback ports: find the binary, start, stop.

The embedded server's LiveKit mode starts one of these unless it is given an existing
LiveKit server; the tests start one per module. Standard library only, and no import of
the rest of rxrealtime, so ``tools/livekit/server.py`` can load this file by path in a
venv that has no rxrealtime (the vendor client's).

::

    with LiveKitServer(find_livekit_binary()) as lk:   # ready in ~0.1 s
        lk.url                  # ws://127.0.0.1:<port>   what clients connect to
        lk.http_url             # http://127.0.0.1:<port> RoomService (twirp) API
        lk.api_key, lk.api_secret
        lk.kill(); lk.start()   # SIGKILL, then again on the same ports

Everything stays on 127.0.0.1 (see ``render_config``): signalling binds 127.0.0.1, ICE/TCP
is off (its listener would bind 0.0.0.0), the one UDP media port binds 127.0.0.1, node_ip
is 127.0.0.1 (no external IP discovery), no TURN, and clients are handed a dead loopback
STUN address instead of the public default ones. ``host`` puts all of that on another
address of this machine instead (one the caller chose, such as the server end of a test
network namespace's veth pair: ``rxrealtime.testing``); nothing then is discovered either.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = [
    "BINARY_ENV",
    "BUILD_HINT",
    "DEV_KEY",
    "DEV_SECRET",
    "LOOPBACK",
    "LiveKitServer",
    "LiveKitServerError",
    "find_livekit_binary",
    "free_port",
    "render_config",
]

BINARY_ENV = "RXREALTIME_LIVEKIT_SERVER"
"""Path of the livekit-server binary to use, before any other place is looked at."""
BINARY_IN_PROJECT = Path("tools", "livekit", "bin", "livekit-server")
BUILD_HINT = (
    f"run `make livekit` (builds {BINARY_IN_PROJECT}; needs Go), set ${BINARY_ENV}, "
    "or put livekit-server on PATH"
)
LOOPBACK = "127.0.0.1"
DEV_KEY = "devkey"
DEV_SECRET = "secret"
"""livekit-server's ``--dev`` pair; PyJWT warns that the secret is short, so prefer a
random one of 32+ characters (what the embedded server does)."""
DEAD_STUN_PORT = 9
"""STUN address handed to clients instead of the public defaults: nothing listens on
127.0.0.1:9. Never the server's own UDP port: libwebrtc takes every packet from a STUN
server's address for a STUN response, and ICE then never completes."""


class LiveKitServerError(RuntimeError):
    """The server binary is missing, exited early, or never became ready."""


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a ``preexec_fn`` that has the child SIGKILLed when the thread that
    started it exits: a test run killed outright leaves no livekit-server behind."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before any fork
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, parent = 1, os.getpid()

    def in_child() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)  # SIGTERM only drains
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return in_child


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_livekit_binary(
    env: dict[str, str] | None = None,
    starts: list[Path] | None = None,
    search_path: str | None = None,
) -> Path | None:
    """``$RXREALTIME_LIVEKIT_SERVER``, else ``tools/livekit/bin/livekit-server`` in the
    project (walking up from the working directory, then from this package), else
    ``livekit-server`` on PATH; None if there is none.

    A set ``$RXREALTIME_LIVEKIT_SERVER`` that names no executable is None too: a stale
    override must not silently pick another binary.
    """
    env = dict(os.environ) if env is None else env
    if env.get(BINARY_ENV):
        given = Path(env[BINARY_ENV]).expanduser()
        return given if _executable(given) else None
    if starts is None:
        starts = [Path.cwd(), Path(__file__).resolve().parent]
    for start in starts:
        for folder in (start, *start.parents):
            if _executable(folder / BINARY_IN_PROJECT):
                return folder / BINARY_IN_PROJECT
    found = shutil.which("livekit-server", path=search_path)
    return Path(found) if found else None


def free_port(kind: int = socket.SOCK_STREAM, host: str = LOOPBACK) -> int:
    """A port free on ``host`` right now for ``kind`` (SOCK_STREAM or SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _free_tcp_and_udp_port(host: str = LOOPBACK) -> int:
    """A port free on ``host`` for TCP and UDP both (HTTP and media never collide)."""
    for _ in range(50):
        port = free_port(socket.SOCK_STREAM, host)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((host, port))
        except OSError:
            continue
        return port
    raise LiveKitServerError(f"no free port found on {host}")


def render_config(
    *,
    http_port: int,
    udp_port: int,
    api_key: str = DEV_KEY,
    api_secret: str = DEV_SECRET,
    log_level: str = "info",
    host: str = LOOPBACK,
) -> str:
    """The loopback-only YAML config (the keys of tools/livekit/dev.yaml, explained there);
    ``host`` (an IPv4 address of this machine) replaces 127.0.0.1 in every key but the
    dead STUN address, which stays on the client's own loopback."""
    return f"""\
development: true
port: {http_port}
bind_addresses: [{host}]
keys:
  {api_key}: {api_secret}
rtc:
  udp_port: {udp_port}
  tcp_port: 0
  node_ip: {host}
  use_external_ip: false
  enable_loopback_candidate: true
  ips:
    includes: [{host}/32]
  stun_servers: [{LOOPBACK}:{DEAD_STUN_PORT}]
  allow_tcp_fallback: false
turn:
  enabled: false
logging:
  level: {log_level}
"""


class LiveKitServer:
    """One livekit-server process on free ports of ``host`` (loopback unless told), with a
    temp config and log."""

    def __init__(
        self,
        binary: os.PathLike[str] | str | None = None,
        *,
        http_port: int | None = None,
        udp_port: int | None = None,
        api_key: str = DEV_KEY,
        api_secret: str = DEV_SECRET,
        log_level: str = "info",
        ready_timeout: float = 20.0,
        host: str = LOOPBACK,
    ) -> None:
        found = binary if binary is not None else find_livekit_binary()
        if found is None:
            raise LiveKitServerError(f"no livekit-server binary found: {BUILD_HINT}")
        self.binary = Path(found)
        self.host = host
        self.http_port = http_port or _free_tcp_and_udp_port(host)
        self.udp_port = udp_port or free_port(socket.SOCK_DGRAM, host)
        while self.udp_port == self.http_port:
            self.udp_port = free_port(socket.SOCK_DGRAM, host)
        self.api_key = api_key
        self.api_secret = api_secret
        self.log_level = log_level
        self.ready_timeout = ready_timeout
        self.workdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.http_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def config_path(self) -> Path:
        if self.workdir is None:
            raise LiveKitServerError("not started")
        return self.workdir / "livekit.yaml"

    @property
    def log_path(self) -> Path:
        if self.workdir is None:
            raise LiveKitServerError("not started")
        return self.workdir / "livekit.log"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, LiveKitServerError):
            return ""

    def start(self) -> LiveKitServer:
        """Start (or restart after kill/stop) on the same ports; return once it serves.

        Blocking (up to ``ready_timeout``): from asyncio, call :meth:`spawn` on the loop
        and :meth:`wait_ready` in a thread.
        """
        self.spawn()
        self.wait_ready()
        return self

    def spawn(self) -> None:
        """Start the process, without waiting until it serves (quick, never blocks).

        It dies with the thread that calls this (Linux), so call it from one that lives
        as long as the server (the event loop's), not from a worker thread.
        """
        if self.proc is not None and self.proc.poll() is None:
            return
        if not _executable(self.binary):
            raise LiveKitServerError(f"{self.binary} is not an executable: {BUILD_HINT}")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="livekit-"))
        self.config_path.write_text(
            render_config(
                http_port=self.http_port,
                udp_port=self.udp_port,
                api_key=self.api_key,
                api_secret=self.api_secret,
                log_level=self.log_level,
                host=self.host,
            )
        )
        self.config_path.chmod(0o600)  # it holds the API secret
        self._log_file = open(self.log_path, "ab")  # closed in _end
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "--dev",
                "--config",
                str(self.config_path),
                "--bind",
                self.host,
                "--node-ip",
                self.host,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal does not reach it first
            preexec_fn=_die_with_parent(),
        )

    def wait_ready(self) -> None:
        """Block until the server answers ``GET /`` (stopped, and an error, if it never does)."""
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            proc = self.proc
            if proc is None or proc.poll() is not None:
                code = proc.returncode if proc is not None else None
                self._end(signal.SIGKILL, wait=1.0)
                raise LiveKitServerError(f"livekit-server exited with {code}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.http_url + "/", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        tail = self.log_tail()
        self.stop()
        raise LiveKitServerError(f"livekit-server not ready after {self.ready_timeout} s:\n{tail}")

    def kill(self) -> None:
        """SIGKILL (no goodbye to clients); ``start()`` brings it back on the same ports."""
        self._end(signal.SIGKILL, wait=5.0)

    def stop(self, grace: float = 0.5, timeout: float = 5.0) -> None:
        """SIGTERM, a second SIGTERM after ``grace``, SIGKILL after ``timeout``.

        livekit-server's first SIGTERM only drains: it waits (forever) for participants to
        leave, and even idle takes over 10 s; the second one makes it exit at once.
        """
        self._end(signal.SIGTERM, wait=grace, then=signal.SIGTERM, wait2=timeout)

    def _end(self, sig: int, wait: float, then: int | None = None, wait2: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                if then is not None:
                    proc.send_signal(then)
                    try:
                        proc.wait(timeout=wait2)
                    except subprocess.TimeoutExpired:
                        pass
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def close(self) -> None:
        """Stop, and delete the temp dir (config and log)."""
        self.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> LiveKitServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never the secret
        state = "running" if self.proc is not None and self.proc.poll() is None else "stopped"
        return f"<LiveKitServer {self.url} udp={self.udp_port} {state}>"
