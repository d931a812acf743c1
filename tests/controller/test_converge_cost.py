"""The operator's own CPU while stores converge (issue 11): cheaper paths, same answers.

Requests go straight to the ApiClient's connection pool (no model layer); watch events the
cache already holds (the echoes of the operator's own writes) are not slimmed again; the
watch stream is split into events by lines, whatever the chunks; the garbage collector runs
less often. Each test acts as the API server or a careless caller would.
"""

from __future__ import annotations

import copy
import gc
import json
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any, cast
from urllib.parse import parse_qsl

import pytest

from dataward.controller.cache import CachedKind, Informer, slim
from dataward.controller.kube import Kube, KubeError
from dataward.controller.operator import GC_YOUNG_THRESHOLD, tune_garbage_collector
from dataward.render import purge_job
from tests.controller.test_cache import _caches, _cluster, _reconciler, _relist
from tests.controller.test_reconcile import KEY, T0, conditions


class _Answer:
    def __init__(self, status: int, reason: str, data: bytes) -> None:
        self.status, self.reason, self.data = status, reason, data
        self.headers: dict[str, str] = {}


class Pool:
    """A Connection (server, credentials, connection pool), answering with `answer`."""

    server = "https://api.example:6443"

    def __init__(self, answer: _Answer) -> None:
        self.answer = answer
        self.sent: list[dict[str, Any]] = []
        self.pool = self
        self.token = "Bearer secret-token"

    def headers(self) -> dict[str, str]:
        return {"User-Agent": "test-agent", "authorization": self.token}

    def request(self, method: str, url: str, body: Any = None, headers: Any = None,
                timeout: Any = None, preload_content: bool = True) -> _Answer:
        self.sent.append({"method": method, "url": url, "body": body, "headers": headers})
        return self.answer


def test_an_apply_is_sent_as_server_side_apply_with_credentials_and_compact_json() -> None:
    pool = Pool(_Answer(200, "OK", b'{"metadata": {"name": "s", "resourceVersion": "7"}}'))
    obj = {"apiVersion": "v1", "kind": "ServiceAccount",
           "metadata": {"name": "s", "namespace": "ns", "labels": {"a": "b c"}}}
    answer = Kube(pool).apply(obj)  # type: ignore[arg-type]
    assert answer["metadata"]["resourceVersion"] == "7"
    [sent] = pool.sent
    assert sent["method"] == "PATCH"
    assert sent["url"] == ("https://api.example:6443/api/v1/namespaces/ns/serviceaccounts/s"
                           "?fieldManager=dataward&force=true")
    assert sent["headers"]["Content-Type"] == "application/apply-patch+yaml"
    assert sent["headers"]["authorization"] == "Bearer secret-token"
    assert sent["headers"]["User-Agent"] == "test-agent"
    assert json.loads(sent["body"]) == obj
    assert b": " not in sent["body"] and b", " not in sent["body"].replace(b"b c", b"")


def test_query_values_are_quoted_so_a_continue_token_survives() -> None:
    # Continue tokens are base64: '+', '/' and '=' sent unquoted would be read as other bytes.
    pool = Pool(_Answer(200, "OK", b'{"items": []}'))
    kube = Kube(pool)  # type: ignore[arg-type]
    kube._call("GET", "/api/v1/secrets", query=[("labelSelector", "a=b,c=d"),
                                                 ("continue", "eyJ+/x=")], what="list Secret")
    path, _, query = pool.sent[0]["url"].partition("?")
    assert path == "https://api.example:6443/api/v1/secrets"
    assert "+" not in query  # a '+' would be read back as a space
    assert parse_qsl(query, strict_parsing=True) == [("labelSelector", "a=b,c=d"),
                                                     ("continue", "eyJ+/x=")]


