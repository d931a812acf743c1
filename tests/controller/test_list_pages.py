"""The caches' LIST pages are let in in the order asked for (controller/cache.py FairPages).

A semaphore let the thread that had just given a place back take it again at once: a
shard's four fill threads, LISTing namespace after namespace, kept the first LISTs of Jobs,
Pods and subject requests (empty, one page each) waiting for 6 s at a restart, and the
first pass waited for them (bench/RESULTS.md, twenty-eighth pass).
"""

from __future__ import annotations

import threading
import time

from dataward.controller.cache import FairPages


def _until(done: object, what: str) -> None:
    deadline = time.monotonic() + 5
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.001)


def test_a_holder_that_gives_its_place_back_and_asks_again_goes_behind_a_waiter() -> None:
    pages = FairPages(1)
    order: list[str] = []

    def waiter() -> None:
        with pages:
            order.append("waiter")

    pages.__enter__()
    thread = threading.Thread(target=waiter)
    thread.start()
    _until(lambda: len(pages._waiting) == 1, "the waiter asks")
    pages.__exit__()
    with pages:  # at once again, as a fill thread's next LIST does
        order.append("again")
    thread.join(5)
    assert order == ["waiter", "again"]


def test_waiters_go_in_in_the_order_they_asked_and_as_many_at_once_as_allowed() -> None:
    pages = FairPages(2)
    order: list[int] = []
    inside: list[int] = []
    most = [0]
    lock = threading.Lock()

    def page(n: int) -> None:
        with pages:
            with lock:
                order.append(n)
                inside.append(n)
                most[0] = max(most[0], len(inside))
            time.sleep(0.01)
            with lock:
                inside.remove(n)

    pages.__enter__()
    pages.__enter__()  # both places held
    threads = []
    for n in range(5):
        thread = threading.Thread(target=page, args=(n,))
        thread.start()
        threads.append(thread)
        _until(lambda n=n: len(pages._waiting) == n + 1, f"waiter {n} asks")
    pages.__exit__()
    pages.__exit__()
    for thread in threads:
        thread.join(5)
    assert order == [0, 1, 2, 3, 4]
    assert most[0] == 2
