"""The purge runs of a store, from its Jobs and their pods: pure functions of what was listed.

A Job counts as one of the store's purge runs only if it has an owner reference to the
store's CronJob *and* it runs what the operator renders for the CronJob's job template
(`what_job_runs`, compared with the render's) or what it rendered before (the renders status
records it applied: `recorded_purge_renders`); a pod's result is read only from a pod that has
an owner reference to such a Job and runs that Job's render, and only from its purge container.
An owner reference alone proves nothing: whoever may create Jobs (or pods) in the namespace
can write one to any uid they can read, `controller: true` included. A Job that runs exactly
a template the operator rendered runs the store's purge, whoever created it, so it is sound
to count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dataward.checks.conditions import named
from dataward.checks.drift import digest, job_and_pod_digests
from dataward.checks.observed import (
    PURGE_MESSAGE_LIMIT,
    unreadable_purge_fields,
    unreadable_purge_message,
)
from dataward.model.cron import parse_cron
from dataward.model.errors import ModelError
from dataward.purge.result import COUNT_MAX, is_count

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# Where a cached Job or pod keeps `runs_digest` of its pod spec, in place of the spec itself
# (controller/cache.py): what it runs is all the purge verdict reads of the spec.
RUNS_DIGEST = "runsDigest"
# The Job controller's name in `spec.managedBy` (its default): a Job another controller
# manages may be marked finished by it without any pod having run.
JOB_CONTROLLER = "kubernetes.io/job-controller"

# Pod spec fields that decide where and when a pod runs (or with what pull credentials), not
# what it runs: the scheduler and admission fill them in on a Job's pods, and a copy that
# differs only in them runs the same purge. Every other field counts, unknown ones included.
_PLACEMENT = frozenset({
    "nodeName", "nodeSelector", "affinity", "tolerations", "schedulerName", "priority",
    "priorityClassName", "preemptionPolicy", "topologySpreadConstraints", "schedulingGates",
    "overhead", "readinessGates", "terminationGracePeriodSeconds", "activeDeadlineSeconds",
    "imagePullSecrets",
})  # fmt: skip
# Container fields that bound what runs (requests, limits), not what it is: the API server
# defaults requests to limits on a pod, and a LimitRange adds its own.
_BOUNDS = frozenset({"resources", "resizePolicy"})
# Fields at the API server's default value, dropped on both sides (keyed by name: each of
# these names means one thing wherever it appears in a pod spec).
_DEFAULTS: Mapping[str, Any] = {
    "dnsPolicy": "ClusterFirst",
    "enableServiceLinks": True,
    "hostNetwork": False,
    "hostPID": False,
    "hostIPC": False,
    "shareProcessNamespace": False,
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
    "procMount": "Default",
    "stdin": False,
    "stdinOnce": False,
    "tty": False,
    "protocol": "TCP",
    "defaultMode": 0o644,
    "expirationSeconds": 3600,
    "apiVersion": "v1",  # a fieldRef's
    "medium": "",
}


# A downward API field path to one of the pod's own labels or annotations.
_OWN_METADATA = re.compile(r"metadata\.(labels|annotations)\['([^']*)'\]")
PROJECTED = "projectedMetadata"  # in `what_runs`: the pod metadata the pod itself reads


def what_runs(
    pod_spec: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What a pod (or a pod template) runs, as the fields that decide it: every field of
    `pod_spec` but placement (`_PLACEMENT`) and the containers' resources (`_BOUNDS`), with
    the server's defaults (`_DEFAULTS`), empty values and the deprecated `serviceAccount`
    (the server's copy of `serviceAccountName`) left out. Two specs run the same thing
    exactly when these are equal: images, commands, arguments, environment (and which
    Secrets it comes from), service account, security contexts, volumes and their mounts,
    init and ephemeral containers, DNS and host aliases, and any field not named here.

    The labels and annotations the pod reads through the downward API (`fieldRef`
    `metadata.annotations['x']`) are input too: their values from `metadata` (the pod's, or
    the template's) are kept under `PROJECTED` (absent when it reads none)."""
    spec = {k: v for k, v in pod_spec.items() if k not in _PLACEMENT}
    if spec.get("serviceAccount") == spec.get("serviceAccountName"):
        spec.pop("serviceAccount", None)
    for kind in ("containers", "initContainers", "ephemeralContainers"):
        if isinstance(spec.get(kind), list):
            spec[kind] = [
                {k: v for k, v in c.items() if k not in _BOUNDS} if isinstance(c, Mapping) else c
                for c in spec[kind]
            ]
    normal = _without_defaults(spec)
    if not isinstance(normal, dict):
        return {}
    paths = sorted({p for p in _field_paths(pod_spec) if _OWN_METADATA.fullmatch(p)})
    if paths:
        meta = metadata or {}
        projected = {}
        for path in paths:
            match = _OWN_METADATA.fullmatch(path)
            assert match is not None
            projected[path] = (meta.get(match[1]) or {}).get(match[2])
        normal[PROJECTED] = projected
    return normal


