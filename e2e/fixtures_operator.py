"""The operator as a user runs it: a process under the Helm chart's ServiceAccount and RBAC.

The chart's RBAC is rendered with `helm template` and applied, a token for its ServiceAccount
becomes a kubeconfig of its own, and `dataward run` runs with that kubeconfig alone, so every
e2e test proves the chart grants enough, and nothing the tests rely on needs more.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataward.controller.clock import TEST_CLOCK_ENV
from e2e.fixtures_api import install_crds
from e2e.harness import ControlPlane, die_with_parent, wait_for
from e2e.tools import tool

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "dataward"
RELEASE, OPERATOR_NAMESPACE = "dataward", "dataward-system"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
LEASE_SECONDS = 6
KEY_RING_GRACE_SECONDS = 20


def chart_rbac(
    namespace: str = OPERATOR_NAMESPACE, values: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The ServiceAccount and RBAC objects the chart installs for the operator (`--set values`)."""
    sets = [arg for value in values for arg in ("--set", value)]
    rendered = subprocess.run(
        # Helm built from its module does not know the cluster's version: say it.
        [str(tool("helm")), "template", RELEASE, str(CHART), "--namespace", namespace,
         "--kube-version", "v1.37.2", *sets],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc and doc.get("kind") in RBAC_KINDS]


