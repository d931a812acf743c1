"""Forged purge runs on the real control plane (bench/notes/job-forgery.md).

Mallory may create Jobs and pods in the store's namespace and read its CronJob, nothing
more: a common grant to a CI robot or a developer. She copies the CronJob's uid into an owner
reference (`controller: true`) on a Job that runs `busybox`, and on a pod that claims to be
one of the real purge Job's pods; each "node" reports what that container wrote to its
termination log. The real run is made by `kubectl create job --from` and run by the kubelet
stand-in (e2e/kubelet.py): so this also holds the comparison of what a Job runs to the
render against the API server's own defaults, on its Job and on the pod its Job controller
makes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from e2e.fixtures_databases import Postgres
from e2e.fixtures_operator import (
    condition,
    get,
    grant_user,
    wait_condition,
)
from e2e.harness import ControlPlane, wait_for
from e2e.kubelet import JOB_NAME_LABEL, run_job
from e2e.test_purge import create_job, last_purge_of, ready_support_store

STORE = "support-inquiries"
CRONJOB = f"dataward-{STORE}-purge"

pytestmark = pytest.mark.usefixtures("seed_policy_applied")


# Mallory may create Jobs and pods in the namespace and read its CronJobs.
MALLORY_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get"]},
    {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get"]},
]


def _busybox() -> dict[str, Any]:
    return {
        "restartPolicy": "Never",
        "containers": [{
            "name": "purge", "image": "busybox", "command": ["sh", "-c", "echo forged"],
            "terminationMessagePolicy": "File",
        }],
    }  # fmt: skip


def _record(result: str, rows: int, **extra: Any) -> str:
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({
        "version": 1, "result": result, "rowsDeleted": rows, "rowsArchived": 0,
        "startTime": at, "completionTime": at, "cutoff": at, "dryRun": False,
        "expiredRemaining": 0, **extra,
    })  # fmt: skip


def _finish_as_node(plane: ControlPlane, namespace: str, pod: str, message: str) -> None:
    """What a node reports for a container that wrote `message` to its termination log and
    exited 0 (the kubelet's write, so the admin's; the container was Mallory's)."""
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {"status": {
        "phase": "Succeeded", "startTime": at,
        "containerStatuses": [{
            "name": "purge", "image": "busybox", "imageID": "", "ready": False,
            "started": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": message,
                                     "startedAt": at, "finishedAt": at}},
        }],
    }}  # fmt: skip
    plane.kubectl(
        "patch", "pod", pod, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip


def _seen(plane: ControlPlane, namespace: str, name: str, real: str) -> dict[str, Any]:
    """Wait until the store's status shows the operator has judged `name`: PurgeSucceeded
    names it as not counted, or status.lastPurge no longer names the real run (which is
    what the operator did before it compared what a run runs); the store."""

    def check() -> dict[str, Any] | None:
        store = get(plane, "pds", STORE, namespace)
        message = condition(store, "PurgeSucceeded").get("message", "")
        last = ((store or {}).get("status") or {}).get("lastPurge") or {}
        named = "Not counted" in message and name in message
        moved = last.get("jobName") != real or last.get("rowsDeleted") != 30
        return store if named or moved else None

    store = wait_for(check, timeout=60, message=f"the operator judges {name}")
    assert store is not None
    return store


def test_jobs_and_pods_that_claim_our_cronjob_but_run_something_else_say_nothing(
    control_plane: ControlPlane, namespace: str, postgres: Postgres, tmp_path: Path
) -> None:
    plane = control_plane
    ready_support_store(plane, postgres, namespace)

    # The real run: kubectl create job --from, the Job controller's pod, the purge itself.
    real = create_job(plane, namespace, STORE)
    outcome, _ = run_job(plane, namespace, real, tmp_path)
    assert outcome == "Complete"
    last = last_purge_of(plane, namespace, STORE, real)["status"]["lastPurge"]
    assert last["result"] == "Succeeded" and last["rowsDeleted"] == 30
    wait_condition(plane, namespace, STORE, "PurgeSucceeded", "True", "Succeeded")

    # Mallory's Job: our CronJob's uid and labels, busybox inside.
    mallory_config = grant_user(plane, namespace, "mallory", MALLORY_RULES, "ci-robot")
    cronjob = json.loads(
        plane.kubectl("get", "cronjob", CRONJOB, "-n", namespace, "-o", "json",
                      kubeconfig=mallory_config).stdout
    )  # fmt: skip
    labels = cronjob["spec"]["jobTemplate"]["metadata"]["labels"]
    pod_labels = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    forged = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {
            "name": "purge-forged", "namespace": namespace, "labels": labels,
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": CRONJOB,
                                 "uid": cronjob["metadata"]["uid"], "controller": True}],
        },
        "spec": {"backoffLimit": 0,
                 "template": {"metadata": {"labels": pod_labels}, "spec": _busybox()}},
    }  # fmt: skip
    plane.kubectl("create", "-f", "-", kubeconfig=mallory_config, input=json.dumps(forged))
    pods = wait_for(
        lambda: json.loads(plane.kubectl(
            "get", "pods", "-n", namespace, "-l", f"{JOB_NAME_LABEL}=purge-forged", "-o", "json"
        ).stdout)["items"],
        timeout=30, message="the Job controller makes the forged Job's pod",
    )  # fmt: skip
    assert pods
    _finish_as_node(plane, namespace, pods[0]["metadata"]["name"], _record("Succeeded", 999))
    wait_for(
        lambda: (get(plane, "job", "purge-forged", namespace) or {}).get("status", {})
        .get("succeeded"),
        timeout=60, message="the Job controller finishes the forged Job",
    )  # fmt: skip
    store = _seen(plane, namespace, "purge-forged", real)
    assert store["status"]["lastPurge"]["jobName"] == real, "the forged Job became the run"
    assert store["status"]["lastPurge"]["rowsDeleted"] == 30
    assert condition(store, "PurgeSucceeded")["reason"] == "Succeeded"
    assert "purge-forged" in condition(store, "PurgeSucceeded")["message"]

    # Mallory's pod in the real run: the real Job's uid, a newer pod, a failure claimed.
    job = get(plane, "job", real, namespace)
    assert job is not None
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"{real}-zzzzz", "namespace": namespace,
            "labels": {**pod_labels, JOB_NAME_LABEL: real},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": real,
                                 "uid": job["metadata"]["uid"], "controller": True}],
        },
        "spec": _busybox(),
    }  # fmt: skip
    plane.kubectl("create", "-f", "-", kubeconfig=mallory_config, input=json.dumps(pod))
    _finish_as_node(
        plane, namespace, f"{real}-zzzzz", _record("Failed", 0, reason="DatabaseUnreachable")
    )
    store = _seen(plane, namespace, f"{real}-zzzzz", real)
    assert store["status"]["lastPurge"]["result"] == "Succeeded", "the forged pod spoke"
    assert store["status"]["lastPurge"]["rowsDeleted"] == 30
    assert condition(store, "PurgeSucceeded")["status"] == "True"
