"""`make run`: a cluster (yours, or a local control plane), Dataward installed as the chart does.

With a reachable cluster in $KUBECONFIG (or ~/.kube/config) it uses that cluster; otherwise it
starts the local control plane of e2e/harness.py. It renders the Helm chart with
`helm template --kube-version <the cluster's version>` and applies what runs without a
kubelet: the CRDs, the ServiceAccount and RBAC, and the ValidatingAdmissionPolicies. The
operator runs here as a process with the rendered Deployment's own arguments, under a token
of the chart's ServiceAccount (nothing more), with metrics on a free local port. Then it
applies the examples, shows an admission policy refusing a store outside its policy, the
metrics answering and the stores' status, and keeps everything running until Ctrl-C.
The local control plane's API server audits with the policy `dataward audit-policy` renders
for the examples (written to the state directory), so every read of an example store's key
ring or credentials lands in its audit log; on your own cluster the policy is written but
installing it is the API server's administrator's job (charts/dataward/README.md).
`--exit-after-status` stops once the status is printed. Ctrl-C stops the operator (and the
local control plane) and removes the files it wrote; on your own cluster what was installed
stays, like a `helm install`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from e2e.cluster import DEFAULT_STATE_DIR, start_local_cluster, stop_local_cluster
from e2e.harness import ControlPlane, crds_established, die_with_parent, free_port
from e2e.tools import REPO_ROOT, tool

RELEASE, OPERATOR_NAMESPACE = "dataward", "dataward-system"
CHART = REPO_ROOT / "charts" / "dataward"
EXAMPLES = REPO_ROOT / "examples"
# What needs a kubelet (the operator's pod and what selects it) or a CRD the cluster may
# not have; everything else the chart renders is applied.
NOT_APPLIED = {"Deployment", "Service", "ServiceMonitor", "PrometheusRule"}


def say(text: str) -> None:
    """Progress for the person running `make run`."""
    print(f"==> {text}", flush=True)


def reachable(kubeconfig: str) -> bool:
    """True when the cluster of `kubeconfig` answers /readyz."""
    result = subprocess.run(
        [str(tool("kubectl")), "--kubeconfig", kubeconfig, "--request-timeout=5s",
         "get", "--raw", "/readyz"],
        capture_output=True, text=True, check=False,
    )
    return result.returncode == 0 and result.stdout.strip() == "ok"


def configured_kubeconfig() -> str | None:
    """The user's kubeconfig when it points at a cluster that answers."""
    candidate = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if candidate and all(Path(p).is_file() for p in candidate.split(os.pathsep)):
        return candidate if reachable(candidate) else None
    return None


def run_kubectl(kubeconfig: str, *args: str,
                stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run kubectl against the chosen cluster."""
    return subprocess.run([str(tool("kubectl")), "--kubeconfig", kubeconfig, *args],
                          capture_output=True, text=True, input=stdin, check=False)


def kubectl(kubeconfig: str, *args: str, stdin: str | None = None) -> str:
    """Run kubectl against the chosen cluster; fail loudly."""
    result = run_kubectl(kubeconfig, *args, stdin=stdin)
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def wait_established(kubeconfig: str, crds: Sequence[str], timeout: float = 60.0) -> None:
    """Wait until each CRD (`crd/NAME`) is Established (`crds_established`)."""
    deadline = time.monotonic() + timeout
    while True:
        got = run_kubectl(kubeconfig, "get", *crds, "-o", "json")
        if got.returncode == 0 and crds_established(got.stdout, len(crds)):
            return
        if time.monotonic() >= deadline:
            raise SystemExit(f"the CRDs were not Established within {timeout:g} s: {crds}")
        time.sleep(0.2)


def server_version(kubeconfig: str) -> str:
    """The cluster's Kubernetes version (v1.37.2), which the chart is rendered for."""
    version = json.loads(kubectl(kubeconfig, "version", "-o", "json"))["serverVersion"]
    return str(version["gitVersion"]).split("+")[0]


def render_chart(kube_version: str) -> list[dict[str, Any]]:
    """`helm template` of the chart, as `helm install` would render it for this cluster."""
    result = subprocess.run(
        [str(tool("helm")), "template", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE,
         "--kube-version", kube_version],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"helm template failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def deployment_command(docs: Sequence[dict[str, Any]]) -> tuple[str, list[str]]:
    """The rendered Deployment's ServiceAccount and its container's arguments after `run`."""
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = [str(a) for a in container["args"]]
    if args[0] != "run":
        raise SystemExit(f"the chart's Deployment does not run `dataward run`: {args}")
    return str(pod["serviceAccountName"]), args[1:]


def token_kubeconfig(kubeconfig: str, account: str, path: Path) -> Path:
    """A kubeconfig holding only a token of ServiceAccount OPERATOR_NAMESPACE/account."""
    token = kubectl(kubeconfig, "create", "token", account, "-n", OPERATOR_NAMESPACE,
                    "--duration=24h").strip()
    config = json.loads(kubectl(kubeconfig, "config", "view", "--minify", "--raw",
                                "-o", "json"))
    user = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{account}"
    config["users"] = [{"name": user, "user": {"token": token}}]
    config["contexts"][0]["context"] = {"cluster": config["contexts"][0]["context"]["cluster"],
                                        "user": user}
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config))
    return path


