"""`dataward purge --pending-generation`: the impact preview's mode, never a real purge."""

from __future__ import annotations

from dataward.cli import build_parser
from dataward.commands.purge import execute


def test_a_real_purge_by_the_pending_revision_is_refused_before_any_connection() -> None:
    # A careless (or forged) Job: the pending revision's rules, but deleting.
    args = build_parser().parse_args(
        ["purge", "--store", "crm/support-inquiries", "--pending-generation", "4"]
    )
    result = execute(args, {})
    assert result.result == "Failed" and result.reason == "Configuration"
    assert "--dry-run" in result.message and result.rows_deleted == 0


def test_the_pending_revision_is_not_read_from_files() -> None:
    args = build_parser().parse_args(
        ["purge", "-f", "store.yaml", "--dry-run", "--pending-generation", "4"]
    )
    result = execute(args, {})
    assert result.result == "Failed" and result.dry_run is True
    assert "--pending-generation needs --store" in result.message
