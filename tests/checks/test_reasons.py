"""The reason catalogue against the source: every reason the code writes is catalogued, and
every catalogued reason is still written. The source is read with `ast`, not run, so a new
`Condition(...)` anywhere in the package is found without a test to call it."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pytest

from dataward.checks import conditions, reasons
from dataward.checks.observed import LastPurge
from dataward.checks.purge import purge_succeeded
from dataward.cli import main
from dataward.controller import staleness
from dataward.purge.errors import ErrorCategory
from dataward.purge.plan import FAILING_STOPS, StopReason

PACKAGE = Path(reasons.__file__).resolve().parent.parent
REPO = PACKAGE.parent.parent
# Functions whose Condition(...) calls describe a PrivacyPolicy, not a store.
POLICY_FUNCTIONS = {"reconcile_policy", "_revision_condition"}
# Files whose Condition(...) calls describe a DataSubjectRequest.
REQUEST_FILES = {"checks/subjects.py", "controller/subjects.py"}
# Where a Condition's reason is computed, not a literal: (file, function) -> how the
# catalogue enumerates it. A new dynamic reason fails the test until it is listed here
# and enumerated below.
DYNAMIC_SITES = {
    ("checks/policy.py", "policy_compliant"): "the first compliance finding's reason",
    ("checks/purge.py", "purge_succeeded"): "Purge<result>, and lastPurge.reason of a failure",
}
Key = tuple[str, str, str, str]  # kind, type, status, reason


@dataclass(frozen=True)
class Site:
    """One Condition(...) call in the source."""

    file: str
    line: int
    function: str
    kind: str
    type: str
    status: str
    reason: str | None  # None: computed (a dynamic site)


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=rel)


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _called(call: ast.Call, name: str) -> bool:
    f = call.func
    return (isinstance(f, ast.Name) and f.id == name) or (
        isinstance(f, ast.Attribute) and f.attr == name
    )


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _arg(call: ast.Call, index: int, keyword: str) -> ast.AST | None:
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _type(node: ast.AST | None) -> str:
    literal = _literal(node)
    if literal is not None:
        return literal
    if isinstance(node, ast.Name) and isinstance(getattr(conditions, node.id, None), str):
        return str(getattr(conditions, node.id))
    raise AssertionError(f"condition type {ast.dump(node) if node else None} is not a constant")


def _fallback(node: ast.AST | None) -> str | None:
    """The literal fallback of `as_reason(text, "Fallback")`, else None."""
    if isinstance(node, ast.Call) and _called(node, "as_reason"):
        return _literal(_arg(node, 1, "fallback"))
    return None


def _assigned(function: ast.AST, name: str) -> list[ast.AST]:
    return [
        node.value
        for node in ast.walk(function)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    ]


def condition_sites() -> list[Site]:
    """Every Condition(...) call in the package, with its reason resolved where it can be.

    A reason is a literal; `as_reason(x, "Fallback")` gives its fallback as a literal too and
    counts as dynamic for `x`; a name assigned from such a call in the same function likewise.
    """
    sites: list[Site] = []
    for rel, tree in _sources():
        if rel == "checks/reasons.py":
            continue
        for function in _functions(tree):
            kind = reasons.POLICY_KIND if function.name in POLICY_FUNCTIONS else reasons.STORE_KIND
            if rel in REQUEST_FILES:
                kind = reasons.REQUEST_KIND
            for call in ast.walk(function):
                if not (isinstance(call, ast.Call) and _called(call, "Condition")):
                    continue
                if isinstance(call.func, ast.Attribute) and ast.unparse(call.func) == (
                    "threading.Condition"
                ):
                    continue  # a condition variable, not a status condition
                type_ = _type(_arg(call, 0, "type"))
                status = _literal(_arg(call, 1, "status"))
                assert status in ("True", "False", "Unknown"), f"{rel}:{call.lineno} status"
                node = _arg(call, 2, "reason")
                values: list[ast.AST | None] = [node]
                if isinstance(node, ast.Name):
                    values = list(_assigned(function, node.id)) or [None]
                for value in values:
                    literal = _literal(value) or _fallback(value)
                    site = Site(rel, call.lineno, function.name, kind, type_, status, literal)
                    sites.append(site)
                    if literal is not None and _fallback(value) is not None:
                        sites.append(
                            Site(rel, call.lineno, function.name, kind, type_, status, None)
                        )
    # A call nested in two functions' walks is found twice: keep one.
    return sorted(set(sites), key=lambda s: (s.file, s.line, s.reason or ""))


def finding_reasons() -> set[str]:
    """Every literal reason of a compliance `Finding(...)` anywhere in the package."""
    found: set[str] = set()
    for _, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called(node, "Finding"):
                literal = _literal(_arg(node, 0, "reason"))
                assert literal is not None, f"Finding at line {node.lineno} has no literal reason"
                found.add(literal)
    return found


PURGE_RECORD_FILES = ("purge/", "commands/purge.py", "checks/purge_runs.py")


def _strings(node: ast.AST) -> set[str]:
    """The string constants an expression can be (literals, both arms of `a if c else b`)."""
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    literal = _literal(node)
    return {literal} if literal is not None else set()


def _paired(reason: ast.AST, result: ast.AST | None) -> list[tuple[str, set[str]]]:
    """Each literal reason with the results written beside it.

    `"reason": "A" if c else "B"` next to `"result": "X" if c else "Y"` pairs A with X and B
    with Y (the same condition); otherwise every reason goes with every result.
    """
    if (
        isinstance(reason, ast.IfExp)
        and isinstance(result, ast.IfExp)
        and ast.dump(reason.test) == ast.dump(result.test)
    ):
        return _paired(reason.body, result.body) + _paired(reason.orelse, result.orelse)
    results = _strings(result) if result is not None else set()
    return [(r, results) for r in sorted(_strings(reason))]


def recorded_purge_reasons() -> dict[str, set[str]]:
    """lastPurge reasons the purge and the operator write, each with the results it comes with.

    Literal `reason=` keywords and `"reason":` dict entries in the purge and the operator's
    record of a Job; each `Gate(result, reason, ...)`; every ErrorCategory (a failure's
    reason) and StopReason (a stop's; those of FAILING_STOPS fail the run, the others succeed).
    """
    out: dict[str, set[str]] = {}

    def add(reason: str, *results: str) -> None:
        out.setdefault(reason, set()).update(results)

    for category in get_args(ErrorCategory):
        add(category, "Failed")
    for stop in get_args(StopReason):
        add(stop, "Failed" if stop in FAILING_STOPS else "Succeeded")
    for rel, tree in _sources():
        if not rel.startswith(PURGE_RECORD_FILES):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called(node, "Gate"):
                result, reason = (
                    _literal(_arg(node, 0, "result")),
                    _literal(_arg(node, 1, "reason")),
                )
                assert result and reason, f"{rel}:{node.lineno}: a Gate without literals"
                add(reason, result)
            if isinstance(node, ast.Call) and _called(node, "Stop"):
                reason = _literal(_arg(node, 0, "reason"))
                assert reason is None or reason in get_args(StopReason), f"{rel}:{node.lineno}"
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "reason":
                        result = next((k.value for k in node.keywords if k.arg == "result"), None)
                        for reason, results in _paired(keyword.value, result):
                            add(reason, *results)
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if key is not None and _literal(key) == "reason":
                        result = next(
                            (
                                v
                                for k, v in zip(node.keys, node.values, strict=True)
                                if k is not None and _literal(k) == "result"
                            ),
                            None,
                        )
                        for reason, results in _paired(value, result):
                            add(reason, *results)
    return out


def _pairs() -> list[tuple[str, str]]:
    """Every (result, reason) a lastPurge record can hold, per the catalogue."""
    return [(r, o.reason) for o in reasons.PURGE_OUTCOMES for r in o.results]


def purge_succeeded_keys() -> set[Key]:
    """PurgeSucceeded for every lastPurge the catalogue lists (and a successful plain run)."""
    records = [
        LastPurge(result=r, reason=reason, dry_run=reason == "DryRun") for r, reason in _pairs()
    ]
    records.append(LastPurge(result="Succeeded"))
    out = set()
    for record in records:
        c = purge_succeeded(record)
        out.add((reasons.STORE_KIND, c.type, c.status, c.reason))
    return out


def source_keys() -> set[Key]:
    """Every (kind, type, status, reason) the code can write, literal and enumerated."""
    sites = condition_sites()
    keys = {(s.kind, s.type, s.status, s.reason) for s in sites if s.reason is not None}
    keys |= {
        (reasons.STORE_KIND, conditions.POLICY_COMPLIANT, "False", r) for r in finding_reasons()
    }
    keys |= purge_succeeded_keys()
    # Any store condition last True, once the operator cannot check it (controller/staleness.py
    # writes them by JSON patch, not as Condition(...); so does controller/reconcile.py
    # `_unserve` once a store's namespace has left the shard).
    keys |= {
        (reasons.STORE_KIND, t, "Unknown", r)
        for t in conditions.CONDITION_TYPES
        for r in (*staleness.GATING_REASONS, conditions.NAMESPACE_NOT_SERVED)
    }
    # Any condition last True on an object whose status write the API server refused
    # (controller/refused.py, by JSON patch too): the store's, the policy's and the request's.
    of_kind = {
        reasons.STORE_KIND: conditions.CONDITION_TYPES,
        reasons.POLICY_KIND: (conditions.READY, reasons.REVISION_IN_FORCE),
        reasons.REQUEST_KIND: (conditions.COMPLETE, conditions.DEADLINE_MET),
    }
    keys |= {
        (kind, t, "Unknown", conditions.STATUS_REFUSED) for kind, types in of_kind.items()
        for t in types
    }
    return keys


def catalogue_keys() -> set[Key]:
    return {(e.kind, e.type, e.status, e.reason) for e in reasons.CATALOGUE}


def test_every_reason_the_code_writes_is_catalogued() -> None:
    missing = sorted(source_keys() - catalogue_keys())
    assert not missing, (
        "reasons written by the code but missing from operator/dataward/checks/reasons.py "
        f"(kind, type, status, reason): {missing}; add them, then regenerate docs/conditions.md"
    )


def test_every_catalogued_reason_is_still_written() -> None:
    stale = sorted(catalogue_keys() - source_keys())
    assert not stale, f"catalogued reasons no code writes any more: {stale}; remove them"


def test_every_computed_reason_is_at_a_site_the_catalogue_enumerates() -> None:
    dynamic = {(s.file, s.function) for s in condition_sites() if s.reason is None}
    assert dynamic == set(DYNAMIC_SITES), (
        f"Conditions with a computed reason at {sorted(dynamic - set(DYNAMIC_SITES))} are not "
        "enumerated; list every value they can take in reasons.py and here"
    )


def test_the_findings_table_is_exactly_the_findings_the_code_makes() -> None:
    # NotCompliant is policy_compliant's as_reason fallback, not a Finding.
    assert set(reasons.FINDINGS) == finding_reasons() | {"NotCompliant"}


def test_every_last_purge_reason_and_its_results_are_catalogued() -> None:
    recorded = recorded_purge_reasons()
    catalogued = {o.reason: set(o.results) for o in reasons.PURGE_OUTCOMES}
    assert set(catalogued) == set(recorded), (
        f"missing: {sorted(set(recorded) - set(catalogued))}; "
        f"stale: {sorted(set(catalogued) - set(recorded))}"
    )
    for reason, results in recorded.items():
        assert results <= catalogued[reason], f"{reason}: results {results} not all catalogued"


def test_the_scanner_finds_the_reasons_named_in_the_issue() -> None:
    """A guard on the scanner itself: it must see literals in both checks and controller."""
    keys = source_keys()
    for type_, reason in [
        ("EncryptionKeyReady", "KeyRingNotCreatedByOperator"),
        ("AccessRestricted", "OtherBindingGrantsSecrets"),
        ("PurgeSucceeded", "PurgeRunStuck"),
        ("PurgeSucceeded", "PurgeRunMissed"),
        ("PurgeScheduled", "CredentialsSecretMissing"),
        ("NetworkIsolated", "NetworkPoliciesUnreadable"),
        ("AccessRestricted", "StoresUnreadable"),
        ("PolicyCompliant", "PolicyUnreadable"),
        ("PurgeSucceeded", "PurgeHeld"),
        ("PurgeSucceeded", "ClockSkew"),
        ("PurgeSucceeded", "PurgeFailed"),
        ("PolicyCompliant", "NotCompliant"),
    ]:
        assert any(k[1] == type_ and k[3] == reason for k in keys), (type_, reason)
    assert (reasons.POLICY_KIND, "Ready", "False", "InvalidPolicy") in keys


def test_catalogue_entries_are_unique_and_complete_sentences() -> None:
    keys = [(e.kind, e.type, e.reason) for e in reasons.CATALOGUE]
    assert len(keys) == len(set(keys))
    for entry in reasons.CATALOGUE:
        conditions.Condition(entry.type, entry.status, entry.reason, "x")  # a valid reason
        for text in (entry.meaning, entry.action):
            assert text[:1].isupper() or text.startswith(("spec.", "`")), (entry.reason, text)
            assert text.rstrip().endswith((".", ")", "`")), (entry.reason, text)


def test_docs_conditions_md_is_the_generated_reference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["reference", "conditions"]) == 0
    committed = (REPO / reasons.DOCS_PATH).read_text(encoding="utf-8")
    assert committed == capsys.readouterr().out, (
        "docs/conditions.md is out of date: run "
        "`PYTHONPATH=operator python3 -m dataward reference conditions > docs/conditions.md`"
    )


def test_the_reference_names_every_reason() -> None:
    text = reasons.render_markdown()
    for name in reasons.all_reasons():
        assert f"`{name}`" in text


@pytest.mark.parametrize("name", ["KeyRingNotCreatedByOperator", "keyringnotcreatedbyoperator"])
def test_explain_finds_a_reason_case_insensitively(name: str) -> None:
    text = reasons.explain(name)
    assert text is not None
    assert "EncryptionKeyReady=False" in text
    assert "adoptExistingKeyRing" in text


def test_explain_of_a_last_purge_reason_and_of_an_unknown_one() -> None:
    held = reasons.explain("LargePurgeNotAcknowledged")
    assert held is not None and "status.lastPurge.reason" in held and "acknowledge" in held
    assert reasons.explain("NoSuchReason") is None
    assert "PurgeRunStuck" in reasons.close_matches("PurgeRunStuk")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^a-z0-9 -]", "", text).replace(" ", "-")


def test_the_readme_troubleshooting_names_catalogued_reasons_and_real_anchors() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Troubleshooting")
    section = readme[start : readme.index("\n## ", start + 1)]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    names = {name for row in rows for name in re.findall(r"`([A-Z][A-Za-z]+)`", row)}
    assert names, "the Troubleshooting section names no reason"
    known = set(reasons.all_reasons()) | set(conditions.CONDITION_TYPES)
    assert names <= known, f"not catalogued: {sorted(names - known)}"
    anchors = {_anchor(line) for line in reasons.render_markdown().splitlines() if line[:1] == "#"}
    linked = set(re.findall(r"docs/conditions\.md#([a-z0-9-]+)", readme))
    assert linked and linked <= anchors, f"no such heading: {sorted(linked - anchors)}"
