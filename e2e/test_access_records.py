"""Access records and the operator's evidence chain, end to end.

The API server runs with the audit policy `dataward audit-policy` renders for the store that
will exist; the operator runs with the chart's permissions, a real PostgreSQL evidence
database and `--audit-log` on that API server's log. Then:

- a reader of the store (its ServiceAccount crm-api) gets the key ring: the read is in the
  audit log and, as an `access.read` record, in the evidence log; neither holds the key
  material nor the database password;
- a store created after the policy was rendered is not audited: the operator's own read of its
  ring never reaches the log, and the store says so (AccessRecorded=False);
- so is a store whose credentials Secret was renamed after it: its ring's reads are audited,
  its credentials' are not, and it says so, naming that Secret (AccessRecorded=False);
- the operator's key creation, a rotation (the operator's clock moved past keyRotation), a
  purge run and its condition transitions make a chain `dataward evidence verify` accepts;
  an edit of one record in the database is then caught with that record named.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from dataward.cli import main
from dataward.render.names import names_for
from e2e.cli import dataward
from e2e.fixtures_api import install_crds
from e2e.fixtures_databases import Postgres, postgres_fixture  # noqa: F401 - a fixture
from e2e.fixtures_operator import (
    OperatorProcess,
    apply,
    get,
    install_operator_identity,
    load_example,
    wait_condition,
)
from e2e.harness import ControlPlane, wait_for
from e2e.test_purge import create_job, last_purge_of, run_job, seed_support, support_store
from tests.databases import DatabaseServer

NAMESPACE = "access-crm"
STORE = "support-inquiries"
UNAUDITED = "support-archive"  # created after the audit policy was rendered
RENAMED = "support-renamed"  # its credentials Secret renamed after the policy was rendered
CANARY_SECONDS = 15
TABLE = f"access_inquiries_{uuid.uuid4().hex[:6]}"  # the session's live server is shared


@dataclass
class Setup:
    plane: ControlPlane
    operator: OperatorProcess
    evidence: DatabaseServer  # the server holding the evidence database
    evidence_url: str
    database: str
    login: tuple[str, str]
    clock: Path
    workdir: Path

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The evidence database, with the operator's login."""
        return psycopg.connect(host=self.evidence.host, port=self.evidence.port,
                               dbname=self.database, user=self.login[0],
                               password=self.login[1], autocommit=True)  # fmt: skip



def verify(setup: Setup) -> subprocess.CompletedProcess[str]:
    """`dataward evidence verify` with the operator's public key."""
    return dataward("evidence", "verify", "--database", setup.evidence_url,
                    "--public-key", "keys/evidence-signing.pub",
                    login=setup.login, cwd=setup.workdir)  # fmt: skip


def rows(setup: Setup, kind: str | None = None) -> list[tuple[Any, ...]]:
    """The evidence records as stored: (seq, kind, subject, payload text)."""
    with setup.connect() as conn:
        query = "SELECT seq, kind, subject, payload FROM dataward_evidence"
        if kind is None:
            return list(conn.execute(query + " ORDER BY seq").fetchall())
        return list(conn.execute(query + " WHERE kind = %s ORDER BY seq", (kind,)).fetchall())


def store_doc(
    postgres: Postgres, name: str, credentials: str = "crm-postgres-purger"
) -> dict[str, Any]:
    database = {**postgres.live.store_database(), "credentialsSecret": credentials}
    doc = load_example("examples/stores/support-inquiries.yaml", NAMESPACE, database=database)
    doc["metadata"]["name"] = name
    return doc


def write_clock(path: Path, at: datetime) -> None:
    path.write_text(at.isoformat())


