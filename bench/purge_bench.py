"""Purge throughput and its cost to application writes, on real PostgreSQL 15 and MariaDB.

    python -m bench.purge_bench            # issue 12's sizes: 2x10^6 rows, batch 10,000
    python -m bench.purge_bench --rows 200000

Starts the test harness's throwaway servers (tests/databases.py). For each engine and method it
seeds a fresh table of `--rows` rows (odd ids expired, 400+ days old; even ids at most ~300
days old; `ts` indexed), then removes the expired half while a separate process plays the
application: `--write-rate` writes per second into the same table (alternately an INSERT of a
new row and an UPDATE of a random unexpired row, each its own autocommit transaction, as a
login of its own over TCP). Methods:

- `dataward purge`'s engine at each `--batch` size (a non-statutory category: no archive);
- the engine on a statutory category (copy to the archive server, verify, delete), at the
  first `--batch` size; on MariaDB with the archive a second database of the live server
  (the default), twice: the archive written by its own login (`dataward purge, statutory`,
  the live login holds nothing there) and with the live login granted INSERT and SELECT on
  the archive table (`dataward purge, statutory, same-server`: the copy runs server-side,
  inside the live transaction);
- a naive single `DELETE ... WHERE ts <= cutoff` in one transaction;
- on MariaDB, `pt-archiver --purge --bulk-delete --commit-each` at each batch size;
- with `--floor`, the statutory archive's floor: the expired rows copied by the server itself
  (`INSERT INTO archive SELECT ... WHERE ts <= cutoff`, committed; no DELETE, no client, no
  verification) into an empty table of the archive's shape (its key and `ts` index) on the
  live server, by one session and by two at once (half the keys each). Any statutory purge
  inserts those rows too, so its rate is at most the floor's: where the floor is below half
  the plain purge's rate, issue 12's statutory target cannot be met on that machine.

Servers run durable unless `--no-durable`: PostgreSQL `fsync`, `synchronous_commit` and
`full_page_writes` on, MariaDB `innodb_flush_log_at_trx_commit = 1` (the test harness starts
them without, for speed). At the end it prints the ratios issue 12 sets targets for.

Reported: rows/s; p95 and longest batch time (a batch holds its row locks from its first
locking statement to COMMIT, so the longest batch is the longest lock hold; for the engine the
batch is timed through its fault hook, from SELECT ... FOR UPDATE to after COMMIT; for
pt-archiver, whose SELECT takes no locks, from each DELETE's start to its COMMIT's start in
MariaDB's general query log; for the naive DELETE it is the statement); and the p50/p95/max
latency of the application's writes during the run, measured from each write's scheduled start
(so a write queued behind a blocked one counts its wait), next to the same with nothing purging
(baseline).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import multiprocessing
import multiprocessing.connection
import os
import random
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pymysql

from dataward.purge.credentials import Credentials
from dataward.purge.engine import EngineOptions
from dataward.purge.plan import LargeCutThreshold
from tests.databases import (
    PURGER_PASSWORD,
    PURGER_USER,
    DatabaseServer,
    DatabaseServers,
    create_claims_table,
)
from tests.purge.support import POLICY, run_purge, store_doc, unique

NO_HOLD = EngineOptions(large_cut=LargeCutThreshold(fraction=1.0, min_rows=10**12))
ONE_SESSION = replace(NO_HOLD, overlap_commits=False)
APP_USER, APP_PASSWORD = "app", "app-secret"
# MariaDB, the archive beside the live database: its own login, as the two-login grant model.
ARCHIVER = Credentials("archiver", "archiver-secret")
SAME_SERVER = "dataward purge, statutory, same-server"
# Expired rows are at least 400 days old, unexpired ones at most ~300 (2x10^6 * 13 s): the
# "support" category's 1y cutoff (and the naive/pt-archiver cutoff of 365 days) falls in the
# empty gap between them.
CUTOFF_AGE = timedelta(days=365)
NEW_IDS = 10**12  # ids of the rows the application inserts
# A statutory category with the same 1y retention: the expired half moves to the archive
# (all of it well within the 5y statute, so nothing is destroyed there).
BENCH_POLICY = copy.deepcopy(POLICY)
BENCH_POLICY["spec"]["categories"].append(
    {"name": "support-statutory", "purposes": ["service"],
     "retention": {"period": "1y", "trigger": "inquired"},
     "statutory": {"period": "5y", "statute": "bench"}}
)  # fmt: skip


def _make_durable(server: DatabaseServer) -> None:
    """Turn on what the test harness turns off: every COMMIT reaches the disk."""
    if server.engine == "postgresql":
        server.execute(
            "ALTER SYSTEM SET fsync = on",
            "ALTER SYSTEM SET synchronous_commit = on",
            "ALTER SYSTEM SET full_page_writes = on",
            "SELECT pg_reload_conf()",
        )
    else:
        server.execute("SET GLOBAL innodb_flush_log_at_trx_commit = 1")


def _durability(server: DatabaseServer) -> str:
    if server.engine == "postgresql":
        rows = server.query(
            "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings "
            "WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')"
        )
    else:
        rows = server.query(
            "SELECT CONCAT('innodb_flush_log_at_trx_commit=', @@innodb_flush_log_at_trx_commit)"
        )
    return str(rows[0][0])


# ---------------------------------------------------------------------------------- seeding


def _create_app_login(server: DatabaseServer) -> None:
    if server.engine == "postgresql":
        server.execute(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}'")
    else:
        server.execute(
            f"CREATE USER '{APP_USER}'@'%' IDENTIFIED BY '{APP_PASSWORD}'",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {server.database}.* TO '{APP_USER}'@'%'",
        )


def _create_archive_table(server: DatabaseServer, table: str, payload: str = "text") -> None:
    """The statutory archive's copy of the table (same columns, unique id); on PostgreSQL a
    `payload` type other than the live table's text makes the engine copy as COPY text."""
    if server.engine == "postgresql":
        server.execute(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, ts timestamptz, payload {payload})",
            f"CREATE INDEX ON {table} (ts)",
            f"ALTER TABLE {table} OWNER TO {PURGER_USER}",
        )
        return
    server.execute(
        f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, ts DATETIME(6), payload VARCHAR(64), "
        "INDEX (ts)) ENGINE=InnoDB"
    )


