"""An object deleted and recreated under its name while a pass over the old one is under way:
the pass's status write must not land on the new object.

The pass works from a copy read earlier (the cache). A status written by name, as a merge patch,
landed on whatever then had the name: a new PersonalDataStore was given the old one's verdicts
(Ready=True for children never checked), its observedGeneration and its key ring record (the new
store then treating a ring it never made as its own); a new DataSubjectRequest the old request's
answer; a new PrivacyPolicy the old one's revisions. On the status subresource, `metadata.uid`
in a merge patch is no precondition (the server keeps the old object's metadata): the write is a
JSON patch whose first operation tests the uid. Refused, nothing lands, and the pass stops
quietly: the new object's own watch event queues it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, cast

from dataward.controller.kube import Kube
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.fake_kube import FakeKube, Key
from tests.controller.test_reconcile import KEY, RING, T0
from tests.controller.test_shredding import StaleCache, Synced, cluster, run
from tests.controller.test_subjects import KEY as REQUEST
from tests.controller.test_subjects import controller
from tests.controller.test_subjects import kube as subjects_kube  # noqa: F401 (a fixture)
from tests.model import samples

STORE: Key = ("PersonalDataStore", *KEY)
POLICY: Key = ("PrivacyPolicy", None, samples.POLICY["metadata"]["name"])


def recreate(kube: FakeKube, key: Key) -> None:
    """`kubectl delete` then `kubectl apply` of the same manifest: a new uid, no status."""
    new = copy.deepcopy(kube.objects.pop(key))
    new["metadata"].pop("uid")
    new["metadata"]["generation"] = 1
    new.pop("status", None)
    kube._store(new)


def _writes_conditions(body: Any) -> bool:
    """Whether a status write (merge patch body, or JSON patch operations) sets conditions."""
    if isinstance(body, Mapping):
        return "conditions" in (body.get("status") or {})
    return any(
        op.get("path") == "/status/conditions"
        or (op.get("path") == "/status" and "conditions" in (op.get("value") or {}))
        for op in body
    )


def recreated_before_its_status_write(kube: FakeKube, key: Key) -> list[Key]:
    """Recreate `key` right before the pass's first write of its conditions, however that
    write is made (after every read of the pass). The list says when that happened."""
    done: list[Key] = []
    merge, json = kube.merge_patch, kube.json_patch

    def hook(kind: str, namespace: str | None, name: str, body: Any, sub: str | None) -> None:
        if not done and (kind, namespace, name) == key and sub == "status" and (
            _writes_conditions(body)
        ):
            recreate(kube, key)
            done.append(key)

    def merge_patch(kind: str, namespace: str | None, name: str, patch: Mapping[str, Any],
                    subresource: str | None = None) -> dict[str, Any]:
        hook(kind, namespace, name, patch, subresource)
        return merge(kind, namespace, name, patch, subresource)

    def json_patch(kind: str, namespace: str | None, name: str,
                   operations: Sequence[Mapping[str, Any]],
                   subresource: str | None = None) -> dict[str, Any]:
        hook(kind, namespace, name, operations, subresource)
        return json(kind, namespace, name, operations, subresource)

    kube.merge_patch = merge_patch  # type: ignore[method-assign]
    kube.json_patch = json_patch  # type: ignore[method-assign]
    return done


def test_a_store_recreated_before_its_status_write_gets_none_of_the_old_ones() -> None:
    """A new store's first pass: the ring is made (the fresh read proves the store is this
    one), then the store is deleted and recreated before the pass writes its verdicts."""
    kube = cluster()
    stale = StaleCache(kube)
    done = recreated_before_its_status_write(kube, STORE)
    assert Synced(cast(Kube, kube), ReconcileSettings(), caches=cast(Any, stale)).reconcile(
        KEY, now=T0
    ) is None
    assert done, "the pass wrote its verdicts"
    assert "status" not in kube.objects[STORE], "no verdict, generation nor ring record"


def test_a_settled_store_recreated_before_its_status_write_gets_no_ready() -> None:
    """The old store is Ready with a settled ring; its copy is a pass behind (a rotation is
    due). Recreated meanwhile: its Ready verdict and ring record stay with it."""
    kube = cluster()
    run(kube, None, T0)
    run(kube, None, T0 + timedelta(minutes=1))  # settled
    stale = StaleCache(kube)
    done = recreated_before_its_status_write(kube, STORE)
    Synced(cast(Kube, kube), ReconcileSettings(), caches=cast(Any, stale)).reconcile(
        KEY, now=T0 + timedelta(days=31)
    )
    assert done, "the pass wrote its verdicts"
    assert "status" not in kube.objects[STORE]
    assert ("Secret", "crm", RING) in kube.objects, "the old store's ring is its own to keep"


def test_a_status_write_to_the_same_store_still_lands_and_steady_state_is_silent() -> None:
    kube = cluster()
    run(kube, None, T0)
    status = kube.objects[STORE]["status"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    assert "pending" not in status["encryption"] and "pendingKeys" not in status["encryption"]
    run(kube, None, T0 + timedelta(minutes=1))
    kube.calls.clear()
    run(kube, None, T0 + timedelta(minutes=2))
    assert kube.writes() == [], "nothing changed: nothing written"


def test_a_policy_recreated_before_its_status_write_gets_none_of_the_old_ones() -> None:
    kube = cluster()
    stale = StaleCache(kube)
    done = recreated_before_its_status_write(kube, POLICY)
    reconciler = Synced(cast(Kube, kube), ReconcileSettings(), caches=cast(Any, stale))
    assert reconciler.reconcile_policy(POLICY[2], now=T0) is None
    assert done
    assert "status" not in kube.objects[POLICY]


def test_a_policy_status_still_lands_on_the_same_policy() -> None:
    kube = cluster()
    Reconciler(cast(Kube, kube), ReconcileSettings()).reconcile_policy(POLICY[2], now=T0)
    assert kube.objects[POLICY]["status"]["conditions"]


def test_a_request_recreated_before_its_status_write_gets_none_of_its_answer(
    subjects_kube: FakeKube,  # noqa: F811
) -> None:
    kube = subjects_kube
    key: Key = ("DataSubjectRequest", *REQUEST)
    done = recreated_before_its_status_write(kube, key)
    controller(kube).reconcile(REQUEST)
    assert done
    assert "status" not in kube.objects[key], "the new request is not answered for the old"


def test_a_request_status_still_lands_on_the_same_request(
    subjects_kube: FakeKube,  # noqa: F811
) -> None:
    kube = subjects_kube
    controller(kube).reconcile(REQUEST)
    assert kube.objects[("DataSubjectRequest", *REQUEST)]["status"]["conditions"]


# -- the write itself: what the merge patch did, on the object read alone ---------------------

LIVE = {
    "observedGeneration": 1,
    "conditions": [{"type": "Ready", "status": "False"}],
    "encryption": {"keys": ["a"], "pendingKeys": ["b"], "owedWithdrawals": ["c"]},
    "lastPurge": {"jobName": "j1"},
}
PATCH = {
    "observedGeneration": 2,
    "conditions": [{"type": "Ready", "status": "True"}],
    "encryption": {"pending": None, "pendingKeys": None, "keys": ["a", "d"]},
    "impactPreview": None,  # absent: a merge patch's null is no error
    "lastPurge": {"jobName": "j2", "gone": None},
}


def _both(read_status: Any, live_status: Any) -> tuple[dict[str, Any], dict[str, Any], FakeKube]:
    """The store's status after `write_status`, and after the merge patch it replaces."""
    from dataward.controller.kube import write_status

    results = []
    for guarded in (True, False):
        kube = FakeKube()
        obj = {"apiVersion": "dataward.io/v1alpha1", "kind": "PersonalDataStore",
               "metadata": {"name": "s", "namespace": "n", "uid": "u1"}}  # fmt: skip
        if live_status is not None:
            obj["status"] = copy.deepcopy(live_status)
        kube._store(obj)
        read = copy.deepcopy(kube.objects[("PersonalDataStore", "n", "s")])
        if read_status is None:
            read.pop("status", None)
        else:
            read["status"] = copy.deepcopy(read_status)
        if guarded:
            write_status(cast(Kube, kube), "PersonalDataStore", read, PATCH)
            guarded_kube = kube
        else:
            kube.merge_patch("PersonalDataStore", "n", "s", {"status": PATCH}, "status")
        results.append(kube.objects[("PersonalDataStore", "n", "s")].get("status") or {})
    return results[0], results[1], guarded_kube


