"""A careless admin cuts the operator's list/watch on its stores: Ready leaves True, readiness
fails, and both come back once the permission does (controller/staleness.py).

The operator runs under the chart's RBAC with a short grace period (`--stale-grace-seconds`)
and its metrics port open; the test edits the chart's ClusterRole as `kubectl edit` would.
"""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e.fixtures_api import install_crds
from e2e.fixtures_operator import (
    OperatorProcess,
    apply,
    chart_rbac,
    condition,
    get,
    install_operator_identity,
    load_example,
    wait_condition,
)
from e2e.harness import ControlPlane, free_port, wait_for
from e2e.test_operator import make_store

GRACE_SECONDS = 10
STORE = "support-inquiries"


class Probe:
    """The operator's metrics port, as the kubelet and Prometheus see it."""

    def __init__(self, port: int) -> None:
        self.port = port

    def get(self, path: str) -> tuple[int, str]:
        try:
            url = f"http://127.0.0.1:{self.port}{path}"
            with urllib.request.urlopen(url, timeout=5) as answer:
                return int(answer.status), answer.read().decode()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read().decode()
        except OSError:
            return 0, ""  # not serving yet


@pytest.fixture(scope="module")
def probe(
    control_plane: ControlPlane,
    tmp_path_factory: pytest.TempPathFactory,
    session_operator_paused: None,
) -> Iterator[tuple[OperatorProcess, Probe]]:
    """An operator of this module's own: the session's arguments, a short grace period and a
    metrics port. The session operator, if an earlier module started it, is stopped meanwhile:
    it would hold the Lease (and judge the stores with the default grace period)."""
    install_crds(control_plane)
    kubeconfig, account = install_operator_identity(control_plane)
    port = free_port()
    log = tmp_path_factory.mktemp("stale") / "operator.log"
    process = OperatorProcess(control_plane, kubeconfig, account, log)
    args = process.session_args()
    args[args.index("--metrics-port") + 1] = str(port)
    process.args = [*args, "--stale-grace-seconds", str(GRACE_SECONDS)]
    apply(control_plane, load_example("examples/policy.yaml"))
    process.start()
    try:
        yield process, Probe(port)
    finally:
        process.stop()
        # The chart's RBAC as it was, whatever the test left.
        control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                              input=yaml.safe_dump_all(chart_rbac()))  # fmt: skip


def _operator_role() -> dict[str, Any]:
    (role,) = [
        d for d in chart_rbac() if d["kind"] == "ClusterRole"
        and any("personaldatastores" in (r.get("resources") or []) for r in d["rules"])
    ]  # fmt: skip
    return role


def _without_list_and_watch_on_stores(role: dict[str, Any]) -> dict[str, Any]:
    edited = copy.deepcopy(role)
    for rule in edited["rules"]:
        if rule.get("resources") == ["personaldatastores"]:
            rule["verbs"] = [v for v in rule["verbs"] if v not in ("list", "watch")]
    assert edited != role
    return edited


def test_revoking_the_operators_list_and_watch_on_stores_makes_ready_unknown_until_restored(
    control_plane: ControlPlane, probe: tuple[OperatorProcess, Probe], namespace: str
) -> None:
    operator, health = probe
    make_store(control_plane, namespace)
    wait_condition(control_plane, namespace, STORE, "Ready", "True", timeout=120)
    wait_for(lambda: health.get("/readyz") == (200, "ok\n"), timeout=30,
             message="/readyz answers ok")  # fmt: skip

    # A careless admin edits the operator's ClusterRole (kubectl replace, as `kubectl edit`).
    role = _operator_role()
    control_plane.kubectl("replace", "-f", "-",
                          input=json.dumps(_without_list_and_watch_on_stores(role)))  # fmt: skip
    store = wait_condition(control_plane, namespace, STORE, "Ready", "Unknown",
                           "StoreCacheUnavailable", timeout=GRACE_SECONDS + 50)  # fmt: skip
    ready = condition(store, "Ready")
    assert "403" in ready["message"] and "AllControlsInForce" in ready["message"]
    assert "not-a-real-password" not in json.dumps(store)
    # Every control last True is no longer vouched for.
    statuses = {c["type"]: c["status"] for c in store["status"]["conditions"]}
    assert set(statuses.values()) == {"Unknown"}, statuses
    status, body = health.get("/readyz")
    assert status == 503 and "PersonalDataStore" in body, (status, body)
    assert health.get("/healthz")[0] == 200  # alive: a restart would mend nothing
    metrics = health.get("/metrics")[1]
    assert 'dataward_cache_synced{kind="PersonalDataStore"} 0.0' in metrics
    exported = (f'dataward_store_condition{{namespace="{namespace}",status="Unknown",'
                f'store="{STORE}",type="Ready"}} 1.0')  # labels as exposed: sorted
    assert exported in metrics, [line for line in metrics.splitlines() if STORE in line]

    # The permission back: a real reconcile makes it True again, and the operator ready.
    apply(control_plane, role)
    wait_condition(control_plane, namespace, STORE, "Ready", "True", "AllControlsInForce",
                   timeout=60)  # fmt: skip
    wait_for(lambda: health.get("/readyz") == (200, "ok\n"), timeout=30,
             message="/readyz ok again")  # fmt: skip
    again = get(control_plane, "pds", STORE, namespace)
    assert again is not None
    assert {c["status"] for c in again["status"]["conditions"]} == {"True"}
    assert "cache of PersonalDataStore failed: HTTP 403" in operator.logs()