def _create_and_seed(server: DatabaseServer, table: str, rows: int) -> None:
    """Rows 1..n: odd ids expired (400 days + id*17 s old), even ids fresh (id*13 s old)."""
    if server.engine == "postgresql":
        server.execute(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, ts timestamptz, payload text)",
            f"ALTER TABLE {table} OWNER TO {PURGER_USER}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_USER}",
            f"INSERT INTO {table} SELECT g, CASE WHEN g % 2 = 1 "
            f"THEN now() - interval '400 days' - g * interval '17 seconds' "
            f"ELSE now() - g * interval '13 seconds' END, md5(g::text) "
            f"FROM generate_series(1, {rows}) g",
            f"CREATE INDEX ON {table} (ts)",
            f"VACUUM ANALYZE {table}",
        )
        return
    server.execute(
        f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, ts DATETIME(6), payload VARCHAR(64), "
        "INDEX (ts)) ENGINE=InnoDB",
        f"INSERT INTO {table} SELECT seq, IF(seq % 2 = 1, "
        f"UTC_TIMESTAMP(6) - INTERVAL 400 DAY - INTERVAL seq * 17 SECOND, "
        f"UTC_TIMESTAMP(6) - INTERVAL seq * 13 SECOND), MD5(seq) FROM seq_1_to_{rows}",
        f"ANALYZE TABLE {table}",
    )


def _expired_left(server: DatabaseServer, table: str) -> int:
    cutoff = datetime.now(UTC) - CUTOFF_AGE
    param = cutoff if server.engine == "postgresql" else cutoff.replace(tzinfo=None)
    return int(server.query(f"SELECT count(*) FROM {table} WHERE ts <= %s", (param,))[0][0])


# ---------------------------------------------------------------- the application's writes


def _app_connect(engine: str, port: int, database: str) -> Any:
    if engine == "postgresql":
        return psycopg.connect(
            host="127.0.0.1", port=port, user=APP_USER, password=APP_PASSWORD,
            dbname=database, autocommit=True,
        )  # fmt: skip
    return pymysql.connect(
        host="127.0.0.1", port=port, user=APP_USER, password=APP_PASSWORD,
        database=database, autocommit=True,
    )  # fmt: skip


