"""Children under 14 (issue 13): rows of a child without the legal representative's consent go
once the consent grace has passed; rows with consent follow the retention.

The oracle here is written apart from the code under test: a 14th birthday is the birth date's
day and month 14 years on (29 February on 28 February in a common year), a child's row is one
collected before it, and the grace has passed when `collected + grace <= now`. The server's
clock is pinned in-process (as the month-end tests do) so the edge cases are exact.
"""

from __future__ import annotations

import calendar
import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from dataward.purge.engine import EngineOptions
from dataward.purge.sql import Session
from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import POLICY, run_purge, store_doc, unique

pytestmark = pytest.mark.db

NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
GRACE = timedelta(days=5)
ENGINES = ["postgresql", "mysql"]
TS_TYPES = {
    ("postgresql", "instant"): "timestamptz",
    ("postgresql", "date"): "date",
    ("mysql", "instant"): "DATETIME(6)",
    ("mysql", "date"): "DATE",
}
CONSENT_TYPES = {
    ("postgresql", "timestamp"): "timestamptz",
    ("postgresql", "flag"): "boolean",
    ("mysql", "timestamp"): "DATETIME(6)",
    ("mysql", "flag"): "BOOLEAN",
}


def kids_policy() -> dict[str, Any]:
    """The test policy plus children's categories."""
    policy = copy.deepcopy(POLICY)
    policy["spec"]["categories"] += [
        {"name": "kids", "purposes": ["service"],
         "retention": {"period": "10y", "trigger": "joined"}, "children": {}},
        {"name": "kids-monthly", "purposes": ["service"],
         "retention": {"period": "1mo", "trigger": "joined"}, "children": {}},
        {"name": "kids-orders", "purposes": ["contract"],
         "retention": {"period": "1mo", "trigger": "ordered"},
         "statutory": {"period": "5y", "statute": "E-Commerce Act"},
         "children": {"consentGrace": "3d"}},
    ]  # fmt: skip
    return policy


def children_doc(
    live: DatabaseServer,
    table: str,
    children: dict[str, str],
    category: str = "kids",
    archive: DatabaseServer | None = None,
    **purge_spec: Any,
) -> dict[str, Any]:
    """A store of a children's category."""
    doc = store_doc(live, table, category=category, archive=archive, **purge_spec)
    doc["spec"]["records"][0]["children"] = children
    return doc


def create_children_table(
    server: DatabaseServer, name: str, ts_kind: str, consent_kind: str
) -> None:
    """`(id, ts, birth date, age, consent, payload)`, owned by the purge login."""
    ts = TS_TYPES[(server.engine, ts_kind)]
    consent = CONSENT_TYPES[(server.engine, consent_kind)]
    if server.engine == "postgresql":
        server.execute(
            f"CREATE TABLE {name} (id bigint PRIMARY KEY, ts {ts}, birth date, age integer, "
            f"consent {consent}, payload text)",
            f"CREATE INDEX ON {name} (ts)",
            f"ALTER TABLE {name} OWNER TO purger",
        )
    else:
        server.execute(
            f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, ts {ts} NULL, birth DATE, age INT, "
            f"consent {consent} NULL, payload VARCHAR(200), INDEX (ts)) ENGINE=InnoDB"
        )


Row = tuple[int, datetime | None, date | None, int | None, Any]


def insert_children(server: DatabaseServer, name: str, ts_kind: str, rows: list[Row]) -> None:
    """Rows `(id, collected, birth, age, consent)`; instants written as UTC."""

    def value(at: Any) -> Any:
        if not isinstance(at, datetime):
            return at
        if ts_kind == "date":
            return at.date()
        return at if server.engine == "postgresql" else at.replace(tzinfo=None)

    conn = server.admin(autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {name} (id, ts, birth, age, consent, payload) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [(i, value(ts), b, a, value(c), f"row-{i}") for i, ts, b, a, c in rows],
            )
        conn.commit()
    finally:
        conn.close()


def read_children(server: DatabaseServer, name: str) -> dict[int, tuple[Any, ...]]:
    """id -> (collected as UTC instant, birth, age, consent)."""
    conn = server.admin()
    try:
        with conn.cursor() as cur:
            if server.engine == "mysql":
                cur.execute("SET time_zone = '+00:00'")
            cur.execute(f"SELECT id, ts, birth, age, consent FROM {name}")
            out = {}
            for i, ts, birth, age, consent in cur.fetchall():
                if isinstance(ts, datetime):
                    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
                elif isinstance(ts, date):
                    ts = datetime(ts.year, ts.month, ts.day, tzinfo=UTC)
                out[int(i)] = (ts, birth, age, consent)
            return out
    finally:
        conn.close()


