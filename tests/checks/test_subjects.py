"""A request's verdicts: each store's outcome, the phase, the deadline, and what status keeps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataward.checks.subjects import (
    DEFAULT_ANSWER_PERIOD,
    JobRun,
    StoreOutcome,
    answer_outcome,
    answer_owed,
    complete,
    deadline,
    deadline_met,
    key_secret_lost,
    lost_for_every_run,
    request_phase,
    result_record,
    safe_details,
    store_outcome,
    stores_run,
)

EMAIL = "kim.minji@example.kr"
STATUTE = "Act on Consumer Protection in Electronic Commerce"
T0 = datetime(2026, 1, 10, 8, tzinfo=UTC)


def job(name: str, state: str | None, completed: str = "2026-01-10T09:00:00Z") -> dict[str, Any]:
    conditions = [{"type": state, "status": "True"}] if state else []
    return {"metadata": {"name": name},
            "status": {"conditions": conditions, "completionTime": completed if state else None}}


def run(name: str, state: str | None, record: dict[str, Any] | None = None,
        completed: str = "2026-01-10T09:00:00Z") -> JobRun:
    return JobRun(name, job(name, state, completed), record)


def test_status_keeps_counts_and_table_names_and_drops_anything_that_could_be_personal() -> None:
    record = {
        "outcome": "Succeeded", "reason": "Answered", "rowsExported": 3,
        "archiveRowsFound": 1, "acknowledgeToken": "tok-1", "statute": STATUTE,
        "keptUntil": "2031-01-10T00:00:00Z",
        # What a careless engine (or an attacker writing the termination message) might add:
        "identifier": EMAIL, "message": f"found {EMAIL}", "rowsFound": EMAIL,
        "rowsDeleted": -1, "rowsArchived": True, "statuteNote": EMAIL,
        "tables": [
            {"table": "orders", "rowsFound": 2, "email": EMAIL, "statute": f"kept for {EMAIL}"},
            {"table": "invoices", "rowsKept": 1, "statute": STATUTE},
            {"table": EMAIL, "rowsFound": 9},
            "not a table",
        ],
    }
    kept = safe_details(record, {STATUTE})
    assert EMAIL not in json.dumps(kept)
    assert kept == {
        "rowsExported": 3, "archiveRowsFound": 1, "acknowledgeToken": "tok-1",
        "statute": STATUTE, "keptUntil": "2031-01-10T00:00:00Z",
        "tables": [{"table": "orders", "rowsFound": 2},
                   {"table": "invoices", "rowsKept": 1, "statute": STATUTE}],
    }
    # A statute the policy does not name is free text: it could be anything, so it goes.
    assert "statute" not in safe_details({"statute": "Kim Minji"}, {STATUTE})
    # A count is a whole number 0..2**63-1 (what the CRDs' int64 holds), as a purge record's.
    assert safe_details({"rowsDeleted": 2**63, "rowsKept": 2**63 - 1, "rowsFound": -1}) == {
        "rowsKept": 2**63 - 1
    }


def test_a_store_without_a_job_gets_one_only_when_its_purge_account_exists() -> None:
    ready = store_outcome("crm", "s", "job-a", [], runnable=True)
    assert (ready.phase, ready.create_job, ready.job_name) == ("Running", True, "job-a")
    waiting = store_outcome("crm", "s", "job-a", [], runnable=False)
    assert (waiting.phase, waiting.reason) == ("Pending", "StoreNotReady")
    assert not waiting.create_job


def test_a_held_store_shows_its_token_and_a_new_token_runs_it_again() -> None:
    held = run("job-a", "Complete", {"outcome": "Held", "reason": "LargeMatch",
                                     "acknowledgeToken": "t-9"})
    same = store_outcome("crm", "s", "job-a", [held], runnable=True)
    assert (same.phase, same.reason, same.create_job) == ("Held", "LargeMatch", False)
    assert same.details["acknowledgeToken"] == "t-9" and "t-9" in same.message
    after = store_outcome("crm", "s", "job-b", [held], runnable=True)  # token set: new Job name
    assert (after.phase, after.create_job, after.job_name) == ("Running", True, "job-b")


def test_a_store_that_answered_is_never_run_again_whatever_the_token() -> None:
    done = run("job-a", "Complete", {"outcome": "Succeeded", "rowsDeleted": 4})
    outcome = store_outcome("crm", "s", "job-b", [done], runnable=True)
    assert (outcome.phase, outcome.create_job, outcome.job_name) == ("Succeeded", False, "job-a")
    assert outcome.details["rowsDeleted"] == 4


def test_a_job_that_died_without_a_record_fails_and_one_still_running_runs() -> None:
    died = store_outcome("crm", "s", "job-a", [run("job-a", "Failed")], runnable=True)
    assert (died.phase, died.reason) == ("Failed", "JobFailed")
    odd = store_outcome("crm", "s", "job-a", [run("job-a", "Complete")], runnable=True)
    assert (odd.phase, odd.reason) == ("Failed", "NoResultRecord")
    running = store_outcome("crm", "s", "job-a", [run("job-a", None)], runnable=True)
    assert (running.phase, running.create_job) == ("Running", False)


def test_a_record_claiming_an_unknown_outcome_is_a_failure_not_a_success() -> None:
    forged = run("job-a", "Complete", {"outcome": "Sucess", "rowsDeleted": 1})
    assert store_outcome("crm", "s", "job-a", [forged], runnable=True).phase == "Failed"


def _o(phase: str) -> StoreOutcome:
    return StoreOutcome("ns", phase.lower(), phase, "R")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ([], "Succeeded"),
        (["Pending"], "Pending"),
        (["Succeeded", "Pending"], "Running"),
        (["Held", "Running"], "Running"),
        (["Succeeded", "Held"], "PartiallyHeld"),
        (["Held", "Failed"], "Failed"),
        (["Succeeded", "Succeeded"], "Succeeded"),
    ],
)
def test_the_request_phase(phases: list[str], expected: str) -> None:
    assert request_phase([_o(p) for p in phases]) == expected


def test_complete_names_the_held_stores() -> None:
    stores = [_o("Succeeded"), StoreOutcome("crm", "orders", "Held", "LegalHold", "m")]
    c = complete("PartiallyHeld", stores)
    assert (c.status, c.reason) == ("False", "StoresHeld") and "crm/orders: LegalHold" in c.message


def test_the_deadline_is_ten_days_and_overdue_after_it_not_at_it() -> None:
    due = deadline(T0, DEFAULT_ANSWER_PERIOD)
    assert due == datetime(2026, 1, 20, 8, tzinfo=UTC)
    assert deadline_met(due, None, due).reason == "WithinDeadline"
    late = deadline_met(due, None, due + timedelta(seconds=1))
    assert (late.status, late.reason) == ("False", "Overdue")
    assert deadline_met(due, due + timedelta(days=1), due + timedelta(days=2)).reason == (
        "AnsweredLate"
    )
    assert deadline_met(due, T0, due + timedelta(days=30)).reason == "AnsweredInTime"


def test_the_result_record_sums_counts_and_the_evidence_outcome_follows_it() -> None:
    stores = [
        StoreOutcome("a", "x", "Succeeded", "Answered", details={"rowsDeleted": 2, "rowsKept": 1}),
        StoreOutcome("b", "y", "Succeeded", "Answered", details={"rowsDeleted": 3}),
    ]
    record = result_record("erasure", False, "Succeeded", stores)
    assert record["rowsDeleted"] == 5 and record["rowsKept"] == 1 and record["stores"] == 2
    assert answer_outcome("Succeeded", record) == "fulfilled"
    assert answer_outcome("Succeeded", result_record("access", False, "Succeeded", [])) == (
        "no-data"
    )
    assert answer_outcome("PartiallyHeld", record) == "partially-fulfilled"


def test_the_stores_a_run_is_recorded_for() -> None:
    status = {
        "runs": [{"namespace": "crm", "store": "orders", "job": "sha256:a", "pod": "sha256:b"},
                 {"namespace": "crm", "store": "bad", "job": "", "pod": "sha256:b"},
                 "garbage"],
        "stores": [{"namespace": "privacy", "name": "tickets", "jobName": "dsr-1"},
                   {"namespace": "hr", "name": "staff", "phase": "Pending"},
                   {"namespace": "x", "name": "", "jobName": "dsr-2"}, 7],
    }  # fmt: skip
    assert stores_run(status) == {("crm", "orders"), ("privacy", "tickets")}
    assert stores_run(None) == set() and stores_run({"stores": None}) == set()


def test_a_lost_key_fails_every_store_and_complete_says_so() -> None:
    ran = key_secret_lost("crm", "orders", "dataward-r-dsr-key", "dataward-r-dsr-export-1", True)
    asked = key_secret_lost("hr", "staff", "dataward-r-dsr-key", "dataward-r-dsr-export-2", False)
    assert (ran.phase, ran.reason) == (asked.phase, asked.reason) == ("Failed", "KeySecretLost")
    assert "dataward-r-dsr-export-1" in ran.message and "cannot be opened" in ran.message
    assert "not asked" in asked.message and "dataward-r-dsr-export-2" not in asked.message
    other = StoreOutcome("crm", "billing", "Failed", "JobFailed", "boom")
    stores = [ran, asked, other]
    condition = complete(request_phase(stores), stores)
    assert (condition.status, condition.reason) == ("False", "KeySecretLost")
    assert "crm/billing: JobFailed" in condition.message
    assert complete(request_phase([other]), [other]).reason == "StoresFailed"


@pytest.mark.parametrize(
    ("old_phase", "old_reason", "phase", "reason", "answered", "owed"),
    [
        (None, None, "Succeeded", "AllStoresAnswered", False, True),  # the first answer
        ("Running", "InProgress", "Failed", "KeySecretLost", False, True),  # never answered
        ("Succeeded", "AllStoresAnswered", "Succeeded", "AllStoresAnswered", True, False),
        # Answered, then the key lost, then restored: neither is a second answer.
        ("Succeeded", "AllStoresAnswered", "Failed", "KeySecretLost", True, False),
        ("PartiallyHeld", "StoresHeld", "Failed", "KeySecretLost", False, False),
        ("Failed", "KeySecretLost", "Succeeded", "AllStoresAnswered", True, False),
        # A failure found in a recorded answer (not a lost key) is one, and so is the
        # answer of a request that failed before.
        ("Succeeded", "AllStoresAnswered", "Failed", "StoresFailed", True, True),
        ("Failed", "StoresFailed", "Succeeded", "AllStoresAnswered", False, True),
        # Its key lost while its Jobs ran, restored, and then answered: that is its answer.
        ("Failed", "KeySecretLost", "Succeeded", "AllStoresAnswered", False, True),
        ("Running", "InProgress", "Running", "InProgress", False, False),
    ],
)
def test_a_request_answered_is_on_record_once_whatever_becomes_of_its_key(
    old_phase: Any, old_reason: Any, phase: Any, reason: str, answered: bool, owed: bool
) -> None:
    assert answer_owed(old_phase, old_reason, phase, reason, answered) is owed


def test_every_store_a_lost_key_was_given_to_is_lost_whatever_its_spec_now_is() -> None:
    def lost(namespace: str, name: str) -> StoreOutcome:
        return key_secret_lost(namespace, name, "k", "e", True)

    answered = StoreOutcome("crm", "orders", "Succeeded", "Answered")
    invalid = StoreOutcome("crm", "broken", "Failed", "StoreInvalid")
    never_ran = StoreOutcome("crm", "new", "Failed", "StoreInvalid")
    out = lost_for_every_run(
        [answered, invalid, never_ran],
        {("crm", "orders"), ("crm", "broken"), ("crm", "deleted")},
        lost,
    )
    assert {(o.namespace, o.name): o.reason for o in out} == {
        ("crm", "orders"): "KeySecretLost",
        ("crm", "broken"): "KeySecretLost",
        ("crm", "deleted"): "KeySecretLost",
        ("crm", "new"): "StoreInvalid",
    }
