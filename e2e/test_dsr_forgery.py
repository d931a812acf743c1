"""A forged answer to an erasure request on the real control plane (bench/notes/dsr-forgery.md).

Mallory may create and read Jobs and pods in the store's namespace, nothing more. She copies
the labels, annotations and owner reference (`controller: true`) of the Job the operator made
for an erasure request onto a Job that runs `busybox`; its "node" reports the termination
message an erasure that deleted the subject's rows would. The request must not say it was
answered: nothing was erased. The real Job, run afterwards by the kubelet stand-in
(e2e/kubelet.py), then answers it, so the comparison of what a Job runs to the render also
holds against the API server's defaults on a request's Job and its pod.

The request's other children have names anyone can predict. Mallory, who may create Secrets
in the request's namespace and read the request, plants its key Secret with the request's
labels and her own key pair before the operator gets to make it: the operator must not seal
the subject's rows to her key (no Job), say so (ChildNotOurs), and write nothing into her
Secret. And a Job of hers carrying the request's labels outlives the request's finalizer.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dataward.subjects.export import generate_keypair
from e2e.fixtures_databases import Postgres
from e2e.fixtures_operator import apply, get, grant_user, own_namespace
from e2e.harness import ControlPlane, wait_for
from e2e.kubelet import JOB_NAME_LABEL, run_job
from e2e.test_job_forgery import _busybox, _finish_as_node
from e2e.test_subject_requests import (
    UID_LABEL,
    create_table,
    ids,
    insert,
    request,
    store,
)

FORGED = "dsr-forged"


pytestmark = pytest.mark.usefixtures("seed_policy_applied")


# A user who may create and read Jobs and pods in the namespace.
RULES: list[dict[str, Any]] = [
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get"]},
]


def _entry(plane: ControlPlane, namespace: str) -> dict[str, Any]:
    doc = get(plane, "dsr", "erasure", namespace) or {}
    stores = (doc.get("status") or {}).get("stores") or [{}]
    return dict(stores[0])


def test_a_forged_job_cannot_answer_an_erasure_request(
    control_plane: ControlPlane, namespace: str, postgres: Postgres, tmp_path: Path
) -> None:
    plane = control_plane
    email = f"kim.minji.{uuid.uuid4().hex[:8]}@example.kr"
    table = f"tickets_{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    create_table(postgres.live, table, "inquired_at")
    insert(postgres.live, table, "inquired_at", [
        (1, now - timedelta(days=20), email, "my printer is on fire"),
        (2, now - timedelta(days=3), email, "still on fire"),
        (3, now - timedelta(days=3), "someone@example.kr", "not the subject"),
    ])  # fmt: skip
    apply(plane, *store(namespace, "tickets", "technical-support-inquiry", postgres, table,
                        "inquired_at"))  # fmt: skip
    wait_for(
        lambda: plane.kubectl("get", "sa", "dataward-tickets-purge", "-n", namespace,
                              check=False).returncode == 0,
        timeout=60, message="the store's purge ServiceAccount",
    )  # fmt: skip
    apply(plane, {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": "subject-identifier", "namespace": namespace},
                  "type": "Opaque", "stringData": {"email": email}})  # fmt: skip
    apply(plane, request(namespace, "erasure", "erasure"))
    uid = get(plane, "dsr", "erasure", namespace)["metadata"]["uid"]  # type: ignore[index]

    # The operator's Job, as Mallory reads it; hers copies its metadata, runs busybox.
    mallory_config = grant_user(plane, namespace, "mallory", RULES, "ci-robot")

    def listed() -> list[dict[str, Any]] | None:
        out = plane.kubectl("get", "jobs", "-n", namespace, "-l", f"{UID_LABEL}={uid}",
                            "-o", "json", kubeconfig=mallory_config, check=False)  # fmt: skip
        items = json.loads(out.stdout)["items"] if out.returncode == 0 else []
        return items or None

    jobs = wait_for(listed, timeout=60, message="the operator's Job for the request")
    assert jobs is not None and len(jobs) == 1
    real = jobs[0]
    template = real["spec"]["template"]["metadata"]
    generated = ("controller-uid", "job-name")  # the server's, from the Job's own uid and name
    pod_labels = {k: v for k, v in template["labels"].items()
                  if k.rpartition("/")[2] not in generated}  # fmt: skip
    forged = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {
            "name": FORGED, "namespace": namespace,
            "labels": real["metadata"]["labels"],
            "annotations": real["metadata"]["annotations"],
            "ownerReferences": [{k: v for k, v in ref.items() if k != "blockOwnerDeletion"}
                                for ref in real["metadata"]["ownerReferences"]],
        },
        "spec": {"backoffLimit": 0,
                 "template": {"metadata": {"labels": pod_labels,
                                           "annotations": template["annotations"]},
                              "spec": _busybox()}},
    }  # fmt: skip
    plane.kubectl("create", "-f", "-", kubeconfig=mallory_config, input=json.dumps(forged))
    pods = wait_for(
        lambda: json.loads(plane.kubectl(
            "get", "pods", "-n", namespace, "-l", f"{JOB_NAME_LABEL}={FORGED}", "-o", "json"
        ).stdout)["items"],
        timeout=30, message="the Job controller makes the forged Job's pod",
    )  # fmt: skip
    assert pods
    record = {"outcome": "Succeeded", "rowsFound": 2, "rowsDeleted": 2,
              "tables": [{"table": table, "rowsFound": 2, "rowsDeleted": 2}]}  # fmt: skip
    _finish_as_node(plane, namespace, pods[0]["metadata"]["name"], json.dumps(record))
    wait_for(
        lambda: (get(plane, "job", FORGED, namespace) or {}).get("status", {}).get("succeeded"),
        timeout=60, message="the Job controller finishes the forged Job",
    )  # fmt: skip

    # The operator's judgement, by either sign: the forged Job named, or taken as the answer.
    entry = wait_for(
        lambda: (e := _entry(plane, namespace)) and (
            FORGED in e.get("message", "") or e.get("phase") == "Succeeded") and e,
        timeout=60, message="the operator judges the forged Job",
    )  # fmt: skip
    assert entry is not None
    assert entry["phase"] != "Succeeded", "the forged Job answered the erasure"
    assert entry["jobName"] == real["metadata"]["name"]
    doc = get(plane, "dsr", "erasure", namespace) or {}
    assert doc["status"]["phase"] == "Running"
    assert email not in json.dumps(doc["status"])
    assert ids(postgres.live, table) == {1, 2, 3}, "nothing was erased"

    # The real Job, run by the kubelet stand-in, answers it.
    outcome, runs = run_job(plane, namespace, real["metadata"]["name"], tmp_path)
    assert outcome == "Complete", [(r.stdout, r.stderr) for r in runs]

    def answered() -> dict[str, Any] | None:
        doc = get(plane, "dsr", "erasure", namespace) or {}
        phase = (doc.get("status") or {}).get("phase")
        return doc if phase in ("Succeeded", "Failed", "PartiallyHeld") else None

    done = wait_for(answered, timeout=90, message="the request answered")
    assert done is not None
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["stores"][0]["jobName"] == real["metadata"]["name"]
    assert ids(postgres.live, table) == {3}


REQUEST_LABELS = (
    "app.kubernetes.io/managed-by", "app.kubernetes.io/name", "app.kubernetes.io/component",
    "dataward.io/subject-request", UID_LABEL,
)  # fmt: skip


def _request_labels(namespace: str, name: str, uid: str) -> dict[str, str]:
    """The labels the operator puts on a request's children (render/subject_jobs.py): what
    anyone who may read the request can write."""
    values = ("dataward", "dataward", "subject-request", f"{namespace}.{name}", uid)
    return dict(zip(REQUEST_LABELS, values, strict=True))


def _scoped(namespace: str, name: str, type_: str, *stores: tuple[str, str]) -> dict[str, Any]:
    doc = request(namespace, name, type_)
    doc["spec"]["scope"] = {"stores": [{"namespace": ns, "name": n} for ns, n in stores]}
    return doc


def _store_ready(plane: ControlPlane, namespace: str, name: str) -> None:
    wait_for(
        lambda: plane.kubectl("get", "sa", f"dataward-{name}-purge", "-n", namespace,
                              check=False).returncode == 0,
        timeout=60, message=f"the store {name}'s purge ServiceAccount",
    )  # fmt: skip


def _identifier(namespace: str, email: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "subject-identifier", "namespace": namespace},
            "type": "Opaque", "stringData": {"email": email}}  # fmt: skip


def _jobs(plane: ControlPlane, namespace: str, uid: str) -> list[dict[str, Any]]:
    out = plane.kubectl("get", "jobs", "-n", namespace, "-l", f"{UID_LABEL}={uid}", "-o", "json")
    return list(json.loads(out.stdout)["items"])


def test_a_key_secret_planted_before_the_request_is_answered_is_not_used(
    control_plane: ControlPlane, namespace: str, postgres: Postgres
) -> None:
    plane = control_plane
    table = f"tickets_{uuid.uuid4().hex[:6]}"
    create_table(postgres.live, table, "inquired_at")
    apply(plane, *store(namespace, "tickets", "technical-support-inquiry", postgres, table,
                        "inquired_at"))  # fmt: skip
    _store_ready(plane, namespace, "tickets")
    # The request waits for its identifier Secret: the operator has made no child yet.
    apply(plane, _scoped(namespace, "access", "access", (namespace, "tickets")))
    waiting = wait_for(
        lambda: ((get(plane, "dsr", "access", namespace) or {}).get("status") or {}).get("phase"),
        timeout=60, message="the operator sees the request",
    )  # fmt: skip
    assert waiting == "Pending"

    # Mallory reads the request's uid and plants its key Secret: its labels, her key pair.
    rules = [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "get"]},
        {"apiGroups": ["dataward.io"], "resources": ["datasubjectrequests"], "verbs": ["get"]},
    ]
    config = grant_user(plane, namespace, "mallory", rules, "ci-robot")
    uid = json.loads(plane.kubectl("get", "dsr", "access", "-n", namespace, "-o", "json",
                                   kubeconfig=config).stdout)["metadata"]["uid"]  # fmt: skip
    pair = generate_keypair()
    name = "dataward-access-dsr-key"
    planted = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": _request_labels(namespace, "access", uid)},
        "data": {"private.key": base64.b64encode(pair.private_pem).decode("ascii"),
                 "public.key": base64.b64encode(pair.public_pem).decode("ascii")},
    }  # fmt: skip
    plane.kubectl("create", "-f", "-", kubeconfig=config, input=json.dumps(planted))
    before = get(plane, "secret", name, namespace)
    assert before is not None

    apply(plane, _identifier(namespace, f"kim.minji.{uuid.uuid4().hex[:8]}@example.kr"))
    entry = wait_for(
        lambda: (e := _entry_of(plane, namespace, "access")) and e.get("reason") != "JobCreated"
        and e.get("phase") not in (None, "Pending") and e,
        timeout=60, message="the operator judges the planted key Secret",
    )  # fmt: skip
    assert entry is not None
    assert (entry["phase"], entry["reason"]) == ("Failed", "ChildNotOurs"), entry
    assert name in entry["message"]
    assert _jobs(plane, namespace, uid) == [], "a Job seals the subject's rows to Mallory's key"
    doc = get(plane, "dsr", "access", namespace) or {}
    complete = {c["type"]: c for c in doc["status"]["conditions"]}["Complete"]
    assert complete["status"] != "True", complete
    after = get(plane, "secret", name, namespace)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["data"] == planted["data"] and "ownerReferences" not in after["metadata"]


def _entry_of(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    doc = get(plane, "dsr", name, namespace) or {}
    stores = (doc.get("status") or {}).get("stores") or [{}]
    return dict(stores[0])


def test_a_job_with_the_requests_labels_outlives_the_requests_finalizer(
    control_plane: ControlPlane, namespace: str, postgres: Postgres
) -> None:
    # The store in another namespace: its Jobs are the finalizer's to delete, not the GC's.
    with own_namespace(control_plane, "e2e-dsr-store") as elsewhere:
        _finalized(control_plane, namespace, elsewhere, postgres)


def _finalized(plane: ControlPlane, namespace: str, elsewhere: str, postgres: Postgres) -> None:
    table = f"orders_{uuid.uuid4().hex[:6]}"
    create_table(postgres.live, table, "inquired_at")
    apply(plane, *store(elsewhere, "orders", "technical-support-inquiry", postgres, table,
                        "inquired_at"))  # fmt: skip
    _store_ready(plane, elsewhere, "orders")
    apply(plane, _identifier(namespace, f"kim.minji.{uuid.uuid4().hex[:8]}@example.kr"))
    apply(plane, _scoped(namespace, "erasure", "erasure", (elsewhere, "orders")))
    uid = get(plane, "dsr", "erasure", namespace)["metadata"]["uid"]  # type: ignore[index]
    made = wait_for(lambda: _jobs(plane, elsewhere, uid), timeout=60,
                    message="the operator's Job for the request")  # fmt: skip
    assert made is not None and len(made) == 1
    real = made[0]["metadata"]["name"]

    # Mallory's Job in the store's namespace: the request's labels, her own busybox.
    config = grant_user(plane, elsewhere, "mallory", RULES, "ci-robot")
    mine = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "mallorys-nightly", "namespace": elsewhere,
                     "labels": made[0]["metadata"]["labels"],
                     "annotations": made[0]["metadata"]["annotations"]},
        "spec": {"backoffLimit": 0, "template": {"spec": _busybox()}},
    }  # fmt: skip
    plane.kubectl("create", "-f", "-", kubeconfig=config, input=json.dumps(mine))

    plane.kubectl("delete", "dsr", "erasure", "-n", namespace, "--wait=false")
    wait_for(lambda: get(plane, "dsr", "erasure", namespace) is None, timeout=60,
             message="the request's finalizer done")  # fmt: skip
    left = {job["metadata"]["name"] for job in _jobs(plane, elsewhere, uid)}
    assert real not in left, "the operator's own run is deleted with the request"
    assert "mallorys-nightly" in left, "the finalizer deleted a Job it did not make"
