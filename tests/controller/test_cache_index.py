"""The caches' label and podSelector indexes (issue 11) against a brute-force scan.

A reconcile asks the NetworkPolicy cache only for the policies that may select its workload
pods, and the other caches for objects by label, from indexes kept in step with the watch.
An index that missed a policy would call a store isolated while a foreign policy admits
more; one left stale by a relist or a delete would keep a gone object. Here the indexed
answers are compared with a plain scan of the objects a model of the watch holds (the oracle
is written here, independent of the operator's selector code), over random selectors, pods,
policies and sequences of ADDED/MODIFIED/DELETED/BOOKMARK events, relists and own writes.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataward.controller.cache import LABEL_INDEXED, CachedKind, Informer
from dataward.controller.index import LabelIndex
from dataward.controller.kube import Kube, KubeError
from tests.controller.test_cache import ListingKube, _caches, _reconciler, _relist
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster
from tests.model import samples

KEYS = ["app", "tier", "team"]
VALUES = ["a", "b", "c"]
NAMESPACES = ["n1", "n2"]
NAMES = ["p0", "p1", "p2", "p3", "p4", "p5"]


class ScriptedKube:
    """Answers an informer's LIST with whatever the test says the API holds now."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.version = 0

    def _call(self, method: str, path: str, **_: Any) -> Any:
        # As the API's: at or after the version of every object it returns, and of every
        # LIST before (a deletion since is at a later version).
        versions = [int(o["metadata"]["resourceVersion"]) for o in self.items]
        self.version = max([self.version, *versions])
        return {"metadata": {"resourceVersion": str(self.version)}, "items": self.items}


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """The oracle: a label selector as the Kubernetes API defines it."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for req in selector.get("matchExpressions") or []:
        key, op, values = req["key"], req["operator"], req.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


labels_st = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
expression_st = st.fixed_dictionaries(
    {
        "key": st.sampled_from(KEYS),
        "operator": st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]),
        "values": st.lists(st.sampled_from(VALUES), min_size=1, max_size=2),
    }
)
selector_st = st.one_of(
    st.just({}),  # every pod
    st.fixed_dictionaries({"matchLabels": labels_st}),
    st.fixed_dictionaries({"matchExpressions": st.lists(expression_st, max_size=2)}),
    st.fixed_dictionaries(
        {"matchLabels": labels_st, "matchExpressions": st.lists(expression_st, max_size=2)}
    ),
)
policy_st = st.fixed_dictionaries(
    {
        "namespace": st.sampled_from(NAMESPACES),
        "name": st.sampled_from(NAMES),
        "selector": st.one_of(selector_st, st.none()),  # None: no podSelector at all
        "labels": labels_st,
    }
)
step_st = st.one_of(
    st.tuples(st.sampled_from(["ADDED", "MODIFIED", "write"]), policy_st),
    st.tuples(st.just("DELETED"), policy_st),
    st.tuples(st.just("BOOKMARK"), st.none()),
    st.tuples(st.just("relist"), st.lists(policy_st, max_size=8)),
)


def _object(raw: Mapping[str, Any], version: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"policyTypes": ["Ingress"]}
    if raw["selector"] is not None:
        spec["podSelector"] = copy.deepcopy(raw["selector"])
    return {
        "kind": "NetworkPolicy",
        "metadata": {
            "name": raw["name"],
            "namespace": raw["namespace"],
            "labels": dict(raw["labels"]),
            "resourceVersion": str(version),
        },
        "spec": spec,
    }


def _informer(kube: ScriptedKube, labels: bool = False) -> Informer:
    """A NetworkPolicy cache (podSelector index); `labels`: with a label index as well, as
    the kinds read by label (`LABEL_INDEXED`) keep, so both indexes are checked together."""
    informer = Informer(
        cast(Kube, kube), CachedKind("NetworkPolicy"), None, 60, lambda *_: None, lambda *_: None
    )
    if labels:
        informer.index = LabelIndex(selectors=True, labels=True)
    return informer


def _feed(informer: Informer, events: list[dict[str, Any]]) -> None:
    def stream(timeout: int) -> Iterator[dict[str, Any]]:
        yield from events

    informer._stream = stream  # type: ignore[method-assign]
    assert informer._watch(1, threading.Event()).status is None  # every event applied


def _check(
    informer: Informer,
    model: dict[str, dict[str, dict[str, Any]]],
    pods: list[dict[str, str]],
    wanted: dict[str, str],
) -> None:
    for namespace in NAMESPACES:
        held = list(model.get(namespace, {}).values())
        assert informer.items(namespace) == held
        selecting = [
            o["metadata"]["name"]
            for o in held
            if any(matches(o["spec"].get("podSelector") or {}, pod) for pod in pods)
        ]
        candidates = informer.selecting(namespace, pods)
        # Every policy that selects a pod is offered, in the cache's order, and filtering the
        # candidates gives exactly the scan's answer.
        assert [
            o["metadata"]["name"]
            for o in candidates
            if any(matches(o["spec"].get("podSelector") or {}, pod) for pod in pods)
        ] == selecting
        assert all(o in held for o in candidates)
        # A pod may carry keys its label set does not name: a policy that selects one of the
        # pods with its own values for those keys added is offered too.
        offered = {o["metadata"]["name"] for o in candidates}
        for o in held:
            selector = o["spec"].get("podSelector") or {}
            match = selector.get("matchLabels") or {}
            for pod in pods:
                extended = {**{k: v for k, v in match.items() if k not in pod}, **pod}
                if matches(selector, extended):
                    assert o["metadata"]["name"] in offered, (o, pod)
        labelled = [
            o["metadata"]["name"]
            for o in held
            if all(o["metadata"]["labels"].get(k) == v for k, v in wanted.items())
        ]
        assert [o["metadata"]["name"] for o in informer.labelled(namespace, wanted)] == labelled


@pytest.mark.parametrize("labels", [True, False], ids=["label index", "label scan"])
@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(step_st, max_size=25),
    st.lists(labels_st, min_size=1, max_size=3),
    labels_st,
)
def test_indexed_answers_equal_a_scan_through_any_sequence_of_events(
    labels: bool, steps: list[tuple[str, Any]], pods: list[dict[str, str]], wanted: dict[str, str]
) -> None:
    kube = ScriptedKube()
    informer = _informer(kube, labels)
    informer._relist()
    model: dict[str, dict[str, dict[str, Any]]] = {}
    version = 1
    for kind, raw in steps:
        version += 1
        if kind == "relist":
            fresh: dict[tuple[str, str], dict[str, Any]] = {}
            for item in raw:
                fresh[(item["namespace"], item["name"])] = _object(item, version)
            kube.items = list(fresh.values())
            kube.version = version  # the store's revision now: every change before is in it
            informer._relist()
            # Merged into what is held: what stays keeps its place, what is new comes last.
            merged: dict[str, dict[str, dict[str, Any]]] = {}
            for namespace, objs in model.items():
                for name in objs:
                    if (namespace, name) in fresh:
                        merged.setdefault(namespace, {})[name] = fresh[(namespace, name)]
            for (namespace, name), obj in fresh.items():
                merged.setdefault(namespace, {})[name] = obj
            model = merged
        elif kind == "BOOKMARK":
            _feed(informer, [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion":
                                                                           str(version)}}}])
        elif kind == "DELETED":
            obj = _object(raw, version)
            _feed(informer, [{"type": "DELETED", "object": obj}])
            model.get(raw["namespace"], {}).pop(raw["name"], None)
        else:
            obj = _object(raw, version)
            if kind == "write":
                informer.store_written(obj)
            else:
                _feed(informer, [{"type": kind, "object": obj}])
            model.setdefault(raw["namespace"], {})[raw["name"]] = obj
        _check(informer, model, pods, wanted)


def _policy(name: str, selector: Mapping[str, Any], version: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "crm", "resourceVersion": str(version),
                     "labels": {"team": "x"}},
        "spec": {"podSelector": dict(selector), "ingress": [{}]},
    }  # fmt: skip


def test_a_relist_drops_a_policy_deleted_while_the_watch_was_down() -> None:
    kube = ScriptedKube()
    kube.items = [_policy("wide", {"matchLabels": {"app": "db"}}, 1)]
    informer = _informer(kube)
    informer._relist()
    assert [o["metadata"]["name"] for o in informer.selecting("crm", [{"app": "db"}])] == ["wide"]
    kube.items = []
    informer._relist()
    assert informer.selecting("crm", [{"app": "db"}]) == []
    assert informer.labelled("crm", {"team": "x"}) == []


def test_a_policy_whose_selector_changes_moves_to_the_pods_it_now_selects() -> None:
    informer = _informer(ScriptedKube())
    informer._relist()
    _feed(informer, [{"type": "ADDED", "object": _policy("p", {"matchLabels": {"app": "a"}}, 2)}])
    _feed(informer, [{"type": "MODIFIED", "object": _policy("p", {"matchLabels": {"app": "b"}},
                                                              3)}])  # fmt: skip
    assert informer.selecting("crm", [{"app": "a"}]) == []
    assert [o["metadata"]["name"] for o in informer.selecting("crm", [{"app": "b"}])] == ["p"]
    # Now it selects every pod: it is offered for any.
    _feed(informer, [{"type": "MODIFIED", "object": _policy("p", {}, 4)}])
    assert [o["metadata"]["name"] for o in informer.selecting("crm", [{"x": "y"}])] == ["p"]
    _feed(informer, [{"type": "DELETED", "object": _policy("p", {}, 5)}])
    assert informer.selecting("crm", [{"x": "y"}]) == []


def test_an_index_of_a_cache_that_failed_is_unknown_not_empty() -> None:
    kube = ScriptedKube()
    kube.items = [_policy("wide", {}, 1)]
    informer = _informer(kube)
    with pytest.raises(KubeError):
        informer.selecting("crm", [{"app": "db"}])  # never listed
    informer._relist()
    informer._fail("HTTP 403 Forbidden")
    with pytest.raises(KubeError):
        informer.selecting("crm", [{"app": "db"}])
    with pytest.raises(KubeError):
        informer.labelled("crm", {"team": "x"})


def _isolation_with_foreign_policy(
    pod_selector: dict[str, Any], workload: dict[str, Any] | None = None
) -> tuple[str, str]:
    """The sample store (its workload selected by `workload`, when given) reconciled to
    Isolated through the caches; then a foreign policy opening ingress to the pods of
    `pod_selector` appears: NetworkIsolated's (status, reason) after the next reconcile."""
    store = copy.deepcopy(samples.STORE)
    if workload is not None:
        store["spec"]["workload"]["podSelector"] = workload
    kube = sample_cluster(ListingKube(), store=store)
    caches = _caches(kube)
    _relist(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    _relist(caches)
    assert conditions(kube)["NetworkIsolated"] == ("True", "Isolated")
    kube._store({
        "kind": "NetworkPolicy",
        "metadata": {"name": "foreign-open", "namespace": "crm"},
        "spec": {"podSelector": pod_selector, "ingress": [{}], "policyTypes": ["Ingress"]},
    })  # fmt: skip
    _relist(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=1))
    return conditions(kube)["NetworkIsolated"]


