"""NetworkIsolated: the store's NetworkPolicy is in place, and no other one lets more in."""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import lru_cache
from typing import Any

from dataward.checks.conditions import NETWORK_ISOLATED, Condition, named
from dataward.checks.drift import same_part
from dataward.checks.observed import ObservedObject
from dataward.render.labels import STORE_LABEL


def network_isolated(
    desired: Mapping[str, Any],
    observed: ObservedObject,
    other_policies: Sequence[Mapping[str, Any]] | None = (),
    workload_pod_labels: Sequence[Mapping[str, str]] = (),
    neighbours: Sequence[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]] | None = (),
    other_policies_error: str | None = None,
    admin_policies: Sequence[Mapping[str, Any]] | None = (),
    admin_policies_error: str | None = None,
    namespace_labels: Mapping[str, str] | None = None,
    cilium_policies: Sequence[Mapping[str, Any]] | None = (),
    cilium_policies_error: str | None = None,
    calico_policies: Sequence[Mapping[str, Any]] | None = (),
    calico_policies_error: str | None = None,
) -> Condition:
    """Compare the live NetworkPolicy with the rendered one and look for wider policies.

    `admin_policies` are the cluster's AdminNetworkPolicies (none when the API does not
    serve them; None, with `admin_policies_error`, when they could not be read): they come
    before every NetworkPolicy, so one that may admit traffic to the workload pods outweighs
    what the NetworkPolicies say (`admitted_by_admin_policies`). `cilium_policies` are the
    namespace's CiliumNetworkPolicies and the cluster's CiliumClusterwideNetworkPolicies
    (none where the API does not serve them; None, with `cilium_policies_error`, when they
    could not be read): their allow rules add up with the NetworkPolicies', so one that may
    admit traffic to the workload pods weighs as an AdminNetworkPolicy's Allow does
    (`admitted_by_cilium_policies`). `namespace_labels`: the labels of the store's
    namespace, when known.

    NetworkPolicies add up, so the pods' effective ingress is the union of every policy
    selecting them. Stores may share pods (one database, several tables and categories):
    `neighbours` are the NetworkPolicies Dataward renders for the namespace's other stores.
    A neighbour's policy that is in place exactly as rendered and selects these pods declares
    its store's peers; every other policy selecting the pods must admit no (peer, port) pair
    beyond those one declared rule admits (a peer of one rule on a port of another is not
    declared), or this is False. `other_policies` are the other
    NetworkPolicies of the namespace (None, with `other_policies_error`, when the LIST
    failed; `neighbours` None when the stores could not be listed: both make this Unknown);
    `workload_pod_labels` the labels of the workload pods, when read (the controller does
    not: then the workload selector stands in for them, and a wider policy selecting by a
    label it does not fix makes this Unknown, `_selection`). `neighbours` may be given
    as a mapping from policy name (then it may hold this store's own: it is never looked up);
    `other_policies` may leave out policies that cannot select the workload pods.
    """
    verdict = _by_network_policies(
        desired, observed, other_policies, workload_pod_labels, neighbours, other_policies_error
    )
    namespace = desired["metadata"]["namespace"]
    workload = desired["spec"]["podSelector"]
    # Each kind that admits traffic whatever the NetworkPolicies say, weighed in turn.
    for weigh, policies, error in (
        (admitted_by_admin_policies, admin_policies, admin_policies_error),
        (admitted_by_cilium_policies, cilium_policies, cilium_policies_error),
        (admitted_by_calico_policies, calico_policies, calico_policies_error),
    ):
        verdict = weigh(
            verdict, namespace, workload, policies, error, namespace_labels, workload_pod_labels
        )
    return verdict


def _by_network_policies(
    desired: Mapping[str, Any],
    observed: ObservedObject,
    other_policies: Sequence[Mapping[str, Any]] | None,
    workload_pod_labels: Sequence[Mapping[str, str]],
    neighbours: Sequence[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]] | None,
    other_policies_error: str | None,
) -> Condition:
    """NetworkIsolated as the namespace's NetworkPolicies alone say (`network_isolated`)."""
    name = desired["metadata"]["name"]
    namespace = desired["metadata"]["namespace"]
    if other_policies is None:
        return Condition(
            NETWORK_ISOLATED,
            "Unknown",
            "NetworkPoliciesUnreadable",
            f"The NetworkPolicies of namespace {namespace} could not be listed "
            f"({other_policies_error or 'error'}), so a wider policy may admit more than the "
            "store declares; the operator retries. Check that it may list networkpolicies.",
        )
    if neighbours is None:
        return Condition(
            NETWORK_ISOLATED,
            "Unknown",
            "StoresUnreadable",
            f"The PersonalDataStores of namespace {namespace} could not be listed, so "
            "policies Dataward made for them cannot be told from foreign ones; the operator "
            "retries. Check that it may list personaldatastores.",
        )
    if observed.presence == "unknown":
        return Condition(
            NETWORK_ISOLATED,
            "Unknown",
            "NetworkPolicyUnreadable",
            f"NetworkPolicy {namespace}/{name} could not be read or written "
            f"({observed.error}); the operator retries. Check that it may get, create and "
            "update networkpolicies in this namespace, and that no admission policy refuses "
            "them.",
        )
    if observed.presence == "absent" or observed.body is None:
        return Condition(
            NETWORK_ISOLATED,
            "False",
            "NetworkPolicyMissing",
            f"NetworkPolicy {namespace}/{name} does not exist; the operator recreates it. If "
            "this persists, check the operator's logs for errors applying it.",
        )
    # The operator's own rule for "as rendered" (what it re-applies): one definition.
    if not same_part("NetworkPolicy", "spec", desired["spec"], observed.body.get("spec")):
        return Condition(
            NETWORK_ISOLATED,
            "False",
            "NetworkPolicyDrifted",
            f"NetworkPolicy {namespace}/{name} differs from what the store declares; the "
            "operator restores it. Change spec.network or spec.workload of the store instead "
            "of editing the NetworkPolicy.",
        )
    workload = desired["spec"]["podSelector"]
    rendered = (
        neighbours
        if isinstance(neighbours, Mapping)
        else {p["metadata"]["name"]: p for p in neighbours}
    )
    selecting: list[Mapping[str, Any]] = []
    uncertain: list[Mapping[str, Any]] = []
    for policy in other_policies:
        if (policy.get("metadata") or {}).get("name") == name:
            continue
        selection = _selection(policy, workload, workload_pod_labels)
        if selection is SELECTS:
            selecting.append(policy)
        elif selection is MAY_SELECT:
            uncertain.append(policy)
    sharing = [policy for policy in selecting if _as_rendered(policy, rendered)]
    declared = [desired["spec"], *(policy["spec"] for policy in sharing)]
    # By identity: `policy not in sharing` compared whole dicts, O(n^2) when n stores share pods.
    shared = {id(policy) for policy in sharing}
    wider = [
        policy
        for policy in selecting
        if id(policy) not in shared and _admits_more(policy, declared)
    ]
    if wider:
        names = named([f"{namespace}/{(p.get('metadata') or {}).get('name')}" for p in wider], 5)
        return Condition(
            NETWORK_ISOLATED,
            "False",
            "OtherPolicyAllowsIngress",
            f"NetworkPolicy {names} also selects the workload pods and admits peers or "
            "ports the store does not declare: narrow its podSelector, or add those peers to "
            "spec.network.allowFrom if they should reach the data.",
        )
    # A neighbour's own policy, as rendered, that may select these pods too (its workload
    # selector by other label keys): its peers are its store's declared ones, whose pods
    # these may be; not known to share them, it is no finding and no "shared" note.
    unsure = [
        policy
        for policy in uncertain
        if not _as_rendered(policy, rendered) and _admits_more(policy, declared)
    ]
    if unsure:
        names = named([f"{namespace}/{(p.get('metadata') or {}).get('name')}" for p in unsure], 5)
        keys = sorted({k for p in unsure for k in _keys_not_fixed(p, workload)})
        return Condition(
            NETWORK_ISOLATED,
            "Unknown",
            "PolicyMaySelectWorkload",
            f"NetworkPolicy {names} admits peers or ports the store does not declare, "
            f"and selects pods by label {', '.join(keys[:5])}, which spec.workload.podSelector "
            "does not fix: the workload pods may carry it (the operator does not read their "
            "labels). Add a requirement on that label to spec.workload.podSelector (its value, "
            "or DoesNotExist), or narrow that policy's podSelector.",
        )
    stores = sorted(
        str((p["metadata"].get("labels") or {}).get(STORE_LABEL, p["metadata"]["name"]))
        for p in sharing
    )
    shared_note = (
        f" The workload pods are shared with stores {', '.join(stores)}: their ingress is the "
        "union of what those stores declare."
        if stores
        else ""
    )
    return Condition(
        NETWORK_ISOLATED,
        "True",
        "Isolated",
        f"NetworkPolicy {namespace}/{name} admits only spec.network.allowFrom and the purge "
        f"pods, on the workload's ports.{shared_note}",
    )