def test_a_refusal_echoing_a_secret_becomes_a_kube_error_without_the_body() -> None:
    echo = b'{"kind":"Status","message":"Secret \\"r\\" is invalid: data.key: c2VjcmV0LWtleQ=="}'
    pool = Pool(_Answer(422, "Unprocessable Entity", echo))
    with pytest.raises(KubeError) as raised:
        Kube(pool).create({"apiVersion": "v1", "kind": "Secret",  # type: ignore[arg-type]
                           "metadata": {"name": "r", "namespace": "ns"},
                           "data": {"key": "c2VjcmV0LWtleQ=="}})
    assert raised.value.status == 422
    assert "c2VjcmV0LWtleQ" not in str(raised.value)
    assert "secret-token" not in str(raised.value)


def test_a_not_found_is_none_and_a_server_error_is_not_absence() -> None:
    assert Kube(Pool(_Answer(404, "Not Found", b"{}"))).get(  # type: ignore[arg-type]
        "Secret", "ns", "r") is None
    with pytest.raises(KubeError) as raised:
        Kube(Pool(_Answer(500, "Internal Server Error", b"{}"))).get(  # type: ignore[arg-type]
            "Secret", "ns", "r")
    assert raised.value.status == 500


def test_a_refreshed_token_is_used_by_the_next_request() -> None:
    pool = Pool(_Answer(200, "OK", b"{}"))
    kube = Kube(pool)  # type: ignore[arg-type]
    kube.get("Secret", "ns", "r")

    pool.token = "Bearer rotated"
    kube.get("Secret", "ns", "r")
    assert [s["headers"]["authorization"] for s in pool.sent] == [
        "Bearer secret-token", "Bearer rotated"]


# --- the watch ------------------------------------------------------------------------------


def _store(version: str, ready: str = "True") -> dict[str, Any]:
    return {"kind": "PersonalDataStore",
            "metadata": {"name": "a", "namespace": "n", "resourceVersion": version},
            "spec": {"policy": "p"},
            "status": {"conditions": [{"type": "Ready", "status": ready, "message": "m"}]}}


def _counting_informer() -> tuple[Informer, list[Any], list[int]]:
    events: list[Any] = []
    informer = Informer(
        cast(Kube, object()), CachedKind("PersonalDataStore"), None, 60,
        lambda *event: events.append(event), lambda *_: None,
    )  # fmt: skip
    informer.synced = True
    slimmed = [0]
    original = informer._slim

    def counting(obj: Any) -> dict[str, Any]:
        slimmed[0] += 1
        return original(obj)

    informer._slim = counting  # type: ignore[method-assign]
    return informer, events, slimmed


def _feed(informer: Informer, events: list[dict[str, Any]]) -> None:
    def stream(timeout: int) -> Iterator[dict[str, Any]]:
        yield from copy.deepcopy(events)

    informer._stream = stream  # type: ignore[method-assign]
    assert informer._watch(1, threading.Event()).status is None  # every event applied


def test_the_echo_of_an_own_write_is_neither_slimmed_nor_an_event() -> None:
    informer, events, slimmed = _counting_informer()
    informer.store_written(_store("12"))
    held = informer.get("n", "a")
    slimmed[0] = 0
    _feed(informer, [{"type": "MODIFIED", "object": _store("12")},
                     {"type": "MODIFIED", "object": _store("11", ready="False")}])  # late
    assert (events, slimmed[0]) == ([], 0)
    assert informer.get("n", "a") is held
    assert informer.resource_version == "11"  # the watch still resumes where it was


def test_a_change_after_an_own_write_is_stored_and_is_an_event() -> None:
    informer, events, _ = _counting_informer()
    informer.store_written(_store("12"))
    _feed(informer, [{"type": "MODIFIED", "object": _store("13", ready="False")}])
    assert [new["metadata"]["resourceVersion"] for _, _, new in events] == ["13"]
    held = informer.get("n", "a")
    assert held is not None and held["metadata"]["resourceVersion"] == "13"


def test_a_delete_at_the_held_version_still_removes_the_object() -> None:
    # The object is deleted by someone else right after the operator's write: the DELETED
    # event carries the version the cache holds, and must not pass for an echo.
    informer, events, _ = _counting_informer()
    informer.store_written(_store("12"))
    _feed(informer, [{"type": "DELETED", "object": _store("12")}])
    assert informer.get("n", "a") is None
    assert [new for _, _, new in events] == [None]


