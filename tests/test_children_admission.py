"""Children under 14: the policy's and the store's fields, offline admission (the CRD rules),
the chart's cross-object admission rule (CEL, evaluated here) and the operator's compliance
finding all refuse a children's store that does not say where the age and consent are."""

from __future__ import annotations

import copy
import functools
from typing import Any

import cel
import pytest

from dataward.model.compliance import compliance_findings
from dataward.model.durations import Duration
from dataward.model.errors import ModelError
from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.validation import crd_schema, validate_object
from tests.chart.test_chart import of_kind, render
from tests.model.samples import POLICY, STORE

CHILD_COLUMNS = {"birthDateColumn": "born_on", "consentColumn": "guardian_consented_at"}


def kids_policy(children: dict[str, Any] | None = None) -> dict[str, Any]:
    policy = copy.deepcopy(POLICY)
    for category in policy["spec"]["categories"]:
        if category["name"] == "technical-support-inquiry":
            category["children"] = {} if children is None else children
    return policy


def kids_store(*records: dict[str, Any]) -> dict[str, Any]:
    store = copy.deepcopy(STORE)
    if records:
        store["spec"]["records"] = list(records)
    return store


def record(table: str, children: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"table": table, "timestampColumn": "created_at", "keyColumns": ["id"]}
    if children is not None:
        out["children"] = children
    return out


# -- the model --------------------------------------------------------------------------------


def test_a_childrens_category_defaults_to_five_days_of_grace() -> None:
    category = parse_policy(kids_policy()).category("technical-support-inquiry")
    assert category is not None and category.children is not None
    assert category.children.consent_grace == Duration(5, "d")
    other = parse_policy(kids_policy()).category("newsletter")
    assert other is not None and other.children is None


GRACE_TEXTS = ["0d", "1d", "5d", "29d", "30d", "31d", "99d", "1w", "1mo", "1y", "5", "d", "-1d",
               "05d", "300d", " 5d"]  # fmt: skip


@pytest.mark.parametrize("text", GRACE_TEXTS)
def test_the_crd_and_the_model_agree_on_the_grace_bound(text: str) -> None:
    try:
        parse_policy(kids_policy({"consentGrace": text}))
        model_accepts = True
    except ModelError:
        model_accepts = False
    node: Any = crd_schema("PrivacyPolicy")
    for name in ("spec", "categories", "[]", "children", "consentGrace"):
        node = node["items"] if name == "[]" else node["properties"][name]
    rules = [r["rule"] for r in node["x-kubernetes-validations"]]
    crd_accepts = all(cel.compile(rule).execute({"self": text}) is True for rule in rules)
    assert crd_accepts == model_accepts
    assert model_accepts == (text in {"0d", "1d", "5d", "29d", "30d"})


@pytest.mark.parametrize(
    "children",
    [
        {"consentColumn": "c"},  # no age at all
        {"birthDateColumn": "b", "ageColumn": "a", "consentColumn": "c"},  # which one?
        {"birthDateColumn": "b"},  # no consent column
        "born_on",
    ],
)
def test_a_store_must_name_one_age_column_and_the_consent_column(children: Any) -> None:
    store = kids_store(record("members", children))
    with pytest.raises(ModelError):
        parse_store(store)
    assert validate_object(store), "offline admission accepted it"


@pytest.mark.parametrize("column", ["born_on; DROP TABLE x", "a.b", "1st", "x y", ""])
def test_child_columns_are_plain_identifiers(column: str) -> None:
    for field in ("birthDateColumn", "consentColumn", "collectedColumn"):
        children = {**CHILD_COLUMNS, field: column}
        errors = validate_object(kids_store(record("members", children)))
        assert any("children" in e.path for e in errors), (field, errors)


def test_a_well_formed_childrens_store_is_admitted_and_parsed() -> None:
    store = kids_store(
        record("members", CHILD_COLUMNS),
        record("orders", {"ageColumn": "age", "consentColumn": "ok", "collectedColumn": "at"}),
    )
    assert validate_object(store) == []
    assert validate_object(kids_policy()) == []
    first, second = parse_store(store).records
    assert first.children is not None and first.children.birth_date_column == "born_on"
    assert second.children is not None and second.children.collected_column == "at"


# -- compliance (the operator's PolicyCompliant and the purge's gate) -------------------------


