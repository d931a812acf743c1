"""`kubectl dataward`: formatting and actions against a stubbed API (no cluster)."""

from __future__ import annotations

import argparse
import copy
import io
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataward import plugin
from dataward.checks.conditions import Condition
from dataward.checks.encryption import SHREDDING_ANNOTATION, key_shredding
from dataward.cli import main as dataward_main
from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.purge.plan import ACKNOWLEDGE_ANNOTATION, acknowledge_token
from dataward.validation import apply_defaults
from dataward.version import version

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NS = "crm"
CRONJOB = "dataward-support-inquiries-purge"
TYPES = (
    "Ready",
    "PolicyCompliant",
    "NetworkIsolated",
    "EncryptionKeyReady",
    "AccessRestricted",
    "PurgeScheduled",
    "PurgeSucceeded",
)
TRUE_REASONS = {
    "Ready": "AllControlsInForce",
    "PolicyCompliant": "Compliant",
    "NetworkIsolated": "Isolated",
    "EncryptionKeyReady": "KeyReady",
    "AccessRestricted": "OnlyDeclaredReaders",
    "PurgeScheduled": "Scheduled",
    "PurgeSucceeded": "Succeeded",
}


def _yaml(path: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / path).read_text())
    return doc


def policy_object() -> dict[str, Any]:
    doc = apply_defaults(_yaml("examples/policy.yaml"), "PrivacyPolicy")
    doc["metadata"]["generation"] = 2
    return doc


def store_object(name: str = "support-inquiries", **reasons: tuple[str, str]) -> dict[str, Any]:
    """The example store as served, with a status; `reasons`: type -> (status, reason)."""
    doc = apply_defaults(_yaml("examples/stores/support-inquiries.yaml"), "PersonalDataStore")
    doc["metadata"].update(
        name=name, namespace=NS, generation=3, resourceVersion="41", uid="store-uid"
    )
    conditions = []
    for type_ in TYPES:
        status, reason = reasons.get(type_, ("True", TRUE_REASONS[type_]))
        conditions.append(
            {
                "type": type_,
                "status": status,
                "reason": reason,
                "message": f"The message of {type_}.",
                "lastTransitionTime": "2026-11-30T00:00:00Z",
                "observedGeneration": 3,
            }
        )
    doc["status"] = {
        "observedGeneration": 3,
        "conditions": conditions,
        "encryption": {
            "keySecret": f"dataward-{name}-keyring",
            "primaryKeyId": 1,
            "primaryKeyCreated": "2026-11-29T10:00:00Z",
            "nextRotation": "2026-12-29T10:00:00Z",
            "keys": [{"id": 1, "created": "2026-11-29T10:00:00Z", "fingerprint": "fp-not-shown"}],
        },
        "lastPurge": {
            "jobName": f"{CRONJOB}-29412345",
            "startTime": "2026-12-01T03:17:05Z",
            "completionTime": "2026-12-01T03:17:09Z",
            "cutoff": "2026-06-04T03:17:05Z",
            "rowsDeleted": 12,
            "rowsArchived": 0,
            "result": "Succeeded",
            "message": "Deleted 12 rows.",
        },
    }
    return doc


def cronjob_object() -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": CRONJOB, "namespace": NS, "uid": "cron-uid"},
        "spec": {
            "schedule": "17 3 * * *",
            "suspend": False,
            "jobTemplate": {
                "metadata": {"labels": {"app.kubernetes.io/managed-by": "dataward"}},
                "spec": {
                    "backoffLimit": 0,
                    "template": {"spec": {"containers": [{"name": "purge", "image": "x"}]}},
                },
            },
        },
    }