class _Chunked:
    """A watch response whose body arrives in the given chunks."""

    status, reason = 200, "OK"

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.response = self
        self.closed = False

    def stream(self, amount: int, decode_content: bool = True) -> Iterator[bytes]:
        yield from self.chunks

    def close(self) -> None:
        self.closed = True


class _WatchApi:
    server = "https://api"

    def __init__(self, response: _Chunked) -> None:
        self.response = response
        self.pool = self
        self.preloaded: list[bool] = []

    def headers(self) -> dict[str, str]:
        return {}

    def request(self, *_: Any, preload_content: bool = True, **__: Any) -> _Chunked:
        self.preloaded.append(preload_content)
        return self.response


@pytest.mark.parametrize("cut", [1, 7, 40, 64, 10_000])
def test_watch_events_are_whole_lines_however_the_body_is_cut(cut: int) -> None:
    lines = [json.dumps({"type": "ADDED", "object": _store(str(v))}).encode() for v in (1, 2, 3)]
    body = b"\n".join(lines) + b"\n\n" + json.dumps({"type": "BOOKMARK", "object": {
        "metadata": {"resourceVersion": "9"}}}).encode() + b"\n"
    response = _Chunked([body[i:i + cut] for i in range(0, len(body), cut)])
    api = _WatchApi(response)
    kube = Kube(api)  # type: ignore[arg-type]
    informer = Informer(kube, CachedKind("PersonalDataStore"), None, 60,
                        lambda *_: None, lambda *_: None)
    got = list(informer._stream(1))
    assert [e["type"] for e in got] == ["ADDED", "ADDED", "ADDED", "BOOKMARK"]
    assert [e["object"]["metadata"]["resourceVersion"] for e in got] == ["1", "2", "3", "9"]
    assert response.closed
    assert api.preloaded == [False]  # streamed, not read whole


def test_the_collector_runs_less_often_and_skips_what_was_loaded_at_start() -> None:
    before = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD > before[0]
        assert gc.get_freeze_count() > 0
        # Cycles are still collected: only later.
        cycle: list[Any] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


# --- the watch event of an own write that arrives before its answer -------------------------


class RacingPool(Pool):
    """The API server whose watch event of a write reaches the cache before the answer."""

    def __init__(self, answer: _Answer, during: list[dict[str, Any]], informer: Informer,
                 status: int = 200) -> None:
        super().__init__(answer)
        self.during, self.informer = during, informer

    def request(self, method: str, url: str, body: Any = None, headers: Any = None,
                timeout: Any = None, preload_content: bool = True) -> _Answer:
        for obj in self.during:  # the watch thread, while the request is under way
            self.informer._put(self.informer._slim(copy.deepcopy(obj)), notify=True)
        return super().request(method, url, body, headers, timeout)


def _racing(during: list[dict[str, Any]], answer: dict[str, Any] | None,
            status: int = 200) -> tuple[Kube, Informer, list[Any]]:
    events: list[Any] = []
    data = json.dumps(answer).encode() if answer is not None else b"{}"
    pool = RacingPool(_Answer(status, "OK" if status == 200 else "Conflict", data), during,
                      cast(Informer, None))
    kube = Kube(pool)  # type: ignore[arg-type]
    informer = Informer(kube, CachedKind("PersonalDataStore"), None, 60,
                        lambda *event: events.append(event), lambda *_: None)
    informer.synced = True
    pool.informer = informer
    return kube, informer, events


PATCH = ("PersonalDataStore", "n", "a", {"status": {}})


def test_an_echo_before_the_answer_is_dropped_once_the_answer_is_stored() -> None:
    kube, informer, events = _racing([_store("12")], _store("12"))
    answer = kube.merge_patch(*PATCH, subresource="status")
    assert events == []  # held while the answer is on its way
    informer.store_written(answer)
    kube.writes.flush()
    assert events == []
    held = informer.get("n", "a")
    assert held is not None and held["metadata"]["resourceVersion"] == "12"