def operator_account(rbac: list[dict[str, Any]]) -> str:
    """The name of the operator's ServiceAccount among the chart's objects."""
    accounts = [d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount"]
    assert len(accounts) == 1, f"the chart should install one ServiceAccount, found {accounts}"
    return accounts[0]


class OperatorProcess:
    """`dataward run` as a child process, logging to a file the tests read."""

    def __init__(
        self,
        plane: ControlPlane,
        kubeconfig: Path,
        account: str,
        log: Path,
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.plane = plane
        self.env = dict(env or {})  # more environment (the evidence log's, a test clock)
        self.kubeconfig = kubeconfig
        self.account = account
        self.log = log
        # The arguments after `run --kubeconfig FILE`; None: the session operator's below.
        self.args = list(args) if args is not None else None
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start a new process (the previous one must have stopped)."""
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env["PATH"] = f"{self.plane.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env.update(self.env)
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dataward",
                "run",
                "--kubeconfig",
                str(self.kubeconfig),
                *(self.args if self.args is not None else self._session_args()),
            ],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # no orphan operator if pytest is killed
        )

    def session_args(self) -> list[str]:
        """The session operator's arguments (a module's own operator starts from them)."""
        return self._session_args()

    def _session_args(self) -> list[str]:
        """The session operator's arguments: the chart's, with e2e timings and no metrics."""
        return [
            "--lease-namespace",
            OPERATOR_NAMESPACE,
            "--lease-duration-seconds",
            str(LEASE_SECONDS),
            "--operator-service-account",
            f"{OPERATOR_NAMESPACE}/{self.account}",
            "--resync-seconds",
            "5",
            "--metrics-port",
            "0",
            "--key-ring-grace-seconds",
            str(KEY_RING_GRACE_SECONDS),
            "--image",
            "dataward:e2e",
        ]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process with `sig` (SIGKILL simulates a crash) and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def logs(self) -> str:
        """Everything the operator has logged in this session."""
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None


def install_operator_identity(plane: ControlPlane) -> tuple[Path, str]:
    """Apply the chart's RBAC and return a kubeconfig for the operator's ServiceAccount."""
    plane.kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    rbac = chart_rbac()
    plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(rbac))
    account = operator_account(rbac)
    return plane.kubeconfig_for_service_account(OPERATOR_NAMESPACE, account, 24 * 3600), account


# The session operator, once a module has started it (modules run in one process, in order).
_SESSION: list[OperatorProcess] = []


@pytest.fixture(scope="session")
def operator(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator, running with exactly the chart's permissions, for the whole session."""
    install_crds(control_plane)
    kubeconfig, account = install_operator_identity(control_plane)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(control_plane, kubeconfig, account, log)
    process.start()
    _SESSION.append(process)
    try:
        yield process
    finally:
        _SESSION.remove(process)
        process.stop()
        if process.process is not None and process.process.returncode not in (0, None, -15):
            print(process.logs()[-4000:])


@pytest.fixture(scope="module")
def session_operator_paused() -> Iterator[None]:
    """No session operator while a module's own operator runs on a test clock.

    PrivacyPolicies are cluster-wide: the session operator (on the real clock) would write a
    module's policy status too, and two operators a month apart disagree on which revision
    is in force. Stopped for the module if an earlier module started it, started again after.
    """
    paused = [p for p in _SESSION if p.process is not None and p.process.poll() is None]
    for process in paused:
        process.stop()
    try:
        yield
    finally:
        for process in paused:
            process.start()


@contextlib.contextmanager
def own_namespace(plane: ControlPlane, prefix: str) -> Iterator[str]:
    """A namespace of a module's own (`prefix` and six hex digits), deleted after it."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    plane.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@contextlib.contextmanager
def clocked_operator(
    plane: ControlPlane, clock_file: Path, namespace: str, lease_name: str, log: Path
) -> Iterator[OperatorProcess]:
    """An operator of a module's own on the test clock in `clock_file`, serving only
    `namespace` (moving its clock on must not touch other modules' stores)."""
    kubeconfig, account = install_operator_identity(plane)
    args = ["--lease-namespace", OPERATOR_NAMESPACE, "--lease-name", lease_name,
            "--lease-duration-seconds", "6",
            "--operator-service-account", f"{OPERATOR_NAMESPACE}/{account}",
            "--resync-seconds", "5", "--metrics-port", "0", "--image", "dataward:e2e",
            "--namespace", namespace]  # fmt: skip
    process = OperatorProcess(plane, kubeconfig, account, log, args,
                              env={TEST_CLOCK_ENV: str(clock_file)})  # fmt: skip
    process.start()
    try:
        yield process
    finally:
        process.stop()


def apply(plane: ControlPlane, *objects: dict[str, Any]) -> None:
    """Server-side apply objects as the admin (a GitOps pipeline's role)."""
    plane.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        input=yaml.safe_dump_all(list(objects)),
    )


def grant_user(
    plane: ControlPlane, namespace: str, user: str, rules: list[dict[str, Any]], role: str
) -> Path:
    """The kubeconfig of `user` (no groups), granted `rules` in the namespace by a Role and a
    RoleBinding called `role`, and nothing else: an attacker's or a careless user's rights."""
    rbac = "rbac.authorization.k8s.io"
    apply(
        plane,
        {"apiVersion": f"{rbac}/v1", "kind": "Role",
         "metadata": {"name": role, "namespace": namespace}, "rules": rules},
        {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding",
         "metadata": {"name": role, "namespace": namespace},
         "roleRef": {"apiGroup": rbac, "kind": "Role", "name": role},
         "subjects": [{"apiGroup": rbac, "kind": "User", "name": user}]},
    )  # fmt: skip
    return plane.kubeconfig_for_user(user)


def load_example(path: str, namespace: str | None = None, **spec: Any) -> dict[str, Any]:
    """A YAML file of examples/ as a dict, moved to `namespace`, with spec fields replaced."""
    doc = copy.deepcopy(yaml.safe_load((REPO / path).read_text()))
    if namespace is not None:
        doc["metadata"]["namespace"] = namespace
    doc.setdefault("spec", {}).update(spec)
    return doc


SEED_POLICY = "examples/policy.yaml"


@pytest.fixture(scope="module")
def seed_policy_applied(
    control_plane: ControlPlane, operator: OperatorProcess
) -> dict[str, Any]:
    """The seed's policy, applied once a module, with the session operator running (not
    e2e/fixtures_api.py `seed_policy`, a context manager for a policy of its own).

    Registered in e2e/conftest.py; a module asks for it with
    `pytestmark = pytest.mark.usefixtures("seed_policy_applied")`.
    """
    doc = load_example(SEED_POLICY)
    apply(control_plane, doc)
    return doc


def get(
    plane: ControlPlane, kind: str, name: str, namespace: str | None = None
) -> dict[str, Any] | None:
    """An object as the admin sees it, or None."""
    args = ["get", kind, name, "-o", "yaml"]
    if namespace:
        args += ["-n", namespace]
    result = plane.kubectl(*args, check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise RuntimeError(result.stderr)
    doc: dict[str, Any] = yaml.safe_load(result.stdout)
    return doc


def condition(store: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    """One condition of a store's status ({} when absent)."""
    for item in ((store or {}).get("status") or {}).get("conditions") or []:
        if item["type"] == type_:
            return dict(item)
    return {}


def wait_condition(
    plane: ControlPlane,
    namespace: str,
    name: str,
    type_: str,
    status: str,
    reason: str | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    """Wait until the store's condition has `status` (and `reason`); return the store."""

    def check() -> dict[str, Any] | None:
        store = get(plane, "pds", name, namespace)
        found = condition(store, type_)
        ok = found.get("status") == status and (reason is None or found.get("reason") == reason)
        return store if ok else None

    try:
        return wait_for(check, timeout=timeout, message=f"{type_}={status} on {namespace}/{name}")
    except TimeoutError:
        store = get(plane, "pds", name, namespace)
        raise AssertionError(
            f"{namespace}/{name}: {type_} never became {status}/{reason}; conditions now: "
            f"{yaml.safe_dump(((store or {}).get('status') or {}).get('conditions'))}"
        ) from None


def sleep_for(seconds: float) -> None:
    """Let time pass (observing a window, not asserting a duration)."""
    time.sleep(seconds)