def fourteenth_birthday(birth: date) -> datetime:
    """The oracle: the same day and month 14 years on; 29 February -> 28 February."""
    year = birth.year + 14
    day = birth.day
    if birth.month == 2 and birth.day == 29 and not calendar.isleap(year):
        day = 28
    return datetime(year, birth.month, day, tzinfo=UTC)


def consented(consent: Any) -> bool:
    """Recorded consent: a timestamp, or true."""
    return consent is not None and consent is not False and consent != 0


def child_without_consent(row: tuple[Any, ...], now: datetime, grace: timedelta) -> bool:
    """The oracle's verdict on one row (birth-date stores)."""
    ts, birth, age, consent = row
    if ts is None or consented(consent):
        return False
    if birth is not None:
        child = ts < fourteenth_birthday(birth)
    elif age is not None:
        child = age < 14
    else:
        return False  # unknown age: never treated as a child's row
    return bool(child and ts + grace <= now)


def pinned(now: datetime) -> Any:
    def pin(session: Session) -> None:
        session.server_now = lambda: now  # type: ignore[method-assign]

    return pin


EDGE_BIRTHS = [
    date(2012, 2, 29),  # 14 on 2026-02-28 (common year)
    date(2008, 2, 29),  # 14 on 2022-02-28
    date(2012, 2, 28),
    date(2012, 3, 1),
    date(2012, 12, 31),
    date(2013, 1, 1),
    date(2013, 2, 28),  # 14 on 2027-02-28, ten days before NOW
    date(2010, 2, 28),  # 14 on 2024-02-28, a leap year
]


def edge_rows() -> list[Row]:
    """Collection instants around each 14th birthday, with and without consent, and rows at the
    grace period's edge."""
    rows: list[Row] = []
    steps = [
        -timedelta(days=1), -timedelta(microseconds=1), timedelta(0),
        timedelta(microseconds=1), timedelta(hours=23), timedelta(days=1),
    ]  # fmt: skip
    for birth in EDGE_BIRTHS:
        # Not the code under test's arithmetic: the plain unclamped anniversary where it exists.
        anniversary = fourteenth_birthday(birth)
        for step in steps:
            for consent in (None, NOW - timedelta(days=1)):
                rows.append((len(rows) + 1, anniversary + step, birth, None, consent))
    child = date(2020, 6, 15)
    for back in (
        GRACE, GRACE - timedelta(microseconds=1), GRACE + timedelta(microseconds=1),
        timedelta(days=4), timedelta(days=6), timedelta(days=1, hours=12), timedelta(0),
    ):  # fmt: skip
        rows.append((len(rows) + 1, NOW - back, child, None, None))
    rows.append((len(rows) + 1, NOW - timedelta(days=30), None, None, None))  # unknown age
    rows.append((len(rows) + 1, None, child, None, None))  # no collection instant
    return rows


