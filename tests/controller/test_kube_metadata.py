"""`Kube.get_metadata`: an object's metadata alone, asked of the API server as
PartialObjectMetadata, so a Secret's data is not sent for a question about its owners.

The Accept header is the one the Kubernetes API concepts page gives for "metadata only,
whole objects where the server cannot" (a server that cannot serve PartialObjectMetadata for
a kind answers 406 to the metadata-only type alone): whatever the answer, only `metadata`
is returned, and not the last-applied annotation, which `kubectl apply` fills with a copy of
the whole object (a Secret's data included).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dataward.controller.kube import Kube, KubeError
from tests.controller.test_timeouts import RecordingApi

PARTIAL = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
META = {
    "name": "s",
    "namespace": "ns",
    "uid": "u-1",
    "resourceVersion": "7",
    "ownerReferences": [{"kind": "DataSubjectRequest", "uid": "r-1", "controller": True}],
}


class AnsweringApi(RecordingApi):
    """Answers every request with `status` and `body`; records the requests."""

    def __init__(self, status: int = 200, body: bytes = b"{}") -> None:
        super().__init__()
        self.status, self.body = status, body
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        preload_content: bool = True,
    ) -> Any:
        super().request(method, url, body, headers, timeout, preload_content)
        self.sent.append((method, url, dict(headers or {})))
        status, data = self.status, self.body

        class Response:
            reason = "OK" if status == 200 else "Error"

            def __init__(self) -> None:
                self.status, self.data = status, data
                self.headers: dict[str, str] = {}

        return Response()


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_it_asks_for_partial_object_metadata_with_the_whole_object_as_fallback() -> None:
    api = AnsweringApi(
        body=_json(
            {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": META}
        )
    )
    got = Kube(api).get_metadata("Secret", "ns", "s")  # type: ignore[arg-type]
    assert got == {"metadata": META}
    [(method, url, headers)] = api.sent
    assert method == "GET" and url == "https://api/api/v1/namespaces/ns/secrets/s"
    # Preferred first; plain JSON at a lower quality only for a server that cannot.
    assert headers["Accept"] == f"{PARTIAL}, application/json;q=0.9"


def test_a_whole_object_answered_instead_gives_its_metadata_only() -> None:
    annotations = {
        "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"export.sealed":"c2VjcmV0"}}',
        "dataward.io/store": "crm/orders",
    }
    whole = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
             "metadata": {**META, "annotations": annotations},
             "data": {"export.sealed": "c2VjcmV0"}}  # fmt: skip
    got = Kube(AnsweringApi(body=_json(whole))).get_metadata("Secret", "ns", "s")  # type: ignore[arg-type]
    assert got == {"metadata": {**META, "annotations": {"dataward.io/store": "crm/orders"}}}
    assert "c2VjcmV0" not in repr(got)


def test_a_missing_object_is_none() -> None:
    api = AnsweringApi(status=404)
    assert Kube(api).get_metadata("Secret", "ns", "s") is None  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [403, 406, 500])
def test_a_failed_metadata_read_is_never_gone(status: int) -> None:
    with pytest.raises(KubeError) as raised:
        Kube(AnsweringApi(status=status)).get_metadata("Secret", "ns", "s")  # type: ignore[arg-type]
    assert raised.value.status == status


def test_no_answer_is_a_kube_error_never_gone() -> None:
    error = ConnectionResetError(104, "Connection reset by peer")
    with pytest.raises(KubeError) as raised:
        Kube(RecordingApi(error)).get_metadata("Secret", "ns", "s")  # type: ignore[arg-type]
    assert raised.value.status == 0
