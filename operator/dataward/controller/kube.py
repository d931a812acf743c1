"""A thin, synchronous view of the Kubernetes API for the kinds Dataward touches.

Everything here is I/O; decisions live in render/, checks/, keys/ and drift.py. Objects go in
and come out as plain dicts (JSON as the API serves it), so the same code handles every kind.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlencode

import orjson
import urllib3
from kubernetes import client, config

from dataward.controller.metrics import WRITES

FIELD_MANAGER = "dataward"
# Asks the API server for PartialObjectMetadata: the object's metadata, without its data.
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
# The same for a LIST: PartialObjectMetadataList, items without their data.
METADATA_ONLY_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
# (connect, read) seconds. Without a timeout a request to a hung API server blocks for ever:
# the read timeout bounds each wait for bytes, so a stalled server surfaces as a KubeError.
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)


def loads(data: bytes) -> Any:
    """JSON as the API server sends it: by orjson, about half of `json.loads`' CPU on the API's
    objects (every answer and every watch event is decoded: issue 11). The API server sends
    what Go encodes (valid UTF-8, integers within 64 bits); what orjson refuses all the same
    (a lone surrogate escape, a number past a double) goes to `json.loads`, which decides."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(body: Any) -> str:
    """A request body as compact JSON (no spaces: less to send and for the server to read)."""
    return json.dumps(body, separators=(",", ":"))


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the REST API."""

    api_version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        """The REST path of a collection or an object."""
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if sub:
            parts.append(sub)
        return "/".join(parts)


RESOURCES: dict[str, Resource] = {
    "PersonalDataStore": Resource("dataward.io/v1alpha1", "personaldatastores"),
    "PrivacyPolicy": Resource("dataward.io/v1alpha1", "privacypolicies", namespaced=False),
    "NetworkPolicy": Resource("networking.k8s.io/v1", "networkpolicies"),
    "Role": Resource("rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": Resource("rbac.authorization.k8s.io/v1", "rolebindings"),
    "ClusterRole": Resource("rbac.authorization.k8s.io/v1", "clusterroles", namespaced=False),
    "ClusterRoleBinding": Resource(
        "rbac.authorization.k8s.io/v1", "clusterrolebindings", namespaced=False
    ),
    "ServiceAccount": Resource("v1", "serviceaccounts"),
    "Secret": Resource("v1", "secrets"),
    "CronJob": Resource("batch/v1", "cronjobs"),
    "Job": Resource("batch/v1", "jobs"),
    "Pod": Resource("v1", "pods"),
    "Event": Resource("events.k8s.io/v1", "events"),
    "Namespace": Resource("v1", "namespaces", namespaced=False),
    "Lease": Resource("coordination.k8s.io/v1", "leases"),
    "DataSubjectRequest": Resource("dataward.io/v1alpha1", "datasubjectrequests"),
}


class KubeError(Exception):
    """An API call failed; carries the HTTP status and the server's reason, never a body.

    Status 0: no answer (timeout, connection refused or reset), or a write refused locally
    because this replica is not the leader.
    """

    def __init__(self, status: int, reason: str, what: str) -> None:
        super().__init__(f"{what}: HTTP {status} {reason}")
        self.status = status
        self.reason = reason


def load_api_client(kubeconfig: str | None = None, retries: int | None = None) -> client.ApiClient:
    """An ApiClient from a kubeconfig file, $KUBECONFIG, or the in-cluster service account.

    `retries`: urllib3's retries of a failed connection or read (None: urllib3's default, 3).
    Each retry waits for its own timeout, so a caller with a deadline (the Lease) wants 0.
    """
    configuration = client.Configuration()
    configuration.retries = retries
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    return client.ApiClient(configuration)


WriteKey = tuple[str, str, str]  # (API kind, namespace or "", name)


class WriteTracker:
    """The objects the operator is writing now, and the watch events of them meanwhile.

    A watch event of the operator's own write is no change (the caches' echo rule): its
    answer is stored in the cache (`Caches.store_written`), and the event, at the same
    resourceVersion, then queues nothing. But the event often arrives *before* the answer
    does (the server sends both at once; a watch thread reads it first): it was taken for a
    change, and every store converging was reconciled a second time for nothing (issue 11).

    So an event of an object with a write in flight, or whose write has ended but whose
    answer is not stored yet, is held (`defer`). When the answer is stored (`settle`), the
    one event a cache held at exactly the answer's resourceVersion is dropped: it was the
    echo. Everything else held is emitted: more than one event, another version, a failed
    write, or an answer nobody stored (`flush`, after every work item). At worst an event
    comes late by one work item; none is lost, and only an echo is dropped.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flying: dict[WriteKey, int] = {}
        # Held events: (owner (a cache), resourceVersion, emit).
        self._held: dict[WriteKey, list[tuple[object, str | None, Callable[[], None]]]] = {}
        # Writes ended: the answer's resourceVersion (None: failed), until settled or flushed.
        self._ended: dict[WriteKey, str | None] = {}

    def begin(self, key: WriteKey) -> None:
        with self._lock:
            self._flying[key] = self._flying.get(key, 0) + 1

    def end(self, key: WriteKey, version: str | None) -> None:
        """The write to `key` is answered (`version`), or failed (None)."""
        with self._lock:
            left = self._flying.get(key, 1) - 1
            if left > 0:
                self._flying[key] = left
                return
            self._flying.pop(key, None)
            if version is not None:
                self._ended[key] = version
                return
            self._ended.pop(key, None)
            held = self._held.pop(key, [])
        for _, _, emit in held:
            emit()

    def defer(
        self, key: WriteKey, owner: object, version: str | None, emit: Callable[[], None]
    ) -> bool:
        """Hold `emit` (an event of `key` at `version`) while `key` is being written; False
        (emit it now) when it is not."""
        with self._lock:
            if key not in self._flying and key not in self._ended:
                return False
            self._held.setdefault(key, []).append((owner, version, emit))
            return True

    def settle(self, key: WriteKey, owner: object, version: str | None) -> None:
        """`owner` stored the answer of the write to `key` (at `version`): drop its one held
        event at that version (the echo), emit its others."""
        with self._lock:
            if key in self._flying or self._ended.get(key) != version:
                return  # another write is still under way, or this is not its answer
            held = self._held.get(key, [])
            mine = [h for h in held if h[0] is owner]
            rest = [h for h in held if h[0] is not owner]
            if rest:
                self._held[key] = rest
            else:
                self._held.pop(key, None)
                self._ended.pop(key, None)
        if len(mine) == 1 and version is not None and mine[0][1] == version:
            return
        for _, _, emit in mine:
            emit()

    def flush(self) -> None:
        """Emit every held event of a write that has ended (its answer not stored, or not
        by every cache that held an event)."""
        with self._lock:
            keys = [key for key in self._ended if key not in self._flying]
            held = [h for key in keys for h in self._held.pop(key, [])]
            for key in keys:
                del self._ended[key]
        for _, _, emit in held:
            emit()


