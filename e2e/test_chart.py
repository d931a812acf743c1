"""A platform team installs Dataward with Helm into a real control plane, and lives with it.

The chart is installed with `helm install` (its pod never runs: there is no kubelet); the
admission policies are then exercised by real non-admin users. The operator runs as a local
process with the installed Deployment's arguments and a token of its ServiceAccount, and
makes the example stores Ready (so the chart's RBAC suffices); `helm upgrade` with those
stores live changes no child and no key, and `helm uninstall` leaves the key rings behind.
kubeconform validates the rendered chart against schemas made here from this API server's
own OpenAPI document and from crds/ (nothing is downloaded).
"""

from __future__ import annotations

import copy
import hashlib
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

from e2e import fixtures_api
from e2e.fixtures_api import install_crds, seed_policy, wait_admission_policies_gone
from e2e.fixtures_operator import OperatorProcess, condition, get, sleep_for
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
    # The evidence log, access records from the audit log, and the report CronJob.
    (manifests / "evidence.yaml").write_text(helm_template(
        "evidence.database=postgresql://evidence.db:5432/evidence?tls=verify-full",
        "evidence.credentialsSecret=evidence-login", "evidence.signingKeySecret=evidence-key",
        "evidence.auditLog.volume.hostPath.path=/var/log/kubernetes/audit",
        "evidence.auditLog.volume.hostPath.type=Directory",
        "report.inputsConfigMap=privacy-policy-files",
        "report.publicKeyConfigMap=evidence-public-key", "report.persistentVolumeClaim=reports"))
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


def test_the_dashboard_and_alerts_pass_kubeconform_where_schemas_exist(
        control_plane: ControlPlane, tmp_path: Path) -> None:
    """With every monitoring option on: the dashboard's ConfigMap against this API server's
    schema. ServiceMonitor and PrometheusRule are prometheus-operator CRDs, which neither
    this server nor anything offline describes: kubeconform must skip exactly those (their
    structure and promtool's verdict are tests/chart/test_monitoring.py's)."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    write_schemas(control_plane, schemas)
    manifest = tmp_path / "monitoring.yaml"
    manifest.write_text(helm_template("grafanaDashboard.enabled=true",
                                      "prometheusRule.enabled=true",
                                      "metrics.serviceMonitor.enabled=true"))
    result = run_tool("kubeconform", "-strict", "-summary", "-verbose", "-output", "json",
                      "-ignore-missing-schemas", "-schema-location",
                      f"{schemas}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
                      str(manifest), check=False)
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout
    by_status: dict[str, set[str]] = {}
    for resource in report["resources"]:
        by_status.setdefault(resource["status"], set()).add(resource["kind"])
    assert by_status.get("statusSkipped") == {"ServiceMonitor", "PrometheusRule"}, report
    assert "ConfigMap" in by_status.get("statusValid", set()), report
    assert not {"statusInvalid", "statusError"} & set(by_status), report


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
        wait_admission_policies_gone(kube)


@pytest.fixture(scope="module")
def policy_name(kube: ApiClient, release: str) -> Iterator[str]:
    """A PrivacyPolicy (the seed policy under a name of its own)."""
    with seed_policy(kube, "chart-e2e") as name:
        yield name


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
    """The support-inquiries example store, with a unique name and `changes` to its spec;
    without readers (naming them is the grant guard's business: e2e/test_admission_guards.py),
    so that the other policies are what decides alice's attempts."""
    body: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "stores" / "support-inquiries.yaml").read_text())
    body["metadata"] = {"name": f"store-{uuid.uuid4().hex[:6]}"}
    body["spec"]["policy"] = policy
    body["spec"]["access"] = {"readers": []}
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


# -- the operator, as the installed release runs it -----------------------------------------

EXAMPLES = REPO / "examples"
EXAMPLE_NAMESPACES = ("marketing", "crm", "billing")
MANAGED = "app.kubernetes.io/managed-by=dataward"
# Everything the operator makes for a store (key rings are the Secrets among them).
CHILD_KINDS = "networkpolicies,roles,rolebindings,serviceaccounts,cronjobs,secrets"
RESYNC_SECONDS = 5


