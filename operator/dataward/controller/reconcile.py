"""One level-triggered reconcile of a store: observe, decide (pure), act only on differences.

Create, update, resume, policy changes, child drift and the periodic resync all end here;
nothing depends on the difference between "created" and "updated".

`observe` reads everything a store's verdict depends on, once, into a `StoreSnapshot` whose
every part is either what was read or the error that kept it from being read. The children
are rendered (pure), applied where they differ (the thin act), and the conditions are judged
(pure, `judge`) from the snapshot and what the act left in place. A part that could not be
read makes the conditions that depend on it Unknown: a failed read is never "nothing there".
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from functools import cached_property, partial
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from dataward.checks.access import (
    DeclaredBesides,
    SecretReaders,
    access_restricted,
    by_store_label,
    rbac_as_rendered,
    store_label,
)
from dataward.checks.access_records import AccessCanary, access_recorded
from dataward.checks.conditions import (
    NAMESPACE_NOT_SERVED,
    Condition,
    child_held_different,
    comparable_status,
    merge_conditions,
    ready,
    transitions,
    with_children_not_ours,
    with_children_unreadable,
)
from dataward.checks.drift import canonical_text, needs_apply, replacement, same_part
from dataward.checks.encryption import (
    CANCEL_REASONS,
    NOT_EXPIRED,
    SHREDDING_ANNOTATION,
    ShreddingBlocker,
    behind_problem,
    clock_skew_problem,
    controls_not_in_force,
    encryption_key_ready,
    expired_shreddings,
    is_ours,
    key_shredding,
    keys_to_record,
    large_shredding,
    listed_not_expired,
    owed_problem,
    ring_changes,
    shredding_token,
    standing_withdrawals,
    unreadable_problem,
    verdicts_behind,
)
from dataward.checks.network import (
    calico_escape_key,
    calico_policy_namespace,
    calico_reaches_beyond,
    may_select,
    network_isolated,
    unnamed_keys,
    workload_labels,
)
from dataward.checks.observed import (
    KeyRecord,
    KeyRingRecord,
    LastPurge,
    Listing,
    ObservedBinding,
    ObservedKeyRing,
    ObservedObject,
    ObservedRole,
    OwedWithdrawal,
    Presence,
    RbacSnapshot,
    ShreddedRecord,
    TrustedSubjects,
    Unreadable,
)
from dataward.checks.policy import policy_compliant
from dataward.checks.purge import naming_runs_not_counted, purge_scheduled, purge_succeeded
from dataward.checks.purge_runs import (
    JOB_NAME_LABEL,
    Render,
    StuckRun,
    expected_runs,
    finished,
    job_runs,
    missed_run,
    newest_finished,
    owned_by,
    partition_runs,
    pod_runs,
    purge_renders_status,
    recorded_purge_renders,
    renders_to_record,
    run_render,
    run_status,
    stuck_at,
    stuck_run,
    unseen_run,
)
from dataward.controller import events
from dataward.controller.cache import Caches, delete_as_read, share_render
from dataward.controller.clock import Clock, SkewReference, server_reference, system_clock
from dataward.controller.impact import not_run_status, observe_preview, with_previews
from dataward.controller.incremental import (
    DeclaredState,
    RbacKey,
    RbacState,
    declare,
    update_rbac,
)
from dataward.controller.kube import (
    FIELD_MANAGER,
    Kube,
    KubeError,
    ObjectGone,
    outcome_unknown,
    write_status,
)
from dataward.controller.metrics import (
    RECONCILES,
    TIME_TO_READY,
    forget_store,
    record_key_age,
    record_status,
)
from dataward.controller.refused import mark_refused, refused
from dataward.controller.staleness import (
    NOT_AS_COPIED,
    unserved_message,
    unverified_patch,
    unverified_transitions,
)
from dataward.evidence.payloads import (
    EvidenceSink,
    append_record,
    fenced,
    purge_run_payload,
)
from dataward.keys.buckets import (
    BucketError,
    Lifetime,
    bucket_expired,
    expires_at,
    plan_buckets,
)
from dataward.keys.ring import (
    KeyRing,
    add_bucket_keys,
    append_only_violations,
    format_time,
    generate_ring,
    rotate,
    rotation_decision,
    serialise,
    shred_buckets,
)
from dataward.model.compliance import (
    Finding,
    compliance_findings,
    effective_key_rotation,
    effective_retention,
)
from dataward.model.durations import Duration
from dataward.model.errors import ModelError
from dataward.model.policy import DEFAULT_KEY_ROTATION, Category, Policy, parse_policy
from dataward.model.revisions import (
    IMPACT_LIMIT,
    LARGE_CUT,
    NOT_RUN,
    SMALL,
    Pending,
    Revisions,
    SpecDigests,
    digest,
    format_instant,
    impact,
    in_force_known,
    parse_in_force,
    policy_revisions,
    preview_state,
)
from dataward.model.store import Store, parse_store
from dataward.model.wallclock import parse_zone
from dataward.purge.plan import ACKNOWLEDGE_ANNOTATION, DEFAULT_MAX_CLOCK_SKEW
from dataward.render import (
    RenderSettings,
    label_value,
    names_for,
    render_access,
    render_children,
)
from dataward.render.key_ring import key_ring_secret, ring_owner_references
from dataward.render.labels import STORE_KIND, store_selector
from dataward.render.names import unshortened
from dataward.render.purge_job import CONTAINER_NAME, comparable_cronjob
from dataward.render.rbac import (
    credentials_secrets,
    store_secrets,
)

log = logging.getLogger("dataward.reconcile")

StoreKey = tuple[str, str]
KEY_RING_FINALIZER = "dataward.io/key-ring-grace-period"


@dataclass(frozen=True)
class ReconcileSettings:
    """What the operator's configuration decides for every store."""

    render: RenderSettings = field(default_factory=RenderSettings)
    # The operator's own identity reads Secrets by design; it is not a foreign reader.
    operator_service_account: tuple[str, str] | None = None
    # Whose access to Secrets is the platform's (the chart's trustedSubjects).
    trusted_subjects: TrustedSubjects = field(default_factory=TrustedSubjects)
    reporting_instance: str = "dataward"
    # deletionPolicy: Delete keeps the key ring this long after the store is deleted.
    key_ring_grace_seconds: float = 30 * 24 * 3600
    # Where evidence records go (dataward.evidence.EvidenceLog); None: no evidence database.
    evidence: EvidenceSink | None = field(default=None, compare=False)
    # What "now" is for every decision (dataward.controller.clock).
    clock: Clock = field(default=system_clock, compare=False)
    # The API server's time on the clock's scale (dataward.controller.clock): what times a
    # key's destruction, refused when it and `clock` differ by more than `max_clock_skew`.
    skew_reference: SkewReference = field(default=server_reference, compare=False)
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
    # The API server's audit log follower (controller.access_log); None: AccessRecorded is
    # not judged, since the operator cannot tell whether reads are recorded.
    access_records: AccessRecords | None = field(default=None, compare=False)


class AccessRecords(Protocol):
    """What the reconciler needs of the audit log follower: the canary."""

    path: Path
    grace: timedelta

    def note_read(self, namespace: str, secret: str, store: str) -> None:
        """The operator is about to read a Secret of the store by name (its key ring, a
        credentials Secret)."""
        ...

    def canary(self, namespace: str, secrets: list[str]) -> AccessCanary:
        """What is known of the audit records of the reads of the store's `secrets`."""
        ...


def _listing_error(error: KubeError) -> str:
    """Why a cached list could not be read, for a failed Listing (a cache's own reason; else
    the HTTP status)."""
    return str(error.reason) if error.status == 0 else f"HTTP {error.status}"


