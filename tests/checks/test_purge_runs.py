"""Purge runs from Jobs and CronJobs as listed: stuck, missed, owned, what they run."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dataward.checks.purge_runs import (
    expected_runs,
    job_runs,
    job_runs_digest,
    last_purge_status,
    missed_run,
    owned_by,
    partition_runs,
    pod_runs,
    purge_renders_status,
    recorded_purge_renders,
    renders_to_record,
    result_record,
    run_render,
    run_status,
    runs_digest,
    runs_ours,
    stuck_at,
    stuck_run,
)
from dataward.model.store import parse_store
from dataward.render.purge_job import render_purge_cronjob
from dataward.render.settings import RenderSettings
from tests.model import samples

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=15)


def _cronjob(schedule: str = "17 3 * * *", **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"creationTimestamp": "2026-02-01T00:00:00Z", "managedFields": []},
        "spec": {"schedule": schedule, "timeZone": "Asia/Seoul", "suspend": False},
        "status": {},
        **extra,
    }


def test_a_run_never_started_is_missed_in_the_cronjobs_own_zone() -> None:
    # 03:17 in Seoul is 18:17 UTC the day before.
    assert missed_run(_cronjob(), NOW, GRACE, "dataward") == datetime(
        2026, 3, 1, 18, 17, tzinfo=UTC
    )


def test_a_run_recorded_by_the_cronjob_controller_is_not_missed() -> None:
    cronjob = _cronjob(status={"lastScheduleTime": "2026-03-01T18:17:00Z"})
    assert missed_run(cronjob, NOW, GRACE, "dataward") is None


def test_a_run_due_within_the_grace_is_not_missed_yet() -> None:
    cronjob = _cronjob("55 11 * * *")
    cronjob["spec"]["timeZone"] = "Etc/UTC"
    cronjob["status"] = {"lastScheduleTime": "2026-03-01T11:55:00Z"}
    assert missed_run(cronjob, NOW, GRACE, "dataward") is None


def test_nothing_is_missed_before_the_schedule_was_last_changed_or_while_suspended() -> None:
    changed = _cronjob()
    changed["metadata"]["managedFields"] = [{"manager": "dataward", "time": "2026-03-02T00:00:00Z"}]
    assert missed_run(changed, NOW, GRACE, "dataward") is None
    someone_else = _cronjob()
    someone_else["metadata"]["managedFields"] = [
        {"manager": "kubectl", "time": "2026-03-02T00:00:00Z"}
    ]
    assert missed_run(someone_else, NOW, GRACE, "dataward") is not None
    suspended = _cronjob()
    suspended["spec"]["suspend"] = True
    assert missed_run(suspended, NOW, GRACE, "dataward") is None


def test_a_job_is_stuck_only_past_its_deadline_and_unfinished() -> None:
    def job(name: str, started: datetime, done: bool = False) -> dict[str, Any]:
        conditions = [{"type": "Complete", "status": "True"}] if done else []
        return {
            "metadata": {"name": name},
            "status": {
                "startTime": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "conditions": conditions,
            },
        }

    deadline = timedelta(hours=1)
    jobs = [
        job("fresh", NOW - timedelta(minutes=30)),
        job("done", NOW - timedelta(hours=5), done=True),
        job("stuck", NOW - timedelta(hours=2)),
    ]
    stuck = stuck_run(jobs, NOW, deadline)
    assert stuck is not None and stuck.job_name == "stuck"
    assert stuck_run(jobs[:2], NOW, deadline) is None
    # Without any event, the store is due again when the fresh run would become stuck.
    assert stuck_at(jobs, NOW, deadline) == NOW + timedelta(minutes=30)
    assert stuck_at(jobs[1:2], NOW, deadline) is None


def test_ownership_is_by_uid_not_by_name() -> None:
    job = {"metadata": {"ownerReferences": [{"kind": "CronJob", "name": "x", "uid": "u1"}]}}
    assert owned_by(job, "CronJob", "u1")
    assert not owned_by(job, "CronJob", "u2")


def test_a_garbled_result_record_is_not_copied_to_status() -> None:
    """The API server would refuse the status write (the reconcile failing for ever)."""
    job = {"startTime": "2026-01-10T03:17:00Z", "completionTime": "2026-01-10T03:18:00Z"}
    record = {"result": "Succeeded", "rowsDeleted": "GARBLE-7f3c", "cutoff": "2026-01-10"}
    last = last_purge_status("run-1", "Complete", record, job)
    assert last == {
        "jobName": "run-1",
        "startTime": "2026-01-10T03:17:00Z",
        "completionTime": "2026-01-10T03:18:00Z",
        "result": "Unknown",
        "reason": "NoResultRecord",
        "message": "Job run-1 finished but field(s) cutoff, rowsDeleted of its result record "
        "are not in the form the purge writes; read the Job's events and the pod's logs.",
    }
    failed = last_purge_status("run-1", "Failed", record, job)
    assert (failed["result"], failed["reason"]) == ("Failed", "JobFailed")
    good = {"result": "Succeeded", "rowsDeleted": 3, "dryRun": False}
    assert last_purge_status("run-1", "Complete", good, job) == {**good, "jobName": "run-1"}


# The purge Job and its pod as rendered: what the CronJob describes.
RENDERED_JOB: dict[str, Any] = render_purge_cronjob(
    parse_store(samples.STORE), RenderSettings(), compliant=True
)["spec"]["jobTemplate"]["spec"]
RENDERED: dict[str, Any] = RENDERED_JOB["template"]["spec"]
EXPECTED = runs_digest(RENDERED)


def _as_served(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` as the API server keeps it in a Job's template and then in its pod: defaults
    filled in, and what the scheduler and admission add. None of it changes what runs."""
    served = copy.deepcopy(spec)
    served.update(
        dnsPolicy="ClusterFirst", schedulerName="default-scheduler",
        terminationGracePeriodSeconds=30, serviceAccount=spec["serviceAccountName"],
        securityContext={**spec["securityContext"]}, nodeName="node-1", priority=0,
        preemptionPolicy="PreemptLowerPriority", imagePullSecrets=[{"name": "registry"}],
        tolerations=[{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                      "effect": "NoExecute", "tolerationSeconds": 300}],
    )  # fmt: skip
    container = served["containers"][0]
    container["resources"]["requests"]["ephemeral-storage"] = "64Mi"  # requests from limits
    container["resizePolicy"] = [{"resourceName": "cpu", "restartPolicy": "NotRequired"}]
    container["securityContext"]["procMount"] = "Default"
    return served


