"""The DataSubjectRequest custom resource, parsed: what was asked, of which stores, by whom.

The subject's identifier is personal data, so the resource never holds it: `identifier_secret`
names a Secret in the request's namespace whose keys are identifier kinds (`email`,
`customer_id`, ...) and whose values are the identifier. Nothing here reads that Secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from dataward.model.errors import ModelError
from dataward.model.fields import boolean, mapping, optional_text, sequence, text
from dataward.model.store import Store, StoreScope, Subject, _parse_subject

RequestType = Literal["access", "erasure"]
REQUEST_KIND = "DataSubjectRequest"
REQUEST_PLURAL = "datasubjectrequests"
REQUEST_TYPES: tuple[RequestType, ...] = ("access", "erasure")


@dataclass(frozen=True)
class StoreRef:
    """A store named in `spec.scope.stores`."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class SubjectRequest:
    """One access or erasure request."""

    namespace: str
    name: str
    uid: str
    generation: int
    type: RequestType
    policy: str
    identifier_secret: str
    stores: tuple[StoreRef, ...]
    categories: tuple[str, ...]
    requested_by: str
    received_at: datetime
    dry_run: bool
    max_rows: int | None
    readers: tuple[Subject, ...]
    acknowledge_token: str | None

    def in_scope(self, store: Store | StoreScope) -> bool:
        """Whether `store` answers this request: of its policy, and named or of a named category.

        No `scope`: every store of the policy. `stores` and `categories` together: either.
        A store whose spec does not parse (a StoreScope) may not know its policy or category
        (None): such a field does not put it out of scope, one that reads may.
        """
        if store.policy is not None and store.policy != self.policy:
            return False
        if not self.stores and not self.categories:
            return True
        if StoreRef(store.namespace, store.name) in self.stores:
            return True
        return bool(self.categories) and (
            store.category is None or store.category in self.categories
        )


def _time(value: Any, path: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ModelError(path, "must be an RFC 3339 time such as 2026-05-01T09:30:00Z")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ModelError(path, "must be an RFC 3339 time such as 2026-05-01T09:30:00Z") from None
    if parsed.tzinfo is None:
        raise ModelError(path, "must say its time zone (end with Z or +HH:MM)")
    return parsed


def parse_request(obj: Mapping[str, Any]) -> SubjectRequest:
    """Turn a DataSubjectRequest dict from the API into a SubjectRequest (ModelError if wrong)."""
    metadata = mapping(obj, "metadata", "")
    spec = mapping(obj, "spec", "")
    namespace = text(metadata, "namespace", "metadata", default="default")
    kind = text(spec, "type", "spec")
    if kind not in REQUEST_TYPES:
        raise ModelError("spec.type", "must be access or erasure")
    subject = mapping(spec, "subject", "spec")
    ref = mapping(subject, "identifierSecretRef", "spec.subject")
    scope = mapping(spec, "scope", "spec", required=False)
    for field in ("stores", "categories"):
        # An empty list would read as no scope (every store of the policy), which is not
        # what it says, and past the admission check of named stores.
        if scope.get(field) == []:
            raise ModelError(f"spec.scope.{field}", "must name at least one, or be left out")
    stores = []
    for i, raw in enumerate(sequence(scope, "stores", "spec.scope")):
        path = f"spec.scope.stores[{i}]"
        if not isinstance(raw, Mapping):
            raise ModelError(path, "must be an object with name (and namespace)")
        stores.append(
            StoreRef(text(raw, "namespace", path, default=namespace), text(raw, "name", path))
        )
    categories = []
    for i, raw in enumerate(sequence(scope, "categories", "spec.scope")):
        if not isinstance(raw, str) or not raw:
            raise ModelError(f"spec.scope.categories[{i}]", "must be a category name")
        categories.append(raw)
    max_rows = spec.get("maxRows")
    if max_rows is not None and (
        isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1
    ):
        raise ModelError("spec.maxRows", "must be a whole number of at least 1")
    return SubjectRequest(
        namespace=namespace,
        name=text(metadata, "name", "metadata"),
        uid=str(metadata.get("uid") or ""),
        generation=int(metadata.get("generation") or 0),
        type=kind,
        policy=text(spec, "policy", "spec"),
        identifier_secret=text(ref, "name", "spec.subject.identifierSecretRef"),
        stores=tuple(stores),
        categories=tuple(categories),
        requested_by=text(spec, "requestedBy", "spec"),
        received_at=_time(spec.get("receivedAt"), "spec.receivedAt"),
        dry_run=boolean(spec, "dryRun", "spec", default=False),
        max_rows=max_rows,
        readers=tuple(
            _parse_subject(raw, f"spec.readers[{i}]")
            for i, raw in enumerate(sequence(spec, "readers", "spec"))
        ),
        acknowledge_token=optional_text(spec, "acknowledgeToken", "spec") or None,
    )