class Reconciler:
    """Reconciles stores through a Kube; between calls it keeps only a short-lived cache."""

    def __init__(
        self,
        kube: Kube,
        settings: ReconcileSettings,
        namespaces: tuple[str, ...] = (),
        caches: Caches | None = None,
    ) -> None:
        self.kube = kube
        # Where reads go: the watch-fed caches when the operator runs, else the API itself.
        self.caches = caches
        # Called with a policy's name when one of its stores becomes, or stops being, Ready.
        self.on_ready_change: Callable[[str], None] | None = None
        # Called with a policy's name when another revision of it comes into force.
        self.on_revision_change: Callable[[str], None] | None = None
        # (kind, namespace, name) -> (resourceVersion after our status write, the digest of
        # what we wrote: a second copy of every status was ~3 KiB per store). Dropped with
        # the object.
        self._last_status: dict[tuple[str, str | None, str], tuple[str, bytes]] = {}
        self._dropped: set[str] = set()  # status fields an outdated CRD prunes (logged once)
        # (namespace, store) -> (uid, generation) of the last wait of a shredding for the
        # store's verdicts on an edit to be recorded (`_first_wait`). Dropped with the store.
        self._waited: dict[tuple[str, str], tuple[str, int]] = {}
        # (namespace, store) -> uid of a deleted store whose ring a legal hold keeps past its
        # grace period, told by an Event once (`_finish_deletion`). Dropped with the store.
        self._deletion_held: dict[tuple[str, str], str] = {}
        # (namespace, store) -> {(kind, child): (its resourceVersion, the digest of its
        # render)} for each child an update left still different from its render (a mutating
        # admission webhook, a default drift.py does not fill in): that object is not
        # written again under that render (`_left_unconverged`), so a difference the
        # operator cannot undo costs no write at each resync. Dropped with the store.
        self._unconverged: dict[tuple[str, str], dict[tuple[str, str], tuple[str, bytes]]] = {}
        # (namespace, store) -> {(kind, child): its last repair (`Repair`)}: a child changed
        # back at once after each repair (another controller holding another value) is
        # repaired less and less often (`repair_held_until`), not at every watch event.
        # Dropped with the store.
        self._repairs: dict[tuple[str, str], dict[tuple[str, str], Repair]] = {}
        # How many Events each store may still have (a flapping condition: `events.take`).
        self._event_limiter = events.Limiter()
        self.read: Kube | Caches = caches if caches is not None else kube
        # Evidence goes out only while the API writes may (the Lease is held).
        self.settings = replace(
            settings, evidence=fenced(settings.evidence, getattr(kube, "may_write", None))
        )
        self.namespaces = namespaces
        trusted = settings.trusted_subjects
        if settings.operator_service_account:
            trusted = trusted.with_service_account(*settings.operator_service_account)
        self.trusted = trusted
        self._cache_lock = threading.Lock()
        # Sharded: namespace -> its stores not yet told that this shard no longer checks them,
        # since the namespace left the shard (`namespace_left`); each is told once.
        self._departed: dict[str, set[str]] = {}
        self._parse_memo: dict[
            tuple[str, str], tuple[tuple[object, object], bytes, Store | None]
        ] = {}
        self._ns_memo: dict[str, tuple[tuple[int, bool], NamespaceStores]] = {}
        # (namespace, store) -> (the digest drift compares its purge CronJob's job template
        # by, `expected_runs` of that template): what the store's purge runs run, walked once
        # per render, not at every pass (`_purge_render`). Dropped with the store.
        self._render_memo: dict[tuple[str, str], tuple[object, Render]] = {}
        self._ns_building: dict[str, threading.Lock] = {}  # per namespace (`_namespace`)
        # PrivacyPolicy name -> its cached object, parsed (`_policy_in_force`). Per policy.
        self._policy_memo: dict[str, PolicyMemo] = {}
        # The policies' spec digests, once per cached object (`SpecDigests`).
        self._spec_digests = SpecDigests()
        # Per namespace, updated per changed object (issue 11; controller/incremental.py).
        self._incremental_lock = threading.Lock()
        self._declared_memo: dict[str, DeclaredState] = {}
        self._rbac_states: dict[str, RbacState] = {}
        # (namespace, selector) -> whether a Calico NetworkPolicy there with that selector
        # may select another namespace's pods (`calico_reaches_beyond`): what the cache
        # holds, each decided once (`_calico_escaping`); and the caches' generations -> the
        # policies that do.
        self._calico_escapes: dict[tuple[str, str | None], bool] = {}
        self._calico_escaping_memo: tuple[tuple[tuple[int, bool], ...], Listing] | None = None

    # Lookups used by the event handlers.

    def _stores(self) -> list[dict[str, Any]]:
        if not self.namespaces or self.caches is not None:
            return self.read.list("PersonalDataStore")
        return [s for ns in self.namespaces for s in self.kube.list("PersonalDataStore", ns)]

    def owns(self, namespace: str) -> bool:
        """Whether this operator (shard) reconciles the stores of `namespace`."""
        return self.caches is None or self.caches.owns(namespace)

    def all_stores(self) -> list[StoreKey]:
        """Every store this operator (shard) serves."""
        return self._store_keys(self.owns)

    def shard_stores(self) -> list[StoreKey]:
        """Every store of the shard's namespaces, those still being listed (not yet `owns`')
        included: what a restart's first pass must judge."""
        return self._store_keys(self.caches.last_owned if self.caches is not None else None)

    def _store_keys(self, namespaces: Callable[[str], bool] | None) -> list[StoreKey]:
        """The keys of the cached stores whose namespace `namespaces` accepts (None: all)."""
        return [
            (s["metadata"]["namespace"], s["metadata"]["name"])
            for s in self._stores()
            if namespaces is None or namespaces(s["metadata"]["namespace"])
        ]

    def served_stores(self) -> list[Store]:
        """Every store this operator (shard) serves, parsed (those that parse)."""
        return [
            parsed
            for raw in self._stores()
            if self.owns(raw["metadata"]["namespace"])
            for parsed in [self._parsed(raw)]
            if parsed is not None
        ]

    def _stores_of(self, policy: str) -> list[Mapping[str, Any]]:
        """Every shard's stores whose spec.policy names `policy`, as cached."""
        return [s for s in self._stores() if (s.get("spec") or {}).get("policy") == policy]

    def stores_of_policy(self, policy: str, every_shard: bool = False) -> list[StoreKey]:
        """The stores whose spec.policy names `policy` (this shard's, or `every_shard`'s)."""
        return [
            (s["metadata"]["namespace"], s["metadata"]["name"])
            for s in self._stores()
            if (s.get("spec") or {}).get("policy") == policy
            and (every_shard or self.owns(s["metadata"]["namespace"]))
        ]

    def namespace_left(self, namespace: str) -> list[StoreKey]:
        """`namespace` is no longer this shard's (relabelled): its stores, which this shard
        no longer judges, to be queued once so that each condition this shard last left True
        is made Unknown (`_unserve`). Unsharded, a namespace is left only when deleted, its
        stores with it: they are queued as ever, and nothing is owed them."""
        if self.caches is None or not self.caches.sharded:
            return self.stores_in(namespace)
        names = {s["metadata"]["name"] for s in self.read.list("PersonalDataStore", namespace)}
        with self._cache_lock:
            self._departed[namespace] = names
        return [(namespace, name) for name in sorted(names)]

    def namespace_came(self, namespace: str) -> None:
        """`namespace` is this shard's (again): its stores are judged, nothing owed them."""
        with self._cache_lock:
            self._departed.pop(namespace, None)

    def _unserve(self, key: StoreKey) -> None:
        """Make Unknown each condition of a store whose namespace left this shard that is
        still True as this shard last saw it, once (`namespace_left`): no shard may serve the
        namespace now, and the last verdict must not stand unchecked. A status changed since
        (another shard's verdict) or a store made again under its name is left alone (the
        patch tests both). A failed patch raises: the queue retries."""
        namespace, name = key
        with self._cache_lock:
            owed = self._departed.get(namespace)
            if owed is None or name not in owed:
                return
            owed.discard(name)
        raw = self.read.get("PersonalDataStore", namespace, name)
        if raw is None:
            return
        meta = raw["metadata"]
        conditions = (raw.get("status") or {}).get("conditions") or []
        now = self.settings.clock()
        stamp = format_time(now)
        ops = unverified_patch(
            conditions, NAMESPACE_NOT_SERVED, partial(unserved_message, namespace, now), stamp,
            str(meta.get("uid") or "") or None,
        )  # fmt: skip
        if not ops:
            return
        try:
            answer = self.kube.json_patch(STORE_KIND, namespace, name, ops, "status")
        except KubeError as error:
            if error.status in NOT_AS_COPIED:
                return  # gone, or changed since: not this shard's verdict any more
            with self._cache_lock:
                if namespace in self._departed:
                    self._departed[namespace].add(name)
            raise
        if self.caches is not None:
            self.caches.store_written(answer)
        record_status(namespace, name, answer.get("status") or {})
        for payload in unverified_transitions(conditions, ops):
            self.record_evidence(namespace, name, "condition.transition", payload)

    def stores_in(self, namespace: str) -> list[StoreKey]:
        """Every store of `namespace` (none when another shard serves it)."""
        if not self.owns(namespace):
            return []
        items = self.read.list("PersonalDataStore", namespace)
        return [(namespace, s["metadata"]["name"]) for s in items]

    def all_policies(self) -> list[str]:
        """Every PrivacyPolicy's name."""
        return [p["metadata"]["name"] for p in self.read.list("PrivacyPolicy")]

    def stores_with_credentials(self, namespace: str, secret: str) -> list[StoreKey]:
        """The stores in `namespace` whose database credentials name Secret `secret`."""
        if not self.owns(namespace):
            return []
        return [
            (namespace, store.name)
            for store in self._namespace(namespace).stores
            if secret in credentials_secrets(store)
        ]

    def stores_with_label(self, namespace: str, label: str) -> list[StoreKey]:
        """The stores in `namespace` whose child label value is `label` (names may be hashed)."""
        return [
            (namespace, s["metadata"]["name"])
            for s in self.read.list("PersonalDataStore", namespace)
            if label_value(s["metadata"]["name"]) == label and self.owns(namespace)
        ]

    def _last_view(self, namespace: str) -> NamespaceStores | None:
        """The namespace's last view (`_namespace`), never built here (the event handlers
        ask, on the informers' threads); None before the first."""
        with self._cache_lock:
            memo = self._ns_memo.get(namespace)
        return None if memo is None else memo[1]

    def rendered_names(self, kind: str, namespace: str, name: str) -> tuple[str, ...]:
        """The stores of `namespace` that render a NetworkPolicy (`kind`), or a Role or
        RoleBinding (they share their names), called `name`, by the namespace's last view
        (none yet: none), whatever the object of that name holds."""
        view = self._last_view(namespace)
        if view is None:
            return ()
        if kind != "NetworkPolicy":
            return view.rbac_owners.get(name, ())
        policy = view.policy_by_name.get(name)
        refs = [] if policy is None else policy["metadata"].get("ownerReferences") or []
        return tuple(str(ref["name"]) for ref in refs[:1])

    def rendered_for(self, kind: str, namespace: str, obj: Mapping[str, Any]) -> tuple[str, ...]:
        """The stores of `namespace` that render `obj`, a NetworkPolicy, Role or RoleBinding
        (a Role and its binding share their name), when it is exactly as they render it,
        by the namespace's last view (`_namespace`; none yet: none). Otherwise none: an
        object under a store's child name with other content (replaced, widened) is foreign,
        and every store there may share the pods or Secrets it concerns. Never builds a
        view: the event handlers ask, on the informers' threads."""
        view = self._last_view(namespace)
        if view is None:
            return ()
        name = str((obj.get("metadata") or {}).get("name"))
        if kind != "NetworkPolicy":
            owners = view.rbac_owners.get(name, ())
            found = (ObservedRole if kind == "Role" else ObservedBinding).from_api(obj)
            rendered = [
                item
                for owner in owners
                for item in view.rbac_of(owner)
                if item["kind"] == kind and item["metadata"]["name"] == name
            ]
            as_rendered = rendered and all(
                rbac_as_rendered(item, found, namespace) for item in rendered
            )
            return owners if as_rendered else ()
        policy = view.policy_by_name.get(name)
        if policy is None:
            return ()
        # Dataward's own render: its owner reference names its store, and the object must
        # carry it (a policy made again by someone else does not) with the rendered spec.
        (ref,) = policy["metadata"]["ownerReferences"][:1]
        if not owned_by(obj, STORE_KIND, str(ref["uid"]), controller=True) or not same_part(
            "NetworkPolicy", "spec", policy["spec"], obj.get("spec")
        ):
            return ()
        return (str(ref["name"]),)

    def stores_reached(
        self, kind: str, namespace: str, obj: Mapping[str, Any]
    ) -> tuple[str, ...] | None:
        """The stores of `namespace` whose verdicts the content of `obj` (a NetworkPolicy,
        Role or RoleBinding) may change, by the namespace's last view: a NetworkPolicy's
        those whose workload pods it may select, a Role's those whose Secrets it lets read
        (`store_secrets`), a RoleBinding's its cached Role's. None (every store): no view
        yet, a rule reading every Secret, a binding to a ClusterRole or to a Role not cached.
        Never builds a view (the informers' threads ask)."""
        view = self._last_view(namespace)
        if view is None:
            return None
        stores = view.stores
        if kind == "NetworkPolicy":
            return tuple(
                store.name
                for store in stores
                if may_select(obj, store.workload.pod_selector.to_dict())
            )
        if kind == "RoleBinding":
            ref = obj.get("roleRef") or {}
            role = (
                self.read.get("Role", namespace, str(ref.get("name")))
                if ref.get("kind") == "Role"
                else None
            )
            if role is None:
                return None
            obj = role
        rules = ObservedRole.from_api(obj).rules
        every = any(r.reads_secrets(("",)) and not r.resource_names for r in rules)
        if every:
            return None
        return tuple(
            store.name
            for store in stores
            if any(rule.reads_secrets(store_secrets(store)) for rule in rules)
        )

    def reconcile_logged(self, key: StoreKey) -> Outcome:
        """Reconcile and log failures; the queue retries a failure with backoff."""
        try:
            due, judged = self._judged(key, None)
            if not judged:
                return Outcome(ok=True, judged=False)
            RECONCILES.labels("ok").inc()
        except KubeError as error:
            RECONCILES.labels("error").inc()
            log.warning("reconcile %s/%s: %s (will retry)", *key, error)
            return Outcome(ok=False)
        except Exception:
            RECONCILES.labels("error").inc()
            log.exception("reconcile %s/%s failed (will retry)", *key)
            return Outcome(ok=False)
        if due is None:
            return Outcome(ok=True)
        return Outcome(ok=True, due=max(1.0, (due - self.settings.clock()).total_seconds()))

    # The reconcile.

    def reconcile(self, key: StoreKey, now: datetime | None = None) -> datetime | None:
        """Bring one store's children and status in line with its spec.

        Returns when the store is next due without any event (its key rotation), or None.
        A store deleted or replaced under its name while the pass works from its cached copy
        stops the pass (_StoreGone): nothing more lands on what now has the name.
        """
        return self._judged(key, now)[0]

    def _judged(self, key: StoreKey, now: datetime | None) -> tuple[datetime | None, bool]:
        """`reconcile`'s answer, and False when the store was not judged: its namespace is
        not this shard's, or not yet (still being listed: `Caches.owns`)."""
        try:
            return self._reconcile(key, now), True
        except _NotServed:
            self._unserve(key)  # its namespace just left the shard: once, what stood True
            return None, False
        except _StoreGone as gone:
            log.info("%s/%s was %s since its cached copy: not judged on it (its watch event "
                     "queues it again)", *key, gone)  # fmt: skip
            return None, True

    def _reconcile(self, key: StoreKey, now: datetime | None) -> datetime | None:
        namespace, name = key
        started = self.settings.clock()
        now = now or started

        def pass_clock() -> datetime:
            """The pass's `now`, moved on by the time the pass has taken so far (a pass slowed
            by API timeouts does not time a destruction at its start)."""
            return now + (self.settings.clock() - started)

        if not self.owns(namespace):
            raise _NotServed  # another shard's (or, while unknown or listed, nobody's yet)
        raw = self.read.get("PersonalDataStore", namespace, name)
        if raw is None:
            forget_store(namespace, name)  # its metric series go with it
            with self._cache_lock:
                self._parse_memo.pop(key, None)
                self._render_memo.pop(key, None)
                self._last_status.pop(("PersonalDataStore", namespace, name), None)
                self._unconverged.pop(key, None)
                self._repairs.pop(key, None)
                self._waited.pop(key, None)
                self._deletion_held.pop(key, None)
            return None
        if raw["metadata"].get("deletionTimestamp"):
            self._finish_deletion(raw, now)
            return None
        generation = int(raw["metadata"].get("generation") or 0)
        # Parsed once per version, as its neighbours' reconciles parse it (`_parsed`).
        store = self._parsed(raw)
        if store is None:
            try:
                store = parse_store(raw)  # why it does not parse (the memo keeps only that)
            except ModelError as error:
                self._write_status(
                    raw,
                    [
                        Condition(
                            "PolicyCompliant",
                            "False",
                            "InvalidSpec",
                            f"{error.path}: {error.message}.",
                        )
                    ],
                    {},
                    now,
                    generation,
                )
                return None
        # A request of the act that fails is judged, and the status still written: the old
        # status must not stand for a reconcile that did not finish. The queue then retries.
        failures: list[ActFailure] = []
        failures += self._keep_grace_finalizer(raw, self._grace_finalizer_wanted(store, raw))

        snapshot = self._observe(store, raw, now)
        # The NetworkPolicy, Roles and RoleBindings as the namespace's view rendered them,
        # when it holds this very store: not rendered a second time.
        access = None if snapshot.neighbours is None else snapshot.neighbours.own_renders(store)
        desired = render_children(store, snapshot.policy, self.settings.render, access)
        if snapshot.credentials_missing():
            desired = [_suspended(c) if c["kind"] == "CronJob" else c for c in desired]
        # Each child in the form drift compares, made once (a CronJob's digest is the
        # costliest part of comparing it; the act and PurgeScheduled both compare it).
        compared = [_comparable_render(c) for c in desired]
        at = next(i for i, c in enumerate(desired) if c["kind"] == "CronJob")
        render = self._purge_render(key, desired[at], compared[at])
        recorded_renders = recorded_purge_renders(raw.get("status"))
        render_unrecorded = renders_to_record(render, recorded_renders)
        earlier = recorded_renders  # with none on record, the render of the CronJob in place

        def record_render(live: Mapping[str, Any]) -> bool:
            """Record this pass's render in status before the CronJob is changed to it
            (intent before act: a run of it may start at once); False when the write failed
            and the CronJob must stay as it is. `live`: the CronJob in place, the operator's;
            with no render on record (an earlier version reconciled the store), its render
            is recorded too, so a run it started is still the store's."""
            nonlocal render_unrecorded, earlier
            if render_unrecorded is None:
                return True
            try:
                if not recorded_renders:
                    in_place = self._live_render(desired[at], live)
                    earlier = (in_place,) if in_place is not None else ()
                    render_unrecorded = renders_to_record(render, (), in_place)
                    assert render_unrecorded is not None
                self._write_own_status(
                    STORE_KIND, raw, {"purgeRenders": purge_renders_status(render_unrecorded)}
                )
            except KubeError as error:
                log.warning("%s/%s: the purge CronJob's render could not be recorded, so "
                            "the CronJob is not changed to it: %s", *key, error)  # fmt: skip
                name = desired[at]["metadata"]["name"]
                failures.append(ActFailure(error, Condition(
                    "PurgeScheduled",
                    "False",
                    "CronJobRenderNotRecorded",
                    f"The new render of CronJob {store.namespace}/{name} could not be recorded "
                    f"in status.purgeRenders (HTTP {error.status}), so the CronJob was left at "
                    "its last render (its schedule, suspension and job template as they "
                    "were): it is changed only once the render is on record. The operator "
                    "retries.",
                )))  # fmt: skip
                return False
            render_unrecorded = None
            return True

        holds = _Holds(now)
        applied = {
            (c["kind"], c["metadata"]["name"]): self._act_on_child(
                c, form, snapshot, before_apply=record_render if c is desired[at] else None,
                holds=holds,
            )
            for c, form in zip(desired, compared, strict=True)
        }
        cronjob_key = ("CronJob", desired[at]["metadata"]["name"])
        # What a Job of the store's CronJob may run to be its purge run: this pass's render,
        # or one the operator applied to the CronJob before (a run an upgrade or a settings
        # change found started is the store's all the same: its rows are deleted).
        renders = (render, *(r for r in earlier if r != render))
        failures += self._prune_reader_binding(store, desired)
        if self.settings.access_records is not None:
            self.settings.access_records.note_read(
                store.namespace, names_for(store.name).key_ring, store.name
            )
        # This pass's own verdicts on isolation and access, as judge gives them (a foreign
        # child, a failed act included): a shredding is weighed on them too.
        controls = isolation_and_access(snapshot, desired, applied, self.trusted)
        held = [child_held_different(kind, store.namespace, name) for kind, name in holds.held]
        own = with_act_failures(
            _with_children(list(controls), store.namespace, applied),
            [*held, *(f.condition for f in failures if f.condition is not None)],
        )
        ring = self._key_ring(store, snapshot, now, pass_clock, own)  # _StoreGone: stops
        runs = self._purge_runs(
            store, applied, renders, (raw.get("status") or {}).get("lastPurge"), now
        )
        previewed = (raw.get("status") or {}).get("impactPreview")
        try:
            preview = observe_preview(
                self.read, self.kube, store, self.settings.render, now, self._spec_digests,
                previewed,
                record=lambda preview: self._write_own_status(
                    STORE_KIND, raw, {"impactPreview": _replacing(previewed, preview)}
                ),
            )
            preview_known = True
        except KubeError:
            # The policy unread: whether a revision is pending is unknown, not "none" (its
            # verdicts say PolicyUnreadable); the last preview stands.
            preview, preview_known = previewed, False

        conditions = with_act_failures(
            judge(
                snapshot, desired, applied, ring, runs, controls, self.settings, now, compared
            ),
            [*held, *(f.condition for f in failures if f.condition is not None)],
        )
        extra: dict[str, Any] = {}
        if ring.record is not None:
            extra["encryption"] = ring.record.to_status(ring.next_rotation)
        if render_unrecorded is not None and (
            recorded_renders or _template_as_rendered(compared[at], applied[cronjob_key])
        ):
            # Not applied this pass (a CronJob created, or already as rendered): recorded
            # with the status, no write of its own (a new store's first render among them).
            # With none on record, a CronJob left at another template (the policy unread,
            # the write before the apply failed) records nothing yet: the pass that changes
            # it records its render with the new one (`record_render`).
            extra["purgeRenders"] = purge_renders_status(render_unrecorded)
        unrecorded = False
        if runs.last is not None:
            extra["lastPurge"] = runs.last
            before = (raw.get("status") or {}).get("lastPurge") or {}
            if runs.last.get("jobName") != before.get("jobName") and (
                _result_may_come(runs.last, now)
                or not self._record(store, "purge.run", _purge_run_evidence(runs.last))
            ):
                # status.lastPurge is what says the run is on record: it stays at the run
                # before until the append goes through, on a pass soon.
                unrecorded = True
                if before:
                    extra["lastPurge"] = before
                else:
                    del extra["lastPurge"]
        if preview_known and (preview is not None or previewed is not None):
            extra["impactPreview"] = preview  # None: the revision it counted is gone
        self._write_status(raw, conditions, extra, now, generation)
        if self.on_ready_change is not None and (
            _ready_changed(raw, conditions) or preview != previewed
        ):
            # The policy counts its Ready stores, and gathers their impact previews; the echo
            # of this very write is not an event.
            self.on_ready_change(store.policy)
        if failures:
            raise failures[0].error  # status says what failed; the queue backs off and retries
        # A pending revision of the policy takes effect then: judge and render again.
        due = [
            at
            for at in (
                ring.next_rotation,
                ring.next_bucket,
                runs.recheck,
                snapshot.policy_revision_due,
            )
            if at is not None
        ]
        due += holds.due  # a held repair is made then, a contested one looked at again
        if unrecorded or any(c.status != "True" for c in conditions):
            # What an unsettled store waits for is often a Secret (its credentials created, a
            # planted ring deleted, a read that failed), and Secrets are watched only where
            # the operator may list them: look again soon rather than at the safety resync.
            due.append(now + UNSETTLED_RECHECK)
        return min(due) if due else None

    def _observe(self, store: Store, raw: Mapping[str, Any], now: datetime) -> StoreSnapshot:
        """Read what the store's verdict depends on; each failed read is kept as its error."""
        policy, finding, policy_error, revision_due = self._read_policy(store.policy, now)
        view: NamespaceStores | None
        try:
            view = self._namespace(store.namespace)
        except KubeError as error:
            log.info("stores of %s unreadable: %s", store.namespace, error)
            view = None
        rbac, shared = self._rbac_declared(store.namespace, view)
        neighbours = None if view is None else view.besides(store.name, shared)
        own = names_for(store.name).network_policy
        try:
            # Only the policies that may select the workload pods can widen their ingress: the
            # cache's index finds them without going through the namespace's (issue 11).
            policies = Listing.of(
                p for p in self._policies_near(store) if p["metadata"]["name"] != own
            )
        except KubeError as error:
            policies = Listing.failed(f"HTTP {error.status}")
        admin_policies = self._admin_policies()
        cilium_policies = self._cilium_policies(store.namespace)
        calico_policies = self._calico_policies(store.namespace)
        namespace_labels = (
            self._namespace_labels(store.namespace)
            if admin_policies.items or cilium_policies.items or calico_policies.items
            else None
        )
        credentials = tuple(
            (secret, self._credentials_presence(store, secret))
            for secret in credentials_secrets(store)
        )
        return StoreSnapshot(
            store=store,
            policy=policy,
            policy_finding=finding,
            policy_error=policy_error,
            policy_revision_due=revision_due,
            neighbours=neighbours,
            network_policies=policies,
            admin_policies=admin_policies,
            cilium_policies=cilium_policies,
            calico_policies=calico_policies,
            namespace_labels=namespace_labels,
            rbac=rbac,
            credentials=credentials,
            record=KeyRingRecord.from_status(raw.get("status") or {}),
            status=raw.get("status"),
        )

    def _admin_policies(self) -> Listing:
        """The cluster's AdminNetworkPolicies from their cache (none where it is not kept:
        the API does not serve them, operator.py `_follow`; never a request), or why they
        could not be read."""
        return self._followed_policies("AdminNetworkPolicy", None)

    def _cilium_policies(self, namespace: str) -> Listing:
        """The CiliumNetworkPolicies of `namespace` and the cluster's
        CiliumClusterwideNetworkPolicies from their caches (none of a kind whose cache is not
        kept: the API does not serve it), or why either could not be read."""
        return self._cni_policies(
            "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy", namespace
        )

    def _calico_policies(self, namespace: str) -> Listing:
        """The Calico NetworkPolicies of `namespace` and the cluster's Calico
        GlobalNetworkPolicies from their caches, as `_cilium_policies`, and the Calico
        NetworkPolicies of other namespaces whose selector reaches beyond theirs
        (`_calico_escaping`)."""
        local = self._cni_policies("CalicoNetworkPolicy", "CalicoGlobalNetworkPolicy", namespace)
        if local.error is not None:
            return local
        beyond = self._calico_escaping()
        if beyond.error is not None:
            return beyond
        return Listing.of((
            *local.items,
            *(p for p in beyond.items if calico_policy_namespace(p) != namespace),
        ))  # fmt: skip

    def _calico_escaping(self) -> Listing:
        """Of every Calico NetworkPolicy the cache holds (every namespace's, as the chart's
        default install binds the operator's ClusterRole cluster-wide; the watched
        namespaces' with `watchNamespaces`), those with an ingress Allow whose selector may
        select pods of another namespace (`calico_escapes`), or why they could not be read.
        Kept while the cache does not change; each policy is decided once per namespace and
        selector text (`_calico_escapes`, which holds only what the cache holds), so an
        ordinary policy costs no store anything."""
        kind = "CalicoNetworkPolicy"
        caches = self.caches
        if caches is None or not caches.cached(kind):
            return Listing()
        try:
            version = tuple(caches.generation(kind, ns) for ns in self.namespaces or (None,))
        except KubeError as error:
            return Listing.failed(_listing_error(error))
        with self._cache_lock:
            memo, before = self._calico_escaping_memo, self._calico_escapes
        if memo is not None and memo[0] == version:
            return memo[1]
        listed = self._followed_policies(kind, None)
        if listed.error is not None:
            return listed
        decided: dict[tuple[str, str | None], bool] = {}
        escaping = []
        for policy in listed.items:
            key = calico_escape_key(policy)
            if key is None:
                continue
            if key not in decided:
                decided[key] = before[key] if key in before else calico_reaches_beyond(*key)
            if decided[key]:
                escaping.append(policy)
        found = Listing.of(escaping)
        with self._cache_lock:
            self._calico_escapes = decided
            self._calico_escaping_memo = (version, found)
        return found

    def _cni_policies(self, local_kind: str, global_kind: str, namespace: str) -> Listing:
        """A CNI's policies of `namespace` (`local_kind`) and of the cluster (`global_kind`)
        from their caches (none of a kind whose cache is not kept: the API does not serve
        it), or why either could not be read."""
        local = self._followed_policies(local_kind, namespace)
        clusterwide = self._followed_policies(global_kind, None)
        failed = local.error or clusterwide.error
        if failed is not None:
            return Listing.failed(failed)
        return Listing.of((*local.items, *clusterwide.items))

    def _followed_policies(self, kind: str, namespace: str | None) -> Listing:
        """The objects of a policy kind the operator caches only while the API serves it
        (operator.py `FOLLOWED`), in `namespace` (None: all, or cluster-scoped): none when
        it is not cached, never a request; a failed Listing when its cache cannot be read."""
        if self.caches is None or not self.caches.cached(kind):
            return Listing()
        try:
            return Listing.of(self.caches.list(kind, namespace))
        except KubeError as error:
            return Listing.failed(_listing_error(error))

    def _namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        """The labels of `namespace` as the Namespace cache holds them (a sharded operator's;
        else None: not known)."""
        if self.caches is None or not self.caches.cached("Namespace"):
            return None
        try:
            held = self.caches.get("Namespace", None, namespace)
        except KubeError:
            return None
        labels = None if held is None else (held.get("metadata") or {}).get("labels")
        return dict(labels) if isinstance(labels, Mapping) else None

    def _policies_near(self, store: Store) -> list[dict[str, Any]]:
        """The NetworkPolicies of the store's namespace that may select its workload pods (a
        superset of those that do, which NetworkIsolated filters); KubeError: unreadable. A
        workload selector by `Exists` or `NotIn` admits label values no one named, which the
        index (by key and value) cannot look up: then every policy of the namespace."""
        selector = store.workload.pod_selector.to_dict()
        if self.caches is None or unnamed_keys(selector):
            return self.read.list("NetworkPolicy", store.namespace)
        return self.caches.selecting("NetworkPolicy", store.namespace, workload_labels(selector))

    def _declared(
        self, namespace: str, view: NamespaceStores, rbac: RbacSnapshot
    ) -> tuple[Mapping[str, str], SecretReaders]:
        """Which RoleBindings of the namespace's stores are in place as rendered (name ->
        store label), and which Secrets they read: updated for the RBAC objects that changed
        since the last snapshot (`incremental.declare`), from scratch when the stores did."""
        with self._incremental_lock:
            return self._declared_locked(namespace, view, rbac)

    def _declared_locked(
        self, namespace: str, view: NamespaceStores, rbac: RbacSnapshot
    ) -> tuple[Mapping[str, str], SecretReaders]:
        """`_declared`, under `_incremental_lock`."""
        old = self._declared_memo.get(namespace)
        if old is not None and old.view is view and old.rbac is rbac:
            return old.declared, old.readers
        state = self._rbac_states.get(namespace)
        changed: set[RbacKey] | None = None
        if old is not None and old.rbac is rbac:
            changed = set()
        elif old is not None and state is not None and state.snapshot is rbac:
            if state.previous is not None and state.previous() is old.rbac:
                changed = state.changed
        new = declare(namespace, view, rbac, self.trusted, old, changed)
        self._declared_memo[namespace] = new
        return new.declared, new.readers

    def _rbac_declared(
        self, namespace: str, view: NamespaceStores | None
    ) -> tuple[RbacSnapshot | None, tuple[Mapping[str, str], SecretReaders] | None]:
        """The namespace's RBAC snapshot (`_rbac`) and, for `view`, its declared bindings
        (`_declared`; None without a view or a snapshot): the snapshot brought up to date and
        the declared state updated from it in one hold of the lock, so that the declared
        state is always made for the newest snapshot, and the next one updates it by the
        keys changed since (a worker holding a snapshot another worker had replaced made it
        build from scratch, O(n) in the namespace's stores: issue 11)."""
        if self.caches is None:
            rbac = self._read_rbac(namespace)
            if rbac is None or view is None:
                return rbac, None
            return rbac, self._declared(namespace, view, rbac)
        with self._incremental_lock:
            state = self._rbac_states.setdefault(namespace, RbacState(namespace))
            rbac = update_rbac(state, self.caches)
            if rbac is None or view is None:
                return rbac, None
            return rbac, self._declared_locked(namespace, view, rbac)

    def _patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """A merge patch whose answer goes into the cache: the next read is not older."""
        answer = self.kube.merge_patch(kind, namespace, name, patch, subresource=subresource)
        self._written(answer)
        return answer

    def _patch_encryption(
        self, store: Store, encryption: Mapping[str, Any], version: str | None = None
    ) -> dict[str, Any]:
        """Patch the store's `status.encryption` with these fields (`version`: only at that
        resourceVersion; the server refuses any other with 409). Without it, only on this very
        store (its uid): one recreated under its name since gets nothing (_StoreGone)."""
        if version is None:
            read = {"metadata": {"namespace": store.namespace, "name": store.name,
                                 "uid": store.uid}, "status": {"encryption": {}}}  # fmt: skip
            return self._write_own_status("PersonalDataStore", read, {"encryption": encryption})
        patch = {"status": {"encryption": encryption}, "metadata": {"resourceVersion": version}}
        return self._patch(
            "PersonalDataStore", store.namespace, store.name, patch, subresource="status"
        )

    def _write_own_status(
        self, kind: str, read: Mapping[str, Any], patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge `patch` into the status of the object `read` (its uid), never of another of
        its name (`write_status`); _StoreGone when it is deleted or replaced since."""
        meta = read["metadata"]
        # The cache's copy, when newer: it has this pass's own writes (a ring record made for
        # a new store), which the copy read at its start has not.
        latest = None if self.caches is None else self.caches.get(
            kind, meta.get("namespace"), meta["name"]
        )
        try:
            answer = write_status(self.kube, kind, read, patch, latest)
        except ObjectGone as gone:
            raise _StoreGone(str(gone)) from None
        self._written(answer)
        return answer

    def _write_status_once(
        self,
        kind: str,
        raw: Mapping[str, Any],
        status: Mapping[str, Any],
        patch: Mapping[str, Any],
        now: datetime,
    ) -> bool:
        """Patch `status` unless the object is unchanged since this very status was written.

        Comparing with the object alone is not enough: an installed CRD older than this
        operator prunes the fields it does not know (Helm never upgrades CRDs), the answer
        never equals what was sent, and every pass would write again. So the last write is
        remembered with the resourceVersion it produced (a store's only when the answer does
        not say all it was sent: else the comparison before this finds nothing to write), and
        a field the server dropped is reported once. False: nothing was written.

        Written on the object read alone (`write_status`: the merge patch `patch` as a JSON
        patch that tests its uid): one deleted or recreated under the name since refuses it,
        nothing lands, and _StoreGone stops the pass (the new object's watch event queues
        it). A store's verdicts, observedGeneration and ring record, a policy's revisions,
        are the object's they were judged on, never its successor's.

        A write the server refuses for what it says (controller/refused.py) leaves no
        condition of the object True (`_status_refused`), and still raises its KubeError.
        """
        meta = raw["metadata"]
        key = (kind, meta.get("namespace"), meta["name"])
        remembered = self._last_status.get(key)
        if remembered == (meta.get("resourceVersion"), _digest(status)):
            return False
        try:
            answer = self._write_own_status(kind, raw, patch)
        except KubeError as error:
            if refused(error):
                self._status_refused(kind, raw, error, now)
            raise  # the queue retries with backoff
        kept = answer.get("status") or {}
        dropped = sorted(k for k in status if k not in kept and k not in self._dropped)
        if dropped:
            self._dropped.update(dropped)
            log.error(
                "the installed %s CRD dropped status field(s) %s: it is older than this "
                "operator; apply the CRDs of this version (crds/, or the chart's crds/)",
                kind,
                ", ".join(dropped),
            )
        if kind == STORE_KIND and _status_holds(kept, status):
            # The answer says all it was sent: the next pass's comparison (`_write_status`)
            # finds nothing to write without a record (about 220 bytes a store, held by
            # a process that converged the store and not by a restarted one: issue 11).
            self._last_status.pop(key, None)
        else:
            self._last_status[key] = (
                str((answer.get("metadata") or {}).get("resourceVersion")),
                _digest(status),
            )
        return True

    def _status_refused(
        self, kind: str, raw: Mapping[str, Any], error: KubeError, now: datetime
    ) -> None:
        """The server refused this pass's status of `raw`: what it shows True is made Unknown
        (`mark_refused`), each transition on record and a store's policy told of its Ready,
        as a pass's own are."""
        marked = mark_refused(self.kube, kind, raw, error, format_time(now))
        if marked is None:
            return
        answer, transitions = marked
        self._written(answer)
        if kind != STORE_KIND:
            return
        meta = raw["metadata"]
        # The metric says what status says (it was set to this pass's verdicts, not written).
        record_status(meta["namespace"], meta["name"], answer.get("status") or {})
        for payload in transitions:
            self.record_evidence(meta["namespace"], meta["name"], "condition.transition", payload)
        policy = (raw.get("spec") or {}).get("policy")
        if self.on_ready_change is not None and policy and any(
            t["type"] == "Ready" for t in transitions
        ):
            self.on_ready_change(str(policy))

    def _written(self, obj: Mapping[str, Any] | None) -> None:
        if self.caches is not None and obj:
            self.caches.store_written(obj)

    def _parsed(self, raw: Mapping[str, Any]) -> Store | None:
        """A neighbour store parsed once per version (every reconcile of the namespace reads
        every other store: parsing them all each time made start-up quadratic in CPU).

        A new resourceVersion whose parsed inputs are unchanged (a status write) keeps the
        same Store object, so what is derived from the namespace's stores (`_namespace`)
        survives the status writes of a converging namespace.
        """
        meta = raw["metadata"]
        key = (str(meta.get("namespace")), str(meta["name"]))
        version = (meta.get("uid"), meta.get("resourceVersion"))
        with self._cache_lock:
            memo = self._parse_memo.get(key)
        if memo is not None and memo[0] == version and version[1] is not None:
            return memo[2]
        # The parsed inputs' digest, not a copy of them (a second copy of every spec).
        inputs = _digest(
            (meta.get("uid"), meta.get("generation"), meta.get("annotations"), raw.get("spec"))
        )
        if memo is not None and memo[1] == inputs and version[1] is not None:
            parsed = memo[2]
        else:
            parsed = _parse_or_none(raw)
        with self._cache_lock:
            self._parse_memo[key] = (version, inputs, parsed)
        return parsed

    def _namespace(self, namespace: str) -> NamespaceStores:
        """The namespace's stores and what Dataward renders for each, derived once per change.

        Every store's NetworkIsolated and AccessRestricted read every other store of its
        namespace; rendering them per store made a reconcile O(n) and a namespace O(n^2).
        Kept per namespace with the store cache's generation; on a change only the stores
        the cache journal names are parsed again, and the view stays while each parses to
        the same Store object (`_parsed` keeps it across status writes); when some do not, it
        is updated for those alone (`NamespaceStores.updated`). KubeError: unreadable.
        """
        # One build at a time per namespace: the workers a restart starts at once on a new
        # reconciler all need the view; those that come second wait for the first one's.
        with self._cache_lock:
            building = self._ns_building.setdefault(namespace, threading.Lock())
        with building:
            return self._namespace_view(namespace)

    def _namespace_view(self, namespace: str) -> NamespaceStores:
        """`_namespace`, under the namespace's build lock."""
        version: tuple[int, bool] | None = None
        cached: CachedChild | None = None
        if self.caches is not None:
            caches = self.caches

            def cached(kind: str, name: str) -> Mapping[str, Any] | None:
                return caches.held(kind, namespace, name)

            version = self.caches.generation("PersonalDataStore", namespace)
            with self._cache_lock:
                memo = self._ns_memo.get(namespace)
            if memo is not None and memo[0] == version:
                return memo[1]
            if memo is not None and version[1] and memo[0][1]:
                names = self.caches.changed_since("PersonalDataStore", namespace, memo[0][0])
                changes = None if names is None else self._changes(namespace, memo[1], names)
                updated = None
                if changes is not None:
                    updated = memo[1].updated(changes, cached) if changes else memo[1]
                if updated is not None:
                    with self._cache_lock:
                        self._ns_memo[namespace] = (version, updated)
                    return updated
        stores = tuple(
            parsed
            for item in self.read.list("PersonalDataStore", namespace)
            for parsed in [self._parsed(item)]
            if parsed is not None
        )
        with self._cache_lock:
            memo = self._ns_memo.get(namespace)
        if memo is not None and _same(memo[1].stores, stores):
            view = memo[1]
        else:
            view = NamespaceStores.of(stores, None if memo is None else memo[1], cached)
        if version is not None:
            with self._cache_lock:
                self._ns_memo[namespace] = (version, view)
        return view

    def _changes(
        self, namespace: str, view: NamespaceStores, names: set[str]
    ) -> dict[str, Store | None]:
        """Of the stores `names`, those that no longer parse to the Store object `view` holds:
        name -> what it parses to now (None: absent, or unparseable, so absent from a view).
        KubeError: unreadable."""
        assert self.caches is not None
        changes: dict[str, Store | None] = {}
        for name in names:
            raw = self.caches.get("PersonalDataStore", namespace, name)
            parsed = None if raw is None else self._parsed(raw)
            if parsed is not view.by_name.get(name):
                changes[name] = parsed
        return changes

    def _credentials_presence(self, store: Store, secret: str) -> Presence:
        """Whether a credentials Secret of the store exists (its metadata only). With access
        records on (`--audit-log`) it is read by name, never from the cache: that read is a
        canary as the ring's is, whose audit event proves the API server audits reads of it
        too (AccessRecorded)."""
        access = self.settings.access_records
        if access is None:
            return self._presence("Secret", store.namespace, secret)
        access.note_read(store.namespace, secret, store.name)
        try:
            present = self.kube.exists("Secret", store.namespace, secret)
        except KubeError as error:
            log.info("Secret %s/%s unreadable: %s", store.namespace, secret, error)
            return "unknown"
        return "present" if present else "absent"

    def _presence(self, kind: str, namespace: str, name: str) -> Presence:
        """Whether an object exists, reading its metadata only (a Secret's data is not read)."""
        try:
            # From the Secrets' metadata-only cache while it is watched (not synced: Unknown).
            present = (self.caches or self.kube).exists(kind, namespace, name)
            return "present" if present else "absent"
        except KubeError as error:
            log.info("%s %s/%s unreadable: %s", kind, namespace, name, error)
            return "unknown"

    # deletionPolicy: Delete destroys the key ring only after a grace period. The ring is owned
    # by the store, so the store is held by a finalizer until the grace period has passed;
    # then the finalizer goes and the garbage collector removes the ring with the rest.
    # The policy may be edited after the ring is made: the ring's owner reference follows it
    # (`_ring_owned_as_asked`), and the finalizer goes only once the ring no longer has one.

    def _grace_finalizer_wanted(self, store: Store, raw: Mapping[str, Any]) -> bool:
        """Whether the store is held by the grace finalizer: under `Delete`, always; under
        `Retain`, while its ring still carries the store's owner reference (an edit from
        `Delete`: the ring is released first, then the store, never the other way round, or
        the garbage collector would destroy the ring with the store at once). A ring that
        cannot be read keeps the finalizer: unknown is not released."""
        if store.deletion_policy == "Delete":
            return True
        if KEY_RING_FINALIZER not in (raw["metadata"].get("finalizers") or []):
            return False
        try:
            secret = self._ring_secret(store.namespace, names_for(store.name).key_ring)
        except KubeError as error:
            log.info("key ring of %s/%s unreadable: %s", store.namespace, store.name, error)
            return True
        return secret is not None and owned_by(secret, STORE_KIND, store.uid)

    def _ring_owned_as_asked(self, store: Store, secret: dict[str, Any]) -> dict[str, Any]:
        """The ring Secret (the operator's, proven by its record) with the owner reference its
        store's deletionPolicy asks now (`ring_owner_references`), written at the version
        read (a compare-and-swap); what is in place then. A failed write is logged and
        looked at again on the next pass: meanwhile the grace finalizer stays (Retain) or
        was added first (Delete), so the ring is never destroyed unasked."""
        try:
            return self._write_ring_owners(store, secret) or secret
        except KubeError as error:
            log.warning(
                "owner of key ring %s/%s (deletionPolicy %s): %s",
                store.namespace, secret["metadata"]["name"], store.deletion_policy, error,
            )  # fmt: skip
            return secret

    def _write_ring_owners(self, store: Store, secret: Mapping[str, Any]) -> dict[str, Any] | None:
        """Write the ring Secret's owner references as `store.deletionPolicy` asks, at the
        version read (KubeError when refused); the answer, or None when they already are."""
        meta = secret["metadata"]
        refs = ring_owner_references(store, meta.get("ownerReferences"))
        if refs is None:
            return None
        answer = self.kube.replace({**secret, "metadata": {**meta, "ownerReferences": refs}})
        self._written(answer)
        log.info(
            "key ring %s/%s %s the store (deletionPolicy %s)",
            store.namespace, meta["name"],
            "goes with" if store.deletion_policy == "Delete" else "outlives",
            store.deletion_policy,
        )  # fmt: skip
        return answer

    def _release_ring(self, raw: Mapping[str, Any]) -> bool:
        """A store deleted under `deletionPolicy: Retain` that still holds the grace
        finalizer (the policy edited from `Delete`, the ring not yet released): remove the
        store's owner reference from its ring, so that the store can go and the ring stays.
        True when the store is such a store (its ring now released, or none); False when its
        spec asks `Delete` or does not parse (the grace period applies). KubeError when the
        ring cannot be read or written: the store stays held, and the pass is retried."""
        try:
            store = parse_store(raw)
        except ModelError:
            return False
        if store.deletion_policy == "Delete":
            return False
        secret = self._ring_secret(store.namespace, names_for(store.name).key_ring)
        if secret is not None and owned_by(secret, STORE_KIND, store.uid):
            self._write_ring_owners(store, secret)
        return True

    def _keep_grace_finalizer(self, raw: Mapping[str, Any], wanted: bool) -> list[ActFailure]:
        """Add (or remove) the grace finalizer; a failed patch is returned, never raised."""
        finalizers = list(raw["metadata"].get("finalizers") or [])
        if wanted == (KEY_RING_FINALIZER in finalizers):
            return []
        if wanted:
            finalizers.append(KEY_RING_FINALIZER)
        else:
            finalizers.remove(KEY_RING_FINALIZER)
        try:
            self._patch_finalizers(raw, finalizers)
        except KubeError as error:
            meta = raw["metadata"]
            log.warning("finalizers of %s/%s: %s", meta["namespace"], meta["name"], error)
            if not wanted:
                return [ActFailure(error)]  # the store is held longer than asked: retried
            return [ActFailure(error, Condition(
                "EncryptionKeyReady",
                "Unknown",
                "KeyRingFinalizerUnwritten",
                f"deletionPolicy is Delete, but the finalizer {KEY_RING_FINALIZER} that keeps "
                f"the key ring for its grace period after the store is deleted could not be "
                f"added (HTTP {error.status}); deleted now, the store's ring could go at once. "
                "The operator retries.",
            ))]  # fmt: skip
        return []

    def _patch_finalizers(self, raw: Mapping[str, Any], finalizers: list[str]) -> None:
        meta = raw["metadata"]
        # resourceVersion makes the merge patch a compare-and-swap on the finalizer list.
        self._patch(
            "PersonalDataStore",
            meta["namespace"],
            meta["name"],
            {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}},
        )

    def _finish_deletion(self, raw: Mapping[str, Any], now: datetime) -> None:
        """A deleted store: release it once its key ring's grace period is over."""
        meta = raw["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if KEY_RING_FINALIZER not in finalizers:
            return
        if self._release_ring(raw):
            log.info(
                "%s/%s deleted under deletionPolicy: Retain: its key ring stays",
                meta["namespace"], meta["name"],
            )  # fmt: skip
            finalizers.remove(KEY_RING_FINALIZER)
            self._patch_finalizers(raw, finalizers)
            return
        deleted = _parse_time(meta["deletionTimestamp"])
        assert deleted is not None
        delete_after = deleted + timedelta(seconds=self.settings.key_ring_grace_seconds)
        if now >= delete_after and legal_hold(raw):
            # Its keys would go with the ring, every held record's with them (in backups
            # too): kept until the hold is lifted (an edit of the spec, which queues it).
            log.info("grace period over, but %s/%s is under a legal hold: its key ring stays",
                     meta["namespace"], meta["name"])  # fmt: skip
            key, uid = (meta["namespace"], meta["name"]), str(meta.get("uid") or "")
            with self._cache_lock:
                first = self._deletion_held.get(key) != uid
                self._deletion_held[key] = uid
            if first:
                self._event(raw, Condition(
                    "EncryptionKeyReady", "True", "KeyRingDeletionHeld",
                    "The store was deleted under deletionPolicy: Delete and its grace period "
                    "is over, but spec.purge.suspend (a legal hold) keeps its key ring: it is "
                    "destroyed once the hold is lifted.",
                ), None, now)  # fmt: skip
            return
        if now >= delete_after:
            log.info(
                "grace period over: releasing %s/%s and its key ring",
                meta["namespace"],
                meta["name"],
            )
            finalizers.remove(KEY_RING_FINALIZER)
            self._patch_finalizers(raw, finalizers)
            return
        status = dict(raw.get("status") or {})
        encryption = dict(status.get("encryption") or {})
        stamp = delete_after.strftime("%Y-%m-%dT%H:%M:%SZ")
        if encryption.get("scheduledDeletion") == stamp:
            return
        encryption["scheduledDeletion"] = stamp
        log.info(
            "%s/%s deleted: its key ring is destroyed after %s",
            meta["namespace"],
            meta["name"],
            stamp,
        )
        # On this store alone: one recreated under its name must not get its ring record.
        self._write_own_status("PersonalDataStore", raw, {"encryption": encryption})
        self._event(
            raw,
            Condition(
                "EncryptionKeyReady",
                "True",
                "KeyRingDeletionScheduled",
                f"The store was deleted under deletionPolicy: Delete; its key "
                f"ring is destroyed after {stamp}. Until then it can be "
                "copied from the Secret to keep data readable.",
            ),
            None,
            now,
        )

    def reconcile_policy(self, name: str, now: datetime | None = None) -> datetime | None:
        """Write a PrivacyPolicy's status: Ready when it parses, how many stores use it, and
        which revision is in force and which is pending (dataward.model.revisions).

        Returns when the pending revision takes effect (look again then), or None.
        """
        now = now or self.settings.clock()
        raw = self.read.get("PrivacyPolicy", None, name)
        if raw is None:
            self._last_status.pop(("PrivacyPolicy", None, name), None)
            return None
        unlisted: KubeError | None = None
        try:
            stores = self._stores_of(name)
        except KubeError as error:
            # The counts (and the pending revision's impact) are unknown: neither is kept.
            log.warning("stores of PrivacyPolicy %s: %s", name, error)
            stores, unlisted = [], error
        ready = sum(1 for store in stores if is_ready(store))
        old: Mapping[str, Any] = raw.get("status") or {}
        revisions: Revisions | None = None
        counted = (
            f"{ready} of {len(stores)} referring store(s) Ready: see readyStores"
            if unlisted is None
            else f"the stores that refer to it could not be listed (HTTP {unlisted.status}); "
            "the operator retries"
        )
        try:
            parse_policy(raw)
            revisions = policy_revisions(raw, now, self._spec_digests)
            condition = Condition(
                "Ready",
                "True",
                "Valid",
                f"The policy is valid; stores may reference its categories ({counted}).",
            )
        except ModelError as error:
            condition = Condition(
                "Ready", "False", "InvalidPolicy", f"{error.path}: {error.message}."
            )
        conditions = [condition]
        pending_impact: tuple[list[dict[str, Any]], int, str] | None = None
        if revisions is not None and revisions.pending is not None and unlisted is None:
            try:
                pending_impact = self._pending_impact(raw, stores, revisions)
            except ModelError as error:  # an in-force copy a newer schema refuses
                log.info("impact of PrivacyPolicy %s's revision unknown: %s", name, error)
            pending = revisions.pending
            if pending_impact is not None and pending.held and pending_impact[2] == SMALL:
                # Counted small just now: the gate reads the verdict from the record.
                recorded = {**(old.get("revisions") or {}),
                            "pending": {**pending.to_status(), "impactVerdict": SMALL}}  # fmt: skip
                revisions = policy_revisions(
                    {**raw, "status": {"revisions": recorded}}, now, self._spec_digests
                )
                if revisions.pending is None:
                    pending_impact = None
        if revisions is not None:
            conditions.append(_revision_condition(revisions, name))
        generation = int(raw["metadata"].get("generation") or 0)
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "conditions": merge_conditions(
                old.get("conditions") or [], conditions, now, generation
            ),
            # Every shard's stores: the store cache holds the whole cluster's unless the
            # operator is limited to --namespace lists.
            "stores": len(stores),
            "readyStores": ready,
        }
        if unlisted is not None:
            del status["stores"], status["readyStores"]
        if revisions is not None:
            status["revisions"] = revisions.to_status()
            if revisions.pending is not None:
                status["revisions"]["pending"]["acknowledgeToken"] = (
                    revisions.pending.acknowledge_token
                )
                if pending_impact is not None:
                    listed, affected, judged = pending_impact
                    status["revisions"]["pending"]["impact"] = listed
                    status["revisions"]["pending"]["affectedStores"] = affected
                    status["revisions"]["pending"]["impactVerdict"] = judged
        if all(old.get(k) == v for k, v in status.items()) and (
            unlisted is None or ("stores" not in old and "readyStores" not in old)
        ):
            if unlisted is not None:
                raise unlisted
            return _takes_effect(revisions)
        # A merge patch keeps keys it does not name: a revision's spec (or a pending revision)
        # that lost a key must say so with null.
        patch = {**status, "revisions": _replacing(old.get("revisions"), status.get("revisions"))}
        if "revisions" not in status:
            patch.pop("revisions")
        if unlisted is not None:
            patch.update(stores=None, readyStores=None)
        try:
            written = self._write_status_once("PrivacyPolicy", raw, status, patch, now)
        except _StoreGone as gone:
            log.info("PrivacyPolicy %s was %s since its cached copy: its status not written "
                     "(its watch event queues it again)", name, gone)  # fmt: skip
            return None
        if written and revisions is not None:
            self._revision_happened(raw, old.get("revisions") or {}, revisions, now)
        if unlisted is not None:
            raise unlisted  # status says the counts are unknown; the queue retries
        return _takes_effect(revisions)

    def _pending_impact(
        self, raw: Mapping[str, Any], stores: Sequence[Mapping[str, Any]], revisions: Revisions
    ) -> tuple[list[dict[str, Any]], int, str]:
        """What each store of the policy will be held to when the pending revision takes
        effect, with its dry-run counts (controller.impact), at most IMPACT_LIMIT listed; how
        many are affected; and the impact verdict over all of them."""
        assert revisions.pending is not None
        parsed = [p for p in (self._parsed(s) for s in stores) if p is not None]
        in_force, pending = parse_in_force(raw, revisions.in_force.spec), parse_policy(raw)
        entries, affected = impact(parsed, in_force, pending, limit=None)
        generation = revisions.pending.generation
        by_name = {f"{s['metadata']['namespace']}/{s['metadata']['name']}": s for s in stores}
        not_run = {
            f"{store.namespace}/{store.name}": not_run_status(generation, store)
            for store in parsed
            if preview_state(store, in_force, pending) == NOT_RUN
        }
        counted, judged = with_previews(entries, by_name, generation, not_run)
        return counted[:IMPACT_LIMIT], affected, judged

    def _revision_happened(
        self,
        raw: Mapping[str, Any],
        before: Mapping[str, Any],
        revisions: Revisions,
        now: datetime,
    ) -> None:
        """After a status write: record, announce and re-queue what a revision changed."""
        name = raw["metadata"]["name"]
        first = not before.get("inForce")
        if revisions.promoted or first:
            self._record_subject(name, "policy.revision", _revision_evidence(name, revisions))
            if self.on_revision_change is not None:
                self.on_revision_change(name)
        if revisions.promoted:
            self._policy_event(raw, "RevisionInForce", _in_force_note(revisions), now)
        pending = revisions.pending
        if pending is not None and (before.get("pending") or {}).get("digest") != pending.digest:
            self._policy_event(raw, "RevisionPending", _pending_note(pending), now)

    def _policy_event(self, raw: Mapping[str, Any], reason: str, note: str, now: datetime) -> None:
        """An Event about a (cluster-scoped) policy, in `default` as Kubernetes does."""
        body = events.event(
            raw, "PrivacyPolicy", action="Revise", reason=reason, event_type="Normal",
            note=note, now=now, instance=self.settings.reporting_instance,
        )  # fmt: skip
        events.post(self.kube, body)

    def reconcile_policy_logged(self, name: str) -> Outcome:
        """Reconcile a policy's status and log failures; not ok: the queue retries."""
        try:
            due = self.reconcile_policy(name)
        except Exception:
            log.exception("status of PrivacyPolicy %s not written (will retry)", name)
            return Outcome(ok=False)
        if due is None:
            return Outcome(ok=True)
        return Outcome(ok=True, due=max(1.0, (due - self.settings.clock()).total_seconds()))

    def _read_policy(
        self, name: str, now: datetime
    ) -> tuple[Policy | None, Finding | None, str | None, datetime | None]:
        """The revision of the policy in force at `now`, a finding when it does not parse, or
        the error of a failed read; and when a pending revision takes effect."""
        try:
            raw = self.read.get("PrivacyPolicy", None, name)
        except KubeError as error:
            return None, None, f"HTTP {error.status}", None
        if raw is None:
            with self._cache_lock:
                self._policy_memo.pop(name, None)
            return None, None, None, None
        try:
            policy, revisions = self._policy_at(name, raw, now)
        except ModelError as error:
            return (
                None,
                Finding(
                    "PolicyInvalid",
                    f"PrivacyPolicy {name!r} cannot be read ({error.path}: "
                    f"{error.message}); "
                    + (
                        "restore that field as the operator wrote it (whoever may write the "
                        "policy's status can write it; with the chart's status guard, only "
                        "holders of `override`)."
                        if error.path.startswith("status.")
                        else "fix the policy."
                    ),
                    "spec.policy",
                ),
                None,
                None,
            )
        return policy, None, None, _takes_effect(revisions)

    def _policy_at(
        self, name: str, raw: Mapping[str, Any], now: datetime
    ) -> tuple[Policy, Revisions]:
        """The policy `raw` as its revision in force at `now`, and its revisions; ModelError
        when `raw`'s own spec (pending or not), its recorded revisions, or the spec in force
        does not parse (in this order).

        Every store of a policy reads the same cached object: both parses are kept per
        policy for that very object (cached objects are never changed; a changed policy is
        another object) and an equal in-force spec, so a policy is parsed once, not twice
        per store and pass (issue 11). The memo holds the object, so its id is not reused.
        """
        with self._cache_lock:
            memo = self._policy_memo.get(name)
        if memo is None or memo.raw is not raw:
            try:
                parse_policy(raw)  # the spec itself must be valid, pending or not
                invalid = None
            except ModelError as error:
                invalid = (error.path, error.message)
            memo = PolicyMemo(raw, invalid)
            with self._cache_lock:
                self._policy_memo[name] = memo
        if memo.invalid is not None:
            # A new error each time (one raised again would keep every traceback it went by).
            raise ModelError(*memo.invalid)
        revisions = policy_revisions(raw, now, self._spec_digests)
        spec = revisions.in_force.spec
        if memo.spec is None or memo.spec != spec:
            try:
                parsed: Policy | tuple[str, str] = parse_in_force(raw, spec)
            except ModelError as error:
                parsed = (error.path, error.message)
            memo = replace(memo, spec=spec, parsed=parsed)
            with self._cache_lock:
                self._policy_memo[name] = memo
        if isinstance(memo.parsed, tuple):
            raise ModelError(*memo.parsed)
        assert memo.parsed is not None
        return memo.parsed, revisions

    def _act_on_child(
        self,
        child: Mapping[str, Any],
        compared: Mapping[str, Any],
        snapshot: StoreSnapshot,
        read: Kube | None = None,
        before_apply: Callable[[Mapping[str, Any]], bool] | None = None,
        holds: _Holds | None = None,
    ) -> ObservedObject:
        """Read a child, create it where absent and apply it where it differs; what is in
        place afterwards. `compared`: the child in the form drift compares
        (`_comparable_render`). `before_apply`: what must be done before the child, the
        operator's (its argument, as read), is changed (the purge CronJob's render
        recorded); False leaves the child as it is.

        Never adopt what the operator did not make: an object of the child's name without the
        store's controller owner reference is foreign, never written (an apply with force
        would take it over) nor used. An absent child is created (POST, create-only), never
        applied: a label-selected cache (CronJobs, ServiceAccounts) does not see a foreign
        object without the operator's labels, and a create cannot write over it. A repair is
        applied on the resourceVersion judged: an object changed since the read (deleted and
        made again by someone else, the watch not there yet) is refused with a 409, and the
        child is judged once more on a read of the API (`read`: what this judgment reads;
        None, the caches).

        A repair of a child changed back right after each of its last repairs (of the same
        render) waits (`repair_held_until`): the child is judged as it is and the wait noted
        in `holds`, whose pass reports it and comes back when the wait is over. Without it,
        another controller holding another value got a write per watch event for as long
        as both ran.
        """
        meta = child["metadata"]
        kind, namespace, name = child["kind"], meta["namespace"], meta["name"]
        try:
            current: Mapping[str, Any] | None = (read or self.read).get(kind, namespace, name)
            # Whether the store complies is unknown: leave the schedule as it is.
            frozen = kind == "CronJob" and snapshot.policy_error is not None
            if current is None and not frozen:
                current = self._create_child(child)
            if current is not None and not _made_by_operator(child, current):
                log.warning(
                    "%s %s/%s exists but the operator did not create it: left alone",
                    kind, namespace, name,
                )  # fmt: skip
                return ObservedObject.foreign()
            if (
                current is not None
                and not frozen
                and needs_apply(compared, _comparable_observed(kind, current))
                and not self._left_unconverged(snapshot.store, compared, current)
            ):
                if holds is not None and not self._may_repair(
                    snapshot.store, compared, current, holds
                ):
                    return ObservedObject.present(current)
                if before_apply is not None and not before_apply(current):
                    return ObservedObject.present(current)
                log.info("apply %s %s/%s", kind, namespace, name)
                try:
                    answer = self.kube.apply(child, current["metadata"].get("resourceVersion"))
                except KubeError as error:
                    if error.status != 409 or read is not None:
                        raise
                    log.info(
                        "apply %s %s/%s: changed since the read (409); judged again",
                        kind, namespace, name,
                    )  # fmt: skip
                    # This repair is counted already (`_may_repair`): not twice.
                    return self._act_on_child(child, compared, snapshot, self.kube, before_apply)
                # In the form the cache keeps and drift compares, made once: a CronJob's
                # digest is the costliest part of slimming, comparing and judging it.
                current = _comparable_observed(kind, answer)
                self._written(current)
                if needs_apply(compared, current):
                    replaced = self._replace_child(child, answer)
                    if replaced is not None:
                        current = _comparable_observed(kind, replaced)
                        assert current is not None
                        self._note_unconverged(snapshot.store, compared, current)
        except KubeError as error:
            return ObservedObject.unknown(str(error))
        return ObservedObject.present(current) if current else ObservedObject.absent()

    def _create_child(self, child: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Create an absent child; what is in place then (None: gone again after a 409).

        A 409 (AlreadyExists) is an object the read did not show: read it by name, for the
        caller to judge whose it is (a failed read raises: Unknown, never absent). One POST
        where an apply was one PATCH; its answer goes to the caches as an apply's does (the
        write tracker's echo rule holds for every write). The create's managedFields entry
        is an Update, not an Apply: a later apply cannot remove what that entry owns, so an
        item the render stops setting stays after the apply, which then still differs, and
        `_replace_child` puts the render in place (tests/controller/test_child_adoption.py).
        """
        meta = child["metadata"]
        log.info("create %s %s/%s", child["kind"], meta["namespace"], meta["name"])
        try:
            created = self.kube.create(child)
        except KubeError as error:
            if error.status != 409:
                raise
            return self.kube.get(child["kind"], meta["namespace"], meta["name"])
        current = _comparable_observed(child["kind"], created)  # made once, as an apply's
        self._written(current)
        return current

    def _replace_child(
        self, child: Mapping[str, Any], applied: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Update a child an apply left different from its render; what is in place then
        (None: changed meanwhile, a 409).

        Server-side apply cannot remove an item another field manager added to a keyed list
        (an env variable, a volume or its mount in the purge pod), nor a map key the
        create's managedFields entry (an Update) owns and the render dropped: without this
        the child would stay so, and be re-applied at every reconcile. The update replaces
        it whole, on the applied answer's resourceVersion: a 409 (changed meanwhile) is left
        to the next reconcile, which the change's watch event brings.
        """
        meta = child["metadata"]
        log.info(
            "update %s %s/%s: what the render lacks remains after apply",
            child["kind"], meta["namespace"], meta["name"],
        )  # fmt: skip
        try:
            current = self.kube.replace(replacement(child, applied))
        except KubeError as error:
            if error.status != 409:
                raise
            log.info(
                "update %s %s/%s: changed meanwhile (409); the next reconcile looks again",
                child["kind"], meta["namespace"], meta["name"],
            )  # fmt: skip
            return None
        self._written(current)
        return current

    def _may_repair(
        self,
        store: Store,
        compared: Mapping[str, Any],
        current: Mapping[str, Any],
        holds: _Holds,
    ) -> bool:
        """Whether the child `current`, the operator's and different from its render, may be
        repaired now; if so, the repair is counted (`repair_streak`), else the wait is noted
        in `holds` (and logged once per repair held)."""
        kind, name = compared["kind"], compared["metadata"]["name"]
        key = (store.namespace, store.name)
        render = _digest(compared)
        with self._cache_lock:
            last = self._repairs.get(key, {}).get((kind, name))
        until = repair_held_until(last, render)
        if until is not None and holds.now < until:
            assert last is not None
            holds.held.append((kind, name))
            holds.due.append(until)
            if last.logged != until:
                log.warning(
                    "%s %s/%s was changed back right after each of the last %d repairs "
                    "(another controller or a policy engine holds it different): repaired "
                    "again at %s, not at every change",
                    kind, store.namespace, name, last.streak, format_time(until),
                )  # fmt: skip
                with self._cache_lock:
                    self._repairs.setdefault(key, {})[(kind, name)] = replace(last, logged=until)
            return False
        repair = Repair(holds.now, repair_streak(last, render, holds.now), render)
        with self._cache_lock:
            self._repairs.setdefault(key, {})[(kind, name)] = repair
        if repair.streak > REPAIRS_AT_ONCE:
            # A repair that had to wait: as rendered for now, but changed back after each of
            # the last ones. Said so until a pass REPAIR_WAIT later finds it still as
            # rendered (no True between two holds: a verdict, an Event and a record each).
            holds.held.append((kind, name))
            holds.due.append(holds.now + REPAIR_WAIT)
        return True

    def _note_unconverged(
        self, store: Store, compared: Mapping[str, Any], current: Mapping[str, Any]
    ) -> None:
        """Remember a child an update left still different from its render (or forget one
        that is now as rendered): `_left_unconverged`."""
        kind, meta = compared["kind"], compared["metadata"]
        key, child = (store.namespace, store.name), (kind, meta["name"])
        version = str((current.get("metadata") or {}).get("resourceVersion") or "")
        if not needs_apply(compared, current):
            with self._cache_lock:
                self._unconverged.get(key, {}).pop(child, None)
            return
        log.warning(
            "%s %s/%s still differs from its render after an update (an admission webhook "
            "or a default the operator does not know changes it): reported, and not written "
            "again until it or the store changes",
            kind, meta["namespace"], meta["name"],
        )  # fmt: skip
        with self._cache_lock:
            self._unconverged.setdefault(key, {})[child] = (version, _digest(compared))

    def _left_unconverged(
        self, store: Store, compared: Mapping[str, Any], current: Mapping[str, Any]
    ) -> bool:
        """Whether `current` is the very object an update left different from this same
        render (`_note_unconverged`): writing it again would change nothing."""
        with self._cache_lock:
            entry = self._unconverged.get((store.namespace, store.name), {}).get(
                (compared["kind"], compared["metadata"]["name"])
            )
        if entry is None:
            return False
        version = str((current.get("metadata") or {}).get("resourceVersion") or "")
        return entry == (version, _digest(compared))

    def _prune_reader_binding(
        self, store: Store, desired: list[dict[str, Any]]
    ) -> list[ActFailure]:
        """Remove the readers' RoleBinding once a store lists no readers; what failed."""
        name = names_for(store.name).readers
        if any(c["kind"] == "RoleBinding" and c["metadata"]["name"] == name for c in desired):
            return []
        try:
            current = self.read.get("RoleBinding", store.namespace, name)
        except KubeError as error:
            log.warning("readers' binding of %s/%s: %s", store.namespace, store.name, error)
            return [ActFailure(error, Condition(
                "AccessRestricted",
                "Unknown",
                "ReadersBindingUnreadable",
                f"The store lists no readers, but whether its readers' RoleBinding {name} is "
                f"gone could not be read (HTTP {error.status}); until it is, former readers "
                "may still read the store's Secrets. The operator retries.",
            ))]  # fmt: skip
        # Only the store's own binding (its controller reference): never one someone else made.
        if current and owned_by(current, STORE_KIND, store.uid, controller=True):
            try:
                delete_as_read(self.kube, self.caches, "RoleBinding", store.namespace, current)
            except KubeError as error:
                log.warning("readers' binding of %s/%s: %s", store.namespace, store.name, error)
                return [ActFailure(error, Condition(
                    "AccessRestricted",
                    "False",
                    "ReadersBindingNotRemoved",
                    f"The store lists no readers, but its readers' RoleBinding {name} could "
                    f"not be deleted (HTTP {error.status}): the former readers can still read "
                    "the store's Secrets. The operator retries.",
                ))]  # fmt: skip
        return []

    # Key ring: created once and proven ours, rotated append-only, never regenerated.

    def _key_ring(
        self,
        store: Store,
        snapshot: StoreSnapshot,
        now: datetime,
        clock: Clock,
        controls: Sequence[Condition],
    ) -> RingOutcome:
        """`clock`: the operator's time as the pass goes on (`now` at its start);
        `controls`: this pass's own verdicts that a shredding waits for, besides
        PolicyCompliant (`_not_compliant`)."""
        secret_name = names_for(store.name).key_ring
        record = snapshot.record
        if isinstance(record, Unreadable):
            return _unreadable(store, record)
        max_age = _max_key_age(store, snapshot.policy)
        first = self._create_unseen_ring(store, secret_name, now) if record is None else CONFIRM
        if first is None:
            return RingOutcome(ObservedKeyRing.unknown("create failed"), record)
        secret: dict[str, Any] | None
        if isinstance(first, tuple):
            secret, record = first
        else:
            try:
                secret = self._ring_secret(store.namespace, secret_name)
            except KubeError as error:
                return RingOutcome(ObservedKeyRing.unknown(f"HTTP {error.status}"), record)
        # The resourceVersion of the store as read again when status recorded no ring: a
        # record written then is conditional on it (None: status held one as read).
        unrecorded: str | None = None
        version: str | None = None
        if secret is None:
            if record is None or record.pending:
                # Never create a ring on a cached read alone: status may record one already.
                try:
                    fresh, version = self._fresh_record(store)
                except KubeError as error:
                    return RingOutcome(ObservedKeyRing.unknown(f"HTTP {error.status}"), record)
                if isinstance(fresh, Unreadable):
                    return _unreadable(store, fresh)
                record = fresh
            if record is not None and not record.pending:
                # Status says a ring existed: a new one could not decrypt existing data.
                return RingOutcome(ObservedKeyRing.absent(), record)
            try:
                # On the store as just read: one replaced under its name since refuses it.
                created = self._create_ring(store, secret_name, now, precondition=version)
            except _StaleStore:
                self._same_store(store)  # _StoreGone when replaced: nothing lands on it
                return RingOutcome(ObservedKeyRing.unknown("the store changed meanwhile"), record)
            if created is None:
                return RingOutcome(ObservedKeyRing.unknown("create failed"), record)
            secret, record = created
        observed = ObservedKeyRing.from_secret_data(secret.get("data"))
        ring = observed.ring
        if (record is None or record.pending) and not is_ours(record, ring):
            # The record came from a cache that may not have our own pending write yet: read
            # the store itself before calling the ring foreign.
            try:
                fresh, version = self._fresh_record(store)
            except KubeError as error:
                return RingOutcome(ObservedKeyRing.unknown(f"HTTP {error.status}"), record)
            if isinstance(fresh, Unreadable):
                return _unreadable(store, fresh)
            record = fresh
            unrecorded = version if record is None else None
        # A ring whose creation status has not yet confirmed gets no bucket keys in this pass:
        # a lost status write would leave a pending record that no longer matches the ring.
        settled = record is not None and not record.pending
        if record is None or record.pending:
            if not is_ours(record, ring):
                if not (store.adopt_key_ring and ring is not None):
                    return RingOutcome(observed, record, not_ours=True)
                assert ring is not None
                log.info("adopting key ring %s/%s as the store asks", store.namespace, secret_name)
            elif record is not None and ring is not None and ring_changes(record, ring):
                # Ours by its material, but an entry's creation time or bucket was edited
                # since it was recorded: report, never record the edit as the operator's.
                return RingOutcome(observed, record)
            # An adopted ring's shredded keys are taken in with it (the operator's own new
            # ring has none: a `shredded` entry in it is a change, reported above).
            record = KeyRingRecord.from_ring(
                ring, secret_name, shredded=tuple(ShreddedRecord.of(g) for g in ring.shredded)
            ) if ring else None  # fmt: skip
        if ring is None:
            return RingOutcome(observed, record)
        assert record is not None
        # Destroyed keys of expired buckets the previous release adopted without recording.
        taken = ring.shredded and expired_shreddings(
            record, ring, _expired_in(store, snapshot.policy, now)
        )
        if taken:
            record = replace(record, shredded=(*record.shredded, *taken))
        if ring_changes(record, ring):
            return RingOutcome(observed, record)  # changed out of band: report, never overwrite
        # Ours and intact: owned by the store as its deletionPolicy asks now.
        secret = self._ring_owned_as_asked(store, secret)
        last_rotation = _parse_time(record.last_rotation)
        recorded = record
        # Every recorded key is intact; record the ring as it is now (a rotation whose status
        # write was lost is picked up here).
        record = KeyRingRecord.from_ring(
            ring, secret_name, last_rotation, shredded=record.shredded, owed=record.owed
        )
        buckets = (
            self._bucket_keys(
                store,
                snapshot.policy,
                secret,
                ring,
                recorded,
                record,
                now,
                _not_compliant(snapshot, controls),
                clock,
            )
            if settled
            else BucketOutcome(
                secret,
                ring,
                record,
                # The bucket keys come with the next pass, once status confirms the ring.
                next_due=now + UNSETTLED_RECHECK if _bucketed(store, snapshot.policy) else None,
            )
        )
        secret, ring, record = buckets.secret, buckets.ring, buckets.record
        observed = ObservedKeyRing("present", ring)
        decision = rotation_decision(ring, now, max_age, last_rotation)
        if decision.due:
            rotated = self._rotate(store, secret, ring, recorded, now, unrecorded)
            if rotated is not None:
                ring = rotated
                observed = ObservedKeyRing("present", ring)
                record = KeyRingRecord.from_ring(
                    ring, secret_name, now, shredded=record.shredded, owed=record.owed
                )
                decision = rotation_decision(ring, now, max_age, now)
        return RingOutcome(
            observed, record, next_rotation=decision.next_rotation, buckets=buckets
        )

    # Crypto-shredding: bucket keys created ahead, destroyed once every record has expired.

    def _bucket_keys(
        self,
        store: Store,
        policy: Policy | None,
        secret: dict[str, Any],
        ring: KeyRing,
        recorded: KeyRingRecord,
        record: KeyRingRecord,
        now: datetime,
        not_compliant: str | None,
        clock: Clock,
    ) -> BucketOutcome:
        """Create the bucket keys the category needs; destroy the ones whose records expired.

        Destruction is gated: only keys status recorded (`recorded`, as read, with the same
        fingerprint), never under a legal hold or a dry run, and only once the evidence log
        holds its key.shredded record and status lists it in shreddedBuckets (both first; a
        failure destroys nothing). One Secret write, a compare-and-swap on resourceVersion.

        Nothing is destroyed either on a store that is not compliant (`not_compliant`: this
        pass's PolicyCompliant, then every recorded verdict as read again, which must be True
        and recorded for the spec's generation as read), when the API
        server's time (the Date of that read) and the operator's clock differ by more than
        `max_clock_skew` (the keys due are those due at the server's time), when more than
        LARGE_SHREDDING keys are due at once without SHREDDING_ANNOTATION naming them,
        or when the store's policy, category or retention changed since the decision, or a
        revision of the policy takes effect between the operator's clock and the server's
        (`_category_changed` decides it at both; the wait is "settling").

        The hold is read again from the API (the cache may not have a hold set a moment ago)
        right before anything is recorded, and the shreddedBuckets write is conditional on
        the resourceVersion of that read: a hold set in between makes it fail (409), and
        nothing is destroyed. A key.shredded record whose key then stays is withdrawn by a
        key.shred.cancelled record: when the shreddedBuckets write fails, and when a hold
        finds the shredding listed but the key still in the ring (its ring write failed).
        What is owed is kept in status (owedWithdrawals, written before the key.shredded
        record), so a restart finds it; no key of the store is destroyed until it is written.
        """
        unchanged = BucketOutcome(secret, ring, record)
        category = policy.category(store.category) if policy is not None else None
        if category is None:
            return unchanged  # the retention is unknown: neither create nor destroy
        life = _lifetime(store, category)
        plan = plan_buckets(
            now,
            category.key_buckets,
            life,
            ring.buckets,
            # As status recorded them: the Secret's own list is held to it (`ring_changes`),
            # never a claim that keeps a bucket from getting its key.
            [gone.bucket for gone in record.shredded],
        )
        # Only a key status recorded (`_key_ring` got here only if every recorded key is
        # unchanged in material, creation time and bucket: `ring_changes`).
        records = {key.id for key in recorded.keys}
        due = tuple(
            bucket
            for bucket in plan.due
            if (key := ring.bucket_key(bucket)) is not None and key.id in records
        )
        blocker: ShreddingBlocker | None = None
        problem = None
        owed = self._settle_withdrawals(store, ring, record)
        latest = now + self.settings.max_clock_skew  # the server's time at most, by the gate
        stale = () if owed else listed_not_expired(
            record, ring, _expired_in(store, policy, latest)
        )  # fmt: skip
        if stale:
            listed, owed = self._withdraw_shredding(store, ring, record, stale, NOT_EXPIRED)
            record = replace(record, shredded=listed, owed=owed)
        if owed:
            # The log still claims these keys destroyed: destroy nothing (a claim would date
            # a destruction before it happened) and withdraw nothing else until it is right.
            due = tuple(sorted({*due, *(debt.bucket for debt in owed)}))
            blocker = "failed"
            problem = owed_problem(owed)
        elif due and store.purge.suspend:
            blocker = "legal-hold"
        elif due and store.purge.dry_run:
            blocker = "dry-run"
        elif due and self.settings.evidence is None:
            blocker = "no-evidence-log"
        shred: tuple[str, ...] = ()
        shred_at = now
        shredded = record.shredded
        version = None
        if due and blocker is None and not_compliant is not None:
            blocker, problem = "not-compliant", not_compliant
        found = due  # due by the operator's clock (the server's may not agree yet)
        if due and blocker is None:
            hold = self._hold_now(store, clock)
            blocker, problem, version = hold.blocker, hold.problem, hold.version
            # The operator's time at that read, next to the server's: what the gates compare
            # and what the destruction is recorded at (not the start of a slow pass).
            shred_at = hold.read_at or now
            if blocker is None and version is not None:
                due, blocker, problem = self._shredding_gate(
                    store, policy, hold, due, shred_at, life
                )
        if due and blocker is None and version is not None:
            shredded, owed, problem = self._record_shredding(
                store, ring, record, due, shred_at, life, version
            )
            decided = {gone.bucket for gone in shredded}
            shred = tuple(bucket for bucket in due if bucket in decided)
        elif blocker in _HELD or blocker in _GATED:
            # A shredding listed by an earlier pass whose ring write failed is withdrawn too:
            # a gate keeps the key, so the evidence must not go on saying it is gone.
            assert blocker is not None
            shredded, owed = self._withdraw_shredding(
                store, ring, record, due, CANCEL_REASONS[blocker]
            )
        if owed and problem is None:
            problem = owed_problem(owed)
        if problem is not None and blocker not in _GATED:
            blocker = "failed"
        record = KeyRingRecord.from_ring(
            ring, record.secret_name, _parse_time(record.last_rotation), shredded=shredded,
            owed=owed,
        )  # fmt: skip
        # Held keys wait for a spec change (an event); others are retried soon.
        retry = now + UNSETTLED_RECHECK if found and blocker not in _HELD else plan.next_due
        if not shred and not plan.create:
            return BucketOutcome(secret, ring, record, due, blocker, problem, retry)
        # Each destruction at the time status recorded it (an earlier pass's, when its ring
        # write failed), so the ring's `shredded` list equals status' (`shredded_changes`);
        # new ids above every id status records as given out.
        times = {gone.bucket: _parse_time(gone.shredded) or shred_at for gone in shredded}
        new = add_bucket_keys(
            shred_buckets(ring, shred, shred_at, times), plan.create, now, recorded.next_id
        )
        violations = append_only_violations(ring, new, shredding=shred)
        if violations:  # a bug, not a user error: refuse to write
            log.error("refusing key ring change of %s/%s: %s", store.namespace,
                      record.secret_name, "; ".join(violations))  # fmt: skip
            return BucketOutcome(secret, ring, record, due, "failed", "a bug", retry)
        if plan.create:
            # Recorded before they exist, as the ring itself is: a bucket key in the ring that
            # status never listed was not made here (ring_changes says so, nothing adopts it).
            # With any key an earlier pass recorded as pending whose status write was lost.
            added = keys_to_record(new, recorded)
            try:
                self._record_pending_keys(store, added, None)  # status records the ring
            except KubeError as error:
                log.warning("record bucket keys of %s/%s: %s", store.namespace, store.name, error)
                return BucketOutcome(secret, ring, record, due, "failed" if due else blocker,
                                     f"status write: HTTP {error.status}", retry)  # fmt: skip
        body = {**secret, "data": {**(secret.get("data") or {}), **serialise(new)}}
        try:
            # resourceVersion makes this a compare-and-swap: a concurrent change wins, we retry.
            answer = self.kube.replace(body)
            self._written(answer)
        except KubeError as error:
            log.warning("bucket keys of %s/%s: %s", store.namespace, record.secret_name, error)
            return BucketOutcome(
                secret, ring, record, due, "failed" if due else blocker,
                f"key ring write: HTTP {error.status}", retry,
            )  # fmt: skip
        for bucket in shred:
            log.info("shredded bucket %s key of %s/%s", bucket, store.namespace, store.name)
        for bucket in plan.create:
            key = new.bucket_key(bucket)
            assert key is not None
            self._record(store, "key.created",
                         {**_key_evidence(new, record.secret_name, key.id), "bucket": bucket})
        record = KeyRingRecord.from_ring(
            new, record.secret_name, _parse_time(record.last_rotation), shredded=shredded,
            owed=owed,
        )  # fmt: skip
        left = tuple(bucket for bucket in due if bucket not in shred)
        if not left:
            blocker, retry = None, plan.next_due
        return BucketOutcome(answer, new, record, left, blocker, problem, retry)

    def _hold_now(self, store: Store, clock: Clock | None = None) -> Hold:
        """What keeps due keys now, read from the API, not the cache: the blocker, a problem
        (the store could not be read, or owes a withdrawal the cache did not show), and the
        resourceVersion read (None: nothing may be recorded); with the store as read, its
        status, and the API server's time (the answer's Date) for the gates that follow, with
        the operator's (`clock`) read right after it."""
        try:
            raw, server = self.kube.get_dated("PersonalDataStore", store.namespace, store.name)
            read_at = None if clock is None else clock()
        except KubeError as error:
            return Hold("failed", f"reading the store again: HTTP {error.status}", None)
        if raw is None or raw["metadata"].get("uid") != store.uid:
            return Hold("failed", "the store is gone", None)
        try:
            fresh = parse_store(raw)
        except ModelError:
            return Hold("failed", "the store's spec no longer parses", None)
        version = str(raw["metadata"]["resourceVersion"])
        if fresh.purge.suspend:
            return Hold("legal-hold", None, version)
        if fresh.purge.dry_run:
            return Hold("dry-run", None, version)
        fresh_record = KeyRingRecord.from_status(raw.get("status"))
        if isinstance(fresh_record, Unreadable):
            # Garbled since the cache's copy: nothing is recorded or destroyed on it.
            return Hold("failed", unreadable_problem(fresh_record.field), None)
        if fresh_record is not None and fresh_record.owed:
            # Owed by a pass the cache has not caught up with (another replica's, before it
            # stopped): settled from the cache's next copy, never recorded over.
            return Hold("failed", owed_problem(fresh_record.owed), None)
        return Hold(None, None, version, fresh, raw.get("status"), server, read_at)

    def _first_wait(self, store: Store) -> bool:
        """Whether this is the first wait of `store` (its uid and generation) for its verdicts
        on its spec to be recorded; remembered until the store goes."""
        key = (store.namespace, store.name)
        seen = (store.uid, store.generation)
        with self._cache_lock:
            first = self._waited.get(key) != seen
            self._waited[key] = seen
        return first

    def _shredding_gate(
        self,
        store: Store,
        policy: Policy | None,
        hold: Hold,
        due: tuple[str, ...],
        now: datetime,
        life: Lifetime,
    ) -> tuple[tuple[str, ...], ShreddingBlocker | None, str | None]:
        """The gates weighed on the store as read again (`hold`): what is due at the API
        server's time, and what keeps it (None: the keys may go)."""
        fresh = hold.fresh
        assert fresh is not None and policy is not None  # a hold read found no blocker
        changed = _decision_changed(store, fresh)
        if changed:
            return due, "failed", f"spec.{changed} changed since the keys were found due"
        server = None if hold.server is None else self.settings.skew_reference(hold.server)
        policy_changed, between = self._category_changed(fresh, policy, now, server)
        if policy_changed:
            return due, "failed", policy_changed
        not_in_force = controls_not_in_force(hold.status, fresh.generation)
        if not_in_force is not None:
            return due, "not-compliant", not_in_force
        behind = verdicts_behind(hold.status, fresh.generation)
        if behind:
            # Verdicts on the spec before an edit (the one this pass was queued for): this
            # pass's status write records its own, and the next pass (soon) decides on them.
            # Once per generation: verdicts still behind after that were never recorded (or
            # were put back), and keep the keys.
            if self._first_wait(fresh):
                return due, "settling", None
            return due, "not-compliant", behind_problem(behind, fresh.generation)
        skew = clock_skew_problem(now, server, self.settings.max_clock_skew)
        if skew is not None or server is None:
            return due, "clock-skew", skew
        if between:
            # Within the allowed skew either clock may be the right one: a revision taking
            # effect between them is in force by one and not by the other. Decided once
            # both are past it (a wait of at most the skew: the next pass, in a minute).
            return due, "settling", None
        # Decided at the server's time: a key due only by the operator's clock stays.
        due = tuple(bucket for bucket in due if bucket_expired(bucket, server, life))
        # Released only by an acknowledgement naming these very keys, at this store.
        token = shredding_token(fresh, due) if due else ""
        if due and large_shredding(due, fresh.annotation(SHREDDING_ANNOTATION) == token):
            return due, "not-acknowledged", (
                f"kubectl annotate personaldatastore -n {fresh.namespace} {fresh.name} "
                f"{SHREDDING_ANNOTATION}={token} --overwrite"
            )
        return due, None, None

    def _category_changed(
        self, store: Store, decided: Policy, now: datetime, server: datetime | None
    ) -> tuple[str | None, bool]:
        """Why the store's category in its policy as read again from the API, in force at
        `now` (the operator's clock), is not the one the keys were found due under
        (`decided`: the pass's policy, which the cache gave; an edit, an emergency revision
        or a revision that came into force since may lengthen a period or add a statute);
        None when it is the same. And whether a revision takes effect between `now` and the
        API server's time (`server`): the category in force at `server` is another, or either
        clock is before the revision in force took effect (status no longer records the one
        in force before it, so what was in force at that clock is unknown)."""
        name = store.policy
        try:
            raw = self.kube.get("PrivacyPolicy", None, name)
        except KubeError as error:
            return f"reading PrivacyPolicy {name} again: HTTP {error.status}", False
        if raw is None:
            return f"PrivacyPolicy {name} is gone", False
        category = decided.category(store.category)
        clocks = (now,) if server is None else (now, server)
        between = False
        for clock in clocks:
            try:
                policy, revisions = self._policy_at(name, raw, clock)
            except ModelError:
                return f"PrivacyPolicy {name} no longer parses", False
            since = revisions.in_force.since
            if since > max(clocks):
                # In force from after both clocks: not a skew but a status written so.
                return (
                    f"PrivacyPolicy {name} records its revision in force since "
                    f"{format_time(since)}, after the time now"
                ), False
            if not in_force_known(revisions, clock):
                between = True
            elif policy.category(store.category) != category:
                if clock is not now:
                    between = True
                    continue
                return (
                    f"category {store.category} of PrivacyPolicy {name} changed since the "
                    "keys were found due"
                ), False
        return None, between

    def _record_shredding(
        self,
        store: Store,
        ring: KeyRing,
        record: KeyRingRecord,
        due: tuple[str, ...],
        now: datetime,
        life: Lifetime,
        version: str,
    ) -> tuple[tuple[ShreddedRecord, ...], tuple[OwedWithdrawal, ...], str | None]:
        """Append key.shredded for each due key not yet recorded, then list them in status,
        provided the store is still at `version` (the read that found no hold).

        Each record is owed a withdrawal in status (`owedWithdrawals`) before it is appended,
        and the write that lists it in shreddedBuckets drops the debt: an operator that stops
        in between finds the debt at its next start.

        Returns what status now records as shredded (the keys whose evidence or status write
        failed are not in it, so they are not destroyed), the withdrawals still owed, and the
        problem that stopped it.
        """
        sink = self.settings.evidence
        assert sink is not None
        known = {gone.bucket for gone in record.shredded}
        fingerprints = ring.fingerprints()
        claims = tuple(
            OwedWithdrawal(key.id, bucket, fingerprints[key.id])
            for bucket in due
            if bucket not in known  # else recorded by an earlier pass whose Secret write failed
            and (key := ring.bucket_key(bucket)) is not None
        )
        if not claims:
            return record.shredded, (), None
        try:
            answer = self._patch_encryption(store, {
                "owedWithdrawals": [claim.to_status() for claim in claims]
            }, version)
        except KubeError as error:  # nothing recorded: nothing owed
            if error.status == 409:
                return record.shredded, (), "the store changed meanwhile (HTTP 409)"
            return record.shredded, (), f"status write: HTTP {error.status}"
        if not _owed_kept(answer):
            # An installed CRD older than this operator prunes the field (Helm never upgrades
            # CRDs): the debt would be held nowhere, so nothing is recorded or destroyed.
            log.error("the installed PersonalDataStore CRD drops status.encryption."
                      "owedWithdrawals: no key is shredded until this version's CRDs are "
                      "applied (crds/, or the chart's crds/)")  # fmt: skip
            return record.shredded, (), "the installed CRD is older than the operator"
        version = str(answer["metadata"]["resourceVersion"])
        shredded = list(record.shredded)
        appended: list[OwedWithdrawal] = []
        owed: tuple[OwedWithdrawal, ...] = ()
        problem = None
        for claim in claims:
            payload = {
                **_key_evidence(ring, record.secret_name, claim.id),
                "bucket": claim.bucket,
                "reason": "BucketExpired",
                "expired": expires_at(claim.bucket, life),  # to the microsecond
            }
            try:
                sink.append("key.shredded", f"{store.namespace}/{store.name}", payload)
            except Exception as error:  # the evidence database down, a payload refused, ...
                # It may have been committed all the same (a connection lost after COMMIT):
                # withdrawn once the log is back, so that it never stands unless destroyed.
                problem = f"evidence log: {type(error).__name__}"
                owed = (replace(claim, reason="EvidenceWriteFailed"),)
                log.warning("key.shredded for %s/%s not recorded (%s): nothing destroyed",
                            store.namespace, store.name, type(error).__name__)  # fmt: skip
                break
            appended.append(claim)
            shredded.append(ShreddedRecord(claim.id, claim.bucket, format_time(now)))
        if not appended:
            self._write_owed(store, claims, owed)
            return record.shredded, owed, problem
        try:
            self._patch_encryption(store, {
                "shreddedBuckets": [gone.to_status() for gone in shredded],
                "owedWithdrawals": [debt.to_status() for debt in owed] or None,
            }, version)
        except KubeError as error:
            # Not listed, so not destroyed: what this pass recorded is withdrawn (a later
            # pass records it again before it destroys the key).
            if error.status == 409:
                log.warning("%s/%s changed while its keys were shredded: nothing destroyed",
                            store.namespace, store.name)  # fmt: skip
                hold = self._hold_now(store)[0]
                reason = CANCEL_REASONS.get(hold or "", "StoreChanged")
                problem = "the store changed meanwhile (HTTP 409)"
            elif outcome_unknown(error) and self._listed_now(store, appended):
                # No answer, but the write landed: the keys are listed, as their records say.
                return tuple(shredded), owed, problem
            else:
                reason, problem = "StatusWriteFailed", f"status write: HTTP {error.status}"
            debts = tuple(replace(claim, reason=reason) for claim in appended) + owed
            owed = self._cancel_shredding(store, ring, record.secret_name, debts)
            self._write_owed(store, claims, owed)
            return record.shredded, owed, problem
        return tuple(shredded), owed, problem

    def _listed_now(self, store: Store, claims: Sequence[OwedWithdrawal]) -> bool:
        """Whether the store's status, read again from the API, lists every one of `claims`
        as shredded and owes none of them: a write whose answer was lost (no answer, or a
        server error after it may have committed) is known only by reading what landed.
        KubeError when that read fails too: the pass stops there, withdrawing nothing and
        destroying nothing, and the next one reads what status holds (either the debts, which
        it withdraws, or the listing, which it carries out; both agree with the log)."""
        fresh, _ = self._fresh_record(store)
        if isinstance(fresh, Unreadable) or fresh is None:
            return False
        listed = {(gone.id, gone.bucket) for gone in fresh.shredded}
        owed = {(debt.id, debt.bucket) for debt in fresh.owed}
        wanted = {(claim.id, claim.bucket) for claim in claims}
        return wanted <= listed and not wanted & owed

    def _ring_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The key ring Secret, from the rings' cache while it is watched (KubeError while it
        is not synced: Unknown, never absent). A miss there is confirmed by one GET by name
        before anything follows from it (a create, or "the ring is gone"): a ring whose labels
        were removed is not in the cache, and a ring just made may not be there yet.

        With access records on (`--audit-log`) the ring is read by name at every reconcile:
        that read is the canary whose audit event proves the log covers the store."""
        canary = self.settings.access_records is not None
        caches = None if canary else self.caches
        if caches is not None and caches.watching(KEY_RING_CACHE, namespace):
            cached = caches.get(KEY_RING_CACHE, namespace, name)
            if cached is not None:
                return {"apiVersion": "v1", **cached}  # a LIST's items carry no apiVersion
        return self.kube.get("Secret", namespace, name)

    def _withdraw_shredding(
        self,
        store: Store,
        ring: KeyRing,
        record: KeyRingRecord,
        due: tuple[str, ...],
        reason: str,
    ) -> tuple[tuple[ShreddedRecord, ...], tuple[OwedWithdrawal, ...]]:
        """Withdraw the shreddings status lists of `due` whose keys a hold (a dry run, a gate;
        `reason` says which) now keeps in the ring, or that are not due after all: unlisted
        and owed a withdrawal in one status write first, then a
        key.shred.cancelled record each, so a key never leaves the ring on a withdrawn record
        and a withdrawal the log refuses (or an operator stopping right then) is still owed
        at the next pass. Returns what status still lists, and the withdrawals now owed
        (called only when none was owed before)."""
        withdrawn = tuple(gone for gone in record.shredded if gone.bucket in due)
        if not withdrawn or self.settings.evidence is None:
            return record.shredded, ()
        fingerprints = ring.fingerprints()
        debts = tuple(
            OwedWithdrawal(gone.id, gone.bucket, fingerprints[gone.id], reason)
            for gone in withdrawn
            if gone.id in fingerprints
        )
        kept = tuple(gone for gone in record.shredded if gone not in withdrawn)
        try:
            answer = self._patch_encryption(store, {
                "shreddedBuckets": [gone.to_status() for gone in kept] or None,
                "owedWithdrawals": [debt.to_status() for debt in debts] or None,
            })
        except KubeError as error:
            log.warning("withdraw the shredding of %s/%s: status write HTTP %s", store.namespace,
                        store.name, error.status)  # fmt: skip
            return record.shredded, ()  # still listed, still held: tried again
        owed = self._cancel_shredding(store, ring, record.secret_name, debts)
        if owed and not _owed_kept(answer):
            # An installed CRD older than this operator pruned the debt: the listing is its
            # only marker. Listed again, it is withdrawn again at the next pass (the key
            # still held), or made true (the key destroyed once the hold is lifted).
            unpaid = {debt.id for debt in owed}
            listed = (*kept, *(gone for gone in withdrawn if gone.id in unpaid))
            try:
                self._patch_encryption(store, {
                    "shreddedBuckets": [gone.to_status() for gone in listed]
                })
            except KubeError as error:
                log.error("withdraw the shredding of %s/%s: the installed CRD drops "
                          "owedWithdrawals and listing it again failed (HTTP %s): the "
                          "evidence log keeps a key.shredded record for a key still in the "
                          "ring", store.namespace, store.name, error.status)  # fmt: skip
                return kept, owed
            return listed, owed
        self._write_owed(store, debts, owed)
        return kept, owed

    def _cancel_shredding(
        self,
        store: Store,
        ring: KeyRing,
        secret_name: str,
        debts: tuple[OwedWithdrawal, ...],
    ) -> tuple[OwedWithdrawal, ...]:
        """Append key.shred.cancelled for each of `debts` (key.shredded records that stand
        while their keys stay in the ring); returns those the evidence log refused."""
        sink = self.settings.evidence
        assert sink is not None
        left = []
        for debt in debts:
            assert debt.reason is not None  # standing_withdrawals gives every debt one
            payload = {
                **_key_evidence(ring, secret_name, debt.id),
                "bucket": debt.bucket,
                "reason": debt.reason,
            }
            try:
                sink.append("key.shred.cancelled", f"{store.namespace}/{store.name}", payload)
            except Exception as error:  # the evidence database down, ...
                left.append(debt)
                log.error(
                    "key.shred.cancelled for %s/%s not recorded (%s): the evidence log says "
                    "the key of bucket %s was destroyed, but it is kept; owed in status "
                    "(owedWithdrawals) and retried every pass",
                    store.namespace, store.name, type(error).__name__, debt.bucket,
                )  # fmt: skip
        return tuple(left)

    def _write_owed(
        self,
        store: Store,
        written: tuple[OwedWithdrawal, ...],
        owed: tuple[OwedWithdrawal, ...],
    ) -> None:
        """Bring status.encryption.owedWithdrawals from `written` (what status holds) to
        `owed`. A failed write leaves a debt already paid: written twice, never lost."""
        if owed == written:
            return
        try:
            self._patch_encryption(store, {
                "owedWithdrawals": [debt.to_status() for debt in owed] or None
            })
        except KubeError as error:
            log.warning("owed withdrawals of %s/%s: status write HTTP %s", store.namespace,
                        store.name, error.status)  # fmt: skip

    def _settle_withdrawals(
        self, store: Store, ring: KeyRing, record: KeyRingRecord
    ) -> tuple[OwedWithdrawal, ...]:
        """Write the key.shred.cancelled records status says are owed (a refused one, or one
        an operator stopped before); returns those still owed."""
        standing = standing_withdrawals(record.owed, ring, store.purge.suspend, store.purge.dry_run)
        if standing and self.settings.evidence is not None:
            owed = self._cancel_shredding(store, ring, record.secret_name, standing)
        else:
            owed = standing
        self._write_owed(store, record.owed, owed)
        return owed

    def _fresh_record(self, store: Store) -> tuple[KeyRingRecord | Unreadable | None, str]:
        """The store's ring record read from the API, not the cache (KubeError when unread),
        with the resourceVersion read: what a write that rests on the record is made
        conditional on (a store replaced since has another, so nothing lands on it).

        _StoreGone when the store is deleted (404) or replaced (another uid) since the copy
        being reconciled: its status records nothing of this store's ring, which is not "no
        ring" (a ring made now would be the old store's, its record written into the new one)."""
        raw = self._same_store(store)
        version = str((raw.get("metadata") or {}).get("resourceVersion") or "")
        return KeyRingRecord.from_status(raw.get("status") or {}), version

    def _same_store(self, store: Store) -> dict[str, Any]:
        """The store read from the API (KubeError when unread); _StoreGone when it is deleted
        or replaced by another of its name (another uid) since the copy being reconciled."""
        raw = self.kube.get("PersonalDataStore", store.namespace, store.name)
        if raw is None:
            raise _StoreGone("deleted")
        if (raw.get("metadata") or {}).get("uid") != store.uid:
            raise _StoreGone("replaced by another of its name")
        return raw

    def _record_pending_keys(
        self, store: Store, keys: Sequence[KeyRecord], version: str | None
    ) -> None:
        """Record `keys` as status.encryption.pendingKeys of this very store: at the
        resourceVersion `version` (status read with no ring record), else by a JSON patch
        that first tests the store's uid (status holds a record to add them to). A store
        replaced under its name meanwhile refuses it, and the reconcile stops (_StoreGone);
        any other failure is the KubeError."""
        pending = [key.to_status() for key in keys]
        try:
            if version is not None:
                self._patch_encryption(store, {"pendingKeys": pending}, version)
                return
            answer = self.kube.json_patch("PersonalDataStore", store.namespace, store.name, [
                {"op": "test", "path": "/metadata/uid", "value": store.uid},
                {"op": "add", "path": "/status/encryption/pendingKeys", "value": pending},
            ], "status")  # fmt: skip
            self._written(answer)
        except KubeError as error:
            if error.status in (404, 409, 422):
                self._same_store(store)  # _StoreGone when that was why
            raise

    def _create_unseen_ring(
        self, store: Store, secret_name: str, now: datetime
    ) -> tuple[dict[str, Any], KeyRingRecord] | _Confirm | None:
        """A new store's first ring without the two reads that confirm a cache's "none yet"
        (a GET of the Secret, then of the store), when the caches and one precondition prove
        as much; CONFIRM when they cannot: the caller then reads (`_ring_secret`,
        `_fresh_record`). None: the create failed (`_create_ring`).

        Taken only when the rings' cache is synced and has no Secret of the name, and the
        cached store's status has no `encryption` at all. The pending record is written with
        the cached store's resourceVersion as its precondition: it is accepted only while the
        store is still that version, which proves status held no ring record the cache had not
        seen (a new leader's lagging cache, a write not watched yet); a 409 there: CONFIRM.
        The Secret is then created without a GET first. A Secret of that name that is not
        in the rings' cache (its ring labels removed, planted without them) but is in the
        Secrets' metadata cache: CONFIRM, read by name as before. One that neither cache has
        seen yet (made a moment ago) fails the create with 409, and `_create_ring` reads it
        for `is_ours` to judge against the record just written, which no Secret made before
        it can match: never written over, adopted only as the store asks. With access
        records on, the ring's GET is the canary and is always sent: CONFIRM.
        """
        caches = self.caches
        if caches is None or self.settings.access_records is not None:
            return CONFIRM
        try:
            if not caches.watching(KEY_RING_CACHE, store.namespace):
                return CONFIRM
            if caches.get(KEY_RING_CACHE, store.namespace, secret_name) is not None:
                return CONFIRM
            if caches.watching("Secret", store.namespace) and caches.exists(
                "Secret", store.namespace, secret_name
            ):
                return CONFIRM  # a Secret of the name without the ring's labels: read it
            cached = caches.get("PersonalDataStore", store.namespace, store.name)
        except KubeError:
            return CONFIRM  # not synced: `_ring_secret` says Unknown, never absent
        if cached is None or (cached.get("status") or {}).get("encryption"):
            return CONFIRM
        meta = cached["metadata"]
        version = meta.get("resourceVersion")
        if not version or meta.get("uid") != store.uid:
            return CONFIRM
        try:
            return self._create_ring(store, secret_name, now, precondition=str(version))
        except _StaleStore:
            log.debug("%s/%s changed since its cached version: reading before a key ring",
                      store.namespace, store.name)  # fmt: skip
            return CONFIRM

    def _create_ring(
        self, store: Store, secret_name: str, now: datetime, precondition: str | None = None
    ) -> tuple[dict[str, Any], KeyRingRecord] | None:
        """Record a new ring's fingerprints in status, then create its Secret.

        The record comes first so that whatever Secret then holds the name can be proven to
        be this one. A 409 means a Secret of that name appeared first: it is returned with
        the record, and `is_ours` tells whether it is ours (our own earlier create) or not.
        `precondition`: the store's resourceVersion the record is written at (_StaleStore
        when the store has changed since).
        """
        ring = generate_ring(now)
        record = KeyRingRecord.from_ring(ring, secret_name, pending=True)
        try:
            answer = self._patch_encryption(store, record.to_status(None), precondition)
        except KubeError as error:
            if precondition is not None and error.status == 409:
                raise _StaleStore from None
            log.warning("record new key ring of %s/%s: %s", store.namespace, store.name, error)
            return None
        if ((answer.get("status") or {}).get("encryption") or {}).get("pending") is not True:
            # An outdated CRD pruned the mark: the record would read as a ring that existed,
            # and the ring it proves could never be told from a planted one. Create nothing.
            log.error(
                "not creating the key ring of %s/%s: the installed PersonalDataStore CRD "
                "dropped status.encryption.pending; apply the CRDs of this version",
                store.namespace,
                store.name,
            )
            return None
        body = key_ring_secret(store, serialise(ring))
        try:
            log.info("create key ring %s/%s", store.namespace, secret_name)
            created = self.kube.create(body)
            self._written(created)
            self._record(store, "key.created", _key_evidence(ring, secret_name, ring.primary))
            return created, record
        except KubeError as error:
            if error.status != 409:
                log.warning("create key ring %s/%s: %s", store.namespace, secret_name, error)
                return None
        try:
            existing = self.kube.get("Secret", store.namespace, secret_name)
        except KubeError as error:
            log.warning("read key ring %s/%s: %s", store.namespace, secret_name, error)
            return None
        return (existing, record) if existing is not None else None

    def _rotate(
        self,
        store: Store,
        secret: Mapping[str, Any],
        ring: KeyRing,
        recorded: KeyRingRecord,
        now: datetime,
        unrecorded: str | None = None,
    ) -> KeyRing | None:
        """Add a new primary key; `recorded`: status as read. The new key (and any other
        that status does not yet list) is recorded as pending before the ring is written:
        a key in the ring that status lists nowhere was not made here (`ring_changes`).
        `unrecorded`: the store's resourceVersion when status held no ring record (an
        adopted ring), which the record is written at (`_record_pending_keys`)."""
        new = rotate(ring, now, recorded.next_id)
        violations = append_only_violations(ring, new)
        if violations:  # a bug, not a user error: refuse to write
            log.error(
                "refusing non-append-only rotation of %s/%s: %s",
                store.namespace,
                secret["metadata"]["name"],
                "; ".join(violations),
            )
            return None
        pending = keys_to_record(new, recorded)
        try:
            self._record_pending_keys(store, pending, unrecorded)
        except KubeError as error:
            log.warning("record the new key of %s/%s: %s", store.namespace, store.name, error)
            return None
        body = dict(secret)
        body["data"] = {**(secret.get("data") or {}), **serialise(new)}
        try:
            # resourceVersion makes this a compare-and-swap: a concurrent change wins, we retry.
            self._written(self.kube.replace(body))
        except KubeError as error:
            log.warning(
                "rotate key ring %s/%s: %s", store.namespace, secret["metadata"]["name"], error
            )
            return None
        log.info(
            "rotated key ring %s/%s to key %d",
            store.namespace,
            secret["metadata"]["name"],
            new.primary,
        )
        self._record(
            store,
            "key.rotated",
            {
                **_key_evidence(new, secret["metadata"]["name"], new.primary),
                "previousKeyId": ring.primary,
            },
        )
        return new

    # Purge runs: the Jobs the store's CronJob made, and the pods of the newest finished one.

    def _purge_runs(
        self,
        store: Store,
        applied: Mapping[tuple[str, str], ObservedObject],
        renders: Sequence[Render],
        recorded: Mapping[str, Any] | None,
        now: datetime,
    ) -> PurgeRuns:
        """The store's purge runs: the Jobs with an owner reference to its CronJob that run
        one of `renders` (the CronJob's job template as this pass renders it, then those
        status.purgeRenders records the operator applied before), and the result record of
        the newest finished one's pods that run that render's pod template
        (`partition_runs`); Jobs and pods with the owner reference that run anything else
        are named, never read. `recorded`: the store's `status.lastPurge`, the last run
        counted so far."""
        recorded = recorded if isinstance(recorded, Mapping) and recorded else None
        cronjob = applied.get(("CronJob", names_for(store.name).purge_cronjob))
        if cronjob is not None and cronjob.presence == "unknown":
            # Its runs are found through it: the recorded run does not stand for them.
            return PurgeRuns(error="its CronJob could not be read", recorded=recorded)
        if cronjob is None or cronjob.presence != "present" or cronjob.body is None:
            return PurgeRuns(recorded=recorded)  # no CronJob of ours, so no run of ours
        uid = str(cronjob.body["metadata"].get("uid", ""))
        selector = ",".join(f"{k}={v}" for k, v in sorted(store_selector(store).items()))
        try:
            listed = self.read.list("Job", store.namespace, selector)
        except KubeError as error:
            return PurgeRuns(error=f"jobs: HTTP {error.status}", recorded=recorded)
        current = renders[0][0]

        def runs_of(job: Mapping[str, Any]) -> str | None:
            # Any of the renders counts: the current one stands for them in `partition_runs`.
            runs = job_runs(job)
            return current if run_render(runs, renders) is not None else runs

        jobs, not_ours = partition_runs(listed, "CronJob", uid, current, runs_of)
        deadline = self._stuck_after()
        stuck = stuck_run(jobs, now, deadline)
        recheck = stuck_at(jobs, now, deadline)
        missed = missed_run(cronjob.body, now, self._missed_after(), FIELD_MANAGER)
        runs = PurgeRuns(
            stuck=stuck, missed=missed, recheck=recheck, recorded=recorded,
            not_counted=tuple(not_ours),
        )  # fmt: skip
        unseen = unseen_run(
            cronjob.body, listed, (recorded or {}).get("jobName"), now, self._missed_after()
        )
        if unseen is not None:
            # A run the CronJob started that no Job the operator sees is: its result is
            # unknown, and the last one counted does not stand for it.
            runs = replace(runs, error=(
                f"the run its CronJob started at {format_time(unseen)} is not among them: a "
                "Job without the operator's labels, or deleted before it was read"
            ))  # fmt: skip
        job = newest_finished(jobs)
        if job is None:
            return runs
        job_name = str(job["metadata"]["name"])
        ran = run_render(job_runs(job), renders)
        assert ran is not None  # counted
        try:
            pods, other_pods = partition_runs(
                self.read.list("Pod", store.namespace, f"{JOB_NAME_LABEL}={job_name}"),
                "Job",
                str(job["metadata"].get("uid", "")),
                ran[1],
                pod_runs,
            )
        except KubeError as error:
            return replace(runs, error=f"pods of Job {job_name}: HTTP {error.status}")
        # Every pod of the run is an attempt: the rows each deleted are the run's.
        last = run_status(
            job_name, finished(job) or "", pods, job.get("status") or {}, CONTAINER_NAME
        )
        return replace(runs, last=last, not_counted=(*not_ours, *other_pods))

    def _live_render(
        self, child: Mapping[str, Any], live: Mapping[str, Any]
    ) -> Render | None:
        """The render of the purge CronJob in place (`live`, the operator's: the act checked
        its controller owner reference): `expected_runs` of its job template as the API
        server serves it, with the defaults it fills in, which those of a Job the CronJob
        controller makes from it equal. The caches keep the template as a digest only: then
        the CronJob is read (once per store, at the upgrade that finds no render on record),
        and counts only if the read finds it the operator's still. None: no such CronJob.
        KubeError: the read failed (unknown is not "none")."""
        template = (live.get("spec") or {}).get("jobTemplate")
        if not isinstance(template, Mapping):
            meta = child["metadata"]
            found = self.kube.get("CronJob", meta["namespace"], meta["name"])
            if found is None or not _made_by_operator(child, found):
                return None
            template = (found.get("spec") or {}).get("jobTemplate")
        spec = template.get("spec") if isinstance(template, Mapping) else None
        return expected_runs(spec) if isinstance(spec, Mapping) else None

    def _purge_render(
        self, key: tuple[str, str], cronjob: Mapping[str, Any], form: Mapping[str, Any]
    ) -> Render:
        """`expected_runs` of the rendered purge CronJob's job template, walked once per
        render of it (`form`, its form drift compares, names the template by a digest)."""
        template = form["spec"]["jobTemplate"]
        with self._cache_lock:
            memo = self._render_memo.get(key)
        if memo is not None and memo[0] == template:
            return memo[1]
        render = expected_runs(cronjob["spec"]["jobTemplate"]["spec"])
        with self._cache_lock:
            self._render_memo[key] = (template, render)
        return render

    def _missed_after(self) -> timedelta:
        """How late a scheduled run may start: the CronJob's starting deadline and a grace."""
        return timedelta(seconds=self.settings.render.starting_deadline_seconds + MISSED_GRACE)

    def _stuck_after(self) -> timedelta:
        """How long a run may go on before it is called stuck: its deadline and a grace."""
        return timedelta(seconds=self.settings.render.active_deadline_seconds + STUCK_GRACE)

    def _rbac(self, namespace: str) -> RbacSnapshot | None:
        """The namespace's RBAC findings; from the caches, updated per changed object and
        shared (None: a cache not synced or failed)."""
        if self.caches is None:
            return self._read_rbac(namespace)
        with self._incremental_lock:
            state = self._rbac_states.setdefault(namespace, RbacState(namespace))
            return update_rbac(state, self.caches)

    def _read_rbac(self, namespace: str) -> RbacSnapshot | None:
        try:
            bindings = [
                *self.read.list("RoleBinding", namespace),
                *self.read.list("ClusterRoleBinding"),
            ]
            roles = [*self.read.list("Role", namespace), *self.read.list("ClusterRole")]
        except KubeError:
            return None
        # List items carry no kind; cached objects are shared, so set it on copies.
        bindings = [dict(obj) for obj in bindings]
        roles = [dict(obj) for obj in roles]
        for obj in bindings:
            obj.setdefault(
                "kind",
                "ClusterRoleBinding" if "namespace" not in obj["metadata"] else "RoleBinding",
            )
        for obj in roles:
            obj.setdefault("kind", "ClusterRole" if "namespace" not in obj["metadata"] else "Role")
        return RbacSnapshot(
            tuple(ObservedBinding.from_api(obj) for obj in bindings),
            tuple(ObservedRole.from_api(obj) for obj in roles),
        )

    def _write_status(
        self,
        raw: Mapping[str, Any],
        conditions: list[Condition],
        extra: Mapping[str, Any],
        now: datetime,
        generation: int,
    ) -> None:
        old: Mapping[str, Any] = raw.get("status") or {}
        old_conditions = old.get("conditions") or []
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "conditions": merge_conditions(old_conditions, conditions, now, generation),
            **extra,
        }
        meta = raw["metadata"]
        primary_created = _parse_time((status.get("encryption") or {}).get("primaryKeyCreated"))
        if primary_created is not None:
            record_key_age(
                meta["namespace"], meta["name"], (now - primary_created).total_seconds()
            )
        if _status_holds(old, status):
            record_status(meta["namespace"], meta["name"], status)
            return  # steady state: nothing to write
        patch = dict(status)
        if isinstance(status.get("encryption"), Mapping):
            # A merge patch keeps keys it does not name: drop the ones the record no longer has
            # (`pending`, written just before this reconcile created the ring, among them).
            gone = {k: None for k in old.get("encryption") or {} if k not in status["encryption"]}
            patch["encryption"] = {
                "pending": None, "pendingKeys": None, **gone, **status["encryption"]
            }
        if isinstance(status.get("impactPreview"), Mapping):
            # One preview replaces the last: a Waiting message must not stay in the counts.
            patch["impactPreview"] = _replacing(old.get("impactPreview"), status["impactPreview"])
        written = self._write_status_once("PersonalDataStore", raw, status, patch, now)
        # Once status holds it: after a refused write the metric stays at what status says.
        record_status(meta["namespace"], meta["name"], status)
        if not written:
            return
        for condition, before in transitions(old_conditions, conditions):
            if condition.status != "True" or condition.type == "Ready":
                # One Normal Event when the store becomes Ready, a Warning for every control
                # that stops being in force; a control coming back is said by Ready alone.
                self._event(raw, condition, before, now)
            self.record_evidence(
                meta["namespace"],
                meta["name"],
                "condition.transition",
                {
                    "type": condition.type,
                    "status": condition.status,
                    **({"previousStatus": before} if before else {}),
                    "reason": condition.reason,
                    "message": condition.message[:EVIDENCE_MESSAGE_LIMIT],
                    "observedGeneration": generation,
                },
            )
            if condition.type == "Ready" and condition.status == "True" and before is None:
                created = _parse_time(meta.get("creationTimestamp"))
                if created is not None:
                    TIME_TO_READY.observe((now - created).total_seconds())

    def _record(self, store: Store, kind: str, payload: Mapping[str, Any]) -> bool:
        return self.record_evidence(store.namespace, store.name, kind, payload)

    def record_evidence(
        self, namespace: str, name: str, kind: str, payload: Mapping[str, Any]
    ) -> bool:
        """Append an evidence record about a store; a failure is logged, never raised (it stops
        no reconcile, nor controller/staleness.py). False when it failed."""
        return self._record_subject(f"{namespace}/{name}", kind, payload)

    def _record_subject(self, subject: str, kind: str, payload: Mapping[str, Any]) -> bool:
        """Append an evidence record about `subject`; a failure is logged, never raised.
        False when it may go through if tried again (the evidence database down); True when
        appended, when no evidence log is configured, or when the log refuses the payload
        itself (a bug: retrying cannot help; the log counts it in its outage record)."""
        sink = self.settings.evidence
        if sink is None:
            return True
        failed = append_record(sink, kind, subject, payload)
        if failed is not None:
            log.warning("evidence record %s for %s not written (%s)", kind, subject, failed)
            return False
        return True

    def _event(
        self, raw: Mapping[str, Any], condition: Condition, before: str | None, now: datetime
    ) -> None:
        body = events.event(
            raw, STORE_KIND, action="Reconcile", reason=condition.reason,
            event_type="Warning" if condition.status != "True" else "Normal",
            note=events.transition_note(condition, before), now=now,
            instance=self.settings.reporting_instance,
        )  # fmt: skip
        events.post(self.kube, body, self._event_limiter)


