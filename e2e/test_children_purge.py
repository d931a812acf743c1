"""A children's store purged end to end: the operator's CronJob, its Job, `dataward purge` in
the pod (run by the kubelet stand-in of test_purge.py), real PostgreSQL, the store's status.

Rows of a child under 14 without the legal representative's consent go once the category's
consent grace (5 days by default) has passed since collection; a child's row with consent,
an adult's, one of unknown age, and a child's row still within the grace stay.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from e2e.fixtures_databases import Postgres
from e2e.fixtures_operator import (
    OperatorProcess,
    apply,
    condition,
    load_example,
    wait_condition,
)
from e2e.harness import ControlPlane
from e2e.test_children import children_policy
from e2e.test_purge import SUPPORT_STORE, create_job, last_purge_of, run_job

POLICY = f"clunix-children-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module", autouse=True)
def policy(control_plane: ControlPlane, operator: OperatorProcess) -> dict[str, Any]:
    """The seed policy plus a membership category that may hold children's data."""
    doc = children_policy(POLICY)
    apply(control_plane, doc)
    return doc


def test_a_purge_job_removes_childrens_rows_without_consent_after_the_grace(
    control_plane: ControlPlane, namespace: str, postgres: Postgres, tmp_path: Path
) -> None:
    table = f"members_{uuid.uuid4().hex[:8]}"
    live = postgres.live
    live.execute(
        f"CREATE TABLE {table} (id bigint PRIMARY KEY, joined_at timestamptz, born_on date, "
        "guardian_consented_at timestamptz, payload text)",
        f"CREATE INDEX ON {table} (joined_at)",
        f"ALTER TABLE {table} OWNER TO purger",
    )
    now = datetime.now(UTC)
    child, adult = date(now.year - 10, 6, 1), date(now.year - 30, 6, 1)
    seeded = {
        1: (now - timedelta(days=6), child, None),  # a child, no consent, past 5 days: goes
        2: (now - timedelta(days=40), child, None),  # likewise
        3: (now - timedelta(days=2), child, None),  # still within the grace: stays
        4: (now - timedelta(days=6), child, now - timedelta(days=1)),  # consent: stays
        5: (now - timedelta(days=6), adult, None),  # an adult: stays
        6: (now - timedelta(days=6), None, None),  # unknown age: stays
    }
    conn = live.admin(autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s)",
                [
                    (i, at, born, consent, f"person {i}")
                    for i, (at, born, consent) in seeded.items()
                ],
            )
        conn.commit()
    finally:
        conn.close()
    database = {**live.store_database(), "credentialsSecret": "members-purger"}
    store = load_example(
        SUPPORT_STORE, namespace, policy=POLICY, category="membership", database=database,
        records=[{"table": table, "timestampColumn": "joined_at", "keyColumns": ["id"],
                  "children": {"birthDateColumn": "born_on",
                               "consentColumn": "guardian_consented_at"}}],
    )  # fmt: skip
    store["spec"].pop("retention", None)
    name = store["metadata"]["name"]
    apply(control_plane, postgres.credentials_secret(namespace, "members-purger"), store)
    wait_condition(control_plane, namespace, name, "Ready", "True")

    job = create_job(control_plane, namespace, name)
    outcome, runs = run_job(control_plane, namespace, job, tmp_path)

    (run,) = runs
    assert run.returncode == 0 and outcome == "Complete", run.stdout + run.stderr
    left = {int(i) for (i,) in live.query(f"SELECT id FROM {table}")}
    assert left == {3, 4, 5, 6}
    last = last_purge_of(control_plane, namespace, name, job)["status"]["lastPurge"]
    assert (last["result"], last["rowsDeleted"], last["rowsNoConsent"]) == ("Succeeded", 2, 2)
    store_now = wait_condition(control_plane, namespace, name, "PurgeSucceeded", "True")
    assert condition(store_now, "PolicyCompliant")["status"] == "True"
