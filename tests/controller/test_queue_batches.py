"""A worker that takes several keys at once (issue 11: a restart's first pass made one trip
from the loop to a thread and back per store): what it takes, what it gives back, and that
nothing the one-key worker promised is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from dataward.controller.queue import BatchHandler, StoreKey, WorkQueue


def keys(*names: str) -> list[StoreKey]:
    return [("ns", name) for name in names]


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(scenario)


def recording(taken: list[list[StoreKey]]) -> BatchHandler:
    """A handler that keeps each batch it is given and starts, and succeeds in, every key."""

    async def handle(batch: list[StoreKey]) -> dict[StoreKey, bool | None]:
        taken.append(batch)
        return dict.fromkeys(batch, True)

    return handle


def test_a_backlog_is_shared_out_and_a_lone_key_goes_alone() -> None:
    taken: list[list[StoreKey]] = []

    async def scenario() -> None:
        queue = WorkQueue()
        handle = recording(taken)
        for key in keys(*(f"s{i}" for i in range(10))):
            queue.add_periodic(key)
        task = asyncio.create_task(queue.batch_worker(handle, most=4, share=2))
        for _ in range(20):
            await asyncio.sleep(0)
        queue.add(("ns", "late"))
        for _ in range(20):
            await asyncio.sleep(0)
        task.cancel()

    run(scenario())
    # 10 waiting, 2 workers' share: 5, capped at 4; then 6 -> 3, 3 -> 2, 1 -> 1; a lone key.
    assert [len(b) for b in taken] == [4, 3, 2, 1, 1], taken
    assert [k for b in taken for k in b] == [*keys(*(f"s{i}" for i in range(10))), ("ns", "late")]


def starting_first(
    started: int, meanwhile: Callable[[], None], seen: list[StoreKey]
) -> BatchHandler:
    """A handler that, on its first batch, calls `meanwhile` (keys added while the batch is
    in flight) and starts only the first `started` keys; every later batch whole. `seen`:
    the keys it started, in order."""
    first = True

    async def handle(batch: list[StoreKey]) -> dict[StoreKey, bool | None]:
        nonlocal first
        if first:
            first = False
            meanwhile()
            batch = batch[:started]
        seen.extend(batch)
        return dict.fromkeys(batch, True)

    return handle


def test_keys_not_started_go_back_to_the_head_of_their_lane_in_order() -> None:
    seen: list[StoreKey] = []

    async def scenario() -> None:
        queue = WorkQueue()
        handle = starting_first(2, lambda: queue.add_periodic(("ns", "behind")), seen)
        for key in keys("a", "b", "c", "d"):
            queue.add_periodic(key)
        task = asyncio.create_task(queue.batch_worker(handle, most=4))
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(queue) == 0
        task.cancel()

    run(scenario())
    assert seen == keys("a", "b", "c", "d", "behind")


def test_an_event_for_a_key_taken_but_not_started_puts_it_ahead_and_runs_it_once() -> None:
    seen: list[StoreKey] = []

    async def scenario() -> None:
        queue = WorkQueue()

        def meanwhile() -> None:
            queue.add_periodic(("ns", "p"))
            queue.add(("ns", "c"))  # an event for "c", taken, not started: dirty

        handle = starting_first(1, meanwhile, seen)
        for key in keys("a", "b", "c"):
            queue.add_periodic(key)
        task = asyncio.create_task(queue.batch_worker(handle, most=3))
        for _ in range(20):
            await asyncio.sleep(0)
        task.cancel()

    run(scenario())
    # "c" is given back to the events' lane (ahead of "b", which goes back to the periodic
    # lane's head), and is reconciled once: the event is what it was given back for.
    assert seen == keys("a", "c", "b", "p"), seen


def test_a_failed_key_of_a_batch_is_retried_alone_after_its_backoff() -> None:
    runs: list[list[StoreKey]] = []

    async def scenario() -> None:
        queue = WorkQueue(base_delay=0.02, max_delay=0.02)

        async def handle(batch: list[StoreKey]) -> dict[StoreKey, bool | None]:
            runs.append(batch)
            if len(runs) == 1:
                return {("ns", "a"): True, ("ns", "b"): False}
            return dict.fromkeys(batch, True)

        for key in keys("a", "b"):
            queue.add_periodic(key)
        task = asyncio.create_task(queue.batch_worker(handle, most=2))
        await asyncio.sleep(0.005)
        assert queue.failures(("ns", "b")) == 1 and queue.failures(("ns", "a")) == 0
        await asyncio.sleep(0.08)
        assert queue.failures(("ns", "b")) == 0
        task.cancel()

    run(scenario())
    assert runs == [keys("a", "b"), keys("b")], runs


def test_an_exception_of_the_handler_fails_every_key_it_took() -> None:
    async def scenario() -> None:
        queue = WorkQueue(base_delay=30.0)

        async def handle(batch: list[StoreKey]) -> dict[StoreKey, bool | None]:
            raise RuntimeError("the handler broke")

        for key in keys("a", "b"):
            queue.add_periodic(key)
        task = asyncio.create_task(queue.batch_worker(handle, most=2))
        await asyncio.sleep(0.01)
        # As the one-key worker: the error ends the worker, and each key taken is retried
        # after its backoff (none is left in flight, none counted as done).
        assert task.done() and isinstance(task.exception(), RuntimeError)
        assert [queue.failures(k) for k in keys("a", "b")] == [1, 1]
        assert len(queue) == 0

    run(scenario())


def test_a_key_in_both_lanes_is_taken_once_into_a_batch() -> None:
    taken: list[list[StoreKey]] = []

    async def scenario() -> None:
        queue = WorkQueue()
        handle = recording(taken)
        queue.add_periodic(("ns", "x"))
        queue.add_periodic(("ns", "y"))
        queue.add(("ns", "x"))  # promoted: an entry in each lane
        task = asyncio.create_task(queue.batch_worker(handle, most=3))
        for _ in range(10):
            await asyncio.sleep(0)
        task.cancel()

    run(scenario())
    assert taken == [keys("x", "y")], taken
