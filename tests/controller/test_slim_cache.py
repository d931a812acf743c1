"""What the caches keep (issue 11: bytes per store) loses nothing a check reads.

The caches drop metadata nothing reads and hold a compared body (a NetworkPolicy's spec, a
Role's rules, a binding's roleRef and subjects) once per distinct value, shared with the
namespace views' renders. Each test acts as a careless user or an attacker would: it edits a
field of a child in the API (as `kubectl edit` stores it, under a new resourceVersion), lets
the cache re-list, and expects the operator to see it; a slimming that dropped the field, or a
shared copy that let the edit leak into the render, fails them.
"""

from __future__ import annotations

import copy
import gc
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from dataward.controller import cache as cache_module
from dataward.controller.cache import Caches, _one_copy, slim, sweep_copies
from dataward.controller.kube import KubeError, dumps, loads
from dataward.controller.operator import CACHED_KINDS, SECRET_KINDS
from dataward.controller.reconcile import KEY_RING_CACHE
from dataward.render.names import names_for
from tests.controller.test_cache import ListingKube, _cluster, _reconciler, _relist
from tests.controller.test_compact_cache import _converged
from tests.controller.test_reconcile import KEY, T0, conditions
from tests.model import samples

NAMES = names_for(KEY[1])
# The children whose every rendered field must count (the CronJob's are in
# test_compact_cache.py, edit by edit).
CHILDREN = (
    ("NetworkPolicy", NAMES.network_policy),
    ("Role", NAMES.readers),
    ("RoleBinding", NAMES.readers),
    ("Role", NAMES.purge),
    ("RoleBinding", NAMES.purge),
    ("ServiceAccount", NAMES.purge),
)
# The owner reference's fields that prove a child is the store's (kind, uid, controller).
PROOF = ("kind", "uid", "controller")


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The paths of every scalar in `value` (JSON-like)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))
    else:
        yield path


def _other(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return f"{value}-edited"


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        obj = obj[step]
    obj[path[-1]] = value


def _rendered_leaves(kube: ListingKube, kind: str, name: str) -> list[tuple[Any, ...]]:
    """Every field the render sets in the live child (its body, labels, owner references)."""
    live = kube.objects[(kind, KEY[0], name)]
    paths = []
    for path in _leaves(live):
        if path[0] in ("apiVersion", "kind", "status"):
            continue
        if path[0] == "metadata" and path[1] not in ("labels", "ownerReferences"):
            continue
        paths.append(path)
    return paths


def test_every_rendered_field_of_a_cached_child_is_kept_so_an_edit_of_it_is_drift() -> None:
    kube, _ = _converged()
    cases = [(kind, name, path) for kind, name in CHILDREN
             for path in _rendered_leaves(kube, kind, name)]  # fmt: skip
    assert len(cases) > 40, "the children's fields were not found: the test proves nothing"
    missed, adopted = [], []
    for kind, name, path in cases:
        kube, caches = _converged()
        edited = copy.deepcopy(kube.objects[(kind, KEY[0], name)])
        _set(edited, path, _other(_get(edited, path)))
        kube._store(edited)
        _relist(caches)
        kube.calls.clear()
        _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=1))
        if path[:2] == ("metadata", "ownerReferences") and path[-1] in PROOF:
            # Without its controller reference to the store the object is no longer provably
            # the operator's: never written again (it never adopts what it did not make).
            if [c for c in kube.writes() if c[1:] == (kind, name)]:
                adopted.append((kind, name, path))
        elif ("apply", kind, name) not in kube.writes():
            missed.append((kind, name, path))
    assert missed == []
    assert adopted == []


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        obj = obj[step]
    return obj


def test_a_foreign_edit_of_a_binding_reaches_the_findings_not_the_neighbours_render() -> None:
    kube, caches = _converged()
    reconciler = _reconciler(kube, caches)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    view = reconciler._ns_memo[KEY[0]][1]
    rendered = next(r for r in view.rbac[0] if r["metadata"]["name"] == NAMES.readers
                    and r["kind"] == "RoleBinding")  # fmt: skip
    cached = caches.get("RoleBinding", KEY[0], NAMES.readers)
    assert cached is not None
    # Converged: the render and the cached child hold one copy of the subjects.
    assert cached["subjects"] is rendered["subjects"]
    original = copy.deepcopy(rendered["subjects"])
    # An attacker adds a subject to the store's readers binding; the operator may not write
    # it back (its apply fails), so the finding must come from the cached, edited copy.
    edited = copy.deepcopy(kube.objects[("RoleBinding", KEY[0], NAMES.readers)])
    edited["subjects"].append({"kind": "ServiceAccount", "name": "intruder",
                               "namespace": KEY[0]})  # fmt: skip
    kube._store(edited)
    _relist(caches)
    applied = kube.apply

    def refused(obj: Any, version: str | None = None) -> Any:
        if obj["kind"] == "RoleBinding":
            raise KubeError(403, "Forbidden", "apply RoleBinding")
        return applied(obj, version)

    kube.apply = refused  # type: ignore[method-assign]
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    cached = caches.get("RoleBinding", KEY[0], NAMES.readers)
    assert cached is not None
    assert {s["name"] for s in cached["subjects"]} >= {"intruder"}
    assert rendered["subjects"] == original  # the shared copy was not changed
    status, reason = conditions(kube)["AccessRestricted"]
    assert status != "True", (status, reason)


