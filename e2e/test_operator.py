"""The operator on a real control plane, running with the chart's RBAC: a platform team's story.

Each test applies stores the way a GitOps pipeline would, waits, and looks at what the
operator did (and, for steady state and leaks, at what it did not do).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from e2e.fixtures_operator import (
    KEY_RING_GRACE_SECONDS,
    OPERATOR_NAMESPACE,
    OperatorProcess,
    apply,
    chart_rbac,
    condition,
    get,
    load_example,
    sleep_for,
    wait_condition,
)
from e2e.harness import ControlPlane, free_port, wait_for

POLICY = "examples/policy.yaml"
STORE = "examples/stores/support-inquiries.yaml"
CONDITIONS = (
    "PolicyCompliant",
    "NetworkIsolated",
    "EncryptionKeyReady",
    "AccessRestricted",
    "PurgeScheduled",
    "PurgeSucceeded",
    "Ready",
)
STEADY_SECONDS = float(os.environ.get("DATAWARD_E2E_STEADY_SECONDS", "150"))
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


pytestmark = pytest.mark.usefixtures("seed_policy_applied")


def credentials(
    namespace: str, name: str = "crm-postgres-purger", password: str = "not-a-real-password"
) -> dict[str, Any]:
    """A credentials Secret as a platform team would create it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": {"username": "purger", "password": password},
    }


def make_store(
    plane: ControlPlane,
    namespace: str,
    name: str = "support-inquiries",
    password: str = "not-a-real-password",
    **spec: Any,
) -> dict[str, Any]:
    """Apply the example support-inquiries store (and its Secret) into `namespace`."""
    store = load_example(STORE, namespace, **spec)
    store["metadata"]["name"] = name
    store["metadata"]["labels"] = {"gitops.example/tracked-by": "repo-crm"}
    apply(plane, credentials(namespace, password=password), store)
    return store


def ready_store(plane: ControlPlane, namespace: str, **kwargs: Any) -> dict[str, Any]:
    make_store(plane, namespace, **kwargs)
    return wait_condition(
        plane, namespace, kwargs.get("name", "support-inquiries"), "Ready", "True"
    )


def children(plane: ControlPlane, namespace: str) -> dict[str, dict[str, Any]]:
    """Every object the operator manages in `namespace`, by `Kind/name`."""
    out = plane.kubectl(
        "get",
        "networkpolicies,roles,rolebindings,serviceaccounts,cronjobs,secrets",
        "-n",
        namespace,
        "-l",
        "app.kubernetes.io/managed-by=dataward",
        "-o",
        "json",
    ).stdout
    return {f"{i['kind']}/{i['metadata']['name']}": i for i in json.loads(out)["items"]}


def test_an_example_store_becomes_ready_with_every_condition_true(
    control_plane: ControlPlane, namespace: str
) -> None:
    store = ready_store(control_plane, namespace)
    for type_ in CONDITIONS:
        found = condition(store, type_)
        assert found.get("status") == "True", f"{type_}: {found}"
        assert found["observedGeneration"] == store["metadata"]["generation"]
    status = store["status"]
    assert status["observedGeneration"] == store["metadata"]["generation"]
    assert status["encryption"]["primaryKeyId"] == 1
    assert status["encryption"]["keySecret"] == "dataward-support-inquiries-keyring"
    assert "material" not in json.dumps(status)


def test_children_are_owned_labelled_and_never_carry_the_stores_labels(
    control_plane: ControlPlane, namespace: str
) -> None:
    store = ready_store(control_plane, namespace)
    found = children(control_plane, namespace)
    assert sorted(found) == sorted(
        [
            "NetworkPolicy/dataward-support-inquiries-isolation",
            "Role/dataward-support-inquiries-readers",
            "RoleBinding/dataward-support-inquiries-readers",
            "ServiceAccount/dataward-support-inquiries-purge",
            "Role/dataward-support-inquiries-purge",
            "RoleBinding/dataward-support-inquiries-purge",
            "CronJob/dataward-support-inquiries-purge",
            "Secret/dataward-support-inquiries-keyring",
        ]
    )
    for key, child in found.items():
        labels = child["metadata"]["labels"]
        assert labels["dataward.io/store"] == "support-inquiries", key
        assert "gitops.example/tracked-by" not in labels, f"{key} copied the store's labels"
        owners = child["metadata"].get("ownerReferences") or []
        if key.startswith("Secret/"):
            assert owners == [], "under Retain the key ring must have no owner"
        else:
            assert [o["uid"] for o in owners] == [store["metadata"]["uid"]], key


def review(
    plane: ControlPlane, user: str, groups: list[str], namespace: str, verb: str, name: str | None
) -> bool:
    """Ask the API server's authorizer (a SubjectAccessReview) whether `user` may do it."""
    with plane.api_client() as api:
        result = client.AuthorizationV1Api(api).create_subject_access_review(
            client.V1SubjectAccessReview(
                spec=client.V1SubjectAccessReviewSpec(
                    user=user,
                    groups=groups,
                    resource_attributes=client.V1ResourceAttributes(
                        namespace=namespace, verb=verb, resource="secrets", name=name
                    ),
                )
            )
        )
    return bool(result.status.allowed)


def deployer_may(plane: ControlPlane, ask: dict[str, str]) -> bool:
    """Whether the API server's authorizer lets User ci-deployer do `ask` (a
    SubjectAccessReview's resourceAttributes: any verb, group, resource, subresource or
    name)."""
    asked = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
             "spec": {"user": "ci-deployer", "resourceAttributes": ask}}  # fmt: skip
    answer = plane.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(asked))
    return json.loads(answer.stdout)["status"].get("allowed") is True


def ci_deployer_binding(name: str, role: str) -> dict[str, Any]:
    """A ClusterRoleBinding `name` of ClusterRole `role` to User ci-deployer."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role},
            "subjects": [{"kind": "User", "name": "ci-deployer",
                          "apiGroup": "rbac.authorization.k8s.io"}]}  # fmt: skip


def approval_writer(name: str) -> dict[str, Any]:
    """ClusterRole `name`: update on certificatesigningrequests/approval, half an approval."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [{"apiGroups": ["certificates.k8s.io"],
                       "resources": ["certificatesigningrequests/approval"],
                       "verbs": ["update"]}]}  # fmt: skip


