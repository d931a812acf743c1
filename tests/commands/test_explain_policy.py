"""`dataward explain-policy`: the categories of a policy as a table a person reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dataward.cli import main
from tests.admission_cases import BASE_POLICY, patched, put

REPO = Path(__file__).resolve().parents[2]


def test_the_example_policy_as_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain-policy", "-f", str(REPO / "examples" / "policy.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "PrivacyPolicy clunix, effective 2021-04-26"
    assert "90 days" in lines[1]
    assert "6 months" in lines[1]
    header = lines[3]
    assert header.split()[:2] == ["CATEGORY", "PURPOSES"]
    rows = {line.split()[0]: line for line in lines[4:] if line and not line[0].isdigit()}
    assert rows["newsletter"].split("  ")[0] == "newsletter"
    assert "until unsubscribed" in rows["newsletter"]
    assert "1 year after inquired" in rows["technical-support-inquiry"]
    assert "5 years under the Framework Act on National Taxes" in rows["tax-records"]
    assert (
        "3 months under the Protection of Communications Secrets Act"
        in (rows["site-visit-records"])
    )
    # Columns line up: every purposes cell starts where the header's does.
    column = header.index("PURPOSES")
    assert all(row[column - 2 : column] == "  " for row in rows.values())
    assert lines[-1].startswith("13 categories; 8 with a statutory period")


def test_an_invalid_policy_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = patched("PrivacyPolicy", put("/spec/categories/0/name", "Newsletter"))
    file = tmp_path / "policy.yaml"
    file.write_text(yaml.safe_dump(bad), encoding="utf-8")
    assert main(["explain-policy", "-f", str(file)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "spec.categories[0].name" in captured.err


def test_a_file_without_a_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "ns.yaml"
    file.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n", encoding="utf-8")
    assert main(["explain-policy", "-f", str(file)]) == 2
    assert "has no PrivacyPolicy" in capsys.readouterr().err


def test_a_minimal_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "policy.yaml"
    file.write_text(yaml.safe_dump(BASE_POLICY), encoding="utf-8")
    assert main(["explain-policy", "-f", str(file)]) == 0
    out = capsys.readouterr().out
    assert "contract-records" in out
    assert "until contract ended" in out
    assert "5 years under the Act on Consumer Protection in Electronic Commerce" in out


def test_a_file_that_is_not_yaml_is_located_without_quoting_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file may be a bundle with a Secret in it: position and problem, not its lines."""
    bad = tmp_path / "bundle.yaml"
    bad.write_text("kind: Secret\nstringData:\n  password: hunter2-s3cr3t: x\n")
    assert main(["explain-policy", "-f", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3:27: cannot be read as YAML: mapping values are not allowed here" in err
    assert "hunter2" not in err


@pytest.mark.parametrize("value", ["!!int hunter2-s3cr3t", "!!float hunter2-s3cr3t", "2001-02-30"])
def test_a_value_yaml_cannot_convert_is_located_without_quoting_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """PyYAML raises ValueError for these, quoting the value: exit 2 with the position."""
    bad = tmp_path / "bundle.yaml"
    bad.write_text(f"kind: Secret\nstringData:\n  password: {value}\n")
    assert main(["explain-policy", "-f", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dataward explain-policy: {bad}:3:13: cannot be read as YAML: "), err
    assert "hunter2" not in err


def test_a_file_that_is_not_utf8_is_located_without_its_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bundle.yaml"
    bad.write_bytes(b"kind: Secret\nstringData:\n  password: pass\xe9word\n")
    assert main(["explain-policy", "-f", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"dataward explain-policy: {bad}: cannot be read: not UTF-8 text "
        "(byte 42 is not valid there)\n"
    )
