"""The children of a DataSubjectRequest: one Job per store in scope, and what it may read.

Design (the identifier is personal data; it is never copied):

- The Job runs in the store's namespace under the store's own purge ServiceAccount
  (`dataward-<store>-purge`). That account already holds `get` on exactly the store's
  credentials Secrets and on the store, and the store's NetworkPolicy already lets its pods
  (label `dataward.io/purge`) reach the database. A second identity with the same rights
  would make every store's AccessRestricted report a foreign reader of its credentials.
- The identifier Secret stays where the requester put it, in the request's namespace. When
  the store is in the same namespace the kubelet mounts it as a volume; otherwise an init
  container reads it through the API (a Role in the request's namespace with `get` on
  exactly that Secret, bound to the purge ServiceAccount for the life of the request) into
  a memory-backed emptyDir. Either way it exists only in the Secret and in the pod's memory.
- access: the operator makes a key pair; the private key goes into `dataward-<req>-dsr-key`
  in the request's namespace, readable by `spec.readers` only (a Role with resourceNames,
  naming only the Secrets seen to be the request's own: `reader_secrets`).
  The public key reaches the Job as a pod annotation, projected into a file: it is public.
  The Job seals the rows to it and writes them into an export Secret per store, in the
  request's namespace, which its account may patch by name and nothing else. The public
  key's fingerprint is recorded in the request's status.keyFingerprint before the Secret is
  created, and a key Secret is used only when its public key has it (controller/subjects.py
  `_public_key`): its owner reference and annotation anyone who may write Secrets can write.

Children in the request's namespace carry a controller owner reference to the request, and
only that makes one the request's (controller/subjects.py `ours`); Jobs in other namespaces
cannot (owner references do not cross namespaces), so the request's finalizer deletes them:
those its labels find that run what the operator renders for the request, or have the name
status records for its run or the name reserved for it (`run_name`).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Sequence
from typing import Any

from dataward.model.store import Store
from dataward.render.labels import (
    API_VERSION,
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    purge_pod_labels,
)
from dataward.render.names import child_name, label_value, stable_hash
from dataward.render.purge_job import CONTAINER_NAME, _pod_spec, store_reference
from dataward.render.rbac import RBAC_API_VERSION, RBAC_GROUP
from dataward.render.settings import RenderSettings
from dataward.subjects.request import REQUEST_KIND, StoreRef, SubjectRequest

REQUEST_LABEL = "dataward.io/subject-request"
REQUEST_UID_LABEL = "dataward.io/subject-request-uid"
STORE_REF_ANNOTATION = "dataward.io/store"
REQUEST_REF_ANNOTATION = "dataward.io/subject-request-ref"  # NAMESPACE/NAME, on Jobs and pods
# The recipient's public key (PEM), on a request's Jobs (their pods mount it) and its key
# Secret (read from its metadata: never the private key).
PUBLIC_KEY_ANNOTATION = "dataward.io/recipient-public-key"
# On an export Secret the operator makes: a random token whose hash status.exports records
# before the create (checks/subjects.py `export_verdict`). Not a secret of the person's.
EXPORT_TOKEN_ANNOTATION = "dataward.io/export-token"  # noqa: S105 (its name, not a token)
COMPONENT = "subject-request"
PRIVATE_KEY = "private.key"
PUBLIC_KEY = "public.key"
EXPORT_KEY = "export.sealed"
IDENTIFIER_DIR = "/var/run/dataward/identifier"
CREDENTIALS_DIR = "/var/run/dataward/credentials"
ARCHIVE_CREDENTIALS_DIR = "/var/run/dataward/archive-credentials"
RECIPIENT_DIR = "/var/run/dataward/recipient"
IDENTIFIER_VOLUME = "identifier"
CREDENTIALS_VOLUME = "credentials"
ARCHIVE_CREDENTIALS_VOLUME = "archive-credentials"
RECIPIENT_VOLUME = "recipient"
FETCH_CONTAINER = "identifier"
DRY_RUN_ARG = "--dry-run"  # the request container's argument for spec.dryRun


def store_key(store: Store | StoreRef) -> str:
    """A short, stable token for a store within a request's names."""
    return stable_hash(f"{store.namespace}/{store.name}")


