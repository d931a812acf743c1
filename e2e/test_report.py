"""The auditor's quarter, as processes: keygen, init, the operator appends, verify, report.

`dataward evidence` and `dataward report` run as the `dataward` command would (this checkout,
a fresh interpreter); the report reads the log with a login that may only SELECT, anchors on the
head an earlier verification printed, and its page is opened in headless Chromium. No control
plane: the report reads only the evidence database and the policy files.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import psycopg
import pytest

from dataward.evidence import EvidenceLog, load_private_key
from dataward.model.store import Database
from dataward.purge.credentials import Credentials
from e2e.cli import dataward
from e2e.fixtures_databases import Postgres, postgres_fixture  # noqa: F401 - a fixture
from tests.report.browser import png_summary, screenshot

REPO = Path(__file__).resolve().parent.parent
AUDITOR_PASSWORD = f"auditor-{uuid.uuid4().hex[:12]}"



@pytest.fixture
def evidence_url(postgres: Postgres) -> Iterator[tuple[str, Database, str]]:
    """A fresh evidence database on the archive server, and a SELECT-only auditor role."""
    server = postgres.archive
    suffix = uuid.uuid4().hex[:8]
    name, auditor = f"evidence_{suffix}", f"auditor_{suffix}"
    server.execute(
        f"CREATE DATABASE {name} OWNER {postgres.username}",
        f"CREATE ROLE {auditor} LOGIN PASSWORD '{AUDITOR_PASSWORD}'",
    )
    database = Database("postgresql", server.host, server.port, name, "evidence", "disable")
    yield f"postgresql://{server.host}:{server.port}/{name}?tls=disable", database, auditor
    server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"DROP ROLE {auditor}")


def test_an_auditor_writes_the_quarterly_report(
    postgres: Postgres, evidence_url: tuple[str, Database, str], tmp_path: Path
) -> None:
    url, database, auditor = evidence_url
    operator = (postgres.username, postgres.password)

    keygen = dataward("evidence", "keygen", "--out", "keys", login=operator, cwd=tmp_path)
    assert keygen.returncode == 0, keygen.stderr
    init = dataward("evidence", "init", "--database", url, login=operator, cwd=tmp_path)
    assert init.returncode == 0, init.stderr

    # What the operator appends during the quarter.
    times = iter(
        [
            datetime(2026, 10, 6, 3, tzinfo=UTC),
            datetime(2026, 11, 2, tzinfo=UTC),
            datetime(2026, 11, 4, tzinfo=UTC),
        ]
    )
    key = load_private_key(tmp_path / "keys" / "evidence-signing.key")
    credentials = Credentials(*operator)
    with EvidenceLog.open(database, credentials, key, clock=lambda: next(times)) as log:
        log.append(
            "purge.run",
            "crm/support-inquiries",
            {"result": "Succeeded", "dryRun": False, "rowsDeleted": 250},
        )
        log.append(
            "condition.transition",
            "crm/support-inquiries",
            {"type": "AccessRestricted", "status": "False", "reason": "OtherBindingGrantsSecrets"},
        )
        log.append(
            "condition.transition",
            "crm/support-inquiries",
            {"type": "AccessRestricted", "status": "True", "reason": "Restricted"},
        )

    verify = dataward(
        "evidence",
        "verify",
        "--database",
        url,
        "--public-key",
        "keys/evidence-signing.pub",
        login=operator,
        cwd=tmp_path,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    head = verify.stdout.strip().rsplit("head ", 1)[1]
    assert head.startswith("3:")

    # The auditor may read, nothing more (the operator's login owns the tables).
    postgres.archive.execute(f"GRANT CONNECT ON DATABASE {database.name} TO {auditor}")
    with psycopg.connect(
        host=database.host,
        port=database.port,
        dbname=database.name,
        user=operator[0],
        password=operator[1],
        autocommit=True,
    ) as conn:
        conn.execute(f"GRANT SELECT ON dataward_evidence, dataward_evidence_head TO {auditor}")

    report_args = [
        "report",
        "--quarter",
        "2026Q4",
        "--database",
        url,
        "--public-key",
        "keys/evidence-signing.pub",
        "--expect-head",
        head,
        "-f",
        str(REPO / "examples" / "policy.yaml"),
        "-f",
        str(REPO / "examples" / "stores"),
        "--json",
        "report.json",
        "--html",
        "report.html",
    ]
    written = dataward(*report_args, login=(auditor, AUDITOR_PASSWORD), cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert "chain intact, 3 records in the period" in written.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    schema = json.loads((REPO / "docs" / "report-schema.json").read_text())
    jsonschema.validate(
        report, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert report["chain"]["head"]["seq"] == 3
    assert [
        (c["category"], c["rowsDeleted"], c["evidence"]) for c in report["purges"]["byCategory"]
    ] == [("technical-support-inquiry", 250, [1])]
    (finding,) = report["foreignAccess"]
    assert (finding["openSeconds"], finding["evidence"]) == (2 * 86400, [2, 3])

    png = tmp_path / "report.png"
    assert screenshot(tmp_path / "report.html", png) == []
    width, height, rows, _ = png_summary(png)
    assert (width, height) == (1280, 2000) and rows > 200

    # An anchor the log no longer matches: the report says so and exits 1.
    forged = head.split(":")[0] + ":" + "0" * 64
    args = [a if a != head else forged for a in report_args]
    mismatched = dataward(*args, login=(auditor, AUDITOR_PASSWORD), cwd=tmp_path)
    assert mismatched.returncode == 1, mismatched.stderr
    broken = json.loads((tmp_path / "report.json").read_text())["chain"]["broken"]
    # No anchor matches: a log re-signed with the key could differ from record 1 on, so the
    # break is placed there and nothing of the period is counted as verified.
    assert (broken["seq"], broken["check"]) == (1, "anchor")
