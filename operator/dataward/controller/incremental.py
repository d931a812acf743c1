"""A namespace's RBAC snapshot and declared bindings, updated per changed object (issue 11).

A converging store writes its own Role, RoleBindings, NetworkPolicy and status; each write
changes its namespace's caches. Rebuilding the namespace's RBAC snapshot, the neighbours'
declared bindings, the Secrets they read and the untrusted bindings from the whole namespace
on each change made a converging reconcile O(n). Here each is kept per namespace and updated
for the objects the cache journal says changed since the last update (by name, then by
resourceVersion); what is built per update is copies made by C code (dict and tuple copies
of the previous result), so that readers of the previous result never see it change.

Every function answers exactly what a from-scratch build answers (tests/controller/
test_incremental.py compares them over random histories); when the journal does not know
what changed (forgotten: too many changes since), or the namespace's stores changed, they
build from scratch.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dataward.checks.access import (
    SecretReaders,
    Untrusted,
    binding_reads,
    declared_by_store,
    declared_for,
    scan_untrusted,
)
from dataward.checks.observed import (
    ObservedBinding,
    ObservedRole,
    RbacSnapshot,
    TrustedSubjects,
    rbac_scope,
)
from dataward.controller.kube import KubeError

RbacKey = tuple[str, str | None, str]
# The kinds a namespace's snapshot holds, in the order a scan lists them.
BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")
ROLE_KINDS = ("Role", "ClusterRole")


class Journal(Protocol):
    """What `RbacState` needs of the caches (`Caches` has it)."""

    def generation(self, kind: str, namespace: str | None) -> tuple[int, bool]: ...

    def changed_since(
        self, kind: str, namespace: str | None, generation: int
    ) -> set[str] | None: ...

    def get(self, kind: str, namespace: str | None, name: str) -> Any: ...

    def list(self, kind: str, namespace: str | None = None) -> Any: ...


@dataclass
class RbacState:
    """One namespace's RBAC objects, parsed, per kind: (kind, namespace, name) -> parsed, in
    the cache's order, and their resourceVersions."""

    namespace: str
    generations: dict[str, int] = field(default_factory=dict)
    objects: dict[str, dict[RbacKey, Any]] = field(default_factory=dict)
    versions: dict[RbacKey, str | None] = field(default_factory=dict)
    snapshot: RbacSnapshot | None = None
    # The snapshot `changed` is counted from, weakly: the declared state made for it holds
    # it while it can use `changed` (`Reconciler._declared`); held strongly, the superseded
    # snapshot's tuples and indexes stayed with every namespace (about 0.9 KiB a store).
    previous: weakref.ref[RbacSnapshot] | None = None
    # The keys changed by the last update that made `snapshot`; None: everything.
    changed: set[RbacKey] | None = None


# Cluster-scoped objects parsed, by the identity of the cached object: id -> (object,
# parsed). Every namespace's snapshot holds the cluster's ClusterRoles and
# ClusterRoleBindings; one cache holds them, so each namespace reads the very same objects,
# which are parsed once here rather than once per namespace (issue 11: a restart parsed
# the 127 of a fresh control plane again for each of 100 namespaces). The entry holds its
# object, so its id names no other while it is here; a new version is a new object. Bounded:
# emptied when it outgrows CLUSTER_PARSED_BOUND (a cluster's RBAC is a few hundred objects).
_CLUSTER_PARSED: dict[int, tuple[Mapping[str, Any], Any]] = {}
CLUSTER_PARSED_BOUND = 4096


def _parse(kind: str, obj: Mapping[str, Any]) -> Any:
    """`obj` (a cached RBAC object of `kind`) parsed; a cluster-scoped one once for every
    namespace (`_CLUSTER_PARSED`)."""
    if rbac_scope(kind, "a namespace") is not None:  # a Role or RoleBinding
        return _parse_afresh(kind, obj)
    found = _CLUSTER_PARSED.get(id(obj))
    if found is not None and found[0] is obj:
        return found[1]
    parsed = _parse_afresh(kind, obj)
    if len(_CLUSTER_PARSED) >= CLUSTER_PARSED_BOUND:
        _CLUSTER_PARSED.clear()
    _CLUSTER_PARSED[id(obj)] = (obj, parsed)
    return parsed


def _parse_afresh(kind: str, obj: Mapping[str, Any]) -> Any:
    # List items carry no kind; cached objects are shared, so set it on a copy.
    typed = {**obj, "kind": obj.get("kind") or kind}
    return ObservedBinding.from_api(typed) if "Binding" in kind else ObservedRole.from_api(typed)


