"""A LIST of CronJobs, Jobs, Pods or stores decoded without managedFields' fieldsV1 (issue 11).

The oracle is the standard library's `json.loads` of the same bytes, with each managedFields
entry's `fieldsV1` taken out by hand: what `kube.loads_list` must give, and nothing less.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from dataward.controller.cache import CachedKind, Informer
from dataward.controller.kube import loads, loads_list
from dataward.controller.operator import CACHED_KINDS, SECRET_KINDS


def _changed(manager: str, operation: str, time: str) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "batch/v1",
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:jobTemplate": {"f:spec": {"f:template": {
            "f:spec": {"f:containers": {'k:{"name":"purge"}': {".": {}, "f:image": {}}}}}}}}},
    }


def _cronjob(name: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "crm",
            "uid": f"uid-{name}",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2026-12-01T00:00:00Z",
            "labels": {"app.kubernetes.io/managed-by": "dataward"},
            "annotations": {"note": "kept"},
            "ownerReferences": [{"kind": "PersonalDataStore", "name": "s", "uid": "u"}],
            "managedFields": [
                _changed("dataward", "Apply", "2026-12-01T00:00:00Z"),
                _changed("kube-controller-manager", "Update", "2026-12-01T00:05:00Z"),
            ],
        },
        "spec": {"schedule": "0 3 * * *", "suspend": False, "jobTemplate": {"spec": {
            "template": {"spec": {"containers": [{"name": "purge", "image": "i:1"}]}}}}},
        "status": {"lastScheduleTime": "2026-12-01T03:00:00Z"},
    }


def _answer(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"kind": "CronJobList", "apiVersion": "batch/v1",
            "metadata": {"resourceVersion": "99", "continue": "c"}, "items": items, **extra}


def _without_fields_v1(answer: dict[str, Any]) -> dict[str, Any]:
    answer = copy.deepcopy(answer)
    for item in answer.get("items") or ():
        for entry in item["metadata"].get("managedFields") or ():
            entry.pop("fieldsV1", None)
    return answer


def test_a_workload_list_keeps_everything_but_which_fields_each_manager_set() -> None:
    body = json.dumps(_answer([_cronjob("a"), _cronjob("b")])).encode()
    decoded = loads_list(body)
    assert decoded == _without_fields_v1(json.loads(body))
    assert "fieldsV1" in body.decode()  # the oracle had something to take out
    managers = [(e["manager"], e["time"]) for e in decoded["items"][0]["metadata"]["managedFields"]]
    assert managers == [("dataward", "2026-12-01T00:00:00Z"),
                        ("kube-controller-manager", "2026-12-01T00:05:00Z")]  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a["items"][0].__setitem__("futureField", {"x": 1}),  # an object's key
        lambda a: a["items"][1]["metadata"].__setitem__("futureMeta", "y"),  # its metadata's
        lambda a: a.__setitem__("futureListField", 1),  # the list's own
        lambda a: a["items"][0]["metadata"].__setitem__("managedFields", None),
        lambda a: a["items"][0].__setitem__("metadata", None),
    ],
    ids=["object key", "metadata key", "list key", "null managedFields", "null metadata"],
)
def test_an_answer_of_another_shape_is_decoded_whole(change: Any) -> None:
    # A key the decoder does not name is never dropped: the whole answer is decoded as it
    # always was, managedFields and all.
    answer = _answer([_cronjob("a"), _cronjob("b")])
    change(answer)
    body = json.dumps(answer).encode()
    assert loads_list(body) == json.loads(body)


@pytest.mark.parametrize(
    "text",
    [
        '"x": 1e400',  # a number past a double: json.loads says infinity
        '"x": "\\ud800"',  # a lone surrogate escape
        '"x": 18446744073709551616',  # an integer past 64 bits
    ],
)
def test_values_past_what_orjson_reads_are_decided_as_loads_decides(text: str) -> None:
    item = json.dumps(_cronjob("a"))
    body = ('{"kind": "CronJobList", "items": [' + item[:-1] + ", " + text + "}]}").encode()
    assert json.dumps(loads_list(body), sort_keys=True) == json.dumps(loads(body), sort_keys=True)


@pytest.mark.parametrize("items", [None, []])
def test_an_empty_list_is_as_sent(items: list[Any] | None) -> None:
    body = json.dumps(_answer([]) | {"items": items}).encode()
    assert loads_list(body) == json.loads(body)
    body = json.dumps({"kind": "CronJobList", "metadata": {}}).encode()
    assert loads_list(body) == json.loads(body)


def test_invalid_json_is_refused_as_loads_refuses_it() -> None:
    with pytest.raises(ValueError):
        loads_list(b'{"items": [')


class _Recording:
    """A Kube stand-in that records which decoder each LIST was asked to use."""

    def __init__(self) -> None:
        self.decoders: dict[str, Any] = {}

    def _call(self, method: str, path: str, *, what: str, **kw: Any) -> Any:
        self.decoders[what] = kw.get("decode")
        return {"metadata": {"resourceVersion": "1"}, "items": []}


# Of what the operator caches, only the large objects' lists are decoded lean.
LEAN = {"CronJob", "Job", "Pod", "PersonalDataStore"}


@pytest.mark.parametrize(
    "spec",
    [*CACHED_KINDS, *SECRET_KINDS, CachedKind("Secret", metadata_only=True, lean_lists=True)],
    ids=lambda spec: f"{spec.kind}{' (metadata)' if spec.metadata_only else ''}",
)
def test_only_lists_of_large_objects_skip_fields_v1(spec: CachedKind) -> None:
    kube = _Recording()
    informer = Informer(kube, spec, "crm", 3600, lambda *a: None, lambda *a: None)  # type: ignore[arg-type]
    informer._list_pages(None, lambda items: None, lambda: None)
    lean = spec.kind in LEAN and not spec.metadata_only
    assert kube.decoders == {f"list {spec.kind}": loads_list if lean else loads}
