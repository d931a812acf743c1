"""`dataward check`: validate PrivacyPolicies and PersonalDataStores offline, for GitOps CI.

Every YAML document in the inputs (directories are searched recursively for *.yaml, *.yml and
*.json) whose apiVersion is dataward.io/... is checked against the CRD schemas and their CEL
rules, exactly as the API server would at admission, and then every store against its policy
(category exists, retention within the category's, archive as the law requires). Objects of
other kinds (Namespace, Secret, ...) are ignored.

Each problem is one line, `FILE: KIND NAMESPACE/NAME: FIELD: what to change`, and the exit
status is 1 if there is any. A store whose policy is not among the inputs is noted on stderr,
and is a problem only with --require-policies. Exit status 2: an input does not exist.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from dataward.model.compliance import compliance_findings, unknown_category
from dataward.model.errors import ModelError
from dataward.model.fields import closest_name
from dataward.model.policy import Policy, parse_policy
from dataward.model.store import parse_store
from dataward.redact import load_all, unreadable, yaml_problem
from dataward.subjects.request import parse_request
from dataward.validation import GROUP, apply_defaults, validate_object

SUFFIXES = (".yaml", ".yml", ".json")
POLICY_KIND = "PrivacyPolicy"
STORE_KIND = "PersonalDataStore"
REQUEST_KIND = "DataSubjectRequest"


@dataclass(frozen=True)
class Document:
    """One Dataward object read from a file."""

    file: str
    obj: Mapping[str, Any]

    @property
    def kind(self) -> str:
        """The object's kind, as written."""
        return str(self.obj.get("kind") or "?")

    @property
    def name(self) -> str:
        """`NAMESPACE/NAME`, or `NAME` when the object names no namespace."""
        metadata = self.obj.get("metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        name = str(metadata.get("name") or "<no name>")
        namespace = metadata.get("namespace")
        return f"{namespace}/{name}" if namespace else name

    def line(self, field: str, message: str) -> str:
        """A problem with this object, as `dataward check` prints it."""
        return f"{self.file}: {self.kind} {self.name}: {field}: {message}"


@dataclass(frozen=True)
class Report:
    """What `dataward check` found: problems (exit 1), notes (informational), what it read."""

    problems: tuple[str, ...]
    notes: tuple[str, ...]
    files: int
    objects: int


def register(subparsers: Any) -> None:
    """Add `check` to the command line."""
    parser = subparsers.add_parser(
        "check",
        help="validate policies and stores offline, as admission and the operator would",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="DIR|FILE",
        help="a YAML file, or a directory searched recursively; repeat for more",
    )
    parser.add_argument(
        "--require-policies",
        action="store_true",
        help="report a store whose PrivacyPolicy is not among the inputs as a problem",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check every input; print one line per problem; 0 clean, 1 problems, 2 missing input."""
    missing = [name for name in args.filename if not Path(name).exists()]
    if missing:
        for name in missing:
            print(f"dataward check: {name}: no such file or directory", file=sys.stderr)
        return 2
    report = check_paths(
        [Path(name) for name in args.filename], require_policies=args.require_policies
    )
    return write_report(report, sys.stdout, sys.stderr)


def write_report(report: Report, out: TextIO, err: TextIO) -> int:
    """Print the report; return the exit status."""
    for note in report.notes:
        print(note, file=err)
    for problem in report.problems:
        print(problem, file=out)
    objects = f"{report.objects} object{'s' if report.objects != 1 else ''}"
    files = f"{report.files} file{'s' if report.files != 1 else ''}"
    if report.problems:
        count = len(report.problems)
        print(
            f"dataward check: {count} problem{'s' if count != 1 else ''} in {objects} ({files})",
            file=err,
        )
        return 1
    print(f"dataward check: {objects} in {files}: no problems")
    return 0


def check_paths(paths: Sequence[Path], *, require_policies: bool = False) -> Report:
    """Check the Dataward objects in `paths` (files, or directories searched recursively)."""
    files, documents, problems = read_paths(paths)
    found, notes = check_documents(documents, require_policies=require_policies)
    return Report(tuple(problems + found), tuple(notes), len(files), len(documents))


def read_paths(paths: Sequence[Path]) -> tuple[list[Path], list[Document], list[str]]:
    """The files under `paths`, the Dataward objects in them, and the files that are not YAML."""
    files = list(dict.fromkeys(file for path in paths for file in _files(path)))
    problems: list[str] = []
    documents: list[Document] = []
    for file in files:
        try:
            documents += list(_documents(file))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            if isinstance(error, yaml.YAMLError):
                problems.append(yaml_problem(file, error))
            else:
                problems.append(f"{file}: cannot be read: {unreadable(error)}")
    return files, documents, problems


def check_documents(
    documents: Sequence[Document], *, require_policies: bool = False
) -> tuple[list[str], list[str]]:
    """The problems and the notes about `documents`, in input order."""
    problems: list[str] = []
    invalid: set[int] = set()  # documents with schema errors, by id()
    seen: dict[tuple[str, str], Document] = {}
    for document in documents:
        errors = validate_object(document.obj)
        problems += [document.line(e.path, e.message) for e in errors]
        key = (document.kind, document.name)
        if key in seen:
            problems.append(
                document.line(
                    "metadata.name",
                    f"also defined in {seen[key].file}: give one of them another name",
                )
            )
        seen.setdefault(key, document)
        if errors:
            invalid.add(id(document))

    policies: dict[str, Policy] = {}
    for document in documents:
        if document.kind == POLICY_KIND and id(document) not in invalid:
            try:
                parsed = parse_policy(apply_defaults(document.obj, POLICY_KIND))
            except ModelError as error:
                problems.append(document.line(error.path, error.message))
                continue
            policies.setdefault(parsed.name, parsed)

    for document in documents:
        if document.kind == REQUEST_KIND and id(document) not in invalid:
            try:
                parse_request(apply_defaults(document.obj, REQUEST_KIND))
            except ModelError as error:
                problems.append(document.line(error.path, error.message))

    notes: list[str] = []
    for document in documents:
        if document.kind != STORE_KIND:
            continue
        try:
            store = parse_store(apply_defaults(document.obj, STORE_KIND))
        except ModelError as error:
            if id(document) not in invalid:  # else its schema errors already say it
                problems.append(document.line(error.path, error.message))
            problems += _category_problems(document, policies)
            continue
        policy = policies.get(store.policy)
        if policy is None and not require_policies:
            notes.append(
                document.line(
                    "spec.policy",
                    f"note: PrivacyPolicy {store.policy!r} is not among the inputs, so the "
                    "store was not checked against it (add its file with -f, or pass "
                    "--require-policies to make this a problem)",
                )
            )
            continue
        if policy is None:
            hint = closest_name(store.policy, list(policies))
            meant = f'did you mean "{hint}"? Or ' if hint else ""
            problems.append(
                document.line(
                    "spec.policy",
                    f"PrivacyPolicy {store.policy!r} is not among the inputs: {meant}add the "
                    "file that defines it with -f, or set spec.policy to a policy that is",
                )
            )
            continue
        problems += [
            document.line(finding.field, finding.message)
            for finding in compliance_findings(store, policy)
        ]
    return problems, notes


def _category_problems(document: Document, policies: Mapping[str, Policy]) -> list[str]:
    """A schema-invalid store's category, judged anyway: every problem is reported at once."""
    spec = document.obj.get("spec")
    if not isinstance(spec, Mapping):
        return []
    policy = policies.get(str(spec.get("policy")))
    category = spec.get("category")
    if policy is None or not isinstance(category, str) or policy.category(category):
        return []
    finding = unknown_category(category, policy)
    return [document.line(finding.field, finding.message)]


def _files(path: Path) -> Iterator[Path]:
    """`path` itself, or the YAML/JSON files under it in a stable order.

    Hidden names under `path` are skipped: a mounted ConfigMap holds each file twice, once
    behind `..data/` (and `.git/` is no input either).
    """
    if path.is_dir():
        yield from sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    else:
        yield path


def _documents(file: Path) -> Iterator[Document]:
    """The Dataward objects in a file (also inside `kind: List`); others are skipped."""
    text = file.read_text(encoding="utf-8")
    for doc in load_all(text):
        for obj in _items(doc):
            api_version = str(obj.get("apiVersion") or "")
            if api_version.split("/", 1)[0] == GROUP:
                yield Document(str(file), obj)


def _items(doc: Any) -> Iterator[Mapping[str, Any]]:
    if not isinstance(doc, Mapping):
        return
    if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from _items(item)
    else:
        yield doc
