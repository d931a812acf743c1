"""A policy revision is enforced only from its effective date, after its notice period.

Through the reconciler's public `reconcile_policy` and `reconcile` on an in-memory API, with
the time passed in (the operator's injectable clock), never slept. The sample store keeps
support inquiries 180 days in a category allowing 1 year; the revision cuts the category to
3 months, so under it the store no longer complies and its purge is suspended. A careless
operator would apply that at once.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.evidence.payloads import validate
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster
from tests.model import samples

POLICY = samples.POLICY["metadata"]["name"]
CRONJOB = "dataward-support-inquiries-purge"
TAKES_EFFECT = datetime(2026, 2, 10, tzinfo=UTC)  # the revision's effectiveDate


class Evidence:
    """Collects what the reconciler appends, after checking it as the real log would."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def append(self, kind: str, subject: str, payload: Mapping[str, Any]) -> None:
        validate(kind, subject, payload)
        if kind == "policy.revision":  # the stores' own records are not this test's
            self.records.append((kind, subject, dict(payload)))


def cluster() -> FakeKube:
    return sample_cluster(FakeKube())


def policy_object(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[("PrivacyPolicy", None, POLICY)]


def revise(kube: FakeKube, period: str = "3mo", **schedule: Any) -> None:
    """Edit the policy as a user would: the API server bumps the generation."""
    policy = copy.deepcopy(policy_object(kube))
    for category in policy["spec"]["categories"]:
        if category["name"] == "technical-support-inquiry":
            category["retention"]["period"] = period
    policy["spec"].update(schedule)
    for key in [k for k, v in schedule.items() if v is None]:
        del policy["spec"][key]
    policy["metadata"]["generation"] += 1
    kube._store(policy)


def policy_condition(kube: FakeKube) -> tuple[str, str]:
    found = next(c for c in policy_object(kube)["status"]["conditions"]
                 if c["type"] == "RevisionInForce")
    return found["status"], found["reason"]


def suspended(kube: FakeKube) -> bool:
    return bool(kube.objects[("CronJob", "crm", CRONJOB)]["spec"]["suspend"])


def test_a_revision_applied_today_is_enforced_only_from_its_effective_date() -> None:
    kube, evidence = cluster(), Evidence()
    reconciler = Reconciler(kube, ReconcileSettings(evidence=evidence))  # type: ignore[arg-type]
    requeued: list[str] = []
    reconciler.on_revision_change = requeued.append
    reconciler.reconcile_policy(POLICY, now=T0)
    first = policy_object(kube)["status"]["revisions"]
    assert first["inForce"]["generation"] == 3 and "pending" not in first
    assert [r[0] for r in evidence.records] == ["policy.revision"]  # the first revision
    reconciler.reconcile(KEY, now=T0)
    assert conditions(kube)["PolicyCompliant"][0] == "True" and not suspended(kube)

    revise(kube, announced="2026-01-10", effectiveDate="2026-02-10")
    due = reconciler.reconcile_policy(POLICY, now=T0 + timedelta(minutes=1))
    revisions = policy_object(kube)["status"]["revisions"]
    assert revisions["inForce"]["generation"] == 3
    assert revisions["pending"]["generation"] == 4
    assert revisions["pending"]["takesEffect"] == "2026-02-10T00:00:00Z"
    assert revisions["pending"]["noticeDays"] == 7 and revisions["pending"]["widens"] == []
    assert due == TAKES_EFFECT
    assert policy_condition(kube) == ("False", "NoticePeriod")
    # The store that will stop complying is named before it happens.
    assert revisions["pending"]["affectedStores"] == 1
    assert revisions["pending"]["impact"][0]["store"] == "crm/support-inquiries"
    assert revisions["pending"]["impact"][0]["after"]["outcome"] == "RetentionTooLong"
    # The store is still judged by the revision in force, and told when to look again.
    store_due = reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert conditions(kube)["PolicyCompliant"][0] == "True" and not suspended(kube)
    assert store_due is not None and store_due <= TAKES_EFFECT
    reconciler.reconcile(KEY, now=TAKES_EFFECT - timedelta(seconds=1))
    assert conditions(kube)["PolicyCompliant"][0] == "True"
    assert requeued == [POLICY] and len(evidence.records) == 1  # the first revision's only

    assert reconciler.reconcile_policy(POLICY, now=TAKES_EFFECT) is None
    revisions = policy_object(kube)["status"]["revisions"]
    assert revisions["inForce"]["generation"] == 4 and "pending" not in revisions
    assert revisions["inForce"]["since"] == "2026-02-10T00:00:00Z"
    assert policy_condition(kube) == ("True", "Current")
    assert requeued == [POLICY, POLICY]
    kind, subject, payload = evidence.records[-1]
    assert (kind, subject, payload["generation"]) == ("policy.revision", POLICY, 4)
    reconciler.reconcile(KEY, now=TAKES_EFFECT)
    assert conditions(kube)["PolicyCompliant"] == ("False", "RetentionTooLong")
    assert suspended(kube)


def test_a_widening_revision_waits_30_days_whatever_its_effective_date_says() -> None:
    kube = cluster()
    reconciler = Reconciler(kube, ReconcileSettings())  # type: ignore[arg-type]
    reconciler.reconcile_policy(POLICY, now=T0)
    # Backdated announcement, effective next week, retention doubled: 30 days from now.
    revise(kube, "2y", announced="2025-12-01", effectiveDate="2026-01-17")
    due = reconciler.reconcile_policy(POLICY, now=T0)
    pending = policy_object(kube)["status"]["revisions"]["pending"]
    assert pending["noticeDays"] == 30 and due == T0 + timedelta(days=30)
    assert pending["widens"] == [
        "category technical-support-inquiry: retention 2y may be longer than 1y"
    ]


def test_the_status_in_force_is_exactly_the_spec_in_force_no_leftover_keys() -> None:
    """A merge patch keeps keys it does not name: the emergency of the previous revision
    must not stay in the status copy of the next one (it would read as that one's)."""
    kube = cluster()
    reconciler = Reconciler(kube, ReconcileSettings())  # type: ignore[arg-type]
    revise(kube, "1y", emergency={"reason": "court order 2026-77 applies now"})
    reconciler.reconcile_policy(POLICY, now=T0)
    revise(kube, "3mo", emergency=None, announced="2026-01-10", effectiveDate="2026-01-17")
    reconciler.reconcile_policy(POLICY, now=T0)
    reconciler.reconcile_policy(POLICY, now=T0 + timedelta(days=7))
    status = policy_object(kube)["status"]["revisions"]
    assert status["inForce"]["spec"] == policy_object(kube)["spec"]
    assert "emergency" not in status["inForce"]["spec"]


def test_an_emergency_revision_takes_effect_at_once_and_is_recorded() -> None:
    kube, evidence = cluster(), Evidence()
    reconciler = Reconciler(kube, ReconcileSettings(evidence=evidence))  # type: ignore[arg-type]
    reconciler.reconcile_policy(POLICY, now=T0)
    revise(kube, announced="2026-01-10", effectiveDate="2026-01-10",
           emergency={"reason": "court order 2026-77 requires it"})
    reconciler.reconcile_policy(POLICY, now=T0)
    assert policy_object(kube)["status"]["revisions"]["inForce"]["generation"] == 4
    assert evidence.records[-1][2]["emergency"] == "court order 2026-77 requires it"
    notes = [o for (k, _, _), o in kube.objects.items() if k == "Event"]
    assert any(e["reason"] == "RevisionInForce" for e in notes)