_HELD = ("legal-hold", "dry-run")  # what keeps due bucket keys on purpose
# What keeps them until a person (or the clocks) set something right; `problem` says what.
_GATED = ("clock-skew", "not-compliant", "not-acknowledged")


class Hold(NamedTuple):
    """The store read again before a destruction (`Reconciler._hold_now`)."""

    blocker: ShreddingBlocker | None
    problem: str | None
    version: str | None  # its resourceVersion; None: nothing may be recorded
    fresh: Store | None = None
    status: Any = None
    server: datetime | None = None  # the API server's time (the answer's Date header)
    read_at: datetime | None = None  # the operator's time, read next to it (None: the pass's)


def legal_hold(raw: Mapping[str, Any]) -> bool:
    """Whether the store object `raw` asks a legal hold (`spec.purge.suspend: true`), read
    from its spec as written: one that no longer parses keeps its hold too."""
    purge = (raw.get("spec") or {}).get("purge")
    return isinstance(purge, Mapping) and purge.get("suspend") is True


def _decision_changed(decided: Store, fresh: Store) -> str | None:
    """The field of the store's spec a shredding decision rests on that differs in `fresh`."""
    for name in ("policy", "category", "retention"):
        if getattr(decided, name) != getattr(fresh, name):
            return name
    if _zone_names(decided) != _zone_names(fresh):
        return "records[].timeZone"
    return None


