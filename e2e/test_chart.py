"""A platform team installs Dataward with Helm into a real control plane, and lives with it.

The chart is installed with `helm install` (its pod never runs: there is no kubelet); the
admission policies are then exercised by real non-admin users, and `helm uninstall` must
leave key rings behind. kubeconform validates the rendered chart against schemas made here
from this API server's own OpenAPI document and from crds/ (nothing is downloaded).
"""

from __future__ import annotations

import copy
import json
import re
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

from e2e.harness import ControlPlane, wait_for
from e2e.tools import tool

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "dataward"
# Not the release other e2e modules apply by hand, so the two never claim the same objects.
RELEASE, RELEASE_NAMESPACE = "dataward-chart-e2e", "dataward-chart-e2e"
PROTECT, ALLOW_DELETION = "dataward.io/protect-key-rings", "dataward.io/allow-namespace-deletion"
GROUP, VERSION = "dataward.io", "v1alpha1"


def run_tool(name: str, *args: str, plane: ControlPlane | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a pinned tool (helm, kubeconform); fail, never skip, when it is missing."""
    try:
        binary = tool(name)
    except RuntimeError as error:
        pytest.fail(f"{name} is missing: run `make tools` ({error})")
    result = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=180,
                            env=plane.env() if plane else None)
    if check and result.returncode != 0:
        raise AssertionError(f"{name} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def helm_template(*values: str) -> str:
    sets = [arg for value in values for arg in ("--set", value)]
    return run_tool("helm", "template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
                    "--kube-version", "1.37.2", *sets).stdout


# -- kubeconform schemas, from the running API server ---------------------------------------


def _strict(schema: Any) -> Any:
    """openapi2jsonschema --strict: no unknown fields; int-or-string and quantities as such."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if out.get("format") == "int-or-string":
        out.pop("type", None)
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if "properties" in out and "additionalProperties" not in out and not out.get(
            "x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def _kind_file(kind: str, api_version: str) -> str:
    """kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}: deployment-apps-v1, service-v1."""
    group, _, version = api_version.rpartition("/")
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{kind.lower()}{suffix}.json"


def write_schemas(plane: ControlPlane, directory: Path) -> None:
    """One strict JSON schema per kind: built-in kinds from /openapi/v2, ours from crds/."""
    spec = json.loads(plane.kubectl("get", "--raw", "/openapi/v2", timeout=120).stdout)
    definitions = spec["definitions"]
    quantity = "io.k8s.apimachinery.pkg.api.resource.Quantity"
    definitions[quantity] = {"oneOf": [{"type": "string"}, {"type": "number"}]}
    strict_definitions = _strict(definitions)
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind") or []:
            if name.startswith("io.dataward."):
                continue  # from crds/ below, the source of truth
            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            schema = dict(strict_definitions[name])
            schema["definitions"] = strict_definitions
            (directory / _kind_file(gvk["kind"], api_version)).write_text(json.dumps(schema))
    for crd_file in sorted((REPO / "crds").glob("*.yaml")):
        crd = yaml.safe_load(crd_file.read_text())
        for version in crd["spec"]["versions"]:
            schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            schema["properties"]["metadata"] = {"type": "object"}
            api_version = f"{crd['spec']['group']}/{version['name']}"
            (directory / _kind_file(crd["spec"]["names"]["kind"], api_version)).write_text(
                json.dumps(_strict(schema)))


def test_the_rendered_chart_passes_kubeconform_strict(control_plane: ControlPlane,
                                                      tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    write_schemas(control_plane, schemas)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "default.yaml").write_text(helm_template())
    (manifests / "namespaced.yaml").write_text(helm_template(
        "watchNamespaces={crm,billing}", "strategy.type=RollingUpdate", "replicaCount=2",
        "admissionPolicies.validationActions={Warn,Audit}"))
    # Our own kinds, against the CRD schemas: the examples a user starts from.
    for example in [REPO / "examples" / "policy.yaml", *sorted((REPO / "examples" / "stores")
                                                               .glob("*.yaml"))]:
        (manifests / f"example-{example.name}").write_text(example.read_text())
    result = run_tool("kubeconform", "-strict", "-summary", "-output", "json",
                      "-schema-location", f"{schemas}/{{{{ .ResourceKind }}}}"
                      "{{ .KindSuffix }}.json", str(manifests), check=False)
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert result.returncode == 0 and summary["invalid"] == summary["errors"] == 0, result.stdout
    assert summary["skipped"] == 0
    assert summary["valid"] >= 30, summary


# -- the release ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def release(control_plane: ControlPlane, kube: ApiClient) -> Iterator[str]:
    """`helm install` of the chart; uninstalled at the end (the policies act cluster-wide)."""
    run_tool("helm", "install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
             "--create-namespace", "--wait=false", plane=control_plane)
    try:
        yield RELEASE
    finally:
        run_tool("helm", "uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE,
                 "--ignore-not-found", plane=control_plane, check=False)


@pytest.fixture(scope="module")
def policy_name(kube: ApiClient, release: str) -> Iterator[str]:
    """A PrivacyPolicy (the seed policy under a name of its own)."""
    body = yaml.safe_load((REPO / "examples" / "policy.yaml").read_text())
    body["metadata"] = {"name": f"chart-e2e-{uuid.uuid4().hex[:6]}"}
    api = client.CustomObjectsApi(kube)
    api.create_cluster_custom_object(GROUP, VERSION, "privacypolicies", body)
    try:
        yield body["metadata"]["name"]
    finally:
        api.delete_cluster_custom_object(GROUP, VERSION, "privacypolicies",
                                         body["metadata"]["name"])


def _new_namespace(kube: ApiClient, labels: dict[str, str]) -> str:
    name = f"chart-e2e-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(kube).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    return name


def _delete_namespace(kube: ApiClient, name: str) -> None:
    core = client.CoreV1Api(kube)
    core.patch_namespace(name, {"metadata": {"annotations": {ALLOW_DELETION: "true"}}})
    core.delete_namespace(name)


@pytest.fixture
def team(control_plane: ControlPlane, kube: ApiClient, release: str) -> Iterator[dict[str, Any]]:
    """A protected namespace where alice (group devs) may edit stores and read one Secret."""
    namespace = _new_namespace(kube, {PROTECT: "true"})
    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    for secret in ("readable-credentials", "hidden-credentials", "dataward-other-keyring"):
        core.create_namespaced_secret(namespace, {
            "metadata": {"name": secret}, "stringData": {"username": "u", "password": "p"}})
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": "store-editor"},
        "rules": [
            {"apiGroups": [GROUP], "resources": ["personaldatastores"],
             "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["secrets"],
             "resourceNames": ["readable-credentials", "dataward-other-keyring"],
             "verbs": ["get"]},
        ]})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "store-editor"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "store-editor"},
        "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]})
    alice = control_plane.api_client(control_plane.kubeconfig_for_user("alice", ["devs"]))
    try:
        yield {"namespace": namespace, "alice": alice}
    finally:
        alice.close()
        _delete_namespace(kube, namespace)


