"""AccessRestricted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from dataward.checks.access import DEFAULT_TRUSTED, access_restricted
from dataward.checks.observed import BindingSubject, RbacSnapshot, TrustedSubjects
from dataward.model.store import parse_store
from dataward.render import RenderSettings, render_children
from dataward.render.rbac import store_secrets
from tests.model import samples

STORE = parse_store(samples.STORE)
SECRETS = store_secrets(STORE)
DESIRED = [
    child
    for child in render_children(STORE, None, RenderSettings())
    if child["kind"] in ("Role", "RoleBinding")
]
OWN_ROLES = [c for c in DESIRED if c["kind"] == "Role"]
OWN_BINDINGS = [c for c in DESIRED if c["kind"] == "RoleBinding"]


def role(
    name: str, rules: list[dict[str, Any]], kind: str = "ClusterRole", namespace: str = "crm"
) -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if kind == "Role" else {})}
    return {"kind": kind, "metadata": metadata, "rules": rules}


def binding(
    name: str,
    role_name: str,
    subjects: list[dict[str, Any]],
    kind: str = "RoleBinding",
    role_kind: str = "ClusterRole",
    namespace: str = "crm",
) -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if kind == "RoleBinding" else {})}
    return {
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": subjects,
    }


ALICE = [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]
SECRET_READER = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]


def check(
    bindings: Sequence[dict[str, Any]] = (),
    roles: Sequence[dict[str, Any]] = (),
    own_bindings: list[dict[str, Any]] | None = None,
    own_roles: list[dict[str, Any]] | None = None,
    trusted: TrustedSubjects = DEFAULT_TRUSTED,
) -> tuple[str, str, str]:
    snapshot = RbacSnapshot.from_api(
        [*(OWN_BINDINGS if own_bindings is None else own_bindings), *bindings],
        [*(OWN_ROLES if own_roles is None else own_roles), *roles],
    )
    condition = access_restricted("crm", SECRETS, DESIRED, snapshot, trusted)
    assert condition.type == "AccessRestricted"
    return condition.status, condition.reason, condition.message


def test_true_with_only_the_stores_own_bindings() -> None:
    assert check()[:2] == ("True", "OnlyDeclaredReaders")


def test_unknown_when_rbac_cannot_be_read() -> None:
    condition = access_restricted("crm", SECRETS, DESIRED, None)
    assert (condition.status, condition.reason) == ("Unknown", "RBACUnreadable")


def test_false_when_an_own_binding_is_missing() -> None:
    status, reason, message = check(own_bindings=OWN_BINDINGS[1:])
    assert (status, reason) == ("False", "AccessControlsMissing")
    assert "dataward-support-inquiries-readers" in message


def test_false_when_an_own_role_was_widened() -> None:
    widened = [dict(OWN_ROLES[0], rules=SECRET_READER), OWN_ROLES[1]]
    assert check(own_roles=widened)[1] == "AccessControlsDrifted"


def test_false_when_a_subject_was_added_to_the_reader_binding() -> None:
    edited = [dict(OWN_BINDINGS[0], subjects=OWN_BINDINGS[0]["subjects"] + ALICE), OWN_BINDINGS[1]]
    assert check(own_bindings=edited)[1] == "AccessControlsDrifted"


def test_reordered_rules_and_subjects_are_not_drift() -> None:
    reader_binding = dict(OWN_BINDINGS[0], subjects=OWN_BINDINGS[0]["subjects"][::-1])
    purge_role = dict(OWN_ROLES[1], rules=OWN_ROLES[1]["rules"][::-1])
    result = check(
        own_bindings=[reader_binding, OWN_BINDINGS[1]], own_roles=[OWN_ROLES[0], purge_role]
    )
    assert result[0] == "True"


def test_a_foreign_rolebinding_over_secrets_is_named() -> None:
    status, reason, message = check(
        [binding("peek", "secret-reader", ALICE)], [role("secret-reader", SECRET_READER)]
    )
    assert (status, reason) == ("False", "OtherBindingGrantsSecrets")
    assert "RoleBinding crm/peek" in message
    assert "User alice" in message
    assert "spec.access.readers" in message


def test_a_cluster_role_binding_counts_in_every_namespace() -> None:
    status, _, message = check(
        [binding("peek-all", "secret-reader", ALICE, kind="ClusterRoleBinding")],
        [role("secret-reader", SECRET_READER)],
    )
    assert status == "False"
    assert "ClusterRoleBinding peek-all" in message


def test_a_rolebinding_in_another_namespace_does_not_count() -> None:
    other = binding("peek", "secret-reader", ALICE, namespace="elsewhere")
    assert check([other], [role("secret-reader", SECRET_READER)])[0] == "True"


def test_a_namespaced_role_counts() -> None:
    foreign = binding("peek", "local-reader", ALICE, role_kind="Role")
    local = role("local-reader", SECRET_READER, kind="Role")
    assert check([foreign], [local])[0] == "False"
    # The same Role name in another namespace grants nothing here.
    elsewhere = role("local-reader", SECRET_READER, kind="Role", namespace="other")
    assert check([foreign], [elsewhere])[0] == "True"


@pytest.mark.parametrize(
    "rule",
    [
        {"apiGroups": ["*"], "resources": ["secrets"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["*"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["watch"]},
        # A patch answers with the whole object: an empty patch reads the Secret's data.
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["patch"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["patch"],
            "resourceNames": ["dataward-support-inquiries-keyring"],
        },
        # A deletecollection answers with the list it deleted, data and all, even with
        # dryRun=All (nothing deleted); a delete answers with the Secret when a finalizer
        # holds it (both seen on kube-apiserver v1.37, bench/notes/audit.md).
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["deletecollection"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["delete"],
            "resourceNames": ["dataward-support-inquiries-keyring"],
        },
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get"],
            "resourceNames": ["crm-postgres-purger"],
        },
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get"],
            "resourceNames": ["dataward-support-inquiries-keyring"],
        },
    ],
)
def test_rules_that_reach_the_stores_secrets(rule: dict[str, Any]) -> None:
    assert check([binding("b", "r", ALICE)], [role("r", [rule])])[0] == "False"


@pytest.mark.parametrize(
    "rule",
    [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get"],
            "resourceNames": ["unrelated"],
        },
        # A PUT answers with what it sent; a create of an existing name with a Conflict.
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "update"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]},
        {"apiGroups": ["apps"], "resources": ["secrets"], "verbs": ["get"]},
        {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
    ],
)
def test_rules_that_do_not_reach_the_stores_secrets(rule: dict[str, Any]) -> None:
    assert check([binding("b", "r", ALICE)], [role("r", [rule])])[0] == "True"


def test_a_binding_to_a_role_that_does_not_exist_grants_nothing() -> None:
    assert check([binding("b", "ghost", ALICE)])[0] == "True"


def test_platform_subjects_are_trusted_but_broad_groups_are_not() -> None:
    admin = role("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])
    masters = binding(
        "cluster-admin",
        "cluster-admin",
        [{"kind": "Group", "name": "system:masters", "apiGroup": "rbac.authorization.k8s.io"}],
        kind="ClusterRoleBinding",
    )
    controllers = binding(
        "system:controller:namespace-controller",
        "cluster-admin",
        [{"kind": "ServiceAccount", "name": "namespace-controller", "namespace": "kube-system"}],
        kind="ClusterRoleBinding",
    )
    assert check([masters, controllers], [admin])[0] == "True"
    everyone = binding(
        "oops",
        "cluster-admin",
        [
            {
                "kind": "Group",
                "name": "system:authenticated",
                "apiGroup": "rbac.authorization.k8s.io",
            }
        ],
        kind="ClusterRoleBinding",
    )
    status, _, message = check([masters, everyone], [admin])
    assert status == "False"
    assert "Group system:authenticated" in message and "cluster-admin" not in message.split(":")[0]


def test_the_operator_service_account_can_be_trusted() -> None:
    operator = binding(
        "dataward-operator",
        "secret-reader",
        [{"kind": "ServiceAccount", "name": "dataward", "namespace": "dataward-system"}],
        kind="ClusterRoleBinding",
    )
    roles = [role("secret-reader", SECRET_READER)]
    assert check([operator], roles)[0] == "False"
    trusted = TrustedSubjects().with_service_account("dataward-system", "dataward")
    assert check([operator], roles, trusted=trusted)[0] == "True"


def test_a_binding_mixing_trusted_and_untrusted_subjects_names_only_the_untrusted() -> None:
    mixed = binding(
        "mixed",
        "secret-reader",
        [{"kind": "Group", "name": "system:masters"}, *ALICE],
    )
    status, _, message = check([mixed], [role("secret-reader", SECRET_READER)])
    assert status == "False"
    assert "User alice" in message and "system:masters" not in message


def test_many_foreign_bindings_are_summarised() -> None:
    bindings = [binding(f"b{i}", "secret-reader", ALICE) for i in range(5)]
    message = check(bindings, [role("secret-reader", SECRET_READER)])[2]
    assert "and 2 more" in message


@pytest.mark.parametrize(
    ("subject", "trusted"),
    [
        (BindingSubject("Group", "system:masters"), True),
        (BindingSubject("Group", "system:authenticated"), False),
        (BindingSubject("Group", "system:serviceaccounts"), False),
        (BindingSubject("Group", "system:serviceaccounts:crm"), False),
        (BindingSubject("User", "system:kube-controller-manager"), True),
        (BindingSubject("User", "system:anonymous"), False),
        (BindingSubject("User", "system:serviceaccount:kube-system:foo"), True),
        (BindingSubject("User", "system:serviceaccount:crm:foo"), False),
        # Not a ServiceAccount's username (Kubernetes' serviceaccount.SplitUsername refuses
        # them), so never one of kube-system's trusted accounts: a client certificate, a
        # proxy's header or a token webhook may still name such a User.
        (BindingSubject("User", "system:serviceaccount:kube-system:"), False),
        (BindingSubject("User", "system:serviceaccount:kube-system:x:evil"), False),
        (BindingSubject("User", "system:serviceaccount:kube-system:Foo"), False),
        (BindingSubject("User", "system:serviceaccount:kube-system:a_b"), False),
        (BindingSubject("User", "system:serviceaccount::foo"), False),
        (BindingSubject("User", "system:serviceaccount:kube-system:foo.bar"), True),
        (BindingSubject("ServiceAccount", "foo", "kube-system"), True),
        (BindingSubject("ServiceAccount", "foo", "crm"), False),
        (BindingSubject("User", "alice"), False),
    ],
)
def test_trusted_subjects(subject: BindingSubject, trusted: bool) -> None:
    assert TrustedSubjects().trusts(subject) is trusted


def test_a_user_named_like_a_kube_system_account_but_not_one_is_a_foreign_reader() -> None:
    # kube-system's accounts are trusted by default; a User whose name only looks like one
    # (three parts after the prefix: no ServiceAccount has it) reads the Secrets as anyone.
    user = [{"kind": "User", "name": "system:serviceaccount:kube-system:x:evil",
             "apiGroup": "rbac.authorization.k8s.io"}]  # fmt: skip
    status, reason, message = check(
        [binding("lookalike", "secret-reader", user)], [role("secret-reader", SECRET_READER)]
    )
    assert (status, reason) == ("False", "OtherBindingGrantsSecrets")
    assert "system:serviceaccount:kube-system:x:evil" in message


# Whoever may create a pod in the namespace mounts any of its Secrets into it; whoever may
# create a workload writes the pod template its controller makes pods from; whoever may exec
# into (or attach to) a pod reads what is mounted there (Kubernetes' RBAC good practices,
# "Workload creation").
WORKLOAD_CREATORS = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create"]},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["create"]},
    {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["*"]},
    {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["create"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
    {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["replicationcontrollers"], "verbs": ["create"]},
    {"apiGroups": ["*"], "resources": ["deployments"], "verbs": ["create"]},
    {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods/attach"], "verbs": ["create"]},
    {
        "apiGroups": [""],
        "resources": ["pods/exec"],
        "verbs": ["create"],
        "resourceNames": ["crm-api-0"],
    },
]


def test_a_developer_who_may_create_deployments_can_read_the_secrets() -> None:
    deployer = role(
        "deployer",
        [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create", "get"]}],
        kind="Role",
    )
    status, reason, message = check(
        [binding("dev-deploys", "deployer", ALICE, role_kind="Role")], [deployer]
    )
    assert (status, reason) == ("False", "WorkloadCreatorsCanMountSecrets")
    assert "RoleBinding crm/dev-deploys (role Role deployer)" in message
    assert "User alice" in message
    assert "move the store's workload and Secrets to a namespace of their own" in message


def test_a_developer_who_may_create_pods_can_read_the_secrets() -> None:
    pods = role("pod-maker", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}])
    status, reason, message = check([binding("dev-pods", "pod-maker", ALICE)], [pods])
    assert (status, reason) == ("False", "WorkloadCreatorsCanMountSecrets")
    assert "RoleBinding crm/dev-pods (role ClusterRole pod-maker)" in message


@pytest.mark.parametrize("rule", WORKLOAD_CREATORS)
def test_rules_that_start_pods_in_the_namespace(rule: dict[str, Any]) -> None:
    result = check([binding("b", "r", ALICE)], [role("r", [rule])])
    assert result[:2] == ("False", "WorkloadCreatorsCanMountSecrets")


@pytest.mark.parametrize(
    "rule",
    [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["deployments"], "verbs": ["create"]},
        {"apiGroups": ["batch"], "resources": ["deployments"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods/log", "pods/binding"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["configmaps", "services"], "verbs": ["create"]},
        # A create is never restricted by resourceNames: such a rule grants no create.
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "verbs": ["create"],
            "resourceNames": ["crm-api-0"],
        },
    ],
)
def test_rules_that_start_no_pod(rule: dict[str, Any]) -> None:
    assert check([binding("b", "r", ALICE)], [role("r", [rule])])[0] == "True"


def test_workload_creators_in_another_namespace_do_not_count() -> None:
    pods = role("pod-maker", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}])
    elsewhere = binding("dev-pods", "pod-maker", ALICE, namespace="elsewhere")
    assert check([elsewhere], [pods])[0] == "True"


def test_a_cluster_role_binding_to_a_workload_creator_counts() -> None:
    deployer = role("deployer", WORKLOAD_CREATORS[:2])
    status, reason, message = check(
        [binding("devs-deploy", "deployer", ALICE, kind="ClusterRoleBinding")], [deployer]
    )
    assert (status, reason) == ("False", "WorkloadCreatorsCanMountSecrets")
    assert "ClusterRoleBinding devs-deploy" in message


def test_the_controllers_that_make_pods_from_others_specs_are_trusted() -> None:
    # As kube-controller-manager's bootstrap policy binds them (--use-service-account-
    # credentials): they create pods cluster-wide, only from specs others wrote.
    creates = role(
        "system:controller:replicaset-controller",
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "list"]}],
    )
    bindings = [
        binding(
            f"system:controller:{name}",
            "system:controller:replicaset-controller",
            [{"kind": "ServiceAccount", "name": name, "namespace": "kube-system"}],
            kind="ClusterRoleBinding",
        )
        for name in ("replicaset-controller", "job-controller", "daemon-set-controller")
    ]
    manager = binding(
        "system:kube-controller-manager",
        "system:controller:replicaset-controller",
        [{"kind": "User", "name": "system:kube-controller-manager"}],
        kind="ClusterRoleBinding",
    )
    assert check([*bindings, manager], [creates])[:2] == ("True", "OnlyDeclaredReaders")


def test_the_stores_own_readers_may_create_pods() -> None:
    # spec.access.readers may read the Secrets anyway; starting a pod that mounts them
    # reads nothing they could not.
    pods = role("pod-maker", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}])
    readers = [
        {"kind": "ServiceAccount", "name": "crm-api", "namespace": "crm"},
        {"kind": "Group", "name": "privacy-officers"},
    ]
    assert check([binding("api-pods", "pod-maker", readers)], [pods])[0] == "True"
    # Named only those of the subjects who are not readers.
    status, _, message = check([binding("api-pods", "pod-maker", [*readers, *ALICE])], [pods])
    assert status == "False"
    assert "User alice" in message and "privacy-officers" not in message
    # A ServiceAccount of the reader's name in another namespace is another account.
    other = [{"kind": "ServiceAccount", "name": "crm-api", "namespace": "elsewhere"}]
    assert check([binding("api-pods", "pod-maker", other)], [pods])[0] == "False"


# Paths as direct as creating a pod: whoever may update or patch an existing workload
# rewrites its pod template (its controller then starts pods of that writing), a named one
# included; whoever may add an ephemeral container to a running pod mounts its volumes in it;
# whoever may mint a token of a ServiceAccount of the namespace may do what that account may
# (read the Secrets, start pods).
WORKLOAD_REWRITERS = [
    {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "verbs": ["patch"],
        "resourceNames": ["crm-api"],
    },
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["update"]},
    {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["update"]},
    {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["patch"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["patch"]},
    {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["update"]},
    {"apiGroups": [""], "resources": ["replicationcontrollers"], "verbs": ["patch"]},
    {"apiGroups": ["*"], "resources": ["statefulsets"], "verbs": ["update"]},
    {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["patch"]},
]
EPHEMERAL_CONTAINER_ADDERS = [
    {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"]},
    {
        "apiGroups": [""],
        "resources": ["pods/ephemeralcontainers"],
        "verbs": ["update"],
        "resourceNames": ["crm-api-0"],
    },
    {"apiGroups": ["*"], "resources": ["pods/ephemeralcontainers"], "verbs": ["*"]},
    # (not patch: patch on every resource reads the Secrets, OtherBindingGrantsSecrets)
    {"apiGroups": [""], "resources": ["*"], "verbs": ["update"]},
]
TOKEN_MINTERS = [
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
    {
        "apiGroups": [""],
        "resources": ["serviceaccounts/token"],
        "verbs": ["create"],
        "resourceNames": ["crm-api"],
    },
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["*"]},
]


def test_a_developer_who_may_patch_the_stores_deployment_can_read_the_secrets() -> None:
    # No create anywhere: patching the existing Deployment's template to mount the key ring
    # makes the Deployment controller start a pod that mounts it.
    patcher = role(
        "patcher",
        [
            {
                "apiGroups": ["apps"],
                "resources": ["deployments"],
                "verbs": ["get", "patch"],
                "resourceNames": ["crm-api"],
            }
        ],
        kind="Role",
    )
    status, reason, message = check(
        [binding("dev-patches", "patcher", ALICE, role_kind="Role")], [patcher]
    )
    assert (status, reason) == ("False", "WorkloadCreatorsCanMountSecrets")
    assert "RoleBinding crm/dev-patches (role Role patcher)" in message
    assert "User alice" in message


@pytest.mark.parametrize("rule", WORKLOAD_REWRITERS)
def test_rules_that_rewrite_a_workloads_pod_template(rule: dict[str, Any]) -> None:
    result = check([binding("b", "r", ALICE)], [role("r", [rule])])
    assert result[:2] == ("False", "WorkloadCreatorsCanMountSecrets")


def test_a_debugger_who_may_add_ephemeral_containers_can_read_the_secrets() -> None:
    # kubectl debug: an ephemeral container added to the store's running pod mounts the
    # pod's volumes, the key ring included, as exec would read them.
    debugger = role(
        "debugger",
        [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"]},
        ],
    )
    status, reason, message = check([binding("dev-debug", "debugger", ALICE)], [debugger])
    assert (status, reason) == ("False", "WorkloadCreatorsCanMountSecrets")
    assert "RoleBinding crm/dev-debug (role ClusterRole debugger)" in message


@pytest.mark.parametrize("rule", EPHEMERAL_CONTAINER_ADDERS)
def test_rules_that_add_ephemeral_containers(rule: dict[str, Any]) -> None:
    result = check([binding("b", "r", ALICE)], [role("r", [rule])])
    assert result[:2] == ("False", "WorkloadCreatorsCanMountSecrets")


@pytest.mark.parametrize(
    "rule",
    [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["update"],
         "resourceNames": ["crm-api-0"]},
    ],
)  # fmt: skip
def test_rules_that_change_a_running_pods_image(rule: dict[str, Any]) -> None:
    """A pod's container image is mutable (`kubectl set image pod/...`): the new image runs
    with the pod's volumes, the key ring the store's workload mounts included."""
    result = check([binding("b", "r", ALICE)], [role("r", [rule])])
    assert result[:2] == ("False", "WorkloadCreatorsCanMountSecrets")


def test_whoever_may_mint_service_account_tokens_can_read_the_secrets() -> None:
    # A token of the reader's (or a pod creator's) account is that account's rights.
    minter = role(
        "minter",
        [
            {
                "apiGroups": [""],
                "resources": ["serviceaccounts/token"],
                "verbs": ["create"],
                "resourceNames": ["crm-api"],
            }
        ],
        kind="Role",
    )
    status, reason, message = check(
        [binding("ci-tokens", "minter", ALICE, role_kind="Role")], [minter]
    )
    assert (status, reason) == ("False", "WorkloadCreatorsCanMountSecrets")
    assert "RoleBinding crm/ci-tokens (role Role minter)" in message


@pytest.mark.parametrize("rule", TOKEN_MINTERS)
def test_rules_that_mint_service_account_tokens(rule: dict[str, Any]) -> None:
    result = check([binding("b", "r", ALICE)], [role("r", [rule])])
    assert result[:2] == ("False", "WorkloadCreatorsCanMountSecrets")


# `create` on Secrets and a read of one Secret of a name its holder chooses mint a token too:
# a Secret of type kubernetes.io/service-account-token, annotated with the purge job's (or a
# reader's) ServiceAccount, is filled by kube-controller-manager's token controller with a
# token that never expires, and the read hands it over (Kubernetes' "Manually create a
# long-lived API token for a ServiceAccount"). Red first: AccessRestricted was True,
# OnlyDeclaredReaders, for each of these roles.
_CREATE_SECRETS = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}
SECRET_TOKEN_MINTERS = [
    [_CREATE_SECRETS, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                       "resourceNames": ["mallory-token"]}],
    [_CREATE_SECRETS, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["patch"],
                       "resourceNames": ["mallory-token"]}],
    [_CREATE_SECRETS, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"],
                       "resourceNames": ["mallory-token"]}],
    [_CREATE_SECRETS, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"],
                       "resourceNames": ["mallory-token"]}],
    [{"apiGroups": ["", "apps"], "resources": ["secrets", "configmaps"], "verbs": ["create"]},
     {"apiGroups": ["*"], "resources": ["secrets"], "verbs": ["watch"],
      "resourceNames": ["mallory-token"]}],
]  # fmt: skip


def test_whoever_may_create_secrets_and_read_one_of_its_naming_can_read_the_secrets() -> None:
    mallory = [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}]
    status, reason, message = check(
        [binding("token-minter", "token-minter", mallory, role_kind="Role")],
        [role("token-minter", SECRET_TOKEN_MINTERS[0], kind="Role")],
    )
    assert (status, reason) == ("False", "WorkloadCreatorsCanMountSecrets")
    assert "RoleBinding crm/token-minter (role Role token-minter)" in message
    assert "User mallory" in message


@pytest.mark.parametrize("rules", SECRET_TOKEN_MINTERS[1:])
def test_rules_that_mint_a_token_through_a_secret(rules: list[dict[str, Any]]) -> None:
    result = check([binding("b", "r", ALICE)], [role("r", rules)])
    assert result[:2] == ("False", "WorkloadCreatorsCanMountSecrets")


@pytest.mark.parametrize(
    "rules",
    [
        [_CREATE_SECRETS],  # made, never read back
        [_CREATE_SECRETS, {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
                           "resourceNames": ["mallory-token"]}],
        [_CREATE_SECRETS, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["update"],
                           "resourceNames": ["mallory-token"]}],  # answers with what it sent
        # A create limited by resourceNames grants no create (the API server asks it with no
        # name), so these hold only reads of a Secret no store has.
        [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "get"],
          "resourceNames": ["mallory-token"]}],
        [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"],
          "resourceNames": ["mallory-token"]}],
        [{"apiGroups": ["apps"], "resources": ["secrets"], "verbs": ["create"]},
         {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
          "resourceNames": ["mallory-token"]}],
    ],
)  # fmt: skip
def test_rules_that_make_or_read_a_secret_but_mint_no_token(
    rules: list[dict[str, Any]],
) -> None:
    assert check([binding("b", "r", ALICE)], [role("r", rules)])[0] == "True"


@pytest.mark.parametrize(
    "rule",
    [
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]},
        {"apiGroups": ["apps"], "resources": ["deployments/status"], "verbs": ["update"]},
        {"apiGroups": ["batch"], "resources": ["jobs/status"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch", "update"]},
        {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["create", "patch"]},
        {"apiGroups": ["apps"], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
        {"apiGroups": ["batch"], "resources": ["deployments"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["configmaps", "services"], "verbs": ["patch"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["delete", "watch"]},
    ],
)
def test_rules_that_rewrite_no_pod_nor_mint_a_token(rule: dict[str, Any]) -> None:
    assert check([binding("b", "r", ALICE)], [role("r", [rule])])[0] == "True"


def test_the_controllers_that_rewrite_workloads_and_mint_tokens_are_trusted() -> None:
    # As kube-controller-manager's bootstrap policy binds them: the deployment controller
    # updates and patches replicasets, the cronjob controller jobs, the token controller
    # (kube-controller-manager itself) and the kubelet's mint tokens.
    controllers = role(
        "system:controller:deployment-controller",
        [
            {
                "apiGroups": ["apps"],
                "resources": ["replicasets"],
                "verbs": ["create", "delete", "patch", "update"],
            },
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["patch", "update"]},
            {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"]},
        ],
    )
    bindings = [
        binding(
            f"system:controller:{name}",
            "system:controller:deployment-controller",
            [{"kind": "ServiceAccount", "name": name, "namespace": "kube-system"}],
            kind="ClusterRoleBinding",
        )
        for name in ("deployment-controller", "cronjob-controller", "token-cleaner")
    ]
    manager = binding(
        "system:kube-controller-manager",
        "system:controller:deployment-controller",
        [{"kind": "User", "name": "system:kube-controller-manager"}],
        kind="ClusterRoleBinding",
    )
    assert check([*bindings, manager], [controllers])[:2] == ("True", "OnlyDeclaredReaders")


def test_the_stores_own_readers_may_patch_its_workload_and_mint_its_token() -> None:
    rules = [WORKLOAD_REWRITERS[0], EPHEMERAL_CONTAINER_ADDERS[0], TOKEN_MINTERS[0]]
    readers = [{"kind": "ServiceAccount", "name": "crm-api", "namespace": "crm"}]
    assert check([binding("api-self", "r", readers)], [role("r", rules)])[0] == "True"


# RBAC matches a rule's resource `*/<subresource>` against that subresource of every resource
# (Kubernetes' rbac ResourceMatches): `*/exec` is pods/exec, `*/token` serviceaccounts/token.
@pytest.mark.parametrize(
    "rule",
    [
        {"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["*/attach"], "verbs": ["create"]},
        {"apiGroups": ["*"], "resources": ["*/ephemeralcontainers"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["*/token"], "verbs": ["create"],
         "resourceNames": ["crm-api"]},
    ],
)  # fmt: skip
def test_a_wildcard_resource_with_a_pod_entering_subresource_starts_pods(
    rule: dict[str, Any],
) -> None:
    result = check([binding("b", "r", ALICE)], [role("r", [rule])])
    assert result[:2] == ("False", "WorkloadCreatorsCanMountSecrets")


def test_a_developer_who_may_create_every_exec_subresource_can_read_the_secrets() -> None:
    execer = role(
        "execer", [{"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]}], kind="Role"
    )
    status, reason, message = check(
        [binding("dev-exec", "execer", ALICE, role_kind="Role")], [execer]
    )
    assert (status, reason) == ("False", "WorkloadCreatorsCanMountSecrets")
    assert "RoleBinding crm/dev-exec (role Role execer)" in message


@pytest.mark.parametrize(
    "rule",
    [
        # `*/x` matches only a subresource x: not the resource pods, nor pods/status.
        {"apiGroups": [""], "resources": ["*/pods"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["*/status"], "verbs": ["patch", "update"]},
        {"apiGroups": [""], "resources": ["*/xec"], "verbs": ["create"]},
        # pods/exec is in the core group only.
        {"apiGroups": ["apps"], "resources": ["*/exec"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["*/exec"], "verbs": ["get"]},
    ],
)
def test_wildcard_resources_that_start_no_pod(rule: dict[str, Any]) -> None:
    assert check([binding("b", "r", ALICE)], [role("r", [rule])])[0] == "True"


# Kubernetes' RBAC good practices, "Privilege escalation risks": whoever may impersonate an
# account that reads the Secrets, bind or write a role that reads them, or reach the kubelet
# API reads them, without any rule on secrets or pods.
CLUSTER_ROLE_BINDING = "ClusterRoleBinding"
# Held through a RoleBinding of the store's namespace as through a ClusterRoleBinding.
NAMESPACE_ESCALATORS = [
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"],
     "resourceNames": ["crm-api"]},
    {"apiGroups": ["*"], "resources": ["serviceaccounts"], "verbs": ["*"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["bind"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
     "verbs": ["bind"], "resourceNames": ["admin"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
     "verbs": ["escalate", "update"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["*"], "verbs": ["bind"]},
    {"apiGroups": ["*"], "resources": ["roles"], "verbs": ["escalate"]},
]
# Only a ClusterRoleBinding grants these: users, groups and nodes are cluster-scoped, and a
# RoleBinding's grant of them has no effect.
CLUSTER_ESCALATORS = [
    {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]},
    {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"],
     "resourceNames": ["system:masters"]},
    {"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["*"]},
    {"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["create"],
     "resourceNames": ["node-1"]},
    {"apiGroups": [""], "resources": ["*/proxy"], "verbs": ["get"]},
    {"apiGroups": ["*"], "resources": ["nodes/proxy"], "verbs": ["*"]},
    # An admission webhook: a mutating one rewrites any pod to mount the Secrets, and both
    # kinds are sent every object written to the API, Secrets included.
    {"apiGroups": ["admissionregistration.k8s.io"],
     "resources": ["mutatingwebhookconfigurations"], "verbs": ["create"]},
    {"apiGroups": ["admissionregistration.k8s.io"],
     "resources": ["validatingwebhookconfigurations"], "verbs": ["update"]},
    {"apiGroups": ["admissionregistration.k8s.io"],
     "resources": ["mutatingwebhookconfigurations"], "verbs": ["patch"],
     "resourceNames": ["istio-sidecar-injector"]},
    {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["*"], "verbs": ["create"]},
    # A hostPath PersistentVolume: a pod claiming it reads the kubelet's copies of the
    # Secrets of every pod of its node.
    {"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["*"]},
    # Approving a CertificateSigningRequest: the approval subresource and the signer's
    # approve, in one rule here (CSR_APPROVERS: in two).
    {"apiGroups": ["certificates.k8s.io"],
     "resources": ["certificatesigningrequests/approval", "signers"],
     "verbs": ["update", "approve"]},
    {"apiGroups": ["certificates.k8s.io"], "resources": ["*"], "verbs": ["*"]},
]  # fmt: skip
# Roles that approve CertificateSigningRequests with two rules (one approves nothing alone):
# `update` (or `patch`) on certificatesigningrequests/approval, and `approve` on the signer.
# Its holder approves a request of its own for a client certificate naming any user or
# group (kubernetes.io/kube-apiserver-client), or any node's (...-kubelet), which the
# controller manager then signs. Only a ClusterRoleBinding grants them (cluster-scoped).
CSR_APPROVERS = [
    [{"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval"],
      "verbs": ["update"]},
     {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
      "resourceNames": ["kubernetes.io/kube-apiserver-client"]}],
    [{"apiGroups": ["certificates.k8s.io"], "resources": ["*/approval"], "verbs": ["patch"]},
     {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
      "resourceNames": ["kubernetes.io/*"]}],
    [{"apiGroups": ["*"], "resources": ["certificatesigningrequests/approval"],
      "verbs": ["*"]},
     {"apiGroups": ["certificates.k8s.io"], "resources": ["*"], "verbs": ["approve"]}],
]  # fmt: skip


def test_impersonating_the_namespaces_service_accounts_can_read_the_secrets() -> None:
    # `kubectl get secret --as=system:serviceaccount:crm:crm-api`: the reader's rights.
    impersonator = role(
        "sa-impersonator",
        [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}],
        kind="Role",
    )
    status, reason, message = check(
        [binding("ci-as-sa", "sa-impersonator", ALICE, role_kind="Role")], [impersonator]
    )
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")
    assert "RoleBinding crm/ci-as-sa (role Role sa-impersonator)" in message
    assert "User alice" in message


def test_impersonating_any_user_cluster_wide_can_read_the_secrets() -> None:
    # `--as=admin --as-group=system:masters`: anyone, cluster-admin included.
    impersonator = role(
        "impersonator",
        [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}],
    )
    status, reason, message = check(
        [binding("support-as-anyone", "impersonator", ALICE, kind=CLUSTER_ROLE_BINDING)],
        [impersonator],
    )
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")
    assert "ClusterRoleBinding support-as-anyone (role ClusterRole impersonator)" in message


def test_a_role_that_may_bind_roles_can_read_the_secrets() -> None:
    # bind: a RoleBinding of alice to a role that reads Secrets (the store's reader Role),
    # though alice holds no such rule herself.
    binder = role(
        "binder",
        [
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
             "verbs": ["bind"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"],
             "verbs": ["create"]},
        ],
        kind="Role",
    )  # fmt: skip
    status, reason, message = check(
        [binding("dev-binds", "binder", ALICE, role_kind="Role")], [binder]
    )
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")
    assert "RoleBinding crm/dev-binds (role Role binder)" in message


def test_a_role_that_may_escalate_cluster_roles_can_read_the_secrets() -> None:
    # escalate: write into a ClusterRole rules its writer does not hold (get on secrets).
    escalator = role(
        "role-editor",
        [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
          "verbs": ["escalate", "update", "get"]}],
    )  # fmt: skip
    status, reason, _ = check([binding("dev-roles", "role-editor", ALICE)], [escalator])
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")


def test_the_kubelet_api_through_nodes_proxy_can_read_the_secrets() -> None:
    # GET /api/v1/nodes/<node>/proxy/exec/crm/crm-api-0/...: the kubelet runs the command in
    # the store's pod (over a websocket, get is enough).
    proxy = role(
        "node-proxy", [{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}]
    )
    status, reason, message = check(
        [binding("metrics-scraper", "node-proxy", ALICE, kind=CLUSTER_ROLE_BINDING)], [proxy]
    )
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")
    assert "ClusterRoleBinding metrics-scraper (role ClusterRole node-proxy)" in message


@pytest.mark.parametrize("kind", ["RoleBinding", CLUSTER_ROLE_BINDING])
@pytest.mark.parametrize("rule", NAMESPACE_ESCALATORS)
def test_rules_that_escalate_through_either_binding(rule: dict[str, Any], kind: str) -> None:
    result = check([binding("b", "r", ALICE, kind=kind)], [role("r", [rule])])
    assert result[:2] == ("False", "EscalatorsCanReadSecrets")


@pytest.mark.parametrize("rule", CLUSTER_ESCALATORS)
def test_rules_that_escalate_through_a_cluster_role_binding(rule: dict[str, Any]) -> None:
    result = check([binding("b", "r", ALICE, kind=CLUSTER_ROLE_BINDING)], [role("r", [rule])])
    assert result[:2] == ("False", "EscalatorsCanReadSecrets")


@pytest.mark.parametrize("rule", CLUSTER_ESCALATORS)
def test_cluster_scoped_escalations_granted_by_a_rolebinding_have_no_effect(
    rule: dict[str, Any],
) -> None:
    # The API server asks for impersonate on users (groups, nodes/proxy) without a
    # namespace: no RoleBinding answers it.
    assert check([binding("b", "r", ALICE)], [role("r", [rule])])[:2] == (
        "True",
        "OnlyDeclaredReaders",
    )


@pytest.mark.parametrize("rules", CSR_APPROVERS)
def test_roles_that_approve_certificate_requests_escalate_through_a_cluster_role_binding(
    rules: list[dict[str, Any]],
) -> None:
    approver = role("csr-approver", rules)
    status, reason, message = check(
        [binding("ci-approves", "csr-approver", ALICE, kind=CLUSTER_ROLE_BINDING)], [approver]
    )
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")
    assert "ClusterRoleBinding ci-approves (role ClusterRole csr-approver)" in message
    assert "User alice" in message
    assert "CertificateSigningRequest" in message


@pytest.mark.parametrize("rules", CSR_APPROVERS)
def test_certificate_approval_granted_by_a_rolebinding_has_no_effect(
    rules: list[dict[str, Any]],
) -> None:
    # CertificateSigningRequests and signers are cluster-scoped: no RoleBinding answers.
    approver = role("csr-approver", rules)
    assert check([binding("b", "csr-approver", ALICE)], [approver])[:2] == (
        "True",
        "OnlyDeclaredReaders",
    )


@pytest.mark.parametrize("half", [0, 1])
@pytest.mark.parametrize("rules", CSR_APPROVERS)
def test_half_of_a_certificate_approval_escalates_nothing(
    rules: list[dict[str, Any]], half: int
) -> None:
    # Either rule alone approves nothing (the API server asks for both): the default
    # system:certificates.k8s.io:*-approver ClusterRoles hold only `approve` on a signer.
    alone = role("half", [rules[half]])
    bound = binding("b", "half", ALICE, kind=CLUSTER_ROLE_BINDING)
    assert check([bound], [alone])[:2] == ("True", "OnlyDeclaredReaders")


# Requesting a node's client certificate that kube-controller-manager's csrapproving
# controller approves with no one asked (pkg/controller/certificates/approver/sarapprove.go):
# a CSR for CN system:node:<any name>, O system:nodes, signer
# kubernetes.io/kube-apiserver-client-kubelet, whose requester a SubjectAccessReview allows
# `create` on certificatesigningrequests/nodeclient (group certificates.k8s.io, no namespace,
# no name). The certificate makes them that node, and a node reads the Secrets its pods
# mount (the purge job's pods mount the store's credentials).
NODE_CLIENT_REQUESTERS = [
    # kubeadm's system:certificates.k8s.io:certificatesigningrequests:nodeclient
    {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/nodeclient"],
     "verbs": ["create"]},
    {"apiGroups": ["*"], "resources": ["*/nodeclient"], "verbs": ["*"]},
    {"apiGroups": ["certificates.k8s.io"], "resources": ["*"], "verbs": ["create"]},
]  # fmt: skip
NODE_CLIENT = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
SELF_NODE_CLIENT = [
    {"apiGroups": ["certificates.k8s.io"],
     "resources": ["certificatesigningrequests/selfnodeclient"], "verbs": ["create"]},
]  # fmt: skip
# kubeadm binds the nodeclient ClusterRole to its join tokens' group.
BOOTSTRAP_TOKENS = [{"kind": "Group", "name": "system:bootstrappers:kubeadm:default-node-token",
                     "apiGroup": "rbac.authorization.k8s.io"}]  # fmt: skip


def test_a_node_client_certificate_requester_becomes_a_node_and_reads_the_secrets() -> None:
    requester = role(NODE_CLIENT, NODE_CLIENT_REQUESTERS[:1])
    status, reason, message = check(
        [binding("ci-joins-nodes", NODE_CLIENT, ALICE, kind=CLUSTER_ROLE_BINDING)], [requester]
    )
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")
    assert f"ClusterRoleBinding ci-joins-nodes (role ClusterRole {NODE_CLIENT})" in message
    assert "User alice" in message
    assert "certificatesigningrequests/nodeclient" in message


@pytest.mark.parametrize("rule", NODE_CLIENT_REQUESTERS)
def test_rules_that_request_node_client_certificates_escalate_as_rbac_matches_them(
    rule: dict[str, Any],
) -> None:
    requester = role("r", [rule])
    result = check([binding("b", "r", ALICE, kind=CLUSTER_ROLE_BINDING)], [requester])
    assert result[:2] == ("False", "EscalatorsCanReadSecrets")


@pytest.mark.parametrize("rule", NODE_CLIENT_REQUESTERS)
def test_node_client_requests_granted_by_a_rolebinding_have_no_effect(
    rule: dict[str, Any],
) -> None:
    # CertificateSigningRequests are cluster-scoped: the approver's SubjectAccessReview asks
    # without a namespace, and no RoleBinding answers it.
    assert check([binding("b", "r", ALICE)], [role("r", [rule])])[:2] == (
        "True",
        "OnlyDeclaredReaders",
    )


def test_a_node_client_rule_limited_by_resource_names_requests_nothing() -> None:
    # The approver asks about a create, which has no name: a rule with resourceNames never
    # answers it.
    named_rule = dict(NODE_CLIENT_REQUESTERS[0], resourceNames=["worker-1"])
    bound = binding("b", "r", ALICE, kind=CLUSTER_ROLE_BINDING)
    assert check([bound], [role("r", [named_rule])])[:2] == ("True", "OnlyDeclaredReaders")


def test_renewing_ones_own_node_certificate_escalates_nothing() -> None:
    # selfnodeclient is approved only when the requester's user name is the certificate's
    # CN: a node renewing its own identity (kubeadm binds it to Group system:nodes), or
    # creating requests without approval.
    renewer = role("selfnodeclient", SELF_NODE_CLIENT)
    creator = role(
        "node-bootstrapper",
        [{"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"],
          "verbs": ["create", "get", "list", "watch"]}],
    )  # fmt: skip
    nodes = [{"kind": "Group", "name": "system:nodes", "apiGroup": "rbac.authorization.k8s.io"}]
    bindings = [
        binding("renew", "selfnodeclient", [*ALICE, *nodes], kind=CLUSTER_ROLE_BINDING),
        binding("create", "node-bootstrapper", ALICE, kind=CLUSTER_ROLE_BINDING),
    ]
    assert check(bindings, [renewer, creator])[:2] == ("True", "OnlyDeclaredReaders")


def test_kubeadms_join_tokens_become_nodes_unless_trusted() -> None:
    # ClusterRoleBinding kubeadm:node-autoapprove-bootstrap: whoever holds a join token may
    # become any node. Not trusted by default; an administrator may trust the group.
    bound = binding(
        "kubeadm:node-autoapprove-bootstrap", NODE_CLIENT, BOOTSTRAP_TOKENS,
        kind=CLUSTER_ROLE_BINDING,
    )  # fmt: skip
    roles = [role(NODE_CLIENT, NODE_CLIENT_REQUESTERS[:1])]
    status, reason, message = check([bound], roles)
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")
    assert "Group system:bootstrappers:kubeadm:default-node-token" in message
    trusted = TrustedSubjects.parse(
        ["Group:system:masters", "Group:system:bootstrappers:kubeadm:default-node-token"]
    )
    assert check([bound], roles, trusted=trusted)[:2] == ("True", "OnlyDeclaredReaders")


def test_a_webhook_writer_can_read_the_secrets() -> None:
    # A MutatingWebhookConfiguration of theirs adds the key ring as a volume to every pod,
    # theirs included, and is sent every Secret written (the key ring at each rotation).
    webhooks = role(
        "webhook-admin",
        [{"apiGroups": ["admissionregistration.k8s.io"],
          "resources": ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
          "verbs": ["create", "update", "patch", "get", "list"]}],
    )  # fmt: skip
    status, reason, message = check(
        [binding("ci-webhooks", "webhook-admin", ALICE, kind=CLUSTER_ROLE_BINDING)], [webhooks]
    )
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")
    assert "ClusterRoleBinding ci-webhooks (role ClusterRole webhook-admin)" in message
    assert "admission webhook" in message


def test_a_persistent_volume_maker_can_read_the_secrets() -> None:
    # A hostPath PersistentVolume on /var/lib/kubelet/pods: the tmpfs copies of every Secret
    # mounted by a pod of the node.
    volumes = role(
        "pv-maker", [{"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["create"]}]
    )
    status, reason, message = check(
        [binding("storage-team", "pv-maker", ALICE, kind=CLUSTER_ROLE_BINDING)], [volumes]
    )
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")
    assert "ClusterRoleBinding storage-team (role ClusterRole pv-maker)" in message
    assert "PersistentVolume" in message


@pytest.mark.parametrize(
    "rule",
    [
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "list", "create"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["serviceaccounts"],
         "verbs": ["impersonate"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["impersonate"]},
        {"apiGroups": [""], "resources": ["roles"], "verbs": ["bind", "escalate"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "clusterroles"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"],
         "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["nodes", "nodes/stats", "nodes/metrics"],
         "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["nodes/proxy"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["*/token"], "verbs": ["get"]},
        # Creating a CSR (the kubelet's, a bootstrap token's), renewing one's own node
        # certificate (selfnodeclient; nodeclient is any node's,
        # NODE_CLIENT_REQUESTERS), or signing one, is not approving it; a webhook deleted or
        # read, or a ValidatingAdmissionPolicy (CEL, sent nowhere), reads nothing; a
        # PersistentVolume's source cannot be changed once made (the scheduler updates and
        # patches them), and a claim is not a volume.
        {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"],
         "verbs": ["create", "get", "list", "watch", "update"]},
        {"apiGroups": ["certificates.k8s.io"],
         "resources": ["certificatesigningrequests/selfnodeclient"], "verbs": ["create"]},
        {"apiGroups": ["certificates.k8s.io"],
         "resources": ["certificatesigningrequests/status", "signers"],
         "verbs": ["update", "sign", "attest"]},
        {"apiGroups": ["admissionregistration.k8s.io"],
         "resources": ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
         "verbs": ["get", "list", "watch", "delete", "deletecollection"]},
        {"apiGroups": ["admissionregistration.k8s.io"],
         "resources": ["validatingadmissionpolicies", "validatingadmissionpolicybindings"],
         "verbs": ["create", "update", "patch"]},
        {"apiGroups": [""], "resources": ["mutatingwebhookconfigurations"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["persistentvolumes"],
         "verbs": ["get", "list", "watch", "update", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["create"],
         "resourceNames": ["pv-1"]},
        {"apiGroups": ["storage.k8s.io"], "resources": ["persistentvolumes"],
         "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create"]},
    ],
)  # fmt: skip
def test_rules_that_escalate_nothing(rule: dict[str, Any]) -> None:
    result = check([binding("b", "r", ALICE, kind=CLUSTER_ROLE_BINDING)], [role("r", [rule])])
    assert result[:2] == ("True", "OnlyDeclaredReaders")


def test_the_platforms_escalators_are_trusted() -> None:
    # system:masters may do anything; kube-controller-manager's clusterrole-aggregation
    # controller escalates ClusterRoles; both are the platform's.
    everything = role(
        "escalates",
        [*NAMESPACE_ESCALATORS, *CLUSTER_ESCALATORS],
    )
    bindings = [
        binding("masters", "escalates", [{"kind": "Group", "name": "system:masters"}],
                kind=CLUSTER_ROLE_BINDING),
        binding("system:controller:clusterrole-aggregation-controller", "escalates",
                [{"kind": "ServiceAccount", "name": "clusterrole-aggregation-controller",
                  "namespace": "kube-system"}], kind=CLUSTER_ROLE_BINDING),
        binding("manager", "escalates",
                [{"kind": "User", "name": "system:kube-controller-manager"}]),
    ]  # fmt: skip
    assert check(bindings, [everything])[:2] == ("True", "OnlyDeclaredReaders")


def test_the_stores_own_readers_may_escalate() -> None:
    # They read the Secrets anyway: becoming someone who reads them reads nothing more.
    escalates = role("escalates", [*NAMESPACE_ESCALATORS, *CLUSTER_ESCALATORS])
    readers = [
        {"kind": "ServiceAccount", "name": "crm-api", "namespace": "crm"},
        {"kind": "Group", "name": "privacy-officers"},
    ]
    bound = binding("api-escalates", "escalates", readers, kind=CLUSTER_ROLE_BINDING)
    assert check([bound], [escalates])[0] == "True"
    # Named only those of the subjects who are not readers.
    mixed = binding("api-escalates", "escalates", [*readers, *ALICE], kind=CLUSTER_ROLE_BINDING)
    status, reason, message = check([mixed], [escalates])
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")
    assert "User alice" in message and "privacy-officers" not in message


def test_escalators_in_another_namespace_do_not_count() -> None:
    impersonator = role(
        "r", [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}]
    )
    assert check([binding("b", "r", ALICE, namespace="elsewhere")], [impersonator])[0] == "True"


def test_readers_and_pod_starters_are_reported_before_escalators() -> None:
    escalates = role("escalates", NAMESPACE_ESCALATORS[:1])
    pods = role("pods", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}])
    bob = [{"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}]
    both = [binding("a", "escalates", ALICE), binding("b", "pods", bob)]
    assert check(both, [escalates, pods])[1] == "WorkloadCreatorsCanMountSecrets"
    readers = [binding("a", "escalates", ALICE), binding("c", "secret-reader", bob)]
    secret_reader = role("secret-reader", SECRET_READER)
    assert check(readers, [escalates, secret_reader])[1] == "OtherBindingGrantsSecrets"


# The two halves of a certificate approval as Kubernetes' own roles split them: the built-in
# system:certificates.k8s.io:kube-apiserver-client-approver holds only `approve` on its
# signer; a custom role adds the approval subresource (what `kubectl certificate approve`
# writes). One subject bound to both approves its own request for a client certificate
# naming crm's reader, system:serviceaccount:crm:crm-api, and reads the Secrets with it.
SIGNER_APPROVER = role(
    "system:certificates.k8s.io:kube-apiserver-client-approver",
    [{"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
      "resourceNames": ["kubernetes.io/kube-apiserver-client"]}],
)  # fmt: skip
APPROVAL_WRITER = role(
    "csr-approval-writer",
    [{"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval"],
      "verbs": ["update"]},
     {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"],
      "verbs": ["get", "list"]}],
)  # fmt: skip
CSR_HALVES = [SIGNER_APPROVER, APPROVAL_WRITER]
CI_BOT = {"kind": "ServiceAccount", "name": "release-bot", "namespace": "ci"}
MALLORY = {"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}


def group(name: str) -> dict[str, Any]:
    return {"kind": "Group", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def user(name: str) -> dict[str, Any]:
    return {"kind": "User", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def halves(
    signer: dict[str, Any], approval: dict[str, Any], kind: str = CLUSTER_ROLE_BINDING
) -> list[dict[str, Any]]:
    """Two bindings, `signer` bound to the signer's `approve`, `approval` to the approval
    subresource's `update`."""
    return [
        binding("signer-approvers", SIGNER_APPROVER["metadata"]["name"], [signer], kind=kind),
        binding("approval-writers", "csr-approval-writer", [approval], kind=kind),
    ]


