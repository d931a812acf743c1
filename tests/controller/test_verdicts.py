"""Honest verdicts, as an attacker or a careless user would meet them (issue: honest verdicts).

Each test acts through the reconciler's public `reconcile` on an in-memory API, the way the
cluster would present the situation. Each failed on the reconciler before this change.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import timedelta
from typing import Any

from dataward.checks.observed import TrustedSubjects
from dataward.controller.kube import Kube, KubeError
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.keys.ring import generate_ring, serialise
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import (
    CREDENTIALS,
    KEY,
    RING,
    T0,
    conditions,
    sample_cluster,
    status,
)
from tests.model import samples

CRONJOB = "dataward-support-inquiries-purge"


def _cluster(*extra: dict[str, Any]) -> FakeKube:
    kube = sample_cluster(FakeKube())
    for obj in extra:
        kube._store(copy.deepcopy(obj))
    return kube


def _reconcile(kube: FakeKube, minutes: int = 0, **settings: Any) -> None:
    reconciler = Reconciler(kube, ReconcileSettings(**settings))  # type: ignore[arg-type]
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=minutes))


def _planted_ring() -> dict[str, Any]:
    """A Secret under the ring's name whose keys the attacker chose (and so knows)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": RING,
            "namespace": "crm",
            # Labels are free to forge; they prove nothing.
            "labels": {"app.kubernetes.io/managed-by": "dataward"},
        },
        "data": serialise(generate_ring(T0 - timedelta(days=1))),
    }


def _ring_data(kube: FakeKube) -> dict[str, str]:
    return dict(kube.objects[("Secret", "crm", RING)]["data"])


def test_a_ring_planted_before_the_store_is_never_used() -> None:
    planted = _planted_ring()
    kube = _cluster(planted)
    _reconcile(kube)
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyRingNotCreatedByOperator")
    assert conditions(kube)["Ready"][0] == "False"
    assert _ring_data(kube) == planted["data"], "the planted Secret was changed"
    message = next(c for c in status(kube)["conditions"] if c["type"] == "EncryptionKeyReady")
    assert "adoptExistingKeyRing" in message["message"] and RING in message["message"]
    # Still refused on every later reconcile, and never rotated.
    _reconcile(kube, minutes=5)
    assert conditions(kube)["EncryptionKeyReady"][1] == "KeyRingNotCreatedByOperator"
    assert not any(v == "replace" for v, _, _ in kube.writes())


class _RaceKube(FakeKube):
    """Plants a Secret under the ring's name just before the operator's create (a 409)."""

    def create(self, obj: Any) -> dict[str, Any]:
        if obj["kind"] == "Secret" and obj["metadata"]["name"] == RING:
            self._store(_planted_ring())
        return super().create(obj)


def test_a_ring_planted_at_the_moment_of_creation_is_not_kept() -> None:
    kube = _RaceKube()
    for obj in (samples.POLICY, {**samples.STORE}, CREDENTIALS()):
        obj = copy.deepcopy(obj)
        obj["metadata"].pop("uid", None)
        kube._store(obj)
    _reconcile(kube)
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyRingNotCreatedByOperator")


def test_a_deleted_foreign_ring_is_replaced_by_one_the_operator_makes() -> None:
    kube = _cluster(_planted_ring())
    _reconcile(kube)
    del kube.objects[("Secret", "crm", RING)]
    _reconcile(kube, minutes=1)
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    assert "pending" not in status(kube)["encryption"]


def test_adopting_an_existing_ring_is_an_explicit_act() -> None:
    planted = _planted_ring()
    kube = _cluster(planted)
    store = kube.objects[("PersonalDataStore", *KEY)]
    store["spec"]["encryption"] = {"adoptExistingKeyRing": True}
    _reconcile(kube)
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    assert _ring_data(kube) == planted["data"]
    ring = json.loads(base64.b64decode(planted["data"]["keyring.json"]))
    assert status(kube)["encryption"]["primaryKeyId"] == ring["primary"]


def test_the_operators_own_ring_is_recorded_before_it_is_created() -> None:
    """A crash between the record and the create leaves a pending record, then a fresh ring."""
    kube = _cluster()
    _reconcile(kube)
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    writes = kube.writes()
    recorded = writes.index(("patch/status", "PersonalDataStore", KEY[1]))
    assert recorded < writes.index(("create", "Secret", RING))


