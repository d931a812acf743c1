"""Database errors that quote the subject's rows never reach a request's output.

The subject's own identifier is personal data, and so are the rows a request touches: a
server error quoting either (a unique violation's `Key (email)=(...)`, MariaDB's `Duplicate
entry '...'`, a check violation's `Failing row contains (...)`, a trigger's own message)
must leave only its code in the result, stdout, stderr and the termination message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.tables import refusing_trigger
from tests.subjects.support import EMAIL, SUBJECT, Seeded, ids, leaks, seeded_store
from tests.subjects.test_subjects_cli import cli, files, result_of, secret_dir

pytestmark = pytest.mark.db
ENGINES = ["postgresql", "mysql"]


def _erasure_fails_quietly(tmp_path: Path, doc: dict[str, object]) -> None:
    """The subject's erasure fails, and nothing it leaves (result, stdout, stderr, the
    termination message) quotes the subject or their rows."""
    termination = tmp_path / "termination.log"
    run = cli(tmp_path, "run", "--type", "erasure", *files(tmp_path, doc),
              "--identifier-dir", str(secret_dir(tmp_path, SUBJECT)),
              "--termination-log", str(termination))  # fmt: skip
    written = termination.read_text() if termination.exists() else ""
    result, everything = result_of(run), "\n".join((run.stdout, run.stderr, written))
    assert result["outcome"] == "Failed", result
    assert not leaks(everything), everything


def _archived(servers: DatabaseServers, engine: str) -> tuple[DatabaseServer, Seeded]:
    """The seeded store of a category that archives, and its archive server."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    return archive, seeded_store(live, archive, category="contracts")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_trigger_quoting_the_subject_reaches_no_output(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    seeded = seeded_store(live)
    refusing_trigger(live, seeded.people, "email")
    _erasure_fails_quietly(tmp_path, seeded.doc)
    assert ids(live, seeded.people) >= seeded.groups["subject"]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_unique_violation_in_the_archive_quotes_no_identifier(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    """The archive already holds another row with the subject's email under a unique index."""
    archive, seeded = _archived(servers, engine)
    archive.execute(f"CREATE UNIQUE INDEX {seeded.people}_email_u ON {seeded.people} (email)")
    ts = datetime.now(UTC).replace(tzinfo=None)
    if engine == "postgresql":
        archive.query(f"INSERT INTO {seeded.people} (id, ts, email) VALUES (9999, %s, %s) "
                      "RETURNING id", (ts.replace(tzinfo=UTC), EMAIL))  # fmt: skip
    else:
        archive.query(
            f"INSERT INTO {seeded.people} (id, ts, email) VALUES (9999, %s, %s)", (ts, EMAIL)
        )
    _erasure_fails_quietly(tmp_path, seeded.doc)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_check_violation_in_the_archive_quotes_no_row(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    """`Failing row contains (..., <email>, ...)`."""
    archive, seeded = _archived(servers, engine)
    archive.execute(
        f"ALTER TABLE {seeded.people} ADD CONSTRAINT {seeded.people}_ck CHECK (email NOT LIKE 'a%')"
    )
    _erasure_fails_quietly(tmp_path, seeded.doc)
