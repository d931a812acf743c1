"""The store the purge re-reads before every batch: the watched copy only while it is fresh.

A watch whose connection went silent (a half-open TCP connection after a load balancer or
API server fail-over) delivers nothing and raises nothing until its read timeout, minutes
later: its copy then looks exactly like that of a live watch on a store nobody edits. A legal
hold set meanwhile must still stop the next batch.
"""

from __future__ import annotations

import copy
from typing import Any

from dataward.purge.source import ApiSource
from tests.model.samples import STORE


class StoreApi:
    """The store's GET, counted; the store as the API server has it now."""

    def __init__(self, store: dict[str, Any]) -> None:
        self.store = store
        self.gets = 0

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str,
                                     plural: str, name: str, **kw: Any) -> dict[str, Any]:
        self.gets += 1
        return copy.deepcopy(self.store)


def _versioned(rv: str, suspend: bool = False) -> dict[str, Any]:
    store = copy.deepcopy(STORE)
    store["metadata"] = {**store["metadata"], "resourceVersion": rv}
    store["spec"]["purge"] = {**store["spec"].get("purge", {}), "suspend": suspend}
    return store


def _source(watched: dict[str, Any], now: list[float]) -> ApiSource:
    source = ApiSource("crm", "support-inquiries")
    source._monotonic = lambda: now[0]  # type: ignore[method-assign]
    source._follow = lambda: None  # type: ignore[method-assign]  # no thread
    source._watched = watched  # the watch's last event, just now
    source._seen_at = now[0]
    return source


def test_a_silent_watch_does_not_hide_a_legal_hold() -> None:
    now = [1000.0]
    source = _source(_versioned("10"), now)
    api = StoreApi(_versioned("11", suspend=True))  # the hold, which the watch never brought
    source._api = api
    assert not source.load_store().purge.suspend and api.gets == 0  # fresh: the copy
    now[0] += 60.0  # longer than a watched copy stays fresh
    assert source.load_store().purge.suspend and api.gets == 1
    # The watch has still not caught up: the next check asks again, it does not trust it.
    assert source.load_store().purge.suspend and api.gets == 2


def test_a_quiet_store_costs_one_get_per_freshness_period() -> None:
    """A live watch on a store nobody edits is silent too: a GET that finds the watched
    version confirms the copy for another period, so checks between do no request."""
    now = [1000.0]
    source = _source(_versioned("10"), now)
    api = StoreApi(_versioned("10"))
    source._api = api
    now[0] += 60.0  # longer than a watched copy stays fresh
    for _ in range(50):
        assert not source.load_store().purge.suspend
        now[0] += 0.1
    assert api.gets == 1
