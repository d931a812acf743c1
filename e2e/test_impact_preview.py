"""The impact preview of a pending policy revision, on the real control plane and PostgreSQL.

A revision cutting a category's retention from 1 year to 90 days is pending. The operator
creates one dry-run Job for the store (the purge's own pod, `--dry-run
--pending-generation N`); the test stands in for the kubelet (e2e/test_purge.py's helpers:
the pod's exact command, environment and ServiceAccount identity, run locally against the
real database); the counts land in the store's and the policy's status, and nothing is
deleted. The operator's clock (DATAWARD_TEST_CLOCK_FILE) then passes the effective date: a
small cut takes effect by itself, a large one waits for the acknowledgement annotation on
the policy. Then a real purge Job deletes exactly the rows the preview counted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient

from dataward.checks.purge_runs import JOB_NAME_LABEL, job_runs, pod_runs, render_of
from e2e.fixtures_api import seed_policy
from e2e.fixtures_databases import Postgres
from e2e.fixtures_operator import (
    OperatorProcess,
    apply,
    clocked_operator,
    get,
    load_example,
    own_namespace,
    sleep_for,
    wait_condition,
)
from e2e.harness import ControlPlane, wait_for
from e2e.test_policy_revisions import Clock, current, revised, revision_condition, update
from e2e.test_purge import create_job, create_table, insert, oracle, rows, run_job

pytestmark = pytest.mark.usefixtures("crds_installed")

ACKNOWLEDGE = "dataward.io/acknowledge-large-purge"


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> Clock:
    """The operator's clock, sixteen days back: each test's revision, announced "today" by
    it, takes effect a week later (and the test moves the clock there), still before the
    real clocks the purge Job and PostgreSQL read. A run whose clocks are before the revision
    status records in force knows no revision there, and deletes nothing (RetentionChanged)."""
    clock = Clock(tmp_path_factory.mktemp("impact-clock") / "now")
    clock.set(clock.now - timedelta(days=16))
    return clock


@pytest.fixture(scope="module")
def impact_namespace(control_plane: ControlPlane) -> Iterator[str]:
    with own_namespace(control_plane, "e2e-impact") as name:
        yield name


@pytest.fixture(scope="module")
def impact_operator(control_plane: ControlPlane, clock: Clock, impact_namespace: str,
                    tmp_path_factory: pytest.TempPathFactory,
                    session_operator_paused: None) -> Iterator[OperatorProcess]:
    """An operator of its own on the test clock, serving only this module's namespace."""
    with clocked_operator(control_plane, clock.path, impact_namespace,
                          "dataward-impact-e2e",
                          tmp_path_factory.mktemp("impact") / "operator.log") as process:
        yield process


@pytest.fixture
def policy(kube: ApiClient) -> Iterator[dict[str, Any]]:
    """The seed policy under a name of its own, as the API holds it."""
    with seed_policy(kube, "impact") as name:
        yield current(kube, name)


def store_following_the_category(
    plane: ControlPlane, postgres: Postgres, namespace: str, policy: str, table: str, store: str
) -> None:
    """The example store without a retention of its own: it keeps the category's (1y)."""
    database = {**postgres.live.store_database(), "credentialsSecret": "crm-postgres-purger"}
    body = load_example(
        "examples/stores/support-inquiries.yaml", namespace, policy=policy,
        database=database, deletionPolicy="Delete",
        records=[{"table": table, "timestampColumn": "inquired_at", "keyColumns": ["id"]}],
    )  # fmt: skip
    body["metadata"]["name"] = store
    del body["spec"]["retention"]
    apply(plane, postgres.credentials_secret(namespace, "crm-postgres-purger"), body)


def seed(postgres: Postgres, table: str, cut: int, kept: int) -> None:
    """`cut` rows 100 to 300 days old (kept under 1y, cut under 90d), `kept` younger than 90
    days (by hours at least), one older than a year, and NULL triggers."""
    now = datetime.now(UTC)
    create_table(postgres.live, table, "inquired_at")
    span = timedelta(days=200)
    old = [(i, now - timedelta(days=100) - span * i / max(cut, 1)) for i in range(1, cut + 1)]
    young = [(10**6 + i, now - timedelta(days=89) + timedelta(hours=i % 24)) for i in range(kept)]
    insert(postgres.live, table, "inquired_at",
           [*old, *young, (2 * 10**6, now - timedelta(days=400)), (2 * 10**6 + 1, None)])


