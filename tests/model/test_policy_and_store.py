"""Parsing PrivacyPolicy and PersonalDataStore dicts into typed values."""

from __future__ import annotations

import dataclasses

import pytest

from dataward.model.durations import Duration
from dataward.model.errors import ModelError
from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from tests.model import samples


def test_policy_parses_every_field() -> None:
    policy = parse_policy(samples.POLICY)
    assert policy.name == "clunix"
    assert policy.key_rotation == Duration(90, "d")
    assert policy.access_log_retention == Duration(6, "mo")
    assert [c.name for c in policy.categories] == [
        "newsletter", "technical-support-inquiry", "contract-records"]
    contract = policy.category("contract-records")
    assert contract is not None and contract.statutory is not None
    assert contract.statutory.period == Duration(5, "y")
    assert contract.retention.trigger == "contract-ended"
    assert policy.category("absent") is None


def test_policy_defaults_when_absent() -> None:
    obj = samples.policy()
    del obj["spec"]["defaults"]
    policy = parse_policy(obj)
    assert policy.key_rotation == Duration(90, "d")


def test_policy_rejects_duplicate_categories() -> None:
    obj = samples.policy()
    obj["spec"]["categories"].append(obj["spec"]["categories"][0])
    with pytest.raises(ModelError, match="more than once"):
        parse_policy(obj)


def test_policy_rejects_impossible_date() -> None:
    with pytest.raises(ModelError, match="effectiveDate"):
        parse_policy(samples.policy(effectiveDate="2021-02-30"))


def test_policy_names_the_bad_duration_field() -> None:
    obj = samples.policy()
    obj["spec"]["categories"][1]["retention"]["period"] = "1 year"
    with pytest.raises(ModelError) as raised:
        parse_policy(obj)
    assert raised.value.path == "spec.categories[1].retention.period"


def test_store_parses_every_field() -> None:
    store = parse_store(samples.STORE)
    assert (store.namespace, store.name, store.uid, store.generation) == (
        "crm", "support-inquiries", "u-1", 4)
    assert store.retention == Duration(180, "d")
    assert store.workload.pod_selector.to_dict() == {"matchLabels": {"app": "crm-postgres"}}
    assert store.workload.ports[0].port == 5432
    assert store.database.engine == "postgresql" and store.database.tls == "require"
    assert store.records[0].key_columns == ("id",)
    assert store.key_rotation == Duration(30, "d")
    assert [r.to_rbac("crm") for r in store.readers] == [
        {"kind": "ServiceAccount", "name": "crm-api", "namespace": "crm"},
        {"kind": "Group", "name": "privacy-officers", "apiGroup": "rbac.authorization.k8s.io"},
    ]
    assert store.allow_from[0].to_dict() == {"podSelector": {"matchLabels": {"app": "crm-api"}}}
    assert store.purge.batch_size == 1000 and not store.purge.dry_run
    assert store.deletion_policy == "Retain"
    assert store.archive is None


def test_store_is_frozen() -> None:
    store = parse_store(samples.STORE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        store.name = "other"  # type: ignore[misc]


def test_store_defaults() -> None:
    obj = samples.store(purge=None, deletionPolicy=None, retention=None, encryption=None)
    del obj["spec"]["database"]["port"]
    del obj["spec"]["database"]["tls"]
    store = parse_store(obj)
    assert store.purge.schedule == "17 3 * * *"
    assert store.purge.max_rows_per_run == 100000
    assert store.deletion_policy == "Retain"
    assert store.retention is None and store.key_rotation is None
    assert store.database.port == 5432 and store.database.tls == "require"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"database": {"engine": "oracle", "host": "h", "name": "n", "credentialsSecret": "s"}},
         "spec.database.engine"),
        ({"records": [{"table": "t", "timestampColumn": "c", "keyColumns": []}]},
         "spec.records[0].keyColumns"),
        ({"deletionPolicy": "Orphan"}, "spec.deletionPolicy"),
        ({"retention": "1.5d"}, "spec.retention"),
        ({"purge": {"batchSize": "many"}}, "spec.purge.batchSize"),
        ({"purge": {"dryRun": "yes"}}, "spec.purge.dryRun"),
        ({"access": {"readers": [{"kind": "Robot", "name": "r"}]}}, "spec.access.readers[0].kind"),
        ({"records": [{"table": "t", "timestampColumn": "c", "keyColumns": ["id"],
                       "timeZone": "Asia/Soeul"}]}, "spec.records[0].timeZone"),
        ({"records": [{"table": "t", "timestampColumn": "c", "keyColumns": ["id"],
                       "timeZone": "../../etc/passwd"}]}, "spec.records[0].timeZone"),
        ({"records": [{"table": "t", "timestampColumn": "c", "keyColumns": ["id"],
                       "timeZone": "localtime"}]}, "spec.records[0].timeZone"),
        # Schedules the CRD's pattern admits: one that never runs (February 30; the 31st of
        # the 30-day months) left PurgeScheduled and Ready True while no purge ever ran, and
        # a reversed range (5-1) is one Kubernetes refuses in the CronJob.
        ({"purge": {"schedule": "0 3 30 2 *"}}, "spec.purge.schedule"),
        ({"purge": {"schedule": "0 3 31 4,6,9,11 *"}}, "spec.purge.schedule"),
        ({"purge": {"schedule": "5-1 3 * * *"}}, "spec.purge.schedule"),
    ],
)
def test_store_errors_name_the_field(change: dict[str, object], path: str) -> None:
    with pytest.raises(ModelError) as raised:
        parse_store(samples.store(**change))
    assert raised.value.path == path


def test_store_time_zone_is_optional_and_checked_against_the_zone_database() -> None:
    store = parse_store(samples.STORE)
    assert store.records[0].time_zone is None and store.records[0].zone is None
    records = [{"table": "t", "timestampColumn": "c", "keyColumns": ["id"],
                "timeZone": "Asia/Seoul"}]
    zoned = parse_store(samples.store(records=records)).records[0]
    assert zoned.time_zone == "Asia/Seoul"
    assert zoned.zone is not None and zoned.zone.key == "Asia/Seoul"


def test_store_with_archive() -> None:
    store = parse_store(samples.store(archive=samples.ARCHIVE))
    assert store.archive is not None
    assert store.archive.address == ("archive-postgres.compliance.svc", 5432, "archive")


def test_key_buckets_are_month_year_or_none() -> None:
    obj = samples.policy()
    assert all(c.key_buckets is None for c in parse_policy(obj).categories)
    obj["spec"]["categories"][1]["keyBuckets"] = "month"
    category = parse_policy(obj).category("technical-support-inquiry")
    assert category is not None and category.key_buckets == "month"
    for bad in ("Month", "week", "monthly", 1):
        obj["spec"]["categories"][1]["keyBuckets"] = bad
        with pytest.raises(ModelError, match=r"categories\[1\]\.keyBuckets"):
            parse_policy(obj)
