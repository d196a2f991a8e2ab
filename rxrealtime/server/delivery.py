"""Which billing ticks the client's TCP really acknowledged, for a connection that died.

The billing clock bills a second once its tick is written to the socket. On a path that
goes dark (a Wi-Fi blackhole) writes still succeed: the kernel queues them and keeps
retransmitting, and when the client gives the connection up, the ticks queued since the
path went dark never reach it. The server would then bill seconds the client never saw
(measured on an impaired veth link: a 30 s blackhole, 132 seconds billed on the old
server session, 11 seen by the client).

So each tick remembers where its frame ends in the connection's byte stream, and the
connection's acknowledged byte count (Linux ``TCP_INFO``, ``tcpi_bytes_acked``) is read
at every tick boundary. When a connection ends without a close handshake, only the
seconds of acknowledged ticks stay billed. :class:`DeliveryBook` is that rule, pure;
:class:`TcpProgress` reads the two counters off a socket (Linux; elsewhere it reads
``None`` and the write-time figure stands).
"""

from __future__ import annotations

import fcntl
import socket
import struct
import sys
import termios
from collections import deque
from typing import Any

__all__ = ["DeliveryBook", "TcpProgress"]

_BYTES_ACKED_AT = 120
"""Offset of ``tcpi_bytes_acked`` (u64) in Linux's ``struct tcp_info`` (since 4.1)."""
_TCP_INFO_LEN = 136


class DeliveryBook:
    """Ticks written (their total seconds and the byte offset where each ends) and the
    ones acknowledged so far."""

    __slots__ = ("_pending", "confirmed", "written")

    def __init__(self) -> None:
        self._pending: deque[tuple[int, int]] = deque()
        self.written = 0
        """Total seconds of the last tick written."""
        self.confirmed = 0
        """Total seconds of the last tick the client's TCP acknowledged."""

    def sent(self, seconds: int, ends_at: int) -> None:
        """A tick announcing ``seconds`` was written; its frame ends at byte ``ends_at``."""
        self.written = seconds
        self._pending.append((seconds, ends_at))

    def acked(self, byte_count: int) -> None:
        """The client acknowledged the first ``byte_count`` bytes of the connection."""
        while self._pending and self._pending[0][1] <= byte_count:
            self.confirmed = self._pending.popleft()[0]

    @property
    def unconfirmed_seconds(self) -> int:
        """Seconds announced by ticks written but never acknowledged."""
        return self.written - self.confirmed


class TcpProgress:
    """The byte counts of one TCP connection: written by the application, acknowledged."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        # asyncio's TransportSocket: getsockopt and fileno, and it is never closed here
        self._sock = sock if sys.platform == "linux" else None

    def acked(self) -> int | None:
        """Bytes the peer acknowledged (``None``: not known here, or the socket is gone)."""
        if self._sock is None or self._sock.fileno() < 0:
            return None
        return _read_acked(self._sock.getsockopt)

    def written(self) -> int | None:
        """Bytes the application has written so far: acknowledged, in the kernel's send
        queue, or still in the transport's buffer."""
        acked = self.acked()
        if acked is None or self._sock is None:
            return None
        try:
            raw = fcntl.ioctl(self._sock.fileno(), termios.TIOCOUTQ, b"\0" * 4)
            queued = int(struct.unpack("i", raw)[0])
        except OSError:
            return None
        return acked + queued + int(self._transport.get_write_buffer_size())


def _read_acked(getsockopt: Any) -> int | None:
    try:
        info = getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except OSError:
        return None
    if len(info) < _BYTES_ACKED_AT + 8:
        return None
    (acked,) = struct.unpack_from("Q", info, _BYTES_ACKED_AT)
    return max(0, int(acked) - 1)  # the SYN counts as one
