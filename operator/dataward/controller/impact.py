"""The impact preview of a pending policy revision (issue 13): row counts before it takes effect.

While a PrivacyPolicy revision is pending, each store whose terms it changes (retention,
statutory period, children's consent grace) and whose purge will run under it gets ONE
dry-run Job per pending generation: the store's purge pod running
`dataward purge --store NS/NAME --dry-run --pending-generation N`, so the counts are the
purge engine's own (same plan, statements, maxRowsPerRun budget and large-cut rule). The
store's reconcile records the Job's render in the store's `status.impactPreview`, then
creates the Job, and copies its result record there; the policy's reconcile gathers those into
`status.revisions.pending.impact[].preview` and the verdict `pending.impactVerdict`, which the
gate in `dataward.model.revisions.decide` reads.

Pure functions decide (`preview_status`, `with_previews`); `observe_preview` is the thin I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from dataward.checks.conditions import as_reason
from dataward.checks.observed import unreadable_purge_message
from dataward.checks.purge_runs import (
    JOB_NAME_LABEL,
    Render,
    expected_runs,
    finished,
    job_runs,
    owned_by,
    partition_runs,
    pod_runs,
    purge_renders_status,
    render_of,
    result_record,
    run_render,
)
from dataward.controller.kube import Kube, KubeError
from dataward.model.errors import ModelError
from dataward.model.policy import parse_policy
from dataward.model.revisions import (
    COUNTED,
    FAILED,
    NOT_RUN,
    WAITING,
    digest,
    parse_in_force,
    policy_revisions,
    preview_state,
    verdict,
)
from dataward.model.store import Store
from dataward.purge.result import is_count
from dataward.render import RenderSettings
from dataward.render.labels import STORE_KIND, store_selector
from dataward.render.purge_job import CONTAINER_NAME, preview_job_name, render_preview_job

log = logging.getLogger("dataward.controller.impact")

_COUNTS = ("rowsDeleted", "rowsArchived", "archiveRowsDestroyed", "rowsNoConsent")
# In status.impactPreview: the render of the preview Job the operator made (digests of what
# it and its pods run, `{"job": ..., "pod": ...}`), so that Job is still the store's preview
# once the operator renders another (an upgrade, a changed setting).
RUNS = "runs"
TABLES_LIMIT = 20  # tables listed per store in status; the totals cover them all


def preview_status(
    generation: int, job_name: str, outcome: str | None, record: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`status.impactPreview` from the preview Job (`outcome`: Complete, Failed or None while
    it runs) and the purge's result record. Counted only for a dry run that succeeded and
    listed its tables; anything else is Waiting or Failed, which the gate treats as unknown."""
    base: dict[str, Any] = {"policyGeneration": generation, "jobName": job_name}
    if outcome is None:
        return {**base, "state": WAITING, "message": f"Job {job_name} has not finished."}
    if record is None:
        return {
            **base,
            "state": FAILED,
            "reason": "NoResultRecord",
            "message": f"Job {job_name} ended without a result record; read its pod's logs.",
        }
    tables = record.get("tables")
    if (
        record.get("result") != "Succeeded"
        or record.get("dryRun") is not True
        or not isinstance(tables, list)
    ):
        why = "it listed no tables" if record.get("result") == "Succeeded" else "it failed"
        said = str(record.get("reason") or "")  # the CRD takes a word of at most 128
        return {
            **base,
            "state": FAILED,
            "reason": as_reason(said, "PreviewFailed") if len(said) <= 128 else "PreviewFailed",
            "message": f"the dry run did not count ({why}): {record.get('message') or ''}"[:512],
        }
    garbled = unreadable_tables(tables)
    server_time = record.get("serverTime")
    if server_time is not None and (not isinstance(server_time, str) or len(server_time) > 64):
        garbled.append("serverTime")
    totals = {} if garbled else {k: sum(t[k] for t in tables) for k in _COUNTS}
    # Each table's count is one, their sum may be none (status could not hold it).
    garbled += [f"{k} (the tables' sum)" for k, total in totals.items() if not is_count(total)]
    if garbled:
        # Not the purge's form: never read as counted (nor as "no large cut"), never copied.
        return {
            **base,
            "state": FAILED,
            "reason": "NoResultRecord",
            "message": f"Job {job_name} finished but {unreadable_purge_message(garbled)}; "
            "read its pod's logs.",
        }
    listed = [
        {
            "table": t["table"],
            **{k: t[k] for k in _COUNTS},
            "largeCut": t["largeCut"],
        }
        for t in tables
    ]
    return {
        **base,
        "state": COUNTED,
        "serverTime": server_time,
        **totals,
        "largeCut": any(t["largeCut"] for t in listed),
        "tables": listed[:TABLES_LIMIT],
    }


