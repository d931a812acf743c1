"""Dataward's API against a real API server: the examples apply, and admission agrees with
`dataward check`.

The conformance test runs the one table of good and bad objects (`tests/admission_cases.py`)
through three evaluators of the same CRD files and fails on any disagreement:
- the real kube-apiserver, with a server-side dry run (`dryRun=All`, strict field validation,
  as kubectl sends it), through the Python client because a kubectl process per case costs more
  than the check itself (`test_kubectl_shows_the_refusal` proves kubectl prints the same);
- `dataward.validation.validate_object`, the offline validator;
- `dataward check` on a file holding the object (not for update cases: a file has no "before").
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from dataward.commands.check import check_paths
from dataward.validation import GROUP, VERSION, validate_object
from e2e.harness import ControlPlane, wait_for
from tests.admission_cases import ACCEPTED, BASES, CASES, Accepted, Case, patched

pytestmark = pytest.mark.usefixtures("crds_installed")

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
PLURALS = {"PrivacyPolicy": "privacypolicies", "PersonalDataStore": "personaldatastores"}
CLUSTER_SCOPED = {"PrivacyPolicy"}
TABLE: list[Case | Accepted] = [*CASES, *ACCEPTED]


def _case_id(case: Case | Accepted) -> str:
    verdict = "refused" if isinstance(case, Case) else "accepted"
    return f"{verdict}: {case.kind}: {case.description}"


# -- fixtures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the module's objects go: one namespace, and names no other test uses."""

    namespace: str
    suffix: str

    def name(self, role: str) -> str:
        """A metadata.name for the object playing `role` (a new object or an update's base)."""
        return f"conformance-{role}-{self.suffix}"


@pytest.fixture(scope="module")
def target(kube: ApiClient) -> Iterator[Target]:
    """A namespace for the module, holding the base objects that update cases change."""
    core = client.CoreV1Api(kube)
    suffix = uuid.uuid4().hex[:6]
    namespace = f"e2e-conformance-{suffix}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    where = Target(namespace, suffix)
    custom = client.CustomObjectsApi(kube)
    try:
        # The unpatched bases, stored for real: update cases are dry-run updates of these.
        for kind in BASES:
            _create(custom, _placed(dict(BASES[kind]), where, "base"), dry_run=False)
        yield where
    finally:
        _delete_cluster_object(custom, "PrivacyPolicy", where.name("base"))
        core.delete_namespace(namespace)  # not waited for; takes the store with it


def _placed(obj: Mapping[str, Any], where: Target, role: str) -> dict[str, Any]:
    """A copy of `obj` renamed for this module (and put in its namespace, if namespaced)."""
    placed = copy.deepcopy(dict(obj))
    metadata = placed.get("metadata")
    if isinstance(metadata, dict):
        metadata["name"] = where.name(role)
        if placed.get("kind") not in CLUSTER_SCOPED:
            metadata["namespace"] = where.namespace
    return placed


# -- the three evaluators ---------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One evaluator's answer: admitted, or refused with what it said."""

    admitted: bool
    said: str = ""

    def names(self, path: str) -> bool:
        """Refused, and the refusal names the field `path`."""
        return not self.admitted and path in self.said

    def __str__(self) -> str:
        return "admitted" if self.admitted else f"refused: {self.said}"


def _create(api: client.CustomObjectsApi, obj: Mapping[str, Any], *, dry_run: bool) -> None:
    kind = str(obj["kind"])
    options: dict[str, Any] = {"field_validation": "Strict"}
    if dry_run:
        options["dry_run"] = "All"
    if kind in CLUSTER_SCOPED:
        api.create_cluster_custom_object(GROUP, VERSION, PLURALS[kind], dict(obj), **options)
    else:
        namespace = obj["metadata"]["namespace"]
        api.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], dict(obj), **options
        )


