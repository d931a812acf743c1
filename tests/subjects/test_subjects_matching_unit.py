"""The matching rule without a database: which identifiers can be a number, and the shape of
the one predicate access and erasure share (the behaviour is in test_subjects_matching_db)."""

from __future__ import annotations

import pytest

from dataward.model.store import RecordSet, SubjectColumn
from dataward.purge.sql import MYSQL, POSTGRES, Column, Dialect
from dataward.subjects.engine import charset_holds, match_predicate, plain_integer
from dataward.subjects.identifiers import parse_identifiers
from dataward.subjects.plan import TablePlan


@pytest.mark.parametrize(
    ("value", "number"),
    [("42", 42), ("0", 0), ("-42", -42), ("18446744073709551615", 2**64 - 1)],
)
def test_a_plain_decimal_is_a_number(value: str, number: int) -> None:
    assert plain_integer(value, "mysql") == number


# Each of these is 42 (or 0) to int(), to MariaDB's string-to-number conversion or both.
NOT_NUMBERS = [
    *("042", "+42", " 42", "42 ", "42\n", "4_2", "\u0664\u0662", "\uff14\uff12", "42.0"),
    *("4.2e1", "0x2A", "42abc", "-0", "00", "", "-", "18446744073709551616"),
]


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_anything_else_is_no_number(value: str) -> None:
    assert plain_integer(value, "mysql") is None
    assert plain_integer(value, "postgresql") is None


def test_postgresql_numbers_stop_at_bigint() -> None:
    assert plain_integer(str(2**63 - 1), "postgresql") == 2**63 - 1
    assert plain_integer(str(2**63), "postgresql") is None
    assert plain_integer(str(-(2**63)), "postgresql") == -(2**63)


def _predicate(
    dialect: Dialect, data_type: str, value: str, udt: tuple[str, str] | None = None
) -> tuple[str, list[object]]:
    records = RecordSet(
        table="people",
        timestamp_column="ts",
        key_columns=("id",),
        subject_columns=(SubjectColumn("email", "col"),),
    )
    plan = TablePlan(records, records.subject_columns)
    return match_predicate(
        dialect,
        {"col": Column("col", data_type, None, *(udt or (None, None)))},
        plan,
        parse_identifiers({"email": value}),
    )


@pytest.mark.parametrize("dialect", [POSTGRES, MYSQL])
def test_a_crafted_number_matches_nothing_without_reaching_the_database(dialect: Dialect) -> None:
    assert _predicate(dialect, "bigint", "42abc") == ("(FALSE)", [])
    sql, params = _predicate(dialect, "bigint", "42")
    assert params == [42] and "%s" in sql


@pytest.mark.parametrize(
    ("dialect", "data_type", "exact"),
    [
        (POSTGRES, "character varying", 'COLLATE "C"'),
        (POSTGRES, "text", 'COLLATE "C"'),
        (POSTGRES, "USER-DEFINED", 'COLLATE "C"'),  # citext
        (MYSQL, "varchar", "USING utf8mb4) AS BINARY"),
        (MYSQL, "text", "USING utf8mb4) AS BINARY"),
        (MYSQL, "varbinary", "AS BINARY"),
    ],
)
def test_every_text_comparison_carries_the_exact_test(
    dialect: Dialect, data_type: str, exact: str
) -> None:
    sql, params = _predicate(dialect, data_type, "kim@example.com")
    assert exact in sql
    assert set(params) == {"kim@example.com"} and sql.count("%s") == len(params)


def test_citext_is_compared_as_citext_for_its_index_then_exactly() -> None:
    sql, params = _predicate(POSTGRES, "USER-DEFINED", "Kim", ('my"ext', "citext"))
    assert sql == ('(("col" = %s::"my""ext"."citext" AND "col"::text COLLATE "C" = %s::text))')
    assert params == ["Kim", "Kim"]
    enum_sql, _ = _predicate(POSTGRES, "USER-DEFINED", "Kim", ("public", "mood"))
    assert enum_sql == '("col"::text COLLATE "C" = %s::text)'


@pytest.mark.parametrize(
    ("charset", "value", "holds"),
    [
        ("latin1", "kím@example.com", True),
        ("latin1", "\u20ac\u0081", True),  # Windows-1252's euro sign, an undefined byte
        ("latin1", "김민지@example.com", False),
        ("utf8mb3", "김민지@example.com", True),
        ("utf8mb3", "kim\U0001f642@example.com", False),  # an emoji needs 4 bytes
        ("utf8mb4", "kim\U0001f642@example.com", True),
        ("utf16", "kim\U0001f642@example.com", True),
        ("ascii", "kím", False),
        (None, "김", True),  # not a character column, or a set left to the server
        ("armscii8", "김", True),
    ],
)
def test_a_narrow_character_set_cannot_hold_every_identifier(
    charset: str | None, value: str, holds: bool
) -> None:
    assert charset_holds(charset, value) is holds


def test_a_column_that_cannot_hold_the_identifier_matches_nothing() -> None:
    records = RecordSet(
        table="people",
        timestamp_column="ts",
        key_columns=("id",),
        subject_columns=(SubjectColumn("email", "a"), SubjectColumn("email", "b")),
    )
    columns = {
        "a": Column("a", "varchar", None, charset="latin1"),
        "b": Column("b", "varchar", None, charset="utf8mb4"),
    }
    sql, params = match_predicate(
        MYSQL, columns, TablePlan(records, records.subject_columns),
        parse_identifiers({"email": "김민지@example.com"}),
    )  # fmt: skip
    assert sql.startswith("(FALSE OR (`b` = %s AND ") and len(params) == 2