def store_body(policy: str, **changes: Any) -> dict[str, Any]:
    """The support-inquiries example store, with a unique name and `changes` to its spec."""
    body: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "stores" / "support-inquiries.yaml").read_text())
    body["metadata"] = {"name": f"store-{uuid.uuid4().hex[:6]}"}
    body["spec"]["policy"] = policy
    body["spec"]["database"]["credentialsSecret"] = "readable-credentials"
    body["spec"].update(changes)
    return body


def create_store(api: ApiClient, namespace: str, body: dict[str, Any]) -> tuple[int, str]:
    """Create a store as the client's user: (HTTP status, the API server's message)."""
    try:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "personaldatastores", body)
    except ApiException as error:
        return int(error.status), str(json.loads(error.body).get("message"))
    return 201, ""


def admitted_after_policies_load(api: ApiClient, namespace: str, body: dict[str, Any],
                                 expect_rejection: str) -> tuple[int, str]:
    """Create a store that must be rejected, retrying until the policies are in force.

    The API server loads new admission policies asynchronously, moments after install.
    """
    def attempt() -> tuple[int, str] | None:
        probe = copy.deepcopy(body)
        status, message = create_store(api, namespace, probe)
        if status == 201:  # not yet in force: undo and retry
            client.CustomObjectsApi(api).delete_namespaced_custom_object(
                GROUP, VERSION, namespace, "personaldatastores", probe["metadata"]["name"])
            return None
        return status, message

    result = wait_for(attempt, timeout=30, interval=0.5,
                      message=f"admission policy rejecting: {expect_rejection}")
    assert expect_rejection in result[1], result
    return result