def key_secret_name(request: SubjectRequest) -> str:
    """The Secret holding the request's private key (access requests)."""
    return child_name(request.name, "dsr-key")


def readers_name(request_name: str) -> str:
    """The Role and RoleBinding that let spec.readers of the request called `request_name`
    get the key and the exports."""
    return child_name(request_name, "dsr-readers")


def export_secret_name(request: SubjectRequest, store: Store | StoreRef) -> str:
    """The Secret one store's Job writes its sealed export into (`store`: the store, or its
    namespace and name alone, when it no longer parses or is gone)."""
    return child_name(request.name, f"dsr-export-{store_key(store)}")


def job_access_name(request: SubjectRequest, store: Store) -> str:
    """The Role and RoleBinding in the request's namespace for one store's Job."""
    return child_name(request.name, f"dsr-job-{store_key(store)}")


def job_name(request: SubjectRequest, store: Store) -> str:
    """The Job for one store; a new acknowledge token gives a new Job (a new run)."""
    return run_name(request.uid, request.acknowledge_token, store.name)


def run_name(request_uid: str, acknowledge_token: str | None, store_name: str) -> str:
    """The name the operator gives the run of the request of this uid, with this acknowledge
    token, in the store of this name: reserved for it whatever image or store spec it ran."""
    run = f"{request_uid}/{acknowledge_token or ''}"
    return child_name(store_name, f"dsr-{stable_hash(run)}")


def purge_account(store: Store) -> str:
    """The store's purge ServiceAccount, which the request's Jobs run under."""
    return child_name(store.name, "purge")


def request_labels(request: SubjectRequest) -> dict[str, str]:
    """The labels of every child of a request: they find a request's children, and prove
    nothing about who made them (anyone may write them)."""
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        NAME_LABEL: "dataward",
        COMPONENT_LABEL: COMPONENT,
        REQUEST_LABEL: label_value(f"{request.namespace}.{request.name}"),
        REQUEST_UID_LABEL: label_value(request.uid),
    }


def request_selector(request: SubjectRequest) -> str:
    """A label selector for every child of the request."""
    return uid_selector(request.uid)


def uid_labels(request_uid: str) -> dict[str, str]:
    """The labels `uid_selector` selects on."""
    return {MANAGED_BY_LABEL: MANAGED_BY, REQUEST_UID_LABEL: label_value(request_uid)}


def uid_selector(request_uid: str) -> str:
    """A label selector for every child of the request of this uid (a request whose spec
    no longer parses still has its uid)."""
    return ",".join(f"{k}={v}" for k, v in uid_labels(request_uid).items())


def owner_reference(request: SubjectRequest) -> dict[str, Any]:
    """An owner reference to the request (valid only in the request's namespace)."""
    return {
        "apiVersion": API_VERSION,
        "kind": REQUEST_KIND,
        "name": request.name,
        "uid": request.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(request: SubjectRequest, name: str, namespace: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": request_labels(request),
    }
    if namespace == request.namespace:
        metadata["ownerReferences"] = [owner_reference(request)]
    return metadata


def render_key_secret(request: SubjectRequest, private_key: str, public_key: str) -> dict[str, Any]:
    """The key Secret (created once): private and public key, base64 text; the public key
    also as an annotation (PUBLIC_KEY_ANNOTATION, as on the request's Jobs), so that the
    operator reads it with the Secret's metadata, never the private key."""
    metadata = _metadata(request, key_secret_name(request), request.namespace)
    metadata["annotations"] = {PUBLIC_KEY_ANNOTATION: public_key}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": {
            PRIVATE_KEY: base64.b64encode(private_key.encode("ascii")).decode("ascii"),
            PUBLIC_KEY: base64.b64encode(public_key.encode("ascii")).decode("ascii"),
        },
    }


