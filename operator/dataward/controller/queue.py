"""A de-duplicating work queue: a store is reconciled by one worker at a time, and a burst of
events for it collapses into one more pass.

Two lanes: `add` (a watch event) goes ahead of `add_periodic` (the safety resync, a retry, a
key's own due time). `add_after` queues a key after a delay (the earliest of its timers wins).
A handler that returns False failed: its key is retried after a per-key exponential backoff
(`base_delay` doubling up to `max_delay`), reset by the next success.

`add` may be called from any thread: the queue's state is only ever touched on the event loop
that runs its workers (a foreign thread hands the key over with `call_soon_threadsafe`, which
also wakes the loop).

A worker may take several keys at once (`batch_worker`) when many wait: its handler runs them
one after another in one trip to a thread, and gives back, at the head of their lane, those
it did not start. A restart's first pass (10,000 stores with nothing to do) made one trip
from the loop to a thread and back per store, about a tenth of its CPU (issue 11).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

StoreKey = tuple[str, str]  # (namespace, name)
Handler = Callable[[StoreKey], Awaitable[bool | None]]
# Given the keys taken, what became of those it started (key: its handler's answer, as
# Handler's); a key it did not start is given back to the queue.
BatchHandler = Callable[[list[StoreKey]], Awaitable[dict[StoreKey, bool | None]]]


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
            key = self._take_now()
            if key is not None:
                return key
            self._wake.clear()
            await self._wake.wait()

    def _take_now(self) -> StoreKey | None:
        """The next key waiting (events first), or None: none waits."""
        while self._events or self._periodic:
            key = self._events.popleft() if self._events else self._periodic.popleft()
            if key in self._pending:  # not a duplicate entry of a key already taken
                return key
        return None

    async def worker(self, handle: Handler) -> None:
        """Take keys forever and run `handle` on each; False from it means: retry with backoff.

        Errors are the handler's to report; an exception counts as a failure.
        """

        async def one(keys: list[StoreKey]) -> dict[StoreKey, bool | None]:
            return {keys[0]: await handle(keys[0])}

        await self.batch_worker(one, most=1)

    async def batch_worker(self, handle: BatchHandler, most: int, share: int = 1) -> None:
        """Take up to `most` keys at a time (their `share`-th part of those waiting, so that
        `share` workers divide a backlog, and a single key when few wait) and run `handle` on
        them; per key as `worker` does. The keys it did not start go back to the head of
        their lane (an event that came for one meanwhile puts it in the events' lane); an
        exception counts as a failure of every key taken."""
        self._bind(asyncio.get_running_loop())
        while True:
            key: StoreKey | None = await self._take()
            waiting = len(self._pending)
            want = min(most, max(1, -(-waiting // max(1, share))))
            # Each key leaves `_pending` as it is taken: a second entry of it (promoted to
            # the events' lane) is then skipped, as `_take_now` skips any taken key's.
            lanes: dict[StoreKey, bool] = {}
            while key is not None:
                lanes[key] = self._pending.pop(key)
                key = self._take_now() if len(lanes) < want else None
            keys = list(lanes)
            self._in_flight.update(keys)
            results: dict[StoreKey, bool | None] | None = None
            try:
                results = await handle(keys)
            finally:
                unstarted = [] if results is None else [k for k in keys if k not in results]
                for key in reversed(unstarted):
                    self._in_flight.discard(key)
                    event = lanes[key] or key in self._dirty
                    self._dirty.discard(key)
                    self._pending[key] = event
                    (self._events if event else self._periodic).appendleft(key)
                for key in keys:
                    if key not in self._in_flight:
                        continue  # given back
                    self._in_flight.discard(key)
                    self._done(key, False if results is None else results[key])
                if unstarted and self._wake is not None:
                    self._wake.set()

    def _done(self, key: StoreKey, ok: bool | None) -> None:
        """`key`'s handler answered `ok` (False: failed, retried after its backoff)."""
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
        self.finished = asyncio.Event()  # set when the last of them is done (or none were)

    def begin(self, keys: Iterable[StoreKey], now: float) -> None:
        """The stores served when the caches first listed (only the first call counts)."""
        if self._waiting is None:
            self._waiting = set(keys)
            self._count = len(self._waiting)
            self._began = now
            if not self._waiting:
                self.finished.set()

    def done(self, key: StoreKey, now: float) -> str | None:
        """`key` reconciled (or deleted): a message when it was the last one waiting."""
        waiting = self._waiting
        if not waiting or key not in waiting:
            return None
        waiting.discard(key)
        if waiting:
            return None
        self.finished.set()
        took = now - self._began
        return (
            f"{RE_VERIFIED}: every store served at start re-verified ({self._count}), "
            f"{took:.2f} s after the caches listed"
        )
