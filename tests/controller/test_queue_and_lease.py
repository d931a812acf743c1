"""The work queue's de-duplication and the Lease's expiry rule."""

from __future__ import annotations

import asyncio
import itertools

from dataward.controller.leader import lease_is_free
from dataward.controller.queue import StoreKey, WorkQueue


def test_queue_collapses_duplicates_and_reruns_keys_changed_in_flight() -> None:
    seen: list[StoreKey] = []

    async def scenario() -> None:
        queue = WorkQueue()

        async def handle(key: StoreKey) -> None:
            seen.append(key)
            if len(seen) == 1:
                queue.add(("ns", "a"))  # an event arrives while "a" is being reconciled
            await asyncio.sleep(0)

        for _ in range(3):
            queue.add(("ns", "a"))
        queue.add(("ns", "b"))
        assert len(queue) == 2
        task = asyncio.create_task(queue.worker(handle))
        for _ in range(50):
            await asyncio.sleep(0)
        task.cancel()

    asyncio.run(scenario())
    assert seen == [("ns", "a"), ("ns", "b"), ("ns", "a")]


def lease(holder: str | None, renewed: str | None, duration: int = 30) -> dict[str, object]:
    return {"spec": {"holderIdentity": holder, "renewTime": renewed,
                     "leaseDurationSeconds": duration}}


def test_lease_free_when_empty_ours_or_unchanged_past_its_duration() -> None:
    assert lease_is_free(lease(None, None), "me", 0.0, 30)
    assert lease_is_free(lease("me", "2026-01-01T11:59:59.000000Z"), "me", 0.0, 30)
    # Seen unchanged for longer than its 30 s on our own clock, whatever its renewTime says.
    assert lease_is_free(lease("other", "2099-01-01T00:00:00.000000Z"), "me", 30.5, 30)


def test_lease_held_by_another_holder_seen_renewing_within_its_duration() -> None:
    # A renewTime an hour old by our wall clock proves nothing: the holder's clock may lag.
    assert not lease_is_free(lease("other", "2026-01-01T11:00:00.000000Z"), "me", 29.0, 30)
    # Nor sooner than our own duration when its own was edited down.
    assert not lease_is_free(lease("other", None, duration=1), "me", 29.0, 30)
    assert lease_is_free(lease("other", None, duration=60), "me", 60.5, 30)


def test_a_failed_key_is_retried_with_growing_backoff_and_reset_by_success() -> None:
    runs: list[tuple[StoreKey, float]] = []

    async def scenario() -> None:
        queue = WorkQueue(base_delay=0.02, max_delay=0.08)
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def handle(key: StoreKey) -> bool:
            runs.append((key, loop.time() - start))
            return len(runs) >= 4  # fails three times, then succeeds

        queue.add(("ns", "a"))
        task = asyncio.create_task(queue.worker(handle))
        await asyncio.sleep(0.5)
        task.cancel()
        assert queue.failures(("ns", "a")) == 0

    asyncio.run(scenario())
    assert len(runs) == 4, runs  # no retry after the success
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(runs)]
    assert gaps[0] >= 0.015 and gaps[1] >= 0.035 and gaps[2] >= 0.07, gaps


def test_events_go_ahead_of_periodic_work_and_a_key_is_requeued_at_its_due_time() -> None:
    seen: list[StoreKey] = []

    async def scenario() -> None:
        queue = WorkQueue()

        async def handle(key: StoreKey) -> None:
            seen.append(key)

        for name in ("p1", "p2"):
            queue.add_periodic(("ns", name))
        queue.add(("ns", "event"))
        queue.add_after(("ns", "due"), 0.05)
        task = asyncio.create_task(queue.worker(handle))
        await asyncio.sleep(0.02)
        assert seen == [("ns", "event"), ("ns", "p1"), ("ns", "p2")]
        await asyncio.sleep(0.08)
        task.cancel()

    asyncio.run(scenario())
    assert seen[-1] == ("ns", "due")


def test_a_forgotten_key_loses_its_timer_and_failures() -> None:
    seen: list[StoreKey] = []

    async def scenario() -> None:
        queue = WorkQueue()

        async def handle(key: StoreKey) -> None:
            seen.append(key)

        queue.add_after(("ns", "gone"), 0.02)
        queue.forget(("ns", "gone"))
        task = asyncio.create_task(queue.worker(handle))
        await asyncio.sleep(0.06)
        task.cancel()

    asyncio.run(scenario())
    assert seen == []