def test_an_edited_networkpolicy_is_drift_while_its_render_holds_the_cached_spec() -> None:
    kube, caches = _converged()
    reconciler = _reconciler(kube, caches)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    view = reconciler._ns_memo[KEY[0]][1]
    cached = caches.get("NetworkPolicy", KEY[0], NAMES.network_policy)
    assert cached is not None and cached["spec"] is view.policies[0]["spec"]
    edited = copy.deepcopy(kube.objects[("NetworkPolicy", KEY[0], NAMES.network_policy)])
    edited["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}}]
    kube._store(edited)
    _relist(caches)
    kube.calls.clear()
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert ("apply", "NetworkPolicy", NAMES.network_policy) in kube.writes()
    assert view.policies[0]["spec"]["ingress"][0]["from"] != [{"namespaceSelector": {}}]


def test_cached_rbac_objects_keep_no_uid_or_creation_time_and_stay_silent() -> None:
    kube, caches = _converged()
    for kind, name in CHILDREN:
        cached = caches.get(kind, KEY[0], name)
        assert cached is not None
        assert not {"uid", "creationTimestamp", "generation"} & set(cached["metadata"])
        assert cached["metadata"]["resourceVersion"]  # the precondition of an update
    kube.calls.clear()
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert kube.writes() == []
    # The stores and the purge CronJob keep theirs (ownership, missed runs).
    store = caches.get("PersonalDataStore", *KEY)
    cronjob = caches.get("CronJob", KEY[0], NAMES.purge_cronjob)
    assert store is not None and store["metadata"]["uid"]
    assert cronjob is not None and cronjob["metadata"]["uid"]


def test_the_secrets_metadata_cache_answers_presence_by_name_and_keeps_no_labels() -> None:
    kube = _cluster()
    secrets = Caches(kube, (*CACHED_KINDS, *SECRET_KINDS), (), 3600,  # type: ignore[arg-type]
                     lambda *_: None, lambda *_: None)  # fmt: skip
    _relist(secrets)
    _reconciler(kube, secrets).reconcile(KEY, now=T0)
    _relist(secrets)
    ring_name = next(n for (k, ns, n) in kube.objects if k == "Secret" and "keyring" in n)
    kept = secrets.get("Secret", KEY[0], ring_name)
    assert kept is not None and set(kept["metadata"]) <= {
        "name",
        "namespace",
        "resourceVersion",
        "deletionTimestamp",
    }  # a uid only on a Secret with an export's token (test_subject_export_proof.py)
    ring = secrets.get(KEY_RING_CACHE, KEY[0], ring_name)
    assert ring is not None and ring["data"] and ring["metadata"]["labels"]  # rings keep all
    assert secrets.exists("Secret", KEY[0], ring_name)
    assert not secrets.exists("Secret", KEY[0], "no-such-secret")
    # A credentials Secret deleted: the store's PurgeScheduled says so from the cache.
    credentials = [(k, ns, n) for (k, ns, n) in kube.objects
                   if k == "Secret" and "keyring" not in n]  # fmt: skip
    assert credentials
    for key in credentials:
        del kube.objects[key]
    _relist(secrets)
    _reconciler(kube, secrets).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["PurgeScheduled"][0] == "False"


def test_one_copy_never_confuses_unequal_values_whose_hashes_collide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cache_module, "hash", lambda _text: 7, raising=False)
    first = _one_copy({"a": "one"})
    second = _one_copy({"a": "two"})
    assert first == {"a": "one"} and second == {"a": "two"}
    assert _one_copy({"a": "one"}) is first