class FakeApi:
    """The plugin's Api over dicts; records what it was asked to change."""

    def __init__(self, namespace: str = NS) -> None:
        self.namespace = namespace
        self.stores: dict[tuple[str, str], dict[str, Any]] = {}
        self.policies = {"clunix": policy_object()}
        self.cronjobs = {(NS, CRONJOB): cronjob_object()}
        self.jobs: list[dict[str, Any]] = []
        self.patches: list[tuple[str, str, dict[str, str], str]] = []
        self.listed: list[str | None] = []

    def add(self, store: dict[str, Any]) -> FakeApi:
        meta = store["metadata"]
        self.stores[(meta["namespace"], meta["name"])] = store
        return self

    def default_namespace(self) -> str:
        return self.namespace

    def list_stores(self, namespace: str | None) -> list[dict[str, Any]]:
        self.listed.append(namespace)
        return [s for (ns, _), s in self.stores.items() if namespace in (None, ns)]

    def get_store(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.stores.get((namespace, name))

    def get_policy(self, name: str) -> dict[str, Any] | None:
        return self.policies.get(name)

    def get_cronjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.cronjobs.get((namespace, name))

    def create_job(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self.jobs.append(copy.deepcopy(dict(body)))
        return dict(body)

    def annotate_store(
        self, namespace: str, name: str, annotations: Mapping[str, str], resource_version: str
    ) -> dict[str, Any]:
        self.patches.append((namespace, name, dict(annotations), resource_version))
        store = self.stores[(namespace, name)]
        store["metadata"].setdefault("annotations", {}).update(annotations)
        return store


def run(api: FakeApi, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()

    def make(args: argparse.Namespace) -> plugin.Api:
        make.args = args  # type: ignore[attr-defined]
        return api

    code = plugin.main(list(argv), make_api=make, out=out, err=err, now=NOW)
    return code, out.getvalue(), err.getvalue()


def test_status_of_a_ready_store_is_one_readable_screen() -> None:
    code, out, err = run(FakeApi().add(store_object()), "status", "support-inquiries")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "PersonalDataStore crm/support-inquiries"
    assert "Policy clunix, category technical-support-inquiry, retention 180d" in lines[1]
    for type_ in TYPES:
        assert f"  {type_:<19} True     {TRUE_REASONS[type_]}" in lines
        assert f"      The message of {type_}." in lines
    # Ready comes first, as in status.
    assert lines.index(f"  {'Ready':<19} True     AllControlsInForce") < lines.index(
        f"  {'PolicyCompliant':<19} True     Compliant"
    )
    assert "  Succeeded, Job dataward-support-inquiries-purge-29412345" in lines
    assert "  Finished 2026-12-01T03:17:09Z (8h42m ago)" in lines
    assert "  12 row(s) deleted, 0 archived; cutoff 2026-06-04T03:17:05Z" in lines
    assert "  Primary key 1, created 2026-11-29T10:00:00Z, 2d2h old" in lines
    assert "  Next rotation 2026-12-29T10:00:00Z (in 27d)" in lines
    assert "  Nothing: every control is in force." in lines
    assert "fp-not-shown" not in out


def test_status_lists_what_to_do_for_each_condition_not_in_force() -> None:
    store = store_object(
        Ready=("False", "ControlsNotInForce"),
        AccessRestricted=("False", "OtherBindingGrantsSecrets"),
        PurgeSucceeded=("True", "PurgeHeld"),
        NetworkIsolated=("Unknown", "SomethingNew"),
    )
    code, out, _ = run(FakeApi().add(store), "status", "support-inquiries")
    assert code == 0
    todo = out[out.index("What to do:") :]
    assert "AccessRestricted=False (OtherBindingGrantsSecrets): Remove that binding" in todo
    assert "PurgeSucceeded=True (PurgeHeld):" in todo
    assert "kubectl dataward acknowledge -n crm support-inquiries" in todo
    assert "NetworkIsolated=Unknown (SomethingNew): Read the condition's message." in todo
    assert "Ready=" not in todo  # Ready only repeats the others


def test_status_without_a_name_shows_every_store_of_the_namespace() -> None:
    api = FakeApi().add(store_object("b-store")).add(store_object("a-store"))
    code, out, _ = run(api, "status")
    assert code == 0 and api.listed == [NS]
    assert out.index("PersonalDataStore crm/a-store") < out.index("PersonalDataStore crm/b-store")


@pytest.mark.parametrize(
    "argv",
    [("status", "-n", "other"), ("-n", "other", "status"), ("--namespace=other", "status")],
)
def test_the_namespace_option_works_before_and_after_the_command(argv: tuple[str, ...]) -> None:
    api = FakeApi()
    code, out, _ = run(api, *argv)
    assert code == 0 and api.listed == ["other"]
    assert out == "No PersonalDataStores in namespace other.\n"


def test_all_namespaces() -> None:
    api = FakeApi().add(store_object())
    code, out, _ = run(api, "status", "-A")
    assert code == 0 and api.listed == [None] and "crm/support-inquiries" in out
    code, _, err = run(api, "status", "-A", "support-inquiries")
    assert code == 1 and err.startswith("error: Give either STORE or -A")


def test_a_store_without_status_says_the_operator_has_not_seen_it() -> None:
    store = store_object()
    del store["status"]
    _, out, _ = run(FakeApi().add(store), "status", "support-inquiries")
    assert "No status yet: the operator has not reconciled this store." in out


def test_a_status_for_an_older_generation_says_so() -> None:
    store = store_object()
    store["metadata"]["generation"] = 4
    _, out, _ = run(FakeApi().add(store), "status", "support-inquiries")
    assert "Status is for generation 3; the operator has not yet acted on generation 4." in out


def test_a_missing_store_is_a_sentence_not_a_traceback() -> None:
    code, out, err = run(FakeApi(), "status", "nope")
    assert (code, out) == (1, "")
    assert err == "error: PersonalDataStore nope not found in namespace crm.\n"


def test_an_unexpected_failure_is_still_a_sentence() -> None:
    api = FakeApi()

    def boom(namespace: str, name: str) -> dict[str, Any] | None:
        raise RuntimeError("kaput")

    api.get_store = boom  # type: ignore[method-assign]
    code, _, err = run(api, "status", "x")
    assert code == 1
    assert err == "error: unexpected RuntimeError: kaput. Please report this.\n"


def test_explain_prints_the_catalogue_entry_without_a_cluster() -> None:
    def no_api(args: argparse.Namespace) -> plugin.Api:
        raise AssertionError("explain must not contact the API")

    out, err = io.StringIO(), io.StringIO()
    code = plugin.main(["explain", "PurgeRunStuck"], make_api=no_api, out=out, err=err)
    assert code == 0
    text = out.getvalue()
    assert text.startswith("PurgeRunStuck: PurgeSucceeded=False\n")
    assert "Meaning:" in text and "delete the Job" in text


def test_explain_of_an_unknown_reason_suggests_close_ones() -> None:
    code, _, err = run(FakeApi(), "explain", "PurgeRunStuk")
    assert code == 1
    assert "error: No condition reason is named 'PurgeRunStuk'" in err
    assert "did you mean PurgeRunStuck" in err


def test_explain_without_a_reason_lists_every_reason() -> None:
    code, out, _ = run(FakeApi(), "explain")
    assert code == 0
    for name in ("KeyRingNotCreatedByOperator", "CredentialsSecretMissing", "MaxRowsPerRun"):
        assert name in out


def test_purge_now_creates_a_job_owned_by_the_cronjob() -> None:
    api = FakeApi().add(store_object())
    code, out, err = run(api, "purge", "now", "support-inquiries")
    assert (code, err) == (0, "")
    [job] = api.jobs
    cronjob = cronjob_object()
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": CRONJOB,
            "uid": "cron-uid",
            "controller": True,
        }
    ]
    assert job["spec"] == cronjob["spec"]["jobTemplate"]["spec"]
    assert job["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "dataward"}
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    assert job["metadata"]["name"].startswith(f"{CRONJOB}-manual-")
    assert f"job.batch/{job['metadata']['name']} created from cronjob/{CRONJOB}" in out


def test_a_manual_job_name_fits_a_label_value() -> None:
    cronjob = cronjob_object()
    cronjob["metadata"]["name"] = "x" * 52
    name = plugin.manual_job(cronjob, "abcdef")["metadata"]["name"]
    assert len(name) <= 63 and name.endswith("-manual-abcdef")


def test_purge_now_of_a_suspended_cronjob_warns_and_runs() -> None:
    api = FakeApi().add(store_object(PurgeScheduled=("False", "PurgeSuspended")))
    api.cronjobs[(NS, CRONJOB)]["spec"]["suspend"] = True
    code, _, err = run(api, "purge", "now", "support-inquiries")
    assert code == 0 and len(api.jobs) == 1
    assert err.startswith(f"Note: CronJob {CRONJOB} is suspended (PurgeSuspended)")


def test_purge_now_without_its_cronjob_says_where_to_look() -> None:
    api = FakeApi().add(store_object())
    api.cronjobs.clear()
    code, _, err = run(api, "purge", "now", "support-inquiries")
    assert code == 1 and not api.jobs
    assert "does not exist in namespace crm" in err and "(PurgeScheduled)" in err


def expected_token(store: dict[str, Any]) -> str:
    return acknowledge_token(parse_store(store), parse_policy(policy_object()))


def held(store: dict[str, Any], token: str) -> dict[str, Any]:
    store["status"]["lastPurge"].update(
        result="Held",
        reason="LargePurgeNotAcknowledged",
        message=f"held: ... run: kubectl annotate personaldatastore -n crm support-inquiries "
        f"{ACKNOWLEDGE_ANNOTATION}={token} --overwrite",
    )
    return store


def test_acknowledge_sets_the_token_the_purge_asks_for() -> None:
    store = store_object()
    token = expected_token(store) + "-n2200"
    assert token == "180d-g3-p2-3a9ba9ae-n2200"
    api = FakeApi().add(held(store, token))
    code, out, err = run(api, "acknowledge", "support-inquiries")
    assert (code, err) == (0, "")
    assert api.patches == [(NS, "support-inquiries", {ACKNOWLEDGE_ANNOTATION: token}, "41")]
    assert f"annotated {ACKNOWLEDGE_ANNOTATION}={token}" in out
    # Run again: nothing to change.
    code, out, _ = run(api, "acknowledge", "support-inquiries")
    assert code == 0 and len(api.patches) == 1 and "already acknowledged" in out


def test_acknowledge_refuses_a_hold_for_an_older_spec_unless_forced() -> None:
    store = held(store_object(), "365d-g2-p2-3a9ba9ae-n5000")
    api = FakeApi().add(store)
    code, _, err = run(api, "acknowledge", "support-inquiries")
    assert code == 1 and not api.patches
    assert "held at token 365d-g2-p2-3a9ba9ae-n5000" in err
    assert "now 180d-g3-p2-3a9ba9ae)" in err
    code, _, _ = run(api, "acknowledge", "support-inquiries", "--force")
    assert code == 0
    assert api.patches[0][2] == {ACKNOWLEDGE_ANNOTATION: "180d-g3-p2-3a9ba9ae-n5000"}


def test_acknowledge_takes_a_hold_the_previous_release_wrote_for_this_very_spec() -> None:
    """The previous release's token had no digest of the store's identity. Its hold, in this
    store's own status, for the same retention and generations is no change: acknowledging it
    after the upgrade is not refused as "the store or its policy has changed"."""
    api = FakeApi().add(held(store_object(), "180d-g3-p2"))
    code, _, err = run(api, "acknowledge", "support-inquiries", "--rows", "3000")
    assert (code, err) == (0, "")
    assert api.patches[0][2] == {ACKNOWLEDGE_ANNOTATION: "180d-g3-p2-3a9ba9ae-n3000"}
    # Its hold named no rows, so without --rows there is nothing to bound the release by.
    api = FakeApi().add(held(store_object(), "180d-g3-p2-3a9ba9ae"))
    code, _, err = run(api, "acknowledge", "support-inquiries")
    assert code == 1 and not api.patches and "names no number of rows" in err
    # An older spec in the previous form is still a change.
    api = FakeApi().add(held(store_object(), "365d-g2-p2"))
    code, _, err = run(api, "acknowledge", "support-inquiries")
    assert code == 1 and not api.patches and "held at token 365d-g2-p2" in err


def test_acknowledge_without_a_hold_says_it_acknowledges_in_advance() -> None:
    api = FakeApi().add(store_object())
    code, out, _ = run(api, "acknowledge", "support-inquiries", "--rows", "40000")
    assert code == 0 and "No purge is held now" in out
    assert api.patches[0][2] == {ACKNOWLEDGE_ANNOTATION: "180d-g3-p2-3a9ba9ae-n40000"}


def test_acknowledge_in_advance_must_say_how_many_rows() -> None:
    """Without a hold there is no cut to bound the release by: an open-ended one would let
    any later cut through while the annotation stays (a GitOps manifest keeps it)."""
    api = FakeApi().add(store_object())
    code, _, err = run(api, "acknowledge", "support-inquiries")
    assert code == 1 and not api.patches and "--rows N" in err
    for bad in ("0", "-3", "1e6", "12x"):
        with pytest.raises(SystemExit) as exit_:  # argparse's usage error
            run(api, "acknowledge", "support-inquiries", "--rows", bad)
        assert exit_.value.code == 2 and not api.patches, bad


def test_acknowledge_takes_the_token_of_the_policy_revision_in_force() -> None:
    """A policy revision shortening the store's category is in its notice period: the purge
    runs by the revision in force (1y) and was held at its token. The plugin computed the
    token from the policy as written (3mo), so it refused the hold as "changed since", and
    --force wrote a token no run would ever ask for."""
    store = store_object()
    del store["spec"]["retention"]  # the category's retention decides
    policy = policy_object()
    in_force = copy.deepcopy(policy["spec"])
    for category in policy["spec"]["categories"]:
        if category["name"] == "technical-support-inquiry":
            category["retention"]["period"] = "3mo"
    policy["spec"]["announced"], policy["spec"]["effectiveDate"] = "2026-11-30", "2026-12-31"
    policy["status"] = {
        "revisions": {"inForce": {"generation": 1, "since": "2021-04-26T00:00:00Z",
                                  "spec": in_force}}
    }  # fmt: skip
    token = acknowledge_token(parse_store(store), parse_policy({**policy, "spec": in_force}))
    assert token.startswith("1y-g3-p2-")
    api = FakeApi().add(held(store, token + "-n2200"))
    api.policies["clunix"] = policy
    code, _, err = run(api, "acknowledge", "support-inquiries")
    assert (code, err) == (0, "")
    assert api.patches[0][2] == {ACKNOWLEDGE_ANNOTATION: token + "-n2200"}


def test_acknowledge_without_the_policy_is_refused() -> None:
    api = FakeApi().add(store_object())
    api.policies.clear()
    code, _, err = run(api, "acknowledge", "support-inquiries")
    assert code == 1 and "PrivacyPolicy clunix of store crm/support-inquiries does not exist" in err


SHREDDING_TOKEN = "2026-05..2026-06-n2-6c17b4d30015"  # of those buckets, at store-uid


def shredding_waits(store: dict[str, Any], token: str = SHREDDING_TOKEN) -> dict[str, Any]:
    """EncryptionKeyReady as the operator words it when two bucket keys wait for a person."""
    ready = Condition("EncryptionKeyReady", "True", "KeyReady", "Primary key 1 ...")
    waiting = key_shredding(
        ready, "dataward-support-inquiries-keyring", ("2026-05", "2026-06"), "not-acknowledged",
        f"kubectl annotate personaldatastore -n crm support-inquiries "
        f"{SHREDDING_ANNOTATION}={token} --overwrite",
    )  # fmt: skip
    (entry,) = [c for c in store["status"]["conditions"] if c["type"] == "EncryptionKeyReady"]
    entry.update(status=waiting.status, reason=waiting.reason, message=waiting.message)
    return store


def test_acknowledge_shredding_sets_the_token_the_condition_asks_for() -> None:
    api = FakeApi().add(shredding_waits(store_object()))
    code, out, err = run(api, "acknowledge", "--shredding", "support-inquiries")
    assert (code, err) == (0, "")
    assert api.patches == [
        (NS, "support-inquiries", {SHREDDING_ANNOTATION: SHREDDING_TOKEN}, "41")
    ]  # never the purge's annotation
    assert f"annotated {SHREDDING_ANNOTATION}={SHREDDING_TOKEN}" in out
    assert "2 bucket(s): 2026-05, 2026-06" in out
    code, out, _ = run(api, "acknowledge", "support-inquiries", "--shredding")
    assert code == 0 and len(api.patches) == 1 and "already acknowledged" in out


def test_acknowledge_shredding_when_nothing_waits_is_refused() -> None:
    held_purge = held(store_object(), "180d-g3-p2")  # a purge waits; no shredding does
    api = FakeApi().add(held_purge)
    code, _, err = run(api, "acknowledge", "--shredding", "support-inquiries")
    assert code == 1 and not api.patches
    assert "No crypto-shredding of PersonalDataStore crm/support-inquiries waits" in err
    assert "(EncryptionKeyReady: it is True, KeyReady)" in err


def test_acknowledge_shredding_refuses_a_token_not_of_this_store() -> None:
    """The condition was written for a store since deleted and made again under the name
    (another uid): its token would release nothing, and the buckets may not be due here."""
    store = shredding_waits(store_object())
    store["metadata"]["uid"] = "store-uid-made-again"
    api = FakeApi().add(store)
    code, _, err = run(api, "acknowledge", "--shredding", "support-inquiries")
    assert code == 1 and not api.patches
    assert f"asks for token {SHREDDING_TOKEN}" in err


def test_acknowledge_shredding_refuses_a_message_naming_no_buckets() -> None:
    store = shredding_waits(store_object())
    for c in store["status"]["conditions"]:
        if c["type"] == "EncryptionKeyReady":
            c["message"] = f"Please run: {SHREDDING_ANNOTATION}={SHREDDING_TOKEN}"
    api = FakeApi().add(store)
    code, _, err = run(api, "acknowledge", "--shredding", "support-inquiries")
    assert code == 1 and not api.patches and "names no buckets" in err


def test_acknowledge_shredding_takes_no_force() -> None:
    api = FakeApi().add(shredding_waits(store_object()))
    code, _, err = run(api, "acknowledge", "--shredding", "--force", "support-inquiries")
    assert code == 1 and not api.patches and "--force" in err


def test_a_waiting_shredding_shows_how_to_release_it() -> None:
    _, out, _ = run(FakeApi().add(shredding_waits(store_object())), "status", "support-inquiries")
    lines = out.splitlines()
    assert "    $ kubectl dataward acknowledge --shredding -n crm support-inquiries" in lines


@pytest.mark.parametrize(
    "argv", [["--version"], ["status", "--version"], ["purge", "now", "--version"]]
)
def test_version_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        plugin.main(argv)
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"kubectl dataward {version()}\n"


def test_dataward_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        dataward_main(["--version"])
    assert capsys.readouterr().out == f"dataward {version()}\n"
    assert version() == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_the_kubectl_plugin_script_is_declared() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["kubectl-dataward"].partition(":")
    assert (module, function) == ("dataward.plugin", "main")


def test_an_unreadable_kubeconfig_is_a_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.yaml"
    assert plugin.main(["status", "--kubeconfig", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Cannot load the kubeconfig:") and "Traceback" not in err


def test_api_errors_carry_the_servers_sentence() -> None:
    body = b'{"kind":"Status","message":"personaldatastores is forbidden: User \\"bob\\""}'
    assert plugin._status_message(403, body) == (
        'forbidden: personaldatastores is forbidden: User "bob"'
    )
    assert plugin._status_message(500, b"not json") == "HTTP 500"


def test_the_plugin_never_reads_secrets() -> None:
    assert all("secrets" not in path for path in plugin._PATHS.values())
    assert "read_namespaced_secret" not in Path(plugin.__file__).read_text()


def test_a_held_purge_shows_its_reason_and_how_to_release_it() -> None:
    store = held(store_object(PurgeSucceeded=("True", "PurgeHeld")), "180d-g3-p2-3a9ba9ae")
    _, out, _ = run(FakeApi().add(store), "status", "support-inquiries")
    lines = out.splitlines()
    assert "  Held (LargePurgeNotAcknowledged), Job dataward-support-inquiries-purge-29412345" in (
        lines
    )
    assert "    $ kubectl dataward acknowledge -n crm support-inquiries" in lines


def test_the_installed_package_has_a_kubectl_dataward_that_runs(tmp_path: Path) -> None:
    """Built and installed like tests/chart/test_image.py: the script exists and answers."""
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copy(REPO / "README.md", source)
    shutil.copytree(
        REPO / "operator",
        source / "operator",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("dataward-*.whl")
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120
    )
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index",
         "--disable-pip-version-check", str(wheel)],
        check=True,
        timeout=300,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for script, expected in (("kubectl-dataward", "kubectl dataward"), ("dataward", "dataward")):
        result = subprocess.run(
            [str(venv / "bin" / script), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{expected} {version()}\n"


def test_a_digest_in_a_message_is_shown_whole_at_any_width() -> None:
    """AccessRestricted names a binding or subject that may be personal data by its digest;
    an admin greps for it (README, "Records are metadata only"), so it is never split."""
    digest = "sha256:" + "0123456789abcdef" * 4
    store = store_object(AccessRestricted=("False", "OtherBindingGrantsSecrets"))
    (condition,) = (c for c in store["status"]["conditions"] if c["type"] == "AccessRestricted")
    condition["message"] = (
        f"Secrets x are readable beyond spec.access.readers: RoleBinding crm/{digest} (role "
        f"Role r) lets User {digest}, Group {digest} read them."
    )
    for width in (60, 80, 100):
        out = plugin.format_store(store, NOW, width)
        assert sum(line.count(digest) for line in out.splitlines()) == 3, out


def test_a_name_in_a_message_or_listing_is_never_split_at_its_hyphens() -> None:
    """Object names are what an admin copies into kubectl: a line ends before a name, never
    inside it at one of its hyphens."""
    name = "crm-customer-records-primary-reader"
    store = store_object(AccessRestricted=("False", "OtherBindingGrantsSecrets"))
    (condition,) = (c for c in store["status"]["conditions"] if c["type"] == "AccessRestricted")
    condition["message"] = (
        f"Secrets x are readable beyond spec.access.readers: RoleBinding crm/{name} lets "
        f"User {name} read them."
    )
    for width in range(50, 101, 7):
        out = plugin.format_store(store, NOW, width)
        assert sum(line.count(name) for line in out.splitlines()) == 2, (width, out)
        listing = plugin._listing("Stores", [name] * 6, width)
        assert sum(line.count(name) for line in listing.splitlines()) == 6, (width, listing)


class AskedApi(FakeApi):
    """A FakeApi that records every store it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[str, str]] = []

    def get_store(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.asked.append((namespace, name))
        return super().get_store(namespace, name)


@pytest.mark.parametrize(
    "argv",
    [
        ("status", "../../../../../../api/v1/namespaces/crm/secrets/shop-purger"),
        ("acknowledge", "../../../../../../api/v1/namespaces/crm/configmaps/x", "--rows", "5"),
        ("purge", "now", "support-inquiries/../../../../x"),
        ("status", "support-inquiries", "-n", "crm/personaldatastores/x/../.."),
        ("status", "Support-Inquiries"),
    ],
)
def test_a_name_that_is_no_object_name_is_refused_before_the_api_is_asked(
    argv: tuple[str, ...]
) -> None:
    """The name goes into the request's path: `..` segments (which the HTTP client folds)
    made `status` GET a Secret and `acknowledge` PATCH any object, despite "never a Secret"."""
    api = AskedApi().add(store_object())
    code, out, err = run(api, *argv)
    assert code == 1, (out, err)
    assert api.asked == [] and api.patches == [] and api.jobs == []
    assert err.startswith("error: ") and "name" in err, err
