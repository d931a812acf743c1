"""The chart's Grafana dashboard and Prometheus alerts, checked offline.

promtool (pinned in e2e/build-tools.sh) checks the rendered rules and runs the unit tests
of alerts.test.yaml against them; the dashboard's queries are checked the same way, as
recording rules. Every metric an alert or a panel names must be one the operator exports
(operator/dataward/controller/metrics.py).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from dataward.controller import metrics
from e2e.tools import tool
from tests.chart.test_chart import (
    CHART,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    helm,
    of_kind,
    render,
)

HERE = Path(__file__).resolve().parent
ALERT_TESTS = HERE / "alerts.test.yaml"
METRIC_NAME = re.compile(r"\bdataward_[a-z_]+\b")
DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")
# prometheus-operator's Rule: https://prometheus-operator.dev/docs/api-reference/api/#monitoring.coreos.com/v1.Rule
RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}


def exported_metric_names() -> set[str]:
    """The series names the operator's metrics produce (a counter's _total, a histogram's
    _bucket, _sum and _count)."""
    names = {name for name, _, _ in metrics.STORE_FAMILIES}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase | metrics.CacheHealth | metrics.EvidenceHealth):
            continue
        for family in value.describe():
            if family.type == "counter":
                names.add(f"{family.name}_total")
            elif family.type == "histogram":
                names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(family.name)
    return names


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the pinned promtool; fail, never skip, when it is missing."""
    try:
        binary = tool("promtool")
    except RuntimeError as error:
        pytest.fail(f"promtool is missing: run `make tools` ({error})")
    return subprocess.run([str(binary), *args], capture_output=True, text=True, check=False,
                          timeout=120, cwd=cwd)


def rendered_rule(*values: str) -> dict[str, Any]:
    (rule,) = of_kind(render("prometheusRule.enabled=true", *values), "PrometheusRule")
    return rule


def alerts(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]


def dashboard() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads((CHART / "dashboards" / "dataward.json").read_text())
    return parsed


def dashboard_queries() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


# -- off by default -------------------------------------------------------------------------


def test_dashboard_and_alerts_are_off_by_default() -> None:
    docs = render()
    assert not of_kind(docs, "PrometheusRule")
    assert not [d for d in of_kind(docs, "ConfigMap")
                if (d["metadata"].get("labels") or {}).get("grafana_dashboard")]


# -- alerts ---------------------------------------------------------------------------------


def test_the_rule_is_a_prometheus_operator_rule_in_the_release_namespace() -> None:
    """Structure, since kubeconform has no schema for the PrometheusRule CRD offline."""
    rule = rendered_rule("prometheusRule.labels.release=kube-prometheus-stack")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == NAMESPACE
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert set(rule) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(rule["spec"]) == {"groups"}
    for group in rule["spec"]["groups"]:
        assert set(group) == {"name", "rules"} and isinstance(group["name"], str)
        for item in group["rules"]:
            assert set(item) <= RULE_KEYS, item
            assert re.fullmatch(r"Dataward[A-Z][A-Za-z]+", item["alert"]), item["alert"]
            assert isinstance(item["expr"], str) and item["expr"].strip()
            assert DURATION.match(item["for"]), item
            assert item["labels"]["severity"] in {"warning", "critical"}, item
            assert all(isinstance(v, str) for v in item["labels"].values()), item
            assert set(item["annotations"]) == {"summary", "description"}, item


def test_the_alerts_cover_what_an_operator_of_dataward_must_know() -> None:
    names = {a["alert"] for a in alerts(rendered_rule())}
    assert names == {
        "DatawardStoreNotReady", "DatawardPurgeFailed", "DatawardPurgeNotScheduled",
        "DatawardExpiredRowsRemaining", "DatawardExpiredDataTooOld",
        "DatawardKeyNearRotationLimit", "DatawardForeignAccess", "DatawardOperatorNotLeading",
        "DatawardStoresUnchecked", "DatawardEvidenceNotRecorded",
    }