def escalation_found(plane: ControlPlane, namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The store once its AccessRestricted is False, and that condition, whose reason must be
    EscalatorsCanReadSecrets."""
    store = wait_condition(plane, namespace, "support-inquiries", "AccessRestricted", "False",
                           timeout=30)  # fmt: skip
    found = condition(store, "AccessRestricted")
    assert found["reason"] == "EscalatorsCanReadSecrets"
    return store, found


def access_restored_without(plane: ControlPlane, namespace: str, binding: str) -> None:
    """Delete ClusterRoleBinding `binding`: the store's AccessRestricted must come back True,
    OnlyDeclaredReaders."""
    plane.kubectl("delete", "clusterrolebinding", binding)
    store = wait_condition(plane, namespace, "support-inquiries", "AccessRestricted", "True",
                           timeout=30)  # fmt: skip
    assert condition(store, "AccessRestricted")["reason"] == "OnlyDeclaredReaders"


def service_account(namespace: str, name: str) -> tuple[str, list[str]]:
    return (
        f"system:serviceaccount:{namespace}:{name}",
        ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
    )


def test_only_the_declared_readers_and_the_purge_job_can_read_the_stores_secrets(
    control_plane: ControlPlane, namespace: str
) -> None:
    ready_store(control_plane, namespace)
    key_ring, creds = "dataward-support-inquiries-keyring", "crm-postgres-purger"
    identities = {
        "reader ServiceAccount": service_account(namespace, "crm-api"),
        "reader Group member": ("officer", ["privacy-officers", "system:authenticated"]),
        "non-reader in the namespace": service_account(namespace, "web"),
        "same name in another namespace": service_account("elsewhere", "crm-api"),
        "purge ServiceAccount": service_account(namespace, "dataward-support-inquiries-purge"),
        "any authenticated user": ("mallory", ["system:authenticated"]),
    }
    expected = {  # (get key ring, get credentials, list secrets)
        "reader ServiceAccount": (True, True, False),
        "reader Group member": (True, True, False),
        "non-reader in the namespace": (False, False, False),
        "same name in another namespace": (False, False, False),
        "purge ServiceAccount": (False, True, False),
        "any authenticated user": (False, False, False),
    }
    matrix = {
        who: (
            review(control_plane, user, groups, namespace, "get", key_ring),
            review(control_plane, user, groups, namespace, "get", creds),
            review(control_plane, user, groups, namespace, "list", None),
        )
        for who, (user, groups) in identities.items()
    }
    assert matrix == expected


def test_the_purge_pod_template_passes_restricted_pod_security(
    control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    ready_store(control_plane, namespace)
    cronjob = get(control_plane, "cronjob", "dataward-support-inquiries-purge", namespace)
    assert cronjob is not None
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "purge-dry-run",
            "namespace": namespace,
            "labels": template["metadata"].get("labels", {}),
        },
        "spec": template["spec"],
    }
    result = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod), check=False
    )
    assert result.returncode == 0, result.stderr
    # The same namespace refuses a pod that is not restricted: the check is real.
    pod["spec"] = {**template["spec"], "securityContext": {}}
    pod["spec"]["containers"] = [
        {**c, "securityContext": {}} for c in template["spec"]["containers"]
    ]
    refused = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod), check=False
    )
    assert refused.returncode != 0 and "restricted" in refused.stderr


def test_a_deleted_or_edited_child_is_restored(control_plane: ControlPlane, namespace: str) -> None:
    ready_store(control_plane, namespace)
    netpol = "dataward-support-inquiries-isolation"
    control_plane.kubectl("delete", "networkpolicy", netpol, "-n", namespace)
    def patch_cronjob(kind: str, body: str) -> None:
        control_plane.kubectl(
            "patch", "cronjob", PURGE, "-n", namespace, "--type", kind, "-p", body
        )

    patch_cronjob("merge", '{"spec":{"schedule":"* * * * *"}}')
    # The pod template, which the cache keeps only as a digest (issue 11): a careless edit
    # of the image and of the credentials the purge reads must still be drift.
    patch_cronjob(
        "json",
        '[{"op":"replace","path":"/spec/jobTemplate/spec/template/spec/containers/0/image",'
        '"value":"evil.example/purge:latest"},'
        '{"op":"replace","path":"/spec/jobTemplate/spec/template/spec/containers/0/env/1/'
        'valueFrom/secretKeyRef/name","value":"someone-elses-secret"}]',
    )
    control_plane.kubectl(
        "patch",
        "rolebinding",
        "dataward-support-inquiries-readers",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"add","path":"/subjects/-","value":'
        '{"kind":"User","name":"intruder","apiGroup":"rbac.authorization.k8s.io"}}]',
    )

    def restored() -> bool:
        found = children(control_plane, namespace)
        policy_back = f"NetworkPolicy/{netpol}" in found
        cronjob = found["CronJob/dataward-support-inquiries-purge"]["spec"]
        container = cronjob["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        subjects = found["RoleBinding/dataward-support-inquiries-readers"]["subjects"]
        return (
            policy_back
            and cronjob["schedule"] == "17 3 * * *"
            and container["image"] != "evil.example/purge:latest"
            and container["env"][1]["valueFrom"]["secretKeyRef"]["name"] != "someone-elses-secret"
            and all(s["name"] != "intruder" for s in subjects)
        )

    wait_for(restored, timeout=30, message="children restored")
    wait_condition(control_plane, namespace, "support-inquiries", "Ready", "True")


PURGE = "dataward-support-inquiries-purge"
POD_SPEC = "/spec/jobTemplate/spec/template/spec"


def kubectl_json(plane: ControlPlane, *args: str, input: str | None = None) -> dict[str, Any]:
    """A kubectl command's `-o json` answer."""
    return dict(json.loads(plane.kubectl(*args, input=input).stdout))


def _add_env_by_json_patch(plane: ControlPlane, namespace: str) -> dict[str, Any]:
    """A careless user with patch rights: one more env variable in the purge container."""
    return kubectl_json(
        plane, "patch", "cronjob", PURGE, "-n", namespace, "--type", "json", "-o", "json", "-p",
        json.dumps([{"op": "add", "path": f"{POD_SPEC}/containers/0/env/-",
                     "value": {"name": "INTRUDER_PROXY", "value": "http://evil.example"}}]),
    )  # fmt: skip


def _add_volume_by_apply(plane: ControlPlane, namespace: str) -> dict[str, Any]:
    """An attacker's own field manager: a volume and its mount, by server-side apply."""
    live = get(plane, "cronjob", PURGE, namespace)
    assert live is not None
    container = live["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["name"]
    intrusion = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": PURGE, "namespace": namespace},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": container, "volumeMounts": [
                {"name": "loot", "mountPath": "/loot"}]}],
            "volumes": [{"name": "loot", "emptyDir": {}}],
        }}}}},
    }  # fmt: skip
    return kubectl_json(
        plane, "apply", "--server-side", "--field-manager=intruder", "-o", "json", "-f", "-",
        input=yaml.safe_dump(intrusion),
    )  # fmt: skip


