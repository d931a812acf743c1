"""Data-subject requests end to end: one person's rows across three stores of two engines.

The real control plane, the operator under the chart's RBAC, the chart's admission policy for
requests, real PostgreSQL and MariaDB servers, and the test as the kubelet (e2e/kubelet.py):
the operator renders one Job per store, the Job controller makes its pod, the stand-in runs
`dataward subject-request run` with the pod's own volumes and ServiceAccount, and the
operator reads the result back from the pod's termination message.

- access: a privacy officer (a real non-admin user) asks; the sealed exports, opened with the
  key Secret only the request's readers may get, hold exactly the subject's rows.
- erasure: the subject's rows are gone from the live tables, the statutory ones are in the
  archive, and the request's status says how many were kept, under which statute, until when.
- The identifier is nowhere in etcd (read directly) but inside its own Secret, which is
  encrypted at rest; nor in the operator's log or any Event.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from dataward.model.policy import parse_policy
from dataward.subjects.export import generate_keypair
from e2e.fixtures_databases import MariaDB, Postgres
from e2e.fixtures_operator import CHART, RELEASE, OperatorProcess, apply, get, grant_user
from e2e.harness import ControlPlane, wait_for
from e2e.kubelet import run_job
from e2e.test_secret_watch import _requests as operator_requests
from e2e.tools import tool
from tests.databases import DatabaseServer

REPO = Path(__file__).resolve().parent.parent
POLICY = "examples/policy.yaml"
GUARD = "subject-requests-guarded"
IN_FORCE_SECONDS = 30  # the API server loads admission policies and RBAC moments after
UID_LABEL = "dataward.io/subject-request-uid"
OFFICER, INTERN = "privacy-officer", "privacy-intern"
MALLORY = "mallory"  # may create Secrets and read requests in the namespace, nothing more
# Opt-in: with DATAWARD_CAPTURE_DIR set, the story keeps what it applied and what kubectl and
# `dataward subject-request open` printed there (the README's real output). Off by default.
CAPTURE_DIR = os.environ.get("DATAWARD_CAPTURE_DIR")


def keep(name: str, text: str) -> None:
    """Write `text` to CAPTURE_DIR/name when capturing; nothing otherwise."""
    if CAPTURE_DIR:
        Path(CAPTURE_DIR).mkdir(parents=True, exist_ok=True)
        (Path(CAPTURE_DIR) / name).write_text(text)


def keep_kubectl(plane: ControlPlane, name: str, *args: str) -> None:
    """Keep `kubectl args` and its output when capturing (the command is not run otherwise)."""
    if CAPTURE_DIR:
        keep(name, f"$ kubectl {' '.join(args)}\n{plane.kubectl(*args).stdout}")


pytestmark = pytest.mark.usefixtures("seed_policy_applied")


@pytest.fixture(scope="module")
def guard(control_plane: ControlPlane) -> Iterator[None]:
    """The chart's admission policy for requests (and only it), as `helm template` renders it."""
    rendered = subprocess.run(
        [str(tool("helm")), "template", RELEASE, str(CHART), "--kube-version", "v1.37.2"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    docs = [
        d for d in yaml.safe_load_all(rendered)
        if d and d["kind"].startswith("ValidatingAdmissionPolicy")
        and d["metadata"]["name"].endswith(GUARD)
    ]  # fmt: skip
    assert len(docs) == 2, "the chart renders the request guard and its binding"
    apply(control_plane, *docs)
    # The API server loads a new admission policy moments after it is created: until it
    # refuses a request (a server-side dry run by a user who may create requests and read no
    # identifier), a test's "refused" could meet a request admitted unguarded.
    probe = "guard-probe"
    user_role(control_plane, "default", probe, [
        {"apiGroups": ["dataward.io"], "resources": ["datasubjectrequests"],
         "verbs": ["create"]}])  # fmt: skip

    def guarded() -> bool:
        tried = as_user(control_plane, probe, "create", "--dry-run=server", "-f", "-",
                        stdin=json.dumps(request("default", "probe", "access")))  # fmt: skip
        return tried.returncode != 0 and GUARD in tried.stderr

    wait_for(guarded, timeout=IN_FORCE_SECONDS, message="the request guard in force")
    try:
        yield
    finally:
        for doc in docs:
            control_plane.kubectl("delete", doc["kind"], doc["metadata"]["name"],
                                  "--ignore-not-found")  # fmt: skip


@pytest.fixture
def other_namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A second namespace for a store outside the request's."""
    name = f"e2e-dsr-other-{uuid.uuid4().hex[:6]}"
    control_plane.kubectl("create", "namespace", name)
    wait_for(
        lambda: control_plane.kubectl("get", "sa", "default", "-n", name, check=False)
        .returncode == 0,
        timeout=30, message=f"ServiceAccount default in {name}",
    )  # fmt: skip
    try:
        yield name
    finally:
        control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


# --- the stores ----------------------------------------------------------------------------


def create_table(server: DatabaseServer, table: str, trigger: str) -> None:
    """(id, trigger, email, body): the email is how the stores find a person."""
    if server.engine == "postgresql":
        server.execute(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, {trigger} timestamptz, "
            "email varchar(200), body text)",
            f"CREATE INDEX ON {table} (email)",
            f"CREATE INDEX ON {table} ({trigger})",
            f"ALTER TABLE {table} OWNER TO purger",
        )
    else:
        server.execute(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, {trigger} DATETIME(6), "
            f"email VARCHAR(200), body VARCHAR(200), INDEX (email), INDEX ({trigger})) "
            "ENGINE=InnoDB"
        )


def insert(server: DatabaseServer, table: str, trigger: str,
           rows: list[tuple[int, datetime | None, str, str]]) -> None:
    """Insert rows as the superuser (instants as UTC wall-clock on MariaDB)."""
    if server.engine == "mysql":
        rows = [(i, at.astimezone(UTC).replace(tzinfo=None) if at else None, e, b)
                for i, at, e, b in rows]  # fmt: skip
    conn = server.admin(autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} (id, {trigger}, email, body) VALUES (%s, %s, %s, %s)", rows
            )
        conn.commit()
    finally:
        conn.close()


def ids(server: DatabaseServer, table: str) -> set[int]:
    return {int(i) for (i,) in server.query(f"SELECT id FROM {table}")}


def store(namespace: str, name: str, category: str, servers: Postgres, table: str,
          trigger: str, archived: bool = False) -> list[dict[str, Any]]:
    """A store, its credentials Secrets (and its archive's): what a platform team applies."""
    live = servers.live
    port = 5432 if live.engine == "postgresql" else 3306
    spec: dict[str, Any] = {
        "policy": "clunix",
        "category": category,
        "workload": {"podSelector": {"matchLabels": {"app": f"{name}-db"}},
                     "ports": [{"port": port, "protocol": "TCP"}]},
        "database": {**live.store_database(), "credentialsSecret": f"{name}-purger"},
        "records": [{"table": table, "timestampColumn": trigger, "keyColumns": ["id"],
                     "subjectColumns": [{"kind": "email", "column": "email"}]}],
        "purge": {"schedule": "17 3 * * *", "suspend": False},
    }  # fmt: skip
    secrets = [servers.credentials_secret(namespace, f"{name}-purger")]
    if archived:
        spec["archive"] = {"database": {**servers.archive.store_database(),
                                        "credentialsSecret": f"{name}-archivist"}}
        secrets.append(servers.credentials_secret(namespace, f"{name}-archivist"))
    doc = {"apiVersion": "dataward.io/v1alpha1", "kind": "PersonalDataStore",
           "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip
    return [*secrets, doc]


# --- requests ------------------------------------------------------------------------------


def fingerprint(public_pem: str) -> str:
    """The SHA-256 fingerprint of an X25519 public key in PEM: of its 32 raw bytes."""
    key = serialization.load_pem_public_key(public_pem.encode("ascii"))
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def user_role(plane: ControlPlane, namespace: str, user: str, rules: list[dict[str, Any]]) -> None:
    grant_user(plane, namespace, user, rules, f"{user}-dsr")


def as_user(plane: ControlPlane, user: str, *args: str, stdin: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    """kubectl as a real non-admin user (a client certificate, no groups)."""
    return subprocess.run(
        [str(plane.bin_dir / "kubectl"), *args], input=stdin, capture_output=True, text=True,
        env=plane.env(plane.kubeconfig_for_user(user)), timeout=60, check=False,
    )  # fmt: skip


def answer_everywhere(plane: ControlPlane, users: list[str]) -> str:
    """A ClusterRole with the verb `answer` on every store, bound to `users`; its name."""
    name = f"e2e-dsr-answer-{uuid.uuid4().hex[:6]}"
    apply(
        plane,
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": name},
         "rules": [{"apiGroups": ["dataward.io"], "resources": ["personaldatastores"],
                    "verbs": ["answer"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": name},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u}
                      for u in users]},
    )  # fmt: skip
    return name


def request(namespace: str, name: str, type_: str, readers: list[dict[str, str]] | None = None
            ) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": type_,
        "policy": "clunix",
        "subject": {"identifierSecretRef": {"name": "subject-identifier"}},
        "requestedBy": "privacy office, case 2026-0042",
        "receivedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if readers:
        spec["readers"] = readers
    return {"apiVersion": "dataward.io/v1alpha1", "kind": "DataSubjectRequest",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip


def create_as(plane: ControlPlane, user: str, doc: dict[str, Any]) -> tuple[int, str]:
    """Create `doc` as `user`, retrying while the API server has not loaded new RBAC yet."""
    deadline = time.monotonic() + IN_FORCE_SECONDS
    while True:
        result = as_user(plane, user, "create", "-f", "-", stdin=json.dumps(doc))
        if result.returncode == 0 or time.monotonic() > deadline:
            return result.returncode, result.stderr
        if "cannot create resource" not in result.stderr:  # RBAC not in force yet: retry
            return result.returncode, result.stderr
        time.sleep(0.5)


def run_request_jobs(plane: ControlPlane, namespaces: list[str], uid: str, count: int,
                     workdir: Path, done: frozenset[str] = frozenset()) -> dict[str, str]:
    """Wait for `count` Jobs of the request besides `done`, be their kubelet; name -> outcome."""

    def listed() -> list[tuple[str, str]] | None:
        found = []
        for ns in namespaces:
            listed = plane.kubectl("get", "jobs", "-n", ns, "-l", f"{UID_LABEL}={uid}", "-o",
                                   "json").stdout  # fmt: skip
            found += [(ns, item["metadata"]["name"]) for item in json.loads(listed)["items"]
                      if item["metadata"]["name"] not in done]  # fmt: skip
        return found if len(found) >= count else None

    jobs = wait_for(listed, timeout=90, message=f"{count} Jobs of request {uid}")
    assert jobs is not None and len(jobs) == count, jobs
    outcomes = {}
    for namespace, job in jobs:
        outcome, runs = run_job(plane, namespace, job, workdir)
        outcomes[job] = outcome
        for run in runs:
            assert run.returncode == 0, f"{job}: {run.stdout}\n{run.stderr}"
    return outcomes


def finished(plane: ControlPlane, namespace: str, name: str, timeout: float = 90
             ) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        doc = get(plane, "dsr", name, namespace)
        phase = ((doc or {}).get("status") or {}).get("phase")
        return doc if phase in ("Succeeded", "Failed", "PartiallyHeld") else None

    doc = wait_for(done, timeout=timeout, message=f"request {namespace}/{name} answered")
    assert doc is not None
    return doc


def etcd_everything(plane: ControlPlane) -> dict[str, bytes]:
    """Every key and value in etcd, read directly (not through the API server)."""
    import urllib.request

    body = json.dumps({"key": base64.b64encode(b"\0").decode(),
                       "range_end": base64.b64encode(b"\0").decode()}).encode()  # fmt: skip
    req = urllib.request.Request(  # noqa: S310 - the harness's loopback etcd
        f"{plane.etcd_url}/v3/kv/range", data=body,
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310
        answer = json.load(response)
    return {
        base64.b64decode(kv["key"]).decode(errors="replace"): base64.b64decode(kv.get("value", ""))
        for kv in answer.get("kvs") or []
    }


# --- the story -----------------------------------------------------------------------------


def test_access_then_erasure_of_one_person_across_three_stores_of_two_engines(
    control_plane: ControlPlane,
    namespace: str,
    other_namespace: str,
    postgres: Postgres,
    mariadb: MariaDB,
    operator: OperatorProcess,
    guard: None,
    seed_policy_applied: dict[str, Any],
    tmp_path: Path,
) -> None:
    # A fictional person; a fixed address when capturing so the README shows a readable one.
    email = ("minji.kim@example.com" if CAPTURE_DIR
             else f"kim.minji.{uuid.uuid4().hex[:8]}@example.kr")  # fmt: skip
    now = started = datetime.now(UTC)
    suffix = uuid.uuid4().hex[:6]
    tickets, orders, subscribers = f"tickets_{suffix}", f"orders_{suffix}", f"subs_{suffix}"
    create_table(postgres.live, tickets, "inquired_at")
    insert(postgres.live, tickets, "inquired_at", [
        (1, now - timedelta(days=20), email, "my printer is on fire"),
        (2, now - timedelta(days=3), email, "still on fire"),
        (3, now - timedelta(days=3), "x" + email, "a neighbour by prefix"),
        (4, now - timedelta(days=3), email.upper(), "a neighbour by case"),
    ])  # fmt: skip
    for server in (mariadb.live, mariadb.archive):
        create_table(server, orders, "contract_ended_at")
    insert(mariadb.live, orders, "contract_ended_at", [
        (10, now - timedelta(days=30), email, "order 10"),
        (11, now - timedelta(days=60), email, "order 11"),
        (12, now - timedelta(days=30), email + ".kr", "a neighbour by suffix"),
    ])  # fmt: skip
    create_table(postgres.live, subscribers, "unsubscribed_at")
    insert(postgres.live, subscribers, "unsubscribed_at", [
        (20, None, email, "subscribed"),
        (21, None, "someone@example.kr", "subscribed"),
    ])  # fmt: skip
    apply(
        control_plane,
        *store(namespace, "tickets", "technical-support-inquiry", postgres, tickets,
               "inquired_at"),
        *store(namespace, "orders", "contract-records", mariadb, orders, "contract_ended_at",
               archived=True),
        *store(other_namespace, "newsletter", "newsletter", postgres, subscribers,
               "unsubscribed_at"),
    )  # fmt: skip
    for ns, name in ((namespace, "tickets"), (namespace, "orders"), (other_namespace,
                                                                     "newsletter")):
        wait_for(
            lambda ns=ns, name=name: control_plane.kubectl(
                "get", "sa", f"dataward-{name}-purge", "-n", ns, check=False).returncode == 0,
            timeout=60, message=f"the purge ServiceAccount of {ns}/{name}",
        )  # fmt: skip
    apply(control_plane, {"apiVersion": "v1", "kind": "Secret",
                          "metadata": {"name": "subject-identifier", "namespace": namespace},
                          "type": "Opaque", "stringData": {"email": email}})  # fmt: skip

    # Admission: an intern who may create requests but not read the identifier is refused;
    # one who may read it, but not answer for every store of the policy, is refused; one who
    # may answer but not grant is refused readers; the officer may do all three.
    dsr = {"apiGroups": ["dataward.io"], "resources": ["datasubjectrequests"],
           "verbs": ["create", "get", "list"]}  # fmt: skip
    read_identifier = {"apiGroups": [""], "resources": ["secrets"],
                       "resourceNames": ["subject-identifier"], "verbs": ["get"]}  # fmt: skip
    user_role(control_plane, namespace, INTERN, [dsr])
    # The officer may read the identifier and grant readers; the key and the exports she
    # gets only as the request's reader.
    user_role(control_plane, namespace, OFFICER, [
        {**dsr, "verbs": ["create", "get", "list", "grant"]}, read_identifier])  # fmt: skip
    readers = [{"kind": "User", "name": OFFICER}]
    code, error = create_as(control_plane, INTERN, request(namespace, "intern", "access"))
    assert code != 0 and "identifierSecretRef" in error and "subject-identifier" in error, error
    user_role(control_plane, namespace, INTERN, [dsr, read_identifier])
    wait_for(lambda: "yes" in as_user(control_plane, INTERN, "auth", "can-i", "get",
                                      "secret/subject-identifier", "-n", namespace).stdout,
             timeout=IN_FORCE_SECONDS, message="the intern's Role in force")  # fmt: skip
    code, error = create_as(control_plane, INTERN, request(namespace, "intern", "access"))
    assert code != 0 and "spec.scope" in error and "answer" in error, error
    # Nor by naming no store at all: an empty list was read as every store of the policy,
    # and the check of each named store passed on none.
    empty = request(namespace, "intern-empty", "access")
    empty["spec"]["scope"] = {"stores": []}
    code, error = create_as(control_plane, INTERN, empty)
    assert code != 0 and "spec.scope.stores" in error, error
    answer = answer_everywhere(control_plane, [INTERN, OFFICER])
    try:
        wait_for(lambda: "yes" in as_user(control_plane, INTERN, "auth", "can-i", "answer",
                                          "personaldatastores.dataward.io", "-A").stdout,
                 timeout=IN_FORCE_SECONDS, message="the answer ClusterRole in force")  # fmt: skip
        code, error = create_as(control_plane, INTERN,
                                request(namespace, "intern", "access", readers))  # fmt: skip
        assert code != 0 and "spec.readers" in error and "grant" in error, error
        asked = request(namespace, "access", "access", readers)
        code, error = create_as(control_plane, OFFICER, asked)
        assert code == 0, error
        keep("access-request.yaml", yaml.safe_dump(asked, sort_keys=False))
        asked = request(namespace, "erasure", "erasure")
        code, error = create_as(control_plane, OFFICER, asked)
        assert code == 0, error
        keep("erasure-request.yaml", yaml.safe_dump(asked, sort_keys=False))
    finally:
        control_plane.kubectl("delete", "clusterrolebinding,clusterrole", answer,
                              "--ignore-not-found")  # fmt: skip

    # access, asked by the officer, answered by three Jobs in two namespaces.
    uid = get(control_plane, "dsr", "access", namespace)["metadata"]["uid"]  # type: ignore[index]
    if CAPTURE_DIR:  # the Jobs are made, none has run yet
        wait_for(lambda: all((get(control_plane, "dsr", n, namespace) or {}).get("status", {})
                             .get("phase") == "Running" for n in ("access", "erasure")),
                 timeout=60, message="both requests Running")  # fmt: skip
        keep_kubectl(control_plane, "get-dsr-running.txt", "get", "dsr", "-n", namespace)
    outcomes = run_request_jobs(control_plane, [namespace, other_namespace], uid, 3, tmp_path)
    assert set(outcomes.values()) == {"Complete"}, outcomes
    answered = finished(control_plane, namespace, "access")
    status = answered["status"]
    assert status["phase"] == "Succeeded", status
    assert {c["type"]: c["reason"] for c in status["conditions"]} == {
        "Complete": "AllStoresAnswered", "DeadlineMet": "AnsweredInTime"}
    assert status["result"]["rowsExported"] == 5
    printed = control_plane.kubectl("get", "dsr", "access", "-n", namespace).stdout.split()
    assert printed[:5] == ["NAME", "TYPE", "PHASE", "DEADLINE", "AGE"]
    # The deadline is still to come: a `date` column would print <invalid> for it.
    assert printed[5:9] == ["access", "access", "Succeeded", status["deadline"]], printed
    keep_kubectl(control_plane, "access-yaml.txt", "get", "dsr", "access", "-n", namespace,
                 "-o", "yaml")  # fmt: skip
    keep_kubectl(control_plane, "access-events.txt", "get", "events", "-n", namespace,
                 "--field-selector", "involvedObject.name=access")  # fmt: skip

    # The officer (a reader) gets the key and the exports; each opens to exactly the rows.
    key_file = tmp_path / "requester.key"
    key = json.loads(as_user(control_plane, OFFICER, "get", "secret", "dataward-access-dsr-key",
                             "-n", namespace, "-o", "json").stdout)  # fmt: skip
    key_file.write_bytes(base64.b64decode(key["data"]["private.key"]))
    # Its public key is also its annotation, which the operator reads with its metadata (from
    # the Secrets' metadata cache): the operator never GETs the key Secret.
    public = key["metadata"]["annotations"]["dataward.io/recipient-public-key"]
    assert public == base64.b64decode(key["data"]["public.key"]).decode("ascii")
    asked_for = operator_requests(control_plane, operator.account, namespace, started)
    assert "create secrets dataward-access-dsr-key" in asked_for, asked_for
    assert "get secrets dataward-access-dsr-key" not in asked_for, asked_for
    exports = json.loads(control_plane.kubectl(
        "get", "secrets", "-n", namespace, "-l", f"{UID_LABEL}={uid}", "-o", "json").stdout)
    found: dict[str, set[int]] = {}
    for secret in exports["items"]:
        if "export.sealed" not in (secret.get("data") or {}):
            continue
        name = secret["metadata"]["name"]
        mine = json.loads(as_user(control_plane, OFFICER, "get", "secret", name, "-n",
                                  namespace, "-o", "json").stdout)  # fmt: skip
        sealed = tmp_path / f"{name}.sealed"
        sealed.write_bytes(base64.b64decode(mine["data"]["export.sealed"]))
        opened = subprocess.run(
            [sys.executable, "-m", "dataward", "subject-request", "open", "--private-key",
             str(key_file), "--in", str(sealed)],
            capture_output=True, text=True, check=True, env={"PYTHONPATH": str(REPO / "operator"),
                                                             "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        document = json.loads(opened.stdout)
        keep(f"opened-{document['store'].split('/')[-1]}.json", opened.stdout)
        for row in document["rows"]:
            assert row["values"]["email"] == email, row
            found.setdefault(row["table"].split(".")[-1], set()).add(int(row["values"]["id"]))
    assert found == {tickets: {1, 2}, orders: {10, 11}, subscribers: {20}}, found

    assert answered["status"]["keyFingerprint"] == fingerprint(public)

    # With the operator stopped (the restart is what an upgrade does):
    # - the access request as an earlier version left it: its key Secret without the
    #   annotation, its status without the key's fingerprint. On its first pass the operator
    #   reads the Secret whole once, annotates it at the resourceVersion read, and records the
    #   fingerprint of that key, which the request's Jobs were given; the passes after read its
    #   metadata alone again.
    # - a request the operator has not seen yet, and its key Secret planted by Mallory, who
    #   may create Secrets and read requests, nothing more: the request's controller owner
    #   reference (its uid is readable) and her own public key. The operator made no key pair
    #   for it: nothing is sealed to her key, no Job is made, every store says ChildNotOurs.
    operator.stop()
    unannotated = datetime.now(UTC)
    control_plane.kubectl("annotate", "secret", "dataward-access-dsr-key", "-n", namespace,
                          "dataward.io/recipient-public-key-")  # fmt: skip
    control_plane.kubectl("patch", "dsr", "access", "-n", namespace, "--subresource=status",
                          "--type=json", "-p", json.dumps(
                              [{"op": "remove", "path": "/status/keyFingerprint"}]))  # fmt: skip
    apply(control_plane, request(namespace, "planted", "access"))
    planted = get(control_plane, "dsr", "planted", namespace)
    assert planted is not None
    mallory_public = generate_keypair().public_pem.decode("ascii")
    user_role(control_plane, namespace, MALLORY, [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {"apiGroups": ["dataward.io"], "resources": ["datasubjectrequests"], "verbs": ["get"]},
    ])  # fmt: skip
    code, error = create_as(control_plane, MALLORY, {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "dataward-planted-dsr-key", "namespace": namespace,
                     "annotations": {"dataward.io/recipient-public-key": mallory_public},
                     "ownerReferences": [{
                         "apiVersion": "dataward.io/v1alpha1", "kind": "DataSubjectRequest",
                         "name": "planted", "uid": planted["metadata"]["uid"],
                         "controller": True}]},
        "stringData": {"public.key": mallory_public},
    })  # fmt: skip
    assert code == 0, error
    operator.start()
    wait_for(lambda: ((get(control_plane, "secret", "dataward-access-dsr-key", namespace) or {})
                      ["metadata"].get("annotations") or {})
             .get("dataward.io/recipient-public-key") == public,
             timeout=60, message="the operator annotates the key Secret again")  # fmt: skip
    refused = finished(control_plane, namespace, "planted")["status"]
    assert {s["reason"] for s in refused["stores"]} == {"ChildNotOurs"}, refused
    assert all("dataward-planted-dsr-key" in s["message"] for s in refused["stores"]), refused
    assert "keySecret" not in refused and "keyFingerprint" not in refused, refused
    time.sleep(12)  # two more resyncs of the requests (--resync-seconds 5)
    for ns in (namespace, other_namespace):
        made = control_plane.kubectl("get", "jobs", "-n", ns, "-l",
                                     f"{UID_LABEL}={planted['metadata']['uid']}",
                                     "-o", "name").stdout.strip()  # fmt: skip
        assert made == "", f"the operator sealed to Mallory's key: {made}"
    assert (get(control_plane, "dsr", "access", namespace) or {})["status"][
        "keyFingerprint"] == fingerprint(public)
    asked_for = operator_requests(control_plane, operator.account, namespace, unannotated)
    key_requests = [r for r in asked_for if r.endswith(" secrets dataward-access-dsr-key")]
    assert key_requests == ["get secrets dataward-access-dsr-key",
                            "patch secrets dataward-access-dsr-key"], asked_for  # fmt: skip
    assert not [r for r in asked_for if r.endswith(" secrets dataward-planted-dsr-key")
                and not r.startswith(("list ", "watch "))], asked_for  # fmt: skip
    control_plane.kubectl("delete", "dsr", "planted", "-n", namespace)

    # The key Secret deleted (a careless user) after the exports were sealed to it: it is
    # lost, not made again (they open with no other key), and every store and Complete say
    # KeySecretLost. Its Secret's watch event queues the request's pass at once.
    control_plane.kubectl("delete", "secret", "dataward-access-dsr-key", "-n", namespace)

    def access_status() -> dict[str, Any]:
        return dict((get(control_plane, "dsr", "access", namespace) or {}).get("status") or {})

    wait_for(lambda: {c["type"]: c["reason"] for c in access_status().get("conditions") or []}
             .get("Complete") == "KeySecretLost",
             timeout=60, message="the access request reports its key Secret lost")  # fmt: skip
    time.sleep(6)  # another resync of the requests (--resync-seconds 5)
    assert get(control_plane, "secret", "dataward-access-dsr-key", namespace) is None
    lost = access_status()
    assert lost["phase"] == "Failed" and "keySecret" not in lost, lost
    assert {s["reason"] for s in lost["stores"]} == {"KeySecretLost"}, lost
    assert public.splitlines()[1] not in json.dumps(lost)

    # erasure (asked above, answered now): gone from the live stores; the statutory orders
    # kept in the archive.
    uid = get(control_plane, "dsr", "erasure", namespace)["metadata"]["uid"]  # type: ignore[index]
    run_request_jobs(control_plane, [namespace, other_namespace], uid, 3, tmp_path)
    status = finished(control_plane, namespace, "erasure")["status"]
    assert status["phase"] == "Succeeded", status
    keep_kubectl(control_plane, "get-dsr-done.txt", "get", "dsr", "-n", namespace)
    keep_kubectl(control_plane, "erasure-yaml.txt", "get", "dsr", "erasure", "-n", namespace,
                 "-o", "yaml")  # fmt: skip
    keep_kubectl(control_plane, "erasure-events.txt", "get", "events", "-n", namespace,
                 "--field-selector", "involvedObject.name=erasure")  # fmt: skip
    assert ids(postgres.live, tickets) == {3, 4}
    assert ids(postgres.live, subscribers) == {21}
    assert ids(mariadb.live, orders) == {12}
    assert ids(mariadb.archive, orders) == {10, 11}
    statute = parse_policy(seed_policy_applied).category("contract-records").statutory.statute  # type: ignore[union-attr]
    kept = next(s for s in status["stores"] if s["name"] == "orders")
    assert kept["rowsKept"] == 2 and kept["keptUntil"][:4] == str(now.year + 5), kept
    assert [t["statute"] for t in kept["tables"] if t.get("rowsKept")] == [statute], kept
    assert status["result"]["rowsDeleted"] == 5 and status["result"]["rowsKept"] == 2

    # The identifier: in its own Secret, encrypted at rest; nowhere else in etcd, no log,
    # no Event.
    needles = [email.encode(), base64.b64encode(email.encode())]
    own = f"/registry/secrets/{namespace}/subject-identifier"
    everything = etcd_everything(control_plane)
    assert own in everything and everything[own].startswith(b"k8s:enc:")
    leaked = [k for k, v in everything.items() if any(n in v or n in k.encode() for n in needles)]
    assert leaked == [], leaked
    assert email not in operator.logs()
    events = control_plane.kubectl("get", "events", "-A", "-o", "json").stdout
    assert email not in events

    # Deleting a request deletes its Jobs, also those in another namespace (which owner
    # references cannot reach: the request's finalizer does it).
    control_plane.kubectl("delete", "dsr", "erasure", "-n", namespace, "--wait=false")

    def cleaned() -> bool:
        jobs = control_plane.kubectl("get", "jobs", "-n", other_namespace, "-l",
                                     f"{UID_LABEL}={uid}", "-o", "name").stdout.strip()
        return not jobs and get(control_plane, "dsr", "erasure", namespace) is None

    wait_for(cleaned, timeout=60, message="the erasure request and its Jobs deleted")


def test_a_legal_hold_and_a_large_match_hold_an_erasure_until_acknowledged(
    control_plane: ControlPlane,
    namespace: str,
    postgres: Postgres,
    tmp_path: Path,
) -> None:
    email = f"lee.jiwoo.{uuid.uuid4().hex[:8]}@example.kr"
    now = datetime.now(UTC)
    held, big = f"held_{uuid.uuid4().hex[:6]}", f"big_{uuid.uuid4().hex[:6]}"
    for table in (held, big):
        create_table(postgres.live, table, "inquired_at")
        insert(postgres.live, table, "inquired_at", [
            (i, now - timedelta(days=i), email, f"inquiry {i}") for i in range(1, 4)
        ])  # fmt: skip
    on_hold = store(namespace, "on-hold", "technical-support-inquiry", postgres, held,
                    "inquired_at")  # fmt: skip
    on_hold[-1]["spec"]["purge"]["suspend"] = True  # a legal hold
    apply(control_plane, *on_hold,
          *store(namespace, "large", "technical-support-inquiry", postgres, big, "inquired_at"),
          {"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "subject-identifier", "namespace": namespace},
           "type": "Opaque", "stringData": {"email": email}})  # fmt: skip
    for name in ("on-hold", "large"):
        wait_for(lambda name=name: control_plane.kubectl(
            "get", "sa", f"dataward-{name}-purge", "-n", namespace, check=False).returncode == 0,
            timeout=60, message=f"the purge ServiceAccount of {name}")  # fmt: skip
    doc = request(namespace, "erase", "erasure")
    doc["spec"]["maxRows"] = 2
    # Received eleven days ago: past the ten-day answer period while it is held.
    doc["spec"]["receivedAt"] = (now - timedelta(days=11)).strftime("%Y-%m-%dT%H:%M:%SZ")
    apply(control_plane, doc)
    uid = get(control_plane, "dsr", "erase", namespace)["metadata"]["uid"]  # type: ignore[index]
    first = run_request_jobs(control_plane, [namespace], uid, 2, tmp_path)

    status = finished(control_plane, namespace, "erase")["status"]
    assert status["phase"] == "PartiallyHeld", status
    stores = {s["name"]: s for s in status["stores"]}
    assert (stores["on-hold"]["phase"], stores["on-hold"]["reason"]) == ("Held", "LegalHold")
    assert (stores["large"]["phase"], stores["large"]["reason"]) == ("Held", "LargeMatch")
    token = stores["large"]["acknowledgeToken"]
    assert token in stores["large"]["message"]
    complete = next(c for c in status["conditions"] if c["type"] == "Complete")
    assert (complete["status"], complete["reason"]) == ("False", "StoresHeld")
    assert ids(postgres.live, held) == ids(postgres.live, big) == {1, 2, 3}  # nothing erased
    late = next(c for c in status["conditions"] if c["type"] == "DeadlineMet")
    assert (late["status"], late["reason"]) == ("False", "Overdue")
    events = json.loads(control_plane.kubectl("get", "events", "-n", namespace, "-o",
                                              "json").stdout)["items"]  # fmt: skip
    assert any(e.get("reason") == "Overdue" and e.get("type") == "Warning"
               and (e.get("regarding") or e.get("involvedObject") or {}).get("name") == "erase"
               for e in events), events  # fmt: skip
    keep_kubectl(control_plane, "held-yaml.txt", "get", "dsr", "erase", "-n", namespace,
                 "-o", "yaml")  # fmt: skip
    keep_kubectl(control_plane, "held-events.txt", "get", "events", "-n", namespace,
                 "--field-selector", "involvedObject.name=erase")  # fmt: skip

    # The acknowledgement runs the held stores again: the large match goes through, the
    # legal hold still holds.
    control_plane.kubectl("patch", "dsr", "erase", "-n", namespace, "--type=merge",
                          "-p", json.dumps({"spec": {"acknowledgeToken": token}}))  # fmt: skip
    run_request_jobs(control_plane, [namespace], uid, 2, tmp_path, frozenset(first))

    def rerun() -> dict[str, Any] | None:
        doc = get(control_plane, "dsr", "erase", namespace) or {}
        found = {s["name"]: s for s in (doc.get("status") or {}).get("stores") or []}
        return doc if found.get("large", {}).get("phase") == "Succeeded" else None

    answered = wait_for(rerun, timeout=60, message="the acknowledged store answered")
    assert answered is not None
    stores = {s["name"]: s for s in answered["status"]["stores"]}
    assert stores["large"]["rowsDeleted"] == 3
    assert stores["on-hold"]["reason"] == "LegalHold"
    assert answered["status"]["phase"] == "PartiallyHeld"
    assert ids(postgres.live, big) == set() and ids(postgres.live, held) == {1, 2, 3}
    keep_kubectl(control_plane, "held-acknowledged-yaml.txt", "get", "dsr", "erase", "-n",
                 namespace, "-o", "yaml")  # fmt: skip
