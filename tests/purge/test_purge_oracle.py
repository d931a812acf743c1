"""Each purge run against real databases, compared with an independent oracle.

The oracle is the API's definition: a row goes when `trigger + period <= now` (calendar
months through add_months), with `now` the live server clock the run reports.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

import pytest

from dataward.purge.sql import Session
from tests.databases import DatabaseServers
from tests.expiry import is_expired, is_safely_expired
from tests.purge.support import period_of, run_purge, server_time, store_doc, unique
from tests.purge.tables import CASES, create_table, read_rows, seed, seed_instants

pytestmark = pytest.mark.db


def _server_now(servers: DatabaseServers, engine: str) -> datetime:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    sql = "SELECT now()" if engine == "postgresql" else "SELECT UTC_TIMESTAMP(6)"
    ((now,),) = live.query(sql)
    return now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)


@pytest.mark.parametrize("category", ["monthly", "support", "newsletter"])
@pytest.mark.parametrize(("engine", "kind"), CASES)
def test_deletes_exactly_what_the_oracle_says(
    servers: DatabaseServers, engine: str, kind: str, category: str
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    period = period_of(category)
    table = unique(f"oracle_{kind}")
    create_table(live, table, kind)
    seed(live, table, kind, seed_instants(_server_now(servers, engine), period))
    before = read_rows(live, table)

    result = run_purge(store_doc(live, table, category=category, batchSize=7), live)

    assert result.result == "Succeeded", result.message
    now = server_time(result)
    expected = {
        i for i, (ts, _) in before.items() if ts is not None and is_safely_expired(ts, period, now)
    }
    after = read_rows(live, table)
    assert set(before) - set(after) == expected
    assert all(after[i] == before[i] for i in after), "a surviving row changed"
    assert result.rows_deleted == len(expected)
    assert result.tables[0].null_triggers == 3
    assert result.expired_remaining == 0
    assert result.oldest_expired_age_seconds is None


FAKE_NOWS = [
    # (server clock, category): month ends and leap days, where `now - period` is wrong.
    (datetime(2025, 3, 31, 12, 0, tzinfo=UTC), "monthly"),
    # The case: a row of Jan 30 12:00 expires at Feb 28 12:00, not at 00:00.
    (datetime(2025, 2, 28, 0, 0, tzinfo=UTC), "monthly"),
    (datetime(2024, 4, 30, 6, 0, tzinfo=UTC), "monthly"),
    (datetime(2024, 3, 31, 0, 0, tzinfo=UTC), "monthly"),
    (datetime(2024, 2, 29, 12, 0, tzinfo=UTC), "support"),
    (datetime(2025, 2, 28, 23, 59, 59, 999999, tzinfo=UTC), "support"),
    (datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "monthly"),
]


@pytest.mark.parametrize(("fake_now", "category"), FAKE_NOWS)
@pytest.mark.parametrize(("engine", "kind"), CASES)
def test_month_end_cutoffs_on_every_column_type(
    servers: DatabaseServers, engine: str, kind: str, fake_now: datetime, category: str
) -> None:
    """The server clock is pinned to month ends (in-process) so the SQL meets the hard cases."""
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    period = period_of(category)
    table = unique(f"monthend_{kind}")
    create_table(live, table, kind)
    # The ragged rows: the last days of each month before now, every six hours, whichever
    # way seed_instants aims (it uses the code under test only to aim).
    ragged = [
        datetime(fake_now.year - back_year, month, day, hour, tzinfo=UTC)
        for back_year in (0, 1)
        for month in range(1, 13)
        for day in range(27, calendar.monthrange(fake_now.year - back_year, month)[1] + 1)
        for hour in (0, 6, 12, 18)
    ]
    seed(live, table, kind, [*seed_instants(fake_now, period), *ragged])
    before = read_rows(live, table)

    def pin_clock(session: Session) -> None:
        session.server_now = lambda: fake_now  # type: ignore[method-assign]

    result = run_purge(
        store_doc(live, table, category=category, batchSize=50),
        live,
        live_session_hook=pin_clock,
        job_clock=lambda: fake_now,
    )

    assert result.result == "Succeeded", result.message
    expected = {
        i
        for i, (ts, _) in before.items()
        if ts is not None and is_safely_expired(ts, period, fake_now)
    }
    deleted = set(before) - set(read_rows(live, table))
    early = {i for i in deleted if not is_expired(before[i][0], period, fake_now)}  # type: ignore[arg-type]
    assert not early, f"rows deleted before their own expiry: {sorted(early)}"
    assert deleted == expected