def deployed_operator(plane: ControlPlane) -> tuple[str, list[str]]:
    """The installed Deployment's ServiceAccount and its container's arguments after `run`."""
    found = json.loads(plane.kubectl(
        "get", "deployments", "-n", RELEASE_NAMESPACE, "-l",
        f"app.kubernetes.io/instance={RELEASE}", "-o", "json").stdout)["items"]
    assert len(found) == 1, [d["metadata"]["name"] for d in found]
    pod = found[0]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][0] == "run", container["args"]
    return pod["serviceAccountName"], container["args"][1:]


def local_args(chart_args: list[str]) -> list[str]:
    """The Deployment's arguments, watching only the example namespaces, at e2e pace."""
    return [*chart_args, *(f"--namespace={n}" for n in EXAMPLE_NAMESPACES),
            "--metrics-port", "0", "--resync-seconds", str(RESYNC_SECONDS)]


def operators_watching_every_namespace(plane: ControlPlane) -> list[str]:
    """Command lines of `dataward run` processes of this control plane without --namespace."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if (["dataward", "run"] == args[2:4] and any(str(plane.dir) in a for a in args)
                and not any(a.startswith("--namespace") for a in args)):
            found.append(" ".join(args))
    return found


@pytest.fixture(scope="module")
def chart_operator(control_plane: ControlPlane, release: str,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """`dataward run` as the installed Deployment would run it, under its ServiceAccount.

    There is no kubelet: the process runs here, with a token of the release's ServiceAccount
    as its only credentials and the Deployment's own arguments (read from the cluster).
    """
    others = operators_watching_every_namespace(control_plane)
    if others:
        pytest.fail("an operator watching every namespace (the session `operator` of "
                    "test_operator.py) runs already and would reconcile the example stores "
                    f"too; run test_chart.py first or alone: {others}")
    account, chart_args = deployed_operator(control_plane)
    kubeconfig = control_plane.kubeconfig_for_service_account(RELEASE_NAMESPACE, account)
    log = tmp_path_factory.mktemp("chart-operator") / "operator.log"
    process = OperatorProcess(control_plane, kubeconfig, account, log, args=local_args(chart_args))
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _stores_ready(plane: ControlPlane, stores: list[tuple[str, str]],
                  operator: OperatorProcess, timeout: float = 90) -> None:
    def ready() -> bool:
        assert operator.alive(), f"the operator exited:\n{operator.logs()[-6000:]}"
        return all(condition(get(plane, "pds", name, namespace), "Ready").get("status") == "True"
                   for namespace, name in stores)

    try:
        wait_for(ready, timeout=timeout, interval=1, message="every example store Ready")
    except TimeoutError:
        report = {f"{namespace}/{name}": ((get(plane, "pds", name, namespace) or {})
                                          .get("status") or {}).get("conditions")
                  for namespace, name in stores}
        raise AssertionError(f"not every store became Ready:\n{yaml.safe_dump(report)}\n"
                             f"operator log (tail):\n{operator.logs()[-6000:]}") from None


@pytest.fixture(scope="module")
def example_stores(control_plane: ControlPlane, chart_operator: OperatorProcess
                   ) -> Iterator[list[tuple[str, str]]]:
    """examples/ applied as a GitOps pipeline would (server-side), every store Ready.

    The namespaces and Secrets may be there already (test_api.py applies them too) and stay;
    the stores go at the end, their key rings stay (Retain), so does a policy found here.
    """
    store_files = sorted((EXAMPLES / "stores").glob("*.yaml"))
    stores = [(doc["metadata"]["namespace"], doc["metadata"]["name"])
              for doc in (yaml.safe_load(path.read_text()) for path in store_files)]
    had_policy = get(control_plane, "privacypolicy", "clunix") is not None
    try:
        for path in [EXAMPLES / "namespaces.yaml", EXAMPLES / "secrets.yaml",
                     EXAMPLES / "policy.yaml", *store_files]:
            # test_api applied the same examples under another field manager earlier in the
            # session: take the fields over, as a GitOps tool adopting objects would.
            control_plane.kubectl("apply", "--server-side", "--field-manager=gitops-e2e",
                                  "--force-conflicts", "-f", str(path))
        _stores_ready(control_plane, stores, chart_operator)
        yield stores
    finally:
        control_plane.kubectl("delete", "--ignore-not-found", "--timeout=60s",
                              *(f"-f={path}" for path in store_files), check=False)
        if not had_policy:
            control_plane.kubectl("delete", "privacypolicy", "clunix", "--ignore-not-found",
                                  check=False)


def children(plane: ControlPlane) -> dict[str, str]:
    """A digest of what has been written of every object the operator made in the example
    namespaces, its status apart: the CronJob controller writes a CronJob's status when a
    run is due (the hourly newsletter's at the top of every hour), which a resourceVersion
    would count as a change by the operator."""
    written = {}
    for namespace in EXAMPLE_NAMESPACES:
        listed = json.loads(plane.kubectl("get", CHILD_KINDS, "-n", namespace, "-l", MANAGED,
                                          "-o", "json").stdout)["items"]
        for item in listed:
            meta = {k: v for k, v in item["metadata"].items() if k != "resourceVersion"}
            meta["managedFields"] = [entry for entry in meta.get("managedFields") or []
                                     if entry.get("subresource") != "status"]
            body = {**{k: v for k, v in item.items() if k != "status"}, "metadata": meta}
            text = json.dumps(body, sort_keys=True).encode()
            written[f"{item['kind']} {namespace}/{meta['name']}"] = (
                hashlib.sha256(text).hexdigest()[:16])
    return written


def key_rings(kube: ApiClient, stores: list[tuple[str, str]]) -> dict[str, client.V1Secret]:
    """Each store's key ring Secret, by store."""
    core, rings = client.CoreV1Api(kube), {}
    for namespace, name in stores:
        found = core.list_namespaced_secret(
            namespace, label_selector=f"{MANAGED},dataward.io/store={name}").items
        assert len(found) == 1, (namespace, name, [s.metadata.name for s in found])
        rings[f"{namespace}/{name}"] = found[0]
    return rings


def test_the_operator_under_the_charts_identity_makes_the_example_stores_ready(
        control_plane: ControlPlane, kube: ApiClient, chart_operator: OperatorProcess,
        example_stores: list[tuple[str, str]]) -> None:
    account, chart_args = deployed_operator(control_plane)
    assert f"{RELEASE_NAMESPACE}/{account}" in chart_args  # --operator-service-account
    assert "--lease-namespace" in chart_args and RELEASE_NAMESPACE in chart_args
    # Ready means every child applied and the key ring made: all with the chart's rights.
    made = children(control_plane)
    for kind in ("NetworkPolicy", "Role", "RoleBinding", "ServiceAccount", "CronJob", "Secret"):
        assert any(key.startswith(f"{kind} ") for key in made), (kind, made)
    assert len(key_rings(kube, example_stores)) == len(example_stores) == 3
    log = chart_operator.logs()
    assert f"acquired lease {RELEASE_NAMESPACE}/" in log
    assert "Forbidden" not in log and " 403" not in log, log[-6000:]


def test_helm_upgrade_with_live_stores_changes_no_child_and_no_key(
        control_plane: ControlPlane, kube: ApiClient, chart_operator: OperatorProcess,
        example_stores: list[tuple[str, str]]) -> None:
    before, rings_before = children(control_plane), key_rings(kube, example_stores)
    upgrade = run_tool("helm", "upgrade", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
                       "--reuse-values", "--set", "logLevel=DEBUG", "--set",
                       "podAnnotations.e2e\\.dataward\\.io/upgraded=yes", plane=control_plane)
    assert "STATUS: deployed" in upgrade.stdout and "REVISION: 2" in upgrade.stdout
    # The Deployment's pod is replaced (Recreate): the old operator stops, the new one
    # starts with the upgraded arguments and the same ServiceAccount.
    account, chart_args = deployed_operator(control_plane)
    assert "DEBUG" in chart_args, chart_args
    chart_operator.stop()
    chart_operator.args = local_args(chart_args)
    chart_operator.kubeconfig = control_plane.kubeconfig_for_service_account(
        RELEASE_NAMESPACE, account)
    chart_operator.start()
    marker = f"--- start {chart_operator.starts}\n"

    def since_restart() -> str:
        return chart_operator.logs().split(marker, 1)[-1]

    wait_for(lambda: "acquired lease" in since_restart(), timeout=60, interval=0.5,
             message="the upgraded operator holds the Lease")
    sleep_for(3 * RESYNC_SECONDS + 1)  # the start-up pass and a few resyncs
    assert chart_operator.alive(), since_restart()[-6000:]

    after, rings_after = children(control_plane), key_rings(kube, example_stores)
    changed = {key: (version, after.get(key)) for key, version in before.items()
               if after.get(key) != version}
    assert not changed, f"children changed by the upgrade: {changed}"
    assert set(after) == set(before), set(after) ^ set(before)
    for store, ring in rings_before.items():
        assert rings_after[store].metadata.uid == ring.metadata.uid, store
        assert rings_after[store].data == ring.data, store
        assert rings_after[store].metadata.resource_version == ring.metadata.resource_version
    applied = [line for line in since_restart().splitlines() if re.search(r"\bapply [A-Z]", line)]
    assert not applied, applied
    _stores_ready(control_plane, example_stores, chart_operator, timeout=10)


def _release_revisions(plane: ControlPlane) -> int:
    history = run_tool("helm", "history", RELEASE, "--namespace", RELEASE_NAMESPACE,
                       "--output", "json", plane=plane).stdout
    return len(json.loads(history))


def test_an_upgrade_over_older_crds_is_refused_until_they_are_applied(
        control_plane: ControlPlane, kube: ApiClient, release: str) -> None:
    """Helm never upgrades crds/. An admin who runs `helm upgrade` and forgets the README's
    `kubectl apply` would run this version's operator and admission policies over an older
    schema, one that prunes what this version's stores say (here a records entry's
    `timeZone`, which decides when a row expires) and lacks its CEL rules. The upgrade is
    refused, before anything changes, with the command that mends it."""
    extensions = client.ApiextensionsV1Api(kube)
    name = f"personaldatastores.{GROUP}"
    installed = extensions.read_custom_resource_definition(name)
    older = kube.sanitize_for_serialization(installed)
    # As an earlier version shipped it: no records[].timeZone, no digest of this chart's.
    (version,) = older["spec"]["versions"]
    records = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "records"]["items"]
    assert records["properties"].pop("timeZone", None) is not None
    (older["metadata"].get("annotations") or {}).pop("dataward.io/schema-digest", None)
    older["metadata"].pop("managedFields", None)
    extensions.replace_custom_resource_definition(name, older)
    fixtures_api._INSTALLED.discard(control_plane.dir)  # install_crds: apply them again
    try:
        revisions = _release_revisions(control_plane)
        refused = run_tool("helm", "upgrade", RELEASE, str(CHART), "--namespace",
                           RELEASE_NAMESPACE, "--reuse-values", plane=control_plane, check=False)
        assert refused.returncode != 0, refused.stdout
        assert name in refused.stderr, refused.stderr
        assert "kubectl apply --server-side --force-conflicts -f charts/dataward/crds/" in (
            refused.stderr), refused.stderr
        assert _release_revisions(control_plane) == revisions  # nothing was changed
    finally:
        install_crds(control_plane)
    run_tool("helm", "upgrade", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
             "--reuse-values", plane=control_plane)
    assert _release_revisions(control_plane) == revisions + 1