# The label every namespace carries with its own name (set by the API server since 1.21):
# the one label of the store's namespace known without reading the namespace.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def admitted_by_admin_policies(
    verdict: Condition,
    namespace: str,
    workload: Mapping[str, Any],
    admin_policies: Sequence[Mapping[str, Any]] | None,
    admin_policies_error: str | None = None,
    namespace_labels: Mapping[str, str] | None = None,
    workload_pod_labels: Sequence[Mapping[str, str]] = (),
) -> Condition:
    """NetworkIsolated once the AdminNetworkPolicies (policy.networking.k8s.io) are weighed.

    An AdminNetworkPolicy is evaluated before every NetworkPolicy: an ingress rule of action
    Allow admits its peers to the pods of its subject whatever the namespace's NetworkPolicies
    say. So one with such a rule whose subject selects the workload pods makes this False,
    `AdminNetworkPolicyAllows` (even when the NetworkPolicies could not be judged), and one
    whose subject may select them makes a True verdict Unknown. Rules of action Deny only
    narrow and Pass defers to the NetworkPolicies: they change nothing. An Allow is taken at
    its word: its peers and ports are not compared with the store's, nor is a Deny of higher
    precedence that may shadow it. `admin_policies` None (unreadable) makes a True verdict
    Unknown; a False or Unknown one stands (it does not depend on them).
    """
    def selection(policy: Mapping[str, Any]) -> str:
        if not any(
            isinstance(rule, Mapping) and rule.get("action") == "Allow"
            for rule in (policy.get("spec") or {}).get("ingress") or ()
        ):
            return CANNOT_SELECT
        return admin_selection(policy, namespace, workload, namespace_labels, workload_pod_labels)

    return _outweighed(
        verdict,
        admin_policies,
        selection,
        lambda policy: str((policy.get("metadata") or {}).get("name")),
        lambda: Condition(
            NETWORK_ISOLATED,
            "Unknown",
            "AdminNetworkPoliciesUnreadable",
            f"The AdminNetworkPolicies of the cluster could not be listed "
            f"({admin_policies_error or 'error'}), and one with an ingress rule of action "
            "Allow admits traffic whatever the NetworkPolicies say; the operator retries. "
            "Check that it may list and watch adminnetworkpolicies.policy.networking.k8s.io.",
        ),
        lambda names: Condition(
            NETWORK_ISOLATED,
            "False",
            "AdminNetworkPolicyAllows",
            f"AdminNetworkPolicy {names} selects the workload pods in namespace "
            f"{namespace} and has an ingress rule of action Allow: AdminNetworkPolicies come "
            "before every NetworkPolicy, so it admits its peers whatever the store's "
            "NetworkPolicy says. Narrow its subject, or make that rule's action Pass so that "
            "the namespace's NetworkPolicies decide.",
        ),
        lambda names: Condition(
            NETWORK_ISOLATED,
            "Unknown",
            "AdminNetworkPolicyMaySelect",
            f"AdminNetworkPolicy {names} has an ingress rule of action Allow and "
            f"may select the workload pods in namespace {namespace}: its subject selects by "
            "namespace labels the operator does not know (it reads them only when it runs "
            "with a namespace selector) or by a pod label spec.workload.podSelector does not "
            f"fix. Narrow its subject (by {NAMESPACE_NAME_LABEL}, or by a pod label the "
            "workload selector fixes to another value), or add a requirement on that label "
            "to spec.workload.podSelector.",
        ),
    )


def _outweighed(
    verdict: Condition,
    policies: Sequence[Mapping[str, Any]] | None,
    selection: Callable[[Mapping[str, Any]], str],
    name: Callable[[Mapping[str, Any]], str],
    unreadable: Callable[[], Condition],
    allows: Callable[[str], Condition],
    may_select: Callable[[str], Condition],
) -> Condition:
    """NetworkIsolated once policies that admit traffic whatever the NetworkPolicies say
    (AdminNetworkPolicies, Cilium's, Calico's) are weighed: the one rule of all three kinds.

    `policies` None (unreadable) makes a True verdict `unreadable()`; else a policy whose
    `selection` is SELECTS makes a verdict not already False `allows(names)`, and failing
    that one whose selection is MAY_SELECT makes a True verdict `may_select(names)` (`names`
    those policies', by `name`, for a message); otherwise the verdict stands. A False or
    Unknown verdict never turns True."""
    if policies is None:
        return unreadable() if verdict.status == "True" else verdict
    sure: list[str] = []
    unsure: list[str] = []
    for policy in policies:
        selected = selection(policy)
        if selected is SELECTS:
            sure.append(name(policy))
        elif selected is MAY_SELECT:
            unsure.append(name(policy))
    if sure and verdict.status != "False":
        return allows(_named(sure))
    if unsure and verdict.status == "True":
        return may_select(_named(unsure))
    return verdict


def admin_selection(
    policy: Mapping[str, Any],
    namespace: str,
    workload: Mapping[str, Any],
    namespace_labels: Mapping[str, str] | None = None,
    workload_pod_labels: Sequence[Mapping[str, str]] = (),
) -> str:
    """Whether an AdminNetworkPolicy's subject selects the workload pods of `namespace`
    (SELECTS, MAY_SELECT, CANNOT_SELECT): its `namespaces` selector against the namespace,
    or its `pods` one's namespace selector and pod selector, the latter as a NetworkPolicy's
    podSelector is judged (`_selection`). A subject of neither form (the API requires one)
    may select them."""
    subject = (policy.get("spec") or {}).get("subject") or {}
    if isinstance(subject.get("namespaces"), Mapping):
        return _namespace_selection(subject["namespaces"], namespace, namespace_labels)
    pods = subject.get("pods")
    if not isinstance(pods, Mapping):
        return MAY_SELECT
    in_namespace = _namespace_selection(
        pods.get("namespaceSelector") or {}, namespace, namespace_labels
    )
    if in_namespace is CANNOT_SELECT:
        return CANNOT_SELECT
    selector = {"spec": {"podSelector": pods.get("podSelector") or {}}}
    of_pods = _selection(selector, workload, workload_pod_labels)
    if of_pods is CANNOT_SELECT:
        return CANNOT_SELECT
    return SELECTS if in_namespace is SELECTS and of_pods is SELECTS else MAY_SELECT


CILIUM_CLUSTERWIDE = "CiliumClusterwideNetworkPolicy"
# The labels Cilium gives a pod's endpoint besides the pod's own (each of source `k8s`): its
# namespace's name, and each label of its namespace under this prefix. Other keys under
# these prefixes (its service account, its cluster) the operator does not know.
CILIUM_POD_NAMESPACE = "io.kubernetes.pod.namespace"
CILIUM_NAMESPACE_LABELS = "io.cilium.k8s.namespace.labels."
CILIUM_DERIVED = ("io.cilium.k8s.", "io.kubernetes.pod.")