def _zone_names(store: Store) -> tuple[str, ...]:
    """The zones whose calendars the store's tables count their retention on."""
    return tuple(sorted({r.time_zone for r in store.records if r.time_zone is not None}))


def _lifetime(store: Store, category: Category) -> Lifetime:
    """What the store's bucket keys must outlive: the purge's own retention, the category's
    statutory period, on UTC's calendar and its tables' zones' (`records[].timeZone`)."""
    return Lifetime(
        effective_retention(store, category),  # the purge's own
        category.statutory.period if category.statutory else None,
        tuple(parse_zone(name) for name in _zone_names(store)),
    )


def _compliance_findings(snapshot: StoreSnapshot) -> list[Finding]:
    """What keeps the store from being PolicyCompliant, its policy read (the policy's own
    finding, else the store's against it): for the verdict and for the shredding gate."""
    if snapshot.policy_finding:
        return [snapshot.policy_finding]
    return compliance_findings(snapshot.store, snapshot.policy)


def _not_compliant(snapshot: StoreSnapshot, controls: Sequence[Condition] = ()) -> str | None:
    """Why this pass finds the store not PolicyCompliant, or another of its own verdicts
    (`controls`) not True (no key is destroyed), or None."""
    if snapshot.policy_error is not None:
        return f"PrivacyPolicy {snapshot.store.policy} could not be read"
    findings = _compliance_findings(snapshot)
    if findings:
        return "PolicyCompliant is not True: " + ", ".join(f.reason for f in findings)
    # Not a Ready among them: one summing these verdicts alone (`with_act_failures` adds it)
    # is not the store's Ready, and says nothing they do not.
    failing = [c for c in controls if c.status != "True" and c.type != "Ready"]
    if failing:
        return "this pass finds " + ", ".join(f"{c.type} {c.status} ({c.reason})" for c in failing)
    return None
