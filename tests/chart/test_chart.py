"""The Helm chart, without a cluster: lint, render, and read what it would install.

kubeconform needs the built-in kinds' schemas, which come from a real API server: that part
is in e2e/test_chart.py.
"""

from __future__ import annotations

import filecmp
import functools
import hashlib
import json
import operator
import re
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from dataward.checks.observed import TrustedSubjects
from dataward.model.durations import _month_span_bounds
from dataward.render.names import names_for
from dataward.report.build import previous_quarter
from e2e.tools import tool

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "dataward"
RELEASE, NAMESPACE = "dataward", "dataward-system"
KUBE_VERSION = "1.37.2"  # the control plane e2e runs; the pinned helm assumes 1.37 too

FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "*"}

# What the operator calls (operator/dataward/controller/): keep in step with the code.
# (API group, resource) -> verbs, granted by the ClusterRole bound where stores live.
NAMESPACED_RULES: dict[tuple[str, str], set[str]] = {
    ("dataward.io", "personaldatastores"): {"get", "list", "watch", "patch"},
    # override: the status guard (admissionPolicies.statusGuard) admits status writes with it.
    ("dataward.io", "personaldatastores/status"): {"patch", "override"},
    ("dataward.io", "personaldatastores/finalizers"): {"update"},
    ("networking.k8s.io", "networkpolicies"): {
        "get", "list", "watch", "create", "update", "patch"},
    # Watched into the operator's cache where the API serves them (NetworkIsolated).
    ("cilium.io", "ciliumnetworkpolicies"): {"list", "watch"},
    ("crd.projectcalico.org", "networkpolicies"): {"list", "watch"},
    ("dataward.io", "datasubjectrequests"): {"get", "list", "watch", "patch"},
    ("dataward.io", "datasubjectrequests/status"): {"patch", "override"},
    ("dataward.io", "datasubjectrequests/finalizers"): {"update"},
    ("rbac.authorization.k8s.io", "roles"): {
        "get", "list", "watch", "create", "update", "patch", "delete"},
    ("rbac.authorization.k8s.io", "rolebindings"): {
        "get", "list", "watch", "create", "update", "patch", "delete"},
    ("", "serviceaccounts"): {"get", "list", "watch", "create", "update", "patch"},
    ("batch", "cronjobs"): {"get", "list", "watch", "create", "update", "patch"},
    ("batch", "jobs"): {"list", "watch", "create", "delete"},  # requests' and previews' Jobs
    ("", "pods"): {"list", "watch"},
    # list/watch: watchSecrets (default on): rings by label, every other Secret metadata only.
    ("", "secrets"): {"get", "create", "update", "patch", "list", "watch"},
    ("events.k8s.io", "events"): {"create"},
}
# Cluster-scoped kinds, always bound cluster-wide.
CLUSTER_RULES: dict[tuple[str, str], set[str]] = {
    ("dataward.io", "privacypolicies"): {"get", "list", "watch"},
    ("dataward.io", "privacypolicies/status"): {"patch", "override"},
    ("rbac.authorization.k8s.io", "clusterroles"): {"list", "watch"},
    ("rbac.authorization.k8s.io", "clusterrolebindings"): {"list", "watch"},
    # Watched into the operator's cache where the API serves them (NetworkIsolated).
    ("policy.networking.k8s.io", "adminnetworkpolicies"): {"list", "watch"},
    ("cilium.io", "ciliumclusterwidenetworkpolicies"): {"list", "watch"},
    ("crd.projectcalico.org", "globalnetworkpolicies"): {"list", "watch"},
    # The namespaces it serves, cached (controller.operator.cached_kinds): all of them, or a
    # shard's; not granted with watchNamespaces, whose operator caches none.
    ("", "namespaces"): {"list", "watch"},
}
LEADER_ELECTION_RULES: dict[tuple[str, str], set[str]] = {
    ("coordination.k8s.io", "leases"): {"get", "create", "update"},
}


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the pinned helm."""
    try:
        binary = tool("helm")
    except RuntimeError as error:
        pytest.fail(f"helm is missing: run `make tools` ({error})")
    return subprocess.run([str(binary), *args], capture_output=True, text=True, check=check,
                          timeout=120)


def render(*values: str) -> list[dict[str, Any]]:
    """`helm template` with `--set` values, as parsed documents."""
    sets = [arg for value in values for arg in ("--set", value)]
    out = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE,
               "--kube-version", KUBE_VERSION, *sets).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def of_kind(docs: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The documents of one kind."""
    return [doc for doc in docs if doc["kind"] == kind]