def test_a_system_user_is_not_trusted_by_its_name() -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "ring-reader", "namespace": "crm"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                   "resourceNames": [RING]}],
    }  # fmt: skip
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "evil", "namespace": "crm"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ring-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                      "name": "system:evil"}],
    }  # fmt: skip
    kube = _cluster(role, binding)
    _reconcile(kube)
    assert conditions(kube)["AccessRestricted"] == ("False", "OtherBindingGrantsSecrets")
    message = next(c for c in status(kube)["conditions"] if c["type"] == "AccessRestricted")
    assert "User system:evil" in message["message"]
    # A subject the chart lists as trusted is the platform's.
    kube = _cluster(role, binding)
    _reconcile(kube, trusted_subjects=TrustedSubjects.parse(["User:system:evil"]))
    assert conditions(kube)["AccessRestricted"][0] == "True"


def _second_store() -> dict[str, Any]:
    """Same database, pods and credentials; another table and another category."""
    other = copy.deepcopy(samples.STORE)
    del other["metadata"]["uid"]
    other["metadata"]["name"] = "contract-records"
    other["spec"]["category"] = next(
        c["name"] for c in samples.POLICY["spec"]["categories"]
        if c["name"] != samples.STORE["spec"]["category"] and "statutory" not in c
    )  # fmt: skip
    other["spec"].pop("retention", None)
    other["spec"]["records"] = [{"table": "contracts", "timestampColumn": "ended_at",
                                 "keyColumns": ["id"]}]  # fmt: skip
    other["spec"]["access"] = {"readers": [{"kind": "ServiceAccount", "name": "billing"}]}
    other["spec"]["network"] = {"allowFrom": [{"podSelector": {"matchLabels": {"app": "billing"}}}]}
    return other


def test_two_stores_on_one_database_are_both_ready() -> None:
    kube = _cluster(_second_store())
    other_key = ("crm", "contract-records")
    for _ in range(2):
        _reconcile(kube)
        Reconciler(kube, ReconcileSettings()).reconcile(other_key, now=T0)  # type: ignore[arg-type]
    mine = conditions(kube)
    theirs = {
        c["type"]: (c["status"], c["reason"])
        for c in kube.objects[("PersonalDataStore", *other_key)]["status"]["conditions"]
    }
    for verdict in (mine, theirs):
        assert verdict["AccessRestricted"] == ("True", "OnlyDeclaredReaders"), verdict
        assert verdict["NetworkIsolated"] == ("True", "Isolated"), verdict
    message = next(c for c in status(kube)["conditions"] if c["type"] == "NetworkIsolated")
    assert "contract-records" in message["message"]


def test_a_neighbours_binding_edited_to_grant_more_is_foreign() -> None:
    kube = _cluster(_second_store())
    _reconcile(kube)
    Reconciler(kube, ReconcileSettings()).reconcile(("crm", "contract-records"), now=T0)  # type: ignore[arg-type]
    binding = kube.objects[("RoleBinding", "crm", "dataward-contract-records-readers")]
    binding["subjects"].append({"kind": "User", "name": "mallory",
                                "apiGroup": "rbac.authorization.k8s.io"})  # fmt: skip
    _reconcile(kube, minutes=1)
    assert conditions(kube)["AccessRestricted"] == ("False", "OtherBindingGrantsSecrets")


def test_missing_credentials_are_not_ready_and_start_no_purge() -> None:
    kube = _cluster()
    del kube.objects[("Secret", "crm", "crm-postgres-purger")]
    _reconcile(kube)
    assert conditions(kube)["PurgeScheduled"] == ("False", "CredentialsSecretMissing")
    assert conditions(kube)["Ready"][0] == "False"
    assert kube.objects[("CronJob", "crm", CRONJOB)]["spec"]["suspend"] is True
    message = next(c for c in status(kube)["conditions"] if c["type"] == "PurgeScheduled")
    assert "crm-postgres-purger" in message["message"]


def test_a_store_waiting_on_a_secret_is_looked_at_again_within_a_minute() -> None:
    """Secrets are not watched: a store not Ready is due again soon, not at the hourly resync."""
    kube = _cluster()
    del kube.objects[("Secret", "crm", "crm-postgres-purger")]
    reconciler = Reconciler(kube, ReconcileSettings())  # type: ignore[arg-type]
    assert reconciler.reconcile(KEY, now=T0) == T0 + timedelta(minutes=1)
    kube._store(CREDENTIALS())
    due = reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["Ready"][0] == "True"
    assert due is not None and due > T0 + timedelta(days=1)  # its key rotation, not a minute