@pytest.mark.parametrize("subject", [CI_BOT, MALLORY], ids=["service-account", "user"])
def test_one_subject_holding_the_approval_halves_through_two_bindings_can_read_the_secrets(
    subject: dict[str, Any],
) -> None:
    status, reason, message = check(halves(subject, subject), CSR_HALVES)
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")
    assert "ClusterRoleBinding signer-approvers" in message
    assert "ClusterRoleBinding approval-writers" in message
    assert "ClusterRole system:certificates.k8s.io:kube-apiserver-client-approver" in message
    assert "ClusterRole csr-approval-writer" in message
    expected = "ServiceAccount ci/release-bot" if subject is CI_BOT else "User mallory"
    assert expected in message
    assert "CertificateSigningRequest" in message


@pytest.mark.parametrize(
    ("signer", "approval"),
    [
        # A ServiceAccount's token authenticates it as these groups, and every authenticated
        # user is in system:authenticated: known memberships.
        (group("system:serviceaccounts"), CI_BOT),
        (CI_BOT, group("system:serviceaccounts:ci")),
        (group("system:authenticated"), CI_BOT),
        (MALLORY, group("system:authenticated")),
        # The ServiceAccount by its user name is the ServiceAccount.
        (user("system:serviceaccount:ci:release-bot"), CI_BOT),
    ],
)
def test_the_halves_held_through_known_memberships_are_one_subjects(
    signer: dict[str, Any], approval: dict[str, Any]
) -> None:
    status, reason, message = check(halves(signer, approval), CSR_HALVES)
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")
    assert "ClusterRoleBinding signer-approvers" in message
    assert "ClusterRoleBinding approval-writers" in message