def test_the_installed_rbac_grants_no_forbidden_verb(
        control_plane: ControlPlane, kube: ApiClient, release: str) -> None:
    rbac = client.RbacAuthorizationV1Api(kube)
    selector = f"app.kubernetes.io/instance={release}"
    listings = {
        "ClusterRole": rbac.list_cluster_role(label_selector=selector).items,
        "Role": rbac.list_role_for_all_namespaces(label_selector=selector).items,
        "ClusterRoleBinding": rbac.list_cluster_role_binding(label_selector=selector).items,
        "RoleBinding": rbac.list_role_binding_for_all_namespaces(label_selector=selector).items,
    }
    # Nothing the release installed escapes the label: the listing is the release's RBAC.
    manifest = run_tool("helm", "get", "manifest", release, "--namespace", RELEASE_NAMESPACE,
                        plane=control_plane).stdout
    installed = {(d["kind"], d["metadata"].get("namespace") or "", d["metadata"]["name"])
                 for d in yaml.safe_load_all(manifest) if d and d["kind"] in listings}
    listed = {(kind, o.metadata.namespace or "", o.metadata.name)
              for kind, objects in listings.items() for o in objects}
    assert listed == installed, listed ^ installed
    roles = [*listings["ClusterRole"], *listings["Role"]]
    bindings = [*listings["ClusterRoleBinding"], *listings["RoleBinding"]]
    assert len(roles) >= 4
    for role in roles:
        for rule in role.rules:
            where = f"{role.metadata.name}: {rule}"
            assert not {"escalate", "bind", "impersonate", "*"} & set(rule.verbs), where
            assert "*" not in (rule.resources or []) and "*" not in (rule.api_groups or []), where
            assert not rule.non_resource_urls, where
            if "secrets" in (rule.resources or []):  # list/watch: watchSecrets (default)
                assert "deletecollection" not in set(rule.verbs), where
    # A binding to a role of someone else's (cluster-admin, edit) would grant what no rule
    # above shows: every binding refers to one of the release's own roles.
    own = {(kind, o.metadata.namespace or "", o.metadata.name)
           for kind in ("ClusterRole", "Role") for o in listings[kind]}
    for binding in bindings:
        where = "" if binding.role_ref.kind == "ClusterRole" else binding.metadata.namespace
        assert (binding.role_ref.kind, where, binding.role_ref.name) in own, binding

    # What the ServiceAccount can do in effect, whoever granted it.
    account, _ = deployed_operator(control_plane)
    user = f"system:serviceaccount:{RELEASE_NAMESPACE}:{account}"
    forbidden = [("delete", "secrets"), ("deletecollection", "secrets"),
                 ("escalate", "clusterroles.rbac.authorization.k8s.io"),
                 ("bind", "clusterroles.rbac.authorization.k8s.io"),
                 ("impersonate", "users"), ("impersonate", "serviceaccounts"),
                 ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
                 ("create", "pods"), ("create", "personaldatastores.dataward.io")]
    for verb, resource in forbidden:
        answer = control_plane.kubectl("auth", "can-i", verb, resource, "--all-namespaces",
                                       "--as", user, check=False)
        assert answer.stdout.strip() == "no", (verb, resource, answer.stdout, answer.stderr)
    for verb, resource in [("get", "secrets"), ("list", "secrets"), ("watch", "secrets"),
                           ("patch", "cronjobs.batch"),
                           ("list", "personaldatastores.dataward.io")]:
        answer = control_plane.kubectl("auth", "can-i", verb, resource, "--all-namespaces",
                                       "--as", user, check=False)
        assert answer.stdout.strip() == "yes", (verb, resource, answer.stdout, answer.stderr)