def admitted_by_cilium_policies(
    verdict: Condition,
    namespace: str,
    workload: Mapping[str, Any],
    policies: Sequence[Mapping[str, Any]] | None,
    error: str | None = None,
    namespace_labels: Mapping[str, str] | None = None,
    workload_pod_labels: Sequence[Mapping[str, str]] = (),
) -> Condition:
    """NetworkIsolated once Cilium's own policies (cilium.io/v2) are weighed.

    On a Cilium cluster the allow rules of NetworkPolicies, CiliumNetworkPolicies and
    CiliumClusterwideNetworkPolicies add up: a rule (a policy's `spec`, or one of its
    `specs`) whose endpointSelector selects the workload pods and that has an ingress rule
    admits that rule's peers whatever the store's NetworkPolicy says. So such a rule makes
    this False, `CiliumPolicyAllows` (even when the NetworkPolicies could not be judged), and
    one that may select them makes a True verdict Unknown. Conservative: every ingress rule
    but an empty one (`{}`, the default-deny idiom, which allows nothing) is taken as
    admitting, its peers and ports not compared with the store's, nor any `ingressDeny` that
    may shadow it weighed; deny rules only narrow and egress rules do not matter. A rule by
    `nodeSelector` is a host policy and selects no pod. `policies`: the namespace's
    CiliumNetworkPolicies and the cluster's CiliumClusterwideNetworkPolicies (told apart by
    `kind`); None (unreadable, `error` why) makes a True verdict Unknown, never True.
    """
    def name(policy: Mapping[str, Any]) -> str:
        meta = policy.get("metadata") or {}
        if policy.get("kind") == CILIUM_CLUSTERWIDE:
            return f"CiliumClusterwideNetworkPolicy {meta.get('name')}"
        return f"CiliumNetworkPolicy {meta.get('namespace') or namespace}/{meta.get('name')}"

    return _outweighed(
        verdict,
        policies,
        lambda policy: cilium_selection(
            policy, namespace, workload, namespace_labels, workload_pod_labels
        ),
        name,
        lambda: Condition(
            NETWORK_ISOLATED,
            "Unknown",
            "CiliumPoliciesUnreadable",
            f"The CiliumNetworkPolicies of namespace {namespace} or the cluster's "
            f"CiliumClusterwideNetworkPolicies could not be listed ({error or 'error'}), and "
            "one with an ingress rule admits traffic whatever the NetworkPolicies say; the "
            "operator retries. Check that it may list and watch ciliumnetworkpolicies and "
            "ciliumclusterwidenetworkpolicies.cilium.io.",
        ),
        lambda names: Condition(
            NETWORK_ISOLATED,
            "False",
            "CiliumPolicyAllows",
            f"{names} selects the workload pods in namespace {namespace} and has an "
            "ingress rule: Cilium's allow rules add up with the NetworkPolicies', so it admits "
            "its peers whatever the store's NetworkPolicy says (any ingress rule but an empty "
            "one is taken as admitting, its peers not compared with the store's). Narrow its "
            "endpointSelector, or add its peers to spec.network.allowFrom and remove its "
            "ingress rules.",
        ),
        lambda names: Condition(
            NETWORK_ISOLATED,
            "Unknown",
            "CiliumPolicyMaySelect",
            f"{names} has an ingress rule and may select the workload pods in "
            f"namespace {namespace}: its endpointSelector selects by a pod label "
            "spec.workload.podSelector does not fix, by namespace labels the operator does "
            "not know (it reads them only when it runs with a namespace selector), or by "
            "what Cilium derives from a pod (its service account, its cluster). Narrow its "
            "endpointSelector (by a pod label the workload selector fixes to another value, "
            f"or by {CILIUM_POD_NAMESPACE}), or add a requirement on that label to "
            "spec.workload.podSelector.",
        ),
    )


def cilium_selection(
    policy: Mapping[str, Any],
    namespace: str,
    workload: Mapping[str, Any],
    namespace_labels: Mapping[str, str] | None = None,
    workload_pod_labels: Sequence[Mapping[str, str]] = (),
) -> str:
    """Whether one of a Cilium policy's rules with an ingress rule that admits something
    selects the workload pods of `namespace` (SELECTS, MAY_SELECT, CANNOT_SELECT; the
    surest of its rules). A CiliumNetworkPolicy selects endpoints of its own namespace only;
    a CiliumClusterwideNetworkPolicy's across the cluster. A rule of neither selector
    (Cilium requires one) may select them."""
    if policy.get("kind") != CILIUM_CLUSTERWIDE:
        own = (policy.get("metadata") or {}).get("namespace")
        if own is not None and own != namespace:
            return CANNOT_SELECT
    found = CANNOT_SELECT
    for rule in cilium_rules(policy):
        if not cilium_rule_admits(rule):
            continue
        selector = rule.get("endpointSelector")
        if selector is None and rule.get("nodeSelector") is not None:
            continue  # a host policy: nodes, not pods
        if not isinstance(selector, Mapping):
            found = MAY_SELECT
            continue
        selection = _endpoint_selection(
            selector, namespace, workload, namespace_labels, workload_pod_labels
        )
        if selection is SELECTS:
            return SELECTS
        if selection is MAY_SELECT:
            found = MAY_SELECT
    return found


# Calico's policy kinds (crd.projectcalico.org/v1) as the operator names them: the API's
# kind of the namespaced one, NetworkPolicy, is also networking.k8s.io's.
CALICO_NAMESPACED = "CalicoNetworkPolicy"
CALICO_GLOBAL = "CalicoGlobalNetworkPolicy"
# The labels Calico gives a pod's endpoint besides the pod's own (libcalico-go/lib/backend/
# k8s/conversion: workload_endpoint_default.go, conversion.go): over them, its namespace, its
# orchestrator and its service account's name; under them (felix/labelindex), its
# namespace's labels as `pcns.<key>` and its service account's as `pcsa.<key>`, each with
# `projectcalico.org/name` (the namespace's or the account's name). The operator reads no
# service account.
CALICO_POD_NAMESPACE = "projectcalico.org/namespace"
CALICO_ORCHESTRATOR = "projectcalico.org/orchestrator"
CALICO_SERVICE_ACCOUNT = "projectcalico.org/serviceaccount"
CALICO_NAMESPACE_LABELS = "pcns."
CALICO_ACCOUNT_LABELS = "pcsa."
CALICO_NAMESPACE_NAME = "projectcalico.org/name"


