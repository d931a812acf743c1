"""`dataward check`: the CRD rules and the cross-object rules, offline, one line per problem."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataward.cli import main
from tests.admission_cases import BASE_POLICY, BASE_STORE, CASES, patched, put

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, *objects: Any, text: str | None = None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text is not None else yaml.safe_dump_all(objects), encoding="utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    status = main(["check", *argv])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def test_examples_are_clean(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "-f", str(REPO / "examples"), "--require-policies")
    assert status == 0, out
    files = [p for p in (REPO / "examples").rglob("*") if p.suffix in (".yaml", ".yml", ".json")]
    # Four dataward objects (the policy, three stores); the rest are other kinds, read and skipped.
    assert out == [f"dataward check: 4 objects in {len(files)} files: no problems"]
    assert err == ""


def test_a_bad_field_is_one_line_naming_file_object_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = patched("PersonalDataStore", put("/spec/purge/batchSize", 0))
    file = write(tmp_path / "store.yaml", store)
    status, out, _ = run(capsys, "-f", file)
    assert status == 1
    assert len(out) == 1
    prefix = f"{file}: PersonalDataStore default/admission-case: spec.purge.batchSize: "
    assert out[0].startswith(prefix), out[0]
    assert len(out[0]) > len(prefix) + 10  # says what to change


def test_a_typo_is_refused_with_the_right_spelling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "s.yaml", patched("PersonalDataStore", put("/spec/purge/dryrun", True)))
    status, out, _ = run(capsys, "-f", file)
    assert status == 1
    assert out == [
        f"{file}: PersonalDataStore default/admission-case: spec.purge.dryrun: "
        'unknown field "dryrun"; did you mean "dryRun"?'
    ]


def test_directories_are_searched_recursively_and_other_kinds_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
    bad_policy = patched("PrivacyPolicy", put("/spec/effectiveDate", "2021-02-30"))
    write(tmp_path / "a" / "b" / "policy.yml", namespace, bad_policy)
    write(tmp_path / "README.md", text="not yaml: [")
    status, out, _ = run(capsys, "-f", str(tmp_path))
    assert status == 1
    assert [line.split(": ")[2] for line in out] == ["spec.effectiveDate"]
    assert out[0].startswith(
        f"{tmp_path / 'a' / 'b' / 'policy.yml'}: PrivacyPolicy admission-cases:"
    )


def test_a_mounted_config_map_is_read_once_not_through_its_hidden_copies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What the kubelet makes of a ConfigMap volume: the files live in a hidden, timestamped
    # directory; `..data` links to it and each visible name links through `..data`.
    mount = tmp_path / "inputs"
    (mount / "..2026_12_01_00_00_00.1").mkdir(parents=True)
    write(mount / "..2026_12_01_00_00_00.1" / "policy.yaml", BASE_POLICY)
    (mount / "..data").symlink_to("..2026_12_01_00_00_00.1")
    (mount / "policy.yaml").symlink_to("..data/policy.yaml")
    write(mount / ".git" / "old-policy.yaml", BASE_POLICY)
    status, out, _ = run(capsys, "-f", str(mount))
    assert status == 0, out


def test_cross_object_rules_use_the_policies_among_the_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = patched("PersonalDataStore", put("/spec/category", "newsletter"))
    write(tmp_path / "policy.yaml", BASE_POLICY)
    file = write(tmp_path / "store.yaml", store)
    status, out, _ = run(capsys, "-f", str(tmp_path))
    assert status == 1
    # The newsletter category has no statutory period, so the archive must go.
    assert out == [
        f"{file}: PersonalDataStore default/admission-case: spec.archive: "
        "category 'newsletter' has no statutory retention, so archived copies would outlive "
        "the policy: remove spec.archive."
    ]


def test_retention_longer_than_the_category_is_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = patched("PersonalDataStore", put("/spec/retention", "30d"))
    file = write(tmp_path / "all.yaml", BASE_POLICY, store)
    status, out, _ = run(capsys, "-f", file)
    assert status == 1
    assert [line.split(": ")[2] for line in out] == ["spec.retention"]


def test_a_missing_policy_is_a_note_unless_required(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "store.yaml", BASE_STORE)
    status, out, err = run(capsys, "-f", file)
    assert status == 0
    assert out == ["dataward check: 1 object in 1 file: no problems"]
    assert "spec.policy: note: PrivacyPolicy 'admission-cases' is not among the inputs" in err

    status, out, _ = run(capsys, "-f", file, "--require-policies")
    assert status == 1
    assert out == [
        f"{file}: PersonalDataStore default/admission-case: spec.policy: PrivacyPolicy "
        "'admission-cases' is not among the inputs: add the file that defines it with -f, or "
        "set spec.policy to a policy that is"
    ]


def test_several_files_and_a_duplicate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = write(tmp_path / "one.yaml", BASE_POLICY)
    second = write(tmp_path / "two.yaml", BASE_POLICY)
    status, out, _ = run(capsys, "-f", first, "-f", second)
    assert status == 1
    assert out == [
        f"{second}: PrivacyPolicy admission-cases: metadata.name: also defined in {first}: "
        "give one of them another name"
    ]


def test_unparseable_yaml_is_a_problem_at_its_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "broken.yaml", text="kind: X\nmetadata:\n  name: a\n spec: [\n")
    status, out, _ = run(capsys, "-f", file)
    assert status == 1
    # The position and what is wrong there, on one line.
    assert out == [
        f"{file}:4:2: cannot be read as YAML: expected <block end>, but found "
        "'<block mapping start>' (while parsing a block mapping at line 1, column 1)"
    ]


SECRET_VALUE = "hunter2-s3cr3t-Value"
BROKEN_SECRETS = [
    # mapping values are not allowed here: the line of the password is the one shown
    f"kind: Secret\nstringData:\n  password: {SECRET_VALUE}: x\n",
    # an unterminated quoted value: PyYAML quotes the line it began on
    f'kind: Secret\nstringData:\n  password: "{SECRET_VALUE}\n',
    # an unknown escape: PyYAML names the character it found
    f'kind: Secret\nstringData:\n  password: "{SECRET_VALUE}\\q"\n',
    # a tab where a token starts, inside a flow mapping after the value
    f"kind: Secret\nstringData: {{password: {SECRET_VALUE}, token: @x}}\n",
]


@pytest.mark.parametrize("text", BROKEN_SECRETS)
def test_a_broken_secret_in_the_inputs_is_located_without_quoting_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """GitOps directories hold Secrets, which check skips; one that is not valid YAML is still
    a problem, shown by line and column in the CI log, never by its text."""
    file = write(tmp_path / "deploy" / "db-secret.yaml", text=text)
    status, out, err = run(capsys, "-f", str(tmp_path / "deploy"))
    assert status == 1
    assert out and out[0].startswith(f"{file}:"), out
    assert "cannot be read as YAML" in out[0]
    printed = "\n".join(out) + err
    assert "hunter2" not in printed and "s3cr3t" not in printed, printed




def test_a_tag_dressed_as_a_pyyaml_token_name_is_withheld_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PyYAML's own token names ('<block end>') are kept in its problems; a tag the input
    spells the same way (escaped in a verbatim tag) is the input's text, and is not."""
    file = write(
        tmp_path / "s.yaml", text="kind: Secret\nstringData:\n  pw: !<%3Chunter%20two%3E> x\n"
    )
    status, out, _ = run(capsys, "-f", file)
    assert status == 1
    assert out == [
        f"{file}:3:7: cannot be read as YAML: could not determine a constructor for the tag '…'"
    ]