def update_rbac(state: RbacState, caches: Journal) -> RbacSnapshot | None:
    """The namespace's snapshot after the changes since the last call; None when a cache is
    not synced or failed (Unknown). The same object while nothing changed."""
    namespace = state.namespace
    kinds = (*BINDING_KINDS, *ROLE_KINDS)
    try:
        now = {kind: caches.generation(kind, rbac_scope(kind, namespace)) for kind in kinds}
    except KubeError:
        return None
    if not all(synced for _, synced in now.values()):
        return None
    if state.snapshot is not None and all(
        state.generations.get(kind) == generation for kind, (generation, _) in now.items()
    ):
        return state.snapshot
    changed: set[RbacKey] | None = set() if state.snapshot is not None else None
    objects = dict(state.objects)
    versions = dict(state.versions)
    try:
        for kind, (generation, _) in now.items():
            scope = rbac_scope(kind, namespace)
            before = state.generations.get(kind)
            if before == generation:
                continue
            names = None if before is None else caches.changed_since(kind, scope, before)
            if names is None:
                # Not known what changed: rebuild this kind in the cache's order.
                held: dict[RbacKey, Any] = {}
                old = objects.get(kind, {})
                for obj in caches.list(kind, scope):
                    key = (kind, scope, str(obj["metadata"]["name"]))
                    version = obj["metadata"].get("resourceVersion")
                    if key in old and version is not None and versions.get(key) == version:
                        held[key] = old[key]
                    else:
                        held[key] = _parse(kind, obj)
                        versions[key] = version
                for key in old:
                    if key not in held:
                        versions.pop(key, None)
                changed = None
            else:
                held = dict(objects.get(kind, {}))
                for name in names:
                    key = (kind, scope, name)
                    obj = caches.get(kind, scope, name)
                    if obj is None:
                        held.pop(key, None)
                        versions.pop(key, None)
                    else:
                        version = obj["metadata"].get("resourceVersion")
                        if key not in held or version is None or versions.get(key) != version:
                            held[key] = _parse(kind, obj)
                            versions[key] = version
                    if changed is not None:
                        changed.add(key)
            objects[kind] = held
    except KubeError:
        return None
    # The indexes without a scan (keys are unique per kind: first wins is every wins), and
    # the tuples from them (copies made by C code).
    by_binding: dict[RbacKey, Any] = {}
    for kind in BINDING_KINDS:
        by_binding.update(objects.get(kind, {}))
    by_role: dict[RbacKey, Any] = {}
    for kind in ROLE_KINDS:
        by_role.update(objects.get(kind, {}))
    snapshot = RbacSnapshot(tuple(by_binding.values()), tuple(by_role.values()),
                            versions=versions)  # fmt: skip
    snapshot.__dict__["_bindings_by_key"] = by_binding
    snapshot.__dict__["_roles_by_key"] = by_role
    state.previous = None if state.snapshot is None else weakref.ref(state.snapshot)
    state.snapshot = snapshot
    state.objects = objects
    state.versions = versions
    state.generations = {kind: generation for kind, (generation, _) in now.items()}
    state.changed = changed
    return snapshot


@dataclass
class DeclaredState:
    """A namespace's declared bindings (name -> store label), the Secrets they read and its
    untrusted bindings, for one view of its stores and one RBAC snapshot."""

    view: Any  # NamespaceStores
    rbac: RbacSnapshot
    trusted: TrustedSubjects
    label_of: dict[str, frozenset[str]]  # a rendered object's name -> its store labels
    parts: dict[str, dict[str, str]]  # store label -> its declared bindings
    declared: dict[str, str]
    reads: dict[str, tuple[bool, frozenset[str]]]  # label -> (reads every Secret, names)
    secret_labels: dict[str, frozenset[str]]
    readers: SecretReaders
    untrusted: dict[RbacKey, Untrusted]  # in scope, with untrusted subjects
    placed: dict[RbacKey, str | None]  # untrusted binding -> its declared label (or None)
    undeclared: dict[RbacKey, Untrusted]
    by_label: dict[str, dict[RbacKey, Untrusted]]
    found: tuple[Mapping[str, str], tuple[Untrusted, ...], dict[str, tuple[Untrusted, ...]]]


def _reads_of(
    namespace: str, part: Mapping[str, str], rbac: RbacSnapshot
) -> tuple[bool, frozenset[str]]:
    """What one label's declared bindings read, as `SecretReaders.of` counts it."""
    every = False
    names: set[str] = set()
    for name in part:
        all_secrets, secrets = binding_reads(namespace, name, rbac)
        every = every or all_secrets
        names.update(secrets)
    return every, frozenset(names)


def _untrusted_of(namespace: str, binding: Any, trusted: TrustedSubjects) -> Untrusted | None:
    found = scan_untrusted(namespace, (binding,), trusted)
    return found[0] if found else None