def wait_ready(kubeconfig: str, timeout: float) -> bool:
    """Wait until every store reports Ready=True and every policy counts them all Ready (its
    status is written after its stores', so printed at once it could still say 0 of 3), or
    the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = json.loads(kubectl(kubeconfig, "get", "pds", "-A", "-o", "json"))["items"]
        states = [
            next((c["status"] for c in (i.get("status") or {}).get("conditions") or []
                  if c["type"] == "Ready"), None)
            for i in items
        ]
        policies = json.loads(kubectl(kubeconfig, "get", "privacypolicies", "-o", "json"))
        counted = all(
            (p.get("status") or {}).get("readyStores") == (p.get("status") or {}).get("stores")
            for p in policies["items"]
        )
        if items and all(s == "True" for s in states) and counted:
            return True
        time.sleep(1)
    return False


def refuse_a_bad_store(kubeconfig: str) -> None:
    """Apply a store whose category is not in its policy and print the API server's refusal.

    A new ValidatingAdmissionPolicy takes a moment to load: a server-side dry run (admission
    runs, nothing is stored) is repeated until it is refused, then the store is applied.
    """
    store = yaml.safe_load((EXAMPLES / "stores" / "support-inquiries.yaml").read_text())
    store = copy.deepcopy(store)
    store["metadata"]["name"] = "wrong-category"
    store["spec"]["category"] = "shoe-sizes"
    body = yaml.safe_dump(store)
    deadline = time.monotonic() + 60
    while run_kubectl(kubeconfig, "apply", "--server-side", "--dry-run=server", "-f", "-",
                      stdin=body).returncode == 0:
        if time.monotonic() > deadline:
            say("the admission policies did not refuse a store outside its policy within 60 s")
            return
        time.sleep(1)
    print("$ kubectl apply -f - <<< 'store crm/wrong-category, category: shoe-sizes'",
          flush=True)
    result = run_kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=body)
    print((result.stdout + result.stderr).strip(), flush=True)
    if result.returncode == 0:
        kubectl(kubeconfig, "delete", "pds", "wrong-category", "-n", "crm")


def show_metrics(url: str) -> None:
    """Fetch /metrics once and print the leader and Ready lines."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (our own URL)
            text = answer.read().decode()
    except OSError as error:
        say(f"{url} did not answer: {error}")
        return
    wanted = [line for line in text.splitlines()
              if line.startswith("dataward_leader ")
              or (line.startswith("dataward_store_condition{")
                  and 'type="Ready"' in line and 'status="True"' in line)]
    print(f"$ curl -s {url} | grep -e ^dataward_leader -e 'type=\"Ready\",status=\"True\"'")
    print("\n".join(wanted), flush=True)


def render_audit_policy(path: Path) -> None:
    """`dataward audit-policy` for the example policy and stores, written to `path`."""
    rendered = subprocess.run(
        [sys.executable, "-m", "dataward", "audit-policy", "-f", str(EXAMPLES / "policy.yaml"),
         "-f", str(EXAMPLES / "stores")],
        capture_output=True, text=True, check=True,
    )
    path.write_text(rendered.stdout)