def _field_paths(pod_spec: Mapping[str, Any]) -> list[str]:
    """Every `fieldRef.fieldPath` of a pod spec, where the API allows one: the containers'
    env (init and ephemeral too) and downward API volumes, projected ones included."""
    refs: list[Any] = []
    for kind in ("containers", "initContainers", "ephemeralContainers"):
        for container in _items(pod_spec.get(kind)):
            refs += [(_get(env, "valueFrom") or {}).get("fieldRef") for env in
                     _items(_get(container, "env"))]  # fmt: skip
    for volume in _items(pod_spec.get("volumes")):
        sources = [volume, *_items(_get(_get(volume, "projected"), "sources"))]
        for source in sources:
            refs += [_get(item, "fieldRef") for item in
                     _items(_get(_get(source, "downwardAPI"), "items"))]  # fmt: skip
    return [ref["fieldPath"] for ref in refs
            if isinstance(ref, Mapping) and isinstance(ref.get("fieldPath"), str)]  # fmt: skip


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


_SCALARS = frozenset({str, int, bool, float, type(None)})


def _without_defaults(value: Any) -> Any:
    # `type() is` first: decoded JSON is dicts and lists, and an ABC check costs more.
    if type(value) is dict or (type(value) is not list and isinstance(value, Mapping)):
        kept = {}
        for key, item in value.items():
            kind = type(item)
            if kind is dict or kind is list or (kind not in _SCALARS and isinstance(item, Mapping)):
                item = _without_defaults(item)
                if not item:
                    continue  # an empty value is the absent one
            elif item is None or (key in _DEFAULTS and item == _DEFAULTS[key]):
                continue
            kept[key] = item
        return kept
    if type(value) is list:
        return [_without_defaults(item) for item in value]
    return value


