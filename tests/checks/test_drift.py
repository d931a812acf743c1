"""Compare-before-apply: what counts as drift."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from dataward.checks.drift import matches, needs_apply

DESIRED: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "dataward-s-isolate", "namespace": "crm",
                 "labels": {"app.kubernetes.io/managed-by": "dataward"}},
    "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
             "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}],
                          "ports": [{"port": 5432, "protocol": "TCP"}]}]},
}


def observed() -> dict[str, Any]:
    """What the server returns: our fields plus defaults and server metadata."""
    obj = copy.deepcopy(DESIRED)
    obj["metadata"].update(resourceVersion="7", uid="x", managedFields=[{}],
                           labels={**DESIRED["metadata"]["labels"], "extra": "by-someone"})
    obj["spec"]["ingress"][0]["ports"][0]["endPort"] = None
    obj["status"] = {}
    return obj


def test_absent_child_needs_apply() -> None:
    assert needs_apply(DESIRED, None)


def test_server_defaults_and_extra_labels_are_not_drift() -> None:
    assert not needs_apply(DESIRED, observed())


def test_changed_value_is_drift() -> None:
    obj = observed()
    obj["spec"]["ingress"][0]["ports"][0]["port"] = 5433
    assert needs_apply(DESIRED, obj)


def test_added_list_item_is_drift() -> None:
    obj = observed()
    obj["spec"]["ingress"].append({"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})
    assert needs_apply(DESIRED, obj)


def test_removed_label_is_drift() -> None:
    obj = observed()
    del obj["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    assert needs_apply(DESIRED, obj)


def test_type_changes_are_drift() -> None:
    assert not matches({"a": [1]}, {"a": "1"})
    assert not matches({"a": {"b": 1}}, {"a": [1]})
    assert not matches("x", ["x"])
    assert matches({"a": "x"}, {"a": "x", "b": 2})


def test_a_child_exactly_as_rendered_matches_and_any_one_edit_of_it_is_drift() -> None:
    # Equal values are matched without a walk (issue 11); every single edit of an exact
    # copy must still be drift, wherever it is, however deep.
    exact = copy.deepcopy(DESIRED)
    assert not needs_apply(DESIRED, exact)
    edits = [
        lambda o: o["metadata"].update(name="other"),
        lambda o: o["metadata"]["labels"].update({"app.kubernetes.io/managed-by": "helm"}),
        lambda o: o["spec"]["podSelector"]["matchLabels"].update(app="anything"),
        lambda o: o["spec"]["policyTypes"].append("Egress"),
        lambda o: o["spec"].update(policyTypes=["Egress"]),  # [] the server defaults
        lambda o: o["spec"]["ingress"][0]["from"].pop(),
        lambda o: o["spec"]["ingress"][0]["ports"][0].update(port="5432"),
        lambda o: o["spec"]["ingress"][0]["ports"][0].update(protocol="UDP"),
        lambda o: o["spec"].pop("ingress"),
    ]
    for edit in edits:
        edited = copy.deepcopy(DESIRED)
        edit(edited)
        assert needs_apply(DESIRED, edited), edited


def test_lists_and_mappings_of_other_types_compare_as_before() -> None:
    # Matching is by shape, not by Python type: a tuple is a list, a read-only mapping a
    # dict (the caches hold list and dict subclasses); a str is never a list of characters.
    from types import MappingProxyType

    from dataward.controller.cache import share_metadata

    meta: dict[str, Any] = {"labels": {"a": "b"}, "ownerReferences": [{"uid": "u"}]}
    share_metadata(meta)  # the caches' own subclasses of dict and list
    assert matches({"labels": {"a": "b"}, "ownerReferences": [{"uid": "u"}]}, meta)
    assert not matches({"labels": {"a": "c"}}, meta)
    assert not matches({"ownerReferences": [{"uid": "u"}, {"uid": "v"}]}, meta)
    assert matches(MappingProxyType({"a": (1, 2)}), {"a": [1, 2], "b": 3})
    assert matches({"a": [1, 2]}, MappingProxyType({"a": (1, 2)}))
    assert not matches({"a": (1, 2)}, {"a": [1, 3]})
    assert not matches(["a", "b"], "ab") and not matches("ab", ["a", "b"])
    assert not matches({"a": None}, {}) and not matches({"a": 0}, {"a": None})
    assert not matches(float("nan"), float("nan"))  # never equal, so never in place


# Exact comparison where the API server adds no defaults (the NetworkPolicy's spec, a Role's
# rules, a RoleBinding's subjects and roleRef): a key the render does not set is drift there,
# whoever put it (an editor, or an earlier render that set it and this one no longer does).


def _edited(edit: Any) -> dict[str, Any]:
    obj = observed()
    edit(obj)
    return obj


def test_a_namespace_selector_added_to_a_peer_is_drift() -> None:
    # {podSelector} admits those pods of the policy's namespace; with namespaceSelector: {}
    # added it admits them in every namespace: wider, so never "in place".
    widened = _edited(lambda o: o["spec"]["ingress"][0]["from"][0].update(namespaceSelector={}))
    assert needs_apply(DESIRED, widened)


def test_a_key_added_to_a_selectors_match_labels_is_drift() -> None:
    # On the workload selector it narrows what the policy isolates (the pods without the
    # label are no longer isolated); it is also what an earlier render's key left behind.
    workload = _edited(lambda o: o["spec"]["podSelector"]["matchLabels"].update(tier="db"))
    assert needs_apply(DESIRED, workload)
    peer = _edited(lambda o: o["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
                   .update(tier="web"))  # fmt: skip
    assert needs_apply(DESIRED, peer)


def test_an_end_port_added_to_a_port_is_drift() -> None:
    ranged = _edited(lambda o: o["spec"]["ingress"][0]["ports"][0].update(endPort=65535))
    assert needs_apply(DESIRED, ranged)


ROLE: dict[str, Any] = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "dataward-s-readers", "namespace": "crm"},
    "rules": [{"apiGroups": [""], "resources": ["secrets"],
               "resourceNames": ["dataward-s-keyring", "crm-postgres"], "verbs": ["get"]}],
}
BINDING: dict[str, Any] = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "RoleBinding",
    "metadata": {"name": "dataward-s-readers", "namespace": "crm"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                "name": "dataward-s-readers"},
    "subjects": [{"kind": "ServiceAccount", "name": "crm-api", "namespace": "crm"},
                 {"kind": "Group", "name": "dba", "apiGroup": "rbac.authorization.k8s.io"}],
}  # fmt: skip


def test_an_extra_verb_resource_name_or_key_in_a_role_rule_is_drift() -> None:
    for edit in (
        lambda r: r["verbs"].append("list"),
        lambda r: r["resourceNames"].append("someone-elses-secret"),
        lambda r: r.update(nonResourceURLs=["*"]),
    ):
        role = copy.deepcopy(ROLE)
        edit(role["rules"][0])
        assert needs_apply(ROLE, role), role


def test_a_key_added_to_a_binding_subject_or_role_ref_is_drift() -> None:
    subject = copy.deepcopy(BINDING)
    subject["subjects"][1]["namespace"] = "elsewhere"
    assert needs_apply(BINDING, subject)
    ref = copy.deepcopy(BINDING)
    ref["roleRef"]["extra"] = "x"
    assert needs_apply(BINDING, ref)


def test_the_api_servers_defaults_and_omitted_empties_are_not_drift() -> None:
    """What the API server fills in or leaves out (Kubernetes' documented defaults) is the
    same value, however either side spells it: a port's protocol TCP, policyTypes
    [Ingress], a User's or Group's apiGroup rbac.authorization.k8s.io, a ServiceAccount's
    apiGroup "", a roleRef's apiGroup; a null or empty list as absent."""
    sparse = copy.deepcopy(DESIRED)
    del sparse["spec"]["ingress"][0]["ports"][0]["protocol"]
    del sparse["spec"]["policyTypes"]
    assert not needs_apply(DESIRED, sparse)
    assert not needs_apply(sparse, observed())
    nulls = _edited(lambda o: o["spec"]["ingress"][0].update(endPort=None, to=None))
    assert not needs_apply(DESIRED, nulls)
    binding = copy.deepcopy(BINDING)
    binding["subjects"][0]["apiGroup"] = ""
    del binding["subjects"][1]["apiGroup"]
    del binding["roleRef"]["apiGroup"]
    assert not needs_apply(BINDING, binding)
    role = copy.deepcopy(ROLE)
    role["rules"][0]["nonResourceURLs"] = []
    assert not needs_apply(ROLE, role)
    no_labels = _edited(lambda o: o["spec"]["ingress"][0]["from"].append(
        {"podSelector": {}, "namespaceSelector": {"matchLabels": {"team": "audit"}}}))
    sent = copy.deepcopy(no_labels)
    sent["spec"]["ingress"][0]["from"][-1]["podSelector"] = {"matchLabels": {}}
    assert not needs_apply(sent, no_labels)


def test_a_default_is_normalised_only_where_the_api_server_fills_it_in() -> None:
    # An empty selector is not an absent one (alone in a peer, podSelector: {} admits every
    # pod of the namespace, where an absent one admits nothing): never normalised away. A
    # protocol other than the default is still a difference.
    bare = copy.deepcopy(DESIRED)
    bare["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {"matchLabels": {"a": "b"}}}]
    widened = copy.deepcopy(bare)
    widened["spec"]["ingress"][0]["from"][0]["podSelector"] = {}
    assert needs_apply(bare, widened)
    udp = copy.deepcopy(DESIRED)
    del udp["spec"]["ingress"][0]["ports"][0]["protocol"]
    assert needs_apply(udp, _edited(
        lambda o: o["spec"]["ingress"][0]["ports"][0].update(protocol="UDP")))


def test_digest_tells_apart_what_matches_tells_apart_and_ignores_key_order() -> None:
    from datetime import UTC, datetime

    from dataward.checks.drift import digest

    assert digest({"a": 1, "b": [True, None]}) == digest({"b": [True, None], "a": 1})
    assert len({digest(1), digest(True), digest(1.0), digest("1"), digest([1])}) == 5
    assert digest({"a": "é"}) != digest({"a": "e"})
    # What orjson refuses is still digested (an integer past 64 bits, a key not a string).
    assert digest({"n": 2**70}) != digest({"n": 2**70 + 1})
    assert digest({1: "x"}) == digest({1: "x"}) != digest({2: "x"})
    # Anything else by its text, as the API server's values never are.
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert digest({"at": when}) == digest({"at": str(when)})


def test_a_job_and_its_pod_digested_from_the_pods_text_are_the_digests_of_the_values() -> None:
    # `job_and_pod_digests` makes the pod's text once (issue 11); its digests are those of
    # the values, whatever they hold: keys out of order, text beyond ASCII, floats, bools and
    # integers apart, values orjson refuses (an integer past 64 bits, a key not a string),
    # values it writes by `str`.
    import dataclasses
    from datetime import UTC, datetime

    from dataward.checks.drift import digest, job_and_pod_digests

    @dataclasses.dataclass
    class Part:
        x: int

    cases: list[tuple[Any, Any]] = [
        ({}, None),
        ({"b": 1, "a": {"d": 1, "c": 2}}, {"containers": [{"image": "é\u2028", "n": 1.5}]}),
        ({"a": 1}, {"a": True}),
        ({"a": 1.0}, {"a": 1}),
        ({"too": 2**70}, {"a": 1}),
        ({"a": 1}, {1: "a key that is not a string"}),
        ({"at": datetime(2026, 1, 1, tzinfo=UTC)}, {"part": Part(1)}),
    ]
    for job, pod in cases:
        assert job_and_pod_digests(job, pod) == (digest({"job": job, "pod": pod}), digest(pod))
    assert len({job_and_pod_digests(job, pod) for job, pod in cases}) == len(cases)


def test_needs_apply_reads_metadata_and_body_key_by_key_as_matches_does() -> None:
    # Compared key by key without copies (issue 11): the same answers as `matches` of the
    # metadata (server-owned keys left out) and of the body (the exact parts left to same_part).
    desired = {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "a", "namespace": "n", "labels": {"x": "1"}, "uid": "mine"},
        "automountServiceAccountToken": False,
    }  # fmt: skip
    observed = copy.deepcopy(desired)
    observed["metadata"].update(uid="theirs", resourceVersion="7", labels={"x": "1", "y": "2"})
    observed["secrets"] = [{"name": "t"}]
    assert not needs_apply(desired, observed)  # ignored metadata, others' keys: no drift
    for edit in (
        lambda o: o["metadata"]["labels"].update(x="2"),
        lambda o: o["metadata"].pop("labels"),
        lambda o: o.update(metadata=["not", "a", "mapping"]),
        lambda o: o.pop("automountServiceAccountToken"),
        lambda o: o.update(automountServiceAccountToken=True),
    ):
        changed = copy.deepcopy(observed)
        edit(changed)
        assert needs_apply(desired, changed)


# A projection (`projected`) keeps what its shape names, item by item; what it does with what
# the shape does not foresee decides a CronJob's template digest (drift, and what the cache
# holds), so every case is spelt out.
SHAPE: dict[str, Any] = {
    "name": None,
    "labels": {"a": None, "b": None},
    "items": [{"x": None}, {"x": None, "y": {"z": None}}],
    "one": [{"k": None}],
    "whole": None,
    "none": [],
}


def test_a_projection_keeps_what_its_shape_names_item_by_item() -> None:
    from types import MappingProxyType

    from dataward.checks.drift import projected

    value = {
        "name": "n", "extra": 1, "labels": {"a": "1", "c": "3"},
        "items": [{"x": 1, "y": {"z": 2, "w": 3}}, {"x": 2, "y": {"z": 3, "w": 4}, "v": 0},
                  {"y": {"w": 5}}, "text", None],
        "one": [{"k": 1, "j": 2}, {"j": 3}],
        "whole": {"deep": [{"kept": True}]},
        "none": [{"any": "thing"}],
    }  # fmt: skip
    assert projected(value, SHAPE) == {
        "name": "n", "labels": {"a": "1"},
        # The first item by the first shape, every further one by the last.
        "items": [{"x": 1}, {"x": 2, "y": {"z": 3}}, {"y": {}}, "text", None],
        "one": [{"k": 1}, {}],
        "whole": {"deep": [{"kept": True}]},
        "none": [{"any": "thing"}],  # an empty list shape keeps the list whole
    }  # fmt: skip
    # A value of another type than the shape expects is kept whole, at any depth.
    odd = {"name": ["n"], "labels": ["a", "b"], "items": {"x": 1}, "one": (1, {"k": 1, "j": 2})}
    assert projected(odd, SHAPE) == odd
    assert projected("text", SHAPE) == "text" and projected(None, SHAPE) is None
    assert projected([{"x": 1, "y": 2}], [{"x": None}]) == [{"x": 1}]
    assert projected({"x": 1}, None) == {"x": 1}
    # Read-only mappings are projected as dicts are; missing keys are left out.
    assert projected(MappingProxyType({"labels": MappingProxyType({"b": "2", "d": "4"})}),
                     SHAPE) == {"labels": {"b": "2"}}  # fmt: skip
    assert projected({}, SHAPE) == {} and projected({"labels": {}}, SHAPE) == {"labels": {}}


def _walk(value: Any, shape: Any) -> Any:
    """The projection as it was written before it was made once per shape (`projection`,
    issue 11): every digest of a CronJob template must stay what it was."""
    if shape is None:
        return value
    if isinstance(shape, Mapping):
        if not isinstance(value, Mapping):
            return value
        return {k: value[k] if sub is None else _walk(value[k], sub)
                for k, sub in shape.items() if k in value}  # fmt: skip
    if not isinstance(value, list) or not shape:
        return value
    last = len(shape) - 1
    return [_walk(item, shape[min(i, last)]) for i, item in enumerate(value)]


def test_a_projection_made_once_digests_every_value_as_the_walk_of_its_shape_did() -> None:
    from dataward.checks.drift import digest, projection
    from dataward.render.purge_job import JOB_TEMPLATE_SHAPE

    values: list[Any] = [None, "x", 1, [], {}, (1, 2), [{"x": 1}] * 3]
    for shape in (SHAPE, JOB_TEMPLATE_SHAPE, [], [None], [{"x": None}], {"x": []}):
        values += [copy.deepcopy(shape), [copy.deepcopy(shape)] * 3]
    # Every node of SHAPE's own value turned into each of the odd values, one at a time.
    base: dict[str, Any] = {
        "name": "n", "extra": {"e": 1}, "labels": {"a": "1", "b": "2", "c": "3"},
        "items": [{"x": 1, "q": 0}, {"x": 2, "y": {"z": 3, "w": 4}}, {"x": 3, "y": {"z": 5}}],
        "one": [{"k": 1, "j": 2}], "whole": {"w": [1]}, "none": [{"n": 1}],
    }  # fmt: skip
    variants = [base]
    for key in base:
        for odd in (None, "s", 7, [], {}, ["a"], {"x": 1}, [{"x": 1, "y": "z"}, 3, {"y": []}]):
            variants.append({**base, key: odd})
        variants.append({k: v for k, v in base.items() if k != key})
    for shape in (SHAPE, JOB_TEMPLATE_SHAPE, [], [None], [{"x": None}], {"x": []}, None):
        project = projection(shape)
        for value in values + variants:
            assert project(value) == _walk(value, shape), (shape, value)
            assert digest(project(value)) == digest(_walk(value, shape)), (shape, value)
