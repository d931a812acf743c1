"""The startup line a restart is timed by: said once, when the last store served at start
is done."""

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from dataward.controller import operator as operator_module
from dataward.controller.cache import CachedKind
from dataward.controller.kube import Kube
from dataward.controller.operator import OperatorSettings, run_operator
from dataward.controller.queue import RE_VERIFIED, FirstPass
from dataward.controller.reconcile import Outcome
from dataward.subjects.request import REQUEST_PLURAL
from tests.controller.test_operator_supervision import _until


def test_said_once_when_the_last_store_served_at_start_is_reconciled() -> None:
    first = FirstPass()
    first.begin([("a", "one"), ("a", "two"), ("b", "three")], now=100.0)
    assert first.done(("a", "one"), now=101.0) is None
    assert first.done(("c", "created-after-start"), now=101.5) is None
    assert first.done(("a", "one"), now=102.0) is None  # again: still two waiting
    assert first.done(("a", "two"), now=103.0) is None
    message = first.done(("b", "three"), now=112.5)
    assert message is not None and "12.50 s" in message
    assert first.done(("b", "three"), now=113.0) is None


def test_a_later_resync_does_not_start_the_count_again() -> None:
    first = FirstPass()
    first.begin([("a", "one")], now=0.0)
    first.begin([("a", "one"), ("a", "two")], now=60.0)
    message = first.done(("a", "one"), now=2.0)
    assert message is not None and "2.00 s" in message


def test_reconciles_before_the_caches_listed_do_not_count() -> None:
    first = FirstPass()
    assert first.done(("a", "one"), now=0.5) is None
    first.begin([("a", "one")], now=1.0)
    assert first.done(("a", "one"), now=3.0) is not None


class _ListingCaches:
    """Caches whose first lists end one kind after another (the stores' first), each saying
    so through `on_health` as the informers do; every read is served once all have listed."""

    def __init__(self, kube: object, kinds: tuple[CachedKind, ...], namespaces: object,
                 relist: object, on_event: object,
                 on_health: Callable[[str, str | None], None]) -> None:  # fmt: skip
        self.kinds = [spec.kind for spec in kinds]
        self.on_health = on_health
        self.done = 0
        self.started = False

    def drop(self, kind: str) -> None:
        self.kinds.remove(kind)

    def add(self, spec: CachedKind) -> None:
        if spec.kind not in self.kinds:
            self.kinds.append(spec.kind)

    def cached(self, kind: str) -> bool:
        return kind in self.kinds

    def start(self) -> None:
        self.started = True
        threading.Thread(target=self._list, daemon=True).start()

    def _list(self) -> None:
        for index, kind in enumerate(self.kinds):
            time.sleep(0.05)  # the next cache's LIST takes a while
            self.done = index + 1
            self.on_health(kind, None)

    def listed(self) -> bool:
        return self.done == len(self.kinds)

    def stop(self) -> None:
        pass


STORES = [("shop", f"store-{i}") for i in range(12)]


class _Reconciler:
    reconciled: ClassVar[list[tuple[str, str]]] = []
    keys: ClassVar[list[tuple[str, str]]] = STORES  # the stores served (a subclass's own)

    def __init__(self, kube: object, *_: object) -> None:
        self.kube = kube

    def all_stores(self) -> list[tuple[str, str]]:
        return list(self.keys)

    def shard_stores(self) -> list[tuple[str, str]]:
        return list(self.keys)

    def stores_in(self, namespace: str) -> list[tuple[str, str]]:
        return [key for key in self.keys if key[0] == namespace]

    def all_policies(self) -> list[str]:
        return []

    def reconcile_logged(self, key: tuple[str, str]) -> Outcome:
        _Reconciler.reconciled.append(key)
        return Outcome(ok=True)


class _Requests:
    def __init__(self, *_: object) -> None:
        pass

    def all_requests(self) -> list[tuple[str, str]]:
        return []


