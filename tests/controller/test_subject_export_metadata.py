"""A store's export Secret is judged the request's own from its metadata, never its data.

Before a store's Job is created, the export Secret it fills is read to tell whether the name
is free, the request's own, or someone else's (then the store fails ChildNotOurs). That read
took the Secret whole: a planted Secret's data, or a request's earlier export (the person's
sealed rows) when a run is made again. It now reads metadata alone (the Secrets' cache while
watched, else PartialObjectMetadata by name), and so does the read after a create refused
with 409 (a Secret made under the name since the first read).
"""

from __future__ import annotations

import base64
from typing import Any

from dataward.render.names import child_name, stable_hash
from tests.controller.fake_kube import FakeKube
from tests.controller.test_subject_readers_metadata import _requests
from tests.controller.test_subjects import KEY, sample_requests

ORDERS_EXPORT = child_name("case-4711", f"dsr-export-{stable_hash('crm/orders')}")
SEALED = base64.b64encode(b"someone else's rows").decode()


def _planted(kube: FakeKube) -> None:
    """A Secret under the orders export's name that the request did not make, with data."""
    kube._store({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                 "metadata": {"name": ORDERS_EXPORT, "namespace": "privacy"},
                 "data": {"export.sealed": SEALED}})  # fmt: skip


def _whole_reads(kube: FakeKube, name: str) -> list[tuple[str, str, str]]:
    return [c for c in kube.calls if c == ("get", "Secret", name)]


def _orders(kube: FakeKube) -> dict[str, Any]:
    stores = kube.objects[("DataSubjectRequest", *KEY)]["status"]["stores"]
    return next(s for s in stores if (s["namespace"], s["name"]) == ("crm", "orders"))


def test_a_new_requests_exports_are_made_without_reading_any_whole() -> None:
    kube = sample_requests(FakeKube())
    _requests(kube).reconcile(KEY)
    exports = [n for k, _, n in kube.objects if k == "Secret" and "-dsr-export-" in n]
    assert len(exports) == 2
    assert not [c for c in kube.calls if c[1] == "Secret" and c[0] == "get" and c[2] in exports]


def test_an_export_name_taken_by_someone_elses_secret_is_judged_by_its_metadata() -> None:
    kube = sample_requests(FakeKube())
    _planted(kube)
    _requests(kube).reconcile(KEY)
    orders = _orders(kube)
    assert (orders["phase"], orders["reason"]) == ("Failed", "ChildNotOurs")
    assert _whole_reads(kube, ORDERS_EXPORT) == []
    assert kube.objects[("Secret", "privacy", ORDERS_EXPORT)]["data"] == {"export.sealed": SEALED}


class MadeSinceTheRead(FakeKube):
    """Shows no Secret `hidden` on the first read of it by any verb: a Secret made under
    the name between the operator's read and its create (which then answers 409)."""

    def __init__(self, hidden: str) -> None:
        super().__init__()
        self.hidden: str | None = hidden

    def _hides(self, kind: str, name: str) -> bool:
        if kind == "Secret" and name == self.hidden:
            self.hidden = None
            return True
        return False

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        found = super().get(kind, namespace, name)
        return None if self._hides(kind, name) else found

    def get_metadata(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        found = super().get_metadata(kind, namespace, name)
        return None if self._hides(kind, name) else found


def test_a_secret_made_under_the_export_name_since_the_read_is_judged_by_its_metadata() -> None:
    kube = sample_requests(MadeSinceTheRead(ORDERS_EXPORT))
    _planted(kube)
    _requests(kube).reconcile(KEY)
    assert ("create", "Secret", ORDERS_EXPORT) in kube.calls  # refused: 409
    orders = _orders(kube)
    assert (orders["phase"], orders["reason"]) == ("Failed", "ChildNotOurs")
    # The first read (hidden) and the one after the 409: neither whole.
    assert _whole_reads(kube, ORDERS_EXPORT) == []