def test_a_secret_that_is_not_utf8_is_located_without_its_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python's decoding error names the byte it could not decode (0xe9: a Latin-1 é of a
    password); the problem says where it is, not what it is."""
    file = tmp_path / "deploy" / "db-secret.yaml"
    file.parent.mkdir()
    file.write_bytes(b"kind: Secret\nstringData:\n  password: pass\xe9word\n")
    status, out, err = run(capsys, "-f", str(file.parent))
    assert status == 1
    assert out[0] == f"{file}: cannot be read: not UTF-8 text (byte 42 is not valid there)"
    assert "xe9" not in "\n".join(out) + err


def test_a_tag_escape_that_is_not_utf8_is_located_without_its_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PyYAML passes on the decoding error of a tag's %-escapes, which names the byte."""
    file = write(tmp_path / "s.yaml", text="kind: Secret\nstringData:\n  pw: !x%E9%41 y\n")
    status, out, _ = run(capsys, "-f", file)
    assert status == 1
    assert out[0].startswith(f"{file}:3:9: cannot be read as YAML: "), out
    assert "xe9" not in out[0].lower(), out

# YAML that parses but whose values PyYAML cannot convert: it raises ValueError (not a
# YAMLError), whose text quotes the value ("invalid literal for int() with base 10: '...'"),
# and RecursionError for nesting deeper than Python recurses.
UNCONVERTIBLE_SECRETS = [
    f"kind: Secret\nstringData:\n  password: !!int {SECRET_VALUE}\n",
    f"kind: Secret\nstringData:\n  password: !!float {SECRET_VALUE}\n",
    "kind: Secret\nstringData:\n  born: 2001-02-30\n",  # a date that does not exist
    "kind: Secret\nstringData:\n  pin: " + "[" * 5000 + "]" * 5000 + "\n",
]


