"""Who may read a store's Secrets: its readers, and the purge job's own identity.

Reading the PrivacyPolicy is not here: policies are cluster-scoped, so a namespaced Role
cannot grant it. The Helm chart binds a ClusterRole with `get` on privacypolicies to the
purge ServiceAccounts.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from dataward.model.store import Store
from dataward.render.labels import API_GROUP, STORE_PLURAL, child_metadata
from dataward.render.names import names_for

RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"
# The verbs whose answer carries a Secret's data: get, list and watch; patch (a JSON, merge
# or strategic patch, even an empty one, answers with the whole object as written);
# deletecollection (answers with the list it deleted, data and all, even with dryRun=All,
# which deletes nothing); and delete (answers with the Secret, data and all, while a
# finalizer holds it; a Status otherwise). `update` does not: a PUT answers with what it
# sent, and data it leaves out is replaced, not returned. Seen on kube-apiserver v1.37
# (bench/notes/audit.md). One definition for what AccessRestricted counts as reading, what
# the audit policy records and what the evidence log counts as a read; a rule's "*" counts
# too (`reads_secrets`).
SECRET_READ_VERBS = ("get", "list", "watch", "patch", "delete", "deletecollection")
# Of those, the ones sent without a name: they read every Secret of the namespace (list and
# watch also of all namespaces).
SECRET_COLLECTION_READ_VERBS = tuple(
    verb for verb in SECRET_READ_VERBS if verb in ("list", "watch", "deletecollection")
)


class Grant(NamedTuple):
    """Verbs on resources of one API group that let their holder reach a store's Secrets
    without a rule on them (POD_STARTING_GRANTS, ESCALATION_GRANTS); `named`: whether a rule
    limited by resourceNames still does (it names the object it rewrites, enters or acts
    as); `cluster`: whether only a ClusterRoleBinding grants it (the resource is
    cluster-scoped, so the API server asks without a namespace and no RoleBinding answers);
    `harmless`: names of objects the grant reaches nothing through, so that a rule limited
    by resourceNames to them alone does not hold it (SERVING_ONLY_SIGNERS)."""

    verbs: frozenset[str]
    group: str
    resources: frozenset[str]
    named: bool
    cluster: bool = False
    harmless: frozenset[str] = frozenset()


_CREATE = frozenset({"create"})
_REWRITE = frozenset({"update", "patch"})
# The workloads whose controller makes pods from the template their writer wrote.
_WORKLOADS: dict[str, frozenset[str]] = {
    "": frozenset({"replicationcontrollers"}),
    "apps": frozenset({"deployments", "replicasets", "statefulsets", "daemonsets"}),
    "batch": frozenset({"jobs", "cronjobs"}),
}
# What lets its holder start a pod of its own writing in a namespace, enter one, or act as an
# account of the namespace: a pod spec may mount any Secret of its namespace, whoever may read
# that Secret or not (Kubernetes' RBAC good practices, "Workload creation"). `create` on pods
# or on a workload (a create is never restricted by resourceNames, so a named rule grants
# none); `update` or `patch` of a workload, a named one included (its writer rewrites the
# pod template, its controller starts pods of that writing); `update` or `patch` of a pod,
# named or not (a container's image is mutable: the new image runs with the pod's mounts);
# `create` on pods/exec or
# pods/attach and `update` or `patch` on pods/ephemeralcontainers (kubectl debug: a container
# added to a running pod mounts its volumes), named or not (the pod named may be the one
# mounting the Secrets, for all the check knows); `create` on serviceaccounts/token, named or
# not (a token of an account of the namespace is whatever that account may do, reading the
# Secrets or starting pods included). A rule's "*" verb, group or resource counts, and its
# "*/<subresource>" counts for that subresource of every resource ("*/exec"). One
# definition for what AccessRestricted counts as starting pods (`PolicyRule.starts_pods`).
POD_STARTING_GRANTS: tuple[Grant, ...] = (
    Grant(_CREATE, "", frozenset({"pods"}), named=False),
    *(Grant(_CREATE, group, kinds, named=False) for group, kinds in _WORKLOADS.items()),
    *(Grant(_REWRITE, group, kinds, named=True) for group, kinds in _WORKLOADS.items()),
    Grant(_REWRITE, "", frozenset({"pods"}), named=True),
    Grant(_CREATE, "", frozenset({"pods/exec", "pods/attach"}), named=True),
    Grant(_REWRITE, "", frozenset({"pods/ephemeralcontainers"}), named=True),
    Grant(_CREATE, "", frozenset({"serviceaccounts/token"}), named=True),
)
# What mints a ServiceAccount's token with no rule on serviceaccounts/token: `create` on
# secrets (never by name: the API server asks a create without one) makes a Secret of type
# kubernetes.io/service-account-token annotated with any ServiceAccount of the namespace
# (kubernetes.io/service-account.name), which kube-controller-manager's token controller
# fills with a token of that account that never expires (Kubernetes' "Manually create a
# long-lived API token for a ServiceAccount"); a read of that Secret (SECRET_READ_VERBS, by
# the name its maker chose, so a rule limited by resourceNames counts) hands the token over.
# Both grants, perhaps of two rules of one role, count as minting a token, with
# POD_STARTING_GRANTS (`mints_tokens_through_secrets`).
SECRET_TOKEN_GRANTS: tuple[Grant, ...] = (
    Grant(_CREATE, "", frozenset({"secrets"}), named=False),
    Grant(frozenset(SECRET_READ_VERBS), "", frozenset({"secrets"}), named=True),
)
# What lets its holder become someone who reads the Secrets, run commands in a pod that
# mounts them, or have them sent to it, with no rule on secrets or pods (Kubernetes' RBAC
# good practices, "Privilege escalation risks"): `impersonate` on serviceaccounts (a
# RoleBinding of the namespace grants it for the namespace's accounts, the readers' and the
# purge job's included), on users or groups (only a ClusterRoleBinding grants it, they are
# cluster-scoped: its holder acts as anyone, system:masters included); `bind` or `escalate`
# on roles or clusterroles (its holder binds, or writes, a role that reads the Secrets);
# `get` or `create` on nodes/proxy (only a ClusterRoleBinding: the kubelet's API runs
# commands in any pod of the node, over a websocket with `get` alone); `create` on
# mutating or validating webhook configurations, or `update` or `patch` of one, named or not
# (only a ClusterRoleBinding: a mutating webhook of its holder's rewrites any pod to mount
# the Secrets, and either kind is sent every object written to the API, a Secret's data
# included); `create` on persistentvolumes (only a ClusterRoleBinding, never by name: a
# hostPath volume claimed by a pod of its holder's, in any namespace it may start pods in,
# reads the kubelet's copies of the Secrets of every pod of the node; a volume's source
# cannot be changed once made, so `update` and `patch` do not count); `create` on
# certificatesigningrequests/nodeclient (only a ClusterRoleBinding, never by name: what
# kube-controller-manager's csrapproving controller, on by default, asks in a
# SubjectAccessReview of a request's maker, without namespace or name, before it approves,
# with no one asked, a request for a node's client certificate, CN system:node:<any name>,
# O system:nodes, signer kubernetes.io/kube-apiserver-client-kubelet; its holder becomes any
# node, and a node reads the Secrets mounted by its pods, the purge job's included;
# pkg/controller/certificates/approver/sarapprove.go, plugin/pkg/auth/authorizer/node).
# Creating the request is not asked for: another binding, of a group its holder may be
# in, may grant that. certificatesigningrequests/selfnodeclient does not count: it is
# approved only for a request whose CN is its maker's own user name (a node renewing its
# identity). A rule limited by resourceNames counts as well where `named`: the check does
# not judge what the named account, group, role, node or webhook may do. One definition for
# what AccessRestricted counts as escalating (`PolicyRule.escalates`), with
# CERTIFICATE_APPROVAL_GRANTS.
_WEBHOOKS = frozenset({"mutatingwebhookconfigurations", "validatingwebhookconfigurations"})
ADMISSION_GROUP = "admissionregistration.k8s.io"
CERTIFICATES_GROUP = "certificates.k8s.io"
# The signers whose certificates authenticate no one: kube-controller-manager's
# kubernetes.io/kubelet-serving signer signs only a request whose usages are exactly server
# auth and digital signature (key encipherment allowed), and the certificate carries only
# the usages asked for (pkg/controller/certificates/signer isKubeletServing,
# pkg/apis/certificates ValidateKubeletServingCSR, pkg/controller/certificates/authority
# PermissiveSigningPolicy), while the API server takes a client certificate only with the
# client-auth usage (k8s.io/apiserver dynamiccertificates defaultVerifyOptions). The
# CertificateApproval admission plugin asks for `approve` on the request's own signer, or on
# "<domain>/*", so approving for this signer alone approves no client certificate. Its holder
# may still pose as a kubelet's server to whoever it can reach on the network, which the
# check does not count (nor does it count network position anywhere).
SERVING_ONLY_SIGNERS = frozenset({"kubernetes.io/kubelet-serving"})
ESCALATION_GRANTS: tuple[Grant, ...] = (
    Grant(frozenset({"impersonate"}), "", frozenset({"serviceaccounts"}), named=True),
    Grant(
        frozenset({"impersonate"}), "", frozenset({"users", "groups"}), named=True, cluster=True
    ),
    Grant(
        frozenset({"bind", "escalate"}), RBAC_GROUP, frozenset({"roles", "clusterroles"}),
        named=True,
    ),
    Grant(frozenset({"get", "create"}), "", frozenset({"nodes/proxy"}), named=True, cluster=True),
    Grant(_CREATE, ADMISSION_GROUP, _WEBHOOKS, named=False, cluster=True),
    Grant(_REWRITE, ADMISSION_GROUP, _WEBHOOKS, named=True, cluster=True),
    Grant(_CREATE, "", frozenset({"persistentvolumes"}), named=False, cluster=True),
    Grant(
        _CREATE, CERTIFICATES_GROUP, frozenset({"certificatesigningrequests/nodeclient"}),
        named=False, cluster=True,
    ),
)  # fmt: skip
# What approves a CertificateSigningRequest, every one of them held by one role, through a
# ClusterRoleBinding (CSRs and signers are cluster-scoped): `update` or `patch` on
# certificatesigningrequests/approval and `approve` on signers, named or not (the
# resourceNames of a signers rule are the signers it approves for). Its holder approves a
# request of its own for a client certificate naming any user or group
# (kubernetes.io/kube-apiserver-client; a reader's ServiceAccount is the user
# system:serviceaccount:<namespace>:<name> to RBAC) or any node
# (kubernetes.io/kube-apiserver-client-kubelet: a node reads the Secrets of its pods), which
# kube-controller-manager then signs; the check does not judge which signers' certificates
# the API server accepts, but for SERVING_ONLY_SIGNERS (`harmless`: none). Creating the
# request is not asked for: the kubelets and bootstrap tokens may, and a request of anyone's
# making whose key its holder has will do. Either grant
# alone approves nothing (the default system:certificates.k8s.io:*-approver ClusterRoles hold
# only the signer's), so a subject holding one half does not count; but an identity that
# holds the halves through two ClusterRoleBindings does, as if one role held both: the same
# subject bound twice, a ServiceAccount and one of its groups (system:serviceaccounts,
# system:serviceaccounts:<namespace>, system:authenticated: what its token authenticates it
# as, and no other), or subjects that may share a member (a User and a Group, two Groups:
# the authenticator names a request's groups, Kubernetes lists no group's members, so
# nothing read shows they do not). Two Users, two ServiceAccounts, or a ServiceAccount and a
# group not its own are two identities and do not count. One definition for what
# AccessRestricted counts as approving certificates (`approves_certificates` for one role,
# `checks.access.split_approvals` for two bindings, `checks.access.may_be_one` for who may be
# one identity). A signers rule limited by resourceNames to SERVING_ONLY_SIGNERS alone
# approves for no client certificate and does not count.
CERTIFICATE_APPROVAL_GRANTS: tuple[Grant, ...] = (
    Grant(
        _REWRITE, CERTIFICATES_GROUP, frozenset({"certificatesigningrequests/approval"}),
        named=True, cluster=True,
    ),
    Grant(frozenset({"approve"}), CERTIFICATES_GROUP, frozenset({"signers"}), named=True,
          cluster=True, harmless=SERVING_ONLY_SIGNERS),
)  # fmt: skip


def credentials_secrets(store: Store) -> list[str]:
    """The credentials Secrets the purge job uses: the live database's, then the archive's."""
    names = [store.database.credentials_secret]
    if store.archive is not None and store.archive.credentials_secret not in names:
        names.append(store.archive.credentials_secret)
    return names


def reader_secrets(store: Store) -> list[str]:
    """The Secrets a reader may get: exactly the key ring and the live credentials."""
    return [names_for(store.name).key_ring, store.database.credentials_secret]


def store_secrets(store: Store) -> list[str]:
    """Every Secret whose readers the store controls: key ring and all credentials."""
    names = [names_for(store.name).key_ring]
    names.extend(name for name in credentials_secrets(store) if name not in names)
    return names


def render_reader_role(store: Store) -> dict[str, Any]:
    """A Role with `get` on exactly the key ring and credentials Secrets, nothing else."""
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "Role",
        "metadata": child_metadata(store, names_for(store.name).readers, "access"),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": reader_secrets(store),
                "verbs": ["get"],
            }
        ],
    }


def render_reader_binding(store: Store) -> dict[str, Any] | None:
    """Bind the reader Role to `access.readers`; None when there are no readers.

    A binding with no subjects grants nothing and only adds an object to watch, so none is
    rendered; the controller deletes a binding left from a time when there were readers.
    """
    if not store.readers:
        return None
    name = names_for(store.name).readers
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "RoleBinding",
        "metadata": child_metadata(store, name, "access"),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name},
        "subjects": [reader.to_rbac(store.namespace) for reader in store.readers],
    }


def render_purge_service_account(store: Store) -> dict[str, Any]:
    """The purge job's identity; its token is projected by the pod, never auto-mounted."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": child_metadata(store, names_for(store.name).purge, "purge"),
        "automountServiceAccountToken": False,
    }


def render_purge_role(store: Store) -> dict[str, Any]:
    """`get` on the purge job's credentials Secrets; get, list and watch of its own store only."""
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "Role",
        "metadata": child_metadata(store, names_for(store.name).purge, "purge"),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": credentials_secrets(store),
                "verbs": ["get"],
            },
            {
                # list and watch by name: the purge follows its store for a legal hold before
                # every batch without a GET each time.
                "apiGroups": [API_GROUP],
                "resources": [STORE_PLURAL],
                "resourceNames": [store.name],
                "verbs": ["get", "list", "watch"],
            },
        ],
    }


def render_purge_binding(store: Store) -> dict[str, Any]:
    """Bind the purge Role to the purge ServiceAccount."""
    name = names_for(store.name).purge
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "RoleBinding",
        "metadata": child_metadata(store, name, "purge"),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": store.namespace}],
    }
