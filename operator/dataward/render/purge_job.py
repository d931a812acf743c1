"""The CronJob that runs `dataward purge` for one store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataward.checks.drift import Shape, digest, projection
from dataward.model.store import Store
from dataward.render.labels import (
    COMPONENT_LABEL,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    PURGE_POD_LABEL,
    STORE_LABEL,
    child_metadata,
    common_labels,
    purge_pod_labels,
)
from dataward.render.names import child_name, names_for
from dataward.render.settings import RenderSettings

CONTAINER_NAME = "purge"
STORE_ENV = "DATAWARD_STORE"
# The purge reads database credentials from these variables (the Secret's `username` and
# `password` keys); values never appear in the manifest, only references to the Secret.
DATABASE_USERNAME_ENV = "DATAWARD_DB_USERNAME"
DATABASE_PASSWORD_ENV = "DATAWARD_DB_PASSWORD"  # noqa: S105 - a variable's name
ARCHIVE_USERNAME_ENV = "DATAWARD_ARCHIVE_USERNAME"
ARCHIVE_PASSWORD_ENV = "DATAWARD_ARCHIVE_PASSWORD"  # noqa: S105 - a variable's name
TERMINATION_LOG = "/dev/termination-log"
# The path the Kubernetes client libraries read in-cluster credentials from.
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"  # noqa: S105 - a path
TOKEN_VOLUME = "api-token"  # noqa: S105 - a volume's name
TMP_VOLUME = "tmp"


def store_reference(store: Store) -> str:
    """`namespace/name`, how `dataward purge --store` names a store."""
    return f"{store.namespace}/{store.name}"


def render_purge_cronjob(
    store: Store, settings: RenderSettings, *, compliant: bool
) -> dict[str, Any]:
    """The purge CronJob; suspended while the store is not compliant or on legal hold."""
    names = names_for(store.name)
    pod_labels = {**common_labels(store, "purge"), **purge_pod_labels(store)}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": child_metadata(store, names.purge_cronjob, "purge"),
        "spec": {
            "schedule": store.purge.schedule,
            "timeZone": settings.time_zone,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": settings.starting_deadline_seconds,
            # A purge never runs while the store breaks its policy (API.md), nor on legal hold.
            "suspend": (not compliant) or store.purge.suspend,
            "successfulJobsHistoryLimit": settings.successful_jobs_history_limit,
            "failedJobsHistoryLimit": settings.failed_jobs_history_limit,
            "jobTemplate": {
                "metadata": {"labels": common_labels(store, "purge")},
                "spec": {
                    # One pod a run: the purge commits batch by batch, so a pod that fails
                    # has deleted rows already; a second pod would apply maxRowsPerRun again
                    # on its own. A failed run is recorded and shown; the next slot retries.
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": settings.active_deadline_seconds,
                    "template": {
                        "metadata": {"labels": pod_labels},
                        "spec": _pod_spec(store, settings, names.purge),
                    },
                },
            },
        },
    }


PREVIEW_COMPONENT = "impact-preview"


def preview_job_name(store: Store, policy_generation: int) -> str:
    """The one impact-preview Job of `store` for the policy's pending generation."""
    return child_name(store.name, f"preview-g{policy_generation}")


def render_preview_job(
    store: Store, settings: RenderSettings, policy_generation: int
) -> dict[str, Any]:
    """A Job running the store's purge as a dry run under the policy's pending revision.

    The purge Job's pod (identity, credentials, network access, limits), with
    `--dry-run --pending-generation N`: the counts are the purge engine's own. It runs once
    (no retries: a failure is reported, and the revision waits), and is owned by the store.
    """
    pod = _pod_spec(store, settings, names_for(store.name).purge)
    pod["containers"][0]["args"] = [
        "purge", "--store", store_reference(store),
        "--connection-pin", store.connection_pin,
        "--dry-run", "--pending-generation", str(policy_generation),
    ]  # fmt: skip
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": child_metadata(
            store, preview_job_name(store, policy_generation), PREVIEW_COMPONENT
        ),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": settings.active_deadline_seconds,
            "template": {
                "metadata": {
                    "labels": {
                        **common_labels(store, PREVIEW_COMPONENT),
                        **purge_pod_labels(store),
                    }
                },
                "spec": pod,
            },
        },
    }


def _pod_spec(store: Store, settings: RenderSettings, service_account: str) -> dict[str, Any]:
    return {
        "serviceAccountName": service_account,
        # The purge reads its store through the API, so it needs a token; rather than the
        # automounted one it gets a projected token that lives only as long as the minimum
        # the API server issues, mounted where client libraries look for it.
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": CONTAINER_NAME,
                "image": settings.image,
                "imagePullPolicy": settings.image_pull_policy,
                "command": ["dataward"],
                "args": ["purge", "--store", store_reference(store),
                         "--connection-pin", store.connection_pin],
                "env": _environment(store),
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": settings.run_as_user,
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "privileged": False,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "resources": {
                    "requests": {
                        "cpu": settings.cpu_request,
                        "memory": settings.memory_request,
                    },
                    "limits": {
                        "cpu": settings.cpu_limit,
                        "memory": settings.memory_limit,
                        "ephemeral-storage": settings.ephemeral_storage_limit,
                    },
                },
                # The purge writes its result record (JSON) here; the operator reads it back.
                "terminationMessagePath": TERMINATION_LOG,
                "terminationMessagePolicy": "File",
                "volumeMounts": [
                    {"name": TOKEN_VOLUME, "mountPath": TOKEN_MOUNT_PATH, "readOnly": True},
                    {"name": TMP_VOLUME, "mountPath": "/tmp"},  # noqa: S108 - an emptyDir
                ],
            }
        ],
        "volumes": [
            {
                "name": TOKEN_VOLUME,
                "projected": {
                    "defaultMode": 0o444,
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "path": "token",
                                "expirationSeconds": settings.token_expiration_seconds,
                            }
                        },
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "path": "namespace",
                                        "fieldRef": {
                                            "apiVersion": "v1",
                                            "fieldPath": "metadata.namespace",
                                        },
                                    }
                                ]
                            }
                        },
                    ],
                },
            },
            {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "16Mi"}},
        ],
    }


