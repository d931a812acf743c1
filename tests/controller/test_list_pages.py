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


def test_the_namespaces_list_is_not_kept_waiting_behind_the_big_lists_pages() -> None:
    # Every `per_shard` cache waits for the Namespaces' LIST before it lists; behind the
    # pages of the big lists it began 0.8-0.9 s late at 10,000 stores. Every place taken,
    # the operator's Namespace cache still lists; a paced kind's LIST waits for a place.
    from typing import Any

    from dataward.controller import cache as cache_module
    from dataward.controller.cache import Informer
    from dataward.controller.operator import OperatorSettings, cached_kinds

    class Answering:
        def _call(self, method: str, path: str, **kw: Any) -> Any:
            return {"metadata": {"resourceVersion": "1"}, "items": []}

    kinds = {spec.kind: spec for spec in cached_kinds(OperatorSettings())}
    pages = cache_module._LIST_PAGES
    done: dict[str, bool] = {}

    def lists(kind: str) -> None:
        informer = Informer(Answering(), kinds[kind], None, 3600,  # type: ignore[arg-type]
                            lambda *a: None, lambda *a: None)  # fmt: skip
        informer._list_pages(None, lambda items: None, lambda: None)
        done[kind] = True

    threads = [threading.Thread(target=lists, args=(k,)) for k in ("Namespace", "Role")]
    held = 0
    try:
        for _ in range(cache_module.LIST_PAGES_AT_ONCE):
            pages.__enter__()  # the big lists' pages hold every place
            held += 1
        for thread in threads:
            thread.start()
        _until(lambda: done.get("Namespace"), "the Namespaces listed")
        time.sleep(0.05)
        assert "Role" not in done  # waits its turn
    finally:
        for _ in range(held):
            pages.__exit__()
    for thread in threads:
        if thread.ident is not None:  # started
            thread.join(5)
    assert done == {"Namespace": True, "Role": True}
