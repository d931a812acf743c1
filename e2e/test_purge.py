"""A purge end to end: the store's CronJob makes a Job, the Job's pod runs, the store reports it.

There is no kubelet on this control plane, so the test stands in for one (CONTROL-PLANE.md,
"What stands in for a kubelet"): it reads the pod the Job controller created, runs that
container's exact command with its exact environment (Secrets resolved as the kubelet
resolves them) as a local process against real PostgreSQL servers, and hands the container's
termination message back as the pod's status. Everything else is the real thing: the
operator renders the CronJob, `kubectl create job --from` instantiates it, the Job controller
makes the pod and finishes the Job, `dataward purge` reads its store with the purge
ServiceAccount's token, and the operator turns the finished Job into `status.lastPurge` and
`PurgeSucceeded`.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from e2e.fixtures_databases import Postgres
from e2e.fixtures_operator import (
    apply,
    condition,
    get,
    load_example,
    wait_condition,
)
from e2e.harness import ControlPlane, wait_for
from e2e.kubelet import run_job
from tests.databases import DatabaseServer

POLICY = "examples/policy.yaml"
SUPPORT_STORE = "examples/stores/support-inquiries.yaml"
PAYMENT_STORE = "examples/stores/payment-records.yaml"


pytestmark = pytest.mark.usefixtures("seed_policy_applied")


def create_job(plane: ControlPlane, namespace: str, store: str) -> str:
    """`kubectl create job --from=cronjob/...`, as an operator on call would; the Job's name."""
    job = f"purge-manual-{uuid.uuid4().hex[:6]}"
    plane.kubectl("create", "job", job, f"--from=cronjob/dataward-{store}-purge", "-n", namespace)
    return job


# --- the stores and their data -----------------------------------------------------------


def create_table(server: DatabaseServer, table: str, trigger: str) -> None:
    """A table of personal data owned by the purge login: (id, trigger timestamptz, payload)."""
    server.execute(
        f"CREATE TABLE {table} (id bigint PRIMARY KEY, {trigger} timestamptz, payload text)",
        f"CREATE INDEX ON {table} ({trigger})",
        f"ALTER TABLE {table} OWNER TO purger",
    )


def insert(
    server: DatabaseServer, table: str, trigger: str, rows: list[tuple[int, datetime | None]]
) -> None:
    """Insert (id, trigger) rows; the payload stands for the person's data."""
    conn = server.admin(autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} (id, {trigger}, payload) VALUES (%s, %s, %s)",
                [(i, at, f"personal data of person {i}") for i, at in rows],
            )
        conn.commit()
    finally:
        conn.close()


def rows(server: DatabaseServer, table: str, trigger: str) -> dict[int, tuple[Any, str]]:
    """Every row as id -> (trigger, payload)."""
    found = server.query(f"SELECT id, {trigger}, payload FROM {table}")
    return {int(i): (at, str(payload)) for i, at, payload in found}


def oracle(server: DatabaseServer, table: str, trigger: str, period: str) -> set[int]:
    """Independently of the engine: the ids whose trigger plus `period` has passed, now."""
    found = server.query(f"SELECT id FROM {table} WHERE {trigger} + interval '{period}' <= now()")
    return {int(i) for (i,) in found}


def support_store(
    plane: ControlPlane, servers: Postgres, namespace: str, table: str
) -> dict[str, Any]:
    """The example support-inquiries store, pointed at the live test server (180d)."""
    database = {**servers.live.store_database(), "credentialsSecret": "crm-postgres-purger"}
    store = load_example(
        SUPPORT_STORE,
        namespace,
        database=database,
        records=[{"table": table, "timestampColumn": "inquired_at", "keyColumns": ["id"]}],
    )
    apply(plane, servers.credentials_secret(namespace, "crm-postgres-purger"), store)
    return store


def seed_support(servers: Postgres, table: str) -> None:
    """Inquiries older and younger than the store's 180 days (hours from it), and NULLs."""
    now = datetime.now(UTC)
    edge = now - timedelta(days=180)
    expired = [(i, edge - timedelta(hours=2) - timedelta(days=11 * i)) for i in range(1, 31)]
    kept = [(100 + i, edge + timedelta(hours=2) + timedelta(days=9 * i)) for i in range(15)]
    create_table(servers.live, table, "inquired_at")
    insert(
        servers.live,
        table,
        "inquired_at",
        [*expired, *kept, (200, now + timedelta(days=1)), (201, None), (202, None), (203, None)],
    )