def unreadable_tables(tables: list[Any]) -> list[str]:
    """The fields of a dry run's `tables` not in the form the purge writes them (a table of
    at most 256 characters, each count a count (`is_count`), largeCut true or false): their
    paths, never their values."""
    garbled: list[str] = []
    for index, table in enumerate(tables):
        at = f"tables[{index}]"
        if not isinstance(table, Mapping):
            garbled.append(at)
            continue
        name = table.get("table")
        if not isinstance(name, str) or not name or len(name) > 256:
            garbled.append(f"{at}.table")
        garbled += [f"{at}.{k}" for k in _COUNTS if not is_count(table.get(k))]
        if not isinstance(table.get("largeCut"), bool):
            garbled.append(f"{at}.largeCut")
    return garbled


def not_run_status(generation: int, store: Store) -> dict[str, Any]:
    """A store whose purge will not run under the revision: it deletes nothing there."""
    if store.purge.suspend:
        reason, why = "PurgeSuspended", "spec.purge.suspend is true (legal hold)"
    else:
        reason, why = "NotCompliant", "the store would not comply with it, so its purge stops"
    return {
        "policyGeneration": generation,
        "state": NOT_RUN,
        "reason": reason,
        "message": f"No rows are purged under this revision: {why}.",
    }


def with_previews(
    affected: Sequence[Mapping[str, Any]],
    stores: Mapping[str, Mapping[str, Any]],
    generation: int,
    known: Mapping[str, Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], str]:
    """The impact entries with each store's preview, and the verdict over all of them.

    A store's preview is `known[store]` (a store whose purge will not run under the revision,
    decided from the specs), else its `status.impactPreview` when that is for this pending
    generation, else Waiting."""
    out = []
    for entry in affected:
        raw = (stores.get(str(entry["store"])) or {}).get("status") or {}
        preview = known.get(str(entry["store"])) or raw.get("impactPreview")
        if not isinstance(preview, Mapping) or preview.get("policyGeneration") != generation:
            preview = {"state": WAITING, "message": "no preview of this revision yet."}
        shown = {k: v for k, v in preview.items() if k != RUNS}  # the store's own record
        out.append({**entry, "preview": shown})
    return out, verdict([e["preview"] for e in out])