def _job(name: str, owner_uid: str, started: str, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name, "namespace": "crm",
            "labels": {"app.kubernetes.io/managed-by": "dataward",
                       "dataward.io/store": "support-inquiries"},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": CRONJOB,
                                 "uid": owner_uid}],
        },
        "status": {"startTime": started, **status},
    }  # fmt: skip


def _run(kube: FakeKube, name: str, started: str, **status: Any) -> dict[str, Any]:
    """A Job the store's CronJob made: its owner reference, and the CronJob's pod template
    (a Job that runs anything else is no run of it, tests/controller/test_purge_forgery.py)."""
    cronjob = kube.objects[("CronJob", "crm", CRONJOB)]
    job = _job(name, cronjob["metadata"]["uid"], started, **status)
    job["spec"] = copy.deepcopy(cronjob["spec"]["jobTemplate"]["spec"])
    return job


def test_a_purge_run_stuck_past_its_deadline_is_named() -> None:
    kube = _cluster()
    _reconcile(kube)
    kube._store(_run(kube, "stuck-run", "2026-01-10T04:00:00Z", active=1))
    _reconcile(kube, minutes=1)
    assert conditions(kube)["PurgeSucceeded"] == ("False", "PurgeRunStuck")
    message = next(c for c in status(kube)["conditions"] if c["type"] == "PurgeSucceeded")
    assert "stuck-run" in message["message"]


def test_a_scheduled_run_that_never_started_is_named() -> None:
    """17 3 * * *: by 08:00 the 03:17 run is long overdue, and the CronJob never ran one."""
    kube = _cluster()
    _reconcile(kube)
    cronjob = kube.objects[("CronJob", "crm", CRONJOB)]
    cronjob["metadata"]["creationTimestamp"] = "2026-01-08T00:00:00Z"
    _reconcile(kube, minutes=1)
    assert conditions(kube)["PurgeSucceeded"] == ("False", "PurgeRunMissed")
    message = next(c for c in status(kube)["conditions"] if c["type"] == "PurgeSucceeded")
    assert "2026-01-10T03:17:00Z" in message["message"]
    # The CronJob controller's record of the run clears "missed"; but no Job of that run is
    # to be seen (deleted, or its labels removed), so whether it succeeded is unknown: not
    # "no run yet".
    cronjob["status"] = {"lastScheduleTime": "2026-01-10T03:17:00Z"}
    _reconcile(kube, minutes=2)
    assert conditions(kube)["PurgeSucceeded"] == ("Unknown", "PurgeRunsUnreadable")


def test_a_job_the_cronjob_did_not_make_cannot_forge_a_result() -> None:
    kube = _cluster()
    _reconcile(kube)
    forged = _job("forged", "not-the-cronjob", "2026-01-10T07:00:00Z",
                  conditions=[{"type": "Failed", "status": "True"}],
                  completionTime="2026-01-10T07:01:00Z")  # fmt: skip
    kube._store(forged)
    _reconcile(kube, minutes=1)
    assert conditions(kube)["PurgeSucceeded"] == ("True", "NoRunYet")
    assert "lastPurge" not in status(kube)


def test_a_failed_network_policy_list_is_unknown_not_isolated() -> None:
    kube = _cluster()
    kube.fail_lists["NetworkPolicy"] = 403
    _reconcile(kube)
    assert conditions(kube)["NetworkIsolated"] == ("Unknown", "NetworkPoliciesUnreadable")
    assert conditions(kube)["Ready"][0] == "Unknown"


def test_a_failed_job_list_is_unknown_not_no_run_yet() -> None:
    kube = _cluster()
    kube.fail_lists["Job"] = 403
    _reconcile(kube)
    assert conditions(kube)["PurgeSucceeded"] == ("Unknown", "PurgeRunsUnreadable")
    assert conditions(kube)["Ready"][0] == "Unknown"


def test_a_failed_store_list_makes_shared_verdicts_unknown() -> None:
    kube = _cluster()
    kube.fail_lists["PersonalDataStore"] = 403
    _reconcile(kube)
    assert conditions(kube)["AccessRestricted"][0] == "Unknown"
    assert conditions(kube)["NetworkIsolated"][0] == "Unknown"


class _PolicyDownKube(FakeKube):
    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        if kind == "PrivacyPolicy":
            raise KubeError(500, "Internal Server Error", "get PrivacyPolicy")
        return super().get(kind, namespace, name)


