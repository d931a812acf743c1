"""GitOps: the Argo CD health check (Lua 5.1, as Argo CD's gopher-lua) and the PR check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HEALTH_LUA = REPO / "charts" / "dataward" / "argocd" / "health.lua"
PR_CHECK = REPO / "examples" / "gitops" / "pr-check.sh"


def argocd_health(obj: dict[str, Any]) -> dict[str, str]:
    """Run health.lua as Argo CD does: `obj` is the resource, the chunk returns a table."""
    try:
        from lupa import lua51
    except ImportError:
        pytest.fail("lupa is missing: run `make python-deps` (pip install -e '.[test]')")
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    to_lua = runtime.eval("function(f) return f end")

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return runtime.table_from({k: convert(v) for k, v in value.items()})
        if isinstance(value, list):
            return runtime.table_from([convert(v) for v in value])
        return value

    runtime.globals()["obj"] = to_lua(convert(obj))
    result = runtime.execute(HEALTH_LUA.read_text())
    return {"status": str(result["status"]), "message": str(result["message"] or "")}


def store(generation: int = 2, status: dict[str, Any] | None = None) -> dict[str, Any]:
    """A PersonalDataStore as the API serves it (examples/stores/support-inquiries.yaml)."""
    body: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "stores" / "support-inquiries.yaml").read_text())
    body["metadata"]["generation"] = generation
    if status is not None:
        body["status"] = status
    return body


def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 2}


ALL_TRUE = [condition(t, "True", "InForce", f"{t} holds.") for t in (
    "PolicyCompliant", "NetworkIsolated", "EncryptionKeyReady", "AccessRestricted",
    "PurgeScheduled", "PurgeSucceeded")]


def test_a_store_whose_controls_are_all_in_force_is_healthy() -> None:
    status = {"observedGeneration": 2, "conditions": [
        *ALL_TRUE, condition("Ready", "True", "AllControlsInForce", "Every control is in force.")]}
    assert argocd_health(store(status=status)) == {
        "status": "Healthy", "message": "Every control is in force."}


def test_a_store_that_breaks_its_policy_is_degraded_and_says_why() -> None:
    conditions = [condition("PolicyCompliant", "False", "RetentionTooLong",
                            "spec.retention 2y is longer than the 1y that category allows."),
                  *ALL_TRUE[1:],
                  condition("Ready", "False", "ControlsNotInForce", "PolicyCompliant is False.")]
    health = argocd_health(store(status={"observedGeneration": 2, "conditions": conditions}))
    assert health["status"] == "Degraded"
    assert health["message"].startswith("PolicyCompliant: spec.retention 2y")


def test_a_store_the_operator_has_not_seen_yet_is_progressing() -> None:
    assert argocd_health(store())["status"] == "Progressing"
    assert argocd_health(store(status={}))["status"] == "Progressing"
    stale = {"observedGeneration": 1, "conditions": [
        *ALL_TRUE, condition("Ready", "True", "AllControlsInForce", "ok")]}
    health = argocd_health(store(generation=2, status=stale))
    assert health == {"status": "Progressing",
                      "message": "Waiting for the Dataward operator to observe generation 2"}


def test_a_store_whose_readiness_is_unknown_is_progressing() -> None:
    conditions = [*ALL_TRUE[:2],
                  condition("EncryptionKeyReady", "Unknown", "KeyRingUnreadable", "HTTP 500."),
                  condition("Ready", "Unknown", "ControlsUnknown", "Not known yet.")]
    health = argocd_health(store(status={"observedGeneration": 2, "conditions": conditions}))
    assert health["status"] == "Progressing"


def _gitops_repo(root: Path, retention: str, schedule: str, category: str) -> Path:
    (root / "policies").mkdir(parents=True)
    (root / "stores" / "crm").mkdir(parents=True)
    shutil.copy(REPO / "examples" / "policy.yaml", root / "policies" / "policy.yaml")
    text = (REPO / "examples" / "stores" / "support-inquiries.yaml").read_text()
    text = (text.replace("retention: 180d", f"retention: {retention}")
            .replace('schedule: "17 3 * * *"', f'schedule: "{schedule}"')
            .replace("category: technical-support-inquiry", f"category: {category}"))
    (root / "stores" / "crm" / "support-inquiries.yaml").write_text(text)
    return root


def _pr_check(base: Path, head: Path, report: Path) -> int:
    assert shutil.which("dataward"), "the dataward command is not installed: make python-deps"
    result = subprocess.run(["bash", str(PR_CHECK), str(base), str(head), str(report)],
                            capture_output=True, text=True, timeout=120)
    return result.returncode


def test_a_pull_request_shows_what_the_operator_will_change(tmp_path: Path) -> None:
    base = _gitops_repo(tmp_path / "base", "180d", "17 3 * * *", "technical-support-inquiry")
    head = _gitops_repo(tmp_path / "head", "90d", "30 2 * * *", "technical-support-inquiry")
    report = tmp_path / "summary.md"
    assert _pr_check(base, head, report) == 0
    text = report.read_text()
    assert "no problems" in text
    assert "-  schedule: 17 3 * * *" in text and "+  schedule: 30 2 * * *" in text


def test_a_pull_request_with_a_store_outside_its_policy_fails(tmp_path: Path) -> None:
    base = _gitops_repo(tmp_path / "base", "180d", "17 3 * * *", "technical-support-inquiry")
    head = _gitops_repo(tmp_path / "head", "180d", "17 3 * * *", "no-such-category")
    report = tmp_path / "summary.md"
    assert _pr_check(base, head, report) == 1
    text = report.read_text()
    assert "no-such-category" in text and "Not rendered" in text


def test_the_ci_workflow_runs_the_check_from_the_target_branch() -> None:
    workflow = yaml.safe_load((REPO / "examples" / "gitops" / "github-actions-pr.yaml").read_text())
    steps = workflow["jobs"]["check-and-preview"]["steps"]
    runs = [step.get("run", "") for step in steps]
    assert any("base/ci/pr-check.sh base head" in run for run in runs)
    assert workflow["permissions"] == {"contents": "read"}