def test_one_copy_holds_equal_values_once_whatever_their_key_order_or_integers() -> None:
    """Keyed by orjson's sorted text; what orjson refuses (an integer past 64 bits) by the
    standard library's, never an error and never two unequal values as one."""
    first = _one_copy({"b": [1, {"d": 2, "c": 3}], "a": "x"})
    assert _one_copy({"a": "x", "b": [1, {"c": 3, "d": 2}]}) is first
    assert _one_copy({"a": "x", "b": [1, {"c": 3, "d": 4}]}) is not first
    big = _one_copy({"n": 2**70})
    assert big == {"n": 2**70} and _one_copy({"n": 2**70}) is big
    assert _one_copy({"n": 2**70 + 1}) == {"n": 2**70 + 1}
    assert _one_copy({"n": 1.0}) == {"n": 1.0} and _one_copy({"n": 1}) is not _one_copy({"n": True})


def test_equal_bodies_are_held_once_and_go_with_their_objects() -> None:
    def role(name: str, secret: str) -> dict[str, Any]:
        return {"kind": "Role", "metadata": {"name": name, "namespace": "crm"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"],
                           "resourceNames": [secret], "verbs": ["get"]}]}  # fmt: skip

    a, b = slim("Role", role("a", "creds")), slim("Role", role("b", "creds"))
    c = slim("Role", role("c", "other"))
    assert a["rules"] is b["rules"] and c["rules"] is not a["rules"]
    assert c["rules"][0]["resourceNames"] == ["other"]
    gc.collect()  # earlier tests' garbage holds copies until collected
    held = sweep_copies()
    del c
    gc.collect()
    assert sweep_copies() == held - 1  # c's rules went with it
    assert a["rules"] is b["rules"] and a["rules"][0]["resourceNames"] == ["creds"]
    del a
    assert sweep_copies() == held - 1  # b still holds them
    assert slim("Role", role("d", "creds"))["rules"] is b["rules"]


def test_the_copies_table_is_swept_as_it_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.collect()
    before = sweep_copies()
    monkeypatch.setattr(cache_module, "SWEEP_FLOOR", before + 10)
    monkeypatch.setattr(cache_module, "_SWEEP_AT", before + 10)
    kept = [_one_copy({"kept": i}) for i in range(5)]
    for i in range(200):
        _one_copy({"gone": i})  # held by nothing once returned
    # Swept when it reached its bound: what is left is at most the next bound's worth.
    assert len(cache_module._COPIES) <= 2 * (before + 10)
    assert sweep_copies() == before + len(kept)
    assert all(_one_copy({"kept": i}) is kept[i] for i in range(5))


def test_a_sweep_forgets_the_copies_a_forgotten_copy_held() -> None:
    odd = {"kind": "Role", "metadata": {"name": "odd", "namespace": "crm"},
           "rules": [{"apiGroups": ["odd.example"], "resources": ["things"],
                      "verbs": ["escalate"]}]}  # fmt: skip
    gc.collect()
    before = sweep_copies()
    kept = slim("Role", odd)
    assert sweep_copies() == before + 4  # the rules and three vocabulary lists
    del kept
    assert sweep_copies() == before


