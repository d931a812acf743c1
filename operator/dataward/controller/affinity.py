"""The operator's threads on one CPU at a time (`dataward run --cpu-affinity one`).

The operator's Python runs one thread at a time (the GIL), but its threads (the workers,
the caches, the loop) are runnable at once, and the kernel spreads them over every core: the
GIL then moves between cores, and with it every shared object's reference counts, whose
cache lines the next core must fetch. A restart's first pass of 10,000 stores with nothing
to do took 9.4-9.8 s of CPU on 4 worker threads over 2 cores against 6.0 s on one thread,
and 6.9 s on the same 4 threads held to one core (bench/RESULTS.md, twenty-seventh pass).

So the process is held to one CPU of those it may use, and moved when another has been
idler: every MOVE_CHECK_SECONDS the CPU with the most time to spare since the last look
(its idle time, and on the CPU it holds, the operator's own use too) takes it, if by more
than MOVE_MARGIN of the interval. A new thread keeps its creator's CPU. What little runs
without the GIL (TLS, the sockets) gives up the other cores, which it hardly used.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

log = logging.getLogger("dataward.operator")

ONE = "one"  # held to one CPU, moved to an idler one
ANY = "any"  # the kernel's choice, every CPU allowed
MODES = (ONE, ANY)
MOVE_CHECK_SECONDS = 30.0
MOVE_MARGIN = 0.25  # of the interval's time: another CPU must have had this much more to spare
_STAT = Path("/proc/stat")
_TASKS = Path("/proc/self/task")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def idle_seconds(stat: str) -> dict[int, float]:
    """Each CPU's idle time (idle and iowait) in seconds, from /proc/stat's `cpuN` lines."""
    idle: dict[int, float] = {}
    for line in stat.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        fields = rest.split()
        if len(fields) < 5 or not name[3:].isdigit():
            continue
        idle[int(name[3:])] = (int(fields[3]) + int(fields[4])) / _TICKS
    return idle


def choose(
    allowed: frozenset[int],
    held: int | None,
    spare: Mapping[int, float],
    interval: float,
) -> int:
    """The CPU to hold: `held` unless another of `allowed` had more than MOVE_MARGIN of
    `interval` more time to spare (`spare`: seconds each had, the held one counting the
    operator's own use); with none held, the one with the most; ties: the lowest number.
    A CPU `spare` does not name had none."""
    best = min(allowed, key=lambda cpu: (-spare.get(cpu, 0.0), cpu))
    if held is None or held not in allowed:
        return best
    if spare.get(best, 0.0) - spare.get(held, 0.0) > MOVE_MARGIN * interval:
        return best
    return held


def _pin(cpus: frozenset[int]) -> None:
    """Hold every thread of the process to `cpus` (those made later inherit them)."""
    for task in _TASKS.iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except ProcessLookupError:
            continue  # ended meanwhile


class CpuHolder:
    """Holds the process to one allowed CPU, re-chosen every MOVE_CHECK_SECONDS."""

    def __init__(
        self,
        allowed: frozenset[int],
        read_stat: Callable[[], str] = _STAT.read_text,
        own_cpu: Callable[[], float] = time.process_time,
        pin: Callable[[frozenset[int]], None] = _pin,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allowed = allowed
        self._read_stat = read_stat
        self._own_cpu = own_cpu
        self._pin = pin
        self._clock = clock
        self.held: int | None = None
        self._last: tuple[float, dict[int, float], float] | None = None

    def check(self) -> int | None:
        """Look once: hold the CPU `choose` says (None: it could not be held, or /proc/stat
        could not be read; every allowed CPU given back, left to the kernel from then on)."""
        cpu: int | None = None
        try:
            cpu = self._choose()
            # At every look, not only on a move: a thread made during a move by one not yet
            # moved kept the old CPU.
            self._pin(frozenset({cpu}))
        except (OSError, ValueError) as error:
            # A cpuset changed under the container, a seccomp rule, /proc unreadable.
            what = f"CPU {cpu}" if cpu is not None else "one CPU"
            log.warning("cannot hold the operator to %s (%s): its threads are left to the "
                        "kernel", what, error)  # fmt: skip
            try:  # those already held to it are given every allowed CPU back
                self._pin(self.allowed)
            except OSError:
                pass  # as the kernel has them: nothing more to do
            self.held = None
            return None
        if cpu != self.held:
            log.info("operator held to CPU %s of %s", cpu, sorted(self.allowed))
            self.held = cpu
        return self.held

    def _choose(self) -> int:
        """The CPU to hold from this look's /proc/stat; ValueError when it names none of the
        allowed CPUs (or cannot be parsed), OSError when it cannot be read."""
        now, idle, own = self._clock(), idle_seconds(self._read_stat()), self._own_cpu()
        if not idle.keys() & self.allowed:
            raise ValueError("/proc/stat names none of the allowed CPUs")
        if self._last is None:
            spare, interval = idle, 0.0
        else:
            then, before, own_before = self._last
            interval = max(0.0, now - then)
            spare = {cpu: idle[cpu] - before.get(cpu, idle[cpu]) for cpu in idle}
            if self.held is not None:
                spare[self.held] = spare.get(self.held, 0.0) + (own - own_before)
        self._last = (now, idle, own)
        return choose(self.allowed, self.held, spare, interval)


def hold_one_cpu(stop: threading.Event, every: float = MOVE_CHECK_SECONDS) -> CpuHolder | None:
    """Hold the process to one CPU now and re-choose it every `every` seconds until `stop`
    (a daemon thread); None when there is no choice to make (one CPU allowed, or no Linux
    affinity calls)."""
    if not hasattr(os, "sched_getaffinity") or not _TASKS.is_dir():
        return None
    allowed = frozenset(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    holder = CpuHolder(allowed)
    if holder.check() is None:
        return None

    def keep() -> None:
        while not stop.wait(every):
            if holder.check() is None:
                return

    threading.Thread(target=keep, name="cpu-affinity", daemon=True).start()
    return holder
