"""Crypto-shredding on a real control plane with a real evidence database.

The operator runs as the chart's ServiceAccount with the evidence log in PostgreSQL and its
clock in a file (DATAWARD_TEST_CLOCK_FILE). A store of a category with `keyBuckets: month`
(30 days after the trigger) gets a key per month; an application encrypts one record of
December and one of January with the ring it reads from the cluster. The clock moves past
the end of December's last record's retention (Dec 31 23:59:59.999999 + 30 days = Jan 30
23:59:59.999999, worked by hand): December's key leaves the ring Secret, the December record
no longer decrypts, the January one does, the evidence log holds the key.shredded record,
and `dataward evidence verify` accepts the chain.

The destruction is timed by the API server's clock (the Date header of the operator's read
of the store), and refused when it and the operator's differ by more than 5 minutes. The
test clock is months off the real one: the operator compares and decides on the server's
time moved by the test clock's offset (`skew_reference`), so the clocks agree. That Date has
one-second resolution, so the clock moves a few seconds past the expiry, not one.

This module starts its own control plane: the session operator, which has neither the
evidence log nor the test clock, must not reconcile the same store.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import psycopg
import pytest

from dataward.keys import Cipher, KeyShreddedError
from dataward.keys.ring import parse_ring
from e2e.cli import dataward
from e2e.fixtures_api import install_crds
from e2e.fixtures_databases import Postgres
from e2e.fixtures_operator import (
    OperatorProcess,
    apply,
    get,
    install_operator_identity,
    wait_condition,
)
from e2e.harness import ControlPlane, wait_for

NAMESPACE = "shop"
STORE = "orders"
RING = f"dataward-{STORE}-keyring"
T0 = "2026-01-10T08:00:00Z"
AFTER_DECEMBER = "2026-01-31T00:00:05Z"
DECEMBER, JANUARY = datetime(2025, 12, 24, 18, tzinfo=UTC), datetime(2026, 1, 9, 7, tzinfo=UTC)

POLICY = {
    "apiVersion": "dataward.io/v1alpha1",
    "kind": "PrivacyPolicy",
    "metadata": {"name": "shop"},
    "spec": {
        "categories": [
            {
                "name": "order-contacts",
                "purposes": ["delivery"],
                "retention": {"period": "30d", "trigger": "ordered"},
                "keyBuckets": "month",
            }
        ]
    },
}


def store_object() -> dict[str, Any]:
    return {
        "apiVersion": "dataward.io/v1alpha1",
        "kind": "PersonalDataStore",
        "metadata": {"name": STORE, "namespace": NAMESPACE},
        "spec": {
            "policy": "shop",
            "category": "order-contacts",
            "workload": {
                "podSelector": {"matchLabels": {"app": "orders-db"}},
                "ports": [{"port": 5432, "protocol": "TCP"}],
            },
            "database": {
                "engine": "postgresql",
                "host": "orders-db.shop.svc",
                "port": 5432,
                "name": "orders",
                "credentialsSecret": "orders-purger",
                "tls": "require",
            },
            "records": [
                {"table": "orders", "timestampColumn": "ordered_at", "keyColumns": ["id"]}
            ],
            "access": {"readers": [{"kind": "ServiceAccount", "name": "orders-api"}]},
            # Once a year: the purge Job itself is not what this test is about.
            "purge": {"schedule": "0 3 1 1 *"},
        },
    }



@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with ControlPlane() as plane:
        install_crds(plane)
        yield plane


@pytest.fixture
def evidence(postgres: Postgres, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A fresh, initialised evidence database; yields its URL and the database name."""
    name = f"evidence_{uuid.uuid4().hex[:8]}"
    postgres.archive.execute(f"CREATE DATABASE {name} OWNER {postgres.username}")
    url = f"postgresql://{postgres.archive.host}:{postgres.archive.port}/{name}?tls=disable"
    login = (postgres.username, postgres.password)
    keygen = dataward("evidence", "keygen", "--out", "keys", login=login, cwd=tmp_path)
    assert keygen.returncode == 0, keygen.stderr
    init = dataward("evidence", "init", "--database", url, login=login, cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    yield url, name
    postgres.archive.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def ring_of(plane: ControlPlane) -> Any:
    secret = get(plane, "secret", RING, NAMESPACE)
    assert secret is not None
    return parse_ring(secret["data"])


def evidence_records(postgres: Postgres, database: str) -> list[tuple[str, dict[str, Any]]]:
    with psycopg.connect(
        host=postgres.archive.host,
        port=postgres.archive.port,
        dbname=database,
        user=postgres.username,
        password=postgres.password,
        autocommit=True,
    ) as conn:
        rows = conn.execute("SELECT kind, payload FROM dataward_evidence ORDER BY seq").fetchall()
    return [(str(kind), json.loads(str(payload))) for kind, payload in rows]


def test_an_expired_month_is_shredded_and_only_that_month(
    plane: ControlPlane, postgres: Postgres, evidence: tuple[str, str], tmp_path: Path
) -> None:
    url, database = evidence
    clock = tmp_path / "clock"
    clock.write_text(T0)
    kubeconfig, account = install_operator_identity(plane)
    operator = OperatorProcess(plane, kubeconfig, account, tmp_path / "operator.log")
    env = {
        "DATAWARD_TEST_CLOCK_FILE": str(clock),
        "DATAWARD_EVIDENCE_DATABASE": url,
        "DATAWARD_EVIDENCE_USERNAME": postgres.username,
        "DATAWARD_EVIDENCE_PASSWORD": postgres.password,
        "DATAWARD_EVIDENCE_SIGNING_KEY": str(tmp_path / "keys" / "evidence-signing.key"),
    }
    with mock.patch.dict(os.environ, env):
        operator.start()
    try:
        plane.kubectl("create", "namespace", NAMESPACE)
        apply(plane, POLICY, postgres.credentials_secret(NAMESPACE, "orders-purger"))
        apply(plane, store_object())
        wait_condition(plane, NAMESPACE, STORE, "EncryptionKeyReady", "True", "KeyReady", 90)

        # December (still live: its last record expires Jan 30), January and February.
        wait_for(lambda: set(ring_of(plane).buckets) >= {"2025-12", "2026-01", "2026-02"},
                 timeout=60, message="bucket keys in the ring")  # fmt: skip
        cipher = Cipher(ring_of(plane))  # what an application reading the Secret does
        december = cipher.encrypt(b"ship to 12 Elm St", b"orders.address:1", trigger=DECEMBER)
        january = cipher.encrypt(b"ship to 3 Oak Ave", b"orders.address:2", trigger=JANUARY)

        clock.write_text(AFTER_DECEMBER)
        wait_for(lambda: "2025-12" not in ring_of(plane).buckets, timeout=90,
                 message="December's key gone from the ring")  # fmt: skip
        after = ring_of(plane)
        assert [gone.bucket for gone in after.shredded] == ["2025-12"]
        with pytest.raises(KeyShreddedError, match="bucket 2025-12 was shredded"):
            Cipher(after).decrypt(december, b"orders.address:1")
        # Another month's record, encrypted at the same time, is untouched.
        assert Cipher(after).decrypt(january, b"orders.address:2") == b"ship to 3 Oak Ave"

        store = wait_condition(plane, NAMESPACE, STORE, "EncryptionKeyReady", "True", "KeyReady")
        encryption = store["status"]["encryption"]
        assert [s["bucket"] for s in encryption["shreddedBuckets"]] == ["2025-12"]
        assert "2025-12" not in [k.get("bucket") for k in encryption["keys"]]

        records = evidence_records(postgres, database)
        shredded = [payload for kind, payload in records if kind == "key.shredded"]
        assert [(p["bucket"], p["secret"], p["reason"]) for p in shredded] == [
            ("2025-12", RING, "BucketExpired")
        ]
        assert shredded[0]["expired"] == "2026-01-30T23:59:59.999999Z"
        created = [p.get("bucket") for kind, p in records if kind == "key.created"]
        assert {"2025-12", "2026-01", "2026-02"} <= set(created)
        materials = [base64.b64encode(k.material).decode() for k in ring_of(plane).keys]
        assert not any(m in json.dumps(records) for m in materials)

        verify = dataward(
            "evidence", "verify", "--database", url,
            "--public-key", "keys/evidence-signing.pub",
            login=(postgres.username, postgres.password), cwd=tmp_path,
        )  # fmt: skip
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        operator.stop()
        if operator.process is not None and operator.process.returncode not in (0, None, -15):
            print(operator.logs()[-4000:])
