"""The revision in force is decided at the clocks the cutoff is computed at, never at another.

The purge plans at `planning_instant` (the earlier of a database server's clock and the job's;
within the allowed skew either may be the right one). A revision that takes effect between
those clocks is in force by one and not by the other: planning under the job's revision at
the database's instant deleted rows by a shortened retention a few minutes before it took
effect (reviewer's scenario, 1y -> 6mo effective 00:00, job 00:01, database 23:57: a row of
2024-12-30T23:00 went at 23:57 on June 30 though it expires 2025-12-30 under the revision in
force then). Planning under the revision at the earlier clock instead is not safe either when
the revision widens (6mo -> 1y): by the later clock the longer one is in force. So a run whose
clocks disagree on the revision deletes nothing (the next run decides); otherwise it plans
under the one revision every clock agrees on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataward.purge.engine import EngineOptions, _plan
from dataward.purge.plan import PurgePlan
from dataward.purge.source import ApiSource
from tests.expiry import is_safely_expired
from tests.model.samples import STORE
from tests.purge.support import EFFECTIVE, promoted, revised


class _Api:
    def __init__(self, policy: dict[str, Any]) -> None:
        self.policy = policy

    def get_cluster_custom_object(self, *args: Any, **kw: Any) -> dict[str, Any]:
        return copy.deepcopy(self.policy)


class _Clock:
    """A session that only tells its server's time (all `_plan` asks of one)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def server_now(self) -> datetime:
        return self.now


def source_at(policy: dict[str, Any], job_now: datetime) -> ApiSource:
    source = ApiSource("crm", "support-inquiries", clock=lambda: job_now)
    source._api = _Api(policy)
    store = copy.deepcopy(STORE)
    del store["spec"]["retention"]  # the category's retention decides
    source._watched = store  # as if the store's watch were live: no thread
    source._seen_at = float("inf")
    return source


def planned_at(policy: dict[str, Any], job_now: datetime, db_now: datetime) -> Any:
    """`_plan` of the sample store under `policy` (as the API serves it), the job's clock at
    `job_now` and the live server's at `db_now`: the plan, or the gate that stops the run."""
    source = source_at(policy, job_now)
    store, loaded = source.load()
    assert loaded is not None
    return _plan(
        store, loaded, _Clock(db_now), None, EngineOptions(),  # type: ignore[arg-type]
        lambda: job_now, policy_at=source.policy_at,
    )  # fmt: skip


@pytest.mark.parametrize("period", ["6mo", "2y"])  # shortening, widening
@pytest.mark.parametrize(
    ("job_now", "db_now"),
    [(EFFECTIVE + timedelta(minutes=1), EFFECTIVE - timedelta(minutes=3)),  # job past it
     (EFFECTIVE - timedelta(minutes=3), EFFECTIVE + timedelta(minutes=1))],  # database past it
)  # fmt: skip
@pytest.mark.parametrize("policy", [revised, promoted])  # pending; recorded in force since
def test_a_revision_taking_effect_between_the_clocks_deletes_nothing(
    policy: Callable[[str], dict[str, Any]], period: str, job_now: datetime, db_now: datetime
) -> None:
    """Red on the old code: the policy was decided at the job's clock alone and the plan
    made at the database's (earlier) instant, so a row was deleted before its expiry under
    the revision in force then. And red first for `promoted` (found by the key ring
    review): once the operator recorded the revision in force (since 00:00), status no
    longer holds the one in force before it, so deciding at the clock before 00:00 gave the
    new revision too, every clock agreed, and the run planned under it at the database's
    earlier instant. A clock before the recorded revision's start now knows no revision."""
    planned = planned_at(policy(period), job_now, db_now)
    assert not isinstance(planned, PurgePlan), "planned across a revision's start"
    assert (planned.gate.result, planned.gate.reason) == ("Succeeded", "RetentionChanged")
    assert "nothing was deleted" in planned.gate.message