def stop_operator(operator: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM (the operator releases its Lease), then SIGKILL if it hangs."""
    if operator is None or operator.poll() is not None:
        return
    operator.terminate()
    try:
        operator.wait(timeout=20)
    except subprocess.TimeoutExpired:
        operator.kill()
        operator.wait(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    """Bring up Dataward and the examples; return the exit status."""
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--exit-after-status", action="store_true",
                        help="stop everything once the stores' status is printed")
    args = parser.parse_args(argv)
    args.state_dir.mkdir(parents=True, exist_ok=True)

    plane: ControlPlane | None = None
    operator: subprocess.Popen[bytes] | None = None
    operator_kubeconfig = args.state_dir / "operator.kubeconfig"
    stop = threading.Event()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        stop.set()
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM at any point end in the same clean stop (a background job may have
    # SIGINT ignored: install the handler anyway).
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        kubeconfig = configured_kubeconfig()
        audit_policy = args.state_dir / "audit-policy.yaml"
        say(f"rendering the audit policy: dataward audit-policy -f examples/policy.yaml "
            f"-f examples/stores > {audit_policy}")
        render_audit_policy(audit_policy)
        if kubeconfig:
            say(f"using the cluster of {kubeconfig} (its API server's audit policy is its "
                f"administrator's: install {audit_policy} there to record Secret reads)")
        else:
            say("no cluster configured: starting a local control plane "
                "(etcd, kube-apiserver, kube-controller-manager) that audits with it")
            plane = start_local_cluster(
                args.state_dir, extra_apiserver_args=[f"--audit-policy-file={audit_policy}"])
            kubeconfig = str(args.state_dir / "kubeconfig")
            say(f"control plane ready in {plane.startup_seconds or 0:.1f} s at {plane.server}; "
                f"audit log: {plane.audit_log}")
        version = server_version(kubeconfig)
        say(f"rendering the chart: helm template {RELEASE} charts/dataward "
            f"--namespace {OPERATOR_NAMESPACE} --kube-version {version}")
        docs = render_chart(version)
        say("installing the CRDs (charts/dataward/crds)")
        kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f",
                str(CHART / "crds"))
        wait_established(kubeconfig, sorted(
            f"crd/{d['metadata']['name']}" for d in map(yaml.safe_load, (
                path.read_text() for path in sorted((CHART / "crds").glob("*.yaml"))))))
        applied = [d for d in docs if d["kind"] not in NOT_APPLIED]
        for doc in applied:
            # What Helm marks its own objects with (the label is the chart's already), so a
            # later `helm install` of the release adopts them instead of refusing them.
            doc["metadata"].setdefault("annotations", {}).update({
                "meta.helm.sh/release-name": RELEASE,
                "meta.helm.sh/release-namespace": OPERATOR_NAMESPACE})
        kinds: dict[str, int] = {}
        for doc in applied:
            kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
        say("applying the chart's " + ", ".join(f"{n} {k}" for k, n in kinds.items())
            + f" (not its {', '.join(sorted({d['kind'] for d in docs} & NOT_APPLIED))}: "
            "the operator runs here)")
        namespace = json.dumps({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": OPERATOR_NAMESPACE}})
        kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=namespace)
        kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts",
                "--field-manager=make-run", "-f", "-", stdin=yaml.safe_dump_all(applied))
        say("applying the seed's policy, the example namespaces and their credentials")
        for name in ("namespaces.yaml", "secrets.yaml", "policy.yaml"):
            kubectl(kubeconfig, "apply", "--server-side", "-f", str(EXAMPLES / name))

        account, chart_args = deployment_command(docs)
        token_kubeconfig(kubeconfig, account, operator_kubeconfig)
        port = free_port()
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        log_path = args.state_dir / "operator.log"
        say(f"starting the operator as ServiceAccount {OPERATOR_NAMESPACE}/{account}, "
            f"with the Deployment's arguments (log: {log_path}):")
        command = [sys.executable, "-m", "dataward", "run",
                   "--kubeconfig", str(operator_kubeconfig), *chart_args,
                   "--metrics-port", str(port)]
        print("    dataward run " + " ".join(command[4:]), flush=True)
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env.update(POD_NAME=f"{RELEASE}-local", PYTHONUNBUFFERED="1")
        operator = subprocess.Popen(
            command, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # Ctrl-C reaches us; we stop it in order
            preexec_fn=die_with_parent(),
        )
        say(f"metrics: {metrics_url}")
        say("applying the example stores")
        kubectl(kubeconfig, "apply", "--server-side", "-f", str(EXAMPLES / "stores"))
        say("the admission policies refuse a store whose category is not in its policy:")
        refuse_a_bad_store(kubeconfig)
        if not wait_ready(kubeconfig, 90):
            say("not every store became Ready within 90 s; see the conditions below")
        if operator.poll() is not None:
            print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
            raise SystemExit(f"the operator exited with {operator.returncode}")
        show_metrics(metrics_url)
        print(kubectl(kubeconfig, "get", "privacypolicies,personaldatastores", "-A"), flush=True)
        print(kubectl(kubeconfig, "get", "pds", "support-inquiries", "-n", "crm", "-o",
                      "jsonpath={range .status.conditions[*]}{.type}={.status} "
                      "({.reason}){'\\n'}{end}"), flush=True)
        say(f"kubectl: export KUBECONFIG={kubeconfig}; PATH={tool('kubectl').parent}:$PATH")
        if args.exit_after_status:
            return 0
        say("running; press Ctrl-C to stop the operator"
            + (" and the local control plane" if plane else ""))
        while not stop.wait(1):
            if operator.poll() is not None:
                print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
                say(f"the operator exited with {operator.returncode}")
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        if operator is not None:
            stop_operator(operator)
            say("stopped the operator")
        with contextlib.suppress(FileNotFoundError):
            operator_kubeconfig.unlink()  # a token of the operator's account
        if plane is not None:
            stop_local_cluster(plane, args.state_dir)
            say("stopped the local control plane")
    return 0


if __name__ == "__main__":
    sys.exit(main())