def _update(api: client.CustomObjectsApi, obj: Mapping[str, Any]) -> None:
    """A dry-run update (PUT) of the stored object of the same name with `obj`."""
    kind, name = str(obj["kind"]), str(obj["metadata"]["name"])
    body = copy.deepcopy(dict(obj))
    options: dict[str, Any] = {"field_validation": "Strict", "dry_run": "All"}
    if kind in CLUSTER_SCOPED:
        current = api.get_cluster_custom_object(GROUP, VERSION, PLURALS[kind], name)
        body["metadata"]["resourceVersion"] = _resource_version(current)
        api.replace_cluster_custom_object(GROUP, VERSION, PLURALS[kind], name, body, **options)
    else:
        namespace = str(obj["metadata"]["namespace"])
        current = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], name)
        body["metadata"]["resourceVersion"] = _resource_version(current)
        api.replace_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], name, body, **options
        )


def _resource_version(stored: object) -> str:
    assert isinstance(stored, dict)
    return str(stored["metadata"]["resourceVersion"])


def _delete_cluster_object(api: client.CustomObjectsApi, kind: str, name: str) -> None:
    try:
        api.delete_cluster_custom_object(GROUP, VERSION, PLURALS[kind], name)
    except ApiException as error:
        if error.status != 404:
            raise


def server_verdict(
    api: client.CustomObjectsApi, obj: Mapping[str, Any], *, update: bool
) -> Verdict:
    """What the API server says to a dry-run create (or update) of `obj`."""
    try:
        if update:
            _update(api, obj)
        else:
            _create(api, obj, dry_run=True)
    except ApiException as error:
        if error.status not in (400, 422):
            raise  # not an admission verdict (conflict, not found, server trouble)
        return Verdict(False, _status_text(error))
    return Verdict(True)


def _status_text(error: ApiException) -> str:
    """The Status message: what kubectl prints after `Error from server`."""
    try:
        status = json.loads(error.body or "{}")
    except ValueError:
        return str(error.body)
    return str(status.get("message") or error.body)


