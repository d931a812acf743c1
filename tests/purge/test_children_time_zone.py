"""Children under 14 in a store with records[].timeZone, on real PostgreSQL and MariaDB.

A birthday is a day of the store's zone: the subject turns 14 when that day begins there (UTC
without timeZone), and a row is a child's only when it was collected before that on every
reading of its column. The oracle is written out by hand from the zone's rules (comments give
the readings). Before the fix the birthday was midnight UTC (or the birth timestamp's own hour
14 years on), so a Seoul subject's rows of the first nine hours of their 14th birthday, their
own lawful consent, were deleted as a child's; and a wall clock in an hour repeated across
midnight (St. John's, 2010) counted as before the birthday though it may be after it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import PurgeResult, run_purge, unique
from tests.purge.test_children import children_doc, kids_policy, pinned

pytestmark = pytest.mark.db

ENGINES = ["postgresql", "mysql"]
TYPES = {
    ("postgresql", "instant"): "timestamptz",
    ("postgresql", "wallclock"): "timestamp",
    ("postgresql", "date"): "date",
    ("mysql", "instant"): "TIMESTAMP(6) NULL",
    ("mysql", "wallclock"): "DATETIME(6) NULL",
    ("mysql", "date"): "DATE NULL",
}


def create(server: DatabaseServer, name: str, collected: str, birth: str) -> None:
    """`(id, ts, birth, consent, payload)` with the given kinds of collection and birth."""
    ts, born = TYPES[(server.engine, collected)], TYPES[(server.engine, birth)]
    if server.engine == "postgresql":
        server.execute(
            f"CREATE TABLE {name} (id bigint PRIMARY KEY, ts {ts}, birth {born}, "
            "consent timestamptz, payload text)",
            f"CREATE INDEX ON {name} (ts)",
            f"ALTER TABLE {name} OWNER TO purger",
        )
    else:
        server.execute(
            f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, ts {ts}, birth {born}, "
            "consent DATETIME(6) NULL, payload VARCHAR(200), INDEX (ts)) ENGINE=InnoDB"
        )


def insert(server: DatabaseServer, name: str, rows: list[tuple[int, Any, Any, Any]]) -> None:
    """Rows `(id, ts, birth, consent)`: aware values as UTC instants, naive ones as written."""

    def value(v: Any) -> Any:
        if isinstance(v, datetime) and v.tzinfo is not None and server.engine == "mysql":
            return v.astimezone(UTC).replace(tzinfo=None)  # the session below is UTC
        return v

    conn = server.admin(autocommit=False)
    try:
        with conn.cursor() as cur:
            if server.engine == "mysql":
                cur.execute("SET time_zone = '+00:00'")
            cur.executemany(
                f"INSERT INTO {name} (id, ts, birth, consent, payload) "
                "VALUES (%s, %s, %s, %s, 'p')",
                [(i, value(t), value(b), value(c)) for i, t, b, c in rows],
            )
        conn.commit()
    finally:
        conn.close()


def ids(server: DatabaseServer, name: str) -> set[int]:
    return {int(i) for (i,) in server.query(f"SELECT id FROM {name}")}


def zoned(doc: dict[str, Any], zone: str | None) -> dict[str, Any]:
    if zone is not None:
        doc["spec"]["records"][0]["timeZone"] = zone
    return doc


CHILDREN = {"birthDateColumn": "birth", "consentColumn": "consent"}


def seeded(
    servers: DatabaseServers, engine: str, name: str, kinds: tuple[str, str],
    rows: list[tuple[int, Any, Any, Any]],
) -> tuple[DatabaseServer, str]:
    """A fresh table on `engine`'s live server, its columns of `kinds` (collected, birth),
    holding `rows`."""
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    table = unique(name)
    create(live, table, *kinds)
    insert(live, table, rows)
    return live, table


def purge(
    live: DatabaseServer, table: str, zone: str | None, now: datetime, **spec: Any
) -> PurgeResult:
    """A purge of `table` with the children rule, `records[].timeZone` `zone`, at `now` (the
    server's clock and the job's); it must succeed."""
    result = run_purge(
        zoned(children_doc(live, table, CHILDREN, **spec), zone), live,
        live_session_hook=pinned(now), job_clock=lambda: now, policy_doc=kids_policy(),
    )  # fmt: skip
    assert result.result == "Succeeded", result.message
    return result


SEOUL_NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
# Born 1 May 2011 in Seoul (UTC+9): 14 from 2025-05-01 00:00 KST = 2025-04-30 15:00 UTC.
SEOUL_BIRTHS = {
    "date": date(2011, 5, 1),
    "wallclock": datetime(2011, 5, 1, 18, 0),  # 18:00 KST: the day is what counts
    "instant": datetime(2011, 5, 1, 3, 0, tzinfo=UTC),  # 12:00 KST
}


@pytest.mark.parametrize("birth_kind", ["date", "wallclock", "instant"])
@pytest.mark.parametrize("engine", ENGINES)
def test_a_seoul_subject_is_14_from_the_start_of_their_birthday_in_seoul(
    servers: DatabaseServers, engine: str, birth_kind: str
) -> None:
    """The collection column is an instant; the birth date a day (or moment) in Seoul."""
    born = SEOUL_BIRTHS[birth_kind]
    consent = datetime(2025, 4, 30, 11, 0, tzinfo=UTC)
    name = f"kids_seoul_{birth_kind[:4]}"
    live, table = seeded(servers, engine, name, ("instant", birth_kind), [
        (1, datetime(2025, 4, 30, 20, 0, tzinfo=UTC), born, None),  # 05:00 KST on the day: 14
        (2, datetime(2025, 4, 30, 14, 59, 59, 999999, tzinfo=UTC), born, None),  # 23:59:59 KST
        (3, datetime(2025, 4, 30, 15, 0, tzinfo=UTC), born, None),  # 00:00 KST: 14
        (4, datetime(2025, 4, 30, 10, 0, tzinfo=UTC), born, None),  # 19:00 KST the day before
        (5, datetime(2025, 5, 1, 0, 0, tzinfo=UTC), born, None),  # 09:00 KST: 14
        (6, datetime(2025, 4, 30, 10, 0, tzinfo=UTC), born, consent),  # a guardian consented
    ])  # fmt: skip

    # The preview (the operator's impact preview runs the same dry run) counts what goes.
    dry = purge(live, table, "Asia/Seoul", SEOUL_NOW, dryRun=True)
    assert (dry.rows_deleted, dry.tables[0].rows_no_consent) == (2, 2)
    assert ids(live, table) == {1, 2, 3, 4, 5, 6}

    result = purge(live, table, "Asia/Seoul", SEOUL_NOW)
    assert ids(live, table) == {1, 3, 5, 6}, "a row of a 14-year-old deleted as a child's"
    assert result.tables[0].rows_no_consent == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_without_a_time_zone_a_birth_timestamp_means_its_day_in_utc(
    servers: DatabaseServers, engine: str
) -> None:
    """A birth timestamp stands for its day: 14 from that day's midnight, not its hour."""
    born = datetime(2011, 5, 1, 18, 0)
    live, table = seeded(servers, engine, "kids_utc_birth_ts", ("instant", "wallclock"), [
        (1, datetime(2025, 5, 1, 10, 0, tzinfo=UTC), born, None),  # on the birthday: 14
        (2, datetime(2025, 4, 30, 23, 59, 59, tzinfo=UTC), born, None),  # the day before
        (3, datetime(2025, 5, 1, 0, 0, tzinfo=UTC), born, None),
    ])  # fmt: skip

    purge(live, table, None, SEOUL_NOW)
    assert ids(live, table) == {1, 3}