def observe_preview(
    read: Any,
    kube: Kube,
    store: Store,
    settings: RenderSettings,
    now: datetime,
    digest_of: Callable[[Mapping[str, Any]], str] = digest,
    previewed: Mapping[str, Any] | None = None,
    *,
    record: Callable[[Mapping[str, Any]], object],
) -> dict[str, Any] | None:
    """The store's `status.impactPreview`, creating its preview Job when there is none yet;
    None when no pending revision of its policy changes it. KubeError when the policy cannot
    be read: whether a revision is pending is then unknown, and the last preview stands.
    `digest_of`: as `policy_revisions`'s (a `SpecDigests` when `read` is the caches).

    `previewed`: the store's `status.impactPreview` as the operator wrote it. The Job counts
    when it has the store's owner reference and runs what the operator renders for it now,
    or what it rendered when it made it (`RUNS`, recorded with the preview of that Job).
    A count an earlier version read from that Job, which recorded no render, stands.

    `record`: writes a `status.impactPreview` to the store's status at once. The Job is
    created only after its render is on record through it (intent first: an operator that
    stops between the two leaves a record and no Job, never a Job nothing proves its own);
    a record that fails (KubeError) leaves the Job uncreated, and a later pass tries again."""
    raw = read.get("PrivacyPolicy", None, store.policy)
    if raw is None:
        return None
    try:
        revisions = policy_revisions(raw, now, digest_of)
        if revisions.pending is None:
            return None
        in_force = parse_in_force(raw, revisions.in_force.spec)
        pending = parse_policy(raw)
    except ModelError:
        return None  # the store's own verdicts say the policy does not parse
    generation = revisions.pending.generation
    state = preview_state(store, in_force, pending)
    if state is None:
        return None
    if state == NOT_RUN:
        return not_run_status(generation, store)
    name = preview_job_name(store, generation)
    rendered = render_preview_job(store, settings, generation)
    current = expected_runs(rendered["spec"])
    before = previewed if _of_job(previewed, generation, name) else None
    recorded = render_of(before.get(RUNS)) if before is not None else None
    selector = ",".join(f"{k}={v}" for k, v in sorted(store_selector(store).items()))
    try:
        jobs = [j for j in read.list("Job", store.namespace, selector)
                if j["metadata"]["name"] == name]  # fmt: skip
    except KubeError as error:
        # The Job unread: the render on record stays (unknown is not "none made").
        return _with_runs({"policyGeneration": generation, "jobName": name, "state": WAITING,
                           "message": f"cannot list Jobs (HTTP {error.status})."},
                          recorded)  # fmt: skip
    if not jobs:
        waiting = _with_runs(preview_status(generation, name, None, None), current)
        try:
            # Intent first: the render is on record before the Job exists, so a Job made by a
            # pass that stopped before its status write is still the store's preview.
            record(waiting)
        except KubeError as error:  # no Job without its render on record
            return _with_runs({"policyGeneration": generation, "jobName": name,
                               "state": WAITING, "message": f"cannot record the render of "
                               f"Job {name} (HTTP {error.status}); it is created once that "
                               "is on record."}, recorded)  # fmt: skip
        try:
            kube.create(rendered)
        except KubeError as error:
            if error.status != 409:  # 409: created by an earlier pass, not yet in the cache
                # The render stays on record: a create whose answer was lost may have made it.
                return _with_runs({"policyGeneration": generation, "jobName": name,
                                   "state": WAITING, "message": f"cannot create Job {name} "
                                   f"(HTTP {error.status})."}, current)  # fmt: skip
        return waiting
    job = jobs[0]
    renders = (current, recorded) if recorded is not None and recorded != current else (current,)
    ran = run_render(job_runs(job), renders) if owned_by(job, STORE_KIND, store.uid) else None
    if ran is None:
        if before is not None and recorded is None and before.get("state") == COUNTED:
            return dict(before)  # read by an earlier version from the Job it made
        # Never adopt: a Job of that name the operator did not create cannot say the counts,
        # nor one with the store's owner reference (anyone may write one) that runs anything
        # but the preview (checks/purge_runs.py `what_job_runs`).
        return {"policyGeneration": generation, "jobName": name, "state": FAILED,
                "reason": "NotOwned",
                "message": f"Job {name} is not this store's preview (its owner, or what it "
                           "runs); delete it."}  # fmt: skip
    outcome = finished(job)
    if outcome is None:
        return _with_runs(preview_status(generation, name, None, None), ran)
    try:
        pods, _ = partition_runs(
            read.list("Pod", store.namespace, f"{JOB_NAME_LABEL}={name}"),
            "Job",
            str(job["metadata"].get("uid", "")),
            ran[1],
            pod_runs,
        )
    except KubeError as error:
        return _with_runs({"policyGeneration": generation, "jobName": name, "state": WAITING,
                           "message": f"cannot list the Job's pods (HTTP {error.status})."},
                          ran)  # fmt: skip
    return _with_runs(
        preview_status(generation, name, outcome, result_record(pods, CONTAINER_NAME)), ran
    )


def _of_job(previewed: Mapping[str, Any] | None, generation: int, name: str) -> bool:
    """Whether `previewed` (status.impactPreview) is the preview of this generation's Job."""
    return (
        isinstance(previewed, Mapping)
        and previewed.get("policyGeneration") == generation
        and previewed.get("jobName") == name
    )


def _with_runs(preview: dict[str, Any], render: Render | None) -> dict[str, Any]:
    """`preview` with the render of its Job on record (`RUNS`; None: none)."""
    return preview if render is None else {**preview, RUNS: purge_renders_status([render])[0]}