@pytest.mark.parametrize("intrude", [_add_env_by_json_patch, _add_volume_by_apply])
def test_an_item_added_to_a_keyed_list_of_the_purge_cronjob_is_removed_and_then_left_alone(
    control_plane: ControlPlane, namespace: str, operator: OperatorProcess, intrude: Any
) -> None:
    # containers, env, volumes and volumeMounts are keyed lists (listType=map): a server-side
    # apply cannot remove an item another field manager owns. The CronJob must still come
    # back as the operator made it, once, and not be re-applied every resync.
    ready_store(control_plane, namespace)
    made = get(control_plane, "cronjob", PURGE, namespace)
    assert made is not None
    tampered = intrude(control_plane, namespace)  # the API server's answer to the intrusion
    pod = tampered["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert "INTRUDER_PROXY" in json.dumps(pod["containers"]) or any(
        v["name"] == "loot" for v in pod.get("volumes", [])
    ), "the intrusion took"

    def restored() -> bool:
        found = get(control_plane, "cronjob", PURGE, namespace)
        return found is not None and found["spec"] == made["spec"]

    wait_for(restored, timeout=15, message="the purge CronJob restored as rendered")
    wait_condition(control_plane, namespace, "support-inquiries", "PurgeScheduled", "True")
    sleep_for(2)  # the reconcile that saw the repair's echo
    since = datetime.now(UTC)
    sleep_for(20)  # resync every 5 s: several full reconciles
    # This namespace's only: the session operator may still be busy with an earlier test's
    # namespace, which is deleted in the background.
    ours = f" cronjobs {namespace}/"
    writes = [w for w in operator_writes(control_plane, operator.account, since) if ours in w]
    assert writes == [], f"{len(writes)} writes to the CronJob after its repair: {writes[:5]}"
    found = get(control_plane, "cronjob", PURGE, namespace)
    assert found is not None and found["spec"] == made["spec"]


NETPOL = "dataward-support-inquiries-isolation"
WORKLOAD_PORTS = [{"port": 5432, "protocol": "TCP"}]


def _watch_only(plane: ControlPlane, session: OperatorProcess, log: Path) -> OperatorProcess:
    """The session's operator with an hour's resync (its own Lease): what it repairs within
    a test's seconds, it repairs from a watch event."""
    args = session.session_args()
    args[args.index("--resync-seconds") + 1] = "3600"
    args += ["--lease-name", "dataward-watch-only"]
    return OperatorProcess(plane, session.kubeconfig, session.account, log, args)


def test_a_namespace_selector_added_to_a_network_policy_peer_is_removed_from_its_watch_event(
    control_plane: ControlPlane, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    """An attacker with patch rights on NetworkPolicies widens the allowFrom peer
    {podSelector: app=crm-api} to crm-api pods of every namespace (namespaceSelector: {}).
    The operator must put the policy back (NetworkIsolated turns True again), from the
    watch event: its resync is an hour here. Then it sends nothing more."""
    operator.stop()  # the session operator resyncs every 5 s: not during this test
    watcher = _watch_only(control_plane, operator, tmp_path / "watch-only.log")
    try:
        watcher.start()
        ready_store(control_plane, namespace)
        made = get(control_plane, "networkpolicy", NETPOL, namespace)
        assert made is not None
        assert made["spec"]["ingress"][0]["from"][0] == {
            "podSelector": {"matchLabels": {"app": "crm-api"}}}  # fmt: skip
        widened = kubectl_json(
            control_plane, "patch", "networkpolicy", NETPOL, "-n", namespace, "--type", "json",
            "-o", "json", "-p", json.dumps([{"op": "add", "value": {},
                                            "path": "/spec/ingress/0/from/0/namespaceSelector"}]),
        )  # fmt: skip
        assert widened["spec"]["ingress"][0]["from"][0].get("namespaceSelector") == {}, "took"

        def narrowed() -> bool:
            found = get(control_plane, "networkpolicy", NETPOL, namespace)
            return found is not None and found["spec"] == made["spec"]

        wait_for(narrowed, timeout=20, message="the widened peer narrowed again")
        wait_condition(
            control_plane, namespace, "support-inquiries", "NetworkIsolated", "True", timeout=30
        )
        sleep_for(2)  # the reconcile that saw the repair's echo
        since = datetime.now(UTC)
        sleep_for(8)
        ours = f" networkpolicies {namespace}/"
        writes = [w for w in operator_writes(control_plane, watcher.account, since) if ours in w]
        assert writes == [], f"writes to the NetworkPolicy after its repair: {writes}"
    finally:
        watcher.stop()
        operator.start()


def test_a_label_the_stores_workload_selector_drops_leaves_its_network_policy(
    control_plane: ControlPlane, namespace: str, operator: OperatorProcess
) -> None:
    """The NetworkPolicy was created (POST) with the workload selector's `tier: db`; the
    store's spec then drops that label. The live policy must lose it: the workload pods
    without it are the store's too, and would be left unisolated."""
    two = {"matchLabels": {"app": "crm-postgres", "tier": "db"}}
    ready_store(control_plane, namespace, workload={"podSelector": two, "ports": WORKLOAD_PORTS})
    made = get(control_plane, "networkpolicy", NETPOL, namespace)
    assert made is not None and made["spec"]["podSelector"] == two
    since = datetime.now(UTC)
    one = {"matchLabels": {"app": "crm-postgres"}}
    make_store(control_plane, namespace, workload={"podSelector": one, "ports": WORKLOAD_PORTS})

    def dropped() -> bool:
        found = get(control_plane, "networkpolicy", NETPOL, namespace)
        return found is not None and found["spec"]["podSelector"] == one

    wait_for(dropped, timeout=30, message="the dropped label gone from the NetworkPolicy")
    wait_condition(
        control_plane, namespace, "support-inquiries", "NetworkIsolated", "True", timeout=30
    )
    ours = f" networkpolicies {namespace}/"
    # How the label went (an apply alone, or an apply and an update), and who owns the
    # policy's fields now: for bench/notes/drift-exact.md.
    managed = kubectl_json(control_plane, "get", "networkpolicy", NETPOL, "-n", namespace,
                           "--show-managed-fields", "-o", "json")["metadata"]["managedFields"]
    print("writes to the NetworkPolicy:",
          [w for w in operator_writes(control_plane, operator.account, since) if ours in w],
          "managers:", [(m.get("manager"), m.get("operation")) for m in managed])


# A User only named like one of kube-system's ServiceAccounts (trusted by default) is no
# account (Kubernetes' SplitUsername wants two parts): a certificate or a proxy may name one.
@pytest.mark.parametrize("user", ["contractor", "system:serviceaccount:kube-system:x:evil"])
def test_a_foreign_binding_over_the_stores_secrets_turns_access_restricted_false(
    control_plane: ControlPlane, namespace: str, user: str
) -> None:
    ready_store(control_plane, namespace)
    apply(
        control_plane,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "debug-secrets", "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "debug-secrets", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "debug-secrets",
            },
            "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )
    assert review(control_plane, user, [], namespace, "get", None)  # the API server lets it
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "AccessRestricted", "False", timeout=30
    )
    message = condition(store, "AccessRestricted")["message"]
    assert "debug-secrets" in message and f"User {user}" in message
    assert condition(store, "Ready")["status"] == "False"
    control_plane.kubectl("delete", "rolebinding", "debug-secrets", "-n", namespace)
    wait_condition(
        control_plane, namespace, "support-inquiries", "AccessRestricted", "True", timeout=30
    )