@pytest.mark.parametrize(
    ("signer", "approval"),
    [
        (CI_BOT, MALLORY),
        (MALLORY, user("trent")),
        (CI_BOT, {"kind": "ServiceAccount", "name": "other-bot", "namespace": "ci"}),
        (CI_BOT, {"kind": "ServiceAccount", "name": "release-bot", "namespace": "cd"}),
        (user("system:serviceaccount:ci:other-bot"), CI_BOT),
        # A ServiceAccount is in no group but its own namespace's, system:serviceaccounts
        # and system:authenticated.
        (CI_BOT, group("system:serviceaccounts:cd")),
        (group("release-managers"), CI_BOT),
    ],
)
def test_the_halves_held_by_two_subjects_that_cannot_be_one_approve_nothing(
    signer: dict[str, Any], approval: dict[str, Any]
) -> None:
    assert check(halves(signer, approval), CSR_HALVES)[:2] == ("True", "OnlyDeclaredReaders")


@pytest.mark.parametrize(
    ("signer", "approval"),
    [
        (group("release-managers"), group("security-team")),
        (group("release-managers"), MALLORY),
        (MALLORY, group("system:serviceaccounts")),
        (group("system:serviceaccounts:ci"), group("system:serviceaccounts")),
    ],
)
def test_the_halves_held_by_groups_whose_members_may_be_one_can_read_the_secrets(
    signer: dict[str, Any], approval: dict[str, Any]
) -> None:
    # Kubernetes lists no group's members (the authenticator says them, per request): a
    # member of both, or a user in the group, approves; nothing read shows there is none.
    status, reason, message = check(halves(signer, approval), CSR_HALVES)
    assert (status, reason) == ("False", "EscalatorsCanReadSecrets")
    assert "ClusterRoleBinding signer-approvers" in message
    assert "ClusterRoleBinding approval-writers" in message


