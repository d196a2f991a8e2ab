"""Start and stop a local livekit-server on free loopback ports (stdlib only).

Meant as a test fixture::

    from tools.livekit.server import LiveKitServer   # or load this file by path

    with LiveKitServer() as lk:          # starts, waits until GET / answers "OK"
        lk.url                           # "ws://127.0.0.1:<port>"  (what clients connect to)
        lk.http_url                      # "http://127.0.0.1:<port>" (RoomService / twirp API)
        lk.api_key, lk.api_secret        # "devkey", "secret"
        lk.kill()                        # SIGKILL, e.g. to provoke client reconnects
        lk.start()                       # again, on the same ports
    # stopped (SIGTERM twice = forced exit, SIGKILL as last resort), temp dir removed

The binary is ``tools/livekit/bin/livekit-server`` (run ``tools/livekit/build.sh``) or
``$LIVEKIT_SERVER_BIN``. The generated config keeps everything on 127.0.0.1: signalling
binds 127.0.0.1 only, ICE/TCP is off (its listener would bind 0.0.0.0), the single UDP
media port binds 127.0.0.1 only, node_ip is 127.0.0.1 (no IP discovery), and clients are
given a dead loopback STUN address (127.0.0.1:9) instead of the public default ones.

Run ``python tools/livekit/server.py`` to start one in the foreground and print its URL.
"""

from __future__ import annotations

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
from pathlib import Path

__all__ = ["LiveKitServer", "LiveKitServerError", "default_binary", "free_port", "render_config"]

HERE = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"
DEV_KEY = "devkey"
DEV_SECRET = "secret"
# STUN address handed to clients instead of the public defaults. Port 9 (discard): nothing
# listens, so the client's srflx query just fails. Must NOT be the server's UDP media port:
# libwebrtc swallows every packet from a STUN server's address as a STUN response, and ICE
# then never completes ("wait_pc_connection timed out").
DEAD_STUN_PORT = 9


class LiveKitServerError(RuntimeError):
    """The server binary is missing, exited early, or never became ready."""


def default_binary() -> Path:
    env = os.environ.get("LIVEKIT_SERVER_BIN")
    return Path(env) if env else HERE / "bin" / "livekit-server"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free on 127.0.0.1 right now for `kind` (SOCK_STREAM or SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _die_with_parent(parent_pid: int):
    """preexec_fn: on Linux, SIGKILL the server when the process that started it dies.

    Without this a crashed test process (a native abort, `timeout`'s SIGTERM, Ctrl-C of the
    runner; nothing Python can clean up after) leaves livekit-server running forever: its
    first SIGTERM only drains, and it sits in its own session. PR_SET_PDEATHSIG follows the
    *thread* that forked, so start servers from a thread that outlives them (the main one).
    """

    def preexec() -> None:
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except Exception:
            return
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _free_tcp_and_udp_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP (so HTTP and media never collide)."""
    for _ in range(50):
        port = free_port(socket.SOCK_STREAM)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((LOOPBACK, port))
        except OSError:
            continue
        return port
    raise LiveKitServerError("no free loopback port found")


def render_config(
    *,
    http_port: int,
    udp_port: int,
    api_key: str = DEV_KEY,
    api_secret: str = DEV_SECRET,
    log_level: str = "info",
) -> str:
    """The loopback-only YAML config (same keys as tools/livekit/dev.yaml)."""
    return f"""\
development: true
port: {http_port}
bind_addresses: [{LOOPBACK}]
keys:
  {api_key}: {api_secret}
rtc:
  udp_port: {udp_port}
  tcp_port: 0
  node_ip: {LOOPBACK}
  use_external_ip: false
  enable_loopback_candidate: true
  ips:
    includes: [{LOOPBACK}/32]
  stun_servers: [{LOOPBACK}:{DEAD_STUN_PORT}]
  allow_tcp_fallback: false
turn:
  enabled: false
logging:
  level: {log_level}
"""


class LiveKitServer:
    """One livekit-server process on free loopback ports, with a temp config and log."""

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
    ) -> None:
        self.binary = Path(binary) if binary else default_binary()
        self.http_port = http_port or _free_tcp_and_udp_port()
        self.udp_port = udp_port or free_port(socket.SOCK_DGRAM)
        while self.udp_port == self.http_port:
            self.udp_port = free_port(socket.SOCK_DGRAM)
        self.api_key = api_key
        self.api_secret = api_secret
        self.log_level = log_level
        self.ready_timeout = ready_timeout
        self.workdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file = None

    # -- addresses ---------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://{LOOPBACK}:{self.http_port}"

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def config_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "livekit.yaml"

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "livekit.log"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AssertionError):
            return ""

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> LiveKitServer:
        """Start (or restart after kill/stop) on the same ports; return once it serves."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        if not (self.binary.is_file() and os.access(self.binary, os.X_OK)):
            raise LiveKitServerError(
                f"{self.binary} not found; run tools/livekit/build.sh (needs Go)"
            )
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="livekit-"))
        self.config_path.write_text(
            render_config(
                http_port=self.http_port,
                udp_port=self.udp_port,
                api_key=self.api_key,
                api_secret=self.api_secret,
                log_level=self.log_level,
            )
        )
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "--dev",
                "--config",
                str(self.config_path),
                "--bind",
                LOOPBACK,
                "--node-ip",
                LOOPBACK,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the test runner's terminal doesn't hit it
            preexec_fn=_die_with_parent(os.getpid()) if sys.platform.startswith("linux") else None,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise LiveKitServerError(
                    f"livekit-server exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.http_url + "/", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise LiveKitServerError(
            f"livekit-server not ready after {self.ready_timeout}s:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL the server (no goodbye to clients); start() brings it back on the same ports."""
        self._end(signal.SIGKILL, wait=5.0)

    def stop(self, grace: float = 0.5, timeout: float = 5.0) -> None:
        """SIGTERM, then a second SIGTERM after `grace`, then SIGKILL after `timeout`.

        livekit-server's first SIGTERM only drains: it waits (forever) for participants to
        leave and even idle takes >10 s; the second signal forces the exit (~immediate).
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
        """Stop and delete the temp dir (config and log)."""
        self.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> LiveKitServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.proc is not None and self.proc.poll() is None else "stopped"
        return f"<LiveKitServer {self.url} udp={self.udp_port} {state}>"


if __name__ == "__main__":
    srv = LiveKitServer()
    srv.start()
    print(
        f"livekit-server ready: url={srv.url} key={srv.api_key} secret={srv.api_secret} "
        f"udp={srv.udp_port} log={srv.log_path}",
        flush=True,
    )
    try:
        while srv.proc is not None and srv.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        srv.close()
