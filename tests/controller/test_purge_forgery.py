"""Purge runs that someone else made (bench/notes/job-forgery.md).

Whoever may create Jobs (or pods) in the store's namespace can copy the owner reference of a
real purge run: the CronJob's (or the Job's) uid is readable, and `controller: true` is
free to write. Such a Job runs whatever its author chose, and its pod's termination message
says whatever its author chose. Each test acts as that author through the reconciler's public
`reconcile` on an in-memory API, and checks what the store then says about its purge.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.render.settings import RenderSettings
from tests.controller.fake_kube import FakeKube
from tests.controller.test_cache import ListingKube, _caches, _reconciler, _relist
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster, status

CRONJOB = "dataward-support-inquiries-purge"
LABELS = {"app.kubernetes.io/managed-by": "dataward", "dataward.io/store": "support-inquiries"}
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def _reconcile(kube: FakeKube, minutes: int = 0, image: str | None = None) -> None:
    render = RenderSettings(image=image) if image else RenderSettings()
    reconciler = Reconciler(kube, ReconcileSettings(render=render))  # type: ignore[arg-type]
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=minutes))


def _cluster() -> tuple[FakeKube, str]:
    """The sample store reconciled once: its CronJob exists; and the CronJob's uid."""
    kube = sample_cluster(FakeKube())
    _reconcile(kube)
    return kube, kube.objects[("CronJob", "crm", CRONJOB)]["metadata"]["uid"]


def _template(kube: FakeKube) -> dict[str, Any]:
    """The CronJob's job template as the API server keeps it in a Job it made: the render's
    fields, and the server's defaults besides (which say nothing about what runs)."""
    cronjob = kube.objects[("CronJob", "crm", CRONJOB)]
    job: dict[str, Any] = copy.deepcopy(cronjob["spec"]["jobTemplate"]["spec"])
    job.update(
        completions=1, parallelism=1, completionMode="NonIndexed", suspend=False,
        podReplacementPolicy="TerminatingOrFailed", manualSelector=False,
        selector={"matchLabels": {"batch.kubernetes.io/controller-uid": "generated"}},
    )  # fmt: skip
    spec = job["template"]["spec"]
    spec.update(
        dnsPolicy="ClusterFirst",
        schedulerName="default-scheduler",
        terminationGracePeriodSeconds=30,
        serviceAccount=spec["serviceAccountName"],
    )
    for container in spec["containers"]:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
    return job


def _busybox() -> dict[str, Any]:
    """The forger's Job spec: its pod runs `true`, and succeeds."""
    return {
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": dict(LABELS)},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "purge", "image": "busybox", "command": ["true"]}],
            },
        },
    }


def _busybox_pod() -> dict[str, Any]:
    return dict(_busybox()["template"]["spec"])


def _job(
    kube: FakeKube, name: str, cronjob_uid: str, spec: dict[str, Any], outcome: str,
    minute: int,
) -> dict[str, Any]:
    """A finished Job with an owner reference to the store's CronJob, as a forger writes it
    (or as the CronJob controller does)."""
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name, "namespace": "crm", "labels": dict(LABELS),
            "creationTimestamp": f"2026-01-10T07:{minute:02d}:00Z",
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": CRONJOB,
                                 "uid": cronjob_uid, "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": copy.deepcopy(spec),
        "status": {
            "startTime": f"2026-01-10T07:{minute:02d}:00Z",
            "completionTime": f"2026-01-10T07:{minute:02d}:30Z",
            "conditions": [{"type": outcome, "status": "True"}],
        },
    }  # fmt: skip
    return kube._store(job)


def _pod(
    kube: FakeKube, name: str, job: dict[str, Any], spec: dict[str, Any],
    messages: dict[str, dict[str, Any]], minute: int,
) -> None:
    """A finished pod of `job` (an owner reference to its uid, its job-name label), whose
    containers left `messages` (container name -> JSON record) as termination messages."""
    kube._store({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "crm",
            "labels": {**LABELS, JOB_NAME_LABEL: job["metadata"]["name"]},
            "creationTimestamp": f"2026-01-10T07:{minute:02d}:00Z",
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                 "name": job["metadata"]["name"], "uid": job["metadata"]["uid"],
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": copy.deepcopy(spec),
        "status": {"containerStatuses": [
            {"name": container, "state": {"terminated": {
                "exitCode": 0, "message": json.dumps(record)}}}
            for container, record in messages.items()
        ]},
    })  # fmt: skip