# kubernetes.io/kubelet-serving signs only requests whose usages are server auth with digital
# signature (and key encipherment): its certificates carry no client-auth usage, and the API
# server (and any Go TLS server) takes a client certificate only with one. Approving for it
# alone lets no one authenticate as anyone.
SERVING_ONLY = ["kubernetes.io/kubelet-serving"]
SERVING_APPROVER = role(
    "system:certificates.k8s.io:kubelet-serving-approver",
    [{"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
      "resourceNames": SERVING_ONLY}],
)  # fmt: skip


@pytest.mark.parametrize(
    "signer_rule",
    [
        {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
         "resourceNames": SERVING_ONLY},
        {"apiGroups": ["*"], "resources": ["signers"], "verbs": ["*"],
         "resourceNames": SERVING_ONLY},
    ],
)  # fmt: skip
def test_approving_only_for_the_kubelet_serving_signer_escalates_nothing(
    signer_rule: dict[str, Any],
) -> None:
    # A kubelet-serving approver (kubelet-csr-approver and the like): one role with the
    # approval subresource and `approve` on the serving signer alone.
    approver = role(
        "serving-approver",
        [{"apiGroups": ["certificates.k8s.io"],
          "resources": ["certificatesigningrequests/approval"], "verbs": ["update"]},
         signer_rule],
    )  # fmt: skip
    bound = binding("serving-approvers", "serving-approver", ALICE, kind=CLUSTER_ROLE_BINDING)
    assert check([bound], [approver])[:2] == ("True", "OnlyDeclaredReaders")


