"""What the reconciler records in the evidence log, and that the log would accept each record.

A recording sink stands in for the database; every payload goes through the evidence log's
own validation (dataward.evidence.payloads.validate), as `EvidenceLog.append` does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.evidence.payloads import validate
from tests.controller.test_reconcile import KEY, RING, T0, conditions
from tests.controller.test_verdicts import _cluster, _run


class Sink:
    """Keeps what it is given, after the evidence log's own check."""

    def __init__(self, fail: bool = False) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []
        self.fail = fail

    def append(self, kind: str, subject: str, payload: Mapping[str, Any]) -> None:
        if self.fail:
            raise ConnectionError("evidence database down")
        self.records.append((kind, subject, validate(kind, subject, payload)))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [payload for k, _, payload in self.records if k == kind]


def _reconciler(kube: Any, sink: Sink) -> Reconciler:
    return Reconciler(kube, ReconcileSettings(evidence=sink))


def _finished_run(kube: Any, outcome: str) -> None:
    """The store's CronJob's run-1, finished (`outcome`: Complete or Failed) at 03:18."""
    kube._store(_run(kube, "run-1", "2026-01-10T03:17:00Z",
                     conditions=[{"type": outcome, "status": "True"}],
                     completionTime="2026-01-10T03:18:00Z"))  # fmt: skip


def test_a_new_store_records_its_key_and_every_condition_it_reaches() -> None:
    kube, sink = _cluster(), Sink()
    _reconciler(kube, sink).reconcile(KEY, now=T0)
    (created,) = sink.of("key.created")
    assert created["secret"] == RING and created["keyId"] == 1
    assert "material" not in json.dumps(sink.records)
    transitions = {p["type"]: p["status"] for p in sink.of("condition.transition")}
    assert transitions == {c: s for c, (s, _) in conditions(kube).items()}
    assert {subject for _, subject, _ in sink.records} == {"crm/support-inquiries"}


def test_nothing_is_recorded_when_nothing_changes() -> None:
    kube, sink = _cluster(), Sink()
    reconciler = _reconciler(kube, sink)
    reconciler.reconcile(KEY, now=T0)
    sink.records.clear()
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=5))
    assert sink.records == []


def test_a_rotation_records_the_new_and_the_previous_key() -> None:
    kube, sink = _cluster(), Sink()
    reconciler = _reconciler(kube, sink)
    reconciler.reconcile(KEY, now=T0)
    reconciler.reconcile(KEY, now=T0 + timedelta(days=31))  # keyRotation: 30d
    (rotated,) = sink.of("key.rotated")
    assert (rotated["keyId"], rotated["previousKeyId"]) == (2, 1)


def test_a_finished_purge_run_is_recorded_once() -> None:
    kube, sink = _cluster(), Sink()
    reconciler = _reconciler(kube, sink)
    reconciler.reconcile(KEY, now=T0)
    _finished_run(kube, "Failed")
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    (run,) = sink.of("purge.run")
    assert run["result"] == "Failed" and run["dryRun"] is False
    assert run["jobName"] == "run-1"  # one run, one record in the report however appended


def test_a_purge_run_whose_record_failed_is_recorded_on_a_later_pass() -> None:
    # Red on the old code: lastPurge moved to the run whatever the append did, and the next
    # pass, seeing the same jobName, never appended again: the run was missing from the
    # report for good.
    kube, sink = _cluster(), Sink()
    reconciler = _reconciler(kube, sink)
    reconciler.reconcile(KEY, now=T0)
    _finished_run(kube, "Failed")
    sink.fail = True
    due = reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert due is not None and due <= T0 + timedelta(minutes=3)  # looked at again soon
    sink.fail = False
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=3))
    (run,) = sink.of("purge.run")
    assert run["jobName"] == "run-1"
    store = kube.objects[("PersonalDataStore", *KEY)]
    assert store["status"]["lastPurge"]["jobName"] == "run-1"


def test_a_run_that_left_no_result_record_is_recorded_as_unknown() -> None:
    # Red on the old code: the record of a run whose outcome is unknown was refused by the
    # evidence log (its result was not one it took), so the run never reached the report.
    kube, sink = _cluster(), Sink()
    reconciler = _reconciler(kube, sink)
    reconciler.reconcile(KEY, now=T0)
    _finished_run(kube, "Complete")
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    (run,) = sink.of("purge.run")
    assert (run["jobName"], run["result"], run["reason"]) == ("run-1", "Unknown", "NoResultRecord")


def test_an_evidence_database_that_is_down_never_stops_the_controls() -> None:
    kube = _cluster()
    _reconciler(kube, Sink(fail=True)).reconcile(KEY, now=T0)
    assert conditions(kube)["Ready"] == ("True", "AllControlsInForce")
