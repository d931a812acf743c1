"""`dataward render`: every child, offline, without key material."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_a_non_compliant_store_renders_a_suspended_cronjob_says_why_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_file, policy_file = write(tmp_path, samples.store(retention="2y"))
    assert main(["render", "-f", store_file, "--policy", policy_file]) == 1
    captured = capsys.readouterr()
    assert "# NOT COMPLIANT" in captured.out
    assert "# PolicyCompliant=False (RetentionTooLong)" in captured.out
    cronjob = [d for d in yaml.safe_load_all(captured.out) if d][-1]
    assert cronjob["spec"]["suspend"] is True
    # The same line `dataward check` prints, on stderr, where it does not mix with the YAML.
    assert f"{store_file}: PersonalDataStore crm/support-inquiries: spec.retention: " in (
        captured.err)


def test_a_store_admission_would_refuse_is_not_rendered_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once, such a store rendered a RoleBinding to system:authenticated and exited 0."""
    everyone = {"kind": "Group", "name": "system:authenticated"}
    store_file, policy_file = write(tmp_path, samples.store(access={"readers": [everyone]}))
    assert main(["render", "-f", store_file, "--policy", policy_file]) == 1
    captured = capsys.readouterr()
    assert "system:authenticated" not in "".join(
        line for line in captured.out.splitlines(keepends=True) if not line.startswith("#"))
    assert not [d for d in yaml.safe_load_all(captured.out) if d]  # comments only
    assert "# INVALID: the API server would refuse this store" in captured.out
    assert "spec.access.readers[0].name" in captured.out
    assert f"{store_file}: PersonalDataStore crm/support-inquiries: spec.access.readers[0].name:" \
        in captured.err


def test_a_valid_store_next_to_an_invalid_one_is_still_rendered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = samples.store(purge={"batchSize": 0})
    bad["metadata"]["name"] = "broken"
    (tmp_path / "stores").mkdir()
    (tmp_path / "stores" / "good.yaml").write_text(yaml.safe_dump(samples.STORE))
    (tmp_path / "stores" / "bad.yaml").write_text(yaml.safe_dump(bad))
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(samples.POLICY))
    assert main(["render", "-f", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    kinds = [d["kind"] for d in yaml.safe_load_all(captured.out) if d]
    assert len(kinds) == 7 and kinds[-1] == "CronJob"
    assert "# PersonalDataStore crm/broken" in captured.out
    assert "spec.purge.batchSize" in captured.err


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
    for store in stores:
        assert main(["render", "-f", str(store), "--policy", str(policy)]) == 0
        documents = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
        assert documents[-1]["kind"] == "CronJob"


def test_a_directory_is_read_like_check_reads_it_and_the_policy_may_be_among_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["render", "-f", str(REPO / "examples")]) == 0
    captured = capsys.readouterr()
    documents = [d for d in yaml.safe_load_all(captured.out) if d]
    stores = len(list((REPO / "examples" / "stores").glob("*.yaml")))
    assert [d["kind"] for d in documents].count("CronJob") == stores == 3
    assert captured.err == ""
    # Namespaces and Secrets in examples/ are not Dataward objects: read and skipped.
    assert {d["kind"] for d in documents} <= {
        "NetworkPolicy", "Role", "RoleBinding", "ServiceAccount", "CronJob"}


def test_without_its_policy_a_store_is_rendered_suspended_and_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = REPO / "examples" / "stores" / "support-inquiries.yaml"
    assert main(["render", "-f", str(store)]) == 1
    captured = capsys.readouterr()
    assert "PrivacyPolicy 'clunix' is not among the inputs" in captured.err
    assert "(PolicyNotFound)" in captured.out


def test_a_store_read_from_a_file_has_no_uid_and_none_is_made_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["render", "-f", str(REPO / "examples")]) == 0
    out = capsys.readouterr().out
    assert "uid:" not in out
    assert "# ownerReferences name the store without its uid" in out
    for document in (d for d in yaml.safe_load_all(out) if d):
        for reference in document["metadata"]["ownerReferences"]:
            assert reference["kind"] == "PersonalDataStore" and "uid" not in reference


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    """`dataward render ... | head` once ended in a BrokenPipeError traceback."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "operator")}
    process = subprocess.Popen(
        [sys.executable, "-m", "dataward", "render", "-f", str(REPO / "examples")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the first line is written: every write hits a closed pipe
    stderr = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


def test_a_missing_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "-f", str(tmp_path / "nothing.yaml")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_a_file_that_is_not_yaml_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [PersonalDataStore\n")
    assert main(["render", "-f", str(bad)]) == 2
    assert "cannot be read as YAML" in capsys.readouterr().err


def test_a_file_without_stores_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, policy_file = write(tmp_path, samples.STORE)
    assert main(["render", "-f", policy_file, "--policy", policy_file]) == 2
    assert "no PersonalDataStore" in capsys.readouterr().err
