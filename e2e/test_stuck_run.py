"""A purge run of the operator's CronJob stuck past its deadline is named (PurgeRunStuck).

A run counts only if it runs what the CronJob describes (checks/purge_runs.py), so the stuck
run is a faithful copy of the CronJob's job template, started by the real Job controller;
its pod never runs (the control plane has no kubelet). The operator runs on a test clock of
its own, serving only this module's namespace, and the clock is moved past the run's
deadline: the built-in Job controller sets `startTime` (immutable) to the real now.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from e2e.fixtures_api import install_crds
from e2e.fixtures_operator import (
    OperatorProcess,
    apply,
    clocked_operator,
    condition,
    get,
    load_example,
    own_namespace,
    wait_condition,
)
from e2e.harness import ControlPlane, wait_for
from e2e.test_operator import ready_store
from e2e.test_policy_revisions import Clock

CRONJOB = "dataward-support-inquiries-purge"


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> Clock:
    return Clock(tmp_path_factory.mktemp("stuck-clock") / "now")


@pytest.fixture(scope="module")
def stuck_namespace(control_plane: ControlPlane) -> Iterator[str]:
    with own_namespace(control_plane, "e2e-stuck") as name:
        yield name


@pytest.fixture(scope="module")
def stuck_operator(
    control_plane: ControlPlane,
    clock: Clock,
    stuck_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
    session_operator_paused: None,
) -> Iterator[OperatorProcess]:
    install_crds(control_plane)
    apply(control_plane, load_example("examples/policy.yaml"))
    log = tmp_path_factory.mktemp("stuck") / "operator.log"
    with clocked_operator(
        control_plane, clock.path, stuck_namespace, "dataward-stuck-e2e", log
    ) as process:
        yield process


def test_a_purge_run_stuck_past_its_deadline_is_named(
    control_plane: ControlPlane, clock: Clock, stuck_namespace: str,
    stuck_operator: OperatorProcess,
) -> None:  # fmt: skip
    namespace = stuck_namespace
    ready_store(control_plane, namespace)
    cronjob = get(control_plane, "cronjob", CRONJOB, namespace)
    assert cronjob is not None
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "stuck-purge", "namespace": namespace,
            "labels": cronjob["spec"]["jobTemplate"]["metadata"]["labels"],
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": CRONJOB,
                                 "uid": cronjob["metadata"]["uid"], "controller": True}],
        },
        "spec": copy.deepcopy(cronjob["spec"]["jobTemplate"]["spec"]),
    }  # fmt: skip
    apply(control_plane, job)
    wait_for(
        lambda: ((get(control_plane, "job", "stuck-purge", namespace) or {}).get("status") or {})
        .get("startTime"),
        timeout=60, message="the Job controller started the run",
    )  # fmt: skip
    # Two hours on: past the run's deadline (3600 s) and the grace (600 s), before any
    # scheduled run of the day would be missed.
    clock.set(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "PurgeSucceeded", "False", "PurgeRunStuck"
    )
    assert "stuck-purge" in condition(store, "PurgeSucceeded")["message"]
