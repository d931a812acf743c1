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
    calico_escapes,
    calico_matches,
    calico_reaches_beyond,
    calico_selection,
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
     "tier contains 'crm'", "app == 'crm-postgres' &&", "pcsa.role == 'db'", "pcns.env == 'prod'",
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
    ["a ==", "a = 'x'", "a == x", "has(a", "(a == 'x'", "a in {'x'", "a in {'x',,}", "all",
     "a == 'x' b == 'y'", "global(x)", "a contains x", "a starts 'x'", "a == 'x",
     "&& a == 'x'", "!", "a not {'x'}", "has()", "a in {,}", "a in {'x' 'y'}"],
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
    # `!=` of an absent label is true in Calico (parser/ast.go, LabelNeValueNode).
    assert calico_selector_selection("tier != 'a'", absent) == SELECTS
    # A value the selectors do not name: equal to none of theirs, else not known.
    assert calico_selector_selection("tier starts with 'a'", exists) == MAY_SELECT
    assert calico_selector_selection("tier starts with ''", exists) == SELECTS
    not_ab = {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["ab"]}]}
    assert calico_selector_selection("tier contains 'ab'", not_ab) == MAY_SELECT  # abc


# Properties, against a reference model of Calico's selectors written from its source
# (libcalico-go/lib/selector/parser/ast.go, each node's Evaluate) apart from the code under
# test: a printed selector parses back to itself, and with any white space but spaces and
# tabs it does not parse; labels read are judged exactly; a verdict of SELECTS or
# CANNOT_SELECT holds for every pod the workload selector allows, whatever other labels it
# carries; and a policy's selector joined as Calico joins it means what its parts mean.

KEYS = st.sampled_from(["app", "tier", "team"])
VALUES = st.sampled_from(["a", "b", "ab", ""])
SPACES = st.sampled_from([" ", "\t", "  ", " \t "])


