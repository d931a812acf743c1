"""Every API request has a timeout, and a leader that cannot renew stops acting (issue 10, 8).

With the API server hung, a request without a timeout blocks for ever: a Lease renewal that
never returns never notices that the Lease ran out, and the replica keeps acting as leader
while another one takes over.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import urllib3

from dataward.controller.kube import Kube, KubeError
from dataward.controller.leader import LeaderElector, LeaseSettings


class _Response:
    status, reason, data = 200, "OK", b"{}"

    def __init__(self) -> None:
        self.headers: dict[str, str] = {"Date": "Tue, 03 Feb 2026 10:00:00 GMT"}


class RecordingApi:
    """What Kube uses of a Connection (server, credentials, connection pool); records each
    request's timeout."""

    server = "https://api"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.timeouts: list[Any] = []
        self.pool = self

    def headers(self) -> dict[str, str]:
        return {"authorization": "Bearer t"}

    def request(self, method: str, url: str, body: Any = None, headers: Any = None,
                timeout: Any = None, preload_content: bool = True) -> _Response:
        self.timeouts.append(timeout)
        if self.error is not None:
            raise self.error
        return _Response()


STORE = {"kind": "PersonalDataStore", "metadata": {"name": "s", "namespace": "ns"}}


def every_call(kube: Kube) -> None:
    kube.get("PersonalDataStore", "ns", "s")
    kube.list("PersonalDataStore", "ns")
    kube.apply(STORE)
    kube.create(STORE)
    kube.replace(STORE)
    kube.merge_patch("PersonalDataStore", "ns", "s", {"status": {}}, "status")
    kube.delete("PersonalDataStore", "ns", "s")


def test_every_request_is_sent_with_a_timeout() -> None:
    api = RecordingApi()
    every_call(Kube(api))  # type: ignore[arg-type]
    assert len(api.timeouts) == 7
    assert all(
        isinstance(t, urllib3.Timeout) and t.connect_timeout and t.read_timeout
        for t in api.timeouts
    ), f"requests without a timeout: {api.timeouts}"


