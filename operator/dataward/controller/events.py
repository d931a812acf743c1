"""Kubernetes Events about Dataward's objects: one shape for every kind the operator reports
on (stores, policies, subject requests), built by a pure function and posted best-effort."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dataward.checks.conditions import Condition
from dataward.controller.kube import Kube, KubeError
from dataward.render.labels import API_VERSION

log = logging.getLogger("dataward.events")

REPORTING_CONTROLLER = "dataward.io/operator"
NOTE_LIMIT = 1024  # characters the API server takes in an Event's note
# Events about one object: up to EVENT_BURST at once, then one every EVENT_REFILL_SECONDS
# (client-go's spam filter, per object): a condition flapping with someone's script is not
# an Event per flap. Status and the evidence log still record every transition.
EVENT_BURST = 5
EVENT_REFILL_SECONDS = 60.0


def event(
    regarding: Mapping[str, Any],
    kind: str,
    *,
    action: str,
    reason: str,
    event_type: str,
    note: str,
    now: datetime,
    instance: str,
) -> dict[str, Any]:
    """An events.k8s.io/v1 Event about `regarding` (an object of `kind` as the API serves it),
    in the object's namespace (a cluster-scoped object's in `default`, as Kubernetes does)."""
    meta = regarding["metadata"]
    reference: dict[str, Any] = {
        "apiVersion": regarding.get("apiVersion", API_VERSION),
        "kind": kind,
        "name": meta["name"],
    }
    if meta.get("namespace"):
        reference["namespace"] = meta["namespace"]
    reference["uid"] = meta.get("uid")
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{uuid.uuid4().hex[:12]}",
            "namespace": meta.get("namespace") or "default",
        },
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance,
        "action": action,
        "reason": reason,
        "type": event_type,
        "note": note[:NOTE_LIMIT],
        "regarding": reference,
    }


def transition_note(condition: Condition, before: str | None) -> str:
    """The note of an Event about a condition that changed status (`before`: None when new)."""
    was = "" if before is None else f" (was {before})"
    return f"{condition.type} is {condition.status}{was}: {condition.message}"


@dataclass(frozen=True)
class Bucket:
    """The Events one object may still have at once (`tokens`, as of `at`, a monotonic time
    in seconds), and how many were not posted since the last one that was."""

    tokens: float
    at: float
    dropped: int = 0


def take(bucket: Bucket | None, now: float) -> tuple[Bucket, bool]:
    """The object's bucket after an Event is asked for at `now`, and whether it may be
    posted: refilled at one per EVENT_REFILL_SECONDS up to EVENT_BURST, one token taken."""
    if bucket is None:
        return Bucket(EVENT_BURST - 1, now), True
    tokens = min(EVENT_BURST, bucket.tokens + max(0.0, now - bucket.at) / EVENT_REFILL_SECONDS)
    if tokens >= 1:
        return Bucket(tokens - 1, now, bucket.dropped), True
    return Bucket(tokens, now, bucket.dropped + 1), False


def dropped_note(note: str, dropped: int) -> str:
    """`note`, saying first how many Events about the object were not posted before it."""
    if not dropped:
        return note
    return (
        f"({dropped} earlier Event(s) about this object not posted: at most {EVENT_BURST} at "
        f"once, then one a minute; status and the evidence log have every change) {note}"
    )


PRUNE_AT = 4096  # objects with a bucket before the first pruning


class Limiter:
    """Which Events may be posted, per object (`take`); the buckets of objects whose
    burst is whole again are forgotten."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()
        # Pruned when it holds this many, then at twice what a pruning kept: amortised, so a
        # converge of 10,000 stores (each bucket recent, none to drop) scans them log-many
        # times, not once an Event.
        self._prune_at = PRUNE_AT

    def admit(self, body: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """`body`, its note saying how many were not posted before it; None: not posted."""
        ref = body["regarding"]
        key = str(ref.get("uid") or (ref.get("kind"), ref.get("namespace"), ref["name"]))
        now = self._clock()
        with self._lock:
            before = self._buckets.get(key)
            bucket, allowed = take(before, now)
            self._buckets[key] = bucket if not allowed else Bucket(bucket.tokens, bucket.at)
            if len(self._buckets) > self._prune_at:
                full = now - EVENT_BURST * EVENT_REFILL_SECONDS
                self._buckets = {k: b for k, b in self._buckets.items() if b.at > full}
                self._prune_at = max(PRUNE_AT, 2 * len(self._buckets))
        if not allowed:
            return None
        dropped = before.dropped if before is not None else 0
        return {**body, "note": dropped_note(str(body.get("note", "")), dropped)[:NOTE_LIMIT]}


def post(kube: Kube, body: Mapping[str, Any], limiter: Limiter | None = None) -> None:
    """Create the Event, unless `limiter` holds it back; a failure is logged, never raised
    (an Event is a courtesy)."""
    if limiter is not None:
        admitted = limiter.admit(body)
        if admitted is None:
            return
        body = admitted
    try:
        kube.create(body)
    except KubeError as error:
        ref = body["regarding"]
        where = f"{ref['namespace']}/" if ref.get("namespace") else ""
        log.info("event for %s %s%s not posted: %s", ref["kind"], where, ref["name"], error)