def test_a_user_who_may_create_pods_in_the_namespace_turns_access_restricted_false(
    control_plane: ControlPlane, namespace: str
) -> None:
    """Whoever may create a pod in the store's namespace mounts its key ring into it: no rule
    on secrets, and still a reader. Turning True again once the binding is gone also shows
    the cluster's own pod makers (kube-controller-manager's controllers) are not counted."""
    ready_store(control_plane, namespace)
    apply(
        control_plane,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "pod-maker", "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "developer-pods", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-maker",
            },
            "subjects": [
                {"kind": "User", "name": "developer", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        },
    )
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "AccessRestricted", "False", timeout=30
    )
    found = condition(store, "AccessRestricted")
    assert found["reason"] == "WorkloadCreatorsCanMountSecrets"
    assert "RoleBinding " + namespace + "/developer-pods (role Role pod-maker)" in found["message"]
    assert "User developer" in found["message"]
    assert condition(store, "Ready")["status"] == "False"
    control_plane.kubectl("delete", "rolebinding", "developer-pods", "-n", namespace)
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "AccessRestricted", "True", timeout=30
    )
    assert condition(store, "AccessRestricted")["reason"] == "OnlyDeclaredReaders"


def test_a_user_who_may_impersonate_the_readers_account_turns_access_restricted_false(
    control_plane: ControlPlane, namespace: str
) -> None:
    """Whoever may impersonate the namespace's ServiceAccounts reads the key ring as the
    reader's account, with no rule on secrets or pods: the API server lets them, and the
    verdict says so. Impersonating users or groups granted by a RoleBinding does nothing
    (they are cluster-scoped): the API server refuses it, and the verdict does not count it."""
    ready_store(control_plane, namespace)
    ring = "secret/dataward-support-inquiries-keyring"
    reader = f"system:serviceaccount:{namespace}:crm-api"
    user = control_plane.kubeconfig_for_user("ci-deployer")

    def read_ring_as(*impersonation: str) -> subprocess.CompletedProcess[str]:
        # -o name: the answer shows that the read was allowed, not the key material.
        return control_plane.kubectl("get", ring, "-n", namespace, "-o", "name",
                                     *impersonation, kubeconfig=user, check=False)  # fmt: skip

    assert read_ring_as("--as", reader).returncode != 0  # no right to impersonate yet

    def grant(name: str, resources: list[str]) -> list[dict[str, Any]]:
        return [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": name, "namespace": namespace},
             "rules": [{"apiGroups": [""], "resources": resources, "verbs": ["impersonate"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": name, "namespace": namespace},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
             "subjects": [{"kind": "User", "name": "ci-deployer",
                           "apiGroup": "rbac.authorization.k8s.io"}]},
        ]  # fmt: skip

    apply(control_plane, *grant("ci-as-anyone", ["users", "groups"]),
          *grant("ci-as-accounts", ["serviceaccounts"]))  # fmt: skip
    wait_for(lambda: read_ring_as("--as", reader).returncode == 0, 30,
             "ci-deployer never read the key ring as the reader's account")  # fmt: skip
    assert read_ring_as("--as", reader).stdout.strip() == ring
    refused = read_ring_as("--as", "admin", "--as-group", "system:masters")
    assert refused.returncode != 0 and "impersonate" in refused.stderr
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "AccessRestricted", "False", timeout=30
    )
    found = condition(store, "AccessRestricted")
    assert found["reason"] == "EscalatorsCanReadSecrets"
    assert f"RoleBinding {namespace}/ci-as-accounts (role Role ci-as-accounts)" in found["message"]
    assert "User ci-deployer" in found["message"]
    assert "ci-as-anyone" not in found["message"]
    assert condition(store, "Ready")["status"] == "False"
    control_plane.kubectl("delete", "rolebinding", "ci-as-accounts", "-n", namespace)
    # The RoleBinding to impersonate users and groups is still there: True all the same.
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "AccessRestricted", "True", timeout=30
    )
    assert condition(store, "AccessRestricted")["reason"] == "OnlyDeclaredReaders"


