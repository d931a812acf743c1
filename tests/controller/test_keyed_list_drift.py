"""A child an apply cannot restore: items another field manager added to a keyed list.

Server-side apply leaves an item of a `listType=map` list (a container's env, the pod's
volumes) that another field manager owns. The stub API below does the same, so the tests
see what the real API server does (e2e/test_operator.py checks it there): the reconciler
must then replace the child by an update on its resourceVersion, once.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dataward.checks.drift import replacement
from dataward.controller.kube import KubeError
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import KEY, T0, conditions, reconciler, sample_cluster

PURGE = ("CronJob", "crm", "dataward-support-inquiries-purge")
INTRUDER = {"name": "INTRUDER_PROXY", "value": "http://evil.example"}
LOOT = {"name": "loot", "emptyDir": {}}


def pod(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])


class KeyedListKube(FakeKube):
    """Apply as the API server does it for a CronJob's keyed lists: items the applied body
    does not name (by their key) and someone else added stay where they are."""

    def apply(self, obj: Mapping[str, Any], version: str | None = None) -> dict[str, Any]:
        meta = obj["metadata"]
        before = copy.deepcopy(self.objects.get((obj["kind"], meta.get("namespace"), meta["name"])))
        answer = super().apply(obj, version)
        if obj["kind"] != "CronJob" or before is None:
            return answer
        stored = self.objects[(obj["kind"], meta.get("namespace"), meta["name"])]
        old, new, ours = pod(before), pod(stored), pod(obj)
        named = {v["name"] for v in ours.get("volumes", [])}
        new["volumes"] = new.get("volumes", []) + [
            v for v in old.get("volumes", []) if v["name"] not in named
        ]
        for mine, theirs in zip(new["containers"], old["containers"], strict=False):
            ours_env = {e["name"] for c in ours["containers"] for e in c.get("env", [])}
            mine["env"] = mine.get("env", []) + [
                e for e in theirs.get("env", []) if e["name"] not in ours_env
            ]
        stored["spec"]["jobTemplate"]["spec"]["template"]["spec"] = new
        return copy.deepcopy(stored)


def intrude(kube: FakeKube) -> None:
    """Another field manager adds an env variable and a volume to the purge pod."""
    spec = pod(kube.objects[PURGE])
    spec["containers"][0].setdefault("env", []).append(dict(INTRUDER))
    spec.setdefault("volumes", []).append(dict(LOOT))
    kube.objects[PURGE]["spec"]["jobTemplate"]["spec"]["template"]["spec"] = spec
    kube._store(kube.objects[PURGE])


def test_the_stub_keeps_foreign_keyed_list_items_on_apply_as_the_api_server_does() -> None:
    kube = sample_cluster(KeyedListKube())
    reconciler(kube).reconcile(KEY, now=T0)
    made = copy.deepcopy(kube.objects[PURGE])
    del made["metadata"]["resourceVersion"]  # a precondition (409) now that it changed
    intrude(kube)
    kube.apply(made)  # the render, applied again
    assert INTRUDER in pod(kube.objects[PURGE])["containers"][0]["env"]


def test_an_apply_that_leaves_foreign_items_is_followed_by_one_update() -> None:
    kube = sample_cluster(KeyedListKube())
    reconciler(kube).reconcile(KEY, now=T0)
    made = copy.deepcopy(kube.objects[PURGE]["spec"])
    intrude(kube)
    kube.calls.clear()
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    cronjob_writes = [(v, k) for v, k, _ in kube.writes() if k == "CronJob"]
    assert cronjob_writes == [("apply", "CronJob"), ("replace", "CronJob")]
    assert kube.objects[PURGE]["spec"] == made
    assert conditions(kube)["PurgeScheduled"][0] == "True"
    kube.calls.clear()
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert kube.writes() == []  # steady again: no re-apply at every reconcile


def test_an_apply_that_restores_the_child_sends_no_update() -> None:
    kube = sample_cluster(KeyedListKube())
    reconciler(kube).reconcile(KEY, now=T0)
    kube.objects[PURGE]["spec"]["schedule"] = "* * * * *"  # a plain field: apply restores it
    kube.calls.clear()
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert [(v, k) for v, k, _ in kube.writes() if k == "CronJob"] == [("apply", "CronJob")]


def test_a_conflicting_update_is_left_to_the_next_reconcile_not_forced() -> None:
    kube = sample_cluster(KeyedListKube())
    reconciler(kube).reconcile(KEY, now=T0)
    intrude(kube)
    real_replace = kube.replace

    def racing_replace(obj: Any) -> dict[str, Any]:
        kube.objects[PURGE]["metadata"]["resourceVersion"] = "changed-meanwhile"
        return real_replace(obj)

    kube.replace = racing_replace  # type: ignore[method-assign]
    kube.calls.clear()
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))  # no exception
    assert [(v, k) for v, k, _ in kube.writes() if k == "CronJob"] == [
        ("apply", "CronJob"), ("replace", "CronJob")]  # fmt: skip
    assert INTRUDER in pod(kube.objects[PURGE])["containers"][0]["env"]  # nothing overwritten
    assert conditions(kube)["PurgeScheduled"] == ("False", "CronJobDrifted")
    kube.replace = real_replace  # type: ignore[method-assign]
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert INTRUDER not in pod(kube.objects[PURGE])["containers"][0]["env"]
    assert conditions(kube)["PurgeScheduled"][0] == "True"


def test_a_refused_update_makes_the_schedule_unknown() -> None:
    kube = sample_cluster(KeyedListKube())
    reconciler(kube).reconcile(KEY, now=T0)
    intrude(kube)

    def forbidden(obj: Any) -> dict[str, Any]:
        raise KubeError(403, "Forbidden", "update CronJob")

    kube.replace = forbidden  # type: ignore[method-assign]
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["PurgeScheduled"][0] != "True"


def test_the_update_body_is_the_render_on_the_live_objects_identity() -> None:
    desired = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "purge", "namespace": "crm",
            "labels": {"app.kubernetes.io/managed-by": "dataward"},
            "annotations": {"dataward.io/store": "s"},
            "ownerReferences": [{"uid": "store-uid", "kind": "PersonalDataStore"}],
        },
        "spec": {"schedule": "17 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "purge", "env": [{"name": "A", "value": "1"}]}]}}}}},
    }  # fmt: skip
    live = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "purge", "namespace": "crm", "uid": "live-uid", "resourceVersion": "42",
            "creationTimestamp": "2026-01-10T08:00:00Z", "generation": 3,
            "managedFields": [{"manager": "intruder"}],
            "labels": {"app.kubernetes.io/managed-by": "someone", "team": "crm"},
            "annotations": {"note": "kept"},
            "ownerReferences": [{"uid": "store-uid", "kind": "PersonalDataStore"},
                                {"uid": "other", "kind": "ConfigMap"}],
        },
        "spec": {"schedule": "17 3 * * *", "suspend": False, "jobTemplate": {"spec": {
            "template": {"spec": {"containers": [{"name": "purge", "env": [
                {"name": "A", "value": "1"}, {"name": "INTRUDER_PROXY", "value": "x"}]}],
                "volumes": [{"name": "loot", "emptyDir": {}}]}}}}},
        "status": {"lastScheduleTime": "2026-01-10T03:17:00Z"},
    }  # fmt: skip
    body = replacement(desired, live)
    assert body["spec"] == desired["spec"]  # the intruder's env variable and volume gone
    assert body["metadata"] == {
        "name": "purge", "namespace": "crm", "uid": "live-uid", "resourceVersion": "42",
        "creationTimestamp": "2026-01-10T08:00:00Z", "generation": 3,
        "labels": {"app.kubernetes.io/managed-by": "dataward", "team": "crm"},
        "annotations": {"note": "kept", "dataward.io/store": "s"},
        "ownerReferences": [{"uid": "store-uid", "kind": "PersonalDataStore"}],
    }  # fmt: skip
    assert (body["apiVersion"], body["kind"]) == ("batch/v1", "CronJob")
    assert "status" not in body