@pytest.mark.parametrize(
    "selector",
    [
        {},  # every pod of the namespace
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["crm-postgres"]}]},
        {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
        {"matchLabels": {"app": "crm-postgres"}},
    ],
)
def test_a_foreign_policy_selecting_the_pods_without_matchlabels_still_breaks_isolation(
    selector: dict[str, Any],
) -> None:
    assert _isolation_with_foreign_policy(selector) == ("False", "OtherPolicyAllowsIngress")


def test_a_foreign_policy_for_the_second_value_of_an_in_selector_breaks_isolation() -> None:
    """The workload `app In (crm-postgres, crm-postgres-replica)`: the index is asked for the
    pods of every value, not the first one's alone."""
    workload = {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["crm-postgres", "crm-postgres-replica"]}]}
    found = _isolation_with_foreign_policy({"matchLabels": {"app": "crm-postgres-replica"}},
                                           workload)  # fmt: skip
    assert found == ("False", "OtherPolicyAllowsIngress")


@pytest.mark.parametrize(
    "requirement",
    [
        {"key": "app", "operator": "Exists"},
        {"key": "app", "operator": "NotIn", "values": ["web"]},
    ],
)
def test_a_foreign_policy_for_a_value_the_workload_selector_never_named_breaks_isolation(
    requirement: dict[str, Any],
) -> None:
    """The workload `app Exists` (or `app NotIn (web)`): its pods may carry any app, so a
    policy filed in the index under app=anything may select them; the index, asked by the
    values the selector names, would never offer it."""
    found = _isolation_with_foreign_policy({"matchLabels": {"app": "batch"}},
                                           {"matchExpressions": [requirement]})  # fmt: skip
    assert found == ("False", "OtherPolicyAllowsIngress")