def admitted_by_calico_policies(
    verdict: Condition,
    namespace: str,
    workload: Mapping[str, Any],
    policies: Sequence[Mapping[str, Any]] | None,
    error: str | None = None,
    namespace_labels: Mapping[str, str] | None = None,
    workload_pod_labels: Sequence[Mapping[str, str]] = (),
) -> Condition:
    """NetworkIsolated once Calico's own policies (crd.projectcalico.org/v1) are weighed.

    On a Calico cluster its NetworkPolicies and GlobalNetworkPolicies are evaluated with the
    Kubernetes NetworkPolicies (those at order 1000 of the default tier), in order, and an
    Allow ends the evaluation: an ingress rule of action Allow in a policy whose selector
    selects the workload pods admits its sources whatever the store's NetworkPolicy says
    (no rule before it that could deny is weighed). So such a policy makes this False,
    `CalicoPolicyAllows` (even when the NetworkPolicies could not be judged), and one that
    may select them makes a True verdict Unknown. Deny, Log and Pass rules change nothing,
    nor do egress rules; an Allow's sources and ports are taken at their word. `policies`:
    the namespace's Calico NetworkPolicies and the cluster's GlobalNetworkPolicies (told
    apart by `kind`, CALICO_NAMESPACED or CALICO_GLOBAL), and other namespaces' Calico
    NetworkPolicies whose selector may escape theirs (`calico_escapes`; any other of them
    selects none of these pods); None (unreadable, `error` why) makes a True verdict
    Unknown, never True.
    """
    def selection(policy: Mapping[str, Any]) -> str:
        if not calico_policy_admits(policy):
            return CANNOT_SELECT
        return calico_selection(policy, namespace, workload, namespace_labels, workload_pod_labels)

    def name(policy: Mapping[str, Any]) -> str:
        meta = policy.get("metadata") or {}
        if policy.get("kind") == CALICO_GLOBAL:
            return f"Calico GlobalNetworkPolicy {meta.get('name')}"
        return f"Calico NetworkPolicy {meta.get('namespace') or namespace}/{meta.get('name')}"

    return _outweighed(
        verdict,
        policies,
        selection,
        name,
        lambda: Condition(
            NETWORK_ISOLATED,
            "Unknown",
            "CalicoPoliciesUnreadable",
            f"The Calico NetworkPolicies of namespace {namespace} or of the other namespaces "
            "read (a selector may escape its namespace), or the cluster's Calico "
            f"GlobalNetworkPolicies, could not be listed ({error or 'error'}), and one with an "
            "ingress rule of action Allow admits traffic whatever the NetworkPolicies say; "
            "the operator retries. Check that it may list and watch networkpolicies and "
            "globalnetworkpolicies.crd.projectcalico.org.",
        ),
        lambda names: Condition(
            NETWORK_ISOLATED,
            "False",
            "CalicoPolicyAllows",
            f"{names} selects the workload pods in namespace {namespace} and has an "
            "ingress rule of action Allow: Calico evaluates its policies with the "
            "NetworkPolicies and an Allow ends the evaluation, so it admits its sources "
            "whatever the store's NetworkPolicy says (its sources and ports are not compared "
            "with the store's). Narrow its selector, or add its sources to "
            "spec.network.allowFrom and remove its Allow ingress rules.",
        ),
        lambda names: Condition(
            NETWORK_ISOLATED,
            "Unknown",
            "CalicoPolicyMaySelect",
            f"{names} has an ingress rule of action Allow and may select the "
            f"workload pods in namespace {namespace}: its selector selects by a pod label "
            "spec.workload.podSelector does not fix, by namespace labels the operator does "
            "not know (it reads them only when it runs with a namespace selector), by a "
            "service account, or in a form the operator does not parse. Narrow its selector "
            "(by a pod label the workload selector fixes to another value, or by "
            f"{CALICO_POD_NAMESPACE}), or add a requirement on that label to "
            "spec.workload.podSelector.",
        ),
    )


def calico_policy_admits(policy: Mapping[str, Any]) -> bool:
    """Whether a Calico policy enforces ingress (its `types` include Ingress, or, absent,
    it has ingress rules) and has an ingress rule of action Allow."""
    spec = policy.get("spec")
    if not isinstance(spec, Mapping):
        return False
    types = spec.get("types")
    if isinstance(types, list) and "Ingress" not in types:
        return False
    rules = spec.get("ingress")
    return isinstance(rules, list) and any(
        isinstance(rule, Mapping) and rule.get("action") == "Allow" for rule in rules
    )


def calico_selection(
    policy: Mapping[str, Any],
    namespace: str,
    workload: Mapping[str, Any],
    namespace_labels: Mapping[str, str] | None = None,
    workload_pod_labels: Sequence[Mapping[str, str]] = (),
) -> str:
    """Whether a Calico policy selects the workload pods of `namespace` (SELECTS,
    MAY_SELECT, CANNOT_SELECT) as Calico's Felix decides it: by the one selector it builds
    of the policy's `selector`, `namespaceSelector` and `serviceAccountSelector`
    (`calico_felix_selector`), against the labels Calico gives a pod's endpoint: the pod's
    own (as read, else as the workload selector allows them: `calico_selector_selection`),
    its namespace and orchestrator, and those it inherits from its namespace, `pcns.<key>`
    (the namespace's name always, its other labels when read). Its service account's
    (`projectcalico.org/serviceaccount`, `pcsa.<key>`) the operator does not read. A field
    that is no string, or a selector that does not parse: MAY_SELECT; a namespaceSelector
    or serviceAccountSelector that does not (Calico drops it): never SELECTS. A
    NetworkPolicy of another namespace selects no pod of `namespace` unless its selector
    reaches beyond its own (`calico_reaches_beyond`)."""
    own = calico_policy_namespace(policy)
    if policy.get("kind") != CALICO_GLOBAL and own is not None and own != namespace:
        spec = policy.get("spec")
        selector = spec.get("selector") if isinstance(spec, Mapping) else None
        if not calico_reaches_beyond(own, selector):
            return CANNOT_SELECT
    built = calico_felix_selector(policy, namespace)
    if built is None:
        return MAY_SELECT
    text, dropped = built
    inherited = {
        CALICO_NAMESPACE_LABELS + key: value for key, value in (namespace_labels or {}).items()
    }
    inherited[CALICO_NAMESPACE_LABELS + NAMESPACE_NAME_LABEL] = namespace
    inherited[CALICO_NAMESPACE_LABELS + CALICO_NAMESPACE_NAME] = namespace
    fixed = {CALICO_POD_NAMESPACE: namespace, CALICO_ORCHESTRATOR: "k8s"}
    selection = calico_selector_selection(
        text, workload, workload_pod_labels, fixed, inherited, namespace_labels is not None
    )
    return MAY_SELECT if dropped and selection == SELECTS else selection


def calico_felix_selector(
    policy: Mapping[str, Any], namespace: str
) -> tuple[str, bool] | None:
    """The selector Calico's Felix evaluates for a policy, joined as text as libcalico-go's
    update processors join it (lib/backend/syncersv1/updateprocessors:
    networkpolicyprocessor.go, globalnetworkpolicyprocessor.go, selectors.go): a
    NetworkPolicy's `(<selector>) && projectcalico.org/namespace == '<its namespace>'` (the
    store's when it names none); a GlobalNetworkPolicy's `(<selector>) && <namespaceSelector
    with each label prefixed pcns.>`, every `all()` then made `has(projectcalico.org/
    namespace)`; then either's `(...) && <serviceAccountSelector prefixed pcsa.>` (a
    GlobalNetworkPolicy's `all()` then made `has(projectcalico.org/serviceaccount)`). A
    selector that closes its parenthesis escapes what is joined to it, in Calico as here.
    With whether a namespaceSelector or serviceAccountSelector was left out for not
    parsing (Calico leaves it out; what it asks is not known); None when a field is not a
    string."""
    spec = policy.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    fields = [spec.get(key) for key in ("selector", "namespaceSelector", "serviceAccountSelector")]
    if any(value is not None and not isinstance(value, str) for value in fields):
        return None
    selector, of_namespace, of_account = (value or "" for value in fields)
    dropped = lost = False
    is_global = policy.get("kind") == CALICO_GLOBAL
    if is_global:
        if of_namespace:
            selector, dropped = _calico_joined(selector, of_namespace, CALICO_NAMESPACE_LABELS)
            selector = selector.replace("all()", f"has({CALICO_POD_NAMESPACE})")
    else:
        joined = _calico_namespaced(selector, calico_policy_namespace(policy) or namespace)
        if joined is None:
            return None
        selector = joined
    if of_account:
        selector, lost = _calico_joined(selector, of_account, CALICO_ACCOUNT_LABELS)
        if is_global:
            selector = selector.replace("all()", f"has({CALICO_SERVICE_ACCOUNT})")
    return selector, dropped or lost


