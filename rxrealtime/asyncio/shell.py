"""The asyncio side of a session: carries out what the session core decides.

The core (:mod:`rxrealtime.core.machine`) says "open link 3", "start the retry timer",
"fail ack 7"; this shell does it with tasks, timers and futures, and feeds back what
happens (a link came up, a socket closed, a timer fired, a control frame arrived). It
decides nothing itself: there is no rule here that a test could only see with a socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec

from .. import protocol as p
from ..core import events as ev
from ..core.machine import SessionCore
from ..core.policy import CoreConfig, close_error
from ..exceptions import ConnectionLost, RealtimeError, SessionClosed
from ..latency import LatencyMeter, StampBook
from ..options import SessionOptions
from ..quality import QualityWatch, StatsSampler
from ..session_streams import AckLatency, SessionStreams
from ..states import ConnectionState, SessionInfo
from ..streams import HotStream
from ..transports.base import MediaContext, MediaTransport, load_transport
from .timings import PhaseClock, StallWatch

if TYPE_CHECKING:
    from .link import Link
    from .signaling import Signaling

__all__ = ["CONTROL_FRAMES", "SessionShell", "emit_targets"]

logger = logging.getLogger(__name__)

#: Control frames go to the core; ticks and queue positions go straight to their streams.
#: A frame the media transport declares (``livekit_room_info``) goes to the transport
#: only: it checks it, and hands the core only what it accepted (``context.identified``).
CONTROL_FRAMES = (p.SessionIdMessage, p.PromptAck, p.SetImageAck, p.GenerationStarted,
                  p.GenerationEnded, p.ErrorMessage)  # fmt: skip


def emit_targets(streams: SessionStreams) -> dict[ev.Stream, HotStream[Any]]:
    """The stream of ``streams`` each :class:`~rxrealtime.core.events.Stream` names.

    Built once per shell, so that an :class:`~rxrealtime.core.events.Emit` is a dict
    lookup by a typed key, and a test holds the map complete.
    """
    return {
        ev.Stream.ERRORS: streams.errors,
        ev.Stream.DIAGNOSTICS: streams.diagnostics,
        ev.Stream.SESSION_STARTED: streams.session_started,
        ev.Stream.PROMPT_ACKS: streams.prompt_acks,
        ev.Stream.IMAGE_ACKS: streams.image_acks,
        ev.Stream.GENERATION_STARTED: streams.generation_started,
        ev.Stream.GENERATION_ENDED: streams.generation_ended,
    }


class SessionShell:
    """Links, timers and waiting callers of one session; see the module docstring.

    The shell builds the session's core from ``config`` and is the only way to it: the
    session calls :meth:`connect`, :meth:`request`, :meth:`disconnect` and reads
    :attr:`info`. ``url`` is the signaling URL with its secrets (what the socket
    dials); ``describe`` the same without them (what errors and logs say).
    """

    def __init__(
        self, config: CoreConfig, streams: SessionStreams, options: SessionOptions, *,
        url: str, describe: str, loopback: bool, redact: Callable[[str], str],
        make_signaling: Callable[[], Signaling], view_only: bool = False,
    ) -> None:  # fmt: skip
        self.core, self.streams, self.options = SessionCore(config), streams, options
        self._targets = emit_targets(streams)
        self.url, self.describe, self.loopback, self.redact = url, describe, loopback, redact
        self.make_signaling, self.view_only = make_signaling, view_only
        self.links: dict[int, Link] = {}
        self.frames_received = 0
        self.local_track: Any = None
        self.closing: asyncio.Task[None] | None = None
        self._teardowns: set[asyncio.Task[None]] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._connected: asyncio.Future[None] | None = None
        self.quality_watch = QualityWatch(options.quality_thresholds)  # across links
        self.latency = LatencyMeter()
        self._link_started: float | None = None
        self._stamps: StampBook | None = None
        stall_s = options.video_stall_s
        self.stall_watch = StallWatch(streams, stall_s) if stall_s else None
        self._appliers: dict[type[ev.Decision], Callable[[Any], None]] = {
            ev.SetState: self._set_state, ev.Emit: self._emit, ev.OpenLink: self._open_link,
            ev.CloseLink: self._close_link, ev.StartTimer: self._start_timer,
            ev.CancelTimer: self._cancel_timer, ev.SettleAck: self._settle, ev.FailAck: self._fail,
            ev.ConnectFinished: self._connect_finished, ev.CloseForGood: self._close_for_good,
        }  # fmt: skip

    @property
    def current_link(self) -> Link | None:
        return self.links.get(self.core.link or 0)

    @property
    def info(self) -> SessionInfo | None:
        """The identity of the latest server session, once the server named one."""
        return self.core.info

    def feed(self, event: ev.Event) -> None:
        """An event from the shell; the core's answer is carried out at once."""
        try:
            decisions = self.core.feed(event)
        except RealtimeError:  # a shell event the table refuses is our bug: say so
            logger.exception("session core refused %r", event)
            return
        self.apply(decisions)

    def apply(self, decisions: list[ev.Decision]) -> None:
        for decision in decisions:
            self._appliers[type(decision)](decision)

    async def connect(
        self, local_track: Any, prompt: tuple[str, bool] | None, image: str | None
    ) -> None:
        if self.core.closed:
            raise SessionClosed("this session was disconnected; create a new Session")
        decisions = self.core.feed(ev.ConnectRequested(prompt, image))  # raises if not idle
        self.local_track = local_track
        stamps = getattr(local_track, "stamps", None)  # a SyntheticTrack stamps its frames
        self._stamps = stamps if isinstance(stamps, StampBook) else None
        self._connected = connected = asyncio.get_running_loop().create_future()
        self.apply(decisions)
        try:
            await asyncio.shield(connected)
        except asyncio.CancelledError:
            if not connected.done() and self.core.state is ConnectionState.CONNECTING:
                self.feed(ev.ConnectAborted())
            raise

    async def request(
        self, kind: str, message: p.ClientMessage, remember: object, link_number: int | None = None
    ) -> Any:
        key = message.prompt if isinstance(message, p.PromptMessage) else None
        ack, decisions = self.core.request(kind, key, remember, link=link_number)
        future = self._acks[ack.id] = asyncio.get_running_loop().create_future()
        self.apply(decisions)
        link = self.links[self.core.link or 0]
        started = time.perf_counter()
        try:
            await self._send(link, message)
            frame = await future
        finally:
            if self._acks.pop(ack.id, None) is not None and not future.done():
                self.apply(self.core.abandon(ack.id))  # never sent, or the caller gave up
        self.streams.ack_latencies.emit(
            AckLatency(kind=kind, seconds=time.perf_counter() - started)
        )
        return frame

    def disconnect(self) -> asyncio.Task[None]:
        """Close for good (the first call decides it); the teardown to await.

        Shield the task when awaiting it: cancelling a caller must not stop the teardown.
        """
        if self.closing is None:
            self.apply(self.core.feed(ev.DisconnectRequested()))  # every state has the row
        assert self.closing is not None
        return self.closing

    # -- carrying out decisions ----------------------------------------------------

    def _set_state(self, decision: ev.SetState) -> None:
        logger.info("session state %s", decision.state)
        self.streams.connection_changes.emit(decision.state)

    def _emit(self, decision: ev.Emit) -> None:
        self._targets[decision.stream].emit(decision.value)

    def _open_link(self, decision: ev.OpenLink) -> None:
        from .link import Link  # the I/O shell loads on first use (aiohttp)

        link = self.links[decision.link] = Link(decision.link, self.make_signaling())
        link.start_opening(self._run_link(link, decision))

    async def _run_link(self, link: Link, decision: ev.OpenLink) -> None:
        """Open one server session: socket, then image and prompt, then media."""
        from .signaling import CheckedTicks, FrameRouter

        number = link.number
        clock = PhaseClock(self.streams, decision.attempt)
        self._link_started = time.monotonic()  # time to first frame counts from here
        try:
            await link.socket.open()
            clock.mark("websocket")
            media = link.media = self._new_media(number)
            handlers: dict[type, Callable[[Any], None]] = {
                p.GenerationTick: CheckedTicks(
                    self.streams.generation_ticks, self.streams.errors, self.options.max_tick_step_s
                ),
                p.QueuePosition: self.streams.queue_positions.emit,
            }
            control = self._control(number)
            handlers.update({kind: control for kind in CONTROL_FRAMES})
            handlers.update({kind: media.on_frame for kind in media.handles})  # one owner each
            router = FrameRouter(handlers, self.streams.messages, self.streams.errors)
            lost = self._lost(number)
            link.start_reading(router, lambda code: lost(close_error(code)))
            if decision.image is not None:
                message = p.SetImageMessage(image_data=decision.image)
                await self.request("image", message, None, number)
            if decision.prompt is not None:
                text, enhance = decision.prompt
                await self.request("prompt", p.PromptMessage(text, enhance), None, number)
            await media.start()
            clock.mark("media")
        except RealtimeError as exc:
            clock.dispose()
            self.feed(ev.LinkDown(number, exc, time.monotonic()))
        except Exception as exc:  # e.g. aiortc rejecting an SDP: still transient
            clock.dispose()
            error = ConnectionLost(f"attempt {decision.attempt} failed: {exc!r}")
            self.feed(ev.LinkDown(number, error, time.monotonic()))
        except BaseException:
            clock.dispose()
            raise
        else:
            link.on_close(clock.dispose)
            if self.options.stats_interval_s:
                sampling = self._sample_stats(media, self.options.stats_interval_s)
                link.on_close(sampling.cancel)
            if self.stall_watch is not None and self.options.transport != "none":
                self.stall_watch.start()
            self.feed(ev.LinkUp(number, time.monotonic()))

    def _new_media(self, number: int) -> MediaTransport:
        st = self.streams
        context = MediaContext(
            send=partial(self._send, self.links[number]), lost=self._lost(number),
            problem=st.errors.emit, track_received=st.remote_tracks.emit,
            frame_received=self._count_frame, identified=self._control(number),
            latency=self._latency_sample,
            local_track=self.local_track,
            ice_servers=[s.as_dict() for s in self.options.ice_servers],
            loopback=self.loopback, preferred_codec=self.options.preferred_codec,
            view_only=self.view_only, media_timeout_s=self.options.connect_timeout_s / 2,
            video_backoff=self.options.video_backoff,
        )  # fmt: skip
        return load_transport(self.options.transport)(context)

    async def _send(self, link: Link, message: p.ClientMessage) -> None:
        """Every client frame leaves through here, and is published on ``sent``."""
        await link.socket.send(message)
        if self.streams.sent.observers:
            self.streams.sent.emit(message)

    def _count_frame(self, frame: Any) -> None:
        self.frames_received += 1
        started = self._link_started
        if started is not None:  # the link's first generated frame
            self._link_started = None
            self.latency.first_frame(time.monotonic() - started)
        book = self._stamps
        if book is not None and self.latency.source != "frame-metadata":
            self._read_stamp(frame, book)
        self.streams.frames.emit(frame)

    def _read_stamp(self, frame: Any, book: StampBook) -> None:
        """The picture stamp of a generated frame, matched to when its source frame was
        made: a glass-to-glass sample (when the transport has no frame metadata)."""
        from ..media import plane_arrays
        from ..stamps import read_key

        try:
            key = read_key(plane_arrays(frame)[0])
        except Exception:  # a frame of another kind than yuv420p: no stamp to read
            self._stamps = None
            return
        captured = book.captured_at(key) if key is not None else None
        if captured is not None:
            self.latency.sample(time.monotonic() - captured, "picture-stamp")

    def _latency_sample(self, seconds: float) -> None:
        """A transport matched a generated frame by its metadata (LiveKit)."""
        self.latency.sample(seconds, "frame-metadata")

    def _sample_stats(self, media: MediaTransport, interval: float) -> asyncio.Task[None]:
        """Every ``interval``, while anyone watches: stats, raw stats and the quality."""
        st = self.streams

        async def loop() -> None:
            sampler = StatsSampler()
            while True:
                await asyncio.sleep(interval)
                if not (st.stats.observers or st.quality.observers or st.raw_stats.observers):
                    continue
                counters, raw = await media.sample()
                counters = msgspec.structs.replace(counters, frames_received=self.frames_received)
                watch = self.stall_watch
                freezes = watch.freezes if watch else (0, 0.0, False)
                stats = sampler.sample(counters, time.monotonic(), freezes=freezes[0],
                                       freeze_s=freezes[1], frozen=freezes[2],
                                       latency=self.latency.summary())  # fmt: skip
                if raw is not None:
                    st.raw_stats.emit(raw)
                if stats is not None:
                    st.stats.emit(stats)
                    verdict = self.quality_watch.update(stats)
                    if verdict is not None:
                        st.quality.emit(verdict)

        return asyncio.ensure_future(loop())

    def _control(self, number: int) -> Callable[[p.ServerMessage], None]:
        return lambda frame: self.feed(ev.FrameReceived(number, frame))

    def _lost(self, number: int) -> Callable[[RealtimeError], None]:
        return lambda error: self.feed(ev.LinkDown(number, error, time.monotonic()))

    def _close_link(self, decision: ev.CloseLink) -> None:
        link = self.links.pop(decision.link, None)
        if link is not None:
            task = link.close(decision.drain_s)
            self._teardowns.add(task)
            task.add_done_callback(self._teardowns.discard)

    def _start_timer(self, decision: ev.StartTimer) -> None:
        self._cancel_timer(ev.CancelTimer(decision.name))
        loop = asyncio.get_running_loop()
        self._timers[decision.name] = loop.call_later(
            decision.delay_s, self._fire, decision.name, decision.fire
        )

    def _cancel_timer(self, decision: ev.CancelTimer) -> None:
        handle = self._timers.pop(decision.name, None)
        if handle is not None:
            handle.cancel()

    def _fire(self, name: str, event: ev.Event) -> None:
        self._timers.pop(name, None)
        self.feed(event)

    def _settle(self, decision: ev.SettleAck) -> None:
        future = self._acks.get(decision.ack)
        if future is not None and not future.done():
            future.set_result(decision.frame)

    def _fail(self, decision: ev.FailAck) -> None:
        future = self._acks.get(decision.ack)
        if future is not None and not future.done():
            future.set_exception(decision.error)

    def _connect_finished(self, decision: ev.ConnectFinished) -> None:
        future = self._connected
        if future is None or future.done():
            return
        if decision.error is None:
            future.set_result(None)
        else:
            future.set_exception(decision.error)

    def _close_for_good(self, decision: ev.CloseForGood) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self.stall_watch is not None:
            self.stall_watch.stop()
        self.closing = asyncio.ensure_future(self._finish())

    async def _finish(self) -> None:
        """Wait for every teardown, then complete the streams (``errors`` last)."""
        while self._teardowns:
            await asyncio.gather(*self._teardowns, return_exceptions=True)
        self.streams.complete_streams()
