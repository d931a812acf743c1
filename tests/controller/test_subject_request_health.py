"""A Secret event the requests' cache could not map is made good when that cache reads again.

A Secret's watch event queues the requests it concerns (their identifier; a name their
readers' Role grants), found in the requests' cache (`SubjectRequests.keys_for_secret`).
While that cache is not synced (a failed re-list, a broken watch) the lookup raises and the
event queued nothing; the operator's health callback, when the cache read again, queued the
stores alone. A request that had succeeded, whose granted Secret was replaced meanwhile, was
looked at again by the hourly resync only. So, sharded, were the requests of a namespace
that became this shard's: its event queued the namespace's stores alone. Driven through
`run_operator` with stand-ins for the caches, the stores' reconciler and the requests'
controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from dataward.controller.cache import CachedKind
from dataward.controller.kube import KubeError
from dataward.controller.operator import OperatorSettings, run_operator
from dataward.controller.reconcile import Outcome
from dataward.controller.subjects import RequestOutcome
from tests.controller.test_first_pass import _ListingCaches, stub_operator
from tests.controller.test_operator_supervision import _until

KEY = ("privacy", "case-4711")
OTHER = ("crm", "case-9")


class _Caches(_ListingCaches):
    """Caches that list at once and hand the test their callbacks."""

    last: ClassVar[_Caches | None] = None

    def __init__(self, kube: object, kinds: tuple[CachedKind, ...], namespaces: object,
                 relist: object, on_event: Callable[[str, Any, Any], None],
                 on_health: Callable[[str, str | None], None]) -> None:  # fmt: skip
        super().__init__(kube, kinds, namespaces, relist, on_event, on_health)
        self.on_event = on_event
        _Caches.last = self

    def start(self) -> None:
        self.started = True
        for kind in self.kinds:
            self.on_health(kind, None)

    def listed(self) -> bool:
        return self.started


class _Reconciler:
    def __init__(self, *_: object) -> None:
        pass

    def all_stores(self) -> list[tuple[str, str]]:
        return []

    def shard_stores(self) -> list[tuple[str, str]]:
        return []

    def stores_in(self, namespace: str) -> list[tuple[str, str]]:
        return []

    def namespace_left(self, namespace: str) -> list[tuple[str, str]]:
        return []

    def namespace_came(self, namespace: str) -> None:
        pass

    def stores_with_credentials(self, namespace: str, name: str) -> list[tuple[str, str]]:
        return []

    def all_policies(self) -> list[str]:
        return []

    def reconcile_logged(self, key: tuple[str, str]) -> Outcome:
        return Outcome(ok=True)


class _Requests:
    """Requests whose cache fails while `failing`: every lookup of it raises."""

    reconciled: ClassVar[list[tuple[str, str]]] = []
    failing: ClassVar[bool] = False

    def __init__(self, *_: object) -> None:
        pass

    def _check(self) -> None:
        if _Requests.failing:
            raise KubeError(0, "cache not synced (HTTP 500)", "list DataSubjectRequest")

    def all_requests(self) -> list[tuple[str, str]]:
        self._check()
        return [KEY, OTHER]

    def keys_for_secret(self, namespace: str, secret: str) -> list[tuple[str, str]]:
        self._check()
        return [KEY] if namespace == KEY[0] else []

    def reconcile_logged(self, key: tuple[str, str]) -> RequestOutcome:
        _Requests.reconciled.append(key)
        return RequestOutcome(ok=True)  # succeeded: not due again


@contextlib.contextmanager
def _operator(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Caches]:
    """`run_operator` on the stand-ins, its first pass done (each request once)."""

    stub_operator(monkeypatch, _Caches, _Reconciler, _Requests)
    _Requests.reconciled.clear()
    _Requests.failing = False
    settings = OperatorSettings(resync_seconds=3600, metrics_port=None, workers=1)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(run_operator(settings, stop)), daemon=True)
    thread.start()
    try:
        assert _until(lambda: sorted(_Requests.reconciled) == sorted([KEY, OTHER]), 10.0)
        assert _Caches.last is not None
        yield _Caches.last
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_secret_event_lost_to_an_unsynced_requests_cache_is_queued_when_it_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _operator(monkeypatch) as caches:
        # The requests' cache fails; meanwhile the request's granted Secret is replaced.
        _Requests.failing = True
        caches.on_health("DataSubjectRequest", None)
        planted = {"metadata": {"name": "dataward-case-4711-dsr-key", "namespace": KEY[0]}}
        caches.on_event("Secret", None, planted)
        time.sleep(0.3)
        assert sorted(_Requests.reconciled) == sorted([KEY, OTHER])  # nothing to go on
        # It reads again: the requests it may have missed an event of are looked at now,
        # not at the hourly resync.
        _Requests.failing = False
        caches.on_health("DataSubjectRequest", None)
        # The whole cache read again: every request it holds, each once more.
        assert _until(
            lambda: _Requests.reconciled.count(KEY) == 2 and _Requests.reconciled.count(OTHER) == 2,
            3.0,
        ), _Requests.reconciled
        # One namespace's cache (watchNamespaces): that namespace's requests, once more.
        caches.on_health("DataSubjectRequest", "crm")
        assert _until(lambda: _Requests.reconciled.count(OTHER) == 3, 3.0), _Requests.reconciled
        time.sleep(0.2)
        assert _Requests.reconciled.count(KEY) == 2


def test_a_namespace_that_becomes_the_shards_queues_its_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _operator(monkeypatch) as caches:
        namespace = {"metadata": {"name": "crm", "labels": {"dataward.io/shard": "b"}}}
        caches.on_event("Namespace", None, namespace)
        assert _until(lambda: _Requests.reconciled.count(OTHER) == 2, 3.0), _Requests.reconciled
        time.sleep(0.2)
        assert _Requests.reconciled.count(KEY) == 1
