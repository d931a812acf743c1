"""PostgreSQL to PostgreSQL statutory copy in COPY's binary form, when the types allow it."""

from __future__ import annotations

import pytest

from dataward.purge.sql import POSTGRES, Column, TableName, TableStatements, same_copy_types
from tests.databases import DatabaseServers
from tests.purge.support import assert_exact_statutory_copy, unique

LIVE = (Column("id", "bigint", None), Column("ts", "timestamp with time zone", 6))


def test_binary_only_when_every_live_column_has_the_same_type_in_the_archive() -> None:
    assert same_copy_types(LIVE, (Column("TS", "timestamp with time zone", 6), LIVE[0]))
    # an extra archive column is no obstacle (COPY names the live columns)
    assert same_copy_types(LIVE, (*LIVE, Column("note", "text", None)))
    assert not same_copy_types(LIVE, (LIVE[0], Column("ts", "timestamp with time zone", 3)))
    assert not same_copy_types(LIVE, (LIVE[0], Column("ts", "timestamp without time zone", 6)))
    assert not same_copy_types(LIVE, (LIVE[0],))
    assert not same_copy_types(LIVE, (Column("id", "integer", None), LIVE[1]))
    # an array or enum names its type by OID in binary COPY: OIDs differ between databases
    tags = Column("tags", "ARRAY", None)
    assert not same_copy_types((*LIVE, tags), (*LIVE, tags))
    mood = Column("mood", "USER-DEFINED", None)
    assert not same_copy_types((*LIVE, mood), (*LIVE, mood))
    assert not same_copy_types((), ())


def test_binary_statements_ask_for_the_binary_format_on_both_sides() -> None:
    statements = TableStatements(POSTGRES, TableName(None, "t"), "ts", ("id",))
    out = statements.copy_range_out(False, ("id", "ts"), binary=True)
    assert out.startswith("COPY (DELETE") and out.endswith("TO STDOUT (FORMAT binary)")
    assert statements.copy_in(("id", "ts"), binary=True).endswith("FROM STDIN (FORMAT binary)")
    assert "binary" not in statements.copy_range_out(False, ("id", "ts"))
    assert "binary" not in statements.copy_in(("id", "ts"))


AWKWARD = (
    "id bigint, region text, ts timestamp(3), amount numeric(30,10), ratio double precision, "
    "blob bytea, doc jsonb, day date, note varchar(40), at timestamptz, span interval, "
    "flag boolean, uid uuid, PRIMARY KEY (id, region)"
)


@pytest.mark.db
@pytest.mark.parametrize("archive_note", ["varchar(40)", "text"])
def test_copy_is_exact_in_binary_and_in_the_text_fallback(
    servers: DatabaseServers, archive_note: str
) -> None:
    """Same types: binary; one column's type differs (varchar vs text): text. Both exact."""
    live, archive = servers.pair("postgresql")
    table = unique("binary")
    live.execute(f"CREATE TABLE {table} ({AWKWARD})", f"ALTER TABLE {table} OWNER TO purger")
    archive.execute(
        f"CREATE TABLE {table} ({AWKWARD.replace('varchar(40)', archive_note)})",
        f"ALTER TABLE {table} OWNER TO purger",
    )
    old = "now() - interval '400 days'"
    live.execute(
        f"INSERT INTO {table} VALUES "
        f"(1, 'eu', {old} - interval '0.123 seconds', 12345678901234567890.0123456789, 0.1, "
        "'\\x00ff27'::bytea, '{\"a\": [1, \"x\\\"y\"]}', '2020-02-29', "
        "E'quote '' back\\\\slash \\u00e9 \\t tab', '2001-02-03 04:05:06.789+05', "
        "'1 year 2 mons -3 days 04:05:06', true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), "
        f"(1, 'us', {old}, NULL, 'NaN', NULL, 'null', NULL, NULL, 'infinity', NULL, NULL, NULL), "
        f"(2, 'eu', {old} - interval '1 day', -0.0000000001, '-Infinity', '', '[]', "
        "'1999-12-31', '', '-infinity', '0', false, '00000000-0000-0000-0000-000000000000')"
    )
    # The two servers run in different time zones: a timestamptz is compared as an instant.
    rows = (
        f"SELECT (to_jsonb(t) - 'at')::text, extract(epoch FROM t.at)::text FROM {table} AS t "
        "ORDER BY id, region"
    )
    assert_exact_statutory_copy(live, archive, table, rows, moved=3)