def calico_policy_namespace(policy: Mapping[str, Any]) -> str | None:
    """The namespace a Calico NetworkPolicy is in, as its metadata says (None: none said)."""
    meta = policy.get("metadata")
    own = meta.get("namespace") if isinstance(meta, Mapping) else None
    return own if isinstance(own, str) and own else None


def _calico_namespaced(selector: str, namespace: str) -> str | None:
    """A NetworkPolicy's selector joined to its namespace as Calico joins it
    (networkpolicyprocessor.go): `(<selector>) && projectcalico.org/namespace ==
    '<namespace>'`, the restriction alone when it is empty; None for a name with a quote
    (no namespace's name, a DNS label, holds one)."""
    if "'" in namespace:
        return None
    restriction = f"{CALICO_POD_NAMESPACE} == '{namespace}'"
    return f"({selector}) && {restriction}" if selector else restriction


def calico_reaches_beyond(namespace: str, selector: Any) -> bool:
    """Whether a Calico NetworkPolicy of `namespace` whose `selector` is this may select an
    endpoint of another namespace: a selector that closes the parenthesis Calico joins it
    in (`all()) || (all()`, `_calico_namespaced`) escapes the namespace's restriction. The
    joined selector is evaluated of an endpoint of another namespace (each one the selector
    names, and one it does not name), every other label of it not known: only a definite
    false keeps the policy in its namespace, so only such a policy needs weighing against
    another namespace's stores. A selector that is no string, or one that joined does not
    parse, reaches no other namespace: Calico's Felix validates the joined selector and
    treats a policy whose selector does not parse as missing (felix/calc/
    validation_filter.go), and the parser here is Calico's (`parse_calico_selector`); in
    its own namespace such a policy still may select (`calico_selection`). The service
    account selector, joined after with `&&`, only narrows it and is not read."""
    if selector is not None and not isinstance(selector, str):
        return False
    text = _calico_namespaced(selector or "", namespace)
    node = None if text is None else parse_calico_selector(text)
    if node is None:
        return False
    named = _calico_values(node, {}).get(CALICO_POD_NAMESPACE, set())
    others: list[Any] = [*sorted(named - {namespace}), CALICO_OTHER]
    return any(
        calico_matches(node, {CALICO_POD_NAMESPACE: other}, False) is not False
        for other in others
    )


