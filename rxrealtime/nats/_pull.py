"""A JetStream pull consumer read as a live feed: low latency, high throughput.

nats-py's ``fetch(batch)`` waits until the batch is full or its timeout ends, which
puts up to that timeout on every tick's latency. This loop keeps one pull request
(``batch`` messages, ``expires_s``) outstanding on the consumer's "next" API and hands
each message to ``on_message`` as it arrives; when the request is used up or expires it
sends the next one. A reconnection (the server went away and its pending requests with
it) sends a new request at once. A ``409`` status (consumer deleted, leadership change)
is passed to ``on_conflict``, which may recreate the consumer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

__all__ = ["PullLoop"]

logger = logging.getLogger(__name__)

STATUS = "Status"
HEARTBEAT = "100"
CONFLICT = "409"


class PullLoop:
    def __init__(
        self,
        nc: Client,
        stream: str,
        consumer: str,
        on_message: Callable[[Msg], None],
        on_conflict: Callable[[str], Awaitable[None]],
        *,
        batch: int = 1000,
        expires_s: float = 1.0,
    ) -> None:
        self.nc, self.stream, self.consumer = nc, stream, consumer
        self.on_message, self.on_conflict = on_message, on_conflict
        self.batch, self.expires_s = batch, expires_s
        self.received = 0
        self._left = 0
        self._done = asyncio.Event()
        self._conflict: str | None = None
        self._inbox = nc.new_inbox()
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def next_subject(self) -> str:
        return f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.consumer}"

    async def start(self) -> None:
        self._subscription = await self.nc.subscribe(
            self._inbox, cb=self._on_msg, pending_msgs_limit=1_000_000
        )
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._subscription is not None:
            try:
                await self._subscription.unsubscribe()
            except Exception:  # the connection is already closed
                logger.debug("unsubscribing the pull inbox failed", exc_info=True)
            self._subscription = None

    async def _on_msg(self, msg: Msg) -> None:
        headers = msg.headers
        status = headers.get(STATUS) if headers else None
        if status is not None:
            if status == HEARTBEAT:
                return
            if status == CONFLICT:
                self._conflict = headers.get("Description", "conflict") if headers else "conflict"
            self._done.set()  # 404 no messages, 408 expired, 409: this request is over
            return
        self.received += 1
        self._left -= 1
        if self._left <= 0:
            self._done.set()
        try:
            self.on_message(msg)
        except Exception:  # one bad message must not stop the feed
            logger.exception("fleet aggregator: handling a message failed")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        request = json.dumps({"batch": self.batch, "expires": int(self.expires_s * 1e9)}).encode()
        while not self._stopping:
            if not self.nc.is_connected:
                await asyncio.sleep(0.05)
                continue
            reconnects = self.nc.stats["reconnects"]
            self._done.clear()
            self._left = self.batch
            try:
                await self.nc.publish(self.next_subject, request, reply=self._inbox)
            except Exception as exc:  # disconnected between the check and the call
                logger.debug("pull request failed: %s", exc)
                await asyncio.sleep(0.05)
                continue
            deadline = loop.time() + self.expires_s + 0.5
            while not self._done.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0 or self.nc.stats["reconnects"] != reconnects:
                    break  # the request is lost with the old connection: send another
                try:
                    await asyncio.wait_for(self._done.wait(), min(remaining, 0.1))
                except asyncio.TimeoutError:
                    pass
            if self._conflict is not None:
                conflict, self._conflict = self._conflict, None
                try:
                    await self.on_conflict(conflict)
                except Exception:  # e.g. NATS went away while recreating: try again later
                    logger.exception("fleet aggregator: handling %r failed", conflict)
                    await asyncio.sleep(1.0)
