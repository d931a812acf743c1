"""Children under 14 at admission, on the real API server with the chart's policies installed.

A category marked `children` (the seed policy's membership clause: a child's data is processed
only to confirm the legal representative's consent) makes every store of it say where each
table keeps the birth date (or age) and the consent: the API server refuses a store that
does not (the chart's store-within-policy ValidatingAdmissionPolicy), and the CRD refuses a
malformed declaration and an unbounded grace period. What the purge then does is tested on
real databases in tests/purge/test_children.py and tests/purge/test_preview.py.
"""

from __future__ import annotations

import copy
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from e2e.fixtures_api import wait_admission_policies_gone
from e2e.harness import ControlPlane, wait_for
from e2e.tools import tool

pytestmark = pytest.mark.usefixtures("crds_installed")

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "dataward"
RELEASE, RELEASE_NAMESPACE = "dataward-children-e2e", "dataward-children-e2e"
GROUP, VERSION = "dataward.io", "v1alpha1"
IN_FORCE_SECONDS = 30
CHILD_COLUMNS = {"birthDateColumn": "born_on", "consentColumn": "guardian_consented_at"}


def helm(plane: ControlPlane, *args: str, check: bool = True) -> None:
    try:
        binary = tool("helm")
    except RuntimeError as error:
        pytest.fail(f"helm is missing: run `make tools` ({error})")
    result = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=180,
                            env=plane.env(), check=False)  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="module")
def release(control_plane: ControlPlane, kube: ApiClient) -> Iterator[str]:
    helm(control_plane, "install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
         "--create-namespace", "--wait=false")  # fmt: skip
    try:
        yield RELEASE
    finally:
        helm(control_plane, "uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE,
             "--ignore-not-found", check=False)  # fmt: skip
        wait_admission_policies_gone(kube, IN_FORCE_SECONDS)


def children_policy(name: str, **children: str) -> dict[str, Any]:
    """The seed policy with a membership category that may hold children's data."""
    body: dict[str, Any] = yaml.safe_load((REPO / "examples" / "policy.yaml").read_text())
    body["metadata"] = {"name": name}
    body["spec"]["categories"].append({
        "name": "membership", "purposes": ["membership"],
        "description": "Homepage membership; children under 14 only to confirm the legal "
                       "representative's consent",
        "retention": {"period": "1y", "trigger": "withdrawn"},
        "children": children,
    })  # fmt: skip
    return body


@pytest.fixture(scope="module")
def policy_name(kube: ApiClient, release: str) -> Iterator[str]:
    name = f"children-e2e-{uuid.uuid4().hex[:6]}"
    api = client.CustomObjectsApi(kube)
    api.create_cluster_custom_object(GROUP, VERSION, "privacypolicies", children_policy(name))
    try:
        yield name
    finally:
        api.delete_cluster_custom_object(GROUP, VERSION, "privacypolicies", name)


@pytest.fixture(scope="module")
def namespace(kube: ApiClient, release: str) -> Iterator[str]:
    name = f"children-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        core.delete_namespace(name)


def store(policy: str, *records: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "stores" / "support-inquiries.yaml").read_text()
    )
    body["metadata"] = {"name": f"members-{uuid.uuid4().hex[:6]}"}
    body["spec"]["policy"] = policy
    body["spec"]["category"] = "membership"
    body["spec"].pop("retention", None)
    body["spec"]["deletionPolicy"] = "Delete"  # no key ring to protect: a plain namespace
    body["spec"]["records"] = list(records)
    return body


def record(table: str, children: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"table": table, "timestampColumn": "joined_at", "keyColumns": ["id"]}
    if children is not None:
        out["children"] = children
    return out


def create(kube: ApiClient, namespace: str, body: dict[str, Any]) -> tuple[int, str]:
    try:
        client.CustomObjectsApi(kube).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "personaldatastores", copy.deepcopy(body)
        )
    except ApiException as error:
        return int(error.status), str(error.body)
    return 201, ""


def test_the_api_server_fills_in_the_default_grace_of_five_days(
    kube: ApiClient, policy_name: str
) -> None:
    stored = client.CustomObjectsApi(kube).get_cluster_custom_object(
        GROUP, VERSION, "privacypolicies", policy_name
    )
    (membership,) = [c for c in stored["spec"]["categories"] if c["name"] == "membership"]
    assert membership["children"] == {"consentGrace": "5d"}


@pytest.mark.parametrize("grace", ["31d", "1mo", "2w"])
def test_an_unbounded_grace_is_refused(kube: ApiClient, release: str, grace: str) -> None:
    body = children_policy(f"children-bad-{uuid.uuid4().hex[:6]}", consentGrace=grace)
    with pytest.raises(ApiException) as caught:
        client.CustomObjectsApi(kube).create_cluster_custom_object(
            GROUP, VERSION, "privacypolicies", body
        )
    assert caught.value.status == 422
    assert "consentGrace must be whole days from 0d to 30d" in str(caught.value.body)


def test_a_childrens_store_without_the_columns_is_refused_naming_the_tables(
    kube: ApiClient, policy_name: str, namespace: str
) -> None:
    bad = store(policy_name, record("members", CHILD_COLUMNS), record("member_events"),
                record("member_logins"))  # fmt: skip

    def attempt() -> tuple[int, str] | None:
        status, message = create(kube, namespace, bad)
        if status == 201:  # the admission policies are not in force yet: undo and retry
            client.CustomObjectsApi(kube).delete_namespaced_custom_object(
                GROUP, VERSION, namespace, "personaldatastores", bad["metadata"]["name"]
            )
            return None
        return status, message

    status, message = wait_for(attempt, timeout=IN_FORCE_SECONDS, interval=0.5,
                               message="the children's admission rule in force")  # fmt: skip
    assert status == 422, message
    assert "may hold data of children under 14" in message
    assert "missing for: member_events, member_logins" in message

    events = record("member_events", {"ageColumn": "age", "consentColumn": "consented"})
    good = store(policy_name, record("members", CHILD_COLUMNS), events)
    assert create(kube, namespace, good) == (201, "")


def test_a_declaration_with_both_or_neither_age_column_is_refused(
    kube: ApiClient, policy_name: str, namespace: str
) -> None:
    for children in (
        {"consentColumn": "c"},
        {"birthDateColumn": "b", "ageColumn": "a", "consentColumn": "c"},
    ):
        status, message = create(kube, namespace, store(policy_name, record("t", children)))
        assert status == 422, message
        assert "exactly one of birthDateColumn and ageColumn" in message
    status, message = create(
        kube, namespace, store(policy_name, record("t", {"birthDateColumn": "b;drop"}))
    )
    assert status == 422 and "consentColumn" in message


def test_kubectl_explain_says_what_the_childrens_fields_do(control_plane: ControlPlane) -> None:
    def explain(field: str) -> str:
        result = control_plane.kubectl("explain", field, check=False)
        return " ".join(result.stdout.split()) if result.returncode == 0 else ""

    text = wait_for(lambda: explain("pds.spec.records.children"), timeout=IN_FORCE_SECONDS,
                    interval=0.5, message="kubectl explain")  # fmt: skip
    assert "under 14" in text and "birthDateColumn" in text and "consentColumn" in text
    grace = explain("privacypolicies.spec.categories.children.consentGrace")
    assert "Default 5d, a choice" in grace