# The cache of the operator's key rings (controller/operator.py SECRET_KINDS).
KEY_RING_CACHE = "KeyRing"
UNSETTLED_RECHECK = timedelta(seconds=60)  # how soon a store not Ready is looked at again
# How long after a run's Job finished its pod's result record may still be on its way (the
# Job's and the pod's watches are two): a run without one is not recorded Unknown before.
RESULT_RECORD_GRACE = timedelta(seconds=60)


def _result_may_come(last: Mapping[str, Any], now: datetime) -> bool:
    """Whether `last` (status.lastPurge) is a run without a result record whose Job finished
    less than RESULT_RECORD_GRACE ago: its record may yet be read, so it is not on record as
    Unknown (that would stand for good: a run is recorded once, by its jobName)."""
    if last.get("result") != "Unknown":
        return False
    finished = _parse_time(last.get("completionTime"))  # none known: recorded as it is
    return finished is not None and now - finished < RESULT_RECORD_GRACE
STUCK_GRACE = 600  # seconds past a run's deadline before it is called stuck
MISSED_GRACE = 300  # seconds past a run's starting deadline before it is called missed


class _Confirm(Enum):
    """`Reconciler._create_unseen_ring`: the caches cannot prove it, read first."""

    CONFIRM = "confirm"


CONFIRM = _Confirm.CONFIRM