def _atoms() -> st.SearchStrategy[tuple[Any, ...]]:
    sets = st.frozensets(VALUES, max_size=3)
    return st.one_of(
        st.just(("all",)),
        st.just(("global",)),
        st.tuples(st.just("has"), KEYS),
        st.tuples(st.sampled_from(["eq", "ne", "contains", "starts", "ends"]), KEYS, VALUES),
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
# Each operator as Calico's tokenizer reads it, in each spelling it takes.
SPELLINGS = {"eq": ["=="], "ne": ["!="], "contains": ["contains"],
             "starts": ["starts with", "startswith", "starts\twith"],
             "ends": ["ends with", "endswith"], "in": ["in"],
             "notin": ["not in", "notin", "not \t in"]}  # fmt: skip


def _printed(node: tuple[Any, ...], quote: str, space: str = " ", spelling: int = 0) -> str:
    op = node[0]

    def again(inner: tuple[Any, ...]) -> str:
        return _printed(inner, quote, space, spelling)

    if op in ("all", "global"):
        return f"{op}({space})"
    if op == "has":
        return f"has({space}{node[1]}{space})"
    if op == "not":
        return f"!{space}({again(node[1])})"
    if op in ("and", "or"):
        joined = "&&" if op == "and" else "||"
        return f"({space}{again(node[1])}{space}{joined}{space}{again(node[2])}{space})"
    word = SPELLINGS[op][spelling % len(SPELLINGS[op])]
    if op in ("in", "notin"):
        values = f",{space}".join(f"{quote}{v}{quote}" for v in sorted(node[2]))
        return f"{node[1]}{space}{word}{space}{{{values}}}"
    return f"{node[1]}{space}{word}{space}{quote}{node[2]}{quote}"


def _reference(node: tuple[Any, ...], labels: Mapping[str, str]) -> bool:
    """Calico's meaning of a selector on an endpoint of exactly `labels` (ast.go: a label
    the endpoint does not carry is false for ==, in, has and the string operators, true for
    != and not in), written apart."""
    op = node[0]
    if op in ("all", "global"):
        return True
    if op == "not":
        return not _reference(node[1], labels)
    if op == "and":
        return _reference(node[1], labels) and _reference(node[2], labels)
    if op == "or":
        return _reference(node[1], labels) or _reference(node[2], labels)
    key = node[1]
    if key not in labels:
        return op in ("ne", "notin")
    value, operand = labels[key], node[2] if len(node) > 2 else None
    return {
        "has": True,
        "eq": value == operand,
        "ne": value != operand,
        "in": operand is not None and value in operand,
        "notin": operand is not None and value not in operand,
        "contains": isinstance(operand, str) and operand in value,
        "starts": isinstance(operand, str) and value.startswith(operand),
        "ends": isinstance(operand, str) and value.endswith(operand),
    }[op]


@settings(max_examples=400, deadline=None)
@given(node=NODES, quote=st.sampled_from(["'", '"']), space=SPACES, spelling=st.integers(0, 2))
def test_a_printed_selector_parses_back(
    node: tuple[Any, ...], quote: str, space: str, spelling: int
) -> None:
    assert parse_calico_selector(_printed(node, quote, space, spelling)) == node


@settings(max_examples=200, deadline=None)
@given(node=NODES, where=st.booleans(),
       other=st.sampled_from(["\n", "\r", "\x0b", "\x0c", "\xa0", "\u2003", "\u3000"]))  # fmt: skip
def test_white_space_calico_does_not_skip_does_not_parse(
    node: tuple[Any, ...], where: bool, other: str
) -> None:
    text = _printed(node, "'")
    assert parse_calico_selector(other + text if where else text + other) is None


@settings(max_examples=500, deadline=None)
@given(
    node=NODES,
    workload=st.dictionaries(KEYS, VALUES, max_size=2),
    extra=st.dictionaries(KEYS, st.sampled_from(["a", "b", "ab", "", "zz"]), max_size=3),
)
def test_a_sure_verdict_holds_for_every_pod_the_workload_allows(
    node: tuple[Any, ...], workload: dict[str, str], extra: dict[str, str]
) -> None:
    verdict = calico_selector_selection(_printed(node, "'"), {"matchLabels": workload})
    pod = {**extra, **workload}  # a pod the workload selector selects
    if verdict == SELECTS:
        assert _reference(node, pod)
    elif verdict == CANNOT_SELECT:
        assert not _reference(node, pod)


@settings(max_examples=400, deadline=None)
@given(node=NODES, pod=st.dictionaries(KEYS, VALUES, max_size=3))
def test_read_labels_are_judged_exactly(node: tuple[Any, ...], pod: dict[str, str]) -> None:
    verdict = calico_selector_selection(_printed(node, '"'), {}, [pod])
    assert verdict == (SELECTS if _reference(node, pod) else CANNOT_SELECT)


@settings(max_examples=400, deadline=None)
@given(
    selector=NODES,
    of_namespace=st.one_of(st.none(), NODES),
    pod=st.dictionaries(KEYS, VALUES, max_size=3),
    labels=st.dictionaries(KEYS, VALUES, max_size=3),
    home=st.sampled_from(["crm", "billing"]),
)
def test_a_joined_selector_means_what_its_parts_mean(
    selector: tuple[Any, ...],
    of_namespace: tuple[Any, ...] | None,
    pod: dict[str, str],
    labels: dict[str, str],
    home: str,
) -> None:
    """A NetworkPolicy selects the pods of its own namespace its selector selects; a
    GlobalNetworkPolicy those its selector selects in a namespace its namespaceSelector
    selects (the namespace's labels, with its name as kubernetes.io/metadata.name and
    projectcalico.org/name), as Calico's update processors join them."""
    namespaced = cnp("p", _printed(selector, "'"), namespace=home)
    expected = home == "crm" and _reference(selector, pod)
    assert calico_selection(namespaced, "crm", {}, labels, [pod]) == (
        SELECTS if expected else CANNOT_SELECT)  # fmt: skip
    spec = {} if of_namespace is None else {"namespaceSelector": _printed(of_namespace, '"')}
    cluster = gnp("p", _printed(selector, '"'), **spec)
    named = {**labels, "kubernetes.io/metadata.name": "crm", "projectcalico.org/name": "crm"}
    expected = _reference(selector, pod) and (
        of_namespace is None or _reference(of_namespace, named))
    assert calico_selection(cluster, "crm", {}, labels, [pod]) == (
        SELECTS if expected else CANNOT_SELECT)  # fmt: skip


# Calico's own semantics, read from its source (projectcalico/calico, libcalico-go/lib/selector/
# tokenizer/tokenizer.go, parser/parser.go and parser/ast.go; the policy's selector as Felix
# evaluates it: libcalico-go/lib/backend/syncersv1/updateprocessors/networkpolicyprocessor.go,
# globalnetworkpolicyprocessor.go and selectors.go). On an endpoint without the label `k`:
# `k != 'v'` and `k not in {...}` select it, `has(k)`, `k == 'v'`, `k in {...}` and the string
# operators do not; `all()` and `global()` select every endpoint.

POD = [{"app": "crm-postgres"}]  # the workload pods, read: every label known


@pytest.mark.parametrize(
    "selector",
    ["team != 'nothing'", "tier != 'db' && app == 'crm-postgres'", "!(tier == 'db')",
     "tier not in {'db'}", "!has(tier)", "!(tier != 'db') || app != 'x'",
     "!(tier contains 'd')", "!(tier starts with 'x')", "!(tier ends with 'x')"],
)  # fmt: skip
def test_calico_selects_pods_without_the_label_by_not_equal(selector: str) -> None:
    """`k != 'v'` of a label the pods do not carry is true in Calico (LabelNeValueNode)."""
    assert judged(gnp("open", selector), pods=POD)[:2] == ("False", "CalicoPolicyAllows")
    assert judged(cnp("open", selector), pods=POD)[:2] == ("False", "CalicoPolicyAllows")


@pytest.mark.parametrize(
    "selector",
    ["!(tier != 'db')", "tier == 'db'", "has(tier)", "tier in {'db'}", "tier contains 'd'",
     "tier starts with ''", "tier ends with ''", "!(team != 'x') && app == 'crm-postgres'"],
)  # fmt: skip
def test_calico_leaves_pods_without_the_label_by_equal(selector: str) -> None:
    assert judged(gnp("closed", selector), pods=POD)[:2] == ("True", "Isolated")


def test_not_equal_of_a_label_the_workload_selector_excludes_selects() -> None:
    absent = {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}
    assert calico_selector_selection("tier != 'a'", absent) == SELECTS
    assert calico_selector_selection("!(tier != 'a')", absent) == CANNOT_SELECT


@pytest.mark.parametrize(
    "selector",
    ["app starts with 'crm-'", "app ends with 'postgres'", "app contains 'm-p'",
     "app startswith 'crm'", "app endswith 'gres'", "global()", "app contains ''",
     "app in {'crm-postgres',}", "app notin {'web'}", "app not\tin {'web'}", "\tall()\t",
     "app == 'crm-postgres' || global()"],
)  # fmt: skip
def test_what_calico_parses_and_selects_the_pods_is_false(selector: str) -> None:
    assert judged(cnp("open", selector))[:2] == ("False", "CalicoPolicyAllows")
    assert judged(gnp("open", selector))[:2] == ("False", "CalicoPolicyAllows")


@pytest.mark.parametrize(
    "selector",
    ["app starts with 'web'", "app ends with 'web'", "app contains 'web'", "!global()",
     "app startswith 'postgres'", "app in {'web',}"],
)  # fmt: skip
def test_what_calico_parses_and_leaves_the_pods_changes_nothing(selector: str) -> None:
    assert judged(cnp("web", selector), gnp("web", selector))[:2] == ("True", "Isolated")


@pytest.mark.parametrize(
    "selector",
    ["app == 'crm-postgres'\n", "all ()", "has (app)", "app\u00a0== 'crm-postgres'",
     "app == 'crm-postgres'\r", "\x0ball()", "app == 'crm-postgres' || has(" + "k" * 513 + ")",
     "app == 'crm-postgres' || " + "k" * 513 + " == 'x'", "app in {,'crm-postgres'}",
     "app == 'crm-postgres' \u2003", "app not_in {'web'}"],
)  # fmt: skip
def test_what_calico_refuses_is_unknown_never_a_verdict(selector: str) -> None:
    """Calico's tokenizer skips spaces and tabs only and takes labels of up to 512
    characters; a selector it refuses is not known here (its validation drops the policy)."""
    assert parse_calico_selector(selector) is None
    assert judged(cnp("odd", selector))[:2] == ("Unknown", "CalicoPolicyMaySelect")
    assert judged(gnp("odd", selector))[:2] == ("Unknown", "CalicoPolicyMaySelect")


def test_a_namespaced_selector_is_joined_to_its_namespace_as_calico_joins_it() -> None:
    """Calico restricts a namespaced NetworkPolicy to its namespace by joining text:
    `(<selector>) && projectcalico.org/namespace == '<ns>'`. A selector that closes the
    parenthesis escapes the restriction, in whichever namespace the policy lives:
    `(all()) || (all()) && projectcalico.org/namespace == 'billing'` selects every pod."""
    escape = "all()) || (all()"
    assert judged(cnp("escape", "app == 'web') || (all()"))[:2] == (
        "False", "CalicoPolicyAllows")  # fmt: skip
    status, reason, message = judged(cnp("escape", escape, namespace="billing"))
    assert (status, reason) == ("False", "CalicoPolicyAllows")
    assert "Calico NetworkPolicy billing/escape" in message
    # What does not parse once joined is not known; what parses stays in its namespace.
    assert judged(cnp("odd", "all()) || (all("))[:2] == ("Unknown", "CalicoPolicyMaySelect")
    assert judged(cnp("ok", "(all())", namespace="billing"))[:2] == ("True", "Isolated")


def test_a_global_namespace_selector_is_joined_as_calico_joins_it() -> None:
    escape = gnp("escape", "all()) || (all()", namespaceSelector="projectcalico.org/name == 'x'")
    assert judged(escape)[:2] == ("False", "CalicoPolicyAllows")
    # `global()` in a policy's namespaceSelector is not rewritten (only a rule's is): true.
    assert judged(gnp("g", "all()", namespaceSelector="global()"))[:2] == (
        "False", "CalicoPolicyAllows")  # fmt: skip
    assert judged(gnp("g", "all()", namespaceSelector="!global()"))[:2] == ("True", "Isolated")


def test_namespace_labels_in_the_selector_itself_are_known_when_read() -> None:
    """The endpoint inherits its namespace's labels as `pcns.<key>` and its name as
    `pcns.projectcalico.org/name`: a policy's own selector may name them."""
    by_name = "pcns.projectcalico.org/name == 'crm'"
    assert judged(cnp("n", by_name))[:2] == ("False", "CalicoPolicyAllows")
    assert judged(gnp("n", "pcns.projectcalico.org/name == 'billing'"))[:2] == (
        "True", "Isolated")  # fmt: skip
    prod = gnp("prod", "pcns.env == 'prod'")
    assert judged(prod)[:2] == ("Unknown", "CalicoPolicyMaySelect")
    assert judged(prod, namespace_labels={"env": "prod"})[:2] == ("False", "CalicoPolicyAllows")
    assert judged(prod, namespace_labels={"env": "dev"})[:2] == ("True", "Isolated")
    absent = gnp("absent", "pcns.env != 'prod'")
    assert judged(absent, namespace_labels={})[:2] == ("False", "CalicoPolicyAllows")


def test_a_service_account_selector_that_selects_nothing_leaves_the_pods() -> None:
    # A NetworkPolicy's serviceAccountSelector is joined as `&& <pcsa.-prefixed>`: `!all()`
    # selects no endpoint.
    assert judged(cnp("none", "all()", serviceAccountSelector="!all()"))[:2] == (
        "True", "Isolated")  # fmt: skip


# A NetworkPolicy of another namespace reaches the store's pods only when its selector,
# joined as Calico joins it, escapes its namespace: decided once per policy
# (`calico_reaches_beyond`) so that only those are weighed against other namespaces' stores.

NS = "projectcalico.org/namespace"


@pytest.mark.parametrize(
    ("selector", "beyond"),
    [("all()", False), ("", False), (None, False), ("(all())", False), ("!all()", False),
     ("all()) || (all()", True), ("app == 'x') || (app == 'y'", True),
     ("!all()) || (all()", False), ("app == 'x') || (global()", True),
     (f"{NS} == 'crm') || ({NS} == 'crm'", True),
     (f"{NS} == 'billing') || ({NS} == 'billing'", False),
     (f"{NS} != 'billing') || (all()", True), (f"{NS} in {{'a', 'crm'}}) || (!all()", True),
     (f"{NS} starts with 'c') || (!all()", True), ("has(app)) || (has(app)", True),
     ("pcns.env == 'prod') || (pcns.env == 'prod'", True),
     ("all()) || (all(", False), ("all()) || (all()\n", False)],
)  # fmt: skip
def test_a_selector_reaches_beyond_its_namespace_only_by_escaping(
    selector: str | None, beyond: bool
) -> None:
    assert calico_reaches_beyond("billing", selector) is beyond
    policy = cnp("p", selector, namespace="billing")
    assert calico_escapes(policy) is beyond
    assert not calico_escapes(cnp("deny", selector, [{"action": "Deny"}], namespace="billing"))
    verdict = calico_selection(policy, "crm", {}, None, [{"app": "y"}])
    if not beyond:
        assert verdict == CANNOT_SELECT


def test_what_does_not_parse_once_joined_stays_in_its_namespace() -> None:
    """Felix treats a policy whose joined selector does not parse as missing
    (felix/calc/validation_filter.go): another namespace's stores are not made Unknown by it,
    while in its own namespace it still may select."""
    odd = "all()) || (all("
    assert judged(cnp("odd", odd, namespace="billing"))[:2] == ("True", "Isolated")
    assert judged(cnp("odd", odd))[:2] == ("Unknown", "CalicoPolicyMaySelect")
    assert judged(cnp("typed", {"app": "x"}, namespace="billing"))[:2] == (  # type: ignore[arg-type]
        "True", "Isolated")  # fmt: skip
    assert not calico_escapes(gnp("g", "all()) || (all()"))  # weighed everywhere anyway


ESCAPE_KEYS = st.sampled_from(["app", NS])
ESCAPE_VALUES = st.sampled_from(["a", "crm", "billing", "cr", ""])
ESCAPE_NODES = st.recursive(
    st.one_of(
        st.just(("all",)),
        st.tuples(st.just("has"), ESCAPE_KEYS),
        st.tuples(st.sampled_from(["eq", "ne", "contains", "starts", "ends"]), ESCAPE_KEYS,
                  ESCAPE_VALUES),
        st.tuples(st.sampled_from(["in", "notin"]), ESCAPE_KEYS,
                  st.frozensets(ESCAPE_VALUES, max_size=2)),
    ),
    lambda inner: st.one_of(
        st.tuples(st.just("not"), inner),
        st.tuples(st.sampled_from(["and", "or"]), inner, inner),
    ),
    max_leaves=6,
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    first=ESCAPE_NODES,
    second=ESCAPE_NODES,
    escape=st.booleans(),
    app=st.one_of(st.none(), ESCAPE_VALUES),
    where=st.sampled_from(["crm", "cr", "a", "x"]),
)
def test_what_stays_in_its_namespace_selects_no_pod_of_another(
    first: tuple[Any, ...],
    second: tuple[Any, ...],
    escape: bool,
    app: str | None,
    where: str,
) -> None:
    """When a policy of billing is said not to reach beyond it, its selector joined as
    Calico joins it selects no endpoint of another namespace, whatever its labels
    (Calico's meaning, `_reference`)."""
    text = _printed(first, "'")
    if escape:
        text = f"{text}) || ({_printed(second, chr(39))}"
    joined = parse_calico_selector(f"({text}) && {NS} == 'billing'")
    assert joined is not None
    endpoint = {NS: where} if app is None else {NS: where, "app": app}
    if not calico_reaches_beyond("billing", text):
        assert not _reference(joined, endpoint)