def test_what_a_faithful_copy_runs_is_what_the_cronjob_describes() -> None:
    assert runs_digest(_as_served(RENDERED)) == EXPECTED


CHANGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "image": lambda s: s["containers"][0].update(image="busybox"),
    "command": lambda s: s["containers"][0].update(command=["sh", "-c", "true"]),
    "args": lambda s: s["containers"][0].update(args=["purge", "--store", "crm/other"]),
    "an env var more (a termination log elsewhere)": lambda s: s["containers"][0]["env"].append(
        {"name": "DATAWARD_TERMINATION_LOG", "value": "/x"}
    ),
    "credentials from another Secret": lambda s: s["containers"][0]["env"][1]["valueFrom"][
        "secretKeyRef"
    ].update(name="attacker-db"),
    "envFrom": lambda s: s["containers"][0].update(envFrom=[{"configMapRef": {"name": "x"}}]),
    "service account": lambda s: s.update(serviceAccountName="default"),
    "pod security context": lambda s: s["securityContext"].update(runAsUser=0),
    "container security context": lambda s: s["containers"][0]["securityContext"].update(
        privileged=True
    ),
    "a sidecar": lambda s: s["containers"].append({"name": "x", "image": "busybox"}),
    "an init container": lambda s: s.update(initContainers=[{"name": "x", "image": "busybox"}]),
    "an ephemeral container": lambda s: s.update(
        ephemeralContainers=[{"name": "debug", "image": "busybox", "targetContainerName": "purge"}]
    ),
    "a post-start hook": lambda s: s["containers"][0].update(
        lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "echo {} > /dev/x"]}}}
    ),
    "the database's name resolved elsewhere": lambda s: s.update(
        hostAliases=[{"ip": "10.0.0.66", "hostnames": ["crm-postgres"]}]
    ),
    "another resolver": lambda s: s.update(
        dnsPolicy="None", dnsConfig={"nameservers": ["192.0.2.1"]}
    ),
    "the host's network": lambda s: s.update(hostNetwork=True),
    "shared process namespace": lambda s: s.update(shareProcessNamespace=True),
    "a volume changed": lambda s: s["volumes"][1].update(emptyDir=None, hostPath={"path": "/"}),
    "a termination message from logs": lambda s: s["containers"][0].update(
        terminationMessagePolicy="FallbackToLogsOnError"
    ),
    "a field this code does not know": lambda s: s.update(somethingNew={"enabled": True}),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_pod_that_runs_anything_else_runs_something_else(change: str) -> None:
    forged = _as_served(RENDERED)
    CHANGES[change](forged)
    assert runs_digest(forged) != EXPECTED


