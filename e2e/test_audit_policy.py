"""A reader's get of a store's key ring lands in the API server's audit log, without its data.

The API server runs with the policy `dataward audit-policy` renders (instead of the harness's
catch-all Metadata rule), so what is and is not in the log is that policy's doing.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataward.cli import main
from dataward.model.store import Store, parse_store
from dataward.render.names import names_for
from dataward.render.rbac import render_reader_binding, render_reader_role
from dataward.validation import apply_defaults
from e2e.fixtures_operator import apply, grant_user
from e2e.harness import ControlPlane, wait_for
from tests.model.samples import POLICY, store

NAMESPACE = "audit-crm"
MATERIAL = "not-a-real-key-7f3a9c"  # must never appear in the audit log


def the_store() -> tuple[dict[str, Any], Store]:
    obj = store()
    obj["metadata"] = {**obj["metadata"], "namespace": NAMESPACE}
    return obj, parse_store(apply_defaults(obj, "PersonalDataStore"))


@pytest.fixture(scope="module")
def audited_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane whose audit policy is the one `dataward audit-policy` rendered."""
    inputs = tmp_path_factory.mktemp("inputs")
    obj, _ = the_store()
    (inputs / "all.yaml").write_text(yaml.safe_dump_all([POLICY, obj]))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["audit-policy", "-f", str(inputs)]) == 0
    policy_file = tmp_path_factory.mktemp("audit") / "dataward-policy.yaml"
    policy_file.write_text(out.getvalue())
    # A later --audit-policy-file replaces the harness's own.
    with ControlPlane(extra_apiserver_args=[f"--audit-policy-file={policy_file}"]) as plane:
        yield plane


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE}, "data": encoded}  # fmt: skip


def events_for(plane: ControlPlane, user: str, name: str | None, verb: str) -> list[dict[str, Any]]:
    return [
        e for e in plane.audit_events()
        if e.get("user", {}).get("username") == user and e.get("verb") == verb
        and e.get("objectRef", {}).get("resource") == "secrets"
        and e.get("objectRef", {}).get("namespace") == NAMESPACE
        and e.get("objectRef", {}).get("name") == name
    ]  # fmt: skip


def test_a_readers_get_of_the_key_ring_is_audited_at_metadata_without_data(
    audited_plane: ControlPlane,
) -> None:
    plane = audited_plane
    _, parsed = the_store()
    ring = names_for(parsed.name).key_ring
    plane.kubectl("create", "namespace", NAMESPACE)
    role, binding = render_reader_role(parsed), render_reader_binding(parsed)
    assert binding is not None
    for obj in (role, binding):
        obj["metadata"].pop("ownerReferences", None)  # no store object in this cluster
    apply(
        plane,
        secret(ring, {"keyring.json": json.dumps({"primary": 1, "material": MATERIAL})}),
        secret(parsed.database.credentials_secret, {"username": "u", "password": MATERIAL}),
        secret("unrelated", {"token": MATERIAL}),
        role,
        binding,
    )
    plane.kubectl("get", "secret", "unrelated", "-n", NAMESPACE)  # admin, not a store Secret
    alice = plane.kubeconfig_for_user("alice", ["privacy-officers"])  # a reader (Group)
    read = plane.kubectl("get", "secret", ring, "-n", NAMESPACE, "-o", "json", kubeconfig=alice)
    assert MATERIAL in base64.b64decode(json.loads(read.stdout)["data"]["keyring.json"]).decode()
    listed = plane.kubectl("get", "secrets", "-n", NAMESPACE, kubeconfig=alice, check=False)
    assert listed.returncode != 0  # a reader may get the ring by name, never list

    (event,) = wait_for(lambda: events_for(plane, "alice", ring, "get"), 20, "alice's get")
    assert event["level"] == "Metadata" and event["stage"] == "ResponseComplete"
    assert event["responseStatus"]["code"] == 200
    assert "requestObject" not in event and "responseObject" not in event
    (denied,) = wait_for(lambda: events_for(plane, "alice", None, "list"), 20, "alice's list")
    assert denied["level"] == "Metadata" and denied["responseStatus"]["code"] == 403
    # Only the store's Secrets: the admin's earlier get of another Secret is not there.
    assert [e for e in plane.audit_events() if e.get("objectRef", {}).get("name") == "unrelated"
            and e.get("verb") == "get"] == []  # fmt: skip

    # A patch answers with the whole Secret: an empty one by someone with only `patch` reads
    # the ring, so it is audited as a read (SECRET_READ_VERBS).
    mallory = grant_user(plane, NAMESPACE, "mallory", [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [ring], "verbs": ["patch"]},
    ], "patcher")  # fmt: skip
    assert plane.kubectl("get", "secret", ring, "-n", NAMESPACE, kubeconfig=mallory,
                         check=False).returncode != 0  # fmt: skip
    # Not `kubectl patch`: it gets the object first. The API's own PATCH, as any client sends.
    from kubernetes import client

    with plane.api_client(mallory) as api:
        patched = client.CoreV1Api(api).patch_namespaced_secret(ring, NAMESPACE, {})
    assert MATERIAL in base64.b64decode(patched.data["keyring.json"]).decode()
    (event,) = wait_for(lambda: events_for(plane, "mallory", ring, "patch"), 20, "the patch")
    assert event["level"] == "Metadata" and event["responseStatus"]["code"] == 200
    assert "requestObject" not in event and "responseObject" not in event

    # A deletecollection answers with the Secrets it deleted, data and all, even with
    # dryRun=All (nothing deleted); a delete answers with the Secret while a finalizer holds
    # it. Someone with only those verbs reads the ring and the credentials: both are audited.
    credentials = parsed.database.credentials_secret
    plane.kubectl("patch", "secret", credentials, "-n", NAMESPACE, "--type=merge", "-p",
                  json.dumps({"metadata": {"finalizers": ["example.com/hold"]}}))  # fmt: skip
    trudy = grant_user(plane, NAMESPACE, "trudy", [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete", "deletecollection"]},
    ], "deleter")  # fmt: skip
    with plane.api_client(trudy) as api:
        core = client.CoreV1Api(api)
        swept = core.delete_collection_namespaced_secret(
            NAMESPACE, field_selector=f"metadata.name={ring}", dry_run="All",
            _preload_content=False,
        )  # fmt: skip
        (item,) = json.loads(swept.data)["items"]
        assert MATERIAL in base64.b64decode(item["data"]["keyring.json"]).decode()
        held = json.loads(core.delete_namespaced_secret(
            credentials, NAMESPACE, _preload_content=False).data)  # fmt: skip
        assert held["kind"] == "Secret"
        assert MATERIAL in base64.b64decode(held["data"]["password"]).decode()
    assert plane.kubectl("get", "secret", ring, "-n", NAMESPACE).returncode == 0  # dry run
    plane.kubectl("patch", "secret", credentials, "-n", NAMESPACE, "--type=merge", "-p",
                  json.dumps({"metadata": {"finalizers": None}}))  # fmt: skip
    swept_events = wait_for(
        lambda: events_for(plane, "trudy", None, "deletecollection"), 20, "the deletecollection"
    )
    held_events = wait_for(lambda: events_for(plane, "trudy", credentials, "delete"), 20, "delete")
    for event in (*swept_events, *held_events):
        assert event["level"] == "Metadata" and event["responseStatus"]["code"] == 200
        assert "requestObject" not in event and "responseObject" not in event
    assert len(swept_events) == len(held_events) == 1

    text = Path(plane.audit_log).read_text()
    for form in (MATERIAL, base64.b64encode(MATERIAL.encode()).decode()):
        assert form not in text
