"""PostgreSQL plain batches bounded from the index vs predicted from the last batch's pace,
alternating batch by batch in one table (so both see the same load, WAL and cache).

    PYTHONPATH=$PWD/operator:$PWD python3 -m bench.purge_pace --tables 3

For each table (purge_bench's seeding and application writers, durable server, batch
`--batch`): even batches clear the pace (`PostgresBatches._pace`), so they walk the index for
their bound as before; odd ones predict it from the batch before. Prints, per way, the
geometric mean of each batch's time (DELETE to COMMIT) per 10,000 rows deleted, and how many
predicted batches were rolled back. Whole runs on the shared machine vary more than the gain
(bench/purge_ab.py); this is the firmer figure.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from datetime import UTC, datetime

from bench.purge_bench import (
    CUTOFF_AGE,
    AppWriter,
    _create_and_seed,
    _create_app_login,
    _make_durable,
)
from dataward.purge.batches import Cursor, PostgresBatches
from dataward.purge.engine import no_fault
from dataward.purge.sql import Session, TableName, TableStatements
from tests.databases import start_postgres
from tests.purge.support import connector


def main() -> None:
    """Seed, purge alternating the two ways, print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tables", type=int, default=3)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=10000)
    args = parser.parse_args()
    server = start_postgres("live")
    _make_durable(server)
    _create_app_login(server)
    cutoff = datetime.now(UTC) - CUTOFF_AGE
    print(f"load {_load()}", flush=True)
    try:
        for n in range(args.tables):
            table = f"pace{n}"
            _create_and_seed(server, table, args.rows)
            writer = AppWriter(server, table, args.rows, 200.0)
            session = connector(server, "live")()
            rollbacks = _count_rollbacks(session)
            statements = TableStatements(session.dialect, TableName(None, table), "ts", ("id",))
            batches = PostgresBatches(session, statements, cutoff)
            times: dict[str, list[float]] = {"index": [], "predicted": []}
            after: Cursor | None = None
            i = 0
            try:
                while True:
                    way = "index" if (i + n) % 2 == 0 else "predicted"
                    if way == "index":
                        batches._pace = None
                    started = time.perf_counter()
                    step = batches.delete(after, args.batch, no_fault)
                    session.commit()
                    elapsed = time.perf_counter() - started
                    if step.deleted:
                        times[way].append(elapsed * 1000 / step.deleted * 10000)
                    if step.picked < args.batch or step.last is None:
                        break
                    after, i = step.last, i + 1
            finally:
                writer.finish()
                session.close()
            print(
                f"table {n + 1}: "
                + "; ".join(
                    f"{way} {len(v)} batches, {_geomean(v):.2f} ms per 10,000 rows"
                    for way, v in times.items()
                )
                + f"; predicted batches rolled back: {len(rollbacks)}; load {_load()}",
                flush=True,
            )
            server.execute(f"DROP TABLE {table}")
    finally:
        server.stop()


def _count_rollbacks(session: Session) -> list[None]:
    """Make `session.rollback` note each call; the list of calls."""
    calls: list[None] = []
    plain = session.rollback

    def counted() -> None:
        calls.append(None)
        plain()

    session.rollback = counted  # type: ignore[method-assign]
    return calls


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else 0.0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
