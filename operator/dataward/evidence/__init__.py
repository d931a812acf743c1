"""The tamper-evident evidence log: signed, hash-chained records in a real database.

Pure parts: `records` (canonical encoding, hashing), `payloads` (what each kind may say),
`signing` (Ed25519), `chain` (next record, verification). I/O: `store` (SQL through the
purge's sessions) and `log` (`EvidenceLog.append`, the operator's entry point).
"""

from dataward.evidence.chain import Break, Head, Verdict, verify_chain
from dataward.evidence.config import EvidenceSettings, settings_from_environ
from dataward.evidence.errors import EvidenceError
from dataward.evidence.log import EvidenceLog
from dataward.evidence.payloads import KINDS, purge_run_payload
from dataward.evidence.records import Record
from dataward.evidence.signing import load_private_key, load_public_key

__all__ = [
    "KINDS",
    "Break",
    "EvidenceError",
    "EvidenceLog",
    "EvidenceSettings",
    "Head",
    "Record",
    "Verdict",
    "load_private_key",
    "load_public_key",
    "purge_run_payload",
    "settings_from_environ",
    "verify_chain",
]
