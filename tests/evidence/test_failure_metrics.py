"""Appends the evidence log could not make are on /metrics, not only in the operator's log.

An operator stopped during an outage loses its in-memory count (no `evidence.outage` record
is ever written), and a log whose next sequence number someone took (a row inserted at the
head's next number with the operator's own login) fails every append for ever: either way
the only trace was a warning line per record.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from dataward.commands.run import open_evidence_log
from dataward.controller.metrics import exposition, unwatch_evidence
from dataward.evidence.errors import EvidenceError
from dataward.evidence.signing import generate_key, private_pem


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_failed_appends_are_counted_on_metrics(tmp_path: Path) -> None:
    key = tmp_path / "evidence-signing.key"
    key.write_bytes(private_pem(generate_key()))
    environ = {
        "DATAWARD_EVIDENCE_DATABASE": f"postgresql://127.0.0.1:{_closed_port()}/evidence"
        "?tls=disable",
        "DATAWARD_EVIDENCE_SIGNING_KEY": str(key),
        "DATAWARD_EVIDENCE_USERNAME": "operator",
        "DATAWARD_EVIDENCE_PASSWORD": "not-shown",
    }
    log = open_evidence_log(environ)
    assert log is not None
    try:
        text = b"".join(exposition()).decode()
        assert _sample(text, "dataward_evidence_unrecorded_failures") == 0
        assert _sample(text, "dataward_evidence_append_failures_total") == 0
        for _ in range(3):
            with pytest.raises(EvidenceError):  # the database is down
                log.append("key.created", "crm/support", {"secret": "ring", "keyId": 1})
        text = b"".join(exposition()).decode()
        assert _sample(text, "dataward_evidence_unrecorded_failures") == 3
        assert _sample(text, "dataward_evidence_append_failures_total") == 3
        assert "not-shown" not in text
    finally:
        unwatch_evidence()
        log.close()
    # No evidence log here: no series.
    assert "dataward_evidence_unrecorded_failures" not in b"".join(exposition()).decode()