def test_network_policies_hold_their_ports_and_policy_types_once_and_keep_their_own_peers() -> None:
    def policy(name: str, app: str, port: int) -> dict[str, Any]:
        return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": "crm"},
                "spec": {"podSelector": {"matchLabels": {"app": app}},
                         "policyTypes": ["Ingress"],
                         "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": app}}}],
                                      "ports": [{"protocol": "TCP", "port": port}]}]}}  # fmt: skip

    a = slim("NetworkPolicy", policy("a", "x", 5432))
    b = slim("NetworkPolicy", policy("b", "y", 5432))
    c = slim("NetworkPolicy", policy("c", "z", 3306))
    assert a["spec"]["policyTypes"] is b["spec"]["policyTypes"] is c["spec"]["policyTypes"]
    assert a["spec"]["ingress"][0]["ports"] is b["spec"]["ingress"][0]["ports"]
    assert c["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 3306}]
    assert b["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == {"app": "y"}
    assert a["spec"] == policy("a", "x", 5432)["spec"]


def _stores_as_listed(*changes: tuple[str, str, str]) -> list[dict[str, Any]]:
    """Stores as a LIST answer decodes them (`kube.loads`): no key or string is interned,
    each equal key its own object or orjson's, as the API server sends them."""
    items = []
    for name, reason, secret in changes:
        store = copy.deepcopy(samples.STORE)
        store["metadata"].update(name=name, uid=f"uid-{name}", resourceVersion="7")
        store["spec"]["database"]["credentialsSecret"] = secret
        store["status"] = {"observedGeneration": 1, "conditions": [
            {"type": "Ready", "status": "True", "reason": "AllControlsInForce",
             "message": "Every control is in force.", "lastTransitionTime": "2026-01-10T08:00:00Z"},
            {"type": "NetworkIsolated", "status": "False", "reason": reason,
             "message": f"NetworkPolicy crm/{name} admits more.",
             "lastTransitionTime": "2026-01-10T08:00:00Z"},
        ]}  # fmt: skip
        items.append(store)
    listed: list[dict[str, Any]] = loads(dumps({"items": items}))["items"]
    return listed


def _not_interned(value: Any, path: str = "") -> list[str]:
    """Where `value` has a key, or a string `_shared` interns, that is not the interned one."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += [f"{path}.{key} (key)"] if sys.intern(key) is not key else []
            found += _not_interned(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _not_interned(item, f"{path}[{i}]")
    elif isinstance(value, str) and len(value) <= cache_module.SHARED_LENGTH:
        found += [path] if sys.intern(value) is not value else []
    return found


def test_listed_stores_hold_equal_parts_once_and_every_key_interned() -> None:
    """What a restart's LIST leaves held (issue 11): equal spec parts and conditions of two
    stores one object, and every key of what is held the interned string (a dict read by a
    literal key then finds it by identity; orjson's keys would be compared byte by byte)."""
    alpha, beta, gamma = _stores_as_listed(
        ("alpha", "Isolated", "creds"), ("beta", "Isolated", "creds"),
        ("gamma", "OtherPolicyAllowsIngress", "other"))  # fmt: skip
    assert sys.intern("credentialsSecret") is not next(
        k for k in alpha["spec"]["database"] if k == "credentialsSecret"
    )  # as decoded: not interned (else this test would prove nothing)
    one, two, three = (slim("PersonalDataStore", s) for s in (alpha, beta, gamma))
    for key in one["spec"]:
        if isinstance(one["spec"][key], dict | list) and one["spec"][key]:
            assert one["spec"][key] is two["spec"][key], key
    assert one["status"]["conditions"][0] is two["status"]["conditions"][0]
    assert one["status"]["conditions"][0] is three["status"]["conditions"][0]
    assert one["status"]["conditions"][1] is not two["status"]["conditions"][1]  # its name
    assert one["spec"]["database"] is not three["spec"]["database"]  # another Secret
    assert three["spec"]["database"]["credentialsSecret"] == "other"
    assert three["status"]["conditions"][1]["reason"] == "OtherPolicyAllowsIngress"
    for kept in (one, two, three):
        assert _not_interned(kept) == []
        assert kept["spec"] == samples.STORE["spec"] | {"database": kept["spec"]["database"]}


def test_stores_whose_parts_texts_collide_keep_each_its_own_interned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A held part is looked up before the listed one is built; a hit on an unequal value
    (its text's hash collides) is not taken: the store keeps its own, built as any other."""
    alpha, gamma = _stores_as_listed(("alpha", "Isolated", "creds"),
                                     ("gamma", "OtherPolicyAllowsIngress", "other"))  # fmt: skip
    monkeypatch.setattr(cache_module, "hash", lambda _text: 11, raising=False)
    one, three = slim("PersonalDataStore", alpha), slim("PersonalDataStore", gamma)
    assert three["spec"]["database"]["credentialsSecret"] == "other"
    assert one["spec"]["database"]["credentialsSecret"] == "creds"
    assert three["status"]["conditions"][1]["reason"] == "OtherPolicyAllowsIngress"
    assert [c["type"] for c in three["status"]["conditions"]] == ["Ready", "NetworkIsolated"]
    assert _not_interned(one) == [] and _not_interned(three) == []


def test_the_secrets_metadata_keeps_a_uid_only_with_an_exports_token() -> None:
    # An export Secret is proven the request's by its uid (status.exports): the cache must
    # keep it there, and only there (not for every ring and credentials Secret).
    from dataward.controller.cache import metadata_only
    from dataward.render.subject_jobs import EXPORT_TOKEN_ANNOTATION

    meta = {"name": "e", "namespace": "privacy", "uid": "u-1", "resourceVersion": "7"}
    export = {"metadata": {**meta, "annotations": {EXPORT_TOKEN_ANNOTATION: "t", "x": "y"}}}
    other = {"metadata": {**meta, "annotations": {"x": "y"}}}
    assert metadata_only(export)["metadata"]["uid"] == "u-1"
    assert metadata_only(export)["metadata"]["annotations"] == {EXPORT_TOKEN_ANNOTATION: "t"}
    assert "uid" not in metadata_only(other)["metadata"]
    assert "uid" not in metadata_only({"metadata": meta})["metadata"]
