"""What one scrape of /metrics holds at once, at N stores: prometheus_client's whole-body
`generate_latest` of the per-store families (how the operator served them before) against the
operator's streamed exposition, consumed a chunk at a time as the HTTP handler sends it.

    PYTHONPATH=$PWD/operator:$PWD python3 -m bench.scrape_peak --stores 10000

Traced bytes (tracemalloc) above what the records hold, and wall time a scrape; no cluster.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from dataward.controller.metrics import STORES, record_key_age, record_status

TYPES = ("PolicyCompliant", "NetworkIsolated", "AccessRestricted", "EncryptionKeyReady",
         "PurgeScheduled", "PurgeSucceeded", "PolicyRevision", "Ready")  # fmt: skip


class Whole:
    """The per-store families as prometheus_client collectors made them (the old way)."""

    def collect(self) -> list[GaugeMetricFamily]:
        store = ["namespace", "store"]
        condition = GaugeMetricFamily("dataward_store_condition", "c",
                                      labels=[*store, "type", "status"])
        remaining = GaugeMetricFamily("dataward_purge_expired_rows_remaining", "r", labels=store)
        oldest = GaugeMetricFamily("dataward_purge_oldest_expired_age_seconds", "o", labels=store)
        key_age = GaugeMetricFamily("dataward_primary_key_age_seconds", "k", labels=store)
        for (ns, name), figures in list(STORES._stores.items()):
            for type_, status in figures.conditions:
                for value in ("True", "False", "Unknown"):
                    condition.add_metric([ns, name, type_, value], float(status == value))
            for family, number in ((remaining, figures.expired_remaining),
                                   (oldest, figures.oldest_expired_age),
                                   (key_age, figures.key_age)):  # fmt: skip
                if number is not None:
                    family.add_metric([ns, name], number)
        return [condition, remaining, oldest, key_age]


def measure(scrape: Callable[[], int]) -> tuple[float, float, int]:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    started = time.perf_counter()
    size = scrape()
    took = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return peak / 2**20, took, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stores", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    status = {"conditions": [{"type": t, "status": "True"} for t in TYPES],
              "lastPurge": {"expiredRemaining": 0, "oldestExpiredAgeSeconds": 12}}
    for i in range(args.stores):
        record_status(f"bench-{i % 100:02d}", f"store-{i:05d}", status)
        record_key_age(f"bench-{i % 100:02d}", f"store-{i:05d}", 3600.0)
    registry = CollectorRegistry()
    registry.register(Whole())  # type: ignore[arg-type]

    def whole() -> int:
        return len(generate_latest(registry))

    def streamed() -> int:
        return sum(len(part) for part in STORES.exposition())

    for round_ in range(args.rounds):
        for name, scrape in (("generate_latest, whole body", whole),
                             ("streamed, a chunk at a time", streamed)):  # fmt: skip
            peak, took, size = measure(scrape)
            print(f"round {round_}: {name}: {args.stores} stores, {size / 2**20:.1f} MiB of "
                  f"text; traced peak above held {peak:.1f} MiB; {took * 1000:.0f} ms")


if __name__ == "__main__":
    main()
