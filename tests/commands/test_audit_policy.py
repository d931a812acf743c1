"""`dataward audit-policy` on files: inputs as `dataward check` reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dataward.cli import main
from tests.model.samples import POLICY, store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_examples_render_a_policy_headed_by_its_flags(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["audit-policy", "-f", str(EXAMPLES)]) == 0
    out = capsys.readouterr().out
    header = [line for line in out.splitlines() if line.startswith("#")]
    assert "#   --audit-log-maxage=184" in header  # accessLogRetention 6mo
    assert any("6mo (184 days)" in line for line in header)
    document = yaml.safe_load(out)
    assert document["kind"] == "Policy"
    names = {n for rule in document["rules"] for r in rule["resources"]
             for n in r.get("resourceNames", [])}  # fmt: skip
    assert "dataward-support-inquiries-keyring" in names and "crm-postgres-purger" in names


def test_flags_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit-policy", "-f", str(EXAMPLES), "--flags", "--log-path", "/a.log"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "--audit-log-path=/a.log" in lines and "--audit-log-maxbackup=0" in lines


def test_without_a_policy_the_retention_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "store.yaml").write_text(yaml.safe_dump(store()))
    assert main(["audit-policy", "-f", str(tmp_path)]) == 1
    assert "no PrivacyPolicy among the inputs" in capsys.readouterr().err


def test_inputs_check_refuses_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = store(retention="2y")  # longer than the category's 1y
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all([POLICY, bad]))
    assert main(["audit-policy", "-f", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "spec.retention" in err and "dataward check" in err


def test_a_missing_input_is_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit-policy", "-f", "/no/such/dir"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_more_secrets_such_as_the_evidence_key_are_watched_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["audit-policy", "-f", str(EXAMPLES), "--secret", "dataward/evidence-signing-key"]
    assert main(args) == 0
    rules = yaml.safe_load(capsys.readouterr().out)["rules"]
    (rule,) = [r for r in rules if r["namespaces"] == ["dataward"]]
    assert rule["resources"][0]["resourceNames"] == ["evidence-signing-key"]
    assert rule["verbs"] == ["get", "list", "watch", "patch", "delete", "deletecollection"]
    assert rule["level"] == "Metadata"
    assert main(["audit-policy", "-f", str(EXAMPLES), "--secret", "no-namespace"]) == 1
    assert "write NAMESPACE/NAME" in capsys.readouterr().err
