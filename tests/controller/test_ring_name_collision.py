"""Two store names, one key ring name: a long name is cut and hashed to fit, and a short
name can spell the result. A store made under that short name renders readers of "its"
ring, which is the long-named store's: the long store's AccessRestricted must say so, not
take the binding for a neighbour's own (neighbours share credentials, never rings)."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any, cast

from dataward.controller.kube import Kube
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.render.names import names_for
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import T0, sample_cluster
from tests.model import samples

LONG = "customer-support-inquiries-eu-west-production-primary"
RING = names_for(LONG).key_ring
SHORT = RING[len("dataward-") : -len("-keyring")]


def _store(name: str, readers: list[dict[str, str]]) -> dict[str, Any]:
    store = copy.deepcopy(samples.STORE)
    store["metadata"]["name"] = name
    store["metadata"].pop("uid", None)
    store["spec"]["access"] = {"readers": readers}
    return store


def _access(kube: FakeKube, name: str) -> tuple[str, str, str]:
    status = kube.objects[("PersonalDataStore", "crm", name)]["status"]
    found = next(c for c in status["conditions"] if c["type"] == "AccessRestricted")
    return found["status"], found["reason"], found["message"]


def test_a_short_name_that_spells_a_long_stores_ring_makes_its_access_false() -> None:
    assert names_for(SHORT).key_ring == RING and RING != f"dataward-{LONG}-keyring"
    kube = sample_cluster(FakeKube(), store=_store(LONG, [{"kind": "ServiceAccount",
                                                           "name": "crm-api"}]))  # fmt: skip
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings())
    reconciler.reconcile(("crm", LONG), now=T0)
    assert _access(kube, LONG)[0] == "True"
    kube._store(_store(SHORT, [{"kind": "User", "name": "mallory"}]))
    reconciler.reconcile(("crm", SHORT), now=T0 + timedelta(minutes=1))
    reconciler.reconcile(("crm", LONG), now=T0 + timedelta(minutes=2))
    status, reason, message = _access(kube, LONG)
    assert (status, reason) == ("False", "OtherBindingGrantsSecrets"), message
    assert SHORT in message and RING in message and "mallory" not in message
