"""A real impaired link for one process: a server and a client on two ends of a veth pair.

Two fresh network namespaces (unique names) are joined by a veth pair; loss (nftables),
a rate cap (tc tbf) and blackholes act on that link, so faults happen below the
application, where WebRTC's own RTCP and ICE see them, not in the embedded server.

Both ends stay in this process, so a test reads the session and the server as usual.
A network namespace belongs to a *thread* on Linux (``setns(2)``), and a socket keeps the
namespace it was made in: the embedded server runs its own event loop on a thread that
joined the server namespace (the WebSocket listener and the server's peer connections
live there), and the thread that enters :func:`impaired_network` joins the client
namespace for the block (the session's WebSocket and its peer connection live there).
Each namespace has only loopback and its veth end, so ICE gathers exactly one address a
side and both the WebSocket and the media cross the impaired link. Nothing is routed
out of the namespaces, and the root namespace gets no interface or rule.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import functools
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

from ..server import EmbeddedServer
from .netspec import (
    NFT_TABLE,
    Impairment,
    LinkCounters,
    LinkNames,
    NetworkUnavailable,
    nft_ruleset,
    parse_counters,
    parse_queue_drops,
    parse_rate,
    queue_stats_command,
    setup_commands,
    tc_commands,
    teardown_commands,
)

__all__ = ["ImpairedNetwork", "impaired_network", "missing_requirements"]

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
TOOLS = ("ip", "tc", "nft")
NFT_HINT = "apt-get install -y nftables"


def missing_requirements() -> str | None:
    """Why an impaired network cannot be made here, or ``None`` when it can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "impaired networks need root (network namespaces, tc and nftables)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        hint = f" ({NFT_HINT})" if "nft" in missing else ""
        return f"impaired networks need {', '.join(missing)} on PATH{hint}"
    return None


def _run(cmd: list[str], stdin: str | None = None) -> str:
    """Run one command, return its output; a leading ``-`` means its failure is expected
    and ignored."""
    may_fail = cmd[0] == "-"
    argv = cmd[1:] if may_fail else cmd
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0 and not may_fail:
        raise NetworkUnavailable(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


_libc: Any = None


def _setns(fd: int) -> None:
    """Move the calling thread into the network namespace ``fd`` refers to."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise NetworkUnavailable(f"setns failed: {os.strerror(errno)}")


@contextlib.contextmanager
def _thread_in_netns(name: str) -> Iterator[None]:
    """The calling thread in namespace ``name`` for the block, back where it was after."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


class _ServerThread:
    """An :class:`EmbeddedServer` on its own event loop, on a thread inside namespace ``ns``."""

    def __init__(self, ns: str, settings: dict[str, Any]) -> None:
        self.ns, self.settings = ns, settings
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: EmbeddedServer | None = None
        self._ready: concurrent.futures.Future[EmbeddedServer] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, name=f"server@{ns}", daemon=True)

    async def start(self) -> EmbeddedServer:
        self._thread.start()
        self.server = await asyncio.wrap_future(self._ready)
        return self.server

    def _main(self) -> None:
        try:
            with _thread_in_netns(self.ns):
                self._serve()
        except BaseException as exc:  # handed to the waiting caller
            if not self._ready.done():
                self._ready.set_exception(exc)

    def _serve(self) -> None:
        loop = self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(EmbeddedServer(**self.settings).start())
            self._ready.set_result(server)
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await ``fn()`` on the server's loop (the only safe place to drive the server)."""
        assert self.loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_wrap(fn), self.loop))

    async def stop(self) -> None:
        if self.loop is not None and self.server is not None:
            with contextlib.suppress(Exception):
                await self.call(self.server.stop)
            self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, 30)