def declare(
    namespace: str,
    view: Any,
    rbac: RbacSnapshot,
    trusted: TrustedSubjects,
    old: DeclaredState | None = None,
    changed: set[RbacKey] | None = None,
) -> DeclaredState:
    """The declared state for `view` and `rbac`: from `old` when it was made for the snapshot
    `rbac` differs from by the keys `changed` (an empty set: the same snapshot), for the
    labels whose rendered objects differ between `old`'s view and `view` and those the
    changed keys name; else from scratch. Also leaves the untrusted bindings in `rbac.memo`
    as `access._untrusted_bindings` keeps them (so no store scans them).

    While stores arrive (1,000 applied at once take kubectl ~25 s), nearly every converging
    reconcile sees a view with a store more than the last one: built from scratch, each was
    O(n) in the namespace's stores (in-process, 38 of 55 ms CPU a reconcile with 600
    stores arriving; issue 11)."""
    if old is None or changed is None or old.trusted != trusted:
        state = _declare_all(namespace, view, rbac, trusted)
    else:
        moved = set() if old.view is view else changed_groups(old.view.groups, view.groups)
        state = _declare_changes(namespace, view, rbac, old, changed, moved)
    rbac.memo[("untrusted", namespace, trusted)] = state.found
    return state


def changed_groups(
    before: Mapping[str, Sequence[Mapping[str, Any]]],
    after: Mapping[str, Sequence[Mapping[str, Any]]],
) -> set[str]:
    """The labels whose rendered objects differ between two views' groups (a view keeps the
    very render objects of every store it holds unchanged: compared by identity)."""
    changed = {label for label in before if label not in after}
    for label, items in after.items():
        held = before.get(label)
        if held is items:
            continue  # an updated view keeps the unchanged labels' very lists
        if held is None or len(held) != len(items) or any(
            a is not b for a, b in zip(held, items, strict=True)
        ):
            changed.add(label)
    return changed


def _one_set(labels: set[str], sets: dict[frozenset[str], frozenset[str]]) -> frozenset[str]:
    """`labels` frozen, as the equal set already in `sets` when there is one: most names and
    Secrets belong to one store, whose label set would otherwise be held once per name."""
    frozen = frozenset(labels)
    return sets.setdefault(frozen, frozen)


def _held_once(labels: set[str], label_of: Mapping[str, frozenset[str]], view: Any
               ) -> frozenset[str]:
    """`labels` frozen, as the equal set its store's rendered objects hold (`label_of`) when
    it is one store's: a store's Secrets and objects share one set, as `_one_set` shares
    them in a build from scratch (a set a Secret was about 200 bytes a store, held by an
    operator that converged the stores and not by a restarted one: issue 11)."""
    frozen = frozenset(labels)
    if len(frozen) == 1:
        (label,) = frozen
        for item in view.groups.get(label, ()):
            held = label_of.get(item["metadata"]["name"])
            if held == frozen:
                return held
    return frozen


def _declare_all(
    namespace: str, view: Any, rbac: RbacSnapshot, trusted: TrustedSubjects
) -> DeclaredState:
    label_of: dict[str, set[str]] = {}
    parts: dict[str, dict[str, str]] = {}
    declared: dict[str, str] = {}
    for label, items in view.groups.items():
        for item in items:
            label_of.setdefault(item["metadata"]["name"], set()).add(label)
        parts[label] = declared_by_store(namespace, label, items, rbac)
        declared.update(parts[label])
    reads = {label: _reads_of(namespace, part, rbac) for label, part in parts.items()}
    secret_sets: dict[str, set[str]] = {}
    for label, (_, names) in reads.items():
        for secret in names:
            secret_sets.setdefault(secret, set()).add(label)
    sets: dict[frozenset[str], frozenset[str]] = {}  # equal label sets held once (issue 11)
    secret_labels = {secret: _one_set(labels, sets) for secret, labels in secret_sets.items()}
    untrusted: dict[RbacKey, Untrusted] = {
        (b.kind, b.namespace, b.name): (b, subjects)
        for b, subjects in scan_untrusted(namespace, rbac.bindings, trusted)
    }
    placed: dict[RbacKey, str | None] = {}
    undeclared: dict[RbacKey, Untrusted] = {}
    by_label: dict[str, dict[RbacKey, Untrusted]] = {}
    for key, entry in untrusted.items():
        label = declared_for(entry[0], namespace, declared)
        placed[key] = label
        if label is None:
            undeclared[key] = entry
        else:
            by_label.setdefault(label, {})[key] = entry
    return DeclaredState(
        view=view,
        rbac=rbac,
        trusted=trusted,
        label_of={name: _one_set(labels, sets) for name, labels in label_of.items()},
        parts=parts,
        declared=declared,
        reads=reads,
        secret_labels=secret_labels,
        readers=SecretReaders(
            frozenset(label for label, (every, _) in reads.items() if every), secret_labels
        ),
        untrusted=untrusted,
        placed=placed,
        undeclared=undeclared,
        by_label=by_label,
        found=(
            declared,
            tuple(undeclared.values()),
            {label: tuple(entries.values()) for label, entries in by_label.items()},
        ),
    )


