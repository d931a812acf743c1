"""`dataward preview` against real databases: its counts are what the purge then deletes.

The preview runs as the command a CI job would run (a subprocess, database URLs, `--now`); the
purge then runs in-process with both servers' clocks pinned to that instant, on tables seeded
around month ends (where `now - period` is wrong) and with children's rows. Each count of the
preview must equal the purge's and the rows that actually left each database.
"""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataward.model.durations import parse_duration
from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.purge.engine import EngineOptions, purge
from dataward.purge.plan import LargeCutThreshold
from dataward.purge.result import PurgeResult
from dataward.purge.sql import Session
from tests.databases import PURGER_PASSWORD, PURGER_USER, DatabaseServer, DatabaseServers
from tests.expiry import is_safely_expired
from tests.purge.support import REPO, connector, store_doc, unique
from tests.purge.tables import create_table, read_rows, seed, seed_instants
from tests.purge.test_children import (
    Row,
    children_doc,
    create_children_table,
    insert_children,
    kids_policy,
    read_children,
)

pytestmark = pytest.mark.db

FAKE_NOW = datetime(2025, 3, 31, 12, 0, tzinfo=UTC)
KIND = {"postgresql": "timestamptz", "mysql": "datetime6"}
MONTH = parse_duration("1mo")
STATUTE = parse_duration("5y")


def ragged(now: datetime) -> list[datetime | None]:
    """Month ends before `now`, every six hours: where calendar months clamp."""
    return [
        datetime(now.year - back, month, day, hour, tzinfo=UTC)
        for back in (0, 1)
        for month in range(1, 13)
        for day in range(27, calendar.monthrange(now.year - back, month)[1] + 1)
        for hour in (0, 6, 12, 18)
        if datetime(now.year - back, month, day, hour, tzinfo=UTC) < now
    ]


def url(server: DatabaseServer, login: str = "") -> str:
    scheme = "postgresql" if server.engine == "postgresql" else "mysql"
    return f"{scheme}://{login}{server.host}:{server.port}/{server.database}?tls=disable"


def run_preview(
    tmp_path: Path,
    doc: dict[str, Any],
    live: DatabaseServer,
    archive: DatabaseServer | None = None,
    *,
    now: datetime = FAKE_NOW,
    extra: tuple[str, ...] = (),
    login_in_url: str = "",
) -> subprocess.CompletedProcess[str]:
    """`python -m dataward preview ... -o json`, logins from the environment (or the URL)."""
    store_file, policy_file = tmp_path / "store.yaml", tmp_path / "policy.yaml"
    store_file.write_text(yaml.safe_dump(doc))
    policy_file.write_text(yaml.safe_dump(kids_policy()))
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DATAWARD_")},
        "PYTHONPATH": str(REPO / "operator"),
    }
    if not login_in_url:
        environ |= {
            "DATAWARD_DB_USERNAME": PURGER_USER, "DATAWARD_DB_PASSWORD": PURGER_PASSWORD,
            "DATAWARD_ARCHIVE_USERNAME": PURGER_USER, "DATAWARD_ARCHIVE_PASSWORD": PURGER_PASSWORD,
        }  # fmt: skip
    args = [
        sys.executable, "-m", "dataward", "preview", "-f", str(store_file),
        "--policy", str(policy_file), "--database-url", url(live, login_in_url),
        "--now", now.isoformat().replace("+00:00", "Z"), "-o", "json", *extra,
    ]  # fmt: skip
    if archive is not None:
        args += ["--archive-database-url", url(archive, login_in_url)]
    return subprocess.run(args, capture_output=True, text=True, env=environ, timeout=120)