def _environment(store: Store) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": STORE_ENV, "value": store_reference(store)}]
    env += _credentials(store.database.credentials_secret, DATABASE_USERNAME_ENV, "username")
    env += _credentials(store.database.credentials_secret, DATABASE_PASSWORD_ENV, "password")
    if store.archive is not None:
        secret = store.archive.credentials_secret
        env += _credentials(secret, ARCHIVE_USERNAME_ENV, "username")
        env += _credentials(secret, ARCHIVE_PASSWORD_ENV, "password")
    return env


def _credentials(secret: str, variable: str, key: str) -> list[dict[str, Any]]:
    return [{"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}]


_LABELS = dict.fromkeys((MANAGED_BY_LABEL, NAME_LABEL, STORE_LABEL, COMPONENT_LABEL))
_SECURITY = {"runAsNonRoot": None, "runAsUser": None, "seccompProfile": {"type": None}}
# Every key `render_purge_cronjob` sets in `spec.jobTemplate`, lists item by item (the last
# item's shape for the rest): what drift compares there. tests/render/test_purge_job.py holds
# it to the render both ways (nothing rendered outside it, nothing in it the render omits).
JOB_TEMPLATE_SHAPE: Shape = {
    "metadata": {"labels": _LABELS},
    "spec": {
        "backoffLimit": None,
        "activeDeadlineSeconds": None,
        "template": {
            "metadata": {"labels": {**_LABELS, PURGE_POD_LABEL: None}},
            "spec": {
                "serviceAccountName": None,
                "automountServiceAccountToken": None,
                "restartPolicy": None,
                "enableServiceLinks": None,
                "securityContext": {**_SECURITY, "runAsGroup": None},
                "containers": [{
                    "name": None, "image": None, "imagePullPolicy": None,
                    "command": None, "args": None,
                    "env": [{"name": None, "value": None},
                            {"name": None,
                             "valueFrom": {"secretKeyRef": {"name": None, "key": None}}}],
                    "securityContext": {**_SECURITY, "allowPrivilegeEscalation": None,
                                        "readOnlyRootFilesystem": None, "privileged": None,
                                        "capabilities": {"drop": None}},
                    "resources": {"requests": {"cpu": None, "memory": None},
                                  "limits": {"cpu": None, "memory": None,
                                             "ephemeral-storage": None}},
                    "terminationMessagePath": None,
                    "terminationMessagePolicy": None,
                    "volumeMounts": [{"name": None, "mountPath": None, "readOnly": None},
                                     {"name": None, "mountPath": None}],
                }],
                "volumes": [
                    {"name": None, "projected": {"defaultMode": None, "sources": [
                        {"serviceAccountToken": {"path": None, "expirationSeconds": None}},
                        {"configMap": {"name": None, "items": [{"key": None, "path": None}]}},
                        {"downwardAPI": {"items": [{"path": None, "fieldRef": {
                            "apiVersion": None, "fieldPath": None}}]}},
                    ]}},
                    {"name": None, "emptyDir": {"sizeLimit": None}},
                ],
            },
        },
    },
}  # fmt: skip
# `projected(·, JOB_TEMPLATE_SHAPE)`, made once (`projection`).
_JOB_PROJECTION = projection(JOB_TEMPLATE_SHAPE)


def comparable_cronjob(cronjob: Mapping[str, Any], rendered: bool = False) -> dict[str, Any]:
    """The CronJob as drift compares it and the cache keeps it: `spec.jobTemplate` (the pod
    template, three quarters of the object) replaced by the digest of what the render sets
    in it (`JOB_TEMPLATE_SHAPE`), everything else as it is. Applied to the rendered CronJob
    and to the observed one alike, so `matches` of the two still tells drift in the template
    (the digests differ) and reads the schedule, suspension and time zone as before.
    Idempotent: a CronJob already in this form is returned as it is. `rendered`: `cronjob`
    is `render_purge_cronjob`'s, which carries exactly the keys the shape names (its tests
    hold it to that), so it is digested without being projected first: the same digest,
    without the walk that was 6% of a restart's first pass (issue 11).
    """
    spec = cronjob.get("spec")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("jobTemplate"), Mapping):
        return dict(cronjob)
    job = spec["jobTemplate"]
    template = digest(job if rendered else _JOB_PROJECTION(job))
    return {**cronjob, "spec": {**spec, "jobTemplate": template}}
