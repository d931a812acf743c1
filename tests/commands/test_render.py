"""`dataward render`: every child, offline, without key material."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dataward.cli import main
from tests.model import samples

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, store: dict[str, object]) -> tuple[str, str]:
    store_file = tmp_path / "store.yaml"
    policy_file = tmp_path / "policy.yaml"
    store_file.write_text(yaml.safe_dump(store))
    policy_file.write_text(yaml.safe_dump(samples.POLICY))
    return str(store_file), str(policy_file)


def test_prints_every_child_as_yaml_documents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_file, policy_file = write(tmp_path, samples.STORE)
    assert main(["render", "-f", store_file, "--policy", policy_file, "--image", "img:1"]) == 0
    out = capsys.readouterr().out
    documents = [d for d in yaml.safe_load_all(out) if d]
    assert [d["kind"] for d in documents] == [
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "CronJob",
    ]
    pod = documents[-1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "img:1"
    assert documents[-1]["spec"]["suspend"] is False


def test_names_the_key_ring_without_rendering_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_file, policy_file = write(tmp_path, samples.STORE)
    main(["render", "-f", store_file, "--policy", policy_file])
    out = capsys.readouterr().out
    assert "# Secret crm/dataward-support-inquiries-keyring" in out
    assert "kind: Secret" not in out
    assert "material" not in out.replace("material is never rendered", "")


def test_a_non_compliant_store_renders_a_suspended_cronjob_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_file, policy_file = write(tmp_path, samples.store(retention="2y"))
    assert main(["render", "-f", store_file, "--policy", policy_file]) == 0
    out = capsys.readouterr().out
    assert "# PolicyCompliant=False (RetentionTooLong)" in out
    cronjob = [d for d in yaml.safe_load_all(out) if d][-1]
    assert cronjob["spec"]["suspend"] is True


def test_the_output_is_the_same_on_every_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_file, policy_file = write(tmp_path, samples.STORE)
    main(["render", "-f", store_file, "--policy", policy_file])
    first = capsys.readouterr().out
    main(["render", "-f", store_file, "--policy", policy_file])
    assert capsys.readouterr().out == first


def test_renders_every_example_store(capsys: pytest.CaptureFixture[str]) -> None:
    stores = sorted((REPO / "examples" / "stores").glob("*.yaml"))
    policy = REPO / "examples" / "policy.yaml"
    if not stores or not policy.exists():
        pytest.skip("examples not present")
    for store in stores:
        assert main(["render", "-f", str(store), "--policy", str(policy)]) == 0
        documents = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
        assert documents[-1]["kind"] == "CronJob"


def test_a_bad_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: PersonalDataStore\nmetadata: {name: x}\nspec: {}\n")
    _, policy_file = write(tmp_path, samples.STORE)
    assert main(["render", "-f", str(bad), "--policy", policy_file]) == 2
    assert "dataward render:" in capsys.readouterr().err


def test_a_file_without_stores_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, policy_file = write(tmp_path, samples.STORE)
    assert main(["render", "-f", policy_file, "--policy", policy_file]) == 2
    assert "no PersonalDataStore" in capsys.readouterr().err