def test_a_foreign_change_during_an_own_write_is_still_an_event() -> None:
    # Someone edits the store (v12) while the operator's patch (v13) is under way: the
    # operator must look again, whatever came back for its own write.
    kube, informer, events = _racing([_store("12", ready="False"), _store("13")], _store("13"))
    informer.store_written(kube.merge_patch(*PATCH, subresource="status"))
    assert [new["metadata"]["resourceVersion"] for _, _, new in events] == ["12", "13"]


def test_an_event_at_another_version_than_the_answer_is_an_event() -> None:
    kube, informer, events = _racing([_store("12")], _store("13"))
    informer.store_written(kube.merge_patch(*PATCH, subresource="status"))
    kube.writes.flush()
    assert [new["metadata"]["resourceVersion"] for _, _, new in events] == ["12"]


def test_a_failed_write_lets_the_held_event_through_at_once() -> None:
    kube, _informer, events = _racing([_store("12")], None, status=409)
    with pytest.raises(KubeError):
        kube.merge_patch(*PATCH, subresource="status")
    assert [new["metadata"]["resourceVersion"] for _, _, new in events] == ["12"]


def test_an_answer_nobody_stored_lets_the_held_event_through_after_the_work_item() -> None:
    kube, _informer, events = _racing([_store("12")], _store("12"))
    kube.merge_patch(*PATCH, subresource="status")  # a caller that keeps no answer
    assert events == []
    kube.writes.flush()
    assert [new["metadata"]["resourceVersion"] for _, _, new in events] == ["12"]
    kube.writes.flush()
    assert len(events) == 1  # once


def test_an_event_between_the_answer_and_its_storing_is_dropped_too() -> None:
    kube, informer, events = _racing([], _store("12"))
    answer = kube.merge_patch(*PATCH, subresource="status")
    informer._put(informer._slim(_store("12")), notify=True)  # the watch, just after
    informer.store_written(answer)
    kube.writes.flush()
    assert events == []


def test_an_event_of_another_object_is_never_held() -> None:
    kube, _informer, events = _racing([{**_store("5"), "metadata": {
        "name": "b", "namespace": "n", "resourceVersion": "5"}}], _store("12"))
    kube.merge_patch(*PATCH, subresource="status")
    assert [new["metadata"]["name"] for _, _, new in events] == ["b"]


def test_an_answer_whose_watch_event_came_first_is_not_slimmed_again() -> None:
    kube, informer, events = _racing([_store("12")], _store("12"))
    answer = kube.merge_patch(*PATCH, subresource="status")
    held = informer.get("n", "a")
    slimmed: list[Any] = []
    informer._slim = lambda obj: slimmed.append(obj) or {}  # type: ignore[method-assign]
    informer.store_written(answer)
    assert (slimmed, events) == ([], [])
    assert informer.get("n", "a") is held
    newer = _store("14")
    informer._slim = Informer._slim.__get__(informer)  # type: ignore[method-assign]
    informer.store_written(newer)  # a later write's answer is stored
    again = informer.get("n", "a")
    assert again is not None and again["metadata"]["resourceVersion"] == "14"


def calls_to(monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str) -> list[Any]:
    """The first argument of every call of `module.name` from now on (it still answers)."""
    seen: list[Any] = []
    real = getattr(module, name)

    def counted(value: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(value)
        return real(value, *args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return seen


def test_a_converging_cronjob_is_digested_once_as_rendered_and_once_as_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pod template's digest is the costliest part of slimming, comparing and judging a
    CronJob: the apply's answer was digested three times (its cached copy, the check that
    the apply took, PurgeScheduled), now once; the cache keeps what it kept."""
    digested = calls_to(monkeypatch, purge_job, "digest")
    kube = _cluster()
    caches = _caches(kube)
    _relist(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)  # converges: the CronJob applied
    assert len(digested) == 2  # the render's template and the answer's
    assert conditions(kube)["PurgeScheduled"][0] == "True"
    (key,) = [k for k in kube.objects if k[0] == "CronJob"]
    assert caches.get("CronJob", key[1], key[2]) == slim("CronJob", kube.objects[key])
