"""The audit policy for the stores' Secrets, and the retention its flags keep."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataward.model.durations import parse_duration
from dataward.model.policy import parse_policy
from dataward.model.store import Store, parse_store
from dataward.render.audit_policy import (
    audit_flags,
    audit_retention,
    render_audit_policy,
    retention_days,
)
from dataward.validation import apply_defaults
from tests.model.samples import ARCHIVE, POLICY, store


def make_store(name: str, namespace: str, **spec: Any) -> Store:
    obj = store(**spec)
    obj["metadata"] = {**obj["metadata"], "name": name, "namespace": namespace}
    return parse_store(apply_defaults(obj, "PersonalDataStore"))


def policy_with(retention: str, name: str = "clunix") -> Any:
    obj = copy.deepcopy(POLICY)
    obj["metadata"]["name"] = name
    obj["spec"]["defaults"]["accessLogRetention"] = retention
    return parse_policy(apply_defaults(obj, "PrivacyPolicy"))


def level(policy: dict[str, Any], verb: str, namespace: str, name: str | None) -> str:
    """The level kube-apiserver's policy checker gives a request for a Secret: first match."""
    for rule in policy["rules"]:
        if "verbs" in rule and verb not in rule["verbs"]:
            continue
        if "namespaces" in rule and namespace not in rule["namespaces"]:
            continue
        for resources in rule.get("resources", []):
            if resources.get("group", "") != "" or "secrets" not in resources["resources"]:
                continue
            names = resources.get("resourceNames")
            if names is not None and name not in names:
                continue
            return str(rule["level"])
    return "None"


STORES = [
    make_store("support-inquiries", "crm"),
    make_store("payments", "billing", category="contract-records", archive=ARCHIVE),
    make_store("leads", "crm", database={**store()["spec"]["database"],
                                         "credentialsSecret": "leads-purger"}),
]  # fmt: skip
POLICY_DOC = render_audit_policy(STORES)


@pytest.mark.parametrize(
    ("verb", "namespace", "name"),
    [
        ("get", "crm", "dataward-support-inquiries-keyring"),
        ("get", "crm", "crm-postgres-purger"),
        ("watch", "crm", "dataward-leads-keyring"),
        ("get", "crm", "leads-purger"),
        ("get", "billing", "dataward-payments-keyring"),
        ("get", "billing", "archive-writer"),  # the archive's credentials too
        ("list", "crm", None),  # a list returns every Secret in the namespace
        ("watch", "billing", None),
        ("list", "", None),  # across all namespaces
        # A deletecollection answers with the Secrets it deleted (even dryRun=All), a delete
        # with the Secret when a finalizer holds it: both carry the data.
        ("deletecollection", "crm", None),
        ("deletecollection", "billing", None),
        ("delete", "crm", "dataward-support-inquiries-keyring"),
    ],
)
def test_every_read_of_a_store_secret_is_recorded_at_metadata(
    verb: str, namespace: str, name: str | None
) -> None:
    assert level(POLICY_DOC, verb, namespace, name) == "Metadata"


@pytest.mark.parametrize(
    ("verb", "namespace", "name"),
    [
        ("get", "crm", "unrelated-secret"),
        ("get", "billing", "leads-purger"),  # a store's Secret name, in another namespace
        ("get", "marketing", "dataward-support-inquiries-keyring"),
        ("list", "marketing", None),
        ("create", "crm", "dataward-support-inquiries-keyring"),  # not a read
        # A PUT answers with what was sent (data it omits is replaced, not returned).
        ("update", "crm", "dataward-support-inquiries-keyring"),
        ("deletecollection", "marketing", None),
        ("delete", "crm", "unrelated-secret"),
    ],
)
def test_nothing_else_is_recorded(verb: str, namespace: str, name: str | None) -> None:
    assert level(POLICY_DOC, verb, namespace, name) == "None"


def test_secrets_are_never_recorded_with_their_data() -> None:
    assert POLICY_DOC["apiVersion"] == "audit.k8s.io/v1" and POLICY_DOC["kind"] == "Policy"
    assert {rule["level"] for rule in POLICY_DOC["rules"]} == {"Metadata"}
    assert POLICY_DOC["omitStages"] == ["RequestReceived"]
    assert render_audit_policy([])["rules"] == []


def test_rules_are_one_per_namespace_in_a_stable_order() -> None:
    named = [r for r in POLICY_DOC["rules"] if "resourceNames" in r["resources"][0]]
    assert [r["namespaces"] for r in named] == [["billing"], ["crm"]]
    assert named[1]["resources"][0]["resourceNames"] == [
        "crm-postgres-purger", "dataward-leads-keyring",
        "dataward-support-inquiries-keyring", "leads-purger",
    ]  # fmt: skip
    assert render_audit_policy(list(reversed(STORES))) == POLICY_DOC


@pytest.mark.parametrize(
    ("text", "days"),
    [("0d", 1), ("1d", 1), ("30d", 30), ("2w", 14), ("1mo", 31), ("6mo", 184), ("1y", 366),
     ("5y", 1827), ("13mo", 397)],
)  # fmt: skip
def test_retention_days_are_the_longest_the_duration_can_span(text: str, days: int) -> None:
    assert retention_days(parse_duration(text)) == days


@pytest.mark.parametrize("text", ["1mo", "2mo", "6mo", "11mo", "1y", "18mo", "4y"])
def test_retention_days_cover_the_duration_from_every_start(text: str) -> None:
    duration = parse_duration(text)
    days = retention_days(duration)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    spans = []
    for offset in range(0, 4 * 366 + 1):  # every day of a leap cycle
        begin = start + timedelta(days=offset)
        spans.append(duration.add_to(begin) - begin)
    assert max(spans) <= timedelta(days=days)
    assert max(spans) == timedelta(days=days)  # and not a day more than needed


def test_the_flags_keep_the_longest_retention_of_the_policies() -> None:
    retention = audit_retention([policy_with("6mo", "a"), policy_with("400d", "b"),
                                 policy_with("1y", "c")])  # fmt: skip
    assert retention is not None and (retention.days, retention.policy) == (400, "b")
    flags = audit_flags(retention, policy_file="/p.yaml", log_path="/l.log")
    assert flags == [
        "--audit-policy-file=/p.yaml", "--audit-log-path=/l.log", "--audit-log-format=json",
        "--audit-log-maxage=400", "--audit-log-maxbackup=0", "--audit-log-maxsize=100",
    ]  # fmt: skip
    assert audit_retention([]) is None
