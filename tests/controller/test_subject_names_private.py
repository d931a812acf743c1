"""A binding's subject names stay out of status and Events when they may be personal data.

With an OIDC identity provider a Kubernetes User is an e-mail address, and a user or group
name may be a person's name. A careless (or hostile) cluster admin binds a Role that reads the
store's Secrets to such subjects; the AccessRestricted=False verdict must still name the
binding, so that an admin can find it, but name those subjects only as the digest the evidence
log keeps them as (`sha256:` + SHA-256 of `dataward/access-user\\0` + the name), never as
they are: the status, the Event of the transition, the evidence record and the logs would
otherwise keep the address.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.fake_kube import FakeKube
from tests.controller.test_evidence_records import Sink
from tests.controller.test_reconcile import KEY, RING, T0, status
from tests.controller.test_verdicts import _cluster

RBAC = "rbac.authorization.k8s.io"
ADDRESS = "jane.doe@example.com"
PERSON = "Jane Doe"
TEAM = "privacy-team@example.com"


def _digest(name: str) -> str:
    """The documented form (README, "Records are metadata only"), worked out here."""
    return "sha256:" + hashlib.sha256(b"dataward/access-user\x00" + name.encode()).hexdigest()


def _role(kind: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1", "kind": kind,
        "metadata": {"name": name, **({"namespace": "crm"} if kind == "Role" else {})},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                   "resourceNames": [RING]}],
    }  # fmt: skip


def _binding(kind: str, name: str, role_kind: str, role: str,
             subjects: list[dict[str, str]]) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": f"{RBAC}/v1", "kind": kind,
        "metadata": {"name": name, **({"namespace": "crm"} if kind == "RoleBinding" else {})},
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": subjects,
    }  # fmt: skip


def _user(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "User", "name": name}


def _group(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "Group", "name": name}


def _granted(*objects: dict[str, Any]) -> tuple[FakeKube, Sink, str, list[str]]:
    """A Ready store, then `objects` created, then a reconcile: the AccessRestricted message
    in status, and the notes of the Events about it."""
    kube, sink = _cluster(), Sink()
    reconciler = Reconciler(kube, ReconcileSettings(evidence=sink))  # type: ignore[arg-type]
    reconciler.reconcile(KEY, now=T0)
    for obj in objects:
        kube._store(obj)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    (condition,) = (c for c in status(kube)["conditions"] if c["type"] == "AccessRestricted")
    assert (condition["status"], condition["reason"]) == ("False", "OtherBindingGrantsSecrets")
    notes = [
        o["note"] for (kind, _, _), o in kube.objects.items()
        if kind == "Event" and o["note"].startswith("AccessRestricted is False")
    ]  # fmt: skip
    assert notes, "no Event about the transition"
    return kube, sink, condition["message"], notes


def _recorded(sink: Sink) -> list[str]:
    return [
        p["message"] for p in sink.of("condition.transition") if p["type"] == "AccessRestricted"
    ]


@pytest.mark.parametrize(
    "subject, shown",
    [
        (_user(ADDRESS), f"User {_digest(ADDRESS)}"),
        (_user(PERSON), f"User {_digest(PERSON)}"),
        (_group(TEAM), f"Group {_digest(TEAM)}"),
    ],
    ids=["oidc-address", "person-name", "group-address"],
)
def test_a_rolebinding_to_a_personal_name_names_the_binding_not_the_person(
    subject: dict[str, str], shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        _, sink, message, notes = _granted(
            _role("Role", "ring-reader"),
            _binding("RoleBinding", "oidc-readers", "Role", "ring-reader", [subject]),
        )
    name = subject["name"]
    for text in (message, *notes, *_recorded(sink), caplog.text):
        assert name not in text and "@" not in text, text
        assert "Jane" not in text and "jane" not in text, text
    for text in (message, *notes):
        assert "RoleBinding crm/oidc-readers (role Role ring-reader)" in text, text
        assert f"lets {shown} read them" in text, text


def test_a_clusterrolebinding_to_an_address_names_the_binding_not_the_address() -> None:
    _, sink, message, notes = _granted(
        _role("ClusterRole", "secret-reader"),
        _binding("ClusterRoleBinding", "oidc-secret-readers", "ClusterRole", "secret-reader",
                 [_user(ADDRESS)]),
    )  # fmt: skip
    for text in (message, *notes, *_recorded(sink)):
        assert ADDRESS not in text and "@" not in text, text
    for text in (message, *notes):
        assert "ClusterRoleBinding oidc-secret-readers (role ClusterRole secret-reader)" in text
        assert f"lets User {_digest(ADDRESS)} read them" in text, text


def test_accounts_and_plain_names_are_named_as_they_are() -> None:
    """Only names that may be personal data are digested: an account is what an admin greps
    for, and `system:evil` or `mallory` must stay visible as what they are."""
    _, _, message, _ = _granted(
        _role("Role", "ring-reader"),
        _binding("RoleBinding", "mixed", "Role", "ring-reader", [
            _user(ADDRESS), _user("mallory"), _user("system:evil"),
            {"kind": "ServiceAccount", "name": "debugger", "namespace": "crm"},
            _group("oidc:support"),
        ]),
    )  # fmt: skip
    expected = sorted([
        f"User {_digest(ADDRESS)}", "User mallory", "User system:evil",
        "ServiceAccount crm/debugger", "Group oidc:support",
    ])  # fmt: skip
    assert f"lets {', '.join(expected)} read them" in message, message


def test_a_binding_and_a_role_named_after_a_person_are_named_by_digest() -> None:
    """RBAC object names may hold `@` and spaces (the API server only refuses `/` and `%`),
    and a careless admin names a binding after the user it is for."""
    binding, role = f"{ADDRESS}-secrets", f"{PERSON} reader"
    _, sink, message, notes = _granted(
        _role("Role", role),
        _binding("RoleBinding", binding, "Role", role,
                 [{"kind": "ServiceAccount", "name": "debugger", "namespace": "crm"}]),
    )  # fmt: skip
    for text in (message, *notes, *_recorded(sink)):
        assert "@" not in text and "jane" not in text and "Jane" not in text, text
    for text in (message, *notes):
        assert (
            f"RoleBinding crm/{_digest(binding)} (role Role {_digest(role)}) lets "
            "ServiceAccount crm/debugger read them"
        ) in text, text


def test_a_clusterrolebinding_named_after_a_person_is_named_by_digest() -> None:
    binding = f"{PERSON}'s secrets"
    _, _, message, notes = _granted(
        _role("ClusterRole", "secret-reader"),
        _binding("ClusterRoleBinding", binding, "ClusterRole", "secret-reader",
                 [_user("mallory")]),
    )  # fmt: skip
    for text in (message, *notes):
        assert PERSON not in text, text
        assert (
            f"ClusterRoleBinding {_digest(binding)} (role ClusterRole secret-reader) lets "
            "User mallory read them"
        ) in text, text


def test_a_message_an_older_operator_wrote_with_the_address_is_replaced() -> None:
    """After an upgrade the status an older version wrote must not keep the address: the
    message differs, so the next reconcile writes it again, with the digest."""
    kube, _, message, _ = _granted(
        _role("Role", "ring-reader"),
        _binding("RoleBinding", "oidc-readers", "Role", "ring-reader", [_user(ADDRESS)]),
    )
    stored = kube.objects[("PersonalDataStore", *KEY)]
    (condition,) = (c for c in stored["status"]["conditions"] if c["type"] == "AccessRestricted")
    condition["message"] = message.replace(_digest(ADDRESS), ADDRESS)  # as it was written
    kube._store(stored)
    Reconciler(kube, ReconcileSettings()).reconcile(KEY, now=T0 + timedelta(minutes=2))  # type: ignore[arg-type]
    (after,) = (c for c in status(kube)["conditions"] if c["type"] == "AccessRestricted")
    assert ADDRESS not in after["message"] and _digest(ADDRESS) in after["message"]


def test_a_serviceaccount_subjects_namespace_is_not_trusted_text() -> None:
    """The API server checks a ServiceAccount subject's name but not its `namespace` (any text
    is stored, and a User's or Group's namespace is not even read): a careless admin who
    writes an address there must not see it in status, Events or the evidence log."""
    _, sink, message, notes = _granted(
        _role("Role", "ring-reader"),
        _binding("RoleBinding", "sa-readers", "Role", "ring-reader",
                 [{"kind": "ServiceAccount", "name": "debugger", "namespace": ADDRESS},
                  {"kind": "ServiceAccount", "name": "api", "namespace": PERSON}]),
    )  # fmt: skip
    for text in (message, *notes, *_recorded(sink)):
        assert "@" not in text and "jane" not in text and "Jane" not in text, text
    for text in (message, *notes):
        listed = sorted(
            [f"ServiceAccount {_digest(ADDRESS)}/debugger", f"ServiceAccount {_digest(PERSON)}/api"]
        )
        assert f"lets {', '.join(listed)} read them" in text, text


def test_once_the_digests_are_written_a_reconcile_writes_nothing() -> None:
    """Digests are the same at every pass (subjects in a frozenset, names in any order): the
    steady state with a foreign binding to personal names is zero writes and no Event."""
    subjects = [_user(ADDRESS), _user(PERSON), _group(TEAM), _user("mallory"),
                {"kind": "ServiceAccount", "name": "debugger", "namespace": ADDRESS}]  # fmt: skip
    kube, _, message, _ = _granted(
        _role("Role", f"{PERSON} reader"),
        _binding("RoleBinding", f"{ADDRESS}-secrets", "Role", f"{PERSON} reader", subjects),
    )
    everything = json.dumps(
        [status(kube), [o for (kind, _, _), o in kube.objects.items() if kind == "Event"]]
    )  # Ready's message repeats AccessRestricted's, and has its own Event
    assert "@" not in everything and "Jane" not in everything and "jane" not in everything
    for minutes, order in ((2, subjects), (3, subjects[::-1])):
        binding = kube.objects[("RoleBinding", "crm", f"{ADDRESS}-secrets")]
        binding["subjects"] = list(order)
        kube.calls.clear()
        Reconciler(kube, ReconcileSettings()).reconcile(KEY, now=T0 + timedelta(minutes=minutes))  # type: ignore[arg-type]
        assert kube.writes() == [], kube.writes()
        (after,) = (c for c in status(kube)["conditions"] if c["type"] == "AccessRestricted")
        assert after["message"] == message
