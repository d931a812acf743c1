"""The key ring's owner reference follows the store's deletionPolicy when it is edited.

The ring was given the store's owner reference (Delete) or none (Retain) once, when it was
made. A store edited from Delete to Retain lost its grace finalizer but kept the owner
reference: deleted, the garbage collector destroyed its ring at once, unrecorded and
unscheduled, though the spec said Retain. Edited the other way, the ring was never owned and
never destroyed, though an Event said it would be. Each test acts as the platform team
editing `spec.deletionPolicy` through the controller's public `reconcile`.
"""

from __future__ import annotations

import contextlib
import copy
from datetime import timedelta
from typing import Any

from dataward.controller.kube import KubeError
from dataward.controller.reconcile import KEY_RING_FINALIZER
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import KEY, RING, T0, reconciler, sample_cluster
from tests.model import samples

STORE = ("PersonalDataStore", *KEY)
SECRET = ("Secret", KEY[0], RING)


def _cluster(policy: str) -> FakeKube:
    store = copy.deepcopy(samples.STORE)
    store["spec"]["deletionPolicy"] = policy
    kube = sample_cluster(FakeKube(), store=store)
    reconciler(kube).reconcile(KEY, now=T0)
    return kube


def _edit(kube: FakeKube, policy: str) -> None:
    store = kube.objects[STORE]
    store["spec"]["deletionPolicy"] = policy
    kube._store(store)


def _ring_owned(kube: FakeKube) -> bool:
    uid = kube.objects[STORE]["metadata"]["uid"]
    refs = kube.objects[SECRET]["metadata"].get("ownerReferences") or []
    return any(r.get("uid") == uid for r in refs)


def _held(kube: FakeKube) -> bool:
    return KEY_RING_FINALIZER in (kube.objects[STORE]["metadata"].get("finalizers") or [])


def test_a_store_edited_from_delete_to_retain_releases_its_ring_before_itself() -> None:
    kube = _cluster("Delete")
    assert _ring_owned(kube) and _held(kube)
    keys = copy.deepcopy(kube.objects[SECRET]["data"])
    _edit(kube, "Retain")
    for minute in range(1, 4):
        reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=minute))
        # Never a moment where deleting the store would take the ring with it at once.
        assert _held(kube) or not _ring_owned(kube)
    assert not _ring_owned(kube), "the ring would go with the store, though it asks Retain"
    assert not _held(kube), "the store is held for a grace period Retain does not have"
    assert kube.objects[SECRET]["data"] == keys  # its keys as they were


def test_a_store_edited_from_retain_to_delete_has_its_ring_go_with_it() -> None:
    kube = _cluster("Retain")
    assert not _ring_owned(kube) and not _held(kube)
    _edit(kube, "Delete")
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert _held(kube) and _ring_owned(kube)
    refs = kube.objects[SECRET]["metadata"]["ownerReferences"]
    assert [r["controller"] for r in refs] == [True]


def test_a_store_deleted_right_after_an_edit_to_retain_keeps_its_ring() -> None:
    kube = _cluster("Delete")
    _edit(kube, "Retain")
    kube.objects[STORE]["metadata"]["deletionTimestamp"] = "2026-01-10T08:01:00Z"
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert not _ring_owned(kube), "the garbage collector would destroy the ring with the store"
    assert not _held(kube), "Retain has no grace period: the store goes now"


def test_a_ring_that_cannot_be_released_keeps_the_store_held() -> None:
    kube = _cluster("Delete")
    _edit(kube, "Retain")
    real = kube.replace

    def refused(obj: Any) -> Any:
        if obj["kind"] == "Secret":
            raise KubeError(403, "Forbidden", "update Secret")
        return real(obj)

    kube.replace = refused  # type: ignore[method-assign]
    for minute in range(1, 4):
        reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=minute))
    assert _ring_owned(kube) and _held(kube)
    kube.objects[STORE]["metadata"]["deletionTimestamp"] = "2026-01-10T08:05:00Z"
    with contextlib.suppress(KubeError):  # raised to the queue, which retries
        reconciler(kube).reconcile(KEY, now=T0 + timedelta(days=30))
    assert _held(kube), "released while its ring would go with it"