def offline_verdict(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> Verdict:
    """What `dataward.validation.validate_object` says."""
    errors = validate_object(obj, old)
    return Verdict(not errors, "; ".join(str(e) for e in errors))


def check_verdict(obj: Mapping[str, Any], directory: Path) -> Verdict:
    """What `dataward check -f FILE` says about a file holding only `obj`."""
    file = directory / "object.yaml"
    file.write_text(yaml.safe_dump(dict(obj)), encoding="utf-8")
    report = check_paths([file])
    return Verdict(not report.problems, "; ".join(report.problems))


# -- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", TABLE, ids=[_case_id(c) for c in TABLE])
def test_admission_and_dataward_check_agree(
    case: Case | Accepted, kube: ApiClient, target: Target, tmp_path: Path
) -> None:
    """The API server and `dataward check` give the same verdict, naming the same field."""
    update = isinstance(case, Case) and case.update
    role = "base" if update else "case"
    obj = _placed(patched(case.kind, case.patch), target, role)
    old = _placed(dict(BASES[case.kind]), target, role) if update else None

    verdicts = {
        "API server": server_verdict(client.CustomObjectsApi(kube), obj, update=update),
        "validate_object": offline_verdict(obj, old),
    }
    if not update:
        verdicts["dataward check"] = check_verdict(obj, tmp_path)

    if isinstance(case, Case):
        wrong = [who for who, verdict in verdicts.items() if not verdict.names(case.path)]
        expected = f"refused, naming {case.path}"
    else:
        wrong = [who for who, verdict in verdicts.items() if not verdict.admitted]
        expected = "admitted"
    report = "\n".join(f"  {who}: {verdict}" for who, verdict in verdicts.items())
    assert not wrong, (
        f"{case.description!r} should be {expected}; {', '.join(wrong)} disagree:\n{report}"
    )


KUBECTL_CASES = [
    next(c for c in CASES if c.description == description)
    for description in ("dryrun typo", "negative duration", "system:masters", "engine changed")
]


@pytest.mark.parametrize("case", KUBECTL_CASES, ids=[c.description for c in KUBECTL_CASES])
def test_kubectl_shows_the_refusal(case: Case, control_plane: ControlPlane, target: Target) -> None:
    """What a user sees: kubectl (strict field validation by default) names the field."""
    role = "base" if case.update else "case"
    obj = _placed(patched(case.kind, case.patch), target, role)
    verb = "apply" if case.update else "create"
    result = control_plane.kubectl(
        verb, "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False
    )
    assert result.returncode != 0, result.stdout
    assert case.path in result.stderr, result.stderr


def _apply(control_plane: ControlPlane, path: Path) -> str:
    """Server-side dry run, then server-side apply; the apply's output."""
    for extra in (["--dry-run=server"], []):
        result = control_plane.kubectl(
            "apply",
            "--server-side",
            "--field-manager=dataward-e2e",
            *extra,
            "-f",
            str(path),
            check=False,
        )
        assert result.returncode == 0, f"kubectl apply {' '.join(extra)} {path}:\n{result.stderr}"
    return result.stdout


def _table(output: str) -> tuple[str, list[list[str]]]:
    """The header line of `kubectl get` output and its rows split on runs of spaces."""
    lines = output.strip().splitlines()
    return lines[0], [line.split() for line in lines[1:]]


def test_examples_apply_and_show_in_kubectl(control_plane: ControlPlane) -> None:
    """Every example applies; get, categories and explain show what API.md promises."""
    stores = sorted((EXAMPLES / "stores").glob("*.yaml"))
    try:
        for path in [EXAMPLES / "namespaces.yaml", EXAMPLES / "secrets.yaml"]:
            _apply(control_plane, path)
        assert "privacypolicy.dataward.io/clunix serverside-applied" in _apply(
            control_plane, EXAMPLES / "policy.yaml"
        )
        for path in stores:
            assert "serverside-applied" in _apply(control_plane, path)

        header, rows = _table(control_plane.kubectl("get", "pds", "-A").stdout)
        assert header.split() == [
            "NAMESPACE",
            "NAME",
            "CATEGORY",
            "RETENTION",
            "READY",
            "LAST",
            "PURGE",
            "AGE",
        ]
        assert "LAST PURGE" in header
        listed = {(row[0], row[1], row[2]) for row in rows}
        assert {
            ("marketing", "newsletter", "newsletter"),
            ("crm", "support-inquiries", "technical-support-inquiry"),
            ("billing", "payment-records", "payment-records"),
        } <= listed
        support = next(row for row in rows if row[1] == "support-inquiries")
        assert support[3] == "180d"

        wide = control_plane.kubectl("get", "pds", "-A", "-o", "wide").stdout
        assert "POLICY" in wide.splitlines()[0]

        header, rows = _table(control_plane.kubectl("get", "ppol").stdout)
        assert header.split() == ["NAME", "EFFECTIVE", "IN-FORCE", "PENDING-UNTIL", "STORES",
                                  "STORES-READY", "VALID", "AGE"]
        assert ["clunix", "2021-04-26"] == next(r for r in rows if r[0] == "clunix")[:2]

        everything = control_plane.kubectl("get", "dataward", "-A", "-o", "name").stdout.split()
        assert "privacypolicy.dataward.io/clunix" in everything
        assert "personaldatastore.dataward.io/support-inquiries" in everything

        # OpenAPI for a new CRD is published a moment after it is Established.
        explain = wait_for(
            lambda: _explain(control_plane, "pds.spec.purge"),
            timeout=30,
            message="kubectl explain pds.spec.purge",
        )
        assert "When and how expired records are destroyed." in explain
        for field in ("schedule", "batchSize", "maxRowsPerRun", "dryRun", "suspend"):
            assert field in explain
        assert "five-field cron expression" in " ".join(explain.split())
    finally:
        control_plane.kubectl(
            "delete",
            "--ignore-not-found",
            "--timeout=30s",
            *(f"-f={path}" for path in [*stores, EXAMPLES / "policy.yaml"]),
            check=False,
        )


def _explain(control_plane: ControlPlane, field: str) -> str:
    """`kubectl explain FIELD`, or "" while the API server has not published the schema."""
    result = control_plane.kubectl("explain", field, check=False)
    return result.stdout if result.returncode == 0 else ""