def test_a_developer_cannot_point_a_store_at_a_secret_she_cannot_read(
        team: dict[str, Any], policy_name: str) -> None:
    alice, namespace = team["alice"], team["namespace"]
    bad = store_body(policy_name)
    bad["spec"]["database"]["credentialsSecret"] = "hidden-credentials"
    status, message = admitted_after_policies_load(alice, namespace, bad, "may not get Secret")
    assert status == 403
    assert "hidden-credentials" in message and "you (alice)" in message
    assert create_store(alice, namespace, store_body(policy_name)) == (201, "")


def test_a_store_cannot_borrow_another_stores_key_ring_as_credentials(
        team: dict[str, Any], policy_name: str) -> None:
    alice, namespace = team["alice"], team["namespace"]
    bad = store_body(policy_name)
    bad["spec"]["database"]["credentialsSecret"] = "dataward-other-keyring"
    # alice may read that Secret; it is still no store's credentials.
    status, _ = admitted_after_policies_load(alice, namespace, bad, "is a Dataward key ring")
    assert status == 403


def test_a_store_must_fit_its_category_which_the_rejection_names(
        team: dict[str, Any], policy_name: str) -> None:
    alice, namespace = team["alice"], team["namespace"]
    unknown = store_body(policy_name, category="no-such-category")
    status, message = admitted_after_policies_load(alice, namespace, unknown, "no-such-category")
    assert status == 422
    assert f"not in PrivacyPolicy {policy_name}" in message
    assert "technical-support-inquiry" in message  # the categories one could use

    status, message = create_store(alice, namespace, store_body(policy_name, retention="2y"))
    assert status == 422
    assert "2y is longer than the 1y" in message and "technical-support-inquiry" in message
    status, message = create_store(alice, namespace, store_body(policy_name, retention="400d"))
    assert status == 422 and "400d is longer than the 1y" in message
    # Equal, or shorter in another unit, or too close to call (left to the operator): admitted.
    for retention in ("1y", "12mo", "180d", "366d"):
        assert create_store(alice, namespace, store_body(policy_name, retention=retention)) == (
            201, ""), retention


def test_a_retained_key_ring_needs_a_namespace_protected_from_deletion(
        control_plane: ControlPlane, kube: ApiClient, release: str, policy_name: str) -> None:
    namespace = _new_namespace(kube, {})
    try:
        status, message = admitted_after_policies_load(
            kube, namespace, store_body(policy_name), "label the namespace first")
        assert status == 403
        assert f"kubectl label namespace {namespace} {PROTECT}=true" in message
        deleting = store_body(policy_name, deletionPolicy="Delete")
        assert create_store(kube, namespace, deleting) == (201, "")
    finally:
        _delete_namespace(kube, namespace)