def _readme_release_by_hand(plane: ControlPlane, namespace: str, store: str) -> None:
    """Run the chart README's commands that release a Delete store after the operator is
    gone (the block starting `# after the operator is gone`), for `namespace`/`store`."""
    readme = (CHART / "README.md").read_text()
    block = readme.split("```sh\n# after the operator is gone", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.startswith("kubectl ")]
    assert len(commands) == 2, commands
    for command in commands:
        command = command.replace("NAMESPACE", namespace).replace("STORE", store)
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                              timeout=60, env=plane.env())
        assert done.returncode == 0, (command, done.stdout, done.stderr)


def _finalized_delete_store(plane: ControlPlane, kube: ApiClient, policy: str
                            ) -> tuple[str, client.V1Secret]:
    """A deletionPolicy Delete store in crm (a namespace the chart's operator here serves),
    once the operator has put its grace finalizer on it and owned its ring to it."""
    body = store_body(policy, deletionPolicy="Delete")
    body["spec"]["database"]["credentialsSecret"] = "crm-postgres-purger"
    name = body["metadata"]["name"]
    assert create_store(kube, "crm", body) == (201, "")
    core = client.CoreV1Api(kube)

    def held() -> client.V1Secret | None:
        store = get(plane, "pds", name, "crm") or {}
        if "dataward.io/key-ring-grace-period" not in (
                store.get("metadata", {}).get("finalizers") or []):
            return None
        rings = core.list_namespaced_secret(
            "crm", label_selector=f"{MANAGED},dataward.io/store={name}").items
        owned = [r for r in rings if any(o.uid == store["metadata"]["uid"]
                                         for o in r.metadata.owner_references or [])]
        return owned[0] if owned else None

    return name, wait_for(held, timeout=60, interval=1,
                          message="the Delete store's finalizer and its ring's owner")


