"""Helpers of the purge tests: stores pointing at the test servers, runners, the oracle."""

from __future__ import annotations

import copy
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from dataward.model.durations import Duration, parse_duration
from dataward.model.policy import parse_policy
from dataward.model.revisions import decide
from dataward.model.store import parse_store
from dataward.purge import mysql, postgres
from dataward.purge.credentials import Credentials, Timeouts
from dataward.purge.engine import CheckContinue, EngineOptions, Fault, keep_going, no_fault, purge
from dataward.purge.result import PurgeResult
from dataward.purge.sql import Session
from tests.databases import PURGER_PASSWORD, PURGER_USER, DatabaseServer
from tests.model.samples import POLICY as SAMPLE_POLICY

REPO = Path(__file__).resolve().parents[2]

POLICY: dict[str, Any] = {
    "apiVersion": "dataward.io/v1alpha1",
    "kind": "PrivacyPolicy",
    "metadata": {"name": "clunix", "generation": 3},
    "spec": {
        "categories": [
            {"name": "support", "purposes": ["service"],
             "retention": {"period": "1y", "trigger": "inquired"}},
            {"name": "monthly", "purposes": ["service"],
             "retention": {"period": "1mo", "trigger": "inquired"}},
            {"name": "newsletter", "purposes": ["marketing"],
             "retention": {"period": "0d", "trigger": "unsubscribed"}},
            {"name": "contracts", "purposes": ["contract"],
             "retention": {"period": "1mo", "trigger": "contract-ended"},
             "statutory": {"period": "5y", "statute": "E-Commerce Act"}},
        ]
    },
}  # fmt: skip

_names = itertools.count()


def unique(prefix: str) -> str:
    """A table name no other test uses."""
    return f"{prefix}_{os.getpid()}_{next(_names)}"


def store_doc(
    live: DatabaseServer,
    table: str,
    *,
    category: str = "support",
    archive: DatabaseServer | None = None,
    archive_port: int | None = None,
    timestamp_column: str = "ts",
    key_columns: tuple[str, ...] = ("id",),
    retention: str | None = None,
    annotations: dict[str, str] | None = None,
    **purge_spec: Any,
) -> dict[str, Any]:
    """A PersonalDataStore pointing at the test servers."""
    spec: dict[str, Any] = {
        "policy": "clunix",
        "category": category,
        "workload": {"podSelector": {"matchLabels": {"app": "db"}}, "ports": [{"port": 5432}]},
        "database": live.store_database(),
        "records": [
            {"table": table, "timestampColumn": timestamp_column, "keyColumns": list(key_columns)}
        ],
        "purge": {"batchSize": 100, "maxRowsPerRun": 100000, **purge_spec},
    }
    if retention:
        spec["retention"] = retention
    if archive is not None:
        spec["archive"] = {"database": archive.store_database(port=archive_port)}
    return {
        "apiVersion": "dataward.io/v1alpha1",
        "kind": "PersonalDataStore",
        "metadata": {
            "name": "st",
            "namespace": "crm",
            "generation": 7,
            "annotations": annotations or {},
        },
        "spec": spec,
    }


def connector(
    server: DatabaseServer,
    role: str,
    port: int | None = None,
    credentials: Credentials | None = None,
) -> Callable[[], Session]:
    """Open a purge session as `credentials` (default: the `purger` login)."""
    database = parse_store(store_doc(server, "t")).database
    if port is not None:
        database = replace(database, port=port)
    credentials = credentials or Credentials(PURGER_USER, PURGER_PASSWORD)

    def connect() -> Session:
        module = postgres if server.engine == "postgresql" else mysql
        return module.connect(database, credentials, role, Timeouts(statement=20, lock=0.2))

    return connect


def run_purge(
    doc: dict[str, Any],
    live: DatabaseServer,
    archive: DatabaseServer | None = None,
    *,
    archive_port: int | None = None,
    check_continue: CheckContinue = keep_going,
    fault: Fault = no_fault,
    options: EngineOptions | None = None,
    job_clock: Callable[[], datetime] | None = None,
    live_session_hook: Callable[[Session], None] | None = None,
    live_login: Credentials | None = None,
    archive_login: Credentials | None = None,
    policy_doc: dict[str, Any] | None = None,
) -> PurgeResult:
    """Run the engine in-process against the test servers."""
    store = parse_store(doc)
    policy = parse_policy(policy_doc or POLICY)
    connect_live = connector(live, "live", credentials=live_login)

    def live_with_hook() -> Session:
        session = connect_live()
        if live_session_hook is not None:
            live_session_hook(session)
        return session

    return purge(
        store,
        policy,
        connect_live=live_with_hook,
        connect_archive=(
            connector(archive, "archive", archive_port, archive_login) if archive else None
        ),
        job_clock=job_clock or (lambda: datetime.now(UTC)),
        check_continue=check_continue,
        fault=fault,
        options=options,
    )


def assert_exact_statutory_copy(
    live: DatabaseServer, archive: DatabaseServer, table: str, rows: str, moved: int
) -> None:
    """Purge `table` (category `contracts`, keyed by `(id, region)`) into the archive: all
    `moved` rows leave live, and the archive reads back under the query `rows` exactly what
    live held before."""
    before = live.query(rows)
    result = run_purge(
        store_doc(live, table, category="contracts", archive=archive, key_columns=("id", "region")),
        live,
        archive,
    )
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == result.rows_archived == moved == len(before)
    assert archive.query(rows) == before
    assert live.query(rows) == []