@pytest.mark.parametrize("text", UNCONVERTIBLE_SECRETS)
def test_a_secret_whose_values_cannot_be_converted_is_a_problem_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """A CI run of check over a GitOps directory reports the file (at the value, when it can
    say where) and goes on; it neither stops with a traceback nor prints the value."""
    file = write(tmp_path / "deploy" / "db-secret.yaml", text=text)
    write(tmp_path / "deploy" / "policy.yaml", text=yaml.safe_dump(BASE_POLICY))
    status, out, err = run(capsys, "-f", str(tmp_path / "deploy"))
    assert status == 1
    assert [line for line in out if line.startswith(f"{file}")] == out[:1], out
    assert "cannot be read as YAML" in out[0]
    if "[" not in text:
        assert out[0].startswith(f"{file}:3:"), out  # the line of the value
    printed = "\n".join(out) + err
    assert "hunter2" not in printed and "Traceback" not in printed, printed

def test_every_problem_of_a_store_at_once_with_did_you_mean_for_the_category(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "policy.yaml", BASE_POLICY)
    category = BASE_STORE["spec"]["category"]
    typo = category[:2] + category[3:]  # one letter dropped
    store = patched(
        "PersonalDataStore", put("/spec/category", typo) + put("/spec/purge/batchSize", 0)
    )
    write(tmp_path / "store.yaml", store)
    status, out, _ = run(capsys, "-f", str(tmp_path))
    assert status == 1
    assert any("spec.purge.batchSize" in line for line in out), out
    assert any(f"did you mean {category!r}?" in line for line in out if "spec.category" in line)


def test_a_misspelt_policy_gets_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "policy.yaml", BASE_POLICY)
    policy = BASE_POLICY["metadata"]["name"]
    store = patched("PersonalDataStore", put("/spec/policy", policy + "s"))
    write(tmp_path / "store.yaml", store)
    status, out, _ = run(capsys, "-f", str(tmp_path), "--require-policies")
    assert status == 1
    assert any(f'did you mean "{policy}"?' in line for line in out), out


def test_a_missing_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "-f", str(tmp_path / "nope.yaml"))
    assert status == 2
    assert out == []
    assert "no such file or directory" in err


def test_a_list_is_unpacked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = patched("PersonalDataStore", put("/spec/deletionPolicy", "Orphan"))
    file = write(tmp_path / "list.yaml", {"apiVersion": "v1", "kind": "List", "items": [bad]})
    status, out, _ = run(capsys, "-f", file)
    assert status == 1
    assert [line.split(": ")[2] for line in out] == ["spec.deletionPolicy"]