def _declare_changes(
    namespace: str,
    view: Any,
    rbac: RbacSnapshot,
    old: DeclaredState,
    changed: set[RbacKey],
    moved: set[str],
) -> DeclaredState:
    """`old` updated for the RBAC keys `changed` and the labels `moved` (their rendered
    objects differ between `old.view` and `view`)."""
    label_of = old.label_of
    if moved:
        label_of = dict(label_of)
        for label in moved:
            alone = frozenset((label,))
            for item in old.view.groups.get(label, ()):
                name = item["metadata"]["name"]
                labels_of = label_of.get(name, frozenset())
                if label in labels_of:
                    if len(labels_of) == 1:
                        del label_of[name]
                    else:
                        label_of[name] = labels_of - alone
            for item in view.groups.get(label, ()):
                name = item["metadata"]["name"]
                labels_of = label_of.get(name, frozenset())
                label_of[name] = alone if labels_of <= alone else labels_of | alone
    # The labels whose rendered objects changed, and those whose objects' observed
    # counterparts did.
    labels = set(moved)
    labels.update(
        label
        for kind, scope, name in changed
        if scope == namespace
        for label in label_of.get(name, ())
    )
    parts = dict(old.parts)
    declared = dict(old.declared)
    reads = dict(old.reads)
    secret_labels = dict(old.secret_labels)
    renamed: set[str] = set()  # names whose declared label changed
    for label in labels:
        part = declared_by_store(namespace, label, view.groups.get(label, ()), rbac)
        before = parts.get(label, {})
        for name in before:
            if name not in part and declared.get(name) == label:
                del declared[name]
                renamed.add(name)
        for name in part:
            if declared.get(name) != label:
                declared[name] = label
                renamed.add(name)
        was = reads.get(label, (False, frozenset()))
        now = _reads_of(namespace, part, rbac)
        if label in view.groups:
            parts[label] = part
            reads[label] = now
        else:  # no store of this label any more
            parts.pop(label, None)
            reads.pop(label, None)
        for secret in was[1] ^ now[1]:
            held = set(secret_labels.get(secret, ()))
            if secret in now[1]:
                held.add(label)
            else:
                held.discard(label)
            if held:
                secret_labels[secret] = _held_once(held, label_of, view)
            else:
                secret_labels.pop(secret, None)
    every = old.readers.every
    if any(reads.get(label, (False,))[0] != (label in every) for label in labels):
        every = frozenset(label for label, (reads_every, _) in reads.items() if reads_every)
    readers = (
        old.readers
        if not labels
        else SecretReaders(every, secret_labels)
    )
    # The untrusted bindings: those changed, and those whose declared label changed.
    keys = {key for key in changed if "Binding" in key[0]}
    for name in renamed:
        keys.add(("RoleBinding", namespace, name))
        keys.add(("ClusterRoleBinding", None, name))
    untrusted = dict(old.untrusted)
    placed = dict(old.placed)
    undeclared = dict(old.undeclared)
    by_label = dict(old.by_label)
    touched: set[str] = set()
    for key in keys:
        if key in placed:
            was_label = placed.pop(key)
            if was_label is None:
                undeclared.pop(key, None)
            else:
                inner = dict(by_label.get(was_label, {}))
                inner.pop(key, None)
                by_label[was_label] = inner
                touched.add(was_label)
        untrusted.pop(key, None)
        binding = rbac.binding(key[0], key[1], key[2])
        entry = None if binding is None else _untrusted_of(namespace, binding, old.trusted)
        if entry is None:
            continue
        untrusted[key] = entry
        now_label = declared_for(entry[0], namespace, declared)
        placed[key] = now_label
        if now_label is None:
            undeclared[key] = entry
        else:
            inner = dict(by_label.get(now_label, {}))
            inner[key] = entry
            by_label[now_label] = inner
            touched.add(now_label)
    grouped = dict(old.found[2])
    for label in touched:
        if by_label.get(label):
            grouped[label] = tuple(by_label[label].values())
        else:
            by_label.pop(label, None)
            grouped.pop(label, None)
    return DeclaredState(
        view=view,
        rbac=rbac,
        trusted=old.trusted,
        label_of=label_of,
        parts=parts,
        declared=declared,
        reads=reads,
        secret_labels=secret_labels,
        readers=readers,
        untrusted=untrusted,
        placed=placed,
        undeclared=undeclared,
        by_label=by_label,
        found=(declared, tuple(undeclared.values()), grouped),
    )