def _as_pod(job: dict[str, Any]) -> dict[str, Any]:
    """A pod's spec made from the Job's template, with what the scheduler and admission add."""
    spec: dict[str, Any] = copy.deepcopy(job["template"]["spec"])
    spec.update(
        nodeName="node-1",
        priority=0,
        preemptionPolicy="PreemptLowerPriority",
        tolerations=[
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": 300},
        ],
    )  # fmt: skip
    for container in spec["containers"]:
        resources = container.setdefault("resources", {})
        requests = resources.setdefault("requests", {})
        for key, value in (resources.get("limits") or {}).items():
            requests.setdefault(key, value)  # the API server defaults requests to limits
    return spec


def _record(result: str, rows: int, **extra: Any) -> dict[str, Any]:
    return {
        "result": result, "rowsDeleted": rows, "rowsArchived": 0,
        "startTime": "2026-01-10T07:00:01Z", "completionTime": "2026-01-10T07:00:20Z",
        "cutoff": "2025-01-10T07:00:00Z", **extra,
    }  # fmt: skip


def _message(kube: FakeKube, kind: str) -> str:
    return str(next(c for c in status(kube)["conditions"] if c["type"] == kind)["message"])


def test_a_forged_job_with_our_owner_reference_is_not_a_purge_run() -> None:
    """`busybox true`, owned by the CronJob (controller: true), its pod claiming 500 rows."""
    kube, uid = _cluster()
    forged = _job(kube, "forged", uid, _busybox(), "Complete", minute=0)
    _pod(kube, "forged-x1", forged, _busybox_pod(), {"purge": _record("Succeeded", 500)}, 0)
    _reconcile(kube, minutes=1)
    assert conditions(kube)["PurgeSucceeded"] == ("True", "NoRunYet")
    assert "lastPurge" not in status(kube), "the forged run's result was recorded"
    assert "forged" in _message(kube, "PurgeSucceeded"), "the forged Job is not named"


def test_a_forged_failure_does_not_replace_the_last_real_run() -> None:
    kube, uid = _cluster()
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Complete", minute=0)
    _pod(kube, "real-x1", real, _as_pod(template), {"purge": _record("Succeeded", 7)}, 0)
    forged = _job(kube, "forged", uid, _busybox(), "Failed", minute=30)
    _pod(kube, "forged-x1", forged, _busybox_pod(),
         {"purge": _record("Failed", 0, reason="DatabaseUnreachable")}, 30)  # fmt: skip
    _reconcile(kube, minutes=1)
    assert conditions(kube)["PurgeSucceeded"] == ("True", "Succeeded")
    assert status(kube)["lastPurge"]["jobName"] == "real"
    assert status(kube)["lastPurge"]["rowsDeleted"] == 7


def _failed_real_run(kube: FakeKube, uid: str) -> None:
    """A real run that failed, and was counted."""
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Failed", minute=0)
    _pod(kube, "real-x1", real, _as_pod(template),
         {"purge": _record("Failed", 0, reason="DatabaseUnreachable")}, 0)  # fmt: skip
    _reconcile(kube, minutes=1)
    assert conditions(kube)["PurgeSucceeded"] == ("False", "DatabaseUnreachable")


def test_forged_runs_cannot_push_a_real_failure_out_of_the_verdict() -> None:
    """The CronJob controller keeps `failedJobsHistoryLimit` failed Jobs it owns, forged ones
    among them: enough newer forged failures delete the real one. The failure it recorded
    still stands, and no forged success replaces it."""
    kube, uid = _cluster()
    _failed_real_run(kube, uid)
    del kube.objects[("Job", "crm", "real")], kube.objects[("Pod", "crm", "real-x1")]
    forged = _job(kube, "forged", uid, _busybox(), "Complete", minute=40)
    _pod(kube, "forged-x1", forged, _busybox_pod(), {"purge": _record("Succeeded", 9)}, 40)
    _reconcile(kube, minutes=2)
    assert conditions(kube)["PurgeSucceeded"] == ("False", "DatabaseUnreachable")
    assert status(kube)["lastPurge"]["jobName"] == "real"


