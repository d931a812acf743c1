"""The gates before a key is destroyed: the clocks, the store's compliance, a large shredding
and a spec changed under the decision. Against an in-memory API (its answers' Date header is
`FakeKube.server_time`) and an evidence sink; dates as in test_shredding (July 2025's key is
due at DUE = 2026-01-28, worked by hand there).

August 2025's last record (Aug 31 23:59:59.999999) expires 180 days later, on Feb 27 2026 at
23:59:59.999999 (worked by hand): at BOTH_DUE, July's and August's keys are due at once.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from dataward.checks.encryption import shredding_token
from dataward.checks.reasons import lookup
from dataward.controller.kube import Kube
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.purge.plan import ACKNOWLEDGE_ANNOTATION, acknowledge_token
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import KEY, T0, conditions, status
from tests.controller.test_shredding import (
    DUE,
    Sink,
    StaleCache,
    Synced,
    assert_evidence_matches_the_ring,
    cluster,
    ring,
    ring_writes_lose_a_race,
    run,
)
from tests.model import samples

BOTH_DUE = datetime(2026, 2, 28, tzinfo=UTC)


def ready(kube: FakeKube) -> FakeKube:
    run(kube, None, T0)  # creates the ring; its status confirms it
    return kube


def message(kube: FakeKube, type_: str = "EncryptionKeyReady") -> str:
    (text,) = [c["message"] for c in status(kube)["conditions"] if c["type"] == type_]
    return str(text)


def notes(kube: FakeKube) -> list[dict[str, Any]]:
    """The Events posted."""
    return [o for (kind, _, _), o in kube.objects.items() if kind == "Event"]


def store_object(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[("PersonalDataStore", *KEY)]


def edit_spec(kube: FakeKube, **spec: Any) -> None:
    """`kubectl edit` of the store's spec: a new generation."""
    obj = store_object(kube)
    obj["spec"].update(spec)
    obj["metadata"]["generation"] = int(obj["metadata"]["generation"]) + 1
    kube._store(obj)


# --- the clocks --------------------------------------------------------------------------------


def test_an_operator_clock_ahead_of_the_api_server_shreds_nothing() -> None:
    """The operator's clock is 10 minutes fast: by it, July is due; the API server says it
    is not time yet, and the two disagree by more than DEFAULT_MAX_CLOCK_SKEW."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    run(kube, sink, DUE + timedelta(minutes=5), server=-timedelta(minutes=10))
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingClockSkew")
    assert "about 10 minute(s) ahead of the API server's, more than the 300s" in message(kube)
    before = message(kube)
    run(kube, sink, DUE + timedelta(minutes=5, seconds=30), server=-timedelta(minutes=10))
    assert message(kube) == before, "the same message at every pass: no status write"
    # The clocks agree again: destroyed.
    run(kube, sink, DUE + timedelta(minutes=6))
    assert "2025-07" not in ring(kube).buckets and len(sink.of("key.shredded")) == 1
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")


def test_a_clock_behind_the_api_server_by_too_much_is_refused_too() -> None:
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    run(kube, sink, DUE + timedelta(hours=1), server=timedelta(minutes=6))
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingClockSkew")


def test_within_the_bound_the_api_servers_time_decides() -> None:
    """Two minutes apart is within the bound, but a key due only by the operator's (fast)
    clock stays until the API server's time reaches it."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    due = run(kube, sink, DUE + timedelta(minutes=1), server=-timedelta(minutes=2))
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert due is not None and due <= DUE + timedelta(minutes=2), "looked at again soon"
    run(kube, sink, DUE + timedelta(minutes=3), server=-timedelta(minutes=2))
    assert "2025-07" not in ring(kube).buckets and len(sink.of("key.shredded")) == 1


def test_an_answer_without_a_date_is_an_unknown_server_time() -> None:
    """Unknown is not absent: no Date header, no destruction."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    kube.server_time = None
    Reconciler(cast(Kube, kube), ReconcileSettings(evidence=sink)).reconcile(KEY, now=DUE)
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingClockSkew")
    assert "no Date header" in message(kube)


def test_a_test_clock_is_compared_through_its_offset() -> None:
    """An operator on a test clock a year off the real one: `skew_reference` moves the
    server's time by the same offset, so the clocks agree and the key goes."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    offset = DUE - datetime.now(UTC)
    kube.server_time = datetime.now(UTC)  # the real API server, in the real present
    settings = ReconcileSettings(evidence=sink, skew_reference=lambda server: server + offset)
    Reconciler(cast(Kube, kube), settings).reconcile(KEY, now=DUE + timedelta(seconds=30))
    assert "2025-07" not in ring(kube).buckets and len(sink.of("key.shredded")) == 1


