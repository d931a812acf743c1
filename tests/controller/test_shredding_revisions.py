"""A bucket key is destroyed only by the revision of the policy in force at every clock the
decision reads: the operator's and the API server's (within the allowed skew, either may be
the right one).

The store keeps support inquiries by its category's retention (no retention of its own); the
category asks for month keys. A revision of the category's retention takes effect at TAKES
(2026-02-10T00:00:00Z, its effectiveDate: worked by hand below). July 2025's last record
(Jul 31 23:59:59.999999) expires:

- 180 days later: Jan 27 2026 at 23:59:59.999999;
- 200 days later: Feb 16 2026 at 23:59:59.999999;
- a year later: Jul 31 2026 at 23:59:59.999999.

So at TAKES give or take a minute, July is due under 180 days and live under 200 days or a
year: which revision is in force decides whether its records may still be read.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import cast

from dataward.controller.kube import Kube
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.purge.plan import ACKNOWLEDGE_ANNOTATION
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import KEY, T0, sample_cluster, status
from tests.controller.test_shredding import Sink, ring
from tests.model import samples

POLICY = samples.POLICY["metadata"]["name"]
TAKES = datetime(2026, 2, 10, tzinfo=UTC)
CATEGORY = "technical-support-inquiry"


def cluster(period: str) -> FakeKube:
    """The category keeps `period`, with month keys; the store keeps what its category does."""
    policy = copy.deepcopy(samples.POLICY)
    for category in policy["spec"]["categories"]:
        if category["name"] == CATEGORY:
            category["keyBuckets"] = "month"
            category["retention"]["period"] = period
    store = copy.deepcopy(samples.STORE)
    del store["spec"]["retention"]
    return sample_cluster(FakeKube(), policy, store)


def revise(kube: FakeKube, period: str) -> None:
    """The category's retention revised to `period`, announced at T0, effective at TAKES."""
    policy = copy.deepcopy(kube.objects[("PrivacyPolicy", None, POLICY)])
    for category in policy["spec"]["categories"]:
        if category["name"] == CATEGORY:
            category["retention"]["period"] = period
    policy["spec"].update(announced="2026-01-10", effectiveDate="2026-02-10")
    policy["metadata"]["generation"] += 1
    kube._store(policy)


def run(
    kube: FakeKube, sink: Sink | None, now: datetime, server: timedelta = timedelta(0)
) -> None:
    """One pass over the policy, then the store, at the operator's `now`; the API server's
    clock `server` off it."""
    kube.server_time = now + server
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(evidence=sink))
    reconciler.reconcile_policy(POLICY, now=now)
    reconciler.reconcile(KEY, now=now)


def pending_takes_effect(kube: FakeKube) -> str:
    revisions = kube.objects[("PrivacyPolicy", None, POLICY)]["status"]["revisions"]
    return str(revisions["pending"]["takesEffect"])


def accept_impact(kube: FakeKube) -> None:
    """The cut's impact is not counted here (no preview Job runs): a person accepts it."""
    policy = kube.objects[("PrivacyPolicy", None, POLICY)]
    token = policy["status"]["revisions"]["pending"]["acknowledgeToken"]
    policy["metadata"].setdefault("annotations", {})[ACKNOWLEDGE_ANNOTATION] = token


def test_a_shortened_retention_in_force_by_the_operators_clock_only_shreds_nothing() -> None:
    """200 days cut to 180 (7 days' notice). The operator's clock is a minute past TAKES,
    the API server's a minute before it (two minutes apart: within the 5 minutes allowed). By
    the server's time 200 days are still in force and July's records are live until Feb 16:
    its key stays."""
    kube = cluster("200d")
    sink = Sink(kube)
    run(kube, None, T0)  # the ring
    run(kube, sink, T0 + timedelta(minutes=1))  # its bucket keys: June 2025 on
    run(kube, sink, datetime(2026, 1, 20, tzinfo=UTC))  # June's key goes (due Jan 16)
    assert [p["bucket"] for p in sink.of("key.shredded")] == ["2025-06"]
    revise(kube, "180d")
    run(kube, sink, datetime(2026, 1, 20, 0, 1, tzinfo=UTC))
    assert pending_takes_effect(kube) == "2026-02-10T00:00:00Z"
    accept_impact(kube)
    run(kube, sink, TAKES + timedelta(minutes=1), server=-timedelta(minutes=2))
    assert "2025-07" in ring(kube).buckets
    assert [p["bucket"] for p in sink.of("key.shredded")] == ["2025-06"]
    # Once both clocks are past TAKES, 180 days are in force by both: July goes.
    run(kube, sink, TAKES + timedelta(minutes=3))
    assert "2025-07" not in ring(kube).buckets
    assert [p["bucket"] for p in sink.of("key.shredded")] == ["2025-06", "2025-07"]


def test_a_lengthened_retention_in_force_by_the_servers_clock_only_shreds_nothing() -> None:
    """180 days lengthened to a year (30 days' notice, counted from the operator's first
    sight of it at T0: TAKES is later still). The operator's clock is a minute before TAKES,
    the API server's a minute after it. By the server's time a year is in force and July's
    records are live until Jul 31: its key stays, and still stays once both clocks agree."""
    kube = cluster("180d")
    sink = Sink(kube)
    run(kube, None, T0)
    revise(kube, "1y")
    run(kube, sink, T0 + timedelta(minutes=1))  # the bucket keys, July 2025 on
    assert pending_takes_effect(kube) == "2026-02-10T00:00:00Z"
    accept_impact(kube)
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    run(kube, sink, TAKES - timedelta(minutes=1), server=timedelta(minutes=2))
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    run(kube, sink, TAKES + timedelta(minutes=2))
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []


def test_a_revision_recorded_in_force_from_the_future_keeps_the_keys_and_says_so() -> None:
    """Whoever may write the policy's status records its revision in force since 2027: what
    was in force now is then unknown. July's key (due by 180 days since Jan 28) stays, and
    the verdict says why rather than waiting quietly."""
    kube = cluster("180d")
    sink = Sink(kube)
    run(kube, None, T0)
    run(kube, sink, T0 + timedelta(minutes=1))
    policy = kube.objects[("PrivacyPolicy", None, POLICY)]
    policy["status"]["revisions"]["inForce"]["since"] = "2027-01-01T00:00:00Z"
    kube.server_time = datetime(2026, 2, 1, tzinfo=UTC)
    Reconciler(cast(Kube, kube), ReconcileSettings(evidence=sink)).reconcile(
        KEY, now=datetime(2026, 2, 1, tzinfo=UTC)
    )
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    (ready,) = [c for c in status(kube)["conditions"] if c["type"] == "EncryptionKeyReady"]
    assert ready["reason"] == "KeyShreddingFailed"
    assert "in force since 2027-01-01T00:00:00Z" in ready["message"]
