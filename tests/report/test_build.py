"""The report's figures from hand-made records; every expected number is worked out by hand.

The quarter is 2026Q4: 2026-10-01T00:00Z to 2027-01-01T00:00Z. 2026-10-01 is a Thursday, so
the weeks (Mondays) run from 2026-09-28 to 2026-12-28: 14 weeks.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from dataward.evidence.chain import Break, Head, Verdict
from dataward.evidence.payloads import validate
from dataward.model.durations import Duration
from dataward.report.build import StoreInfo, build_report, parse_quarter, previous_quarter
from tests.report.support import CRM, RECORDS, SCHEMA, SHOP, STORES, policy, rec

Q4 = parse_quarter("2026Q4")
NOW = datetime(2027, 1, 2, 12, tzinfo=UTC)
INTACT = Verdict(11, Head(11, "ab" * 32), None)
DAY = 86400


def report(verdict: Verdict | None = INTACT, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"policy": policy(), "stores": STORES}
    options.update(kwargs)
    return build_report(RECORDS, Q4, verdict=verdict, generated_at=NOW, **options)


def test_quarters() -> None:
    assert Q4.start == datetime(2026, 10, 1, tzinfo=UTC)
    assert Q4.end == datetime(2027, 1, 1, tzinfo=UTC)
    q1 = parse_quarter("2027q1")
    assert (q1.label, q1.start, q1.end) == (
        "2027Q1",
        datetime(2027, 1, 1, tzinfo=UTC),
        datetime(2027, 4, 1, tzinfo=UTC),
    )
    for bad in ("2026Q5", "2026-Q4", "Q4", ""):
        with pytest.raises(ValueError, match="YEARQN"):
            parse_quarter(bad)


def test_purges_per_category_leave_out_dry_runs_and_other_quarters() -> None:
    purges = report()["purges"]
    # #8 is a dry run, #11 is in 2027: neither counts.
    assert purges["byCategory"] == [
        {
            "category": "contract-records",
            "runs": 1,
            "failedRuns": 0,
            "rowsDeleted": 40,
            "rowsArchived": 40,
            "rowsDestroyed": 7,
            "stores": [SHOP],
            "evidence": [4],
        },
        {
            "category": "technical-support-inquiry",
            "runs": 1,
            "failedRuns": 0,
            "rowsDeleted": 100,
            "rowsArchived": 0,
            "rowsDestroyed": 0,
            "stores": [CRM],
            "evidence": [3],
        },
    ]
    # 2026-10-05 (Mon) and 2026-10-06 (Tue) are in the week of 2026-10-05.
    assert purges["weekly"] == [
        {
            "week": "2026-10-05",
            "category": "contract-records",
            "rowsDeleted": 40,
            "rowsDestroyed": 7,
            "evidence": [4],
        },
        {
            "week": "2026-10-05",
            "category": "technical-support-inquiry",
            "rowsDeleted": 100,
            "rowsDestroyed": 0,
            "evidence": [3],
        },
    ]
    assert [(r["seq"], r["dryRun"]) for r in purges["runs"]] == [(3, False), (4, False), (8, True)]


def test_overdue_rows() -> None:
    assert report()["overdue"] == [
        {
            "subject": CRM,
            "expiredRemainingAtLastRun": 0,
            "lastRunSeq": 3,
            "maxExpiredRemaining": 0,
            "maxSeq": 3,
            "oldestExpired": None,
            "evidence": [3],
        },
        {
            "subject": SHOP,
            "expiredRemainingAtLastRun": 5,
            "lastRunSeq": 4,
            "maxExpiredRemaining": 5,
            "maxSeq": 4,
            "oldestExpired": None,
            "evidence": [4],
        },
    ]


def test_key_ages_against_the_stores_rotation_limit() -> None:
    (keys,) = report()["keys"]
    assert (keys["subject"], keys["rotationLimit"], keys["rotations"]) == (CRM, "30d", 1)
    first, second = keys["keys"]
    # Key 1: 2026-09-20 to 2026-10-20 is 30 days, due exactly then: not overdue.
    assert first["maxAgeSeconds"] == 30 * DAY
    assert first["rotationDue"] == "2026-10-20T00:00:00.000000Z"
    assert first["overdue"] is False and first["evidence"] == [1, 7]
    # Key 2 (created = the record's time): Oct 20 -> Jan 1 is 11 + 30 + 31 + 1 = 73 days,
    # due 2026-11-19: overdue.
    assert second["maxAgeSeconds"] == 73 * DAY
    assert second["rotationDue"] == "2026-11-19T00:00:00.000000Z"
    assert second["overdue"] is True and second["rotatedInQuarter"] is True
    assert second["primaryUntil"] is None and second["evidence"] == [7]


def test_a_late_or_failed_answer_is_a_finding_of_the_requests_clause() -> None:
    def answered(seq: int, request: str, outcome: str, at: str) -> Any:
        return rec(seq, at, "request.answered", "privacy/uid-" + request, {
            "requestId": request, "requestType": "erasure", "outcome": outcome,
            "receivedAt": "2026-11-01T00:00:00Z", "answeredAt": at,
            "deadline": "2026-11-11T00:00:00Z"})  # fmt: skip

    in_time = [answered(1, "a", "fulfilled", "2026-11-10T23:59:59Z")]
    built = build_report(in_time, Q4, verdict=INTACT, generated_at=NOW, stores=STORES)
    (clause,) = [c for c in built["clauses"] if c["id"] == "subject-requests"]
    assert (clause["status"], built["requests"][0]["late"]) == ("evidenced", False)
    # 50 days to answer against 10; and one that failed in time.
    records = [*in_time, answered(2, "b", "fulfilled", "2026-12-21T00:00:00Z"),
               answered(3, "c", "failed", "2026-11-05T00:00:00Z")]  # fmt: skip
    built = build_report(records, Q4, verdict=INTACT, generated_at=NOW, stores=STORES)
    (clause,) = [c for c in built["clauses"] if c["id"] == "subject-requests"]
    assert clause["status"] == "findings"
    assert clause["findings"] == [
        "request b (privacy/uid-b, record 2) was answered after 2026-11-11T00:00:00.000000Z",
        "request c (privacy/uid-c, record 3) failed"]  # fmt: skip
    jsonschema.validate(built, json.loads(SCHEMA.read_text()))


def test_an_evidence_outage_in_the_quarter_leaves_no_clause_evidenced() -> None:
    # The evidence database was down for a day: a purge run that failed then has no record.
    outage = rec(12, "2026-11-03T00:00:00.000000Z", "evidence.outage", "dataward", {
        "from": "2026-11-02T00:00:00.000000Z", "to": "2026-11-03T00:00:00.000000Z",
        "failedAppends": 7})  # fmt: skip
    clean = report()
    built = build_report([*RECORDS, outage], Q4, verdict=INTACT, generated_at=NOW,
                         policy=policy(), stores=STORES)  # fmt: skip
    (gap,) = [g for g in built["gaps"] if g["code"] == "evidence-outage"]
    assert gap["evidence"] == [12]
    assert "2026-11-02T00:00:00.000000Z" in gap["message"] and "7 append(s)" in gap["message"]
    was = {c["id"]: c["status"] for c in clean["clauses"]}
    now = {c["id"]: c["status"] for c in built["clauses"]}
    assert "evidenced" in was.values()
    assert "evidenced" not in now.values(), now
    assert {i for i, status in now.items() if status == "not-verifiable"} == {
        i for i, status in was.items() if status == "not-verifiable"}
    assert not [g for g in clean["gaps"] if g["code"] == "evidence-outage"]
    assert not [g for g in clean["gaps"] if "evidence.outage" in g["message"]]
    jsonschema.validate(built, json.loads(SCHEMA.read_text()))


def test_a_run_appended_again_is_counted_once() -> None:
    # Its status write failed after the append, twice: the next passes appended it again.
    run = {"jobName": "dataward-orders-purge-29381234", "result": "Failed", "dryRun": False,
           "rowsDeleted": 10, "expiredRemaining": 3}  # fmt: skip
    records = [rec(seq, f"2026-10-0{seq}T03:00:00.000000Z", "purge.run", SHOP, dict(run))
               for seq in (1, 2, 3)]  # fmt: skip
    records.append(rec(4, "2026-10-05T03:00:00.000000Z", "purge.run", SHOP,
                       {**run, "jobName": "dataward-orders-purge-29382674"}))  # fmt: skip
    built = build_report(records, Q4, verdict=None, generated_at=NOW, stores=STORES)
    (category,) = built["purges"]["byCategory"]
    assert (category["runs"], category["failedRuns"], category["rowsDeleted"]) == (2, 2, 20)
    assert category["evidence"] == [1, 4]


def test_bucket_keys_are_not_rotations_of_the_primary_key() -> None:
    # The primary key (1) made 2026-01-01 and never rotated, under a 90-day limit; a bucket
    # key made on the first of every month (crypto-shredding) is no new primary key.
    subject = "crm/support"
    records = [rec(1, "2026-01-01T00:00:00.000000Z", "key.created", subject, {
        "secret": "dataward-support-keyring", "keyId": 1,
        "created": "2026-01-01T00:00:00.000000Z"})]  # fmt: skip
    for month in range(2, 13):
        made = f"2026-{month:02d}-01T00:00:00.000000Z"
        records.append(rec(month, made, "key.created", subject, {
            "secret": "dataward-support-keyring", "keyId": month, "created": made,
            "bucket": f"2026-{month:02d}"}))  # fmt: skip
    built = build_report(records, Q4, verdict=None, generated_at=NOW,
                         stores={subject: StoreInfo("x", Duration(90, "d"))})  # fmt: skip
    (store_keys,) = built["keys"]
    assert [k["keyId"] for k in store_keys["keys"]] == [1]
    (only,) = store_keys["keys"]
    # Jan 1 to Jan 1 2027 is 365 days; due 90 days after it, on 2026-04-01.
    assert (only["keyId"], only["maxAgeSeconds"], only["overdue"]) == (1, 365 * DAY, True)
    (clause,) = [c for c in built["clauses"] if c["id"] == "encryption"]
    assert clause["status"] != "evidenced", clause


def test_policy_default_rotation_when_the_store_names_none() -> None:
    stores = {CRM: STORES[CRM].__class__("technical-support-inquiry")}
    (keys,) = report(stores=stores)["keys"]
    # 90 days after 2026-10-20 is 2027-01-18: after the quarter, so not overdue.
    assert keys["rotationLimit"] == "90d"
    assert keys["keys"][1]["rotationDue"] == "2027-01-18T00:00:00.000000Z"
    assert keys["keys"][1]["overdue"] is False


def test_conditions_and_foreign_access() -> None:
    built = report()
    ((store),) = built["stores"]
    ((condition),) = store["conditions"]
    # False from 2026-10-10T00:00 to 2026-10-12T12:00: 2.5 days.
    assert condition["statusAtStart"] == "True" and condition["statusAtEnd"] == "True"
    assert condition["secondsNotTrue"] == 2 * DAY + DAY // 2
    assert condition["unknownBeforeSeconds"] == 0
    assert condition["evidence"] == [2, 5, 6]
    assert built["foreignAccess"] == [
        {
            "subject": CRM,
            "found": "2026-10-10T00:00:00.000000Z",
            "foundSeq": 5,
            "message": "RoleBinding crm/<b>legacy</b> grants get on the Secrets",
            "resolved": "2026-10-12T12:00:00.000000Z",
            "resolvedSeq": 6,
            "openSeconds": 2 * DAY + DAY // 2,
            "evidence": [5, 6],
        },
    ]


def test_requests_and_revisions() -> None:
    built = report()
    # 2026-10-30T00:00 to 2026-11-02T06:00: 3 days 6 hours.
    assert [(r["requestId"], r["secondsToAnswer"], r["evidence"]) for r in built["requests"]] == [
        ("dsr-1", 3 * DAY + 6 * 3600, [9])
    ]
    assert [(r["generation"], r["evidence"]) for r in built["revisions"]] == [(5, [10])]
    assert built["recordsInPeriod"] == 8  # records 3 to 10


def test_gaps() -> None:
    gaps = report()["gaps"]
    codes = [g["code"] for g in gaps]
    # Weeks with records: 10-05 (#3, #4, #5), 10-12 (#6), 10-19 (#7, #8), 11-02 (#9),
    # 12-14 (#10): 5 of 14.
    assert codes.count("no-records") == 9
    absent = [g["message"] for g in gaps if g["code"] == "kind-absent"]
    # No access.read: the operator did not follow an audit log that quarter, or nothing read.
    assert [m.split()[1] for m in absent] == [
        "access.read", "key.created", "key.shred.cancelled", "key.shredded"
    ]
    # Each of these has a producer now: its absence means nothing happened or it was lost,
    # never "this version does not record it".
    assert not [m for m in absent if "proves nothing" in m], absent
    assert "oldest-expired-not-recorded" in codes
    assert "chain-broken" not in codes and "chain-unverified" not in codes


def test_a_broken_chain_leaves_out_the_records_from_the_break() -> None:
    broken = Verdict(5, Head(5, "cd" * 32), Break(6, "hash", "record 6's content does not match"))
    built = report(broken)
    assert built["chain"]["verdict"] == "broken" and built["chain"]["broken"]["seq"] == 6
    (gap,) = [g for g in built["gaps"] if g["code"] == "chain-broken"]
    assert gap["evidence"] == [6]
    # Without #6 the foreign access was never resolved; without #7 no rotation.
    (finding,) = built["foreignAccess"]
    assert (finding["resolvedSeq"], finding["openSeconds"]) == (None, None)
    assert built["keys"][0]["rotations"] == 0
    assert built["recordsInPeriod"] == 3  # records 3, 4, 5
    (audit,) = [c for c in built["clauses"] if c["id"] == "self-audit"]
    assert audit["status"] == "findings"


def test_unverified_chain_is_a_gap() -> None:
    built = report(None)
    assert built["chain"]["verdict"] == "unverified"
    assert built["gaps"][0]["code"] == "chain-unverified"


def test_clauses_map_to_controls_and_evidence() -> None:
    clauses = {c["id"]: c for c in report()["clauses"]}
    support = clauses["retention/technical-support-inquiry"]
    assert (support["status"], support["evidence"]) == ("evidenced", [3])
    contract = clauses["retention/contract-records"]
    assert contract["status"] == "findings" and contract["evidence"] == [4]
    assert "5 expired rows remained" in contract["findings"][0]
    assert clauses["statutory/contract-records"]["evidence"] == [4]
    assert clauses["retention/newsletter"]["status"] == "no-evidence"
    assert clauses["encryption"]["status"] == "findings"
    assert clauses["encryption"]["evidence"] == [1, 7]
    assert clauses["access-restriction"]["evidence"] == [2, 5, 6]
    assert clauses["access-records"]["status"] == "not-verifiable"
    assert clauses["subject-requests"]["evidence"] == [9]
    assert clauses["revisions"]["evidence"] == [10]


def test_the_report_follows_its_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for built in (
        report(),
        report(None),
        report(policy=None, stores={}),
        build_report([], Q4, verdict=None, generated_at=NOW),
    ):
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(built)]
        assert errors == []
        json.dumps(built)  # plain JSON values only


@pytest.mark.parametrize(
    ("now", "label"),
    [
        ("2027-01-01T00:00:00+00:00", "2026Q4"),
        ("2026-12-31T23:59:59+00:00", "2026Q3"),
        # 1 April 08:00 in Seoul is still 31 March in UTC: the quarter before is Q4.
        ("2026-04-01T08:00:00+09:00", "2025Q4"),
        ("2026-04-01T09:00:00+09:00", "2026Q1"),
        ("2026-07-15T12:00:00+00:00", "2026Q2"),
    ],
)
def test_the_previous_quarter_is_the_last_one_ended_in_utc(now: str, label: str) -> None:
    assert previous_quarter(datetime.fromisoformat(now)).label == label


def test_a_run_whose_outcome_is_unknown_is_a_finding_not_a_success() -> None:
    # A Job that finished without a result record (its pod gone, the record lost): the
    # operator cannot say what it did. Red on the old code: the evidence log refused the
    # record ("Unknown" was not a result it took), so the run was missing from the report,
    # and a report that had it did not count it against the clause.
    payload = validate("purge.run", SHOP, {
        "jobName": "dataward-orders-purge-29381234", "result": "Unknown",
        "reason": "NoResultRecord", "dryRun": False,
        "startTime": "2026-10-05T03:00:00Z", "completionTime": "2026-10-05T03:01:00Z"})  # fmt: skip
    run = rec(1, "2026-10-05T03:01:00.000000Z", "purge.run", SHOP, payload)
    built = build_report([run], Q4, verdict=INTACT, generated_at=NOW, policy=policy(),
                         stores=STORES)
    (clause,) = [c for c in built["clauses"] if c["id"] == "retention/contract-records"]
    assert clause["status"] == "findings"
    assert clause["findings"] == [
        f"purge run 1 of {SHOP}: its outcome is unknown (NoResultRecord)"]
    jsonschema.validate(built, json.loads(SCHEMA.read_text()))


def test_an_answer_appended_again_is_counted_once() -> None:
    # Red on 5c09be2: the record goes on before the status write; that write failing, the
    # next pass appended the same answer again, later, and the report counted it twice (the
    # second one late).
    def answered(seq: int, at: str, outcome: str = "fulfilled") -> Any:
        return rec(seq, at, "request.answered", "privacy/uid-a", {
            "requestId": "a", "requestType": "erasure", "outcome": outcome,
            "receivedAt": "2026-11-01T00:00:00Z", "answeredAt": at,
            "deadline": "2026-11-11T00:00:00Z"})  # fmt: skip

    records = [answered(1, "2026-11-10T23:59:00Z"), answered(2, "2026-11-11T00:01:00Z")]
    built = build_report(records, Q4, verdict=INTACT, generated_at=NOW, stores=STORES)
    assert [(r["seq"], r["late"]) for r in built["requests"]] == [(1, False)]
    (clause,) = [c for c in built["clauses"] if c["id"] == "subject-requests"]
    assert clause["status"] == "evidenced"
    # A later answer of another outcome (a store found unanswered since) is a record of its own.
    records.append(answered(3, "2026-11-12T00:00:00Z", "failed"))
    built = build_report(records, Q4, verdict=INTACT, generated_at=NOW, stores=STORES)
    assert [r["seq"] for r in built["requests"]] == [1, 3]


def test_escalators_who_can_become_a_reader_are_foreign_access_too() -> None:
    """AccessRestricted False because someone may impersonate a reader (or bind a role that
    reads the Secrets, or exec through the kubelet's API) is access beyond the readers."""
    records = [
        rec(1, "2026-10-03T00:00:00.000000Z", "condition.transition", CRM,
            {"type": "AccessRestricted", "status": "False", "previousStatus": "True",
             "reason": "EscalatorsCanReadSecrets",
             "message": "RoleBinding crm/ci-as-sa lets User ci become someone who reads them"}),
        rec(2, "2026-10-05T00:00:00.000000Z", "condition.transition", CRM,
            {"type": "AccessRestricted", "status": "True", "previousStatus": "False",
             "reason": "OnlyDeclaredReaders"}),
    ]  # fmt: skip
    built = build_report(records, Q4, verdict=INTACT, generated_at=NOW, policy=policy(),
                         stores=STORES)  # fmt: skip
    assert [(f["subject"], f["foundSeq"], f["resolvedSeq"], f["openSeconds"])
            for f in built["foreignAccess"]] == [(CRM, 1, 2, 2 * DAY)]  # fmt: skip


def test_pod_creators_who_can_mount_the_secrets_are_foreign_access_too() -> None:
    """AccessRestricted False because someone may start pods in the namespace (they can mount
    its Secrets) is access beyond the readers as much as a binding on the Secrets is: the
    quarter's report listed only the latter."""
    records = [
        rec(1, "2026-10-03T00:00:00.000000Z", "condition.transition", CRM,
            {"type": "AccessRestricted", "status": "False", "previousStatus": "True",
             "reason": "WorkloadCreatorsCanMountSecrets",
             "message": "RoleBinding crm/deployers lets User dev create deployments"}),
        rec(2, "2026-10-04T00:00:00.000000Z", "condition.transition", CRM,
            {"type": "AccessRestricted", "status": "True", "previousStatus": "False",
             "reason": "Restricted"}),
    ]  # fmt: skip
    built = build_report(records, Q4, verdict=INTACT, generated_at=NOW, policy=policy(),
                         stores=STORES)  # fmt: skip
    assert [(f["subject"], f["foundSeq"], f["resolvedSeq"], f["openSeconds"])
            for f in built["foreignAccess"]] == [(CRM, 1, 2, DAY)]  # fmt: skip


def test_a_control_unknown_or_false_in_the_quarter_is_a_finding_of_its_clause() -> None:
    """The operator could not read RBAC (AccessRestricted Unknown) for 60 days, the network
    policy was missing (NetworkIsolated False) for 10 and the key ring unreadable
    (EncryptionKeyReady Unknown) for 30: the clauses these controls enforce were shown
    `evidenced`, as if every control had been in force all quarter."""
    records = [
        rec(1, "2026-09-20T00:00:00.000000Z", "key.created", CRM,
            {"secret": "dataward-support-keyring", "keyId": 1,
             "created": "2026-09-20T00:00:00.000000Z"}),
        rec(2, "2026-10-02T00:00:00.000000Z", "key.rotated", CRM,
            {"secret": "dataward-support-keyring", "keyId": 2, "previousKeyId": 1}),
        rec(3, "2026-10-02T00:00:00.000000Z", "key.rotated", SHOP,
            {"secret": "dataward-orders-keyring", "keyId": 2, "previousKeyId": 1}),
        rec(4, "2026-10-03T00:00:00.000000Z", "condition.transition", CRM,
            {"type": "AccessRestricted", "status": "Unknown", "reason": "RBACUnreadable"}),
        rec(5, "2026-10-04T00:00:00.000000Z", "condition.transition", SHOP,
            {"type": "NetworkIsolated", "status": "False", "reason": "NetworkPolicyMissing"}),
        rec(6, "2026-10-14T00:00:00.000000Z", "condition.transition", SHOP,
            {"type": "NetworkIsolated", "status": "True", "previousStatus": "False",
             "reason": "Isolated"}),
        rec(7, "2026-10-20T00:00:00.000000Z", "condition.transition", SHOP,
            {"type": "EncryptionKeyReady", "status": "Unknown", "reason": "KeyRingUnreadable"}),
        rec(8, "2026-11-19T00:00:00.000000Z", "condition.transition", SHOP,
            {"type": "EncryptionKeyReady", "status": "True", "previousStatus": "Unknown",
             "reason": "KeyReady"}),
        rec(9, "2026-12-02T00:00:00.000000Z", "condition.transition", CRM,
            {"type": "AccessRestricted", "status": "True", "previousStatus": "Unknown",
             "reason": "Restricted"}),
    ]  # fmt: skip
    built = build_report(records, Q4, verdict=INTACT, generated_at=NOW, policy=policy(),
                         stores=STORES)  # fmt: skip
    clauses = {c["id"]: c for c in built["clauses"]}
    access = clauses["access-restriction"]
    assert access["status"] == "findings", access
    # Unknown from 10-03 to 12-02: 60 days; False from 10-04 to 10-14: 10 days.
    assert any(CRM in f and "AccessRestricted" in f and "60.00 d" in f for f in access["findings"])
    assert any(SHOP in f and "NetworkIsolated" in f and "10.00 d" in f for f in access["findings"])
    encryption = clauses["encryption"]
    assert encryption["status"] == "findings", encryption
    # (crm/support's key 2 is past its 30-day limit too: a finding of its own.)
    (finding,) = [f for f in encryption["findings"] if "EncryptionKeyReady" in f]
    assert SHOP in finding and "30.00 d" in finding
    assert {7, 8} <= set(encryption["evidence"])


def test_a_store_whose_control_has_no_record_is_a_finding_not_evidenced() -> None:
    """shop/orders is in the stores files but the log holds no AccessRestricted or
    NetworkIsolated record of it, ever (the evidence log configured after it became Ready:
    only changes are recorded). crm/support's records made the clause `evidenced`, for
    shop/orders too, whose access the log never showed."""
    records = [
        rec(1, "2026-09-20T00:00:00.000000Z", "condition.transition", CRM,
            {"type": "AccessRestricted", "status": "True", "reason": "Restricted"}),
        rec(2, "2026-09-20T00:00:00.000000Z", "condition.transition", CRM,
            {"type": "NetworkIsolated", "status": "True", "reason": "Isolated"}),
        rec(3, "2026-10-02T00:00:00.000000Z", "condition.transition", SHOP,
            {"type": "NetworkIsolated", "status": "True", "reason": "Isolated"}),
    ]  # fmt: skip
    built = build_report(records, Q4, verdict=INTACT, generated_at=NOW, policy=policy(),
                         stores=STORES)  # fmt: skip
    (access,) = [c for c in built["clauses"] if c["id"] == "access-restriction"]
    assert access["status"] == "findings", access
    (finding,) = access["findings"]
    assert finding.startswith(SHOP) and "no AccessRestricted record" in finding
    # NetworkIsolated of shop/orders is on record from 10-02 (the store may be newer).
    assert not [f for f in access["findings"] if "NetworkIsolated" in f]
    # Neither store has a key record: the encryption clause shows none of them in force.
    (encryption,) = [c for c in built["clauses"] if c["id"] == "encryption"]
    assert encryption["status"] == "findings", encryption
    assert sorted(f.split(":")[0] for f in encryption["findings"]) == [CRM, SHOP]

def test_a_purge_not_scheduled_in_the_quarter_is_a_finding_of_its_retention_clause() -> None:
    """The purge CronJob of shop/orders was missing (PurgeScheduled False) from 11-01 on, so
    no run was recorded: the retention clause said `no-evidence`, as for a category whose
    stores had nothing to purge."""
    records = [
        rec(1, "2026-09-20T00:00:00.000000Z", "condition.transition", SHOP,
            {"type": "PurgeScheduled", "status": "True", "reason": "Scheduled"}),
        rec(2, "2026-11-01T00:00:00.000000Z", "condition.transition", SHOP,
            {"type": "PurgeScheduled", "status": "False", "previousStatus": "True",
             "reason": "CronJobMissing"}),
    ]  # fmt: skip
    built = build_report(records, Q4, verdict=INTACT, generated_at=NOW, policy=policy(),
                         stores=STORES)  # fmt: skip
    clauses = {c["id"]: c for c in built["clauses"]}
    contract = clauses["retention/contract-records"]
    # False from 11-01 to the end of the quarter: 61 days.
    assert contract["status"] == "findings", contract
    (finding,) = contract["findings"]
    assert SHOP in finding and "PurgeScheduled" in finding and "61.00 d" in finding
    assert contract["evidence"] == [1, 2]
    # Another category's clause does not take shop/orders' finding.
    assert clauses["retention/technical-support-inquiry"]["findings"] == []


def test_a_control_true_all_quarter_is_no_finding() -> None:
    records = [
        rec(1, "2026-09-20T00:00:00.000000Z", "condition.transition", CRM,
            {"type": "AccessRestricted", "status": "True", "reason": "Restricted"}),
        rec(2, "2026-10-02T00:00:00.000000Z", "condition.transition", CRM,
            {"type": "NetworkIsolated", "status": "True", "reason": "Isolated"}),
    ]  # fmt: skip
    built = build_report(records, Q4, verdict=INTACT, generated_at=NOW, policy=policy(),
                         stores={CRM: STORES[CRM]})  # fmt: skip
    (access,) = [c for c in built["clauses"] if c["id"] == "access-restriction"]
    assert (access["status"], access["findings"], access["evidence"]) == ("evidenced", [], [1, 2])


@pytest.mark.parametrize(
    ("last", "verdict", "code"),
    [
        (11, None, "chain-unverified"),
        # Broken at record 6: records 6 to 10, dated in the quarter, are left out.
        (11, Verdict(5, Head(5, "cd" * 32), Break(6, "signature", "record 6 names key x")),
         "chain-broken"),
        # The head row says 14 records were appended; 11 to 14 were cut off the end, and the
        # last one left (#10) is dated in the quarter.
        (10, Verdict(10, Head(10, "ab" * 32), Break(11, "head", "records 11 to 14 were cut off")),
         "chain-broken"),
    ],
)
def test_no_clause_is_evidenced_on_a_chain_unverified_or_broken_in_the_quarter(
    last: int, verdict: Verdict | None, code: str
) -> None:
    """Anyone with the evidence login can insert rows, and a row at the head's next number
    stops every later append: a report that showed clauses `evidenced` from an unverified
    chain, or from the records before a break that left out part of the quarter, claimed
    coverage that nothing shows."""
    options: dict[str, Any] = {"policy": policy(), "stores": STORES, "generated_at": NOW}
    clean = {c["id"]: c["status"]
             for c in build_report(RECORDS[:last], Q4, verdict=INTACT, **options)["clauses"]}
    assert "evidenced" in clean.values()
    built = build_report(RECORDS[:last], Q4, verdict=verdict, **options)
    (gap,) = [g for g in built["gaps"] if g["code"] == code]
    statuses = {c["id"]: c["status"] for c in built["clauses"]}
    assert "evidenced" not in statuses.values(), statuses
    assert {i for i, s in statuses.items() if s == "not-verifiable"} == {
        i for i, s in clean.items() if s == "not-verifiable"}
    for clause in built["clauses"]:
        if clause["status"] != "not-verifiable":
            assert gap["message"] in clause["findings"], clause


def test_a_break_after_the_quarter_leaves_its_clauses_as_they_are() -> None:
    """Broken at record 12, after record 11 (dated 2027-01-02): every record of 2026Q4 was
    appended before it and is verified, so the quarter's clauses stand."""
    clean = {c["id"]: c["status"] for c in report()["clauses"]}
    broken = Verdict(11, Head(11, "ab" * 32), Break(12, "hash", "record 12 was edited"))
    statuses = {c["id"]: c["status"] for c in report(broken)["clauses"]}
    assert {i: s for i, s in statuses.items() if i != "self-audit"} == {
        i: s for i, s in clean.items() if i != "self-audit"}


def test_a_record_dated_ahead_before_a_break_in_the_quarter_does_not_hide_it() -> None:
    """A replica's clock ran a year ahead for record 4; the chain breaks at record 6 in
    November: records of the quarter after the break are left out all the same."""
    ahead = [r if r.seq != 4 else rec(4, "2027-10-06T03:00:00.000000Z", r.kind, r.subject,
                                      dict(r.payload)) for r in RECORDS[:8]]  # fmt: skip
    broken = Verdict(5, Head(5, "cd" * 32), Break(6, "signature", "record 6 names key x"))
    built = build_report(ahead, Q4, verdict=broken, generated_at=NOW, policy=policy(),
                         stores=STORES)  # fmt: skip
    assert "evidenced" not in {c["status"] for c in built["clauses"]}


def test_a_quarter_not_yet_ended_is_measured_to_the_report_time_only() -> None:
    """Written on 2026-11-01, in the quarter: AccessRestricted False since 10-10 was counted
    as False until 2027-01-01 (83 days, two months of them not yet lived), crm/support's key
    (30-day limit, created 10-20) was called primary past its due date of 11-19, the weeks
    to come were gaps, and the clauses were `evidenced` for a quarter half over."""
    records = [r for r in RECORDS if r.seq != 6]  # AccessRestricted still False
    built = build_report(records, Q4, verdict=INTACT, policy=policy(), stores=STORES,
                         generated_at=datetime(2026, 11, 1, tzinfo=UTC))  # fmt: skip
    (store,) = built["stores"]
    (condition,) = store["conditions"]
    assert condition["secondsNotTrue"] == 22 * DAY  # 10-10 to 11-01
    crm = next(k for k in built["keys"] if k["subject"] == CRM)
    assert [(k["keyId"], k["overdue"]) for k in crm["keys"]] == [(1, False), (2, False)]
    codes = [g["code"] for g in built["gaps"]]
    assert codes.count("quarter-not-ended") == 1
    # Weeks from 09-28 to 10-26 (5): records in 10-05, 10-19: 3 without.
    assert codes.count("no-records") == 3
    assert "evidenced" not in {c["status"] for c in built["clauses"]}