def test_a_childrens_store_without_the_columns_is_not_compliant_and_says_which_table() -> None:
    store = parse_store(kids_store(record("members", CHILD_COLUMNS), record("orders")))
    findings = compliance_findings(store, parse_policy(kids_policy()))
    assert [f.reason for f in findings] == ["ChildColumnsRequired"]
    assert "orders" in findings[0].message and "members" not in findings[0].message
    # Every table declared: compliant; a category without children needs nothing.
    ok = parse_store(kids_store(record("members", CHILD_COLUMNS)))
    assert compliance_findings(ok, parse_policy(kids_policy())) == []
    plain = parse_store(kids_store(record("orders")))
    assert compliance_findings(plain, parse_policy(POLICY)) == []


# -- the chart's cross-object admission rule --------------------------------------------------


@functools.cache
def _store_within_policy() -> dict[str, Any]:
    (policy,) = [
        p
        for p in of_kind(render(), "ValidatingAdmissionPolicy")
        if p["metadata"]["name"].endswith("-store-within-policy")
    ]
    return policy


def _refused(store: dict[str, Any], policy: dict[str, Any]) -> bool:
    """Whether the children's rule refuses `store` against `policy`, with the variables it
    reads, evaluated with CEL (the library lacks Kubernetes' string extensions `find` and
    `join`, which only the retention rule's variables and the messages use)."""
    vap = _store_within_policy()
    found: dict[str, Any] = {}
    context: dict[str, Any] = {"object": store, "params": policy, "variables": found}
    for variable in vap["spec"]["variables"]:
        if variable["name"] in ("applies", "matching", "known"):
            found[variable["name"]] = cel.evaluate(variable["expression"], context)
    (rule,) = [v for v in vap["spec"]["validations"] if "children" in v["expression"]]
    return cel.evaluate(rule["expression"], context) is not True


def test_admission_refuses_a_childrens_store_without_the_columns() -> None:
    policy = kids_policy()
    bad = kids_store(record("members", CHILD_COLUMNS), record("orders"), record("visits"))
    assert _refused(bad, policy)
    assert _refused(kids_store(record("orders")), policy)
    assert not _refused(kids_store(record("members", CHILD_COLUMNS)), policy)
    # The same store in a category without children, or for another policy: not judged here.
    assert not _refused(kids_store(record("orders")), POLICY)
    other = copy.deepcopy(policy)
    other["metadata"]["name"] = "someone-else"
    assert not _refused(bad, other)
    (rule,) = [
        v for v in _store_within_policy()["spec"]["validations"] if "children" in v["expression"]
    ]
    message = " ".join(rule["messageExpression"].split())
    assert "children under 14" in message
    assert "object.spec.records.filter(r, !has(r.children)).map(r, r.table)" in message


def test_explain_policy_says_what_happens_to_a_childs_record() -> None:
    import io

    from dataward.commands.explain_policy import write_policy

    out = io.StringIO()
    write_policy(parse_policy(kids_policy({"consentGrace": "7d"})), out)
    assert (
        "technical-support-inquiry may hold data of children under 14: a child's record without "
        "the legal representative's consent is kept only for the consent process, 7 days after "
        "collection, then removed." in out.getvalue()
    )


def test_rows_removed_for_want_of_consent_reach_status_and_evidence() -> None:
    """The purge's record -> status.lastPurge (admitted by the structural CRD schema) and the
    `purge.run` evidence payload (validated against its allow-list)."""
    import json
    from datetime import UTC, datetime

    from dataward.checks.purge_runs import last_purge_status
    from dataward.evidence.payloads import purge_run_payload, validate
    from dataward.purge.result import PurgeResult, TableResult

    at = datetime(2026, 3, 1, tzinfo=UTC)
    record = PurgeResult(
        store="web/members", result="Succeeded", dry_run=False, start_time=at,
        completion_time=at, message="m",
        tables=(TableResult("members", rows_deleted=9, rows_no_consent=4),
                TableResult("visits", rows_deleted=2, rows_no_consent=1)),
    )  # fmt: skip
    message = json.loads(record.termination_message())
    assert message["rowsNoConsent"] == 5
    assert last_purge_status("job", "Complete", message, {})["rowsNoConsent"] == 5
    node: Any = crd_schema("PersonalDataStore")
    last = node["properties"]["status"]["properties"]["lastPurge"]["properties"]
    assert last["rowsNoConsent"]["type"] == "integer"
    payload = validate("purge.run", "web/members", purge_run_payload(message))
    assert payload["rowsNoConsent"] == 5
    assert [t["rowsNoConsent"] for t in payload["tables"]] == [4, 1]
