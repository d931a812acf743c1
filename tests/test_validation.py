"""Offline admission (`dataward.validation`) against the table of bad inputs and the examples."""

from __future__ import annotations

import filecmp
import functools
from datetime import date
from pathlib import Path
from typing import Any

import cel
import pytest
import yaml

from dataward.model.durations import parse_duration
from dataward.model.errors import ModelError
from dataward.validation import FieldError, crd_directory, crd_schema, validate_object
from tests.admission_cases import ACCEPTED, BASES, CASES, Accepted, Case, patched

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "examples").rglob("*.yaml"))


def _dataward_objects(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return [d for d in docs if str(d.get("apiVersion", "")).startswith("dataward.io/")]


@pytest.mark.parametrize("case", CASES, ids=[c.description for c in CASES])
def test_bad_input_is_refused_at_the_field(case: Case) -> None:
    old = BASES[case.kind] if case.update else None
    errors = validate_object(patched(case.kind, case.patch), old)
    assert any(case.path in e.path for e in errors), (
        f"expected an error at {case.path}, got {[str(e) for e in errors]}"
    )
    # Every error names a field and says something a person can act on.
    assert all(e.path and len(e.message) > 10 for e in errors)


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.description for c in ACCEPTED])
def test_valid_input_is_accepted(case: Accepted) -> None:
    assert validate_object(patched(case.kind, case.patch)) == []


def test_unchanged_engine_passes_the_transition_rule() -> None:
    store = patched("PersonalDataStore", ())
    assert validate_object(store, BASES["PersonalDataStore"]) == []


def test_engine_change_is_only_checked_on_update() -> None:
    store = patched(
        "PersonalDataStore", ({"op": "add", "path": "/spec/database/engine", "value": "mysql"},)
    )
    assert validate_object(store) == []


def test_unknown_field_suggests_the_right_spelling() -> None:
    store = patched(
        "PersonalDataStore", ({"op": "add", "path": "/spec/purge/dryrun", "value": True},)
    )
    assert FieldError("spec.purge.dryrun", 'unknown field "dryrun"; did you mean "dryRun"?') in (
        validate_object(store)
    )


def test_wrong_kind_or_version_is_reported() -> None:
    store = dict(BASES["PersonalDataStore"], apiVersion="dataward.io/v1")
    assert [e.path for e in validate_object(store)] == ["apiVersion"]
    assert [
        e.path
        for e in validate_object(dict(store, apiVersion="dataward.io/v1alpha1", kind="Store"))
    ] == ["kind"]


def test_status_is_ignored_like_the_api_server_does() -> None:
    store = dict(BASES["PersonalDataStore"], status={"anything": 1})
    assert validate_object(store) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(REPO)) for p in EXAMPLES])
def test_examples_are_valid(path: Path) -> None:
    for obj in _dataward_objects(path):
        assert validate_object(obj) == [], obj["metadata"]["name"]


def test_examples_cover_both_kinds() -> None:
    kinds = {obj["kind"] for path in EXAMPLES for obj in _dataward_objects(path)}
    assert kinds == {"PrivacyPolicy", "PersonalDataStore"}


def test_chart_crds_are_the_same_files() -> None:
    chart = REPO / "charts" / "dataward" / "crds"
    names = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    assert names == sorted(p.name for p in chart.glob("*.yaml"))
    _, mismatch, errors = filecmp.cmpfiles(REPO / "crds", chart, names, shallow=False)
    assert (mismatch, errors) == ([], [])
    assert crd_directory().resolve() == (REPO / "crds").resolve()


def _strings_and_lists(node: dict[str, Any], path: str) -> list[str]:
    """Schema nodes the API server could not cost-bound: strings or lists without a maximum."""
    found = []
    if node.get("type") == "string" and "maxLength" not in node and "enum" not in node:
        found.append(path)
    if node.get("type") == "array" and "maxItems" not in node:
        found.append(path)
    if (
        node.get("type") == "object"
        and "additionalProperties" in node
        and "maxProperties" not in node
    ):
        found.append(path)
    for name, sub in node.get("properties", {}).items():
        if path == "" and name == "metadata":
            continue
        found += _strings_and_lists(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            found += _strings_and_lists(node[key], f"{path}[]")
    return found


def _undescribed(node: dict[str, Any], path: str) -> list[str]:
    found = [] if "description" in node or path.endswith((".metadata", "[]")) else [path]
    for name, sub in node.get("properties", {}).items():
        found += _undescribed(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            found += _undescribed(node[key], f"{path}[]")
    return found


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "crds").glob("*.yaml")))
def test_crd_fields_are_described_and_bounded(name: str) -> None:
    crd = yaml.safe_load((REPO / "crds" / name).read_text(encoding="utf-8"))
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _undescribed(schema, "") == []
    assert _strings_and_lists(schema, "") == []


