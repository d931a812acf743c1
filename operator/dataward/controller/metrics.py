"""Prometheus metrics and the health endpoints the chart's probes call.

/healthz (liveness): the process serves. /readyz (readiness): 503 while the stores' verdicts
are not being checked (the stores' or the Namespace cache failed past its grace period,
controller/staleness.py); a restart would not mend that (it loses the last copies), so the
liveness probe does not ask it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    Metric,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from dataward.checks.conditions import OPERATOR_CONDITION_TYPES

RECONCILES = Counter("dataward_reconciles_total", "Store reconciles, by outcome.", ["result"])
WRITES = Counter(
    "dataward_writes_total", "Mutating API requests the operator sent, by kind.", ["kind", "verb"]
)
TIME_TO_READY = Histogram("dataward_time_to_ready_seconds",
                          "From a store's creation to its first Ready=True.",
                          buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800))
LEADER = Gauge("dataward_leader", "1 while this replica holds the Lease.")
CRDS_SERVED = Gauge(
    "dataward_crds_served", "1 while the API serves the Dataward CRDs (0: waiting for them)."
)

_STATUSES = ("True", "False", "Unknown")
STORES_A_CHUNK = 500  # stores whose series /metrics makes and sends at a time


class _StoreFigures(NamedTuple):
    """What is exported of one store: its conditions' statuses and a few numbers."""

    conditions: tuple[tuple[str, str], ...] = ()  # (type, status)
    expired_remaining: float | None = None
    oldest_expired_age: float | None = None
    key_age: float | None = None


class StoreMetrics:
    """The per-store series, made at scrape time from one small record per store.

    A prometheus_client labelled child costs ~900 bytes and a store has ~24 series (each
    condition type times True/False/Unknown, as kube-state-metrics does, so an alert can ask
    for `status="True"} == 0`); at 10,000 stores that was ~200 MiB. A tuple per store is
    ~1/20th of it, and the exposition is the same. A deleted store's record goes
    (`forget_store`), and with it every series that named it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: dict[tuple[str, str], _StoreFigures] = {}

    def update(self, namespace: str, store: str, **changes: Any) -> None:
        """Set some of a store's figures (the others are kept)."""
        key = (namespace, store)
        with self._lock:
            self._stores[key] = self._stores.get(key, _StoreFigures())._replace(**changes)

    def forget(self, namespace: str, store: str) -> None:
        """Drop the store's record: none of its series is exported any more."""
        with self._lock:
            self._stores.pop((namespace, store), None)

    def figures(self, namespace: str, store: str) -> _StoreFigures | None:
        """The store's record (None: it has no series)."""
        with self._lock:
            return self._stores.get((namespace, store))

    def __len__(self) -> int:
        with self._lock:
            return len(self._stores)

    def exposition(self, chunk: int = STORES_A_CHUNK) -> Iterator[bytes]:
        """Every store's series in Prometheus' text format, `chunk` stores at a time.

        prometheus_client's `generate_latest` makes a Sample (a namedtuple and a dict of
        labels) and a line for every series, then joins them: at 10,000 stores (~270,000
        series) each scrape held ~130 MiB at once, the operator's peak resident set (issue
        11). Here a chunk's lines are made, sent and dropped before the next.
        """
        with self._lock:
            stores = list(self._stores.items())
        for name, help_, extra in STORE_FAMILIES:
            yield f"# HELP {name} {help_}\n# TYPE {name} gauge\n".encode()
            for start in range(0, len(stores), chunk):
                lines: list[str] = []
                for (namespace, store), figures in stores[start : start + chunk]:
                    ns, st = _label(namespace), _label(store)
                    if extra:  # the conditions: one series per status, as kube-state-metrics
                        for type_, status in figures.conditions:
                            ty = _label(type_)
                            lines.extend(
                                f'{name}{{namespace="{ns}",status="{value}",store="{st}",'
                                f'type="{ty}"}} {"1.0" if status == value else "0.0"}\n'
                                for value in _STATUSES
                            )
                        continue
                    number = getattr(figures, _FIGURE[name])
                    if number is not None:
                        lines.append(
                            f'{name}{{namespace="{ns}",store="{st}"}} {floatToGoString(number)}\n'
                        )
                if lines:
                    yield "".join(lines).encode()


# The per-store families, in the order served: (name, help, whether it is the conditions').
STORE_FAMILIES = (
    ("dataward_store_condition", "1 when the store's condition has this status.", True),
    ("dataward_purge_expired_rows_remaining",
     "Expired rows the last purge left in the live database.", False),
    ("dataward_purge_oldest_expired_age_seconds",
     "How long ago the most overdue remaining row expired.", False),
    ("dataward_primary_key_age_seconds", "Age of the store's primary encryption key.", False),
)  # fmt: skip
_FIGURE = {
    "dataward_purge_expired_rows_remaining": "expired_remaining",
    "dataward_purge_oldest_expired_age_seconds": "oldest_expired_age",
    "dataward_primary_key_age_seconds": "key_age",
}


