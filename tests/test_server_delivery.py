"""The server keeps billed only the ticks a dead connection's client acknowledged:
the rule without a socket, then the byte counts read off a real loopback TCP socket."""

from __future__ import annotations

import asyncio
import sys

import pytest

from rxrealtime.server.delivery import DeliveryBook, TcpProgress


def test_only_acknowledged_ticks_are_confirmed() -> None:
    book = DeliveryBook()
    for seconds, ends_at in ((1, 100), (2, 200), (3, 300)):
        book.sent(seconds, ends_at)
    book.acked(250)  # tick 3's frame is only partly acknowledged
    assert (book.written, book.confirmed, book.unconfirmed_seconds) == (3, 2, 1)
    book.acked(150)  # counts never go back: nothing changes
    assert book.confirmed == 2
    book.acked(300)
    assert book.unconfirmed_seconds == 0


@pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO's bytes_acked is Linux's")
async def test_the_byte_counts_of_a_real_connection() -> None:
    received = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(5000)
        received.set()
        await reader.read()  # until the client closes
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    progress = TcpProgress(writer.transport)
    writer.write(b"x" * 5000)
    assert progress.written() == 5000  # acknowledged, queued or buffered: all of it
    await received.wait()
    await asyncio.sleep(0.05)
    assert progress.acked() == 5000
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    assert TcpProgress(None).acked() is None  # no transport: not known, not zero
