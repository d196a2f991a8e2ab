"""Hot streams: the observables a session publishes, and bridges to ``async`` code.

:class:`HotStream` is a ``reactivex.Observable``, so every reactivex operator accepts
it, but it is leaner than a ``Subject`` on the hot path: the session emits from the
asyncio loop's thread only, so there is no lock, and the observer list is an immutable
tuple replaced on (rare) subscribe/dispose instead of copied on every value.

Semantics users rely on (DESIGN.md):

* values are never ``on_error``: a failure is a value on ``session.errors``;
* a subscriber that raises is isolated: the others still get the value and the failure
  is reported (as :class:`~rxrealtime.SubscriberError`) to the stream's error sink;
* ``complete()`` ends the stream for good; late subscribers are completed at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, Literal, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from .exceptions import ConfigError, SessionClosed

__all__ = ["DEFAULT_MAXSIZE", "HotStream", "LatestStream", "StateStream", "next_value", "values"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

SubscriberErrorSink = Callable[[str, Exception], None]


def _log_subscriber_error(stream: str, error: Exception) -> None:
    logger.error("subscriber of %s raised", stream, exc_info=error)


def _ignore(*_: Any) -> None:
    pass


class _Callbacks(Generic[T]):
    """An observer made of plain callbacks, with ``on_next`` stored as the user's function.

    ``emit`` then calls the subscriber's function directly: no ``AutoDetachObserver``
    frame per value, which is most of what a subscriber costs on the hot path.
    """

    __slots__ = ("_completed", "on_next")

    def __init__(
        self, on_next: Callable[[T], Any] | None, on_completed: Callable[[], Any] | None
    ) -> None:
        self.on_next = on_next or _ignore
        self._completed = on_completed or _ignore

    def on_error(self, error: Exception) -> None:  # pragma: no cover - streams never fail
        raise error

    def on_completed(self) -> None:
        self._completed()


class HotStream(Observable[T], Generic[T]):
    """A hot observable fed by :meth:`emit`; see the module docstring for its rules."""

    def __init__(self, name: str, on_subscriber_error: SubscriberErrorSink | None = None) -> None:
        super().__init__()
        self.name = name
        self.observers: tuple[abc.ObserverBase[T], ...] = ()
        """The current subscribers, read-only: an immutable tuple replaced on (un)subscribe,
        so the hot path can test ``if stream.observers:`` without a call."""
        self.deliver: Callable[[T], Any] | None = None
        """What a hot path calls with a value, rebuilt on (un)subscribe: ``None`` with no
        subscriber; with exactly one, its own ``on_next`` (for a plain callback, the user's
        function: no loop and no extra frame); else :meth:`emit`, and always :meth:`emit`
        for a stream whose ``emit`` does more (:class:`StateStream`, :class:`LatestStream`
        keep the value). The caller isolates a failure as :meth:`emit` does:
        ``except Exception as exc: subscriber_failed(exc)``."""
        self._completed = False
        self._on_subscriber_error = on_subscriber_error or _log_subscriber_error
        self._set_observers(())

    def __repr__(self) -> str:
        return f"<HotStream {self.name!r} subscribers={len(self.observers)}>"

    @property
    def completed(self) -> bool:
        """True once :meth:`complete` ran: the stream emits nothing more."""
        return self._completed

    @property
    def subscriber_count(self) -> int:
        """How many subscribers the stream has now."""
        return len(self.observers)

    def subscribe(  # type: ignore[override]
        self,
        on_next: abc.ObserverBase[T] | Callable[[T], Any] | None = None,
        on_error: Callable[[Exception], Any] | None = None,
        on_completed: Callable[[], Any] | None = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        """Subscribe like any ``Observable``; plain callbacks take a faster path.

        ``on_error`` is accepted for compatibility and never called: errors are values on
        ``session.errors``.
        """
        if on_next is not None and callable(getattr(on_next, "on_next", None)):
            return super().subscribe(on_next, scheduler=scheduler)
        return self._subscribe_core(_Callbacks(on_next, on_completed), scheduler)  # type: ignore[arg-type]

    def _subscribe_core(
        self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        if self._completed:
            observer.on_completed()
            return Disposable()
        self._set_observers((*self.observers, observer))

        def dispose() -> None:
            self._set_observers(tuple(o for o in self.observers if o is not observer))

        return Disposable(dispose)

    def _set_observers(self, observers: tuple[abc.ObserverBase[T], ...]) -> None:
        self.observers = observers
        if type(self).emit is not HotStream.emit:  # its emit does more (keeps the value)
            self.deliver = self.emit
        elif not observers:
            self.deliver = None
        elif len(observers) == 1:
            self.deliver = observers[0].on_next
        else:
            self.deliver = self.emit

    def emit(self, value: T) -> None:
        """Deliver ``value`` to every current subscriber, isolating those that raise."""
        for observer in self.observers:
            try:
                observer.on_next(value)
            except Exception as exc:
                self.subscriber_failed(exc)

    def complete(self) -> None:
        """End the stream: every subscriber gets ``on_completed``, later ones at once."""
        if self._completed:
            return
        self._completed = True
        observers = self.observers
        self._set_observers(())
        for observer in observers:
            try:
                observer.on_completed()
            except Exception as exc:
                self.subscriber_failed(exc)

    def subscriber_failed(self, exc: Exception) -> None:
        """Report that a subscriber raised ``exc`` (to the stream's error sink); for code
        that delivers to :attr:`observers` itself on a hot path."""
        try:
            self._on_subscriber_error(self.name, exc)
        except Exception:  # the error sink itself must never break delivery
            logger.exception("error sink of %s raised", self.name)

    def __aiter__(self) -> AsyncIterator[T]:
        return values(self)

    def __await__(self) -> Any:
        # reactivex's Observable.__await__ waits for the *last* value, i.e. until the
        # session closes: almost never what ``await session.generation_ticks`` meant.
        raise TypeError(
            f"a hot stream cannot be awaited; use `await stream.next()` for the next value "
            f"or `async for` to iterate ({self.name!r})"
        )

    async def next(self, timeout: float | None = None) -> T:
        """The next value of the stream (for a state stream: its current value).

        Raises :class:`~rxrealtime.SessionClosed` if the stream completes first and the
        builtin ``TimeoutError`` after ``timeout`` seconds (see :func:`next_value`).
        """
        return await next_value(self, timeout=timeout)


class StateStream(HotStream[T]):
    """A hot stream with a current value that is replayed to each new subscriber."""

    def __init__(
        self, name: str, initial: T, on_subscriber_error: SubscriberErrorSink | None = None
    ) -> None:
        super().__init__(name, on_subscriber_error)
        self._value = initial

    @property
    def value(self) -> T:
        """The current value (the initial one until the first change)."""
        return self._value

    def _subscribe_core(
        self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        if not self._completed:
            try:
                observer.on_next(self._value)
            except Exception as exc:
                self.subscriber_failed(exc)
        return super()._subscribe_core(observer, scheduler)

    def emit(self, value: T) -> None:
        """Set the current value and publish it if it changed."""
        if value == self._value:
            return
        self._value = value
        super().emit(value)


class LatestStream(HotStream[T]):
    """A hot stream that replays its latest value (if any) to each new subscriber, like
    RxJS ``shareReplay(1)``: subscribing after ``connect()`` still sees the session id,
    the current queue position, the latest stats. Unlike :class:`StateStream` it has no
    initial value and publishes every value, equal or not."""

    _NONE: Any = object()

    def __init__(self, name: str, on_subscriber_error: SubscriberErrorSink | None = None) -> None:
        super().__init__(name, on_subscriber_error)
        self._latest: Any = self._NONE

    @property
    def latest(self) -> T | None:
        """The latest value, or ``None`` before the first."""
        return None if self._latest is self._NONE else self._latest  # type: ignore[no-any-return]

    def _subscribe_core(
        self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        if not self._completed and self._latest is not self._NONE:
            try:
                observer.on_next(self._latest)
            except Exception as exc:
                self.subscriber_failed(exc)
        return super()._subscribe_core(observer, scheduler)

    def emit(self, value: T) -> None:
        """Remember ``value`` as the latest and deliver it to every current subscriber."""
        self._latest = value
        super().emit(value)


Overflow = Literal["drop_oldest", "keep_latest"]

DEFAULT_MAXSIZE = 100
"""How many values ``async for`` holds for a slow consumer before it drops some."""


def values(
    source: Observable[T], *, maxsize: int = DEFAULT_MAXSIZE, overflow: Overflow = "drop_oldest"
) -> AsyncIterator[T]:
    """Iterate over any observable with ``async for``; ends when it completes.

    At most ``maxsize`` values wait for a slow consumer (``0``: no bound), so iterating
    ``session.frames`` slowly cannot grow memory without limit. When full, ``overflow``
    says what goes: ``"drop_oldest"`` (the default: the consumer sees the newest
    ``maxsize`` values) or ``"keep_latest"`` (only the newest value waits: right for
    "current value" streams). Completion and errors are never dropped. Breaking out of
    the loop unsubscribes.
    """
    if maxsize < 0:
        raise ConfigError("maxsize must be 0 (no bound) or more")
    if overflow not in ("drop_oldest", "keep_latest"):
        raise ConfigError("overflow must be 'drop_oldest' or 'keep_latest'")
    bound = 1 if overflow == "keep_latest" else maxsize

    async def iterate() -> AsyncIterator[T]:
        pending: deque[tuple[int, Any]] = deque()
        ready = asyncio.Event()

        def put(kind: int, item: Any) -> None:
            if kind == 0 and bound and len(pending) >= bound:
                pending.popleft()
            pending.append((kind, item))
            ready.set()

        subscription = source.subscribe(
            on_next=lambda v: put(0, v),
            on_error=lambda e: put(1, e),
            on_completed=lambda: put(2, None),
        )
        try:
            while True:
                while not pending:
                    ready.clear()
                    await ready.wait()
                kind, item = pending.popleft()
                if kind == 0:
                    yield item
                elif kind == 1:
                    raise item
                else:
                    return
        finally:
            subscription.dispose()

    return iterate()


async def next_value(source: Observable[T], timeout: float | None = None) -> T:
    """Await the next value of any observable.

    Raises :class:`~rxrealtime.SessionClosed` if it completes first, the source's own
    error if it fails first, and the builtin ``TimeoutError`` after ``timeout`` seconds on
    every supported Python (on 3.10 ``asyncio.wait_for`` raises ``asyncio.TimeoutError``,
    a different class there, which is converted).
    """
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()

    def on_next(value: T) -> None:
        if not future.done():
            future.set_result(value)

    def on_error(error: Exception) -> None:
        if not future.done():
            future.set_exception(error)

    def on_completed() -> None:
        if not future.done():
            future.set_exception(SessionClosed("the stream completed before a value arrived"))

    subscription = source.subscribe(on_next, on_error, on_completed)
    try:
        return await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
        if not future.cancelled():
            raise  # the source's own error (say an AckTimeout), not our timeout
        raise TimeoutError(f"no value within {timeout} s") from None
    finally:
        subscription.dispose()
