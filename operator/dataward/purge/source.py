"""Where the purge job reads its store and policy: files (offline) or the Kubernetes API.

This is the only I/O of the purge job besides the databases; it is kept thin on purpose.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import yaml

from dataward.controller.clock import system_clock
from dataward.model.errors import ModelError
from dataward.model.policy import Policy, parse_policy
from dataward.model.revisions import (
    UNKNOWN_REVISION,
    UnknownRevision,
    in_force_known,
    in_force_policy,
    parse_in_force,
    policy_revisions,
)
from dataward.model.store import Store, parse_store
from dataward.purge.errors import PurgeError
from dataward.redact import load_all

GROUP, VERSION = "dataward.io", "v1alpha1"
log = logging.getLogger("dataward.purge.source")


class StoreSource(Protocol):
    """Loads the store and its policy (None when the policy does not exist)."""

    def load(self) -> tuple[Store, Policy | None]:
        """Read both, fresh, now."""
        ...

    def load_store(self) -> Store:
        """Read the store alone, fresh, now (the cheap check before every batch)."""
        ...

    def policy_at(self, instant: datetime) -> Policy | UnknownRevision | None:
        """The policy the last `load` read, as the revision in force at `instant` (no I/O;
        `revision_at`): the run decides it at the very clocks its cutoff is computed at."""
        ...


def policy_in_force(
    raw: Mapping[str, Any] | None, instant: datetime, pending_generation: int | None = None
) -> Policy | None:
    """The PrivacyPolicy `raw` as the revision in force at `instant` (`in_force_policy`), or
    as written when a preview of its pending revision (`pending_generation`) reads it; None
    without a policy. A PurgeError (Configuration) when the recorded status cannot be read."""
    if raw is None:
        return None
    try:
        if pending_generation is not None:
            return parse_policy(raw)
        return in_force_policy(raw, instant)
    except ModelError as exc:
        raise PurgeError("Configuration", str(exc)) from None


def revision_at(
    raw: Mapping[str, Any] | None, instant: datetime, pending_generation: int | None = None
) -> Policy | UnknownRevision | None:
    """`policy_in_force`, or UNKNOWN_REVISION when status records the revision in force only
    from after `instant` (`in_force_known`): what a run decides at each clock it reads."""
    if raw is None or pending_generation is not None:
        return policy_in_force(raw, instant, pending_generation)
    try:
        revisions = policy_revisions(raw, instant)  # decided once, as `in_force_policy` does
        if not in_force_known(revisions, instant):
            return UNKNOWN_REVISION
        return parse_in_force(raw, revisions.in_force.spec)
    except ModelError as exc:
        raise PurgeError("Configuration", str(exc)) from None


def _documents(paths: Iterable[Path]) -> list[Mapping[str, Any]]:
    docs: list[Mapping[str, Any]] = []
    for path in paths:
        try:
            text = path.read_text()
        except OSError as exc:
            raise PurgeError(
                "Configuration", f"cannot read {str(path)!r}: {exc.strerror}"
            ) from None
        try:
            loaded = load_all(text)
        except yaml.YAMLError:
            raise PurgeError("Configuration", f"{str(path)!r} is not valid YAML") from None
        for doc in loaded:
            if isinstance(doc, Mapping) and doc.get("kind") == "List":
                docs.extend(item for item in doc.get("items") or () if isinstance(item, Mapping))
            elif isinstance(doc, Mapping):
                docs.append(doc)
    return docs


class FileSource:
    """A PersonalDataStore and its PrivacyPolicy from YAML files (multi-document is fine)."""

    def __init__(
        self,
        paths: Sequence[Path],
        store: str | None = None,
        clock: Callable[[], datetime] = system_clock,
    ) -> None:
        self.paths = tuple(paths)
        self.store = store
        self.clock = clock  # which revision of the policy is in force depends on "now"
        self._raw_policy: Mapping[str, Any] | None = None

    def load(self) -> tuple[Store, Policy | None]:
        """Parse the files again (so an edit between batches is seen)."""
        docs = _documents(self.paths)
        stores = [d for d in docs if d.get("kind") == "PersonalDataStore"]
        if self.store is not None:
            namespace, _, name = self.store.partition("/")
            stores = [
                d
                for d in stores
                if (d.get("metadata") or {}).get("name") == name
                and (d.get("metadata") or {}).get("namespace", "default") == namespace
            ]
        if len(stores) != 1:
            raise PurgeError(
                "Configuration",
                f"expected exactly one PersonalDataStore{' ' + self.store if self.store else ''}"
                f" in the files, found {len(stores)}",
            )
        try:
            store = parse_store(stores[0])
        except ModelError as exc:
            raise PurgeError("Configuration", str(exc)) from None
        # A policy exported with its status (kubectl get -o yaml) says which revision is in
        # force; the same rule as the API source's then applies.
        policies = [
            d
            for d in docs
            if d.get("kind") == "PrivacyPolicy"
            and (d.get("metadata") or {}).get("name") == store.policy
        ]
        self._raw_policy = policies[0] if policies else None
        return store, policy_in_force(self._raw_policy, self.clock())

    def policy_at(self, instant: datetime) -> Policy | UnknownRevision | None:
        """The policy the last `load` read, as the revision in force at `instant`."""
        return revision_at(self._raw_policy, instant)

    def load_store(self) -> Store:
        """The store from the files (parsing them is as cheap as it gets)."""
        return self.load()[0]


def _note_version(version: dict[str, str], obj: Mapping[str, Any]) -> None:
    """Remember the resourceVersion a resumed watch starts from."""
    seen = (obj.get("metadata") or {}).get("resourceVersion")
    if seen:
        version["resource_version"] = str(seen)


class ApiSource:
    """The store and its policy from the Kubernetes API (in-cluster config, else KUBECONFIG).

    The check before every batch must be cheap: a purge with 100 ms batches would otherwise
    GET its store ten times a second, and every store purges at the same hour by default.
    So after the first GET the store is followed by a watch on that one object (the purge
    Role grants list and watch on it by name). While the watch is live the check reads the
    copy it keeps; when the watch breaks, ends or has not started, the check is a GET again:
    a watch that stopped is never taken to mean "unchanged". Nor is one gone silent: a
    half-open connection delivers nothing and raises nothing until its read timeout, minutes
    later, just like a live watch on a store nobody edits. So the copy is used only for
    FRESH_SECONDS after the watch's last event or a GET that found the same version; then the
    check is a GET (a quiet store costs one GET per period, a silent watch hides nothing
    longer than that).
    """

    WATCH_SECONDS = 300  # the server ends a watch after this; it is then resumed
    REQUEST_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds for each GET
    FRESH_SECONDS = 10.0  # how long the watched copy is trusted without a sign of life

    def __init__(
        self,
        namespace: str,
        name: str,
        clock: Callable[[], datetime] = system_clock,
        pending_generation: int | None = None,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.clock = clock  # which revision of the policy is in force depends on "now"
        # The impact preview: the policy as written (the pending revision), which must still
        # be this generation (else the counts would be another revision's).
        self.pending_generation = pending_generation
        self._raw_policy: Mapping[str, Any] | None = None  # as the last `load` read it
        self._api: Any = None
        self._lock = threading.Lock()
        self._watched: Mapping[str, Any] | None = None  # the live copy, while the watch is live
        self._monotonic: Callable[[], float] = time.monotonic
        self._seen_at = 0.0  # when the watch last showed it is live (an event, a matching GET)
        self._watcher: threading.Thread | None = None
        self._handle: Any = None  # the kubernetes Watch, to stop it
        self._closing = False

    def _client(self) -> Any:
        if self._api is None:
            from kubernetes import client, config  # imported here: only the API mode needs it

            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            self._api = client.CustomObjectsApi()
        return self._api

    def load_store(self) -> Store:
        """The store: the watched copy while the watch is live and fresh, else one GET."""
        with self._lock:
            raw_store = self._watched
            if raw_store is not None and self._monotonic() - self._seen_at > self.FRESH_SECONDS:
                raw_store = None
        if raw_store is None:
            raw_store = self._get_store()
            self._confirm(raw_store)
            self._follow()
        try:
            return parse_store(raw_store)
        except ModelError as exc:
            raise PurgeError("Configuration", str(exc)) from None

    def _get_store(self) -> Mapping[str, Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            raw: Mapping[str, Any] = self._client().get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "personaldatastores", self.name,
                _request_timeout=self.REQUEST_TIMEOUT,
            )  # fmt: skip
        except ApiException as exc:
            raise PurgeError(
                "StoreUnavailable",
                f"cannot read PersonalDataStore {self.namespace}/{self.name} (HTTP {exc.status})",
            ) from None
        except Exception:
            raise PurgeError(
                "StoreUnavailable",
                f"cannot read PersonalDataStore {self.namespace}/{self.name} (no answer)",
            ) from None
        return raw

    def _confirm(self, fetched: Mapping[str, Any]) -> None:
        """A GET that found the version the watch holds shows the watch is still current."""
        version = (fetched.get("metadata") or {}).get("resourceVersion")
        with self._lock:
            held = (self._watched or {}).get("metadata") or {}
            if version and held.get("resourceVersion") == version:
                self._seen_at = self._monotonic()

    def _follow(self) -> None:
        """Start the watch (once); its copy is used only after its first event arrives."""
        if self._watcher is not None or self._closing:
            return
        self._watcher = threading.Thread(target=self._watch, name="store-watch", daemon=True)
        # Stopped before the interpreter shuts down: a thread still reading (or logging) then
        # would abort the process after the purge had finished.
        atexit.register(self.close)
        self._watcher.start()

    def close(self) -> None:
        """Stop following the store: wake the watch's blocking read and wait for it to end."""
        with self._lock:
            self._closing = True
            watcher, handle = self._watcher, self._handle
        if handle is not None:
            handle.stop()
            response = getattr(handle, "_resp", None)
            if response is not None:
                with contextlib.suppress(Exception):
                    response.close()
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=2)

    def _watch(self) -> None:
        from kubernetes import watch

        api = self._client()
        handle = watch.Watch()
        with self._lock:
            self._handle = handle
        # No version at first: the server then sends the object as it is now (ADDED), which is
        # both the copy to use and the proof that the watch is live. Resumed watches carry on
        # from the last version seen.
        version: dict[str, str] = {}
        while not self._closing:
            try:
                stream = handle.stream(
                    api.list_namespaced_custom_object,
                    GROUP, VERSION, self.namespace, "personaldatastores",
                    field_selector=f"metadata.name={self.name}",
                    timeout_seconds=self.WATCH_SECONDS,
                    _request_timeout=(self.REQUEST_TIMEOUT[0], self.WATCH_SECONDS + 30),
                    **version,
                )  # fmt: skip
                for event in stream:
                    kind, obj = event.get("type"), event.get("object")
                    if kind in ("ADDED", "MODIFIED") and isinstance(obj, Mapping):
                        _note_version(version, obj)
                        with self._lock:
                            self._watched = obj
                            self._seen_at = self._monotonic()
                    elif kind == "BOOKMARK" and isinstance(obj, Mapping):
                        _note_version(version, obj)
                        with self._lock:
                            self._seen_at = self._monotonic()
                    else:  # DELETED or ERROR (e.g. 410 Gone): only a GET can say what is true
                        break
                else:
                    continue  # the server ended the watch on time: resume from `version`
            except Exception as error:  # any failure: fall back to GETs
                if not self._closing:
                    log.info(
                        "watch of the store ended (%s); checking it by GET", type(error).__name__
                    )
            break
        with self._lock:
            self._watched = None
            self._watcher = None  # the next GET starts a new watch

    def load(self) -> tuple[Store, Policy | None]:
        """GET the store, then its policy (a missing policy reads as None)."""
        from kubernetes.client.exceptions import ApiException

        api = self._client()
        store = self.load_store()
        try:
            raw_policy = api.get_cluster_custom_object(
                GROUP, VERSION, "privacypolicies", store.policy,
                _request_timeout=self.REQUEST_TIMEOUT,
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 404:
                self._raw_policy = None
                return store, None
            raise PurgeError(
                "StoreUnavailable",
                f"cannot read PrivacyPolicy {store.policy} (HTTP {exc.status})",
            ) from None
        except Exception:  # a timeout or dropped connection: unknown, not absent
            raise PurgeError(
                "StoreUnavailable", f"cannot read PrivacyPolicy {store.policy} (no answer)"
            ) from None
        try:
            written = parse_policy(raw_policy)  # the spec itself must be valid, pending or not
            if self.pending_generation is not None:
                if written.generation != self.pending_generation:
                    raise PurgeError(
                        "Configuration",
                        f"PrivacyPolicy {store.policy} is at generation {written.generation}, "
                        f"not {self.pending_generation}: this preview is out of date",
                    )
        except ModelError as exc:
            raise PurgeError("Configuration", str(exc)) from None
        self._raw_policy = raw_policy
        # The revision in force, which the operator records in the policy's status: a
        # revision still in its notice period must not decide what is deleted.
        return store, policy_in_force(self._raw_policy, self.clock(), self.pending_generation)

    def policy_at(self, instant: datetime) -> Policy | UnknownRevision | None:
        """The policy the last `load` read, as the revision in force at `instant` (the
        preview of a pending revision: as written, at any instant)."""
        return revision_at(self._raw_policy, instant, self.pending_generation)