def test_the_guarded_write_does_what_the_merge_patch_did() -> None:
    guarded, merged, kube = _both(LIVE, LIVE)
    assert guarded == merged
    assert guarded["encryption"] == {"keys": ["a", "d"], "owedWithdrawals": ["c"]}
    assert [c[0] for c in kube.calls] == ["patch/status"], "one request, no read"


def test_a_key_the_copy_lacks_is_kept_and_a_null_removes_what_the_copy_did_not_see() -> None:
    """The copy read is older than the object: a nested key written since survives, and
    pendingKeys written since is removed, as the merge patch did."""
    older = copy.deepcopy(LIVE)
    del older["encryption"]["owedWithdrawals"], older["encryption"]["pendingKeys"]
    guarded, merged, _ = _both(older, LIVE)
    assert guarded == merged


def test_a_status_the_copy_lacks_is_read_first_and_not_replaced() -> None:
    guarded, merged, kube = _both(None, LIVE)
    assert guarded == merged
    assert [c[0] for c in kube.calls] == ["get", "patch/status"]
    guarded, merged, _ = _both(None, None)
    assert guarded == merged and guarded["observedGeneration"] == 2


def test_an_object_the_copy_had_and_the_status_lost_is_retried_on_the_status_read_again() -> None:
    live = {k: v for k, v in LIVE.items() if k != "lastPurge"}
    guarded, merged, kube = _both(LIVE, live)
    assert guarded == merged
    assert [c[0] for c in kube.calls] == ["patch/status", "get", "patch/status"]


