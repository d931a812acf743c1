"""Notice periods for policy revisions, on the real control plane.

The seed policy promises notice "at least 7 days prior to the revision" (30 days when users'
rights change significantly). So a revision applied today is enforced only from its
effective date: the operator keeps judging the stores, and the purge keeps deleting, by the
revision in force, and says in the policy's status which one is pending and when it takes
effect. The operator runs with DATAWARD_TEST_CLOCK_FILE: the test moves its "now" a month
on by rewriting a file, never by sleeping. And the chart's admission policy refuses what a
careless user would apply: a changed retention under the old effective date, a week's
notice for a widening revision, `6mo` for `180d` taken as shorter because it reads shorter,
an emergency override left over from the revision before.
"""

from __future__ import annotations

import copy
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from dataward.purge.source import ApiSource
from e2e.fixtures_api import seed_policy, wait_admission_policies_gone
from e2e.fixtures_operator import (
    OperatorProcess,
    apply,
    clocked_operator,
    get,
    load_example,
    sleep_for,
    wait_condition,
)
from e2e.harness import ControlPlane, wait_for
from e2e.tools import tool

pytestmark = pytest.mark.usefixtures("crds_installed")

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "dataward"
RELEASE = RELEASE_NAMESPACE = "dataward-revisions-e2e"
GROUP, VERSION, PLURAL = "dataward.io", "v1alpha1", "privacypolicies"
CATEGORY = "technical-support-inquiry"
CRONJOB = "dataward-support-inquiries-purge"
IN_FORCE_SECONDS = 30  # the API server loads a new admission policy moments after it is made


def helm(plane: ControlPlane, *args: str, check: bool = True) -> None:
    try:
        binary = tool("helm")
    except RuntimeError as error:
        pytest.fail(f"helm is missing: run `make tools` ({error})")
    result = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=180,
                            env=plane.env(), check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="module")
def release(control_plane: ControlPlane, kube: ApiClient) -> Iterator[str]:
    """The chart (its admission policies are what matter here); uninstalled at the end."""
    helm(control_plane, "install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
         "--create-namespace", "--wait=false")
    try:
        yield RELEASE
    finally:
        helm(control_plane, "uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE,
             "--ignore-not-found", check=False)
        wait_admission_policies_gone(kube, IN_FORCE_SECONDS)


class Clock:
    """The operator's clock: a file holding an instant, which the test rewrites."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.set(datetime.now(UTC).replace(microsecond=0))

    def set(self, instant: datetime) -> None:
        self.now = instant
        self.path.write_text(instant.strftime("%Y-%m-%dT%H:%M:%SZ"))

    def today(self) -> date:
        return self.now.date()


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> Clock:
    return Clock(tmp_path_factory.mktemp("clock") / "now")


@pytest.fixture(scope="module")
def revision_namespace(control_plane: ControlPlane) -> Iterator[str]:
    """The one namespace the module's operator serves (made before it starts)."""
    name = f"e2e-revisions-{uuid.uuid4().hex[:6]}"
    control_plane.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def revision_operator(control_plane: ControlPlane, clock: Clock, revision_namespace: str,
                      tmp_path_factory: pytest.TempPathFactory,
                      session_operator_paused: None) -> Iterator[OperatorProcess]:
    """An operator of its own on the test clock, serving only `revision_namespace`'s stores
    (moving its clock a month on must not touch other modules' stores)."""
    with clocked_operator(control_plane, clock.path, revision_namespace,
                          "dataward-revisions-e2e",
                          tmp_path_factory.mktemp("revisions") / "operator.log") as process:
        yield process


@pytest.fixture
def policy(kube: ApiClient) -> Iterator[dict[str, Any]]:
    """The seed policy (examples/policy.yaml: effective 2021-04-26) under a name of its own,
    as the API holds it."""
    with seed_policy(kube, "revisions") as name:
        yield current(kube, name)