class SlowApi(FakeKube):
    """An API server whose clock agrees with the operator's (`at`), and a pass in which the
    children's writes take `slow` (API timeouts) before the store is read again."""

    def __init__(self, kube: FakeKube, slow: timedelta) -> None:
        self.__dict__.update(kube.__dict__)
        self.at = DUE
        self.slow = slow

    def clock(self) -> datetime:
        return self.at

    def apply(self, obj: Any, version: str | None = None) -> dict[str, Any]:
        self.at += self.slow
        self.slow = timedelta(0)
        return super().apply(obj, version)

    def get_dated(
        self, kind: str, namespace: str | None, name: str
    ) -> tuple[dict[str, Any] | None, datetime | None]:
        self.server_time = self.at  # the clocks agree: Date is the operator's time then
        return super().get_dated(kind, namespace, name)


def test_a_slow_pass_is_no_clock_skew_and_records_the_time_of_the_read() -> None:
    """The pass starts at DUE, then the children's writes take six minutes of API timeouts
    before the store is read again. The clocks agree all along: the key goes, and its
    destruction is recorded at the time of that read, not at the start of the pass."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    store_object(kube)["spec"]["network"] = {"allowFrom": []}  # a child to write again
    slow = SlowApi(kube, timedelta(minutes=6))
    settings = ReconcileSettings(evidence=sink, clock=slow.clock)
    Reconciler(cast(Kube, slow), settings).reconcile(KEY)
    assert conditions(slow)["EncryptionKeyReady"] == ("True", "KeyReady"), message(slow)
    assert "2025-07" not in ring(slow).buckets and len(sink.of("key.shredded")) == 1
    (gone,) = status(slow)["encryption"]["shreddedBuckets"]
    assert gone["shredded"] == "2026-01-28T00:06:00Z"
    (entry,) = [g for g in ring(slow).shredded if g.bucket == "2025-07"]
    assert entry.shredded == DUE + timedelta(minutes=6)


# --- the store must be compliant ---------------------------------------------------------------


def test_a_control_not_in_force_keeps_the_keys() -> None:
    """The last recorded verdicts say the store is not isolated: nothing is destroyed."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    for condition in store_object(kube)["status"]["conditions"]:
        if condition["type"] == "NetworkIsolated":
            condition.update(status="False", reason="ForeignPolicyWidens")
    run(kube, sink, DUE)
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingNotCompliant")
    assert "NetworkIsolated" in message(kube)


def test_unreadable_verdicts_keep_the_keys() -> None:
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    store_object(kube)["status"]["conditions"] = [{"type": "NetworkIsolated"}]  # no status
    run(kube, sink, DUE)
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingNotCompliant")
    assert "not in the form the operator writes" in message(kube)


def test_a_store_this_pass_finds_not_compliant_keeps_the_keys() -> None:
    """An archive on a category without a statutory period (ArchiveNotAllowed) is added
    right before the due pass: its recorded verdicts are still all True, this pass's are not."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    edit_spec(kube, archive=copy.deepcopy(samples.ARCHIVE))
    run(kube, sink, DUE)
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["PolicyCompliant"][0] == "False"
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingNotCompliant")
    assert "ArchiveNotAllowed" in message(kube)


def test_a_control_this_pass_finds_not_in_force_keeps_the_keys() -> None:
    """Someone adds a NetworkPolicy that lets every pod reach the database right before the
    due pass (no edit of the store: its generation and recorded verdicts are as before, all
    True). This pass finds NetworkIsolated False: nothing is destroyed on it."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    kube._store({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all", "namespace": "crm"},
        "spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]},
    })  # fmt: skip
    run(kube, sink, DUE)
    assert conditions(kube)["NetworkIsolated"][0] == "False"
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingNotCompliant")
    assert "this pass finds NetworkIsolated False (OtherPolicyAllowsIngress)):" in message(kube)
    assert "Ready False" not in message(kube), "the Ready of two verdicts is not the store's"