def rules_table(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """A Role's rules as (group, resource) -> verbs."""
    table: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                table.setdefault((group, resource), set()).update(rule["verbs"])
    return table


def role_named(docs: Sequence[dict[str, Any]], suffix: str) -> dict[str, Any]:
    """The ClusterRole or Role whose name ends with `-suffix`."""
    found = [d for d in docs if d["kind"] in ("ClusterRole", "Role")
             and d["metadata"]["name"].endswith(f"-{suffix}")]
    assert len(found) == 1, f"expected one role *-{suffix}, found {found}"
    return found[0]


# -- the chart as a package ---------------------------------------------------------------


def test_the_chart_lints_clean() -> None:
    result = helm("lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_helm_template_works_out_of_the_box() -> None:
    """No --kube-version: the pinned helm assumes the Kubernetes of its client-go (1.37, set
    by e2e/build-tools.sh as helm's own release build does), not v1.20."""
    result = helm("template", "dataward", str(CHART), check=False)
    assert result.returncode == 0, result.stderr
    assert "kind: Deployment" in result.stdout
    lint = helm("lint", str(CHART), "--strict", check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("version", ["1.30.0", "1.37.2"])
def test_every_supported_kubernetes_version_renders(version: str) -> None:
    result = helm("template", RELEASE, str(CHART), "--kube-version", version, check=False)
    assert result.returncode == 0, result.stderr


def test_an_older_kubernetes_is_refused_with_the_version_required() -> None:
    result = helm("template", RELEASE, str(CHART), "--kube-version", "1.29.9", check=False)
    assert result.returncode != 0
    assert "requires kubeVersion: >=1.30.0-0" in result.stderr, result.stderr


def test_the_charts_crds_are_the_repositorys_crds_byte_for_byte() -> None:
    top, chart = REPO / "crds", CHART / "crds"
    names = sorted(p.name for p in top.glob("*.yaml"))
    assert names == sorted(p.name for p in chart.glob("*.yaml"))
    mismatch = [n for n in names if not filecmp.cmp(top / n, chart / n, shallow=False)]
    assert not mismatch, f"charts/dataward/crds differs from crds/: {mismatch}; copy crds/ over"


def test_each_crd_carries_the_digest_of_its_spec() -> None:
    """templates/crds-check.yaml refuses an install or upgrade over a CRD whose annotation
    differs from the chart's: that only works while the annotation is the spec's digest. The
    digest is sha256 over the spec as JSON, keys sorted, no spaces."""
    for path in sorted((REPO / "crds").glob("*.yaml")):
        (crd,) = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        canonical = json.dumps(crd["spec"], sort_keys=True, separators=(",", ":"))
        digest = f"sha256:{hashlib.sha256(canonical.encode()).hexdigest()}"
        found = (crd["metadata"].get("annotations") or {}).get("dataward.io/schema-digest")
        assert found == digest, (
            f"{path.name}: set metadata.annotations dataward.io/schema-digest to \"{digest}\" "
            "(crds/ and charts/dataward/crds/)")


def test_without_a_cluster_the_crd_check_renders_nothing() -> None:
    """`helm template` (GitOps tools, `make run`) has no cluster to compare with."""
    out = helm("template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION,
               "--show-only", "templates/crds-check.yaml", check=False)
    assert "could not find template" in out.stderr or not out.stdout.strip(), out


def test_a_misspelt_value_is_refused_not_ignored() -> None:
    result = helm("template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION,
                  "--set", "replicas=2", check=False)
    assert result.returncode != 0
    assert "replicas" in result.stderr


def test_every_value_is_documented_in_values_yaml() -> None:
    """Each leaf value has a comment above it, or sits in a block documented as a whole."""
    lines = [line for line in (CHART / "values.yaml").read_text().splitlines() if line.strip()]
    keys = [(i, len(line) - len(line.lstrip()), line.strip()) for i, line in enumerate(lines)
            if re.match(r"^\s*[A-Za-z][A-Za-z0-9]*:", line)]
    ancestors: list[tuple[int, bool]] = []  # (indent, documented)
    undocumented = []
    for position, (index, indent, text) in enumerate(keys):
        while ancestors and ancestors[-1][0] >= indent:
            ancestors.pop()
        documented = index > 0 and lines[index - 1].strip().startswith("#")
        nested = position + 1 < len(keys) and keys[position + 1][1] > indent
        is_leaf = not (nested and text.endswith(":"))
        if is_leaf and not documented and not any(doc for _, doc in ancestors):
            undocumented.append(text)
        ancestors.append((indent, documented))
    assert not undocumented, f"values without a comment in values.yaml: {undocumented}"


# -- the operator's Deployment ------------------------------------------------------------


def test_the_operator_runs_restricted_with_a_read_only_root() -> None:
    (deployment,) = of_kind(render(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["port"] == "http-metrics"
    # Not ready while no store's verdict is checked (controller/staleness.py); alive anyway.
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"


def test_the_operator_is_told_its_lease_identity_image_and_time_zone() -> None:
    (deployment,) = of_kind(render("image.tag=9.9.9", "timeZone=Europe/Berlin",
                                   "staleVerdictGraceSeconds=120"), "Deployment")  # fmt: skip
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[0] == "run"

    def arg(flag: str) -> str:
        return str(args[args.index(flag) + 1])

    assert arg("--lease-namespace") == NAMESPACE
    assert arg("--operator-service-account") == f"{NAMESPACE}/{RELEASE}"
    assert arg("--image") == container["image"] == "ghcr.io/dataward/dataward:9.9.9"
    assert arg("--time-zone") == "Europe/Berlin"
    assert arg("--stale-grace-seconds") == "120"
    assert "--namespace" not in args
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def _trusted_subject_args(*options: str) -> list[str]:
    """The operator's --trusted-subject arguments, rendered with extra helm `options`."""
    out = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE,
               "--kube-version", KUBE_VERSION, *options).stdout
    (deployment,) = of_kind([d for d in yaml.safe_load_all(out) if d], "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"{NAMESPACE}/{RELEASE}" in args  # the operator's own account: always trusted
    return [str(a) for a in args if str(a).startswith("--trusted-subject")]


def test_the_trust_model_is_passed_to_the_operator_one_subject_per_argument() -> None:
    defaults = _trusted_subject_args()
    assert defaults == [
        "--trusted-subject=Group:system:masters",
        "--trusted-subject=User:system:kube-controller-manager",
        "--trusted-subject=ServiceAccount:kube-system/*",
    ]
    # The chart's default and the operator's own (no flag given) are the same list.
    parsed = TrustedSubjects.parse(a.removeprefix("--trusted-subject=") for a in defaults)
    assert parsed == TrustedSubjects()
    subjects = [{"kind": "ServiceAccount", "name": "velero", "namespace": "backup"},
                {"kind": "Group", "name": "platform-admins"}]
    assert _trusted_subject_args("--set-json", f"trustedSubjects={json.dumps(subjects)}") == [
        "--trusted-subject=ServiceAccount:backup/velero",
        "--trusted-subject=Group:platform-admins",
    ]
    assert _trusted_subject_args("--set-json", "trustedSubjects=[]") == []


@pytest.mark.parametrize("subject", [
    {"kind": "ServiceAccount", "name": "velero"},  # whose? a namespace is required
    {"kind": "Group", "name": "admins", "namespace": "kube-system"},
    {"kind": "Group", "name": "system:authenticated"},
    {"kind": "User", "name": "*"},
    {"kind": "Role", "name": "admin"},
], ids=["sa-without-namespace", "group-with-namespace", "everyone", "wildcard", "not-a-subject"])
def test_the_schema_refuses_a_trusted_subject_that_is_not_one_subject(
        subject: dict[str, str]) -> None:
    result = helm("template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION,
                  "--set-json", f"trustedSubjects=[{json.dumps(subject)}]", check=False)
    assert result.returncode != 0, result.stdout[:500]
    assert "trustedSubjects" in result.stderr, result.stderr


def test_a_digest_pins_the_image_of_the_operator_and_its_purge_jobs() -> None:
    digest = "sha256:" + "a" * 64
    (deployment,) = of_kind(render(f"image.digest={digest}"), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/dataward/dataward@{digest}"
    assert container["args"][container["args"].index("--image") + 1] == container["image"]


def test_metrics_are_served_and_a_service_monitor_is_optional() -> None:
    docs = render()
    (service,) = of_kind(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http-metrics"
    # A not-ready operator (its stores unreadable) is still scraped: its metrics say why.
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert not of_kind(docs, "ServiceMonitor")
    (monitor,) = of_kind(render("metrics.serviceMonitor.enabled=true"), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "http-metrics"
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]


# -- RBAC -----------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [(), ("watchNamespaces={crm,billing}",)],
                         ids=["cluster-wide", "watched-namespaces"])
def test_no_rule_grants_a_forbidden_verb_or_lists_secrets(values: tuple[str, ...]) -> None:
    """Secrets are listed and watched only by the operator's own role, and with watchSecrets
    off by no role at all."""
    for watch in (True, False):
        docs = render(*values, f"watchSecrets={str(watch).lower()}")
        roles = [d for d in docs if d["kind"] in ("ClusterRole", "Role")]
        assert roles
        operator_role = role_named(docs, "operator")["metadata"]["name"]
        for role in roles:
            for rule in role["rules"]:
                where = f"{role['kind']} {role['metadata']['name']}: {rule}"
                assert not FORBIDDEN_VERBS & set(rule["verbs"]), where
                assert "*" not in rule["apiGroups"] and "*" not in rule["resources"], where
                assert "nonResourceURLs" not in rule, where
                if "secrets" in rule["resources"]:
                    assert "deletecollection" not in rule["verbs"], where
                    listing = {"list", "watch"} & set(rule["verbs"])
                    may_list = watch and role["metadata"]["name"] == operator_role
                    assert listing == ({"list", "watch"} if may_list else set()), where


def test_watch_secrets_off_reads_them_by_name_and_grants_no_list() -> None:
    def args(*values: str) -> list[str]:
        (deployment,) = of_kind(render(*values), "Deployment")
        return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])

    assert "--no-watch-secrets" not in args()
    assert "--no-watch-secrets" in args("watchSecrets=false")
    table = rules_table(role_named(render("watchSecrets=false"), "operator"))
    assert table[("", "secrets")] == {"get", "create", "update", "patch"}


def test_the_operator_gets_exactly_the_rights_its_code_uses() -> None:
    docs = render()
    assert rules_table(role_named(docs, "operator")) == NAMESPACED_RULES
    assert rules_table(role_named(docs, "cluster-scoped")) == CLUSTER_RULES
    election = role_named(docs, "leader-election")
    assert election["kind"] == "Role" and election["metadata"]["namespace"] == NAMESPACE
    assert rules_table(election) == LEADER_ELECTION_RULES
    assert rules_table(role_named(docs, "policy-reader")) == {
        ("dataward.io", "privacypolicies"): {"get"}}


def test_cluster_wide_by_default_the_operator_role_is_bound_once_for_all_namespaces() -> None:
    docs = render()
    operator_role = role_named(docs, "operator")["metadata"]["name"]
    bindings = [b for b in of_kind(docs, "ClusterRoleBinding")
                if b["roleRef"]["name"] == operator_role]
    assert len(bindings) == 1
    assert bindings[0]["subjects"] == [
        {"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
    assert not [b for b in of_kind(docs, "RoleBinding") if b["roleRef"]["name"] == operator_role]


def test_watched_namespaces_get_a_role_binding_each_and_a_namespace_flag_each() -> None:
    docs = render("watchNamespaces={crm,billing}")
    operator_role = role_named(docs, "operator")["metadata"]["name"]
    assert not [b for b in of_kind(docs, "ClusterRoleBinding")
                if b["roleRef"]["name"] == operator_role]
    bound = sorted(b["metadata"]["namespace"] for b in of_kind(docs, "RoleBinding")
                   if b["roleRef"]["name"] == operator_role)
    assert bound == ["billing", "crm"]
    (deployment,) = of_kind(docs, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == ["crm", "billing"]
    # Policies and cluster roles are cluster-scoped: read cluster-wide in both modes.
    cluster_role = role_named(docs, "cluster-scoped")["metadata"]["name"]
    assert [b for b in of_kind(docs, "ClusterRoleBinding")
            if b["roleRef"]["name"] == cluster_role]
    # Named namespaces: the operator lists no Namespaces (cached_kinds), and may not.
    assert rules_table(role_named(docs, "cluster-scoped")) == {
        k: v for k, v in CLUSTER_RULES.items() if k != ("", "namespaces")}


def test_purge_jobs_may_read_policies_which_are_published_documents() -> None:
    docs = render()
    reader = role_named(docs, "policy-reader")["metadata"]["name"]
    (binding,) = [b for b in of_kind(docs, "ClusterRoleBinding")
                  if b["roleRef"]["name"] == reader]
    assert binding["subjects"] == [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                                    "name": "system:serviceaccounts"}]
    assert not [d for d in render("rbac.policyReader=false")
                if d["metadata"]["name"] == reader]


# -- admission policies -------------------------------------------------------------------


def test_each_admission_policy_is_shipped_bound_and_can_be_switched_off() -> None:
    docs = render()
    policies = {p["metadata"]["name"] for p in of_kind(docs, "ValidatingAdmissionPolicy")}
    bound = {b["spec"]["policyName"] for b in of_kind(docs, "ValidatingAdmissionPolicyBinding")}
    assert policies == bound
    assert len(policies) == 8
    for value, gone in [
        ("admissionPolicies.crossObject.enabled=false", "store-within-policy"),
        ("admissionPolicies.subjectRequests.enabled=false", "subject-requests-guarded"),
        ("admissionPolicies.confusedDeputy.enabled=false", "store-secrets-readable"),
        ("admissionPolicies.grantGuard.enabled=false", "store-grants-guarded"),
        ("admissionPolicies.revisionNotice.enabled=false", "policy-revision-notice"),
        ("admissionPolicies.namespaceDeletion.requireLabelForRetainedKeyRings=false",
         "retained-key-rings-protected"),
        ("admissionPolicies.statusGuard.enabled=false", "status-written-by-operator"),
    ]:
        docs = render(value)
        names = {p["metadata"]["name"] for p in of_kind(docs, "ValidatingAdmissionPolicy")}
        bound = {b["spec"]["policyName"] for b in of_kind(docs, "ValidatingAdmissionPolicyBinding")}
        assert len(names) == 7 and not any(n.endswith(gone) for n in names), (value, names)
        assert bound == names, (value, bound ^ names)
    names = {p["metadata"]["name"] for p in of_kind(
        render("admissionPolicies.namespaceDeletion.enabled=false"), "ValidatingAdmissionPolicy")}
    assert len(names) == 6 and not any(n.endswith(("-protect-key-ring-namespaces",
                                                   "-retained-key-rings-protected"))
                                       for n in names), names


def test_the_subject_request_guard_builds_the_key_secret_name_as_the_operator_does() -> None:
    from dataward.render.subject_jobs import key_secret_name
    from dataward.subjects.request import parse_request
    from tests.subjects.samples import request

    (policy,) = [p for p in of_kind(render(), "ValidatingAdmissionPolicy")
                 if p["metadata"]["name"].endswith("-subject-requests-guarded")]
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    assert variables["key"] == "'dataward-' + object.metadata.name + '-dsr-key'"
    name = parse_request(request()).name
    assert key_secret_name(parse_request(request())) == f"dataward-{name}-dsr-key"


STATUS_GUARD = "status-written-by-operator"


def _status_guard(*values: str) -> dict[str, Any]:
    (guard,) = [p for p in of_kind(render(*values), "ValidatingAdmissionPolicy")
                if p["metadata"]["name"].endswith(f"-{STATUS_GUARD}")]
    return guard


def test_admission_policies_fail_closed_and_only_the_status_guard_matches_status() -> None:
    """The operator writes only status (and a store's finalizers): no other policy may judge
    its writes, so none but the status guard, which admits the verb it holds, can block it."""
    for policy in of_kind(render(), "ValidatingAdmissionPolicy"):
        assert policy["spec"]["failurePolicy"] == "Fail"
        if policy["metadata"]["name"].endswith(f"-{STATUS_GUARD}"):
            continue
        for rule in policy["spec"]["matchConstraints"]["resourceRules"]:
            assert all("/" not in r for r in rule["resources"]), rule


def test_the_status_guard_covers_every_status_the_operator_writes_and_it_may_override() -> None:
    """Every status subresource the operator's roles may patch is guarded, and only for
    UPDATE; each such rule also grants `override`, the verb the guard asks the authorizer
    for, so the guard never refuses the operator. Checked in the object's namespace, so a
    RoleBinding per watched namespace (watchNamespaces) grants it as well."""
    guard = _status_guard()
    (rule,) = guard["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == ["dataward.io"] and rule["operations"] == ["UPDATE"]
    written = {resource for table in (NAMESPACED_RULES, CLUSTER_RULES)
               for (group, resource), verbs in table.items()
               if group == "dataward.io" and resource.endswith("/status") and "patch" in verbs}
    assert set(rule["resources"]) == written == {
        "personaldatastores/status", "datasubjectrequests/status", "privacypolicies/status"}
    (validation,) = guard["spec"]["validations"]
    check = " ".join(validation["expression"].split())
    assert ".check('override').allowed()" in check, check
    assert ".namespace(variables.scope).name(request.name)" in check, check
    assert validation["reason"] == "Forbidden"
    assert "verbs [override]" in validation["messageExpression"]


def test_switching_the_status_guard_off_keeps_the_operators_override() -> None:
    """Toggling the guard is safe: the operator holds `override` either way, so switching it
    on again (or another release's guard, e.g. another shard's) never refuses this operator."""
    for value in ("admissionPolicies.statusGuard.enabled=true",
                  "admissionPolicies.statusGuard.enabled=false"):
        docs = render(value)
        guarded = [p for p in of_kind(docs, "ValidatingAdmissionPolicy")
                   if p["metadata"]["name"].endswith(f"-{STATUS_GUARD}")]
        assert len(guarded) == (1 if value.endswith("true") else 0), value
        assert rules_table(role_named(docs, "operator")) == NAMESPACED_RULES, value
        assert rules_table(role_named(docs, "cluster-scoped")) == CLUSTER_RULES, value


def test_the_grant_guard_computes_the_key_ring_name_as_the_operator_does() -> None:
    """CEL can build dataward-<store>-keyring, but not the hashed name of a long store."""
    policy = _grant_guard()
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    assert variables["ring"] == "'dataward-' + object.metadata.name + '-keyring'"
    assert variables["ringNamed"] == "size(variables.ring) <= 63"
    assert "longer than 46 characters" in variables["remedy"]
    longest = "s" * 46
    assert names_for(longest).key_ring == f"dataward-{longest}-keyring"
    assert len(names_for(longest).key_ring) == 63
    assert names_for(longest + "s").key_ring != f"dataward-{longest}s-keyring"
    # Both ways of widening are guarded, each by `get` on that name or the verb `grant`.
    validations = policy["spec"]["validations"]
    assert len(validations) == 2
    for validation in validations:
        expression = " ".join(validation["expression"].split())
        assert ".check('grant').allowed()" in expression
        assert ".name(variables.ring).check('get').allowed()" in expression
        assert "variables.ringNamed &&" in expression
        assert validation["reason"] == "Forbidden"
    assert policy["spec"]["matchConstraints"]["resourceRules"][0]["operations"] == [
        "CREATE", "UPDATE"]


@functools.cache
def _grant_guard() -> dict[str, Any]:
    """The grant guard as the chart renders it by default."""
    (policy,) = [p for p in of_kind(render(), "ValidatingAdmissionPolicy")
                 if p["metadata"]["name"].endswith("-store-grants-guarded")]
    return policy


def _grant_guard_variables(operation: str, new: dict[str, Any],
                           old: dict[str, Any] | None = None) -> dict[str, Any]:
    """The grant guard's variables (no authorizer in them) for one request, evaluated here."""
    import cel

    found: dict[str, Any] = {}
    request = {"operation": operation, "namespace": "crm", "userInfo": {"username": "alice"}}
    for variable in _grant_guard()["spec"]["variables"]:
        found[variable["name"]] = cel.evaluate(variable["expression"], {
            "object": new, "oldObject": old, "request": request, "variables": found})
    return found


def _pds(name: str = "orders", readers: list[dict[str, str]] | None = None,
         adopt: bool | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if readers is not None:
        spec["access"] = {"readers": readers}
    if adopt is not None:
        spec["encryption"] = {"keyRotation": "30d", "adoptExistingKeyRing": adopt}
    return {"metadata": {"name": name, "namespace": "crm"}, "spec": spec}


SA, GROUP_G = {"kind": "ServiceAccount", "name": "api"}, {"kind": "Group", "name": "g"}


GuardCase = tuple[str, str, dict[str, Any] | None, dict[str, Any], list[str], bool]
GRANT_GUARD_TABLE: list[GuardCase] = [
    ("a reader added", "UPDATE", _pds(readers=[SA]), _pds(readers=[SA, GROUP_G]), ["Group:g"],
     False),
    ("the first readers", "UPDATE", _pds(), _pds(readers=[SA]), ["ServiceAccount:crm/api"],
     False),
    ("a reader removed", "UPDATE", _pds(readers=[SA, GROUP_G]), _pds(readers=[SA]), [], False),
    ("readers reordered", "UPDATE", _pds(readers=[SA, GROUP_G]), _pds(readers=[GROUP_G, SA]),
     [], False),
    ("all readers removed", "UPDATE", _pds(readers=[SA]), _pds(), [], False),
    ("default namespace written out", "UPDATE", _pds(readers=[SA]),
     _pds(readers=[{**SA, "namespace": "crm"}]), [], False),
    ("same account, other namespace", "UPDATE", _pds(readers=[SA]),
     _pds(readers=[{**SA, "namespace": "web"}]), ["ServiceAccount:web/api"], False),
    ("a user named like a group", "UPDATE", _pds(readers=[GROUP_G]),
     _pds(readers=[{"kind": "User", "name": "g"}]), ["User:g"], False),
    # Its ring may exist already: a Retain store's, deleted and made again under its name,
    # or a long-named store's whose hashed ring name this short name spells.
    ("a new store with readers", "CREATE", None, _pds(readers=[SA, GROUP_G]),
     ["ServiceAccount:crm/api", "Group:g"], False),
    ("a new store adopting", "CREATE", None, _pds(adopt=True), [], True),
    ("a new store not adopting", "CREATE", None, _pds(adopt=False), [], False),
    ("adoption switched on", "UPDATE", _pds(adopt=False), _pds(adopt=True), [], True),
    ("adoption switched on, field new", "UPDATE", _pds(), _pds(adopt=True), [], True),
    ("adoption kept on", "UPDATE", _pds(adopt=True), _pds(adopt=True, readers=[]), [], False),
    ("adoption switched off", "UPDATE", _pds(adopt=True), _pds(adopt=False), [], False),
]


@pytest.mark.parametrize(("operation", "old", "new", "added", "adopts"),
                         [case[1:] for case in GRANT_GUARD_TABLE],
                         ids=[case[0] for case in GRANT_GUARD_TABLE])
def test_the_grant_guard_judges_only_what_widens_access_to_the_key_ring(
        operation: str, old: dict[str, Any] | None, new: dict[str, Any], added: list[str],
        adopts: bool) -> None:
    found = _grant_guard_variables(operation, new, old)
    assert (found["added"], found["adopts"]) == (added, adopts)


def _request_guard_variables(spec: dict[str, Any]) -> dict[str, Any]:
    """The subject request guard's variables (no authorizer in them) for a CREATE of a
    request in namespace privacy with `spec`, evaluated here."""
    import cel

    (policy,) = [p for p in of_kind(render(), "ValidatingAdmissionPolicy")
                 if p["metadata"]["name"].endswith("-subject-requests-guarded")]
    found: dict[str, Any] = {}
    request = {"operation": "CREATE", "namespace": "privacy", "userInfo": {"username": "a"},
               "name": "r"}
    new = {"metadata": {"name": "r", "namespace": "privacy"}, "spec": spec}
    for variable in policy["spec"]["variables"]:
        found[variable["name"]] = cel.evaluate(variable["expression"], {
            "object": new, "oldObject": None, "request": request, "variables": found})
    return found


@pytest.mark.parametrize(("scope", "named"), [
    ({"stores": [{"name": "orders"}]}, True),
    ({"stores": [{"name": "orders"}], "categories": ["newsletter"]}, False),
    ({"categories": ["newsletter"]}, False),
    (None, False),
    # Named no store: the operator would take it for every store of the policy, so the
    # check of each named store (none) must not be the one that decides.
    ({"stores": []}, False),
])
def test_only_a_scope_naming_stores_is_checked_store_by_store(
        scope: dict[str, Any] | None, named: bool) -> None:
    spec: dict[str, Any] = {"type": "erasure", "subject": {"identifierSecretRef": {"name": "id"}}}
    if scope is not None:
        spec["scope"] = scope
    assert _request_guard_variables(spec)["named"] is named


def test_the_grant_guard_says_which_right_is_missing_and_how_to_get_it() -> None:
    short = _grant_guard_variables("UPDATE", _pds(readers=[SA]), _pds())
    assert short["remedy"] == (
        "Ask for get on Secret dataward-orders-keyring in namespace crm, or for the verb grant"
        " on personaldatastores.dataward.io orders in namespace crm (a Role rule: apiGroups"
        " [dataward.io], resources [personaldatastores], resourceNames [orders], verbs [grant])")
    long_name = "o" * 47
    hashed = _grant_guard_variables("UPDATE", _pds(long_name, [SA]), _pds(long_name))
    assert hashed["ringNamed"] is False
    assert "cannot compute, so this needs the verb grant on personaldatastores.dataward.io " \
        f"{long_name}" in hashed["remedy"]
    assert "get on Secret" not in hashed["remedy"]


@pytest.mark.parametrize("long_name", [
    "customer-support-inquiries-eu-west-production-primary",
    "o" * 47,
    # Cut just after a dash: the head is shorter than the room, so is the spelling name.
    "support-inquiries-of-the-eu-region--x" + "y" * 20,
])
def test_a_short_name_spelling_a_hashed_key_ring_is_not_opened_by_grant(long_name: str) -> None:
    """A long store's ring is dataward-<head>-<hash>-keyring; the store named <head>-<hash>
    has a ring of that very name. `grant` on it is no right to the long store's ring."""
    ring = names_for(long_name).key_ring
    short = ring[len("dataward-"):-len("-keyring")]
    assert names_for(short).key_ring == ring != f"dataward-{long_name}-keyring"
    spelled = _grant_guard_variables("CREATE", _pds(short, [SA]))
    assert spelled["ringMayBeAnothers"] is True
    assert f"only get on Secret {ring} in namespace crm" in spelled["remedy"]
    assert "verb grant" not in spelled["remedy"]
    # Its own ring cut and hashed (CEL cannot name it), or no hash's form: `grant` opens it.
    for name in (long_name, "orders", "orders-2026", "orders-2026012"):
        assert _grant_guard_variables("CREATE", _pds(name, [SA]))["ringMayBeAnothers"] is False
    for validation in _grant_guard()["spec"]["validations"]:
        expression = " ".join(validation["expression"].split())
        assert "|| (!variables.ringMayBeAnothers && authorizer.group('dataward.io')" in expression


@pytest.mark.parametrize(("type_", "dry_run", "exports"), [
    ("access", None, True),
    ("access", False, True),
    ("access", True, False),
    ("erasure", None, False),
    ("erasure", True, False),
])
def test_an_access_request_that_exports_is_judged_as_a_grant(
        type_: str, dry_run: bool | None, exports: bool) -> None:
    """Its export lands in Secrets of the request's namespace, whoever reads Secrets there."""
    spec: dict[str, Any] = {"type": type_, "subject": {"identifierSecretRef": {"name": "id"}},
                            "scope": {"stores": [{"name": "orders"}]}}
    if dry_run is not None:
        spec["dryRun"] = dry_run
    assert _request_guard_variables(spec)["exports"] is exports


def test_report_only_rollout_is_a_value() -> None:
    docs = render("admissionPolicies.validationActions={Warn,Audit}")
    for binding in of_kind(docs, "ValidatingAdmissionPolicyBinding"):
        assert binding["spec"]["validationActions"] == ["Warn", "Audit"]


def _month_spans(months: int, firsts: list[int], lengths: list[int]) -> tuple[int, int]:
    """Fewest and most days in `months` calendar months, over every start in 400 years.

    The longest span starts on day 1: firsts[s+m] - firsts[s]. The shortest starts on the
    last day of month s and ends on day min(length[s], length[s+m]) of month s+m, which is
    firsts[s+m] + min(...) - firsts[s+1] days later. (C-level maps: this runs 4801 times.)
    """
    cycle = 4800
    ahead, here, after = firsts[months:months + cycle], firsts[:cycle], firsts[1:cycle + 1]
    longest = max(map(operator.sub, ahead, here))
    end_days = map(min, lengths[:cycle], lengths[months:months + cycle])
    shortest = min(map(operator.sub, map(operator.add, ahead, end_days), after))
    if months == 0:
        shortest = 0  # the same instant, not the last day of a month to itself
    return shortest, longest


def test_the_retention_rule_never_rejects_a_store_the_operator_accepts() -> None:
    """The policy's day bounds for m calendar months hold for every m and every start date.

    With x = 146097/4800 days per month (400 Gregorian years), month s starts on day
    F(s) = s*x + r(s), r periodic; R = max r - min r. Then m months from day 1 span at most
    m*x + R days, and from any day at least m*x - R - 3 (a start on the 31st may end on the
    28th). With est = floor(m*x): longest - est <= ceil(R) and est - shortest <= floor(R+3).
    """
    import calendar
    from datetime import date

    text = (CHART / "templates" / "admission-policies.yaml").read_text()
    lower = re.search(r"storeUnits \* (\d+) / (\d+) - (\d+) > variables.limitUnits", text)
    upper = re.search(r"limitUnits \* (\d+) / (\d+) \+ (\d+)\)", text)
    assert lower and upper, "the mixed-unit comparison in admission-policies.yaml changed"
    num, den, below = map(int, lower.groups())
    assert (num, den) == tuple(map(int, upper.groups()[:2]))
    above = int(upper.group(3))
    assert 4800 * num == 146097 * den, "the policy must use 365.2425 / 12 days per month"
    firsts, lengths = [], []
    for index in range(2 * 4800 + 1):
        year, month = divmod(index, 12)
        firsts.append(date(2000 + year, month + 1, 1).toordinal() - date(2000, 1, 1).toordinal())
        lengths.append(calendar.monthrange(2000 + year, month + 1)[1])
    # r(s) * 4800, in integers: F(s) * 4800 - 146097 * s
    residues = [4800 * first - 146097 * s for s, first in enumerate(firsts[:4801])]
    spread = max(residues) - min(residues)  # R * 4800
    assert -(-spread // 4800) <= above, f"upper bound needs +{-(-spread // 4800)}"
    assert (spread + 3 * 4800) // 4800 <= below, f"lower bound needs -{(spread + 3 * 4800) // 4800}"
    # The exact spans agree with the operator's own arithmetic and lie within the bounds.
    for months in [*range(0, 37), 59, 60, 61, 119, 1199, 4799]:
        spans = _month_spans(months, firsts, lengths)
        assert spans == _month_span_bounds(months), months
        estimate = months * num // den
        assert estimate - below <= spans[0] and spans[1] <= estimate + above, months


# -- what `make run` takes from the chart ---------------------------------------------------


def test_make_run_runs_the_operator_with_the_deployments_arguments_and_applies_the_rest() -> None:
    """e2e/run_local.py: no drift from the chart, nothing applied that needs a kubelet."""
    from e2e import run_local

    docs = render("watchNamespaces={crm}", "timeZone=Europe/Berlin")
    account, args = run_local.deployment_command(docs)
    (deployment,) = of_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert account == pod["serviceAccountName"] == RELEASE
    assert ["run", *args] == [str(a) for a in pod["containers"][0]["args"]]
    assert args[args.index("--time-zone") + 1] == "Europe/Berlin"
    applied = {d["kind"] for d in docs} - run_local.NOT_APPLIED
    assert {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ServiceAccount",
            "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} <= applied
    assert not {"Deployment", "Service"} & applied
    assert (run_local.RELEASE, run_local.OPERATOR_NAMESPACE) == (RELEASE, NAMESPACE)


def test_a_shard_serves_its_namespace_selector_under_a_lease_of_its_own() -> None:
    docs = render("shard.namespaceSelector=dataward.io/shard=b", "shard.leaseName=dataward-b",
                  "shard.writesPolicyStatus=false")
    (deployment,) = of_kind(docs, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--namespace-selector") + 1] == "dataward.io/shard=b"
    assert args[args.index("--lease-name") + 1] == "dataward-b"
    assert "--no-policy-status" in args
    # The shard watches the namespaces it serves, as the operator of every namespace does.
    assert rules_table(role_named(docs, "cluster-scoped")) == CLUSTER_RULES
    (default,) = of_kind(render(), "Deployment")
    plain = default["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace-selector" not in plain and "--no-policy-status" not in plain


# -- the evidence log, access records and the report CronJob --------------------------------

EVIDENCE = (
    "evidence.database=postgresql://evidence.db:5432/evidence?tls=verify-full",
    "evidence.credentialsSecret=evidence-login",
    "evidence.signingKeySecret=evidence-key",
    "report.inputsConfigMap=privacy-policy-files",
    "report.publicKeyConfigMap=evidence-public-key",
)
AUDIT_VOLUME = "evidence.auditLog.volume.hostPath.path=/var/log/kubernetes/audit"


def _operator_container(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    (deployment,) = of_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def _mounted_file(pod: dict[str, Any], container: dict[str, Any], path: str) -> tuple[str, str]:
    """(volume source kind:name, key) that the container sees at `path`."""
    for mount in container["volumeMounts"]:
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix):
            volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            name = path[len(prefix):]
            if "secret" in volume:
                items = {i["path"]: i["key"] for i in volume["secret"].get("items", [])}
                return f"secret:{volume['secret']['secretName']}", items.get(name, name)
            return "other", name
    raise AssertionError(f"nothing is mounted at {path}")


def test_without_an_evidence_database_nothing_of_it_is_rendered() -> None:
    docs = render()
    pod, container = _operator_container(docs)
    assert not [e for e in container["env"] if "EVIDENCE" in e["name"] or "AUDIT" in e["name"]]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert of_kind(docs, "CronJob") == []


def test_the_evidence_log_reaches_the_operator_as_run_expects_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataward.commands import run as run_command
    from dataward.evidence import config

    docs = render(*EVIDENCE, AUDIT_VOLUME, "evidence.auditLog.canarySeconds=300")
    pod, container = _operator_container(docs)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[config.DATABASE_ENV] == "postgresql://evidence.db:5432/evidence?tls=verify-full"
    # Login and key are files from the Secrets, never values in the pod spec.
    assert config.USERNAME_ENV not in env and config.PASSWORD_ENV not in env
    login = env[config.CREDENTIALS_DIR_ENV]
    assert _mounted_file(pod, container, f"{login}/username") == (
        "secret:evidence-login", "username")
    assert _mounted_file(pod, container, f"{login}/password") == (
        "secret:evidence-login", "password")
    assert _mounted_file(pod, container, env[config.SIGNING_KEY_ENV]) == (
        "secret:evidence-key", "evidence-signing.key")
    assert config.parse_database_url(env[config.DATABASE_ENV]).tls == "verify-full"
    # The audit log: the volume read-only, at the path `dataward run` follows.
    audit = next(m for m in container["volumeMounts"] if m["name"] == "audit-log")
    assert audit["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == "audit-log")
    assert volume["hostPath"] == {"path": "/var/log/kubernetes/audit"}
    for name, value in env.items():
        if name.startswith("DATAWARD_AUDIT"):
            monkeypatch.setenv(name, str(value))
    import argparse

    parser = argparse.ArgumentParser()
    run_command.register(parser.add_subparsers())
    args = parser.parse_args(["run"])
    assert args.audit_log == "/var/log/kubernetes/audit/audit.log"
    assert args.audit_canary_seconds == 300


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ((*EVIDENCE[:1], "report.enabled=false"), "evidence.credentialsSecret is required"),
        ((*EVIDENCE[:2], "report.enabled=false"), "evidence.signingKeySecret is required"),
        ((AUDIT_VOLUME,), "evidence.auditLog.volume needs evidence.database"),
        ((*EVIDENCE[:3], EVIDENCE[4]), "report.inputsConfigMap is required"),
        (EVIDENCE[:4], "report.publicKeyConfigMap is required"),
    ],
)
def test_half_an_evidence_configuration_is_refused_saying_what_is_missing(
    values: tuple[str, ...], words: str
) -> None:
    sets = [arg for value in values for arg in ("--set", value)]
    result = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                  "--kube-version", KUBE_VERSION, *sets, check=False)
    assert result.returncode != 0
    assert words in result.stderr


@pytest.mark.parametrize(
    "url",
    ["postgresql://operator:hunter2@evidence.db/evidence",  # a login in the URL
     "http://evidence.db/evidence", "postgresql://evidence.db/evidence?tls=prefer"],
)
def test_the_schema_refuses_an_evidence_url_the_operator_would_refuse(url: str) -> None:
    result = helm("template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION,
                  "--set", f"evidence.database={url}", *[a for v in EVIDENCE[1:]
                                                         for a in ("--set", v)], check=False)
    assert result.returncode != 0
    # (Helm's own schema message quotes the value; the operator's refusal never does.)
    assert "/evidence/database" in result.stderr


def test_the_report_runs_quarterly_for_the_previous_quarter_and_reads_no_api() -> None:
    (cronjob,) = of_kind(render(*EVIDENCE), "CronJob")
    assert cronjob["spec"]["schedule"] == "0 6 1 1,4,7,10 *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    args = [str(a) for a in container["args"]]

    def arg(flag: str) -> str:
        return args[args.index(flag) + 1]

    assert args[0] == "report" and arg("--quarter") == "previous"
    assert arg("--database") == "postgresql://evidence.db:5432/evidence?tls=verify-full"
    assert arg("--json") == "-" and "--out-dir" not in args  # no claim: the Job's log
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    key_dir, key_file = arg("--public-key").rsplit("/", 1)
    assert volumes[mounts[key_dir]]["configMap"]["name"] == "evidence-public-key"
    assert key_file == "evidence-signing.pub"
    assert volumes[mounts[arg("-f")]]["configMap"]["name"] == "privacy-policy-files"
    assert volumes[mounts[arg("--credentials-dir")]]["secret"]["secretName"] == "evidence-login"
    # The signing key never reaches the report.
    assert "evidence-key" not in json.dumps(cronjob)


@pytest.mark.parametrize("zone", ["Etc/UTC", "Asia/Seoul", "Pacific/Auckland"])
def test_the_report_runs_after_the_quarter_has_ended_in_utc(zone: str) -> None:
    """Quarters are UTC calendar quarters. With `timeZone: Asia/Seoul` the CronJob ran at
    06:00 on 1 January in Seoul, 21:00 on 31 December in UTC: `--quarter previous` was then
    2026Q3 again, and no report of 2026Q4 was ever written."""
    (cronjob,) = of_kind(render(*EVIDENCE, f"timeZone={zone}"), "CronJob")
    minute, hour, day, months, _ = cronjob["spec"]["schedule"].split()
    runs_in = ZoneInfo(cronjob["spec"].get("timeZone") or "Etc/UTC")
    for month in (int(m) for m in months.split(",")):
        fires = datetime(2027, month, int(day), int(hour), int(minute), tzinfo=runs_in)
        ended = previous_quarter(fires)
        assert ended.end <= fires.astimezone(UTC), (zone, month, fires)
        assert ended.label == f"{2026 if month == 1 else 2027}Q{(month - 2) // 3 % 4 + 1}"


def test_the_report_schedule_output_and_login_are_values_and_it_can_be_off() -> None:
    (cronjob,) = of_kind(render(*EVIDENCE, "report.schedule=0 2 * * 1",
                                "report.persistentVolumeClaim=reports",
                                "report.credentialsSecret=auditor-login"), "CronJob")
    assert cronjob["spec"]["schedule"] == "0 2 * * 1"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    args = [str(a) for a in pod["containers"][0]["args"]]
    assert args[args.index("--out-dir") + 1] == "/reports" and "--json" not in args
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["reports"]["persistentVolumeClaim"]["claimName"] == "reports"
    assert volumes["login"]["secret"]["secretName"] == "auditor-login"
    assert of_kind(render(*EVIDENCE, "report.enabled=false"), "CronJob") == []


def _readme_rbac_table() -> dict[tuple[str, str], set[str]]:
    """The chart README's table "RBAC: exactly what the operator calls", as (group, resource)
    -> verbs: what a platform engineer reviews before granting the operator anything."""
    text = (CHART / "README.md").read_text()
    section = text.split("## RBAC: exactly what the operator calls", 1)[1].split("\n## ", 1)[0]
    verbs_known = {"get", "list", "watch", "create", "update", "patch", "delete",
                   "deletecollection", "override", "escalate", "bind", "impersonate"}
    table: dict[tuple[str, str], set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("API group", "") or set(cells[0]) <= {"-"}:
            continue
        group = "" if cells[0] == '""' else cells[0]
        verbs = {word for word in re.findall(r"[a-z]+", cells[2]) if word in verbs_known}
        for resource in cells[1].split(","):
            table.setdefault((group, resource.strip()), set()).update(verbs)
    return table


def test_the_readme_rbac_table_lists_every_right_the_chart_grants() -> None:
    """An admin approving the chart reads the README's table, not the template: every
    (group, resource) and verb the default install grants the operator is in it, and
    nothing it does not grant."""
    docs = render()
    granted: dict[tuple[str, str], set[str]] = {}
    for suffix in ("operator", "cluster-scoped", "leader-election"):
        for key, verbs in rules_table(role_named(docs, suffix)).items():
            granted.setdefault(key, set()).update(verbs)
    documented = _readme_rbac_table()
    missing = {key: sorted(verbs - documented.get(key, set()))
               for key, verbs in granted.items() if verbs - documented.get(key, set())}
    extra = {key: sorted(verbs - granted.get(key, set()))
             for key, verbs in documented.items() if verbs - granted.get(key, set())}
    assert not missing, f"granted but not in charts/dataward/README.md: {missing}"
    assert not extra, f"in charts/dataward/README.md but not granted: {extra}"
