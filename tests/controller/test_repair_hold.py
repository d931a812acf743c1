"""How soon a child changed back after each repair is repaired again (another controller
holding another value of a field the operator owns): not at every watch event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dataward.controller.reconcile import Repair, repair_held_until, repair_streak

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RENDER = b"render-a"


def test_the_first_repairs_are_made_at_once() -> None:
    assert repair_held_until(None, RENDER) is None
    assert repair_held_until(Repair(T0, 1, RENDER), RENDER) is None


def test_repairs_in_a_row_wait_longer_and_longer_up_to_five_minutes() -> None:
    waits = [
        repair_held_until(Repair(T0, streak, RENDER), RENDER) for streak in range(2, 12)
    ]
    assert [w - T0 for w in waits if w is not None] == [
        timedelta(seconds=s) for s in (5, 10, 20, 40, 80, 160, 300, 300, 300, 300)
    ]
    # A fight of days does not overflow the doubling.
    assert repair_held_until(Repair(T0, 10_000, RENDER), RENDER) == T0 + timedelta(minutes=5)


def test_a_repair_soon_after_the_last_continues_the_count() -> None:
    last = Repair(T0, 3, RENDER)
    assert repair_streak(last, RENDER, T0 + timedelta(minutes=5)) == 4


def test_a_quiet_child_or_a_new_render_starts_a_new_count() -> None:
    last = Repair(T0, 7, RENDER)
    assert repair_streak(None, RENDER, T0) == 1
    assert repair_streak(last, RENDER, T0 + timedelta(minutes=10)) == 1
    # The store's spec changed: applying its new render is not a fight.
    assert repair_streak(last, b"render-b", T0 + timedelta(seconds=1)) == 1
    assert repair_held_until(last, b"render-b") is None
