"""`kubectl dataward` on the real control plane, run as a user runs it: a separate process.

The plugin is run as `python -m dataward.plugin` (what the `kubectl-dataward` script calls)
with the admin kubeconfig, and once through the pinned kubectl's own plugin discovery. The
session operator (the chart's RBAC) reconciles the stores; the manual purge Jobs' pods are
run by the kubelet stand-in of test_purge (against real PostgreSQL where a purge must delete),
so the operator's reading of them is the real one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.purge.plan import ACKNOWLEDGE_ANNOTATION, acknowledge_token
from dataward.version import version
from e2e.fixtures_databases import Postgres
from e2e.fixtures_operator import (
    apply,
    condition,
    get,
    load_example,
    wait_condition,
)
from e2e.harness import ControlPlane
from e2e.test_purge import create_table, insert, last_purge_of, run_job, support_store

STORE = "examples/stores/support-inquiries.yaml"
NAME = "support-inquiries"
CRONJOB = f"dataward-{NAME}-purge"

pytestmark = pytest.mark.usefixtures("seed_policy_applied")


def ready_store(plane: ControlPlane, namespace: str) -> dict[str, Any]:
    """The example store and its credentials Secret, once the operator calls it Ready."""
    store = load_example(STORE, namespace)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "crm-postgres-purger", "namespace": namespace},
        "type": "Opaque",
        "stringData": {"username": "purger", "password": "not-a-real-password"},
    }
    apply(plane, secret, store)
    return wait_condition(plane, namespace, NAME, "Ready", "True")


def plugin(
    plane: ControlPlane, *args: str, kubeconfig: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`kubectl dataward ARGS` as a process; KUBECONFIG is the admin's unless `kubeconfig`."""
    env = {**plane.env(), "COLUMNS": "120"}
    if kubeconfig is not None:
        env.pop("KUBECONFIG")
        args = ("--kubeconfig", str(kubeconfig), *args)
    result = subprocess.run(
        [sys.executable, "-m", "dataward.plugin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_status_shows_ready_true_for_a_ready_store(
    control_plane: ControlPlane, namespace: str
) -> None:
    ready_store(control_plane, namespace)
    out = plugin(
        control_plane, "status", "-n", namespace, NAME, kubeconfig=control_plane.kubeconfig
    ).stdout
    lines = out.splitlines()
    assert lines[0] == f"PersonalDataStore {namespace}/{NAME}"
    assert f"  {'Ready':<19} True     AllControlsInForce" in lines
    for type_ in ("PolicyCompliant", "NetworkIsolated", "EncryptionKeyReady", "AccessRestricted"):
        assert any(line.startswith(f"  {type_:<19} True ") for line in lines), out
    assert "  Primary key 1, created " in out
    assert "  Next rotation " in out
    assert "  None has run yet." in out
    assert "  Nothing: every control is in force." in out
    # The namespace's listing (no STORE) shows the same store; -A finds it too.
    assert (
        f"PersonalDataStore {namespace}/{NAME}"
        in plugin(control_plane, "status", "-n", namespace).stdout
    )
    assert f"PersonalDataStore {namespace}/{NAME}" in plugin(control_plane, "status", "-A").stdout


def test_a_store_that_is_not_there_is_one_sentence(
    control_plane: ControlPlane, namespace: str
) -> None:
    result = plugin(control_plane, "status", "-n", namespace, "nope", check=False)
    assert result.returncode == 1
    assert result.stderr == f"error: PersonalDataStore nope not found in namespace {namespace}.\n"


def test_explain_prints_what_a_reason_means(control_plane: ControlPlane) -> None:
    out = plugin(control_plane, "explain", "OtherBindingGrantsSecrets").stdout
    assert out.startswith("OtherBindingGrantsSecrets: AccessRestricted=False\n")
    assert "Meaning:    A binding the store does not declare" in out
    assert "What to do: Remove that binding" in out


def test_purge_now_creates_a_job_owned_by_the_cronjob_and_the_operator_counts_it(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    ready_store(control_plane, namespace)
    out = plugin(control_plane, "purge", "now", "-n", namespace, NAME).stdout
    job_name = out.split()[0].removeprefix("job.batch/")
    assert f"created from cronjob/{CRONJOB}" in out
    job, cronjob = (
        get(control_plane, "job", job_name, namespace),
        get(control_plane, "cronjob", CRONJOB, namespace),
    )
    assert job is not None and cronjob is not None
    [owner] = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "CronJob",
        CRONJOB,
        cronjob["metadata"]["uid"],
    )
    assert (
        job["spec"]["template"]["spec"]["containers"][0]["command"]
        == (cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"])
    )
    # Be the kubelet: the database named by the example does not exist here, so the run
    # fails to connect; the operator must read that from this Job, which only counts when
    # the CronJob owns it.
    outcome, _ = run_job(control_plane, namespace, job_name, tmp_path)
    assert outcome == "Failed"
    store = wait_condition(
        control_plane, namespace, NAME, "PurgeSucceeded", "False", "ConnectionFailed", timeout=90
    )
    assert store["status"]["lastPurge"]["jobName"] == job_name
    status = plugin(control_plane, "status", "-n", namespace, NAME).stdout
    assert "PurgeSucceeded=False (ConnectionFailed): Check spec.database's address" in status
    assert f"Job {job_name}" in status


def test_acknowledge_sets_the_annotation_to_the_purges_token(
    control_plane: ControlPlane, namespace: str
) -> None:
    ready_store(control_plane, namespace)
    out = plugin(control_plane, "acknowledge", "-n", namespace, NAME, "--rows", "5000").stdout
    raw, policy_raw = (
        get(control_plane, "pds", NAME, namespace),
        get(control_plane, "privacypolicy", "clunix"),
    )
    assert raw is not None and policy_raw is not None
    token = acknowledge_token(parse_store(raw), parse_policy(policy_raw)) + "-n5000"
    assert raw["metadata"]["annotations"][ACKNOWLEDGE_ANNOTATION] == token
    assert f"annotated {ACKNOWLEDGE_ANNOTATION}={token}" in out
    # An annotation changes no generation: the store stays Ready and the token valid.
    assert raw["metadata"]["generation"] == int(token.split("-g")[1].split("-")[0])
    assert condition(raw, "Ready")["status"] == "True"
    again = plugin(control_plane, "acknowledge", "-n", namespace, NAME, "--rows", "5000").stdout
    assert "already acknowledged" in again


def test_version(control_plane: ControlPlane) -> None:
    assert plugin(control_plane, "--version").stdout == f"kubectl dataward {version()}\n"
    assert plugin(control_plane, "status", "--version").stdout == f"kubectl dataward {version()}\n"


def test_kubectl_finds_the_plugin_on_path_and_it_uses_the_current_kubeconfig(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """What the installed `kubectl-dataward` script does, through kubectl's plugin lookup."""
    shim = tmp_path / "kubectl-dataward"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dataward.plugin "$@"\n')
    shim.chmod(0o755)
    env = control_plane.env()
    env["PATH"] = os.pathsep.join([str(tmp_path), env["PATH"]])
    ready_store(control_plane, namespace)

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(control_plane.bin_dir / "kubectl"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    listed = kubectl("plugin", "list")
    assert str(shim) in listed.stdout, listed.stdout + listed.stderr
    assert kubectl("dataward", "--version").stdout == f"kubectl dataward {version()}\n"
    result = kubectl("dataward", "status", "-n", namespace, NAME)
    assert result.returncode == 0, result.stderr
    assert f"  {'Ready':<19} True     AllControlsInForce" in result.stdout.splitlines()


def test_a_held_large_purge_is_released_by_acknowledge_and_the_next_run_deletes(
    control_plane: ControlPlane, namespace: str, postgres: Postgres, tmp_path: Path
) -> None:
    """The on-call story: status says a purge is held, acknowledge, purge now, rows gone."""
    table = f"support_inquiries_{uuid.uuid4().hex[:8]}"
    edge = datetime.now(UTC) - timedelta(days=180)
    create_table(postgres.live, table, "inquired_at")
    # 1,500 expired rows of 1,600: past both bounds of the large-cut gate (1,000 rows, 10%).
    insert(
        postgres.live,
        table,
        "inquired_at",
        [(i, edge - timedelta(days=1, minutes=i)) for i in range(1500)]
        + [(10_000 + i, edge + timedelta(days=1, minutes=i)) for i in range(100)],
    )
    support_store(control_plane, postgres, namespace, table)
    wait_condition(control_plane, namespace, NAME, "Ready", "True")

    first = plugin(control_plane, "purge", "now", "-n", namespace, NAME).stdout.split()[0]
    first = first.removeprefix("job.batch/")
    assert run_job(control_plane, namespace, first, tmp_path)[0] == "Complete"
    store = last_purge_of(control_plane, namespace, NAME, first)
    assert store["status"]["lastPurge"]["result"] == "Held"
    wait_condition(control_plane, namespace, NAME, "PurgeSucceeded", "True", "PurgeHeld")
    status = plugin(control_plane, "status", "-n", namespace, NAME).stdout
    assert "  Held (LargePurgeNotAcknowledged), Job " in status
    assert f"    $ kubectl dataward acknowledge -n {namespace} {NAME}" in status.splitlines()
    assert postgres.live.query(f"SELECT count(*) FROM {table}") == [(1600,)]

    acknowledged = plugin(control_plane, "acknowledge", "-n", namespace, NAME).stdout
    assert "No purge is held now" not in acknowledged  # it read the hold, and its token matched
    # 1,500 rows held, released up to 2,500 (a tenth more, at least the gate's 1,000 rows).
    assert "up to 2500 expired rows a table" in acknowledged

    second = plugin(control_plane, "purge", "now", "-n", namespace, NAME).stdout.split()[0]
    second = second.removeprefix("job.batch/")
    assert run_job(control_plane, namespace, second, tmp_path)[0] == "Complete"
    last = last_purge_of(control_plane, namespace, NAME, second)["status"]["lastPurge"]
    assert (last["result"], last["rowsDeleted"]) == ("Succeeded", 1500), last
    assert postgres.live.query(f"SELECT count(*) FROM {table}") == [(100,)]
    wait_condition(control_plane, namespace, NAME, "PurgeSucceeded", "True", "Succeeded")
