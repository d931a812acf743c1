"""One level-triggered reconcile of a store: read, decide (pure), write only what differs.

Create, update, resume, policy changes, child drift and the periodic resync all end here;
nothing depends on the difference between "created" and "updated".
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dataward.checks.access import access_restricted
from dataward.checks.conditions import Condition, merge_conditions, ready, transitions
from dataward.checks.drift import needs_apply
from dataward.checks.encryption import encryption_key_ready, ring_changes
from dataward.checks.network import network_isolated
from dataward.checks.observed import (
    KeyRingRecord,
    LastPurge,
    ObservedKeyRing,
    ObservedObject,
    RbacSnapshot,
    TrustedSubjects,
)
from dataward.checks.policy import policy_compliant
from dataward.checks.purge import purge_scheduled, purge_succeeded
from dataward.controller.kube import Kube, KubeError
from dataward.controller.metrics import KEY_AGE, RECONCILES, TIME_TO_READY, record_status
from dataward.controller.purge_results import last_purge_from_jobs
from dataward.keys.ring import (
    KeyRing,
    append_only_violations,
    generate_ring,
    rotate,
    rotation_decision,
    serialise,
)
from dataward.model.compliance import Finding, compliance_findings, effective_key_rotation
from dataward.model.errors import ModelError
from dataward.model.policy import DEFAULT_KEY_ROTATION, Policy, parse_policy
from dataward.model.store import Store, parse_store
from dataward.render import RenderSettings, label_value, names_for, render_children
from dataward.render.key_ring import render_key_ring_metadata
from dataward.render.labels import STORE_KIND
from dataward.render.rbac import store_secrets

log = logging.getLogger("dataward.reconcile")

StoreKey = tuple[str, str]
KEY_RING_FINALIZER = "dataward.io/key-ring-grace-period"


@dataclass(frozen=True)
class ReconcileSettings:
    """What the operator's configuration decides for every store."""

    render: RenderSettings = field(default_factory=RenderSettings)
    # The operator's own identity reads Secrets by design; it is not a foreign reader.
    operator_service_account: tuple[str, str] | None = None
    reporting_instance: str = "dataward"
    # deletionPolicy: Delete keeps the key ring this long after the store is deleted.
    key_ring_grace_seconds: float = 30 * 24 * 3600


