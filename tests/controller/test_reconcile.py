"""The reconciler against an in-memory API: what it writes, and when it writes nothing."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import pytest

from dataward.controller.kube import Kube
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.model.store import parse_store
from tests.controller.fake_kube import FakeKube
from tests.model import samples

T0 = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
KEY = ("crm", "support-inquiries")
RING = "dataward-support-inquiries-keyring"
K = TypeVar("K", bound=FakeKube)


@pytest.fixture
def kube() -> FakeKube:
    return sample_cluster(FakeKube())


def sample_cluster(
    kube: K, policy: Mapping[str, Any] = samples.POLICY, store: Mapping[str, Any] = samples.STORE
) -> K:
    """`kube` holding the policy, the store (its uid the fake API's) and its credentials."""
    kube._store(copy.deepcopy(dict(policy)))
    stored = copy.deepcopy(dict(store))
    stored["metadata"].pop("uid", None)
    kube._store(stored)
    kube._store(CREDENTIALS())
    return kube


def CREDENTIALS() -> dict[str, Any]:
    """The database credentials Secret the sample store names (no real password)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "crm-postgres-purger", "namespace": "crm"},
        "data": {"username": "cHVyZ2Vy", "password": "eA=="},
    }


def add_store(kube: Any, name: str, namespace: str, tag: str) -> None:
    """Another sample store, as reconcile_bench makes them: its own pods, peers, credentials
    and readers (so all can be Ready), and its credentials Secret, named by `tag`."""
    store = copy.deepcopy(samples.STORE)
    del store["metadata"]["uid"]
    store["metadata"]["name"] = name
    store["metadata"]["namespace"] = namespace
    spec = store["spec"]
    spec["workload"]["podSelector"] = {"matchLabels": {"app": f"db-{tag}"}}
    spec["network"]["allowFrom"] = [{"podSelector": {"matchLabels": {"app": f"api-{tag}"}}}]
    spec["database"]["credentialsSecret"] = f"creds-{tag}"
    spec["access"]["readers"] = [{"kind": "ServiceAccount", "name": f"api-{tag}"}]
    kube._store(store)
    secret = CREDENTIALS()
    secret["metadata"]["name"] = f"creds-{tag}"
    secret["metadata"]["namespace"] = namespace
    kube._store(secret)


def reconciler(kube: FakeKube) -> Reconciler:
    return Reconciler(cast(Kube, kube), ReconcileSettings())


def status(kube: FakeKube) -> dict[str, Any]:
    return dict(kube.objects[("PersonalDataStore", *KEY)].get("status") or {})


def conditions(kube: FakeKube) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status(kube).get("conditions", [])}


def ring_json(kube: FakeKube) -> dict[str, Any]:
    secret = kube.objects[("Secret", "crm", RING)]
    return cast(dict[str, Any], json.loads(base64.b64decode(secret["data"]["keyring.json"])))


def test_first_reconcile_creates_children_ring_and_status(kube: FakeKube) -> None:
    reconciler(kube).reconcile(KEY, now=T0)
    kinds = {(verb, kind) for verb, kind, _ in kube.writes()}
    assert ("create", "Secret") in kinds and ("patch/status", "PersonalDataStore") in kinds
    # Created (POST), never applied: an apply would take over an object of the name.
    assert {k for v, k in kinds if v == "create"} == {
        "Event", "Secret", "NetworkPolicy", "Role", "RoleBinding", "ServiceAccount", "CronJob"}
    assert not any(v == "apply" for v, _ in kinds)
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    assert status(kube)["encryption"]["primaryKeyId"] == 1


def test_a_second_reconcile_with_nothing_changed_writes_nothing(kube: FakeKube) -> None:
    reconciler(kube).reconcile(KEY, now=T0)
    kube.calls.clear()
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=5))
    assert kube.writes() == []


def test_rotation_adds_a_key_by_compare_and_swap_and_keeps_the_old_one(kube: FakeKube) -> None:
    reconciler(kube).reconcile(KEY, now=T0)
    first = ring_json(kube)
    kube.calls.clear()
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(days=31))  # keyRotation: 30d
    assert [c for c in kube.writes() if c[1] == "Secret"] == [("replace", "Secret", RING)]
    second = ring_json(kube)
    assert second["primary"] == 2
    assert second["keys"][0] == first["keys"][0]  # material of key 1 untouched
    assert status(kube)["encryption"]["primaryKeyId"] == 2
    kube.calls.clear()
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(days=32))
    assert [c for c in kube.writes() if c[1] == "Secret"] == []  # never faster than half


def test_a_concurrent_change_makes_the_rotation_fail_not_overwrite(kube: FakeKube) -> None:
    reconciler(kube).reconcile(KEY, now=T0)
    real_replace = kube.replace

    def racing_replace(obj: Any) -> dict[str, Any]:
        kube.objects[("Secret", "crm", RING)]["metadata"]["resourceVersion"] = "changed"
        return real_replace(obj)

    kube.replace = racing_replace  # type: ignore[method-assign]
    before = copy.deepcopy(kube.objects[("Secret", "crm", RING)]["data"])
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(days=31))
    assert kube.objects[("Secret", "crm", RING)]["data"] == before


def test_a_failed_read_of_the_ring_creates_nothing_and_says_unknown(kube: FakeKube) -> None:
    kube.fail_gets["Secret"] = 500
    reconciler(kube).reconcile(KEY, now=T0)
    assert not [c for c in kube.writes() if c[1] == "Secret"]
    assert conditions(kube)["EncryptionKeyReady"] == ("Unknown", "KeyRingUnreadable")


def test_a_ring_deleted_after_status_recorded_it_is_never_regenerated(kube: FakeKube) -> None:
    reconciler(kube).reconcile(KEY, now=T0)
    del kube.objects[("Secret", "crm", RING)]
    kube.calls.clear()
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert ("create", "Secret", RING) not in kube.calls
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyRingMissing")


def test_a_ring_that_exists_already_is_kept_on_conflict(kube: FakeKube) -> None:
    real_get = kube.get
    hidden = {"once": True}

    def get_misses_once(kind: str, namespace: str | None, name: str) -> Any:
        if kind == "Secret" and hidden.pop("once", False):
            kube.objects.pop(("Secret", namespace, name), None)
            result = real_get(kind, namespace, name)
            # Another replica created it between our read and our create.
            store = parse_store(kube.objects[("PersonalDataStore", *KEY)])
            reconciler(kube)._create_ring(store, name, T0)
            return result
        return real_get(kind, namespace, name)

    kube.get = get_misses_once  # type: ignore[method-assign]
    reconciler(kube).reconcile(KEY, now=T0)
    theirs = ring_json(kube)
    assert theirs["primary"] == 1
    assert status(kube)["encryption"]["keys"][0]["fingerprint"]  # recorded the ring it found
    assert [c for c in kube.calls if c[:2] == ("create", "Secret")] == [
        ("create", "Secret", RING), ("create", "Secret", RING)]


def test_a_store_that_breaks_its_policy_gets_a_suspended_cronjob(kube: FakeKube) -> None:
    kube.objects[("PersonalDataStore", *KEY)]["spec"]["retention"] = "2y"
    reconciler(kube).reconcile(KEY, now=T0)
    cronjob = kube.objects[("CronJob", "crm", "dataward-support-inquiries-purge")]
    assert cronjob["spec"]["suspend"] is True
    assert conditions(kube)["PolicyCompliant"] == ("False", "RetentionTooLong")
    assert conditions(kube)["Ready"][0] == "False"


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules"])
def test_a_zone_that_is_the_machines_own_is_an_invalid_spec(kube: FakeKube, zone: str) -> None:
    # `localtime` would be read in the purge pod's zone, and in a laptop's by `dataward check`.
    spec = kube.objects[("PersonalDataStore", *KEY)]["spec"]
    spec["records"][0]["timeZone"] = zone
    reconciler(kube).reconcile(KEY, now=T0)
    assert conditions(kube)["PolicyCompliant"] == ("False", "InvalidSpec")
    found = next(c for c in status(kube)["conditions"] if c["type"] == "PolicyCompliant")
    assert "spec.records[0].timeZone" in found["message"]


def test_lasttransitiontime_moves_only_when_a_status_changes(kube: FakeKube) -> None:
    reconciler(kube).reconcile(KEY, now=T0)
    before = {c["type"]: c["lastTransitionTime"] for c in status(kube)["conditions"]}
    kube.objects[("PersonalDataStore", *KEY)]["spec"]["retention"] = "2y"
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(hours=1))
    after = {c["type"]: c["lastTransitionTime"] for c in status(kube)["conditions"]}
    assert after["NetworkIsolated"] == before["NetworkIsolated"]
    assert after["PolicyCompliant"] != before["PolicyCompliant"]


def test_a_key_added_out_of_band_is_reported_not_adopted(kube: FakeKube) -> None:
    """Someone who may write the ring Secret adds a key whose material they know and makes
    it the primary: it is reported, never recorded in status as the operator's."""
    reconciler(kube).reconcile(KEY, now=T0)
    ring = ring_json(kube)
    material = base64.b64encode(b"k" * 32).decode()
    ring["keys"].append({"id": 2, "algorithm": ring["keys"][0]["algorithm"],
                         "created": "2025-01-01T00:05:00Z", "material": material})
    ring["primary"] = 2
    forged = base64.b64encode(json.dumps(ring).encode()).decode()
    kube.objects[("Secret", "crm", RING)]["data"]["keyring.json"] = forged
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=10))
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyMaterialChanged")
    encryption = status(kube)["encryption"]
    assert [k["id"] for k in encryption["keys"]] == [1] and encryption["primaryKeyId"] == 1
    assert material not in json.dumps(status(kube))