def render_export_secret(
    request: SubjectRequest, store: Store, token: str | None = None
) -> dict[str, Any]:
    """An empty export Secret the store's Job fills (`export.sealed`); `token`: the one
    whose hash status.exports records for it (EXPORT_TOKEN_ANNOTATION)."""
    metadata = _metadata(request, export_secret_name(request, store), request.namespace)
    metadata["annotations"] = {STORE_REF_ANNOTATION: store_reference(store)}
    if token is not None:
        metadata["annotations"][EXPORT_TOKEN_ANNOTATION] = token
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque"}


def render_job_role(request: SubjectRequest, store: Store) -> dict[str, Any] | None:
    """What one store's Job may do in the request's namespace; None when it needs nothing.

    `get` on the identifier Secret only when it cannot be mounted (another namespace);
    `get` and `patch` on its own export Secret only for access (the CLI patches
    `data["export.sealed"]`).
    """
    rules: list[dict[str, Any]] = []
    if store.namespace != request.namespace:
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": [request.identifier_secret],
                "verbs": ["get"],
            }
        )
    if request.type == "access":
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": [export_secret_name(request, store)],
                "verbs": ["get", "patch"],
            }
        )
    if not rules:
        return None
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "Role",
        "metadata": _metadata(request, job_access_name(request, store), request.namespace),
        "rules": rules,
    }


def render_job_binding(request: SubjectRequest, store: Store) -> dict[str, Any]:
    """Bind the Job's Role to the store's purge ServiceAccount."""
    name = job_access_name(request, store)
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "RoleBinding",
        "metadata": _metadata(request, name, request.namespace),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name},
        "subjects": [
            {"kind": "ServiceAccount", "name": purge_account(store), "namespace": store.namespace}
        ],
    }


def reader_secrets(request: SubjectRequest, stores: Sequence[Store]) -> list[str]:
    """The names of the Secrets spec.readers may get when they are the request's own: the
    key Secret and each store's export Secret. A name proves nothing: a cut and hashed one
    (`child_name`) can be another request's plain one."""
    return [key_secret_name(request), *(export_secret_name(request, s) for s in stores)]


def render_readers_role(request: SubjectRequest, secrets: Sequence[str]) -> dict[str, Any] | None:
    """`get` on exactly `secrets` (those of `reader_secrets` seen to be the request's own),
    nothing else; None when there is none. A Role with no rules is never made: Kubernetes
    admits a binding to it from anyone who may create RoleBindings (there is nothing to
    hold), and the Role is filled later (in RBAC no resourceNames would be every Secret)."""
    if not secrets:
        return None
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "Role",
        "metadata": _metadata(request, readers_name(request.name), request.namespace),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": list(secrets),
                "verbs": ["get"],
            }
        ],
    }


def render_readers_binding(request: SubjectRequest) -> dict[str, Any] | None:
    """Bind the readers' Role to spec.readers; None when there are none."""
    if not request.readers:
        return None
    name = readers_name(request.name)
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "RoleBinding",
        "metadata": _metadata(request, name, request.namespace),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name},
        "subjects": [r.to_rbac(request.namespace) for r in request.readers],
    }


def job_arguments(request: SubjectRequest, store: Store) -> list[str]:
    """`dataward subject-request run ...` for one store (the engine's CLI contract)."""
    args = [
        "subject-request", "run",
        "--type", request.type,
        "--store", store_reference(store),
        "--connection-pin", store.connection_pin,
        "--identifier-dir", IDENTIFIER_DIR,
        "--credentials-dir", CREDENTIALS_DIR,
    ]  # fmt: skip
    if store.archive is not None:  # access reads the archive too; erasure copies into it
        args += ["--archive-credentials-dir", ARCHIVE_CREDENTIALS_DIR]
    if request.dry_run:
        args.append(DRY_RUN_ARG)
    if request.max_rows is not None:
        args += ["--max-rows", str(request.max_rows)]
    if request.acknowledge_token:
        args += ["--acknowledge", request.acknowledge_token]
    if request.type == "access":
        args += [
            "--recipient-public-key", f"{RECIPIENT_DIR}/{PUBLIC_KEY}",
            "--export-secret", f"{request.namespace}/{export_secret_name(request, store)}",
        ]  # fmt: skip
    return args