def _owned(kind: str, uid: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    refs = [{"kind": kind, "name": "x", "uid": uid, "controller": True}]
    return {"metadata": {"name": name, "ownerReferences": refs}, "spec": spec}


def test_only_a_pod_of_ours_that_runs_our_purge_is_ours() -> None:
    def runs(pod: Any) -> str:
        return runs_digest(pod["spec"])

    busybox = {"containers": [{"name": "purge", "image": "busybox", "command": ["true"]}]}
    ours = _owned("Job", "j1", "ours", _as_served(RENDERED))
    forged = _owned("Job", "j1", "forged", busybox)
    stranger = _owned("Job", "j2", "stranger", _as_served(RENDERED))
    assert runs_ours(ours, "Job", "j1", runs(ours), EXPECTED)
    assert not runs_ours(forged, "Job", "j1", runs(forged), EXPECTED)
    assert not runs_ours(stranger, "Job", "j1", runs(stranger), EXPECTED)
    assert not runs_ours(ours, "Job", "j1", None, EXPECTED), "an unknown spec proves nothing"
    counted, named = partition_runs([ours, forged, stranger], "Job", "j1", EXPECTED, runs)
    assert [p["metadata"]["name"] for p in counted] == ["ours"]
    assert named == ["forged"]  # the stranger claims nothing of ours


def test_the_result_is_read_from_the_purge_container_only() -> None:
    def terminated(name: str, record: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "state": {"terminated": {"message": json.dumps(record)}}}

    pod: dict[str, Any] = {
        "metadata": {"name": "p", "creationTimestamp": "2026-03-02T03:17:00Z"},
        "status": {"containerStatuses": [
            terminated("sidecar", {"result": "Succeeded"}),
            terminated("purge", {"result": "Failed"}),
        ]},
    }  # fmt: skip
    assert result_record([pod], "purge") == {"result": "Failed"}
    sidecar_only = {**pod, "status": {"containerStatuses": pod["status"]["containerStatuses"][:1]}}
    assert result_record([sidecar_only], "purge") is None


def _job_as_served() -> dict[str, Any]:
    """The job template as the API server keeps it in a Job the CronJob controller made."""
    job = copy.deepcopy(RENDERED_JOB)
    job.update(
        completions=1, parallelism=1, completionMode="NonIndexed", suspend=False,
        manualSelector=False, podReplacementPolicy="TerminatingOrFailed",
        managedBy="kubernetes.io/job-controller", ttlSecondsAfterFinished=100,
        selector={"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
    )  # fmt: skip
    job["template"]["spec"] = _as_served(RENDERED)
    return job


def test_a_faithful_job_runs_what_the_cronjob_describes() -> None:
    assert job_runs_digest(_job_as_served()) == job_runs_digest(RENDERED_JOB)


@pytest.mark.parametrize(
    "change",
    [
        {"completions": 0},  # Complete at once, no pod
        {"managedBy": "example.com/anything"},  # another controller says it finished
        {"activeDeadlineSeconds": 1},  # Failed at once
        {"podFailurePolicy": {"rules": [{"action": "Ignore", "onExitCodes": {
            "operator": "In", "values": [1]}}]}},
        {"suspend": True},
    ],
)
def test_a_job_that_decides_otherwise_whether_its_pods_run_is_another_job(
    change: dict[str, Any],
) -> None:
    assert job_runs_digest({**_job_as_served(), **change}) != job_runs_digest(RENDERED_JOB)


def _reads_own_annotation() -> dict[str, Any]:
    """A pod spec that reads its own annotation `key` through the downward API (a projected
    volume, as the access request's recipient key) and its namespace through env."""
    return {
        "containers": [{"name": "c", "image": "i", "env": [
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]}],
        "volumes": [{"name": "v", "projected": {"sources": [{"downwardAPI": {"items": [
            {"path": "k", "fieldRef": {"fieldPath": "metadata.annotations['key']"}}]}}]}}],
    }  # fmt: skip


def test_the_pod_metadata_a_pod_reads_is_part_of_what_it_runs() -> None:
    from dataward.checks.purge_runs import what_runs

    spec = _reads_own_annotation()
    ours = what_runs(spec, {"annotations": {"key": "PUBLIC", "other": "x"}})
    assert ours != what_runs(spec, {"annotations": {"key": "MALLORY", "other": "x"}})
    assert ours != what_runs(spec, {"annotations": {}})
    assert ours == what_runs(spec, {"annotations": {"key": "PUBLIC", "other": "y"}}), (
        "an annotation the pod does not read changes nothing"
    )


def test_a_pod_that_reads_no_annotation_runs_the_same_whatever_its_metadata() -> None:
    from dataward.checks.purge_runs import what_runs

    spec = _reads_own_annotation()
    spec["volumes"] = []
    assert what_runs(spec, {"annotations": {"key": "a"}}) == what_runs(spec) == what_runs(
        spec, {"labels": {"x": "y"}}
    )


def _attempt_pod(name: str, minute: int, record: dict[str, Any] | None) -> dict[str, Any]:
    message = {"message": json.dumps(record)} if record is not None else {}
    return {
        "metadata": {"name": name, "creationTimestamp": f"2026-03-02T03:{minute:02d}:00Z"},
        "status": {"containerStatuses": [{"name": "purge", "state": {"terminated": message}}]},
    }


def _done(result: str, deleted: int, **extra: Any) -> dict[str, Any]:
    return {"result": result, "rowsDeleted": deleted, "rowsArchived": 0, "dryRun": False,
            "expiredRemaining": 5, **extra}  # fmt: skip


def test_a_run_of_several_attempts_sums_what_each_did_and_keeps_what_the_last_found() -> None:
    pods = [
        _attempt_pod("run-b", 1, _done("Succeeded", 6, expiredRemaining=0)),
        _attempt_pod("run-a", 0, _done("Failed", 4, reason="Timeout", rowsNoConsent=1)),
    ]  # listed in any order: read by creation
    last = run_status("run", "Complete", pods, {"succeeded": 1, "failed": 1}, "purge")
    assert (last["result"], last["rowsDeleted"], last["rowsNoConsent"]) == ("Succeeded", 10, 1)
    assert last["expiredRemaining"] == 0  # what the last attempt found, not a sum
    assert last["message"].startswith("2 attempts (pods) of Job run, counted together: run-a ")


def test_dry_run_attempts_are_not_summed() -> None:
    """Both would have deleted the same rows: neither deleted any."""
    dry = {"dryRun": True}
    pods = [
        _attempt_pod("run-a", 0, _done("Failed", 4, **dry)),
        _attempt_pod("run-b", 1, _done("Succeeded", 4, **dry)),
    ]
    last = run_status("run", "Complete", pods, {}, "purge")
    assert (last["rowsDeleted"], last["dryRun"]) == (4, True)


def test_a_job_of_many_pods_names_a_few_and_fits_status() -> None:
    """Whoever may create pods can add copies of the purge pod to a run: the record still
    fits status.lastPurge (the API server refuses a longer message: no status at all)."""
    long = "x" * 32000
    pods = [_attempt_pod(f"run-{i:03d}", i % 60, _done("Failed", 1, message=long))
            for i in range(200)]  # fmt: skip
    last = run_status("run", "Failed", pods, {"failed": 200}, "purge")
    assert last["rowsDeleted"] == 200
    assert "and 195 more" in last["message"]
    assert len(last["message"]) <= 32768
    unread = run_status("run", "Failed", [*pods, _attempt_pod("run-x", 59, None)], {}, "purge")
    assert (unread["result"], unread["rowsDeleted"]) == ("Failed", 200)
    assert "and 195 more" in unread["message"] and len(unread["message"]) < 2000


# Renders as `expected_runs` gives them: (job digest, pod digest).
R1, R2, R3, R4 = (("sha256:j1", "sha256:p1"), ("sha256:j2", "sha256:p2"),
                  ("sha256:j3", "sha256:p3"), ("sha256:j4", "sha256:p4"))  # fmt: skip


def test_recorded_purge_renders_are_read_back_newest_first() -> None:
    status = {"purgeRenders": purge_renders_status((R2, R1))}
    assert status["purgeRenders"] == [
        {"job": "sha256:j2", "pod": "sha256:p2"}, {"job": "sha256:j1", "pod": "sha256:p1"}
    ]
    assert recorded_purge_renders(status) == (R2, R1)


@pytest.mark.parametrize(
    "garbled",
    [
        "sha256:j1",
        None,
        {"job": "sha256:j1"},
        {"pod": "sha256:p1"},
        {"job": "sha256:j1", "pod": None},
        {"job": "", "pod": "sha256:p1"},
        {"job": ["sha256:j1"], "pod": "sha256:p1"},
        {"job": 1, "pod": 2},
    ],
)
def test_a_garbled_recorded_render_records_nothing(garbled: Any) -> None:
    """An entry not of the form the operator writes records nothing (never a wider match),
    and the entries of that form beside it still stand."""
    status = {"purgeRenders": [garbled, {"job": "sha256:j1", "pod": "sha256:p1"}]}
    assert recorded_purge_renders(status) == (R1,)


@pytest.mark.parametrize("field", [None, "sha256:j1", {"job": "sha256:j1", "pod": "x"}, 3])
def test_a_record_that_is_not_a_list_records_nothing(field: Any) -> None:
    assert recorded_purge_renders({"purgeRenders": field}) == ()
    assert recorded_purge_renders(None) == ()


def test_no_more_renders_are_read_than_the_operator_keeps() -> None:
    """The operator keeps three; a longer list (a CRD without the bound, a hand edit) is read
    to that bound, never further."""
    entries = [*purge_renders_status((R4, R3, R2)), {"job": "sha256:j1", "pod": "sha256:p1"}]
    status = {"purgeRenders": entries}
    assert recorded_purge_renders(status) == (R4, R3, R2)


def test_a_new_render_goes_first_and_the_oldest_goes() -> None:
    assert renders_to_record(R1, ()) == (R1,)
    assert renders_to_record(R2, (R1,)) == (R2, R1)
    assert renders_to_record(R4, (R3, R2, R1)) == (R4, R3, R2)
    # Back to an earlier render: it moves first, and is not kept twice.
    assert renders_to_record(R1, (R2, R1)) == (R1, R2)


def test_the_cronjob_in_place_stands_for_the_renders_before_only_when_none_is_recorded() -> None:
    """A store an earlier version reconciled records none: the CronJob's render goes second."""
    assert renders_to_record(R2, (), R1) == (R2, R1)
    assert renders_to_record(R2, (), R2) == (R2,)  # in place already, kept once
    assert renders_to_record(R2, (), None) == (R2,)
    # A render on record says what the operator applied: the CronJob in place (perhaps
    # edited since) adds nothing to it.
    assert renders_to_record(R3, (R2, R1), R4) == (R3, R2, R1)


def test_nothing_to_record_when_the_render_is_recorded_first() -> None:
    """Steady state: status already says so, nothing is written."""
    assert renders_to_record(R2, (R2, R1)) is None
    assert renders_to_record(R1, (R1,)) is None


def test_a_job_runs_the_first_render_it_matches_by_its_job_digest() -> None:
    assert run_render("sha256:j1", (R2, R1)) == R1
    assert run_render("sha256:j2", (R2, R1)) == R2
    assert run_render("sha256:j3", (R2, R1)) is None
    assert run_render(None, (R2, R1)) is None


# Served by a real control plane (e2e/harness.py, Kubernetes 1.37): the operator's rendered
# purge CronJob (examples/stores/support-inquiries.yaml; created by the admin, its owner
# reference left out and its schedule every minute), as the API server serves it; the Job
# the CronJob controller made from it; the pod the Job controller made from that Job. Only
# `managedFields` were dropped. e2e/test_purge_renders.py checks the same on a live cluster.
SERVED = json.loads((Path(__file__).parent / "served_purge_run.json").read_text())


def test_a_served_cronjobs_template_runs_what_the_job_and_pod_made_from_it_run() -> None:
    """What the operator records of the CronJob in place (`expected_runs` of its job template,
    as served: the API server fills pod defaults into it) equals what the Job and the pod
    the controllers made from it run, as served (Job defaults, a generated selector, the
    controller's labels besides): a run that CronJob started counts after the change."""
    template = SERVED["cronjob"]["spec"]["jobTemplate"]["spec"]
    job, pod = SERVED["job"], SERVED["pod"]
    # Not trivially equal: each side carries defaults the other lacks.
    assert "completions" not in template and job["spec"]["completions"] == 1
    assert "selector" in job["spec"] and "nodeName" not in template["template"]["spec"]
    assert template["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert expected_runs(template) == (job_runs(job), pod_runs(pod))
    # ... and a template that runs anything else is another render.
    other = copy.deepcopy(template)
    other["template"]["spec"]["containers"][0]["image"] = "ghcr.io/dataward/dataward:next"
    assert expected_runs(other)[0] != job_runs(job)
    assert expected_runs(other)[1] != pod_runs(pod)
