"""Ask cyclonus (offline NetworkPolicy analyser) whether traffic between pods is allowed.

cyclonus v0.5.6 `analyze --mode query-traffic` reads every file under `--policy-path` as one
NetworkPolicy (or NetworkPolicyList), strictly, and `--traffic-path` as a JSON list of
`matcher.Traffic` objects. For each traffic it prints a "Traffic:" table and an
"Is traffic allowed?" table whose footer reads `IS ALLOWED? | TRUE` or `FALSE`; the verdicts
come out in the order of the input. Pods are described by labels and namespace only, so no
cluster is needed. The binary comes from `e2e.tools.tool("cyclonus")`, which raises when it is
missing: callers must let that fail the test, never skip.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.tools import tool

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

_VERDICT = re.compile(r"^\|\s*IS ALLOWED\?\s*\|\s*(TRUE|FALSE)\s*\|", re.MULTILINE)
_TRAFFIC_PORT = re.compile(r"^\|\s*(\d+) \(([^)]*)\) on (\w+)\s*\|\s*source\s*\|", re.MULTILINE)


@dataclass(frozen=True)
class Pod:
    """A pod as cyclonus sees it: a namespace (with its labels), pod labels and an IP.

    `namespace_labels` gets `kubernetes.io/metadata.name: <namespace>` added, as the API server
    does for every namespace. `name` only labels the pod in failure messages.
    """

    name: str
    namespace: str
    labels: Mapping[str, str]
    ip: str
    namespace_labels: Mapping[str, str] = field(default_factory=dict)

    def to_peer(self) -> dict[str, Any]:
        """The pod as a cyclonus `TrafficPeer` (an internal peer)."""
        return {
            "Internal": {
                "PodLabels": dict(self.labels),
                "NamespaceLabels": {
                    **self.namespace_labels,
                    NAMESPACE_NAME_LABEL: self.namespace,
                },
                "Namespace": self.namespace,
            },
            "IP": self.ip,
        }


@dataclass(frozen=True)
class Traffic:
    """One connection attempt: `source` to `destination` on `port`/`protocol`."""

    source: Pod
    destination: Pod
    port: int
    protocol: str = "TCP"

    def to_json(self) -> dict[str, Any]:
        """The traffic as a cyclonus `matcher.Traffic`."""
        return {
            "Source": self.source.to_peer(),
            "Destination": self.destination.to_peer(),
            "ResolvedPort": self.port,
            "ResolvedPortName": "",
            "Protocol": self.protocol,
        }

    def describe(self) -> str:
        """A short human-readable form for assertion messages."""
        return (
            f"{self.source.name} ({self.source.namespace}) -> "
            f"{self.destination.name} ({self.destination.namespace}) "
            f"{self.port}/{self.protocol}"
        )


def cyclonus_binary() -> Path:
    """The pinned cyclonus binary; raises RuntimeError when it is not built."""
    return tool("cyclonus")


def write_policies(directory: Path, policies: Sequence[Mapping[str, Any]]) -> None:
    """Write each NetworkPolicy to its own file: cyclonus parses one policy per file."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, policy in enumerate(policies):
        if policy.get("kind") != "NetworkPolicy":
            raise ValueError(f"not a NetworkPolicy: {policy.get('kind')!r}")
        # JSON is YAML, and cyclonus's strict YAML parser reads it.
        (directory / f"policy-{index}.json").write_text(json.dumps(policy), encoding="utf-8")


def parse_verdicts(stdout: str, traffic: Sequence[Traffic]) -> list[bool]:
    """The allowed/denied verdicts in `stdout`, checked against `traffic` for count and order."""
    verdicts = [match == "TRUE" for match in _VERDICT.findall(stdout)]
    echoed = [(int(port), protocol) for port, _name, protocol in _TRAFFIC_PORT.findall(stdout)]
    expected = [(t.port, t.protocol) for t in traffic]
    if len(verdicts) != len(traffic) or echoed != expected:
        raise AssertionError(
            f"cyclonus answered {len(verdicts)} verdicts for {len(traffic)} traffic "
            f"(ports echoed {echoed}, expected {expected}):\n{stdout}"
        )
    return verdicts


def query_traffic(
    policies: Sequence[Mapping[str, Any]],
    traffic: Sequence[Traffic],
    *,
    workdir: Path | None = None,
    timeout: float = 60.0,
) -> list[bool]:
    """Whether each of `traffic` is allowed under `policies`, in one cyclonus run.

    Files go to `workdir` (a fresh temporary directory when None). A non-zero exit, or output
    that does not carry one verdict per traffic in order, raises.
    """
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="cyclonus-") as tmp:
            return query_traffic(policies, traffic, workdir=Path(tmp), timeout=timeout)
    policy_dir = workdir / "policies"
    write_policies(policy_dir, policies)
    traffic_path = workdir / "traffic.json"
    traffic_path.write_text(json.dumps([t.to_json() for t in traffic]), encoding="utf-8")
    result = subprocess.run(
        [
            str(cyclonus_binary()),
            "analyze",
            "--mode",
            "query-traffic",
            "--policy-path",
            str(policy_dir),
            "--traffic-path",
            str(traffic_path),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"cyclonus exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return parse_verdicts(result.stdout, traffic)
