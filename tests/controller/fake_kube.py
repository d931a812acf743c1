"""An in-memory stand-in for `Kube`, for unit tests of the reconciler's decisions.

It keeps objects by (kind, namespace, name), bumps resourceVersion on every write, refuses a
stale replace or a merge patch whose resourceVersion is stale with 409, a duplicate
create with 409, a store's status holding an integer beyond int64 with 422, and records every
call, so tests can
assert both what the reconciler wrote and that it wrote nothing. e2e tests use the real API.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dataward.controller.kube import KubeError

Key = tuple[str, str | None, str]
# The integers of a PersonalDataStore's status are typed `integer, format: int64` by its CRD: the
# e2e control plane's kube-apiserver (k8s.io/kubernetes v1.37.2) refuses a status patch setting
# status.lastPurge.rowsDeleted to 2**63 with 422 ("must be of type int64"), and keeps 2**63-1
# and -1. This fake refuses one anywhere in the status (a `number` field, which the server would
# take as a float, included).
INT64 = range(-(2**63), 2**63)


def _beyond_int64(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_beyond_int64(v) for v in value.values())
    if isinstance(value, list):
        return any(_beyond_int64(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool) and value not in INT64


def _merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, Mapping):  # RFC 7386: into {} when there is none (no nulls)
            base[key] = _merge(base[key] if isinstance(base.get(key), dict) else {}, value)
        else:
            base[key] = copy.deepcopy(value)
    return base


class FakeKube:
    """Objects in a dict; `calls` lists (verb, kind, name) for every request."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.version = 0
        self.fail_gets: dict[str, int] = {}  # kind -> HTTP status to fail every get with
        self.fail_lists: dict[str, int] = {}  # kind -> HTTP status to fail every list with
        self.fail_patches: int | None = None  # HTTP status to fail every patch with
        # The API server's clock, as its answers' Date header says (None: no header).
        self.server_time: datetime | None = None

    def writes(self) -> list[tuple[str, str, str]]:
        """The mutating calls so far."""
        return [c for c in self.calls if c[0] not in ("get", "get_metadata", "list")]

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        obj["metadata"].setdefault("uid", f"uid-{self.version}")
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta.get("namespace"), meta["name"])] = obj
        return copy.deepcopy(obj)

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self.calls.append(("get", kind, name))
        if kind in self.fail_gets:
            raise KubeError(self.fail_gets[kind], "Internal Server Error", f"get {kind}")
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found else None

    def get_dated(
        self, kind: str, namespace: str | None, name: str
    ) -> tuple[dict[str, Any] | None, datetime | None]:
        found = self.get(kind, namespace, name)
        return found, self.server_time if found is not None else None

    def get_metadata(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """Only the stored object's metadata, as the API server's PartialObjectMetadata: a
        test can tell that no `data` was fetched (`calls` has "get_metadata", not "get")."""
        self.calls.append(("get_metadata", kind, name))
        if kind in self.fail_gets:
            raise KubeError(self.fail_gets[kind], "Internal Server Error", f"get {kind}")
        found = self.objects.get((kind, namespace, name))
        return {"metadata": copy.deepcopy(found["metadata"])} if found else None

    def exists(self, kind: str, namespace: str | None, name: str) -> bool:
        self.calls.append(("get", kind, name))
        if kind in self.fail_gets:
            raise KubeError(self.fail_gets[kind], "Internal Server Error", f"get {kind}")
        return (kind, namespace, name) in self.objects

    def list(self, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict[str, Any]]:
        self.calls.append(("list", kind, namespace or ""))
        if kind in self.fail_lists:
            raise KubeError(self.fail_lists[kind], "Forbidden", f"list {kind}")
        wanted = dict(p.split("=", 1) for p in label_selector.split(",")) if label_selector else {}
        # Filtered, then sorted by key (the order of the whole item's text, which began
        # with the key's, without turning every object in the API into text per LIST).
        return [
            copy.deepcopy(obj) for (k, ns, _), obj in sorted(
                ((key, obj) for key, obj in self.objects.items()
                 if key[0] == kind and (namespace is None or key[1] == namespace)),
                key=lambda item: str(item[0]))
            if all((obj["metadata"].get("labels") or {}).get(a) == b for a, b in wanted.items())
        ]

    def apply(self, obj: Mapping[str, Any], version: str | None = None) -> dict[str, Any]:
        """As the API server does: a resourceVersion (`version`, which Kube.apply sends in
        the body) is a precondition on an object of the name (409 when it differs); an
        object gone is made anew (checked against a real kube-apiserver)."""
        self.calls.append(("apply", obj["kind"], obj["metadata"]["name"]))
        meta = obj["metadata"]
        current = self.objects.get((obj["kind"], meta.get("namespace"), meta["name"]))
        wanted = version if version is not None else meta.get("resourceVersion")
        if current is not None and wanted is not None and (
            wanted != current["metadata"]["resourceVersion"]
        ):
            raise KubeError(409, "Conflict", f"apply {obj['kind']}")
        merged = _merge(copy.deepcopy(current) if current else {}, obj)
        return self._store(merged)

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(("create", obj["kind"], obj["metadata"]["name"]))
        meta = obj["metadata"]
        if (obj["kind"], meta.get("namespace"), meta["name"]) in self.objects:
            raise KubeError(409, "Conflict", f"create {obj['kind']}")
        return self._store(copy.deepcopy(dict(obj)))

    def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(("replace", obj["kind"], obj["metadata"]["name"]))
        meta = obj["metadata"]
        current = self.objects.get((obj["kind"], meta.get("namespace"), meta["name"]))
        if current is None:
            raise KubeError(404, "Not Found", "replace")
        if meta.get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", "replace")
        return self._store(copy.deepcopy(dict(obj)))

    def merge_patch(self, kind: str, namespace: str | None, name: str,
                    patch: Mapping[str, Any], subresource: str | None = None) -> dict[str, Any]:
        self.calls.append(("patch" + (f"/{subresource}" if subresource else ""), kind, name))
        if self.fail_patches is not None:
            raise KubeError(self.fail_patches, "Forbidden", "patch")
        current = self.objects.get((kind, namespace, name))
        if current is None:
            raise KubeError(404, "Not Found", "patch")
        # As the API server does: a resourceVersion in the patch is a precondition.
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", "patch")
        merged = _merge(copy.deepcopy(current), patch)
        if kind == "PersonalDataStore" and _beyond_int64(merged.get("status")):
            raise KubeError(422, "Unprocessable Entity", "patch")
        return self._store(merged)

    def json_patch(self, kind: str, namespace: str | None, name: str,
                   operations: Sequence[Mapping[str, Any]],
                   subresource: str | None = None) -> dict[str, Any]:
        """RFC 6902 `test`, `add`, `replace` and `remove` on object members and list indexes; a
        failed test or a missing path refuses the whole patch with 422, as the API server does."""
        self.calls.append(("patch" + (f"/{subresource}" if subresource else ""), kind, name))
        if self.fail_patches is not None:
            raise KubeError(self.fail_patches, "Forbidden", "patch")
        current = self.objects.get((kind, namespace, name))
        if current is None:
            raise KubeError(404, "Not Found", "patch")
        patched = copy.deepcopy(current)
        for op in operations:
            *parents, last = [p.replace("~1", "/").replace("~0", "~")
                              for p in op["path"].split("/")[1:]]  # fmt: skip
            node: Any = patched
            try:
                for part in parents:
                    node = node[int(part)] if isinstance(node, list) else node[part]
                key: Any = int(last) if isinstance(node, list) else last
                if op["op"] == "test":
                    if node[key] != op["value"]:
                        raise KubeError(422, "Unprocessable Entity", "patch")
                elif op["op"] == "replace":
                    if isinstance(node, dict) and key not in node:
                        raise KeyError(key)  # replace needs the member to exist
                    node[key] = copy.deepcopy(op["value"])
                elif op["op"] == "add" and isinstance(node, dict):
                    node[key] = copy.deepcopy(op["value"])
                elif op["op"] == "remove":
                    del node[key]  # a missing member: KeyError, refused
                else:
                    raise KubeError(422, "Unprocessable Entity", "patch")
            except (KeyError, IndexError, ValueError, TypeError):
                raise KubeError(422, "Unprocessable Entity", "patch") from None
        if kind == "PersonalDataStore" and _beyond_int64(patched.get("status")):
            raise KubeError(422, "Unprocessable Entity", "patch")
        return self._store(patched)

    def delete(self, kind: str, namespace: str | None, name: str,
               propagation: str | None = None,
               version: str | None = None) -> dict[str, Any] | None:  # fmt: skip
        self.calls.append(("delete", kind, name))
        held = self.objects.get((kind, namespace, name))
        if held is not None and version is not None and (
            held["metadata"].get("resourceVersion") != version
        ):
            raise KubeError(409, "Conflict", f"delete {kind}")  # its precondition failed
        return self.objects.pop((kind, namespace, name), None)
