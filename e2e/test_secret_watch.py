"""Secrets watched (issue 11), on the real control plane with the chart's RBAC: a restart with
stores present re-verifies them without one Secret GET or write, a deleted credentials Secret
is seen from the watch, and the metadata-only watch of Secrets never carries their data.

The module runs an operator of its own with an hour's resync (the session operator paused), so
what happens within seconds can only come from a watch, not a timer.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from dataward.controller.cache import CachedKind, Informer
from dataward.controller.kube import (
    METADATA_ONLY,
    METADATA_ONLY_LIST,
    RESOURCES,
    Kube,
    KubeError,
    load_api_client,
)
from dataward.controller.queue import RE_VERIFIED
from dataward.keys.ring import parse_ring
from e2e.fixtures_operator import (
    OperatorProcess,
    apply,
    condition,
    get,
    load_example,
    sleep_for,
    wait_condition,
)
from e2e.harness import ControlPlane, wait_for
from e2e.test_operator import WRITE_VERBS, credentials, make_store, ready_store

POLICY = "examples/policy.yaml"
RING = "dataward-support-inquiries-keyring"
CREDENTIALS = "crm-postgres-purger"


@pytest.fixture(scope="module")
def watching(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    session_operator_paused: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The chart's operator (watchSecrets on by default) with an hour's resync."""
    apply(control_plane, load_example(POLICY))
    args = operator.session_args()
    args[args.index("--resync-seconds") + 1] = "3600"
    log = tmp_path_factory.mktemp("secret-watch") / "operator.log"
    process = OperatorProcess(control_plane, operator.kubeconfig, operator.account, log, args)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _since_start(process: OperatorProcess) -> str:
    return process.logs().split(f"--- start {process.starts}")[-1]


def _requests(plane: ControlPlane, account: str, namespace: str, since: datetime) -> list[str]:
    """`verb resource name` of the operator's requests in `namespace` since `since`."""
    user = f":{account}"
    out = []
    for event in plane.audit_events():
        ref = event.get("objectRef") or {}
        when = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if (event.get("stage") == "ResponseComplete"
                and event.get("user", {}).get("username", "").endswith(user)
                and ref.get("namespace") == namespace and when >= since):  # fmt: skip
            out.append(f"{event['verb']} {ref.get('resource')} {ref.get('name') or ''}".strip())
    return out