class Kube:
    """JSON-in, JSON-out calls for the kinds in RESOURCES.

    Every request carries `timeout` ((connect, read) seconds). `may_write` fences mutating
    requests: when it answers False (the Lease is no longer known to be held) a write fails
    with KubeError(0) before anything is sent.
    """

    def __init__(
        self,
        api: client.ApiClient,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        self.api = api
        self.timeout = timeout
        self._timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self.may_write = may_write
        self.writes = WriteTracker()

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        what: str,
        target: WriteKey | None = None,
    ) -> dict[str, Any]:
        """One request; `target`: the object a write changes (see WriteTracker)."""
        if method != "GET" and self.may_write is not None and not self.may_write():
            raise KubeError(0, "not the leader: write refused", what)
        payload = None if body is None else body if isinstance(body, str) else dumps(body)
        if target is not None:
            self.writes.begin(target)
        answer: dict[str, Any] | None = None
        try:
            try:
                status, reason, data = self._send(
                    method, path, query or [], {"Content-Type": content_type, "Accept": accept},
                    payload,
                )
            except (urllib3.exceptions.HTTPError, OSError) as error:
                # Timeouts, refused or reset connections: no answer, which callers must not
                # mistake for any answer (least of all "not found").
                raise KubeError(0, f"no answer ({type(error).__name__})", what) from None
            if method != "GET":
                WRITES.labels(what.split(" ")[1] if " " in what else what, method).inc()
            if not 200 <= status < 300:
                # The body may echo what we sent (a Secret's data); keep only status and reason.
                raise KubeError(status, reason, what)
            answer = cast(dict[str, Any], loads(data)) if data else {}
            return answer
        finally:
            if target is not None:
                version = ((answer or {}).get("metadata") or {}).get("resourceVersion")
                self.writes.end(target, str(version) if version else None)

    def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: str | None,
    ) -> tuple[int, str, bytes]:
        """One request on the ApiClient's connection pool: (status, reason, body).

        The client's own request path (param_serialize, call_api) sanitises every body and
        parameter as models and rebuilds the auth settings per request: a quarter to a third
        of the client's CPU per request (0.71 → 0.48 ms an apply, 0.44 → 0.33 ms a GET;
        issue 11). Its configuration
        (server, credentials, refreshed by its hook as before, TLS, retries) still applies.
        """
        configuration = self.api.configuration
        url = configuration.host + path
        if query:
            url += "?" + urlencode(query, quote_via=quote)
        sent = {**self.api.default_headers, **headers}
        token = configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token:
            sent["authorization"] = token
        response = self.api.rest_client.pool_manager.request(
            method, url, body=body, headers=sent, timeout=self._timeout
        )  # the body is read here: a stall is a read timeout too
        return int(response.status), str(response.reason), response.data

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None on a confirmed 404; any other failure raises KubeError."""
        try:
            return self._call("GET", RESOURCES[kind].path(namespace, name), what=f"get {kind}")
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    def exists(self, kind: str, namespace: str | None, name: str) -> bool:
        """Whether the object exists, reading only its metadata (never a Secret's data).

        False on a confirmed 404; any other failure raises KubeError.
        """
        try:
            self._call(
                "GET",
                RESOURCES[kind].path(namespace, name),
                accept=METADATA_ONLY,
                what=f"get {kind}",
            )
        except KubeError as error:
            if error.status == 404:
                return False
            raise
        return True

    def served(self, group_version: str) -> set[str]:
        """The resources the API serves in `group_version` (discovery); empty on a 404.

        Discovery is open to every authenticated user: no RBAC on CRDs is needed.
        """
        try:
            result = self._call("GET", f"/apis/{group_version}", what=f"discover {group_version}")
        except KubeError as error:
            if error.status == 404:
                return set()
            raise
        return {str(r.get("name")) for r in result.get("resources") or []}

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Every object of a kind (in a namespace), optionally by label selector."""
        query = [("labelSelector", label_selector)] if label_selector else []
        result = self._call(
            "GET", RESOURCES[kind].path(namespace), query=query, what=f"list {kind}"
        )
        return cast(list[dict[str, Any]], result.get("items") or [])

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply with the operator's field manager, taking over conflicting fields."""
        kind = obj["kind"]
        meta = obj["metadata"]
        return self._call(
            "PATCH",
            RESOURCES[kind].path(meta.get("namespace"), meta["name"]),
            body=dumps(obj),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
            what=f"apply {kind} {meta['name']}",
            target=(kind, meta.get("namespace") or "", meta["name"]),
        )

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create an object; a 409 surfaces as KubeError(409) for create-only callers."""
        kind = obj["kind"]
        meta = obj["metadata"]
        return self._call(
            "POST",
            RESOURCES[kind].path(meta.get("namespace")),
            body=obj,
            query=[("fieldManager", FIELD_MANAGER)],
            what=f"create {kind} {meta['name']}",
            target=(kind, meta.get("namespace") or "", meta["name"]),
        )

    def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object; its metadata.resourceVersion makes this a compare-and-swap."""
        kind = obj["kind"]
        meta = obj["metadata"]
        return self._call(
            "PUT",
            RESOURCES[kind].path(meta.get("namespace"), meta["name"]),
            body=obj,
            query=[("fieldManager", FIELD_MANAGER)],
            what=f"update {kind} {meta['name']}",
            target=(kind, meta.get("namespace") or "", meta["name"]),
        )

    def merge_patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """A JSON merge patch, for status and single annotations."""
        return self._call(
            "PATCH",
            RESOURCES[kind].path(namespace, name, subresource),
            body=patch,
            query=[("fieldManager", FIELD_MANAGER)],
            content_type="application/merge-patch+json",
            what=f"patch {kind} {name}",
            target=(kind, namespace or "", name),
        )

    def delete(
        self, kind: str, namespace: str | None, name: str, propagation: str | None = None
    ) -> bool:
        """Delete an object; False when it was already gone.

        `propagation` (Background, Foreground): delete what it owns too; a Job deleted without
        it leaves its pods behind.
        """
        body = {"propagationPolicy": propagation} if propagation else None
        try:
            self._call(
                "DELETE", RESOURCES[kind].path(namespace, name), body=body, what=f"delete {kind}"
            )
        except KubeError as error:
            if error.status == 404:
                return False
            raise
        return True
