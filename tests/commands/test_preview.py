"""`dataward preview` without a database: URLs, logins and refusals (the counts are db tests,
tests/purge/test_preview.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataward.cli import build_parser
from dataward.commands.preview import database_from_url, execute, render_table
from dataward.model.store import parse_store
from dataward.purge.errors import PurgeError
from dataward.purge.result import PurgeResult, TableResult
from tests.model.samples import POLICY, STORE

BASE = parse_store(STORE).database
SECRET = "s3cr%40t-pw-9917"


def test_a_url_names_the_engine_host_port_database_and_tls() -> None:
    database, login = database_from_url("mariadb://db.example/shop?tls=verify-full", BASE, "DB")
    assert (database.engine, database.host, database.port, database.name, database.tls) == (
        "mysql", "db.example", 3306, "shop", "verify-full")  # fmt: skip
    assert login is None
    database, login = database_from_url(
        f"postgresql://purger:{SECRET}@10.0.0.7:6543/crm", BASE, "DB"
    )
    assert (database.engine, database.port, database.tls) == ("postgresql", 6543, BASE.tls)
    assert login is not None and login.password == "s3cr@t-pw-9917"  # percent-decoded
    assert "9917" not in repr(login)


@pytest.mark.parametrize(
    "url",
    [
        f"sqlite://purger:{SECRET}@host/db",
        f"postgresql://purger:{SECRET}@/db",
        f"postgresql://purger:{SECRET}@host",
        f"postgresql://purger:{SECRET}@host/a/b",
        f"postgresql://purger:{SECRET}@host:99999/db",
        f"postgresql://purger:{SECRET}@host/db?sslmode=prefer",
    ],
)
def test_a_bad_url_is_refused_without_quoting_it(url: str) -> None:
    with pytest.raises(PurgeError) as caught:
        database_from_url(url, BASE, "DB")
    assert "9917" not in caught.value.message and "purger" not in caught.value.message
    assert "--database-url" in caught.value.message


def _args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    store, policy = tmp_path / "store.yaml", tmp_path / "policy.yaml"
    store.write_text(yaml.safe_dump(STORE))
    policy.write_text(yaml.safe_dump(POLICY))
    return build_parser().parse_args(["preview", "-f", str(store), "--policy", str(policy),
                                      *extra])  # fmt: skip


def test_now_without_a_zone_and_a_missing_login_fail_before_connecting(tmp_path: Path) -> None:
    url = "postgresql://127.0.0.1:1/crm?tls=disable"
    result = execute(_args(tmp_path, "--database-url", url, "--now", "2026-03-01T00:00:00"), {})
    assert (result.result, result.reason) == ("Failed", "Configuration")
    assert "time zone" in result.message
    result = execute(_args(tmp_path, "--database-url", url), {})
    assert "DATAWARD_DB_USERNAME" in result.message


def test_a_statutory_store_needs_the_archive_url(tmp_path: Path) -> None:
    statutory = dict(STORE, spec={**STORE["spec"], "category": "contract-records",
                                  "archive": {"database": {**STORE["spec"]["database"],
                                                           "host": "archive.svc"}}})  # fmt: skip
    store = tmp_path / "statutory.yaml"
    store.write_text(yaml.safe_dump(statutory))
    args = _args(tmp_path, "--database-url", "postgresql://u:p@127.0.0.1:1/crm")
    args.filename = [store]
    result = execute(args, {})
    assert result.result == "Failed" and "--archive-database-url" in result.message


def test_the_table_shows_each_count_and_the_large_cut_verdict() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 3, 1, tzinfo=UTC)
    result = PurgeResult(
        store="crm/members", result="Succeeded", dry_run=True, start_time=at,
        completion_time=at, message="dry run: ...", server_time=at,
        tables=(TableResult("members", rows_deleted=12, rows_archived=0, rows_no_consent=5,
                            large_cut=True),
                TableResult("visits", rows_deleted=3)),
    )  # fmt: skip
    lines = render_table(result).splitlines()
    assert lines[0].split() == ["TABLE", "DELETE", "ARCHIVE", "NO-CONSENT", "LARGE-CUT"]
    assert lines[1].split() == ["members", "12", "0", "5", "yes"]
    assert lines[2].split() == ["visits", "3", "0", "0", "no"]
    assert lines[3].startswith("store crm/members at 2026-03-01T00:00:00+00:00: Succeeded.")


@pytest.mark.parametrize(("now", "period"), [("2025-06-30T23:00:00Z", "1y"),
                                              ("2025-07-01T00:00:00Z", "6mo")])  # fmt: skip
def test_now_decides_the_revision_the_counts_are_planned_under(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, now: str, period: str
) -> None:
    # Red first: the files' policy was decided at the machine's clock (past the revision's
    # start) and planned at --now, so a preview of the day before counted by a retention not
    # yet in force.
    from dataward.commands import preview as command
    from dataward.model.durations import parse_duration
    from tests.purge.support import revised

    planned: list[Any] = []

    def captured(store: Any, policy: Any, **kw: Any) -> PurgeResult:
        planned.append(policy)
        raise PurgeError("Configuration", "stop here")

    monkeypatch.setattr(command, "preview", captured)
    args = _args(tmp_path, "--database-url", "postgresql://u:p@127.0.0.1:1/crm", "--now", now)
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(revised("6mo")))
    execute(args, {})
    (policy,) = planned
    retention = policy.category("technical-support-inquiry").retention.period
    assert retention == parse_duration(period)
