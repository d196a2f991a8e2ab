"""Where a process's CPU goes, for the scale suite: by thread, and by library on the main
thread. Used inside the scale client (:mod:`._scale_child`) and the bench server
(:mod:`._server`), each measuring itself.

* :func:`snapshot` reads the process's CPU time, RSS and every thread's CPU time
  (``/proc/self/task/*/stat``), grouped by what the thread does: the asyncio ``main``
  thread, ``encode`` (the loop's default executor, where aiortc encodes each frame),
  ``decode`` (aiortc's decoder thread, one per received track), ``other`` Python threads,
  and ``native`` threads Python does not know (libvpx/libav workers).
* :class:`MainProfile` runs cProfile on the main thread (cProfile sees only the thread
  that enables it) and groups its own time per function by library. Built-ins (numpy,
  PyAV's compiled methods) are charged to their callers, except PyAV's, which count as
  ``av+codec``. Profiling slows the thread it watches, so it runs in a window of its own,
  after the measured ones.

Pure bookkeeping over ``/proc`` and ``pstats``; where ``/proc`` is missing the thread
table is empty and the process totals still hold.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import resource
import sys
import threading
import time
from typing import Any

__all__ = [
    "GROUPS", "MainProfile", "categorize", "process_cpu_s", "rss_bytes", "snapshot", "thread_role",
]  # fmt: skip

GROUPS = (
    "rxrealtime",
    "synthetic source",
    "generated video",
    "aiortc",
    "av+codec",
    "aiohttp",
    "asyncio+other",
)
"""What the main thread's time is grouped into (``generated video`` is the server's tint)."""

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def rss_bytes() -> int:
    """Current resident set size (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def thread_role(name: str, is_main: bool) -> str:
    """The group of a Python thread, from the name its creator gave it."""
    if is_main:
        return "main"
    if name.startswith("asyncio_"):  # the loop's default executor: aiortc's encoders
        return "encode"
    if "decoder" in name:  # "video-decoder" (aiortc 1.10+), "Thread-N (decoder_worker)"
        return "decode"
    return "other"


def _thread_seconds() -> dict[int, float]:
    out: dict[int, float] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as fh:
                # the command name may hold spaces: fields count from after its ")"
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the thread ended meanwhile
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
    return out


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) another process has used, from ``/proc``; ``None``
    when it is gone or this is not Linux."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def snapshot() -> dict[str, Any]:
    """Process CPU seconds, RSS bytes and CPU seconds per thread group, now."""
    roles = {
        t.native_id: thread_role(t.name, t is threading.main_thread())
        for t in threading.enumerate()
    }
    threads: dict[str, float] = {}
    for tid, seconds in _thread_seconds().items():
        role = roles.get(tid, "native")
        threads[role] = threads.get(role, 0.0) + seconds
    return {
        "time_ns": time.monotonic_ns(),
        "cpu_s": time.process_time(),
        "rss": rss_bytes(),
        "threads": threads,
    }


def categorize(filename: str, function: str) -> str | None:
    """The group of a profiled function; ``None`` for one charged to its callers (a
    built-in, or a helper shared by several groups)."""
    path = filename.replace("\\", "/")
    if filename == "~":
        return "av+codec" if "av." in function or "'av" in function else None
    if "/rxrealtime/" in path:
        if path.endswith("/rxrealtime/media.py"):
            # plane_arrays serves the synthetic source and the server's tint alike
            return None if function == "plane_arrays" else "synthetic source"
        if path.endswith("/server/video.py"):
            return "generated video"
        return "rxrealtime"
    for marker, group in (
        ("/aiortc/", "aiortc"),
        ("/aioice/", "aiortc"),
        ("/pylibsrtp/", "aiortc"),
        ("/pyee/", "aiortc"),
        ("/av/", "av+codec"),
        ("/aiohttp/", "aiohttp"),
    ):
        if marker in path:
            return group
    return "asyncio+other"


class MainProfile:
    """cProfile of the calling (main) thread between :meth:`start` and :meth:`stop`."""

    def __init__(self) -> None:
        # CPU time of this thread, not wall time: time spent waiting in epoll is no cost
        self._profile = cProfile.Profile(time.thread_time_ns, 1e-9)

    def start(self) -> None:
        self._profile.enable()

    def stop(self, top: int = 12) -> dict[str, Any]:
        """The main thread's own time: ``{"groups": seconds per group (:data:`GROUPS`),
        "top": [[group, "module:function", seconds], ...]}``, the ``top`` costliest
        functions by their own time (built-ins included, under their callers' group)."""
        self._profile.disable()
        stats: dict[Any, Any] = pstats.Stats(self._profile).stats  # type: ignore[attr-defined]
        totals = dict.fromkeys(GROUPS, 0.0)
        functions: list[tuple[float, str, str]] = []
        for (filename, _, function), (_, _, own, _, callers) in stats.items():
            group = categorize(filename, function)
            if group is not None:
                totals[group] += own
            else:
                # charged to its callers' groups, as the callers split its time; listed
                # under the group that spends most of it
                most = 0.0
                for (c_file, _, c_function), caller in callers.items():
                    c_group = categorize(c_file, c_function) or "asyncio+other"
                    totals[c_group] += caller[2]
                    if group is None or caller[2] > most:
                        group, most = c_group, caller[2]
            module = filename.rsplit("/", 1)[-1].removesuffix(".py")
            functions.append((own, group or "asyncio+other", f"{module}:{function}"))
        functions.sort(reverse=True)
        return {
            "groups": totals,
            "top": [[group, name, round(own, 4)] for own, group, name in functions[:top]],
        }
