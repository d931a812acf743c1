"""The DataSubjectRequest model: what is read, what is refused, which stores are in scope."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dataward.model.errors import ModelError
from dataward.model.store import parse_store
from dataward.subjects.request import StoreRef, parse_request
from tests.model import samples as store_samples
from tests.subjects.samples import request


def _store(namespace: str, name: str, category: str, policy: str = "clunix") -> Any:
    raw = copy.deepcopy(store_samples.STORE)
    raw["metadata"].update(namespace=namespace, name=name)
    raw["spec"].update(category=category, policy=policy)
    return parse_store(raw)


def test_a_request_reads_its_fields_and_never_an_identifier() -> None:
    parsed = parse_request(request(maxRows=50, dryRun=True, acknowledgeToken="abc-1"))
    assert parsed.type == "access"
    assert parsed.identifier_secret == "case-4711-identifier"
    assert parsed.received_at == datetime(2026, 1, 10, 8, tzinfo=UTC)
    assert (parsed.max_rows, parsed.dry_run, parsed.acknowledge_token) == (50, True, "abc-1")
    assert parsed.readers[0].name == "privacy-officers"


def test_no_scope_means_every_store_of_the_policy_and_only_of_it() -> None:
    parsed = parse_request(request())
    assert parsed.in_scope(_store("crm", "a", "newsletter"))
    assert not parsed.in_scope(_store("crm", "b", "newsletter", policy="other"))


def test_scope_by_store_defaults_to_the_requests_namespace_and_or_by_category() -> None:
    parsed = parse_request(
        request(scope={"stores": [{"name": "a"}, {"namespace": "crm", "name": "b"}],
                       "categories": ["contract-records"]})
    )
    assert parsed.stores == (StoreRef("privacy", "a"), StoreRef("crm", "b"))
    assert parsed.in_scope(_store("privacy", "a", "newsletter"))
    assert parsed.in_scope(_store("crm", "b", "newsletter"))
    assert not parsed.in_scope(_store("crm", "a", "newsletter"))  # same name, other namespace
    assert parsed.in_scope(_store("shop", "z", "contract-records"))


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"type": "rectify"}, "spec.type"),
        ({"receivedAt": "2026-01-10T08:00:00"}, "spec.receivedAt"),  # no zone: which day?
        ({"receivedAt": "yesterday"}, "spec.receivedAt"),
        ({"maxRows": 0}, "spec.maxRows"),
        ({"maxRows": True}, "spec.maxRows"),
        ({"subject": {}}, "spec.subject.identifierSecretRef"),
        ({"requestedBy": None}, "spec.requestedBy"),
        ({"scope": {"categories": [""]}}, "spec.scope.categories[0]"),
        # An empty list named no store, and was read as no scope: every store of the policy,
        # past the admission check of named stores (it checks each of none).
        ({"scope": {"stores": []}}, "spec.scope.stores"),
        ({"scope": {"categories": []}}, "spec.scope.categories"),
    ],
)
def test_a_careless_request_is_refused_naming_the_field(change: dict[str, Any], path: str) -> None:
    with pytest.raises(ModelError) as error:
        parse_request(request(**change))
    assert error.value.path == path


def test_dataward_check_validates_a_request_offline_as_the_api_server_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from dataward.cli import main

    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(request()))
    assert main(["check", "-f", str(good)]) == 0
    wildcard = request(readers=[{"kind": "Group", "name": "system:authenticated"}])
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(wildcard))
    assert main(["check", "-f", str(bad)]) == 1
    assert "spec.readers[0]" in capsys.readouterr().out