@pytest.fixture(scope="module")
def setup(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    """An audited control plane, an evidence database, and the operator following the log."""
    workdir = tmp_path_factory.mktemp("access")
    server = postgres.archive
    database = f"evidence_{uuid.uuid4().hex[:8]}"
    server.execute(f"CREATE DATABASE {database} OWNER {postgres.username}")
    url = f"postgresql://{server.host}:{server.port}/{database}?tls=disable"
    login = (postgres.username, postgres.password)

    # The audit policy for the stores that will exist (not for UNAUDITED; for RENAMED as it
    # was before its credentials Secret was renamed).
    inputs = workdir / "inputs"
    inputs.mkdir()
    (inputs / "all.yaml").write_text(yaml.safe_dump_all(
        [load_example("examples/policy.yaml"), store_doc(postgres, STORE),
         store_doc(postgres, RENAMED)]))  # fmt: skip
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["audit-policy", "-f", str(inputs)]) == 0
    policy_file = workdir / "dataward-policy.yaml"
    policy_file.write_text(out.getvalue())

    clock = workdir / "clock"
    write_clock(clock, datetime.now(UTC))
    keygen = dataward("evidence", "keygen", "--out", "keys", login=login, cwd=workdir)
    assert keygen.returncode == 0, keygen.stderr
    init = dataward("evidence", "init", "--database", url, login=login, cwd=workdir)
    assert init.returncode == 0, init.stderr
    with ControlPlane(extra_apiserver_args=[f"--audit-policy-file={policy_file}"]) as plane:

        install_crds(plane)
        kubeconfig, account = install_operator_identity(plane)
        env = {
            "DATAWARD_EVIDENCE_DATABASE": url,
            "DATAWARD_EVIDENCE_USERNAME": login[0],
            "DATAWARD_EVIDENCE_PASSWORD": login[1],
            "DATAWARD_EVIDENCE_SIGNING_KEY": str(workdir / "keys" / "evidence-signing.key"),
            "DATAWARD_TEST_CLOCK_FILE": str(clock),
        }
        process = OperatorProcess(plane, kubeconfig, account, workdir / "operator.log", env=env)
        process.args = [*process.session_args(), "--audit-log", str(plane.audit_log),
                        "--audit-canary-seconds", str(CANARY_SECONDS)]  # fmt: skip
        process.start()
        try:
            apply(plane, load_example("examples/policy.yaml"))
            plane.kubectl("create", "namespace", NAMESPACE)
            yield Setup(plane, process, server, url, database, login, clock, workdir)
        finally:
            process.stop()
            log = process.logs()
            print(log[-6000:])
    server.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def ring_material(setup: Setup) -> list[str]:
    """Every form the store's key material takes (decoded and base64), read as the admin."""
    ring = names_for(STORE).key_ring
    secret = json.loads(setup.plane.kubectl("get", "secret", ring, "-n", NAMESPACE,
                                            "-o", "json").stdout)  # fmt: skip
    text = base64.b64decode(secret["data"]["keyring.json"]).decode()
    keys = json.loads(text)["keys"]
    forms = [secret["data"]["keyring.json"]]
    for key in keys:
        forms.append(key["material"])
        forms.append(base64.b64decode(key["material"]).hex())
    return forms


def test_a_readers_read_of_the_ring_is_in_the_audit_log_and_the_evidence_log(
    setup: Setup, postgres: Postgres
) -> None:
    plane = setup.plane
    support_store(plane, postgres, NAMESPACE, TABLE)
    plane.kubectl("create", "serviceaccount", "crm-api", "-n", NAMESPACE)
    # The operator's own read of the ring came through the log into the evidence log.
    wait_condition(plane, NAMESPACE, STORE, "AccessRecorded", "True", "AccessReadsRecorded",
                   timeout=90)  # fmt: skip
    ring = names_for(STORE).key_ring
    reader = plane.kubeconfig_for_service_account(NAMESPACE, "crm-api")
    read = plane.kubectl("get", "secret", ring, "-n", NAMESPACE, "-o", "json", kubeconfig=reader)
    assert json.loads(read.stdout)["data"]["keyring.json"]  # the reader got the key material
    user = f"system:serviceaccount:{NAMESPACE}:crm-api"

    def audited() -> list[dict[str, Any]]:
        return [e for e in plane.audit_events()
                if e.get("user", {}).get("username") == user and e.get("verb") == "get"
                and e.get("objectRef", {}).get("name") == ring
                and e.get("stage") == "ResponseComplete"]  # fmt: skip

    (event,) = wait_for(audited, 30, "the reader's get in the audit log")

    def recorded() -> list[dict[str, Any]]:
        return [json.loads(payload) for _, _, subject, payload in rows(setup, "access.read")
                if subject == f"{NAMESPACE}/{STORE}" and json.loads(payload).get("user") == user]

    (record,) = wait_for(recorded, 60, "the reader's get in the evidence log")
    print("access.read record:", json.dumps(record, indent=2))
    assert record == {
        "auditID": event["auditID"],
        "stageTimestamp": event["stageTimestamp"],
        "requestReceivedTimestamp": event["requestReceivedTimestamp"],
        "verb": "get",
        "namespace": NAMESPACE,
        "secret": ring,
        "user": user,
        "groups": event["user"]["groups"],
        "responseCode": 200,
        "decision": "allow",
    }
    # A read the reader may not make is an access record too (refused).
    denied = plane.kubectl("get", "secret", names_for("other").key_ring, "-n", NAMESPACE,
                           kubeconfig=reader, check=False)  # fmt: skip
    assert denied.returncode != 0
    # Nothing secret anywhere: not the key material, not the purge login's password.
    stored = json.dumps(rows(setup), default=str)
    audit_text = Path(plane.audit_log).read_text()
    for form in [*ring_material(setup), postgres.password]:
        assert form not in stored
        assert form not in audit_text
    # Each record's subject is a store; nothing but access.read carries audit data.
    assert {subject for _, kind, subject, _ in rows(setup, "access.read")} == {
        f"{NAMESPACE}/{STORE}"}


