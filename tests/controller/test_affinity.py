"""The operator held to one CPU at a time, moved to an idler one (controller/affinity.py)."""

from __future__ import annotations

import os
import threading

import pytest

from dataward.controller import affinity
from dataward.controller.affinity import MOVE_MARGIN, CpuHolder, choose, idle_seconds

TICKS = affinity._TICKS


def stat(*idle_iowait: tuple[int, int]) -> str:
    """/proc/stat with these CPUs' idle and iowait ticks (user, nice, system at 7 each)."""
    total = [sum(i for i, _ in idle_iowait), sum(w for _, w in idle_iowait)]
    lines = [f"cpu  7 7 7 {total[0]} {total[1]} 0 0 0 0 0"]
    lines += [f"cpu{n} 7 7 7 {i} {w} 0 0 0 0 0" for n, (i, w) in enumerate(idle_iowait)]
    return "\n".join([*lines, "intr 1 2 3", "ctxt 99", "cpufreq 5 5 5 5 5"]) + "\n"


def test_idle_seconds_reads_each_cpus_idle_and_iowait_and_skips_the_total() -> None:
    assert idle_seconds(stat((TICKS * 3, TICKS), (TICKS, 0))) == {0: 4.0, 1: 1.0}


def test_the_idlest_allowed_cpu_is_taken_first_and_kept_unless_another_is_much_idler() -> None:
    allowed = frozenset({0, 2, 3})
    # CPU 1 is the idlest but not allowed (the container's cpuset).
    assert choose(allowed, None, {0: 1.0, 1: 9.0, 2: 5.0, 3: 5.0}, 0.0) == 2
    # Held: another must have had more than MOVE_MARGIN of the interval more to spare.
    below = MOVE_MARGIN * 10 - 0.1
    assert choose(allowed, 0, {0: 2.0, 2: 2.0 + below, 3: 0.0}, 10.0) == 0
    assert choose(allowed, 0, {0: 2.0, 2: 2.0 + below + 0.2, 3: 0.0}, 10.0) == 2
    # The CPU held is no longer allowed: the best allowed one.
    assert choose(allowed, 1, {0: 1.0, 2: 0.5, 3: 0.0}, 10.0) == 0


class Machine:
    """Two CPUs' idle counters, the operator's CPU time and the clock, moved on by hand."""

    def __init__(self) -> None:
        self.now = 0.0
        self.idle = [500.0, 500.0]
        self.own = 0.0
        self.pins: list[frozenset[int]] = []

    def advance(self, seconds: float, idle: tuple[float, float], own: float) -> None:
        self.now += seconds
        self.idle = [self.idle[0] + idle[0], self.idle[1] + idle[1]]
        self.own += own

    def holder(self) -> CpuHolder:
        return CpuHolder(
            frozenset({0, 1}),
            lambda: stat(*((round(i * TICKS), 0) for i in self.idle)),
            lambda: self.own,
            self.pins.append,
            lambda: self.now,
        )


def test_the_held_cpu_counts_the_operators_own_use_and_a_much_idler_one_takes_it() -> None:
    machine = Machine()
    holder = machine.holder()
    assert holder.check() == 0  # as idle since boot: the lowest number
    # CPU 0 busy with the operator (28 of 30 s), CPU 1 idle: 28 s to spare against 30, kept.
    # Counting only idle time it would move at every look, away from its own load.
    machine.advance(30, (0, 30), own=28)
    assert holder.check() == 0
    # Something else takes CPU 0 (2 s idle, 2 s the operator's), CPU 1 idle 29 s: moved.
    machine.advance(30, (2, 29), own=2)
    assert holder.check() == 1
    # On CPU 1 now, its own use counts there: CPU 0's 6 s idle is no reason to go back.
    machine.advance(30, (6, 1), own=27)
    assert holder.check() == 1
    # Pinned at every look (a thread made during a move keeps its maker's CPU).
    assert machine.pins == [{0}, {0}, {1}, {1}]


def test_a_cpu_that_cannot_be_held_leaves_the_threads_to_the_kernel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pins: list[frozenset[int]] = []

    def refused(cpus: frozenset[int]) -> None:
        pins.append(cpus)
        if len(cpus) == 1:  # some threads may be held already when it fails
            raise OSError(22, "Invalid argument")

    holder = CpuHolder(frozenset({0, 1}), lambda: stat((5, 0), (9, 0)), lambda: 0.0, refused)
    assert holder.check() is None
    assert holder.held is None
    assert pins == [{1}, {0, 1}]  # every allowed CPU given back
    assert "left to the kernel" in caplog.text


@pytest.mark.parametrize(
    "unreadable",
    [OSError(2, "No such file or directory"), "cpu0 7 7 7 many 0\n", "cpu0 7\ncpu1 7 7 7 x\n"],
    ids=["gone", "garbled", "cut short"],
)
def test_a_proc_stat_unreadable_at_start_leaves_the_threads_to_the_kernel(
    unreadable: OSError | str, caplog: pytest.LogCaptureFixture
) -> None:
    # Was: the read and its parse were outside the fallback, so `dataward run` stopped with
    # the error instead of running on every allowed CPU, as the module promises.
    pins: list[frozenset[int]] = []

    def read() -> str:
        if isinstance(unreadable, OSError):
            raise unreadable
        return unreadable

    holder = CpuHolder(frozenset({0, 1}), read, lambda: 0.0, pins.append)
    assert holder.check() is None
    assert holder.held is None
    assert pins == [{0, 1}]  # every allowed CPU, whatever an earlier holder left
    assert "left to the kernel" in caplog.text


def test_a_proc_stat_garbled_later_gives_every_allowed_cpu_back() -> None:
    machine = Machine()
    texts: list[str] = []
    real = machine.holder()
    holder = CpuHolder(
        frozenset({0, 1}),
        lambda: texts.pop(0) if texts else real._read_stat(),
        lambda: machine.own, machine.pins.append, lambda: machine.now,
    )
    assert holder.check() == 0
    machine.advance(30, (0, 30), own=28)
    texts.append("cpu0 1 2 3 nan 5\n")
    # Was: ValueError out of `check`, which ended the holder's thread with every thread
    # still held to CPU 0, however busy it became.
    assert holder.check() is None
    assert machine.pins == [{0}, {0, 1}]


def test_held_for_real_every_thread_is_on_one_cpu_and_a_new_thread_inherits_it() -> None:
    before = os.sched_getaffinity(0)
    assert len(before) >= 2, "this test needs two CPUs to choose from (make test runs on 2)"
    started = threading.Event()
    done = threading.Event()
    seen: list[set[int]] = []

    def old_thread() -> None:
        started.set()
        done.wait(5)
        seen.append(os.sched_getaffinity(0))

    thread = threading.Thread(target=old_thread)
    thread.start()
    started.wait(5)
    stop = threading.Event()
    try:
        holder = affinity.hold_one_cpu(stop, every=3600)
        assert holder is not None and holder.held in before
        later: list[set[int]] = []
        new = threading.Thread(target=lambda: later.append(os.sched_getaffinity(0)))
        new.start()
        new.join(5)
        done.set()
        thread.join(5)
        assert seen == [{holder.held}]  # a thread made before
        assert later == [{holder.held}]  # and one made after
        assert os.sched_getaffinity(0) == {holder.held}
    finally:
        stop.set()
        done.set()
        for task in affinity._TASKS.iterdir():
            try:
                os.sched_setaffinity(int(task.name), before)
            except ProcessLookupError:
                pass
