"""How soon a child changed back after each repair is repaired again (another controller
holding another value of a field the operator owns): not at every watch event."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from dataward.controller.kube import KubeError
from dataward.controller.reconcile import REPAIR_WAIT, Repair, repair_held_until, repair_streak
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import KEY, T0, conditions, reconciler, sample_cluster

START = datetime(2026, 1, 1, tzinfo=UTC)
RENDER = b"render-a"


def test_the_first_repairs_are_made_at_once() -> None:
    assert repair_held_until(None, RENDER) is None
    assert repair_held_until(Repair(START, 1, RENDER), RENDER) is None


def test_repairs_in_a_row_wait_longer_and_longer_up_to_five_minutes() -> None:
    waits = [
        repair_held_until(Repair(START, streak, RENDER), RENDER) for streak in range(2, 12)
    ]
    assert [w - START for w in waits if w is not None] == [
        timedelta(seconds=s) for s in (5, 10, 20, 40, 80, 160, 300, 300, 300, 300)
    ]
    # A fight of days does not overflow the doubling.
    assert repair_held_until(Repair(START, 10_000, RENDER), RENDER) == START + timedelta(minutes=5)


def test_a_repair_soon_after_the_last_continues_the_count() -> None:
    last = Repair(START, 3, RENDER)
    assert repair_streak(last, RENDER, START + timedelta(minutes=5)) == 4


def test_a_quiet_child_or_a_new_render_starts_a_new_count() -> None:
    last = Repair(START, 7, RENDER)
    assert repair_streak(None, RENDER, START) == 1
    assert repair_streak(last, RENDER, START + timedelta(minutes=10)) == 1
    # The store's spec changed: applying its new render is not a fight.
    assert repair_streak(last, b"render-b", START + timedelta(seconds=1)) == 1
    assert repair_held_until(last, b"render-b") is None


PURGE = ("CronJob", "crm", "dataward-support-inquiries-purge")


def _hold_another_value(kube: FakeKube) -> None:
    """Another controller puts its own successfulJobsHistoryLimit back on the purge CronJob."""
    cronjob = copy.deepcopy(kube.objects[PURGE])
    cronjob["spec"]["successfulJobsHistoryLimit"] = 7
    kube._store(cronjob)


def _applies(kube: FakeKube) -> int:
    return sum(1 for c in kube.calls if c[:2] == ("apply", "CronJob"))


def test_a_child_held_different_is_repaired_twice_then_after_a_wait_and_said_so() -> None:
    kube = sample_cluster(FakeKube())
    operator = reconciler(kube)
    operator.reconcile(KEY, now=T0)
    assert conditions(kube)["PurgeScheduled"][0] == "True"
    kube.calls.clear()
    at = T0
    for _ in range(2):  # the first two repairs in a row: at once
        _hold_another_value(kube)
        at += timedelta(seconds=1)
        operator.reconcile(KEY, now=at)
    assert _applies(kube) == 2
    _hold_another_value(kube)
    due = operator.reconcile(KEY, now=at + timedelta(seconds=1))
    assert _applies(kube) == 2, "held: not a write per change"
    assert conditions(kube)["PurgeScheduled"] == ("False", "ChildHeldDifferent")
    assert conditions(kube)["Ready"][0] == "False"
    assert due is not None and due <= at + REPAIR_WAIT, "looked at again when the wait ends"
    # The wait over: repaired, and still said so until a pass finds the repair held.
    operator.reconcile(KEY, now=at + REPAIR_WAIT)
    assert _applies(kube) == 3
    assert kube.objects[PURGE]["spec"]["successfulJobsHistoryLimit"] != 7
    assert conditions(kube)["PurgeScheduled"] == ("False", "ChildHeldDifferent")
    operator.reconcile(KEY, now=at + 2 * REPAIR_WAIT)
    assert conditions(kube)["PurgeScheduled"][0] == "True"
    assert _applies(kube) == 3


def test_a_repair_refused_by_a_race_409_is_counted_once() -> None:
    kube = sample_cluster(FakeKube())
    operator = reconciler(kube)
    operator.reconcile(KEY, now=T0)
    real = kube.apply
    raced = []

    def race_once(obj: Mapping[str, Any], version: str | None = None) -> dict[str, Any]:
        if obj["kind"] == "CronJob" and not raced:
            raced.append(version)
            raise KubeError(409, "Conflict", "changed since the read")
        return real(obj, version)

    kube.apply = race_once  # type: ignore[method-assign]
    _hold_another_value(kube)
    operator.reconcile(KEY, now=T0 + timedelta(seconds=1))
    _hold_another_value(kube)
    operator.reconcile(KEY, now=T0 + timedelta(seconds=2))  # the second repair: at once
    assert raced and kube.objects[PURGE]["spec"]["successfulJobsHistoryLimit"] != 7
    assert conditions(kube)["PurgeScheduled"][0] == "True"


def test_one_edit_long_after_a_fight_is_repaired_and_not_reported_as_held() -> None:
    kube = sample_cluster(FakeKube())
    operator = reconciler(kube)
    operator.reconcile(KEY, now=T0)
    at = T0
    for _ in range(4):  # a fight: two repairs at once, then waits
        _hold_another_value(kube)
        at += timedelta(minutes=1)
        operator.reconcile(KEY, now=at)
    operator.reconcile(KEY, now=at + timedelta(minutes=1))
    assert conditions(kube)["PurgeScheduled"][0] == "True"
    # An hour of quiet, then one careless edit: repaired at once, and nothing held to say.
    _hold_another_value(kube)
    operator.reconcile(KEY, now=at + timedelta(hours=1))
    assert kube.objects[PURGE]["spec"]["successfulJobsHistoryLimit"] != 7
    assert conditions(kube)["PurgeScheduled"][0] == "True"
