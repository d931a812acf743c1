"""An erasure decides by the earliest clock it read, within the allowed skew.

Which of the subject's rows a statute keeps (archived, not deleted outright), which archived
rows it no longer keeps (destroyed), and the `keptUntil` told to the person are decided at
an instant. Within `--max-clock-skew` the job's clock and either database server's may each be
the right one: decided at a later one, a row whose statute ends up to the skew after the
earliest clock is deleted without its copy, or its archived copy destroyed, before its
statute ends by that clock. Unit tests: in-memory sessions that tell their server's time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataward.model.durations import parse_duration
from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.purge.claims import CLAIMS_TABLE
from dataward.purge.errors import PurgeError
from dataward.purge.sql import POSTGRES, Column, Session, TableName
from dataward.subjects.engine import Outcome, RequestOptions, run_request
from dataward.subjects.identifiers import parse_identifiers
from tests.expiry import expiry
from tests.purge.support import POLICY

EMAIL = "kim.minji@example.com"
STATUTE = parse_duration("5y")  # the `contracts` category's statute
JOB_NOON = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=4, seconds=59)  # within the default bound of five minutes
MINUTE = timedelta(minutes=1)


def trigger_kept_until(until: datetime) -> datetime:
    """A trigger whose statute ends at `until` (by the oracle, not the code under test)."""
    trigger = until.replace(year=until.year - 5)
    assert expiry(trigger, STATUTE) == until
    return trigger


# Row 1: the statute ends a minute after the job's noon (kept by every clock within the skew
# until then). Row 2: it ended six minutes before the job's noon (over by every clock).
KEPT = trigger_kept_until(JOB_NOON + MINUTE)
OVER = trigger_kept_until(JOB_NOON - 6 * MINUTE)
CLAIMS_COLUMNS = (
    Column("archive_table", "character varying", None),
    Column("store", "character varying", None),
    Column("claimed_at", "timestamp with time zone", 6),
)
COLUMNS = (
    Column("id", "bigint", None),
    Column("ts", "timestamp with time zone", 6),
    Column("email", "character varying", None),
)


class FakeSession(Session):
    """One PostgreSQL table `people (id, ts timestamptz, email)` holding only the subject's
    rows (the predicate is not evaluated: every row matches), and its server's clock."""

    def __init__(self, role: str, now: datetime, rows: dict[int, datetime]) -> None:
        super().__init__(None, role, lambda exc: PurgeError("DatabaseError", str(exc)))
        self.dialect = POSTGRES
        self.now = now
        self.rows = dict(rows)
        self.claims = {}

    def server_now(self) -> datetime:
        return self.now

    claims: dict[str, str]  # the archive's registry of tables' owners (purge.claims)

    def columns(self, table: TableName) -> tuple[Column, ...]:
        if table.name == CLAIMS_TABLE:
            return CLAIMS_COLUMNS
        return COLUMNS

    def unique_keys(self, table: TableName) -> tuple[frozenset[str], ...]:
        if table.name == CLAIMS_TABLE:
            return (frozenset({"archive_table"}),)
        return (frozenset({"id"}),)

    def read_only(self) -> bool:
        return False

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        if sql.startswith("SELECT store FROM") and CLAIMS_TABLE in sql:
            owner = self.claims.get(params[0])
            return [] if owner is None else [(owner,)]
        if sql.startswith('SELECT "ts", CASE WHEN'):
            return [(ts, 0) for ts in self.rows.values()]
        if sql.startswith('SELECT "ts" FROM'):
            return [(ts,) for ts in self.rows.values()]
        if sql.startswith('SELECT "id", "ts" FROM'):
            return list(self.rows.items())
        if sql.startswith("WITH dw_gone AS (DELETE"):
            gone = {i: ts for i, ts in self.rows.items() if ts is not None}
            for i in gone:
                del self.rows[i]
            return [
                (i, ts, json.dumps({"id": i, "ts": ts.isoformat(), "email": EMAIL}))
                for i, ts in gone.items()
            ]
        if sql.startswith("SELECT count(*) FROM"):
            return [(sum(1 for p in params if isinstance(p, int) and p in self.rows),)]
        raise AssertionError(f"unexpected query: {sql}")

    def execute(self, sql: str, params: Any = ()) -> int:
        if sql.startswith("INSERT INTO") and CLAIMS_TABLE in sql:
            self.claims.setdefault(params[0], params[1])
            return 1
        if sql.startswith("INSERT"):
            copied = json.loads(params[0])
            for row in copied:
                self.rows[row["id"]] = datetime.fromisoformat(row["ts"])
            return len(copied)
        if sql.startswith("DELETE FROM"):
            named = [p for p in params if isinstance(p, int) and p in self.rows]
            for i in named:
                del self.rows[i]
            return len(named)
        raise AssertionError(f"unexpected statement: {sql}")