# Cluster-scoped grants that make their holder someone who reads a store's Secrets: each
# rule, and the requests (a SubjectAccessReview's resourceAttributes) the API server then
# allows its holder.
CLUSTER_ESCALATIONS = {
    "webhooks": (
        [{"apiGroups": ["admissionregistration.k8s.io"],
          "resources": ["mutatingwebhookconfigurations"], "verbs": ["create"]}],
        [{"verb": "create", "group": "admissionregistration.k8s.io",
          "resource": "mutatingwebhookconfigurations"}],
    ),
    "volumes": (
        [{"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["create"]}],
        [{"verb": "create", "resource": "persistentvolumes"}],
    ),
    "certificates": (
        [{"apiGroups": ["certificates.k8s.io"],
          "resources": ["certificatesigningrequests/approval"], "verbs": ["update"]},
         {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
          "resourceNames": ["kubernetes.io/kube-apiserver-client"]}],
        [{"verb": "update", "group": "certificates.k8s.io",
          "resource": "certificatesigningrequests", "subresource": "approval",
          "name": "ci-login"},
         {"verb": "approve", "group": "certificates.k8s.io", "resource": "signers",
          "name": "kubernetes.io/kube-apiserver-client"}],
    ),
    # What kube-controller-manager's csrapproving controller asks before it approves, with no
    # one asked, a request for any node's client certificate (a node reads its pods' Secrets).
    "node-clients": (
        [{"apiGroups": ["certificates.k8s.io"],
          "resources": ["certificatesigningrequests/nodeclient"], "verbs": ["create"]}],
        [{"verb": "create", "group": "certificates.k8s.io",
          "resource": "certificatesigningrequests", "subresource": "nodeclient"}],
    ),
}  # fmt: skip


@pytest.mark.parametrize("grant", sorted(CLUSTER_ESCALATIONS))
def test_cluster_wide_webhook_volume_or_certificate_grants_turn_access_restricted_false(
    control_plane: ControlPlane, namespace: str, grant: str
) -> None:
    """A ClusterRoleBinding that lets a CI user write an admission webhook, make a
    PersistentVolume or approve a CertificateSigningRequest makes the store False, naming it;
    gone, True again. The store was Ready first: none of the default ClusterRoleBindings of a
    fresh control plane (the certificate and volume controllers hold these grants) counts."""
    rules, asks = CLUSTER_ESCALATIONS[grant]
    name = f"ci-{grant}-{namespace}"  # cluster-scoped: one per test's namespace
    ready_store(control_plane, namespace)

    assert not any(deployer_may(control_plane, ask) for ask in asks)
    try:
        apply(
            control_plane,
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": name}, "rules": rules},
            ci_deployer_binding(name, name),
        )  # fmt: skip
        wait_for(lambda: all(deployer_may(control_plane, ask) for ask in asks), 30,
                 f"ci-deployer never held {grant}")
        store, found = escalation_found(control_plane, namespace)
        assert f"ClusterRoleBinding {name} (role ClusterRole {name})" in found["message"]
        assert "User ci-deployer" in found["message"]
        assert condition(store, "Ready")["status"] == "False"
        access_restored_without(control_plane, namespace, name)
    finally:
        control_plane.kubectl("delete", "clusterrolebinding,clusterrole", name,
                              "--ignore-not-found", check=False)  # fmt: skip


def test_certificate_approval_split_over_two_cluster_role_bindings_turns_access_restricted_false(
    control_plane: ControlPlane, namespace: str
) -> None:
    """The built-in kube-apiserver-client-approver ClusterRole (approve on the signer) and a
    ClusterRole with update on the approval subresource, each bound to the CI user: the API
    server lets it approve, and the store is False naming both bindings; one gone, True."""
    ready_store(control_plane, namespace)
    signer = "system:certificates.k8s.io:kube-apiserver-client-approver"
    writer = f"ci-approval-{namespace}"
    _, asks = CLUSTER_ESCALATIONS["certificates"]

    try:
        apply(
            control_plane,
            approval_writer(writer),
            ci_deployer_binding(writer, writer),
            ci_deployer_binding(f"ci-signer-{namespace}", signer),
        )  # fmt: skip
        wait_for(lambda: all(deployer_may(control_plane, ask) for ask in asks), 30,
                 "ci-deployer never could approve")
        _, found = escalation_found(control_plane, namespace)
        assert f"ClusterRoleBinding {writer} (role ClusterRole {writer})" in found["message"]
        assert (
            f"ClusterRoleBinding ci-signer-{namespace} (role ClusterRole {signer})"
            in found["message"]
        )
        assert "let User ci-deployer" in found["message"]
        access_restored_without(control_plane, namespace, writer)
    finally:
        control_plane.kubectl("delete", "clusterrolebinding", writer, f"ci-signer-{namespace}",
                              "--ignore-not-found", check=False)  # fmt: skip
        control_plane.kubectl("delete", "clusterrole", writer, "--ignore-not-found",
                              check=False)  # fmt: skip


def test_approving_only_kubelet_serving_certificates_is_not_counted_but_node_clients_are(
    control_plane: ControlPlane, namespace: str
) -> None:
    """The built-in kubelet-serving-approver ClusterRole (approve on the
    kubernetes.io/kubelet-serving signer alone, whose certificates authenticate no one) and a
    ClusterRole with update on the approval subresource, both bound to the CI user, count for
    nothing; a third ClusterRoleBinding, create on certificatesigningrequests/nodeclient,
    makes the store False naming it alone; gone, True again."""
    ready_store(control_plane, namespace)
    signer = "system:certificates.k8s.io:kubelet-serving-approver"
    writer = f"ci-serving-approval-{namespace}"
    nodes = f"ci-node-clients-{namespace}"
    node_rules, node_asks = CLUSTER_ESCALATIONS["node-clients"]
    asks = [
        {"verb": "update", "group": "certificates.k8s.io",
         "resource": "certificatesigningrequests", "subresource": "approval", "name": "k1"},
        {"verb": "approve", "group": "certificates.k8s.io", "resource": "signers",
         "name": "kubernetes.io/kubelet-serving"},
        *node_asks,
    ]  # fmt: skip
    refused = {"verb": "approve", "group": "certificates.k8s.io", "resource": "signers",
               "name": "kubernetes.io/kube-apiserver-client-kubelet"}  # fmt: skip

    try:
        apply(
            control_plane,
            approval_writer(writer),
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": nodes}, "rules": node_rules},
            ci_deployer_binding(writer, writer),
            ci_deployer_binding(f"ci-serving-signer-{namespace}", signer),
            ci_deployer_binding(nodes, nodes),
        )  # fmt: skip
        wait_for(lambda: all(deployer_may(control_plane, ask) for ask in asks), 30,
                 "ci-deployer never held the grants")
        assert not deployer_may(control_plane, refused)
        _, found = escalation_found(control_plane, namespace)
        assert f"ClusterRoleBinding {nodes} (role ClusterRole {nodes})" in found["message"]
        assert writer not in found["message"] and signer not in found["message"]
        access_restored_without(control_plane, namespace, nodes)
    finally:
        control_plane.kubectl("delete", "clusterrolebinding", writer, nodes,
                              f"ci-serving-signer-{namespace}", "--ignore-not-found",
                              check=False)  # fmt: skip
        control_plane.kubectl("delete", "clusterrole", writer, nodes, "--ignore-not-found",
                              check=False)  # fmt: skip


def test_a_network_policy_made_before_the_store_under_its_childs_name_is_never_adopted(
    control_plane: ControlPlane, namespace: str
) -> None:
    """Never adopt what the operator did not make: an admin's NetworkPolicy of the name the
    store's would have (admitting everything) is neither changed nor counted as the store's."""
    name = "dataward-support-inquiries-isolation"
    apply(
        control_plane,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]},
        },
    )
    before = kubectl_json(control_plane, "get", "networkpolicy", name, "-n", namespace,
                          "--show-managed-fields", "-o", "json")  # fmt: skip
    make_store(control_plane, namespace)
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "NetworkIsolated", "False",
        reason="ChildNotCreatedByOperator", timeout=60,
    )  # fmt: skip
    message = condition(store, "NetworkIsolated")["message"]
    assert f"NetworkPolicy {namespace}/{name}" in message
    assert condition(store, "Ready")["status"] == "False"
    # The other children are the store's own, made.
    assert get(control_plane, "cronjob", "dataward-support-inquiries-purge", namespace)
    after = kubectl_json(control_plane, "get", "networkpolicy", name, "-n", namespace,
                         "--show-managed-fields", "-o", "json")  # fmt: skip
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"] == before["spec"]
    assert not after["metadata"].get("ownerReferences")
    assert "dataward" not in {m.get("manager") for m in after["metadata"]["managedFields"]}
    # Once it is deleted the operator makes the store's own.
    control_plane.kubectl("delete", "networkpolicy", name, "-n", namespace)
    wait_condition(
        control_plane, namespace, "support-inquiries", "NetworkIsolated", "True", timeout=90
    )