def ready_support_store(plane: ControlPlane, servers: Postgres, namespace: str) -> str:
    """A new table seeded by `seed_support` and the example support-inquiries store over it,
    waited for until Ready; the table's name."""
    table = f"support_inquiries_{uuid.uuid4().hex[:8]}"
    seed_support(servers, table)
    support_store(plane, servers, namespace, table)
    wait_condition(plane, namespace, "support-inquiries", "Ready", "True")
    return table


def last_purge_of(
    plane: ControlPlane, namespace: str, name: str, job: str, timeout: float = 60
) -> dict[str, Any]:
    """Wait until the store reports the run of `job` in status.lastPurge; the store."""

    def reported() -> dict[str, Any] | None:
        store = get(plane, "pds", name, namespace)
        last = ((store or {}).get("status") or {}).get("lastPurge") or {}
        return store if last.get("jobName") == job else None

    store = wait_for(
        reported, timeout=timeout, message=f"lastPurge of {namespace}/{name} names Job {job}"
    )
    assert store is not None
    return store


def printed_columns(plane: ControlPlane, namespace: str, name: str) -> dict[str, str]:
    """`kubectl get pds NAME` as a user reads it: column header -> value."""
    header, row = plane.kubectl("get", "pds", name, "-n", namespace).stdout.splitlines()[:2]
    starts = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    ends = [start for start, _ in starts[1:]] + [len(row)]
    return {title: row[start:end].strip() for (start, title), end in zip(starts, ends, strict=True)}


def assert_no_secret(servers: Postgres, **places: str) -> None:
    """The purge login's password (a canary) is in none of the places."""
    for where, text in places.items():
        assert servers.password not in text, f"the database password leaked into the {where}"


# --- the stories -------------------------------------------------------------------------


def test_a_purge_job_deletes_exactly_the_expired_rows_and_the_store_reports_it(
    control_plane: ControlPlane,
    namespace: str,
    postgres: Postgres,
    tmp_path: Path,
) -> None:
    table = ready_support_store(control_plane, postgres, namespace)
    before = rows(postgres.live, table, "inquired_at")
    expected = oracle(postgres.live, table, "inquired_at", "180 days")
    assert len(expected) == 30

    job = create_job(control_plane, namespace, "support-inquiries")
    outcome, runs = run_job(control_plane, namespace, job, tmp_path)

    (run,) = runs
    assert run.argv[3:6] == ["purge", "--store", f"{namespace}/support-inquiries"]
    assert run.argv[6] == "--connection-pin" and len(run.argv) == 8
    assert run.returncode == 0, run.stdout + run.stderr
    assert outcome == "Complete"
    # Exactly the expired rows are gone; the younger ones, the future one and NULLs remain.
    after = rows(postgres.live, table, "inquired_at")
    assert set(before) - set(after) == expected
    assert after == {i: row for i, row in before.items() if i not in expected}
    assert {201, 202, 203, 200} <= set(after)
    assert oracle(postgres.live, table, "inquired_at", "180 days") == set()

    record = json.loads(run.termination_message)
    assert run.termination_message == run.stdout.strip().splitlines()[-1]
    assert record["result"] == "Succeeded" and record["dryRun"] is False
    cutoff = datetime.fromisoformat(record["cutoff"].replace("Z", "+00:00"))
    assert max(before[i][0] for i in expected) <= cutoff
    assert all(at > cutoff for i, (at, _) in after.items() if at is not None)

    store = last_purge_of(control_plane, namespace, "support-inquiries", job)
    last = store["status"]["lastPurge"]
    assert last["result"] == "Succeeded"
    assert last["rowsDeleted"] == len(expected) == record["rowsDeleted"]
    assert last["cutoff"] == record["cutoff"]
    assert last["nullTriggers"] == 3 and last["expiredRemaining"] == 0
    assert last["dryRun"] is False and last["completionTime"]
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "PurgeSucceeded", "True", "Succeeded"
    )
    assert f"deleted {len(expected)} " in condition(store, "PurgeSucceeded")["message"]
    assert condition(store, "Ready")["status"] == "True"
    assert printed_columns(control_plane, namespace, "support-inquiries")["LAST PURGE"] not in (
        "",
        "<none>",
    )
    assert run.environment["DATAWARD_DB_PASSWORD"] == postgres.password  # it was really used
    assert_no_secret(
        postgres,
        **{
            "termination message": run.termination_message,
            "purge output": run.stdout + run.stderr,
            "store": control_plane.kubectl("get", "pds", "-n", namespace, "-o", "yaml").stdout,
            "pods and jobs": control_plane.kubectl(
                "get", "pods,jobs", "-n", namespace, "-o", "yaml"
            ).stdout,
        },
    )