def test_a_run_of_an_earlier_template_the_operator_applied_is_still_counted() -> None:
    """After an upgrade (a new image), the runs made from the earlier template run another
    image than the CronJob now describes, but a template the operator applied (recorded in
    status.purgeRenders): still the store's runs, not named as not counted, and the last
    verdict stands (tests/controller/test_purge_renders.py)."""
    kube, uid = _cluster()
    _failed_real_run(kube, uid)
    _reconcile(kube, minutes=2, image="ghcr.io/dataward/dataward:next")
    assert conditions(kube)["PurgeSucceeded"] == ("False", "DatabaseUnreachable")
    assert status(kube)["lastPurge"]["jobName"] == "real"
    assert "Not counted" not in _message(kube, "PurgeSucceeded")


def test_a_copy_of_our_job_runs_our_purge_and_counts() -> None:
    """`kubectl create job --from=cronjob/...` (or anyone's exact copy) runs the purge itself."""
    kube, uid = _cluster()
    template = _template(kube)
    copied = _job(kube, "manual-run", uid, template, "Complete", minute=10)
    _pod(kube, "manual-run-x1", copied, _as_pod(template), {"purge": _record("Succeeded", 3)}, 10)
    _reconcile(kube, minutes=1)
    assert conditions(kube)["PurgeSucceeded"] == ("True", "Succeeded")
    assert status(kube)["lastPurge"]["jobName"] == "manual-run"
    assert status(kube)["lastPurge"]["rowsDeleted"] == 3


def test_a_forged_pod_in_a_real_run_cannot_report_its_result() -> None:
    """The real purge failed; a newer pod owned by the real Job (anyone who may create pods
    can write that owner reference) claims success in its termination message."""
    kube, uid = _cluster()
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Complete", minute=0)
    _pod(kube, "real-x1", real, _as_pod(template),
         {"purge": _record("Failed", 0, reason="DatabaseUnreachable")}, 0)  # fmt: skip
    _pod(kube, "real-zz", real, _busybox_pod(), {"purge": _record("Succeeded", 900)}, 5)
    _reconcile(kube, minutes=1)
    assert conditions(kube)["PurgeSucceeded"][0] == "False"
    assert status(kube)["lastPurge"]["result"] == "Failed"


def test_a_sidecar_cannot_speak_for_the_purge_container() -> None:
    """A pod of our Job with one container more, whose termination message claims success."""
    kube, uid = _cluster()
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Complete", minute=0)
    spec = _as_pod(template)
    spec["containers"].append({"name": "sidecar", "image": "busybox", "command": ["true"]})
    _pod(kube, "real-x1", real, spec, {"sidecar": _record("Succeeded", 900)}, 0)
    _reconcile(kube, minutes=1)
    assert conditions(kube)["PurgeSucceeded"][0] != "True"
    assert status(kube)["lastPurge"].get("rowsDeleted") is None


def test_a_forged_job_stuck_forever_is_not_our_stuck_run() -> None:
    kube, uid = _cluster()
    forged = _job(kube, "forged", uid, _busybox(), "Complete", minute=0)
    forged["status"] = {"startTime": "2026-01-10T04:00:00Z", "active": 1}
    kube.objects[("Job", "crm", "forged")]["status"] = forged["status"]
    _reconcile(kube, minutes=1)
    assert conditions(kube)["PurgeSucceeded"] == ("True", "NoRunYet")