def test_uninstalling_the_chart_leaves_the_key_rings_and_the_crds(
        control_plane: ControlPlane, kube: ApiClient, release: str, policy_name: str,
        chart_operator: OperatorProcess, example_stores: list[tuple[str, str]]) -> None:
    """... and a store whose finalizer the operator would have removed is stuck once the
    operator is gone, until released by hand as the chart's README says, its ring kept."""
    namespace = _new_namespace(kube, {PROTECT: "true"})
    core = client.CoreV1Api(kube)
    held, held_ring = _finalized_delete_store(control_plane, kube, policy_name)
    # A key ring the operator of an earlier install left behind, and the live stores' own.
    ring = core.create_namespaced_secret(namespace, {
        "metadata": {"name": "dataward-orders-keyring", "labels": {
            "app.kubernetes.io/managed-by": "dataward", "app.kubernetes.io/name": "dataward",
            "app.kubernetes.io/component": "encryption", "dataward.io/store": "orders"}},
        "type": "Opaque", "data": {"keyring.json": "e30="}})
    rings = key_rings(kube, example_stores)
    try:
        # Uninstalling deletes the Deployment: its operator goes first.
        chart_operator.stop()
        run_tool("helm", "uninstall", release, "--namespace", RELEASE_NAMESPACE,
                 "--wait", "--timeout", "60s", plane=control_plane)
        kept = core.read_namespaced_secret(ring.metadata.name, namespace)
        assert kept.metadata.uid == ring.metadata.uid
        assert kept.metadata.resource_version == ring.metadata.resource_version
        assert kept.data == {"keyring.json": "e30="}
        for store, made in rings.items():
            left = core.read_namespaced_secret(made.metadata.name, made.metadata.namespace)
            assert (left.metadata.uid, left.data) == (made.metadata.uid, made.data), store
            # Retain: nothing the garbage collector could follow to delete it.
            assert not left.metadata.owner_references, (store, left.metadata.owner_references)
        crds = client.ApiextensionsV1Api(kube).list_custom_resource_definition().items
        assert {f"personaldatastores.{GROUP}", f"privacypolicies.{GROUP}"} <= {
            c.metadata.name for c in crds}
        admission = client.AdmissionregistrationV1Api(kube)
        left_behind = [p.metadata.name for p in admission.list_validating_admission_policy().items
                       if re.match(rf"^{RELEASE}-", p.metadata.name)]
        assert not left_behind, f"admission policies left behind: {left_behind}"

        # Deleting the Delete store now: no operator removes its finalizer.
        client.CustomObjectsApi(kube).delete_namespaced_custom_object(
            GROUP, VERSION, "crm", "personaldatastores", held)
        sleep_for(8)  # the garbage collector and the API server act within a second
        stuck = get(control_plane, "pds", held, "crm")
        assert stuck is not None and stuck["metadata"].get("deletionTimestamp"), stuck
        _readme_release_by_hand(control_plane, "crm", held)
        wait_for(lambda: get(control_plane, "pds", held, "crm") is None, timeout=30,
                 interval=0.5, message="the released store gone")
        sleep_for(3)  # time for the garbage collector, had the ring still been owned
        kept_ring = core.read_namespaced_secret(held_ring.metadata.name, "crm")
        assert kept_ring.metadata.uid == held_ring.metadata.uid
        assert kept_ring.data == held_ring.data and not kept_ring.metadata.owner_references
        core.delete_namespaced_secret(held_ring.metadata.name, "crm")
    finally:
        core.patch_namespace(namespace, {"metadata": {"annotations": {ALLOW_DELETION: "true"}}})
        core.delete_namespace(namespace)
