"""`dataward subject-request` in API mode against the real API server and real PostgreSQL:
the store and policy come from the API, the sealed export goes into an existing Secret, and
the identifier reaches neither the API server nor the output.

The DataSubjectRequest resource and the operator's Jobs are tested with the operator; this
module tests the program those Jobs run, as a local process with an admin kubeconfig.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dataward.subjects.export import generate_keypair, open_sealed
from e2e.fixtures_databases import Postgres
from e2e.fixtures_operator import apply, get
from e2e.harness import ControlPlane

pytestmark = pytest.mark.usefixtures("crds_installed")
REPO = Path(__file__).resolve().parent.parent
EMAIL = "kim.minji+dsr%_'@example.com"


def _cli(control_plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DATAWARD_")},
        "KUBECONFIG": str(control_plane.kubeconfig),
        "PYTHONPATH": str(REPO / "operator"),
    }
    return subprocess.run(
        [sys.executable, "-m", "dataward", "subject-request", *args],
        capture_output=True, text=True, env=environ, timeout=120, check=False,
    )  # fmt: skip


def _result(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result (rc {run.returncode}): {run.stderr}"
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed


def test_access_and_erasure_from_the_api(
    control_plane: ControlPlane, postgres: Postgres, namespace: str, tmp_path: Path
) -> None:
    table = f"dsr_{uuid.uuid4().hex[:8]}"
    live = postgres.live
    live.execute(
        f"CREATE TABLE {table} (id bigint PRIMARY KEY, email text, asked timestamptz, body text)",
        f"ALTER TABLE {table} OWNER TO {postgres.username}",
    )
    now = datetime.now(UTC)
    conn = live.admin()
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {table} VALUES (%s, %s, %s, %s)",
            [(1, EMAIL, now - timedelta(days=3), "mine"), (2, EMAIL.upper(), now, "not mine"),
             (3, "x" + EMAIL, now, "not mine")],
        )  # fmt: skip
    conn.close()
    policy = f"dsr-cli-{uuid.uuid4().hex[:6]}"
    apply(
        control_plane,
        {"apiVersion": "dataward.io/v1alpha1", "kind": "PrivacyPolicy",
         "metadata": {"name": policy},
         "spec": {"categories": [{"name": "support", "purposes": ["service"],
                                  "retention": {"period": "1y", "trigger": "inquired"}}]}},
        {"apiVersion": "dataward.io/v1alpha1", "kind": "PersonalDataStore",
         "metadata": {"name": "inquiries", "namespace": namespace},
         "spec": {"policy": policy, "category": "support",
                  "workload": {"podSelector": {"matchLabels": {"app": "db"}},
                               "ports": [{"port": 5432}]},
                  "database": live.store_database(),
                  "records": [{"table": table, "timestampColumn": "asked", "keyColumns": ["id"],
                               "subjectColumns": [{"kind": "email", "column": "email"}]}]}},
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "export", "namespace": namespace}, "type": "Opaque"},
    )  # fmt: skip
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "username").write_text(postgres.username)
    (credentials / "password").write_text(postgres.password)
    identifier = tmp_path / "identifier"
    identifier.mkdir()
    (identifier / "email").write_text(EMAIL)
    pair = generate_keypair()
    (tmp_path / "requester.pub").write_bytes(pair.public_pem)
    common = ["--store", f"{namespace}/inquiries", "--identifier-dir", str(identifier),
              "--credentials-dir", str(credentials)]  # fmt: skip

    access = _cli(control_plane, "run", "--type", "access", *common,
                  "--recipient-public-key", str(tmp_path / "requester.pub"),
                  "--export-secret", f"{namespace}/export")  # fmt: skip

    assert access.returncode == 0, access.stderr
    result = _result(access)
    assert (result["outcome"], result["rowsExported"]) == ("Succeeded", 1), result["message"]
    secret = get(control_plane, "secret", "export", namespace)
    assert secret is not None
    document = json.loads(open_sealed(base64.b64decode(secret["data"]["export.sealed"]),
                                      pair.private_pem))  # fmt: skip
    assert [r["values"]["id"] for r in document["rows"]] == [1]
    assert document["rows"][0]["values"]["email"] == EMAIL

    erasure = _cli(control_plane, "run", "--type", "erasure", *common)
    assert erasure.returncode == 0, erasure.stderr
    assert _result(erasure)["rowsDeleted"] == 1
    assert {int(i) for (i,) in live.query(f"SELECT id FROM {table}")} == {2, 3}

    seen = control_plane.kubectl("get", "pds,secrets,events", "-n", namespace, "-o", "yaml").stdout
    for text in (seen, access.stdout, access.stderr, erasure.stdout, erasure.stderr):
        assert EMAIL not in text and EMAIL.lower() not in text.lower()
        assert postgres.password not in text
