"""A store the request could not search for the subject has not answered.

A table is searched through its `subjectColumns` of the kinds the identifier Secret gives.
When the Secret gives `email` and a table's columns are of kind `customer-id` only, nothing
is known of the subject's rows there: "no data" would be a false statement to the person and
the regulator. Such a store is Failed (NotSearchable), naming the tables and the identifier
kinds they need (kinds, never values); the tables it did search still answer (their counts,
an access's export). A table without any subjectColumns is the store's own declaration that
it holds no column identifying a subject: it is named, and does not keep the rest from
answering, unless no table at all could be searched.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from dataward.model.policy import parse_policy
from dataward.model.store import Store, parse_store
from dataward.subjects import engine
from dataward.subjects.engine import RequestOptions, run_request
from dataward.subjects.identifiers import parse_identifiers
from tests.admission_cases import STORE, patched
from tests.purge.support import POLICY

SECRET = "kim.minji+dw@example.com"
AT = datetime(2026, 12, 1, tzinfo=UTC)
PEOPLE = {"table": "people", "timestampColumn": "ts", "keyColumns": ["id"],
          "subjectColumns": [{"kind": "email", "column": "email"}]}  # fmt: skip
ORDERS = {"table": "orders", "timestampColumn": "ts", "keyColumns": ["id"],
          "subjectColumns": [{"kind": "customer-id", "column": "customer"},
                             {"kind": "phone", "column": "phone"}]}  # fmt: skip
AUDIT = {"table": "audit", "timestampColumn": "ts", "keyColumns": ["id"]}


def _store(*records: dict[str, Any]) -> Store:
    doc = patched(STORE, ())
    doc["spec"].update(policy="clunix", category="support", retention="1y",
                       records=list(records))  # fmt: skip
    return parse_store(doc)


def _never() -> Any:
    raise AssertionError("connected although nothing could be searched")


class _Live:
    """A live database whose clock agrees; the tables' reads are `_observe`'s (patched)."""

    def server_now(self) -> datetime:
        return AT

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


def _run(store: Store, kinds: dict[str, str], request: str, **options: Any) -> engine.Outcome:
    return run_request(
        store, parse_policy(POLICY), parse_identifiers(kinds), request,  # type: ignore[arg-type]
        connect_live=_Live, connect_archive=None, job_clock=lambda: AT,  # type: ignore[arg-type]
        options=RequestOptions(**options),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("request_type", "dry_run"), [("access", False), ("erasure", False), ("erasure", True)]
)
def test_a_store_none_of_whose_tables_could_be_searched_has_not_answered(
    request_type: str, dry_run: bool
) -> None:
    store = _store(ORDERS, AUDIT)
    outcome = run_request(
        store, parse_policy(POLICY), parse_identifiers({"email": SECRET}),
        request_type,  # type: ignore[arg-type]
        connect_live=_never, connect_archive=_never, job_clock=lambda: AT,
        options=RequestOptions(dry_run=dry_run),
    )  # fmt: skip
    result = outcome.result
    assert (result.outcome, result.reason) == ("Failed", "NotSearchable"), result.message
    assert result.error is not None and result.error.category == "NotSearchable"
    assert outcome.document is None  # no export saying "nothing held"
    record = json.loads(result.to_json())
    assert record["notSearchable"] == ["orders", "audit"]
    assert record["kindsNeeded"] == ["customer-id", "phone"]
    # The requester is told which kinds to add, and what was given; never a value.
    assert "customer-id" in result.message and "phone" in result.message
    assert "orders" in result.message and "email" in result.message
    assert SECRET not in result.to_json() and "kim" not in result.to_json()


def test_a_store_without_any_subject_column_has_not_answered_either() -> None:
    outcome = run_request(
        _store(AUDIT), parse_policy(POLICY), parse_identifiers({"email": SECRET}), "erasure",
        connect_live=_never, connect_archive=None, job_clock=lambda: AT,
    )  # fmt: skip
    assert (outcome.result.outcome, outcome.result.reason) == ("Failed", "NotSearchable")
    assert json.loads(outcome.result.to_json())["kindsNeeded"] == []
    assert "subjectColumns" in outcome.result.message


@pytest.mark.parametrize(
    ("request_type", "dry_run"), [("access", False), ("erasure", False), ("erasure", True)]
)
def test_a_store_only_partly_searched_is_not_an_answer(
    monkeypatch: pytest.MonkeyPatch, request_type: str, dry_run: bool
) -> None:
    """people is searched (by email); orders needs customer-id or phone, which the Secret
    does not give. What people held is reported (and exported), and the store is Failed."""
    searched: list[list[str]] = []

    def observe(live: Any, archive: Any, plan: Any, identifiers: Any, strict: bool = True) -> Any:
        searched.append([t.table for t in plan.tables])
        return []  # the subject has no rows in people

    monkeypatch.setattr(engine, "_observe", observe)
    outcome = _run(_store(PEOPLE, ORDERS, AUDIT), {"email": SECRET}, request_type,
                   dry_run=dry_run)  # fmt: skip
    result = outcome.result
    assert searched == [["people"]]
    assert (result.outcome, result.reason) == ("Failed", "NotSearchable"), result.message
    record = json.loads(result.to_json())
    assert record["notSearchable"] == ["orders", "audit"]
    assert record["kindsNeeded"] == ["customer-id", "phone"]
    assert "orders" in result.message and "customer-id" in result.message
    assert SECRET not in result.to_json()
    if request_type == "access":
        # What was found still reaches the requester, saying what was not searched.
        assert outcome.document is not None
        assert json.loads(outcome.document)["notSearchable"] == ["orders", "audit"]


def test_a_table_without_subject_columns_does_not_keep_the_rest_from_answering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "_observe", lambda *args, **kwargs: [])
    for kinds in ({"email": SECRET, "customer-id": "42"}, {"email": SECRET, "phone": "010"}):
        result = _run(_store(PEOPLE, ORDERS, AUDIT), kinds, "erasure").result
        assert result.outcome == "Succeeded", result.message
        record = json.loads(result.to_json())
        assert record["notSearchable"] == ["audit"] and record["kindsNeeded"] == []
