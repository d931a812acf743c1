"""NetworkIsolated and Calico's own policy kinds (crd.projectcalico.org/v1).

On a Calico cluster its NetworkPolicies (namespaced) and GlobalNetworkPolicies are evaluated
with the Kubernetes NetworkPolicies, in order, and an Allow ends the evaluation: one whose
selector selects the workload pods and that has an ingress rule of action Allow admits its
sources whatever the store's NetworkPolicy says. The tests act as a careless (or hostile)
platform team would; the selector language has its own tests, some property-based.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataward.checks.network import (
    CANNOT_SELECT,
    MAY_SELECT,
    SELECTS,
    calico_matches,
    calico_selector_selection,
    network_isolated,
    parse_calico_selector,
)
from dataward.checks.observed import ObservedObject
from tests.checks.test_network import DESIRED, live

# The sample store: namespace crm, workload pods `app: crm-postgres`.
CNP, GNP = "CalicoNetworkPolicy", "CalicoGlobalNetworkPolicy"
ALLOW = [{"action": "Allow"}]


def cnp(
    name: str, selector: str | None, ingress: list[Any] | None = None, namespace: str = "crm",
    **spec: Any,
) -> dict[str, Any]:  # fmt: skip
    """A Calico NetworkPolicy in `namespace`."""
    body = {**spec, "ingress": ALLOW if ingress is None else ingress}
    if selector is not None:
        body["selector"] = selector
    return {"kind": CNP, "metadata": {"name": name, "namespace": namespace}, "spec": body}


def gnp(name: str, selector: str | None, ingress: list[Any] | None = None, **spec: Any) -> Any:
    """A Calico GlobalNetworkPolicy."""
    found = cnp(name, selector, ingress, **spec)
    found["metadata"].pop("namespace")
    return {**found, "kind": GNP}


def judged(
    *policies: dict[str, Any],
    namespace_labels: dict[str, str] | None = None,
    observed: ObservedObject | None = None,
    pods: list[dict[str, str]] | None = None,
    error: str | None = None,
) -> tuple[str, str, str]:
    condition = network_isolated(
        DESIRED,
        observed or live(),
        calico_policies=None if error else list(policies),
        calico_policies_error=error,
        namespace_labels=namespace_labels,
        workload_pod_labels=pods or (),
    )
    return condition.status, condition.reason, condition.message


def test_a_global_allow_all_ingress_is_false_and_named() -> None:
    status, reason, message = judged(gnp("allow-all-ingress", "all()", types=["Ingress"]))
    assert (status, reason) == ("False", "CalicoPolicyAllows")
    assert "Calico GlobalNetworkPolicy allow-all-ingress" in message


@pytest.mark.parametrize(
    "selector",
    [None, "", "all()", "app == 'crm-postgres'", 'app == "crm-postgres"', "has(app)",
     "app in {'crm-postgres', 'other'}", "!has(tier) || app != 'x'",
     "app not in {'web'} && (has(app))", "projectcalico.org/namespace == 'crm'",
     "projectcalico.org/orchestrator == 'k8s'", "!(app == 'web')"],
)  # fmt: skip
def test_a_namespace_policy_whose_selector_selects_the_pods_is_false(selector: str | None) -> None:
    status, reason, message = judged(cnp("open", selector))
    assert (status, reason) == ("False", "CalicoPolicyAllows")
    assert "Calico NetworkPolicy crm/open" in message


@pytest.mark.parametrize(
    "selector",
    ["app == 'web'", "!has(app)", "app in {'web', 'cache'}", "app not in {'crm-postgres'}",
     "app != 'crm-postgres'", "!all()", "projectcalico.org/namespace == 'billing'",
     "has(tier) && app == 'web'"],
)  # fmt: skip
def test_a_selector_that_excludes_the_pods_changes_nothing(selector: str) -> None:
    assert judged(cnp("web", selector), gnp("web", selector))[:2] == ("True", "Isolated")


@pytest.mark.parametrize(
    "selector",
    ["tier == 'db'", "has(tier)", "!has(tier)", "app == 'crm-postgres' && team != 'x'",
     "app contains 'crm'", "app == 'crm-postgres' &&", "global()", "pcns.env == 'prod'",
     "projectcalico.org/serviceaccount == 'db'", "((app == 'crm-postgres')"],
)  # fmt: skip
def test_a_selector_by_what_the_workload_selector_does_not_fix_may_select(selector: str) -> None:
    status, reason, message = judged(cnp("maybe", selector))
    assert (status, reason) == ("Unknown", "CalicoPolicyMaySelect")
    assert "crm/maybe" in message


def test_deny_log_pass_and_egress_change_nothing() -> None:
    assert judged(
        cnp("deny", "all()", [{"action": "Deny"}, {"action": "Log"}, {"action": "Pass"}]),
        cnp("egress-only", "all()", types=["Egress"]),
        cnp("no-ingress", "all()", [], egress=ALLOW),
        gnp("deny-all", "all()", [{"action": "Deny", "source": {"nets": ["0.0.0.0/0"]}}]),
    )[:2] == ("True", "Isolated")


def test_types_with_ingress_and_an_allow_among_denies_is_false() -> None:
    rules = [{"action": "Deny", "source": {"nets": ["10.0.0.0/8"]}}, {"action": "Allow"}]
    policy = cnp("mixed", "all()", rules, types=["Egress", "Ingress"])
    assert judged(policy)[:2] == ("False", "CalicoPolicyAllows")


def test_another_namespaces_policy_changes_nothing() -> None:
    assert judged(cnp("open", "all()", namespace="billing"))[:2] == ("True", "Isolated")


def test_a_global_policy_weighs_its_namespace_selector() -> None:
    by_name = "kubernetes.io/metadata.name == 'crm'"
    assert judged(gnp("crm", "all()", namespaceSelector=by_name))[:2] == (
        "False", "CalicoPolicyAllows")  # fmt: skip
    calico_name = "projectcalico.org/name in {'crm', 'billing'}"
    assert judged(gnp("two", "all()", namespaceSelector=calico_name))[0] == "False"
    other = "projectcalico.org/name == 'billing'"
    assert judged(gnp("billing", "all()", namespaceSelector=other))[:2] == ("True", "Isolated")
    # Labels the operator does not know: may select, unless it reads them.
    env = "env == 'prod'"
    assert judged(gnp("prod", "all()", namespaceSelector=env))[:2] == (
        "Unknown", "CalicoPolicyMaySelect")  # fmt: skip
    prod = gnp("prod", "all()", namespaceSelector=env)
    assert judged(prod, namespace_labels={"env": "prod"})[:2] == ("False", "CalicoPolicyAllows")
    assert judged(prod, namespace_labels={"env": "dev"})[:2] == ("True", "Isolated")


def test_a_service_account_selector_may_select() -> None:
    policy = cnp("by-sa", "all()", serviceAccountSelector="role == 'db'")
    assert judged(policy)[:2] == ("Unknown", "CalicoPolicyMaySelect")
    excluded = cnp("by-sa", "app == 'web'", serviceAccountSelector="role == 'db'")
    assert judged(excluded)[:2] == ("True", "Isolated")


def test_the_pods_labels_when_read_decide() -> None:
    pods = [{"app": "crm-postgres", "tier": "db"}]
    assert judged(cnp("t", "tier == 'db'"), pods=pods)[:2] == ("False", "CalicoPolicyAllows")
    assert judged(cnp("t", "tier == 'web'"), pods=pods)[:2] == ("True", "Isolated")


def test_unreadable_policies_make_true_unknown_and_leave_false() -> None:
    assert judged(error="HTTP 403")[:2] == ("Unknown", "CalicoPoliciesUnreadable")
    missing = ObservedObject.absent()
    assert judged(error="HTTP 403", observed=missing)[:2] == ("False", "NetworkPolicyMissing")


def test_an_allow_outweighs_a_verdict_the_network_policies_could_not_reach() -> None:
    unknown = ObservedObject.unknown("HTTP 500")
    status, reason, _ = judged(gnp("allow-all-ingress", "all()"), observed=unknown)
    assert (status, reason) == ("False", "CalicoPolicyAllows")


def test_garbled_policies_may_select_and_never_crash() -> None:
    # No selector is `all()`.
    assert judged(cnp("odd", None))[:2] == ("False", "CalicoPolicyAllows")
    weird = {"kind": CNP, "metadata": {"name": "w", "namespace": "crm"},
             "spec": {"selector": ["app"], "ingress": ALLOW}}  # fmt: skip
    assert judged(weird)[:2] == ("Unknown", "CalicoPolicyMaySelect")
    assert judged({"kind": GNP, "metadata": {"name": "x"}, "spec": None})[:2] == (
        "True", "Isolated")  # fmt: skip


# The selector language.


def test_the_parser_reads_each_form() -> None:
    assert parse_calico_selector("") == ("all",)
    assert parse_calico_selector("  all( ) ") == ("all",)
    assert parse_calico_selector("a == 'x'") == ("eq", "a", "x")
    assert parse_calico_selector('a.b/c-d_e != "y z"') == ("ne", "a.b/c-d_e", "y z")
    assert parse_calico_selector("has(k)") == ("has", "k")
    assert parse_calico_selector("!has(k)") == ("not", ("has", "k"))
    assert parse_calico_selector("k in {'a', \"b\"}") == ("in", "k", frozenset({"a", "b"}))
    assert parse_calico_selector("k not in {}") == ("notin", "k", frozenset())
    # && binds tighter than ||.
    assert parse_calico_selector("a == 'x' || b == 'y' && has(c)") == (
        "or", ("eq", "a", "x"), ("and", ("eq", "b", "y"), ("has", "c")))  # fmt: skip
    assert parse_calico_selector("(a == 'x' || b == 'y') && has(c)") == (
        "and", ("or", ("eq", "a", "x"), ("eq", "b", "y")), ("has", "c"))  # fmt: skip


@pytest.mark.parametrize(
    "text",
    ["a ==", "a = 'x'", "a == x", "has(a", "(a == 'x'", "a in {'x'", "a in {'x',}", "all",
     "a == 'x' b == 'y'", "global()", "a contains 'x'", "a starts with 'x'", "a == 'x",
     "&& a == 'x'", "!", "a not {'x'}", "has()"],
)  # fmt: skip
def test_the_parser_refuses_what_it_does_not_know(text: str) -> None:
    assert parse_calico_selector(text) is None
    assert calico_selector_selection(text, {"matchLabels": {"a": "x"}}) == MAY_SELECT


def test_two_and_three_valued_logic() -> None:
    node = parse_calico_selector("a == 'x' && b == 'y'")
    assert node is not None
    assert calico_matches(node, {"a": "z"}, False) is False  # false and unknown
    assert calico_matches(node, {"a": "x"}, False) is None
    assert calico_matches(node, {"a": "x"}, True) is False  # b absent
    either = parse_calico_selector("a == 'x' || b == 'y'")
    assert either is not None
    assert calico_matches(either, {"a": "x"}, False) is True  # true or unknown
    assert calico_matches(either, {"a": "z"}, False) is None


def test_the_workload_selector_fixes_what_it_names() -> None:
    expressions = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}
    assert calico_selector_selection("tier == 'a'", expressions) == SELECTS  # a pod of tier a
    assert calico_selector_selection("tier == 'c'", expressions) == CANNOT_SELECT
    assert calico_selector_selection("!has(tier)", expressions) == CANNOT_SELECT
    exists = {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}
    assert calico_selector_selection("tier == 'c'", exists) == SELECTS  # any value
    assert calico_selector_selection("!has(tier)", exists) == CANNOT_SELECT
    absent = {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}
    assert calico_selector_selection("has(tier)", absent) == CANNOT_SELECT
    assert calico_selector_selection("tier not in {'a'}", absent) == SELECTS
    # `!=` of an absent label: Calico's documentation and implementation differ, so unknown.
    assert calico_selector_selection("tier != 'a'", absent) == MAY_SELECT


# Properties: a printed selector parses back to itself, and a verdict of SELECTS or
# CANNOT_SELECT holds for every pod the workload selector allows, whatever other labels it
# carries and whichever reading of `!=` on an absent label Calico makes.

KEYS = st.sampled_from(["app", "tier", "team"])
VALUES = st.sampled_from(["a", "b", "c"])


def _atoms() -> st.SearchStrategy[tuple[Any, ...]]:
    sets = st.frozensets(VALUES, max_size=3)
    return st.one_of(
        st.just(("all",)),
        st.tuples(st.just("has"), KEYS),
        st.tuples(st.sampled_from(["eq", "ne"]), KEYS, VALUES),
        st.tuples(st.sampled_from(["in", "notin"]), KEYS, sets),
    )


NODES = st.recursive(
    _atoms(),
    lambda inner: st.one_of(
        st.tuples(st.just("not"), inner),
        st.tuples(st.sampled_from(["and", "or"]), inner, inner),
    ),
    max_leaves=8,
)


def _printed(node: tuple[Any, ...], quote: str) -> str:
    op = node[0]
    if op == "all":
        return "all()"
    if op == "has":
        return f"has({node[1]})"
    if op == "not":
        return f"!({_printed(node[1], quote)})"
    if op in ("and", "or"):
        joined = " && " if op == "and" else " || "
        return f"({_printed(node[1], quote)}{joined}{_printed(node[2], quote)})"
    if op in ("eq", "ne"):
        return f"{node[1]} {'==' if op == 'eq' else '!='} {quote}{node[2]}{quote}"
    values = ", ".join(f"{quote}{v}{quote}" for v in sorted(node[2]))
    return f"{node[1]} {'in' if op == 'in' else 'not in'} {{{values}}}"


def _reference(node: tuple[Any, ...], labels: Mapping[str, str], ne_absent: bool) -> bool:
    """Calico's meaning of a selector on an endpoint of exactly `labels`, written apart."""
    op = node[0]
    if op == "all":
        return True
    if op == "not":
        return not _reference(node[1], labels, ne_absent)
    if op == "and":
        return _reference(node[1], labels, ne_absent) and _reference(node[2], labels, ne_absent)
    if op == "or":
        return _reference(node[1], labels, ne_absent) or _reference(node[2], labels, ne_absent)
    key = node[1]
    if op == "has":
        return key in labels
    if op == "eq":
        return labels.get(key) == node[2]
    if op == "ne":
        return labels[key] != node[2] if key in labels else ne_absent
    if op == "in":
        return key in labels and labels[key] in node[2]
    return key not in labels or labels[key] not in node[2]