def test_a_foreign_policy_for_other_pods_does_not_count() -> None:
    other = {"matchLabels": {"app": "crm-redis", "tier": "cache"}}
    assert _isolation_with_foreign_policy(other) == ("True", "Isolated")


@pytest.mark.parametrize(
    "selector",
    [
        {"matchLabels": {"app": "crm-postgres", "tier": "cache"}},
        {"matchLabels": {"statefulset.kubernetes.io/pod-name": "crm-postgres-0"}},
    ],
)
def test_a_foreign_policy_by_a_label_the_workload_selector_does_not_fix_is_never_isolated(
    selector: dict[str, Any],
) -> None:
    """The workload pods carry labels their selector does not name (a StatefulSet's pod
    name, a tier): a policy that opens them by such a label is no proof of isolation. Red on
    the old code: the pods were taken to carry no such label, and the verdict was True; the
    index, asked by the workload's pairs alone, did not even offer the second policy."""
    assert _isolation_with_foreign_policy(selector) == ("Unknown", "PolicyMaySelectWorkload")


def test_only_the_kinds_read_by_label_keep_a_label_index() -> None:
    """A label read of another kind scans (the same answer): its index would be held for
    lookups nothing makes (issue 11). The kinds read by label selector keep one."""
    kube = ScriptedKube()
    policies = _informer(kube)
    assert not policies.index.labels and policies.index.selectors
    assert LABEL_INDEXED == {"Job", "Pod"}
    for kind in ("Job", "Pod"):
        informer = Informer(
            cast(Kube, kube), CachedKind(kind), None, 60, lambda *_: None, lambda *_: None
        )
        assert informer.index.labels
