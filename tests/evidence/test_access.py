"""Access records from audit events: what is kept, what never is, and resuming without gaps."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest

from dataward.accounts import name_digest
from dataward.evidence.access import (
    RESUME_SLACK,
    AccessTargets,
    access_payload,
    advance,
    already_ingested,
    parse_audit_line,
    parse_time,
    resume_cursor,
)
from dataward.evidence.errors import EvidenceError
from dataward.evidence.payloads import validate
from dataward.model.store import Store, parse_store
from dataward.validation import apply_defaults
from tests.model.samples import store

RING = "dataward-support-inquiries-keyring"
SECRET_DATA = "c2VjcmV0LWtleS1tYXRlcmlhbA=="  # what a careless policy would let through


def the_store(name: str = "support-inquiries", namespace: str = "crm") -> Store:
    obj = store()
    obj["metadata"] = {**obj["metadata"], "name": name, "namespace": namespace}
    return parse_store(apply_defaults(obj, "PersonalDataStore"))


EVENT: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "5c1f8f0e-2b8a-4f57-9d2e-0d4c0f3a9a11",
    "stage": "ResponseComplete",
    "requestURI": f"/api/v1/namespaces/crm/secrets/{RING}",
    "verb": "get",
    "user": {"username": "system:serviceaccount:crm:reporting",
             "uid": "0d1c", "groups": ["system:serviceaccounts", "system:authenticated"]},
    "sourceIPs": ["10.1.2.3"],
    "userAgent": "kubectl/v1.37.2",
    "objectRef": {"resource": "secrets", "namespace": "crm", "name": RING, "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 200},
    "requestReceivedTimestamp": "2026-12-01T10:00:00.123456Z",
    "stageTimestamp": "2026-12-01T10:00:00.130001Z",
    "annotations": {"authorization.k8s.io/decision": "allow",
                    "authorization.k8s.io/reason": "RBAC: allowed by RoleBinding"},
}  # fmt: skip


def event(**changes: Any) -> str:
    value = copy.deepcopy(EVENT)
    for key, item in changes.items():
        if item is None:
            value.pop(key, None)
        else:
            value[key] = item
    return json.dumps(value)


def test_a_read_of_a_ring_keeps_who_what_when_and_nothing_else() -> None:
    # An audit policy at RequestResponse level would put the Secret itself in the event.
    line = event(responseObject={"kind": "Secret", "data": {"keyring.json": SECRET_DATA}},
                 requestObject={"data": {"x": SECRET_DATA}})  # fmt: skip
    read = parse_audit_line(line)
    assert read is not None
    payload = access_payload(read)
    assert payload == {
        "auditID": "5c1f8f0e-2b8a-4f57-9d2e-0d4c0f3a9a11",
        "stageTimestamp": "2026-12-01T10:00:00.130001Z",
        "requestReceivedTimestamp": "2026-12-01T10:00:00.123456Z",
        "verb": "get",
        "namespace": "crm",
        "secret": RING,
        "user": "system:serviceaccount:crm:reporting",
        "groups": ["system:serviceaccounts", "system:authenticated"],
        "responseCode": 200,
        "decision": "allow",
    }
    assert validate("access.read", "crm/support-inquiries", payload) == payload
    text = json.dumps(payload)
    for never in (SECRET_DATA, "10.1.2.3", "kubectl", "RBAC: allowed"):
        assert never not in text


@pytest.mark.parametrize("verb", ["patch", "delete"])
def test_a_patch_or_delete_of_a_ring_is_a_read(verb: str) -> None:
    # A patch, even an empty one, answers with the whole Secret; so does a delete while a
    # finalizer holds the Secret: both read the key material.
    read = parse_audit_line(event(verb=verb))
    assert read is not None
    payload = access_payload(read)
    assert payload["verb"] == verb
    assert validate("access.read", "crm/support-inquiries", payload) == payload


@pytest.mark.parametrize(
    "changes",
    [
        {"stage": "ResponseStarted"},  # a watch's first half: its end comes later
        {"stage": "RequestReceived"},
        {"verb": "update"},  # answers with what was sent, not with what was stored
        {"verb": "create"},
        {"objectRef": {"resource": "configmaps", "namespace": "crm", "name": RING}},
        {"objectRef": {"resource": "secrets", "apiGroup": "evil.example", "namespace": "crm",
                       "name": RING}},
        {"auditID": None},
        {"auditID": "has space"},
        {"stageTimestamp": "yesterday"},
        {"kind": "EventList"},
    ],
)
def test_lines_that_are_not_a_final_read_of_secrets_are_ignored(changes: dict[str, Any]) -> None:
    assert parse_audit_line(event(**changes)) is None


@pytest.mark.parametrize("line", ["", "{", "[]", "null", '"text"', b"\xff\xfe", "{}"])
def test_garbage_lines_are_ignored(line: str | bytes) -> None:
    assert parse_audit_line(line) is None


def test_names_that_could_be_personal_data_are_kept_only_as_digests() -> None:
    read = parse_audit_line(
        event(
            user={"username": "alice@example.com",
                  "groups": ["privacy-officers", "Alice Smith's team", "system:authenticated"]},
            impersonatedUser={"username": "bob@example.com"},
        )
    )  # fmt: skip
    assert read is not None
    payload = access_payload(read)
    assert "alice" not in json.dumps(payload) and "bob" not in json.dumps(payload)
    assert payload["userDigest"] == name_digest("alice@example.com")
    assert payload["impersonatedUserDigest"] == name_digest("bob@example.com")
    assert payload["groups"] == ["privacy-officers", "system:authenticated"]
    assert payload["groupsDigested"] == [name_digest("Alice Smith's team")]
    # An auditor holding the name can check it; the digest is of the name, domain-separated.
    import hashlib

    assert payload["userDigest"] == hashlib.sha256(
        b"dataward/access-user\x00alice@example.com"
    ).hexdigest()
    assert validate("access.read", "crm/support-inquiries", payload) == payload


@pytest.mark.parametrize(
    ("field", "value"),
    [("user", "alice@example.com"), ("user", "a b"), ("groups", ["x@y.z"]),
     ("secretData", SECRET_DATA), ("userDigest", "abc"), ("verb", "update")],
)  # fmt: skip
def test_the_evidence_allow_list_refuses_what_access_payload_never_writes(
    field: str, value: Any
) -> None:
    read = parse_audit_line(event())
    assert read is not None
    payload = {**access_payload(read), field: value}
    with pytest.raises(EvidenceError) as caught:
        validate("access.read", "crm/support-inquiries", payload)
    assert str(value) not in str(caught.value)


def test_only_reads_of_a_stores_secrets_are_attributed_to_it() -> None:
    a, b = the_store("support-inquiries"), the_store("orders")
    other = the_store("orders", namespace="shop")
    targets = AccessTargets.of([a, b, other])

    def stores(**changes: Any) -> list[tuple[str, str]]:
        read = parse_audit_line(event(**changes))
        assert read is not None
        return targets.stores_read(read)

    def ref(name: str | None, namespace: str = "crm") -> dict[str, Any]:
        return {"resource": "secrets", "namespace": namespace,
                **({"name": name} if name else {})}  # fmt: skip

    assert stores() == [("crm", "support-inquiries")]
    # Both stores of crm name the same credentials Secret: a read of it reads both.
    assert stores(objectRef=ref("crm-postgres-purger")) == [("crm", "orders"),
                                                          ("crm", "support-inquiries")]
    assert stores(objectRef=ref("unrelated")) == []
    assert stores(objectRef=ref(RING, "shop")) == []  # same name, another namespace
    assert stores(objectRef=ref(None), verb="list") == [("crm", "orders"),
                                                        ("crm", "support-inquiries")]
    assert stores(objectRef=ref(None, "elsewhere"), verb="list") == []
    assert stores(objectRef=ref(None, ""), verb="watch") == [
        ("crm", "orders"), ("crm", "support-inquiries"), ("shop", "orders")]
    assert stores(objectRef=ref(None), verb="get") == []
    # A deletecollection answers with every Secret it deleted (dryRun=All too), data and all.
    assert stores(objectRef=ref(None), verb="deletecollection") == [
        ("crm", "orders"), ("crm", "support-inquiries")]
    assert stores(objectRef=ref(None, "elsewhere"), verb="deletecollection") == []


def test_resuming_skips_what_the_chain_holds_and_nothing_else() -> None:
    first = parse_audit_line(event())
    assert first is not None
    cursor = resume_cursor([("crm/support-inquiries", access_payload(first))])
    assert cursor is not None
    assert already_ingested(cursor, first, "crm/support-inquiries")
    # The same list event for another store of the namespace was not appended yet.
    assert not already_ingested(cursor, first, "crm/orders")
    # Written a little out of order: older than the newest record, but within the window.
    late = parse_audit_line(event(auditID="late-1", stageTimestamp="2026-12-01T09:58:00Z"))
    assert late is not None and not already_ingested(cursor, late, "crm/support-inquiries")
    # Older than the window: was there at the last start, so it was ingested then.
    old = parse_audit_line(event(auditID="old-1", stageTimestamp="2026-12-01T09:54:00Z"))
    assert old is not None and already_ingested(cursor, old, "crm/support-inquiries")
    assert resume_cursor([]) is None
    # A record whose payload was mangled does not move the cursor.
    assert resume_cursor([("crm/x", {"auditID": "a", "stageTimestamp": 5})]) is None


def test_the_cursor_forgets_pairs_older_than_its_window() -> None:
    start = parse_time("2026-12-01T10:00:00Z")
    cursor = advance(None, "a", start, "crm/x")
    cursor = advance(cursor, "b", start + RESUME_SLACK + timedelta(seconds=1), "crm/x")
    assert set(cursor.recent) == {("b", "crm/x")}


def test_audit_times_keep_nanoseconds_order_to_the_microsecond() -> None:
    assert parse_time("2026-12-01T10:00:00.123456789Z") == parse_time("2026-12-01T10:00:00.123456Z")
    assert parse_time("2026-12-01T19:00:00+09:00") == parse_time("2026-12-01T10:00:00Z")
    with pytest.raises(ValueError):
        parse_time("2026-12-01")
