"""The rendered NetworkPolicy, checked by an independent analyser (cyclonus), not by its shape.

For each store the test renders the policy and asks cyclonus, in one run, about a matrix of
traffic to the store's workload: from each declared peer, the store's purge pod, and decoys
that a sloppy policy would let in (an undeclared pod, the peer's labels in another namespace,
the purge label of another store, the store's purge label in another namespace), on each
declared port, an undeclared port and the wrong protocol. The expected verdicts are computed
here from the store's spec alone: allowed iff the source is a declared peer or the store's purge
pod AND the port/protocol is declared. Pods the workload selector does not pick must stay open
to everyone, and the workload's own outgoing connections must stay open (the policy is ingress
only), so the policy does not over-isolate.

cyclonus is required: when it is not built, `tool("cyclonus")` raises and the test fails.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataward.model.store import parse_store
from dataward.render.network import render_network_policy
from dataward.render.purge_job import render_purge_cronjob
from dataward.render.settings import RenderSettings
from tests.render.cyclonus import Pod, Traffic, query_traffic

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_STORES = sorted((REPO_ROOT / "examples" / "stores").glob("*.yaml"))

PURGE_LABEL = "dataward.io/purge"
ELSEWHERE = "elsewhere"  # a namespace no store's peer admits
PROTOCOLS = ("TCP", "UDP", "SCTP")
UNDECLARED_PORT = 22


def _load_examples() -> list[dict[str, Any]]:
    """Every PersonalDataStore document under examples/stores/."""
    stores = []
    for path in EXAMPLE_STORES:
        with path.open(encoding="utf-8") as handle:
            for doc in yaml.safe_load_all(handle):
                if doc and doc.get("kind") == "PersonalDataStore":
                    stores.append(doc)
    return stores


def _variant(base: Mapping[str, Any], name: str, **spec: Any) -> dict[str, Any]:
    """A copy of `base` called `name`, with top-level spec fields replaced."""
    obj = copy.deepcopy(dict(base))
    obj["metadata"]["name"] = name
    obj["spec"].update(spec)
    return obj


def _stores() -> list[dict[str, Any]]:
    """The example stores plus variants: more peers, a namespaceSelector, more ports, none."""
    examples = _load_examples()
    assert len(examples) == 3, [p.name for p in EXAMPLE_STORES]
    base = next(s for s in examples if s["metadata"]["name"] == "support-inquiries")
    two_peers = _variant(
        base,
        "shared-inquiries",
        workload={
            "podSelector": {"matchLabels": {"app": "shared-postgres", "tier": "db"}},
            "ports": [{"port": 5432, "protocol": "TCP"}],
        },
        network={
            "allowFrom": [
                {"podSelector": {"matchLabels": {"app": "crm-api"}}},
                {
                    "namespaceSelector": {"matchLabels": {"team": "ops"}},
                    "podSelector": {"matchLabels": {"app": "backup"}},
                },
            ]
        },
    )
    namespace_only = _variant(
        base,
        "monitored-inquiries",
        network={
            "allowFrom": [
                {"podSelector": {"matchLabels": {"app": "crm-api"}}},
                {"namespaceSelector": {"matchLabels": {"team": "monitoring"}}},
            ]
        },
    )
    two_ports = _variant(
        base,
        "metered-inquiries",
        workload={
            "podSelector": {"matchLabels": {"app": "crm-postgres"}},
            # no protocol on the first: the API's default, TCP
            "ports": [{"port": 5432}, {"port": 8125, "protocol": "UDP"}],
        },
    )
    no_ports = _variant(
        base,
        "unported-inquiries",
        workload={"podSelector": {"matchLabels": {"app": "crm-postgres"}}},
        database={**base["spec"]["database"], "port": 6432},
    )
    return [*examples, two_peers, namespace_only, two_ports, no_ports]


STORES = _stores()


@dataclass(frozen=True)
class Source:
    """A pod that tries to reach the workload, and whether the spec says it may."""

    pod: Pod
    admitted: bool


def _match_labels(selector: Mapping[str, Any] | None) -> dict[str, str]:
    """The labels a pod needs to match `selector`; only matchLabels selectors are used here."""
    if not selector:
        return {}
    assert "matchExpressions" not in selector, "test pods are built from matchLabels only"
    return dict(selector.get("matchLabels") or {})


class _Ips:
    """Hands out distinct pod IPs."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def next(self) -> str:
        n = next(self._counter)
        return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def _sources(raw: Mapping[str, Any], ips: _Ips) -> list[Source]:
    """Declared peers, the store's purge pod, and decoys, from the raw spec alone."""
    namespace = raw["metadata"]["namespace"]
    name = raw["metadata"]["name"]
    peers = (raw["spec"].get("network") or {}).get("allowFrom") or []
    intruder = {"app": "intruder"}

    def pod(label: str, ns: str, labels: Mapping[str, str], **ns_labels: str) -> Pod:
        return Pod(label, ns, dict(labels), ips.next(), dict(ns_labels))

    sources = [
        Source(pod("undeclared", namespace, intruder), admitted=False),
        Source(pod("unlabelled", namespace, {}), admitted=False),
        Source(pod("intruder-elsewhere", ELSEWHERE, intruder), admitted=False),
    ]
    for index, peer in enumerate(peers):
        assert "ipBlock" not in peer, "ipBlock peers are not modelled by this test"
        labels = _match_labels(peer.get("podSelector")) or {"app": f"anything-{index}"}
        if "namespaceSelector" in peer:
            ns_labels = _match_labels(peer["namespaceSelector"])
            assert ns_labels, "an empty namespaceSelector admits every namespace"
            peer_ns = f"peer-ns-{index}"
            sources += [
                Source(pod(f"peer-{index}", peer_ns, labels, **ns_labels), admitted=True),
                # The peer's namespace labels are required: same pod, unlabelled namespaces.
                Source(pod(f"peer-{index}-own-ns", namespace, labels), admitted=False),
                Source(pod(f"peer-{index}-elsewhere", ELSEWHERE, labels), admitted=False),
            ]
            if "podSelector" in peer:
                # ... and so are the pod labels, in the admitted namespace.
                sources.append(
                    Source(
                        pod(f"intruder-in-peer-ns-{index}", peer_ns, intruder, **ns_labels),
                        admitted=False,
                    )
                )
        else:
            sources += [
                Source(pod(f"peer-{index}", namespace, labels), admitted=True),
                # A podSelector-only peer is the policy's own namespace, nowhere else.
                Source(pod(f"peer-{index}-elsewhere", ELSEWHERE, labels), admitted=False),
            ]
    # The purge pod exactly as the rendered CronJob labels it, in the CronJob's namespace.
    cronjob = render_purge_cronjob(parse_store(raw), RenderSettings(), compliant=True)
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert template[PURGE_LABEL] == name
    assert cronjob["metadata"]["namespace"] == namespace
    other_purge = {PURGE_LABEL: f"not-{name}", "dataward.io/store": f"not-{name}"}
    sources += [
        Source(pod("purge", namespace, template), admitted=True),
        Source(pod("purge-of-another-store", namespace, other_purge), admitted=False),
        Source(pod("purge-elsewhere", ELSEWHERE, template), admitted=False),
    ]
    return sources