def test_every_bad_case_in_one_directory_is_reported_at_its_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole admission table at once: one file per case, each problem at its field."""
    files = {}
    for index, case in enumerate(c for c in CASES if not c.update):
        obj = copy.deepcopy(patched(case.kind, case.patch))
        if isinstance(obj.get("metadata"), dict):
            obj["metadata"]["name"] = f"case-{index}"
        files[write(tmp_path / f"case-{index:03d}.yaml", obj)] = case
    status, out, _ = run(capsys, "-f", str(tmp_path))
    assert status == 1
    missed = [
        case.description
        for file, case in files.items()
        if not any(line.startswith(f"{file}: ") and case.path in line for line in out)
    ]
    assert missed == []


# YAML whose aliases make it more than it is: a node that holds itself (PyYAML builds a list
# that contains itself; walking it overflowed the C stack: a segfault, exit 139), and ten
# levels of ten aliases each (a few hundred bytes, 10^10 nodes once walked: a hang). Run in a
# child process, so that neither takes the test run down with it.
LAUGHS = "".join(
    f"  x{i}: &a{i + 1} [" + ",".join([f"*a{i}"] * 10) + "]\n" for i in range(10)
)
ALIASED = {
    "holds-itself": "apiVersion: dataward.io/v1alpha1\nkind: PersonalDataStore\n"
    "metadata: {name: x, namespace: y}\nspec: &a\n  policy: p\n  self: *a\n",
    "billion-laughs": "apiVersion: dataward.io/v1alpha1\nkind: PersonalDataStore\n"
    "metadata:\n  name: x\n  namespace: y\n  labels: &a0 {pw: hunter2}\nspec:\n" + LAUGHS,
}


@pytest.mark.parametrize("name", sorted(ALIASED))
def test_aliases_that_expand_without_bound_are_a_problem_not_a_crash_or_a_hang(
    tmp_path: Path, name: str
) -> None:
    file = write(tmp_path / "store.yaml", text=ALIASED[name])
    done = subprocess.run(
        [sys.executable, "-m", "dataward", "check", "-f", file],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert done.stdout.startswith(f"{file}:"), done.stdout
    assert "cannot be read as YAML" in done.stdout and "alias" in done.stdout, done.stdout
    assert "Traceback" not in done.stderr and "hunter2" not in done.stdout + done.stderr


def test_a_key_written_twice_is_a_problem_at_its_second_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reviewer reads the first `retention:`; PyYAML kept the last, and check said the
    store was clean. Written twice, the object means two things: a problem, located."""
    write(tmp_path / "policy.yaml", BASE_POLICY)
    text = yaml.safe_dump(BASE_STORE, sort_keys=False).replace(
        "  retention: 0d\n", "  retention: 99y\n  retention: 0d\n"
    )
    assert "retention: 99y" in text
    line = text.splitlines().index("  retention: 0d") + 1
    file = write(tmp_path / "store.yaml", text=text)
    status, out, err = run(capsys, "-f", str(tmp_path))
    assert status == 1, out
    assert out[0].startswith(f"{file}:{line}:3: cannot be read as YAML: "), out
    assert "99y" not in out[0] and "Traceback" not in err


@pytest.mark.parametrize("schedule", ["0 3 30 2 *", "0 3 31 apr,jun,sep,nov *", "30-10 3 * * *"])
def test_a_schedule_the_crd_admits_but_that_never_runs_is_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], schedule: str
) -> None:
    write(tmp_path / "policy.yaml", BASE_POLICY)
    store = patched("PersonalDataStore", put("/spec/purge/schedule", schedule))
    write(tmp_path / "store.yaml", store)
    status, out, _ = run(capsys, "-f", str(tmp_path))
    assert status == 1, out
    assert [line.split(": ")[2] for line in out] == ["spec.purge.schedule"], out


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"labels": {"version": 1.0}}, "metadata.labels.version"),  # unquoted: a number
        ({"labels": {"app": "v" * 64}}, "metadata.labels.app"),
        ({"labels": {"team": "a b"}}, "metadata.labels.team"),
        ({"labels": {"bad key!": "x"}}, "metadata.labels"),
        ({"annotations": {"a/b/c": "x"}}, "metadata.annotations"),
        ({"annotations": {"retries": 3}}, "metadata.annotations.retries"),
        ({"annotations": {"note": "z" * 262_145}}, "metadata.annotations"),
    ],
)
def test_labels_and_annotations_the_api_server_refuses_are_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], metadata: dict[str, Any], field: str
) -> None:
    """Check said "no problems" for metadata kubectl apply is refused for (a label value
    written as a number, longer than 63 characters, with a space; annotations over 256 KiB).
    The value is not repeated: an annotation can hold anything."""
    store = copy.deepcopy(BASE_STORE)
    store["metadata"].update(metadata)
    write(tmp_path / "policy.yaml", BASE_POLICY)
    write(tmp_path / "store.yaml", store)
    status, out, _ = run(capsys, "-f", str(tmp_path))
    assert status == 1, out
    assert [line.split(": ")[2] for line in out] == [field], out
    assert "vvvv" not in out[0] and "zzzz" not in out[0] and "a b" not in out[0]