def contract_store(zone: str | None = None) -> Any:
    """A store of the contracts category on fake live and archive sessions (`zone`: its
    records' timeZone)."""
    store: dict[str, Any] = {
        "apiVersion": "dataward.io/v1alpha1",
        "kind": "PersonalDataStore",
        "metadata": {"name": "st", "namespace": "crm", "generation": 7},
        "spec": {
            "policy": "clunix",
            "category": "contracts",
            "workload": {"podSelector": {"matchLabels": {"app": "db"}}, "ports": [{"port": 5432}]},
            "database": {"engine": "postgresql", "host": "live", "port": 5432, "name": "app",
                         "credentialsSecret": "live-login"},
            "archive": {"database": {"engine": "postgresql", "host": "archive", "port": 5432,
                                     "name": "app", "credentialsSecret": "archive-login"}},
            "records": [{"table": "people", "timestampColumn": "ts", "keyColumns": ["id"],
                         "subjectColumns": [{"kind": "email", "column": "email"}]}],
            "purge": {"batchSize": 100, "maxRowsPerRun": 100000},
        },
    }  # fmt: skip
    if zone is not None:
        store["spec"]["records"][0]["timeZone"] = zone
    return parse_store(store)


def erase(live: FakeSession, archive: FakeSession, dry_run: bool) -> Outcome:
    return run_request(
        contract_store(), parse_policy(POLICY), parse_identifiers({"email": EMAIL}), "erasure",
        connect_live=lambda: live, connect_archive=lambda: archive, job_clock=lambda: JOB_NOON,
        options=RequestOptions(dry_run=dry_run),
    )  # fmt: skip


CLOCKS = pytest.mark.parametrize(
    ("live_ahead", "archive_ahead"),
    [(SKEW, timedelta(0)), (timedelta(0), SKEW), (SKEW, SKEW), (-SKEW, SKEW), (SKEW, -SKEW)],
)


@CLOCKS
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_database_clock_ahead_of_the_job_within_the_bound_lets_no_statute_end_early(
    live_ahead: timedelta, archive_ahead: timedelta, dry_run: bool
) -> None:
    """Live and archive each hold a row whose statute ends a minute after the job's noon and
    one whose statute ended six minutes before it. Whichever server runs ahead (by up to the
    bound), the first is archived (live) and kept (archive), and the person is told it is
    kept until its statute ends; the second goes, from both."""
    live = FakeSession("live", JOB_NOON + live_ahead, {1: KEPT, 2: OVER})
    archive = FakeSession("archive", JOB_NOON + archive_ahead, {11: KEPT, 12: OVER})
    result = erase(live, archive, dry_run).result
    assert (result.outcome, result.reason) == ("Succeeded", "DryRun" if dry_run else None)
    (table,) = result.tables
    assert table.rows_found == 2 and table.archive_rows_found == 2
    assert table.rows_deleted == 2  # both leave the live table
    assert table.rows_archived == 1  # the one the statute still keeps, copied first
    assert table.archive_rows_destroyed == 1  # only the archived one past its statute
    assert table.rows_kept == 2 and table.rows_kept_live == 0
    assert table.kept_until == expiry(KEPT, STATUTE)
    # It counted at an instant no clock it read had passed.
    assert result.server_time is not None
    assert result.server_time <= min(JOB_NOON, live.now, archive.now)
    if not dry_run:
        assert live.rows == {}
        assert archive.rows == {1: KEPT, 11: KEPT}


@pytest.mark.parametrize("dry_run", [True, False])
def test_what_one_clock_still_keeps_is_kept_on_both_sides(dry_run: bool) -> None:
    """The live server's clock behind the job's and the archive's: a statute that ended a
    minute before the job's noon still runs by it. The live row is archived, and neither its
    new copy nor the archived row of the same statute is destroyed by the same request."""
    ended = trigger_kept_until(JOB_NOON - MINUTE)
    live = FakeSession("live", JOB_NOON - SKEW, {1: ended})
    archive = FakeSession("archive", JOB_NOON, {11: ended})
    (table,) = erase(live, archive, dry_run).result.tables
    assert (table.rows_deleted, table.rows_archived, table.archive_rows_destroyed) == (1, 1, 0)
    assert table.rows_kept == 2 and table.kept_until == JOB_NOON - MINUTE
    if not dry_run:
        assert archive.rows == {1: ended, 11: ended}


