"""Verdicts the operator can no longer check: Unknown after a grace period, and its health says so.

A store's status is written by its reconcile only, and a reconcile needs the store from the
stores' cache and, in an operator of the whole cluster, its namespace in the Namespace cache
(`owns`: a shard's namespaces, or every one). When either cache fails (its list or watch
forbidden, the API erroring) no store is reconciled, and each store's last verdict, perhaps
Ready=True, would stand as long as the failure does.

So, once such a failure has lasted `grace_seconds` (a short re-list never gets that far):

- every condition the operator last wrote True, on each store it last knew (its cache's last
  copy; sharded, only in the namespaces last known to be this shard's), is patched to Unknown,
  reason `StoreCacheUnavailable` or `NamespaceCacheUnavailable`. The JSON patch tests the
  store's uid and each condition's type and status first: a status changed since the copy,
  or a store made again under the name, is refused, never overwritten.
  False and Unknown stay as they are: a stale False keeps its alert firing;
- the store's exported conditions (dataward_store_condition) say the same, even when the
  patch is refused (then the operator can do no better, and its health must say it);
- `problems` names each such failure (the readiness endpoint fails), and `health` gives every
  cached kind's state (dataward_cache_synced, dataward_cache_unsynced_seconds).

Nothing here ever writes True: a store is True again only by a real reconcile, once the cache is
back (its recovery queues every store; the stores patched here are queued again too, in case a
patch crossed the recovery). While every cache is synced, `check` reads and writes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from dataward.checks.conditions import (
    NAMESPACE_CACHE_UNAVAILABLE,
    OPERATOR_CONDITION_TYPES,
    STORE_CACHE_UNAVAILABLE,
)
from dataward.controller.cache import CacheOutage, Caches
from dataward.controller.kube import Kube, KubeError
from dataward.controller.metrics import record_status
from dataward.keys.ring import format_time
from dataward.render.labels import STORE_KIND

log = logging.getLogger("dataward.staleness")

StoreKey = tuple[str, str]
# The default grace period (`dataward run --stale-grace-seconds`, the chart's
# staleVerdictGraceSeconds): longer than an API server restart or a few failed re-lists
# (each retried within 15 s), short enough that no verdict stands unchecked for long.
STALE_GRACE_SECONDS = 300.0
CHECKS_PER_GRACE = 4  # how often `check` runs: a verdict is Unknown at most a quarter late
# The caches without which no store is reconciled, and what a verdict then says.
GATING: dict[str, tuple[str, str]] = {
    STORE_KIND: (STORE_CACHE_UNAVAILABLE, "the PersonalDataStores"),
    "Namespace": (NAMESPACE_CACHE_UNAVAILABLE, "which namespaces it serves"),
}
# Every reason `check` writes.
GATING_REASONS = tuple(reason for reason, _ in GATING.values())
# Patch answers that say the store is gone or no longer as last copied: not tried again
# during this outage (the first pass after it judges the store anyway).
NOT_AS_COPIED = (404, 409, 422)
RECHECK_EVERY = 100  # stores patched between two looks at whether the outage still lasts


class Recorder(Protocol):
    """Where the transitions written here go (the evidence log, through the reconciler)."""

    def record_evidence(
        self, namespace: str, name: str, kind: str, payload: Mapping[str, Any]
    ) -> object:
        """Append an evidence record; never raises."""
        ...


def check_period(grace: float) -> float:
    """Seconds between two `check`s: a fraction of the grace period, 1 to 30."""
    return max(1.0, min(30.0, grace / CHECKS_PER_GRACE))


def overdue(outages: Sequence[CacheOutage], now: float, grace: float) -> list[CacheOutage]:
    """The outages of a gating cache that have lasted `grace` seconds or more."""
    return [o for o in outages if o.kind in GATING and now - o.since >= grace]


def unverified_message(outage: CacheOutage, since: datetime, type_: str, reason: str) -> str:
    """What a condition says once the operator cannot check it (names no object's content:
    the cache's kind and namespace, and an HTTP status or an exception's class)."""
    _, what = GATING[outage.kind]
    return (
        f"The operator has not been able to read {what} since {format_time(since)} "
        f"({outage.where}: {outage.error}), so it no longer checks this store: {type_} was "
        f"last judged True ({reason}) and is not vouched for now. It is judged again once "
        "the operator can read them."
    )


def unserved_message(namespace: str, since: datetime, type_: str, reason: str) -> str:
    """What a condition says once its store's namespace has left this shard (its labels no
    longer match the shard's selector): no shard of this one checks it."""
    return (
        f"Namespace {namespace} left this operator's shard at {format_time(since)} (its labels "
        f"no longer match the shard's namespace selector), so this shard no longer checks "
        f"this store: {type_} was last judged True ({reason}) and is not vouched for now. The "
        "shard whose selector matches the namespace judges it again; if none does, fix the "
        "namespace's labels."
    )


