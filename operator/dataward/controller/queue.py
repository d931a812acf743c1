"""A de-duplicating work queue: a store is reconciled by one worker at a time, and a burst of
events for it collapses into one more pass.

`add` may be called from any thread: the queue's state is only ever touched on the event loop
that runs its workers (a foreign thread hands the key over with `call_soon_threadsafe`, which
also wakes the loop). `asyncio.Queue` itself is not thread-safe.

Not (yet) a client-go work queue: there is no per-key rate limit or exponential backoff; a
failed key is retried on its next event or resync.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

StoreKey = tuple[str, str]  # (namespace, name)


class WorkQueue:
    """Keys waiting to be reconciled; a key queued while in flight is re-run once after."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[StoreKey] = asyncio.Queue()
        self._pending: set[StoreKey] = set()
        self._in_flight: set[StoreKey] = set()
        self._dirty: set[StoreKey] = set()
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

    def add(self, key: StoreKey) -> None:
        """Ask for a reconcile of `key` (cheap; duplicates collapse); safe from any thread."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self._add(key)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._add, key)

    def _add(self, key: StoreKey) -> None:
        if key in self._in_flight:
            self._dirty.add(key)
        elif key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    def __len__(self) -> int:
        return len(self._pending) + len(self._in_flight)

    async def worker(self, handle: Callable[[StoreKey], Awaitable[None]]) -> None:
        """Take keys forever and run `handle` on each; errors are the handler's to report."""
        self._bind(asyncio.get_running_loop())
        while True:
            key = await self._queue.get()
            self._pending.discard(key)
            self._in_flight.add(key)
            try:
                await handle(key)
            finally:
                self._in_flight.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self._add(key)
                self._queue.task_done()
