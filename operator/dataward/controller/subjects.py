"""The DataSubjectRequest controller: observe, decide (checks/subjects.py), act.

One reconcile of a request reads the request, its policy, whether its identifier Secret
exists (metadata only: the operator never reads the identifier), the stores in scope and the
request's Jobs with their pods' termination messages; decides each store's outcome and the
request's phase and conditions; then acts: the key Secret and export Secrets (access), the
Jobs' access in the request's namespace, one Job per store, the readers' Role, the status,
Events on condition transitions and a `request.answered` evidence record when it finishes
(not for its key Secret lost after it was answered, nor restored: `answer_owed`).

Children it did not create are never adopted, used or written over: a child in the request's
namespace is the request's only when it has the request's controller owner reference (labels
anyone may write); the key Secret (access) only when it also holds the public key whose
fingerprint status.keyFingerprint records, written before the Secret is created
(`_public_key`); a Job only when it also runs what the operator renders for the request
now or what status.runs records it rendered for the store before it created the Job
(checks/purge_runs.py `runs_ours`, checks/subjects.py `run_render`): intent first, the
record is written before the Job is created. Children are created (POST), never applied
into being: a 409 is an object of the name the read did not show, read and judged the same
way (a Job by a LIST: the operator may not get Jobs). The store that would use one that is
not ours fails with ChildNotOurs. Jobs in other namespaces than the request's cannot be
owned by it, so a finalizer deletes them (and their pods) with the request: the request's
runs only (what the render runs, or the name status records or
the operator reserves for them, whatever image or store spec they ran), never a Job that
merely carries its labels.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from dataward.checks.conditions import COMPLETE, Condition, merge_conditions, transitions
from dataward.checks.drift import needs_apply
from dataward.checks.purge_runs import (
    JOB_NAME_LABEL,
    Render,
    expected_runs,
    finished,
    job_runs,
    owned_by,
    partition_runs,
    pod_runs,
    result_record,
    runs_ours,
)
from dataward.checks.subjects import (
    DEFAULT_ANSWER_PERIOD,
    EXPORTS,
    KEY_FINGERPRINT,
    JobRun,
    StoreOutcome,
    answer_outcome,
    answer_owed,
    blocked,
    complete,
    deadline,
    deadline_met,
    dry_run_changed,
    event_type,
    export_proof,
    export_records,
    export_verdict,
    exports_status,
    foreign_readers_bindings,
    grants_secret,
    invalid_store,
    key_secret_invalid,
    key_secret_lost,
    key_verdict,
    lost_for_every_run,
    missing_store,
    not_counted,
    readers_bound_elsewhere,
    readers_not_granted,
    recorded_answer,
    recorded_jobs,
    recorded_renders,
    renders_status,
    request_phase,
    run_render,
    store_outcome,
    stores_run,
    withdrawn_run,
)
from dataward.checks.subjects import (
    result_record as request_result,
)
from dataward.controller import events
from dataward.controller.cache import Caches, delete_as_read
from dataward.controller.clock import Clock, system_clock
from dataward.controller.kube import Kube, KubeError, ObjectGone, write_status
from dataward.controller.refused import mark_refused, refused
from dataward.evidence.payloads import EvidenceSink, append_record, fenced
from dataward.keys.ring import format_time
from dataward.model.errors import ModelError
from dataward.model.policy import parse_policy
from dataward.model.store import Store, StoreScope, parse_store, store_scope
from dataward.render.purge_job import CONTAINER_NAME
from dataward.render.settings import RenderSettings
from dataward.render.subject_jobs import (
    DRY_RUN_ARG,
    PUBLIC_KEY,
    PUBLIC_KEY_ANNOTATION,
    REQUEST_REF_ANNOTATION,
    STORE_REF_ANNOTATION,
    export_secret_name,
    job_access_name,
    job_name,
    key_secret_name,
    purge_account,
    reader_secrets,
    readers_name,
    render_export_secret,
    render_job,
    render_job_binding,
    render_job_role,
    render_key_secret,
    render_readers_binding,
    render_readers_role,
    request_labels,
    request_selector,
    run_name,
    uid_labels,
    uid_selector,
)
from dataward.subjects.export import generate_keypair, public_key_fingerprint, public_pem
from dataward.subjects.request import REQUEST_KIND, StoreRef, SubjectRequest, parse_request

log = logging.getLogger("dataward.subjects")

RequestKey = tuple[str, str]
FINALIZER = "dataward.io/subject-request-jobs"
# How soon an unfinished request is looked at again; and an answered one whose readers are
# granted Secrets that are not watched (`_secrets_watched`): no event tells of one replaced.
RECHECK = timedelta(seconds=60)
EVIDENCE_MESSAGE_LIMIT = 1024


def pem_keypair() -> tuple[str, str]:
    """A new X25519 recipient key pair (the engine's), private and public key in PEM."""
    pair = generate_keypair()
    return pair.private_pem.decode("ascii"), pair.public_pem.decode("ascii")


@dataclass(frozen=True)
class SubjectSettings:
    """What the operator's configuration decides for every request."""

    render: RenderSettings = field(default_factory=RenderSettings)
    answer_period: timedelta = DEFAULT_ANSWER_PERIOD
    clock: Clock = field(default=system_clock, compare=False)
    # A new (private key, public key) pair in PEM; tests may stand in a fixed one.
    keypair: Callable[[], tuple[str, str]] | None = field(
        default_factory=lambda: pem_keypair, compare=False
    )
    evidence: EvidenceSink | None = field(default=None, compare=False)
    reporting_instance: str = "dataward"


@dataclass(frozen=True)
class RequestOutcome:
    """How a reconcile went: `ok` (False: retry) and in how many seconds it is due again."""

    ok: bool
    due: float | None = None


class NotOurs(Exception):
    """An object the request would use exists but was not made for it."""


NOT_THE_KEY = (
    "does not hold the key pair the operator made for this request (its public key is not "
    "the one whose fingerprint status.keyFingerprint records, or none is recorded: made or "
    "changed by someone else, or made by an earlier operator version before any store ran)"
)

NOT_THE_EXPORT = (
    "was not made by the operator for this request (status.exports records no export "
    "Secret of this uid or token under the name: made by someone else, whatever owner "
    "reference it carries)"
)

NOT_THE_RENDER = (
    "it does not run the Job the operator renders for this request (made by someone else, "
    "or by an earlier operator version)"
)

# An access request's stores' outcome when its key Secret's public key is not used (not the
# request's Secret, not a key, or the Secret lost: `KeyLost`): what `_public_key` answers
# instead of the key.
KeyUnusable = Callable[[Store], StoreOutcome]


def request_keys_for_event(
    kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> list[RequestKey]:
    """The requests a cached change can affect: the request itself, or its Job's and pods'."""
    body = new if new is not None else old
    if body is None:
        return []
    meta = body.get("metadata") or {}
    if kind == REQUEST_KIND:
        return [(str(meta.get("namespace")), str(meta.get("name")))]
    if kind not in ("Job", "Pod"):
        return []
    ref = (meta.get("annotations") or {}).get(REQUEST_REF_ANNOTATION)
    if not isinstance(ref, str) or "/" not in ref:
        return []
    namespace, _, name = ref.partition("/")
    return [(namespace, name)]


def ours(obj: Mapping[str, Any] | None, request: SubjectRequest) -> bool:
    """True when `obj`, a child in the request's namespace, has the request's controller
    owner reference, which the operator renders on every one; its labels prove nothing."""
    return obj is not None and owned_by(obj, REQUEST_KIND, request.uid, controller=True)


def _request_args(job: Mapping[str, Any]) -> list[Any]:
    """The arguments of a request's Job's request container (none when it has none)."""
    for container in (((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or ():
        if not isinstance(container, Mapping):
            continue
        args = container.get("args")
        if container.get("name") == CONTAINER_NAME and isinstance(args, list):
            return args
    return []


def acknowledged(job: Mapping[str, Any]) -> str | None:
    """The acknowledge token a request's Job runs with (its `--acknowledge` argument), if
    any: which of the request's renders to compare it with. What it runs still decides."""
    args = _request_args(job)
    if "--acknowledge" in args[:-1]:
        token = args[args.index("--acknowledge") + 1]
        return token if isinstance(token, str) else None
    return None


def as_asked(job: Mapping[str, Any], request: SubjectRequest) -> bool:
    """Whether a run of the request (a Job it counts) answers the request as it stands: it
    ran as a dry run exactly when spec.dryRun is true now. The Job's name does not depend
    on spec.dryRun, and the render status records may be of before a change of it: a dry
    run would stand as the real answer (nothing deleted), a real run as a dry one. The CRD
    makes spec.dryRun immutable; a CRD installed before that rule does not."""
    return (DRY_RUN_ARG in _request_args(job)) == request.dry_run


class SubjectRequests:
    """Reconciles DataSubjectRequests through a Kube; reads through the caches when given."""

    def __init__(
        self,
        kube: Kube,
        settings: SubjectSettings,
        caches: Caches | None = None,
    ) -> None:
        self.kube = kube
        self.read: Kube | Caches = caches if caches is not None else kube
        # Evidence goes out only while the API writes may (the Lease is held).
        self.settings = replace(
            settings, evidence=fenced(settings.evidence, getattr(kube, "may_write", None))
        )
        self.caches = caches

    def owns(self, namespace: str) -> bool:
        """Whether this operator (shard) serves the requests of `namespace`."""
        return self.caches is None or self.caches.owns(namespace)

    def all_requests(self) -> list[RequestKey]:
        """Every request this operator (shard) serves."""
        return [
            (r["metadata"]["namespace"], r["metadata"]["name"])
            for r in self.read.list(REQUEST_KIND)
            if self.owns(r["metadata"]["namespace"])
        ]

    def keys_for_secret(self, namespace: str, secret: str) -> list[RequestKey]:
        """The requests a watch event of the Secret `namespace`/`secret` can affect, from the
        caches alone: the cached requests of `namespace` whose identifier Secret it is (its
        event may let them start), and those whose readers' Role names it (`grants_secret`):
        deleted, or made again under its name by someone else, it is no longer the request's
        to grant, and its pass takes it out of the Role now, not at the hourly resync. An
        access request whose Role cannot be read (its cache not synced) is queued too: its
        pass fails on the same read and is retried until it reads. None when requests are
        not cached (no LIST for it)."""
        if self.caches is None or not self.caches.cached(REQUEST_KIND) or not self.owns(namespace):
            return []
        out = []
        for raw in self.caches.list(REQUEST_KIND, namespace):
            name = str(raw["metadata"]["name"])
            spec = raw.get("spec") or {}
            subject = spec.get("subject") or {}
            ref = subject.get("identifierSecretRef") if isinstance(subject, dict) else None
            if isinstance(ref, dict) and ref.get("name") == secret:
                out.append((namespace, name))
            elif spec.get("type") == "access" and self._role_grants(namespace, name, secret):
                out.append((namespace, name))
        return out

    def keys_for_binding(self, namespace: str, binding: Mapping[str, Any]) -> list[RequestKey]:
        """The access requests of `namespace` whose readers' Role the RoleBinding `binding`
        (as an event has it) refers to, from the caches alone: one made by someone else
        withdraws the Role's grant now, not at the hourly resync (`foreign_readers_bindings`).
        None when requests are not cached."""
        ref = binding.get("roleRef")
        if (
            self.caches is None
            or not self.caches.cached(REQUEST_KIND)
            or not self.owns(namespace)
            or not isinstance(ref, Mapping)
            or ref.get("kind") != "Role"
        ):
            return []
        return [
            (namespace, str(raw["metadata"]["name"]))
            for raw in self.caches.list(REQUEST_KIND, namespace)
            if (raw.get("spec") or {}).get("type") == "access"
            and readers_name(str(raw["metadata"]["name"])) == ref.get("name")
        ]

    def _role_grants(self, namespace: str, request_name: str, secret: str) -> bool:
        """Whether the readers' Role of the request `request_name` names `secret`; True
        while that is Unknown (the Role's cache not synced)."""
        assert self.caches is not None
        try:
            role = self.caches.get("Role", namespace, readers_name(request_name))
        except KubeError:
            return True
        return grants_secret(role, secret)

    def reconcile_logged(self, key: RequestKey) -> RequestOutcome:
        """Reconcile and log a failure by its class and status only; the queue retries it."""
        try:
            due = self.reconcile(key)
        except KubeError as error:
            log.warning("subject request %s/%s: %s (will retry)", *key, error)
            return RequestOutcome(ok=False)
        except Exception as error:
            # The class only: a message could quote what was being handled.
            log.warning("subject request %s/%s failed: %s (will retry)", *key, type(error).__name__)
            return RequestOutcome(ok=False)
        if due is None:
            return RequestOutcome(ok=True)
        return RequestOutcome(ok=True, due=max(1.0, (due - self.settings.clock()).total_seconds()))

    def reconcile(self, key: RequestKey) -> datetime | None:
        """Bring one request's Jobs and status in line; when it is next due, or None.

        A request deleted or recreated under its name while the pass works from its copy stops
        the pass (ObjectGone): a new request is never given the old one's answer."""
        try:
            return self._reconcile(key)
        except ObjectGone as gone:
            log.info("subject request %s/%s was %s since it was read: its status not written "
                     "(its watch event queues it again)", *key, gone)  # fmt: skip
            return None

    def _reconcile(self, key: RequestKey) -> datetime | None:
        namespace, name = key
        now = self.settings.clock()
        if not self.owns(namespace):
            return None
        raw = self.read.get(REQUEST_KIND, namespace, name)
        if raw is None:
            return None
        meta = raw["metadata"]
        generation = int(meta.get("generation") or 0)
        try:
            request = parse_request(raw)
        except ModelError as error:
            if meta.get("deletionTimestamp"):
                self._delete_jobs(raw, None)
                self._set_finalizer(raw, present=False)
                return None
            condition = blocked("InvalidSpec", f"{error.path}: {error.message}.")
            self._write_status(raw, "Failed", [condition], {}, now, generation)
            return None
        if meta.get("deletionTimestamp"):
            self._delete_jobs(raw, request)
            self._set_finalizer(raw, present=False)
            return None
        self._set_finalizer(raw, present=True)
        due_at = deadline(request.received_at, self.settings.answer_period)
        extra: dict[str, Any] = {"deadline": format_time(due_at)}
        old = raw.get("status") or {}
        answered_before = _parse_time(old.get("completionTime"))

        stop = self._precondition(request)
        if stop is not None:
            conditions = [stop, deadline_met(due_at, answered_before, now)]
            self._write_status(raw, "Pending", conditions, extra, now, generation)
            return min(due_at, now + RECHECK) if due_at > now else now + RECHECK

        stores, missing, invalid = self._stores_in_scope(request)
        statutes = self._statutes(request)
        public_key: str | KeyUnusable | None = None
        latest: Mapping[str, Any] | None = None  # the request as this pass's writes answer
        if request.type == "access" and (stores or stores_run(old)):
            # With runs and no store that parses, still: what they sealed may be lost.
            public_key, latest = self._public_key(raw, request)
        answered_stores = {
            (str(entry.get("namespace")), str(entry.get("name"))): entry
            for entry in old.get("stores") or ()
            if isinstance(entry, Mapping)
        }
        renders = recorded_renders(old)
        answers = [
            (store, *self._answer(request, store, public_key, statutes, answered_stores, renders))
            for store in stores
        ]
        made: dict[str, dict[str, str]] = export_records((latest or raw).get("status"))
        if request.type == "access":
            latest, made, refused_exports = self._make_exports(
                raw, request, [store for store, _, job in answers if job is not None], latest
            )
            answers = [
                (store, refused_exports[store.namespace, store.name], None)
                if (store.namespace, store.name) in refused_exports
                else (store, outcome, job)
                for store, outcome, job in answers
            ]
        latest = self._record_renders(
            raw, renders, [(store, job) for store, _, job in answers if job is not None], latest
        )
        outcomes = [
            outcome if job is None else self._create_run(request, store, job, outcome)
            for store, outcome, job in answers
        ]
        outcomes += [missing_store(ref.namespace, ref.name) for ref in missing]
        outcomes += [
            self._recorded(request, scope.namespace, scope.name, answered_stores)
            or invalid_store(scope.namespace, scope.name, error.path)
            for scope, error in invalid
        ]
        lost = isinstance(public_key, KeyLost)
        if isinstance(public_key, KeyLost):
            outcomes = lost_for_every_run(outcomes, public_key.ran, public_key.of(answered_stores))
        outcomes.sort(key=lambda o: (o.namespace, o.name))
        readers_not_ours, bound_elsewhere, own = (
            self._readers(request, stores, isinstance(public_key, str), made)
            if request.type == "access" and (stores or lost)
            else (None, [], [])
        )

        phase = request_phase(outcomes)
        answered = answered_before
        if phase == "Succeeded" and answered is None:
            answered = now
        if answered is not None:
            extra["completionTime"] = format_time(answered)
        result = request_result(request.type, request.dry_run, phase, outcomes)
        extra["stores"] = [o.to_status() for o in outcomes]
        if request.type == "access" and (stores or lost):
            # Readers may get these Secrets but not list them: status names them, those of
            # the request's own alone (`_readers`; None takes a name out of status).
            exports = {(s.namespace, s.name): export_secret_name(request, s) for s in stores}
            key_secret = key_secret_name(request)
            extra["keySecret"] = key_secret if key_secret in own else None
            for entry in extra["stores"]:
                export = exports.get((entry["namespace"], entry["name"]))
                if export is not None and export in own:
                    entry["exportSecret"] = export
        extra["result"] = result
        done = complete(phase, outcomes)
        if readers_not_ours is not None:
            done = readers_not_granted(done, readers_not_ours)
        elif bound_elsewhere:
            done = readers_bound_elsewhere(done, bound_elsewhere)
        conditions = [done, deadline_met(due_at, answered, now)]
        old_complete = next(
            (c.get("reason") for c in old.get("conditions") or ()
             if isinstance(c, Mapping) and c.get("type") == COMPLETE),
            None,
        )  # fmt: skip
        if answer_owed(
            old.get("phase"), old_complete, phase, done.reason, answered_before is not None
        ):
            # On record before status says so: a failed append leaves the phase as it was,
            # and the retried pass appends again (status is what tells it is owed).
            self._evidence(request, phase, result, answered or now, due_at)
        self._write_status(raw, phase, conditions, extra, now, generation, latest)
        if phase == "Succeeded" and readers_not_ours is None and not bound_elsewhere:
            # Granted Secrets not watched: no event says one was replaced under its name.
            granting = bool(own) and bool(request.readers)
            if not (granting and not self._secrets_watched(request.namespace)):
                return None
        return min(due_at, now + RECHECK) if due_at > now else now + RECHECK

    # Observe.

    def _precondition(self, request: SubjectRequest) -> Condition | None:
        """Why the request cannot start yet (policy, identifier Secret), or None."""
        if self.read.get("PrivacyPolicy", None, request.policy) is None:
            return blocked("PolicyNotFound", f"PrivacyPolicy {request.policy} does not exist.")
        try:
            # Metadata only, from the Secrets' cache while it is watched: never the identifier.
            present = (self.caches or self.kube).exists(
                "Secret", request.namespace, request.identifier_secret
            )
        except KubeError as error:
            return blocked(
                "IdentifierSecretUnreadable",
                f"Whether Secret {request.identifier_secret} exists could not be read "
                f"(HTTP {error.status}); the operator retries.",
                "Unknown",
            )
        if not present:
            return blocked(
                "IdentifierSecretMissing",
                f"Secret {request.namespace}/{request.identifier_secret} (spec.subject."
                "identifierSecretRef) does not exist; create it with the subject's identifiers.",
            )
        return None

    def _all_stores(self) -> tuple[list[Store], list[tuple[StoreScope, ModelError]]]:
        """Every store: parsed, and those whose spec does not parse, with what of their
        scope reads (`store_scope`) and why (their own status says so too)."""
        stores: list[Store] = []
        invalid: list[tuple[StoreScope, ModelError]] = []
        for raw in self.read.list("PersonalDataStore"):
            try:
                stores.append(parse_store(raw))
            except ModelError as error:
                scope = store_scope(raw)
                if scope is not None:
                    invalid.append((scope, error))
        return stores, invalid

    def _stores_in_scope(
        self, request: SubjectRequest
    ) -> tuple[list[Store], list[StoreRef], list[tuple[StoreScope, ModelError]]]:
        """The stores in the request's scope; the stores it names that do not exist; and
        the stores whose spec does not parse that may be in scope (`in_scope` on what of
        them reads): not asked, they have not answered."""
        every, unparsed = self._all_stores()
        stores = [s for s in every if request.in_scope(s)]
        invalid = [(scope, error) for scope, error in unparsed if request.in_scope(scope)]
        found = {StoreRef(s.namespace, s.name) for s in stores}
        found |= {StoreRef(scope.namespace, scope.name) for scope, _ in invalid}
        return stores, [ref for ref in request.stores if ref not in found], invalid

    def _statutes(self, request: SubjectRequest) -> frozenset[str]:
        """The policy's statutes: the only free text a store's answer may carry into status."""
        raw = self.read.get("PrivacyPolicy", None, request.policy)
        try:
            policy = parse_policy(raw) if raw is not None else None
        except ModelError:
            return frozenset()
        if policy is None:
            return frozenset()
        return frozenset(c.statutory.statute for c in policy.categories if c.statutory)

    def _runs(
        self,
        request: SubjectRequest,
        store: Store,
        rendered: Mapping[str, Any],
        recorded: Render | None,
    ) -> tuple[list[JobRun], list[str], set[str]]:
        """The request's runs for `store`, the names of what claims to be one and is not, and
        the names of its runs that ran with the other spec.dryRun (`as_asked`): not counted.

        A Job with the request's labels counts only if it runs exactly `rendered` (the Job
        this pass renders for the request and store) or the render status records the
        operator made for the store (`recorded`: a Job made before an edit of the store or
        an operator upgrade), and, in the request's namespace, has the request as its
        controller; its record is read only from its pods that run that render's pod
        template, controlled by it, and only from the request container
        (checks/purge_runs.py `runs_ours`, checks/subjects.py `run_render`). Labels,
        annotations and owner references anyone may write.
        """
        current = expected_runs(rendered["spec"])

        def runs_of(job: Mapping[str, Any]) -> str | None:
            # Either render counts: the current one stands for both in `partition_runs`.
            runs = job_runs(job)
            return current[0] if run_render(runs, current, recorded) is not None else runs

        jobs = [
            job
            for job in self.read.list("Job", store.namespace, request_selector(request))
            if (job["metadata"].get("annotations") or {}).get(STORE_REF_ANNOTATION)
            == f"{store.namespace}/{store.name}"
        ]
        counted, others = partition_runs(
            jobs, _job_owner(request, store), request.uid, current[0], runs_of,
            controller=True, claims=lambda _job: True,
        )  # fmt: skip
        changed = {str(job["metadata"]["name"]) for job in counted if not as_asked(job, request)}
        runs = []
        for job in counted:
            name = str(job["metadata"]["name"])
            record = None
            if name in changed:
                continue
            if finished(job):
                render = run_render(job_runs(job), current, recorded)
                assert render is not None  # counted
                pods, other_pods = partition_runs(
                    self.read.list("Pod", store.namespace, f"{JOB_NAME_LABEL}={name}"),
                    "Job", str(job["metadata"].get("uid", "")), render[1], pod_runs,
                    controller=True,
                )  # fmt: skip
                others += other_pods
                record = result_record(pods, CONTAINER_NAME)
            runs.append(JobRun(name, job, record))
        return runs, others, changed

    def _counts(
        self,
        job: Mapping[str, Any],
        request: SubjectRequest,
        store: Store,
        rendered: Mapping[str, Any],
    ) -> bool:
        """Whether `job` is the request's run `rendered` (see `_runs`)."""
        expected, _ = expected_runs(rendered["spec"])
        owner = _job_owner(request, store)
        return runs_ours(job, owner, request.uid, job_runs(job), expected, controller=True)

    # Act.

    def _answer(
        self,
        request: SubjectRequest,
        store: Store,
        public_key: str | KeyUnusable | None,
        statutes: frozenset[str],
        answered: Mapping[tuple[str, str], Mapping[str, Any]],
        renders: Mapping[tuple[str, str], Render],
    ) -> tuple[StoreOutcome, dict[str, Any] | None]:
        """One store: its outcome, and the Job to create for it (`_create_run`, once its
        render is recorded: `_record_renders`), if one is to be.

        An answer the operator recorded in status stands (a later render, e.g. a new
        operator image, would not count that run again); otherwise a Job counts that runs
        the render of the request's current spec or the one status records for the store
        (`renders`), and it is created, never taken over. Either counts only when it ran
        with the request's spec.dryRun (`as_asked`); one under the current name that did
        not leaves the store Failed (DryRunChanged): it is not run again under that name.
        """
        recorded = self._recorded(request, store.namespace, store.name, answered)
        if recorded is not None:
            self._revoke_job_access(request, store)
        if isinstance(public_key, KeyLost):  # what it answered cannot be opened
            return public_key.of(answered)(store.namespace, store.name), None
        if recorded is not None:
            return recorded, None
        if callable(public_key):  # an access request's key, not used
            return public_key(store), None
        try:
            job = render_job(request, store, self.settings.render, public_key)
            runs, others, changed = self._runs(
                request, store, job, renders.get((store.namespace, store.name))
            )
            account = self.read.get("ServiceAccount", store.namespace, purge_account(store))
            outcome = store_outcome(
                store.namespace,
                store.name,
                job_name(request, store),
                runs,
                account is not None,
                statutes,
            )
            outcome = not_counted(outcome, others)
            if outcome.phase == "Succeeded":
                self._revoke_job_access(request, store)
                return outcome, None
            if not outcome.create_job:
                return outcome, None
            if job["metadata"]["name"] in changed:  # never run again under its name
                return dry_run_changed(store.namespace, store.name, job["metadata"]["name"],
                                       request.dry_run), None  # fmt: skip
            # Not among the runs: whatever has the name is not the Job rendered for it.
            if self.read.get("Job", store.namespace, job["metadata"]["name"]) is not None:
                raise NotOurs(f"Job {store.namespace}/{job['metadata']['name']}", NOT_THE_RENDER)
            return outcome, job
        except NotOurs as error:
            return _not_ours(store, error), None

    def _recorded(
        self,
        request: SubjectRequest,
        namespace: str,
        name: str,
        answered: Mapping[tuple[str, str], Mapping[str, Any]],
    ) -> StoreOutcome | None:
        """The answer status records for the store `namespace`/`name`, when it stands
        (checks/subjects.py `recorded_answer`, and the Job ran with the request's dry-run
        flag: `as_asked`): a store edited since it answered, even into a spec that does not
        parse, keeps its answer."""
        entry = answered.get((namespace, name))
        named = entry.get("jobName") if entry else None
        job = self.read.get("Job", namespace, named) if isinstance(named, str) else None
        return recorded_answer(
            entry,
            job if job is not None and as_asked(job, request) else None,
            REQUEST_KIND if namespace == request.namespace else None,
            request_labels(request),
            request.uid,
        )

    def _record_renders(
        self,
        raw: Mapping[str, Any],
        renders: Mapping[tuple[str, str], Render],
        creating: Sequence[tuple[Store, Mapping[str, Any]]],
        latest: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any] | None:
        """Record in status.runs the render of each Job about to be created, before it is:
        a Job counts only by a render the operator made (`_runs`), and one the operator
        stopped before creating leaves a record and no Job, recorded again here when the
        render has changed since. No write when status has them all; the API's answer when
        written, else `latest` (the answer of this pass's earlier write, if any)."""
        wanted = dict(renders)
        for store, job in creating:
            wanted[(store.namespace, store.name)] = expected_runs(job["spec"])
        if wanted == renders:
            return latest
        # On the request read alone (its uid): one recreated under its name refuses it.
        answer = self._write(raw, {"runs": renders_status(wanted)}, self.settings.clock(), latest)
        if self.caches is not None:  # the next pass reads the record there
            self.caches.store_written(answer)
        return answer

    def _create_run(
        self,
        request: SubjectRequest,
        store: Store,
        job: dict[str, Any],
        outcome: StoreOutcome,
    ) -> StoreOutcome:
        """Create the store's Job `job` (its render recorded), with its access; `outcome`, or
        ChildNotOurs when an object it would use is not the request's."""
        try:
            self._job_access(request, store)
            name = f"Job {store.namespace}/{job['metadata']['name']}"
            try:
                created = self.kube.create(job)
                if self.caches is not None:  # the finalizer reads its runs there
                    self.caches.store_written(created)
            except KubeError as error:
                if error.status != 409:
                    raise
                # Made since the read: by an earlier pass of ours, or by someone else.
                # Listed fresh by the request's labels (the operator may list Jobs, not
                # get them): a Job of the name without them is not the request's either.
                made = next(
                    (
                        j
                        for j in self.kube.list("Job", store.namespace, request_selector(request))
                        if j["metadata"].get("name") == job["metadata"]["name"]
                    ),
                    None,
                )
                if made is None or not self._counts(made, request, store, job):
                    raise NotOurs(name, NOT_THE_RENDER) from None
            return outcome
        except NotOurs as error:
            return _not_ours(store, error)

    def _create_ours(
        self, obj: Mapping[str, Any], request: SubjectRequest, *, metadata_only: bool = False
    ) -> Mapping[str, Any]:
        """Create `obj` (POST: a forced apply would take over an object of its name); what
        is in place then. A 409 is an object the read did not show: made by an earlier pass
        whose answer the cache lacks, or by someone else. It is read and judged (NotOurs);
        gone again, the error stands and the next pass looks again. `metadata_only`: that
        read is of its metadata alone (a Secret whose data the caller does not use), and
        so is what is returned then."""
        meta = obj["metadata"]
        try:
            created = self.kube.create(obj)
            if self.caches is not None:  # this pass's reads (the readers' grant) see it
                self.caches.store_written(created)
            return created
        except KubeError as error:
            if error.status != 409:
                raise
            read = self.kube.get_metadata if metadata_only else self.kube.get
            existing = read(obj["kind"], meta["namespace"], meta["name"])
            if existing is None:
                raise
        if not ours(existing, request):
            raise NotOurs(f"{obj['kind']} {meta['namespace']}/{meta['name']}")
        return existing

    def _apply_ours(
        self,
        obj: Mapping[str, Any] | None,
        request: SubjectRequest,
        read: Kube | Caches | None = None,
    ) -> None:
        """Create `obj`, or apply it where the request's own differs; an object of that name
        that is not the request's is neither applied over nor used (NotOurs).

        The apply is on the resourceVersion judged the request's: an object changed since
        the read (deleted and planted again, the read not there yet) is refused with a 409
        and judged once more on a read of the API (`read`: what this judgment reads; None,
        the caches)."""
        if obj is None:
            return
        meta = obj["metadata"]
        existing: Mapping[str, Any] | None = (read or self.read).get(
            obj["kind"], meta["namespace"], meta["name"]
        )
        if existing is None:
            existing = self._create_ours(obj, request)
        elif not ours(existing, request):
            raise NotOurs(f"{obj['kind']} {meta['namespace']}/{meta['name']}")
        if needs_apply(obj, existing):
            try:
                self.kube.apply(obj, existing["metadata"].get("resourceVersion"))
            except KubeError as error:
                if error.status != 409 or read is not None:
                    raise
                self._apply_ours(obj, request, self.kube)

    def _job_access(self, request: SubjectRequest, store: Store) -> None:
        """What the store's Job needs in the request's namespace: its Role and RoleBinding
        (its export Secret, access, made and proven the request's before: `_make_exports`)."""
        role = render_job_role(request, store)
        if role is None:
            return
        self._apply_ours(role, request)
        self._apply_ours(render_job_binding(request, store), request)

    def _make_exports(
        self,
        raw: Mapping[str, Any],
        request: SubjectRequest,
        stores: Sequence[Store],
        latest: Mapping[str, Any] | None,
    ) -> tuple[
        Mapping[str, Any] | None, dict[str, dict[str, str]], dict[tuple[str, str], StoreOutcome]
    ]:
        """The export Secret of each store whose Job is to be created (`stores`), made empty
        when there is none, and proven the request's (checks/subjects.py `export_verdict`):
        the hash of a new token recorded in status.exports before the create, the Secret's
        uid after it. Its metadata alone is read: it may hold the person's rows from an
        earlier run. Returns the request as the last status write answered, the records,
        and the outcome (ChildNotOurs) of each store whose export Secret is not the
        request's: its Job is not created, the Secret never granted nor written."""
        records = export_records((latest or raw).get("status"))
        refused: dict[tuple[str, str], StoreOutcome] = {}
        making: dict[Store, str] = {}
        changed = False
        for store in stores:
            name = export_secret_name(request, store)
            found = (self.caches or self.kube).get_metadata("Secret", request.namespace, name)
            if found is None and name in records and self.caches is not None:
                # A new token replaces the record: the Secret it proves is read from the
                # API first, not taken to be absent on a cache that may not show it yet.
                found = self.kube.get_metadata("Secret", request.namespace, name)
            verdict = export_verdict(found, records.get(name))
            if verdict == "adopt" and found is not None:
                records[name] = {**records[name], "uid": str(found["metadata"]["uid"])}
                changed = True
            elif verdict == "make":
                making[store] = secrets.token_urlsafe(32)
                records[name] = {"proof": export_proof(making[store])}
                changed = True
            elif verdict == "not-ours":
                refused[store.namespace, store.name] = _not_ours(
                    store, NotOurs(f"Secret {request.namespace}/{name}", NOT_THE_EXPORT)
                )
        if changed:  # intent first: the tokens' proofs before the Secrets are created
            latest = self._record_exports(raw, records, latest)
        if not making:
            return latest, records, refused
        for store, token in making.items():
            name = export_secret_name(request, store)
            try:
                made = self._create_ours(
                    render_export_secret(request, store, token), request, metadata_only=True
                )
            except NotOurs:
                made = None
            if made is not None and export_verdict(made, records[name]) == "adopt":
                records[name] = {**records[name], "uid": str(made["metadata"]["uid"])}
            else:
                refused[store.namespace, store.name] = _not_ours(
                    store, NotOurs(f"Secret {request.namespace}/{name}", NOT_THE_EXPORT)
                )
        return self._record_exports(raw, records, latest), records, refused

    def _record_exports(
        self,
        raw: Mapping[str, Any],
        records: Mapping[str, Mapping[str, str]],
        latest: Mapping[str, Any] | None,
    ) -> Mapping[str, Any]:
        """Write `records` as status.exports of the request `raw`; the API's answer."""
        answer = self._write(
            raw, {EXPORTS: exports_status(records)}, self.settings.clock(), latest
        )
        if self.caches is not None:  # the next pass reads the record there
            self.caches.store_written(answer)
        return answer

    def _revoke_job_access(self, request: SubjectRequest, store: Store) -> None:
        """A store that answered needs no access to the identifier or its export any more."""
        name = job_access_name(request, store)
        for kind in ("RoleBinding", "Role"):
            existing = self.read.get(kind, request.namespace, name)
            if existing is not None and ours(existing, request):
                delete_as_read(self.kube, self.caches, kind, request.namespace, existing)

    def _public_key(
        self, raw: Mapping[str, Any], request: SubjectRequest
    ) -> tuple[str | KeyUnusable, Mapping[str, Any] | None]:
        """The public key the request's Jobs seal to, or each store's outcome instead; and
        the request as this pass's status write answered, when it wrote one.

        The key Secret is used only when it has the request's controller owner reference
        and its public key (the annotation, read from its metadata) is the one whose
        fingerprint status.keyFingerprint records: the fingerprint is recorded before the
        Secret is created (`_make_key`), and anyone who may create or patch Secrets can
        write the owner reference and the annotation (checks/subjects.py `key_verdict`).
        With runs recorded (`stores_run`: they were given the key) a Secret gone, not the
        request's or holding another key is lost (`KeyLost`): no new pair is made, as the
        request would hold exports sealed to two keys. Before any run, one not proven the
        request's is not used (ChildNotOurs). A request of an earlier version, which
        recorded no fingerprint, with runs: the key of the Secret it made is recorded, once
        (`_key_of`: read whole once when it has no annotation). A failed read raises
        KubeError: Unknown, the pass is retried."""
        name = key_secret_name(request)
        old = raw.get("status") or {}
        ran = stores_run(old)
        recorded = old.get(KEY_FINGERPRINT)
        found = self._key_metadata(request)
        if found is None and not ran and recorded is not None and self.caches is not None:
            # A new pair replaces the record: the Secret it proves is read from the API
            # first, not taken to be absent on a cache that may not show it yet.
            found = self.kube.get_metadata("Secret", request.namespace, name)
        key = public_pem(_public_key_text(found)) if found is not None else None
        verdict = key_verdict(
            None if found is None else ours(found, request),
            public_key_fingerprint(key) if key is not None else None,
            recorded,
            bool(ran),
        )
        if verdict == "lost":
            return KeyLost(request, name, frozenset(ran)), None
        if verdict == "use" and key is not None:
            return key, None
        if verdict == "adopt" and found is not None:
            adopted = self._key_of(request, found)
            if not isinstance(adopted, str):
                return adopted, None
            return adopted, self._record_fingerprint(raw, public_key_fingerprint(adopted))
        if verdict == "make":
            return self._make_key(raw, request, recorded)
        if found is not None and ours(found, request):
            return _key_not_ours(name, NOT_THE_KEY), None
        return _key_not_ours(name), None

    def _make_key(
        self, raw: Mapping[str, Any], request: SubjectRequest, previous: Any
    ) -> tuple[str | KeyUnusable, Mapping[str, Any] | None]:
        """Make the request's key pair: its public key's fingerprint recorded in status
        first, then its key Secret created. A Secret of the name made meanwhile (a 409) is
        the request's only with the request's owner reference and the key just recorded, or
        the one recorded before this pass (`previous`: an earlier pass's create whose answer
        was lost, recorded again); else ChildNotOurs, nothing sealed to it. Only the
        operator held the private key of a fingerprint it recorded."""
        name = key_secret_name(request)
        if self.settings.keypair is None:
            return _key_not_ours(name), None
        private_key, public_key = self.settings.keypair()
        fingerprint = public_key_fingerprint(public_key)
        latest = self._record_fingerprint(raw, fingerprint)
        try:
            made = self._create_ours(
                render_key_secret(request, private_key, public_key), request,
                metadata_only=True,
            )  # fmt: skip
        except NotOurs:
            return _key_not_ours(name), latest
        key = public_pem(_public_key_text(made))
        made_print = public_key_fingerprint(key) if key is not None else None
        if key is None or made_print is None:
            return _key_not_ours(name, NOT_THE_KEY), latest
        if made_print == fingerprint:
            return key, latest
        if previous is not None and made_print == previous:
            return key, self._record_fingerprint(raw, made_print, latest)
        return _key_not_ours(name, NOT_THE_KEY), latest

    def _record_fingerprint(
        self, raw: Mapping[str, Any], fingerprint: str, latest: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        """Write `fingerprint` as status.keyFingerprint of the request `raw` (`latest`: as
        this pass's earlier write answered); the API's answer. A CRD of an earlier version
        prunes the field: the key Secret could never be told from a planted one, so nothing
        is made or used (KeyFingerprintDropped)."""
        answer = self._write(raw, {KEY_FINGERPRINT: fingerprint}, self.settings.clock(), latest)
        if self.caches is not None:  # the next pass reads the record there
            self.caches.store_written(answer)
        if (answer.get("status") or {}).get(KEY_FINGERPRINT) != fingerprint:
            log.error(
                "not using a key Secret for subject request %s/%s: the installed "
                "DataSubjectRequest CRD dropped status.%s; apply the CRDs of this version",
                raw["metadata"].get("namespace"), raw["metadata"].get("name"), KEY_FINGERPRINT,
            )  # fmt: skip
            raise KeyFingerprintDropped(KEY_FINGERPRINT)
        return answer

    def _public_key_made(self, request: SubjectRequest, status: Any) -> str | None:
        """The public key of the request's key Secret, none made, for telling its runs (the
        request deleted): only the key whose fingerprint `status` (the request's) records,
        on a Secret with the request's owner reference; else None (its runs are still told
        by the names status records or the operator reserves for them)."""
        recorded = status.get(KEY_FINGERPRINT) if isinstance(status, Mapping) else None
        found = self._key_metadata(request)
        if recorded is None or found is None or not ours(found, request):
            return None
        key = public_pem(_public_key_text(found))
        return key if key is not None and public_key_fingerprint(key) == recorded else None

    def _key_metadata(self, request: SubjectRequest) -> Mapping[str, Any] | None:
        """The request's key Secret's metadata, never its private key: the Secrets'
        metadata-only cache while it is watched, else PartialObjectMetadata by name."""
        return (self.caches or self.kube).get_metadata(
            "Secret", request.namespace, key_secret_name(request)
        )

    def _key_of(self, request: SubjectRequest, found: Mapping[str, Any]) -> str | KeyUnusable:
        """The public key of the key Secret whose metadata is `found`: its annotation
        (PUBLIC_KEY_ANNOTATION). A key Secret made by an earlier version has none: it is
        read whole once and annotated (`_annotated`); later passes read its metadata alone.
        Else each store's outcome: ChildNotOurs when the Secret is not the request's (never
        used, never read whole, never written), KeySecretInvalid when its public key is not
        an X25519 key in PEM (never sealed to)."""
        name = key_secret_name(request)
        if not ours(found, request):
            return _key_not_ours(name)
        if _public_key_text(found) is None:
            found = self._annotated(request, name)
            if not ours(found, request):
                return _key_not_ours(name)  # replaced since its metadata was read
        key = public_pem(_public_key_text(found))
        if key is None:
            return lambda store: key_secret_invalid(store.namespace, store.name, name)
        return key

    def _annotated(self, request: SubjectRequest, name: str) -> Mapping[str, Any]:
        """The metadata of the request's key Secret `name`, made without the public key
        annotation (by an earlier version), once it has it: the Secret is read whole (this
        once), and its data's public key, when it is one, written as the annotation at the
        resourceVersion read (a 409: changed since, KubeError, the pass is retried). As read
        when it is not the request's, or its data's public key is not a key (no annotation:
        KeySecretInvalid). Gone since its metadata was read: KubeError (404), retried."""
        whole = self.kube.get("Secret", request.namespace, name)
        if whole is None:
            raise KubeError(404, "Not Found", "get Secret")
        read = {"metadata": whole["metadata"]}
        if not ours(whole, request) or _public_key_text(whole) is not None:
            return read  # replaced, or annotated, since the metadata was read
        public_key = public_pem(_decoded((whole.get("data") or {}).get(PUBLIC_KEY)))
        if public_key is None:
            return read
        patch = {"metadata": {"resourceVersion": whole["metadata"].get("resourceVersion"),
                              "annotations": {PUBLIC_KEY_ANNOTATION: public_key}}}  # fmt: skip
        answer = self.kube.merge_patch("Secret", request.namespace, name, patch)
        if self.caches is not None:  # the next pass reads the annotation there
            self.caches.store_written(answer)
        return {"metadata": answer["metadata"]}

    def _readers(
        self,
        request: SubjectRequest,
        stores: Sequence[Store],
        key_used: bool,
        exports: Mapping[str, Mapping[str, str]],
    ) -> tuple[str | None, list[str], list[str]]:
        """Grant spec.readers the key and the exports that are the request's own; the
        readers' Role or RoleBinding (kind and name) that is not the request's, when one is
        (then they are not granted), the other RoleBindings that refer to the readers' Role
        (`foreign_readers_bindings`: while there is one the Role grants nothing, and is
        deleted), and the names of the request's own, which status names.

        The Role never exists granting nothing (`render_readers_role`): Kubernetes lets
        anyone bind such a Role, and it would be filled later under that binding. The
        RoleBindings are read before the Role is written; one made between the read and the
        write needed `get` on every Secret the Role named then (Kubernetes' escalation
        check), and its next pass withdraws the Role.

        A Secret is granted only when this pass's read finds it with the request's controller
        reference (`ours`): a cut and hashed name of another request's Secret can be this
        request's plain one (render/names.py `child_name`), and granting by name would give
        this request's readers, chosen by its author, the other person's key or export. One
        not made yet is granted on the pass that finds it made; one replaced by someone
        else's is taken out of the Role on the next pass: queued by the Secret's watch event
        (`keys_for_secret`), or, where Secrets are not watched, RECHECK after the last.

        The read is of metadata alone (the Secrets hold the person's private key and rows):
        the Secrets' metadata-only cache while it is watched, else a PartialObjectMetadata
        GET by name. A read that fails, or a cache not synced, is Unknown: KubeError stops
        the pass before the Role or status is written, so nothing granted is taken away on
        it and the pass is retried."""
        read = self.caches or self.kube
        key_secret = key_secret_name(request)
        own = []
        for name in reader_secrets(request, stores):
            if name == key_secret and not key_used:
                continue
            found = read.get_metadata("Secret", request.namespace, name)
            if name == key_secret:
                if ours(found, request):  # and its key the one recorded: `key_used`
                    own.append(name)
            elif ours(found, request) and export_verdict(found, exports.get(name)) == "ours":
                own.append(name)
        role = render_readers_role(request, own)
        name = readers_name(request.name)
        foreign = foreign_readers_bindings(
            self.read.list("RoleBinding", request.namespace), name, request.uid
        )
        try:
            if name in foreign:  # the readers' binding of its name, someone else's
                self._withdraw_readers_role(request)
                raise NotOurs(f"RoleBinding {request.namespace}/{name}")
            if role is None or foreign:
                self._withdraw_readers_role(request)
            else:
                self._apply_ours(role, request)
                binding = render_readers_binding(request)
                if binding is not None:
                    self._apply_ours(binding, request)
        except NotOurs as error:
            return str(error.args[0]), foreign, own
        return None, foreign, own

    def _withdraw_readers_role(self, request: SubjectRequest) -> None:
        """Delete the readers' Role, the request's own, when it is to grant nothing: a Role
        with no rules anyone may bind (`render_readers_role`). Someone else's of its name is
        left as it is (NotOurs). The request's own binding is left: bound to no Role, it
        grants nothing, and a binding to a Role that does not exist Kubernetes refuses to
        anyone who does not hold `bind`."""
        name = readers_name(request.name)
        existing = self.read.get("Role", request.namespace, name)
        if existing is None:
            return
        if not ours(existing, request):
            raise NotOurs(f"Role {request.namespace}/{name}")
        delete_as_read(self.kube, self.caches, "Role", request.namespace, existing)

    def _secrets_watched(self, namespace: str) -> bool:
        """Whether the events of the Secrets of `namespace` reach `keys_for_secret`: they are
        cached (not forbidden to list), and so are the requests it finds them by."""
        return (
            self.caches is not None
            and self.caches.watching("Secret", namespace)
            and self.caches.watching(REQUEST_KIND, namespace)
        )

    def _delete_jobs(self, raw: Mapping[str, Any], request: SubjectRequest | None) -> None:
        """Delete the request's runs (and, with them, their pods) in every namespace it has
        or may have some: those the list by its uid label finds that

        - have a name status records as its run, or the name the operator reserves for its
          run in the store the Job names (`run_name`, with the request's acknowledge token
          or the one the Job runs with), and in the request's namespace its controller
          reference (checks/subjects.py `withdrawn_run`): the operator's runs whatever they
          run, even rendered by an earlier image or for an earlier store spec, of a store
          since deleted, or with the key Secret already gone (foreground deletion);
        - or run what the operator renders for the request now (`_is_run`).

        The reserved name covers a run created before its status record (the operator
        stopped in between). A Job with the request's labels under another name that runs
        something else is someone else's, and stays. `request` None: the spec no longer
        parses; the recorded and reserved names still decide."""
        meta = raw["metadata"]
        uid = str(meta.get("uid") or "")
        if not uid:
            return
        recorded = recorded_jobs(raw.get("status"))
        namespaces = {namespace for namespace, _ in recorded}
        stores: dict[str, Store] = {}
        public_key = None
        if request is not None:  # else no store is in scope: none is read
            every, invalid = self._all_stores()
            stores = {f"{store.namespace}/{store.name}": store for store in every}
            namespaces |= {ref.namespace for ref in request.stores}
            namespaces |= {s.namespace for s in every if request.in_scope(s)}
            # A store that no longer parses may have a run of the request's (its reserved
            # name, below), made before it broke.
            namespaces |= {scope.namespace for scope, _ in invalid if request.in_scope(scope)}
            if request.type == "access":
                public_key = self._public_key_made(request, raw.get("status"))
        for namespace in sorted(namespaces):
            owner = REQUEST_KIND if namespace == meta.get("namespace") else None
            for job in self._labelled_jobs(namespace, uid):
                annotations = job["metadata"].get("annotations") or {}
                ref = str(annotations.get(STORE_REF_ANNOTATION) or "")
                store_namespace, _, store_name = ref.partition("/")
                names = {name for ns, name in recorded if ns == namespace}
                if store_namespace == namespace and store_name:
                    tokens = {acknowledged(job)}
                    if request is not None:
                        tokens.add(request.acknowledge_token)
                    names |= {run_name(uid, token, store_name) for token in tokens}
                of = stores.get(ref)
                if withdrawn_run(job, names, owner, uid_labels(uid), uid) or (
                    request is not None
                    and of is not None
                    and of.namespace == namespace
                    and self._is_run(job, request, of, public_key)
                ):
                    # At the version judged: a Job made again under the name since the
                    # read (someone else's) is refused (409), and the next pass reads it.
                    delete_as_read(self.kube, self.caches, "Job", namespace, job, "Background")

    def _labelled_jobs(self, namespace: str, uid: str) -> Sequence[Mapping[str, Any]]:
        """The Jobs of `namespace` with the labels of the request of `uid` (`uid_selector`):
        from the Job cache while it is synced there, else a LIST. The cache selects the
        operator's label, which `uid_selector` includes, so it holds every Job the LIST would
        find; the operator's own creates go into it at once (`_created`), before their watch
        events."""
        selector = uid_selector(uid)
        if self.caches is not None and self.caches.watching("Job", namespace):
            try:
                return list(self.caches.list("Job", namespace, selector))
            except KubeError:
                pass  # not synced (never listed, or failing): the API answers
        return self.kube.list("Job", namespace, selector)

    def _is_run(
        self,
        job: Mapping[str, Any],
        request: SubjectRequest,
        store: Store,
        public_key: str | None,
    ) -> bool:
        """Whether `job` is one of the request's runs for `store` (`_counts`), rendered with
        the request's acknowledge token or with the one it ran with."""
        if request.type == "access" and public_key is None:
            return False  # no key of the request's: no Job of its can be told apart
        for token in {request.acknowledge_token, acknowledged(job)}:
            asked = dataclasses.replace(request, acknowledge_token=token)
            rendered = render_job(asked, store, self.settings.render, public_key)
            if self._counts(job, asked, store, rendered):
                return True
        return False

    def _set_finalizer(self, raw: Mapping[str, Any], *, present: bool) -> None:
        meta = raw["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if (FINALIZER in finalizers) == present:
            return
        wanted = [*finalizers, FINALIZER] if present else [f for f in finalizers if f != FINALIZER]
        self.kube.merge_patch(
            REQUEST_KIND,
            meta["namespace"],
            meta["name"],
            {"metadata": {"finalizers": wanted, "resourceVersion": meta.get("resourceVersion")}},
        )

    def _write_status(
        self,
        raw: Mapping[str, Any],
        phase: str,
        conditions: list[Condition],
        extra: Mapping[str, Any],
        now: datetime,
        generation: int,
        latest: Mapping[str, Any] | None = None,
    ) -> None:
        """Write the request's status where it differs; `latest`: the request as this pass's
        own status write answered (`_record_renders`), newer than `raw`."""
        old: Mapping[str, Any] = (latest if latest is not None else raw).get("status") or {}
        old_conditions = old.get("conditions") or []
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "phase": phase,
            "conditions": merge_conditions(old_conditions, conditions, now, generation),
            **extra,
        }
        if all(old.get(k) == v for k, v in status.items()):
            return
        # On the request read alone: one recreated under its name refuses it (its uid), and
        # the pass stops (ObjectGone).
        self._write(raw, _merge_patch(old, status), now, latest)
        for condition, before in transitions(old_conditions, conditions):
            self._event(raw, condition, before, now)

    def _write(
        self,
        raw: Mapping[str, Any],
        patch: Mapping[str, Any],
        now: datetime,
        latest: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`write_status` of the request `raw`; a write the server refuses for what it says
        (controller/refused.py) leaves no condition of it True, and still raises."""
        try:
            return write_status(self.kube, REQUEST_KIND, raw, patch, latest)
        except KubeError as error:
            if refused(error):  # a Complete=True it shows is not vouched for
                marked = mark_refused(self.kube, REQUEST_KIND, raw, error, format_time(now))
                if marked is not None and self.caches is not None:
                    self.caches.store_written(marked[0])
            raise  # the queue retries with backoff

    def _event(
        self, raw: Mapping[str, Any], condition: Condition, before: str | None, now: datetime
    ) -> None:
        body = events.event(
            raw, REQUEST_KIND, action="Reconcile", reason=condition.reason,
            event_type=event_type(condition), note=events.transition_note(condition, before),
            now=now, instance=self.settings.reporting_instance,
        )  # fmt: skip
        events.post(self.kube, body)

    def _evidence(
        self,
        request: SubjectRequest,
        phase: str,
        result: Mapping[str, Any],
        at: datetime,
        due_at: datetime,
    ) -> None:
        sink = self.settings.evidence
        if sink is None:
            return
        payload = {
            "requestId": request.uid,
            "requestType": request.type,
            "outcome": answer_outcome(phase, result),  # type: ignore[arg-type]
            "receivedAt": request.received_at,
            "answeredAt": at,
            "deadline": due_at,
            "dryRun": request.dry_run,
            "stores": int(result.get("stores") or 0),
            "recordsAffected": sum(
                int(v)
                for k, v in result.items()
                if k in ("rowsExported", "rowsDeleted") and isinstance(v, int)
            ),
            "rowsKept": int(result.get("rowsKept") or 0),
        }
        # By its uid, never its name: a name is chosen by whoever asked and may name the
        # person, and the evidence log keeps it for years, never edited.
        subject = f"{request.namespace}/{request.uid}"
        failed = append_record(sink, "request.answered", subject, payload)
        if failed is not None:  # the pass fails and is retried
            raise EvidenceUnwritten(f"request.answered ({failed})")


class EvidenceUnwritten(Exception):
    """The evidence record a status change waits for could not be appended."""


class KeyFingerprintDropped(Exception):
    """The installed CRD pruned status.keyFingerprint: no key Secret is made or used."""


def _not_ours(store: Store, error: NotOurs) -> StoreOutcome:
    """The store's outcome when an object it would use exists and is not the request's."""
    return StoreOutcome(
        store.namespace,
        store.name,
        "Failed",
        "ChildNotOurs",
        f"{error.args[0]} exists and "
        + (
            error.args[1]
            if len(error.args) > 1
            else "was not made by the operator for this request"
        )
        + "; it is not used. Delete it or rename the request.",
    )


def _job_owner(request: SubjectRequest, store: Store) -> str | None:
    """The owner a request's Job in `store`'s namespace has: the request in its own
    namespace, none in another (owner references do not cross namespaces)."""
    return REQUEST_KIND if store.namespace == request.namespace else None


def _merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """`new` as a merge patch over `old`: nested keys `old` has and `new` lacks become null.

    Top-level status fields are kept when not written (a request blocked after it ran keeps
    what its stores answered); nested objects (`result`) are replaced exactly.
    """

    def nested(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {k: None for k in before if k not in after}
        for key, value in after.items():
            prior = before.get(key)
            if isinstance(value, Mapping) and isinstance(prior, Mapping):
                out[key] = nested(prior, value)
            else:
                out[key] = value
        return out

    patch = nested(old, new)
    return {k: v for k, v in patch.items() if k in new}


def _key_not_ours(name: str, *why: str) -> KeyUnusable:
    """Each store's outcome when the key Secret `name` is not the request's (`why`: how it
    is not, when not the default)."""
    return lambda store: _not_ours(store, NotOurs(f"Secret {name}", *why))


@dataclass(frozen=True)
class KeyLost:
    """An access request's key Secret gone after its runs were given its public key
    (`ran`: the stores status records a run for): each store's outcome, answered or not, is
    KeySecretLost (checks/subjects.py `key_secret_lost`)."""

    request: SubjectRequest
    secret: str
    ran: frozenset[tuple[str, str]]

    def __call__(self, store: Store | StoreRef, job_name: str | None = None) -> StoreOutcome:
        """`store`'s outcome; `job_name`: the run status names for it, kept there."""
        return key_secret_lost(
            store.namespace,
            store.name,
            self.secret,
            export_secret_name(self.request, store),
            (store.namespace, store.name) in self.ran,
            job_name,
        )

    def of(
        self, answered: Mapping[tuple[str, str], Mapping[str, Any]]
    ) -> Callable[[str, str], StoreOutcome]:
        """The outcome of the store of a namespace and name, whatever its spec now is (one
        that no longer parses, or is gone: checks/subjects.py `lost_for_every_run`), the
        run `answered` (status.stores as read) names for it kept."""

        def outcome(namespace: str, name: str) -> StoreOutcome:
            named = (answered.get((namespace, name)) or {}).get("jobName")
            return self(StoreRef(namespace, name), named if isinstance(named, str) and named
                        else None)  # fmt: skip

        return outcome


def _public_key_text(secret: Mapping[str, Any]) -> Any:
    """The public key annotation of a key Secret, as it is (None: it has none)."""
    annotations = (secret.get("metadata") or {}).get("annotations")
    return annotations.get(PUBLIC_KEY_ANNOTATION) if isinstance(annotations, Mapping) else None


def _decoded(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