def _expired_in(store: Store, policy: Policy | None, now: datetime) -> Callable[[str], bool]:
    """Whether a bucket has expired at `now` under the store's retention and statute, as
    `_bucket_keys` weighs it; never, when the retention is unknown (no policy or category)."""
    category = policy.category(store.category) if policy is not None else None
    if category is None:
        return lambda bucket: False
    life = _lifetime(store, category)

    def expired(bucket: str) -> bool:
        try:
            return bucket_expired(bucket, now, life)
        except BucketError:
            return False

    return expired


class _StaleStore(Exception):
    """The store changed since the resourceVersion a status write was made conditional on."""


class _NotServed(Exception):
    """The store's namespace is not this shard's, or not yet: nothing is judged."""


class _StoreGone(Exception):
    """The store (or policy) being reconciled was deleted or replaced since its cached copy:
    the reconcile stops (its watch event queues the name again, and that reconcile reads what
    is there now)."""


@dataclass(frozen=True)
class ActFailure:
    """A request of the act that failed, and what it leaves the control it was for.

    `condition` None: nothing the store declares is weaker for it (it is only retried)."""

    error: KubeError
    condition: Condition | None = None


_SEVERITY = {"True": 0, "Unknown": 1, "False": 2}


def with_act_failures(
    conditions: Sequence[Condition], failed: Sequence[Condition]
) -> list[Condition]:
    """The judged conditions, each replaced by what a failed act says of its control where
    that is no better (True < Unknown < False), and Ready judged again from the result."""
    worst = {c.type: c for c in failed}
    kept = [
        worst[c.type]
        if c.type in worst and _SEVERITY[worst[c.type].status] >= _SEVERITY[c.status]
        else c
        for c in conditions
        if c.type != "Ready"
    ]
    return [*kept, ready(kept)]


