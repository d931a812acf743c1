"""A burst of stores becoming Ready writes their policy's status once, not once per store.

1,000 stores converging at once made 1,122 status writes of their one policy (bench/
reconcile_bench.py, 2026-12-02): each store's Ready change queued the policy at once, and the
worker had always finished the previous pass.

The queue times its delays with the event loop's clock (`loop.time()`, `loop.call_at`): these
tests run it on a loop whose clock moves only when the test says, so no wall-clock margin
decides a verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dataward.controller.operator import POLICY_COUNT_DELAY, queue_policy_counts
from dataward.controller.queue import StoreKey, WorkQueue

POLICY: StoreKey = ("", "clunix")
# One store after another becomes Ready, this far apart: the whole burst takes half the delay.
STEP = POLICY_COUNT_DELAY / 100


class ManualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose `time()` is `now`, moved by the test alone."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def time(self) -> float:
        return self.now


async def _settle() -> None:
    """Let every callback and task that is ready run (the worker takes a key in a few steps)."""
    for _ in range(20):
        await asyncio.sleep(0)


@dataclass
class Policies:
    """The policy queue, its worker's passes so far, and the loop whose clock the test moves."""

    loop: ManualClockLoop
    queue: WorkQueue
    passes: list[StoreKey] = field(default_factory=list)

    async def burst(self, changes: int) -> None:
        """`changes` stores become Ready, STEP apart; the worker runs in between."""
        for _ in range(changes):
            queue_policy_counts(self.queue, POLICY[1])
            await _settle()
            self.loop.now += STEP

    async def at(self, now: float) -> list[StoreKey]:
        """Move the clock to `now`, let what is due run: the passes made so far."""
        self.loop.now = now
        await _settle()
        return self.passes


def _run(scenario: Callable[[Policies], Awaitable[None]]) -> None:
    """Run `scenario` with a policy worker that records each pass it makes."""
    loop = ManualClockLoop()

    async def main() -> None:
        policies = Policies(loop, WorkQueue())

        async def handle(key: StoreKey) -> bool:
            policies.passes.append(key)
            return True

        worker = asyncio.create_task(policies.queue.worker(handle))
        try:
            await scenario(policies)
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_a_burst_of_ready_changes_reconciles_the_policy_once() -> None:
    async def scenario(policies: Policies) -> None:
        start = policies.loop.now
        await policies.burst(50)
        assert policies.passes == [], "the policy was written before its delay"
        assert await policies.at(start + POLICY_COUNT_DELAY - STEP / 2) == []
        # due from the first change: a burst cannot postpone it
        assert await policies.at(start + POLICY_COUNT_DELAY) == [POLICY]
        assert await policies.at(start + 10 * POLICY_COUNT_DELAY) == [POLICY]

    _run(scenario)


def test_a_change_after_the_written_counts_is_written_too() -> None:
    async def scenario(policies: Policies) -> None:
        for written in (1, 2):
            await policies.burst(3)
            assert await policies.at(policies.loop.now + POLICY_COUNT_DELAY) == [POLICY] * written

    _run(scenario)
