"""The asyncio shell around the sans-I/O core: sockets, tasks, timers and futures.

:mod:`~rxrealtime.asyncio.shell` carries out what :mod:`rxrealtime.core` decides;
:mod:`~rxrealtime.asyncio.signaling` owns the WebSocket and its read loop (the hot path),
:mod:`~rxrealtime.asyncio.link` one server session's socket and media,
:mod:`~rxrealtime.asyncio.watch_stream` a LiveKit viewer's credential request, and
:mod:`~rxrealtime.asyncio.timings` phase and stall timing. Loaded on a session's first
``connect()``, never at ``import rxrealtime``.
"""