def unverified_patch(
    conditions: Sequence[Any],
    reason: str,
    messages: Callable[[str, str], str],
    stamp: str,
    uid: str | None = None,
) -> list[dict[str, Any]]:
    """The JSON patch that makes each True condition of `conditions` (a status as last copied)
    Unknown with `reason`; each first tests that the condition at its index still has its type
    and is still True, and the whole that the store is still the one copied (`uid`, when
    known: the store made again under its name is another). Empty when none is True.
    Only the operator's own types (`OPERATOR_CONDITION_TYPES`): another controller's
    condition, which status keeps, is not the operator's to vouch for or withdraw."""
    ops: list[dict[str, Any]] = []
    for index, condition in enumerate(conditions):
        if (
            not isinstance(condition, Mapping)
            or condition.get("status") != "True"
            or condition.get("type") not in OPERATOR_CONDITION_TYPES
        ):
            continue
        type_ = str(condition.get("type"))
        path = f"/status/conditions/{index}"
        ops += [
            {"op": "test", "path": f"{path}/type", "value": type_},
            {"op": "test", "path": f"{path}/status", "value": "True"},
            {"op": "replace", "path": f"{path}/status", "value": "Unknown"},
            {"op": "add", "path": f"{path}/reason", "value": reason},
            {"op": "add", "path": f"{path}/message",
             "value": messages(type_, str(condition.get("reason")))},
            {"op": "add", "path": f"{path}/lastTransitionTime", "value": stamp},
        ]  # fmt: skip
    if ops and uid:
        ops.insert(0, {"op": "test", "path": "/metadata/uid", "value": uid})
    return ops


def unverified_conditions(conditions: Sequence[Any]) -> list[dict[str, str]]:
    """`conditions` as exported while unchecked: each True one Unknown."""
    return [
        {"type": str(c.get("type")),
         "status": "Unknown" if c.get("status") == "True" else str(c.get("status"))}
        for c in conditions if isinstance(c, Mapping)
    ]  # fmt: skip