def test_a_store_the_audit_policy_does_not_cover_is_not_access_recorded(
    setup: Setup, postgres: Postgres
) -> None:
    plane = setup.plane
    apply(plane, store_doc(postgres, UNAUDITED))
    store = wait_condition(plane, NAMESPACE, UNAUDITED, "AccessRecorded", "False",
                           "AccessReadNotAudited", timeout=CANARY_SECONDS + 90)  # fmt: skip
    print("AccessRecorded:", json.dumps(next(c for c in store["status"]["conditions"]
                                             if c["type"] == "AccessRecorded"), indent=2))
    ready = next(c for c in store["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and "AccessRecorded" in ready["message"]
    # The covered store is not affected.
    covered = get(plane, "pds", STORE, NAMESPACE)
    recorded = next(c for c in covered["status"]["conditions"] if c["type"] == "AccessRecorded")
    assert recorded["status"] == "True"


def test_a_store_whose_credentials_the_audit_policy_does_not_name_is_not_access_recorded(
    setup: Setup, postgres: Postgres
) -> None:
    # Red first: the ring's read was the only canary, so this store was AccessRecorded=True
    # while nobody's read of its database password was audited or recorded.
    plane = setup.plane
    renamed = "crm-postgres-purger-v2"
    apply(plane, postgres.credentials_secret(NAMESPACE, renamed),
          store_doc(postgres, RENAMED, credentials=renamed))  # fmt: skip
    store = wait_condition(plane, NAMESPACE, RENAMED, "AccessRecorded", "False",
                           "AccessReadNotAudited", timeout=CANARY_SECONDS + 90)  # fmt: skip
    recorded = next(c for c in store["status"]["conditions"] if c["type"] == "AccessRecorded")
    print("AccessRecorded:", json.dumps(recorded, indent=2))
    assert f"Secret {renamed}" in recorded["message"]
    assert names_for(RENAMED).key_ring not in recorded["message"]


def test_the_operators_chain_verifies_and_an_edit_is_caught(
    setup: Setup, postgres: Postgres
) -> None:
    plane = setup.plane
    # A purge run: the Job the CronJob makes, run by the kubelet stand-in.
    seed_support(postgres, TABLE)
    job = create_job(plane, NAMESPACE, STORE)
    outcome, _ = run_job(plane, NAMESPACE, job, setup.workdir)
    assert outcome == "Complete"
    last_purge_of(plane, NAMESPACE, STORE, job, timeout=90)
    # A rotation: the operator's clock moves past the store's keyRotation (30d).
    write_clock(setup.clock, datetime.now(UTC) + timedelta(days=31))

    def kinds() -> set[str]:
        return {kind for _, kind, subject, _ in rows(setup) if subject == f"{NAMESPACE}/{STORE}"}

    wanted = {"key.created", "key.rotated", "purge.run", "condition.transition", "access.read"}
    wait_for(lambda: wanted <= kinds(), 90, f"records of kinds {sorted(wanted)}")
    purge = next(json.loads(p) for _, kind, _, p in rows(setup, "purge.run"))
    assert purge["result"] == "Succeeded" and purge["rowsDeleted"] == 30

    intact = verify(setup)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    print("$ dataward evidence verify ...\n" + intact.stdout)

    # Someone with the database's rights rewrites who read the ring.
    (seq, payload) = next((s, p) for s, _, _, p in rows(setup, "access.read"))
    forged = json.loads(payload)
    forged["user"] = "system:serviceaccount:kube-system:nobody"
    with setup.connect() as conn:
        conn.execute("UPDATE dataward_evidence SET payload = %s WHERE seq = %s",
                     (json.dumps(forged, sort_keys=True, separators=(",", ":")), seq))  # fmt: skip
    broken = verify(setup)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert f"BROKEN at record {seq} (hash)" in broken.stdout