def test_a_retention_longer_than_the_category_allows_suspends_the_purge(
    control_plane: ControlPlane, namespace: str
) -> None:
    make_store(control_plane, namespace, retention="2y")
    store = wait_condition(
        control_plane,
        namespace,
        "support-inquiries",
        "PolicyCompliant",
        "False",
        "RetentionTooLong",
    )
    assert "1y" in condition(store, "PolicyCompliant")["message"]
    cronjob = wait_for(
        lambda: get(control_plane, "cronjob", "dataward-support-inquiries-purge", namespace),
        timeout=30,
        message="CronJob",
    )
    assert cronjob["spec"]["suspend"] is True
    assert condition(store, "PurgeScheduled")["status"] == "False"


def test_a_policy_change_reconciles_every_store_that_uses_it(
    control_plane: ControlPlane, namespace: str
) -> None:
    policy = load_example(POLICY)
    policy["metadata"]["name"] = f"policy-{namespace}"[:63]
    apply(control_plane, policy)
    ready_store(control_plane, namespace, policy=policy["metadata"]["name"])
    for category in policy["spec"]["categories"]:
        if category["name"] == "technical-support-inquiry":
            category["retention"]["period"] = "90d"  # now shorter than the store's 180d
    # A revision waits out its notice period (e2e/test_policy_revisions.py); this one is to
    # take effect at once, which only an emergency override allows.
    policy["spec"]["emergency"] = {"reason": "e2e: the stores must be judged by it at once"}
    apply(control_plane, policy)
    wait_condition(
        control_plane,
        namespace,
        "support-inquiries",
        "PolicyCompliant",
        "False",
        "RetentionTooLong",
        timeout=30,
    )
    status = wait_for(
        lambda: (
            (get(control_plane, "ppol", policy["metadata"]["name"]) or {})
            .get("status", {})
            .get("stores")
            == 1
            or None
        ),
        timeout=30,
        message="the policy counts its store",
    )
    assert status


def key_ring_data(plane: ControlPlane, namespace: str) -> dict[str, str]:
    secret = get(plane, "secret", "dataward-support-inquiries-keyring", namespace)
    assert secret is not None
    return dict(secret["data"])


def test_an_operator_killed_mid_reconcile_converges_to_the_same_state_and_key_bytes(
    control_plane: ControlPlane, namespace: str, operator: OperatorProcess
) -> None:
    make_store(control_plane, namespace)
    # Kill it as soon as the key ring exists, most likely with status not yet written.
    wait_for(
        lambda: get(control_plane, "secret", "dataward-support-inquiries-keyring", namespace),
        timeout=30,
        interval=0.02,
        message="key ring created",
    )
    operator.stop(signal.SIGKILL)
    before = key_ring_data(control_plane, namespace)
    operator.start()
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "Ready", "True", timeout=90
    )
    assert key_ring_data(control_plane, namespace) == before
    first = {
        k: v["metadata"].get("resourceVersion")
        for k, v in children(control_plane, namespace).items()
    }
    operator.stop(signal.SIGKILL)
    operator.start()
    wait_for(
        lambda: "acquired lease" in operator.logs().split(f"--- start {operator.starts}")[-1],
        timeout=60,
        message="the restarted operator leads again",
    )
    sleep_for(8)  # a few resyncs
    assert key_ring_data(control_plane, namespace) == before
    again = {
        k: v["metadata"].get("resourceVersion")
        for k, v in children(control_plane, namespace).items()
    }
    assert again == first, "a restart with nothing changed must rewrite nothing"
    assert (
        condition(get(control_plane, "pds", "support-inquiries", namespace), "Ready")["status"]
        == "True"
    )
    assert store["status"]["encryption"]["primaryKeyId"] == 1


def test_a_deleted_key_ring_is_reported_and_never_regenerated(
    control_plane: ControlPlane, namespace: str
) -> None:
    ready_store(control_plane, namespace)
    control_plane.kubectl("delete", "secret", "dataward-support-inquiries-keyring", "-n", namespace)
    store = wait_condition(
        control_plane,
        namespace,
        "support-inquiries",
        "EncryptionKeyReady",
        "False",
        "KeyRingMissing",
        timeout=30,
    )
    assert "backup" in condition(store, "EncryptionKeyReady")["message"]
    sleep_for(6)
    assert get(control_plane, "secret", "dataward-support-inquiries-keyring", namespace) is None