def test_an_unreadable_policy_is_unknown_and_leaves_the_schedule_alone() -> None:
    kube = _cluster()
    _reconcile(kube)
    broken = _PolicyDownKube()
    broken.objects, broken.version = kube.objects, kube.version
    Reconciler(broken, ReconcileSettings()).reconcile(KEY, now=T0 + timedelta(minutes=1))  # type: ignore[arg-type]
    assert conditions(broken)["PolicyCompliant"] == ("Unknown", "PolicyUnreadable")
    assert conditions(broken)["Ready"][0] == "Unknown"
    assert not any(kind == "CronJob" for _, kind, _ in broken.writes())


def test_the_fake_kube_mirrors_the_real_api() -> None:
    """The fake stands in for Kube: the names the reconciler calls exist on the real class."""
    for name in ("get", "exists", "list", "apply", "create", "replace", "merge_patch", "delete"):
        assert callable(getattr(Kube, name))


def _events(kube: FakeKube) -> list[tuple[str, str]]:
    return [
        (obj["type"], obj["reason"])
        for (kind, _, _), obj in sorted(kube.objects.items(), key=str)
        if kind == "Event"
    ]


def test_a_new_store_posts_one_normal_event_and_a_warning_for_each_control_lost() -> None:
    kube = _cluster()
    _reconcile(kube)
    assert _events(kube) == [("Normal", "AllControlsInForce")]
    del kube.objects[("Secret", "crm", "crm-postgres-purger")]
    _reconcile(kube, minutes=1)
    warnings = sorted(reason for kind, reason in _events(kube) if kind == "Warning")
    assert warnings == ["ControlsNotInForce", "CredentialsSecretMissing"]


def test_the_policy_counts_its_ready_stores_and_hears_when_one_changes() -> None:
    kube = _cluster(_second_store())
    del kube.objects[("Secret", "crm", "crm-postgres-purger")]
    reconciler = Reconciler(kube, ReconcileSettings())  # type: ignore[arg-type]
    heard: list[str] = []
    reconciler.on_ready_change = heard.append
    reconciler.reconcile(KEY, now=T0)
    reconciler.reconcile(("crm", "contract-records"), now=T0)
    assert heard == []  # neither became Ready: nothing for the policy to recount
    kube._store(CREDENTIALS())
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert heard == [samples.POLICY["metadata"]["name"]]
    reconciler.reconcile_policy(samples.POLICY["metadata"]["name"], now=T0)
    policy = kube.objects[("PrivacyPolicy", None, samples.POLICY["metadata"]["name"])]
    assert (policy["status"]["stores"], policy["status"]["readyStores"]) == (2, 1)


class _OldCrdKube(FakeKube):
    """An API server whose CRDs predate readyStores and status.encryption.pending."""

    def merge_patch(self, kind: str, namespace: str | None, name: str,
                    patch: Any, subresource: str | None = None) -> dict[str, Any]:
        answer = super().merge_patch(kind, namespace, name, patch, subresource)
        status = self.objects[(kind, namespace, name)].get("status") or {}
        status.pop("readyStores", None)
        (status.get("encryption") or {}).pop("pending", None)
        answer.get("status", {}).pop("readyStores", None)
        (answer.get("status", {}).get("encryption") or {}).pop("pending", None)
        return answer


def _old_crd_cluster() -> _OldCrdKube:
    kube = _OldCrdKube()
    for obj in (samples.POLICY, samples.STORE, CREDENTIALS()):
        obj = copy.deepcopy(obj)
        obj["metadata"].pop("uid", None)
        kube._store(obj)
    return kube


def test_an_outdated_crd_does_not_make_the_operator_write_for_ever() -> None:
    kube = _old_crd_cluster()
    reconciler = Reconciler(kube, ReconcileSettings())  # type: ignore[arg-type]
    policy = samples.POLICY["metadata"]["name"]
    for minute in range(3):
        reconciler.reconcile_policy(policy, now=T0 + timedelta(minutes=minute))
    assert [c for c in kube.writes() if c[1] == "PrivacyPolicy"] == [
        ("patch/status", "PrivacyPolicy", policy)
    ]


def test_an_outdated_crd_that_drops_the_pending_mark_gets_no_key_ring() -> None:
    """Without the mark a fresh record would read as a ring that existed: create nothing."""
    kube = _old_crd_cluster()
    _reconcile(kube)
    assert ("Secret", "crm", RING) not in kube.objects
    assert conditions(kube)["EncryptionKeyReady"][0] != "True"
