"""Prometheus metrics and the health endpoint the chart's probes call."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

RECONCILES = Counter("dataward_reconciles_total", "Store reconciles, by outcome.", ["result"])
WRITES = Counter(
    "dataward_writes_total", "Mutating API requests the operator sent, by kind.", ["kind", "verb"]
)
CONDITION = Gauge(
    "dataward_store_condition",
    "1 when the store's condition has this status.",
    ["namespace", "store", "type", "status"],
)
EXPIRED_REMAINING = Gauge(
    "dataward_purge_expired_rows_remaining",
    "Expired rows the last purge left in the live database.",
    ["namespace", "store"],
)
OLDEST_EXPIRED_AGE = Gauge(
    "dataward_purge_oldest_expired_age_seconds",
    "How long ago the most overdue remaining row expired.",
    ["namespace", "store"],
)
KEY_AGE = Gauge("dataward_primary_key_age_seconds",
                "Age of the store's primary encryption key.", ["namespace", "store"])
TIME_TO_READY = Histogram("dataward_time_to_ready_seconds",
                          "From a store's creation to its first Ready=True.",
                          buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800))
LEADER = Gauge("dataward_leader", "1 while this replica holds the Lease.")
CRDS_SERVED = Gauge(
    "dataward_crds_served", "1 while the API serves the Dataward CRDs (0: waiting for them)."
)

_STATUSES = ("True", "False", "Unknown")


def record_status(namespace: str, store: str, status: Mapping[str, Any]) -> None:
    """Export a store's conditions and last purge figures."""
    for condition in status.get("conditions") or []:
        for value in _STATUSES:
            CONDITION.labels(namespace, store, condition["type"], value).set(
                1 if condition.get("status") == value else 0
            )
    last = status.get("lastPurge") or {}
    if last.get("expiredRemaining") is not None:
        EXPIRED_REMAINING.labels(namespace, store).set(float(last["expiredRemaining"]))
    if last.get("oldestExpiredAgeSeconds") is not None:
        OLDEST_EXPIRED_AGE.labels(namespace, store).set(float(last["oldestExpiredAgeSeconds"]))


def forget_store(namespace: str, store: str) -> None:
    """Remove a deleted store's series: a gone store must not be reported for ever."""
    for metric in (CONDITION, EXPIRED_REMAINING, OLDEST_EXPIRED_AGE, KEY_AGE):
        for labels in list(_series(metric)):
            if labels[:2] == (namespace, store):
                metric.remove(*labels)


def _series(metric: Gauge) -> list[tuple[str, ...]]:
    """The label values of every series of `metric`."""
    # prometheus_client keeps no public list of them.
    return [tuple(labels) for labels in metric._metrics]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            body, content_type = b"ok\n", "text/plain"
        elif self.path == "/metrics":
            body, content_type = generate_latest(), CONTENT_TYPE_LATEST
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would drown the operator's log."""


def serve(port: int, address: str = "0.0.0.0") -> ThreadingHTTPServer:  # noqa: S104
    """Serve /healthz and /metrics on a daemon thread."""
    server = ThreadingHTTPServer((address, port), _Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