@settings(max_examples=300, deadline=None)
@given(node=NODES, quote=st.sampled_from(["'", '"']))
def test_a_printed_selector_parses_back(node: tuple[Any, ...], quote: str) -> None:
    assert parse_calico_selector(_printed(node, quote)) == node


@settings(max_examples=500, deadline=None)
@given(
    node=NODES,
    workload=st.dictionaries(KEYS, VALUES, max_size=2),
    extra=st.dictionaries(KEYS, st.sampled_from(["a", "b", "c", "zz"]), max_size=3),
    ne_absent=st.booleans(),
)
def test_a_sure_verdict_holds_for_every_pod_the_workload_allows(
    node: tuple[Any, ...], workload: dict[str, str], extra: dict[str, str], ne_absent: bool
) -> None:
    verdict = calico_selector_selection(_printed(node, "'"), {"matchLabels": workload})
    pod = {**extra, **workload}  # a pod the workload selector selects
    if verdict == SELECTS:
        assert _reference(node, pod, ne_absent)
    elif verdict == CANNOT_SELECT:
        assert not _reference(node, pod, ne_absent)


@settings(max_examples=300, deadline=None)
@given(node=NODES, pod=st.dictionaries(KEYS, VALUES, max_size=3), ne_absent=st.booleans())
def test_read_labels_are_judged_exactly(
    node: tuple[Any, ...], pod: dict[str, str], ne_absent: bool
) -> None:
    verdict = calico_selector_selection(_printed(node, '"'), {}, [pod])
    if verdict == SELECTS:
        assert _reference(node, pod, ne_absent)
    elif verdict == CANNOT_SELECT:
        assert not _reference(node, pod, ne_absent)
    else:  # only a `!=` (of a label the pod does not carry) leaves it open
        assert "'ne'" in repr(node)