async def _wrap(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


class ImpairedNetwork:
    """The link :func:`impaired_network` made: change it, cut it, serve on it.

    ``set()``, ``blackhole()`` and ``restore()`` take effect at once on both ends (one
    atomic nft transaction per namespace, ``tc qdisc replace``); ``serve()`` runs the
    embedded server on the server end, reachable from this thread at ``server_addr``.
    """

    def __init__(self, names: LinkNames, impairment: Impairment) -> None:
        self.names = names
        self.impairment = impairment
        self.dark = False
        self.spares_loopback = False
        """Whether traffic between two processes of one end (over its ``lo``) is spared
        the loss, the blackhole and the counters (see :meth:`spare_loopback`)."""
        self._servers: list[_ServerThread] = []
        self._queue_drops_at_change = {ns: 0 for ns, _ in names.ends()}
        self._closed = {"server": LinkCounters(), "client": LinkCounters()}
        """The counters of the periods before the last change (nft restarts at each)."""
        self._applied = False
        self._lock = threading.Lock()
        """A change (a blackhole's timer may end one while ``set`` makes another) and a
        read of the counters each see the rules and the counts of one period."""
        self._timers: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<ImpairedNetwork {self.names.server_ns}<->{self.names.client_ns} {self.spec}>"

    @property
    def spec(self) -> str:
        return self.impairment.describe() + (",dark" if self.dark else "")

    @property
    def server_addr(self) -> str:
        return self.names.server_addr

    @property
    def client_addr(self) -> str:
        return self.names.client_addr

    def _apply(self) -> None:
        with self._lock:
            self._apply_locked()

    def _apply_locked(self) -> None:
        if self._applied:  # the change restarts the counters: keep what they counted so far
            period = self._read_locked()
            self._closed = {end: self._closed[end] + period[end] for end in period}
        self._applied = True
        rules = nft_ruleset(self.impairment.loss, self.dark, spare_loopback=self.spares_loopback)
        for ns, dev in self.names.ends():
            _run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=rules)
            for cmd in tc_commands(ns, dev, self.impairment.rate_bps):
                _run(cmd)
            self._queue_drops_at_change[ns] = self._queue_drops(ns, dev)

    @staticmethod
    def _queue_drops(ns: str, dev: str) -> int:
        return parse_queue_drops(_run(queue_stats_command(ns, dev)))

    def _read_counters(self) -> dict[str, LinkCounters]:
        with self._lock:
            return self._read_locked()

    def _read_locked(self) -> dict[str, LinkCounters]:
        ends = zip(("server", "client"), self.names.ends(), strict=True)
        return {end: parse_counters(_run(["ip", "netns", "exec", ns, "nft", "-j", "list",
                                          "table", "inet", NFT_TABLE]))
                .with_queue_drops(self._queue_drops(ns, dev), self._queue_drops_at_change[ns])
                for end, (ns, dev) in ends}  # fmt: skip

    async def counters(self) -> dict[str, LinkCounters]:
        """What each end's egress really sent and dropped since the last change (``set``,
        ``blackhole`` and ``restore`` reset them): ``"server"`` is the generated media
        on its way to the client, ``"client"`` the camera on its way to the server. The
        truth a session's measured loss is compared with."""
        return await asyncio.to_thread(self._read_counters)

    async def totals(self) -> dict[str, LinkCounters]:
        """As :meth:`counters`, but since the network was made, across every change: what
        the link did to a whole run (a demo's, with its blackholes)."""

        def read() -> dict[str, LinkCounters]:
            with self._lock:
                now = self._read_locked()
                return {end: self._closed[end] + now[end] for end in now}

        return await asyncio.to_thread(read)

    async def set(self, *, loss: float | None = None, rate: str | int | None = None,
                  uncapped: bool = False) -> None:  # fmt: skip
        """Change the loss (a fraction) and/or the rate cap (``"300kbit"``, bits/s); ``uncapped``
        removes the cap. What is not named stays as it is."""
        current = self.impairment
        rate_bps = current.rate_bps if rate is None else parse_rate(rate)
        if uncapped:
            rate_bps = None
        self.impairment = Impairment(
            loss=current.loss if loss is None else loss, rate_bps=rate_bps,
            blackholes=current.blackholes,
        )  # fmt: skip
        await asyncio.to_thread(self._apply)

    async def blackhole(self, seconds: float | None = None) -> None:
        """Drop every packet both ways; after ``seconds`` (if given) the link comes back by
        itself (this returns at once; ``dark`` says whether it is still cut)."""
        self.dark = True
        await asyncio.to_thread(self._apply)
        if seconds is not None:
            self._later(seconds, self.restore)

    async def restore(self) -> None:
        """End a blackhole: the loss and the cap set before it hold again."""
        self.dark = False
        await asyncio.to_thread(self._apply)

    def _later(self, delay_s: float, action: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay_s)
            await action()

        task = asyncio.ensure_future(run())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def schedule_blackholes(self) -> None:
        """Start the spec's blackholes (``blackhole=4s@8s``: 4 s of darkness 8 s from now)."""
        for hole in self.impairment.blackholes:
            self._later(hole.at_s, functools.partial(self.blackhole, hole.seconds))

    @contextlib.asynccontextmanager
    async def serve(self, **settings: Any) -> AsyncIterator[EmbeddedServer]:
        """The embedded server (``settings`` as for ``serve_embedded``) on the server end.

        It runs on its own thread and loop: read its counters and ``billed_by_session``
        freely, but drive it (``send_raw``, faults) through :meth:`on_server`.
        """
        settings.setdefault("host", self.server_addr)
        thread = _ServerThread(self.names.server_ns, settings)
        self._servers.append(thread)
        try:
            yield await thread.start()
        finally:
            await thread.stop()
            self._servers.remove(thread)

    async def spare_loopback(self) -> None:
        """From now on, act on what crosses the link only: UDP between two processes of the
        same end (a LiveKit server and the embedded server's own participant, both on the
        server end, over its ``lo``) is neither dropped nor counted, as in a data centre
        where the user's path is the bad one. Without it that leg is impaired too, and a
        client behind the SFU sees the loss of two hops."""
        self.spares_loopback = True
        await asyncio.to_thread(self._apply)

    async def run(self, end: str, argv: list[str], **kw: Any) -> asyncio.subprocess.Process:
        """Start ``argv`` as a process inside the ``"server"`` or ``"client"`` namespace
        (``ip netns exec``; ``kw`` as for :func:`asyncio.create_subprocess_exec`). For what
        cannot move namespace within this process: LiveKit's SDK makes its sockets on
        native threads of its own, so a LiveKit server or client runs as a process there.
        The caller ends it (and waits for it) before the block ends."""
        namespaces = {"server": self.names.server_ns, "client": self.names.client_ns}
        if end not in namespaces:
            raise ValueError(f"end must be 'server' or 'client', not {end!r}")
        cmd = ["ip", "netns", "exec", namespaces[end], *argv]
        return await asyncio.create_subprocess_exec(*cmd, **kw)

    async def on_server(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await ``fn()`` on the loop of the (one) server :meth:`serve` runs."""
        return await self._servers[-1].call(fn)

    async def _close(self) -> None:
        for task in list(self._timers):
            task.cancel()
        for thread in list(self._servers):
            await thread.stop()


@contextlib.asynccontextmanager
async def impaired_network(
    *, loss: float = 0.0, rate: str | int | None = None, spec: str | Impairment | None = None,
) -> AsyncIterator[ImpairedNetwork]:  # fmt: skip
    """Two fresh namespaces joined by an impaired veth pair, torn down on exit (even on
    error); the calling thread is in the client namespace for the block.

    ``loss`` is the fraction of UDP packets (the media) dropped each way, ``rate`` the cap
    each way (``"500kbit"``); ``spec`` (``"loss=10%,rate=500kbit,blackhole=4s@8s"``, see
    :func:`~.netspec.parse_impairment`) replaces both and schedules its blackholes.
    Raises :class:`~.netspec.NetworkUnavailable` when not root or a tool is missing.
    """
    from .netspec import parse_impairment

    why = missing_requirements()
    if why is not None:
        raise NetworkUnavailable(why)
    if spec is not None:
        impairment = spec if isinstance(spec, Impairment) else parse_impairment(spec)
    else:
        impairment = Impairment(loss=loss, rate_bps=None if rate is None else parse_rate(rate))
    names = LinkNames.unique(secrets.token_hex(3))
    net = ImpairedNetwork(names, impairment)
    try:
        for cmd in setup_commands(names):
            await asyncio.to_thread(_run, cmd)
        await asyncio.to_thread(net._apply)
        with _thread_in_netns(names.client_ns):
            net.schedule_blackholes()
            try:
                yield net
            finally:
                await net._close()
    finally:
        for cmd in teardown_commands(names):
            await asyncio.to_thread(_run, ["-", *cmd])