def current(kube: ApiClient, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(kube).get_cluster_custom_object(
        GROUP, VERSION, PLURAL, name)
    return found


def revised(body: dict[str, Any], period: str | None = None,
            **schedule: Any) -> dict[str, Any]:
    """`body` with CATEGORY's retention set to `period` and the schedule fields given."""
    new = copy.deepcopy(body)
    for category in new["spec"]["categories"]:
        if category["name"] == CATEGORY and period is not None:
            category["retention"]["period"] = period
    for key, value in schedule.items():
        if value is None:
            new["spec"].pop(key, None)
        else:
            new["spec"][key] = value
    return new


def update(kube: ApiClient, body: dict[str, Any], dry_run: bool = False) -> tuple[int, str]:
    """Replace the policy (as the admin, who passes RBAC); (HTTP status, message).

    The operator writes the policy's status between our read and our replace now and then
    (a 409 on resourceVersion): read again and retry, as kubectl edit would.
    """
    for _ in range(20):
        fresh = current(kube, body["metadata"]["name"])
        sent = {**fresh, "spec": body["spec"]}
        try:
            client.CustomObjectsApi(kube).replace_cluster_custom_object(
                GROUP, VERSION, PLURAL, body["metadata"]["name"], sent,
                **({"dry_run": "All"} if dry_run else {}))
        except ApiException as error:
            if error.status == 409:
                continue
            return error.status, str(error.body)
        return 200, ""
    raise AssertionError("the policy kept changing under 20 replaces")


def days(n: int, clock: Clock) -> str:
    return (clock.today() + timedelta(days=n)).isoformat()


def refused(attempt: Callable[[], tuple[int, str]]) -> str:
    """The refusal's message; waits until the admission policy is in force."""
    answer = wait_for(lambda: (lambda r: r if r[0] != 200 else None)(attempt()),
                      timeout=IN_FORCE_SECONDS, interval=1, message="a refusal")
    status, message = answer
    assert status == 422, message
    return message


def test_admission_refuses_a_revision_without_its_notice(
    kube: ApiClient, release: str, policy: dict[str, Any], clock: Clock
) -> None:
    today = clock.today().isoformat()
    # Retention changed, the seed's 2021-04-26 left as it was, no announcement: careless.
    message = refused(lambda: update(kube, revised(policy, "6mo"), dry_run=True))
    assert "spec.announced" in message and "new revision" in message
    # Announced today, effective in 3 days: a week is the least.
    message = refused(lambda: update(
        kube, revised(policy, "6mo", announced=today, effectiveDate=days(3, clock)), True))
    assert "gives 3 days of notice; this revision needs 7" in message
    # Longer retention with a week's notice: widening needs 30 days.
    message = refused(lambda: update(
        kube, revised(policy, "2y", announced=today, effectiveDate=days(10, clock)), True))
    assert "needs 30 because it widens" in message
    # A new purpose widens too (a careless rule only looks at periods).
    purposes = revised(policy, announced=today, effectiveDate=days(10, clock))
    next(c for c in purposes["spec"]["categories"] if c["name"] == CATEGORY)["purposes"].append(
        "profiling")
    assert "needs 30" in refused(lambda: update(kube, purposes, True))
    # Effective before the revision in force: a revision cannot take effect in the past.
    message = refused(lambda: update(
        kube, revised(policy, "6mo", announced="2020-01-01", effectiveDate="2020-03-01"), True))
    assert "must take effect after the revision in force" in message

    # Admitted: a narrowing revision with a week's notice, and an emergency with none.
    assert update(kube, revised(policy, "6mo", announced=today,
                                effectiveDate=days(7, clock)), True) == (200, "")
    assert update(kube, revised(policy, "2y", announced=today,
                                effectiveDate=days(30, clock)), True) == (200, "")
    emergency = {"reason": "Court order 2026-77 requires destruction at once"}
    assert update(kube, revised(policy, "6mo", announced=today, effectiveDate=today,
                                emergency=emergency), True) == (200, "")
    # A metadata-only change is no revision.
    labelled = current(kube, policy["metadata"]["name"])
    labelled["metadata"].setdefault("labels", {})["team"] = "privacy"
    client.CustomObjectsApi(kube).replace_cluster_custom_object(
        GROUP, VERSION, PLURAL, policy["metadata"]["name"], labelled, dry_run="All")


def test_180_days_to_6_months_is_widening_whatever_the_text_says(
    kube: ApiClient, release: str, policy: dict[str, Any], clock: Clock
) -> None:
    """180d -> 6mo: 6 months are 181 to 184 days, so 30 days' notice; the reverse needs 7."""
    base = revised(policy, "180d", emergency={"reason": "e2e: set up the revision in force"})
    assert update(kube, base) == (200, "")
    today = clock.today().isoformat()
    message = refused(lambda: update(
        kube, revised(base, "6mo", announced=today, effectiveDate=days(10, clock),
                      emergency=None), True))
    assert "needs 30" in message
    # A leftover override (the one already in the policy) does not excuse a short notice.
    message = refused(lambda: update(
        kube, revised(base, "90d", announced=today, effectiveDate=days(2, clock)), True))
    assert "needs 7" in message


def in_force_retention(kube: ApiClient, store: str, namespace: str) -> str:
    """The category's retention the purge job would delete by: its own API source, reading
    the real API (as the admin here; the Job reads with its own token)."""
    source = ApiSource(namespace, store)
    source._api = client.CustomObjectsApi(kube)
    try:
        _, policy = source.load()
    finally:
        source.close()
    assert policy is not None
    category = policy.category(CATEGORY)
    assert category is not None
    return str(category.retention.period)


def revision_condition(body: dict[str, Any]) -> tuple[str, str]:
    for item in (body.get("status") or {}).get("conditions") or []:
        if item["type"] == "RevisionInForce":
            return item["status"], item["reason"]
    return "", ""


def test_a_revision_applied_today_is_enforced_only_from_its_effective_date(
    control_plane: ControlPlane, kube: ApiClient, release: str, revision_operator: OperatorProcess,
    policy: dict[str, Any], clock: Clock, revision_namespace: str
) -> None:
    name, namespace = policy["metadata"]["name"], revision_namespace
    first = wait_for(lambda: current(kube, name).get("status", {}).get("revisions"),
                     timeout=60, message="the first revision recorded")
    assert first["inForce"]["effectiveDate"] == "2021-04-26" and "pending" not in first
    generation = first["inForce"]["generation"]

    store = load_example("examples/stores/support-inquiries.yaml", namespace, policy=name,
                         deletionPolicy="Delete")  # Retain needs a protected namespace
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": store["spec"]["database"]["credentialsSecret"],
                           "namespace": namespace},
              "stringData": {"username": "purger", "password": "not-a-real-password"}}
    apply(control_plane, secret, store)  # retention 180d in a category allowing 1y
    wait_condition(control_plane, namespace, "support-inquiries", "PolicyCompliant", "True")

    # Announced today, the category cut to 90 days (shorter than the store's 180d) in 30 days.
    effective = clock.today() + timedelta(days=30)
    assert update(kube, revised(policy, "90d", announced=clock.today().isoformat(),
                                effectiveDate=effective.isoformat())) == (200, "")
    pending = wait_for(lambda: current(kube, name)["status"]["revisions"].get("pending"),
                       timeout=60, message="the pending revision in the policy's status")
    assert pending["generation"] == generation + 1 and pending["noticeDays"] == 7
    impact = wait_for(lambda: current(kube, name)["status"]["revisions"]["pending"].get("impact"),
                      timeout=30, message="the pending revision's impact on the store")
    # Under 90d the store would not comply, so its purge stops: no preview Job, no rows.
    assert impact[0].pop("preview")["state"] == "NotRun"
    assert impact == [{"store": f"{namespace}/support-inquiries",
                       "before": {"retention": "180d", "outcome": "Compliant"},
                       "after": {"retention": "180d", "outcome": "RetentionTooLong"}}]
    assert pending["takesEffect"] == f"{effective.isoformat()}T00:00:00Z"
    body = current(kube, name)
    assert body["status"]["revisions"]["inForce"]["generation"] == generation
    assert revision_condition(body) == ("False", "NoticePeriod")
    printed = control_plane.kubectl("get", "ppol", name).stdout
    assert f"{effective.isoformat()}T00:00:00Z" in printed

    # Still judged and purged by the revision in force, a day before it takes effect.
    clock.set(datetime.combine(effective, datetime.min.time(), UTC) - timedelta(days=1))
    sleep_for(12)  # several resyncs (every 5 s) at the new time: none may apply the revision
    wait_condition(control_plane, namespace, "support-inquiries", "PolicyCompliant", "True")
    cronjob = get(control_plane, "cronjob", CRONJOB, namespace)
    assert cronjob is not None and cronjob["spec"]["suspend"] is False
    assert in_force_retention(kube, "support-inquiries", namespace) == "1y"

    # The effective date passes: the revision is in force, the store judged by it.
    clock.set(datetime.combine(effective, datetime.min.time(), UTC) + timedelta(minutes=1))
    wait_for(lambda: revision_condition(current(kube, name)) == ("True", "Current") or None,
             timeout=60, message="the revision in force")
    revisions = current(kube, name)["status"]["revisions"]
    assert revisions["inForce"]["generation"] == generation + 1 and "pending" not in revisions
    wait_condition(control_plane, namespace, "support-inquiries", "PolicyCompliant", "False",
                   "RetentionTooLong", timeout=60)
    assert wait_for(lambda: (get(control_plane, "cronjob", CRONJOB, namespace) or {})
                    .get("spec", {}).get("suspend") is True or None, timeout=30,
                    message="the purge suspended under the new revision")
    assert in_force_retention(kube, "support-inquiries", namespace) == "90d"
    # Read as JSON: the client's model refuses an Event without eventTime, which is what a
    # core/v1 Event (another component's, in default) looks like through events.k8s.io.
    listed = json.loads(client.EventsV1Api(kube).list_namespaced_event(
        "default", _preload_content=False).data)
    reasons = {e.get("reason") for e in listed.get("items") or ()
               if (e.get("regarding") or {}).get("name") == name}
    assert {"RevisionPending", "RevisionInForce"} <= reasons