def test_a_key_ring_changed_out_of_band_is_reported_not_overwritten(
    control_plane: ControlPlane, namespace: str
) -> None:
    ready_store(control_plane, namespace)
    data = key_ring_data(control_plane, namespace)
    ring = json.loads(base64.b64decode(data["keyring.json"]))
    ring["keys"][0]["material"] = base64.b64encode(os.urandom(32)).decode()
    forged = base64.b64encode(json.dumps(ring).encode()).decode()
    control_plane.kubectl(
        "patch",
        "secret",
        "dataward-support-inquiries-keyring",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        json.dumps({"data": {"keyring.json": forged}}),
    )
    wait_condition(
        control_plane,
        namespace,
        "support-inquiries",
        "EncryptionKeyReady",
        "False",
        "KeyMaterialChanged",
        timeout=30,
    )
    assert key_ring_data(control_plane, namespace)["keyring.json"] == forged


def _delete_and_collect(control_plane: ControlPlane, namespace: str) -> None:
    """`kubectl delete` the store; back once the garbage collector has taken its children."""
    control_plane.kubectl("delete", "pds", "support-inquiries", "-n", namespace)
    wait_for(
        lambda: (
            get(control_plane, "networkpolicy", "dataward-support-inquiries-isolation", namespace)
            is None
        ),
        timeout=60,
        message="children garbage-collected",
    )


def test_deleting_a_store_under_retain_keeps_its_key_ring_without_an_owner(
    control_plane: ControlPlane, namespace: str
) -> None:
    ready_store(control_plane, namespace)
    data = key_ring_data(control_plane, namespace)
    _delete_and_collect(control_plane, namespace)
    secret = get(control_plane, "secret", "dataward-support-inquiries-keyring", namespace)
    assert secret is not None and secret["data"] == data
    assert not secret["metadata"].get("ownerReferences")


def test_deleting_a_store_under_delete_destroys_its_key_ring_only_after_the_grace_period(
    control_plane: ControlPlane, namespace: str
) -> None:
    ready_store(control_plane, namespace, deletionPolicy="Delete")
    store = get(control_plane, "pds", "support-inquiries", namespace)
    assert store is not None
    assert "dataward.io/key-ring-grace-period" in store["metadata"].get("finalizers", [])
    secret = get(control_plane, "secret", "dataward-support-inquiries-keyring", namespace)
    assert secret is not None and secret["metadata"]["ownerReferences"]
    control_plane.kubectl("delete", "pds", "support-inquiries", "-n", namespace, "--wait=false")
    terminating = wait_for(
        lambda: ((get(control_plane, "pds", "support-inquiries", namespace) or {}).get("status")
                 or {}).get("encryption", {}).get("scheduledDeletion"),
        timeout=30, message="status shows when the key ring will be destroyed")
    assert terminating
    assert get(control_plane, "secret", "dataward-support-inquiries-keyring", namespace)
    wait_for(lambda: get(control_plane, "pds", "support-inquiries", namespace) is None,
             timeout=KEY_RING_GRACE_SECONDS + 40, message="the store released after the grace")
    wait_for(lambda: get(control_plane, "secret", "dataward-support-inquiries-keyring",
                         namespace) is None, timeout=30, message="the key ring destroyed")


def test_a_store_edited_from_delete_to_retain_keeps_its_key_ring_when_deleted(
    control_plane: ControlPlane, namespace: str
) -> None:
    # The ring was made owned by the store (Delete); the spec then says Retain. The real
    # garbage collector must not take the ring with the store.
    ready_store(control_plane, namespace, deletionPolicy="Delete")
    data = key_ring_data(control_plane, namespace)
    control_plane.kubectl("patch", "pds", "support-inquiries", "-n", namespace, "--type=merge",
                          "-p", '{"spec":{"deletionPolicy":"Retain"}}')  # fmt: skip
    wait_for(
        lambda: "dataward.io/key-ring-grace-period" not in (
            (get(control_plane, "pds", "support-inquiries", namespace) or {}).get("metadata", {})
            .get("finalizers") or []),
        timeout=60, message="the grace finalizer gone under Retain",
    )  # fmt: skip
    secret = get(control_plane, "secret", "dataward-support-inquiries-keyring", namespace)
    assert secret is not None and not secret["metadata"].get("ownerReferences")
    _delete_and_collect(control_plane, namespace)
    secret = get(control_plane, "secret", "dataward-support-inquiries-keyring", namespace)
    assert secret is not None and secret["data"] == data, "the key ring went with the store"


def test_a_canary_password_appears_in_no_log_event_or_object(
    control_plane: ControlPlane, namespace: str, operator: OperatorProcess
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    ready_store(control_plane, namespace, password=canary)
    material = json.loads(
        base64.b64decode(key_ring_data(control_plane, namespace)["keyring.json"])
    )["keys"][0]["material"]
    # Make the operator talk about the store: a failing condition and its Event.
    control_plane.kubectl(
        "patch",
        "pds",
        "support-inquiries",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"spec":{"retention":"2y"}}',
    )
    wait_condition(control_plane, namespace, "support-inquiries", "PolicyCompliant", "False")
    places = {
        "operator log": operator.logs(),
        "events": control_plane.kubectl("get", "events", "-n", namespace, "-o", "yaml").stdout,
        "store": control_plane.kubectl("get", "pds", "-n", namespace, "-o", "yaml").stdout,
        "audit log": control_plane.audit_log.read_text(errors="replace"),
    }
    for where, text in places.items():
        assert canary not in text, f"the credentials' password leaked into the {where}"
        assert material not in text, f"key material leaked into the {where}"


def operator_writes(plane: ControlPlane, account: str, since: datetime) -> list[str]:
    """Mutating requests by the operator's ServiceAccount since `since`, leases excepted."""
    user = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{account}"
    writes = []
    for event in plane.audit_events():
        if (
            event.get("stage") != "ResponseComplete"
            or event.get("user", {}).get("username") != user
        ):
            continue
        when = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        ref = event.get("objectRef") or {}
        if when >= since and event.get("verb") in WRITE_VERBS and ref.get("resource") != "leases":
            writes.append(
                f"{event['verb']} {ref.get('resource')} {ref.get('namespace')}/{ref.get('name')}"
            )
    return writes