def _writer(
    kind: str,
    engine: str,
    port: int,
    database: str,
    table: str,
    rows: int,
    rate: float,
    ready: Any,
    stop_after: Any,
    out: multiprocessing.connection.Connection,
) -> None:
    """The application: `rate` INSERTs or UPDATEs per second; sends (due, latency, ok) samples.

    Open loop: write i is due at start + i/rate and its latency runs from when it was due, so a
    write queued behind a blocked one is charged for the wait (no coordinated omission). It
    stops after issuing every write due before `stop_after` (a shared perf_counter instant), so
    the writes that piled up behind a blocked one are counted too.
    """
    conn = _app_connect(engine, port, database)
    utc = engine == "postgresql"
    rng = random.Random(5)  # noqa: S311 - which rows to update, not a secret
    samples: list[tuple[float, float, bool]] = []
    interval = 1.0 / rate
    ready.set()
    start = time.perf_counter()
    i = 0
    with conn.cursor() as cur:
        while (due := start + i * interval) <= stop_after.value:
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            ok = True
            try:
                if kind == "insert":
                    now = datetime.now(UTC)
                    cur.execute(
                        f"INSERT INTO {table} (id, ts, payload) VALUES (%s, %s, %s)",
                        (NEW_IDS + i, now if utc else now.replace(tzinfo=None), f"new {i}"),
                    )
                else:
                    key = 2 * rng.randint(1, rows // 2)  # an even id: never expired
                    cur.execute(f"UPDATE {table} SET payload = %s WHERE id = %s", (f"upd {i}", key))
            except Exception:
                ok = False
            samples.append((due, time.perf_counter() - due, ok))
            i += 1
    conn.close()
    out.send(samples)
    out.close()


@dataclass
class Writes:
    """Latency of the application's writes over a window."""

    count: int = 0
    failed: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    max_insert_ms: float = 0.0
    max_update_ms: float = 0.0


KINDS = ("insert", "update")


class AppWriter:
    """Two application processes (INSERTs, UPDATEs; no GIL shared with the purge), each on its
    own connection at half the rate, around a window."""

    def __init__(self, server: DatabaseServer, table: str, rows: int, rate: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop_after = ctx.Value("d", float("inf"))
        self._workers: list[tuple[str, Any, Any]] = []
        for kind in KINDS:
            ready = ctx.Event()
            recv, send = ctx.Pipe(duplex=False)
            process = ctx.Process(
                target=_writer,
                args=(kind, server.engine, server.port, server.database, table, rows,
                      rate / len(KINDS), ready, self._stop_after, send),
                daemon=True,
            )  # fmt: skip
            process.start()
            send.close()
            if not ready.wait(60):
                raise RuntimeError(f"the application {kind} writer did not connect")
            self._workers.append((kind, process, recv))
        time.sleep(0.5)  # let them settle into their rhythm
        self.samples: dict[str, list[tuple[float, float, bool]]] = {}

    def finish(self) -> None:
        """Let the writers issue what was due until now, then collect their samples."""
        self._stop_after.value = time.perf_counter()
        for kind, process, recv in self._workers:
            self.samples[kind] = recv.recv()
            process.join(30)

    def window(self, start: float, end: float) -> Writes:
        """Latency of the writes due between `start` and `end` (perf_counter instants)."""
        inside = {
            kind: [(lat, ok) for due, lat, ok in samples if start <= due <= end]
            for kind, samples in self.samples.items()
        }
        every = [sample for samples in inside.values() for sample in samples]
        if not every:
            return Writes()
        ordered = sorted(lat for lat, _ in every)
        return Writes(
            count=len(ordered),
            failed=sum(1 for _, ok in every if not ok),
            p50_ms=1000 * _quantile(ordered, 0.50),
            p95_ms=1000 * _quantile(ordered, 0.95),
            max_insert_ms=1000 * max((lat for lat, _ in inside["insert"]), default=0.0),
            max_update_ms=1000 * max((lat for lat, _ in inside["update"]), default=0.0),
        )


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ----------------------------------------------------------------------------- the methods


@dataclass
class Case:
    """One method on one engine: throughput, batch times and the writes it disturbed."""

    engine: str
    method: str
    batch: int | None
    rows: int = 0
    seconds: float = 0.0
    batches_ms: list[float] = field(default_factory=list)
    writes: Writes = field(default_factory=Writes)

    def cells(self) -> list[str]:
        """The row of the results table."""
        w = self.writes
        if self.method.startswith("no purge"):
            throughput = ["-", f"{self.seconds:.1f}", "-", "-", "-"]
        else:
            ordered = sorted(self.batches_ms)
            throughput = [
                f"{self.rows:,}",
                f"{self.seconds:.1f}",
                f"{self.rows / self.seconds:,.0f}",
                f"{_quantile(ordered, 0.95):,.0f}",
                f"{ordered[-1]:,.0f}",
            ]
        failed = f" ({w.failed} failed)" if w.failed else ""
        return [
            self.engine, self.method, f"{self.batch:,}" if self.batch else "-", *throughput,
            f"{w.count}{failed}", f"{w.p50_ms:.1f}", f"{w.p95_ms:.1f}",
            f"{w.max_insert_ms:,.0f} / {w.max_update_ms:,.0f}",
        ]  # fmt: skip


def _batch_timer() -> tuple[Callable[[str], None], list[float]]:
    """A fault hook that times each batch from its SELECT to its COMMIT (no fault injected)."""
    durations: list[float] = []
    # Batches commit in order, but the next one may start before the last COMMIT returned.
    started: deque[float] = deque()

    def hook(point: str) -> None:
        if point == "before-select":
            started.append(time.perf_counter())
        elif point == "after-delete":
            durations.append(1000 * (time.perf_counter() - started.popleft()))

    return hook, durations


def _engine(
    case: Case, live: DatabaseServer, table: str, rows: int, archive: DatabaseServer | None = None
) -> None:
    assert case.batch is not None
    extra: dict[str, Any] = {"category": "support"}
    if archive is not None:
        extra = {"category": "support-statutory", "archive": archive}
    doc = store_doc(live, table, batchSize=case.batch, maxRowsPerRun=rows, **extra)
    hook, durations = _batch_timer()
    options = ONE_SESSION if case.method.endswith("one session") else NO_HOLD
    beside = archive is not None and archive.engine == "mysql" and archive.port == live.port
    if case.method == SAME_SERVER:
        assert archive is not None and beside, "same-server needs --archive-server same"
        live.execute(f"GRANT INSERT, SELECT ON {archive.database}.{table} TO '{PURGER_USER}'@'%'")
    result = run_purge(
        doc, live, archive, fault=hook, options=options, policy_doc=BENCH_POLICY,
        archive_login=ARCHIVER if beside else None,
    )  # fmt: skip
    assert result.result == "Succeeded", result.message
    if archive is not None:
        assert result.rows_archived == result.rows_deleted
        if beside:
            wanted = "ServerSide" if case.method == SAME_SERVER else "TwoLogins"
            assert result.tables[0].archive_copy == wanted, result.tables[0].archive_copy
        ((copied,),) = archive.query(f"SELECT count(*) FROM {table}")
        assert copied == result.rows_deleted, "the archive lacks rows the run deleted"
    case.rows, case.batches_ms = result.rows_deleted, durations


FLOOR = "archive floor: INSERT ... SELECT alone"


def _floor(case: Case, live: DatabaseServer, table: str, sessions: int) -> None:
    """The expired rows copied server-side into `table`_floor, by `sessions` sessions at once
    (each its share of the keys, one statement and one COMMIT each); nothing deleted."""
    cutoff = datetime.now(UTC) - CUTOFF_AGE
    bound = cutoff if live.engine == "postgresql" else cutoff.replace(tzinfo=None)
    top = int(live.query(f"SELECT max(id) FROM {table}")[0][0]) + 1
    edges = [top * i // sessions for i in range(sessions + 1)]
    copied: list[int] = []

    def share(low: int, high: int) -> None:
        conn = live.admin(autocommit=False)
        with conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {table}_floor SELECT id, ts, payload FROM {table} "
                "WHERE ts <= %s AND id >= %s AND id < %s",
                (bound, low, high),
            )
            copied.append(cur.rowcount)
        conn.commit()
        conn.close()

    threads = [threading.Thread(target=share, args=pair) for pair in itertools.pairwise(edges)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    case.batches_ms = [1000 * (time.perf_counter() - started)]
    case.rows = sum(copied)


def _naive(case: Case, live: DatabaseServer, table: str) -> None:
    cutoff = datetime.now(UTC) - CUTOFF_AGE
    conn = live.admin(autocommit=False)
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(
            f"DELETE FROM {table} WHERE ts <= %s",
            (cutoff if live.engine == "postgresql" else cutoff.replace(tzinfo=None),),
        )
        deleted = cur.rowcount
    conn.commit()
    case.rows, case.batches_ms = deleted, [1000 * (time.perf_counter() - started)]
    conn.close()


class StatementLog:
    """MariaDB's general query log as a table (microsecond times), on for one run.

    `information_schema.innodb_trx` is a cache refreshed at most every 100 ms, too coarse for
    lock holds; the general log stamps each statement when it starts.
    """

    def __init__(self, server: DatabaseServer) -> None:
        self._server = server
        server.execute(
            "SET GLOBAL general_log = 0",
            "TRUNCATE TABLE mysql.general_log",
            "SET GLOBAL log_output = 'TABLE'",
            "SET GLOBAL general_log = 1",
        )

    def lock_holds(self, user: str) -> list[float]:
        """Milliseconds from each transaction's first DELETE to its COMMIT, for `user`."""
        self._server.execute("SET GLOBAL general_log = 0")
        rows = self._server.query(
            "SELECT thread_id, event_time, argument FROM mysql.general_log "
            "WHERE user_host LIKE %s AND command_type = 'Query' ORDER BY event_time",
            (f"{user}[%",),
        )
        first_delete: dict[int, datetime] = {}
        holds: list[float] = []
        for thread, at, statement in rows:
            text = (statement.decode() if isinstance(statement, bytes) else statement).lstrip()
            verb = text[:6].upper()
            if verb == "DELETE":
                first_delete.setdefault(thread, at)
            elif verb == "COMMIT" and thread in first_delete:
                holds.append((at - first_delete.pop(thread)).total_seconds() * 1000)
        return holds


def _pt_archiver(case: Case, live: DatabaseServer, table: str) -> None:
    assert case.batch is not None
    cutoff = (datetime.now(UTC) - CUTOFF_AGE).strftime("%Y-%m-%d %H:%M:%S")
    before = _expired_left(live, table)
    log = StatementLog(live)
    dsn = (
        f"h={live.host},P={live.port},D={live.database},t={table},"
        f"u={PURGER_USER},p={PURGER_PASSWORD}"
    )
    proc = subprocess.run(
        ["pt-archiver", "--source", dsn, "--purge", "--where", f"ts <= '{cutoff}'",
         "--limit", str(case.batch), "--commit-each", "--bulk-delete", "--no-check-charset"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    case.batches_ms = log.lock_holds(PURGER_USER)
    if proc.returncode != 0:
        raise RuntimeError(f"pt-archiver failed ({proc.returncode}): {proc.stderr[-2000:]}")
    case.rows = before - _expired_left(live, table)


_BESIDE: dict[str, DatabaseServer] = {}


def _archive(servers: DatabaseServers, engine: str, args: argparse.Namespace) -> DatabaseServer:
    """Where a statutory run archives: by default a second database (`archive`) of the live
    server, as issue 12's target is stated; `--archive-server separate`: the archive server."""
    live, separate = servers.pair(engine)  # type: ignore[arg-type]
    if args.archive_server == "separate":
        return separate
    if engine not in _BESIDE:
        beside = replace(live, role="archive", process=None)
        if engine == "postgresql":
            live.execute(f"CREATE DATABASE {beside.database} OWNER {PURGER_USER}")
            beside.execute(f"ALTER SCHEMA public OWNER TO {PURGER_USER}")
        else:
            # Its own login: the live login `purger` holds nothing there unless a case grants
            # it (SAME_SERVER), as in the two-login grant model.
            live.execute(
                f"CREATE DATABASE {beside.database}",
                f"CREATE USER '{ARCHIVER.username}'@'%' IDENTIFIED BY '{ARCHIVER.password}'",
                f"GRANT ALL PRIVILEGES ON {beside.database}.* TO '{ARCHIVER.username}'@'%'",
            )
        create_claims_table(beside)
        _BESIDE[engine] = beside
    return _BESIDE[engine]


# ----------------------------------------------------------------------------------- runner


def _run_case(
    case: Case,
    servers: DatabaseServers,
    args: argparse.Namespace,
    action: Callable[[DatabaseServer, str], None],
    baseline: Case | None = None,
) -> Case:
    live = servers.pair(case.engine)[0]  # type: ignore[arg-type]
    archive = _archive(servers, case.engine, args)
    table = unique("bench")
    _create_and_seed(live, table, args.rows)
    if case.method.startswith(FLOOR):
        _create_archive_table(live, table + "_floor")
    if case.method.startswith("dataward purge, statutory"):
        _create_archive_table(
            archive, table, "varchar(64)" if case.method.endswith("text COPY") else "text"
        )
    writer = AppWriter(live, table, args.rows, args.write_rate)
    try:
        if baseline is not None:
            quiet_start = time.perf_counter()
            time.sleep(args.baseline_seconds)
            baseline.seconds = time.perf_counter() - quiet_start
        started = time.perf_counter()
        action(live, table)
        ended = time.perf_counter()
    finally:
        writer.finish()
    case.seconds = ended - started
    case.writes = writer.window(started, ended)
    if baseline is not None:
        baseline.writes = writer.window(quiet_start, quiet_start + baseline.seconds)
    expected = (args.rows + 1) // 2
    assert case.rows == expected, f"{case.method}: moved {case.rows}, expected {expected}"
    if case.method.startswith(FLOOR):
        live.execute(f"DROP TABLE {table}_floor")
    else:
        assert _expired_left(live, table) == 0, f"{case.method} left expired rows"
    live.execute(f"DROP TABLE {table}")
    if case.method.startswith("dataward purge, statutory"):
        archive.execute(f"DROP TABLE {table}")
    return case


def _cases(servers: DatabaseServers, engine: str, args: argparse.Namespace) -> list[Case]:
    baseline = Case(engine, "no purge (baseline)", None)
    done: list[Case] = []

    def report(case: Case) -> None:
        done.append(case)
        print("| " + " | ".join(case.cells()) + " |", flush=True)

    for i, batch in enumerate(args.batch):
        engine_case = Case(engine, "dataward purge", batch)
        _run_case(
            engine_case, servers, args,
            lambda live, table, c=engine_case: _engine(c, live, table, args.rows),
            baseline if i == 0 else None,
        )  # fmt: skip
        if i == 0:
            report(baseline)
        report(engine_case)
        if args.one_session and engine == "postgresql":
            single = Case(engine, "dataward purge, one session", batch)
            report(_run_case(
                single, servers, args,
                lambda live, table, c=single: _engine(c, live, table, args.rows),
            ))  # fmt: skip
    statutory = Case(engine, "dataward purge, statutory", args.batch[0])
    archive = _archive(servers, engine, args)
    report(_run_case(
        statutory, servers, args,
        lambda live, table: _engine(statutory, live, table, args.rows, archive),
    ))  # fmt: skip
    if engine == "mysql" and args.archive_server == "same":
        same = Case(engine, SAME_SERVER, args.batch[0])
        report(_run_case(
            same, servers, args,
            lambda live, table: _engine(same, live, table, args.rows, archive),
        ))  # fmt: skip
    if args.one_session and engine == "postgresql":
        for method in (
            "dataward purge, statutory, one session",
            "dataward purge, statutory, text COPY",
        ):
            other = Case(engine, method, args.batch[0])
            report(_run_case(
                other, servers, args,
                lambda live, table, c=other: _engine(c, live, table, args.rows, archive),
            ))  # fmt: skip
    if args.floor:
        for sessions in (1, 2):
            floor = Case(engine, f"{FLOOR}, {sessions} session{'s' if sessions > 1 else ''}", None)
            report(_run_case(
                floor, servers, args,
                lambda live, table, c=floor, n=sessions: _floor(c, live, table, n),
            ))  # fmt: skip
    naive = Case(engine, "naive single DELETE", None)
    report(_run_case(naive, servers, args, lambda live, table: _naive(naive, live, table)))
    if engine == "mysql" and not args.no_pt_archiver:
        for batch in args.batch:
            pt = Case(engine, "pt-archiver --purge --bulk-delete", batch)
            report(_run_case(
                pt, servers, args, lambda live, table, c=pt: _pt_archiver(c, live, table)
            ))  # fmt: skip
    return done


def main() -> None:
    """Start the servers, run every case, print a Markdown table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows per table (half expire)")
    parser.add_argument("--batch", type=int, nargs="+", default=[10000])
    parser.add_argument("--no-durable", action="store_true", help="keep the harness's fsync off")
    parser.add_argument("--write-rate", type=float, default=200.0, help="application writes/s")
    parser.add_argument("--baseline-seconds", type=float, default=15.0)
    parser.add_argument("--engines", nargs="+", default=["postgresql", "mysql"])
    parser.add_argument("--no-pt-archiver", action="store_true")
    parser.add_argument(
        "--archive-server",
        choices=["same", "separate"],
        default="same",
        help="statutory runs archive to a second database of the live server (same, issue "
        "12's setting) or to the engine's other server (separate: two server processes)",
    )
    parser.add_argument(
        "--one-session",
        action="store_true",
        help="PostgreSQL: also run the plain and statutory purges without overlapping batches "
        "(one live session), and the statutory one with an archive whose payload type differs "
        "(COPY text, not binary)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also copy the expired rows server-side alone (no DELETE), by one session and by "
        "two: the most any statutory purge's rate can be on this machine",
    )
    args = parser.parse_args()
    if "mysql" in args.engines and not args.no_pt_archiver and not shutil.which("pt-archiver"):
        parser.error("pt-archiver not found: run `make deps` (installs Debian's percona-toolkit)")
    started = time.perf_counter()
    where = {"same": "a second database of the live server", "separate": "the other server"}
    print(f"statutory archive: {where[args.archive_server]}")
    print(f"rows per table: {args.rows:,} ({(args.rows + 1) // 2:,} expired); application "
          f"writes: {args.write_rate:.0f}/s; load average at start: {_load()}\n")  # fmt: skip
    header = ["engine", "method", "batch", "rows deleted", "seconds", "rows/s",
              "p95 batch ms", "longest batch (lock hold) ms", "app writes",
              "write p50 ms", "write p95 ms", "write max ms (INSERT / UPDATE)"]  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header), flush=True)
    done: list[Case] = []
    with DatabaseServers.start() as servers:
        settings = []
        for server in servers.all():
            if not args.no_durable:
                _make_durable(server)
            settings.append(f"{server.engine} {server.role}: {_durability(server)}")
        for engine in args.engines:
            _create_app_login(servers.pair(engine)[0])  # type: ignore[arg-type]
            done += _cases(servers, engine, args)
    print("\nserver settings: " + "; ".join(settings))
    print("\n" + "\n".join(_ratios(done)))
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at end: {_load()}")


def _ratios(cases: list[Case]) -> list[str]:
    """Issue 12's targets, each as measured in this run."""

    def rate(engine: str, method: str, batch: int | None = None) -> float | None:
        for c in cases:
            if c.engine == engine and c.method == method and (batch is None or c.batch == batch):
                return c.rows / c.seconds if c.seconds else None
        return None

    lines = []
    for c in cases:
        if c.method.startswith("dataward purge") and c.batches_ms:
            ordered = sorted(c.batches_ms)
            lines.append(
                f"- {c.engine} {c.method} (batch {c.batch}): p95 batch "
                f"{_quantile(ordered, 0.95):.0f} ms (target <= 100 on PostgreSQL plain)"
            )
    for engine in ("postgresql", "mysql"):
        plain = rate(engine, "dataward purge")
        if plain is None:
            continue
        naive = rate(engine, "naive single DELETE")
        if naive:
            lines.append(f"- {engine}: plain / naive DELETE = {plain / naive:.2f} (target >= 0.5)")
        pt = rate(engine, "pt-archiver --purge --bulk-delete", 10000)
        if pt:
            lines.append(f"- {engine}: plain / pt-archiver (10,000) = {plain / pt:.2f} (>= 1.5)")
        statutory = rate(engine, "dataward purge, statutory")
        if statutory:
            lines.append(f"- {engine}: statutory / plain = {statutory / plain:.2f} (>= 0.5)")
        floors = [c.rows / c.seconds for c in cases
                  if c.engine == engine and c.method.startswith(FLOOR) and c.seconds]  # fmt: skip
        if floors:
            lines.append(
                f"- {engine}: archive floor (best) / plain = {max(floors) / plain:.2f} (a "
                "statutory purge inserts the same rows: statutory / plain cannot exceed this)"
            )
        same = rate(engine, SAME_SERVER)
        if same:
            lines.append(
                f"- {engine}: statutory, same-server / plain = {same / plain:.2f} (>= 0.5)"
            )
    return lines


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
