"""PurgeSucceeded of a store with records[].timeZone: the cutoff it states.

`status.lastPurge.cutoff` is the run's cutoff on UTC's calendar (the bound of instant columns
and columns without timeZone); a table whose wall-clock or date trigger has a timeZone is cut
at its own bound on the zone's calendar (`sql.bind_cutoff`), which the result record's table
entry and the run's message name. The condition must not say the rows went "up to" the UTC
cutoff alone: for a Seoul wall clock with 1y at 2026-01-10T07:00:00Z the purge compared with
2025-01-10 16:00 Seoul (2025-01-10T07:00:00Z), and a 1mo retention at 2026-03-31T20:00:00Z
compares with 2026-03-01 05:00 Seoul (2026-02-28T20:00:00Z), not 2026-02-28T23:59:59.999999Z.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dataward.model.durations import cutoff_for, parse_duration
from dataward.purge.sql import bind_cutoff
from tests.controller.fake_kube import FakeKube
from tests.controller.test_purge_forgery import (
    _as_pod,
    _job,
    _message,
    _pod,
    _reconcile,
    _record,
    _template,
)
from tests.controller.test_reconcile import conditions, sample_cluster, status
from tests.model import samples

CRONJOB = "dataward-support-inquiries-purge"
RUN_AT = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)  # 2026-04-01 05:00 in Seoul
MONTH = parse_duration("1mo")


def _zoned_store() -> dict[str, Any]:
    store: dict[str, Any] = copy.deepcopy(dict(samples.STORE))
    for records in store["spec"]["records"]:
        records["timeZone"] = "Asia/Seoul"
    return store


def test_a_zoned_stores_condition_does_not_give_the_utc_cutoff_as_its_own() -> None:
    """The oracle: the Seoul bound (`bind_cutoff`) is not the run's UTC cutoff, and the
    condition names the run's cutoff as UTC's calendar and where the zoned bounds are. Red
    on 8919753: it said `up to cutoff <UTC>.` with no word of the zone."""
    utc_cutoff = cutoff_for(RUN_AT, MONTH)
    seoul = bind_cutoff(RUN_AT, MONTH, "wallclock", 6, ZoneInfo("Asia/Seoul"))
    assert utc_cutoff == datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=UTC)
    assert seoul == datetime(2026, 3, 1, 5, 0)  # 2026-02-28T20:00:00Z: a different bound

    kube = sample_cluster(FakeKube(), store=_zoned_store())
    _reconcile(kube)
    uid = kube.objects[("CronJob", "crm", CRONJOB)]["metadata"]["uid"]
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Complete", minute=0)
    record = _record(
        "Succeeded",
        7,
        cutoff=utc_cutoff.isoformat().replace("+00:00", "Z"),
        tables=[
            {
                "table": "support_inquiries",
                "rowsDeleted": 7,
                "timeZone": "Asia/Seoul",
                "zoneCutoff": seoul.isoformat(),
            }
        ],
        message=f"deleted 7 expired rows at cutoff {utc_cutoff.isoformat()} (UTC's calendar; "
        "tables with records[].timeZone at their own cutoff, the zone's wall clock or date "
        f"on its calendar: support_inquiries {seoul.isoformat()} Asia/Seoul)",
    )
    _pod(kube, "real-x1", real, _as_pod(template), {"purge": record}, 0)
    _reconcile(kube, minutes=1)

    assert conditions(kube)["PurgeSucceeded"] == ("True", "Succeeded")
    assert status(kube)["lastPurge"]["rowsDeleted"] == 7
    said = _message(kube, "PurgeSucceeded")
    assert f"up to cutoff {record['cutoff']}." not in said, said
    assert "UTC's calendar" in said and "records[].timeZone" in said, said
    assert "status.lastPurge.message" in said, said


def test_a_store_without_a_time_zone_keeps_its_plain_cutoff() -> None:
    kube = sample_cluster(FakeKube())
    _reconcile(kube)
    uid = kube.objects[("CronJob", "crm", CRONJOB)]["metadata"]["uid"]
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Complete", minute=0)
    _pod(kube, "real-x1", real, _as_pod(template), {"purge": _record("Succeeded", 7)}, 0)
    _reconcile(kube, minutes=1)

    said = _message(kube, "PurgeSucceeded")
    assert said.endswith("up to cutoff 2025-01-10T07:00:00Z."), said
    assert "timeZone" not in said
