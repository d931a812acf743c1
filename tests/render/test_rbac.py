"""RBAC: readers get exactly two Secrets; the purge identity gets only what it needs."""

from __future__ import annotations

from typing import Any

from dataward.model.store import parse_store
from dataward.render.rbac import (
    render_purge_binding,
    render_purge_role,
    render_purge_service_account,
    render_reader_binding,
    render_reader_role,
    store_secrets,
)
from tests.model import samples


def store(**changes: Any) -> Any:
    return parse_store(samples.store(**changes))


def test_reader_role_gets_exactly_the_key_ring_and_credentials() -> None:
    assert render_reader_role(store())["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["dataward-support-inquiries-keyring", "crm-postgres-purger"],
            "verbs": ["get"],
        }
    ]


def test_reader_role_does_not_include_archive_credentials() -> None:
    rules = render_reader_role(store(archive=samples.ARCHIVE))["rules"]
    assert "archive-writer" not in rules[0]["resourceNames"]


def test_reader_binding_binds_the_readers_to_the_reader_role() -> None:
    binding = render_reader_binding(store())
    assert binding is not None
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "dataward-support-inquiries-readers",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "crm-api", "namespace": "crm"},
        {"kind": "Group", "name": "privacy-officers", "apiGroup": "rbac.authorization.k8s.io"},
    ]


def test_service_account_readers_in_other_namespaces_keep_their_namespace() -> None:
    binding = render_reader_binding(
        store(access={"readers": [{"kind": "ServiceAccount", "name": "etl", "namespace": "data"}]})
    )
    assert binding is not None
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "etl", "namespace": "data"}]


def test_no_reader_binding_without_readers() -> None:
    assert render_reader_binding(store(access={"readers": []})) is None


def test_purge_service_account_does_not_automount_a_token() -> None:
    account = render_purge_service_account(store())
    assert account["automountServiceAccountToken"] is False
    assert account["metadata"]["name"] == "dataward-support-inquiries-purge"


def test_purge_role_gets_the_credentials_and_its_own_store_only() -> None:
    assert render_purge_role(store())["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["crm-postgres-purger"],
            "verbs": ["get"],
        },
        {
            "apiGroups": ["dataward.io"],
            "resources": ["personaldatastores"],
            "resourceNames": ["support-inquiries"],
            # Watched by name for a legal hold before every batch.
            "verbs": ["get", "list", "watch"],
        },
    ]


def test_purge_role_adds_the_archive_credentials_when_there_is_an_archive() -> None:
    rules = render_purge_role(store(archive=samples.ARCHIVE))["rules"]
    assert rules[0]["resourceNames"] == ["crm-postgres-purger", "archive-writer"]


def test_purge_role_never_reads_the_key_ring() -> None:
    for rule in render_purge_role(store(archive=samples.ARCHIVE))["rules"]:
        assert "dataward-support-inquiries-keyring" not in rule["resourceNames"]


def test_no_rule_uses_wildcards_or_lacks_resource_names() -> None:
    s = store(archive=samples.ARCHIVE)
    for role in (render_reader_role(s), render_purge_role(s)):
        for rule in role["rules"]:
            # Secrets are only ever got by name; a list or watch would hand over every one.
            if "secrets" in rule["resources"]:
                assert rule["verbs"] == ["get"]
            assert rule["resourceNames"]
            assert "*" not in rule["apiGroups"] + rule["resources"] + rule["resourceNames"]


def test_purge_binding_binds_the_purge_service_account() -> None:
    binding = render_purge_binding(store())
    assert binding["roleRef"]["name"] == "dataward-support-inquiries-purge"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "dataward-support-inquiries-purge", "namespace": "crm"}
    ]


def test_store_secrets_lists_key_ring_and_every_credentials_secret_once() -> None:
    assert store_secrets(store(archive=samples.ARCHIVE)) == [
        "dataward-support-inquiries-keyring",
        "crm-postgres-purger",
        "archive-writer",
    ]
