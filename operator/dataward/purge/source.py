"""Where the purge job reads its store and policy: files (offline) or the Kubernetes API.

This is the only I/O of the purge job besides the databases; it is kept thin on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml

from dataward.model.errors import ModelError
from dataward.model.policy import Policy, parse_policy
from dataward.model.store import Store, parse_store
from dataward.purge.errors import PurgeError

GROUP, VERSION = "dataward.io", "v1alpha1"


class StoreSource(Protocol):
    """Loads the store and its policy (None when the policy does not exist)."""

    def load(self) -> tuple[Store, Policy | None]:
        """Read both, fresh, now."""
        ...

    def load_store(self) -> Store:
        """Read the store alone, fresh, now (the cheap check before every batch)."""
        ...


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
            loaded = list(yaml.safe_load_all(text))
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

    def __init__(self, paths: Sequence[Path], store: str | None = None) -> None:
        self.paths = tuple(paths)
        self.store = store

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
            policies = [
                parse_policy(d)
                for d in docs
                if d.get("kind") == "PrivacyPolicy"
                and (d.get("metadata") or {}).get("name") == store.policy
            ]
        except ModelError as exc:
            raise PurgeError("Configuration", str(exc)) from None
        return store, policies[0] if policies else None

    def load_store(self) -> Store:
        """The store from the files (parsing them is as cheap as it gets)."""
        return self.load()[0]


class ApiSource:
    """The store and its policy from the Kubernetes API (in-cluster config, else KUBECONFIG)."""

    def __init__(self, namespace: str, name: str) -> None:
        self.namespace = namespace
        self.name = name
        self._api: Any = None

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
        """One GET of the store."""
        from kubernetes.client.exceptions import ApiException

        api = self._client()
        try:
            raw_store = api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "personaldatastores", self.name
            )
        except ApiException as exc:
            raise PurgeError(
                "StoreUnavailable",
                f"cannot read PersonalDataStore {self.namespace}/{self.name} (HTTP {exc.status})",
            ) from None
        try:
            return parse_store(raw_store)
        except ModelError as exc:
            raise PurgeError("Configuration", str(exc)) from None

    def load(self) -> tuple[Store, Policy | None]:
        """GET the store, then its policy (a missing policy reads as None)."""
        from kubernetes.client.exceptions import ApiException

        api = self._client()
        store = self.load_store()
        try:
            raw_policy = api.get_cluster_custom_object(
                GROUP, VERSION, "privacypolicies", store.policy
            )
        except ApiException as exc:
            if exc.status == 404:
                return store, None
            raise PurgeError(
                "StoreUnavailable",
                f"cannot read PrivacyPolicy {store.policy} (HTTP {exc.status})",
            ) from None
        try:
            return store, parse_policy(raw_policy)
        except ModelError as exc:
            raise PurgeError("Configuration", str(exc)) from None