ST_JOHNS_NOW = datetime(2010, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_wall_clock_in_an_hour_repeated_across_midnight_is_not_a_childs(
    servers: DatabaseServers, engine: str
) -> None:
    """St. John's, 7 Nov 2010: at 00:01 NDT (02:31 UTC) clocks went back to 23:01 NST on the
    6th, so 23:01-00:00:59 happened twice. Born 7 Nov 1996, the subject was 14 from the first
    00:00 of the 7th (02:30 UTC). A wall clock 23:30 on the 6th is 02:00 or 03:00 UTC: maybe
    after the birthday began, so the row is not a child's."""
    born = date(1996, 11, 7)
    live, table = seeded(servers, engine, "kids_stjohns", ("wallclock", "date"), [
        (1, datetime(2010, 11, 6, 23, 30), born, None),  # 02:00 or 03:00 UTC: in doubt
        (2, datetime(2010, 11, 6, 23, 0, 59), born, None),  # 01:30:59 UTC only: a child
        (3, datetime(2010, 11, 6, 23, 1), born, None),  # 01:31 or 02:31 UTC: in doubt
        (4, datetime(2010, 11, 7, 0, 0, 30), born, None),  # on the birthday
        (5, datetime(2010, 11, 6, 12, 0), born, None),  # a child
    ])  # fmt: skip

    purge(live, table, "America/St_Johns", ST_JOHNS_NOW)
    assert ids(live, table) == {1, 3, 4}


@pytest.mark.parametrize("engine", ENGINES)
def test_wall_clocks_and_dates_of_one_zone_compare_as_they_are(
    servers: DatabaseServers, engine: str
) -> None:
    """Both naive in the zone: a row of the birthday (by the zone's clock) is an adult's."""
    born = date(2011, 5, 1)
    live, table = seeded(servers, engine, "kids_seoul_wall", ("wallclock", "date"), [
        (1, datetime(2025, 5, 1, 0, 0), born, None),
        (2, datetime(2025, 4, 30, 23, 59, 59, 999999), born, None),
        (3, datetime(2025, 5, 1, 5, 0), born, None),
    ])  # fmt: skip
    purge(live, table, "Asia/Seoul", SEOUL_NOW)
    assert ids(live, table) == {1, 3}


@pytest.mark.parametrize("engine", ENGINES)
def test_an_instant_of_birth_falls_on_its_day_in_the_zone(
    servers: DatabaseServers, engine: str
) -> None:
    """Born at 2011-05-01 15:10 UTC, 00:10 KST on 2 May: 14 from 2025-05-02 00:00 KST."""
    born = datetime(2011, 5, 1, 15, 10, tzinfo=UTC)
    live, table = seeded(servers, engine, "kids_seoul_born_at", ("instant", "instant"), [
        (1, datetime(2025, 5, 1, 10, 0, tzinfo=UTC), born, None),  # 19:00 KST on 1 May: 13
        (2, datetime(2025, 5, 1, 15, 0, tzinfo=UTC), born, None),  # 00:00 KST on 2 May: 14
        (3, datetime(2025, 5, 1, 14, 59, 59, tzinfo=UTC), born, None),  # 23:59:59 KST: 13
    ])  # fmt: skip
    purge(live, table, "Asia/Seoul", SEOUL_NOW)
    assert ids(live, table) == {2}