def test_a_ring_someone_else_made_is_never_given_the_stores_owner_reference() -> None:
    store = copy.deepcopy(samples.STORE)
    store["spec"]["deletionPolicy"] = "Delete"
    kube = sample_cluster(FakeKube(), store=store)
    kube._store({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                 "metadata": {"name": RING, "namespace": KEY[0]},
                 "data": {"keyring.json": "e30="}})  # fmt: skip
    for minute in range(3):
        reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=minute))
    assert "ownerReferences" not in kube.objects[SECRET]["metadata"]


def test_a_store_deleted_under_a_legal_hold_keeps_its_ring_past_the_grace_period() -> None:
    """A careless admin deletes a store under a legal hold whose deletionPolicy is Delete:
    its ring would go with it after the grace period, and with it every key of the held
    data (in backups too). The hold keeps the ring until it is lifted."""
    store = copy.deepcopy(samples.STORE)
    store["spec"]["deletionPolicy"] = "Delete"
    store["spec"]["purge"]["suspend"] = True
    kube = sample_cluster(FakeKube(), store=store)
    reconciler(kube).reconcile(KEY, now=T0)
    assert _ring_owned(kube) and _held(kube)
    kube.objects[STORE]["metadata"]["deletionTimestamp"] = "2026-01-10T08:01:00Z"
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=2))
    held = reconciler(kube)
    held.reconcile(KEY, now=T0 + timedelta(days=31))
    held.reconcile(KEY, now=T0 + timedelta(days=31, minutes=1))
    assert _held(kube), "released under a legal hold: the garbage collector takes the ring"
    told = [o for (kind, _, _), o in kube.objects.items()
            if kind == "Event" and o.get("reason") == "KeyRingDeletionHeld"]
    assert len(told) == 1, "told once"
    assert kube.objects[STORE]["status"]["encryption"]["scheduledDeletion"]
    # The hold lifted (a spec edit of the Terminating store): the grace period is over.
    kube.objects[STORE]["spec"]["purge"]["suspend"] = False
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(days=32))
    assert not _held(kube)


def _restored_reference() -> dict[str, Any]:
    """The owner reference a ring restored from a backup still carries: the store it was
    made for, deleted since (another uid), which the garbage collector finds gone."""
    return {"apiVersion": "dataward.io/v1alpha1", "kind": "PersonalDataStore",
            "name": KEY[1], "uid": "u-deleted-long-ago", "controller": True,
            "blockOwnerDeletion": True}  # fmt: skip


def test_an_owner_reference_to_another_object_is_dropped_under_retain() -> None:
    """A ring restored from a backup (or edited by a careless tool) names another owner:
    its only owner gone, the garbage collector deletes the ring, unrecorded, though the
    store asks Retain. The operator's ring is owned as its store's deletionPolicy asks,
    and by nothing else."""
    kube = _cluster("Retain")
    kube.objects[SECRET]["metadata"]["ownerReferences"] = [_restored_reference()]
    kube._store(kube.objects[SECRET])
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert not kube.objects[SECRET]["metadata"].get("ownerReferences")


def test_an_owner_reference_to_another_object_is_dropped_under_delete() -> None:
    """Under Delete the ring goes with its store, after the grace period; a second owner is
    a second way for it to go (or, as controller, keeps the store's from being one)."""
    kube = _cluster("Delete")
    ours = kube.objects[SECRET]["metadata"]["ownerReferences"]
    kube.objects[SECRET]["metadata"]["ownerReferences"] = [_restored_reference(), *ours]
    kube._store(kube.objects[SECRET])
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert kube.objects[SECRET]["metadata"]["ownerReferences"] == ours