def test_a_namespace_holding_key_rings_is_deleted_only_after_an_explicit_override(
        control_plane: ControlPlane, kube: ApiClient, release: str) -> None:
    namespace = _new_namespace(kube, {PROTECT: "true"})
    # carol runs the cluster's namespaces, and nothing else: not an administrator.
    rbac = client.RbacAuthorizationV1Api(kube)
    role = f"namespace-admin-{namespace}"
    rbac.create_cluster_role({"metadata": {"name": role}, "rules": [
        {"apiGroups": [""], "resources": ["namespaces"],
         "verbs": ["get", "list", "update", "patch", "delete"]}]})
    rbac.create_cluster_role_binding({
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role},
        "subjects": [{"kind": "User", "name": "carol",
                      "apiGroup": "rbac.authorization.k8s.io"}]})
    carol_api = control_plane.api_client(control_plane.kubeconfig_for_user("carol", ["ops"]))
    carol = client.CoreV1Api(carol_api)

    def delete_as_carol(dry_run: bool = False) -> tuple[int, str]:
        try:
            carol.delete_namespace(namespace, dry_run="All" if dry_run else None)
        except ApiException as error:
            return int(error.status), str(json.loads(error.body).get("message"))
        return 200, ""

    try:
        # A dry run until the freshly installed policy is in force: never delete by accident.
        wait_for(lambda: delete_as_carol(dry_run=True)[0] == 403, timeout=30,
                 message="namespace deletion refused", interval=0.5)
        status, message = delete_as_carol()
        assert status == 403
        assert ALLOW_DELETION in message and "key rings" in message
        # Nor can the protection be dropped quietly by removing the label.
        with pytest.raises(ApiException) as unlabel:
            carol.patch_namespace(namespace, {"metadata": {"labels": {PROTECT: None}}})
        assert unlabel.value.status == 403
        carol.patch_namespace(namespace, {"metadata": {"annotations": {ALLOW_DELETION: "true"}}})
        assert delete_as_carol() == (200, "")
    finally:
        carol_api.close()
        rbac.delete_cluster_role_binding(role)
        rbac.delete_cluster_role(role)


def test_the_installed_rbac_grants_no_forbidden_verb(kube: ApiClient, release: str) -> None:
    rbac = client.RbacAuthorizationV1Api(kube)
    selector = f"app.kubernetes.io/instance={release}"
    roles = [*rbac.list_cluster_role(label_selector=selector).items,
             *rbac.list_role_for_all_namespaces(label_selector=selector).items]
    assert len(roles) >= 4
    for role in roles:
        for rule in role.rules:
            where = f"{role.metadata.name}: {rule}"
            assert not {"escalate", "bind", "impersonate", "*"} & set(rule.verbs), where
            assert "*" not in (rule.resources or []) and "*" not in (rule.api_groups or []), where
            if "secrets" in (rule.resources or []):
                assert not {"list", "watch"} & set(rule.verbs), where


def test_uninstalling_the_chart_leaves_the_key_rings_and_the_crds(
        control_plane: ControlPlane, kube: ApiClient, release: str) -> None:
    namespace = _new_namespace(kube, {PROTECT: "true"})
    core = client.CoreV1Api(kube)
    ring = core.create_namespaced_secret(namespace, {
        "metadata": {"name": "dataward-orders-keyring", "labels": {
            "app.kubernetes.io/managed-by": "dataward", "app.kubernetes.io/name": "dataward",
            "app.kubernetes.io/component": "encryption", "dataward.io/store": "orders"}},
        "type": "Opaque", "data": {"keyring.json": "e30="}})
    try:
        upgrade = run_tool("helm", "upgrade", release, str(CHART), "--namespace",
                           RELEASE_NAMESPACE, "--reuse-values", "--set", "logLevel=DEBUG",
                           plane=control_plane)
        assert "STATUS: deployed" in upgrade.stdout
        run_tool("helm", "uninstall", release, "--namespace", RELEASE_NAMESPACE,
                 "--wait", "--timeout", "60s", plane=control_plane)
        kept = core.read_namespaced_secret(ring.metadata.name, namespace)
        assert kept.metadata.uid == ring.metadata.uid
        assert kept.metadata.resource_version == ring.metadata.resource_version
        assert kept.data == {"keyring.json": "e30="}
        crds = client.ApiextensionsV1Api(kube).list_custom_resource_definition().items
        assert {f"personaldatastores.{GROUP}", f"privacypolicies.{GROUP}"} <= {
            c.metadata.name for c in crds}
        admission = client.AdmissionregistrationV1Api(kube)
        left = [p.metadata.name for p in admission.list_validating_admission_policy().items
                if re.match(rf"^{RELEASE}-", p.metadata.name)]
        assert not left, f"admission policies left behind: {left}"
    finally:
        core.patch_namespace(namespace, {"metadata": {"annotations": {ALLOW_DELETION: "true"}}})
        core.delete_namespace(namespace)
