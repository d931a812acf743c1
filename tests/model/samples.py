"""Valid API objects used as the base of model tests; each test changes one thing."""

from __future__ import annotations

import copy
from typing import Any

POLICY: dict[str, Any] = {
    "apiVersion": "dataward.io/v1alpha1",
    "kind": "PrivacyPolicy",
    "metadata": {"name": "clunix", "generation": 3},
    "spec": {
        "effectiveDate": "2021-04-26",
        "defaults": {"keyRotation": "90d", "accessLogRetention": "6mo"},
        "categories": [
            {"name": "newsletter", "purposes": ["marketing"],
             "retention": {"period": "0d", "trigger": "unsubscribed"}},
            {"name": "technical-support-inquiry", "purposes": ["service"],
             "retention": {"period": "1y", "trigger": "inquired"}},
            {"name": "contract-records", "purposes": ["contract"],
             "retention": {"period": "0d", "trigger": "contract-ended"},
             "statutory": {"period": "5y",
                           "statute": "Act on Consumer Protection in Electronic Commerce"}},
        ],
    },
}

STORE: dict[str, Any] = {
    "apiVersion": "dataward.io/v1alpha1",
    "kind": "PersonalDataStore",
    "metadata": {"name": "support-inquiries", "namespace": "crm", "uid": "u-1", "generation": 4,
                 "labels": {"team": "crm"}},
    "spec": {
        "policy": "clunix",
        "category": "technical-support-inquiry",
        "retention": "180d",
        "workload": {"podSelector": {"matchLabels": {"app": "crm-postgres"}},
                     "ports": [{"port": 5432, "protocol": "TCP"}]},
        "database": {"engine": "postgresql", "host": "crm-postgres.crm.svc", "port": 5432,
                     "name": "crm", "credentialsSecret": "crm-postgres-purger", "tls": "require"},
        "records": [{"table": "support_inquiries", "timestampColumn": "inquired_at",
                     "keyColumns": ["id"]}],
        "encryption": {"keyRotation": "30d"},
        "access": {"readers": [{"kind": "ServiceAccount", "name": "crm-api"},
                               {"kind": "Group", "name": "privacy-officers"}]},
        "network": {"allowFrom": [{"podSelector": {"matchLabels": {"app": "crm-api"}}}]},
        "purge": {"schedule": "17 3 * * *", "batchSize": 1000, "maxRowsPerRun": 100000,
                  "dryRun": False, "suspend": False},
        "deletionPolicy": "Retain",
    },
}

ARCHIVE: dict[str, Any] = {
    "database": {"engine": "postgresql", "host": "archive-postgres.compliance.svc", "port": 5432,
                 "name": "archive", "credentialsSecret": "archive-writer"}
}


def policy(**spec_changes: Any) -> dict[str, Any]:
    """A copy of POLICY with top-level spec fields replaced."""
    obj = copy.deepcopy(POLICY)
    obj["spec"].update(spec_changes)
    return obj


def with_spec(base: dict[str, Any], **spec_changes: Any) -> dict[str, Any]:
    """A copy of `base` with top-level spec fields replaced (None removes a field)."""
    obj = copy.deepcopy(base)
    for key, value in spec_changes.items():
        if value is None:
            obj["spec"].pop(key, None)
        else:
            obj["spec"][key] = value
    return obj


def store(**spec_changes: Any) -> dict[str, Any]:
    """A copy of STORE with top-level spec fields replaced (None removes a field)."""
    return with_spec(STORE, **spec_changes)