def _secret_volume(name: str, secret: str) -> dict[str, Any]:
    return {"name": name, "secret": {"secretName": secret, "defaultMode": 0o400}}


def render_job(
    request: SubjectRequest,
    store: Store,
    settings: RenderSettings,
    public_key: str | None = None,
) -> dict[str, Any]:
    """The Job answering `request` for `store`: the purge pod's spec, other arguments.

    Restricted pod security as the purge (non-root, read-only root, no capabilities, a
    projected short-lived token instead of the automounted one); backoffLimit 0: a failed
    run is reported, not retried behind the requester's back.
    """
    spec = _pod_spec(store, settings, purge_account(store))
    (container,) = spec["containers"]
    container["name"] = CONTAINER_NAME
    container["args"] = job_arguments(request, store)
    container["env"] = []  # credentials come as files (--credentials-dir), not variables
    mounts = container["volumeMounts"]
    volumes = spec["volumes"]
    mounts.append({"name": CREDENTIALS_VOLUME, "mountPath": CREDENTIALS_DIR, "readOnly": True})
    volumes.append(_secret_volume(CREDENTIALS_VOLUME, store.database.credentials_secret))
    if store.archive is not None:
        mounts.append(
            {
                "name": ARCHIVE_CREDENTIALS_VOLUME,
                "mountPath": ARCHIVE_CREDENTIALS_DIR,
                "readOnly": True,
            }
        )
        volumes.append(_secret_volume(ARCHIVE_CREDENTIALS_VOLUME, store.archive.credentials_secret))
    mounts.append({"name": IDENTIFIER_VOLUME, "mountPath": IDENTIFIER_DIR, "readOnly": True})
    if store.namespace == request.namespace:
        volumes.append(_secret_volume(IDENTIFIER_VOLUME, request.identifier_secret))
    else:
        # Read through the API into memory: a Secret volume cannot cross namespaces.
        volumes.append(
            {"name": IDENTIFIER_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
        )
        fetch = copy.deepcopy(container)
        fetch["name"] = FETCH_CONTAINER
        fetch["command"] = ["python", "-m", "dataward.subjects.identifier"]
        fetch["args"] = [
            "--secret", f"{request.namespace}/{request.identifier_secret}",
            "--dir", IDENTIFIER_DIR,
        ]  # fmt: skip
        fetch["volumeMounts"] = [
            *(m for m in mounts if m["name"] in ("api-token", "tmp")),
            {"name": IDENTIFIER_VOLUME, "mountPath": IDENTIFIER_DIR},
        ]
        spec["initContainers"] = [fetch]
    annotations = {REQUEST_REF_ANNOTATION: f"{request.namespace}/{request.name}"}
    if request.type == "access":
        if public_key is None:
            raise ValueError("an access request's Job needs the recipient's public key")
        annotations[PUBLIC_KEY_ANNOTATION] = public_key
        mounts.append({"name": RECIPIENT_VOLUME, "mountPath": RECIPIENT_DIR, "readOnly": True})
        volumes.append(
            {
                "name": RECIPIENT_VOLUME,
                "downwardAPI": {
                    "items": [
                        {
                            "path": PUBLIC_KEY,
                            "fieldRef": {
                                "fieldPath": f"metadata.annotations['{PUBLIC_KEY_ANNOTATION}']"
                            },
                        }
                    ]
                },
            }
        )
    labels = request_labels(request)
    metadata = _metadata(request, job_name(request, store), store.namespace)
    metadata["annotations"] = {
        STORE_REF_ANNOTATION: store_reference(store),
        REQUEST_REF_ANNOTATION: f"{request.namespace}/{request.name}",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": settings.active_deadline_seconds,
            "template": {
                "metadata": {
                    # The purge label: the store's NetworkPolicy admits its purge pods.
                    "labels": {**labels, **purge_pod_labels(store)},
                    "annotations": annotations,
                },
                "spec": spec,
            },
        },
    }