@pytest.mark.parametrize(
    "error",
    [
        urllib3.exceptions.ReadTimeoutError(None, "https://api", "Read timed out."),  # type: ignore[arg-type]
        urllib3.exceptions.MaxRetryError(None, "https://api", None),  # type: ignore[arg-type]
        urllib3.exceptions.ProtocolError("Connection aborted."),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
)
def test_a_timed_out_or_broken_request_is_a_kube_error(error: Exception) -> None:
    # Callers (the Lease renewal, the reconciler) handle KubeError; anything else escaped them
    # and, in the renewal thread, ended renewals silently while the replica kept acting.
    with pytest.raises(KubeError):
        Kube(RecordingApi(error)).get("Lease", "ns", "l")  # type: ignore[arg-type]


class LeaseKube:
    """An in-memory Lease that can be made to hang like a SIGSTOPped API server."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.hung = threading.Event()
        self.resumed = threading.Event()
        self.resumed.set()

    def _wait(self) -> None:
        if self.hung.is_set():
            self.resumed.wait()

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self._wait()
        return None if self.lease is None else {**self.lease}

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._wait()
        return self._store(obj)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._wait()
        current = (self.lease or {}).get("metadata", {}).get("resourceVersion")
        if obj["metadata"].get("resourceVersion") != current:
            raise KubeError(409, "Conflict", "update Lease")
        return self._store(obj)

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.lease = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.version)}}
        return self.lease

    def hang(self) -> None:
        self.resumed.clear()
        self.hung.set()

    def resume(self) -> None:
        self.hung.clear()
        self.resumed.set()


def test_a_leader_whose_renewals_hang_gives_up_before_the_lease_expires() -> None:
    kube = LeaseKube()
    settings = LeaseSettings(
        namespace="ns", duration_seconds=3, renew_every_seconds=0.2, retry_every_seconds=0.1
    )
    elector = LeaderElector(kube, settings, "me")  # type: ignore[arg-type]
    assert elector.acquire()
    renewer = threading.Thread(target=elector.keep_renewing, daemon=True)
    renewer.start()
    try:
        time.sleep(0.5)
        assert not elector.lost.is_set()
        kube.hang()
        hung_at = time.monotonic()
        # Another replica may take over once the Lease expires (3 s): stop acting before that.
        assert elector.lost.wait(timeout=5), "a hung renewal kept the replica leading"
        assert time.monotonic() - hung_at < settings.duration_seconds
    finally:
        kube.resume()
        elector.stop()
        renewer.join(timeout=5)


def test_a_leader_that_gave_up_stops_writing_and_leads_again_once_it_reacquires() -> None:
    kube = LeaseKube()
    settings = LeaseSettings(
        namespace="ns", duration_seconds=3, renew_every_seconds=0.2, retry_every_seconds=0.1
    )
    elector = LeaderElector(kube, settings, "me")  # type: ignore[arg-type]
    assert elector.acquire()
    assert elector.leading()
    renewer = threading.Thread(target=elector.keep_renewing, daemon=True)
    renewer.start()
    kube.hang()
    try:
        assert elector.lost.wait(timeout=5)
        assert not elector.leading(), "past the renew deadline, writes must be fenced off"
    finally:
        kube.resume()
    renewer.join(timeout=5)
    assert not renewer.is_alive()
    assert elector.acquire()  # the Lease is still ours: re-acquired without waiting for expiry
    assert elector.leading() and not elector.lost.is_set()
    elector.stop()


def test_writes_are_refused_without_a_request_while_not_leading() -> None:
    api = RecordingApi()
    leading = threading.Event()
    kube = Kube(api, may_write=leading.is_set)  # type: ignore[arg-type]
    with pytest.raises(KubeError):
        kube.apply(STORE)
    assert kube.get("PersonalDataStore", "ns", "s") == {}  # reads are always allowed
    leading.set()
    kube.apply(STORE)
    assert len(api.timeouts) == 2


class DatedApi(RecordingApi):
    """Answers with a given `Date` header (None: none) and status."""

    def __init__(self, date: str | None, status: int = 200) -> None:
        super().__init__()
        self.date, self.status = date, status

    def request(self, *args: Any, **kwargs: Any) -> Any:
        super().request(*args, **kwargs)
        answer = _Response()
        answer.headers = {} if self.date is None else {"Date": self.date}
        answer.status = self.status
        answer.reason = "OK" if self.status == 200 else "Not Found"
        return answer


def test_get_dated_gives_the_api_servers_time_from_the_same_answer() -> None:
    api = DatedApi("Tue, 03 Feb 2026 10:00:07 GMT")
    got, server = Kube(api).get_dated("PersonalDataStore", "ns", "s")  # type: ignore[arg-type]
    assert got == {} and len(api.timeouts) == 1  # one request
    assert server == datetime(2026, 2, 3, 10, 0, 7, tzinfo=UTC)


@pytest.mark.parametrize("date", [None, "", "yesterday", "Tue, 03 Feb 2026 10:00:07 -0000"])
def test_a_missing_or_garbled_date_is_unknown_not_now(date: str | None) -> None:
    _, server = Kube(DatedApi(date)).get_dated("PersonalDataStore", "ns", "s")  # type: ignore[arg-type]
    assert server is None


def test_get_dated_of_a_missing_object_is_none() -> None:
    api = DatedApi("Tue, 03 Feb 2026 10:00:07 GMT", status=404)
    assert Kube(api).get_dated("PersonalDataStore", "ns", "s") == (None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [403, 500])
def test_a_failed_read_is_never_gone(status: int) -> None:
    # Only a 404 is "gone"; a forbidden or failing read must stay an error for get, get_dated
    # and exists alike (one helper decides), never a missing object.
    for read in (
        lambda kube: kube.get("PersonalDataStore", "ns", "s"),
        lambda kube: kube.get_dated("PersonalDataStore", "ns", "s"),
        lambda kube: kube.exists("PersonalDataStore", "ns", "s"),
    ):
        api = DatedApi("Tue, 03 Feb 2026 10:00:07 GMT", status=status)
        with pytest.raises(KubeError) as raised:
            read(Kube(api))  # type: ignore[arg-type]
        assert raised.value.status == status and len(api.timeouts) == 1