def preview_jobs(plane: ControlPlane, namespace: str, store: str) -> list[dict[str, Any]]:
    found = plane.kubectl("get", "jobs", "-n", namespace, "-l",
                          f"app.kubernetes.io/component=impact-preview,dataward.io/store={store}",
                          "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(found)["items"]
    return items


def pending_impact(kube: ApiClient, name: str) -> dict[str, Any] | None:
    pending = current(kube, name).get("status", {}).get("revisions", {}).get("pending") or {}
    impact = pending.get("impact") or []
    if impact and impact[0].get("preview", {}).get("state") == "Counted":
        return pending
    return None


def revise_to_90_days(kube: ApiClient, policy: dict[str, Any], clock: Clock) -> str:
    """Announce today a revision cutting the category to 90 days, effective in a week."""
    effective = clock.today() + timedelta(days=7)
    assert update(kube, revised(policy, "90d", announced=clock.today().isoformat(),
                                effectiveDate=effective.isoformat())) == (200, "")
    return effective.isoformat()


def count_then_purge(
    control_plane: ControlPlane, kube: ApiClient, postgres: Postgres, clock: Clock,
    namespace: str, policy: dict[str, Any], tmp_path: Path, cut: int, kept: int, store: str,
) -> tuple[dict[str, Any], str, set[int]]:
    """Seed, revise, be the kubelet for the preview Job; the pending status, the effective
    date, and the ids the preview must have counted (an oracle in SQL, not the engine)."""
    name = policy["metadata"]["name"]
    wait_for(lambda: current(kube, name).get("status", {}).get("revisions"),
             timeout=60, message="the first revision recorded")
    table = f"impact_{uuid.uuid4().hex[:8]}"
    seed(postgres, table, cut, kept)
    store_following_the_category(control_plane, postgres, namespace, name, table, store)
    wait_condition(control_plane, namespace, store, "PolicyCompliant", "True")
    assert preview_jobs(control_plane, namespace, store) == []  # nothing pending, nothing to count
    before = rows(postgres.live, table, "inquired_at")
    effective = revise_to_90_days(kube, policy, clock)
    generation = current(kube, name)["metadata"]["generation"]

    jobs = wait_for(lambda: preview_jobs(control_plane, namespace, store) or None, timeout=60,
                    message="the store's impact-preview Job")
    (job,) = jobs
    assert job["metadata"]["name"] == f"dataward-{store}-preview-g{generation}"
    (owner,) = job["metadata"]["ownerReferences"]
    assert owner["kind"] == "PersonalDataStore" and owner["name"] == store
    outcome, runs = run_job(control_plane, namespace, job["metadata"]["name"], tmp_path)
    (run,) = runs
    assert run.argv[3:6] == ["purge", "--store", f"{namespace}/{store}"]
    assert run.argv[6] == "--connection-pin"
    assert run.argv[8:] == ["--dry-run", "--pending-generation", str(generation)]
    assert outcome == "Complete", run.stdout + run.stderr
    # The dry run deleted nothing.
    assert rows(postgres.live, table, "inquired_at") == before
    expected = oracle(postgres.live, table, "inquired_at", "90 days")
    assert len(expected) == cut + 1  # the 100-300-day-old rows and the 400-day-old one

    pending = wait_for(lambda: pending_impact(kube, name), timeout=60,
                       message="the counts in the policy's pending impact")
    (entry,) = pending["impact"]
    preview = entry["preview"]
    assert entry["store"] == f"{namespace}/{store}"
    assert entry["before"]["retention"] == "1y" and entry["after"]["retention"] == "90d"
    assert preview["rowsDeleted"] == len(expected) and preview["rowsArchived"] == 0
    assert preview["tables"][0]["table"].endswith(table)
    assert preview["tables"][0]["rowsDeleted"] == len(expected)
    assert preview["policyGeneration"] == generation
    body = get(control_plane, "pds", store, namespace)
    assert body is not None
    on_store = dict(body["status"]["impactPreview"])
    # The store's record of the render of the Job the operator made (not the policy's):
    # what the served Job and its pod run.
    recorded = render_of(on_store.pop("runs"))
    pods = json.loads(control_plane.kubectl(
        "get", "pods", "-n", namespace, "-l", f"{JOB_NAME_LABEL}={job['metadata']['name']}",
        "-o", "json").stdout)["items"]  # fmt: skip
    assert pods and recorded == (job_runs(job), pod_runs(pods[0]))
    assert on_store == preview
    # Resyncs every 5 s: still one Job for this store and generation.
    sleep_for(11)
    assert len(preview_jobs(control_plane, namespace, store)) == 1
    # Notice counts from the later of the announcement and when the operator saw it.
    assert pending["takesEffect"] >= f"{effective}T00:00:00Z"
    return pending, pending["takesEffect"], expected


def take_effect(clock: Clock, takes_effect: str) -> None:
    clock.set(datetime.fromisoformat(takes_effect.replace("Z", "+00:00")) + timedelta(minutes=1))


def purge_and_compare(
    control_plane: ControlPlane, postgres: Postgres, namespace: str, tmp_path: Path,
    counted: int, expected: set[int], store: str, acknowledge_store: bool = False,
) -> None:
    """A real purge Job of the store's CronJob deletes exactly the counted rows."""
    body = get(control_plane, "pds", store, namespace)
    assert body is not None
    table = body["spec"]["records"][0]["table"]
    before = rows(postgres.live, table, "inquired_at")
    job = create_job(control_plane, namespace, store)
    outcome, runs = run_job(control_plane, namespace, job, tmp_path)
    record = json.loads(runs[-1].termination_message)
    if acknowledge_store:
        # The purge's own large-cut hold still applies per store (its token names the new
        # policy generation): acknowledged as the purge's message says, then run again.
        assert record["result"] == "Held", record
        control_plane.kubectl("annotate", "pds", store, "-n", namespace,
                              f"{ACKNOWLEDGE}={record['acknowledgeToken']}", "--overwrite")
        sleep_for(1)
        job = create_job(control_plane, namespace, store)
        outcome, runs = run_job(control_plane, namespace, job, tmp_path)
        record = json.loads(runs[-1].termination_message)
    assert outcome == "Complete" and record["result"] == "Succeeded", record
    after = rows(postgres.live, table, "inquired_at")
    assert set(before) - set(after) == expected
    assert record["rowsDeleted"] == counted == len(expected)


def test_a_small_cut_is_counted_before_and_purged_exactly_after_its_date(
    control_plane: ControlPlane, kube: ApiClient, postgres: Postgres,
    impact_operator: OperatorProcess, policy: dict[str, Any], clock: Clock,
    impact_namespace: str, tmp_path: Path,
) -> None:
    name, namespace = policy["metadata"]["name"], impact_namespace
    pending, effective, expected = count_then_purge(
        control_plane, kube, postgres, clock, namespace, policy, tmp_path, cut=40, kept=25,
        store="small-cut")
    assert pending["impactVerdict"] == "Small"
    assert pending["impact"][0]["preview"]["largeCut"] is False
    assert revision_condition(current(kube, name)) == ("False", "NoticePeriod")

    take_effect(clock, effective)
    wait_for(lambda: revision_condition(current(kube, name)) == ("True", "Current") or None,
             timeout=60, message="the revision in force")
    wait_for(lambda: (get(control_plane, "pds", "small-cut", namespace) or {}).get("status", {})
             .get("impactPreview") is None or None, timeout=60,
             message="the store's preview cleared once nothing is pending")
    purge_and_compare(control_plane, postgres, namespace, tmp_path,
                      pending["impact"][0]["preview"]["rowsDeleted"], expected, "small-cut")


def test_a_large_cut_waits_past_its_date_for_the_acknowledgement(
    control_plane: ControlPlane, kube: ApiClient, postgres: Postgres,
    impact_operator: OperatorProcess, policy: dict[str, Any], clock: Clock,
    impact_namespace: str, tmp_path: Path,
) -> None:
    name, namespace = policy["metadata"]["name"], impact_namespace
    # 1,500 of 1,600 rows: more than 1,000 rows and 10% of the table.
    pending, effective, expected = count_then_purge(
        control_plane, kube, postgres, clock, namespace, policy, tmp_path, cut=1500, kept=98,
        store="large-cut")
    preview = pending["impact"][0]["preview"]
    assert pending["impactVerdict"] == "LargeCut" and preview["largeCut"] is True
    token = pending["acknowledgeToken"]

    take_effect(clock, effective)
    held = wait_for(
        lambda: (lambda b: b if revision_condition(b)[1] == "ImpactNotAcknowledged" else None)(
            current(kube, name)),
        timeout=60, message="the revision held past its date")
    assert held["status"]["revisions"]["pending"]["held"] == "LargeCut"
    message = next(c["message"] for c in held["status"]["conditions"]
                   if c["type"] == "RevisionInForce")
    assert f"{ACKNOWLEDGE}={token}" in message
    sleep_for(11)  # resyncs at the new time: still held, the store still judged by 1y
    assert revision_condition(current(kube, name))[1] == "ImpactNotAcknowledged"
    wait_condition(control_plane, namespace, "large-cut", "PolicyCompliant", "True")

    # A wrong token (the purge's store token shape) does not release it; the right one does.
    control_plane.kubectl("annotate", "privacypolicy", name, f"{ACKNOWLEDGE}=1y-g1-p1")
    sleep_for(6)
    assert revision_condition(current(kube, name))[1] == "ImpactNotAcknowledged"
    control_plane.kubectl("annotate", "privacypolicy", name, f"{ACKNOWLEDGE}={token}",
                          "--overwrite")
    wait_for(lambda: revision_condition(current(kube, name)) == ("True", "Current") or None,
             timeout=60, message="the acknowledged revision in force")
    purge_and_compare(control_plane, postgres, namespace, tmp_path, preview["rowsDeleted"],
                      expected, "large-cut", acknowledge_store=True)
