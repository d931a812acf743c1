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
from tests.subjects.support import EMAIL, SUBJECT, ids, leaks, seeded_store
from tests.subjects.test_subjects_cli import cli, files, result_of, secret_dir

pytestmark = pytest.mark.db
ENGINES = ["postgresql", "mysql"]


def _erase(tmp_path: Path, doc: dict[str, object]) -> tuple[dict[str, object], str]:
    termination = tmp_path / "termination.log"
    run = cli(tmp_path, "run", "--type", "erasure", *files(tmp_path, doc),
              "--identifier-dir", str(secret_dir(tmp_path, SUBJECT)),
              "--termination-log", str(termination))  # fmt: skip
    written = termination.read_text() if termination.exists() else ""
    return result_of(run), "\n".join((run.stdout, run.stderr, written))


def _refusing_trigger(server: DatabaseServer, table: str) -> None:
    """A BEFORE DELETE trigger whose error quotes the row's email."""
    if server.engine == "postgresql":
        server.execute(
            f"CREATE FUNCTION {table}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'row of % may not go', OLD.email "
            "USING DETAIL = OLD.email, HINT = OLD.email, COLUMN = OLD.email, "
            "CONSTRAINT = OLD.email, TABLE = OLD.email; END $$",
            f"CREATE TRIGGER {table}_refuse BEFORE DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_refuse()",
        )
    else:
        server.execute(
            f"CREATE TRIGGER {table}_refuse BEFORE DELETE ON {table} FOR EACH ROW BEGIN "
            "DECLARE text VARCHAR(250) DEFAULT CONCAT('row of ', OLD.email, ' may not go'); "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = text; END"
        )


@pytest.mark.parametrize("engine", ENGINES)
def test_a_trigger_quoting_the_subject_reaches_no_output(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    seeded = seeded_store(live)
    _refusing_trigger(live, seeded.people)
    result, everything = _erase(tmp_path, seeded.doc)
    assert result["outcome"] == "Failed", result
    assert not leaks(everything), everything
    assert ids(live, seeded.people) >= seeded.groups["subject"]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_unique_violation_in_the_archive_quotes_no_identifier(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    """The archive already holds another row with the subject's email under a unique index."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    seeded = seeded_store(live, archive, category="contracts")
    archive.execute(f"CREATE UNIQUE INDEX {seeded.people}_email_u ON {seeded.people} (email)")
    ts = datetime.now(UTC).replace(tzinfo=None)
    if engine == "postgresql":
        archive.query(f"INSERT INTO {seeded.people} (id, ts, email) VALUES (9999, %s, %s) "
                      "RETURNING id", (ts.replace(tzinfo=UTC), EMAIL))  # fmt: skip
    else:
        archive.query(
            f"INSERT INTO {seeded.people} (id, ts, email) VALUES (9999, %s, %s)", (ts, EMAIL)
        )
    result, everything = _erase(tmp_path, seeded.doc)
    assert result["outcome"] == "Failed", result
    assert not leaks(everything), everything


@pytest.mark.parametrize("engine", ENGINES)
def test_a_check_violation_in_the_archive_quotes_no_row(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    """`Failing row contains (..., <email>, ...)`."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    seeded = seeded_store(live, archive, category="contracts")
    archive.execute(
        f"ALTER TABLE {seeded.people} ADD CONSTRAINT {seeded.people}_ck CHECK (email NOT LIKE 'a%')"
    )
    result, everything = _erase(tmp_path, seeded.doc)
    assert result["outcome"] == "Failed", result
    assert not leaks(everything), everything