@dataclass(frozen=True)
class Repair:
    """A child's last repair: when, the how-manyth in a row (each soon after the one before,
    of the same render), the digest of that render; `logged`: the hold last logged."""

    at: datetime
    streak: int
    render: bytes
    logged: datetime | None = None


@dataclass
class _Holds:
    """A pass's repairs held back or contested (`_act_on_child`), at `now`: each child's
    (kind, name), and when the pass is due again for them."""

    now: datetime
    held: list[tuple[str, str]] = field(default_factory=list)
    due: list[datetime] = field(default_factory=list)


# A child changed back right after each repair: its first REPAIRS_AT_ONCE repairs in a row are
# made at once, then each waits REPAIR_WAIT, doubling, at most REPAIR_WAIT_MAX after the one
# before. A repair REPAIR_QUIET after the last one (or of another render) starts a new count.
REPAIRS_AT_ONCE = 2
REPAIR_WAIT = timedelta(seconds=5)
REPAIR_WAIT_MAX = timedelta(minutes=5)
REPAIR_QUIET = timedelta(minutes=10)


def repair_streak(last: Repair | None, render: bytes, now: datetime) -> int:
    """The how-manyth repair in a row one of `render` at `now` is, after `last`."""
    if last is None or last.render != render or now - last.at >= REPAIR_QUIET:
        return 1
    return last.streak + 1


def repair_held_until(last: Repair | None, render: bytes) -> datetime | None:
    """When the next repair of a child to `render` may be made, after `last` (None: now)."""
    if last is None or last.render != render or last.streak < REPAIRS_AT_ONCE:
        return None
    doubled = REPAIR_WAIT * (1 << min(16, last.streak - REPAIRS_AT_ONCE))
    return last.at + min(REPAIR_WAIT_MAX, doubled)


@dataclass(frozen=True)
class Outcome:
    """How a reconcile went: `ok` (False: retry with backoff) and when it is due next (s)."""

    ok: bool
    due: float | None = None
    judged: bool = True  # False: its namespace not (yet) this shard's, nothing looked at


@dataclass(frozen=True)
class StoreSnapshot:
    """What one store's verdict depends on, read once at the start of its reconcile.

    Each part is what was read, or the mark of a failed read (`policy_error`, `neighbours`
    None, a failed `network_policies` Listing, `rbac` None, a credentials Secret "unknown").
    """

    store: Store
    policy: Policy | None
    policy_finding: Finding | None
    policy_error: str | None
    neighbours: Neighbours | None
    network_policies: Listing
    rbac: RbacSnapshot | None
    credentials: tuple[tuple[str, Presence], ...]
    record: KeyRingRecord | Unreadable | None  # status.encryption as the operator wrote it
    # When the policy's pending revision takes effect (None: none pending).
    policy_revision_due: datetime | None = None
    # The store's status as read (not copied): EncryptionKeyReady as it records it is kept
    # while a shredding waits for the verdicts on an edit to be recorded (`key_shredding`).
    status: Mapping[str, Any] | None = None
    # The cluster's AdminNetworkPolicies (none where the API does not serve them), and the
    # labels of the store's namespace when known (None: not known).
    admin_policies: Listing = field(default_factory=Listing)
    namespace_labels: Mapping[str, str] | None = None
    # The namespace's CiliumNetworkPolicies and the cluster's CiliumClusterwideNetworkPolicies
    # (none of a kind the API does not serve).
    cilium_policies: Listing = field(default_factory=Listing)
    # The namespace's Calico NetworkPolicies and the cluster's GlobalNetworkPolicies (none of
    # a kind the API does not serve).
    calico_policies: Listing = field(default_factory=Listing)

    def credentials_missing(self) -> list[str]:
        """The credentials Secrets confirmed absent."""
        return [name for name, presence in self.credentials if presence == "absent"]


@dataclass(frozen=True, eq=False)
class PolicyMemo:
    """A PrivacyPolicy object as read (held: compared by identity), whether its own spec
    parses, and the policy parsed from its in-force spec `spec` (or why it does not)."""

    raw: Mapping[str, Any]
    invalid: tuple[str, str] | None  # ModelError's path and message
    spec: Mapping[str, Any] | None = None
    parsed: Policy | tuple[str, str] | None = None


@dataclass(frozen=True, eq=False)
class Neighbours:
    """The other stores of a store's namespace, and what Dataward renders for them: a view of
    the namespace's `NamespaceStores` without the store `name` (so a store's reconcile does
    not copy what its namespace's n stores render: issue 11).

    `declared`: the neighbours' RoleBindings in place exactly as rendered (name -> store
    label), from the namespace's cached RBAC; None when it must be worked out from `rbac`.
    """

    view: NamespaceStores
    name: str
    declared: Mapping[str, str] | None = None
    readers: SecretReaders | None = None  # for `declared`

    def __iter__(self) -> Iterator[Store]:
        return iter(self.stores)

    @cached_property
    def _keep(self) -> list[int]:
        return [i for i, s in enumerate(self.view.stores) if s.name != self.name]

    @property
    def stores(self) -> tuple[Store, ...]:
        """The other stores (O(n): for the rare paths that need them all)."""
        return tuple(self.view.stores[i] for i in self._keep)

    @property
    def rbac(self) -> list[dict[str, Any]]:
        """The others' rendered Roles and RoleBindings (O(n): only without `declared`)."""
        return [item for i in self._keep for item in self.view.rbac[i]]

    @property
    def policies(self) -> Mapping[str, dict[str, Any]]:
        """Rendered NetworkPolicy by name, the store's own included: NetworkIsolated never
        looks its own name up among the others'."""
        return self.view.policy_by_name

    def own_renders(
        self, store: Store
    ) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]] | None:
        """The NetworkPolicy, Roles and RoleBindings the view rendered for `store` itself
        (`render_access`), when it holds that very Store; else None. They hold the parts the
        cached children hold, so that comparing them with those is mostly by identity, and
        `access.rbac_as_rendered` knows them without parsing."""
        return self.view.renders_of(store)

    def renders(self, name: str) -> bool:
        """Whether Dataward renders a Role or RoleBinding called `name` for another store."""
        return any(owner != self.name for owner in self.view.rbac_owners.get(name, ()))


@dataclass(frozen=True, eq=False)
class NamespaceStores:
    """Every parsed store of a namespace with its rendered NetworkPolicy, Roles and
    RoleBindings, derived once per change of the namespace's stores (shared, never changed)."""

    stores: tuple[Store, ...]
    policies: tuple[dict[str, Any], ...]
    rbac: tuple[tuple[dict[str, Any], ...], ...]
    # Rendered RBAC by store label, as `declared_by_neighbours` groups it.
    groups: dict[str, list[Mapping[str, Any]]]
    shared_labels: frozenset[str]
    # Lookups, so that a store's view of its neighbours costs O(1), not O(n).
    policy_by_name: dict[str, dict[str, Any]] = field(default_factory=dict)
    rbac_owners: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @cached_property
    def by_name(self) -> dict[str, Store]:
        """The stores by name."""
        return {store.name: store for store in self.stores}

    @cached_property
    def _renders_by_name(
        self,
    ) -> dict[str, tuple[dict[str, Any], tuple[dict[str, Any], ...]]]:
        return {
            store.name: (policy, items)
            for store, policy, items in zip(self.stores, self.policies, self.rbac, strict=True)
        }

    def rbac_of(self, store: str) -> tuple[dict[str, Any], ...]:
        """The Roles and RoleBindings rendered for the store called `store` (none: none)."""
        renders = self._renders_by_name.get(store)
        return () if renders is None else renders[1]

    def renders_of(
        self, store: Store
    ) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]] | None:
        """`render_access(store)` as this view rendered it, when it holds that very Store
        (the same object: its renders are of these very inputs); else None."""
        if self.by_name.get(store.name) is not store:
            return None
        return self._renders_by_name.get(store.name)

    @classmethod
    def of(
        cls,
        stores: tuple[Store, ...],
        previous: NamespaceStores | None = None,
        cached: CachedChild | None = None,
    ) -> NamespaceStores:
        """Render every store once: a store `previous` holds as the same Store object keeps
        its renders (so they live as long as the views that hold them, not in a cache
        outliving deleted and edited stores). `cached`: as `_held_renders` takes it."""
        before: dict[str, tuple[Store, dict[str, Any], tuple[dict[str, Any], ...]]] = {}
        if previous is not None:
            before = {
                s.name: (s, p, r)
                for s, p, r in zip(previous.stores, previous.policies, previous.rbac, strict=True)
            }
        renders = []
        for store in stores:
            old = before.get(store.name)
            if old is not None and old[0] is store:
                renders.append((old[1], old[2]))
            else:
                renders.append(_held_renders(store, cached))
        rbac = tuple(r for _, r in renders)
        policies = tuple(p for p, _ in renders)
        labels = [label_value(s.name) for s in stores]
        shared = frozenset(label for label in labels if labels.count(label) > 1) if len(
            set(labels)
        ) != len(labels) else frozenset()
        owners: dict[str, list[str]] = {}
        for store, items in zip(stores, rbac, strict=True):
            for item in items:
                owners.setdefault(item["metadata"]["name"], []).append(store.name)
        return cls(
            stores=stores,
            policies=policies,
            rbac=rbac,
            groups=by_store_label([item for items in rbac for item in items]),
            shared_labels=shared,
            policy_by_name={p["metadata"]["name"]: p for p in policies},
            rbac_owners={name: tuple(names) for name, names in owners.items()},
        )

    @cached_property
    def shortened(self) -> bool:
        """Whether a store's label or child names are cut and hashed (`unshortened`)."""
        return not all(unshortened(store.name) for store in self.stores)

    def updated(
        self, changes: Mapping[str, Store | None], cached: CachedChild | None = None
    ) -> NamespaceStores | None:
        """This view with the stores `changes` names replaced, added (last, as the cache adds
        them) or removed (None): every other store keeps its renders, and the groups and
        lookups are copies of this view's with only the changed stores' entries redone. A
        store arriving among 1,000 then costs copies made by C code, not every render
        regrouped (issue 11: while kubectl applied 1,000 stores, nearly every converging
        reconcile rebuilt the view; in-process, 9 of 55 ms CPU a reconcile with 600 stores
        arriving). None (build it with `of`) when a store's label or child
        names are cut and hashed: only then can two stores render the same name, where `of`
        decides which one a lookup finds."""
        if self.shortened or not all(unshortened(name) for name in changes):
            return None
        fresh = {
            name: _held_renders(store, cached)
            for name, store in changes.items()
            if store is not None
        }
        groups = dict(self.groups)
        owners = dict(self.rbac_owners)
        policy_by_name = dict(self.policy_by_name)
        by_name = dict(self.by_name)
        stores: list[Store] = []
        policies: list[dict[str, Any]] = []
        rbac: list[tuple[dict[str, Any], ...]] = []
        if any(name in by_name for name in changes):
            for store, policy, items in zip(self.stores, self.policies, self.rbac, strict=True):
                if store.name in changes:
                    del policy_by_name[policy["metadata"]["name"]]
                    for item in items:
                        groups.pop(store_label(item), None)
                        owners.pop(item["metadata"]["name"], None)
                    new = changes[store.name]
                    if new is None:
                        del by_name[store.name]
                        continue
                    store, (policy, items) = new, fresh[store.name]
                stores.append(store)
                policies.append(policy)
                rbac.append(items)
        else:  # only stores added (while they arrive): the tuples as they are, and those
            stores, policies, rbac = list(self.stores), list(self.policies), list(self.rbac)
        for name in sorted(changes):
            new = changes[name]
            if new is not None and name not in self.by_name:
                stores.append(new)
                policies.append(fresh[name][0])
                rbac.append(fresh[name][1])
        for name, (policy, items) in fresh.items():
            by_name[name] = changes[name]  # type: ignore[assignment]
            policy_by_name[policy["metadata"]["name"]] = policy
            for item in items:
                groups.setdefault(store_label(item), []).append(item)
                item_name = item["metadata"]["name"]  # a Role and its binding may share it
                owners[item_name] = (*owners.get(item_name, ()), name)
        view = NamespaceStores(
            stores=tuple(stores),
            policies=tuple(policies),
            rbac=tuple(rbac),
            groups=groups,
            shared_labels=self.shared_labels,
            policy_by_name=policy_by_name,
            rbac_owners=owners,
        )
        view.__dict__["by_name"] = by_name
        view.__dict__["shortened"] = False
        return view

    def besides(
        self, name: str, shared: tuple[Mapping[str, str], SecretReaders] | None = None
    ) -> Neighbours:
        """The namespace's stores other than `name`; `shared`: the namespace's declared
        bindings and their Secrets (`Reconciler._declared`), narrowed here to the others'."""
        own = label_value(name)
        exact = shared is not None and own not in self.shared_labels
        return Neighbours(
            view=self,
            name=name,
            declared=DeclaredBesides(shared[0], own) if shared is not None and exact else None,
            readers=replace(shared[1], besides=own) if shared is not None and exact else None,
        )


