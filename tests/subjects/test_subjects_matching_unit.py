"""The matching rule without a database: which identifiers can be a number, and the shape of
the one predicate access and erasure share (the behaviour is in test_subjects_matching_db)."""

from __future__ import annotations

import pytest

from dataward.model.store import RecordSet, SubjectColumn
from dataward.purge.sql import MYSQL, POSTGRES, Column, Dialect
from dataward.subjects.engine import (
    charset_holds,
    decimal_fits,
    kind_mismatches,
    match_kind,
    match_predicate,
    mismatch_refusal,
    plain_decimal,
    plain_integer,
    plain_uuid,
    refusal,
    refused_kinds,
    text_forms,
    type_reads,
    unreadable,
)
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
    dialect: Dialect,
    data_type: str,
    value: str,
    udt: tuple[str, str] | None = None,
    digits: tuple[int, int] | None = None,
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
        {"col": Column("col", data_type, None, *(udt or (None, None)), digits=digits)},
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
    # Hangul syllables decompose (NFD) into conjoining jamo: the same text, a second spelling.
    jamo = "\u1100\u1175\u11b7\u1106\u1175\u11ab\u110c\u1175@example.com"
    assert sql.startswith("(FALSE OR (`b` = %s AND ") and sql.count("`b` = %s") == 2
    assert params == ["김민지@example.com"] * 2 + [jamo] * 2


U = "9f2c0b5e-3d4a-4c1b-8e7f-0a1b2c3d4e5f"


@pytest.mark.parametrize(
    "value",
    [
        U,
        U.upper(),
        "{" + U + "}",
        "9F2C0B5E3D4A4C1B8E7F0A1B2C3D4E5F",
        "{9f2c0b5e3d4a4c1b8e7f0a1b2c3d4e5f}",
    ],
)
def test_a_uuid_in_any_case_with_or_without_hyphens_or_braces_is_that_uuid(value: str) -> None:
    assert str(plain_uuid(value)) == U


@pytest.mark.parametrize(
    "value",
    [U[:-1], U + "0", "{" + U, U + "}", " " + U, U + "\n", "urn:uuid:" + U,
     "9f2c0b5e-3d4a-4c1b-8e7f-0a1b2c3d4e5g", "9f2c0b5e--3d4a-4c1b-8e7f-0a1b2c3d4e5f",
     "\uff19f2c0b5e-3d4a-4c1b-8e7f-0a1b2c3d4e5f"],
)  # fmt: skip
def test_anything_else_is_no_uuid(value: str) -> None:
    assert plain_uuid(value) is None


@pytest.mark.parametrize("value", ["5", "5.0", "5.00", "-0.25", "0", "0.000", "123456789.5"])
def test_a_plain_decimal_is_a_decimal_number(value: str) -> None:
    assert plain_decimal(value) is not None


@pytest.mark.parametrize(
    "value", ["5,00", "+5", "05", ".5", "5.", " 5", "5 ", "5e0", "NaN", "Infinity", "\u0665", "5_0"]
)
def test_anything_else_is_no_decimal_number(value: str) -> None:
    assert plain_decimal(value) is None


@pytest.mark.parametrize(
    ("value", "fits"),
    [
        ("5", True), ("5.00", True), ("5.000000", True), ("-99999999.99", True),
        ("5.001", False), ("0.005", False), ("100000000", False), ("-100000000.00", False),
        ("0.0000", True), ("-0.000", True),  # zero: its zeros are no decimals
    ],
)  # fmt: skip
def test_a_decimal10_2_column_holds_only_numbers_of_its_digits(value: str, fits: bool) -> None:
    number = plain_decimal(value)
    assert number is not None and decimal_fits(number, (10, 2)) is fits


def test_canonically_equivalent_spellings_are_searched_compatibility_ones_are_not() -> None:
    assert text_forms("kim@example.com") == ["kim@example.com"]
    assert text_forms("k\u00edm") == ["k\u00edm", "ki\u0301m"]
    assert text_forms("ki\u0301m") == ["ki\u0301m", "k\u00edm"]
    assert text_forms("\uff4b\uff49\uff4d") == ["\uff4b\uff49\uff4d"]  # fullwidth: no NFKC
    assert text_forms("\ufb01le") == ["\ufb01le"]  # the ligature fi
    # Singleton canonical decompositions (the ohm sign, a CJK compatibility ideograph) are
    # searched from their side only: NFC and NFD both replace them, nothing produces them.
    assert text_forms("\u2126") == ["\u2126", "\u03a9"]
    assert text_forms("\u03a9") == ["\u03a9"]
    assert text_forms("\uf900") == ["\uf900", "\u8c48"]


def test_a_uuid_column_is_looked_up_as_a_uuid() -> None:
    assert _predicate(POSTGRES, "uuid", U.upper()) == ('("col" = %s::uuid)', [U])
    assert _predicate(MYSQL, "uuid", "{" + U + "}") == ("(`col` = %s)", [U])