def test_the_reviewers_row_is_not_deleted_before_its_expiry() -> None:
    """1y -> 6mo at 00:00 July 1; job 00:01, database 23:57 June 30; the row of
    2024-12-30T23:00 expires 2025-12-30 under the 1y in force at 23:57: it must not go."""
    job_now, db_now = EFFECTIVE + timedelta(minutes=1), EFFECTIVE - timedelta(minutes=3)
    planned = planned_at(revised("6mo"), job_now, db_now)
    row = datetime(2024, 12, 30, 23, 0, tzinfo=UTC)
    assert not (isinstance(planned, PurgePlan) and row <= planned.cutoff)


@pytest.mark.parametrize("period", ["6mo", "2y"])
@pytest.mark.parametrize(
    ("job_now", "db_now", "in_force"),
    [(EFFECTIVE - timedelta(minutes=9), EFFECTIVE - timedelta(minutes=6), "1y"),
     (EFFECTIVE + timedelta(minutes=6), EFFECTIVE + timedelta(minutes=2), None)],
)  # fmt: skip
def test_clocks_that_agree_on_the_revision_plan_under_it(
    period: str, job_now: datetime, db_now: datetime, in_force: str | None
) -> None:
    planned = planned_at(revised(period), job_now, db_now)
    assert isinstance(planned, PurgePlan)
    assert str(planned.retention) == (in_force or period)
    for clock in (job_now, db_now):
        assert is_safely_expired(planned.cutoff, planned.retention, clock)


@pytest.mark.parametrize("period", ["6mo", "2y"])
def test_between_batches_a_revision_due_by_a_database_clock_ahead_stops_the_run(
    period: str,
) -> None:
    """The re-check between batches decided the revision at the job's clock alone: with a
    database clock ahead (within the skew) the revision was in force by it minutes before the
    run stopped. It now stops once the revision is in force at any instant the skew allows."""
    from dataward.commands.purge import _rechecker

    job_now = EFFECTIVE - timedelta(minutes=3)
    source = source_at(revised(period), job_now)
    store, policy = source.load()
    assert policy is not None and str(policy.category(store.category).retention.period) == "1y"  # type: ignore[union-attr]
    check = _rechecker(
        source, store, policy, 0.0, clock=lambda: job_now, skew=timedelta(minutes=5)
    )
    stop = check()
    assert stop is not None and stop.reason == "RetentionChanged"
    quiet = _rechecker(
        source, store, policy, 0.0, clock=lambda: job_now - timedelta(minutes=3),
        skew=timedelta(minutes=5),
    )  # fmt: skip
    assert quiet() is None  # the start is further off than the skew: the run goes on


def test_the_reviewers_row_is_kept_once_status_records_the_revision_in_force() -> None:
    job_now, db_now = EFFECTIVE + timedelta(minutes=1), EFFECTIVE - timedelta(minutes=3)
    planned = planned_at(promoted("6mo"), job_now, db_now)
    row = datetime(2024, 12, 30, 23, 0, tzinfo=UTC)
    assert not (isinstance(planned, PurgePlan) and row <= planned.cutoff)


def test_clocks_past_the_recorded_revisions_start_plan_under_it() -> None:
    job_now, db_now = EFFECTIVE + timedelta(minutes=6), EFFECTIVE + timedelta(minutes=2)
    planned = planned_at(promoted("6mo"), job_now, db_now)
    assert isinstance(planned, PurgePlan) and str(planned.retention) == "6mo"
    assert is_safely_expired(planned.cutoff, planned.retention, db_now)


def test_between_batches_a_clock_before_the_recorded_revisions_start_stops_the_run() -> None:
    """The re-check: a run that loaded the revision in force at 00:02 by its clock, while a
    database clock may be 5 min behind (the skew), goes on (the re-check reads the job's
    clock and later ones); a job clock behind the recorded start stops it."""
    from dataward.commands.purge import _rechecker

    for job_now, stops in ((EFFECTIVE + timedelta(minutes=2), False),
                           (EFFECTIVE - timedelta(minutes=1), True)):  # fmt: skip
        source = source_at(promoted("6mo"), job_now)
        store, policy = source.load()
        assert policy is not None
        check = _rechecker(
            source, store, policy, 0.0, clock=lambda at=job_now: at, skew=timedelta(minutes=5)
        )  # fmt: skip
        stop = check()
        assert (stop is not None) == stops
