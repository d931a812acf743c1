"""`dataward purge` as the CronJob runs it: files, env credentials, JSON out, exit status."""

from __future__ import annotations

import copy
import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from dataward.commands.purge import _rechecker
from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.purge.source import FileSource
from dataward.render.purge_job import render_purge_cronjob
from dataward.render.settings import RenderSettings
from tests.databases import PURGER_PASSWORD, DatabaseServers
from tests.purge.support import POLICY, run_cli, store_doc, unique
from tests.purge.tables import count, create_table, insert_rows


@pytest.mark.db
@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_cli_run_prints_and_records_the_result_without_secrets(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("cli")
    create_table(live, table, "date")
    insert_rows(live, table, "date", [(1, datetime(2020, 1, 1, tzinfo=UTC)), (2, None)])
    run = run_cli(tmp_path, store_doc(live, table))
    assert run.returncode == 0, run.stderr
    result = run.result
    assert result["result"] == "Succeeded" and result["rowsDeleted"] == 1
    assert result["nullTriggers"] == 1 and result["store"] == "crm/st"
    assert json.loads(run.termination or "{}") == result
    for text in (run.stdout, run.stderr, run.termination or ""):
        assert PURGER_PASSWORD not in text and "row-" not in text
    assert count(live, table) == 1


@pytest.mark.db
def test_cli_wrong_password_fails_with_a_safe_message(
    servers: DatabaseServers, tmp_path: Path
) -> None:
    live = servers.pg_live
    table = unique("cli")
    create_table(live, table, "date")
    run = run_cli(tmp_path, store_doc(live, table), env={"DATAWARD_DB_PASSWORD": "hunter2-wrong"})
    assert run.returncode == 1
    assert run.result["error"]["category"] == "AuthenticationFailed"
    assert "hunter2" not in run.stdout + run.stderr


def test_cli_without_credentials_fails_and_says_which(tmp_path: Path) -> None:
    from tests.databases import DatabaseServer

    server = DatabaseServer("postgresql", "live", 1, directory=tmp_path, time_zone="UTC")
    run = run_cli(tmp_path, store_doc(server, "t"), env={"DATAWARD_DB_USERNAME": ""})
    assert run.returncode == 1
    assert "DATAWARD_DB_USERNAME" in run.result["message"]


def test_suspend_in_the_file_is_seen_between_batches(tmp_path: Path) -> None:
    from tests.databases import DatabaseServer

    server = DatabaseServer("postgresql", "live", 1, directory=tmp_path, time_zone="UTC")
    path = tmp_path / "store.yaml"
    doc = store_doc(server, "t")
    path.write_text(yaml.safe_dump_all([doc, POLICY]))
    source = FileSource([path])
    store, policy = source.load()
    assert policy is not None
    check = _rechecker(source, store, parse_policy(POLICY), interval=0)
    assert check() is None
    doc["spec"]["purge"]["suspend"] = True
    path.write_text(yaml.safe_dump_all([doc, POLICY]))
    stop = check()
    assert stop is not None and stop.reason == "Suspended"


def test_a_store_file_yaml_cannot_convert_is_a_configuration_error(tmp_path: Path) -> None:
    """PyYAML raises ValueError, quoting the value, for `!!int x`: the purge says the file is
    not valid YAML (a Configuration failure the operator reports), not an Internal error."""
    from dataward.purge.errors import PurgeError

    path = tmp_path / "store.yaml"
    path.write_text("kind: PersonalDataStore\nspec:\n  retention: !!int hunter2\n")
    with pytest.raises(PurgeError) as raised:
        FileSource([path]).load()
    assert raised.value.category == "Configuration"
    assert "is not valid YAML" in raised.value.message and "hunter2" not in raised.value.message


def test_a_job_made_for_one_database_never_logs_in_to_another(tmp_path: Path) -> None:
    """A store's editor changes spec.database's host and credentialsSecret together (admitted:
    they may read the new Secret, not necessarily the old). A purge Job the old CronJob starts
    before the operator renders it again mounts the OLD Secret but reads the host from the
    store as it is now: it sent the old login to the new host (the confused deputy, by a
    race). The Job carries the connection it was made for and refuses another before
    connecting."""
    from tests.databases import DatabaseServer

    server = DatabaseServer("postgresql", "live", 1, directory=tmp_path, time_zone="UTC")
    made_for = store_doc(server, "t")
    cronjob = render_purge_cronjob(parse_store(made_for), RenderSettings(), compliant=True)
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "purge"
    with socket.socket() as listener:  # the new host: a listener that notes any connection
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        edited = copy.deepcopy(made_for)
        edited["spec"]["database"].update(
            host="127.0.0.1", port=listener.getsockname()[1], credentialsSecret="other-login"
        )
        run = run_cli(
            tmp_path, edited, extra_args=(*container["args"][1:], "--statement-timeout", "2")
        )
        listener.setblocking(False)
        try:
            listener.accept()[0].close()
            connected = True
        except BlockingIOError:
            connected = False
    assert not connected, "the Job connected to a database it was not made for"
    assert run.result["result"] == "Failed" and run.result["reason"] == "JobOutdated"
    assert "spec.database" in run.result["message"]
    # The same Job against the store it was made for goes on to connect (here: refused by the
    # server, whose address this test did not change).
    again = run_cli(tmp_path, made_for, extra_args=tuple(container["args"][1:]))
    assert again.result["reason"] != "JobOutdated"