class StaleVerdicts:
    """Says of the stores that no verdict of theirs is being checked, while that is so."""

    def __init__(
        self,
        kube: Kube,
        caches: Caches,
        grace_seconds: float,
        recorder: Recorder | None = None,
        wall: Callable[[], datetime] | None = None,
        requeue: Callable[[StoreKey], None] | None = None,
    ) -> None:
        self.kube = kube
        self.caches = caches
        self.grace = grace_seconds
        self.recorder = recorder
        self.wall = wall or (lambda: datetime.now(UTC))
        self.requeue = requeue
        # This outage's stores whose status was patched or whose exported conditions were
        # made Unknown: queued again when it ends (a recovery reconcile may have run first).
        self._patched: set[StoreKey] = set()
        self._skipped: set[StoreKey] = set()  # gone, or not as copied (NOT_AS_COPIED)
        self._refused_until: float | None = None  # patches refused: not before then

    def problems(self, now: float | None = None) -> list[str]:
        """Why no store's verdict is being checked (empty: they are), for the readiness probe."""
        now = time.monotonic() if now is None else now
        return [
            f"cache of {o.where} not synced for {now - o.since:.0f}s ({o.error}): "
            f"{GATING[o.kind][0]}"
            for o in overdue(self.caches.outages(), now, self.grace)
        ]

    def health(self, now: float | None = None) -> list[tuple[str, bool, float]]:
        """Each cached kind: (kind, synced everywhere, seconds its oldest outage has lasted)."""
        now = time.monotonic() if now is None else now
        worst: dict[str, float] = {}
        for outage in self.caches.outages():
            worst[outage.kind] = max(worst.get(outage.kind, 0.0), now - outage.since)
        kinds = dict.fromkeys(kind for kind, _ in self.caches.informers)
        return [(kind, kind not in worst, max(0.0, worst.get(kind, 0.0))) for kind in kinds]

    def check(self, now: float | None = None) -> None:
        """Make Unknown what can no longer be checked (each store once an outage), or, when
        nothing is overdue, forget the outage (queueing the stores patched in it)."""
        now = time.monotonic() if now is None else now
        late = overdue(self.caches.outages(), now, self.grace)
        if not late:
            self._end_outage()
            return
        stores = {o.namespace: o for o in late if o.kind == STORE_KIND}
        shard = next((o for o in late if o.kind == "Namespace"), None)
        wall_now = self.wall()
        stamp = format_time(wall_now)
        patching = self._refused_until is None or now >= self._refused_until
        written = 0
        for index, raw in enumerate(self.caches.last_known(STORE_KIND)):
            if index and index % RECHECK_EVERY == 0 and not overdue(
                self.caches.outages(), now, self.grace
            ):
                break  # the cache is back: a fresh verdict must not be patched over
            meta = raw.get("metadata") or {}
            namespace, name = str(meta.get("namespace")), str(meta.get("name"))
            outage = stores.get(None) or stores.get(namespace) or shard
            if outage is None or not self.caches.last_owned(namespace):
                continue  # read and judged as usual; or another shard's
            conditions = (raw.get("status") or {}).get("conditions") or []
            record_status(namespace, name, {"conditions": unverified_conditions(conditions)})
            key = (namespace, name)
            self._patched.add(key)
            if not patching or key in self._skipped:
                continue
            since = wall_now - timedelta(seconds=now - outage.since)
            reason = GATING[outage.kind][0]
            ops = unverified_patch(
                conditions, reason, partial(unverified_message, outage, since), stamp,
                str(meta.get("uid") or "") or None,
            )
            if not ops:
                continue
            try:
                answer = self.kube.json_patch(STORE_KIND, namespace, name, ops, "status")
            except KubeError as error:
                if error.status in NOT_AS_COPIED:
                    self._skipped.add(key)
                    continue
                # Refused (403), or no answer: the others would be too. Not tried again for
                # a grace period; their exported conditions are still made Unknown below.
                self._refused_until = now + self.grace
                patching = False
                log.warning(
                    "could not mark the verdicts of %s/%s Unknown (%s): tried again in %gs; "
                    "the readiness probe and dataward_cache_synced say it meanwhile",
                    namespace, name, error, self.grace,
                )  # fmt: skip
                continue
            self.caches.store_written(answer)  # its last copy is no longer True
            written += 1
            self._record(namespace, name, conditions, ops)
        if written:
            log.warning(
                "cache of %s not synced for %.0fs: %d store(s) marked Unknown (%s)",
                late[0].where, now - late[0].since, written, GATING[late[0].kind][0],
            )  # fmt: skip

    def _end_outage(self) -> None:
        patched, self._patched = self._patched, set()
        self._skipped.clear()
        self._refused_until = None
        if self.requeue is not None:
            for key in sorted(patched):
                self.requeue(key)

    def _record(
        self, namespace: str, name: str, conditions: Sequence[Any], ops: Sequence[Mapping[str, Any]]
    ) -> None:
        """One evidence record per condition made Unknown, as a reconcile's transitions are."""
        if self.recorder is None:
            return
        for payload in unverified_transitions(conditions, ops):
            self.recorder.record_evidence(namespace, name, "condition.transition", payload)


def unverified_transitions(
    conditions: Sequence[Any], ops: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The `condition.transition` evidence payloads of `unverified_patch(conditions, ...)`'s
    operations `ops`: one per condition it makes Unknown."""
    values = {op["path"]: op["value"] for op in ops if op["op"] != "test"}
    out = []
    for index, condition in enumerate(conditions):
        path = f"/status/conditions/{index}"
        if f"{path}/reason" not in values:
            continue
        out.append({
            "type": condition.get("type"),
            "status": "Unknown",
            "previousStatus": "True",
            "reason": values[f"{path}/reason"],
            "message": values[f"{path}/message"],
            "observedGeneration": condition.get("observedGeneration"),
        })  # fmt: skip
    return out