def runs_digest(pod_spec: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> str:
    """A short stand-in for `what_runs(pod_spec, metadata)`: equal exactly when those are."""
    return digest(what_runs(pod_spec, metadata))


# Job spec fields that decide neither whether nor what its pods run: the selector the server
# generates (its own uid), when a finished Job is deleted, and the pod template (`what_runs`).
_JOB_UNDECIDING = frozenset({"selector", "ttlSecondsAfterFinished", "template"})
# A Job spec's fields at the API server's default value, dropped on both sides.
_JOB_DEFAULTS: Mapping[str, Any] = {
    "completions": 1,
    "parallelism": 1,
    "completionMode": "NonIndexed",
    "suspend": False,
    "manualSelector": False,
    "podReplacementPolicy": "TerminatingOrFailed",
    "managedBy": JOB_CONTROLLER,
}


def what_job_runs(job_spec: Mapping[str, Any]) -> dict[str, Any]:
    """What a Job (or a CronJob's job template) runs: its pod template's `what_runs`, and the
    Job's own fields that decide whether pods run and when it is finished (completions: 0
    finishes it with no pod; another `managedBy` lets another controller say it finished;
    a deadline, back-off limit or pod failure policy of its own), defaults left out."""
    job = {
        k: v
        for k, v in job_spec.items()
        if k not in _JOB_UNDECIDING
        and v not in (None, {}, [])
        and not (k in _JOB_DEFAULTS and v == _JOB_DEFAULTS[k])
    }
    template = job_spec.get("template") or {}
    pod = template.get("spec")
    metadata = template.get("metadata")
    return {"job": job, "pod": what_runs(pod, metadata) if isinstance(pod, Mapping) else None}


def job_runs_digest(job_spec: Mapping[str, Any]) -> str:
    """A short stand-in for `what_job_runs(job_spec)`: equal exactly when those are."""
    return digest(what_job_runs(job_spec))


def expected_runs(job_template_spec: Mapping[str, Any]) -> tuple[str, str]:
    """What the store's Jobs and their pods must run, from a rendered job template's spec:
    (`job_runs_digest`, `runs_digest` of its pod template), from one walk of it."""
    runs = what_job_runs(job_template_spec)
    # `what_job_runs` is {"job", "pod"}: these are digest(runs) and digest(runs["pod"]).
    return job_and_pod_digests(runs["job"], runs["pod"])


# (job, pod): `expected_runs` of a job template the operator rendered for a store's purge
# CronJob, the digests of what its Jobs and their pods run.
Render = tuple[str, str]
# How many renders status records (`status.purgeRenders`): the current one and those before
# it, for the runs an earlier render started that are still running, or not yet read.
RENDERS_KEPT = 3


def recorded_purge_renders(status: Mapping[str, Any] | None) -> tuple[Render, ...]:
    """status.purgeRenders: the renders the operator applied to the store's purge CronJob,
    newest first, each recorded before it was applied (where the statusGuard policy is on,
    only the operator writes status); at most `RENDERS_KEPT` read. An entry not of that form
    records nothing: a garbled record never widens what counts."""
    entries = (status or {}).get("purgeRenders")
    if not isinstance(entries, list):
        return ()
    return tuple(r for r in map(render_of, entries[:RENDERS_KEPT]) if r is not None)


def render_of(entry: object) -> Render | None:
    """A recorded render, `{"job": ..., "pod": ...}` (status.purgeRenders, a request's
    status.runs); None for an entry not of that form (it records nothing)."""
    if not isinstance(entry, Mapping):
        return None
    job, pod = entry.get("job"), entry.get("pod")
    return (job, pod) if isinstance(job, str) and isinstance(pod, str) and job and pod else None


def renders_to_record(
    current: Render, recorded: Sequence[Render], live: Render | None = None
) -> tuple[Render, ...] | None:
    """What status.purgeRenders should record once `current` is applied: it first, then the
    renders recorded before it, `RENDERS_KEPT` in all; None when `recorded` has it first
    already (nothing to write). `live`: the render of the CronJob in place (`expected_runs`
    of its job template), the operator's own; it stands for the renders before when none is
    recorded (a store an earlier version reconciled, which recorded none), so a run that
    CronJob started still counts once the CronJob is changed."""
    if recorded and recorded[0] == current:
        return None
    before = recorded or ([live] if live is not None else [])
    return (current, *(r for r in before if r != current))[:RENDERS_KEPT]


def purge_renders_status(renders: Sequence[Render]) -> list[dict[str, str]]:
    """`renders` as status.purgeRenders (`recorded_purge_renders` reads it back): digests."""
    return [{"job": job, "pod": pod} for job, pod in renders]


def run_render(runs: str | None, renders: Sequence[Render]) -> Render | None:
    """Which of `renders` (the current one first, then those recorded) a Job runs (`runs`:
    its `job_runs`); None when it runs none of them, or what it runs is unknown. Whose it
    is (owner references) is decided apart (`runs_ours`)."""
    if runs is None:
        return None
    return next((render for render in renders if render[0] == runs), None)


def job_runs(job: Mapping[str, Any]) -> str | None:
    """`job_runs_digest` of a Job's spec (a cached Job carries it); None when it is unknown."""
    if RUNS_DIGEST in job:
        return str(job[RUNS_DIGEST]) if job[RUNS_DIGEST] else None
    spec = job.get("spec")
    return job_runs_digest(spec) if isinstance(spec, Mapping) else None


def pod_runs(pod: Mapping[str, Any]) -> str | None:
    """`runs_digest` of a pod's spec (a cached pod carries it); None when it is unknown."""
    if RUNS_DIGEST in pod:
        return str(pod[RUNS_DIGEST]) if pod[RUNS_DIGEST] else None
    spec = pod.get("spec")
    return runs_digest(spec, pod.get("metadata")) if isinstance(spec, Mapping) else None


def runs_ours(
    obj: Mapping[str, Any],
    owner_kind: str | None,
    owner_uid: str,
    runs: str | None,
    expected: str,
    *,
    controller: bool = False,
) -> bool:
    """The decision: `obj` (a Job, a pod) is the operator's work only if it has an owner
    reference to our `owner_kind` of this uid (`controller`: a controller reference) *and*
    runs what the operator renders for it (`runs`, its `job_runs` or `pod_runs`, equals
    `expected`, the render's). `owner_kind` None: no owner can be written (a data subject
    request's Job in another namespace), what it runs alone decides."""
    owned = owner_kind is None or owned_by(obj, owner_kind, owner_uid, controller=controller)
    return owned and runs is not None and runs == expected


def partition_runs(
    objs: Sequence[Mapping[str, Any]],
    owner_kind: str | None,
    owner_uid: str,
    expected: str,
    runs_of: Callable[[Mapping[str, Any]], str | None],
    *,
    controller: bool = False,
    claims: Callable[[Mapping[str, Any]], bool] | None = None,
) -> tuple[list[Mapping[str, Any]], list[str]]:
    """The objects `runs_ours` counts, and the names of those that claim to be our work
    and are not counted (each runs something else, or is owned by something else: worth
    naming). An object claims to be ours by its owner reference, or by `claims` when given
    (a request's Jobs: its labels)."""
    ours: list[Mapping[str, Any]] = []
    others: list[str] = []
    for obj in objs:
        if runs_ours(obj, owner_kind, owner_uid, runs_of(obj), expected, controller=controller):
            ours.append(obj)
        elif (
            claims(obj)
            if claims is not None
            else owner_kind is not None and owned_by(obj, owner_kind, owner_uid)
        ):
            others.append(str(obj["metadata"]["name"]))
    return ours, others


def owned_by(obj: Mapping[str, Any], kind: str, uid: str, *, controller: bool = False) -> bool:
    """True when `obj` has an owner reference to the `kind` with this uid (`controller`: one
    that also says `controller: true`, as every child the operator renders carries)."""
    return any(
        ref.get("kind") == kind
        and ref.get("uid") == uid
        and (not controller or ref.get("controller") is True)
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or ()
    )


def finished(job: Mapping[str, Any]) -> str | None:
    """`Complete` or `Failed` once the Job has finished, else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return str(condition["type"])
    return None


def newest_finished(jobs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The Job that finished last, or None."""
    done = [job for job in jobs if finished(job)]
    if not done:
        return None
    return max(
        done,
        key=lambda j: (
            (j.get("status") or {}).get("completionTime") or "",
            j["metadata"].get("creationTimestamp") or "",
        ),
    )


@dataclass(frozen=True)
class StuckRun:
    """A purge Job still running long past the deadline it was given."""

    job_name: str
    started: str


def stuck_run(
    jobs: Sequence[Mapping[str, Any]], now: datetime, deadline: timedelta
) -> StuckRun | None:
    """The oldest unfinished Job that started more than `deadline` ago, or None."""
    stuck = []
    for job in jobs:
        started = (job.get("status") or {}).get("startTime")
        if finished(job) or not started:
            continue
        if datetime.fromisoformat(str(started).replace("Z", "+00:00")) + deadline < now:
            stuck.append(StuckRun(str(job["metadata"]["name"]), str(started)))
    return min(stuck, key=lambda run: run.started) if stuck else None


def stuck_at(
    jobs: Sequence[Mapping[str, Any]], now: datetime, deadline: timedelta
) -> datetime | None:
    """When the next unfinished Job becomes stuck (its start plus `deadline`, still ahead)."""
    due = [
        _instant(str(started)) + deadline
        for job in jobs
        for started in [(job.get("status") or {}).get("startTime")]
        if started and not finished(job)
    ]
    ahead = [at for at in due if at > now]
    return min(ahead) if ahead else None


def missed_run(
    cronjob: Mapping[str, Any], now: datetime, grace: timedelta, manager: str
) -> datetime | None:
    """The scheduled time of a run the CronJob should have started by now and did not.

    A run is missed when its scheduled time is more than `grace` ago (the CronJob's own
    starting deadline and a margin), later than the CronJob was created or last changed by
    `manager` (a new schedule, or the end of a suspension, starts afresh), and later than the
    CronJob controller's `status.lastScheduleTime`. A suspended CronJob misses nothing; a
    schedule or time zone this cannot read is not judged.
    """
    spec = cronjob.get("spec") or {}
    if spec.get("suspend"):
        return None
    try:
        zone = ZoneInfo(str(spec.get("timeZone") or "Etc/UTC"))
        cron = parse_cron(str(spec.get("schedule", "")))
    except (ZoneInfoNotFoundError, ValueError, ModelError):
        return None
    due = cron.last_fire_at_or_before((now - grace).astimezone(zone))
    if due is None:
        return None
    metadata = cronjob.get("metadata") or {}
    changed = [
        str(entry["time"])
        for entry in metadata.get("managedFields") or ()
        if entry.get("manager") == manager and entry.get("time")
    ]
    since = max([str(metadata.get("creationTimestamp") or ""), *changed])
    last = (cronjob.get("status") or {}).get("lastScheduleTime")
    if not since or due <= _instant(since) or (last and due <= _instant(str(last))):
        return None
    return due.astimezone(UTC)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# What the CronJob controller writes on each Job it makes: the run's scheduled time.
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def scheduled_at(job: Mapping[str, Any], cronjob_name: str) -> datetime | None:
    """When the CronJob scheduled the run `job` (a Job, or `{"metadata": {"name": ...}}`):
    its annotation, else the minutes since the epoch the controller puts in its name
    (`<cronjob>-<minutes>`); None when neither says."""
    metadata = job.get("metadata") or {}
    stamp = (metadata.get("annotations") or {}).get(SCHEDULED_ANNOTATION)
    try:
        if isinstance(stamp, str) and stamp:
            return _instant(stamp).astimezone(UTC)
    except ValueError:
        pass
    name = str(metadata.get("name") or "")
    minutes = name.removeprefix(f"{cronjob_name}-")
    if minutes != name and minutes.isdigit() and len(minutes) <= 12:
        return datetime.fromtimestamp(int(minutes) * 60, UTC)
    return None


def unseen_run(
    cronjob: Mapping[str, Any],
    jobs: Sequence[Mapping[str, Any]],
    recorded_job: str | None,
    now: datetime,
    grace: timedelta,
) -> datetime | None:
    """The CronJob's last scheduled run (`status.lastScheduleTime`) when none of the Jobs
    the operator sees (`jobs`, counted or not) nor the run it recorded last is that run, and
    it was scheduled more than `grace` ago: a run whose result the operator cannot read (its
    Job's labels removed, which hides it from the label-selected reads, or deleted before
    it was read). None when there is no such run."""
    last = (cronjob.get("status") or {}).get("lastScheduleTime")
    name = str((cronjob.get("metadata") or {}).get("name") or "")
    try:
        last_at = _instant(str(last)).astimezone(UTC) if last else None
    except ValueError:
        return None
    if last_at is None or last_at > now - grace:
        return None
    seen = [scheduled_at(job, name) for job in jobs]
    if recorded_job:
        seen.append(scheduled_at({"metadata": {"name": recorded_job}}, name))
    if any(at is not None and at >= last_at for at in seen):
        return None
    return last_at


def pod_record(pod: Mapping[str, Any], container: str | None = None) -> Mapping[str, Any] | None:
    """The purge's JSON result record from one pod's termination message, if it left one
    (`container`: from the container of that name only, never a sidecar's)."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if container is not None and status.get("name") != container:
            continue
        terminated = (status.get("state") or {}).get("terminated") or {}
        if terminated.get("message"):
            try:
                parsed = json.loads(terminated["message"])
            except ValueError:
                continue
            if isinstance(parsed, Mapping):
                return parsed
    return None


def result_record(
    pods: Sequence[Mapping[str, Any]], container: str | None = None
) -> Mapping[str, Any] | None:
    """The JSON result record from the newest pod's termination message, if any (`container`:
    from the container of that name only, never a sidecar's). For a Job of one pod (the
    subject requests', the impact preview's); a purge run reads every pod (`run_status`)."""
    for pod in sorted(pods, key=_created, reverse=True):
        record = pod_record(pod, container)
        if record is not None:
            return record
    return None


def _created(pod: Mapping[str, Any]) -> tuple[str, str]:
    """A pod's order among its Job's: creation time, then name (a second's resolution)."""
    meta = pod.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


_COPIED = (
    "startTime",
    "completionTime",
    "cutoff",
    "rowsDeleted",
    "rowsArchived",
    "archiveRowsDestroyed",
    "expiredRemaining",
    "oldestExpiredAgeSeconds",
    "nullTriggers",
    "rowsSkippedLocked",
    "rowsNoConsent",
    "dryRun",
    "result",
    "reason",
    "stoppedEarly",
    "message",
)


# Of a run's result fields, the counts of what an attempt did (rows deleted, or written to or
# destroyed in the archive): a Job that ran several pods did the sum of theirs. Every other
# field says what an attempt found (rows left, skipped): the last attempt's stands.
_DONE = ("rowsDeleted", "rowsArchived", "archiveRowsDestroyed", "rowsNoConsent")
ATTEMPTS_NAMED = 5  # attempts a record names one by one; the rest are counted


def last_purge_status(
    job_name: str, outcome: str, record: Mapping[str, Any] | None, job_status: Mapping[str, Any]
) -> dict[str, Any]:
    """`status.lastPurge` from a finished Job and the purge's result record, if it wrote one."""
    failed = outcome == "Failed"
    if record is None:
        # The pod died before writing its record (OOM, deadline, image pull): say so.
        return _without_record(job_name, failed, job_status, "without a purge result record")
    status, garbled = _fields(record)
    if garbled:
        # Not the purge's form (written by something else in its pod, or a bug): neither
        # copied to status (the API server would refuse it) nor read as a result.
        return _without_record(
            job_name, failed, job_status, f"but {unreadable_purge_message(garbled)}"
        )
    status["jobName"] = job_name
    status.setdefault("result", "Failed" if failed else "Unknown")
    return status


def _fields(record: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A result record's fields of status.lastPurge, and those not in the form the CRD
    types them (`unreadable_purge_fields`)."""
    status = {key: record[key] for key in _COPIED if record.get(key) is not None}
    error = record.get("error")
    if isinstance(error, Mapping) and error.get("message") and "message" not in status:
        status["message"] = str(error["message"])
    return status, unreadable_purge_fields(status)


def run_status(
    job_name: str,
    outcome: str,
    pods: Sequence[Mapping[str, Any]],
    job_status: Mapping[str, Any],
    container: str | None = None,
) -> dict[str, Any]:
    """`status.lastPurge` of a finished purge Job from every pod it ran (`pods`, those that
    run the purge), each an attempt of the one run. The purge commits batch by batch, so an
    attempt that failed has deleted rows already; its record says how many.

    One attempt: `last_purge_status` of its record. Several, every record readable: the
    last attempt's result with what each did summed (`_DONE`), from the first one's start,
    up to the latest cutoff (every row went at or before it), each attempt named first in
    the message. An attempt whose record cannot be read (none, not the purge's form, or its
    pod gone: the Job's status counts more finished pods than are listed): a run without a
    result record (`_without_record`: Unknown, or Failed when the Job failed), never the
    others' success, the readable attempts' counts kept as what is known at least. Counts
    whose sum is no count (beyond COUNT_MAX): a run without a result record too."""
    attempts = sorted(pods, key=_created)
    ran = max(len(attempts), _count(job_status, "succeeded") + _count(job_status, "failed"))
    if ran <= 1:
        record = pod_record(attempts[0], container) if attempts else None
        return last_purge_status(job_name, outcome, record, job_status)
    failed = outcome == "Failed"
    read: list[tuple[str, dict[str, Any]]] = []
    unread: list[str] = []
    for pod in attempts:
        name = str((pod.get("metadata") or {}).get("name") or "")
        record = pod_record(pod, container)
        fields, garbled = _fields(record) if record is not None else ({}, ["record"])
        if garbled:
            unread.append(name)
        else:
            read.append((name, fields))
    gone = ran - len(attempts)  # pods the Job counts that are not listed (deleted)
    acted = [fields for _, fields in read if fields.get("dryRun") is not True]
    done = {key: sum(_count(fields, key) for fields in acted) for key in _DONE}
    beyond = [key for key in _DONE if not is_count(done[key])]
    if beyond:
        # Each attempt's count is one, their sum is none (status could not hold it): no
        # record says what the run did.
        why = (
            f"after {ran} attempts (pods), whose records' {', '.join(beyond)} add up to more "
            f"than a count holds ({COUNT_MAX})"
        )
        return _without_record(job_name, failed, job_status, why)
    named = _named([f"{name} {_did(fields)}" for name, fields in read])
    if unread or gone > 0:
        missing = [*unread, *([f"{gone} attempt(s) whose pod is gone"] if gone > 0 else [])]
        known = (
            f"{done['rowsDeleted']} row(s) deleted, {done['rowsArchived']} archived and "
            f"{done['archiveRowsDestroyed']} destroyed in the archive"
        )
        others = (
            f"the others' records say {named}: at least {known}"
            if read
            else "no attempt's record is readable"
        )
        why = f"after {ran} attempts (pods), without a readable result record of " + (
            f"{_named(missing)}; {others}"
        )
        status = _without_record(job_name, failed, job_status, why)
        return {**status, **{key: count for key, count in done.items() if count}}
    status = dict(read[-1][1])
    if acted:
        status.update((key, count) for key, count in done.items() if key in status or count)
    first_start = read[0][1].get("startTime")
    if first_start:
        status["startTime"] = first_start
    cutoffs = [str(fields["cutoff"]) for _, fields in read if fields.get("cutoff")]
    if cutoffs:
        status["cutoff"] = max(cutoffs, key=_instant)
    if acted:
        status["dryRun"] = False
    last = f" The last: {status['message']}" if status.get("message") else ""
    message = f"{ran} attempts (pods) of Job {job_name}, counted together: {named}.{last}"
    status["message"] = message[:PURGE_MESSAGE_LIMIT]
    status["jobName"] = job_name
    status.setdefault("result", "Failed" if failed else "Unknown")
    return status


def _count(fields: Mapping[str, Any], key: str) -> int:
    value = fields.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _did(fields: Mapping[str, Any]) -> str:
    """One attempt, as the run's message names it: its result and what it did."""
    reason = f" ({fields['reason']})" if fields.get("reason") else ""
    return (
        f"{fields.get('result') or 'no result'}{reason}, {_count(fields, 'rowsDeleted')} "
        f"deleted, {_count(fields, 'rowsArchived')} archived"
    )


def _named(items: Sequence[str]) -> str:
    """`items` joined, the first ATTEMPTS_NAMED of them, the rest counted."""
    return named(items, ATTEMPTS_NAMED, "; ")


def _without_record(
    job_name: str, failed: bool, job_status: Mapping[str, Any], why: str
) -> dict[str, Any]:
    """`status.lastPurge` of a finished Job without a (readable) result record."""
    return {
        "jobName": job_name,
        "startTime": job_status.get("startTime"),
        "completionTime": job_status.get("completionTime"),
        "result": "Failed" if failed else "Unknown",
        "reason": "JobFailed" if failed else "NoResultRecord",
        "message": f"Job {job_name} {'failed' if failed else 'finished'} {why}; read the "
        "Job's events and the pod's logs.",
    }