class Reconciler:
    """Reconciles stores through a Kube; between calls it keeps only a short-lived cache."""

    CLUSTER_CACHE_SECONDS = 3.0

    def __init__(
        self, kube: Kube, settings: ReconcileSettings, namespaces: tuple[str, ...] = ()
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.namespaces = namespaces
        trusted = TrustedSubjects()
        if settings.operator_service_account:
            trusted = trusted.with_service_account(*settings.operator_service_account)
        self.trusted = trusted
        self._cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._cache_lock = threading.Lock()

    # Lookups used by the event handlers.

    def _stores(self) -> list[dict[str, Any]]:
        if not self.namespaces:
            return self.kube.list("PersonalDataStore")
        return [s for ns in self.namespaces for s in self.kube.list("PersonalDataStore", ns)]

    def all_stores(self) -> list[StoreKey]:
        """Every store in the watched namespaces."""
        return [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in self._stores()]

    def stores_of_policy(self, policy: str) -> list[StoreKey]:
        """The stores whose spec.policy names `policy`."""
        return [
            (s["metadata"]["namespace"], s["metadata"]["name"])
            for s in self._stores()
            if (s.get("spec") or {}).get("policy") == policy
        ]

    def stores_with_label(self, namespace: str, label: str) -> list[StoreKey]:
        """The stores in `namespace` whose child label value is `label` (names may be hashed)."""
        return [
            (namespace, s["metadata"]["name"])
            for s in self.kube.list("PersonalDataStore", namespace)
            if label_value(s["metadata"]["name"]) == label
        ]

    def reconcile_logged(self, key: StoreKey) -> None:
        """Reconcile and log failures; the next event or resync retries."""
        try:
            self.reconcile(key)
            RECONCILES.labels("ok").inc()
        except KubeError as error:
            RECONCILES.labels("error").inc()
            log.warning("reconcile %s/%s: %s (will retry)", *key, error)
        except Exception:
            RECONCILES.labels("error").inc()
            log.exception("reconcile %s/%s failed (will retry)", *key)

    # The reconcile.

    def reconcile(self, key: StoreKey, now: datetime | None = None) -> None:
        """Bring one store's children and status in line with its spec."""
        namespace, name = key
        now = now or datetime.now(UTC)
        raw = self.kube.get("PersonalDataStore", namespace, name)
        if raw is None:
            return
        if raw["metadata"].get("deletionTimestamp"):
            self._finish_deletion(raw, now)
            return
        old_status: Mapping[str, Any] = raw.get("status") or {}
        generation = int(raw["metadata"].get("generation") or 0)
        try:
            store = parse_store(raw)
        except ModelError as error:
            self._write_status(
                raw,
                [
                    Condition(
                        "PolicyCompliant", "False", "InvalidSpec", f"{error.path}: {error.message}."
                    )
                ],
                {},
                now,
                generation,
            )
            return
        self._keep_grace_finalizer(raw, store.deletion_policy == "Delete")
        policy, policy_finding = self._read_policy(store.policy)
        findings = [policy_finding] if policy_finding else compliance_findings(store, policy)

        desired = render_children(store, policy, self.settings.render)
        observed = {(c["kind"], c["metadata"]["name"]): self._apply(c) for c in desired}
        self._prune_reader_binding(store, desired)

        ring_state, record, next_rotation = self._key_ring(store, policy, old_status, now)
        last = last_purge_from_jobs(self.kube, store)
        conditions = self._conditions(
            store, policy, findings, desired, observed, ring_state, record, last, now
        )
        extra: dict[str, Any] = {}
        if record is not None:
            extra["encryption"] = record.to_status(next_rotation)
        if last is not None:
            extra["lastPurge"] = last
        self._write_status(raw, conditions, extra, now, generation)

    # deletionPolicy: Delete destroys the key ring only after a grace period. The ring is owned
    # by the store, so the store is held by a finalizer until the grace period has passed;
    # then the finalizer goes and the garbage collector removes the ring with the rest.

    def _keep_grace_finalizer(self, raw: Mapping[str, Any], wanted: bool) -> None:
        finalizers = list(raw["metadata"].get("finalizers") or [])
        if wanted == (KEY_RING_FINALIZER in finalizers):
            return
        if wanted:
            finalizers.append(KEY_RING_FINALIZER)
        else:
            finalizers.remove(KEY_RING_FINALIZER)
        self._patch_finalizers(raw, finalizers)

    def _patch_finalizers(self, raw: Mapping[str, Any], finalizers: list[str]) -> None:
        meta = raw["metadata"]
        # resourceVersion makes the merge patch a compare-and-swap on the finalizer list.
        self.kube.merge_patch(
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
        deleted = _parse_time(meta["deletionTimestamp"])
        assert deleted is not None
        delete_after = deleted + timedelta(seconds=self.settings.key_ring_grace_seconds)
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
        self.kube.merge_patch(
            "PersonalDataStore",
            meta["namespace"],
            meta["name"],
            {"status": {"encryption": encryption}},
            subresource="status",
        )
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

    def reconcile_policy(self, name: str, now: datetime | None = None) -> None:
        """Write a PrivacyPolicy's status: Ready when it parses, and how many stores use it."""
        now = now or datetime.now(UTC)
        raw = self.kube.get("PrivacyPolicy", None, name)
        if raw is None:
            return
        try:
            parse_policy(raw)
            condition = Condition(
                "Ready",
                "True",
                "Valid",
                "The policy is valid; stores may reference its categories.",
            )
        except ModelError as error:
            condition = Condition(
                "Ready", "False", "InvalidPolicy", f"{error.path}: {error.message}."
            )
        generation = int(raw["metadata"].get("generation") or 0)
        old: Mapping[str, Any] = raw.get("status") or {}
        status = {
            "observedGeneration": generation,
            "conditions": merge_conditions(
                old.get("conditions") or [], [condition], now, generation
            ),
            "stores": len(self.stores_of_policy(name)),
        }
        if all(old.get(k) == v for k, v in status.items()):
            return
        self.kube.merge_patch("PrivacyPolicy", None, name, {"status": status}, subresource="status")

    def reconcile_policy_logged(self, name: str) -> None:
        """Reconcile a policy's status and log failures; the next event retries."""
        try:
            self.reconcile_policy(name)
        except Exception:
            log.exception("status of PrivacyPolicy %s not written (will retry)", name)

    def _read_policy(self, name: str) -> tuple[Policy | None, Finding | None]:
        raw = self.kube.get("PrivacyPolicy", None, name)
        if raw is None:
            return None, None
        try:
            return parse_policy(raw), None
        except ModelError as error:
            return None, Finding(
                "PolicyInvalid",
                f"PrivacyPolicy {name!r} cannot be read ({error.path}: "
                f"{error.message}); fix the policy.",
                "spec.policy",
            )

    def _apply(self, child: Mapping[str, Any]) -> ObservedObject:
        meta = child["metadata"]
        try:
            current = self.kube.get(child["kind"], meta["namespace"], meta["name"])
            if needs_apply(child, current):
                log.info("apply %s %s/%s", child["kind"], meta["namespace"], meta["name"])
                current = self.kube.apply(child)
        except KubeError as error:
            return ObservedObject.unknown(str(error))
        return ObservedObject.present(current) if current else ObservedObject.absent()

    def _prune_reader_binding(self, store: Store, desired: list[dict[str, Any]]) -> None:
        """Remove the readers' RoleBinding once a store lists no readers."""
        name = names_for(store.name).readers
        if any(c["kind"] == "RoleBinding" and c["metadata"]["name"] == name for c in desired):
            return
        current = self.kube.get("RoleBinding", store.namespace, name)
        if current and any(
            ref.get("uid") == store.uid for ref in current["metadata"].get("ownerReferences") or []
        ):
            self.kube.delete("RoleBinding", store.namespace, name)

    # Key ring: create once, rotate append-only, never regenerate.

    def _key_ring(
        self, store: Store, policy: Policy | None, old_status: Mapping[str, Any], now: datetime
    ) -> tuple[ObservedKeyRing, KeyRingRecord | None, datetime | None]:
        secret_name = names_for(store.name).key_ring
        record = KeyRingRecord.from_status(old_status)
        max_age = (
            effective_key_rotation(store, policy)
            if policy
            else (store.key_rotation or DEFAULT_KEY_ROTATION)
        )
        try:
            secret = self.kube.get("Secret", store.namespace, secret_name)
        except KubeError as error:
            return ObservedKeyRing.unknown(f"HTTP {error.status}"), record, None
        if secret is None:
            if record is not None:
                # Status says a ring existed: a new one could not decrypt existing data.
                return ObservedKeyRing.absent(), record, None
            secret = self._create_ring(store, secret_name, now)
            if secret is None:
                return ObservedKeyRing.unknown("create failed"), record, None
        observed = ObservedKeyRing.from_secret_data(secret.get("data"))
        if observed.ring is None:
            return observed, record, None
        ring = observed.ring
        if record is not None and ring_changes(record, ring):
            return observed, record, None  # changed out of band: report, never overwrite
        last_rotation = _parse_time(record.last_rotation) if record else None
        # Every recorded key is intact; record the ring as it is now (a rotation whose status
        # write was lost is picked up here).
        record = KeyRingRecord.from_ring(ring, secret_name, last_rotation)
        decision = rotation_decision(ring, now, max_age, last_rotation)
        if decision.due:
            rotated = self._rotate(store, secret, ring, now)
            if rotated is not None:
                ring = rotated
                observed = ObservedKeyRing("present", ring)
                record = KeyRingRecord.from_ring(ring, secret_name, now)
                decision = rotation_decision(ring, now, max_age, now)
        return observed, record, decision.next_rotation

    def _create_ring(self, store: Store, secret_name: str, now: datetime) -> dict[str, Any] | None:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": render_key_ring_metadata(store),
            "type": "Opaque",
            "immutable": False,
            "data": serialise(generate_ring(now)),
        }
        try:
            log.info("create key ring %s/%s", store.namespace, secret_name)
            return self.kube.create(body)
        except KubeError as error:
            if error.status == 409:  # someone (a previous run) created it: keep theirs
                return self.kube.get("Secret", store.namespace, secret_name)
            log.warning("create key ring %s/%s: %s", store.namespace, secret_name, error)
            return None

    def _rotate(
        self, store: Store, secret: Mapping[str, Any], ring: KeyRing, now: datetime
    ) -> KeyRing | None:
        new = rotate(ring, now)
        violations = append_only_violations(ring, new)
        if violations:  # a bug, not a user error: refuse to write
            log.error(
                "refusing non-append-only rotation of %s/%s: %s",
                store.namespace,
                secret["metadata"]["name"],
                "; ".join(violations),
            )
            return None
        body = dict(secret)
        body["data"] = {**(secret.get("data") or {}), **serialise(new)}
        try:
            # resourceVersion makes this a compare-and-swap: a concurrent change wins, we retry.
            self.kube.replace(body)
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
        return new

    # Conditions and status.

    def _conditions(
        self,
        store: Store,
        policy: Policy | None,
        findings: list[Finding],
        desired: list[dict[str, Any]],
        observed: Mapping[tuple[str, str], ObservedObject],
        ring_state: ObservedKeyRing,
        record: KeyRingRecord | None,
        last_purge: Mapping[str, Any] | None,
        now: datetime,
    ) -> list[Condition]:
        names = names_for(store.name)
        netpol = next(c for c in desired if c["kind"] == "NetworkPolicy")
        cronjob = next(c for c in desired if c["kind"] == "CronJob")
        try:
            other_policies = [
                p
                for p in self.kube.list("NetworkPolicy", store.namespace)
                if p["metadata"]["name"] != names.network_policy
            ]
        except KubeError:
            other_policies = []
        rbac_children = [c for c in desired if c["kind"] in ("Role", "RoleBinding")]
        max_age = (
            effective_key_rotation(store, policy)
            if policy
            else (store.key_rotation or DEFAULT_KEY_ROTATION)
        )
        conditions = [
            policy_compliant(findings),
            network_isolated(
                netpol, observed[("NetworkPolicy", names.network_policy)], other_policies
            ),
            encryption_key_ready(ring_state, record, names.key_ring, now, max_age),
            access_restricted(
                store.namespace,
                store_secrets(store),
                rbac_children,
                self._rbac(store.namespace),
                self.trusted,
            ),
            purge_scheduled(
                findings,
                store.purge.suspend,
                cronjob,
                observed[("CronJob", cronjob["metadata"]["name"])],
            ),
            purge_succeeded(LastPurge.from_status({"lastPurge": last_purge})),
        ]
        return [*conditions, ready(conditions)]

    def _rbac(self, namespace: str) -> RbacSnapshot | None:
        try:
            bindings = [
                *self.kube.list("RoleBinding", namespace),
                *self._cluster_scoped("ClusterRoleBinding"),
            ]
            roles = [*self.kube.list("Role", namespace), *self._cluster_scoped("ClusterRole")]
        except KubeError:
            return None
        for obj in bindings:  # list items carry no kind
            obj.setdefault(
                "kind",
                "ClusterRoleBinding" if "namespace" not in obj["metadata"] else "RoleBinding",
            )
        for obj in roles:
            obj.setdefault("kind", "ClusterRole" if "namespace" not in obj["metadata"] else "Role")
        return RbacSnapshot.from_api(bindings, roles)

    def _cluster_scoped(self, kind: str) -> list[dict[str, Any]]:
        """A list of a cluster-scoped kind, shared by reconciles for a few seconds.

        Every store's AccessRestricted reads all ClusterRoles and ClusterRoleBindings; a burst
        of reconciles (start-up, a policy change) would otherwise read them once per store.
        The periodic resync bounds how stale a shared copy can make a condition.
        """
        with self._cache_lock:
            cached = self._cache.get(kind)
            if cached and time.monotonic() - cached[0] < self.CLUSTER_CACHE_SECONDS:
                return [dict(item) for item in cached[1]]
        items = self.kube.list(kind)
        with self._cache_lock:
            self._cache[kind] = (time.monotonic(), items)
        return [dict(item) for item in items]

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
        record_status(meta["namespace"], meta["name"], status)
        primary_created = _parse_time((status.get("encryption") or {}).get("primaryKeyCreated"))
        if primary_created is not None:
            KEY_AGE.labels(meta["namespace"], meta["name"]).set(
                (now - primary_created).total_seconds()
            )
        if all(old.get(k) == v for k, v in status.items()):
            return  # steady state: nothing to write
        self.kube.merge_patch(
            "PersonalDataStore",
            meta["namespace"],
            meta["name"],
            {"status": status},
            subresource="status",
        )
        for condition, before in transitions(old_conditions, conditions):
            self._event(raw, condition, before, now)
            if condition.type == "Ready" and condition.status == "True" and before is None:
                created = _parse_time(meta.get("creationTimestamp"))
                if created is not None:
                    TIME_TO_READY.observe((now - created).total_seconds())

    def _event(
        self, raw: Mapping[str, Any], condition: Condition, before: str | None, now: datetime
    ) -> None:
        meta = raw["metadata"]
        warning = condition.status != "True" and condition.type != "Ready"
        event = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:12]}",
                "namespace": meta["namespace"],
            },
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": "dataward.io/operator",
            "reportingInstance": self.settings.reporting_instance,
            "action": "Reconcile",
            "reason": condition.reason,
            "type": "Warning" if warning else "Normal",
            "note": f"{condition.type} is {condition.status}"
            f"{'' if before is None else f' (was {before})'}: {condition.message}"[:1024],
            "regarding": {
                "apiVersion": raw["apiVersion"],
                "kind": STORE_KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
        }
        try:
            self.kube.create(event)
        except KubeError as error:
            log.info("event for %s/%s not posted: %s", meta["namespace"], meta["name"], error)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
