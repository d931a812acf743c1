"""A DataSubjectRequest's verdicts: pure functions of what the controller observed.

Per store: which Job answers it and how it went (`store_outcome`); per request: its phase,
its conditions (`Complete`, `DeadlineMet`) and a result record of counts. Nothing here reads
the API, and nothing here ever sees the subject's identifier: the Jobs' result records hold
counts, tables, times and reasons only, and only those fields are copied.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from dataward.checks.conditions import (
    COMPLETE,
    DEADLINE_MET,
    Condition,
    as_reason,
    named,
)
from dataward.checks.purge_runs import Render, finished, owned_by, render_of
from dataward.checks.purge_runs import run_render as renders_run  # this module has its own
from dataward.purge.result import is_count
from dataward.render.subject_jobs import EXPORT_TOKEN_ANNOTATION, PUBLIC_KEY, PUBLIC_KEY_ANNOTATION
from dataward.subjects.request import REQUEST_KIND

# PIPA Article 35(3) and its Enforcement Decree Article 41(4): answer an access request within
# 10 days. The operator's --subject-request-answer-days (chart: subjectRequests.answerDays).
DEFAULT_ANSWER_PERIOD = timedelta(days=10)

StorePhase = Literal["Pending", "Running", "Succeeded", "Held", "Failed"]
RequestPhase = Literal["Pending", "Running", "Succeeded", "PartiallyHeld", "Failed"]
_OUTCOMES: dict[str, StorePhase] = {"Succeeded": "Succeeded", "Held": "Held", "Failed": "Failed"}
_COUNT_KEY = re.compile(r"(rows|archiveRows)[A-Z][A-Za-z]{0,40}")
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,127}")
_TIME = re.compile(r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d))?")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_KIND = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # an identifier kind: a DNS label
# A store not searched for the subject (in full): it has not answered (subjects/plan.py
# `SubjectPlan.answers`), whatever the record says its outcome was.
NOT_SEARCHABLE = "NotSearchable"
NAMED_TABLES = 5


@dataclass(frozen=True)
class JobRun:
    """One of the request's Jobs for a store, with the result record its pod left (if any)."""

    name: str
    job: Mapping[str, Any]
    record: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class StoreOutcome:
    """How one store answered: a phase, why, and the counts its Job reported."""

    namespace: str
    name: str
    phase: StorePhase
    reason: str
    message: str = ""
    job_name: str | None = None
    create_job: bool = False  # the act: create the current Job
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_status(self) -> dict[str, Any]:
        """The store's entry in status.stores."""
        out: dict[str, Any] = {
            "namespace": self.namespace,
            "name": self.name,
            "phase": self.phase,
            "reason": self.reason,
        }
        if self.message:
            out["message"] = self.message
        if self.job_name:
            out["jobName"] = self.job_name
        out.update(self.details)
        return out


def safe_details(record: Mapping[str, Any], statutes: Collection[str] = ()) -> dict[str, Any]:
    """The fields of a Job's result record that status may hold: counts, tables, times, words.

    The record is the engine's and promises no personal data; this makes sure of it by copying
    only values of fixed shapes (whole numbers, table names, CamelCase words, times, the
    acknowledge token's characters, identifier kinds: never their values), never free text.
    A statute is free text, so it is kept only when it is one of the policy's own
    (`statutes`).
    """
    out: dict[str, Any] = {}
    for key, value in record.items():
        if _COUNT_KEY.fullmatch(str(key)) and is_count(value):
            out[str(key)] = value
    if record.get("statute") in statutes:
        out["statute"] = record["statute"]
    for key in ("keptUntil", "startTime", "completionTime"):
        value = record.get(key)
        if isinstance(value, str) and _TIME.fullmatch(value):
            out[key] = value
    token = record.get("acknowledgeToken")
    if isinstance(token, str) and _TOKEN.fullmatch(token):
        out["acknowledgeToken"] = token
    if isinstance(record.get("dryRun"), bool):
        out["dryRun"] = record["dryRun"]
    for key, shape in (("notSearchable", _TABLE), ("kindsNeeded", _KIND)):
        words = [w for w in record.get(key) or () if isinstance(w, str) and shape.fullmatch(w)]
        if words:
            out[key] = words
    tables = []
    for item in record.get("tables") or ():
        if not isinstance(item, Mapping):
            continue
        table = item.get("table")
        if not isinstance(table, str) or not _TABLE.fullmatch(table):
            continue
        entry: dict[str, Any] = {"table": table}
        for key, value in item.items():
            if _COUNT_KEY.fullmatch(str(key)) and is_count(value):
                entry[str(key)] = value
        for key in ("outcome", "reason"):
            value = item.get(key)
            if isinstance(value, str) and _WORD.fullmatch(value):
                entry[key] = value
        if item.get("statute") in statutes:
            entry["statute"] = item["statute"]
        value = item.get("keptUntil")
        if isinstance(value, str) and _TIME.fullmatch(value):
            entry["keptUntil"] = value
        tables.append(entry)
    if tables:
        out["tables"] = tables
    return out