def test_the_halves_with_only_the_kubelet_serving_signer_approve_nothing() -> None:
    bindings = [
        binding("signer-approvers", SERVING_APPROVER["metadata"]["name"], [MALLORY],
                kind=CLUSTER_ROLE_BINDING),
        binding("approval-writers", "csr-approval-writer", [MALLORY], kind=CLUSTER_ROLE_BINDING),
    ]  # fmt: skip
    assert check(bindings, [SERVING_APPROVER, APPROVAL_WRITER])[:2] == (
        "True",
        "OnlyDeclaredReaders",
    )


@pytest.mark.parametrize(
    "names",
    [
        # A client signer besides the serving one; every kubernetes.io signer; a signer
        # the check does not know (its certificates' usages are its own).
        [*SERVING_ONLY, "kubernetes.io/kube-apiserver-client-kubelet"],
        ["kubernetes.io/*"],
        ["example.com/kubelet-serving"],
    ],
)
def test_approving_for_a_signer_besides_kubelet_serving_still_escalates(
    names: list[str],
) -> None:
    approver = role(
        "approver",
        [{"apiGroups": ["certificates.k8s.io"],
          "resources": ["certificatesigningrequests/approval"], "verbs": ["update"]},
         {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"],
          "verbs": ["approve"], "resourceNames": names}],
    )  # fmt: skip
    bound = binding("approvers", "approver", ALICE, kind=CLUSTER_ROLE_BINDING)
    assert check([bound], [approver])[:2] == ("False", "EscalatorsCanReadSecrets")


