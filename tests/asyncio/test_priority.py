"""Codec threads are lowered below the event loop; nothing else is touched."""

from __future__ import annotations

import os
import threading

import pytest
from conftest import wait_until

import rxrealtime as rt
from rxrealtime.asyncio.priority import CodecThreads, is_codec_thread

pytestmark = pytest.mark.skipif(not hasattr(os, "setpriority"), reason="needs os.setpriority")


def nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def test_only_codec_threads_are_lowered() -> None:
    stop = threading.Event()
    threads = [threading.Thread(target=stop.wait, name=name, daemon=True)
               for name in ("video-decoder", "asyncio_7", "my-worker")]  # fmt: skip
    for thread in threads:
        thread.start()
    try:
        sweeper = CodecThreads(nice=7)
        before = {t.name: nice_of(t.native_id or 0) for t in threads}
        assert sweeper.sweep() >= 2
        after = {t.name: nice_of(t.native_id or 0) for t in threads}
        assert after["video-decoder"] == after["asyncio_7"] == 7
        assert after["my-worker"] == before["my-worker"]
        assert nice_of(threading.main_thread().native_id or 0) == os.getpriority(
            os.PRIO_PROCESS, 0
        )  # the loop's thread keeps the process's priority
        assert sweeper.sweep() == 0  # once is enough
    finally:
        stop.set()


def test_codec_thread_names() -> None:
    assert is_codec_thread("asyncio_0") and is_codec_thread("video-decoder")
    assert is_codec_thread("Thread-3 (decoder_worker)")
    assert not is_codec_thread("MainThread") and not is_codec_thread("my-worker")


async def test_a_sessions_codec_threads_run_at_its_codec_nice() -> None:
    async with rt.serve_embedded() as server:
        session = rt.Session(server.url, api_key=server.api_key, codec_nice=12)
        frames: list[object] = []
        session.frames.subscribe(frames.append)
        async with session.connect(local_track=rt.media.SyntheticTrack(64, 48)):
            await wait_until(lambda: len(frames) >= 5)
            await wait_until(lambda: any(
                "decoder" in t.name and t.native_id and nice_of(t.native_id) == 12
                for t in threading.enumerate()
            ))  # fmt: skip