# -- the ring record writes by name ---------------------------------------------------------


def test_a_deleted_store_recreated_meanwhile_gets_no_scheduled_ring_deletion() -> None:
    """deletionPolicy: Delete; the store is deleted (its ring finalizer holds it) and the pass
    that schedules the ring's deletion works from that copy while the store is gone and a new
    one applied. The old record (and its scheduledDeletion) must not land on the new one."""
    kube = cluster()
    kube.objects[STORE]["spec"]["deletionPolicy"] = "Delete"
    run(kube, None, T0)
    assert "dataward.io/key-ring-grace" in str(kube.objects[STORE]["metadata"]["finalizers"])
    kube.objects[STORE]["metadata"]["deletionTimestamp"] = "2026-01-10T08:01:00Z"
    stale = StaleCache(kube)
    recreate(kube, STORE)
    assert Synced(cast(Kube, kube), ReconcileSettings(), caches=cast(Any, stale)).reconcile(
        KEY, now=T0 + timedelta(minutes=2)
    ) is None
    assert "status" not in kube.objects[STORE], "no ring record on the new store"


def test_a_ring_record_field_written_by_name_lands_on_that_store_alone() -> None:
    """The shredding debts (owedWithdrawals, shreddedBuckets) are written without a
    resourceVersion: on a store recreated under the name since, nothing lands."""
    kube = cluster()
    run(kube, None, T0)
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings())
    store = reconciler._parsed(copy.deepcopy(kube.objects[STORE]))
    assert store is not None
    reconciler._patch_encryption(store, {"owedWithdrawals": None})  # its own: lands
    recreate(kube, STORE)
    try:
        reconciler._patch_encryption(store, {"owedWithdrawals": [{"bucket": "2025-07"}]})
    except Exception as error:
        assert type(error).__name__ == "_StoreGone"
    else:
        raise AssertionError("written on the new store")
    assert "status" not in kube.objects[STORE]