def test_every_alert_names_metrics_the_operator_exports() -> None:
    exported = exported_metric_names()
    for alert in alerts(rendered_rule()):
        named = set(METRIC_NAME.findall(alert["expr"]))
        assert named, alert
        assert named <= exported, f"{alert['alert']}: {named - exported} not in metrics.py"


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rendered_rule()["spec"]["groups"]}))
    result = promtool("check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout, result.stdout


def test_each_alert_fires_on_the_metric_it_names(tmp_path: Path) -> None:
    """promtool test rules: every alert has a case where it fires, fed the metric its
    expression names, and the per-store alerts ignore a replica that lost the Lease."""
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"groups": rendered_rule()["spec"]["groups"]}))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    result = promtool("test", "rules", ALERT_TESTS.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # No alert without a case that makes it fire, on series of the metric it names.
    cases = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    for alert in alerts(rendered_rule()):
        metric_names = set(METRIC_NAME.findall(alert["expr"])) - {"dataward_leader"} or {
            "dataward_leader"}
        firing = [case for case in cases for check in case["alert_rule_test"]
                  if check["alertname"] == alert["alert"] and check["exp_alerts"]]
        assert firing, f"no promtool case in which {alert['alert']} fires"
        fed = {series["series"].split("{")[0] for case in firing
               for series in case["input_series"]}
        assert metric_names & fed, f"{alert['alert']} never fires on {metric_names}"


def test_the_bounds_are_values(tmp_path: Path) -> None:
    rule = rendered_rule("prometheusRule.expiredRowsRemaining=1000",
                         "prometheusRule.oldestExpiredAgeSeconds=3600",
                         "prometheusRule.keyAgeSeconds=2000000",
                         "prometheusRule.notReadyFor=30m",
                         "prometheusRule.additionalLabels.team=platform")
    by_name = {a["alert"]: a for a in alerts(rule)}
    assert "dataward_purge_expired_rows_remaining > 1000" in \
        by_name["DatawardExpiredRowsRemaining"]["expr"]
    assert "> 3600" in by_name["DatawardExpiredDataTooOld"]["expr"]
    assert "> 2000000" in by_name["DatawardKeyNearRotationLimit"]["expr"]
    assert by_name["DatawardStoreNotReady"]["for"] == "30m"
    assert all(a["labels"]["team"] == "platform" for a in by_name.values())


def test_the_values_schema_refuses_a_bad_bound() -> None:
    result = helm("template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION,
                  "--set", "prometheusRule.notReadyFor=soon", check=False)
    assert result.returncode != 0
    assert "notReadyFor" in result.stderr


# -- dashboard ------------------------------------------------------------------------------


def test_the_dashboard_ships_in_a_configmap_for_the_grafana_sidecar() -> None:
    (config_map,) = of_kind(render("grafanaDashboard.enabled=true"), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == NAMESPACE
    assert json.loads(config_map["data"]["dataward.json"]) == dashboard()
    (elsewhere,) = of_kind(render("grafanaDashboard.enabled=true",
                                  "grafanaDashboard.namespace=monitoring"), "ConfigMap")
    assert elsewhere["metadata"]["namespace"] == "monitoring"


def test_the_dashboard_parses_and_every_panel_queries_an_exported_metric() -> None:
    board = dashboard()
    assert board["uid"] == "dataward-operator" and board["title"] == "Dataward"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    exported = exported_metric_names()
    shown: set[str] = set()
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            named = set(METRIC_NAME.findall(target["expr"]))
            assert named, f"{panel['title']}: {target['expr']}"
            assert named <= exported, f"{panel['title']}: {named - exported} not in metrics.py"
            shown |= named
    # Every metric the operator exports is on the dashboard somewhere.
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in exported}
    assert families <= {re.sub(r"_(bucket|sum|count)$", "", n) for n in shown}


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """The queries as recording rules ($__rate_interval, Grafana's, as a fixed range)."""
    rules = [{"record": f"dataward:dashboard_query_{i}:check",
              "expr": expr.replace("$__rate_interval", "5m")}
             for i, expr in enumerate(dashboard_queries())]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_monitoring_options_render_for_the_oldest_supported_kubernetes() -> None:
    result = helm("template", RELEASE, str(CHART), "--kube-version", "1.30.0",
                  "--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true",
                  "--set", "metrics.serviceMonitor.enabled=true", check=False)
    assert result.returncode == 0, result.stderr
