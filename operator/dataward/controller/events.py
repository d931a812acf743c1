"""Kubernetes Events about Dataward's objects: one shape for every kind the operator reports
on (stores, policies, subject requests), built by a pure function and posted best-effort."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dataward.checks.conditions import Condition
from dataward.controller.kube import Kube, KubeError
from dataward.render.labels import API_VERSION

log = logging.getLogger("dataward.events")

REPORTING_CONTROLLER = "dataward.io/operator"
NOTE_LIMIT = 1024  # characters the API server takes in an Event's note


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


def post(kube: Kube, body: Mapping[str, Any]) -> None:
    """Create the Event; a failure is logged, never raised (an Event is a courtesy)."""
    try:
        kube.create(body)
    except KubeError as error:
        ref = body["regarding"]
        where = f"{ref['namespace']}/" if ref.get("namespace") else ""
        log.info("event for %s %s%s not posted: %s", ref["kind"], where, ref["name"], error)
