"""`dataward subject-request` as a Job runs it: files, a Secret-shaped identifier directory,
the sealed export, the result without personal data, crashes at every step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.databases import PURGER_PASSWORD, PURGER_USER, DatabaseServers
from tests.purge.support import POLICY, REPO
from tests.subjects.support import (
    EMAIL,
    PHONE,
    SUBJECT,
    ids,
    leaks,
    seeded_store,
)

pytestmark = pytest.mark.db
ENGINES = ["postgresql", "mysql"]


def secret_dir(tmp_path: Path, values: dict[str, str]) -> Path:
    """A directory laid out like a mounted Secret: ..data -> a timestamped dir, links per key."""
    root = tmp_path / "identifier"
    target = root / "..2026_12_01_00_00_00.000000001"
    target.mkdir(parents=True)
    for kind, value in values.items():
        (target / kind).write_text(value + "\n")
    (root / "..data").symlink_to(target.name)
    for kind in values:
        (root / kind).symlink_to(f"..data/{kind}")
    return root


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DATAWARD_")},
        "DATAWARD_DB_USERNAME": PURGER_USER,
        "DATAWARD_DB_PASSWORD": PURGER_PASSWORD,
        "DATAWARD_ARCHIVE_USERNAME": PURGER_USER,
        "DATAWARD_ARCHIVE_PASSWORD": PURGER_PASSWORD,
        "PYTHONPATH": str(REPO / "operator"),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "dataward", "subject-request", *args],
        capture_output=True, text=True, env=environ, timeout=120, check=False,
    )  # fmt: skip


def files(tmp_path: Path, doc: dict[str, Any]) -> list[str]:
    (tmp_path / "store.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    return ["-f", str(tmp_path / "store.yaml"), "--policy", str(tmp_path / "policy.yaml")]


def result_of(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result (rc {run.returncode}): {run.stderr}"
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed


@pytest.mark.parametrize("engine", ENGINES)
def test_access_through_the_cli_seals_the_rows_for_the_requester_only(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    doc, people, _notes, _audit, _now, groups, _note_groups = seeded_store(live)
    key, pub = tmp_path / "requester.key", tmp_path / "requester.pub"
    made = cli(tmp_path, "keygen", "--private-key-out", str(key), "--public-key-out", str(pub))
    assert made.returncode == 0, made.stderr
    assert key.stat().st_mode & 0o077 == 0
    termination = tmp_path / "termination.log"
    sealed = tmp_path / "export.sealed"

    run = cli(
        tmp_path, "run", "--type", "access", *files(tmp_path, doc),
        "--identifier-dir", str(secret_dir(tmp_path, SUBJECT)),
        "--recipient-public-key", str(pub), "--export-out", str(sealed),
        "--termination-log", str(termination),
    )  # fmt: skip

    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert result["outcome"] == "Succeeded" and result["rowsExported"] == 6
    assert json.loads(termination.read_text()) == result
    blob = sealed.read_bytes()
    for text in (run.stdout, run.stderr, termination.read_text(), blob.decode("latin-1")):
        assert not leaks(text), text
        assert "subject-email" not in text and PURGER_PASSWORD not in text
    opened = cli(tmp_path, "open", "--private-key", str(key), "--in", str(sealed))
    assert opened.returncode == 0, opened.stderr
    document = json.loads(opened.stdout)
    exported = {r["values"]["id"] for r in document["rows"] if r["table"] == people}
    assert exported == groups["subject"]
    assert {r["values"]["phone"] for r in document["rows"] if r["values"].get("id") == 3} == {PHONE}

    other = tmp_path / "other"
    other.mkdir()
    cli(tmp_path, "keygen", "--private-key-out", str(other / "k"), "--public-key-out",
        str(other / "p"))  # fmt: skip
    refused = cli(tmp_path, "open", "--private-key", str(other / "k"), "--in", str(sealed))
    assert refused.returncode == 1 and refused.stdout == ""
    assert not leaks(refused.stderr) and "subject-email" not in refused.stderr


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fault", ["after-select", "after-archive-commit", "after-delete"])
def test_an_erasure_killed_at_any_step_loses_nothing_and_a_rerun_finishes(
    servers: DatabaseServers, engine: str, fault: str, tmp_path: Path
) -> None:
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    doc, people, notes, _audit, _now, groups, note_groups = seeded_store(
        live, archive, category="contracts"
    )
    args = ["run", "--type", "erasure", *files(tmp_path, doc),
            "--identifier-dir", str(secret_dir(tmp_path, SUBJECT))]  # fmt: skip

    killed = cli(tmp_path, *args, env={"DATAWARD_PURGE_FAULT": fault})
    assert killed.returncode == 137, killed.stderr
    # Every statutory row of the subject is in live or in the archive: none is lost.
    for i in (1, 2):
        assert i in ids(live, people) or i in ids(archive, people)
    assert 4 in ids(live, people)
    assert not leaks(killed.stdout + killed.stderr)

    done = cli(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    result = result_of(done)
    assert result["outcome"] == "Succeeded", result["message"]
    assert ids(live, people) == groups["others"] | {4}
    assert ids(archive, people) == {1, 2}
    assert ids(live, notes, "note_id") == note_groups["others"]
    assert ids(archive, notes, "note_id") == note_groups["subject"]
    assert result["rowsKept"] == 5 and result["tables"][0]["rowsKeptLive"] == 1
    assert not leaks(done.stdout + done.stderr)


@pytest.mark.parametrize("engine", ENGINES)
def test_dry_run_through_the_cli_changes_nothing(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    doc, people, _notes, _audit, _now, groups, _note_groups = seeded_store(live)

    run = cli(tmp_path, "run", "--type", "erasure", "--dry-run", *files(tmp_path, doc),
              "--identifier-dir", str(secret_dir(tmp_path, {"email": EMAIL})))  # fmt: skip

    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert (result["outcome"], result["reason"], result["dryRun"]) == ("Succeeded", "DryRun", True)
    assert result["rowsDeleted"] == 4  # two people by email, two notes
    assert ids(live, people) == groups["subject"] | groups["others"]
    assert not leaks(run.stdout + run.stderr)


def test_refusals_come_before_any_connection_and_quote_no_identifier(tmp_path: Path) -> None:
    doc = {
        "apiVersion": "dataward.io/v1alpha1", "kind": "PersonalDataStore",
        "metadata": {"name": "st", "namespace": "crm"},
        "spec": {
            "policy": "clunix", "category": "support",
            "workload": {"podSelector": {"matchLabels": {"app": "db"}}, "ports": [{"port": 1}]},
            "database": {"engine": "postgresql", "host": "127.0.0.1", "port": 1, "name": "x",
                         "credentialsSecret": "c", "tls": "disable"},
            "records": [{"table": "t", "timestampColumn": "ts", "keyColumns": ["id"],
                         "subjectColumns": [{"kind": "email", "column": "email"}]}],
        },
    }  # fmt: skip
    identifiers = secret_dir(tmp_path, SUBJECT)
    no_key = cli(tmp_path, "run", "--type", "access", *files(tmp_path, doc), "--identifier-dir",
                 str(identifiers), "--export-out", str(tmp_path / "x"))  # fmt: skip
    assert no_key.returncode == 1
    assert result_of(no_key)["reason"] == "Configuration"
    assert "recipient-public-key" in result_of(no_key)["message"]

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "email").write_text("\n")
    empty = cli(tmp_path, "run", "--type", "erasure", *files(tmp_path, doc),
                "--identifier-dir", str(tmp_path / "empty"))  # fmt: skip
    assert empty.returncode == 1 and "email identifier is empty" in result_of(empty)["message"]

    down = cli(tmp_path, "run", "--type", "erasure", *files(tmp_path, doc),
               "--identifier-dir", str(identifiers))  # fmt: skip
    assert down.returncode == 1 and result_of(down)["reason"] == "ConnectionFailed"
    for run in (no_key, empty, down):
        assert not leaks(run.stdout + run.stderr)