@dataclass(frozen=True)
class RingOutcome:
    """The key ring after the act: as observed, its record, and whether it is not ours."""

    observed: ObservedKeyRing
    record: KeyRingRecord | None
    not_ours: bool = False
    next_rotation: datetime | None = None
    buckets: BucketOutcome | None = None
    # The field of status.encryption that is not in the operator's form (nothing was done).
    unreadable: str | None = None

    @property
    def next_bucket(self) -> datetime | None:
        """When a bucket key is next due for shredding (or retried), if any."""
        return self.buckets.next_due if self.buckets else None


@dataclass(frozen=True)
class BucketOutcome:
    """Crypto-shredding after the act: the ring and record, and what keeps due keys."""

    secret: dict[str, Any] = field(hash=False)
    ring: KeyRing
    record: KeyRingRecord
    due: tuple[str, ...] = ()  # buckets whose every record has expired, still in the ring
    blocker: ShreddingBlocker | None = None
    problem: str | None = None
    next_due: datetime | None = None


@dataclass(frozen=True)
class PurgeRuns:
    """The store's purge runs: the last finished one, one stuck, or why they are unknown."""

    last: Mapping[str, Any] | None = None
    stuck: StuckRun | None = None
    missed: datetime | None = None
    error: str | None = None
    recheck: datetime | None = None  # when a running Job becomes stuck, if nothing happens
    # `status.lastPurge`: the last run counted, which stands while no newer one is listed
    # (its Job deleted by the CronJob's history limit, or made from an earlier template).
    recorded: Mapping[str, Any] | None = None
    # Jobs and pods with our owner reference that do not run the CronJob's template.
    not_counted: tuple[str, ...] = ()


def isolation_and_access(
    snapshot: StoreSnapshot,
    desired: list[dict[str, Any]],
    applied: Mapping[tuple[str, str], ObservedObject],
    trusted: TrustedSubjects,
) -> tuple[Condition, Condition]:
    """NetworkIsolated and AccessRestricted as this pass judges them, from what was observed
    and what the act left in place: known before the key ring is reconciled, so a shredding
    is weighed on this pass's verdicts, not only on the ones the last pass recorded."""
    store = snapshot.store
    names = names_for(store.name)
    netpol = next(c for c in desired if c["kind"] == "NetworkPolicy")
    neighbours = snapshot.neighbours
    neighbour_policies = None if neighbours is None else neighbours.policies
    applied_rbac = [
        {**o.body, "kind": kind}
        for (kind, _), o in applied.items()
        if kind in ("Role", "RoleBinding") and o.body is not None
    ]
    declared = None if neighbours is None else neighbours.declared
    readers = None if neighbours is None else neighbours.readers
    if neighbours is not None and any(
        neighbours.renders(o["metadata"]["name"]) for o in applied_rbac
    ):
        # A neighbour's object was just written here: judge it as written.
        declared, readers = None, None
    # The store's own Roles and RoleBindings as the namespace's view rendered them, when it
    # holds this very store: equal to this pass's renders, and their rules and subjects are
    # the cached objects' own lists where they are in place (no parse to compare them).
    held = None if neighbours is None else neighbours.own_renders(store)
    own_rbac = (
        list(held[1])
        if held is not None
        else [c for c in desired if c["kind"] in ("Role", "RoleBinding")]
    )
    # The neighbours' rendered RBAC is read only to work `declared` out (O(n)).
    neighbour_rbac = (
        None if neighbours is None else neighbours.rbac if declared is None else ()
    )
    return (
        network_isolated(
            netpol,
            applied[("NetworkPolicy", names.network_policy)],
            snapshot.network_policies.items
            if snapshot.network_policies.error is None
            else None,
            neighbours=neighbour_policies,
            other_policies_error=snapshot.network_policies.error,
            admin_policies=snapshot.admin_policies.items
            if snapshot.admin_policies.error is None
            else None,
            admin_policies_error=snapshot.admin_policies.error,
            namespace_labels=snapshot.namespace_labels,
            cilium_policies=snapshot.cilium_policies.items
            if snapshot.cilium_policies.error is None
            else None,
            cilium_policies_error=snapshot.cilium_policies.error,
            calico_policies=snapshot.calico_policies.items
            if snapshot.calico_policies.error is None
            else None,
            calico_policies_error=snapshot.calico_policies.error,
        ),
        access_restricted(
            store.namespace,
            store_secrets(store),
            own_rbac,
            None if snapshot.rbac is None else snapshot.rbac.with_objects(applied_rbac),
            trusted,
            neighbour_rbac,
            declared,
            readers,
            names.key_ring,
        ),
    )


def judge(
    snapshot: StoreSnapshot,
    desired: list[dict[str, Any]],
    applied: Mapping[tuple[str, str], ObservedObject],
    ring: RingOutcome,
    runs: PurgeRuns,
    controls: tuple[Condition, Condition],
    settings: ReconcileSettings,
    now: datetime,
    compared: Sequence[Mapping[str, Any]],
) -> list[Condition]:
    """Every condition of the store, from what was observed and what the act left in place.
    `controls`: NetworkIsolated and AccessRestricted (`isolation_and_access`, judged before
    the key ring); `compared`: `desired` in the form drift compares (`_comparable_render`)."""
    store, policy = snapshot.store, snapshot.policy
    names = names_for(store.name)
    isolated, restricted = controls
    at = next(i for i, c in enumerate(desired) if c["kind"] == "CronJob")
    cronjob = desired[at]
    cronjob_compared = compared[at]
    if snapshot.policy_error is not None:
        compliance = Condition(
            "PolicyCompliant",
            "Unknown",
            "PolicyUnreadable",
            f"PrivacyPolicy {store.policy} could not be read ({snapshot.policy_error}); the "
            "operator retries and leaves the purge schedule as it is until it can.",
        )
        findings: list[Finding] = []
    else:
        findings = _compliance_findings(snapshot)
        compliance = policy_compliant(findings)
    live = applied[("CronJob", cronjob["metadata"]["name"])]
    scheduled = purge_scheduled(
        findings,
        store.purge.suspend,
        # Both sides as the cache keeps a CronJob: its pod template by digest.
        cronjob_compared,
        live if live.body is None else ObservedObject.present(comparable_cronjob(live.body)),
    )
    if snapshot.policy_error is not None:
        scheduled = Condition(
            "PurgeScheduled",
            "Unknown",
            "PolicyUnreadable",
            "Whether the store may be purged depends on its PrivacyPolicy, which could not "
            "be read; the schedule is left as it is.",
        )
    scheduled = _credentials_verdict(snapshot, cronjob, scheduled)
    shown = runs.last if runs.last is not None else runs.recorded
    last = LastPurge.from_status({"lastPurge": shown}) if shown else None
    conditions = [
        compliance,
        isolated,
        key_shredding(
            encryption_key_ready(
                ring.observed,
                ring.record,
                names.key_ring,
                now,
                _max_key_age(store, policy),
                not_ours=ring.not_ours,
                unreadable=ring.unreadable,
            ),
            names.key_ring,
            ring.buckets.due if ring.buckets else (),
            ring.buckets.blocker if ring.buckets else None,
            ring.buckets.problem if ring.buckets else None,
            snapshot.status,
        ),
        restricted,
        scheduled,
        naming_runs_not_counted(
            purge_succeeded(
                last,
                runs.error,
                runs.stuck,
                timedelta(seconds=settings.render.active_deadline_seconds),
                runs.missed,
                zoned=bool(_zone_names(store)),
            ),
            runs.not_counted,
        ),
    ]
    access = settings.access_records
    if access is not None:
        conditions.append(
            access_recorded(
                access.canary(store.namespace, store_secrets(store)),
                names.key_ring,
                str(access.path),
                access.grace,
            )
        )
    conditions = _with_children(conditions, store.namespace, applied)
    return [*conditions, ready(conditions)]


def _with_children(
    conditions: list[Condition], namespace: str, applied: Mapping[tuple[str, str], ObservedObject]
) -> list[Condition]:
    """A foreign child's control is False whatever its check found (the object in place of
    the child is not the store's); an unreadable child's is not True."""
    foreign = [key for key, observed in applied.items() if observed.presence == "foreign"]
    unreadable = [key for key, observed in applied.items() if observed.presence == "unknown"]
    return with_children_unreadable(
        with_children_not_ours(conditions, namespace, foreign), namespace, unreadable
    )


def _credentials_verdict(
    snapshot: StoreSnapshot, cronjob: Mapping[str, Any], scheduled: Condition
) -> Condition:
    """PurgeScheduled when a credentials Secret is missing (no purge starts) or unreadable."""
    name = f"{cronjob['metadata']['namespace']}/{cronjob['metadata']['name']}"
    missing = snapshot.credentials_missing()
    if missing:
        return Condition(
            "PurgeScheduled",
            "False",
            "CredentialsSecretMissing",
            f"Secret {', '.join(missing)} named by the store's database credentials does not "
            f"exist in namespace {snapshot.store.namespace}, so CronJob {name} is suspended "
            "and no purge starts: create the Secret (keys username and password) or fix "
            "spec.database.credentialsSecret.",
        )
    unknown = [secret for secret, presence in snapshot.credentials if presence == "unknown"]
    if unknown and scheduled.status == "True":
        return Condition(
            "PurgeScheduled",
            "Unknown",
            "CredentialsSecretUnreadable",
            f"Whether Secret {', '.join(unknown)} exists could not be read; the operator "
            "retries. Check that it may get secrets in this namespace.",
        )
    return scheduled


def _made_by_operator(child: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether `current`, the object of a child's name, is the store's: it carries the
    controller owner reference to the store that the render puts on every child."""
    return any(
        owned_by(current, ref["kind"], ref["uid"], controller=True)
        for ref in child["metadata"].get("ownerReferences") or ()
        if ref.get("controller") is True
    )


def _template_as_rendered(compared: Mapping[str, Any], observed: ObservedObject) -> bool:
    """Whether the CronJob in place (`observed`) has the rendered job template (`compared`,
    `_comparable_render`'s form: by digest)."""
    if observed.presence != "present" or observed.body is None:
        return False
    in_place = comparable_cronjob(observed.body)
    return bool((in_place.get("spec") or {}).get("jobTemplate") == compared["spec"]["jobTemplate"])


def _comparable_render(child: Mapping[str, Any]) -> Mapping[str, Any]:
    """A rendered child in the form drift compares (a CronJob's pod template by its digest,
    as the cache keeps it; render/purge_job.py)."""
    return comparable_cronjob(child, rendered=True) if child["kind"] == "CronJob" else child


def _comparable_observed(
    kind: str, current: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """An observed child of `kind` in the form drift compares (`_comparable_render`)."""
    if current is None or kind != "CronJob":
        return current
    return comparable_cronjob(current)


# The cached object of a kind and name in the namespace being viewed (None: none held).
CachedChild = Callable[[str, str], Mapping[str, Any] | None]


def _held_renders(
    store: Store, cached: CachedChild | None = None
) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]]:
    """`render_access(store)`, the store's NetworkPolicy, Roles and RoleBindings as the
    namespace's views keep them (`NamespaceStores.of`), with their parts held once, as the
    cache holds its objects' (`share_render`): the labels, owner references and compared
    bodies of a converged store's renders are its cached children's (about 3 KiB a store of
    the namespace views, issue 11), and a Role and its RoleBinding, whose metadata is equal,
    hold one metadata. The renders are changed in place before anyone reads them, and never
    after: its neighbours' verdicts read them, and the store's own reconcile acts on them
    (`Neighbours.own_renders`).

    This replaced a walk of every dict and list of every render (`_shared_parts`), which cost
    a restart's first pass about a quarter of its CPU, and shared little more (issue 11).
    `cached`: the namespace's cached children, whose equal parts are taken as they are
    (`share_render`)."""
    policy, rbac = render_access(store)
    for item in (policy, *rbac):
        name = item["metadata"]["name"]
        share_render(item, None if cached is None else cached(item["kind"], name))
    metadata: list[dict[str, Any]] = []
    for item in rbac:
        meta = item["metadata"]
        equal = next((m for m in metadata if m == meta), None)
        if equal is None:
            metadata.append(meta)
        else:
            item["metadata"] = equal
    return policy, rbac


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """The same objects (not equal ones: identity is what the memos keep)."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _status_holds(held: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether a store's status `held` says all that `status` does, compared in the form the
    cache keeps a status in (condition messages as digests) on both sides: nothing to write."""
    wanted, kept = comparable_status(status), comparable_status(held)
    return all(kept.get(k) == v for k, v in wanted.items())


def _digest(value: object) -> bytes:
    """A short fingerprint of a JSON-like value (equal values, equal digests)."""
    return hashlib.blake2b(canonical_text(value), digest_size=16).digest()


def _suspended(cronjob: dict[str, Any]) -> dict[str, Any]:
    """The CronJob with its schedule suspended."""
    return {**cronjob, "spec": {**cronjob["spec"], "suspend": True}}


def _max_key_age(store: Store, policy: Policy | None) -> Duration:
    return (
        effective_key_rotation(store, policy)
        if policy
        else (store.key_rotation or DEFAULT_KEY_ROTATION)
    )


def _bucketed(store: Store, policy: Policy | None) -> bool:
    """Whether the store's category asks for bucket keys (crypto-shredding)."""
    category = policy.category(store.category) if policy is not None else None
    return category is not None and category.key_buckets is not None


def _parse_or_none(raw: Mapping[str, Any]) -> Store | None:
    """A neighbour store, or None when its spec does not parse (it renders nothing then)."""
    try:
        return parse_store(raw)
    except ModelError:
        return None


EVIDENCE_MESSAGE_LIMIT = 1024  # what an evidence record keeps of a condition's message


def _key_evidence(ring: KeyRing, secret_name: str, key_id: int) -> dict[str, Any]:
    """A key's evidence: id, algorithm, creation and fingerprint, never its material."""
    key = next(k for k in ring.keys if k.id == key_id)
    return {
        "secret": secret_name,
        "keyId": key_id,
        "algorithm": "AES-256-GCM",
        "created": format_time(key.created),
        "fingerprint": ring.fingerprints()[key_id],
    }


def _purge_run_evidence(last: Mapping[str, Any]) -> dict[str, Any]:
    """A finished run's `status.lastPurge` as a purge.run payload."""
    payload = purge_run_payload(last)
    payload.setdefault("dryRun", bool(last.get("dryRun", False)))
    if isinstance(last.get("jobName"), str):
        payload["jobName"] = last["jobName"]
    return payload


def is_ready(store: Mapping[str, Any]) -> bool:
    """Whether a store's status says Ready=True (garbled conditions say nothing of the kind;
    whoever may patch the store's status can write them)."""
    status = store.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    return isinstance(conditions, list) and any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
    )


def counted_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a store's change (`old` to `new`) changes what its policy's status shows of
    it: its Ready, or its impact preview of the pending revision."""
    return is_ready(old) != is_ready(new) or (old.get("status") or {}).get("impactPreview") != (
        new.get("status") or {}
    ).get("impactPreview")


def _ready_changed(raw: Mapping[str, Any], conditions: Sequence[Condition]) -> bool:
    """Whether this reconcile moves the store's Ready to another status."""
    now_ready = next((c.status == "True" for c in conditions if c.type == "Ready"), False)
    return now_ready != is_ready(raw)


def _unreadable(store: Store, record: Unreadable) -> RingOutcome:
    """The ring left as it is: its record in status is garbled. No record goes back to status
    (the garbled one stays for a person to restore: see EncryptionKeyReady StatusUnreadable)."""
    log.warning("%s/%s: %s is not in the form the operator writes; its key ring is left as "
                "it is until the field is restored", store.namespace, store.name,
                record.field)  # fmt: skip
    return RingOutcome(ObservedKeyRing.unknown("status unreadable"), None,
                       unreadable=record.field)  # fmt: skip


def _owed_kept(answer: Mapping[str, Any]) -> bool:
    """Whether a status write's answer keeps `status.encryption.owedWithdrawals` (an
    installed CRD older than this operator prunes it: Helm never upgrades CRDs)."""
    return bool(((answer.get("status") or {}).get("encryption") or {}).get("owedWithdrawals"))


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _takes_effect(revisions: Revisions | None) -> datetime | None:
    """When to look again for the pending revision; None when none is pending, or when it
    waits for its impact gate (a store's preview or the acknowledgement: both are events)."""
    if revisions is None or revisions.pending is None or revisions.pending.held is not None:
        return None
    return revisions.pending.takes_effect


def _replacing(old: Any, new: Any) -> Any:
    """A merge patch turning `old` into `new`: keys `new` lacks are set to null."""
    if not isinstance(new, Mapping):
        return new
    patch = {k: _replacing(old.get(k) if isinstance(old, Mapping) else None, v)
             for k, v in new.items()}  # fmt: skip
    if isinstance(old, Mapping):
        patch.update({k: None for k in old if k not in new})
    return patch


def _revision_condition(revisions: Revisions, name: str) -> Condition:
    """RevisionInForce: whether the spec as written is the revision in force, or waits for
    its effective date and notice period."""
    pending = revisions.pending
    if pending is not None and pending.held is not None:
        due = f"Generation {pending.generation} was due at {format_instant(pending.takes_effect)} "
        still = (
            f" (status.revisions.pending.impact); generation {revisions.in_force.generation} is "
            f"still enforced. If intended, run: kubectl annotate privacypolicy {name} "
            f"{ACKNOWLEDGE_ANNOTATION}={pending.acknowledge_token} --overwrite"
        )
        if pending.held == LARGE_CUT:
            return Condition(
                "RevisionInForce",
                "False",
                "ImpactNotAcknowledged",
                due + "but would cut more than the large-cut threshold of a store's table" + still,
            )
        return Condition(
            "RevisionInForce",
            "False",
            "ImpactUnknown",
            due + "but what it would purge is not counted for every store it changes" + still,
        )
    if pending is None:
        return Condition(
            "RevisionInForce",
            "True",
            "Current",
            f"Generation {revisions.in_force.generation} is in force since "
            f"{format_instant(revisions.in_force.since)}; no revision is pending.",
        )
    if pending.emergency is not None:
        return Condition(
            "RevisionInForce",
            "False",
            "EmergencyRevision",
            f"Generation {pending.generation} takes effect at "
            f"{format_instant(pending.takes_effect)} without notice, by emergency override "
            f"({pending.emergency}); until then generation {revisions.in_force.generation} "
            "is enforced.",
        )
    why = "; ".join(pending.widens) or "it does not widen collection or retention"
    return Condition(
        "RevisionInForce",
        "False",
        "NoticePeriod",
        f"Generation {pending.generation} takes effect at {format_instant(pending.takes_effect)} "
        f"({pending.notice_days} days' notice: {why}); until then generation "
        f"{revisions.in_force.generation} is enforced.",
    )


def _pending_note(pending: Pending) -> str:
    override = f" by emergency override ({pending.emergency})" if pending.emergency else ""
    return (
        f"Revision (generation {pending.generation}) pending: takes effect at "
        f"{format_instant(pending.takes_effect)}{override}, {pending.notice_days} days' notice"
        + (f"; widens: {'; '.join(pending.widens)}" if pending.widens else "")
    )


def _in_force_note(revisions: Revisions) -> str:
    return (
        f"Generation {revisions.in_force.generation} is in force since "
        f"{format_instant(revisions.in_force.since)}; its stores are judged and purged by it."
    )


def _revision_evidence(name: str, revisions: Revisions) -> dict[str, Any]:
    """The policy.revision record of the revision now in force (no personal data)."""
    in_force = revisions.in_force
    spec = in_force.spec
    payload: dict[str, Any] = {
        "policy": name,
        "generation": in_force.generation,
        "digest": digest(spec),
        "since": format_instant(in_force.since),
        "categories": sorted(
            str(c.get("name")) for c in spec.get("categories") or () if isinstance(c, Mapping)
        ),
    }
    for key in ("effectiveDate", "announced"):
        if spec.get(key):
            payload[key] = spec[key]
    if revisions.override is not None:
        payload["emergency"] = revisions.override
    return payload