def preview_json(process: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert process.returncode == 0, process.stdout + process.stderr
    result: dict[str, Any] = json.loads(process.stdout)
    assert result["dryRun"] is True and result["result"] == "Succeeded", result
    return result


def pinned_purge(
    doc: dict[str, Any],
    live: DatabaseServer,
    archive: DatabaseServer | None = None,
    now: datetime = FAKE_NOW,
    options: EngineOptions | None = None,
) -> PurgeResult:
    """A real purge with both servers' clocks at `now`."""

    def at_now(connect: Callable[[], Session]) -> Callable[[], Session]:
        def opened() -> Session:
            session = connect()
            session.server_now = lambda: now  # type: ignore[method-assign]
            return session

        return opened

    return purge(
        parse_store(doc),
        parse_policy(kids_policy()),
        connect_live=at_now(connector(live, "live")),
        connect_archive=at_now(connector(archive, "archive")) if archive else None,
        job_clock=lambda: now,
        options=options,
    )


def children_rows(now: datetime, by_age: bool = False) -> list[Row]:
    """Rows around month ends: children and adults, with and without consent, unknown ages."""
    births = [date(2020, 2, 29), date(1990, 1, 31), None, date(2011, 3, 31)]
    ages = [5, 30, None, 13]
    consents: list[Any] = (
        [None, False, True] if by_age else [None, None, datetime(2025, 1, 1, tzinfo=UTC)]
    )
    instants = [t for t in [*seed_instants(now, MONTH), *ragged(now)] if t is not None]
    instants += [now - timedelta(days=d, hours=h) for d in range(0, 9) for h in (0, 11)]
    return [
        (
            i,
            at,
            None if by_age else births[i % len(births)],
            ages[i % len(ages)] if by_age else None,
            consents[i % len(consents)],
        )
        for i, at in enumerate(instants, start=1)
    ]


def table_counts(result: dict[str, Any] | PurgeResult) -> list[tuple[str, int, int, int, int]]:
    """(table, deleted, archived, of children without consent, archive rows destroyed)."""
    if isinstance(result, PurgeResult):
        return [
            (t.table, t.rows_deleted, t.rows_archived, t.rows_no_consent, t.archive_rows_destroyed)
            for t in result.tables
        ]
    return [
        (t["table"], t["rowsDeleted"], t["rowsArchived"], t["rowsNoConsent"],
         t["archiveRowsDestroyed"])
        for t in result["tables"]
    ]  # fmt: skip


def seeded_store(live: DatabaseServer, engine: str, kind: str, budget: int) -> dict[str, Any]:
    """Two tables seeded around month ends: plain ones (category monthly), or children's
    tables (kids-monthly), one with a birth date and consent time, one with an age and a
    consent flag."""
    first, second = unique(f"preview_{kind}"), unique(f"preview_{kind}")
    if kind == "plain":
        for name in (first, second):
            create_table(live, name, KIND[engine])
            seed(live, name, KIND[engine], [*seed_instants(FAKE_NOW, MONTH), *ragged(FAKE_NOW)])
        doc = store_doc(live, first, category="monthly", batchSize=9, maxRowsPerRun=budget)
        doc["spec"]["records"].append(
            {"table": second, "timestampColumn": "ts", "keyColumns": ["id"]}
        )
        return doc
    create_children_table(live, first, "instant", "timestamp")
    insert_children(live, first, "instant", children_rows(FAKE_NOW))
    create_children_table(live, second, "instant", "flag")
    insert_children(live, second, "instant", children_rows(FAKE_NOW, by_age=True))
    doc = children_doc(live, first, {"birthDateColumn": "birth", "consentColumn": "consent"},
                       category="kids-monthly", batchSize=9, maxRowsPerRun=budget)  # fmt: skip
    doc["spec"]["records"].append(
        {"table": second, "timestampColumn": "ts", "keyColumns": ["id"],
         "children": {"ageColumn": "age", "consentColumn": "consent"}}
    )  # fmt: skip
    return doc


def row_ids(live: DatabaseServer, doc: dict[str, Any]) -> dict[str, set[int]]:
    return {r["table"]: set(read_rows(live, r["table"])) for r in doc["spec"]["records"]}


@pytest.mark.parametrize("budget", [100000, 40])
@pytest.mark.parametrize("kind", ["plain", "kids"])
@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_preview_counts_equal_what_the_purge_deletes_around_month_ends(
    servers: DatabaseServers, engine: str, kind: str, budget: int, tmp_path: Path
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    doc = seeded_store(live, engine, kind, budget)
    before = row_ids(live, doc)

    previewed = preview_json(run_preview(tmp_path, doc, live))
    assert row_ids(live, doc) == before, "the preview changed a table"
    result = pinned_purge(doc, live)

    assert result.result == "Succeeded", result.message
    assert table_counts(previewed) == table_counts(result)
    after = row_ids(live, doc)
    gone = [(table, len(ids - after[table])) for table, ids in before.items()]
    assert [(t, d) for t, d, *_ in table_counts(previewed)] == gone
    if budget > 1000:
        # The seeds reach every part: the retention's rows, and children's rows alone.
        assert all(t["rowsDeleted"] > 0 for t in previewed["tables"])
        if kind == "kids":
            assert all(0 < t["rowsNoConsent"] < t["rowsDeleted"] for t in previewed["tables"])
    else:
        assert sum(d for _, d in gone) == budget
        assert previewed["stoppedEarly"] == "MaxRowsPerRun"


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_preview_of_a_statutory_store_counts_archive_copies_and_destructions(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("preview_orders")
    for server in (live, archive):
        create_children_table(server, table, "instant", "timestamp")
    insert_children(live, table, "instant", children_rows(FAKE_NOW))
    old = [(100000 + i, FAKE_NOW - timedelta(days=5 * 365 + d), date(1990, 1, 1), None, None)
           for i, d in enumerate(range(-3, 4))]  # fmt: skip
    insert_children(archive, table, "instant", old)
    doc = children_doc(live, table, {"birthDateColumn": "birth", "consentColumn": "consent"},
                       category="kids-orders", archive=archive, batchSize=11)  # fmt: skip
    live_rows = read_children(live, table)
    live_before, archive_before = set(live_rows), set(read_children(archive, table))

    previewed = preview_json(run_preview(tmp_path, doc, live, archive))
    result = pinned_purge(doc, live, archive)

    assert result.result == "Succeeded", result.message
    assert table_counts(previewed) == table_counts(result)
    ((_, deleted, archived, no_consent, destroyed),) = table_counts(previewed)
    live_gone = live_before - set(read_children(live, table))
    archive_now = set(read_children(archive, table))
    assert deleted == archived == len(live_gone) > no_consent > 0
    # Rows already past the statute when archived are destroyed by the same run.
    past = live_gone - archive_now
    collected = {i: row[0] for i, row in live_rows.items()}
    assert past and all(is_safely_expired(collected[i], STATUTE, FAKE_NOW) for i in past)
    assert destroyed == len(archive_before - archive_now) + len(past)
    assert archive_before - archive_now


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_preview_names_the_tables_a_large_cut_would_hold(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    big, small = unique("preview_big"), unique("preview_small")
    for name in (big, small):
        create_table(live, name, KIND[engine])
    seed(live, big, KIND[engine], [FAKE_NOW - timedelta(days=40, minutes=i) for i in range(30)])
    seed(live, small, KIND[engine], [FAKE_NOW - timedelta(days=40, minutes=i) for i in range(3)]
         + [FAKE_NOW - timedelta(days=1, minutes=i) for i in range(60)])  # fmt: skip
    doc = store_doc(live, big, category="monthly")
    doc["spec"]["records"].append({"table": small, "timestampColumn": "ts", "keyColumns": ["id"]})

    previewed = preview_json(run_preview(tmp_path, doc, live, extra=("--large-purge-rows", "10")))
    assert [t["largeCut"] for t in previewed["tables"]] == [True, False]
    assert previewed["acknowledgeToken"] and "would be held" in previewed["message"]
    result = pinned_purge(doc, live, options=EngineOptions(large_cut=LargeCutThreshold(0.1, 10)))
    assert (result.result, result.reason) == ("Held", "LargePurgeNotAcknowledged")
    assert result.acknowledge_token == previewed["acknowledgeToken"]
    assert len(read_rows(live, big)) == 30


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_preview_never_prints_a_password(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("preview_login")
    create_table(live, table, KIND[engine])
    doc = store_doc(live, table, category="monthly")

    good = run_preview(tmp_path, doc, live, login_in_url=f"{PURGER_USER}:{PURGER_PASSWORD}@")
    assert preview_json(good)["tables"][0]["rowsDeleted"] == 0
    # Letters only: a fragment of digits can turn up in a timestamp's microseconds.
    secret = "Wr0ng%40pass-qzjx"
    bad = run_preview(tmp_path, doc, live, login_in_url=f"{PURGER_USER}:{secret}@")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["result"] == "Failed"
    for text in (good.stdout, good.stderr, bad.stdout, bad.stderr):
        assert PURGER_PASSWORD not in text and "Wr0ng" not in text and "qzjx" not in text
