"""Hand-made evidence records for the report tests (hashes and signatures are not checked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dataward.evidence.records import Record
from dataward.model.durations import Duration
from dataward.model.policy import Policy, parse_policy
from dataward.report.build import StoreInfo

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "report-schema.json"


def rec(seq: int, time: str, kind: str, subject: str, payload: dict[str, Any]) -> Record:
    """A record as the store reads it back; the chain fields are placeholders."""
    return Record(seq, time, kind, subject, payload, "0" * 64, "k" * 16, f"{seq:064x}", "")


def policy() -> Policy:
    """examples/policy.yaml (keyRotation 90d)."""
    return parse_policy(yaml.safe_load((ROOT / "examples" / "policy.yaml").read_text()))


STORES = {
    "crm/support": StoreInfo("technical-support-inquiry", Duration(30, "d")),
    "shop/orders": StoreInfo("contract-records"),
}

CRM, SHOP = "crm/support", "shop/orders"

# A quarter (2026Q4) of records; the figures the tests expect are worked out by hand there.
RECORDS = [
    rec(1, "2026-09-20T00:00:00.000000Z", "key.created", CRM,
        {"secret": "dataward-support-keyring", "keyId": 1,
         "created": "2026-09-20T00:00:00.000000Z"}),
    rec(2, "2026-09-25T00:00:00.000000Z", "condition.transition", CRM,
        {"type": "AccessRestricted", "status": "True", "reason": "Restricted"}),
    rec(3, "2026-10-05T03:00:00.000000Z", "purge.run", CRM,
        {"result": "Succeeded", "dryRun": False, "rowsDeleted": 100, "expiredRemaining": 0}),
    rec(4, "2026-10-06T03:00:00.000000Z", "purge.run", SHOP,
        {"result": "Succeeded", "dryRun": False, "rowsDeleted": 40, "rowsArchived": 40,
         "rowsDestroyed": 7, "expiredRemaining": 5}),
    rec(5, "2026-10-10T00:00:00.000000Z", "condition.transition", CRM,
        {"type": "AccessRestricted", "status": "False", "previousStatus": "True",
         "reason": "OtherBindingGrantsSecrets",
         "message": "RoleBinding crm/<b>legacy</b> grants get on the Secrets"}),
    rec(6, "2026-10-12T12:00:00.000000Z", "condition.transition", CRM,
        {"type": "AccessRestricted", "status": "True", "previousStatus": "False",
         "reason": "Restricted"}),
    rec(7, "2026-10-20T00:00:00.000000Z", "key.rotated", CRM,
        {"secret": "dataward-support-keyring", "keyId": 2, "previousKeyId": 1}),
    rec(8, "2026-10-21T03:00:00.000000Z", "purge.run", CRM,
        {"result": "Succeeded", "dryRun": True, "rowsDeleted": 999, "expiredRemaining": 999}),
    rec(9, "2026-11-02T06:00:00.000000Z", "request.answered", CRM,
        {"requestId": "dsr-1", "requestType": "access", "outcome": "fulfilled",
         "receivedAt": "2026-10-30T00:00:00Z", "answeredAt": "2026-11-02T06:00:00Z"}),
    rec(10, "2026-12-15T09:00:00.000000Z", "policy.revision", "clunix",
        {"policy": "clunix", "generation": 5, "effectiveDate": "2021-04-26"}),
    rec(11, "2027-01-02T03:00:00.000000Z", "purge.run", CRM,
        {"result": "Succeeded", "dryRun": False, "rowsDeleted": 5}),
]  # fmt: skip
