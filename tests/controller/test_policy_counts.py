"""A burst of stores becoming Ready writes their policy's status once, not once per store.

1,000 stores converging at once made 1,122 status writes of their one policy (bench/
reconcile_bench.py, 2026-12-02): each store's Ready change queued the policy at once, and the
worker had always finished the previous pass.
"""

from __future__ import annotations

import asyncio

from dataward.controller.operator import queue_policy_counts
from dataward.controller.queue import WorkQueue


async def _burst(changes: int, delay: float) -> list[tuple[str, str]]:
    policies = WorkQueue()
    passes: list[tuple[str, str]] = []
    done = asyncio.Event()

    async def handle(key: tuple[str, str]) -> bool:
        passes.append(key)
        done.set()
        return True

    worker = asyncio.create_task(policies.worker(handle))
    try:
        for _ in range(changes):
            # One store after another becomes Ready; the worker gets to run in between, as it
            # does while the stores' reconciles take their time.
            queue_policy_counts(policies, "clunix", delay)
            for _ in range(5):
                await asyncio.sleep(0)
        await asyncio.wait_for(done.wait(), timeout=10)
        await asyncio.sleep(delay / 2)  # a second pass would be due by now: there is none
    finally:
        worker.cancel()
    return passes


def test_a_burst_of_ready_changes_reconciles_the_policy_once() -> None:
    passes = asyncio.run(_burst(changes=50, delay=0.3))
    assert passes == [("", "clunix")]


def test_a_change_after_the_written_counts_is_written_too() -> None:
    async def two_bursts() -> int:
        policies = WorkQueue()
        passes = 0
        seen = asyncio.Event()

        async def handle(key: tuple[str, str]) -> bool:
            nonlocal passes
            passes += 1
            seen.set()
            return True

        worker = asyncio.create_task(policies.worker(handle))
        try:
            for _ in range(2):
                seen.clear()
                queue_policy_counts(policies, "clunix", 0.05)
                await asyncio.wait_for(seen.wait(), timeout=10)
        finally:
            worker.cancel()
        return passes

    assert asyncio.run(two_bursts()) == 2