def test_a_numeric_column_is_looked_up_as_a_number_never_rounded() -> None:
    assert _predicate(POSTGRES, "numeric", "5.0") == ('("col" = %s::numeric)', ["5.0"])
    sql, params = _predicate(MYSQL, "decimal", "5.0", digits=(10, 2))
    assert (sql, [str(p) for p in params]) == ("(`col` = %s)", ["5.0"])
    assert _predicate(MYSQL, "decimal", "5.001", digits=(10, 2)) == ("(FALSE)", [])


@pytest.mark.parametrize("dialect", [POSTGRES, MYSQL])
@pytest.mark.parametrize(
    ("data_type", "value"),
    [("uuid", "not-a-uuid-at-all"), ("numeric", "5,00"), ("decimal", "12abc"),
     ("bigint", "42abc"), ("bigint", "042"), ("bigint", "+42")],
)  # fmt: skip
def test_a_value_its_column_type_cannot_read_matches_nothing_there(
    dialect: Dialect, data_type: str, value: str
) -> None:
    assert _predicate(dialect, data_type, value, digits=(10, 2)) == ("(FALSE)", [])
    column = Column("col", data_type, None, digits=(10, 2))
    assert type_reads(dialect, column, value) is False


def test_a_kind_no_column_reads_is_refused_naming_no_value() -> None:
    records = RecordSet(
        table="people",
        timestamp_column="ts",
        key_columns=("id",),
        subject_columns=(SubjectColumn("customer-id", "a"), SubjectColumn("email", "b")),
    )
    columns = {"a": Column("a", "uuid", None), "b": Column("b", "text", None)}
    plan = TablePlan(records, records.subject_columns)
    bad = parse_identifiers({"customer-id": "C-42-secret", "email": "kim@example.com"})
    found = unreadable(POSTGRES, columns, plan, bad)
    assert found == (frozenset({"email"}), (("customer-id", "people.a"),))
    refused = refused_kinds([found])
    assert refused == {"customer-id": ["people.a"]}
    error = refusal(refused)
    assert error.category == "Configuration" and "C-42-secret" not in error.message
    assert "customer-id identifier by people.a" in error.message
    # Another table's text column of that kind reads it: answered, not refused.
    assert refused_kinds([found, (frozenset({"customer-id"}), ())]) == {}
    good = parse_identifiers({"customer-id": U.upper(), "email": "kim@example.com"})
    assert unreadable(POSTGRES, columns, plan, good) == (frozenset({"customer-id", "email"}), ())


@pytest.mark.parametrize("dialect", [POSTGRES, MYSQL])
def test_an_integer_too_wide_for_any_column_is_read_and_matches_nothing(dialect: Dialect) -> None:
    column = Column("col", "bigint", None)
    for wide in ("9" * 25, str(2**64), "-" + "9" * 25):
        assert type_reads(dialect, column, wide) is True
        assert _predicate(dialect, "bigint", wide) == ("(FALSE)", [])


@pytest.mark.parametrize(
    ("dialect", "live", "archive", "same"),
    [
        (POSTGRES, Column("c", "uuid", None), Column("c", "text", None), False),
        (POSTGRES, Column("c", "numeric", None), Column("c", "character varying", None), False),
        (POSTGRES, Column("c", "bigint", None), Column("c", "text", None), False),
        (POSTGRES, Column("c", "character", None), Column("c", "text", None), False),
        (POSTGRES, Column("c", "integer", None), Column("c", "bigint", None), True),
        (POSTGRES, Column("c", "text", None), Column("c", "character varying", None), True),
        (POSTGRES, Column("c", "USER-DEFINED", None, "s", "citext"), Column("c", "text", None),
         True),
        (MYSQL, Column("c", "uuid", None), Column("c", "varchar", None), False),
        (MYSQL, Column("c", "binary", None, octets=16), Column("c", "varbinary", None, octets=16),
         False),
        (MYSQL, Column("c", "int", None), Column("c", "bigint", None), True),
        (MYSQL, Column("c", "char", None), Column("c", "longtext", None), True),
        (MYSQL, Column("c", "decimal", None), Column("c", "decimal", None), True),
    ],
)  # fmt: skip
def test_the_archive_must_compare_a_subject_column_by_the_live_rule(
    dialect: Dialect, live: Column, archive: Column, same: bool
) -> None:
    """One rule per column: a uuid live and text archived would find `9F2C...` live only."""
    found = kind_mismatches(
        "people", [("c", match_kind(dialect, live))], [("c", match_kind(dialect, archive))]
    )
    assert (found == []) is same
    if not same:
        error = mismatch_refusal(found)
        assert error.category == "ArchiveTableInvalid" and "people.c (" in error.message
