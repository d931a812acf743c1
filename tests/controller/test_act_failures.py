"""A failed write or read in the act still ends in a status write, never a stale Ready=True.

The store (and the policy) was Ready=True; then one request the reconcile makes before its
status write fails (HTTP 500, 403, or no answer at all: status 0). The old status must not
stay: the control that request was for becomes Unknown (or False), Ready stops being True,
and the reconcile reports failure so the work queue backs off and retries.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

import pytest

from dataward.controller.kube import Kube, KubeError
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.render import names_for
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import KEY, T0, conditions, status
from tests.controller.test_reconcile import kube as kube  # the fixture

READERS = names_for(KEY[1]).readers
FAILURES = [500, 403, 0]  # 0: no answer (a timeout, a reset connection)


def ready_store(kube: FakeKube) -> Reconciler:
    """Reconcile once with nothing failing; the store is Ready=True."""
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(clock=lambda: T0))
    assert reconciler.reconcile_logged(KEY).ok
    assert conditions(kube)["Ready"][0] == "True"
    return reconciler


def edit_spec(kube: FakeKube, **changes: Any) -> None:
    """What a user's `kubectl edit` does: a new spec and generation."""
    obj = kube.objects[("PersonalDataStore", *KEY)]
    obj["spec"].update(changes)
    obj["metadata"]["generation"] = int(obj["metadata"]["generation"]) + 1
    kube._store(obj)


@pytest.mark.parametrize("code", FAILURES)
def test_a_failed_finalizer_patch_leaves_no_stale_ready(kube: FakeKube, code: int) -> None:
    reconciler = ready_store(kube)
    edit_spec(kube, deletionPolicy="Delete")  # the grace finalizer is now wanted
    real = kube.merge_patch

    def patch(kind: str, namespace: str | None, name: str, body: Mapping[str, Any],
              subresource: str | None = None) -> dict[str, Any]:
        if subresource is None:  # the finalizer patch; status writes still work
            raise KubeError(code, "refused", "patch PersonalDataStore")
        return real(kind, namespace, name, body, subresource)

    kube.merge_patch = patch  # type: ignore[method-assign]
    outcome = reconciler.reconcile_logged(KEY)
    assert not outcome.ok  # the queue backs off and retries
    assert conditions(kube)["EncryptionKeyReady"] == ("Unknown", "KeyRingFinalizerUnwritten")
    assert conditions(kube)["Ready"][0] != "True"
    assert status(kube)["observedGeneration"] == 5
    assert "dataward.io/key-ring-grace-period" not in (
        kube.objects[("PersonalDataStore", *KEY)]["metadata"].get("finalizers") or []
    )
    # Once the patch goes through, the store is Ready again and the finalizer is in place.
    kube.merge_patch = real  # type: ignore[method-assign]
    assert reconciler.reconcile_logged(KEY).ok
    assert conditions(kube)["Ready"][0] == "True"
    assert "dataward.io/key-ring-grace-period" in (
        kube.objects[("PersonalDataStore", *KEY)]["metadata"]["finalizers"]
    )


@pytest.mark.parametrize("code", FAILURES)
def test_an_unreadable_readers_binding_makes_access_unknown(kube: FakeKube, code: int) -> None:
    reconciler = ready_store(kube)
    assert ("RoleBinding", "crm", READERS) in kube.objects
    edit_spec(kube, access={"readers": []})  # the readers' binding must go
    real = kube.get

    def get(kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        if (kind, name) == ("RoleBinding", READERS):
            raise KubeError(code, "refused", "get RoleBinding")
        return real(kind, namespace, name)

    kube.get = get  # type: ignore[method-assign]
    outcome = reconciler.reconcile_logged(KEY)
    assert not outcome.ok
    # The RBAC listing still shows the binding, so the judge itself calls it foreign: the
    # failed read never makes that better.
    assert conditions(kube)["AccessRestricted"] == ("False", "OtherBindingGrantsSecrets")
    assert conditions(kube)["Ready"] == ("False", "ControlsNotInForce")
    # Someone deleted it meanwhile: the listing is clean, but the read still fails, so
    # whether it is gone is not known.
    del kube.objects[("RoleBinding", "crm", READERS)]
    assert not reconciler.reconcile_logged(KEY).ok
    assert conditions(kube)["AccessRestricted"] == ("Unknown", "ReadersBindingUnreadable")
    assert conditions(kube)["Ready"] == ("Unknown", "ControlsUnknown")
    kube.get = real  # type: ignore[method-assign]
    assert reconciler.reconcile_logged(KEY).ok
    assert conditions(kube)["AccessRestricted"][0] == "True"


@pytest.mark.parametrize("code", FAILURES)
def test_a_readers_binding_that_cannot_be_deleted_is_not_restricted(
    kube: FakeKube, code: int
) -> None:
    reconciler = ready_store(kube)
    edit_spec(kube, access={"readers": []})
    real = kube.delete

    def delete(kind: str, namespace: str | None, name: str,
               propagation: str | None = None, version: str | None = None) -> bool:
        raise KubeError(code, "refused", f"delete {kind}")

    kube.delete = delete  # type: ignore[method-assign]
    outcome = reconciler.reconcile_logged(KEY)
    assert not outcome.ok
    # The former readers can still read the store's Secrets: that is not restricted.
    assert conditions(kube)["AccessRestricted"] == ("False", "ReadersBindingNotRemoved")
    assert conditions(kube)["Ready"] == ("False", "ControlsNotInForce")
    kube.delete = real  # type: ignore[method-assign]
    assert reconciler.reconcile_logged(KEY).ok  # deletes it (judged from the read before)
    assert ("RoleBinding", "crm", READERS) not in kube.objects
    assert reconciler.reconcile_logged(KEY).ok
    assert conditions(kube)["Ready"][0] == "True"


def policy_status(kube: FakeKube) -> dict[str, Any]:
    return dict(kube.objects[("PrivacyPolicy", None, "clunix")].get("status") or {})


@pytest.mark.parametrize("code", FAILURES)
def test_unlistable_stores_leave_no_stale_store_counts(kube: FakeKube, code: int) -> None:
    reconciler = ready_store(kube)
    assert reconciler.reconcile_policy_logged("clunix").ok
    assert (policy_status(kube)["stores"], policy_status(kube)["readyStores"]) == (1, 1)
    before = copy.deepcopy(policy_status(kube))
    kube.fail_lists["PersonalDataStore"] = code
    outcome = reconciler.reconcile_policy_logged("clunix")
    assert not outcome.ok
    after = policy_status(kube)
    assert after != before
    assert "stores" not in after and "readyStores" not in after  # unknown, not the old count
    (ready,) = [c for c in after["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "Valid")  # the policy is still valid
    assert "could not be listed" in ready["message"]
    del kube.fail_lists["PersonalDataStore"]
    assert reconciler.reconcile_policy_logged("clunix").ok
    assert (policy_status(kube)["stores"], policy_status(kube)["readyStores"]) == (1, 1)