def _terminating(control_plane: ControlPlane) -> list[str]:
    """The namespaces being deleted."""
    found = json.loads(control_plane.kubectl("get", "namespaces", "-o", "json").stdout)
    return [n["metadata"]["name"] for n in found["items"]
            if (n.get("status") or {}).get("phase") == "Terminating"]  # fmt: skip


def test_steady_state_sends_no_writes_for_minutes(
    control_plane: ControlPlane, namespace: str, operator: OperatorProcess
) -> None:
    ready_store(control_plane, namespace)
    # An earlier test's namespace still terminating takes its store (of the same policy) with
    # it, and the operator rightly writes the policy's counts: wait until none is.
    wait_for(lambda: not _terminating(control_plane), timeout=180,
             message="earlier tests' namespaces gone")  # fmt: skip
    sleep_for(6)  # let the first resync after Ready pass
    since = datetime.now(UTC)
    sleep_for(STEADY_SECONDS)  # resync runs every 5 s: dozens of full reconciles of every store
    assert operator.alive()
    writes = operator_writes(control_plane, operator.account, since)
    assert writes == [], f"{len(writes)} writes in steady state: {writes[:10]}"
    # The window really was watched: the operator was reading all along.
    reads = [
        e
        for e in control_plane.audit_events()
        if e.get("user", {}).get("username", "").endswith(f":{operator.account}")
        and e.get("verb") == "get"
        and datetime.fromisoformat(e["requestReceivedTimestamp"].replace("Z", "+00:00")) >= since
    ]
    assert len(reads) > 10, f"only {len(reads)} reads: the operator was not reconciling"


def _shard(
    plane: ControlPlane, session: OperatorProcess, log: Path, shard: str, *extra: str,
    metrics_port: int = 0,
) -> OperatorProcess:
    """A shard of the operator: its own Lease and namespace selector, an hour's resync."""
    args = session._session_args()
    args[args.index("--resync-seconds") + 1] = "3600"  # so a repair can only come from a watch
    args[args.index("--metrics-port") + 1] = str(metrics_port)
    args += ["--lease-name", f"dataward-shard-{shard}",
             "--namespace-selector", f"{SHARD_LABEL}={shard}", *extra]  # fmt: skip
    return OperatorProcess(plane, session.kubeconfig, session.account, log, args)


SHARD_LABEL = "e2e.dataward.io/shard"


def cached_objects(port: int, kind: str) -> int | None:
    """`dataward_cached_objects{kind=...}` on the operator's /metrics (None: not served yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "dataward_cached_objects" and sample.labels.get("kind") == kind:
                return int(sample.value)
    return None


def test_two_shards_serve_disjoint_namespaces_and_one_counts_every_store(
    control_plane: ControlPlane, operator: OperatorProcess, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    spaces = {shard: f"e2e-shard-{shard}-{suffix}" for shard in ("a", "b")}
    for shard, name in spaces.items():
        control_plane.kubectl("create", "namespace", name)
        control_plane.kubectl("label", "namespace", name, f"{SHARD_LABEL}={shard}")
    # A shard lists and watches the namespaces its selector matches: the chart's default
    # ClusterRole grants that (the operator of every namespace caches them all).
    operator.stop()  # the session operator serves every namespace: not during this test
    port = free_port()
    shards = {
        "a": _shard(control_plane, operator, tmp_path / "a.log", "a", metrics_port=port),
        "b": _shard(control_plane, operator, tmp_path / "b.log", "b", "--no-policy-status"),
    }
    try:
        for process in shards.values():
            process.start()
        for name in spaces.values():
            wait_for(
                lambda name=name: get(control_plane, "serviceaccount", "default", name),
                timeout=30, message=f"ServiceAccount default in {name}",
            )  # fmt: skip
            make_store(control_plane, name)
        for name in spaces.values():
            wait_condition(control_plane, name, "support-inquiries", "Ready", "True", timeout=90)
        for shard, process in shards.items():
            other = spaces["b" if shard == "a" else "a"]
            assert f" {spaces[shard]}/" in process.logs(), f"shard {shard} applied nothing"
            assert f" {other}/" not in process.logs(), f"shard {shard} served {other}"

        # The policy's count is every shard's stores: shard a counts them, b writes none.
        policy = load_example(POLICY)["metadata"]["name"]

        def counted() -> bool:
            stores = json.loads(control_plane.kubectl("get", "pds", "-A", "-o", "json").stdout)
            expected = sum(1 for s in stores["items"] if s["spec"].get("policy") == policy)
            found = get(control_plane, "privacypolicy", policy) or {}
            return bool((found.get("status") or {}).get("stores") == expected)

        wait_for(counted, timeout=60, message="the policy counts the stores of both shards")

        # Shard a caches the NetworkPolicies, Roles and RoleBindings of its namespace alone,
        # not b's nor those of every other namespace of the cluster.
        for kind, resource in (("NetworkPolicy", "networkpolicies"), ("Role", "roles"),
                               ("RoleBinding", "rolebindings")):  # fmt: skip
            def listed(namespace: str | None, resource: str = resource) -> int:
                where = ["-n", namespace] if namespace else ["-A"]
                out = control_plane.kubectl("get", resource, *where, "-o", "json").stdout
                return len(json.loads(out)["items"])

            assert listed(spaces["b"]) > 0 and listed(None) > listed(spaces["a"]) > 0
            wait_for(
                lambda kind=kind, listed=listed: cached_objects(port, kind) == listed(spaces["a"]),
                timeout=30, message=f"shard a caches the {kind}s of its namespace only",
            )  # fmt: skip

        # A deleted child comes back from the watch event, not a timer (the resync is an hour).
        netpol = "dataward-support-inquiries-isolation"
        control_plane.kubectl("delete", "networkpolicy", netpol, "-n", spaces["b"])
        wait_for(
            lambda: get(control_plane, "networkpolicy", netpol, spaces["b"]),
            timeout=20, message="the deleted NetworkPolicy restored by its watch event",
        )  # fmt: skip
    finally:
        for process in shards.values():
            process.stop()
        apply(control_plane, *[d for d in chart_rbac() if d["kind"] == "ClusterRole"])
        operator.start()
        for name in spaces.values():
            control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)
