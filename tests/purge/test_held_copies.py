"""`held_copies`: a row the archive holds under a live row's key counts as that row's copy
only when every copied column is equal; any other row under the key is a conflict."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from ipaddress import IPv4Address
from uuid import UUID

from dataward.purge.engine import held_copies, same_value, unkept_columns
from dataward.purge.sql import Column, narrowed_columns

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


def test_one_value_in_the_two_drivers_forms_is_the_same() -> None:
    # What PostgreSQL's driver and MariaDB's hand back for one copied value (seen on the
    # test servers): uuid/text, inet/text, time/TIME, numeric/DOUBLE, DATE/timestamp.
    uid = "123e4567-e89b-12d3-a456-426655440000"
    for live, held in [
        (UUID(uid), uid),
        (IPv4Address("1.2.3.4"), "1.2.3.4"),
        (time(1, 2, 3, 500000), timedelta(hours=1, minutes=2, seconds=3.5)),
        (Decimal("1.10"), 1.1),
        (0.1, Decimal("0.1000000000")),
        (date(2020, 2, 29), datetime(2020, 2, 29)),
        (True, 1),
    ]:
        assert same_value(live, held) and same_value(held, live), (live, held)


def test_other_values_stay_other_across_the_drivers_forms() -> None:
    uid = "123e4567-e89b-12d3-a456-426655440000"
    for live, held in [
        (UUID(uid), uid.upper()),  # another text: the copy would store lower case
        (IPv4Address("1.2.3.4"), "1.2.3.5"),
        (time(1, 2, 3), timedelta(hours=1, minutes=2, seconds=4)),
        (Decimal("1.10"), 1.2),
        (Decimal("NaN"), float("nan")),
        (0.30000000000000004, Decimal("0.3")),
        (date(2020, 2, 29), datetime(2020, 2, 29, 0, 0, 1)),
        ("ab  ", "ab"),  # trailing spaces are text
        ("Ab", "ab"),
        ('{"a": 1}', '{"a":1}'),
        (1.0000001, 1.0),
    ]:
        assert not same_value(live, held) and not same_value(held, live), (live, held)


def test_a_decimal_the_live_double_only_rounds_to_is_another_value() -> None:
    # Copying the double 1e16 into a decimal stores 10000000000000000; an archived
    # 10000000000000001 (float() of it is 1e16 too) is another row's value.
    assert not same_value(1e16, Decimal("10000000000000001"))
    assert not same_value(0.1, Decimal("0.1000000000000000055511151231257827"))
    assert same_value(1e16, Decimal("10000000000000000")) and same_value(0.1, Decimal("0.10"))


def test_the_archive_columns_type_decides_what_its_copy_is() -> None:
    # By the archive column's catalogue type: what copying the live value stores there.
    uid = "123e4567-e89b-12d3-a456-426655440000"
    same = [
        ("ab   ", "ab", "character"),  # PostgreSQL char(5) pads, MariaDB's CHAR drops
        ("ab ", "ab", "char"),
        (uid.upper(), UUID(uid), "uuid"),
        ("{" + uid + "}", uid, "uuid"),
        ('{"b": 1, "a": [1, 2.50]}', '{"a": [1, 2.50], "b": 1}', "jsonb"),
        ('{"a": 1, "a": 2}', '{"a": 2}', "jsonb"),  # jsonb keeps the last duplicate key
        ('{"a": 1e2}', '{"a": 100}', "jsonb"),
        (float("nan"), float("nan"), "double precision"),
        (-0.0, 0.0, "double"),  # MariaDB's DOUBLE stores -0.0 as 0
        (Decimal("1.0"), Decimal("1.00"), "numeric"),  # one number: its scale is no value
    ]
    for live, held, kind in same:
        assert same_value(live, held, kind), (live, held, kind)
    other = [
        ("ab", "AB", "char"),
        (" ab", "ab", "character"),  # leading spaces are kept
        ("ab ", "ab", "varchar"),
        (uid, "123e4567-e89b-12d3-a456-426655440001", "uuid"),
        ('{"a": 1.0}', '{"a": 1.00000000000000001}', "jsonb"),  # one double, two numbers
        ('{"a": true}', '{"a": 1}', "jsonb"),
        ('{"a": "1"}', '{"a": 1}', "jsonb"),
        ('{"b": 1, "a": 2}', '{"a": 2, "b": 1}', "json"),  # json keeps its text
        ('{"b": 1, "a": 2}', '{"a": 2, "b": 1}', ""),
        (-0.0, 0.0, "double precision"),
        (0.0, -0.0, "real"),
        (timedelta(days=30), "1 mon", "interval"),  # postgres.IntervalText is a str
    ]
    for live, held, kind in other:
        assert not same_value(live, held, kind), (live, held, kind)


def test_a_padded_char_key_is_the_same_key() -> None:
    live = [("k1    ", TS, "one"), ("k2    ", TS, "two")]
    assert held_copies(live, [("k1", TS, "one")], [0], ["char", "", ""]) == ({("k1    ",)}, 0)
    assert held_copies(live, [("k1", TS, "one")], [0]) == (set(), 1)


def test_numbers_an_archive_decimal_would_round() -> None:
    archive = [Column("id", "bigint", None), Column("v", "decimal", None, digits=(10, 2))]
    fits = [(1, Decimal("12.34")), (2, Decimal("1.500"))]
    assert unkept_columns(fits, ["id", "v"], archive) == []
    assert unkept_columns([(1, Decimal("12.345"))], ["id", "v"], archive) == ["v"]
    assert unkept_columns([(1, 0.125)], ["id", "v"], archive) == ["v"]
    assert unkept_columns([(1, 0.5), (2, None)], ["id", "v"], archive) == []
    unconstrained = [Column("id", "bigint", None), Column("v", "numeric", None)]
    assert unkept_columns([(1, Decimal("12.345"))], ["id", "v"], unconstrained) == []


def test_live_columns_an_archive_decimal_may_round() -> None:
    archive = [Column("a", "numeric", None, digits=(10, 2))] * 6
    live = [
        Column("a", "integer", None),
        Column("b", "decimal", None, digits=(8, 2)),
        Column("c", "decimal", None, digits=(12, 4)),  # more decimals
        Column("d", "numeric", None),  # unconstrained
        Column("e", "double precision", None),
        Column("f", "decimal", None, digits=(12, 2)),  # wider: an overflow fails, no rounding
    ]
    assert narrowed_columns(live, archive) == ("c", "d", "e")
