"""The reconcile benchmark's bookkeeping: what it counts must be what happened.

A wrong tally here would print a steady state as silent when it is not, or a restart as
re-verified when stores were missed; these cases are the ways that could happen.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.reconcile_bench import (
    AuditTail,
    ReadyWatch,
    Tally,
    credentials,
    moved,
    namespace_names,
    percentile,
    sample_indices,
    stores,
    wait_idle,
)

USER = "dataward-bench"


def event(verb: str, resource: str | None = None, *, name: str | None = None,
          user: str = USER, stage: str = "ResponseComplete", when: datetime | None = None,
          uri: str = "/apis/dataward.io/v1alpha1", subresource: str | None = None,
          ) -> dict[str, Any]:
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out: dict[str, Any] = {
        "stage": stage, "verb": verb, "user": {"username": user}, "requestURI": uri,
        "requestReceivedTimestamp": stamp, "stageTimestamp": stamp,
    }
    if resource is not None:
        ref: dict[str, Any] = {"resource": resource, "namespace": "bench"}
        if name:
            ref["name"] = name
        if subresource:
            ref["subresource"] = subresource
        out["objectRef"] = ref
    return out


def write(path: Path, *events: dict[str, Any], partial: str = "") -> None:
    with path.open("a") as log:
        for item in events:
            log.write(json.dumps(item) + "\n")
        log.write(partial)


def test_audit_tail_reads_each_event_once_and_waits_for_a_line_being_written(
    tmp_path: Path,
) -> None:
    log = tmp_path / "audit.jsonl"
    first = event("get", "secrets", name="ring-a")
    half = json.dumps(event("get", "secrets", name="ring-b"))
    write(log, first, partial=half[:40])
    tail = AuditTail(log, USER)
    assert [e["objectRef"]["name"] for e in tail.read()] == ["ring-a"]
    # The rest of the line arrives: the event is read whole, once, and the first not again.
    write(log, partial=half[40:] + "\n")
    assert [e["objectRef"]["name"] for e in tail.read()] == ["ring-b"]
    assert list(tail.read()) == []


def test_audit_tail_keeps_only_the_users_completed_requests(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    write(
        log,
        event("patch", "cronjobs", name="x", user="admin"),
        # A user whose name contains the operator's: not the operator.
        event("patch", "cronjobs", name="x", user=USER + "-2"),
        event("watch", "roles", stage="ResponseStarted"),
        event("update", "cronjobs", name="ours"),
    )
    assert [e["verb"] for e in AuditTail(log, USER).read()] == ["update"]


def test_audit_tail_skip_forgets_what_came_before(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    write(log, event("delete", "networkpolicies", name="before"))
    tail = AuditTail(log, USER)
    tail.skip()
    write(log, event("delete", "networkpolicies", name="after"))
    assert [e["objectRef"]["name"] for e in tail.read()] == ["after"]


def test_missing_audit_log_reads_nothing(tmp_path: Path) -> None:
    tail = AuditTail(tmp_path / "none.jsonl", USER)
    tail.skip()
    assert list(tail.read()) == []


def test_tally_counts_writes_and_per_store_gets_apart_from_lease_and_discovery() -> None:
    tally = Tally()
    for item in (
        event("update", "leases", name="dataward-operator"),
        event("get", "leases", name="dataward-operator"),
        event("get", uri="/apis/dataward.io/v1alpha1"),  # discovery: no objectRef
        event("watch", "roles"),
        event("list", "roles"),
        event("get", "secrets", name="dataward-store-001-keyring"),
        event("patch", "personaldatastores", name="store-001", subresource="status"),
    ):
        tally.add(item)
    assert tally.mutating() == 1  # the status patch; the Lease update is not counted
    assert tally.requests["patch personaldatastores/status"] == 1
    assert sum(tally.lease.values()) == 2
    assert dict(tally.gets()) == {"get secrets": 1}
    assert tally.reads() == 4  # discovery, watch, list, the ring


def test_a_silent_window_has_no_per_store_gets() -> None:
    tally = Tally()
    tally.add(event("watch", "networkpolicies"))
    tally.add(event("get", uri="/apis/dataward.io/v1alpha1"))
    assert tally.mutating() == 0
    assert not tally.gets()


def test_stores_go_round_robin_and_the_baseline_mirrors_them() -> None:
    ns = namespace_names("bench", 4)
    assert ns == ["bench-000", "bench-001", "bench-002", "bench-003"]
    assert namespace_names("bench", 1) == ["bench"]  # comparable with earlier runs
    docs = stores(10, ns)
    assert [d["metadata"]["namespace"] for d in docs[:5]] == [*ns, "bench-000"]
    assert len({d["metadata"]["name"] for d in docs}) == 10
    assert len({d["spec"]["database"]["credentialsSecret"] for d in docs}) == 10
    secrets = credentials(docs)
    assert [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in secrets] == [
        (d["metadata"]["namespace"], d["spec"]["database"]["credentialsSecret"]) for d in docs
    ]
    raw = moved(docs, namespace_names("raw", 4))
    assert [d["metadata"]["namespace"] for d in raw[:5]] == [
        "raw-000", "raw-001", "raw-002", "raw-003", "raw-000"]
    assert raw[3]["spec"] == docs[3]["spec"]
    assert docs[0]["metadata"]["namespace"] == "bench-000"  # the original is not changed


def test_samples_are_distinct_and_span_the_namespaces() -> None:
    picks = sample_indices(10_000, 50)
    assert len(set(picks)) == 50
    # Every 200th store would all fall in one of 100 namespaces; a spread must not.
    assert len({i % 100 for i in picks}) >= 30
    assert sorted(sample_indices(5, 50)) == [0, 1, 2, 3, 4]


def test_percentile_is_nearest_rank_and_keeps_timeouts() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 99) == 10.0
    assert math.isinf(percentile([0.1] * 99 + [math.inf], 99.5))
    assert percentile([0.1] * 99 + [math.inf], 99) == 0.1


def test_wait_idle_waits_out_a_recent_request_but_not_lease_or_discovery(
    tmp_path: Path,
) -> None:
    log = tmp_path / "audit.jsonl"
    log.touch()
    tail = AuditTail(log, USER)
    write(log, event("update", "leases", name="l"), event("get", uri="/apis"))
    start = time.monotonic()
    waited, idle = wait_idle(tail, 0.2, 10, Tally())
    assert idle and time.monotonic() - start < 1.5
    # A reconcile's read 1 s in the future (clock skew aside: "just now" plus work) keeps it busy.
    write(log, event("get", "secrets", name="ring", when=datetime.now(UTC) + timedelta(seconds=1)))
    tally = Tally()
    waited, idle = wait_idle(tail, 0.2, 10, tally)
    assert idle and waited >= 1.0
    assert tally.requests["get secrets"] == 1
    # Never quiet within the timeout: says so.
    write(log, event("get", "secrets", name="ring", when=datetime.now(UTC) + timedelta(hours=1)))
    waited, idle = wait_idle(tail, 0.2, 1.0, Tally())
    assert not idle


def test_audit_tail_follows_the_log_across_the_api_servers_rotation(tmp_path: Path) -> None:
    # At 10,000 stores the log passes 100 MB and the API server renames it and starts a new
    # one: the tail must read the rest of the old file, then the new one from its start.
    log = tmp_path / "audit.jsonl"
    write(log, event("get", "secrets", name="ring-with-a-long-name-before-rotation"))
    tail = AuditTail(log, USER)
    assert [e["objectRef"]["name"] for e in tail.read()] == [
        "ring-with-a-long-name-before-rotation"
    ]
    write(log, event("get", "secrets", name="late"))
    log.rename(tmp_path / "audit-2026-12-02T04-00-00.000.jsonl")
    write(log, event("get", "secrets", name="new"))
    assert [e["objectRef"]["name"] for e in tail.read()] == ["late", "new"]
    write(log, event("get", "secrets", name="next"))
    assert [e["objectRef"]["name"] for e in tail.read()] == ["next"]


def _store(namespace: str, name: str, ready: str | None) -> dict[str, Any]:
    conditions = [{"type": "KeyRingReady", "status": "True"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    return {"metadata": {"namespace": namespace, "name": name},
            "status": {"conditions": conditions}}


def test_ready_watch_counts_only_the_benchs_stores_that_are_ready_now() -> None:
    # The count ends the convergence window: a store counted twice, one of another namespace,
    # one that lost Ready or was deleted, or a control other than Ready being True, would
    # end it early.
    watch = ReadyWatch(kube=None, namespaces={"bench-0", "bench-1"})  # type: ignore[arg-type]
    a, b = _store("bench-0", "a", "True"), _store("bench-1", "b", "True")
    watch._event("PersonalDataStore", None, _store("bench-0", "a", None))
    watch._event("PersonalDataStore", None, _store("bench-0", "c", "False"))
    watch._event("PersonalDataStore", None, _store("raw-0", "a", "True"))
    assert watch.count()[0] == 0
    watch._event("PersonalDataStore", None, a)
    watch._event("PersonalDataStore", a, a)
    watch._event("PersonalDataStore", None, b)
    reached = watch.count()
    assert reached[0] == 2 and reached[1] > 0
    watch._event("PersonalDataStore", a, _store("bench-0", "a", "Unknown"))
    watch._event("PersonalDataStore", b, None)
    assert watch.count()[0] == 0
