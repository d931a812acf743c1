"""The work queue's de-duplication and the Lease's expiry rule."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

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


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def lease(holder: str | None, renewed: str | None, duration: int = 30) -> dict[str, object]:
    return {"spec": {"holderIdentity": holder, "renewTime": renewed,
                     "leaseDurationSeconds": duration}}


def test_lease_free_when_empty_ours_or_expired() -> None:
    assert lease_is_free(lease(None, None), "me", NOW)
    assert lease_is_free(lease("me", "2026-01-01T11:59:59.000000Z"), "me", NOW)
    assert lease_is_free(lease("other", "2026-01-01T11:59:00.000000Z"), "me", NOW)


def test_lease_held_by_another_live_holder() -> None:
    assert not lease_is_free(lease("other", "2026-01-01T11:59:45.000000Z"), "me", NOW)
