"""The work queue and the kopf handlers are safe to use from any thread (issue 10, item 9).

`asyncio.Queue` is not thread-safe: a `put_nowait` from a foreign thread appends the waiting
consumer's wake-up to the loop's ready list without waking the loop, so the consumer sleeps
until something else (a timer, another event) happens to wake the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import selectors
import threading
from typing import Any

from dataward.controller.operator import build_registry
from dataward.controller.queue import StoreKey, WorkQueue


class _IdleSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The loop's selector; says when the loop blocks with nothing to do (no timer, nothing
    ready: `select(None)`), which only a file descriptor, such as the loop's self-pipe that
    `call_soon_threadsafe` writes to, can end."""

    def __init__(self) -> None:
        super().__init__()
        self.idle = threading.Event()

    def select(self, timeout: float | None = None) -> Any:
        if timeout is None:
            self.idle.set()
        return super().select(timeout)


def test_a_key_added_from_another_thread_wakes_a_waiting_worker_at_once() -> None:
    """No sleep and no time bound: the key is added only once the loop has blocked with no
    timer, and the loop wakes for nothing but that add. Should it not, the adder wakes the
    loop itself after a long while (a rescue, so the test ends) and the order shows it."""
    selector = _IdleSelector()
    loop = asyncio.SelectorEventLoop(selector)
    handled = threading.Event()
    order: list[str] = []

    async def scenario() -> None:
        queue = WorkQueue()
        done = asyncio.Event()

        async def handle(key: StoreKey) -> None:
            order.append(f"handled {key[1]}")
            handled.set()
            done.set()

        worker = asyncio.create_task(queue.worker(handle))

        def add_when_idle() -> None:
            selector.idle.wait()
            selector.idle.clear()
            queue.add(("ns", "a"))
            if not handled.wait(timeout=60):
                order.append("rescued")
                loop.call_soon_threadsafe(lambda: None)  # the add did not wake the loop

        adder = threading.Thread(target=add_when_idle)
        adder.start()
        await done.wait()  # no timeout: the loop's only way out of select() is a wake-up
        await asyncio.to_thread(adder.join)
        worker.cancel()

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert order == ["handled a"], f"the add did not wake the loop: {order}"


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
