"""The operator among the other actors of a real cluster: each converges to silence, or to a
bounded, reported state, never to a write per pass or per watch event.

Another controller (Argo CD or Flux style) that puts its own value of a field the operator
owns back whenever it sees the operator's; a controller that keeps a condition of its own in
a store's status. Each runs in a thread of the test against the real API server while the
session operator (a resync every 5 s) reconciles; the operator's mutating requests are
counted from the audit log over a window.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from e2e.fixtures_operator import OperatorProcess, get, sleep_for
from e2e.test_operator import operator_writes, ready_store

pytestmark = pytest.mark.usefixtures("seed_policy_applied")

NAME = "support-inquiries"
PURGE = "dataward-support-inquiries-purge"
WINDOW = 30.0


@contextmanager
def actor(step: Callable[[], None], period: float = 0.2) -> Iterator[list[int]]:
    """Run `step` every `period` seconds in a thread (a controller of someone else's) until
    the block ends; yields a list holding how many steps raised (a 409 is a race it lost)."""
    stop = threading.Event()
    failures = [0]

    def loop() -> None:
        while not stop.is_set():
            try:
                step()
            except Exception:
                failures[0] += 1
            stop.wait(period)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield failures
    finally:
        stop.set()
        thread.join(timeout=10)


def _ours(writes: list[str], resource: str, namespace: str) -> list[str]:
    return [w for w in writes if f" {resource} {namespace}/" in w]


def test_a_condition_another_controller_keeps_in_a_stores_status_is_not_fought(
    control_plane: Any, kube: ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    """Another controller keeps a condition of its own type (`example.com/Synced`) in the
    store's status, as Kubernetes' conventions let several controllers do (conditions are a
    map keyed by type). The operator must leave it there: no status write in the window."""
    ready_store(control_plane, namespace)
    custom = client.CustomObjectsApi(kube)
    theirs = {
        "type": "ExampleSynced",
        "status": "True",
        "reason": "Synced",
        "message": "in sync with the repository",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }

    def keep() -> None:
        store: dict[str, Any] = custom.get_namespaced_custom_object(
            "dataward.io", "v1alpha1", namespace, "personaldatastores", NAME
        )
        conditions = (store.get("status") or {}).get("conditions") or []
        if not any(c.get("type") == "ExampleSynced" for c in conditions):
            control_plane.kubectl(
                "patch", "personaldatastore", NAME, "-n", namespace, "--subresource=status",
                "--type=json", "-p",
                json.dumps([{"op": "add", "path": "/status/conditions/-", "value": theirs}]),
            )

    with actor(keep) as failures:
        sleep_for(8)  # the first add, and the operator's answer to it
        since = datetime.now(UTC)
        sleep_for(WINDOW)
    assert operator.alive()
    assert failures == [0]
    writes = _ours(
        operator_writes(control_plane, operator.account, since), "personaldatastores", namespace
    )
    assert writes == [], f"{len(writes)} status writes in {WINDOW} s: {writes[:5]}"
    store = get(control_plane, "personaldatastore", NAME, namespace)
    assert store is not None
    types = [c["type"] for c in store["status"]["conditions"]]
    assert "ExampleSynced" in types and "Ready" in types
