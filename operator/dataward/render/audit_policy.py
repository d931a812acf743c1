"""The API audit policy and kube-apiserver flags that record who read a store's Secrets.

`accessLogRetention` promises that access records are kept at least that long. The records of
reads of a store's key ring and credentials Secrets are the API server's audit log; Dataward
cannot configure the API server, so it renders what to give it:

- an `audit.k8s.io/v1` Policy with, per namespace, a rule that records every verb of
  `SECRET_READ_VERBS` (get, list, watch, patch, delete, deletecollection: each can answer
  with the Secret's data) of exactly those Secrets at `Metadata` level (who, when, which
  Secret, the verdict; never the Secret's data, so never `Request` or `RequestResponse`),
  and one rule for `list`, `watch` and `deletecollection` of Secrets without a name in those
  namespaces and across all namespaces, because such a collection request returns the
  store's Secrets too;
- flags whose `--audit-log-maxage` covers the longest `accessLogRetention` of the policies:
  the duration's greatest possible number of days (a month counts as 31, `6mo` as 184, `1y`
  as 366), with `--audit-log-maxbackup=0` so no file is removed by count before its age.

The log rotates files and removes a rotated file `maxage` days after it was rotated, so every
record in it is older still: each record is kept at least `maxage` days.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dataward.model.durations import Duration
from dataward.model.policy import Policy
from dataward.model.store import Store
from dataward.render.rbac import SECRET_COLLECTION_READ_VERBS, SECRET_READ_VERBS, store_secrets

DEFAULT_POLICY_FILE = "/etc/kubernetes/audit/dataward-policy.yaml"
DEFAULT_LOG_PATH = "/var/log/kubernetes/audit/audit.log"
DEFAULT_MAX_SIZE_MB = 100


def retention_days(duration: Duration) -> int:
    """The fewest whole days that cover `duration` from any start (at least 1)."""
    return max(1, duration.day_bounds()[1])


@dataclass(frozen=True)
class AuditRetention:
    """The retention the flags must keep, and the policy that asks for it."""

    days: int
    policy: str
    duration: Duration


def audit_retention(policies: Iterable[Policy]) -> AuditRetention | None:
    """The longest `accessLogRetention` among `policies`, in days; None without policies."""
    longest: AuditRetention | None = None
    for policy in sorted(policies, key=lambda p: p.name):
        days = retention_days(policy.access_log_retention)
        if longest is None or days > longest.days:
            longest = AuditRetention(days, policy.name, policy.access_log_retention)
    return longest


def render_audit_policy(
    stores: Sequence[Store], extra_secrets: Iterable[tuple[str, str]] = ()
) -> dict[str, Any]:
    """The audit Policy recording every read of the stores' key rings and credentials.

    `extra_secrets` are more (namespace, name) Secrets to watch the same way, such as the
    evidence log's signing key and login.
    """
    by_namespace: dict[str, set[str]] = {}
    for store in stores:
        by_namespace.setdefault(store.namespace, set()).update(store_secrets(store))
    for namespace, name in extra_secrets:
        by_namespace.setdefault(namespace, set()).add(name)
    rules: list[dict[str, Any]] = [
        {
            "level": "Metadata",
            "verbs": list(SECRET_READ_VERBS),
            "namespaces": [namespace],
            "resources": [{"group": "", "resources": ["secrets"], "resourceNames": sorted(names)}],
        }
        for namespace, names in sorted(by_namespace.items())
    ]
    if by_namespace:
        rules.append(
            {
                "level": "Metadata",
                "verbs": list(SECRET_COLLECTION_READ_VERBS),
                # "" is a list across all namespaces: it returns these Secrets too.
                "namespaces": ["", *sorted(by_namespace)],
                "resources": [{"group": "", "resources": ["secrets"]}],
            }
        )
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        # RequestReceived adds nothing ResponseComplete does not say, except the outcome.
        "omitStages": ["RequestReceived"],
        "rules": rules,
    }


def audit_flags(
    retention: AuditRetention,
    *,
    policy_file: str = DEFAULT_POLICY_FILE,
    log_path: str = DEFAULT_LOG_PATH,
    max_size_mb: int = DEFAULT_MAX_SIZE_MB,
) -> list[str]:
    """The kube-apiserver flags that load the policy and keep its records long enough."""
    return [
        f"--audit-policy-file={policy_file}",
        f"--audit-log-path={log_path}",
        "--audit-log-format=json",
        f"--audit-log-maxage={retention.days}",
        "--audit-log-maxbackup=0",
        f"--audit-log-maxsize={max_size_mb}",
    ]