def _label(value: str) -> str:
    """A label value escaped as Prometheus' text format wants it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def exposition() -> Iterator[bytes]:
    """What /metrics serves: the operator's own metrics, then every store's series."""
    yield generate_latest(REGISTRY)
    yield from STORES.exposition()


STORES = StoreMetrics()


def record_status(namespace: str, store: str, status: Mapping[str, Any]) -> None:
    """Export a store's conditions and last purge figures: the operator's conditions only
    (status keeps another controller's too; alerts read these as the store's controls)."""
    changes: dict[str, Any] = {
        "conditions": tuple(
            (str(c["type"]), str(c.get("status"))) for c in status.get("conditions") or []
            if c.get("type") in OPERATOR_CONDITION_TYPES
        )
    }
    last = status.get("lastPurge") or {}
    if last.get("expiredRemaining") is not None:
        changes["expired_remaining"] = float(last["expiredRemaining"])
    if last.get("oldestExpiredAgeSeconds") is not None:
        changes["oldest_expired_age"] = float(last["oldestExpiredAgeSeconds"])
    STORES.update(namespace, store, **changes)


def record_key_age(namespace: str, store: str, seconds: float) -> None:
    """Export the age of the store's primary encryption key."""
    STORES.update(namespace, store, key_age=seconds)


class CacheHealth(Collector):
    """Each cached kind's state, at scrape time, from the leading operator's caches (none on
    a standby replica, or between spells of leadership)."""

    def __init__(self) -> None:
        self.health: Callable[[], Sequence[tuple[str, bool, float]]] | None = None
        self.problems: Callable[[], list[str]] | None = None
        self.counts: Callable[[], Mapping[str, int]] | None = None

    def describe(self) -> list[Metric]:
        """The families, without samples."""
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        """dataward_cache_synced, dataward_cache_unsynced_seconds and
        dataward_cached_objects, per kind."""
        synced, unsynced, objects = self._families()
        health, counts = self.health, self.counts
        for kind, ok, seconds in health() if health is not None else ():
            synced.add_metric([kind], 1.0 if ok else 0.0)
            unsynced.add_metric([kind], seconds)
        for kind, count in sorted((counts() if counts is not None else {}).items()):
            objects.add_metric([kind], float(count))
        yield from (synced, unsynced, objects)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "dataward_cache_synced",
                "1 while every cache of the kind is synced (0: its reads are Unknown; for "
                "PersonalDataStore or Namespace no store is reconciled).",
                labels=["kind"],
            ),
            GaugeMetricFamily(
                "dataward_cache_unsynced_seconds",
                "How long the kind's oldest cache outage has lasted (0: synced).",
                labels=["kind"],
            ),
            GaugeMetricFamily(
                "dataward_cached_objects",
                "Objects the kind's caches hold (a shard: of its own namespaces only, for the "
                "kinds it keeps per shard).",
                labels=["kind"],
            ),
        )


CACHES = CacheHealth()
REGISTRY.register(CACHES)


def watch_health(
    problems: Callable[[], list[str]],
    health: Callable[[], Sequence[tuple[str, bool, float]]],
    counts: Callable[[], Mapping[str, int]] | None = None,
) -> None:
    """Serve the running operator's readiness (/readyz), cache health and sizes (/metrics)."""
    CACHES.problems, CACHES.health, CACHES.counts = problems, health, counts


def unwatch_health() -> None:
    """No operator runs here (a standby replica): ready, and no cache series."""
    CACHES.problems = CACHES.health = CACHES.counts = None


def readiness_problems() -> list[str]:
    """Why this replica is not ready (empty: it is)."""
    problems = CACHES.problems
    return problems() if problems is not None else []


class EvidenceHealth(Collector):
    """The evidence log's failed appends, at scrape time (no series without an evidence log).

    `failures` returns (appends failed since the start, those no `evidence.outage` record
    holds yet): an operator stopped during an outage never writes that record, and a log
    whose next sequence number was taken fails every append, so the count must be seen here.
    """

    def __init__(self) -> None:
        self.failures: Callable[[], tuple[int, int]] | None = None

    def describe(self) -> list[Metric]:
        """The families, without samples."""
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        """dataward_evidence_append_failures_total and dataward_evidence_unrecorded_failures."""
        failures = self.failures
        if failures is None:
            return
        total, unrecorded = failures()
        failed, pending = self._families()
        failed.add_metric([], float(total))
        pending.add_metric([], float(unrecorded))
        yield from (failed, pending)

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, GaugeMetricFamily]:
        return (
            CounterMetricFamily(
                "dataward_evidence_append_failures",
                "Evidence records this process could not append (the evidence database down "
                "or refusing, a payload refused): each is missing from the log.",
            ),
            GaugeMetricFamily(
                "dataward_evidence_unrecorded_failures",
                "Failed appends no evidence.outage record holds yet (written with the next "
                "append that succeeds; lost if the operator stops first).",
            ),
        )


EVIDENCE = EvidenceHealth()
REGISTRY.register(EVIDENCE)


def watch_evidence(failures: Callable[[], tuple[int, int]]) -> None:
    """Export the evidence log's failed appends (`EvidenceLog.failures`)."""
    EVIDENCE.failures = failures


def unwatch_evidence() -> None:
    """No evidence log here: no evidence series."""
    EVIDENCE.failures = None


def forget_store(namespace: str, store: str) -> None:
    """Remove a deleted store's series: a gone store must not be reported for ever."""
    STORES.forget(namespace, store)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200
        if self.path == "/healthz":
            body, content_type = b"ok\n", "text/plain"
        elif self.path == "/readyz":
            problems = readiness_problems()
            status = 503 if problems else 200
            body = "".join(f"{p}\n" for p in problems or ["ok"]).encode()
            content_type = "text/plain"
        elif self.path == "/metrics":
            # Sent as made, without a length: the HTTP/1.0 answer ends when the connection
            # closes, so no scrape holds the whole exposition (`StoreMetrics.exposition`).
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.end_headers()
            try:
                for part in exposition():
                    self.wfile.write(part)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the scraper gave up (its timeout): nothing to answer to
            return
        else:
            self.send_error(404)
            return
        self.send_response(status)
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
