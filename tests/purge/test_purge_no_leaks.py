"""Database errors that quote row values never reach a purge's output.

Each test puts a recognisable personal value (MARKER) in a row, makes the real server raise an
error whose own text quotes that row (a unique violation's `Key (payload)=(...)`, a check
violation's `Failing row contains (...)`, a trigger's message, MariaDB's `Duplicate entry
'...'`), and looks for the marker in everything the run leaves: the result JSON, stdout,
stderr and the termination message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from dataward.cli import main
from dataward.purge import engine
from tests.databases import PURGER_PASSWORD, PURGER_USER, DatabaseServer, DatabaseServers
from tests.purge.support import POLICY, CliRun, run_cli, store_doc, unique
from tests.purge.tables import count, create_table, insert_rows, refusing_trigger

pytestmark = pytest.mark.db
ENGINES = ["postgresql", "mysql"]
KIND = {"postgresql": "timestamptz", "mysql": "datetime6"}
MARKER = "leakmarker-ana.kovac@example.org"


def _everything(run: CliRun) -> str:
    return "\n".join((run.stdout, run.stderr, run.termination or ""))


def _expired_row(server: DatabaseServer, table: str, engine: str, row_id: int = 1) -> None:
    """A row long expired whose payload is MARKER."""
    insert_rows(server, table, KIND[engine], [(row_id, datetime.now(UTC) - timedelta(days=400))])
    server.execute(f"UPDATE {table} SET payload = '{MARKER}' WHERE id = {row_id}")


def _tables(servers: DatabaseServers, engine: str) -> tuple[DatabaseServer, DatabaseServer, str]:
    """A live table holding one expired row whose payload is MARKER, and its (empty) archive."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("leaky")
    for server in (live, archive):
        create_table(server, table, KIND[engine])
    _expired_row(live, table, engine)
    return live, archive, table


def _fails_quietly(
    tmp_path: Path, live: DatabaseServer, table: str, archive: DatabaseServer | None = None
) -> None:
    """The purge of `table` (archiving to `archive` if given) fails, quotes MARKER nowhere,
    and leaves the live row in place."""
    if archive is None:
        doc = store_doc(live, table)
    else:
        doc = store_doc(live, table, category="contracts", archive=archive)
    run = run_cli(tmp_path, doc)
    assert run.result["result"] == "Failed", run.result
    assert MARKER not in _everything(run), _everything(run)
    assert count(live, table) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_unique_violation_in_the_archive_quotes_no_value(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    """The archive holds another row with the same value under a second unique index: the
    copy fails with `Key (payload)=(<marker>) already exists` / `Duplicate entry '<marker>'`."""
    live, archive, table = _tables(servers, engine)
    archive.execute(f"CREATE UNIQUE INDEX {table}_payload ON {table} (payload)")
    _expired_row(archive, table, engine, row_id=999)
    _fails_quietly(tmp_path, live, table, archive)


@pytest.mark.parametrize("engine", ENGINES)
def test_check_violation_in_the_archive_quotes_no_value(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    """`Failing row contains (1, ..., <marker>)`."""
    live, archive, table = _tables(servers, engine)
    archive.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_no_leak CHECK (payload NOT LIKE 'leak%')"
    )
    _fails_quietly(tmp_path, live, table, archive)


@pytest.mark.parametrize("engine", ENGINES)
def test_trigger_error_quoting_the_row_reaches_no_output(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    live, _archive, table = _tables(servers, engine)
    refusing_trigger(live, table, "payload")
    _fails_quietly(tmp_path, live, table)


def _warning_trigger(server: DatabaseServer, table: str) -> None:
    """A BEFORE DELETE trigger that lets the row go but makes the server warn, quoting it."""
    if server.engine == "postgresql":
        server.execute(
            f"CREATE FUNCTION {table}_warn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE WARNING 'deleting %', OLD.payload; RETURN OLD; END $$",
            f"CREATE TRIGGER {table}_warn BEFORE DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_warn()",
        )
    else:  # warning 1292: Truncated incorrect DOUBLE value: '<payload>'
        server.execute(
            f"CREATE TRIGGER {table}_warn BEFORE DELETE ON {table} FOR EACH ROW "
            "SET @dataward_leak_probe = OLD.payload + 0"
        )


@pytest.mark.parametrize("engine", ENGINES)
def test_server_warnings_quoting_the_row_reach_no_output(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    live, _archive, table = _tables(servers, engine)
    _warning_trigger(live, table)
    run = run_cli(tmp_path, store_doc(live, table))
    assert run.result["result"] == "Succeeded", run.result
    assert count(live, table) == 0
    assert MARKER not in _everything(run), _everything(run)


def test_an_unforeseen_error_is_a_failed_result_naming_its_class_only(
    servers: DatabaseServers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An error no code path expects, raised deep in a real run (here in-process: the reading
    of the oldest expired row's age fails with a TypeError whose text quotes a row value):
    the run still ends with its Failed record, saying only the error's class, and no
    traceback. (A MariaDB zero date was this test's source of such an error until the engine
    refused it as `ColumnRefused`: tests/purge/test_purge_zero_dates.py.)"""
    live, _archive, table = _tables(servers, "mysql")

    def unforeseen(*_args: object) -> float:
        raise TypeError(f"cannot read {MARKER!r}")

    monkeypatch.setattr(engine, "overdue_seconds", unforeseen)
    store_file, policy_file = tmp_path / "store.yaml", tmp_path / "policy.yaml"
    store_file.write_text(yaml.safe_dump(store_doc(live, table)))
    policy_file.write_text(yaml.safe_dump(POLICY))
    termination = tmp_path / "termination.log"
    for name, value in (
        ("DATAWARD_DB_USERNAME", PURGER_USER),
        ("DATAWARD_DB_PASSWORD", PURGER_PASSWORD),
        ("DATAWARD_TERMINATION_LOG", str(termination)),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATAWARD_PURGE_FAULT", raising=False)
    returncode = main(
        ["purge", "-f", str(store_file), "--policy", str(policy_file), "--recheck-interval", "0"]
    )
    out, err = capsys.readouterr()
    run = CliRun(
        returncode, out, err, termination.read_text() if termination.exists() else None
    )
    assert run.returncode == 1
    assert (run.result["result"], run.result["reason"]) == ("Failed", "Internal"), run.result
    assert "TypeError" in run.result["message"]
    assert run.termination is not None and "Internal" in run.termination
    assert "Traceback" not in run.stderr, run.stderr
    assert MARKER not in _everything(run)
    assert count(live, table) == 1