def test_verdicts_recorded_for_an_earlier_generation_wait_quietly() -> None:
    """Someone edits who may reach the database right before the due pass: the recorded
    verdicts are all True, but for the spec before the edit (generation 4; the store is now
    at 5). They say nothing of the store as it is now, so this pass destroys nothing; but
    nothing is wrong either: EncryptionKeyReady stays as recorded (no transition, no Event)
    and the store is looked at again soon. The next pass, once this pass's verdicts are
    recorded for generation 5, destroys the key."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    edit_spec(kube, network={"allowFrom": [{"namespaceSelector": {}}]})
    before = conditions(kube)["EncryptionKeyReady"]
    events = len(notes(kube))
    due = run(kube, sink, DUE)
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == before == ("True", "KeyReady")
    assert conditions(kube)["Ready"][0] == "True"
    assert len(notes(kube)) == events, "no Event: nothing changed status"
    assert sink.of("condition.transition") == []
    assert due is not None and due <= DUE + timedelta(minutes=1), "looked at again soon"
    run(kube, sink, DUE + timedelta(minutes=1))
    assert "2025-07" not in ring(kube).buckets and len(sink.of("key.shredded")) == 1
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")


def test_lifting_a_dry_run_is_no_moment_of_non_compliance() -> None:
    """July's key is due under spec.purge.dryRun (kept, KeyShreddingHeld). The dry run is
    lifted: the first pass after the edit reads verdicts recorded for the spec with the dry
    run. That is a wait for this pass's own status write, not a store out of compliance: no
    Ready=False, no KeyShreddingNotCompliant, no Warning, nothing destroyed; the next pass
    destroys the key."""
    kube = ready(cluster())
    sink = Sink(kube)
    edit_spec(kube, purge={"dryRun": True})
    run(kube, sink, T0 + timedelta(minutes=1))
    run(kube, sink, DUE)
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyShreddingHeld")
    assert conditions(kube)["Ready"][0] == "True"
    events = len(notes(kube))
    transitions = len(sink.of("condition.transition"))
    edit_spec(kube, purge={})
    run(kube, sink, DUE + timedelta(minutes=1))
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyShreddingHeld")
    assert conditions(kube)["Ready"][0] == "True"
    assert len(notes(kube)) == events and len(sink.of("condition.transition")) == transitions
    run(kube, sink, DUE + timedelta(minutes=2))
    assert "2025-07" not in ring(kube).buckets and len(sink.of("key.shredded")) == 1
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    assert conditions(kube)["Ready"][0] == "True"
    assert len(sink.of("condition.transition")) == transitions


def test_verdicts_that_stay_behind_after_the_wait_keep_the_keys() -> None:
    """Someone who may patch the store's status puts the verdicts' observedGeneration back
    after every pass: the wait for them is once per generation, then the keys are kept, and
    the store says why (KeyShreddingNotCompliant)."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    edit_spec(kube, network={"allowFrom": [{"namespaceSelector": {}}]})
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(evidence=sink))
    for minutes in (0, 1):
        for condition in store_object(kube)["status"]["conditions"]:
            condition["observedGeneration"] = 1
        kube.server_time = DUE + timedelta(minutes=minutes)
        reconciler.reconcile(KEY, now=DUE + timedelta(minutes=minutes))
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingNotCompliant")
    assert "earlier generation of the spec than 5: AccessRestricted, NetworkIsolated" in (
        message(kube)
    )


def test_a_verdict_not_true_on_the_edited_spec_still_blocks() -> None:
    """The wait for the verdicts on an edit ends with them: the pass after it reads them
    recorded for the new generation, and one that is not True keeps the keys, with why."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    edit_spec(kube, network={"allowFrom": [{"namespaceSelector": {}}]})
    run(kube, sink, DUE)
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    for condition in store_object(kube)["status"]["conditions"]:
        if condition["type"] == "PurgeSucceeded":
            assert condition["observedGeneration"] == 5
            condition.update(status="False", reason="PurgeFailed")
    run(kube, sink, DUE + timedelta(minutes=1))
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingNotCompliant")
    assert "not in force (not True): PurgeSucceeded" in message(kube)


def test_verdicts_without_an_observed_generation_keep_the_keys() -> None:
    """Unknown is not True: a verdict that does not say which spec it judged."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    for condition in store_object(kube)["status"]["conditions"]:
        condition.pop("observedGeneration", None)
    run(kube, sink, DUE)
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingNotCompliant")


# --- a large shredding waits for a person ------------------------------------------------------


