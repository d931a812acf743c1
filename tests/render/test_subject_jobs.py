"""A request's Job and its access: restricted, least privilege, the identifier never copied."""

from __future__ import annotations

import copy
import json
from typing import Any

from dataward.model.store import parse_store
from dataward.render.settings import RenderSettings
from dataward.render.subject_jobs import (
    IDENTIFIER_DIR,
    PUBLIC_KEY_ANNOTATION,
    export_secret_name,
    job_arguments,
    job_name,
    key_secret_name,
    reader_secrets,
    render_job,
    render_job_binding,
    render_job_role,
    render_readers_binding,
    render_readers_role,
)
from dataward.subjects.request import parse_request
from tests.model import samples as store_samples
from tests.subjects.samples import request

SETTINGS = RenderSettings()


def _store(namespace: str = "privacy", archive: bool = False) -> Any:
    raw = copy.deepcopy(store_samples.STORE)
    raw["metadata"]["namespace"] = namespace
    if archive:
        raw["spec"]["archive"] = copy.deepcopy(store_samples.ARCHIVE)
    return parse_store(raw)


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    return dict(job["spec"]["template"]["spec"])


def test_the_job_runs_restricted_under_the_stores_purge_account_with_a_short_token() -> None:
    job = render_job(parse_request(request(type="erasure")), _store(), SETTINGS)
    pod = _pod(job)
    assert pod["serviceAccountName"] == "dataward-support-inquiries-purge"
    assert pod["automountServiceAccountToken"] is False
    assert job["spec"]["backoffLimit"] == 0  # a failure is reported, not retried silently
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
    # The store's NetworkPolicy admits its purge pods: the Job's pods carry that label.
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["dataward.io/purge"] == "support-inquiries"


def test_same_namespace_mounts_the_identifier_secret_and_grants_nothing_more_for_erasure() -> None:
    req = parse_request(request(type="erasure"))
    store = _store("privacy", archive=True)
    pod = _pod(render_job(req, store, SETTINGS))
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["identifier"]["secret"]["secretName"] == "case-4711-identifier"
    assert "initContainers" not in pod
    args = pod["containers"][0]["args"]
    assert args[args.index("--identifier-dir") + 1] == IDENTIFIER_DIR
    assert "--archive-credentials-dir" in args
    assert volumes["archive-credentials"]["secret"]["secretName"] == "archive-writer"
    # The Job logs in only where the store pointed when its Secrets were mounted.
    pin = args[args.index("--connection-pin") + 1]
    moved = copy.deepcopy(store_samples.STORE)
    moved["metadata"]["namespace"] = "privacy"
    moved["spec"]["archive"] = copy.deepcopy(store_samples.ARCHIVE)
    moved["spec"]["archive"]["database"]["credentialsSecret"] = "another-writer"
    other = job_arguments(req, parse_store(moved))
    assert other[other.index("--connection-pin") + 1] != pin
    assert render_job_role(req, store) is None  # nothing to grant in the request's namespace


def test_another_namespace_reads_the_identifier_by_api_into_memory_never_a_copy() -> None:
    req = parse_request(request(type="erasure"))
    store = _store("crm")
    job = render_job(req, store, SETTINGS)
    pod = _pod(job)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["identifier"] == {
        "name": "identifier", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}
    }
    (fetch,) = pod["initContainers"]
    assert fetch["args"] == ["--secret", "privacy/case-4711-identifier", "--dir", IDENTIFIER_DIR]
    role = render_job_role(req, store)
    assert role is not None and role["metadata"]["namespace"] == "privacy"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                              "resourceNames": ["case-4711-identifier"], "verbs": ["get"]}]
    binding = render_job_binding(req, store)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "namespace": "crm",
                                    "name": "dataward-support-inquiries-purge"}]
    # Owner references cannot cross namespaces: the Job in crm has none (a finalizer cleans).
    assert "ownerReferences" not in job["metadata"]
    assert role["metadata"]["ownerReferences"][0]["uid"] == "req-uid-1"


def test_access_seals_to_the_public_key_and_patches_only_its_own_export_secret() -> None:
    req = parse_request(request())
    store = _store("crm")
    job = render_job(req, store, SETTINGS, public_key="PUBLICKEY")
    assert job["spec"]["template"]["metadata"]["annotations"][PUBLIC_KEY_ANNOTATION] == "PUBLICKEY"
    args = _pod(job)["containers"][0]["args"]
    assert args[args.index("--export-secret") + 1] == f"privacy/{export_secret_name(req, store)}"
    role = render_job_role(req, store)
    assert role is not None
    writes = [r for r in role["rules"] if "patch" in r["verbs"] or "update" in r["verbs"]]
    assert writes == [{"apiGroups": [""], "resources": ["secrets"],
                       "resourceNames": [export_secret_name(req, store)],
                       "verbs": ["get", "patch"]}]


def test_readers_get_exactly_the_key_and_the_exports() -> None:
    req = parse_request(request())
    stores = [_store("crm"), _store("privacy")]
    assert reader_secrets(req, stores) == [key_secret_name(req)] + [
        export_secret_name(req, s) for s in stores
    ]
    role = render_readers_role(req, ["a", "b"])
    assert role is not None
    (rule,) = role["rules"]
    assert rule["verbs"] == ["get"]
    assert rule["resourceNames"] == ["a", "b"]
    # None of its own seen yet: no Role, neither one without resourceNames (every Secret)
    # nor one with no rules (anyone may bind it; it would be filled later).
    assert render_readers_role(req, []) is None
    binding = render_readers_binding(req)
    assert binding is not None
    assert binding["subjects"] == [{"kind": "Group", "name": "privacy-officers",
                                    "apiGroup": "rbac.authorization.k8s.io"}]
    assert render_readers_binding(parse_request(request(readers=[]))) is None


def test_a_new_acknowledge_token_names_a_new_job_and_the_identifier_is_nowhere() -> None:
    store = _store()
    first = job_name(parse_request(request()), store)
    again = job_name(parse_request(request(acknowledgeToken="t-1")), store)
    assert first != again and len(again) <= 63
    job = render_job(parse_request(request(acknowledgeToken="t-1")), store, SETTINGS, "PK")
    assert "--acknowledge" in json.dumps(job)
    # The request names the Secret; the Job carries only that name and a mount path.
    assert "case-4711-identifier" in json.dumps(job)