def _record_outcome(run: JobRun) -> tuple[StorePhase, str, str]:
    state = finished(run.job)
    if run.record is None:
        if state == "Failed":
            return (
                "Failed",
                "JobFailed",
                f"Job {run.name} failed without a result record; read its pod's events and logs.",
            )
        return (
            "Failed",
            "NoResultRecord",
            f"Job {run.name} finished without a result record; read its pod's logs.",
        )
    if run.record.get("reason") == NOT_SEARCHABLE:
        # Also a record of an earlier engine, which said Succeeded having searched nothing.
        return "Failed", NOT_SEARCHABLE, not_searched(safe_details(run.record))
    outcome = _OUTCOMES.get(str(run.record.get("outcome")), "Failed")
    fallback = {"Succeeded": "Answered", "Held": "Held"}.get(outcome, "RunFailed")
    reason = as_reason(str(run.record.get("reason") or fallback), fallback)
    if outcome == "Held":
        token = safe_details(run.record).get("acknowledgeToken")
        how = (
            f"set spec.acknowledgeToken to {token} to run it"
            if token
            else "lift the hold, or set spec.acknowledgeToken"
        )
        return outcome, reason, f"Held ({reason}): nothing was changed; {how}."
    if outcome == "Failed":
        return outcome, reason, f"Job {run.name} failed ({reason}); read its pod's logs."
    return outcome, reason, ""


def not_searched(details: Mapping[str, Any]) -> str:
    """The message of a store not searched for the subject (in full), from its record's safe
    details: the tables not searched and the identifier kinds their subject columns need
    (kinds, never a value), and how to have it asked again. The identifier Secret's change
    alone asks nothing again: a store's Job runs once per acknowledge token."""
    tables = list(details.get("notSearchable") or ())
    listed = named(tables, NAMED_TABLES) or "its tables"
    if len(tables) > NAMED_TABLES:
        listed += " (notSearchable)"
    kinds = ", ".join(details.get("kindsNeeded") or ())
    again = (
        "then set a new spec.acknowledgeToken and the store is asked again (a change of the "
        "Secret alone does not ask it again)."
    )
    searched = (
        " What the tables it searched found and did is in tables; a new run searches them "
        "again too."
        if details.get("tables")
        else ""
    )
    if not kinds:
        return (
            f"Not searched for the subject: {listed}. The store has no subjectColumns of a kind "
            "the identifier Secret gives, so nothing is known of the subject's rows in it and "
            f"it has not answered.{searched} Give its tables spec.records[].subjectColumns (or "
            f"the Secret the subject's identifier of a kind they have), {again}"
        )
    return (
        f"Not searched for the subject: {listed}. Their subjectColumns are of the kinds "
        f"{kinds}, none of which the identifier Secret (spec.subject.identifierSecretRef) "
        "gives, so nothing is known of the subject's rows there and the store has not "
        f"answered.{searched} Add the subject's identifier of one of those kinds to the "
        f"Secret, {again}"
    )


def _completed_at(run: JobRun) -> str:
    status = run.job.get("status") or {}
    return str(status.get("completionTime") or status.get("startTime") or "")


