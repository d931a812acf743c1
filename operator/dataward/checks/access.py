"""AccessRestricted: only the store's readers and its purge job can read its Secrets."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from dataward.checks.conditions import ACCESS_RESTRICTED, Condition, named
from dataward.checks.observed import (
    BindingSubject,
    ObservedBinding,
    ObservedRole,
    PolicyRule,
    RbacSnapshot,
    TrustedSubjects,
    approval_grants,
    approves_certificates,
    mints_tokens_through_secrets,
)
from dataward.model.k8s_names import service_account_groups
from dataward.render.labels import STORE_LABEL
from dataward.render.rbac import CERTIFICATE_APPROVAL_GRANTS

DEFAULT_TRUSTED = TrustedSubjects()
_LISTED = 3
# The reasons AccessRestricted is False for (written as literals where they are judged, which
# the reasons catalogue reads): someone beyond the store's readers can read its Secrets, by a
# rule on them, by starting a pod that mounts them, or by becoming someone who reads them.
# The quarter's report lists each such period (report/build.py).
BEYOND_READERS = (
    "OtherBindingGrantsSecrets",
    "WorkloadCreatorsCanMountSecrets",
    "EscalatorsCanReadSecrets",
)


def access_restricted(
    namespace: str,
    secret_names: Sequence[str],
    desired: Sequence[Mapping[str, Any]],
    rbac: RbacSnapshot | None,
    trusted: TrustedSubjects = DEFAULT_TRUSTED,
    neighbours: Sequence[Mapping[str, Any]] | None = (),
    declared: Mapping[str, str] | None = None,
    readers: SecretReaders | None = None,
    ring: str | None = None,
) -> Condition:
    """Decide AccessRestricted from the namespace's RBAC as read.

    `desired` are the store's rendered Roles and RoleBindings; each must be in place as
    rendered. Any other RoleBinding in `namespace`, or any ClusterRoleBinding, whose role
    grants a verb of SECRET_READ_VERBS (patch and deletes too) on Secrets that include one of
    `secret_names` (no resourceNames, or one of them; `*` counts) makes this False, unless
    every subject it binds is part of the platform (`trusted`), or it is exactly what
    Dataward renders for another store of the namespace (`neighbours`: their rendered Roles
    and RoleBindings; stores may share a database and its credentials Secret, and each
    declares its own readers). A neighbour's binding or role that was edited is not exactly
    rendered, so it counts as foreign. A binding of the same scope whose role lets its
    subjects start pods in `namespace`, rewrite a workload's pod template, enter a pod or
    mint a ServiceAccount's token there (`PolicyRule.starts_pods`: a pod mounts any Secret
    of its namespace; `mints_tokens_through_secrets`: create a Secret and read one of a name
    of its choosing, which kube-controller-manager fills with a token) makes this False too,
    for its subjects that are neither trusted nor among the store's own bindings' subjects
    (its readers and purge job, who read the Secrets anyway). So does, for the same
    subjects, a binding whose role lets them become someone who reads the Secrets
    (`PolicyRule.escalates`: impersonate, bind or escalate a role, the kubelet's API through
    nodes/proxy, write an admission webhook, make a PersistentVolume, request any node's
    client certificate, which kube-controller-manager approves unasked;
    `approves_certificates`: approve a CSR). So do two
    ClusterRoleBindings, each to a role holding half of a CSR approval, whose subjects may be
    one identity (`split_approvals`: the same subject, a ServiceAccount and one of its
    groups, a User and a Group, two Groups), unless one of those subjects is trusted or
    among the store's own bindings' subjects (then so is whoever holds both); the pairs are
    worked out once per snapshot for every store. `rbac` is None, or `neighbours` None, when
    it could not be read.
    `declared`, when given, is `declared_by_neighbours(namespace, neighbours, rbac)` worked
    out beforehand (shared by the stores of a namespace), and `readers`, when given, is
    `SecretReaders.of(declared, rbac)` for the same `declared`. `ring`: the store's key ring,
    among `secret_names`, which no neighbour shares: a neighbour's render that reads it (its
    own ring's name, from another store name, is this one) makes this False.
    """
    if neighbours is None:
        return Condition(
            ACCESS_RESTRICTED,
            "Unknown",
            "StoresUnreadable",
            f"The PersonalDataStores of namespace {namespace} could not be listed, so "
            "bindings Dataward made for them cannot be told from foreign ones; the operator "
            "retries. Check that it may list personaldatastores.",
        )
    if rbac is None:
        return Condition(
            ACCESS_RESTRICTED,
            "Unknown",
            "RBACUnreadable",
            f"The RBAC objects of namespace {namespace} could not be read; the operator "
            "retries. Check that it may list roles, rolebindings, clusterroles and "
            "clusterrolebindings.",
        )
    missing, drifted = _own_problems(namespace, desired, rbac)
    if missing:
        return Condition(
            ACCESS_RESTRICTED,
            "False",
            "AccessControlsMissing",
            f"{', '.join(missing)} do(es) not exist; the operator recreates them. If this "
            "persists, check the operator's logs.",
        )
    if drifted:
        return Condition(
            ACCESS_RESTRICTED,
            "False",
            "AccessControlsDrifted",
            f"{', '.join(drifted)} differ(s) from what the store declares; the operator "
            "restores them. Change spec.access.readers instead of editing them.",
        )
    own = {
        (item["kind"], item["metadata"]["name"])
        for item in desired
        if item["kind"] == "RoleBinding"
    }
    if declared is None:
        declared = declared_by_neighbours(namespace, neighbours, rbac)
    foreign: list[Untrusted] = []
    creators: list[Untrusted] = []
    escalators: list[Untrusted] = []
    readers_declared: set[BindingSubject] | None = None
    for binding, subjects in _untrusted_bindings(namespace, rbac, trusted, declared, own):
        if (binding.kind, binding.name) in own or declared_for(
            binding, namespace, declared
        ) is not None:
            continue
        role = rbac.role_for(binding)
        # A binding to a role that does not exist grants nothing (yet).
        if role is None:
            continue
        powers = role_powers(rbac, role)
        if powers.reads(secret_names):
            foreign.append((binding, subjects))
            continue
        starts = powers.starts_pods
        if starts or powers.escalates(binding.kind == "ClusterRoleBinding"):
            if readers_declared is None:
                readers_declared = _declared_subjects(namespace, desired)
            beyond = [s for s in subjects if s not in readers_declared]
            if beyond:
                (creators if starts else escalators).append((binding, beyond))
    if foreign:
        described = _described(foreign, "read them")
        return Condition(
            ACCESS_RESTRICTED,
            "False",
            "OtherBindingGrantsSecrets",
            f"Secrets {', '.join(secret_names)} are readable beyond spec.access.readers: "
            f"{described}. Remove those bindings, narrow their roles with "
            "resourceNames, or add the subjects to spec.access.readers.",
        )
    if creators:
        described = _described(creators, "start pods")
        return Condition(
            ACCESS_RESTRICTED,
            "False",
            "WorkloadCreatorsCanMountSecrets",
            f"Secrets {', '.join(secret_names)} can be mounted beyond spec.access.readers: "
            f"{described} in namespace {namespace} (create pods or workloads, update or "
            "patch a workload's pod template, exec, attach or add an ephemeral container "
            "into pods, or mint ServiceAccount tokens), and a pod can mount any Secret of its "
            "namespace. Narrow pod and workload creation in the store's namespace to "
            "spec.access.readers, or move the store's workload and Secrets to a namespace of "
            "their own.",
        )
    split = split_approvals(rbac, trusted)
    if split:
        if readers_declared is None:
            readers_declared = _declared_subjects(namespace, desired)
        split = tuple(_split_beyond(split, readers_declared))
    if escalators or split:
        what = "become someone who reads them"
        described = named(
            [
                *_items(escalators, what),
                *sorted(pair.describe(what) for pair in split),
            ],
            _LISTED,
            "; ",
        )
        return Condition(
            ACCESS_RESTRICTED,
            "False",
            "EscalatorsCanReadSecrets",
            f"Secrets {', '.join(secret_names)} are readable beyond spec.access.readers by "
            f"privilege escalation: {described} (impersonate ServiceAccounts of namespace "
            f"{namespace}, or any user or group; bind or escalate roles; run commands in "
            "pods through the kubelet's API, nodes/proxy; write an admission webhook, which "
            "may add the Secrets to any pod and is sent every Secret written; make a "
            "hostPath PersistentVolume, which reads a node's copies of its pods' Secrets; or "
            "approve a CertificateSigningRequest for a client certificate naming anyone, "
            "through one role or two bindings of one subject, or of groups it may be in; or "
            "request a node's client certificate, create on "
            "certificatesigningrequests/nodeclient, which kube-controller-manager approves "
            "unasked: a node reads the Secrets its pods mount). "
            "Remove those bindings or those "
            "verbs from their roles, or bind them only to spec.access.readers (a platform "
            "component's account may be added to the operator's trusted subjects).",
        )
    if readers is None:
        readers = SecretReaders.of(namespace, declared, rbac)
    spelled = [] if ring is None else readers.stores_reading([ring])
    if spelled:
        return Condition(
            ACCESS_RESTRICTED,
            "False",
            "OtherBindingGrantsSecrets",
            f"The readers of store(s) {', '.join(spelled)} may read this store's key ring, "
            f"Secret {ring}: a store name too long for a child's name is cut and hashed, and "
            "another store's name spells the same ring name. Key rings are never shared: "
            "make one of the stores again under another name.",
        )
    sharing = readers.stores_reading(secret_names)
    shared = (
        f" Stores {', '.join(sharing)} share some of these Secrets and declare their own readers."
        if sharing
        else ""
    )
    return Condition(
        ACCESS_RESTRICTED,
        "True",
        "OnlyDeclaredReaders",
        f"Only spec.access.readers and the purge job can read Secrets "
        f"{', '.join(secret_names)}.{shared}",
    )


@dataclass(frozen=True, slots=True)
class RolePowers:
    """What a role's rules let its holders do with a namespace's Secrets, whichever store
    asks: worked out once per role and RBAC snapshot (`role_powers`), not once per store and
    binding (issue 11: the rules of the cluster's ClusterRoles, scanned for every store,
    were a fifth of a restart's reconciles)."""

    reads_every: bool  # a rule reads Secrets of any name (PolicyRule.reads_secrets)
    reads_named: frozenset[str]  # the names rules with resourceNames read
    # PolicyRule.starts_pods of a rule, or mints_tokens_through_secrets of the rules
    starts_pods: bool
    escalates_namespaced: bool  # PolicyRule.escalates through a RoleBinding
    # ... through a ClusterRoleBinding, or the rules approve certificates between them
    # (approves_certificates: two grants, perhaps of two rules)
    escalates_cluster: bool
    # The CERTIFICATE_APPROVAL_GRANTS (indexes) the rules hold through a ClusterRoleBinding:
    # a role of one of them is half an approval (`split_approvals`).
    approval: frozenset[int] = frozenset()

    @classmethod
    def of(cls, role: ObservedRole) -> RolePowers:
        rules = role.rules
        readers = [rule for rule in rules if rule.reads_secrets(rule.resource_names or ("",))]
        return cls(
            reads_every=any(not rule.resource_names for rule in readers),
            reads_named=frozenset(name for rule in readers for name in rule.resource_names),
            starts_pods=any(rule.starts_pods() for rule in rules)
            or mints_tokens_through_secrets(rules),
            escalates_namespaced=any(rule.escalates(False) for rule in rules)
            or approves_certificates(rules, False),
            escalates_cluster=any(rule.escalates(True) for rule in rules)
            or approves_certificates(rules, True),
            approval=approval_grants(rules, True),
        )

    def reads(self, secret_names: Sequence[str]) -> bool:
        """Whether a rule reads any of `secret_names` (as any `reads_secrets` of them)."""
        return self.reads_every or not self.reads_named.isdisjoint(secret_names)

    def escalates(self, cluster_binding: bool) -> bool:
        """PolicyRule.escalates of any rule, or approves_certificates of the rules,
        through a binding of that kind."""
        return self.escalates_cluster if cluster_binding else self.escalates_namespaced


def role_powers(rbac: RbacSnapshot, role: ObservedRole) -> RolePowers:
    """`RolePowers.of(role)`, kept in the snapshot's memo (which holds its roles, so a role's
    identity names it there while the memo lives)."""
    memo = cast(
        "dict[int, tuple[ObservedRole, RolePowers]]", rbac.memo.setdefault("role-powers", {})
    )
    found = memo.get(id(role))
    if found is None or found[0] is not role:
        powers = _cluster_role_powers(role) if role.kind == "ClusterRole" else RolePowers.of(role)
        found = memo[id(role)] = (role, powers)
    return found[1]


# A ClusterRole's powers by its rules: every namespace's snapshot holds the cluster's
# ClusterRoles, and their powers are the same in each (they depend on the rules alone), so
# they are worked out once for all namespaces, not once per namespace (issue 11: 73
# ClusterRoles of 325 rules on a fresh control plane, 2.5 ms, for each of 100 namespaces).
# Bounded: emptied when it outgrows CLUSTER_POWERS_BOUND. A namespace's Roles stay in their
# snapshot's memo: each store's own Role names its own Secrets.
_CLUSTER_POWERS: dict[tuple[PolicyRule, ...], RolePowers] = {}
CLUSTER_POWERS_BOUND = 1024


def _cluster_role_powers(role: ObservedRole) -> RolePowers:
    powers = _CLUSTER_POWERS.get(role.rules)
    if powers is None:
        if len(_CLUSTER_POWERS) >= CLUSTER_POWERS_BOUND:
            _CLUSTER_POWERS.clear()
        powers = _CLUSTER_POWERS[role.rules] = RolePowers.of(role)
    return powers


def may_be_one(first: BindingSubject, second: BindingSubject) -> bool:
    """Whether one identity may be both subjects, so that it holds what either binding
    grants. The same identity (a ServiceAccount by either name) is; two Users or
    ServiceAccounts are two; a ServiceAccount is a member of its own groups only
    (`service_account_groups`). Who else is in a Group Kubernetes does not say (the
    authenticator names a request's groups: a client certificate's organisations, a token's
    claims), so a User may be in any Group, and two Groups may share a member."""
    first, second = first.as_principal(), second.as_principal()
    if first == second:
        return True
    if first.kind != "Group":
        first, second = second, first
    if first.kind != "Group":
        return False
    if second.kind == "Group" or second.kind == "User":
        return True
    if second.kind == "ServiceAccount":
        return first.name in service_account_groups(second.namespace or "")
    return False


Held = tuple[ObservedBinding, BindingSubject]


@dataclass(frozen=True, slots=True)
class SplitApproval:
    """An identity that may hold both of CERTIFICATE_APPROVAL_GRANTS through two
    ClusterRoleBindings, each to a role holding one: `held`, a binding and the subject it
    binds, for each grant in order."""

    held: tuple[Held, Held]

    def subjects(self) -> tuple[BindingSubject, ...]:
        return tuple(subject.as_principal() for _, subject in self.held)

    def describe(self, what: str) -> str:
        """The two bindings and who they let do `what`, for a message."""
        (first, one), (second, other) = self.held
        one, other = one.as_principal(), other.as_principal()
        if one == other:
            bindings = (
                f"{first.describe()} (role {first.describe_role()}) with "
                f"{second.describe()} (role {second.describe_role()})"
            )
            return f"{bindings} let {one.describe()} {what}"
        bindings = (
            f"{first.describe()} (role {first.describe_role()}) of {one.describe()} with "
            f"{second.describe()} (role {second.describe_role()}) of {other.describe()}"
        )
        # Two subjects are one identity only through a Group (may_be_one).
        member, group = (other, one) if one.kind == "Group" else (one, other)
        if member.kind == "Group":
            who = f"a member of both {group.describe()} and {member.describe()}"
        elif member.kind == "ServiceAccount":  # one of its own groups
            who = member.describe()
        else:
            who = f"{member.describe()}, if a member of {group.describe()},"
        return f"{bindings} let {who} {what}"


def split_approvals(rbac: RbacSnapshot, trusted: TrustedSubjects) -> tuple[SplitApproval, ...]:
    """The identities that may approve a CertificateSigningRequest through two
    ClusterRoleBindings, each to a role that holds one of CERTIFICATE_APPROVAL_GRANTS
    (`may_be_one`): worked out once per RBAC snapshot and trusted subjects, in the
    snapshot's memo, for every store (only ClusterRoleBindings grant them, so which store
    asks changes nothing; each store leaves out its own readers, `_split_beyond`). A role
    holding both is judged alone (`RolePowers.escalates`); a trusted subject holds its half
    as the platform (a member of a trusted Group, or a trusted account, is the platform)."""
    key = ("split-approvals", trusted)
    found = rbac.memo.get(key)
    if isinstance(found, tuple):
        return cast("tuple[SplitApproval, ...]", found)
    # Who holds each grant alone (the approval subresource's, the signer's).
    holders: list[list[Held]] = [[] for _ in CERTIFICATE_APPROVAL_GRANTS]
    for binding in rbac.bindings:
        if binding.kind != "ClusterRoleBinding":
            continue
        role = rbac.role_for(binding)
        if role is None:
            continue
        approval = role_powers(rbac, role).approval
        if len(approval) != 1:
            continue
        (index,) = approval
        holders[index].extend((binding, subject) for subject in _untrusted(binding, trusted))
    first, second = holders
    pairs = tuple(
        SplitApproval((one, other))
        for one in first
        for other in second
        if may_be_one(one[1], other[1])
    )
    rbac.memo[key] = pairs
    return pairs


def _split_beyond(
    pairs: Sequence[SplitApproval], readers: set[BindingSubject]
) -> list[SplitApproval]:
    """`pairs` without those whose identity is one of the store's readers: an identity that
    is both subjects is each of them, so a pair with a reader among its subjects approves
    only as a reader (who reads the Secrets anyway)."""
    principals = {subject.as_principal() for subject in readers}
    return [pair for pair in pairs if principals.isdisjoint(pair.subjects())]


class DeclaredBesides(Mapping[str, str]):
    """A namespace's declared bindings (name -> store label) without one store's (`own`): a
    view, so that each store of a namespace does not copy the namespace's (issue 11)."""

    def __init__(self, base: Mapping[str, str], own: str) -> None:
        self.base = base
        self.own = own

    def __getitem__(self, name: str) -> str:
        label = self.base[name]
        if label == self.own:
            raise KeyError(name)
        return label

    def __iter__(self) -> Iterator[str]:
        return (name for name, label in self.base.items() if label != self.own)

    def __len__(self) -> int:
        return sum(1 for _ in self)


Untrusted = tuple[ObservedBinding, list[BindingSubject]]


def _untrusted_bindings(
    namespace: str,
    rbac: RbacSnapshot,
    trusted: TrustedSubjects,
    declared: Mapping[str, str],
    own: set[tuple[str, str]],
) -> list[Untrusted]:
    """The bindings in scope with untrusted subjects, at least those that are not declared
    (`declared` filters them again). For a view of a namespace's declared bindings, found
    once per RBAC snapshot and declaration (shared by the namespace's stores): those declared
    for no store, and those declared for the asking store's label; the snapshot must be the
    namespace's, or differ from it only in the store's own bindings (`rbac.replaced`)."""
    base = rbac.base or rbac
    if not isinstance(declared, DeclaredBesides) or not all(
        key[1] == namespace and (key[0], key[2]) in own for key in rbac.replaced
    ):
        return scan_untrusted(namespace, rbac.bindings, trusted)
    memo_key = ("untrusted", namespace, trusted)
    found = base.memo.get(memo_key)
    if not (isinstance(found, tuple) and found[0] is declared.base):
        undeclared: list[Untrusted] = []
        by_label: dict[str, list[Untrusted]] = {}
        for binding, subjects in scan_untrusted(namespace, base.bindings, trusted):
            label = declared_for(binding, namespace, declared.base)
            if label is None:
                undeclared.append((binding, subjects))
            else:
                by_label.setdefault(label, []).append((binding, subjects))
        found = (declared.base, undeclared, by_label)
        base.memo[memo_key] = found
    return [*found[1], *found[2].get(declared.own, ())]


def scan_untrusted(
    namespace: str, bindings: Sequence[ObservedBinding], trusted: TrustedSubjects
) -> list[Untrusted]:
    return [
        (binding, subjects)
        for binding in bindings
        if _in_scope(binding, namespace)
        for subjects in [_untrusted(binding, trusted)]
        if subjects
    ]


def declared_for(
    binding: ObservedBinding, namespace: str, declared: Mapping[str, str]
) -> str | None:
    """The store label `binding` is declared for, or None: `declared` maps names of
    RoleBindings of `namespace` (those a store renders, in place as rendered), so only a
    RoleBinding of that namespace can be one. A ClusterRoleBinding, or a RoleBinding of
    another namespace, that takes a declared binding's name is not declared (anyone may
    choose a name, as anyone may set a label)."""
    if binding.kind != "RoleBinding" or binding.namespace != namespace:
        return None
    return declared.get(binding.name)


def declared_by_neighbours(
    namespace: str, neighbours: Sequence[Mapping[str, Any]], rbac: RbacSnapshot
) -> dict[str, str]:
    """RoleBinding name -> store, for neighbours' bindings that are in place exactly as rendered.

    A binding counts only when it and the Role it names are both as Dataward renders them for
    that store: labels can be forged by anyone who may create RoleBindings, content cannot
    be widened without showing here as foreign.
    """
    declared: dict[str, str] = {}
    for store, items in by_store_label(neighbours).items():
        declared.update(declared_by_store(namespace, store, items, rbac))
    return declared


@dataclass(frozen=True)
class SecretReaders:
    """Which stores' declared RoleBindings read which Secrets, indexed by Secret name.

    Built once for a namespace's declared bindings; `stores_reading` then answers for one
    store's Secrets without going through every neighbour's binding and role again.
    """

    every: frozenset[str]  # stores with a binding that reads every Secret
    by_secret: Mapping[str, frozenset[str]]
    besides: str | None = None  # a store left out of every answer (the one asking)

    @classmethod
    def of(
        cls, namespace: str, declared: Mapping[str, str], rbac: RbacSnapshot
    ) -> SecretReaders:
        """From declared bindings (name -> store) and the RBAC they are judged against."""
        every: set[str] = set()
        by_secret: dict[str, set[str]] = {}
        for name, store in declared.items():
            all_secrets, secrets = binding_reads(namespace, name, rbac)
            if all_secrets:
                every.add(store)
            for secret in secrets:
                by_secret.setdefault(secret, set()).add(store)
        return cls(frozenset(every), {k: frozenset(v) for k, v in by_secret.items()})

    def stores_reading(self, secret_names: Sequence[str]) -> list[str]:
        """The stores (sorted) whose declared bindings read any of `secret_names`."""
        found = set(self.every).union(*(self.by_secret.get(n, ()) for n in secret_names))
        return sorted(found - {self.besides})


def binding_reads(namespace: str, name: str, rbac: RbacSnapshot) -> tuple[bool, set[str]]:
    """Which Secrets a RoleBinding of `namespace` lets its subjects read: (every Secret, the
    Secrets named); nothing when the binding or its role is not there."""
    binding = rbac.binding("RoleBinding", namespace, name)
    role = None if binding is None else rbac.role_for(binding)
    every = False
    names: set[str] = set()
    for rule in () if role is None else role.rules:
        if not rule.reads_secrets(rule.resource_names or ("",)):
            continue
        if not rule.resource_names:
            every = True
        names.update(rule.resource_names)
    return every, names


def store_label(item: Mapping[str, Any]) -> str:
    """The store label of a rendered object ("" without one): what `by_store_label` groups by."""
    return str((item["metadata"].get("labels") or {}).get(STORE_LABEL, ""))


def by_store_label(items: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rendered objects grouped by their store label, in order of appearance."""
    by_store: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        by_store.setdefault(store_label(item), []).append(item)
    return by_store


def declared_by_store(
    namespace: str, store: str, items: Sequence[Mapping[str, Any]], rbac: RbacSnapshot
) -> dict[str, str]:
    """`declared_by_neighbours` for the rendered objects of one store label."""
    missing, drifted = _own_problems(namespace, items, rbac)
    broken = {label.rsplit("/", 1)[-1] for label in missing + drifted}
    roles_ok = {
        item["metadata"]["name"]
        for item in items
        if item["kind"] == "Role" and item["metadata"]["name"] not in broken
    }
    return {
        item["metadata"]["name"]: store
        for item in items
        if item["kind"] == "RoleBinding"
        and item["metadata"]["name"] not in broken
        and item["roleRef"]["name"] in roles_ok
    }


def _own_problems(
    namespace: str, desired: Sequence[Mapping[str, Any]], rbac: RbacSnapshot
) -> tuple[list[str], list[str]]:
    missing: list[str] = []
    drifted: list[str] = []
    for item in desired:
        kind, name = item["kind"], item["metadata"]["name"]
        label = f"{kind} {namespace}/{name}"
        if kind not in ("Role", "RoleBinding"):
            continue
        found = (
            rbac.role("Role", namespace, name)
            if kind == "Role"
            else rbac.binding("RoleBinding", namespace, name)
        )
        if found is None:
            missing.append(label)
        elif not rbac_as_rendered(item, found, namespace):
            drifted.append(label)
    return missing, drifted


def rbac_as_rendered(
    item: Mapping[str, Any], found: ObservedRole | ObservedBinding, namespace: str
) -> bool:
    """Whether a Role or RoleBinding as read is `item` as Dataward renders it: the same rules
    (in any order), or the same role and subjects. Labels and owner references prove nothing
    (anyone who may write the object writes them); the content is what reads Secrets."""
    if isinstance(found, ObservedRole):
        if item["rules"] is found.source:
            return True  # the very list `found` was parsed from (a shared copy): its rules
        rules = tuple(PolicyRule.from_api(rule) for rule in item["rules"])
        # The same rules in any order; in the same order (nearly always), not sorted.
        return rules == found.rules or sorted(found.rules, key=repr) == sorted(rules, key=repr)
    ref = item["roleRef"]
    if found.role_kind != ref["kind"] or found.role_name != ref["name"]:
        return False
    if item["subjects"] is found.source and found.namespace == namespace:
        return True  # the very list `found` was parsed from, as of this namespace
    subjects = frozenset(BindingSubject.from_api(raw, namespace) for raw in item["subjects"])
    return found.subjects == subjects


def _in_scope(binding: ObservedBinding, namespace: str) -> bool:
    return binding.kind == "ClusterRoleBinding" or binding.namespace == namespace


def _untrusted(binding: ObservedBinding, trusted: TrustedSubjects) -> list[BindingSubject]:
    return [subject for subject in binding.subjects if not trusted.trusts(subject)]


def _described(bindings: list[Untrusted], what: str) -> str:
    """The bindings for a message, by kind and name: each with its role and the subjects it
    lets do `what`; the first _LISTED, and how many more."""
    return named(_items(bindings, what), _LISTED, "; ")


def _items(bindings: list[Untrusted], what: str) -> list[str]:
    """`_described`'s items: one a binding, by kind and name."""
    return [
        f"{binding.describe()} (role {binding.describe_role()}) lets "
        f"{', '.join(sorted(s.describe() for s in subjects))} {what}"
        for binding, subjects in sorted(bindings, key=lambda b: (b[0].kind, b[0].name))
    ]


def _declared_subjects(
    namespace: str, desired: Sequence[Mapping[str, Any]]
) -> set[BindingSubject]:
    """The subjects of the store's own RoleBindings (spec.access.readers and the purge job's
    account): they read the store's Secrets anyway, so a pod of theirs mounting them reads
    nothing more."""
    return {
        BindingSubject.from_api(raw, namespace)
        for item in desired
        if item["kind"] == "RoleBinding"
        for raw in item.get("subjects") or ()
    }