SHREDDING_ANNOTATION = "dataward.io/acknowledge-shredding"


def outage_cluster() -> FakeKube:
    kube = cluster()
    store_object(kube)["spec"]["encryption"]["keyRotation"] = "90d"  # not due in the outage
    return ready(kube)


def asked_token(kube: FakeKube) -> str:
    """The token the condition's `kubectl annotate` command names."""
    found = re.search(re.escape(SHREDDING_ANNOTATION) + r"=(\S+) --overwrite", message(kube))
    assert found is not None, message(kube)
    return found.group(1)


def annotate(kube: FakeKube, name: str, value: str) -> None:
    store_object(kube)["metadata"].setdefault("annotations", {})[name] = value


def test_more_than_one_bucket_at_once_waits_for_the_acknowledgement() -> None:
    """The operator was down from January to the end of February: July and August are due
    at once. Nothing goes until the shredding's own annotation carries the token the
    condition names (a wrong token is no acknowledgement); then both go."""
    kube = outage_cluster()
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    run(kube, sink, BOTH_DUE)
    assert {"2025-07", "2025-08"} <= set(ring(kube).buckets) and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingNotAcknowledged")
    token = asked_token(kube)
    assert "2025-07" in token and "2025-08" in token, "the token names what it releases"
    annotate(kube, SHREDDING_ANNOTATION, token + "x")
    run(kube, sink, BOTH_DUE + timedelta(minutes=1))
    assert sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingNotAcknowledged")
    annotate(kube, SHREDDING_ANNOTATION, token)
    run(kube, sink, BOTH_DUE + timedelta(minutes=2))
    assert not {"2025-07", "2025-08"} & set(ring(kube).buckets)
    assert sorted(p["bucket"] for p in sink.of("key.shredded")) == ["2025-07", "2025-08"]
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")


def test_the_purges_acknowledgement_does_not_release_a_shredding() -> None:
    """A large purge cut was acknowledged months ago; annotations do not bump the generation,
    so that token is still the purge's current one. A later outage leaves two buckets due at
    once: the purge's acknowledgement is not a person agreeing to destroy those keys."""
    kube = outage_cluster()
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    store = parse_store(store_object(kube))
    policy = parse_policy(kube.objects[("PrivacyPolicy", None, store.policy)])
    annotate(kube, ACKNOWLEDGE_ANNOTATION, acknowledge_token(store, policy))
    run(kube, sink, BOTH_DUE)
    assert {"2025-07", "2025-08"} <= set(ring(kube).buckets) and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingNotAcknowledged")
    assert SHREDDING_ANNOTATION in message(kube)


def test_an_acknowledgement_of_other_buckets_releases_nothing() -> None:
    """Someone acknowledged the shredding of July and August; before the operator got to
    it, September fell due too. The acknowledgement named two keys, not three."""
    kube = outage_cluster()
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    run(kube, sink, BOTH_DUE)
    two = asked_token(kube)
    annotate(kube, SHREDDING_ANNOTATION, two)
    later = datetime(2026, 3, 30, tzinfo=UTC)  # September's last record expired on Mar 29
    run(kube, sink, later)
    assert {"2025-07", "2025-08", "2025-09"} <= set(ring(kube).buckets)
    assert sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingNotAcknowledged")
    three = asked_token(kube)
    assert three != two and "2025-09" in three
    annotate(kube, SHREDDING_ANNOTATION, three)
    run(kube, sink, later + timedelta(minutes=1))
    assert sorted(p["bucket"] for p in sink.of("key.shredded")) == [
        "2025-07", "2025-08", "2025-09"
    ]


def test_a_token_is_the_stores_own() -> None:
    """The same buckets due on another store need that store's own acknowledgement."""
    kube = outage_cluster()
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    run(kube, sink, BOTH_DUE)
    token = asked_token(kube)
    assert shredding_token(parse_store(store_object(kube)), ("2025-08", "2025-07")) == token
    other = copy.deepcopy(store_object(kube))
    other["metadata"]["name"] = "another"
    assert shredding_token(parse_store(other), ("2025-07", "2025-08")) != token


def test_a_token_kept_in_a_manifest_does_not_release_a_recreated_store() -> None:
    """A GitOps manifest keeps the acknowledgement annotation; the store is deleted and made
    again under the same name (another uid). The token was the old store's: it releases
    nothing on the new one, though the same buckets are due."""
    kube = outage_cluster()
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    run(kube, sink, BOTH_DUE)
    token = asked_token(kube)
    recreated = copy.deepcopy(store_object(kube))
    recreated["metadata"]["uid"] = "another-uid"
    assert shredding_token(parse_store(recreated), ("2025-07", "2025-08")) != token