def stub_operator(
    monkeypatch: pytest.MonkeyPatch, caches: type, reconciler: type, requests: type
) -> None:
    """`run_operator` with kopf idle until stopped, no API client, discovery serving every
    Dataward CRD, and these stand-ins for its Caches, Reconciler and SubjectRequests."""

    async def kopf_operator(*, stop_flag: asyncio.Event, **_: Any) -> None:
        await stop_flag.wait()

    def served(self: Kube, group_version: str) -> set[str]:
        return {*operator_module.CRD_PLURALS, REQUEST_PLURAL}

    monkeypatch.setattr(operator_module.kopf, "operator", kopf_operator)
    monkeypatch.setattr(operator_module, "load_api_client", lambda *_, **__: object())
    monkeypatch.setattr(operator_module, "Caches", caches)
    monkeypatch.setattr(operator_module, "Reconciler", reconciler)
    monkeypatch.setattr(operator_module, "SubjectRequests", requests)
    monkeypatch.setattr(Kube, "served", served, raising=False)


def _run_first_pass(caplog: pytest.LogCaptureFixture, workers: int, within: float) -> None:
    """Run the stubbed operator until it says its first pass is done, a moment more (a
    store queued or given back twice would run by then), and stop it."""
    settings = OperatorSettings(resync_seconds=3600, metrics_port=None, workers=workers)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(run_operator(settings, stop)), daemon=True)
    caplog.set_level(logging.INFO, logger="dataward.operator")
    thread.start()
    try:
        assert _until(lambda: RE_VERIFIED in caplog.text, within), "no first pass done"
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_restart_reconciles_each_store_once_however_many_caches_list_after_the_stores(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Each cache's first list ending queued every store again: a store a worker had already
    # taken (waiting for the rest of the caches) was then reconciled twice, and with a
    # reconcile before the pass began, its first one did not count either.
    stub_operator(monkeypatch, _ListingCaches, _Reconciler, _Requests)
    _Reconciler.reconciled.clear()
    _run_first_pass(caplog, workers=4, within=10.0)
    assert sorted(_Reconciler.reconciled) == sorted(STORES)
    assert f"every store served at start re-verified ({len(STORES)})" in caplog.text



LATER = ("later", "store-l")


class _LaterCaches(_ListingCaches):
    """`_ListingCaches` whose namespace `later` is listed only after every other store was
    judged and the first pass's line was still unsaid a second later (as a shard lists its
    namespaces one by one), then says so. A rule that says the line before `later` is judged
    has said it by then, and `later` is then never listed before the operator stops: red
    however slow the machine, not only when the other stores happen to be quick."""

    made: ClassVar[list["_LaterCaches"]] = []
    said: ClassVar[Callable[[], bool]]  # the first pass's line is in the log

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.later_listed = threading.Event()
        _LaterCaches.made.append(self)

    def list_later(self) -> None:
        def listed() -> None:
            while not set(STORES) <= set(_LaterReconciler.judged):
                time.sleep(0.01)
            for _ in range(100):
                if _LaterCaches.said():
                    return  # said without `later`'s judgment: never list it
                time.sleep(0.01)
            self.later_listed.set()
            self.on_health("Namespace", LATER[0])

        threading.Thread(target=listed, daemon=True).start()


class _LaterReconciler(_Reconciler):
    """A store of `later` is not judged until its namespace is listed (`Outcome.judged`)."""

    judged: ClassVar[list[tuple[str, str]]] = []
    keys: ClassVar[list[tuple[str, str]]] = [*STORES, LATER]

    def reconcile_logged(self, key: tuple[str, str]) -> Outcome:
        caches = _LaterCaches.made[-1]
        if key == LATER and not caches.later_listed.is_set():
            if not any(k == LATER for k in _Reconciler.reconciled):
                caches.list_later()
            _Reconciler.reconciled.append(key)
            return Outcome(ok=True, judged=False)
        _LaterReconciler.judged.append(key)
        return super().reconcile_logged(key)


def test_a_store_not_judged_yet_keeps_the_first_pass_open_until_it_is(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A shard's store whose namespace is still being listed is reconciled without being
    # judged (nothing read, nothing written): counting it would say "every store
    # re-verified" before it was. Red when `handle` settled every ok outcome.
    stub_operator(monkeypatch, _LaterCaches, _LaterReconciler, _Requests)
    _Reconciler.reconciled.clear()
    _LaterReconciler.judged.clear()
    _LaterCaches.made.clear()
    _LaterCaches.said = lambda: RE_VERIFIED in caplog.text
    _run_first_pass(caplog, workers=4, within=10.0)
    assert LATER in _Reconciler.reconciled  # reconciled once before its namespace listed
    assert LATER in _LaterReconciler.judged  # and the line waited for its judgment
    assert sorted(_LaterReconciler.judged) == sorted([*STORES, LATER])
    assert f"every store served at start re-verified ({len(STORES) + 1})" in caplog.text


MANY = [("shop", f"store-{i:03}") for i in range(120)]


class _SlowReconciler(_Reconciler):
    """Reconciles of a few ms each, on the worker threads."""

    keys: ClassVar[list[tuple[str, str]]] = MANY

    def reconcile_logged(self, key: tuple[str, str]) -> Outcome:
        time.sleep(0.002)
        return super().reconcile_logged(key)


def test_a_restart_in_batches_reconciles_every_store_once_and_gives_back_the_rest(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A worker takes up to BATCH_KEYS stores at a time and gives back those its trip had no
    # time for (BATCH_SECONDS): none may be lost, none reconciled twice, and the first
    # pass's line counts them all.
    stub_operator(monkeypatch, _ListingCaches, _SlowReconciler, _Requests)
    # About 6 a trip of the 16 taken: each trip gives some back, and a loaded machine's
    # late sleeps still leave several a trip.
    monkeypatch.setattr(operator_module, "BATCH_SECONDS", 0.012)
    trips: list[int] = []
    real = asyncio.to_thread

    async def counted(fn: Callable[..., Any], *args: Any) -> Any:
        if getattr(fn, "__name__", "") == "reconcile_some":
            trips.append(len(args[0]))
        return await real(fn, *args)

    monkeypatch.setattr(operator_module.asyncio, "to_thread", counted)
    _Reconciler.reconciled.clear()
    _run_first_pass(caplog, workers=2, within=20.0)
    assert sorted(_Reconciler.reconciled) == sorted(MANY)
    assert f"every store served at start re-verified ({len(MANY)})" in caplog.text
    assert max(trips) == operator_module.BATCH_KEYS  # a backlog is taken 16 at a time
    assert len(trips) < len(MANY)  # fewer trips than stores


def test_the_collector_waits_for_the_first_pass_then_freezes_what_it_and_the_lists_made() -> None:
    """The first lists make hundreds of thousands of objects and no cycles, nor does the
    pass after them: the cyclic collector is off until the last store served at start is
    reconciled, then what they made is frozen."""
    async def scenario() -> None:
        first = FirstPass()
        task = asyncio.create_task(operator_module.collect_after_first_pass(first.finished))
        await asyncio.sleep(0.05)
        assert not gc.isenabled()
        frozen = gc.get_freeze_count()
        made = [[i] for i in range(1000)]  # what a list keeps, tracked by the collector
        first.begin([("a", "one"), ("a", "two")], now=0.0)  # the caches have listed
        await asyncio.sleep(0.05)
        assert not gc.isenabled()  # still off while the pass runs
        assert first.done(("a", "one"), now=1.0) is None
        await asyncio.sleep(0.05)
        assert not gc.isenabled()
        assert first.done(("a", "two"), now=2.0) is not None
        await asyncio.wait_for(task, 1)
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(made)

    try:
        asyncio.run(scenario())
    finally:
        gc.enable()


def test_no_store_at_start_ends_the_first_pass_at_once() -> None:
    first = FirstPass()
    assert not first.finished.is_set()
    first.begin([], now=0.0)
    assert first.finished.is_set()


def test_the_collector_is_not_kept_off_by_caches_that_never_list() -> None:
    """An outage (a kind forbidden, the API down) may keep the caches from listing, or a
    store from being reconciled, for long; the collector comes back after the pause's bound,
    not when the pass ends."""
    async def scenario() -> None:
        passed = asyncio.Event()
        task = asyncio.create_task(
            operator_module.collect_after_first_pass(passed, most=0.05)
        )
        await asyncio.sleep(0.01)
        assert not gc.isenabled()
        await asyncio.sleep(0.2)
        assert gc.isenabled() and not task.done()
        passed.set()
        await task
        assert gc.isenabled()

    try:
        asyncio.run(scenario())
    finally:
        gc.enable()
