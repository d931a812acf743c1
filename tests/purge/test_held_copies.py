"""`held_copies`: a row the archive holds under a live row's key counts as that row's copy
only when every copied column is equal; any other row under the key is a conflict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from dataward.purge.engine import held_copies

TS = datetime(2024, 5, 6, 7, 8, 9, 123456)
LIVE = [(1, TS, "ann"), (2, TS, "bob"), (3, TS, "cy")]
KEY = [0]


def test_a_crashed_runs_identical_copy_is_present_and_no_conflict() -> None:
    assert held_copies(LIVE, [(2, TS, "bob")], KEY) == ({(2,)}, 0)


def test_nothing_held_is_nothing_present() -> None:
    assert held_copies(LIVE, [], KEY) == (set(), 0)


def test_another_row_under_the_key_is_a_conflict_in_any_column() -> None:
    held = [(1, TS, "someone else"), (2, TS + timedelta(microseconds=1), "bob"), (3, TS, "CY")]
    present, differing = held_copies(LIVE, held, KEY)
    assert present == {(1,), (2,), (3,)} and differing == 3


def test_a_key_the_database_matched_but_python_does_not_is_a_conflict() -> None:
    # A case-insensitive collation: the archive answers 'ANN@X' for the live key 'ann@x'.
    live = [("ann@x", TS, "p")]
    assert held_copies(live, [("ANN@X", TS, "p")], [0]) == (set(), 1)


def test_driver_forms_of_one_value_compare_equal() -> None:
    # PostgreSQL gives bytea as memoryview and timestamptz aware; MySQL bytes and naive UTC.
    aware = TS.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=9)))
    live = [(1, aware, memoryview(b"\x00\xff"))]
    assert held_copies(live, [(1, TS, b"\x00\xff")], KEY) == ({(1,)}, 0)
    assert held_copies(live, [(1, TS, b"\x00\xfe")], KEY) == ({(1,)}, 1)


def test_two_live_rows_under_one_key_have_no_copy_of_their_own() -> None:
    # Equal in every column (a PostgreSQL table without a unique key): one archived row for
    # both is no copy of the second, whether the archive holds it yet or not.
    twins = [(7, TS, "same"), (7, TS, "same"), (8, TS, "other")]
    assert held_copies(twins, [(7, TS, "same")], KEY) == ({(7,)}, 1)
    assert held_copies(twins, [], KEY) == (set(), 1)
    assert held_copies([(1, TS, "a"), (2, TS, "b")], [], KEY) == (set(), 0)


def test_rows_without_a_key_are_left_to_the_count() -> None:
    # NULL is no key: such rows are never found in the archive, which the count of keys
    # there reports (ArchiveVerifyFailed); they are not each other's twins.
    nulls = [(None, TS, "a"), (None, TS, "b")]
    assert held_copies(nulls, [], KEY) == (set(), 0)
