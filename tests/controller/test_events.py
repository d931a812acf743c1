"""The one Event shape of the operator: where an Event lives, what it names, how long its note
may be, and that a refused Event never fails a reconcile."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from dataward.checks.conditions import Condition
from dataward.controller import events
from dataward.controller.kube import Kube, KubeError

NOW = datetime(2026, 12, 2, 4, 5, 6, 789000, tzinfo=UTC)
STORE = {
    "apiVersion": "dataward.io/v1alpha1",
    "kind": "PersonalDataStore",
    "metadata": {"name": "support-inquiries", "namespace": "crm", "uid": "u-1"},
}
POLICY = {"metadata": {"name": "clunix", "uid": "u-2"}}  # cluster-scoped; apiVersion absent


def test_an_event_about_a_store_lives_in_its_namespace_and_names_it() -> None:
    condition = Condition("Ready", "False", "PurgeFailed", "x" * 2000)
    body = events.event(
        STORE, "PersonalDataStore", action="Reconcile", reason="PurgeFailed",
        event_type="Warning", note=events.transition_note(condition, "True"), now=NOW,
        instance="dataward-0",
    )  # fmt: skip
    assert body["metadata"]["namespace"] == "crm"
    assert body["metadata"]["name"].startswith("support-inquiries.")
    assert body["regarding"] == {
        "apiVersion": "dataward.io/v1alpha1", "kind": "PersonalDataStore",
        "name": "support-inquiries", "namespace": "crm", "uid": "u-1",
    }  # fmt: skip
    assert body["eventTime"] == "2026-12-02T04:05:06.789000Z"
    assert body["note"].startswith("Ready is False (was True): xxx")
    assert len(body["note"]) == 1024  # the API server refuses a longer note
    other = events.event(
        STORE, "PersonalDataStore", action="Reconcile", reason="PurgeFailed",
        event_type="Warning", note="n", now=NOW, instance="dataward-0",
    )  # fmt: skip
    assert other["metadata"]["name"] != body["metadata"]["name"]  # never overwrites one


def test_an_event_about_a_cluster_scoped_policy_lives_in_default() -> None:
    body = events.event(
        POLICY, "PrivacyPolicy", action="Revise", reason="RevisionInForce", event_type="Normal",
        note="revision 4 is in force", now=NOW, instance="dataward-0",
    )  # fmt: skip
    assert body["metadata"]["namespace"] == "default"
    assert "namespace" not in body["regarding"]
    assert body["regarding"]["apiVersion"] == "dataward.io/v1alpha1"


def test_a_new_condition_says_so_without_a_previous_status() -> None:
    note = events.transition_note(Condition("Complete", "True", "Answered", "done"), None)
    assert note == "Complete is True: done"


def test_a_refused_event_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Refusing:
        def create(self, body: Any) -> None:
            raise KubeError(403, "Forbidden", "create Event")

    body = events.event(
        STORE, "PersonalDataStore", action="Reconcile", reason="Ready", event_type="Normal",
        note="n", now=NOW, instance="dataward-0",
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="dataward.events"):
        events.post(cast(Kube, Refusing()), body)
    assert "PersonalDataStore crm/support-inquiries not posted" in caplog.text


def _about(uid: str, note: str = "NetworkIsolated is False (was True): x") -> dict[str, Any]:
    return {"regarding": {"kind": "PersonalDataStore", "namespace": "crm", "name": "s",
                          "uid": uid}, "note": note}  # fmt: skip


def test_a_flapping_object_gets_five_events_at_once_then_one_a_minute() -> None:
    # A condition flapping every second with someone's script: 45 Events in 30 s (red first).
    clock = [1000.0]
    limiter = events.Limiter(clock=lambda: clock[0])
    posted = []
    for _ in range(30):
        posted.append(limiter.admit(_about("u1")))
        clock[0] += 1
    assert sum(p is not None for p in posted) == 5
    clock[0] += 60  # a minute on: one more, saying how many were held back
    later = limiter.admit(_about("u1"))
    assert later is not None
    assert later["note"].startswith("(25 earlier Event(s) about this object not posted")
    assert later["note"].endswith("NetworkIsolated is False (was True): x")
    assert limiter.admit(_about("u1")) is None
    # Another object has its own allowance.
    assert limiter.admit(_about("u2")) is not None


def test_an_object_quiet_for_long_enough_has_its_whole_burst_again() -> None:
    clock = [0.0]
    limiter = events.Limiter(clock=lambda: clock[0])
    assert all(limiter.admit(_about("u1")) is not None for _ in range(5))
    assert limiter.admit(_about("u1")) is None
    clock[0] += 5 * 60
    assert all(limiter.admit(_about("u1")) is not None for _ in range(5))


def test_many_objects_keep_their_allowances_while_recent_and_lose_them_once_whole() -> None:
    """More objects than PRUNE_AT: a bucket still recent is never forgotten (a flapping
    object would get a new burst), one whose burst is whole again is dropped."""
    clock = [0.0]
    limiter = events.Limiter(clock=lambda: clock[0])
    assert all(limiter.admit(_about("flapping")) is not None for _ in range(5))
    for i in range(3 * events.PRUNE_AT):
        assert limiter.admit(_about(f"u{i}")) is not None
    assert limiter.admit(_about("flapping")) is None  # still limited, not forgotten
    clock[0] += 5 * 60  # every burst whole again
    for i in range(limiter._prune_at + 1):  # enough to reach the next pruning
        limiter.admit(_about(f"v{i}"))
    assert "u0" not in limiter._buckets and "flapping" not in limiter._buckets
    assert limiter.admit(_about("flapping")) is not None