def _rules(kind: str, *path: str) -> list[str]:
    """The CEL rules declared at a schema node, found by property names (`[]` for items)."""
    node: Any = crd_schema(kind)
    for name in path:
        node = node["items"] if name == "[]" else node["properties"][name]
    return [str(rule["rule"]) for rule in node.get("x-kubernetes-validations", [])]


@functools.cache
def _program(rule: str) -> cel.Program:
    return cel.compile(rule)


def _passes(rules: list[str], value: Any) -> bool:
    return all(_program(rule).execute({"self": value}) is True for rule in rules)


DURATION_TEXTS = [
    f"{n}{unit}"
    for n in (0, 1, 7, 10, 99, 100, 101, 999, 1000, 1200, 1201, 5200, 5201, 36500, 36501, 99999)
    for unit in ("d", "w", "mo", "y", "m", "D", "")
] + ["", " 1d", "1d ", "01d", "-1d", "+1d", "1.5d", "P1D", "1dd", "1moo", "d", "100000d", "1y1d"]


@pytest.mark.parametrize("text", DURATION_TEXTS)
def test_duration_rules_agree_with_the_model(text: str) -> None:
    try:
        parse_duration(text)
        model_accepts = True
    except ModelError:
        model_accepts = False
    assert _passes(_rules("PersonalDataStore", "spec", "retention"), text) == model_accepts


def test_date_rules_agree_with_the_calendar() -> None:
    rules = _rules("PrivacyPolicy", "spec", "effectiveDate")
    for year in (1900, 1999, 2000, 2021, 2023, 2024, 2100, 2400):
        for month in range(14):
            for day in range(33):
                text = f"{year:04d}-{month:02d}-{day:02d}"
                try:
                    date.fromisoformat(text)
                    valid = True
                except ValueError:
                    valid = False
                assert _passes(rules, text) == valid, text


def _days(text: str, bound: str) -> int:
    """The fewest (`min`) or most (`max`) days a duration can span: the rule's documented model."""
    amount, unit = int(text.rstrip("dwmoy")), text.lstrip("0123456789")
    per_unit = {"d": (1, 1), "w": (7, 7), "mo": (28, 31), "y": (365, 366)}[unit]
    return amount * per_unit[0 if bound == "min" else 1]


PERIODS = ["0d", "1d", "30d", "90d", "400d", "36500d", "1w", "11w", "12w", "5200w"]
PERIODS += ["1mo", "3mo", "6mo", "12mo", "13mo", "1200mo", "1y", "3y", "5y", "100y"]


def test_statutory_rule_compares_conservative_day_counts() -> None:
    """Refused exactly when the statutory period is shorter whatever the start date."""
    rules = _rules("PrivacyPolicy", "spec", "categories", "[]")
    for retention in PERIODS:
        for statutory in PERIODS:
            category = {
                "name": "c",
                "purposes": ["p"],
                "retention": {"period": retention, "trigger": "t"},
                "statutory": {"period": statutory, "statute": "s"},
            }
            expected = _days(statutory, "max") >= _days(retention, "min")
            assert _passes(rules, category) == expected, (retention, statutory)


def _request(**spec: Any) -> dict[str, Any]:
    from tests.subjects.samples import request

    return request(**spec)


def test_dry_run_cannot_be_changed_on_a_request() -> None:
    # A dry run's Job answers under the name the real run would have: turned off after it
    # ran, the dry run's counts stood as the real answer with nothing deleted.
    for old, new in ((True, False), (False, True), (None, True)):
        errors = validate_object(_request(dryRun=new), _request(dryRun=old))
        assert [e.path for e in errors] == ["spec"], (old, new, errors)
        assert "dryRun" in errors[0].message
    for old, new in ((True, True), (False, False), (None, False), (False, None), (None, None)):
        assert validate_object(_request(dryRun=new), _request(dryRun=old)) == [], (old, new)
    assert validate_object(_request(dryRun=True)) == []  # a new request may be a dry run
    assert validate_object(_request(acknowledgeToken="t-1"), _request()) == []


def test_the_dry_run_rule_holds_without_the_schema_default() -> None:
    # Defaulting fills dryRun in on both sides at the API server; the rule must not depend
    # on it (an object stored before the default, a rule evaluated elsewhere).
    (rule,) = [r for r in _rules("DataSubjectRequest", "spec") if "dryRun" in r]
    program = _program(rule)
    for old, new, same in (({}, {}, True), ({}, {"dryRun": False}, True),
                           ({"dryRun": False}, {}, True), ({}, {"dryRun": True}, False),
                           ({"dryRun": True}, {}, False)):  # fmt: skip
        assert program.execute({"self": new, "oldSelf": old}) is same, (old, new)