def _declared_ports(raw: Mapping[str, Any]) -> set[tuple[int, str]]:
    """`workload.ports` with the API's default protocol, else the database's port on TCP."""
    ports = raw["spec"]["workload"].get("ports") or []
    if not ports:
        return {(raw["spec"]["database"]["port"], "TCP")}
    return {(p["port"], p.get("protocol", "TCP")) for p in ports}


def _probed_ports(declared: set[tuple[int, str]]) -> list[tuple[int, str]]:
    """Each declared port on every protocol, plus an undeclared port."""
    probed = {(port, protocol) for port, _ in declared for protocol in PROTOCOLS}
    probed.add((UNDECLARED_PORT, "TCP"))
    assert (UNDECLARED_PORT, "TCP") not in declared
    return sorted(probed)


def _traffic(
    sources: list[Source], destinations: list[Pod], ports: list[tuple[int, str]]
) -> Iterator[Traffic]:
    for source, destination, (port, protocol) in itertools.product(sources, destinations, ports):
        yield Traffic(source.pod, destination, port, protocol)


def _key(t: Traffic) -> tuple[str, str, int, str]:
    """A truth-table key: source, destination, port, protocol."""
    return (t.source.name, t.destination.name, t.port, t.protocol)


@pytest.mark.parametrize("raw", STORES, ids=[s["metadata"]["name"] for s in STORES])
def test_policy_admits_exactly_the_declared_peers_and_purge_pods(
    raw: dict[str, Any], tmp_path: Path
) -> None:
    """The full truth table from cyclonus equals the one the spec implies."""
    namespace = raw["metadata"]["namespace"]
    policy = render_network_policy(parse_store(raw))
    ips = _Ips()
    workload_labels = _match_labels(raw["spec"]["workload"]["podSelector"])
    workload = Pod(
        "workload", namespace, {**workload_labels, "pod-template-hash": "7d9f"}, ips.next()
    )
    unselected = [
        Pod("unselected", namespace, {"app": "unrelated"}, ips.next()),
        # The policy is namespaced: the workload's labels elsewhere are not isolated.
        Pod("workload-elsewhere", ELSEWHERE, dict(workload_labels), ips.next()),
    ]
    sources = _sources(raw, ips)
    declared = _declared_ports(raw)
    ports = _probed_ports(declared)
    traffic = list(_traffic(sources, [workload, *unselected], ports))
    # The policy is ingress only: the workload's own connections stay open.
    traffic += [
        Traffic(workload, pod, port, protocol) for pod in unselected for port, protocol in ports
    ]
    admitted = {source.pod.name for source in sources if source.admitted}
    assert len({s.pod.name for s in sources}) == len(sources), "source names must be unique"

    verdicts = query_traffic([policy], traffic, workdir=tmp_path)

    to_workload = [
        (t, v) for t, v in zip(traffic, verdicts, strict=True) if t.destination == workload
    ]
    actual = {_key(t): v for t, v in to_workload}
    expected = {
        _key(t): t.source.name in admitted and (t.port, t.protocol) in declared
        for t, _ in to_workload
    }
    wrong = [
        f"{t.describe()}: cyclonus says {'allowed' if v else 'denied'}"
        for t, v in to_workload
        if v != expected[_key(t)]
    ]
    assert not wrong, "rendered policy disagrees with the spec:\n" + "\n".join(wrong)
    assert actual == expected
    # The matrix must exercise both outcomes, or it proves nothing.
    assert any(expected.values()) and not all(expected.values())

    over_isolated = [
        t.describe()
        for t, v in zip(traffic, verdicts, strict=True)
        if t.destination != workload and not v
    ]
    assert not over_isolated, "traffic the policy must not touch was denied:\n" + "\n".join(
        over_isolated
    )