@dataclass
class CliRun:
    """A finished `dataward purge` process."""

    returncode: int
    stdout: str
    stderr: str
    termination: str | None

    @property
    def result(self) -> dict[str, Any]:
        """The JSON record printed on stdout."""
        lines = [line for line in self.stdout.splitlines() if line.startswith("{")]
        assert lines, f"no result printed (rc {self.returncode}): {self.stderr}"
        parsed: dict[str, Any] = json.loads(lines[-1])
        return parsed


@dataclass
class CliProcess:
    """A `dataward purge` process still running, and the files it reads and writes."""

    process: subprocess.Popen[str]
    store_file: Path
    termination: Path

    def wait(self) -> CliRun:
        """Wait for it to end."""
        stdout, stderr = self.process.communicate(timeout=120)
        termination = self.termination.read_text() if self.termination.exists() else None
        return CliRun(self.process.returncode, stdout, stderr, termination)


def start_cli(
    tmp_path: Path,
    doc: dict[str, Any],
    *,
    fault: str | None = None,
    extra_args: tuple[str, ...] = ("--recheck-interval", "0"),
    env: dict[str, str] | None = None,
) -> CliProcess:
    """Start `python -m dataward purge -f store.yaml --policy policy.yaml` as a subprocess."""
    store_file = tmp_path / f"store-{next(_names)}.yaml"
    policy_file = tmp_path / "policy.yaml"
    store_file.write_text(yaml.safe_dump(doc))
    policy_file.write_text(yaml.safe_dump(POLICY))
    termination = tmp_path / f"termination-{next(_names)}.log"
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DATAWARD_")},
        "DATAWARD_DB_USERNAME": PURGER_USER,
        "DATAWARD_DB_PASSWORD": PURGER_PASSWORD,
        "DATAWARD_ARCHIVE_USERNAME": PURGER_USER,
        "DATAWARD_ARCHIVE_PASSWORD": PURGER_PASSWORD,
        "DATAWARD_TERMINATION_LOG": str(termination),
        "PYTHONPATH": str(REPO / "operator"),
        **(env or {}),
    }
    if fault:
        environ["DATAWARD_PURGE_FAULT"] = fault
    process = subprocess.Popen(
        [sys.executable, "-m", "dataward", "purge", "-f", str(store_file), "--policy",
         str(policy_file), *extra_args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
    )  # fmt: skip
    return CliProcess(process, store_file, termination)


def run_cli(
    tmp_path: Path,
    doc: dict[str, Any],
    *,
    fault: str | None = None,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> CliRun:
    """Run `python -m dataward purge -f store.yaml --policy policy.yaml` to its end."""
    return start_cli(
        tmp_path, doc, fault=fault, extra_args=("--recheck-interval", "0", *extra_args), env=env
    ).wait()


def instant(value: datetime | date | None) -> datetime | None:
    """A trigger value as read from the database, as an aware UTC instant (naive means UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def server_time(result: dict[str, Any] | PurgeResult) -> datetime:
    """The live server clock the run used."""
    if isinstance(result, PurgeResult):
        assert result.server_time is not None
        return result.server_time
    return datetime.fromisoformat(str(result["serverTime"]).replace("Z", "+00:00"))


def period_of(category: str, retention: str | None = None) -> Duration:
    """The effective retention of a test store."""
    if retention:
        return parse_duration(retention)
    for cat in POLICY["spec"]["categories"]:
        if cat["name"] == category:
            return parse_duration(cat["retention"]["period"])
    raise KeyError(category)


# A revision of the sample policy taking effect at 00:00 UTC of 2025-07-01 (the revision-clock
# tests of the purge and of `dataward preview --now`).
OBSERVED = datetime(2025, 5, 1, tzinfo=UTC)
EFFECTIVE = datetime(2025, 7, 1, tzinfo=UTC)  # 00:00 UTC of the effective date


def revised(period: str) -> dict[str, Any]:
    """The sample policy (support inquiries 1y) revised to `period`, effective 2025-07-01,
    announced long before (notice run), its impact counted small: it takes effect at 00:00."""
    old_spec = copy.deepcopy(SAMPLE_POLICY["spec"])
    new_spec = copy.deepcopy(SAMPLE_POLICY["spec"])
    new_spec["announced"], new_spec["effectiveDate"] = "2025-05-01", "2025-07-01"
    for category in new_spec["categories"]:
        if category["name"] == "technical-support-inquiry":
            category["retention"]["period"] = period
    recorded = {"inForce": {"generation": 3, "since": "2021-04-26T00:00:00Z", "spec": old_spec}}
    pending = decide(new_spec, 4, recorded, OBSERVED).pending
    assert pending is not None and pending.takes_effect == EFFECTIVE
    policy = {**copy.deepcopy(SAMPLE_POLICY), "spec": new_spec}
    policy["metadata"] = {"name": "clunix", "generation": 4}
    policy["status"] = {
        "revisions": {**recorded, "pending": {**pending.to_status(), "impactVerdict": "Small"}}
    }
    return policy


def promoted(period: str) -> dict[str, Any]:
    """`revised(period)` once the operator recorded it in force (its policy reconcile at
    00:00:30 of the effective date): status holds the new revision since 00:00 UTC and no
    longer the one in force before it."""
    from dataward.model.revisions import policy_revisions

    policy = revised(period)
    revisions = policy_revisions(policy, EFFECTIVE + timedelta(seconds=30))
    assert revisions.promoted and revisions.in_force.since == EFFECTIVE
    policy["status"] = {"revisions": revisions.to_status()}
    return policy
