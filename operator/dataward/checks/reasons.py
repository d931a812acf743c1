"""Every condition reason Dataward writes: the status it comes with, what it means, what to do.

This is the single source of docs/conditions.md (`dataward reference conditions`) and of
`kubectl dataward explain REASON`. tests/checks/test_reasons.py reads the operator's source
(every `Condition(...)` with a literal reason, every `as_reason` fallback, every compliance
`Finding`, every reason a purge run can record) and fails when a reason the code writes is
missing here or one catalogued here is no longer written: the reference cannot drift.

Two reasons are not literals in the checks and are enumerated here instead:
- PolicyCompliant=False carries the first compliance finding's reason (`FINDINGS`);
- PurgeSucceeded carries `Purge<result>` for a held or skipped run, and the purge's own
  `status.lastPurge.reason` for a failed one (`PURGE_OUTCOMES`: the purge's error categories,
  its gates and stops, and what the operator records when a Job left no result record).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dataward.checks.conditions import (
    ACCESS_RECORDED,
    ACCESS_RESTRICTED,
    COMPLETE,
    CONDITION_TYPES,
    DEADLINE_MET,
    ENCRYPTION_KEY_READY,
    NAMESPACE_CACHE_UNAVAILABLE,
    NAMESPACE_NOT_SERVED,
    NETWORK_ISOLATED,
    POLICY_COMPLIANT,
    PURGE_SCHEDULED,
    PURGE_SUCCEEDED,
    READY,
    REVISION_IN_FORCE,
    STATUS_REFUSED,
    STORE_CACHE_UNAVAILABLE,
    Status,
)
from dataward.purge.plan import DEFAULT_MAX_CLOCK_SKEW

STORE_KIND = "PersonalDataStore"
POLICY_KIND = "PrivacyPolicy"
REQUEST_KIND = "DataSubjectRequest"
DOCS_PATH = "docs/conditions.md"

# What each condition type of a PersonalDataStore says when it is True.
TYPE_MEANINGS: dict[str, str] = {
    READY: "Every other condition is True: every control the store declares is in force.",
    POLICY_COMPLIANT: "The store fits its PrivacyPolicy: the category exists and the retention, "
    "archive and key rotation are within what the policy allows.",
    NETWORK_ISOLATED: "The store's NetworkPolicy is in place as declared, no other "
    "NetworkPolicy admits more to the workload pods, and no AdminNetworkPolicy, "
    "CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, Calico NetworkPolicy or Calico "
    "GlobalNetworkPolicy (where the cluster serves them) allows ingress to them.",
    ENCRYPTION_KEY_READY: "The store's key ring Secret exists, was created by the operator, is "
    "unchanged and its primary key is younger than keyRotation.",
    ACCESS_RESTRICTED: "Only spec.access.readers and the purge job can read the store's Secrets.",
    PURGE_SCHEDULED: "The purge CronJob exists as declared and is not suspended.",
    PURGE_SUCCEEDED: "The last purge run finished without error (or none has run yet).",
    ACCESS_RECORDED: "Reads of the store's Secrets are in the API server's audit log and the "
    "evidence log (only when the operator follows the audit log: `dataward run --audit-log`).",
}


@dataclass(frozen=True)
class ReasonEntry:
    """One (condition type, reason): the status it comes with, its meaning, what to do.

    `attention`: a True condition a person should still look at (a held purge).
    `event_only`: written as an Event, never into status.conditions.
    """

    kind: str
    type: str
    reason: str
    status: Status
    meaning: str
    action: str
    attention: bool = False
    event_only: bool = False

    @property
    def needs_action(self) -> bool:
        """True when a person has something to do about it."""
        return self.status != "True" or self.attention


@dataclass(frozen=True)
class PurgeOutcome:
    """One value of `status.lastPurge.reason`: the results it comes with, meaning, action."""

    reason: str
    results: tuple[str, ...]
    meaning: str
    action: str


def _store(
    type_: str,
    reason: str,
    status: Status,
    meaning: str,
    action: str,
    *,
    attention: bool = False,
    event_only: bool = False,
) -> ReasonEntry:
    return ReasonEntry(STORE_KIND, type_, reason, status, meaning, action, attention, event_only)


_MAX_SKEW = f"{DEFAULT_MAX_CLOCK_SKEW.total_seconds() / 60:g} minutes"
_RETRIES = "Nothing, if it clears: the operator retries on its next reconcile."
_OPERATOR_RIGHTS = (
    "If it persists, check the operator's log and that its RBAC (the chart's) is installed "
    "unchanged."
)

# What each condition type of a DataSubjectRequest says when it is True.
REQUEST_TYPE_MEANINGS: dict[str, str] = {
    COMPLETE: "Every store in the request's scope answered: its rows were exported (access), "
    "or deleted with statutory rows moved to the archive (erasure), or counted (dry run).",
    DEADLINE_MET: "The request was answered by status.deadline, or that deadline has not "
    "passed yet.",
}


def _request(type_: str, reason: str, status: Status, meaning: str, action: str) -> ReasonEntry:
    return ReasonEntry(REQUEST_KIND, type_, reason, status, meaning, action)


_READ_STORES = "Read status.stores: each store says its phase, reason and what to do."
# A child of the store's name that someone else made (one reason, under each control a child
# belongs to: `conditions.CHILD_CONTROLS`).
_CHILD_NOT_OURS = (
    "An object of the name of one of the store's children (its kind and name in the "
    "message) exists without a controller owner reference to the store: the operator did "
    "not create it, so it never changes or uses it (it never adopts what it did not make)."
)
_CHILD_NOT_OURS_ACTION = (
    "Delete that object, or recreate it under another name if it is needed; the operator "
    "then creates the store's own."
)
_CHILD_HELD = (
    "One of the store's children (its kind and name in the message) was changed back from "
    "what the store declares right after each of the operator's last repairs: another "
    "writer (a controller, a policy engine, a script) holds it different. The operator "
    "repairs it less and less often (at most every 5 minutes) instead of at every change, "
    "and says so until a repair holds."
)
_CHILD_HELD_ACTION = (
    "Find the writer (the object's managedFields name its field manager) and stop it from "
    "changing the child, or exclude the operator's children from it; change the store's "
    "spec instead of the child."
)

# Reasons written as literals by the checks and the controller.
_LITERAL: tuple[ReasonEntry, ...] = (
    # Ready (PersonalDataStore)
    _store(READY, "AllControlsInForce", "True", "Every other condition is True.", "Nothing."),
    _store(
        READY,
        "ControlsNotInForce",
        "False",
        "At least one other condition is False; the message names each condition that is not "
        "True, with its reason and message.",
        "Look up each named reason in this reference (`kubectl dataward explain REASON`) and "
        "fix it.",
    ),
    _store(
        READY,
        "ControlsUnknown",
        "Unknown",
        "No condition is False but at least one is Unknown: the operator could not read "
        "something it needs to judge a control.",
        "Look up each Unknown condition's reason; these are mostly read errors the operator "
        "retries.",
    ),
    _store(
        READY,
        "NoConditions",
        "Unknown",
        "No control has been checked yet.",
        "Wait for the first reconcile; if it never comes, check that the operator runs.",
    ),
    # PolicyCompliant
    _store(
        POLICY_COMPLIANT,
        "Compliant",
        "True",
        "The store's category exists in its policy and its retention is within bounds.",
        "Nothing.",
    ),
    _store(
        POLICY_COMPLIANT,
        "InvalidSpec",
        "False",
        "The store's spec cannot be read by the operator (the message names the field); no "
        "other condition is judged and nothing is rendered or changed.",
        "Fix the named field of the store; `dataward check -f FILE` checks a file before you "
        "apply it.",
    ),
    _store(
        POLICY_COMPLIANT,
        "PolicyUnreadable",
        "Unknown",
        "The store's PrivacyPolicy could not be read (an API error, not a missing policy); the "
        "purge schedule is left as it is.",
        f"{_RETRIES} {_OPERATOR_RIGHTS}",
    ),
    # NetworkIsolated
    _store(
        NETWORK_ISOLATED,
        "Isolated",
        "True",
        "The store's NetworkPolicy admits only spec.network.allowFrom and the purge pods, on "
        "the workload's ports, and no other policy admits more.",
        "Nothing.",
    ),
    _store(
        NETWORK_ISOLATED,
        "NetworkPoliciesUnreadable",
        "Unknown",
        "The NetworkPolicies of the namespace could not be listed, so a wider policy may "
        "admit more than the store declares.",
        f"{_RETRIES} Check that the operator may list networkpolicies.",
    ),
    _store(
        NETWORK_ISOLATED,
        "StoresUnreadable",
        "Unknown",
        "The PersonalDataStores of the namespace could not be listed, so policies Dataward "
        "made for other stores cannot be told from foreign ones.",
        f"{_RETRIES} Check that the operator may list personaldatastores.",
    ),
    _store(
        NETWORK_ISOLATED,
        "NetworkPolicyUnreadable",
        "Unknown",
        "The store's own NetworkPolicy could not be read or written.",
        f"{_RETRIES} Check that the operator may get, create and update networkpolicies in "
        "the namespace, and that no admission policy refuses them.",
    ),
    _store(
        NETWORK_ISOLATED,
        "NetworkPolicyMissing",
        "False",
        "The store's NetworkPolicy does not exist; the operator recreates it.",
        f"{_RETRIES} {_OPERATOR_RIGHTS}",
    ),
    _store(
        NETWORK_ISOLATED,
        "NetworkPolicyDrifted",
        "False",
        "The store's NetworkPolicy was edited and differs from what the store declares; the "
        "operator restores it.",
        "Change spec.network or spec.workload of the store instead of editing the NetworkPolicy.",
    ),
    _store(
        NETWORK_ISOLATED,
        "OtherPolicyAllowsIngress",
        "False",
        "Another NetworkPolicy (named in the message) also selects the workload pods and "
        "admits peers or ports the store does not declare; NetworkPolicies add up, so the "
        "store is not isolated.",
        "Narrow that policy's podSelector, or add its peers to spec.network.allowFrom if they "
        "should reach the data.",
    ),
    _store(
        NETWORK_ISOLATED,
        "PolicyMaySelectWorkload",
        "Unknown",
        "Another NetworkPolicy (named in the message) admits peers or ports the store does not "
        "declare and selects pods by a label spec.workload.podSelector does not fix: the "
        "workload pods may carry that label, and the operator does not read their labels, so "
        "whether the store is isolated is not known.",
        "Add a requirement on that label to spec.workload.podSelector (the value the workload "
        "pods carry, or DoesNotExist), or narrow that policy's podSelector.",
    ),
    _store(
        NETWORK_ISOLATED,
        "AdminNetworkPoliciesUnreadable",
        "Unknown",
        "The cluster serves AdminNetworkPolicies but the operator could not list them (its "
        "cache failed, was refused or has not listed yet); one with an ingress rule of action "
        "Allow admits traffic whatever the NetworkPolicies say.",
        f"{_RETRIES} Check that the operator may list and watch "
        "adminnetworkpolicies.policy.networking.k8s.io.",
    ),
    _store(
        NETWORK_ISOLATED,
        "AdminNetworkPolicyAllows",
        "False",
        "An AdminNetworkPolicy (named in the message) selects the workload pods and has an "
        "ingress rule of action Allow; AdminNetworkPolicies come before every NetworkPolicy, "
        "so it admits its peers whatever the store's NetworkPolicy says.",
        "Narrow that AdminNetworkPolicy's subject, or make the rule's action Pass so that the "
        "namespace's NetworkPolicies decide.",
    ),
    _store(
        NETWORK_ISOLATED,
        "AdminNetworkPolicyMaySelect",
        "Unknown",
        "An AdminNetworkPolicy (named in the message) has an ingress rule of action Allow and "
        "selects namespaces by labels the operator does not know (it reads them only when it "
        "runs with a namespace selector) or pods by a label spec.workload.podSelector does "
        "not fix: it may admit traffic to the workload pods.",
        "Narrow its subject (by kubernetes.io/metadata.name, or by a pod label the workload "
        "selector fixes to another value), or add a requirement on that label to "
        "spec.workload.podSelector.",
    ),
    _store(
        NETWORK_ISOLATED,
        "CiliumPoliciesUnreadable",
        "Unknown",
        "The cluster serves CiliumNetworkPolicies or CiliumClusterwideNetworkPolicies but the "
        "operator could not list them (a cache failed, was refused or has not listed yet); "
        "one with an ingress rule admits traffic whatever the NetworkPolicies say.",
        f"{_RETRIES} Check that the operator may list and watch "
        "ciliumnetworkpolicies.cilium.io and ciliumclusterwidenetworkpolicies.cilium.io.",
    ),
    _store(
        NETWORK_ISOLATED,
        "CiliumPolicyAllows",
        "False",
        "A CiliumNetworkPolicy of the store's namespace or a CiliumClusterwideNetworkPolicy "
        "(named in the message) selects the workload pods and has an ingress rule; Cilium's "
        "allow rules add up with the NetworkPolicies', so it admits its peers whatever the "
        "store's NetworkPolicy says. Every ingress rule but an empty one (`{}`, which allows "
        "nothing) is taken as admitting: its peers are not compared with the store's.",
        "Narrow its endpointSelector, or declare its peers in spec.network.allowFrom and "
        "remove its ingress rules.",
    ),
    _store(
        NETWORK_ISOLATED,
        "CiliumPolicyMaySelect",
        "Unknown",
        "A CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy (named in the message) has an "
        "ingress rule and selects endpoints by a pod label spec.workload.podSelector does not "
        "fix, by namespace labels the operator does not know (it reads them only when it runs "
        "with a namespace selector) or by what Cilium derives from a pod (its service account, "
        "its cluster): it may admit traffic to the workload pods.",
        "Narrow its endpointSelector (by a pod label the workload selector fixes to another "
        "value, or by io.kubernetes.pod.namespace), or add a requirement on that label to "
        "spec.workload.podSelector.",
    ),
    _store(
        NETWORK_ISOLATED,
        "CalicoPoliciesUnreadable",
        "Unknown",
        "The cluster serves Calico NetworkPolicies or GlobalNetworkPolicies "
        "(crd.projectcalico.org) but the operator could not list them (a cache failed, was "
        "refused or has not listed yet); one with an ingress rule of action Allow admits "
        "traffic whatever the NetworkPolicies say.",
        f"{_RETRIES} Check that the operator may list and watch "
        "networkpolicies.crd.projectcalico.org and globalnetworkpolicies.crd.projectcalico.org.",
    ),
    _store(
        NETWORK_ISOLATED,
        "CalicoPolicyAllows",
        "False",
        "A Calico NetworkPolicy of the store's namespace or a Calico GlobalNetworkPolicy "
        "(named in the message) selects the workload pods and has an ingress rule of action "
        "Allow; Calico evaluates its policies with the NetworkPolicies and an Allow ends the "
        "evaluation, so it admits its sources whatever the store's NetworkPolicy says. Its "
        "sources and ports are not compared with the store's; Deny, Log and Pass rules and "
        "egress rules change nothing.",
        "Narrow its selector, or declare its sources in spec.network.allowFrom and remove its "
        "Allow ingress rules.",
    ),
    _store(
        NETWORK_ISOLATED,
        "CalicoPolicyMaySelect",
        "Unknown",
        "A Calico NetworkPolicy or GlobalNetworkPolicy (named in the message) has an ingress "
        "rule of action Allow and its selector selects by a pod label spec.workload.podSelector "
        "does not fix, by namespace labels the operator does not know (it reads them only when "
        "it runs with a namespace selector), by a service account, or in a form the operator "
        "does not parse: it may admit traffic to the workload pods.",
        "Narrow its selector (by a pod label the workload selector fixes to another value, or "
        "by projectcalico.org/namespace), or add a requirement on that label to "
        "spec.workload.podSelector.",
    ),
    _store(
        NETWORK_ISOLATED,
        "ChildNotCreatedByOperator",
        "False",
        _CHILD_NOT_OURS,
        _CHILD_NOT_OURS_ACTION,
    ),
    _store(
        NETWORK_ISOLATED,
        "ChildHeldDifferent",
        "False",
        _CHILD_HELD,
        _CHILD_HELD_ACTION,
    ),
    # EncryptionKeyReady
    _store(
        ENCRYPTION_KEY_READY,
        "KeyReady",
        "True",
        "The key ring is the operator's and unchanged; its primary key is younger than "
        "keyRotation. The message gives the key's fingerprint, never the key.",
        "Nothing.",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyRingUnreadable",
        "Unknown",
        "The key ring Secret could not be read; nothing is created or rotated until a read "
        "succeeds.",
        f"{_RETRIES} Check that the operator may get secrets in the namespace.",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "StatusUnreadable",
        "Unknown",
        "The record of the key ring the operator keeps in the store's status "
        "(status.encryption, the field in the message) is not in the form the operator "
        "writes: anyone who may write the store's status subresource can write it (with the "
        "chart's status guard: only holders of `override`). It is "
        "never read as \"no record\" (a garbled owed withdrawal is not \"nothing owed\"): "
        "nothing is created, rotated, adopted or destroyed in the ring, and the record is "
        "left as it is, until a person restores the field.",
        "Find who changed the store's status (the API server's audit log) and restore the "
        "field as the operator wrote it; the evidence log's key records (key.created, "
        "key.shredded) give ids, fingerprints and buckets. The operator rereads it on its "
        "next reconcile.",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyRingMissing",
        "False",
        "The key ring Secret does not exist. Before the first key it is about to be created; "
        "once keys were recorded in status it was deleted, and the operator does not make a "
        "new ring, which could not decrypt existing data.",
        "A new store: wait for the operator to create it. A deleted ring: restore the Secret "
        "from a backup.",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyRingNotCreatedByOperator",
        "False",
        "A Secret with the key ring's name exists but its keys match no fingerprint the "
        "operator recorded: someone else made it and may know its keys, so it is neither used "
        "nor changed.",
        "Delete the Secret and the operator creates a new ring; or, if it is this store's ring "
        "restored from a backup, set spec.encryption.adoptExistingKeyRing: true (only someone "
        "who may read the Secret can).",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyRingInvalid",
        "False",
        "The key ring Secret is not a valid key ring: it was changed outside the operator.",
        "Restore the Secret from a backup.",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyMaterialChanged",
        "False",
        "The key ring was changed outside the operator: recorded keys are gone, their material "
        "changed, a key's created time or bucket differs from the recorded one (which would "
        "postpone rotation, or make crypto-shredding destroy a live bucket's key), an older "
        "primary came back, a key the operator never recorded (by its fingerprint) was "
        "added, whose material whoever added it may know, or the ring's list of shredded keys "
        "differs from status.encryption.shreddedBuckets (an entry the operator never recorded "
        "would keep a live or future bucket from ever getting a key; one removed would let a "
        "destroyed key's id be given out again). Data encrypted with the recorded "
        "keys may be unreadable; nothing is rotated or shredded until it is restored.",
        "Restore the Secret from a backup.",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyRotationDue",
        "False",
        "The primary key is older than keyRotation; the operator rotates it (never twice "
        "within half the period).",
        f"{_RETRIES} {_OPERATOR_RIGHTS}",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyShreddingHeld",
        "True",
        "Crypto-shredding: every record of one or more time buckets has expired, but their "
        "keys are kept because spec.purge.suspend (a legal hold) or spec.purge.dryRun is set.",
        "Nothing while the hold applies; lift it (or unset dryRun) and the keys are destroyed.",
        attention=True,
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyShreddingNeedsEvidenceLog",
        "False",
        "Crypto-shredding: every record of one or more time buckets has expired, but the "
        "operator has no evidence log; a key is destroyed only after its destruction is "
        "recorded there, so the expired data stays readable (backups included).",
        "Configure the evidence log (DATAWARD_EVIDENCE_DATABASE and its signing key).",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyShreddingClockSkew",
        "False",
        "Crypto-shredding: every record of one or more time buckets has expired by the "
        "operator's clock, but the API server's clock (the Date of the operator's last read of "
        f"the store) differs from it by more than {_MAX_SKEW}, or was not given: a key is "
        "destroyed only at the API server's time, and only while the two agree.",
        "Fix time synchronisation (NTP) on the operator's node or the API server's; the "
        "operator retries.",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyShreddingNotCompliant",
        "False",
        "Crypto-shredding: every record of one or more time buckets has expired, but the "
        "store is not compliant (PolicyCompliant, NetworkIsolated or AccessRestricted as this "
        "pass judges them is not True, or another control's recorded "
        "verdict is not True or does not say which generation of the spec it judged, or is "
        "still behind the spec after the pass that judged an edit of it, or "
        "status.conditions cannot be read): no key is destroyed "
        "while a control is not in force. Verdicts merely recorded for the spec before an "
        "edit are no finding: the keys wait a pass, with this condition as it was.",
        "Fix what the other conditions say; the keys are destroyed at the pass after every "
        "control is True again.",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyShreddingNotAcknowledged",
        "False",
        "Crypto-shredding: the keys of more than one time bucket are due at once (after a long "
        "outage, or a shortened retention): they wait for a person to acknowledge the "
        "destruction of those very keys (the purge's own acknowledgement does not release "
        "them). Nothing was destroyed.",
        "If it is intended, run the `kubectl annotate` command of the message (annotation "
        "dataward.io/acknowledge-shredding, the token naming the buckets due), or `kubectl "
        "dataward acknowledge --shredding STORE`.",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyShreddingFailed",
        "False",
        "Crypto-shredding: every record of one or more time buckets has expired, but recording "
        "the destruction (evidence log, store status) or writing the key ring failed, or the "
        "withdrawal of an earlier key.shredded record is still owed "
        "(status.encryption.owedWithdrawals), or the store's policy, category or retention "
        "changed since the keys were found due; nothing unrecorded was destroyed.",
        f"{_RETRIES} If it persists, check the evidence database and the operator's log.",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyRingFinalizerUnwritten",
        "Unknown",
        "The store's deletionPolicy is Delete, but the finalizer that keeps the key ring for "
        "its grace period after the store is deleted could not be added; deleted now, the "
        "store's key ring could be destroyed at once.",
        f"{_RETRIES} {_OPERATOR_RIGHTS} Do not delete the store until it clears.",
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyRingDeletionScheduled",
        "True",
        "The store was deleted under deletionPolicy: Delete; its key ring is destroyed after "
        "the grace period (status.encryption.scheduledDeletion). Recorded as an Event.",
        "To keep the data readable, copy the key ring Secret before that instant.",
        event_only=True,
    ),
    _store(
        ENCRYPTION_KEY_READY,
        "KeyRingDeletionHeld",
        "True",
        "The store was deleted under deletionPolicy: Delete and its grace period is over, but "
        "spec.purge.suspend (a legal hold) keeps its key ring, and the store Terminating, "
        "until the hold is lifted. Recorded as an Event.",
        "Nothing while the hold applies; lift it (edit spec.purge.suspend of the Terminating "
        "store) and the ring is destroyed.",
        attention=True,
        event_only=True,
    ),
    # AccessRestricted
    _store(
        ACCESS_RESTRICTED,
        "OnlyDeclaredReaders",
        "True",
        "Only spec.access.readers and the purge job can read the store's Secrets.",
        "Nothing.",
    ),
    _store(
        ACCESS_RESTRICTED,
        "StoresUnreadable",
        "Unknown",
        "The PersonalDataStores of the namespace could not be listed, so bindings Dataward "
        "made for other stores cannot be told from foreign ones.",
        f"{_RETRIES} Check that the operator may list personaldatastores.",
    ),
    _store(
        ACCESS_RESTRICTED,
        "RBACUnreadable",
        "Unknown",
        "The Roles, RoleBindings, ClusterRoles or ClusterRoleBindings could not be read.",
        f"{_RETRIES} Check that the operator may list those four kinds.",
    ),
    _store(
        ACCESS_RESTRICTED,
        "ReadersBindingUnreadable",
        "Unknown",
        "The store lists no readers any more, but whether its readers' RoleBinding is gone "
        "could not be read; until it is, former readers may still read the store's Secrets.",
        f"{_RETRIES} Check that the operator may get rolebindings in the namespace.",
    ),
    _store(
        ACCESS_RESTRICTED,
        "ReadersBindingNotRemoved",
        "False",
        "The store lists no readers any more, but its readers' RoleBinding could not be "
        "deleted: the former readers can still read the store's Secrets.",
        f"{_RETRIES} Check that the operator may delete rolebindings in the namespace, or "
        "delete the binding (named in the message) yourself.",
    ),
    _store(
        ACCESS_RESTRICTED,
        "AccessControlsMissing",
        "False",
        "The store's reader or purge Role or RoleBinding does not exist; the operator "
        "recreates it.",
        f"{_RETRIES} {_OPERATOR_RIGHTS}",
    ),
    _store(
        ACCESS_RESTRICTED,
        "AccessControlsDrifted",
        "False",
        "The store's Role or RoleBinding was edited; the operator restores it.",
        "Change spec.access.readers instead of editing them.",
    ),
    _store(
        ACCESS_RESTRICTED,
        "OtherBindingGrantsSecrets",
        "False",
        "A binding the store does not declare (named in the message) lets someone outside "
        "spec.access.readers read the store's Secrets. The message names the binding, its "
        "role and those subjects; a name that may be personal data (one with a character "
        "other than letters, digits and . _ : -, such as an OIDC user's e-mail address or a "
        "name with a space) is written as sha256:<hex>, the SHA-256 of dataward/access-user, "
        "a NUL byte and the name, as is a name that starts with sha256: (so that no account "
        "can pass for another's digest).",
        "Remove that binding, narrow its role with resourceNames, or add its subjects to "
        "spec.access.readers.",
    ),
    _store(
        ACCESS_RESTRICTED,
        "WorkloadCreatorsCanMountSecrets",
        "False",
        "A binding the store does not declare (named in the message) lets someone outside "
        "spec.access.readers start pods in the store's namespace: create pods, or a "
        "workload that makes pods from a template they write (deployments, replicasets, "
        "statefulsets, daemonsets, jobs, cronjobs, replicationcontrollers); update or patch "
        "such a workload, a named one included (they rewrite its pod template), or a pod "
        "(its containers' images: a new image runs with its mounts); exec or "
        "attach into pods, or add an ephemeral container to one (update or patch on "
        "pods/ephemeralcontainers: it mounts the pod's volumes); or create a token of a "
        "ServiceAccount of the namespace (serviceaccounts/token, or create on secrets with a "
        "read of one Secret of their naming, a named one included: a Secret of type "
        "kubernetes.io/service-account-token is filled with a token of the account it names; "
        "they may then do what that account may, which may be reading the Secrets or "
        "starting pods). A pod can mount "
        "any Secret of its namespace, the key ring and the "
        "credentials included, so they can read them without any rule on secrets (the "
        "Kubernetes RBAC good practices' \"workload creation\"), as in a namespace where a "
        "deployer role creates or patches Deployments or Jobs. The message names the "
        "binding, its role and those subjects, as for OtherBindingGrantsSecrets. The "
        "platform's subjects (trustedSubjects: the controllers of kube-controller-manager, "
        "which make pods only from specs others wrote and mint tokens for pods) are not "
        "counted.",
        "Narrow pod and workload creation in the store's namespace to spec.access.readers, "
        "or move the store's workload and Secrets to a namespace of their own.",
    ),
    _store(
        ACCESS_RESTRICTED,
        "EscalatorsCanReadSecrets",
        "False",
        "A binding the store does not declare (named in the message) lets someone outside "
        "spec.access.readers become someone who reads the store's Secrets (the Kubernetes "
        "RBAC good practices' \"privilege escalation risks\"): impersonate on "
        "serviceaccounts (through a RoleBinding of the store's namespace or a "
        "ClusterRoleBinding: they act as its accounts, the readers' and the purge job's "
        "included), or on users or groups (through a ClusterRoleBinding: they act as anyone, "
        "system:masters included; a RoleBinding's grant of them has no effect); bind or "
        "escalate on roles or clusterroles (they bind, or write, a role that reads the "
        "Secrets); get or create on nodes/proxy (through a ClusterRoleBinding: the "
        "kubelet's API runs commands in any pod of its node); create, update or patch on "
        "mutatingwebhookconfigurations or validatingwebhookconfigurations (through a "
        "ClusterRoleBinding: a mutating webhook of theirs rewrites any pod to mount the "
        "Secrets, and either kind is sent every object written to the API, a Secret's data "
        "included); create on persistentvolumes (through a ClusterRoleBinding: a hostPath "
        "volume claimed by a pod of theirs, in any namespace they may start pods in, reads the "
        "kubelet's copies of the Secrets of every pod of its node; update and patch do not "
        "count, a volume's source cannot be changed); or, through ClusterRoleBindings, "
        "update or patch on certificatesigningrequests/approval together with approve on "
        "signers (they approve a CertificateSigningRequest of their own for a client "
        "certificate naming any user, group or node, which kube-controller-manager signs; "
        "creating the request is not asked for, the kubelets and bootstrap tokens may), in "
        "one role or in two bindings whose subjects may be one identity: the same subject, a "
        "ServiceAccount and one of its own groups (system:serviceaccounts, "
        "system:serviceaccounts:<namespace>, system:authenticated), or a User and a Group, or "
        "two Groups (Kubernetes lists no group's members, so nothing read shows they share "
        "none; the message says \"if a member of\", or \"a member of both\"). Either grant "
        "alone approves nothing: a subject holding one of them, or two Users or "
        "ServiceAccounts holding one each, do not count, nor does a pair of which one subject "
        "is trusted or one of the store's readers (so is whoever holds both). So does, "
        "through a ClusterRoleBinding, create on certificatesigningrequests/nodeclient: "
        "kube-controller-manager's csrapproving controller (on by default) approves, with no "
        "one asked, a request of theirs for the client certificate of any node (CN "
        "system:node:<name>, signer kubernetes.io/kube-apiserver-client-kubelet), and a "
        "node reads the Secrets its pods mount, the purge job's credentials included "
        "(creating the request is not asked for: another binding may grant it; a rule "
        "limited by resourceNames does not count, the approver asks without a name; nor "
        "does selfnodeclient, approved only for a node's own name). kubeadm binds it to its "
        "join tokens' Group system:bootstrappers:kubeadm:default-node-token (ClusterRoleBinding "
        "kubeadm:node-autoapprove-bootstrap), which is not trusted by default: whoever holds "
        "a join token can become any node; trust that group only if join tokens are kept as "
        "the cluster administrators' own credentials. Approve on signers limited by "
        "resourceNames to kubernetes.io/kubelet-serving alone is not half an approval: that "
        "signer signs only server-auth certificates, which the API server takes from no "
        "client. A rule limited "
        "by resourceNames counts as well where not said otherwise: the "
        "check does not judge what the named account, group, role, node, webhook or signer "
        "may do. Checked after OtherBindingGrantsSecrets and "
        "WorkloadCreatorsCanMountSecrets. The message names the binding, its role and those "
        "subjects, as for OtherBindingGrantsSecrets (both bindings, for an approval held "
        "through two). The platform's subjects "
        "(trustedSubjects: system:masters, the controllers of kube-controller-manager, one "
        "of which writes the aggregated ClusterRoles) and the store's own readers are not "
        "counted.",
        "Remove that binding or those verbs from its role, or bind them only to "
        "spec.access.readers; a platform component's account may be added to "
        "trustedSubjects.",
    ),
    _store(
        ACCESS_RESTRICTED,
        "ChildNotCreatedByOperator",
        "False",
        _CHILD_NOT_OURS,
        _CHILD_NOT_OURS_ACTION,
    ),
    _store(
        ACCESS_RESTRICTED,
        "ChildHeldDifferent",
        "False",
        _CHILD_HELD,
        _CHILD_HELD_ACTION,
    ),
    _store(
        ACCESS_RESTRICTED,
        "ChildUnreadable",
        "Unknown",
        "One of the store's Roles, RoleBindings or its purge ServiceAccount (named in the "
        "message) could not be read or written, so whether it is the store's own and as "
        "rendered is unknown.",
        f"{_RETRIES} Check that the operator may get and watch roles, rolebindings and "
        "serviceaccounts in the namespace, and that no admission policy refuses them.",
    ),
    # AccessRecorded (only with `dataward run --audit-log`)
    _store(
        ACCESS_RECORDED,
        "AccessReadsRecorded",
        "True",
        "The operator's reads of the key ring and of each credentials Secret are in the API "
        "server's audit log and were appended to the evidence log, as every read of the "
        "store's Secrets is.",
        "Nothing.",
    ),
    _store(
        ACCESS_RECORDED,
        "AccessRecordPending",
        "Unknown",
        "The operator read the key ring or a credentials Secret (named in the message) and "
        "waits for the audit record of that read.",
        "Nothing, unless it lasts: then AccessReadNotAudited follows.",
    ),
    _store(
        ACCESS_RECORDED,
        "AccessReadNotAudited",
        "False",
        "A read by the operator of the key ring or of a credentials Secret (named in the "
        "message) is not in the API server's audit log after the grace period "
        "(--audit-canary-seconds): the API server's audit policy does not cover that Secret "
        "(a store added, or its credentials Secret renamed, after the policy was rendered; "
        "or the API server no longer writes that file), so reads of it are not recorded.",
        "Render the policy again with `dataward audit-policy` (it names every store's "
        "Secrets) and install it on the API server (--audit-policy-file).",
    ),
    _store(
        ACCESS_RECORDED,
        "AuditLogUnreadable",
        "Unknown",
        "The audit log file given to --audit-log could not be opened or read.",
        f"{_RETRIES} Check that the file is mounted into the operator's pod and readable.",
    ),
    _store(
        ACCESS_RECORDED,
        "AccessEvidenceUnwritable",
        "Unknown",
        "Reads are in the audit log, but the operator could not append them to the evidence "
        "log (the evidence database is down or refuses the login).",
        f"{_RETRIES} Check the evidence database and the operator's login to it; no read is "
        "lost while the audit log still holds it.",
    ),
    # PurgeScheduled
    _store(
        PURGE_SCHEDULED,
        "Scheduled",
        "True",
        "The purge CronJob exists as declared and runs on the store's schedule.",
        "Nothing.",
    ),
    _store(
        PURGE_SCHEDULED,
        "PolicyNotCompliant",
        "False",
        "The store does not comply with its policy, so its CronJob is suspended: no purge runs.",
        "Fix what PolicyCompliant says.",
    ),
    _store(
        PURGE_SCHEDULED,
        "PurgeSuspended",
        "False",
        "spec.purge.suspend is true (a legal hold): the CronJob runs no purge.",
        "Set spec.purge.suspend to false when the hold ends.",
    ),
    _store(
        PURGE_SCHEDULED,
        "CronJobUnreadable",
        "Unknown",
        "The purge CronJob could not be read or written.",
        f"{_RETRIES} Check that the operator may get, create and update cronjobs in the "
        "namespace, and that no admission policy refuses them.",
    ),
    _store(
        PURGE_SCHEDULED,
        "ChildNotCreatedByOperator",
        "False",
        _CHILD_NOT_OURS,
        _CHILD_NOT_OURS_ACTION,
    ),
    _store(
        PURGE_SCHEDULED,
        "ChildHeldDifferent",
        "False",
        _CHILD_HELD,
        _CHILD_HELD_ACTION,
    ),
    _store(
        PURGE_SCHEDULED,
        "CronJobMissing",
        "False",
        "The purge CronJob does not exist; the operator recreates it.",
        f"{_RETRIES} {_OPERATOR_RIGHTS}",
    ),
    _store(
        PURGE_SCHEDULED,
        "CronJobDrifted",
        "False",
        "The purge CronJob was edited and differs from what the store declares; the operator "
        "restores it.",
        "Change spec.purge of the store instead of editing the CronJob.",
    ),
    _store(
        PURGE_SCHEDULED,
        "CronJobRenderNotRecorded",
        "False",
        "The purge CronJob's new render could not be recorded in status.purgeRenders, so the "
        "operator left the CronJob at its last render (schedule, suspension and job template "
        "as they were): it records a render before it changes the CronJob to it, so that a "
        "run the CronJob starts is always one it can count.",
        f"{_RETRIES} {_OPERATOR_RIGHTS}",
    ),
    _store(
        PURGE_SCHEDULED,
        "PolicyUnreadable",
        "Unknown",
        "Whether the store may be purged depends on its PrivacyPolicy, which could not be "
        "read; the schedule is left as it is.",
        f"{_RETRIES} {_OPERATOR_RIGHTS}",
    ),
    _store(
        PURGE_SCHEDULED,
        "CredentialsSecretMissing",
        "False",
        "A Secret named by spec.database (or spec.archive) credentials does not exist, so the "
        "CronJob is suspended and no purge starts.",
        "Create the Secret with keys username and password, or fix "
        "spec.database.credentialsSecret.",
    ),
    _store(
        PURGE_SCHEDULED,
        "CredentialsSecretUnreadable",
        "Unknown",
        "Whether the credentials Secret exists could not be read (only its metadata is read, "
        "never its data).",
        f"{_RETRIES} Check that the operator may get secrets in the namespace.",
    ),
    # PurgeSucceeded
    _store(
        PURGE_SUCCEEDED,
        "NoRunYet",
        "True",
        "No purge has run yet; none has failed. PurgeScheduled says whether one will.",
        "Nothing; `kubectl dataward purge now STORE` runs one now.",
    ),
    _store(
        PURGE_SUCCEEDED,
        "Succeeded",
        "True",
        "The last purge deleted (and archived) every expired row up to its cutoff.",
        "Nothing.",
    ),
    _store(
        PURGE_SUCCEEDED,
        "DryRunSucceeded",
        "True",
        "The last run was a dry run: it counted the expired rows and deleted nothing.",
        "Set spec.purge.dryRun to false to enforce retention.",
    ),
    _store(
        PURGE_SUCCEEDED,
        "StoppedEarly",
        "True",
        "The last purge succeeded but stopped before every expired row was gone: at "
        "maxRowsPerRun, or because a legal hold or a change to the store, its retention or its "
        "acknowledgement came during the run; status.lastPurge.reason says which.",
        "At maxRowsPerRun, nothing for one run: the next continues; if backlogs persist, raise "
        "spec.purge.maxRowsPerRun. Otherwise what that reason's entry under \"The reason of "
        "the last purge run\" says.",
    ),
    _store(
        PURGE_SUCCEEDED,
        "PurgeRunsUnreadable",
        "Unknown",
        "The purge Jobs (or the pods of the last one) could not be listed; whether the last "
        "run succeeded is unknown.",
        f"{_RETRIES} Check that the operator may list jobs and pods in the namespace.",
    ),
    _store(
        PURGE_SUCCEEDED,
        "PurgeRunStuck",
        "False",
        "A purge Job started long ago and has not finished, past its deadline.",
        "Read its pod's events and logs (a pod that never starts, a database that hangs); "
        "delete the Job to let the next scheduled run start.",
    ),
    _store(
        PURGE_SUCCEEDED,
        "PurgeRunMissed",
        "False",
        "A scheduled purge never started: expired records stay until a run does.",
        "Check the CronJob's events and that the cluster's CronJob controller runs; "
        "`kubectl dataward purge now STORE` runs one now.",
    ),
    _store(
        PURGE_SUCCEEDED,
        "PurgeFailed",
        "False",
        "The last purge failed and recorded no reason that is a valid CamelCase word.",
        "Read the purge Job's termination message and logs, fix the cause; the next scheduled "
        "run retries.",
    ),
    # DataSubjectRequest
    _request(
        COMPLETE,
        "AllStoresAnswered",
        "True",
        "Every store in scope answered.",
        "Nothing; for access, status.stores names the export Secrets' stores and "
        "spec.readers may get the key (`dataward subject-request open`).",
    ),
    _request(
        COMPLETE,
        "NoStoresInScope",
        "True",
        "No store of the policy is in the request's scope: no store holds data to answer from.",
        "Check spec.scope if you expected stores; otherwise answer that nothing is held.",
    ),
    _request(
        COMPLETE,
        "InProgress",
        "False",
        "Some stores have not answered yet: their Jobs are being created or are running.",
        _READ_STORES,
    ),
    _request(
        COMPLETE,
        "StoresHeld",
        "False",
        "Some stores held the request and changed nothing there: a legal hold "
        "(LegalHold) or a match larger than spec.maxRows (LargeMatch).",
        "For a large match, set spec.acknowledgeToken to the store's "
        "status.stores[].acknowledgeToken; a legal hold must be lifted first.",
    ),
    _request(
        COMPLETE,
        "StoresFailed",
        "False",
        "At least one store's Job failed, a store could not be searched for the subject in "
        "full (NotSearchable: tables whose subjectColumns are of identifier kinds the "
        "identifier Secret does not give, named in status.stores[].notSearchable and "
        "kindsNeeded), or a store named in spec.scope.stores does not exist.",
        _READ_STORES + " A new spec.acknowledgeToken runs failed stores again.",
    ),
    _request(
        COMPLETE,
        "KeySecretLost",
        "False",
        "An access request's key Secret (the key pair its exports are sealed to) was deleted, "
        "replaced by a Secret that is not the request's, or holds a public key other than "
        "the one whose fingerprint status.keyFingerprint records (a Secret made again with "
        "another key pair, or its public key annotation changed; never used), after its Jobs "
        "were given the public key: what they sealed cannot be opened with any "
        "key the request names. The operator makes no new key pair for it (the request would "
        "hold exports sealed to two keys), and asks no store again; each store it ran for "
        "(even one whose spec no longer parses, or deleted since) says KeySecretLost in "
        "status.stores.",
        "If you have a copy of the key Secret, restore it unchanged (its owner reference to "
        "the request and its public key annotation included); else create a new request for "
        "the subject, and delete this one (its export Secrets go with it).",
    ),
    _request(
        COMPLETE,
        "ChildNotOurs",
        "False",
        "Every store answered an access request, but the readers' Role or RoleBinding of the "
        "request's name (named in the message) was made by someone else: spec.readers are "
        "not granted the key Secret and the exports, and cannot open the answer.",
        "Find out who made it and why; delete it, and the operator makes its own.",
    ),
    _request(
        COMPLETE,
        "ReadersRoleBoundElsewhere",
        "False",
        "Another RoleBinding than the request's own (named in the message) refers to the "
        "request's readers' Role. Kubernetes admits such a binding from whoever holds what "
        "the Role grants at that moment, and the operator would widen the Role under it "
        "(a store comes into scope, a Secret is made again): while one refers to it, the "
        "Role grants nothing (it is deleted) and spec.readers cannot open the answer.",
        "Find out who made it and why; delete it (name whoever needs to read the answer in "
        "spec.readers), and the operator grants spec.readers again.",
    ),
    _request(
        COMPLETE,
        "InvalidSpec",
        "False",
        "The request's spec cannot be read (the message names the field).",
        "Fix the named field.",
    ),
    _request(
        COMPLETE,
        "PolicyNotFound",
        "False",
        "spec.policy names no PrivacyPolicy.",
        "Set spec.policy to an existing policy (a new request: it is immutable).",
    ),
    _request(
        COMPLETE,
        "IdentifierSecretMissing",
        "False",
        "The Secret named by "
        "spec.subject.identifierSecretRef does not exist in the request's namespace.",
        "Create it, one key per identifier kind; nothing runs until it exists.",
    ),
    _request(
        COMPLETE,
        "IdentifierSecretUnreadable",
        "Unknown",
        "The operator could not tell whether the identifier Secret exists.",
        _RETRIES + " " + _OPERATOR_RIGHTS,
    ),
    _request(
        DEADLINE_MET,
        "WithinDeadline",
        "True",
        "Not answered yet, and the deadline has not passed.",
        "Nothing yet; answer before status.deadline.",
    ),
    _request(
        DEADLINE_MET, "AnsweredInTime", "True", "Answered before status.deadline.", "Nothing."
    ),
    _request(
        DEADLINE_MET,
        "Overdue",
        "False",
        "Not answered, and status.deadline has passed.",
        "Resolve what holds the request (see Complete) and tell the requester why the "
        "answer is late and when it will come (PIPA Art. 35(4)).",
    ),
    _request(
        DEADLINE_MET,
        "AnsweredLate",
        "False",
        "Answered after status.deadline.",
        "Nothing to fix in the cluster; keep the record of why it was late.",
    ),
    # PrivacyPolicy
    ReasonEntry(
        POLICY_KIND,
        READY,
        "Valid",
        "True",
        "The PrivacyPolicy is valid; stores may reference its categories.",
        "Nothing.",
    ),
    ReasonEntry(
        POLICY_KIND,
        REVISION_IN_FORCE,
        "Current",
        "True",
        "The spec as written is the revision in force (status.revisions.inForce); no revision "
        "is pending.",
        "Nothing.",
    ),
    ReasonEntry(
        POLICY_KIND,
        REVISION_IN_FORCE,
        "NoticePeriod",
        "False",
        "The spec is a revision that waits for its effective date and notice period (7 days, "
        "30 when it widens what is collected or kept; counted from spec.announced, or from when "
        "the operator first saw it if later). Until status.revisions.pending.takesEffect the "
        "stores are judged and purged by the revision in force.",
        "Nothing: it takes effect by itself. To withdraw it, restore the spec of "
        "status.revisions.inForce; to skip the notice, set spec.emergency.reason (recorded).",
    ),
    ReasonEntry(
        POLICY_KIND,
        REVISION_IN_FORCE,
        "ImpactNotAcknowledged",
        "False",
        "The pending revision is past its date, but its impact preview (a dry-run purge Job "
        "per affected store, status.revisions.pending.impact[].preview) found a large cut: "
        "more than 1,000 rows and 10% of a table, the purge's rule. It waits for a person.",
        "Read the counts; if intended, annotate the policy with the token the message gives: "
        "kubectl annotate privacypolicy NAME dataward.io/acknowledge-large-purge=TOKEN.",
    ),
    ReasonEntry(
        POLICY_KIND,
        REVISION_IN_FORCE,
        "ImpactUnknown",
        "False",
        "The pending revision is past its date, but the rows it would purge are not counted "
        "for every store it changes (a preview Job not run, still running or failed; see "
        "status.revisions.pending.impact[].preview). Unknown is not taken as small.",
        "Let the preview Jobs run (a failed one: read its pod's logs, fix, delete the Job to "
        "run it again), or accept the unknown impact by annotating the policy with the token "
        "the message gives (dataward.io/acknowledge-large-purge).",
    ),
    ReasonEntry(
        POLICY_KIND,
        REVISION_IN_FORCE,
        "EmergencyRevision",
        "False",
        "The spec is a revision that skips the notice period by emergency override "
        "(spec.emergency.reason, recorded as evidence) and takes effect on its effectiveDate.",
        "Nothing, if the override is justified; else remove spec.emergency.",
    ),
    ReasonEntry(
        POLICY_KIND,
        READY,
        "InvalidPolicy",
        "False",
        "The PrivacyPolicy cannot be read by the operator (the message names the field); "
        "stores that use it are not PolicyCompliant (PolicyInvalid).",
        "Fix the named field; `dataward check -f FILE` checks a file before you apply it. A "
        "field under status.revisions is the operator's record of the revision in force, "
        "which anyone who may write the policy's status can write (with the chart's status "
        "guard: only holders of `override`; its value is never quoted): find who did in "
        "the API server's audit log and restore it as the operator wrote it.",
    ),
)

# PolicyCompliant=False carries the first finding's reason (dataward.model.compliance, and
# PolicyInvalid from the controller). reason -> (meaning, what to do).
FINDINGS: dict[str, tuple[str, str]] = {
    "PolicyNotFound": (
        "The PrivacyPolicy named by spec.policy does not exist. No purge runs.",
        "Create the policy, or set spec.policy to an existing one (kubectl get privacypolicies).",
    ),
    "PolicyInvalid": (
        "The PrivacyPolicy named by spec.policy exists but cannot be read (its own Ready is "
        "False, InvalidPolicy): its spec, or the operator's record of the revision in force "
        "(status.revisions). No purge runs.",
        "Fix the policy, or restore the named status.revisions field as the operator wrote it.",
    ),
    "CategoryNotFound": (
        "spec.category is not a category of the policy. No purge runs.",
        "Set spec.category to one of the policy's categories (the message lists them).",
    ),
    "RetentionTooLong": (
        "spec.retention is longer than the category allows. No purge runs.",
        "Shorten spec.retention, or remove it to use the category's retention.",
    ),
    "ArchiveRequired": (
        "The category has a statutory retention, so expired rows must be archived, and the "
        "store has no spec.archive. No purge runs.",
        "Add spec.archive.database naming a separate archive database.",
    ),
    "ArchiveNotAllowed": (
        "The category has no statutory retention, so archived copies would outlive the "
        "policy. No purge runs.",
        "Remove spec.archive.",
    ),
    "ArchiveNotSeparate": (
        "spec.archive.database is the live database. No purge runs.",
        "Point spec.archive.database at a separate database.",
    ),
    "ChildColumnsRequired": (
        "The category may hold data of children under 14 (categories[].children), and a "
        "records entry does not say where the subject's birth date (or age) and the legal "
        "representative's consent are. No purge runs.",
        "Add records[].children with consentColumn and birthDateColumn or ageColumn to every "
        "records entry.",
    ),
    "KeyRotationTooLong": (
        "spec.encryption.keyRotation is longer than the policy's keyRotation. No purge runs.",
        "Set it to the policy's keyRotation or less, or remove it.",
    ),
    "NotCompliant": (
        "A compliance finding whose reason is not a valid CamelCase word. No purge runs.",
        "Read the condition's message and fix what it says.",
    ),
}

_READ_JOB = "Read the purge Job's termination message (kubectl describe pod) and fix the cause; "
_NEXT = "the next scheduled run retries."
_NOTHING_DELETED = "Nothing of the failing batch was deleted; batches committed before it stay."

# Every value of status.lastPurge.reason, with the results it is recorded with.
PURGE_OUTCOMES: tuple[PurgeOutcome, ...] = (
    PurgeOutcome(
        "NotCompliant",
        ("Failed",),
        "The purge refused the store (or stopped mid-run) because it is not PolicyCompliant.",
        "Fix what PolicyCompliant says.",
    ),
    PurgeOutcome(
        "ClockSkew",
        ("Failed",),
        "A database server's clock and the purge job's differ by more than the allowed bound; "
        "nothing was deleted.",
        "Fix time synchronisation (NTP) on the database server or the node.",
    ),
    PurgeOutcome(
        "ColumnRefused",
        ("Failed",),
        "A table or column in spec.records is not a plain SQL identifier, is missing from the "
        "table, or the timestamp column is not a timestamp, datetime or date (or, in a row the "
        "purge would take or a data-subject request found, holds a value that names no instant: "
        "a MariaDB zero date or PostgreSQL -infinity; or a children's table's birth date names "
        "no day; or a key column holds NULL; nothing of that row is deleted).",
        "Fix spec.records (table, keyColumns, timestampColumn), give such a row a real date "
        f"or NULL, or give a row with a NULL key a key value; {_NEXT}",
    ),
    PurgeOutcome(
        "TableNotFound",
        ("Failed",),
        "A table of spec.records does not exist, or the purge login cannot see it.",
        f"Create the table or fix spec.records; {_NEXT}",
    ),
    PurgeOutcome(
        "ArchiveTableInvalid",
        ("Failed",),
        "The archive table lacks columns of the live table, has no unique key on exactly "
        "the key columns, its timestamp column would cut the live one's values down (a date "
        "for a timestamp, or fewer fractional-second digits: copies would be destroyed before "
        "their statute ends), (with records[].timeZone) its timestamp column is not of the "
        "live one's kind without a time zone, or (a data-subject request) a subject column is "
        "of another kind there than live (a uuid live, text archived), so an archived row of "
        "the subject could be missed; nothing was deleted.",
        "Give the archive table every live column and a PRIMARY KEY or UNIQUE constraint on "
        "the key columns; give its timestamp column the live one's type (at least its "
        "precision); with timeZone, give both timestamp columns the same type without a time "
        "zone; give each subject column the live column's type.",
    ),
    PurgeOutcome(
        "ArchiveUnavailable",
        ("Failed",),
        "The archive database could not be reached or refused the login; nothing was deleted "
        "from the live database.",
        f"Check the archive's address, credentials Secret and network path; {_NEXT}",
    ),
    PurgeOutcome(
        "ArchiveReadOnly",
        ("Failed",),
        "The archive database is read-only for the archive login; nothing was deleted from "
        "the live database.",
        "Make the archive writable for the archive login.",
    ),
    PurgeOutcome(
        "ArchiveVerifyFailed",
        ("Failed",),
        "Rows copied to the archive were not found there after the copy committed; none of "
        "them was deleted from the live database.",
        "Check the archive table's unique keys and triggers.",
    ),
    PurgeOutcome(
        "ArchiveKeyConflict",
        ("Failed",),
        "The archive holds a different row under the key of a live row due for archiving (a "
        "key reused, or a table restored from a backup); that row is no copy, so none of the "
        "batch was deleted from the live database.",
        "Move the archived rows under those keys aside, or give the live rows other keys; "
        "the message says how many rows and which table.",
    ),
    PurgeOutcome(
        "ArchiveClaimed",
        ("Failed",),
        "Another store claimed the archive table (in the archive's dataward_archive_claims): "
        "its copies are not this store's to destroy, so nothing was copied to, counted in or "
        "destroyed from it, and nothing was deleted from the live database.",
        "Give this store an archive table or database of its own; the message names the "
        "table and the store that owns it.",
    ),
    PurgeOutcome(
        "ArchiveClaimsMissing",
        ("Failed",),
        "The archive has no usable dataward_archive_claims table beside the archive table "
        "(missing, not readable by the archive login, or without its primary key), so the "
        "run cannot tell which store the archive table belongs to; nothing was copied or "
        "deleted.",
        "Create the table and grant SELECT, INSERT on it to the archive login; the message "
        "gives the statements.",
    ),
    PurgeOutcome(
        "ConnectionFailed",
        ("Failed",),
        "The live database could not be reached, or the connection was lost.",
        f"Check spec.database's address and the network path from the purge pod; {_NEXT}",
    ),
    PurgeOutcome(
        "AuthenticationFailed",
        ("Failed",),
        "The live database refused the purge login.",
        "Check the username and password in the credentials Secret.",
    ),
    PurgeOutcome(
        "PermissionDenied",
        ("Failed",),
        "The purge login lacks a privilege; the message names the privilege, the table and "
        "the GRANT that fixes it.",
        "Run the GRANT from the message, with <login> the credentials Secret's username.",
    ),
    PurgeOutcome(
        "IndexMissing",
        ("Failed",),
        "On MySQL, a table has no PRIMARY KEY or UNIQUE index on exactly the key columns, so "
        "deleting could wait on locks of rows it does not delete.",
        "Add the index, or point keyColumns at an existing unique key.",
    ),
    PurgeOutcome(
        "Timeout",
        ("Failed",),
        "A statement hit the statement timeout, or the archive waited past the lock timeout. "
        + _NOTHING_DELETED,
        f"Look for long transactions holding locks; lower spec.purge.batchSize; {_NEXT}",
    ),
    PurgeOutcome(
        "DatabaseError",
        ("Failed",),
        "The database reported an error (the message gives its code, never driver text). "
        + _NOTHING_DELETED,
        _READ_JOB + _NEXT,
    ),
    PurgeOutcome(
        "Configuration",
        ("Failed",),
        "The purge job is misconfigured: missing credentials, an unreadable store file or "
        "environment.",
        "Check the CronJob is the operator's (not edited) and the credentials Secret has keys "
        "username and password.",
    ),
    PurgeOutcome(
        "JobOutdated",
        ("Failed",),
        "The Job was made for the databases and credentials Secrets the store named then; the "
        "store names others now (spec.database or spec.archive.database was edited), so it "
        "logged in nowhere: its mounted Secrets are not the ones the store names. Nothing was "
        "read or deleted.",
        "Nothing for a purge: the operator renders the CronJob for the store as it is now and "
        "the next run uses it (kubectl dataward purge now, to run it at once). A data-subject "
        "request's Job: create the request again for the store as it is now.",
    ),
    PurgeOutcome(
        "StoreUnavailable",
        ("Failed",),
        "The purge job could not read its PersonalDataStore or PrivacyPolicy from the API, at "
        "the start or between batches (a run stopped then keeps what it did), so whether the "
        "store may be purged (a legal hold, its compliance) is unknown: the run failed.",
        "Check that the purge ServiceAccount's Role is in place (AccessRestricted) and the API "
        "server is reachable from the pod.",
    ),
    PurgeOutcome(
        "Internal",
        ("Failed",),
        "A bug in the purge job.",
        "Report it with the Job's termination message.",
    ),
    PurgeOutcome(
        "Suspended",
        ("Skipped", "Succeeded"),
        "spec.purge.suspend was true (a legal hold): the run was skipped, or stopped between "
        "batches when the hold was set during it.",
        "Set spec.purge.suspend to false when the hold ends.",
    ),
    PurgeOutcome(
        "LargePurgeNotAcknowledged",
        ("Held",),
        "The run would delete more than 10% (and more than 1,000 rows) of a table at once, as "
        "after a shortened retention or a lifted legal hold; it was held and deleted nothing.",
        "If the cut is intended, `kubectl dataward acknowledge STORE` sets the "
        "dataward.io/acknowledge-large-purge annotation to the token the hold names; the next "
        "run proceeds. The token releases cuts up to the held one's rows a table (and a tenth "
        "more): a larger cut later is held again, however long the annotation stays.",
    ),
    PurgeOutcome(
        "MaxRowsPerRun",
        ("Succeeded",),
        "The run stopped at spec.purge.maxRowsPerRun; expired rows remain for the next run.",
        "Nothing for one run; raise spec.purge.maxRowsPerRun if backlogs persist.",
    ),
    PurgeOutcome(
        "RetentionChanged",
        ("Succeeded",),
        "The retention changed during the run; it stopped so the next run uses the new one.",
        "Nothing.",
    ),
    PurgeOutcome(
        "StoreChanged",
        ("Succeeded",),
        "The store's spec changed during the run (its tables, columns, dryRun, ...), or the "
        "store was deleted and created again; it stopped so the next run uses the store as it "
        "is now.",
        "Nothing.",
    ),
    PurgeOutcome(
        "AcknowledgementWithdrawn",
        ("Succeeded",),
        "The dataward.io/acknowledge-large-purge annotation the run started with was removed or "
        "changed during it; it stopped, and a large cut is held again at the next run.",
        "Nothing, if the cut was not intended; else acknowledge again.",
    ),
    PurgeOutcome(
        "DryRun",
        ("Succeeded",),
        "A dry run: expired rows were counted, nothing was changed.",
        "Set spec.purge.dryRun to false to enforce retention.",
    ),
    PurgeOutcome(
        "JobFailed",
        ("Failed",),
        "The purge Job failed without writing a result record (the pod was killed, ran out of "
        "memory, hit its deadline or never started), or with one not in the purge's form (the "
        "message names its fields); or one of the Job's several pods left none, or is gone "
        "(the others' counts are kept, as what was done at least).",
        "Read the Job's events and the pod's logs (kubectl describe job).",
    ),
    PurgeOutcome(
        "NoResultRecord",
        ("Unknown",),
        "The purge Job finished without writing a result record, or with one whose fields "
        "(named in the message, never their values) are not in the purge's form: its result "
        "is not read, nor copied to status.lastPurge. A Job of several pods, each an attempt "
        "of the run, is this when one pod left no readable record or is gone: the others' "
        "counts are kept, as what was done at least, never their success alone.",
        "Read the Job's events and the pod's logs; check that the CronJob is the operator's "
        "and that nothing else runs in its pod.",
    ),
)

# A held or skipped run: PurgeSucceeded is True with reason Purge<result>.
_HELD_OR_SKIPPED: tuple[ReasonEntry, ...] = (
    _store(
        PURGE_SUCCEEDED,
        "PurgeHeld",
        "True",
        "The last purge was held without error and deleted nothing: it would have cut a large "
        "part of a table (status.lastPurge.reason LargePurgeNotAcknowledged).",
        "If the cut is intended: `kubectl dataward acknowledge STORE`; the next run proceeds.",
        attention=True,
    ),
    _store(
        PURGE_SUCCEEDED,
        "PurgeSkipped",
        "True",
        "The last purge was skipped without error (a legal hold: spec.purge.suspend).",
        "Set spec.purge.suspend to false when the hold ends.",
    ),
)


def _findings() -> tuple[ReasonEntry, ...]:
    return tuple(
        _store(POLICY_COMPLIANT, reason, "False", meaning, action)
        for reason, (meaning, action) in FINDINGS.items()
    )


def _failed_purges() -> tuple[ReasonEntry, ...]:
    """PurgeSucceeded=False for every lastPurge reason a failed (or unknown) run records."""
    return tuple(
        _store(PURGE_SUCCEEDED, o.reason, "False", o.meaning, o.action)
        for o in PURGE_OUTCOMES
        if set(o.results) & {"Failed", "Unknown"}
    )


# Any condition last written True, once the operator cannot check it (controller/staleness.py).
_UNCHECKED: dict[str, tuple[str, str]] = {
    STORE_CACHE_UNAVAILABLE: (
        "The operator has not been able to read the PersonalDataStores for longer than its "
        "grace period (their list or watch forbidden, or the API failing), so no store is "
        "reconciled: this condition was last True and is not checked now (the message says "
        "since when, why, and its last reason).",
        "Check the operator's log and that its ClusterRole still grants get, list and watch "
        "on personaldatastores. Once it can read them the store is judged again; only that "
        "makes it True again.",
    ),
    NAMESPACE_CACHE_UNAVAILABLE: (
        "The operator watches the namespaces it serves (every one, or a shard's, by namespace "
        "label) and has not been able to read them for longer than its grace period, so it "
        "does not know which are its own and reconciles none: this condition was last True "
        "and is not checked now (the message says since when, why, and its last reason).",
        "Check the operator's log and that its ClusterRole still grants list and watch on "
        "namespaces. Once it can read them the store is judged again; only that makes it "
        "True again.",
    ),
    NAMESPACE_NOT_SERVED: (
        "The store's namespace was this shard's and its labels no longer match the shard's "
        "namespace selector (relabelled), so this shard no longer checks the store: this "
        "condition was last True and is not vouched for until a shard whose selector matches "
        "the namespace judges it (the message says which namespace, since when, and its last "
        "reason).",
        "If the namespace was moved to another shard, that shard judges the store soon and "
        "this reason goes. If it stays, no shard's selector matches the namespace: fix its "
        "labels (or a shard's shard.namespaceSelector) so exactly one shard serves it.",
    ),
}


def _unchecked() -> tuple[ReasonEntry, ...]:
    return tuple(
        _store(type_, reason, "Unknown", meaning, action)
        for type_ in CONDITION_TYPES
        for reason, (meaning, action) in _UNCHECKED.items()
    )


# Any condition last True on an object whose status write the API server refused for what it
# says (controller/refused.py).
_REFUSED_MEANING = (
    "The API server refused the operator's last status write for what it says (the message "
    "gives the HTTP status: 400 malformed, 403 forbidden by RBAC or an admission webhook or "
    "policy, 413 too large, 422 a field the installed CRD or an admission policy refuses), so "
    "that pass's verdicts are not in status: this condition was last True and is not vouched "
    "for now."
)
_REFUSED_ACTION = (
    "Read the operator's log (it names the object and the HTTP status) and find what refuses "
    "the write: an admission webhook or ValidatingAdmissionPolicy on the status subresource, "
    "or CRDs older than the operator (apply this version's). The operator retries with "
    "backoff; only a status write the server takes makes the condition True again."
)


def _refused() -> tuple[ReasonEntry, ...]:
    types = {
        STORE_KIND: CONDITION_TYPES,
        POLICY_KIND: (READY, REVISION_IN_FORCE),
        REQUEST_KIND: tuple(REQUEST_TYPE_MEANINGS),
    }
    return tuple(
        ReasonEntry(kind, type_, STATUS_REFUSED, "Unknown", _REFUSED_MEANING, _REFUSED_ACTION)
        for kind, kinds_types in types.items()
        for type_ in kinds_types
    )


CATALOGUE: tuple[ReasonEntry, ...] = (
    *_LITERAL,
    *_findings(),
    *_HELD_OR_SKIPPED,
    *_failed_purges(),
    *_unchecked(),
    *_refused(),
)


def entries(kind: str | None = None) -> list[ReasonEntry]:
    """The catalogue in reference order: by kind, then condition type, then True first."""
    order = {"True": 0, "False": 1, "Unknown": 2}
    kinds = (STORE_KIND, POLICY_KIND, REQUEST_KIND)
    chosen = [e for e in CATALOGUE if kind is None or e.kind == kind]
    return sorted(
        chosen,
        key=lambda e: (
            kinds.index(e.kind),
            CONDITION_TYPES.index(e.type) if e.type in CONDITION_TYPES else len(CONDITION_TYPES),
            order[e.status],
        ),
    )


def lookup(reason: str, type_: str | None = None) -> list[ReasonEntry]:
    """Catalogue entries for `reason` (case-insensitive), optionally of one condition type."""
    wanted = reason.strip().lower()
    return [
        e for e in entries() if e.reason.lower() == wanted and (type_ is None or e.type == type_)
    ]


def purge_outcome(reason: str) -> PurgeOutcome | None:
    """The lastPurge reason `reason` (case-insensitive), or None."""
    wanted = reason.strip().lower()
    return next((o for o in PURGE_OUTCOMES if o.reason.lower() == wanted), None)


def all_reasons() -> list[str]:
    """Every reason name, conditions' and lastPurge's, sorted and unique."""
    return sorted({e.reason for e in CATALOGUE} | {o.reason for o in PURGE_OUTCOMES})


def explain(reason: str) -> str | None:
    """A readable explanation of `reason`, or None when it is not catalogued."""
    found = lookup(reason)
    outcome = purge_outcome(reason)
    if not found and outcome is None:
        return None
    blocks: list[str] = []
    recorded = (
        f"  Recorded:   as status.lastPurge.reason too (result {' or '.join(outcome.results)})\n"
        if outcome is not None
        else ""
    )
    for entry in found:
        where = "" if entry.kind == STORE_KIND else f" (on a {entry.kind})"
        event = " (an Event)" if entry.event_only else ""
        same = outcome is not None and entry.meaning == outcome.meaning
        blocks.append(
            f"{entry.reason}: {entry.type}={entry.status}{where}{event}\n"
            f"  Meaning:    {entry.meaning}\n"
            f"  What to do: {entry.action}\n" + (recorded if same else "")
        )
        if same:
            outcome = None
    if outcome is not None:
        blocks.append(
            f"{outcome.reason}: status.lastPurge.reason (result {' or '.join(outcome.results)})\n"
            f"  Meaning:    {outcome.meaning}\n"
            f"  What to do: {outcome.action}\n"
        )
    return "\n".join(blocks)


def close_matches(reason: str) -> list[str]:
    """Catalogued reasons that look like `reason`, for a 'did you mean' hint."""
    import difflib

    names = all_reasons()
    lowered = {n.lower(): n for n in names}
    hits = difflib.get_close_matches(reason.lower(), list(lowered), n=3, cutoff=0.6)
    return [lowered[h] for h in hits]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def _rows(items: Iterable[ReasonEntry]) -> list[str]:
    lines = ["| Status | Reason | Meaning | What to do |", "|---|---|---|---|"]
    for e in items:
        reason = f"`{e.reason}`" + (" (Event)" if e.event_only else "")
        lines.append(f"| {e.status} | {reason} | {_cell(e.meaning)} | {_cell(e.action)} |")
    return lines


def render_markdown() -> str:
    """docs/conditions.md: every condition type and reason, from this catalogue."""
    out = [
        "# Conditions and reasons",
        "",
        "<!-- Generated by `dataward reference conditions > docs/conditions.md` from",
        "     operator/dataward/checks/reasons.py; do not edit by hand. -->",
        "",
        "Every condition Dataward writes, with each reason it can carry: the status it comes "
        "with, what it means and what to do. `kubectl dataward explain REASON` prints one "
        "entry; `kubectl dataward status STORE` shows a store's conditions.",
        "",
        "## PersonalDataStore",
        "",
        "`Ready` is True when every other condition is True. "
        "A condition's message always says more than its reason: it names the objects "
        "involved.",
        "",
    ]
    for type_ in CONDITION_TYPES:
        items = [e for e in entries(STORE_KIND) if e.type == type_]
        out += [f"### {type_}", "", TYPE_MEANINGS[type_], "", *_rows(items), ""]
    out += [
        "## PrivacyPolicy",
        "",
        "### Ready",
        "",
        "True when the operator can read the policy.",
        "",
        *_rows(entries(POLICY_KIND)),
        "",
        "## DataSubjectRequest",
        "",
        "`Complete` is True when every store in scope answered; `status.stores` says how each did.",
        "",
    ]
    for type_ in (COMPLETE, DEADLINE_MET):
        items = [e for e in entries(REQUEST_KIND) if e.type == type_]
        out += [f"### {type_}", "", REQUEST_TYPE_MEANINGS[type_], "", *_rows(items), ""]
    out += [
        "## The reason of the last purge run",
        "",
        "`status.lastPurge.reason` says why a purge run stopped, failed or was held. A failed "
        "run's reason is also PurgeSucceeded's reason (above); a held or skipped run makes "
        "PurgeSucceeded `PurgeHeld` or `PurgeSkipped`; a run that succeeded but stopped early "
        "makes it `StoppedEarly`.",
        "",
        "| Reason | Result | Meaning | What to do |",
        "|---|---|---|---|",
    ]
    for o in PURGE_OUTCOMES:
        out.append(
            f"| `{o.reason}` | {', '.join(o.results)} | {_cell(o.meaning)} | {_cell(o.action)} |"
        )
    return "\n".join(out) + "\n"
