"""The readers' Role grants only the Secrets that are the request's own.

Child names past 63 characters are cut and hashed (render/names.py `child_name`): a request
whose own name is short enough to need no cutting can be named so that its key or export
Secret name is exactly another request's cut one. A Role granting every name the request
would use, whoever made the Secret under it, handed spec.readers of the short-named request
(chosen by its author) `get` on the other request's private key and sealed export: the
other person's rows. Each test acts as that author through `reconcile` on an in-memory API.
"""

from __future__ import annotations

import copy
from typing import Any

from dataward.render.names import child_name, stable_hash
from tests.controller.fake_kube import FakeKube
from tests.controller.test_subjects import T0, controller, kube
from tests.subjects.samples import request

__all__ = ["kube"]  # the fixture

# A request named after the person and the case: its children's names are cut and hashed.
VICTIM = "erasure-jane-doe-1990-03-14-case-2026-00417-handled-by-kim"
EVE = {"kind": "User", "name": "eve"}


def _request(kube: FakeKube, name: str, uid: str, readers: list[dict[str, str]]) -> None:
    raw = request(readers=readers)
    raw["metadata"].update(name=name, uid=uid)
    kube._store(raw)


def _victims_secrets(kube: FakeKube) -> dict[str, dict[str, Any]]:
    return {
        name: obj
        for (kind, ns, name), obj in kube.objects.items()
        if kind == "Secret" and ns == "privacy"
        and any(ref.get("uid") == "victim-uid"
                for ref in obj["metadata"].get("ownerReferences") or ())
    }  # fmt: skip


def _granted(kube: FakeKube, request_name: str) -> list[dict[str, Any]]:
    """The rules of the readers' Role of the request called `request_name` (none: no Role,
    which is never made granting nothing)."""
    role = kube.objects.get(("Role", "privacy", child_name(request_name, "dsr-readers")))
    return list(role["rules"]) if role is not None else []


def _names(rules: list[dict[str, Any]]) -> set[str]:
    return {name for rule in rules for name in rule.get("resourceNames") or ()}


def _colliding_name(victim_secret: str, suffix: str) -> str:
    """A request name whose uncut child name with `suffix` is exactly `victim_secret`."""
    assert victim_secret.startswith("dataward-") and victim_secret.endswith(f"-{suffix}")
    name = victim_secret[len("dataward-"): -len(suffix) - 1]
    assert child_name(name, suffix) == victim_secret  # the collision the attacker builds
    return name


def test_a_short_name_reproducing_a_cut_key_secret_name_is_not_granted_it(
    kube: FakeKube,
) -> None:
    _request(kube, VICTIM, "victim-uid", [{"kind": "Group", "name": "privacy-officers"}])
    controller(kube).reconcile(("privacy", VICTIM))
    victims = _victims_secrets(kube)
    key = next(n for n in victims if n.endswith("-dsr-key"))
    attacker = _colliding_name(key, "dsr-key")
    assert attacker == "erasure-jane-doe-1990-03-14-case-2026-9c6ac72b"
    _request(kube, attacker, "attacker-uid", [EVE])
    controller(kube).reconcile(("privacy", attacker))
    rules = _granted(kube, attacker)
    assert key not in _names(rules)
    assert not set(victims) & _names(rules)
    # No rule without resourceNames: in RBAC an absent or empty list is every Secret.
    assert all(rule.get("resourceNames") for rule in rules), rules
    # The victim's key is untouched, and the attacker's request does not answer from it.
    assert kube.objects[("Secret", "privacy", key)] == victims[key]


def test_a_short_name_reproducing_a_cut_export_secret_name_is_not_granted_it(
    kube: FakeKube,
) -> None:
    _request(kube, VICTIM, "victim-uid", [{"kind": "Group", "name": "privacy-officers"}])
    controller(kube).reconcile(("privacy", VICTIM))
    victims = _victims_secrets(kube)
    export = child_name(VICTIM, f"dsr-export-{stable_hash('crm/orders')}")
    assert export in victims
    attacker = _colliding_name(export, f"dsr-export-{stable_hash('crm/orders')}")
    _request(kube, attacker, "attacker-uid", [EVE])
    controller(kube).reconcile(("privacy", attacker))
    rules = _granted(kube, attacker)
    assert export not in _names(rules)
    assert not set(victims) & _names(rules)
    assert all(rule.get("resourceNames") for rule in rules), rules


def test_the_requests_own_secrets_are_granted_once_they_exist(kube: FakeKube) -> None:
    ctl = controller(kube)
    ctl.reconcile(("privacy", "case-4711"))
    own = {
        name for (kind, ns, name), obj in kube.objects.items()
        if kind == "Secret" and ns == "privacy"
        and any(ref.get("uid") == "req-uid-1" and ref.get("controller")
                for ref in obj["metadata"].get("ownerReferences") or ())
    }  # fmt: skip
    # The key and one export per store (tickets in privacy, orders in crm).
    assert len(own) == 3
    assert _names(_granted(kube, "case-4711")) == own


def test_a_secret_granted_then_replaced_by_someone_elses_is_no_longer_granted(
    kube: FakeKube,
) -> None:
    controller(kube).reconcile(("privacy", "case-4711"))
    export = child_name("case-4711", f"dsr-export-{stable_hash('crm/orders')}")
    assert export in _names(_granted(kube, "case-4711"))
    # Deleted and made again under the name by someone else (no owner reference to it).
    planted = copy.deepcopy(kube.objects[("Secret", "privacy", export)])
    planted["metadata"].pop("ownerReferences")
    del kube.objects[("Secret", "privacy", export)]
    kube._store(planted)
    controller(kube, T0).reconcile(("privacy", "case-4711"))
    assert export not in _names(_granted(kube, "case-4711"))


def test_status_names_no_secret_of_the_requests_names_that_is_not_its_own(
    kube: FakeKube,
) -> None:
    # Status is where a reader finds the key and the exports (`kubectl get secret "$(kubectl
    # get dsr ... -o jsonpath='{.status.keySecret}')"`): a Secret planted under one of the
    # names, taken out of the Role, was still named there as the request's, for anyone
    # whose own rights reach it to open as the person's answer.
    controller(kube).reconcile(("privacy", "case-4711"))
    export = child_name("case-4711", f"dsr-export-{stable_hash('crm/orders')}")
    key = child_name("case-4711", "dsr-key")
    before = kube.objects[("DataSubjectRequest", "privacy", "case-4711")]["status"]
    assert before["keySecret"] == key
    assert export in {s.get("exportSecret") for s in before["stores"]}
    for name in (export, key):
        planted = copy.deepcopy(kube.objects[("Secret", "privacy", name)])
        planted["metadata"].pop("ownerReferences")
        del kube.objects[("Secret", "privacy", name)]
        kube._store(planted)
    controller(kube, T0).reconcile(("privacy", "case-4711"))
    after = kube.objects[("DataSubjectRequest", "privacy", "case-4711")]["status"]
    assert "keySecret" not in after
    named = {s.get("exportSecret") for s in after["stores"]}
    assert export not in named
    # The other store's export is the request's own: still named, still granted.
    own = child_name("case-4711", f"dsr-export-{stable_hash('privacy/tickets')}")
    assert own in named and own in _names(_granted(kube, "case-4711"))
