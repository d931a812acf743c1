"""Purge throughput on real PostgreSQL 15 and MariaDB started by the test harness.

    cd /work/main && python -m bench.purge_bench --rows 200000

For each engine and batch size: seed `--rows` rows (half expired, spread over a year), then time
`dataward purge`'s engine without an archive and with one (statutory category: copy, verify,
delete), and a naive single `DELETE ... WHERE ts <= cutoff` for comparison. Prints rows/s and
the p95 and longest batch time (a batch holds its row locks from SELECT ... FOR UPDATE to
COMMIT, so the longest batch is the longest lock hold).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dataward.purge.engine import EngineOptions
from dataward.purge.plan import LargeCutThreshold
from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import run_purge, store_doc, unique

NO_HOLD = EngineOptions(large_cut=LargeCutThreshold(fraction=1.0, min_rows=10**12))


def _create_and_seed(server: DatabaseServer, table: str, rows: int, archive: bool) -> None:
    """Rows 1..n; odd ids expired (2-3 years old), even ids fresh (in the future)."""
    if server.engine == "postgresql":
        server.execute(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, ts timestamptz, payload text)",
            f"ALTER TABLE {table} OWNER TO purger",
        )
        if not archive:
            server.execute(
                f"INSERT INTO {table} SELECT g, CASE WHEN g % 2 = 1 "
                f"THEN now() - interval '800 days' - g * interval '1 second' "
                f"ELSE now() + interval '30 days' END, md5(g::text) "
                f"FROM generate_series(1, {rows}) g",
                f"CREATE INDEX ON {table} (ts)",
                f"ANALYZE {table}",
            )
        return
    server.execute(
        f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, ts DATETIME(6), payload VARCHAR(64), "
        "INDEX (ts)) ENGINE=InnoDB"
    )
    if not archive:
        server.execute(
            f"INSERT INTO {table} SELECT seq, IF(seq % 2 = 1, "
            f"UTC_TIMESTAMP(6) - INTERVAL 800 DAY - INTERVAL seq SECOND, "
            f"UTC_TIMESTAMP(6) + INTERVAL 30 DAY), MD5(seq) FROM seq_1_to_{rows}"
        )


def _batch_timer() -> tuple[Callable[[str], None], list[float]]:
    """A fault hook that times each batch from its SELECT to its COMMIT (no fault injected)."""
    durations: list[float] = []
    started = [time.perf_counter()]

    def hook(point: str) -> None:
        if point == "before-select":
            started[0] = time.perf_counter()
        elif point == "after-delete":
            durations.append(time.perf_counter() - started[0])

    return hook, durations


def _engine_run(
    servers: DatabaseServers, engine: str, rows: int, batch: int, archive: bool
) -> dict[str, float]:
    live, archive_server = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("bench")
    _create_and_seed(live, table, rows, archive=False)
    if archive:
        _create_and_seed(archive_server, table, rows, archive=True)
    doc = store_doc(
        live,
        table,
        category="contracts" if archive else "support",
        archive=archive_server if archive else None,
        batchSize=batch,
        maxRowsPerRun=rows,
    )
    hook, durations = _batch_timer()
    started = time.perf_counter()
    result = run_purge(doc, live, archive_server if archive else None, fault=hook, options=NO_HOLD)
    elapsed = time.perf_counter() - started
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == (rows + 1) // 2, result.rows_deleted
    live.execute(f"DROP TABLE {table}")
    if archive:
        archive_server.execute(f"DROP TABLE {table}")
    ordered = sorted(durations)
    return {
        "rows": result.rows_deleted,
        "seconds": elapsed,
        "rows_per_s": result.rows_deleted / elapsed,
        "p95_batch_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))],
        "max_batch_ms": 1000 * ordered[-1],
        "median_batch_ms": 1000 * statistics.median(ordered),
    }


def _naive_run(servers: DatabaseServers, engine: str, rows: int) -> dict[str, float]:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("naive")
    _create_and_seed(live, table, rows, archive=False)
    cutoff = (datetime.now(UTC) - timedelta(days=365)).replace(tzinfo=None)
    conn = live.admin(autocommit=False)
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(f"DELETE FROM {table} WHERE ts <= %s", (cutoff,))
        deleted = cur.rowcount
    conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    live.execute(f"DROP TABLE {table}")
    return {"rows": deleted, "seconds": elapsed, "rows_per_s": deleted / elapsed,
            "p95_batch_ms": 1000 * elapsed, "max_batch_ms": 1000 * elapsed,
            "median_batch_ms": 1000 * elapsed}  # fmt: skip


def main() -> None:
    """Start the servers, run every case, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows per table (half expire)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    print(f"rows per table: {args.rows} ({(args.rows + 1) // 2} expired)\n")
    print("| engine | mode | batch | rows deleted | seconds | rows/s | median batch ms "
          "| p95 batch ms | longest batch (lock hold) ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    with DatabaseServers.start() as servers:
        for engine in ("postgresql", "mysql"):
            cases: list[tuple[str, int, dict[str, float]]] = []
            for batch in args.batch:
                cases.append(
                    ("purge", batch, _engine_run(servers, engine, args.rows, batch, False))
                )
                cases.append(("purge+archive", batch,
                              _engine_run(servers, engine, args.rows, batch, True)))  # fmt: skip
            cases.append(("naive DELETE", 0, _naive_run(servers, engine, args.rows)))
            for mode, batch, m in cases:
                print(
                    f"| {engine} | {mode} | {batch or '-'} | {int(m['rows'])} | {m['seconds']:.2f} "
                    f"| {m['rows_per_s']:.0f} | {m['median_batch_ms']:.1f} "
                    f"| {m['p95_batch_ms']:.1f} | {m['max_batch_ms']:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