def test_a_rotation_whose_status_write_was_lost_is_still_the_operators(kube: FakeKube) -> None:
    """The operator records the new key as pending before the ring write: stopped before the
    status write that follows, the next pass still knows the key as its own."""
    reconciler(kube).reconcile(KEY, now=T0)
    before = copy.deepcopy(status(kube)["encryption"])
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(days=31))  # rotated: primary 2
    assert ring_json(kube)["primary"] == 2
    after = status(kube)["encryption"]
    pending = [k for k in after["keys"] if k["id"] == 2]
    # As if the status write after the ring write was lost: status as the pending write left it.
    kube.objects[("PersonalDataStore", *KEY)]["status"]["encryption"] = {
        **before, "pendingKeys": pending}
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(days=31, minutes=1))
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    encryption = status(kube)["encryption"]
    assert [k["id"] for k in encryption["keys"]] == [1, 2] and "pendingKeys" not in encryption


def test_a_primary_moved_back_out_of_band_is_reported_not_adopted(kube: FakeKube) -> None:
    reconciler(kube).reconcile(KEY, now=T0)
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(days=31))  # rotated: primary 2
    ring = ring_json(kube)
    ring["primary"] = 1  # someone rolls the primary back to the old key
    forged = base64.b64encode(json.dumps(ring).encode()).decode()
    kube.objects[("Secret", "crm", RING)]["data"]["keyring.json"] = forged
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(days=31, minutes=1))
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyMaterialChanged")
    assert status(kube)["encryption"]["primaryKeyId"] == 2  # the record is not rewritten
    assert kube.objects[("Secret", "crm", RING)]["data"]["keyring.json"] == forged
