"""A de-duplicating work queue: a store is reconciled by one worker at a time, and a burst of
events for it collapses into one more pass.

Two lanes: `add` (a watch event) goes ahead of `add_periodic` (the safety resync, a retry, a
key's own due time). `add_after` queues a key after a delay (the earliest of its timers wins).
A handler that returns False failed: its key is retried after a per-key exponential backoff
(`base_delay` doubling up to `max_delay`), reset by the next success.

`add` may be called from any thread: the queue's state is only ever touched on the event loop
that runs its workers (a foreign thread hands the key over with `call_soon_threadsafe`, which
also wakes the loop).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

StoreKey = tuple[str, str]  # (namespace, name)
Handler = Callable[[StoreKey], Awaitable[bool | None]]


class WorkQueue:
    """Keys waiting to be reconciled; a key queued while in flight is re-run once after."""

    def __init__(self, base_delay: float = 1.0, max_delay: float = 300.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._events: deque[StoreKey] = deque()
        self._periodic: deque[StoreKey] = deque()
        self._pending: dict[StoreKey, bool] = {}  # key: queued in the events lane
        self._in_flight: set[StoreKey] = set()
        self._dirty: set[StoreKey] = set()
        self._failures: dict[StoreKey, int] = {}
        self._timers: dict[StoreKey, tuple[float, asyncio.TimerHandle]] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        try:
            self._bind(asyncio.get_running_loop())
        except RuntimeError:
            pass  # made outside a loop: bound by the first worker

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is None:
            self._loop = loop
            self._loop_thread = threading.get_ident()
            self._wake = asyncio.Event()

    def _call(self, fn: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            fn(*args)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    def add(self, key: StoreKey) -> None:
        """Ask for a reconcile of `key` soon (cheap; duplicates collapse); from any thread."""
        self._call(self._add, key, True)

    def add_periodic(self, key: StoreKey) -> None:
        """Ask for a reconcile of `key` behind every event-driven one; from any thread."""
        self._call(self._add, key, False)

    def add_after(self, key: StoreKey, delay: float) -> None:
        """Queue `key` (periodic lane) after `delay` seconds, unless an earlier timer stands."""
        self._call(self._add_after, key, delay)

    def forget(self, key: StoreKey) -> None:
        """Drop `key`'s timer and failure count (its object is gone); from any thread."""
        self._call(self._forget, key)

    def failures(self, key: StoreKey) -> int:
        """How many times in a row `key` has failed."""
        return self._failures.get(key, 0)

    def _forget(self, key: StoreKey) -> None:
        self._failures.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer[1].cancel()

    def _add_after(self, key: StoreKey, delay: float) -> None:
        loop = self._loop or asyncio.get_event_loop()
        due = loop.time() + max(0.0, delay)
        current = self._timers.get(key)
        if current is not None:
            if current[0] <= due:
                return
            current[1].cancel()
        self._timers[key] = (due, loop.call_at(due, self._fire, key))

    def _fire(self, key: StoreKey) -> None:
        self._timers.pop(key, None)
        self._add(key, False)

    def _add(self, key: StoreKey, event: bool) -> None:
        if key in self._in_flight:
            self._dirty.add(key)
            return
        if key in self._pending:
            if event and not self._pending[key]:
                self._pending[key] = True
                self._events.append(key)  # promoted; the periodic entry is skipped when taken
            return
        self._pending[key] = event
        (self._events if event else self._periodic).append(key)
        if self._wake is not None:
            self._wake.set()

    def __len__(self) -> int:
        return len(self._pending) + len(self._in_flight)

    async def _take(self) -> StoreKey:
        assert self._wake is not None
        while True:
            while self._events or self._periodic:
                key = self._events.popleft() if self._events else self._periodic.popleft()
                if key in self._pending:  # not a duplicate entry of a key already taken
                    return key
            self._wake.clear()
            await self._wake.wait()

    async def worker(self, handle: Handler) -> None:
        """Take keys forever and run `handle` on each; False from it means: retry with backoff.

        Errors are the handler's to report; an exception counts as a failure.
        """
        self._bind(asyncio.get_running_loop())
        while True:
            key = await self._take()
            del self._pending[key]
            self._in_flight.add(key)
            ok: bool | None = False
            try:
                ok = await handle(key)
            finally:
                self._in_flight.discard(key)
                if ok is False:
                    failures = self._failures.get(key, 0) + 1
                    self._failures[key] = failures
                    delay = min(self.max_delay, self.base_delay * 2 ** (failures - 1))
                    self._add_after(key, delay)
                else:
                    self._failures.pop(key, None)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self._add(key, True)


# The start of the line the operator logs once every store it served at start is re-verified
# (the restart benchmark and tests wait for it).
RE_VERIFIED = "first pass done"


class FirstPass:
    """Which of the stores served at start have been reconciled once since then.

    The operator logs when the last of them is done: how long a restart took to re-verify
    every store (all it reads then comes from its caches). A store deleted meanwhile is
    dropped with `done`; a failed reconcile does not count (it is retried).
    """

    def __init__(self) -> None:
        self._waiting: set[StoreKey] | None = None
        self._count = 0
        self._began = 0.0

    def begin(self, keys: Iterable[StoreKey], now: float) -> None:
        """The stores served when the caches first listed (only the first call counts)."""
        if self._waiting is None:
            self._waiting = set(keys)
            self._count = len(self._waiting)
            self._began = now

    def done(self, key: StoreKey, now: float) -> str | None:
        """`key` reconciled (or deleted): a message when it was the last one waiting."""
        waiting = self._waiting
        if not waiting or key not in waiting:
            return None
        waiting.discard(key)
        if waiting:
            return None
        took = now - self._began
        return (
            f"{RE_VERIFIED}: every store served at start re-verified ({self._count}), "
            f"{took:.2f} s after the caches listed"
        )
