"""Smoke tests proving the control plane is real: each checks a behaviour a fake would lack."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from e2e.harness import ControlPlane, wait_for

K8S_VERSION = "v1.37.2"


def _status_of(call: Any) -> int:
    """Run an API call and return 200, or the HTTP status of the ApiException it raised."""
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


def _gone(call: Any) -> bool:
    return _status_of(call) == 404


# (a) ---------------------------------------------------------------------------------------


def test_server_side_apply_is_idempotent_and_audited(
    control_plane: ControlPlane, kube: ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa-probe", "namespace": namespace},
        "data": {"retention": "30d"},
    }

    def apply() -> client.V1ConfigMap:
        return core.patch_namespaced_config_map(
            "ssa-probe",
            namespace,
            body,
            field_manager="dataward",
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    first = apply()
    second = apply()
    assert first.data == {"retention": "30d"}
    assert second.metadata.resource_version == first.metadata.resource_version
    managers = {(f.manager, f.operation) for f in second.metadata.managed_fields}
    assert ("dataward", "Apply") in managers

    def patches() -> list[dict[str, Any]]:
        return [
            event
            for event in control_plane.audit_events()
            if event.get("verb") == "patch"
            and event.get("objectRef", {}).get("resource") == "configmaps"
            and event.get("objectRef", {}).get("namespace") == namespace
            and event.get("objectRef", {}).get("name") == "ssa-probe"
        ]

    events = wait_for(
        lambda: len(patches()) >= 2 and patches(), 10, "both apply patches in the audit log"
    )
    # A no-op apply is still a request: the audit log shows both, as CONTROL-PLANE.md says.
    assert len(events) == 2
    for event in events:
        assert event["user"]["username"] == "admin"
        assert event["responseStatus"]["code"] in (200, 201)
        assert event["stage"] == "ResponseComplete"


# (b) ---------------------------------------------------------------------------------------


def _grant_configmap_reader(kube: ApiClient, namespace: str, subject: dict[str, str]) -> None:
    rbac = client.RbacAuthorizationV1Api(kube)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "configmap-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": f"configmap-reader-{subject['name']}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "configmap-reader",
            },
            "subjects": [subject],
        },
    )


def test_rbac_denies_a_user_until_a_role_is_bound(
    control_plane: ControlPlane, kube: ApiClient, namespace: str
) -> None:
    kubeconfig = control_plane.kubeconfig_for_user("alice", ["dataward:testers"])
    with control_plane.api_client(kubeconfig) as api:
        alice = client.CoreV1Api(api)
        review = client.AuthenticationV1Api(api).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
        assert review.status.user_info.username == "alice"
        assert "system:masters" not in review.status.user_info.groups
        assert "dataward:testers" in review.status.user_info.groups

        assert _status_of(lambda: alice.list_namespaced_config_map(namespace)) == 403
        _grant_configmap_reader(
            kube,
            namespace,
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
        )
        wait_for(
            lambda: _status_of(lambda: alice.list_namespaced_config_map(namespace)) == 200,
            10,
            "alice may list configmaps once the RoleBinding exists",
        )
        # The grant is scoped to the namespace.
        assert _status_of(lambda: alice.list_namespaced_config_map("default")) == 403


def test_rbac_denies_a_service_account_token_until_a_role_is_bound(
    control_plane: ControlPlane, kube: ApiClient, namespace: str
) -> None:
    client.CoreV1Api(kube).create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    kubeconfig = control_plane.kubeconfig_for_service_account(namespace, "reader", 600)
    # The kubeconfig holds only the token: no client certificate that would win over it.
    user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    assert set(user) == {"token"}

    whoami = control_plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig)
    username = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
    assert username == f"system:serviceaccount:{namespace}:reader"

    denied = control_plane.kubectl(
        "get", "configmaps", "-n", namespace, kubeconfig=kubeconfig, check=False
    )
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()

    _grant_configmap_reader(
        kube, namespace, {"kind": "ServiceAccount", "name": "reader", "namespace": namespace}
    )
    wait_for(
        lambda: (
            control_plane.kubectl(
                "get", "configmaps", "-n", namespace, kubeconfig=kubeconfig, check=False
            ).returncode
            == 0
        ),
        10,
        "the service account may list configmaps once the RoleBinding exists",
    )


# (c) ---------------------------------------------------------------------------------------


def test_secrets_are_encrypted_at_rest(
    control_plane: ControlPlane, kube: ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    plaintext = f"dataward-probe-{secrets.token_hex(16)}"
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="key-ring"), string_data={"key": plaintext}
        ),
    )
    raw = control_plane.etcd_get(f"/registry/secrets/{namespace}/key-ring")
    assert raw is not None, "the secret is not in etcd where the API server stores it"
    assert raw.startswith(b"k8s:enc:aescbc:v1:key1:")
    assert plaintext.encode() not in raw
    assert base64.b64encode(plaintext.encode()) not in raw
    # ... and the API server still decrypts it.
    stored = core.read_namespaced_secret("key-ring", namespace)
    assert base64.b64decode(stored.data["key"]).decode() == plaintext
    # A ConfigMap is not encrypted: the check above is not vacuous.
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="clear"), data={"k": plaintext}),
    )
    clear = control_plane.etcd_get(f"/registry/configmaps/{namespace}/clear")
    assert clear is not None and plaintext.encode() in clear


# (d) ---------------------------------------------------------------------------------------


def test_job_from_cronjob_is_created_by_the_controllers(
    control_plane: ControlPlane, kube: ApiClient, namespace: str
) -> None:
    batch = client.BatchV1Api(kube)
    core = client.CoreV1Api(kube)
    pod_spec = {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "purge",
                "image": "registry.invalid/dataward:0.1.0",
                "command": ["dataward", "purge", "--store", "orders"],
                "env": [{"name": "DATAWARD_STORE", "value": "orders"}],
            }
        ],
    }
    cronjob = batch.create_namespaced_cron_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "purge"},
            "spec": {
                "schedule": "0 3 1 1 *",  # once a year: only the manual run below happens
                "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": pod_spec}}},
            },
        },
    )
    control_plane.kubectl("create", "job", "purge-now", "--from=cronjob/purge", "-n", namespace)

    job = batch.read_namespaced_job("purge-now", namespace)
    assert job.metadata.owner_references[0].uid == cronjob.metadata.uid
    assert kube.sanitize_for_serialization(job.spec.template.spec) == (
        kube.sanitize_for_serialization(cronjob.spec.job_template.spec.template.spec)
    )

    pods = wait_for(
        lambda: (
            core.list_namespaced_pod(
                namespace, label_selector="batch.kubernetes.io/job-name=purge-now"
            ).items
        ),
        30,
        "the job controller creates the Job's Pod",
    )
    assert len(pods) == 1
    pod = pods[0]
    assert pod.metadata.owner_references[0].uid == job.metadata.uid
    # No scheduler and no kubelet: the pod exists but never runs.
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None
    assert [c.command for c in pod.spec.containers] == [pod_spec["containers"][0]["command"]]


# (e) ---------------------------------------------------------------------------------------


def test_garbage_collector_deletes_dependents(kube: ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name="dependent",
                owner_references=[
                    client.V1OwnerReference(
                        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
                    )
                ],
            )
        ),
    )
    core.delete_namespaced_config_map("owner", namespace)
    wait_for(
        lambda: _gone(lambda: core.read_namespaced_config_map("dependent", namespace)),
        30,
        "the garbage collector deletes the dependent ConfigMap",
    )


# (f) ---------------------------------------------------------------------------------------


def _pod_manifest(name: str, *, restricted: bool) -> str:
    container: dict[str, Any] = {"name": "main", "image": "registry.invalid/dataward:0.1.0"}
    pod_spec: dict[str, Any] = {"containers": [container]}
    if restricted:
        pod_spec["securityContext"] = {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        container["securityContext"] = {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
    else:
        container["securityContext"] = {"privileged": True}
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": pod_spec}
    )


def test_pod_security_restricted_is_enforced(
    control_plane: ControlPlane, kube: ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    core.patch_namespace(
        namespace,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )

    def dry_run(manifest: str) -> subprocess.CompletedProcess[str]:
        return control_plane.kubectl(
            "create", "--dry-run=server", "-n", namespace, "-f", "-", input=manifest, check=False
        )

    rejected = dry_run(_pod_manifest("privileged", restricted=False))
    assert rejected.returncode != 0
    assert 'violates PodSecurity "restricted:' in rejected.stderr
    assert "privileged" in rejected.stderr

    admitted = dry_run(_pod_manifest("compliant", restricted=True))
    assert admitted.returncode == 0, admitted.stderr
    assert "created (server dry run)" in admitted.stdout
    # A dry run persists nothing.
    assert core.list_namespaced_pod(namespace).items == []


# (g) ---------------------------------------------------------------------------------------


def test_binaries_report_the_pinned_version(control_plane: ControlPlane) -> None:
    versions = json.loads(control_plane.kubectl("version", "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"] == K8S_VERSION
    assert versions["serverVersion"]["gitVersion"] == K8S_VERSION
    kcm = control_plane.bin_dir / "kube-controller-manager"
    assert _run_version(kcm) == f"Kubernetes {K8S_VERSION}"


def _run_version(binary: Path) -> str:
    return subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.parametrize("path", ["/readyz", "/livez"])
def test_health_endpoints_answer_ok(control_plane: ControlPlane, path: str) -> None:
    answer = control_plane.kubectl("get", "--raw", path)
    assert answer.stdout.strip() == "ok"
