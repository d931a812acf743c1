"""What the operator records of its purge CronJob in place, against what the real controllers
make of it.

A store an earlier version reconciled has no `status.purgeRenders`: before the operator
changes its CronJob, it records the render of the CronJob in place (`expected_runs` of its
job template, as the API server serves it), so a run that CronJob started is still the
store's. That holds only if the digest of the served job template equals the digest of what
a Job the CronJob controller made from it runs (the API server fills other defaults into
each), and of what the pod the Job controller made runs. Here the CronJob is the operator's,
rendered and applied by the session operator; its schedule fires every minute, so the Job
is the CronJob controller's own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dataward.checks.purge_runs import expected_runs, job_runs, pod_runs, render_of
from e2e.fixtures_operator import apply, get, load_example
from e2e.harness import ControlPlane, wait_for
from e2e.kubelet import JOB_NAME_LABEL

STORE = "support-inquiries"
CRONJOB = f"dataward-{STORE}-purge"

pytestmark = pytest.mark.usefixtures("seed_policy_applied")


def _items(plane: ControlPlane, kind: str, namespace: str, *selector: str) -> list[Any]:
    found = plane.kubectl("get", kind, "-n", namespace, *selector, "-o", "json").stdout
    return list(json.loads(found)["items"])


def test_the_served_cronjobs_render_is_what_its_jobs_and_pods_run(
    control_plane: ControlPlane, namespace: str
) -> None:
    secret = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "crm-postgres-purger", "namespace": namespace},
        "stringData": {"username": "purger", "password": "not-used-here"},
    }  # fmt: skip
    store = load_example(f"examples/stores/{STORE}.yaml", namespace)
    store["spec"]["purge"]["schedule"] = "* * * * *"
    apply(control_plane, secret, store)

    def unsuspended() -> dict[str, Any] | None:
        cronjob = get(control_plane, "cronjob", CRONJOB, namespace)
        return cronjob if cronjob and cronjob["spec"].get("suspend") is False else None

    wait_for(unsuspended, timeout=60, message=f"CronJob {CRONJOB} in place, not suspended")
    # The CronJob controller starts a run at the next minute.
    (job,) = wait_for(
        lambda: _items(control_plane, "jobs", namespace),
        timeout=150,
        message=f"a Job of CronJob {CRONJOB}",
    )
    assert job["metadata"]["ownerReferences"][0]["name"] == CRONJOB
    name = job["metadata"]["name"]
    (pod,) = wait_for(
        lambda: _items(control_plane, "pods", namespace, "-l", f"{JOB_NAME_LABEL}={name}"),
        timeout=60,
        message=f"the pod of Job {name}",
    )
    cronjob = get(control_plane, "cronjob", CRONJOB, namespace)
    assert cronjob is not None
    template = cronjob["spec"]["jobTemplate"]["spec"]
    assert "completions" not in template and job["spec"]["completions"] == 1  # not trivial

    live = expected_runs(template)
    assert live == (job_runs(job), pod_runs(pod))
    # The operator's own record of its render (from what it renders, not what is served).
    status = (get(control_plane, "pds", STORE, namespace) or {}).get("status") or {}
    assert render_of((status.get("purgeRenders") or [None])[0]) == live