@pytest.mark.parametrize("ts_kind", ["instant", "date"])
@pytest.mark.parametrize("engine", ENGINES)
def test_the_databases_age_arithmetic_equals_the_oracles_on_birthday_edges(
    servers: DatabaseServers, engine: str, ts_kind: str
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    table = unique(f"kids_{ts_kind}")
    create_children_table(live, table, ts_kind, "timestamp")
    insert_children(live, table, ts_kind, edge_rows())
    before = read_children(live, table)
    expected = {i for i, row in before.items() if child_without_consent(row, NOW, GRACE)}
    # The edges are real: both verdicts occur around the birthdays and at the grace's edge.
    assert 10 < len(expected) < len(before) - 20

    result = run_purge(
        children_doc(live, table, {"birthDateColumn": "birth", "consentColumn": "consent"},
                     batchSize=7),
        live, live_session_hook=pinned(NOW), job_clock=lambda: NOW, policy_doc=kids_policy(),
    )  # fmt: skip

    assert result.result == "Succeeded", result.message
    gone = set(before) - set(read_children(live, table))
    assert gone == expected, (
        f"deleted but not expected: {sorted(gone - expected)}; "
        f"expected but kept: {sorted(expected - gone)}"
    )
    assert not any(consented(before[i][3]) for i in gone), "a row with consent was deleted"
    assert result.tables[0].rows_no_consent == len(expected) == result.rows_deleted
    assert result.tables[0].no_consent_remaining == 0
    # The row of unknown age is kept, and said.
    assert result.tables[0].unknown_age == 1
    assert "1 rows of children's tables have no birth date or age" in result.message


@pytest.mark.parametrize("engine", ENGINES)
def test_an_age_column_and_a_boolean_consent(servers: DatabaseServers, engine: str) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("kids_age")
    create_children_table(live, table, "instant", "flag")
    rows: list[Row] = []
    for age in (None, 0, 12, 13, 14, 15, 40):
        for consent in (None, False, True):
            for back in (timedelta(days=4), GRACE, timedelta(days=90)):
                rows.append((len(rows) + 1, NOW - back, None, age, consent))
    insert_children(live, table, "instant", rows)
    before = read_children(live, table)
    expected = {i for i, row in before.items() if child_without_consent(row, NOW, GRACE)}
    assert len(expected) == 3 * 2 * 2  # ages 0, 12, 13 / NULL, false / at and past the grace

    result = run_purge(
        children_doc(live, table, {"ageColumn": "age", "consentColumn": "consent"}),
        live, live_session_hook=pinned(NOW), job_clock=lambda: NOW, policy_doc=kids_policy(),
    )  # fmt: skip

    assert result.result == "Succeeded", result.message
    assert set(before) - set(read_children(live, table)) == expected
    assert result.tables[0].rows_no_consent == len(expected)
    assert result.tables[0].unknown_age == 9  # age NULL: 3 consents x 3 instants


@pytest.mark.parametrize("engine", ENGINES)
def test_consent_recorded_during_the_run_keeps_the_rows(
    servers: DatabaseServers, engine: str
) -> None:
    """The guardian answers while the purge runs: the next batches must not take those rows."""
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("kids_race")
    create_children_table(live, table, "instant", "timestamp")
    rows: list[Row] = [
        (i, NOW - timedelta(days=10, minutes=i), date(2020, 1, 1), None, None) for i in range(1, 61)
    ]
    insert_children(live, table, "instant", rows)
    answered: list[bool] = []

    def guardian_answers() -> None:
        if not answered:
            live.execute(f"UPDATE {table} SET consent = '2027-03-09' WHERE id <= 30")
            answered.append(True)

    result = run_purge(
        children_doc(live, table, {"birthDateColumn": "birth", "consentColumn": "consent"},
                     batchSize=5),
        live, live_session_hook=pinned(NOW), job_clock=lambda: NOW, policy_doc=kids_policy(),
        check_continue=guardian_answers,
    )  # fmt: skip

    assert result.result == "Succeeded", result.message
    left = read_children(live, table)
    # Oldest first: the first batch (ids 60..56) went before the guardian answered.
    assert set(range(1, 31)) <= set(left), "a row deleted after its consent was recorded"
    assert not set(range(31, 61)) & set(left)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_statutory_childrens_category_archives_the_rows_it_removes(
    servers: DatabaseServers, engine: str
) -> None:
    """PIPA Art. 21(1) proviso: a statute's duty to keep outranks destruction, so a statutory
    category's rows of children without consent move to the archive, like any row it removes."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("kids_orders")
    for server in (live, archive):
        create_children_table(server, table, "instant", "timestamp")
    rows: list[Row] = [
        (1, NOW - timedelta(days=4), date(2020, 1, 1), None, None),  # child, past grace
        (2, NOW - timedelta(days=2), date(2020, 1, 1), None, None),  # child, within 3d grace
        (3, NOW - timedelta(days=4), date(2020, 1, 1), None, NOW),  # consent
        (4, NOW - timedelta(days=4), date(1990, 1, 1), None, None),  # adult
        (5, NOW - timedelta(days=60), date(1990, 1, 1), None, None),  # retention ended
        (6, NOW - timedelta(days=60), date(2020, 1, 1), None, None),  # both
    ]
    insert_children(live, table, "instant", rows)

    result = run_purge(
        children_doc(live, table, {"birthDateColumn": "birth", "consentColumn": "consent"},
                     category="kids-orders", archive=archive),
        live, archive, live_session_hook=pinned(NOW), job_clock=lambda: NOW,
        policy_doc=kids_policy(),
        # The archive's clock is not pinned: only the live one decides what leaves live.
        options=EngineOptions(max_clock_skew=timedelta(days=3650)),
    )  # fmt: skip

    assert result.result == "Succeeded", result.message
    assert set(read_children(live, table)) == {2, 3, 4}
    assert set(read_children(archive, table)) == {1, 5, 6}
    (t,) = result.tables
    assert (t.rows_deleted, t.rows_archived, t.rows_no_consent) == (3, 3, 2)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_store_whose_columns_do_not_fit_is_refused_before_anything_is_deleted(
    servers: DatabaseServers, engine: str
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("kids_bad")
    create_children_table(live, table, "instant", "timestamp")
    insert_children(
        live, table, "instant", [(1, NOW - timedelta(days=9), date(2020, 1, 1), None, None)]
    )
    for children, words in (
        ({"birthDateColumn": "payload", "consentColumn": "consent"}, "not a date or timestamp"),
        ({"ageColumn": "birth", "consentColumn": "consent"}, "not an integer"),
        ({"birthDateColumn": "birth", "consentColumn": "payload"}, "not a timestamp or boolean"),
        ({"birthDateColumn": "born", "consentColumn": "consent"}, "'born' is not in table"),
    ):
        result = run_purge(
            children_doc(live, table, children), live, live_session_hook=pinned(NOW),
            job_clock=lambda: NOW, policy_doc=kids_policy(),
        )  # fmt: skip
        assert result.result == "Failed" and result.reason == "ColumnRefused", result.message
        assert words in result.message
    assert set(read_children(live, table)) == {1}

    no_columns = store_doc(live, table, category="kids")
    result = run_purge(no_columns, live, policy_doc=kids_policy())
    assert (result.result, result.reason) == ("Failed", "NotCompliant")
    assert "ChildColumnsRequired" in result.message
    assert set(read_children(live, table)) == {1}


@pytest.mark.parametrize("engine", ENGINES)
def test_the_grace_runs_from_the_collected_column_when_the_trigger_is_another_event(
    servers: DatabaseServers, engine: str
) -> None:
    """Membership's trigger is the withdrawal (NULL while the member stays): a child's row
    without consent must still go 5 days after it was collected."""
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("kids_joined")
    create_children_table(live, table, "instant", "timestamp")
    joined = "timestamptz" if engine == "postgresql" else "DATETIME(6) NULL"
    live.execute(f"ALTER TABLE {table} ADD COLUMN joined {joined}")
    if engine == "mysql":
        live.execute(f"ALTER TABLE {table} ADD INDEX (joined)")
    child, adult = date(2018, 1, 1), date(1980, 1, 1)
    rows: list[Row] = [
        (1, None, child, None, None),  # active member, joined 6 days ago: goes
        (2, None, child, None, None),  # active, joined 2 days ago: within the grace
        (3, NOW - timedelta(days=1), child, None, None),  # withdrew yesterday, joined 9d ago
        (4, None, adult, None, None),
        (5, None, child, None, NOW),  # consent
        (6, NOW - timedelta(days=400), adult, None, None),  # withdrew long ago: retention 10y
    ]
    insert_children(live, table, "instant", rows)
    for i, days in ((1, 6), (2, 2), (3, 9), (4, 6), (5, 6), (6, 800)):
        at = NOW - timedelta(days=days)
        value = at if engine == "postgresql" else at.replace(tzinfo=None)
        conn = live.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f"UPDATE {table} SET joined = %s WHERE id = %s", (value, i))
        finally:
            conn.close()

    result = run_purge(
        children_doc(live, table, {"birthDateColumn": "birth", "consentColumn": "consent",
                                   "collectedColumn": "joined"}),
        live, live_session_hook=pinned(NOW), job_clock=lambda: NOW, policy_doc=kids_policy(),
    )  # fmt: skip

    assert result.result == "Succeeded", result.message
    assert set(read_children(live, table)) == {2, 4, 5, 6}
    (t,) = result.tables
    assert (t.rows_deleted, t.rows_no_consent, t.null_triggers) == (2, 2, 4)


def test_identical_childrens_rows_split_across_batches_are_not_deleted_for_one_copy(
    servers: DatabaseServers,
) -> None:
    """The children's lane of a statutory category, a PostgreSQL live table without a unique
    key, batches of one row, the grace run from `collectedColumn` (not the trigger): two
    identical rows under key 7. The batch that ends between them must stop the table, as
    the retention's lane does (`TableRun._twin_left`). Before: the check looked for the
    twin by the trigger column holding the collected instant, never found it, the cursor
    passed over the second 7 and the next run took the archived 7 as its copy."""
    live, archive = servers.pair("postgresql")
    table = unique("kids_twins")
    live.execute(
        f"CREATE TABLE {table} (id bigint NOT NULL, ts timestamptz, birth date, age integer, "
        "consent timestamptz, payload text, joined timestamptz)",
        f"CREATE INDEX ON {table} (ts)",
        f"CREATE INDEX ON {table} (joined)",
        f"ALTER TABLE {table} OWNER TO purger",
    )
    create_children_table(archive, table, "instant", "timestamp")
    archive.execute(f"ALTER TABLE {table} ADD COLUMN joined timestamptz")
    joined = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    for i in (6, 7, 7, 8):  # children without consent, the trigger not happened yet
        live.execute(
            f"INSERT INTO {table} (id, birth, payload, joined) "
            f"VALUES ({i}, '2020-01-01', 'row-{i}', '{joined.isoformat()}')"
        )
    doc = children_doc(
        live, table,
        {"birthDateColumn": "birth", "consentColumn": "consent", "collectedColumn": "joined"},
        category="kids-orders", archive=archive, batchSize=1,
    )  # fmt: skip
    for _ in range(2):
        result = run_purge(doc, live, archive, policy_doc=kids_policy())
        assert (result.result, result.reason) == ("Failed", "ArchiveKeyConflict"), result.message
        assert "row-" not in result.to_json()
        assert sorted(i for (i,) in live.query(f"SELECT id FROM {table}")) == [7, 7, 8]
        assert archive.query(f"SELECT id FROM {table}") == [(6,)]