@pytest.mark.parametrize("off", ["live", "archive"])
def test_a_server_clock_beyond_the_bound_fails_the_request_before_anything_goes(
    off: str
) -> None:
    beyond = timedelta(minutes=5, microseconds=1)
    live = FakeSession("live", JOB_NOON + (beyond if off == "live" else timedelta(0)), {2: OVER})
    archive = FakeSession(
        "archive", JOB_NOON - (beyond if off == "archive" else timedelta(0)), {12: OVER}
    )
    result = erase(live, archive, False).result
    assert (result.outcome, result.reason) == ("Failed", "ClockSkew")
    assert off in result.message and result.server_time == live.now
    assert live.rows == {2: OVER} and archive.rows == {12: OVER}


def _without_statute() -> Any:
    """The policy as a revision that lifts the contracts category's statute would make it."""
    import copy

    lifted = copy.deepcopy(POLICY)
    for category in lifted["spec"]["categories"]:
        if category["name"] == "contracts":
            del category["statutory"]
    return parse_policy(lifted)


@pytest.mark.parametrize("live_behind", [True, False])
def test_a_revision_taking_effect_between_the_clocks_erases_nothing(live_behind: bool) -> None:
    """A revision lifting the statute takes effect a minute before the job's noon. By the job's
    clock the row may go outright; by the live server's (three minutes behind) the statute
    still keeps it, so it must be archived first. Red first: the policy was decided at the
    job's clock alone and the erasure deleted the row without its copy before the revision
    was in force by the clock it decided at. Now the request deletes nothing and says why
    (the requester runs it again past the revision's start)."""
    effective = JOB_NOON - MINUTE
    kept, lifted = parse_policy(POLICY), _without_statute()

    def policy_at(instant: datetime) -> Any:
        return lifted if instant >= effective else kept

    live_now = JOB_NOON - 3 * MINUTE if live_behind else JOB_NOON
    live = FakeSession("live", live_now, {1: KEPT})
    archive = FakeSession("archive", JOB_NOON, {})
    outcome = run_request(
        contract_store(), lifted, parse_identifiers({"email": EMAIL}), "erasure",
        connect_live=lambda: live, connect_archive=lambda: archive, job_clock=lambda: JOB_NOON,
        options=RequestOptions(dry_run=False), policy_at=policy_at,
    )  # fmt: skip
    result = outcome.result
    if live_behind:
        assert (result.outcome, result.reason) == ("Failed", "RetentionChanged")
        assert "nothing was deleted" in result.message
        assert live.rows == {1: KEPT} and archive.rows == {}
    else:  # every clock agrees on the lifted statute: the request runs under it
        assert result.outcome == "Succeeded" and result.reason != "RetentionChanged"
        assert archive.rows == {}  # nothing archived: no statute keeps the row


def test_a_clock_before_the_recorded_revisions_start_erases_nothing() -> None:
    """Status records the statute lifted in force since a minute before the job's noon and no
    longer the revision before it; the live server's clock, three minutes behind, is before
    that start. Red first (the key ring review's finding, here in the requests): the policy
    at every clock was the recorded one, so the erasure deleted the row without its copy
    while by the live clock the statute may still have kept it. The policy at that clock is
    not known now: nothing is deleted."""
    import copy

    from dataward.model.revisions import InForce
    from dataward.purge.source import revision_at

    effective = JOB_NOON - MINUTE
    raw = copy.deepcopy(POLICY)
    for category in raw["spec"]["categories"]:
        if category["name"] == "contracts":
            del category["statutory"]
    generation = int(raw["metadata"].get("generation") or 1)
    raw["metadata"]["generation"] = generation
    recorded = InForce(generation, raw["spec"], effective).to_status()
    raw["status"] = {"revisions": {"inForce": recorded}}
    lifted = parse_policy(raw)

    live = FakeSession("live", JOB_NOON - 3 * MINUTE, {1: KEPT})
    archive = FakeSession("archive", JOB_NOON, {})
    outcome = run_request(
        contract_store(), lifted, parse_identifiers({"email": EMAIL}), "erasure",
        connect_live=lambda: live, connect_archive=lambda: archive, job_clock=lambda: JOB_NOON,
        options=RequestOptions(dry_run=False), policy_at=lambda at: revision_at(raw, at),
    )  # fmt: skip
    assert (outcome.result.outcome, outcome.result.reason) == ("Failed", "RetentionChanged")
    assert live.rows == {1: KEPT} and archive.rows == {}
