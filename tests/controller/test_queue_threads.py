"""The work queue and the kopf handlers are safe to use from any thread (issue 10, item 9).

`asyncio.Queue` is not thread-safe: a `put_nowait` from a foreign thread appends the waiting
consumer's wake-up to the loop's ready list without waking the loop, so the consumer sleeps
until something else (a timer, another event) happens to wake the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from typing import Any

from dataward.controller.operator import build_registry
from dataward.controller.queue import StoreKey, WorkQueue


def test_a_key_added_from_another_thread_wakes_a_waiting_worker_at_once() -> None:
    handled: list[StoreKey] = []

    async def scenario() -> float:
        queue = WorkQueue()
        done = asyncio.Event()

        async def handle(key: StoreKey) -> None:
            handled.append(key)
            done.set()

        worker = asyncio.create_task(queue.worker(handle))
        added_at: list[float] = []

        def add_later() -> None:
            time.sleep(0.2)  # by now the worker waits on an empty queue and the loop idles
            added_at.append(time.monotonic())
            queue.add(("ns", "a"))

        adder = threading.Thread(target=add_later)
        adder.start()
        # The only timer on the loop: if the add does not wake the loop, this does, 5 s later.
        await asyncio.wait_for(done.wait(), timeout=5)
        elapsed = time.monotonic() - added_at[0]
        adder.join()
        worker.cancel()
        return elapsed

    elapsed = asyncio.run(scenario())
    assert handled == [("ns", "a")]
    assert elapsed < 1.0, f"the worker slept {elapsed:.1f} s: the add did not wake the loop"


def test_adds_from_many_threads_lose_no_key_and_duplicate_none() -> None:
    seen: list[StoreKey] = []

    async def scenario() -> None:
        queue = WorkQueue()

        async def handle(key: StoreKey) -> None:
            seen.append(key)

        worker = asyncio.create_task(queue.worker(handle))
        await asyncio.sleep(0.01)

        def add_many(prefix: str) -> None:
            for i in range(200):
                queue.add((prefix, str(i)))

        threads = [threading.Thread(target=add_many, args=(f"ns{t}",)) for t in range(4)]
        for thread in threads:
            thread.start()
        await asyncio.to_thread(lambda: [t.join() for t in threads])
        for _ in range(200):
            if len(seen) >= 800:
                break
            await asyncio.sleep(0.01)
        worker.cancel()

    asyncio.run(scenario())
    assert sorted(seen) == sorted({(f"ns{t}", str(i)) for t in range(4) for i in range(200)})


class _Reconciler:
    """Only what build_registry's handlers call."""

    kube: Any = None

    def stores_of_policy(self, name: str) -> list[StoreKey]:
        return [("ns", "uses-" + name)]

    def stores_with_label(self, namespace: str, label: str) -> list[StoreKey]:
        return [(namespace, label)]


def test_every_kopf_handler_runs_on_the_event_loop_not_in_kopfs_thread_pool() -> None:
    async def scenario() -> list[Any]:
        queue, policies = WorkQueue(), WorkQueue()
        registry = build_registry(queue, policies, _Reconciler())  # type: ignore[arg-type]
        return [
            *registry._watching.get_all_handlers(),
            *registry._activities.get_all_handlers(),
        ]

    handlers = asyncio.run(scenario())
    assert handlers
    sync = [h.id for h in handlers if not inspect.iscoroutinefunction(h.fn)]
    # kopf runs plain functions in its executor, where they would touch the asyncio queue.
    assert sync == [], f"handlers kopf would run in a thread: {sync}"