def store_outcome(
    namespace: str,
    name: str,
    current_job: str,
    runs: Sequence[JobRun],
    runnable: bool,
    statutes: Collection[str] = (),
) -> StoreOutcome:
    """How a store answered the request, and whether to start its current Job.

    A run that succeeded is the store's answer for good. Otherwise the Job named for the
    request's current acknowledge token is the answer: running, finished (held or failed:
    a new token re-runs it), or not there yet (create it, when `runnable`).
    """
    done = [r for r in runs if finished(r.job)]
    succeeded = [r for r in done if _record_outcome(r)[0] == "Succeeded"]
    if succeeded:
        run = max(succeeded, key=_completed_at)
        details = safe_details(run.record or {}, statutes)
        return StoreOutcome(
            namespace, name, "Succeeded", _record_outcome(run)[1], "", run.name, details=details
        )
    current = next((r for r in runs if r.name == current_job), None)
    if current is None:
        if not runnable:
            return StoreOutcome(
                namespace,
                name,
                "Pending",
                "StoreNotReady",
                "The store's purge ServiceAccount does not exist yet.",
            )
        # Created in this very pass (the act): the store's answer is under way.
        return StoreOutcome(
            namespace, name, "Running", "JobCreated", "", current_job, create_job=True
        )
    if not finished(current.job):
        return StoreOutcome(namespace, name, "Running", "JobRunning", "", current.name)
    phase, reason, message = _record_outcome(current)
    details = safe_details(current.record or {}, statutes)
    return StoreOutcome(namespace, name, phase, reason, message, current.name, details=details)


NAMED_AT_MOST = 3
_STATUS_FIELDS = frozenset({"namespace", "name", "phase", "reason", "message", "jobName"})


def not_counted(outcome: StoreOutcome, names: Sequence[str]) -> StoreOutcome:
    """`outcome`, its message naming the Jobs and pods that carry the request's labels (or
    sit in one of its runs) but are not counted: they do not run what the operator renders
    for the request. Names only, never what they run or say."""
    if not names:
        return outcome
    listed = named(sorted(names), NAMED_AT_MOST)
    note = (
        f"Not counted as this request's runs: {listed}, with its labels but not running the "
        "Job the operator renders for it (made for an earlier acknowledge token or operator "
        "version, or by someone else)."
    )
    message = f"{outcome.message} {note}" if outcome.message else note
    return replace(outcome, message=message)


def recorded_answer(
    entry: Mapping[str, Any] | None,
    job: Mapping[str, Any] | None,
    owner_kind: str | None,
    request_labels: Mapping[str, str],
    request_uid: str,
) -> StoreOutcome | None:
    """A store's answer as the operator recorded it in status.stores, when it succeeded (an
    earlier operator recorded a store it could not search as succeeded: not an answer) and
    `job`, the Job the entry names, is still there to back it: one of the request's (its
    labels; in the request's namespace also controlled by the request), finished Complete.
    Then it stands (a later render, e.g. a new operator image, would not count that run
    again). The status subresource is writable by others: an entry alone answers nothing."""
    if not entry or entry.get("phase") != "Succeeded" or job is None:
        return None
    if entry.get("reason") == NOT_SEARCHABLE:  # recorded so by an earlier operator
        return None
    meta = job.get("metadata") or {}
    if meta.get("name") != entry.get("jobName") or finished(job) != "Complete":
        return None
    labels = meta.get("labels") or {}
    if any(labels.get(key) != value for key, value in request_labels.items()):
        return None
    if owner_kind is not None and not owned_by(job, owner_kind, request_uid, controller=True):
        return None
    details = {k: v for k, v in entry.items() if k not in _STATUS_FIELDS and k != "exportSecret"}
    return StoreOutcome(
        str(entry.get("namespace")),
        str(entry.get("name")),
        "Succeeded",
        str(entry.get("reason") or "Answered"),
        str(entry.get("message") or ""),
        str(meta["name"]),
        details=details,
    )


