"""A de-duplicating work queue: a store is reconciled by one worker at a time, and a burst of
events for it collapses into one more pass."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

StoreKey = tuple[str, str]  # (namespace, name)


class WorkQueue:
    """Keys waiting to be reconciled; a key queued while in flight is re-run once after."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[StoreKey] = asyncio.Queue()
        self._pending: set[StoreKey] = set()
        self._in_flight: set[StoreKey] = set()
        self._dirty: set[StoreKey] = set()

    def add(self, key: StoreKey) -> None:
        """Ask for a reconcile of `key` (cheap; duplicates collapse)."""
        if key in self._in_flight:
            self._dirty.add(key)
        elif key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    def __len__(self) -> int:
        return len(self._pending) + len(self._in_flight)

    async def worker(self, handle: Callable[[StoreKey], Awaitable[None]]) -> None:
        """Take keys forever and run `handle` on each; errors are the handler's to report."""
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
                    self.add(key)
                self._queue.task_done()