def test_a_purge_follows_its_store_by_watch_not_a_get_per_batch(
    control_plane: ControlPlane,
    namespace: str,
    postgres: Postgres,
    tmp_path: Path,
) -> None:
    """30 expired rows in batches of one: the hold is checked 30 times, the API read twice."""
    table = f"support_inquiries_{uuid.uuid4().hex[:8]}"
    seed_support(postgres, table)
    store = support_store(control_plane, postgres, namespace, table)
    store["spec"]["purge"] = {**store["spec"].get("purge", {}), "batchSize": 1}
    apply(control_plane, store)
    wait_condition(control_plane, namespace, "support-inquiries", "Ready", "True")
    job = create_job(control_plane, namespace, "support-inquiries")
    outcome, runs = run_job(control_plane, namespace, job, tmp_path)
    (run,) = runs
    assert outcome == "Complete", run.stdout + run.stderr
    result = json.loads(run.termination_message)
    assert result["rowsDeleted"] == 30

    account = f"system:serviceaccount:{namespace}:dataward-support-inquiries-purge"
    reads = [
        event["verb"]
        for event in control_plane.audit_events()
        if event.get("user", {}).get("username") == account
        and event.get("objectRef", {}).get("resource") == "personaldatastores"
        and event.get("stage") == "ResponseComplete"
    ]
    assert "watch" in reads, reads
    # The first read, and at most a few more (the policy's own re-check re-reads nothing of
    # the store while the watch is live); before, one GET per batch: 30 and more. A quiet
    # watch is trusted for 10 s (README), so a run slowed by a loaded machine may GET once
    # more every 10 s; still far from a GET per batch.
    allowed = 3 + int(result["durationSeconds"] // 10)
    assert reads.count("get") <= min(allowed, 10), (reads, result["durationSeconds"])


def test_a_statutory_purge_archives_expired_rows_before_deleting_them(
    control_plane: ControlPlane,
    namespace: str,
    postgres: Postgres,
    tmp_path: Path,
) -> None:
    table = f"payments_{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    for server in (postgres.live, postgres.archive):
        create_table(server, table, "settled_at")
    settled = [(i, now - timedelta(days=1 + 13 * i)) for i in range(1, 21)]  # within 5y
    pending = [(100 + i, now + timedelta(days=1 + i)) for i in range(5)]  # not settled yet
    insert(postgres.live, table, "settled_at", [*settled, *pending, (200, None), (201, None)])
    # Archived before: one row past the statute's 5 years, one within it.
    insert(
        postgres.archive,
        table,
        "settled_at",
        [(9000, datetime(2015, 5, 1, tzinfo=UTC)), (9001, now - timedelta(days=900))],
    )
    store = load_example(
        PAYMENT_STORE,
        namespace,
        database={**postgres.live.store_database(), "credentialsSecret": "billing-purger"},
        archive={
            "database": {**postgres.archive.store_database(), "credentialsSecret": "archivist"}
        },
        records=[{"table": table, "timestampColumn": "settled_at", "keyColumns": ["id"]}],
        workload={
            "podSelector": {"matchLabels": {"app": "billing-postgres"}},
            "ports": [{"port": 5432, "protocol": "TCP"}],
        },
    )
    store["spec"]["purge"]["dryRun"] = False
    apply(
        control_plane,
        postgres.credentials_secret(namespace, "billing-purger"),
        postgres.credentials_secret(namespace, "archivist"),
        store,
    )
    wait_condition(control_plane, namespace, "payment-records", "Ready", "True")
    live_before = rows(postgres.live, table, "settled_at")
    archive_before = rows(postgres.archive, table, "settled_at")
    expected = oracle(postgres.live, table, "settled_at", "0 days")
    destroyed = oracle(postgres.archive, table, "settled_at", "5 years")
    assert len(expected) == 20 and destroyed == {9000}

    job = create_job(control_plane, namespace, "payment-records")
    outcome, runs = run_job(control_plane, namespace, job, tmp_path)

    (run,) = runs
    assert run.returncode == 0 and outcome == "Complete", run.stdout + run.stderr
    live_after = rows(postgres.live, table, "settled_at")
    assert set(live_before) - set(live_after) == expected
    assert set(live_after) == {100, 101, 102, 103, 104, 200, 201}
    # Every moved row is in the archive as it was; the one past the statute is destroyed.
    assert rows(postgres.archive, table, "settled_at") == {
        **{i: live_before[i] for i in expected},
        9001: archive_before[9001],
    }

    last = last_purge_of(control_plane, namespace, "payment-records", job)["status"]["lastPurge"]
    assert last["result"] == "Succeeded"
    assert last["rowsDeleted"] == last["rowsArchived"] == len(expected)
    assert last["archiveRowsDestroyed"] == 1 and last["nullTriggers"] == 2
    wait_condition(
        control_plane, namespace, "payment-records", "PurgeSucceeded", "True", "Succeeded"
    )
    assert_no_secret(
        postgres,
        **{
            "termination message": run.termination_message,
            "store": control_plane.kubectl("get", "pds", "-n", namespace, "-o", "yaml").stdout,
        },
    )


def test_a_purge_job_of_a_store_that_broke_its_policy_deletes_nothing_and_says_what_to_do(
    control_plane: ControlPlane,
    namespace: str,
    postgres: Postgres,
    tmp_path: Path,
) -> None:
    table = ready_support_store(control_plane, postgres, namespace)
    before = rows(postgres.live, table, "inquired_at")
    # The schedule made a Job; before its pod ran, someone lengthened the retention beyond the
    # category's 1y. The operator suspends the CronJob, but this Job already exists.
    job = create_job(control_plane, namespace, "support-inquiries")
    control_plane.kubectl(
        "patch", "pds", "support-inquiries", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"retention":"2y"}}',
    )  # fmt: skip
    wait_condition(
        control_plane,
        namespace,
        "support-inquiries",
        "PolicyCompliant",
        "False",
        "RetentionTooLong",
    )

    def suspended() -> bool:
        cronjob = get(control_plane, "cronjob", "dataward-support-inquiries-purge", namespace)
        return bool(((cronjob or {}).get("spec") or {}).get("suspend"))

    wait_for(suspended, timeout=30, message="the operator suspends the CronJob")

    outcome, runs = run_job(control_plane, namespace, job, tmp_path)

    assert outcome == "Failed"
    assert (get(control_plane, "job", job, namespace) or {})["spec"]["backoffLimit"] == 0
    assert len(runs) == 1, "the Job controller ran the refused pod again (the next slot retries)"
    for run in runs:
        assert run.returncode == 1, run.stdout + run.stderr
        record = json.loads(run.termination_message)
        assert (record["result"], record["reason"]) == ("Failed", "NotCompliant")
        assert record["rowsDeleted"] == 0
    assert rows(postgres.live, table, "inquired_at") == before, "a refused purge deleted rows"

    store = last_purge_of(control_plane, namespace, "support-inquiries", job)
    last = store["status"]["lastPurge"]
    assert (last["result"], last["reason"]) == ("Failed", "NotCompliant")
    assert not last.get("rowsDeleted")
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "PurgeSucceeded", "False", "NotCompliant"
    )
    message = condition(store, "PurgeSucceeded")["message"]
    assert "not PolicyCompliant" in message and "set it to 1y or less" in message, message
    assert_no_secret(
        postgres,
        **{
            "termination message": "".join(r.termination_message for r in runs),
            "store": control_plane.kubectl("get", "pds", "-n", namespace, "-o", "yaml").stdout,
        },
    )