def calico_escape_key(policy: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """What decides whether a Calico policy, by escaping its namespace, may admit traffic
    to another namespace's pods: the namespace and selector (None: not a string) of a
    NetworkPolicy with an ingress Allow it enforces (`calico_policy_admits`), for
    `calico_reaches_beyond`; None for any other (a GlobalNetworkPolicy is weighed for every
    namespace anyway; a policy that allows no ingress admits nothing)."""
    own = calico_policy_namespace(policy)
    if policy.get("kind") == CALICO_GLOBAL or own is None or not calico_policy_admits(policy):
        return None
    spec = policy.get("spec")
    selector = spec.get("selector") if isinstance(spec, Mapping) else None
    return own, selector if isinstance(selector, str) else None


def calico_escapes(policy: Mapping[str, Any]) -> bool:
    """Whether a Calico NetworkPolicy may admit traffic to pods of namespaces other than
    its own (`calico_escape_key`, `calico_reaches_beyond`)."""
    key = calico_escape_key(policy)
    return key is not None and calico_reaches_beyond(*key)


@lru_cache(maxsize=65536)
def _calico_joined(selector: str, other: str, prefix: str) -> tuple[str, bool]:
    """`other`, parsed and printed with each label prefixed, joined to `selector` as
    Calico joins it (selectors.go, prefixAndAppendSelector); unchanged, and True, when
    `other` does not parse. Memoised: a GlobalNetworkPolicy's is the same for every store."""
    node = parse_calico_selector(other)
    if node is None:
        return selector, True
    printed = calico_printed(node, prefix)
    return (f"({selector}) && {printed}" if selector else printed), False


# A parsed Calico selector: ("all",), ("global",), ("has", key), ("eq" | "ne" | "contains" |
# "starts" | "ends", key, value), ("in" | "notin", key, values), ("not", node),
# ("and" | "or", node, node).
CalicoSelector = tuple[Any, ...]
# Calico's tokenizer (libcalico-go/lib/selector/tokenizer/tokenizer.go): it skips spaces
# and tabs only; a label is of these characters, at most CALICO_LABEL_MAX of them.
_CALICO_SPACE = " \t"
_CALICO_LABEL = re.compile(r"[A-Za-z0-9_./\-]*")
_CALICO_LABEL_CHARS = frozenset(string.ascii_letters + string.digits + "_./-")
CALICO_LABEL_MAX = 512
# The operators after a label, in the order Calico tries them, each as its words.
_CALICO_OPERATORS = (
    ("contains", ("contains",)), ("starts", ("starts", "with")), ("ends", ("ends", "with")),
    ("notin", ("not", "in")), ("in", ("in",)),
)  # fmt: skip
_CALICO_COMPARISONS = {
    "==": "eq", "!=": "ne", "contains": "contains", "starts": "starts", "ends": "ends",
}  # fmt: skip
# A label value a workload pod may carry that no selector names: neither equal to any of
# theirs nor known otherwise (`calico_matches`).
CALICO_OTHER = object()
# Enumerating the workload pods' values of the keys a selector names: beyond this many
# combinations, MAY_SELECT.
CALICO_COMBINATIONS = 4096


def _calico_skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _CALICO_SPACE:
        at += 1
    return at


def _calico_label(text: str, at: int) -> tuple[str, int] | None:
    match = _CALICO_LABEL.match(text, at)
    label = match.group() if match else ""
    if not label or len(label) > CALICO_LABEL_MAX:
        return None
    return label, at + len(label)


def _calico_words(text: str, at: int, words: Sequence[str]) -> int | None:
    """Where `words` end when they start at `at` (spaces and tabs after each, none needed
    between them), followed by no label character; None when they do not."""
    for word in words:
        if not text.startswith(word, at):
            return None
        at = _calico_skip(text, at + len(word))
    return None if at < len(text) and text[at] in _CALICO_LABEL_CHARS else at


def _calico_tokens(text: str) -> list[tuple[str, str]] | None:
    """Calico's tokens of a selector, as its tokenizer reads them; None where it refuses."""
    tokens: list[tuple[str, str]] = []
    at = 0
    while True:
        at = _calico_skip(text, at)
        if at == len(text):
            return tokens
        char = text[at]
        after_label = bool(tokens) and tokens[-1][0] == "label"
        if char in "(){},":
            tokens.append((char, ""))
            at += 1
        elif char in "'\"":
            end = text.find(char, at + 1)
            if end < 0:
                return None
            tokens.append(("str", text[at + 1 : end]))
            at = end + 1
        elif char in "=&|":
            pair = char * 2
            if not text.startswith(pair, at):
                return None
            tokens.append((pair, ""))
            at += 2
        elif char == "!":
            pair = "!=" if text.startswith("!=", at) else "!"
            tokens.append((pair, ""))
            at += len(pair)
        elif after_label:
            for kind, words in _CALICO_OPERATORS:
                past = _calico_words(text, at, words)
                if past is not None:
                    tokens.append((kind, ""))
                    at = past
                    break
            else:
                return None
        elif text.startswith("has(", at):
            label = _calico_label(text, _calico_skip(text, at + 4))
            if label is None:
                return None
            at = _calico_skip(text, label[1])
            if not text.startswith(")", at):
                return None
            tokens.append(("has", label[0]))
            at += 1
        elif text.startswith(("all(", "global("), at):
            word = "all" if text.startswith("all(", at) else "global"
            at = _calico_skip(text, at + len(word) + 1)
            if not text.startswith(")", at):
                return None
            tokens.append((word, ""))
            at += 1
        else:
            label = _calico_label(text, at)
            if label is None:
                return None
            tokens.append(("label", label[0]))
            at = label[1]


@lru_cache(maxsize=65536)
def parse_calico_selector(text: str) -> CalicoSelector | None:
    """A Calico selector (https://docs.tigera.io/calico/latest/reference/resources/
    networkpolicy#selectors) parsed as Calico parses it (libcalico-go/lib/selector/
    tokenizer/tokenizer.go, parser/parser.go): `all()`, `global()`, `has(k)`, `k == 'v'`,
    `k != 'v'`, `k contains 'v'`, `k starts with 'v'`, `k ends with 'v'`, `k in {'a', 'b'}`,
    `k not in {...}` (`notin`, `startswith`, `endswith` too, and a trailing comma in a
    set), `!`, `&&` (binding tighter), `||` and parentheses; values in single or double
    quotes, without escapes; spaces and tabs between tokens, no other white space; empty
    is `all()`. None for what Calico refuses (its validation then drops the policy): its
    meaning here is not known. Memoised: each policy's selector is parsed once, not once
    per store."""
    tokens = _calico_tokens(text)
    if tokens is None:
        return None
    if not tokens:
        return ("all",)
    parser = _CalicoParser(tokens)
    try:
        node = parser.expression()
    except ValueError:
        return None
    return node if parser.at == len(tokens) else None


class _CalicoParser:
    """Recursive descent over a selector's tokens as Calico's parser.go descends; ValueError
    where they do not parse."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def _peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def _take(self, kind: str) -> str:
        token = self._peek()
        if token[0] != kind:
            raise ValueError(token)
        self.at += 1
        return token[1]

    def expression(self) -> CalicoSelector:
        node = self._conjunction()
        while self._peek()[0] == "||":
            self.at += 1
            node = ("or", node, self._conjunction())
        return node

    def _conjunction(self) -> CalicoSelector:
        node = self._operation()
        while self._peek()[0] == "&&":
            self.at += 1
            node = ("and", node, self._operation())
        return node

    def _operation(self) -> CalicoSelector:
        negated = False
        while self._peek()[0] == "!":  # Calico folds a run of `!` into one, or none
            negated = not negated
            self.at += 1
        kind, value = self._peek()
        node: CalicoSelector
        if kind in ("all", "global"):
            self.at += 1
            node = (kind,)
        elif kind == "has":
            self.at += 1
            node = ("has", value)
        elif kind == "(":
            self.at += 1
            node = self.expression()
            self._take(")")
        else:
            key = self._take("label")
            operator = self._peek()[0]
            self.at += 1
            if operator in _CALICO_COMPARISONS:
                node = (_CALICO_COMPARISONS[operator], key, self._take("str"))
            elif operator in ("in", "notin"):
                node = (operator, key, self._set())
            else:
                raise ValueError(operator)
        return ("not", node) if negated else node

    def _set(self) -> frozenset[str]:
        """`{'a', 'b'}`: values, each but the last followed by a comma, the last may be."""
        self._take("{")
        values: set[str] = set()
        while self._peek()[0] == "str":
            values.add(self._take("str"))
            if self._peek()[0] != ",":
                break
            self.at += 1
        self._take("}")
        return frozenset(values)


def calico_printed(node: CalicoSelector, prefix: str = "") -> str:
    """A parsed selector printed as Calico prints it (parser/ast.go), each label prefixed
    with `prefix` (its PrefixVisitor): a value in double quotes unless it holds one."""

    def quoted(value: str) -> str:
        return f"'{value}'" if '"' in value else f'"{value}"'

    op = node[0]
    if op in ("all", "global"):
        return f"{op}()"
    if op == "has":
        return f"has({prefix}{node[1]})"
    if op == "not":
        return "!" + calico_printed(node[1], prefix)
    if op in ("and", "or"):
        joined = " && " if op == "and" else " || "
        return f"({calico_printed(node[1], prefix)}{joined}{calico_printed(node[2], prefix)})"
    if op in ("in", "notin"):
        values = ", ".join(quoted(value) for value in sorted(node[2]))
        return f"{prefix}{node[1]} {'in' if op == 'in' else 'not in'} {{{values}}}"
    words = {"eq": "==", "ne": "!=", "contains": "contains", "starts": "starts with",
             "ends": "ends with"}  # fmt: skip
    return f"{prefix}{node[1]} {words[op]} {quoted(node[2])}"


def calico_matches(
    node: CalicoSelector,
    labels: Mapping[str, Any],
    closed: bool,
    unknown: tuple[str, ...] = (),
) -> bool | None:
    """A parsed Calico selector against an endpoint's labels as Calico evaluates it
    (parser/ast.go), in three-valued logic (None: not known). `labels` maps a key to its
    value, None (absent) or CALICO_OTHER (a value no selector names); a key it does not
    hold is absent when `closed` (all the labels are known) unless it starts with one of
    `unknown`, else not known. Of an absent label, `k != 'v'` and `k not in {...}` are
    true (Calico's LabelNeValueNode, LabelNotInSetNode), `has(k)`, `k == 'v'`, `k in {...}`
    and the string operators false; `all()` and `global()` are true of every endpoint."""
    op = node[0]
    if op in ("all", "global"):
        return True
    if op == "not":
        inner = calico_matches(node[1], labels, closed, unknown)
        return None if inner is None else not inner
    if op in ("and", "or"):
        left = calico_matches(node[1], labels, closed, unknown)
        decisive = op == "or"  # what decides the whole: True for ||, False for &&
        if left is decisive:
            return decisive
        right = calico_matches(node[2], labels, closed, unknown)
        if right is decisive:
            return decisive
        return None if left is None or right is None else not decisive
    key = node[1]
    if key in labels:
        value = labels[key]
    elif closed and not key.startswith(unknown):
        value = None
    else:
        return None
    if op == "has":
        return value is not None
    if value is None:
        return op in ("ne", "notin")
    operand: Any = node[2]  # a value, or a set of them
    if value is CALICO_OTHER:
        if op in ("eq", "in"):
            return False
        if op in ("ne", "notin"):
            return True
        return True if operand == "" else None  # every value contains "", starts with it
    if op == "eq":
        return bool(value == operand)
    if op == "ne":
        return bool(value != operand)
    if op == "in":
        return value in operand
    if op == "notin":
        return value not in operand
    if op == "contains":
        return operand in value
    if op == "starts":
        return bool(value.startswith(operand))
    return bool(value.endswith(operand))  # ends


def _calico_values(node: CalicoSelector, into: dict[str, set[str]]) -> dict[str, set[str]]:
    """The label keys a parsed selector names, each with the values it compares them to
    for equality (`==`, `!=`, `in`, `not in`; not the string operators')."""
    op = node[0]
    if op == "not":
        _calico_values(node[1], into)
    elif op in ("and", "or"):
        _calico_values(node[1], into)
        _calico_values(node[2], into)
    elif op not in ("all", "global"):
        named = into.setdefault(node[1], set())
        if op in ("eq", "ne"):
            named.add(node[2])
        elif op in ("in", "notin"):
            named.update(node[2])
    return into


def calico_selector_selection(
    text: Any,
    workload: Mapping[str, Any],
    observed: Sequence[Mapping[str, str]] = (),
    fixed: Mapping[str, str] | None = None,
    inherited: Mapping[str, str] | None = None,
    inherited_known: bool = False,
) -> str:
    """Whether a Calico selector selects a pod of the `workload` selector (API form)
    (SELECTS, MAY_SELECT, CANNOT_SELECT), the pod's endpoint carrying the `fixed` labels
    over its own and the `inherited` ones (`pcns.`: its namespace's) under its own, as
    `_selection` judges a podSelector: one of the pods read (`observed`, every label of
    theirs known), else some pod the workload selector allows, each key it names taking
    each value it allows (those either selector names, absence, and CALICO_OTHER), a key it
    does not name being not known (the pods may carry it, with any value). An inherited
    `pcns.` label not in `inherited` is absent when `inherited_known`, else not known; a
    pod's own `pcns.` label is taken as absent unless the workload selector names it;
    `projectcalico.org/serviceaccount` and `pcsa.` labels are never known. Enumerated
    over the keys both name, bounded (CALICO_COMBINATIONS); a selector that does not parse
    (or is no string) may select them, never "cannot"."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        return MAY_SELECT
    node = parse_calico_selector(text)
    if node is None:
        return MAY_SELECT
    fixed = dict(fixed or {})
    inherited = dict(inherited or {})
    not_inherited: tuple[str, ...] = (CALICO_ACCOUNT_LABELS,)
    if not inherited_known:
        not_inherited += (CALICO_NAMESPACE_LABELS,)
    unknown = (CALICO_SERVICE_ACCOUNT, *not_inherited)
    named = _calico_values(node, {})
    results: list[bool | None] = []
    if observed:
        for labels in observed:
            view = {**inherited, **labels, **fixed}
            view.pop(CALICO_SERVICE_ACCOUNT, None)  # Calico sets it from the service account
            results.append(calico_matches(node, view, True, unknown))
    else:
        ours = _requirements(workload)
        keys = [key for key in named if key in ours and key not in fixed
                and key != CALICO_SERVICE_ACCOUNT]  # fmt: skip
        choices: list[list[Any]] = []
        for key in keys:
            values = sorted(named[key] | {v for _, vs in ours[key] for v in vs})
            unnamed = "x" * (max((len(v) for v in values), default=0) + 1)
            allowed = [
                CALICO_OTHER if value == unnamed else value
                for value in (None, *values, unnamed)
                if all(_meets(value, op, vs) for op, vs in ours[key])
            ]  # fmt: skip
            if not allowed:
                return CANNOT_SELECT  # the workload selector allows no pod
            choices.append(allowed)
        count = 1
        for allowed in choices:
            count *= len(allowed)
        if count > CALICO_COMBINATIONS:
            return MAY_SELECT
        base: dict[str, Any] = dict(inherited)
        for key in named:
            if key.startswith(CALICO_NAMESPACE_LABELS) and not key.startswith(not_inherited):
                base.setdefault(key, None)  # its namespace's labels are known: absent
        for combination in itertools.product(*choices):
            endpoint = dict(base)
            for key, value in zip(keys, combination, strict=True):
                if value is not None:
                    endpoint[key] = value
                elif key not in inherited and not key.startswith(not_inherited):
                    endpoint[key] = None
                elif key not in inherited:
                    endpoint.pop(key, None)  # what it inherits is not known
            endpoint.update(fixed)
            results.append(calico_matches(node, endpoint, False))
    if True in results:
        return SELECTS
    return MAY_SELECT if None in results else CANNOT_SELECT


def _matched(selector: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    """SELECTS when `selector` selects an object of exactly `labels` (all known), else
    CANNOT_SELECT."""
    return SELECTS if selector_matches(selector, labels) else CANNOT_SELECT


def cilium_rules(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A Cilium policy's rules: its `spec` and each of its `specs`."""
    spec = policy.get("spec")
    specs = policy.get("specs")
    rules = [spec] if isinstance(spec, Mapping) else []
    if isinstance(specs, list):
        rules += [rule for rule in specs if isinstance(rule, Mapping)]
    return rules


def cilium_rule_admits(rule: Mapping[str, Any]) -> bool:
    """Whether a Cilium rule has an ingress allow rule that admits something: any but an
    empty one (`ingress: [{}]`, the default-deny idiom). Its peers are not read."""
    ingress = rule.get("ingress")
    return isinstance(ingress, list) and any(item not in (None, {}) for item in ingress)


def _endpoint_selector_requirements(selector: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """A Cilium endpointSelector's requirements as matchExpressions, each key without its
    source prefix `k8s:` or `any:` (`app` and `k8s:app` are one label of a pod; a mapping of
    matchLabels could not hold both); None when it is not a label selector's shape."""
    labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(labels, Mapping) or not isinstance(expressions, list):
        return None
    requirements: list[dict[str, Any]] = [
        {"key": str(key), "operator": "In", "values": [str(value)]}
        for key, value in labels.items()
    ]
    for requirement in expressions:
        if not isinstance(requirement, Mapping) or not isinstance(
            requirement.get("values") or [], list
        ):
            return None
        requirements.append({**requirement, "key": str(requirement.get("key"))})
    for requirement in requirements:
        source, colon, rest = requirement["key"].partition(":")
        if colon and source in ("k8s", "any"):
            requirement["key"] = rest
    return requirements


def _endpoint_selection(
    selector: Mapping[str, Any],
    namespace: str,
    workload: Mapping[str, Any],
    namespace_labels: Mapping[str, str] | None,
    workload_pod_labels: Sequence[Mapping[str, str]],
) -> str:
    """Whether a Cilium endpointSelector selects the workload pods of `namespace`, key by
    key: the pod's namespace (known), its namespace's labels (as `_namespace_selection`
    judges them), its own labels (as `_selection` judges a podSelector), a `reserved:` label
    (never a pod's: as if absent), and anything else (another source, or what Cilium derives
    from a pod besides its namespace) a label the pods may carry with any value."""
    pod: list[dict[str, Any]] = []
    of_namespace: list[dict[str, Any]] = []
    named: list[dict[str, Any]] = []
    reserved: list[dict[str, Any]] = []
    unknown: list[dict[str, Any]] = []
    requirements = _endpoint_selector_requirements(selector)
    if requirements is None:
        return MAY_SELECT  # garbled (Cilium's schema refuses it): it may select them
    for requirement in requirements:
        key = requirement["key"]
        if key == CILIUM_POD_NAMESPACE:
            named.append(requirement)
        elif key.startswith(CILIUM_NAMESPACE_LABELS):
            of_namespace.append({**requirement, "key": key[len(CILIUM_NAMESPACE_LABELS):]})
        elif key.startswith("reserved:"):
            reserved.append(requirement)
        elif ":" in key or key.startswith(CILIUM_DERIVED):
            unknown.append(requirement)
        else:
            pod.append(requirement)
    selections = [
        _matched({"matchExpressions": named}, {CILIUM_POD_NAMESPACE: namespace}),
        _matched({"matchExpressions": reserved}, {}),
        _namespace_selection({"matchExpressions": of_namespace}, namespace, namespace_labels),
        _selection({"spec": {"podSelector": {"matchExpressions": pod}}}, workload,
                   workload_pod_labels),
        # Keys no workload selector names: each may be carried with any value, or not at all.
        _selection({"spec": {"podSelector": {"matchExpressions": unknown}}}, {}),
    ]  # fmt: skip
    if CANNOT_SELECT in selections:
        return CANNOT_SELECT
    return MAY_SELECT if MAY_SELECT in selections else SELECTS


def _namespace_selection(
    selector: Mapping[str, Any], namespace: str, labels: Mapping[str, str] | None
) -> str:
    """Whether a namespace selector selects `namespace`: by its labels when known, else by
    its name label alone, key by key as `_selection` judges a pod selector (a requirement on
    any other label: the namespace may carry it)."""
    if labels is not None:
        known = {**labels, NAMESPACE_NAME_LABEL: namespace}
        return SELECTS if selector_matches(selector, known) else CANNOT_SELECT
    fixed = {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}
    return _selection({"spec": {"podSelector": selector}}, fixed)


def _named(names: Sequence[str]) -> str:
    """Up to five names for a message, sorted, and how many more."""
    return named(sorted(names), 5)


def workload_labels(
    selector: Mapping[str, Any], observed: Sequence[Mapping[str, str]] = ()
) -> list[Mapping[str, str]]:
    """The label sets of the workload pods: as read, else label sets that together carry
    every label value the selector itself allows (`workload_values`): each (key, value) pair
    a workload pod may carry is in one of them, which is what finding the policies that may
    select the pods by label needs (controller/index.py). As many sets as the most values
    one key allows, never one set for each combination of values (32 `In` requirements of
    64 values each would be 64^32 of them)."""
    if observed:
        return list(observed)
    allowed = workload_values(selector)
    width = max((len(values) for values in allowed.values()), default=1)
    return [
        {key: values[min(i, len(values) - 1)] for key, values in allowed.items() if values}
        for i in range(width)
    ]


def workload_values(selector: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The values each label key may have on a workload pod, by the workload selector alone
    (the pods another policy must select to matter to the store), as far as they are named:
    its `matchLabels`, every value of an `In` (a pod may carry any of them) less those of a
    `NotIn`, "" for `Exists`. A key the selector does not name is left out (the pods may
    carry it: `_selection` says MAY_SELECT for a policy that needs one). The keys
    of `unnamed_keys` may carry values this does not list (an `Exists` or a `NotIn`)."""
    allowed: dict[str, tuple[str, ...]] = {
        str(key): (str(value),) for key, value in (selector.get("matchLabels") or {}).items()
    }
    excluded: dict[str, set[str]] = {}
    for requirement in selector.get("matchExpressions") or ():
        key = str(requirement.get("key"))
        if requirement.get("operator") == "In" and requirement.get("values"):
            values = tuple(dict.fromkeys(str(v) for v in requirement["values"]))
            known = allowed.get(key)
            allowed[key] = values if known is None else tuple(v for v in known if v in values)
        elif requirement.get("operator") == "NotIn":
            excluded.setdefault(key, set()).update(str(v) for v in requirement.get("values") or ())
    for requirement in selector.get("matchExpressions") or ():
        if requirement.get("operator") in ("Exists", "NotIn"):
            allowed.setdefault(str(requirement.get("key")), ("",))
    for key, dropped in excluded.items():
        allowed[key] = tuple(v for v in allowed[key] if v not in dropped) or ("",)
    return allowed


def unnamed_keys(selector: Mapping[str, Any]) -> set[str]:
    """The label keys a pod the selector selects may carry with values no one named: those
    with an `Exists` or a `NotIn` and no `matchLabels` or `In` that lists their values. The
    policies that select such pods cannot be found by (key, value): look at them all."""
    named = {str(key) for key in selector.get("matchLabels") or {}}
    open_keys: set[str] = set()
    for requirement in selector.get("matchExpressions") or ():
        key = str(requirement.get("key"))
        if requirement.get("operator") == "In":
            named.add(key)
        elif requirement.get("operator") in ("Exists", "NotIn"):
            open_keys.add(key)
    return open_keys - named


Requirement = tuple[str, frozenset[str]]


def _requirements(selector: Mapping[str, Any]) -> dict[str, list[Requirement]]:
    """A selector's requirements by label key, `matchLabels` as `In` of one value."""
    wanted: dict[str, list[Requirement]] = {}
    for key, value in (selector.get("matchLabels") or {}).items():
        wanted.setdefault(str(key), []).append(("In", frozenset((str(value),))))
    for requirement in selector.get("matchExpressions") or ():
        values = frozenset(str(v) for v in requirement.get("values") or ())
        wanted.setdefault(str(requirement.get("key")), []).append(
            (str(requirement.get("operator")), values)
        )
    return wanted


def _one_value_meets(requirements: Sequence[Requirement]) -> bool:
    """Whether one label value (or its absence) meets every requirement on its key. The
    requirements only compare with the values they name, so these are all the cases: no
    label, each value named, and one value none of them names (what `Exists` and `NotIn`
    admit beyond every name)."""
    named = set().union(*(values for _, values in requirements))
    unnamed = "x" * (max((len(v) for v in named), default=0) + 1)  # longer than any named
    return any(
        all(_meets(choice, op, values) for op, values in requirements)
        for choice in (None, *named, unnamed)
    )


SELECTS, MAY_SELECT, CANNOT_SELECT = "selects", "may select", "cannot select"


def _selection(
    policy: Mapping[str, Any],
    workload: Mapping[str, Any],
    observed: Sequence[Mapping[str, str]] = (),
) -> str:
    """Whether the policy selects a workload pod: one of the pods read, else some pod the
    workload selector allows. Label keys are chosen independently, so the two selectors must
    be satisfiable together key by key, by a value either names or one neither names (a
    workload pod of `app Exists` may carry any app); linear in the values, never their
    combinations. A key the workload selector does not name is one the pods may carry with
    any value, or not at all: a policy that needs such a key `MAY_SELECT` them (unknown
    without reading the pods), never "cannot" (an attacker's policy by
    `statefulset.kubernetes.io/pod-name` was once taken for one selecting no workload pod)."""
    selector = (policy.get("spec") or {}).get("podSelector") or {}
    if observed:
        found = any(selector_matches(selector, labels) for labels in observed)
        return SELECTS if found else CANNOT_SELECT
    ours = _requirements(workload)
    unfixed = False
    for key, requirements in _requirements(selector).items():
        own = ours.get(key)
        if own is None:
            unfixed = True
            own = []
        if not _one_value_meets([*own, *requirements]):
            return CANNOT_SELECT
    return MAY_SELECT if unfixed else SELECTS


def _as_rendered(policy: Mapping[str, Any], rendered: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether `policy` is a neighbour store's, in place exactly as Dataward renders it."""
    twin = rendered.get(str((policy.get("metadata") or {}).get("name")))
    return twin is not None and same_part("NetworkPolicy", "spec", twin["spec"], policy.get("spec"))


def may_select(policy: Mapping[str, Any], workload: Mapping[str, Any]) -> bool:
    """Whether `policy` may select a pod of the `workload` selector (`_selection`)."""
    return _selection(policy, workload) is not CANNOT_SELECT


def _keys_not_fixed(policy: Mapping[str, Any], workload: Mapping[str, Any]) -> list[str]:
    """The label keys the policy's podSelector needs and the workload selector does not name."""
    selector = (policy.get("spec") or {}).get("podSelector") or {}
    return [key for key in _requirements(selector) if key not in _requirements(workload)]


def _meets(value: str | None, operator: str, values: Collection[str]) -> bool:
    """One requirement of a selector against one label's value (None: the label is absent)."""
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    return False


def _admits_more(policy: Mapping[str, Any], declared: Sequence[Mapping[str, Any]]) -> bool:
    """Whether `policy` admits a (peer, port) pair that no one declared rule admits: a peer
    one rule declares on a port only another rule opens is a pair nobody declared."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes") or ["Ingress"]
    if "Ingress" not in types:
        return False
    rules = [rule for ours in declared for rule in ours.get("ingress") or ()]
    for rule in spec.get("ingress") or ():
        # An empty `from` admits every source, an empty `ports` every port (None: "every").
        peers = rule.get("from") or [None]
        ports = rule.get("ports") or [None]
        for peer in peers:
            for port in ports:
                if not any(_rule_admits(ours, peer, port) for ours in rules):
                    return True
    return False


def _rule_admits(rule: Mapping[str, Any], peer: Any, port: Any) -> bool:
    """Whether one declared ingress rule admits `peer` on `port` (None: every peer, every
    port, which only a rule with no `from`, or no `ports`, admits)."""
    peers = rule.get("from") or ()
    ports = rule.get("ports") or ()
    return (not peers or (peer is not None and peer in peers)) and (
        not ports or (port is not None and port in ports)
    )


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """True when a label selector (API form) selects an object with `labels`."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions") or ():
        key, operator = requirement.get("key"), requirement.get("operator")
        values = requirement.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