def test_our_own_run_stuck_past_its_deadline_is_still_named() -> None:
    kube, uid = _cluster()
    _job(kube, "stuck-run", uid, _template(kube), "Complete", minute=0)
    kube.objects[("Job", "crm", "stuck-run")]["status"] = {
        "startTime": "2026-01-10T04:00:00Z", "active": 1
    }
    _reconcile(kube, minutes=1)
    assert conditions(kube)["PurgeSucceeded"] == ("False", "PurgeRunStuck")
    assert "stuck-run" in _message(kube, "PurgeSucceeded")


def test_the_same_verdicts_through_the_caches() -> None:
    """The caches keep a Job's and a pod's spec only as what it runs (a digest): a real run
    still counts from there, and a forged pod in it still cannot speak for it."""
    kube = sample_cluster(ListingKube())
    caches = _caches(kube)
    _relist(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    uid = kube.objects[("CronJob", "crm", CRONJOB)]["metadata"]["uid"]
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Complete", minute=0)
    _pod(kube, "real-x1", real, _as_pod(template), {"purge": _record("Succeeded", 7)}, 0)
    forged = _job(kube, "forged", uid, _busybox(), "Failed", minute=30)
    _pod(kube, "forged-x1", forged, _busybox_pod(),
         {"purge": _record("Failed", 0, reason="DatabaseUnreachable")}, 30)  # fmt: skip
    _pod(kube, "real-zz", real, _busybox_pod(), {"purge": _record("Failed", 0)}, 5)
    _relist(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["PurgeSucceeded"] == ("True", "Succeeded")
    assert status(kube)["lastPurge"]["rowsDeleted"] == 7
    message = _message(kube, "PurgeSucceeded")
    assert "forged" in message and "real-zz" in message


def test_a_copy_that_finishes_without_running_a_pod_is_not_a_run() -> None:
    """Our pod template exactly, but `completions: 0`: the Job controller marks such a Job
    Complete at once, and no purge ever ran."""
    kube, uid = _cluster()
    hollow = _template(kube)
    hollow["completions"] = 0
    _job(kube, "hollow", uid, hollow, "Complete", minute=0)
    _reconcile(kube, minutes=1)
    assert conditions(kube)["PurgeSucceeded"] == ("True", "NoRunYet")
    assert "lastPurge" not in status(kube)
    assert "hollow" in _message(kube, "PurgeSucceeded")


def test_a_run_judged_before_its_pod_is_seen_is_recorded_with_its_real_result() -> None:
    """The Job's completion reaches the operator before its pod's termination message does
    (two watches). Red on 97d2a4d: the run was recorded Unknown (NoResultRecord) at once,
    and the pass that then read its record saw the same jobName and never recorded the
    real result: the report showed a false "outcome is unknown" finding for good."""
    from tests.controller.test_evidence_records import Sink

    kube, uid = _cluster()
    sink = Sink()
    reconciler = Reconciler(kube, ReconcileSettings(evidence=sink))  # type: ignore[arg-type]
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Complete", minute=59)  # done at 07:59:30
    reconciler.reconcile(KEY, now=T0)  # 30 s later: no pod seen yet
    assert sink.of("purge.run") == []
    _pod(kube, "real-x1", real, _as_pod(template), {"purge": _record("Succeeded", 3)}, 59)
    reconciler.reconcile(KEY, now=T0 + timedelta(seconds=5))
    (run,) = sink.of("purge.run")
    assert (run["jobName"], run["result"], run["rowsDeleted"]) == ("real", "Succeeded", 3)
    assert status(kube)["lastPurge"]["result"] == "Succeeded"


def test_a_run_that_never_left_a_record_is_recorded_unknown_after_a_grace() -> None:
    from tests.controller.test_evidence_records import Sink

    kube, uid = _cluster()
    sink = Sink()
    reconciler = Reconciler(kube, ReconcileSettings(evidence=sink))  # type: ignore[arg-type]
    _job(kube, "real", uid, _template(kube), "Complete", minute=59)  # done at 07:59:30
    due = reconciler.reconcile(KEY, now=T0)
    assert sink.of("purge.run") == [] and due is not None and due <= T0 + timedelta(minutes=2)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    (run,) = sink.of("purge.run")
    assert (run["result"], run["reason"]) == ("Unknown", "NoResultRecord")
