"""`Kube.get_metadata`: an object's metadata alone, asked of the API server as
PartialObjectMetadata, so a Secret's data is not sent for a question about its owners.

Strictly: the Accept header names PartialObjectMetadata alone (a server that cannot serve it
for a kind answers 406, a failed read), and an answer that is anything else (a whole object,
from a server or proxy that ignored the header) is a failed read too, never used. Of what is
returned, `metadata` alone, and not the last-applied annotation, which `kubectl apply` fills
with a copy of the whole object (a Secret's data included).
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


def test_it_asks_for_partial_object_metadata_only() -> None:
    api = AnsweringApi(
        body=_json(
            {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": META}
        )
    )
    got = Kube(api).get_metadata("Secret", "ns", "s")  # type: ignore[arg-type]
    assert got == {"metadata": META}
    [(method, url, headers)] = api.sent
    assert method == "GET" and url == "https://api/api/v1/namespaces/ns/secrets/s"
    # Strictly: no whole object as a fallback (a server that cannot answers 406).
    assert headers["Accept"] == PARTIAL


WHOLE_SECRET = {
    "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
    "metadata": {**META, "annotations": {"dataward.io/store": "crm/orders"}},
    "data": {"export.sealed": "c2VjcmV0"},
}  # fmt: skip


def test_a_whole_secret_answered_to_the_metadata_request_is_refused_never_used() -> None:
    """A server or proxy that ignores the Accept header and sends the whole Secret: the
    answer is not PartialObjectMetadata, so it is a failed read (Unknown), not metadata."""
    kube = Kube(AnsweringApi(body=_json(WHOLE_SECRET)))  # type: ignore[arg-type]
    with pytest.raises(KubeError) as raised:
        kube.get_metadata("Secret", "ns", "s")
    assert "c2VjcmV0" not in str(raised.value)
    with pytest.raises(KubeError):
        kube.exists("Secret", "ns", "s")


@pytest.mark.parametrize(
    "answer",
    [
        {"kind": "PartialObjectMetadata", "metadata": META},  # no apiVersion
        {"apiVersion": "meta.k8s.io/v1beta1", "kind": "PartialObjectMetadata", "metadata": META},
        {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "items": []},
        {"apiVersion": "meta.k8s.io/v1", "kind": "Secret", "metadata": META},
    ],
)
def test_an_answer_of_another_kind_or_version_is_refused(answer: dict[str, Any]) -> None:
    with pytest.raises(KubeError):
        Kube(AnsweringApi(body=_json(answer))).get_metadata("Secret", "ns", "s")  # type: ignore[arg-type]


def test_the_last_applied_copy_in_partial_metadata_is_not_kept() -> None:
    """PartialObjectMetadata carries every annotation, `kubectl apply`'s copy of the whole
    object (a Secret's data included) among them: it is dropped."""
    annotations = {
        "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"export.sealed":"c2VjcmV0"}}',
        "dataward.io/store": "crm/orders",
    }
    partial = {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
               "metadata": {**META, "annotations": annotations}}  # fmt: skip
    got = Kube(AnsweringApi(body=_json(partial))).get_metadata("Secret", "ns", "s")  # type: ignore[arg-type]
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