def test_a_restart_re_verifies_every_store_without_a_secret_get_or_a_write(
    control_plane: ControlPlane, namespace: str, watching: OperatorProcess
) -> None:
    ready_store(control_plane, namespace)
    before = get(control_plane, "secret", RING, namespace)
    assert before is not None
    sleep_for(3)  # the echo of the last status write
    watching.stop()
    since = datetime.now(UTC)
    watching.start()
    wait_for(lambda: RE_VERIFIED in _since_start(watching), timeout=90,
             message="the restarted operator reconciled every store once")  # fmt: skip
    sleep_for(5)  # anything a re-verification would send late
    requests = _requests(control_plane, watching.account, namespace, since)
    secret_gets = [r for r in requests if r.startswith("get secrets")]
    writes = [r for r in requests if r.split(" ")[0] in WRITE_VERBS]
    assert secret_gets == [], f"Secret GETs after the restart: {secret_gets}"
    assert writes == [], f"writes after a restart with nothing changed: {writes}"
    # The Secrets were listed and watched, not skipped: the operator's own account did both.
    assert any(r.startswith(("list secrets", "watch secrets")) for r in _all_secret_reads(
        control_plane, watching.account, since)), "the operator never listed Secrets"
    store = get(control_plane, "pds", "support-inquiries", namespace)
    assert condition(store, "Ready")["status"] == "True"
    assert condition(store, "EncryptionKeyReady")["status"] == "True"
    after = get(control_plane, "secret", RING, namespace)
    assert after is not None and after["data"] == before["data"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "forbidden" not in _since_start(watching)


def _all_secret_reads(plane: ControlPlane, account: str, since: datetime) -> list[str]:
    out = []
    for event in plane.audit_events():
        ref = event.get("objectRef") or {}
        when = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if (event.get("user", {}).get("username", "").endswith(f":{account}")
                and ref.get("resource") == "secrets" and when >= since):  # fmt: skip
            out.append(f"{event['verb']} secrets")
    return out


def test_a_deleted_credentials_secret_turns_the_store_false_from_the_watch(
    control_plane: ControlPlane, namespace: str, watching: OperatorProcess
) -> None:
    ready_store(control_plane, namespace)
    sleep_for(3)
    start = time.monotonic()
    control_plane.kubectl("delete", "secret", CREDENTIALS, "-n", namespace)
    # An hour's resync, and no recheck is due for a Ready store: only the watch can tell.
    store = wait_condition(control_plane, namespace, "support-inquiries", "PurgeScheduled",
                           "False", timeout=30)  # fmt: skip
    took = time.monotonic() - start
    assert condition(store, "PurgeScheduled")["reason"] == "CredentialsSecretMissing"
    assert took < 30, took
    # And back, from the watch again.
    apply(control_plane, credentials(namespace))
    wait_condition(control_plane, namespace, "support-inquiries", "PurgeScheduled", "True",
                   timeout=30)  # fmt: skip


def test_a_metadata_only_watch_of_secrets_never_carries_their_data(
    control_plane: ControlPlane, namespace: str, watching: OperatorProcess
) -> None:
    """As the operator's own account, with the chart's rights: what the server sends, raw, and
    what the cache keeps."""
    kube = Kube(load_api_client(str(watching.kubeconfig)))
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "canary", "namespace": namespace, "annotations": {
                  "note": "c2VjcmV0LWFubm90YXRpb24="}},
              "type": "Opaque", "stringData": {"token": "not-for-the-operator-4711"}}  # fmt: skip
    apply(control_plane, secret)
    listed = kube._call("GET", RESOURCES["Secret"].path(namespace), accept=METADATA_ONLY_LIST,
                        what="list Secret")  # fmt: skip
    assert listed["kind"] == "PartialObjectMetadataList"
    assert listed["items"] and all("data" not in item for item in listed["items"])
    events: list[dict[str, Any]] = []
    informer = Informer(kube, CachedKind("Secret", metadata_only=True, optional=True), namespace,
                        3600, lambda *_: None, lambda *_: None)  # fmt: skip
    informer._relist()
    later = {**secret, "metadata": {**secret["metadata"], "name": "canary-2"}}
    threading.Timer(1.0, apply, (control_plane, later)).start()
    for event in informer._stream(10):
        events.append(event)
        if (event.get("object") or {}).get("metadata", {}).get("name") == "canary-2":
            break
    raw = [e["object"] for e in events if e.get("type") != "BOOKMARK"]
    assert raw, "the watch sent no event for the new Secret"
    for obj in raw:
        assert obj.get("kind") == "PartialObjectMetadata", obj.get("kind")
        assert "data" not in obj and "stringData" not in obj
    cached = informer.get(namespace, "canary")
    assert cached is not None and set(cached) == {"kind", "metadata"}
    assert "annotations" not in cached["metadata"]
    informer.store_written(get(control_plane, "secret", "canary-2", namespace) or {})
    kept = informer.get(namespace, "canary-2")
    assert kept is not None and "data" not in kept  # the operator's own write too


def test_a_metadata_read_by_name_never_carries_a_secrets_data(
    control_plane: ControlPlane, namespace: str, watching: OperatorProcess
) -> None:
    """`Kube.get_metadata` (how a data-subject request decides whose a Secret is), as the
    operator's account: the server answers the strict Accept header (PartialObjectMetadata
    alone) with PartialObjectMetadata, without the data (`get_metadata` refuses any other
    answer), and the last-applied annotation (a copy of the whole Secret) is not kept."""
    kube = Kube(load_api_client(str(watching.kubeconfig)))
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "canary-by-name", "namespace": namespace},
              "type": "Opaque", "stringData": {"token": "not-for-the-operator-4712"}}  # fmt: skip
    apply(control_plane, secret)
    raw = kube._call("GET", RESOURCES["Secret"].path(namespace, "canary-by-name"),
                     accept=METADATA_ONLY, what="get Secret")  # fmt: skip
    # Written out, not METADATA_ANSWER: what `get_metadata` accepts, checked on a real server.
    assert (raw["apiVersion"], raw["kind"]) == ("meta.k8s.io/v1", "PartialObjectMetadata")
    assert "data" not in raw
    got = kube.get_metadata("Secret", namespace, "canary-by-name")
    assert got is not None and set(got) == {"metadata"}
    assert got["metadata"]["name"] == "canary-by-name" and got["metadata"]["uid"]
    assert "not-for-the-operator" not in json.dumps(got)
    assert "4712" not in json.dumps(got)
    assert kube.get_metadata("Secret", namespace, "no-such-secret") is None
    assert kube.exists("Secret", namespace, "canary-by-name")
    assert not kube.exists("Secret", namespace, "no-such-secret")