def recorded_jobs(status: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    """(namespace, jobName) of each store the request's status names a Job for: the runs the
    operator recorded (status is written only by it where the statusGuard policy is on)."""
    return {(namespace, job) for namespace, _, job in _named_jobs(status)}


def _named_jobs(status: Mapping[str, Any] | None) -> Iterator[tuple[str, Any, str]]:
    """(namespace, store name as written, jobName) of each entry of status.stores that names
    a Job in a namespace."""
    for entry in (status or {}).get("stores") or ():
        if not isinstance(entry, Mapping):
            continue
        namespace, job = entry.get("namespace"), entry.get("jobName")
        if isinstance(namespace, str) and isinstance(job, str) and namespace and job:
            yield namespace, entry.get("name"), job


StoreKey = tuple[str, str]  # (namespace, name) of a store


def recorded_renders(status: Mapping[str, Any] | None) -> dict[StoreKey, Render]:
    """status.runs: per store, the render of the Job the operator made (or was about to
    make) for it, recorded before the Job is created (where the statusGuard policy is on,
    only the operator writes status). An entry not of that form records nothing."""
    out: dict[StoreKey, Render] = {}
    for entry in (status or {}).get("runs") or ():
        render = render_of(entry)
        if render is None:
            continue
        namespace, store = entry.get("namespace"), entry.get("store")
        if isinstance(namespace, str) and isinstance(store, str) and namespace and store:
            out[(namespace, store)] = render
    return out


def renders_status(renders: Mapping[StoreKey, Render]) -> list[dict[str, str]]:
    """`renders` as status.runs (`recorded_renders` reads it back): digests only."""
    return [
        {"namespace": namespace, "store": store, "job": job, "pod": pod}
        for (namespace, store), (job, pod) in sorted(renders.items())
    ]


def run_render(runs: str | None, current: Render, recorded: Render | None) -> Render | None:
    """Which of the request's renders for a store a Job runs (`runs`: its `job_runs`): the
    one this pass renders (`current`), else the one status records the operator made for
    the store (`recorded`: a Job made before the store was edited or the operator upgraded
    runs it); None when it runs neither, or what it runs is unknown. Whose it is (owner
    references) is decided apart (checks/purge_runs.py `runs_ours`)."""
    return renders_run(runs, (current,) if recorded is None else (current, recorded))


def withdrawn_run(
    job: Mapping[str, Any],
    names: Collection[str],
    owner_kind: str | None,
    labels: Mapping[str, str],
    request_uid: str,
) -> bool:
    """Whether the finalizer deletes `job` by its name, whatever it runs now: its name is one
    of `names` (recorded in status as the request's run, or the name the operator reserves
    for the request's run in its store, `run_name`), it carries the request's uid `labels`
    and, in the request's namespace (`owner_kind` given), the request's controller
    reference. An image or store changed since, or a key Secret gone first, changes what a
    render made now would run, never these; a Job under another name, or without them, that
    does not run the render (`runs_ours`) is not the operator's and stays."""
    meta = job.get("metadata") or {}
    if meta.get("name") not in names:
        return False
    present = meta.get("labels") or {}
    if any(present.get(key) != value for key, value in labels.items()):
        return False
    return owner_kind is None or owned_by(job, owner_kind, request_uid, controller=True)


def dry_run_changed(namespace: str, name: str, job_name: str, dry_run: bool) -> StoreOutcome:
    """A store whose run under the request's current name ran with the other spec.dryRun
    than the request has now (`dry_run`): it answers nothing (a dry run deleted and
    exported nothing; a real run was no dry run), and the name is taken."""
    ran, now = ("for real", "true") if dry_run else ("as a dry run", "false")
    return StoreOutcome(
        namespace,
        name,
        "Failed",
        "DryRunChanged",
        f"Job {job_name} ran {ran} and spec.dryRun was set to {now} since, so it does not "
        "answer the request as it stands. spec.dryRun cannot be changed: set it back, or "
        "create a new request.",
        job_name,
    )


def invalid_store(namespace: str, name: str, path: str) -> StoreOutcome:
    """A store that may be in the request's scope and whose spec does not parse (at `path`):
    it is not asked, and whether it holds the subject's rows is not known, so it has not
    answered. The field's path only: the store's own status says what is wrong with it."""
    return StoreOutcome(
        namespace,
        name,
        "Failed",
        "StoreInvalid",
        f"PersonalDataStore {namespace}/{name} is invalid ({path} does not parse; its status "
        "says why), so it was not asked and may hold the subject's rows. Fix it, and the "
        "request asks it.",
    )


def key_secret_invalid(namespace: str, name: str, secret: str) -> StoreOutcome:
    """A store of an access request made by an earlier version (no key fingerprint recorded,
    runs made: `key_verdict` "adopt") whose key Secret (`secret`) holds a public key that is
    not an X25519 key in PEM: it is not recorded, and no Job is made, as it would seal the
    subject's rows to it. The value itself is never quoted (anyone who may annotate the
    Secret chose it)."""
    return StoreOutcome(
        namespace,
        name,
        "Failed",
        "KeySecretInvalid",
        f"Secret {secret}, the request's key pair, has a public key that is not an X25519 key "
        f"in PEM (its annotation {PUBLIC_KEY_ANNOTATION}, or where it has none its data "
        f"{PUBLIC_KEY}), so no Job is made to seal the export to it. If its data is intact, "
        "remove the annotation (the operator takes the public key from the data once, and "
        "records its fingerprint); else create a new request for the subject.",
    )


def stores_run(status: Mapping[str, Any] | None) -> set[StoreKey]:
    """The stores the request's status records a run for: a render in status.runs (written
    before the Job is created) or an entry of status.stores naming its Job. An access
    request's runs are given its key Secret's public key to seal their exports to: once one
    is recorded, that key is the request's for good (`key_secret_lost`)."""
    out = set(recorded_renders(status))
    out.update(
        (namespace, name)
        for namespace, name, _ in _named_jobs(status)
        if isinstance(name, str) and name
    )
    return out


# The status field recording the fingerprint of an access request's public key
# (subjects/export.py `public_key_fingerprint`), written before its key Secret is created.
KEY_FINGERPRINT = "keyFingerprint"

KeyVerdict = Literal["use", "make", "adopt", "not-ours", "lost"]


def key_verdict(
    found: bool | None, fingerprint: str | None, recorded: Any, ran: bool
) -> KeyVerdict:
    """What an access request does with its key Secret, decided on what is known of it:
    `found` None when there is none, else whether it has the request's controller owner
    reference; `fingerprint`, the fingerprint of the public key its annotation holds (None:
    none, or not a key); `recorded`, status.keyFingerprint as read (None: absent); `ran`,
    status records a run of the request's (`stores_run`).

    An owner reference anyone who may create or patch Secrets can write, and so the
    annotation: the Secret is the request's only when its public key is the one whose
    fingerprint the operator recorded before it created the Secret ("use"). With no Secret
    and no run a pair is made ("make"; a fingerprint recorded by a pass whose create failed
    is replaced, nothing having been sealed to it). With runs, a Secret gone, not the
    request's or holding another key is "lost": the runs sealed to the recorded key. Before
    any run, one that is not proven the request's is "not-ours" (never used: deleted, a pair
    is made). "adopt": a request of an earlier version, which recorded no fingerprint, whose
    runs were given the public key of the Secret it made: that key, as found, is recorded
    once (the caller reads it, and records it before using it)."""
    if not found:
        if ran:
            return "lost"
        return "make" if found is None else "not-ours"
    if recorded is None:
        return "adopt" if ran else "not-ours"
    if fingerprint is not None and fingerprint == recorded:
        return "use"
    return "lost" if ran else "not-ours"


EXPORTS = "exports"  # status.exports: the export Secrets the operator made, and their proof
ExportVerdict = Literal["make", "ours", "adopt", "not-ours"]


def export_proof(token: str) -> str:
    """What status.exports records of the token the operator puts on an export Secret it
    makes (EXPORT_TOKEN_ANNOTATION): its SHA-256, never the token."""
    return "sha256:" + hashlib.sha256(token.encode("ascii")).hexdigest()


def export_records(status: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """status.exports as read: export Secret name -> {"proof", and "uid" once made}."""
    out: dict[str, dict[str, str]] = {}
    for entry in (status or {}).get(EXPORTS) or ():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            continue
        out[entry["name"]] = {
            k: v for k in ("proof", "uid") if isinstance(v := entry.get(k), str) and v
        }
    return out


def exports_status(records: Mapping[str, Mapping[str, str]]) -> list[dict[str, str]]:
    """status.exports for `records` (`export_records`), in name order."""
    return [{"name": name, **records[name]} for name in sorted(records)]


def export_verdict(
    found: Mapping[str, Any] | None, record: Mapping[str, str] | None
) -> ExportVerdict:
    """Whether an export Secret (`found`: its metadata, None when there is none) is the
    request's, on what status.exports records of it (`record`).

    An owner reference, labels and annotations anyone who may create Secrets can write, the
    request's uid copied from the request; a Secret's uid no one chooses. The operator
    records the hash of a token it puts on the Secret before it creates it, and the
    Secret's uid once made: a Secret is the request's when its uid is the one recorded
    ("ours"), or, no uid recorded yet (the write after the create failed), when it carries
    the token whose hash is recorded ("adopt": its uid is recorded, once). None there:
    "make" (a new token replaces the record). Anything else is "not-ours": never granted,
    never named, never written."""
    if found is None:
        return "make"
    if record is None:
        return "not-ours"
    meta = found.get("metadata") or {}
    uid = record.get("uid")
    if uid is not None:
        return "ours" if meta.get("uid") == uid else "not-ours"
    annotations = meta.get("annotations")
    token = annotations.get(EXPORT_TOKEN_ANNOTATION) if isinstance(annotations, Mapping) else None
    if isinstance(token, str) and token.isascii() and export_proof(token) == record.get("proof"):
        return "adopt"
    return "not-ours"


LOST_KEY_REASON = "KeySecretLost"


def key_secret_lost(
    namespace: str, name: str, secret: str, export: str, ran: bool, job_name: str | None = None
) -> StoreOutcome:
    """A store of an access request whose key Secret (`secret`) is gone (deleted, replaced
    by one that is not the request's, or holding another public key than the one whose
    fingerprint status records: `key_verdict` "lost") after the request's runs were given
    its public key (`stores_run`): what they sealed cannot be opened with
    any key the request names, so the store has not answered, whatever it recorded. No new
    key pair is made: a store asked now would be sealed to another key than the others.
    `ran`: status records a run for this store (its export, `export`, sealed or being
    sealed to the lost key); else it is not asked. `job_name`: the run status names for
    it, kept there (`stores_run` reads it on the next pass, the finalizer's `recorded_jobs`
    deletes it). Names only, never a key."""
    if ran:
        what = (
            f"this store's export (Secret {export}), sealed or being sealed to that key, "
            "cannot be opened with any key the request names"
        )
    else:
        what = (
            "this store is not asked: its export would be sealed to a new key, and the "
            "request would hold exports sealed to two keys"
        )
    return StoreOutcome(
        namespace,
        name,
        "Failed",
        LOST_KEY_REASON,
        f"Secret {secret}, the request's key pair, is gone (deleted, replaced by a Secret "
        "that is not the request's, or its public key is not the one whose fingerprint "
        "status.keyFingerprint records) after the request's Jobs were given its public key to "
        f"seal their exports to: {what}. No new key pair is made for "
        "this request. If you have a copy of the Secret, restore it unchanged (its owner "
        "reference to this request and its public key annotation included); else create a "
        "new request for the subject.",
        job_name,
    )


def lost_for_every_run(
    outcomes: Sequence[StoreOutcome],
    ran: Iterable[StoreKey],
    lost: Callable[[str, str], StoreOutcome],
) -> list[StoreOutcome]:
    """An access request's outcomes once its key Secret is lost (`key_verdict` "lost"):
    every store status records a run for (`ran`: `stores_run`) is KeySecretLost (`lost`,
    its namespace and name: `key_secret_lost`) whatever its spec now is: one that no
    longer parses, is gone or is out of scope since ran all the same, and its export was
    sealed to the lost key, so a Succeeded it recorded (`recorded_answer`) or a
    StoreInvalid or StoreNotFound does not stand for it. Stores it never ran for keep their
    outcome."""
    by_store = {(o.namespace, o.name): o for o in outcomes}
    for key in ran:
        kept = by_store.get(key)
        if kept is None or kept.reason != LOST_KEY_REASON:
            by_store[key] = lost(*key)
    return list(by_store.values())


def missing_store(namespace: str, name: str) -> StoreOutcome:
    """A store named in spec.scope.stores that does not exist (or is not of the policy)."""
    return StoreOutcome(
        namespace,
        name,
        "Failed",
        "StoreNotFound",
        f"No PersonalDataStore {namespace}/{name} of the request's policy exists.",
    )


def request_phase(stores: Sequence[StoreOutcome]) -> RequestPhase:
    """Running while any store is; then Failed, PartiallyHeld or Succeeded."""
    phases = {s.phase for s in stores}
    if phases and phases <= {"Pending"}:
        return "Pending"
    if phases & {"Pending", "Running"}:
        return "Running"
    if "Failed" in phases:
        return "Failed"
    if "Held" in phases:
        return "PartiallyHeld"
    return "Succeeded"


def deadline(received_at: datetime, answer_period: timedelta) -> datetime:
    """When the request must be answered."""
    return received_at + answer_period


def _named(stores: Sequence[StoreOutcome], phase: str) -> str:
    return "; ".join(
        f"{s.namespace}/{s.name}: {s.reason}" + (f" ({s.message})" if s.message else "")
        for s in stores
        if s.phase == phase
    )


def complete(phase: RequestPhase, stores: Sequence[StoreOutcome]) -> Condition:
    """Complete: True once every store in scope answered."""
    if phase == "Succeeded":
        if not stores:
            return Condition(
                COMPLETE,
                "True",
                "NoStoresInScope",
                "No store of the policy is in the request's scope: "
                "there is nothing to answer from.",
            )
        return Condition(
            COMPLETE, "True", "AllStoresAnswered", f"All {len(stores)} store(s) in scope answered."
        )
    if phase == "Failed" and any(s.reason == LOST_KEY_REASON for s in stores):
        return Condition(
            COMPLETE,
            "False",
            "KeySecretLost",
            "The request's key Secret is gone (deleted, replaced by a Secret that is not the "
            "request's, or holding another public key than the one status.keyFingerprint "
            "records) after its Jobs were given its public key: "
            "what they sealed to it cannot be opened, and no new key pair is made. Failed: "
            f"{_named(stores, 'Failed')}.",
        )
    if phase == "Failed":
        return Condition(COMPLETE, "False", "StoresFailed", f"Failed: {_named(stores, 'Failed')}.")
    if phase == "PartiallyHeld":
        return Condition(COMPLETE, "False", "StoresHeld", f"Held: {_named(stores, 'Held')}.")
    waiting = [s for s in stores if s.phase in ("Pending", "Running")]
    return Condition(
        COMPLETE,
        "False",
        "InProgress",
        f"{len(waiting)} of {len(stores)} store(s) have not answered yet.",
    )


def readers_not_granted(condition: Condition, child: str) -> Condition:
    """Complete, when spec.readers could not be granted the key and the exports because
    `child` (the readers' Role or RoleBinding, by kind and name) is not the request's: an
    answer its readers cannot open is not complete."""
    note = (
        f"{child} exists and was not made by the operator for this request, so spec.readers "
        "are not granted the key and the exports: delete it and the operator makes its own."
    )
    if condition.status == "True":
        return Condition(COMPLETE, "False", "ChildNotOurs", note)
    return replace(condition, message=f"{condition.message} {note}")


def foreign_readers_bindings(
    bindings: Iterable[Mapping[str, Any]], role: str, uid: str
) -> list[str]:
    """The names of the RoleBindings among `bindings` (the request's namespace's) that refer
    to the readers' Role `role` and are not the request's own readers' binding (the one of
    the Role's name with the request's controller owner reference, `uid`), sorted.

    Kubernetes admits a binding to a Role from whoever holds every rule the Role has at that
    moment; the operator widens the Role later (a store comes into scope, a Secret is made
    again), and so would hand each such binding what its maker never held. While one
    refers to the Role, the Role grants nothing."""
    foreign = []
    for binding in bindings:
        ref = binding.get("roleRef")
        if not isinstance(ref, Mapping) or ref.get("kind") != "Role" or ref.get("name") != role:
            continue
        name = str((binding.get("metadata") or {}).get("name") or "")
        if name == role and owned_by(binding, REQUEST_KIND, uid, controller=True):
            continue
        foreign.append(name)
    return sorted(foreign)


def readers_bound_elsewhere(condition: Condition, bindings: Sequence[str]) -> Condition:
    """Complete, when spec.readers are not granted the key and the exports because other
    RoleBindings (`bindings`, by name) refer to the readers' Role: an answer its readers
    cannot open is not complete."""
    note = (
        f"RoleBinding {named(bindings, NAMED_AT_MOST)} refers to the request's readers' "
        "Role and was not made by the operator for it, so the Role grants nothing and "
        "spec.readers are not granted the key and the exports: delete it (name whoever "
        "needs to read in spec.readers)."
    )
    if condition.status == "True":
        return Condition(COMPLETE, "False", "ReadersRoleBoundElsewhere", note)
    return replace(condition, message=f"{condition.message} {note}")


# Conditions that are not True yet but ask nothing of anyone: a request being answered.
EXPECTED_WHILE_ANSWERING = frozenset({"InProgress"})


def event_type(condition: Condition) -> str:
    """Normal for what is fine or simply under way; Warning only for what needs a person."""
    if condition.status == "True" or condition.reason in EXPECTED_WHILE_ANSWERING:
        return "Normal"
    return "Warning"


def blocked(reason: str, message: str, status: Literal["False", "Unknown"] = "False") -> Condition:
    """Complete when the request cannot start: its spec, policy or identifier Secret."""
    if reason == "InvalidSpec":
        return Condition(COMPLETE, "False", "InvalidSpec", message)
    if reason == "PolicyNotFound":
        return Condition(COMPLETE, "False", "PolicyNotFound", message)
    if reason == "IdentifierSecretMissing":
        return Condition(COMPLETE, "False", "IdentifierSecretMissing", message)
    return Condition(COMPLETE, "Unknown", "IdentifierSecretUnreadable", message)


def deadline_met(due: datetime, answered_at: datetime | None, now: datetime) -> Condition:
    """DeadlineMet: answered by the deadline, or still within it; False once overdue."""
    stamp = due.strftime("%Y-%m-%dT%H:%M:%SZ")
    if answered_at is not None:
        if answered_at <= due:
            return Condition(
                DEADLINE_MET, "True", "AnsweredInTime", f"Answered before the deadline {stamp}."
            )
        return Condition(
            DEADLINE_MET, "False", "AnsweredLate", f"Answered after the deadline {stamp}."
        )
    if now <= due:
        return Condition(
            DEADLINE_MET, "True", "WithinDeadline", f"Not answered yet; the deadline is {stamp}."
        )
    return Condition(
        DEADLINE_MET,
        "False",
        "Overdue",
        f"Not answered and past the deadline {stamp}: PIPA requires an answer "
        "within the answer period; tell the requester why and when.",
    )


def result_record(
    request_type: str, dry_run: bool, phase: RequestPhase, stores: Sequence[StoreOutcome]
) -> dict[str, Any]:
    """status.result: counts by phase and summed row counts; no identifier, no row."""
    totals: dict[str, int] = {}
    for store in stores:
        for key, value in store.details.items():
            if _COUNT_KEY.fullmatch(key) and is_count(value):
                totals[key] = totals.get(key, 0) + int(value)
    by_phase: dict[str, int] = {}
    for store in stores:
        by_phase[store.phase] = by_phase.get(store.phase, 0) + 1
    return {
        "type": request_type,
        "dryRun": dry_run,
        "phase": phase,
        "stores": len(stores),
        "storesByPhase": by_phase,
        **totals,
    }


def answer_owed(
    old_phase: Any, old_reason: Any, phase: RequestPhase, reason: str, answered_before: bool
) -> bool:
    """Whether a pass appends a `request.answered` evidence record: when the request reaches
    a terminal phase other than the one status holds (`old_phase`; `old_reason`, `reason`:
    Complete's before and now). Not for its key Secret lost (KeySecretLost) after it was
    answered (`answered_before`: status.completionTime; or it was Succeeded or
    PartiallyHeld), nor for that Secret restored: the answer on record was given when it
    was; that its exports can no longer be opened, and again can, is said in status and in
    Events, not as a second answer (`failed`, at the first one's time) nor a third."""
    if phase not in ("Succeeded", "Failed", "PartiallyHeld") or old_phase == phase:
        return False
    was_answered = answered_before or old_phase in ("Succeeded", "PartiallyHeld")
    return not (was_answered and LOST_KEY_REASON in (reason, old_reason))


def answer_outcome(phase: RequestPhase, result: Mapping[str, Any]) -> str:
    """The `request.answered` evidence outcome of a finished request."""
    if phase == "PartiallyHeld":
        return "partially-fulfilled"
    if phase == "Failed":
        return "failed"
    found = sum(v for k, v in result.items() if _COUNT_KEY.fullmatch(k) and is_count(v))
    return "fulfilled" if found else "no-data"


def grants_secret(role: Mapping[str, Any] | None, secret: str) -> bool:
    """Whether `role` (a request's readers' Role as it is) names the Secret `secret` in a
    rule: a change of that Secret may change whether the grant is the request's to give."""
    if role is None:
        return False
    for rule in role.get("rules") or ():
        names = rule.get("resourceNames") if isinstance(rule, Mapping) else None
        if isinstance(names, list) and secret in names:
            return True
    return False
