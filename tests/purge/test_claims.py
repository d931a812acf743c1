"""The claims' rules, without a database: who may use an archive table, and a usable registry."""

from __future__ import annotations

from dataward.purge.claims import CLAIMS_TABLE, claim_refusal, claims_table_ddl, registry_problem
from dataward.purge.sql import MYSQL, POSTGRES


def test_only_the_owner_may_use_a_claimed_table() -> None:
    assert claim_refusal("orders", "crm/a", "crm/a") is None
    assert claim_refusal("orders", "crm/a", None) is None  # a dry run of an unclaimed table
    refused = claim_refusal("orders", "shop/b", "crm/a")
    assert refused is not None and refused.category == "ArchiveClaimed"
    assert "crm/a" in refused.message and "orders" in refused.message
    # Identity is namespace and name: the same name in another namespace is another store.
    assert claim_refusal("orders", "shop/a", "crm/a") is not None


def test_a_registry_needs_its_columns_and_its_primary_key() -> None:
    columns = ["archive_table", "store", "claimed_at"]
    assert registry_problem(columns, [frozenset({"archive_table"})]) is None
    upper = ["ARCHIVE_TABLE", "Store", "claimed_at"]
    assert registry_problem(upper, [frozenset({"ARCHIVE_TABLE"})]) is None
    assert registry_problem([], []) is not None
    assert registry_problem(columns, []) is not None  # two stores' claims could both land
    assert registry_problem(columns, [frozenset({"archive_table", "store"})]) is not None


def test_the_registry_ddl_keys_by_table_name_in_the_tables_schema() -> None:
    assert f'"audit"."{CLAIMS_TABLE}"' in claims_table_ddl(POSTGRES, "audit")
    assert "PRIMARY KEY" in claims_table_ddl(POSTGRES, None)
    mysql = claims_table_ddl(MYSQL, None)
    assert "ascii_bin" in mysql and "PRIMARY KEY" in mysql and "InnoDB" in mysql