def test_a_new_stores_ring_is_made_without_a_get_of_the_ring_or_the_store(
    control_plane: ControlPlane, namespace: str, watching: OperatorProcess
) -> None:
    """Issue 11: the rings' cache misses and the cached store records no ring; the pending
    record is written at the cached resourceVersion (the server refuses it at any other),
    then the ring is created: no read by name before either."""
    since = datetime.now(UTC)
    store = ready_store(control_plane, namespace)
    assert condition(store, "EncryptionKeyReady")["status"] == "True"
    sleep_for(2)  # anything sent late
    requests = _requests(control_plane, watching.account, namespace, since)
    reads = [r for r in requests if r.startswith(("get secrets", "get personaldatastores"))]
    assert reads == [], f"reads by name before the ring: {reads}"
    assert [r for r in requests if r.startswith("create secrets")] != []


def test_an_unlabelled_secret_under_the_rings_name_is_refused_and_left_alone(
    control_plane: ControlPlane, namespace: str, watching: OperatorProcess
) -> None:
    """The rings' cache (by label) never sees it: the operator's create is refused with 409,
    and the Secret it then reads is not its own: reported, never written, never adopted."""
    planted = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": RING, "namespace": namespace},
        "stringData": {"keyring.json": json.dumps({"primary": 1, "keys": [
            {"id": 1, "algorithm": "AES-256-GCM", "created": "2026-11-30T00:00:00Z",
             "material": base64.b64encode(b"k" * 32).decode()}]})},
    }  # fmt: skip
    apply(control_plane, planted)
    before = get(control_plane, "secret", RING, namespace)
    assert before is not None
    make_store(control_plane, namespace)
    store = wait_condition(control_plane, namespace, "support-inquiries", "EncryptionKeyReady",
                           "False", "KeyRingNotCreatedByOperator")  # fmt: skip
    assert condition(store, "Ready")["status"] == "False"
    sleep_for(3)  # the passes after the verdict
    after = get(control_plane, "secret", RING, namespace)
    assert after is not None and after["data"] == before["data"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    status = (get(control_plane, "pds", "support-inquiries", namespace) or {}).get("status", {})
    recorded = {k["fingerprint"] for k in status.get("encryption", {}).get("keys", [])}
    assert not recorded & set(parse_ring(before["data"]).fingerprints().values())


def test_the_api_server_refuses_a_status_write_at_a_stale_resource_version(
    control_plane: ControlPlane, namespace: str, watching: OperatorProcess
) -> None:
    """What a new store's first ring relies on (`Reconciler._create_unseen_ring`): a merge
    patch of the status subresource naming a resourceVersion is refused at any other one,
    and writes nothing. As the operator's own account."""
    store = ready_store(control_plane, namespace)
    stale = store["metadata"]["resourceVersion"]
    control_plane.kubectl("annotate", "pds", "support-inquiries", "-n", namespace,
                          "example.com/touched=yes")  # fmt: skip
    kube = Kube(load_api_client(str(watching.kubeconfig)))
    with pytest.raises(KubeError) as refused:
        kube.merge_patch("PersonalDataStore", namespace, "support-inquiries",
                         {"metadata": {"resourceVersion": stale},
                          "status": {"encryption": {"pending": True}}},
                         subresource="status")  # fmt: skip
    assert refused.value.status == 409
    after = get(control_plane, "pds", "support-inquiries", namespace) or {}
    assert after["status"]["encryption"].get("pending") is None