def test_the_halves_through_rolebindings_approve_nothing() -> None:
    # CertificateSigningRequests and signers are cluster-scoped: no RoleBinding answers.
    assert check(halves(MALLORY, MALLORY, kind="RoleBinding"), CSR_HALVES)[0] == "True"


@pytest.mark.parametrize(
    ("signer", "approval"),
    [
        # Only kube-system's accounts (trusted) hold both; other accounts hold one half.
        ({"kind": "ServiceAccount", "name": "csr-approver", "namespace": "kube-system"},
         group("system:serviceaccounts")),
        # A member of system:masters is the platform.
        (group("system:masters"), MALLORY),
    ],
)  # fmt: skip
def test_the_halves_completed_only_by_trusted_subjects_do_not_count(
    signer: dict[str, Any], approval: dict[str, Any]
) -> None:
    assert check(halves(signer, approval), CSR_HALVES)[0] == "True"


@pytest.mark.parametrize(
    ("signer", "approval"),
    [
        ({"kind": "ServiceAccount", "name": "crm-api", "namespace": "crm"},
         group("system:serviceaccounts")),
        (group("privacy-officers"), MALLORY),
    ],
)  # fmt: skip
def test_the_halves_completed_only_by_the_stores_readers_do_not_count(
    signer: dict[str, Any], approval: dict[str, Any]
) -> None:
    # crm-api reads the Secrets anyway, and other accounts hold one half; mallory holds both
    # only if she is a privacy officer, a reader.
    assert check(halves(signer, approval), CSR_HALVES)[0] == "True"


