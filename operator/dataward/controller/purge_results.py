"""Read the last finished purge Job of a store and its pod's termination message."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from dataward.controller.kube import Kube, KubeError
from dataward.model.store import Store
from dataward.render.labels import store_selector

log = logging.getLogger("dataward.purge-results")

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def _selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _finished(job: Mapping[str, Any]) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return str(condition["type"])
    return None


def last_purge_from_jobs(kube: Kube, store: Store) -> dict[str, Any] | None:
    """`status.lastPurge` from the newest finished Job of the store, or None if none finished."""
    try:
        jobs = kube.list("Job", store.namespace, _selector(store_selector(store)))
    except KubeError as error:
        log.info("jobs of %s/%s unreadable: %s", store.namespace, store.name, error)
        return None
    finished = [job for job in jobs if _finished(job)]
    if not finished:
        return None
    job = max(
        finished,
        key=lambda j: (
            (j.get("status") or {}).get("completionTime") or "",
            j["metadata"].get("creationTimestamp") or "",
        ),
    )
    job_name = job["metadata"]["name"]
    message: Mapping[str, Any] | None = None
    try:
        pods = kube.list("Pod", store.namespace, f"{JOB_NAME_LABEL}={job_name}")
    except KubeError:
        pods = []
    for pod in sorted(
        pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True
    ):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                try:
                    parsed = json.loads(terminated["message"])
                except ValueError:
                    continue
                if isinstance(parsed, Mapping):
                    message = parsed
                    break
        if message is not None:
            break
    return last_purge_status(job_name, _finished(job) or "", message, job.get("status") or {})


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
    "dryRun",
    "result",
    "reason",
    "stoppedEarly",
    "message",
)


def last_purge_status(
    job_name: str, outcome: str, record: Mapping[str, Any] | None, job_status: Mapping[str, Any]
) -> dict[str, Any]:
    """`status.lastPurge` from a finished Job and the purge's result record, if it wrote one."""
    if record is None:
        # The pod died before writing its record (OOM, deadline, image pull): say so.
        failed = outcome == "Failed"
        return {
            "jobName": job_name,
            "startTime": job_status.get("startTime"),
            "completionTime": job_status.get("completionTime"),
            "result": "Failed" if failed else "Unknown",
            "reason": "JobFailed" if failed else "NoResultRecord",
            "message": f"Job {job_name} {'failed' if failed else 'finished'} without a purge "
            "result record; read the Job's events and the pod's logs.",
        }
    status = {key: record[key] for key in _COPIED if record.get(key) is not None}
    error = record.get("error")
    if isinstance(error, Mapping) and error.get("message") and "message" not in status:
        status["message"] = str(error["message"])
    status["jobName"] = job_name
    status.setdefault("result", "Failed" if outcome == "Failed" else "Unknown")
    return status