def test_one_bucket_at_a_time_needs_no_acknowledgement() -> None:
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    run(kube, sink, DUE)
    run(kube, sink, BOTH_DUE)
    assert [p["bucket"] for p in sink.of("key.shredded")] == ["2025-07", "2025-08"]


# --- the spec the decision rests on is read again ----------------------------------------------


def test_a_retention_lengthened_since_the_cache_was_filled_keeps_the_key() -> None:
    """The cache still has 180 days; the store now says one year, under which July's records
    are live. The fresh read before the destruction sees it: nothing is destroyed."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    stale = StaleCache(kube)
    edit_spec(kube, retention="1y")
    settings = ReconcileSettings(evidence=sink)
    Synced(cast(Kube, kube), settings, caches=cast(Any, stale)).reconcile(KEY, now=DUE)
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")
    assert "spec.retention changed" in message(kube)
    # Once the cache has it: July is not due under a year.
    run(kube, sink, DUE + timedelta(minutes=1))
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")


def test_a_time_zone_given_since_the_cache_was_filled_keeps_the_key() -> None:
    """The cache has the store's table on UTC; the store now says its wall clocks are
    Kiritimati's (UTC+14), where July's last rows, dated August 1 there, are live until
    2026-01-28T09:59:59.999999Z. The fresh read sees it: nothing is destroyed at DUE."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    stale = StaleCache(kube)
    records = copy.deepcopy(store_object(kube)["spec"]["records"])
    records[0]["timeZone"] = "Pacific/Kiritimati"
    edit_spec(kube, records=records)
    settings = ReconcileSettings(evidence=sink)
    Synced(cast(Kube, kube), settings, caches=cast(Any, stale)).reconcile(KEY, now=DUE)
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert "spec.records[].timeZone changed" in message(kube)
    run(kube, sink, DUE + timedelta(minutes=1))  # the cache has it: July is not due yet
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    run(kube, sink, datetime(2026, 1, 28, 10, tzinfo=UTC))
    assert [p["bucket"] for p in sink.of("key.shredded")] == ["2025-07"]
    assert sink.of("key.shredded")[0]["expired"] == "2026-01-28T09:59:59.999999Z"


def test_the_new_reasons_are_in_the_reference() -> None:
    for reason in ("KeyShreddingClockSkew", "KeyShreddingNotCompliant",
                   "KeyShreddingNotAcknowledged"):  # fmt: skip
        (entry,) = lookup(reason, "EncryptionKeyReady")
        assert entry.status == "False", reason


def test_a_gate_withdraws_a_listed_shredding_whose_key_stayed() -> None:
    """The destruction is recorded and listed, but the ring write loses a race; before the
    retry a control falls (recorded NetworkIsolated False). The key stays, so the record is
    withdrawn (NotCompliant) and no longer listed; once the control is back, it is recorded
    anew and destroyed, and the evidence ends by saying so."""
    kube = ready(cluster())
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    with ring_writes_lose_a_race(kube):
        run(kube, sink, DUE)
    assert [g["bucket"] for g in status(kube)["encryption"]["shreddedBuckets"]] == ["2025-07"]
    for condition in store_object(kube)["status"]["conditions"]:
        if condition["type"] == "NetworkIsolated":
            condition.update(status="False", reason="ForeignPolicyWidens")
    run(kube, sink, DUE + timedelta(minutes=1))
    assert "2025-07" in ring(kube).buckets
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingNotCompliant")
    (cancelled,) = sink.of("key.shred.cancelled")
    assert (cancelled["bucket"], cancelled["reason"]) == ("2025-07", "NotCompliant")
    assert "shreddedBuckets" not in status(kube)["encryption"]
    assert_evidence_matches_the_ring(kube, sink)
    run(kube, sink, DUE + timedelta(minutes=2))  # this pass recorded NetworkIsolated True
    assert "2025-07" not in ring(kube).buckets
    assert [kind for kind, _ in sink.records if kind.startswith("key.shred")] == [
        "key.shredded", "key.shred.cancelled", "key.shredded"
    ]
    assert_evidence_matches_the_ring(kube, sink)