def test_the_split_approvals_are_worked_out_once_per_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every store of the cluster asks; the ClusterRoleBindings' pairs are the same for all.
    import dataward.checks.access as access

    pairs: list[tuple[BindingSubject, BindingSubject]] = []
    judged = access.may_be_one

    def counted(first: BindingSubject, second: BindingSubject) -> bool:
        pairs.append((first, second))
        return judged(first, second)

    monkeypatch.setattr(access, "may_be_one", counted)
    snapshot = RbacSnapshot.from_api(
        [*OWN_BINDINGS, *halves(CI_BOT, CI_BOT)], [*OWN_ROLES, *CSR_HALVES]
    )
    for _ in range(3):
        condition = access_restricted("crm", SECRETS, DESIRED, snapshot, DEFAULT_TRUSTED)
        assert condition.reason == "EscalatorsCanReadSecrets"
    assert len(pairs) == 1
    # Another store, whose reader is the bot, is not told of its own reader.
    reader = [dict(OWN_BINDINGS[0], subjects=[CI_BOT]), OWN_BINDINGS[1]]
    own = RbacSnapshot.from_api([*reader, *halves(CI_BOT, CI_BOT)], [*OWN_ROLES, *CSR_HALVES])
    desired = [*OWN_ROLES, *reader]
    assert access_restricted("crm", SECRETS, desired, own, DEFAULT_TRUSTED).status == "True"
