"""A forged answer to an erasure request on the real control plane (bench/notes/dsr-forgery.md).

Mallory may create and read Jobs and pods in the store's namespace, nothing more. She copies
the labels, annotations and owner reference (`controller: true`) of the Job the operator made
for an erasure request onto a Job that runs `busybox`; its "node" reports the termination
message an erasure that deleted the subject's rows would. The request must not say it was
answered: nothing was erased. The real Job, run afterwards by the kubelet stand-in
(e2e/kubelet.py), then answers it, so the comparison of what a Job runs to the render also
holds against the API server's defaults on a request's Job and its pod.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from e2e.fixtures_databases import Postgres
from e2e.fixtures_operator import OperatorProcess, apply, get, load_example
from e2e.harness import ControlPlane, wait_for
from e2e.kubelet import JOB_NAME_LABEL, run_job
from e2e.test_job_forgery import _busybox, _finish_as_node, mallory
from e2e.test_subject_requests import POLICY, UID_LABEL, create_table, ids, insert, request, store

FORGED = "dsr-forged"


@pytest.fixture(scope="module", autouse=True)
def policy(control_plane: ControlPlane, operator: OperatorProcess) -> dict[str, Any]:
    """The seed's policy, applied once, with the operator running."""
    doc = load_example(POLICY)
    apply(control_plane, doc)
    return doc


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
    mallory_config = mallory(plane, namespace, RULES)

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
