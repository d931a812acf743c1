"""The kubelet stand-in: run a Job's pods as local processes, as a node would.

There is no kubelet on this control plane (CONTROL-PLANE.md, "What stands in for a
kubelet"), so a test stands in for one: it reads the pod the Job controller created, runs
each init container and then the container with its exact command and environment (Secrets
resolved as the kubelet resolves them, as the admin) against real databases, and hands the
container's termination message back as the pod's status. Volumes are directories: a Secret
volume holds one file per key, an emptyDir is empty, a downwardAPI volume holds the pod's
annotations it names; a mount path in the arguments is rewritten to its directory. The
projected ServiceAccount token is a kubeconfig for the same account.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from e2e.fixtures_operator import get
from e2e.harness import ControlPlane

REPO = Path(__file__).resolve().parent.parent
# Where the rendered pod mounts its projected ServiceAccount token (client libraries look there).
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
# The kubelet keeps at most this many bytes of a container's termination message.
TERMINATION_MESSAGE_LIMIT = 4096
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


@dataclass(frozen=True)
class ContainerRun:
    """One container of a Job's pod, run as a local process, and what it left behind."""

    pod: str
    argv: list[str]
    environment: dict[str, str]
    returncode: int
    stdout: str
    stderr: str
    termination_message: str


def _kubectl_json(plane: ControlPlane, *args: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(plane.kubectl(*args, "-o", "json").stdout)
    return doc


def _expand(text: str, environment: dict[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion in env values, command and args (`$$` escapes)."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return environment.get(match.group(1), match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", replace, text)


def _field(pod: dict[str, Any], path: str) -> str:
    """A downward-API `fieldRef` value of the pod (the subset the kubelet supports)."""
    metadata = pod["metadata"]
    keyed = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if keyed:
        return str((metadata.get(keyed.group(1)) or {}).get(keyed.group(2), ""))
    simple = {
        "metadata.name": metadata["name"],
        "metadata.namespace": metadata["namespace"],
        "metadata.uid": metadata["uid"],
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.hostIP": "127.0.0.1",
        "status.podIP": "127.0.0.1",
    }
    assert path in simple, f"the kubelet stand-in does not resolve fieldRef {path!r}"
    return str(simple[path])


def container_environment(
    plane: ControlPlane, pod: dict[str, Any], container: dict[str, Any]
) -> dict[str, str]:
    """The container's `env`, resolved as the kubelet resolves it (Secrets read as admin)."""
    namespace = pod["metadata"]["namespace"]
    assert not container.get("envFrom"), "the kubelet stand-in does not handle envFrom"
    environment: dict[str, str] = {}
    for variable in container.get("env") or []:
        name, source = variable["name"], variable.get("valueFrom")
        if source is None:
            environment[name] = _expand(variable.get("value", ""), environment)
        elif "secretKeyRef" in source or "configMapKeyRef" in source:
            kind = "secret" if "secretKeyRef" in source else "configmap"
            ref = source.get("secretKeyRef") or source["configMapKeyRef"]
            obj = get(plane, kind, ref["name"], namespace)
            data = (obj or {}).get("data") or {}
            if ref["key"] not in data:
                assert ref.get("optional"), f"{kind} {ref['name']} has no key {ref['key']}"
                continue
            value = data[ref["key"]]
            environment[name] = base64.b64decode(value).decode() if kind == "secret" else value
        elif "fieldRef" in source:
            environment[name] = _field(pod, source["fieldRef"]["fieldPath"])
        else:
            raise AssertionError(f"the kubelet stand-in does not resolve {source}")
    return environment


def _service_account_kubeconfig(
    plane: ControlPlane, pod: dict[str, Any], container: dict[str, Any]
) -> Path:
    """A kubeconfig for the pod's ServiceAccount, in place of its projected token.

    The container must mount a projected ServiceAccount token where client libraries look for
    it; only then does a token for the same account stand in for it honestly.
    """
    spec = pod["spec"]
    mounted = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
    assert TOKEN_PATH in mounted, f"container {container['name']} mounts no ServiceAccount token"
    volume = next(v for v in spec["volumes"] if v["name"] == mounted[TOKEN_PATH])
    sources = (volume.get("projected") or {}).get("sources") or []
    assert any("serviceAccountToken" in s for s in sources), volume
    return plane.kubeconfig_for_service_account(
        pod["metadata"]["namespace"], spec["serviceAccountName"], 600
    )


def pod_volumes(plane: ControlPlane, pod: dict[str, Any], workdir: Path) -> dict[str, Path]:
    """Each volume of the pod as a directory, filled as the kubelet fills it (name -> path).

    Secret volumes: one file per key (read as the admin, from the pod's namespace: a Secret
    volume cannot name another); emptyDir: empty; downwardAPI: the fields it names. The
    projected token volume stays empty (the kubeconfig stands in for it).
    """
    namespace = pod["metadata"]["namespace"]
    out: dict[str, Path] = {}
    for volume in pod["spec"].get("volumes") or []:
        directory = workdir / f"{pod['metadata']['name']}-{volume['name']}"
        directory.mkdir(parents=True, exist_ok=True)
        out[volume["name"]] = directory
        if "secret" in volume:
            secret = get(plane, "secret", volume["secret"]["secretName"], namespace)
            assert secret is not None, f"Secret {volume['secret']['secretName']} is missing"
            for key, value in (secret.get("data") or {}).items():
                (directory / key).write_bytes(base64.b64decode(value))
        elif "downwardAPI" in volume:
            for item in volume["downwardAPI"]["items"]:
                (directory / item["path"]).write_text(_field(pod, item["fieldRef"]["fieldPath"]))
        else:
            assert "emptyDir" in volume or "projected" in volume, volume
    return out


def _local_paths(container: dict[str, Any], volumes: dict[str, Path]) -> list[tuple[str, Path]]:
    """(mount path, directory) of the container's volume mounts, longest path first."""
    mounts = [
        (m["mountPath"], volumes[m["name"]])
        for m in container.get("volumeMounts") or []
        if m["mountPath"] not in (TOKEN_PATH, "/tmp")  # noqa: S108 - a mount path
    ]
    return sorted(mounts, key=lambda pair: -len(pair[0]))


def _rewrite(arg: str, mounts: list[tuple[str, Path]]) -> str:
    for path, directory in mounts:
        if arg == path or arg.startswith(path + "/"):
            return str(directory) + arg[len(path) :]
    return arg


def _argv(container: dict[str, Any], environment: dict[str, str],
          mounts: list[tuple[str, Path]]) -> list[str]:
    command = [_expand(part, environment) for part in container.get("command") or []]
    args = [_rewrite(_expand(part, environment), mounts) for part in container.get("args") or []]
    # The image's programs are this checkout's, run by the interpreter of the tests.
    if command[:1] == ["dataward"]:
        return [sys.executable, "-m", "dataward", *command[1:], *args]
    assert command[:2] == ["python", "-m"], f"unexpected container command {command}"
    return [sys.executable, *command[1:], *args]


def _run_container(
    plane: ControlPlane,
    pod: dict[str, Any],
    container: dict[str, Any],
    workdir: Path,
    volumes: dict[str, Path],
    termination_log: Path,
) -> tuple[list[str], dict[str, str], subprocess.CompletedProcess[str]]:
    environment = container_environment(plane, pod, container)
    argv = _argv(container, environment, _local_paths(container, volumes))
    process_env = {
        # What the image and the kubelet provide besides the container's own variables. No
        # KUBERNETES_SERVICE_HOST: there is no in-cluster API address here, so the client
        # falls back to KUBECONFIG, which carries the same identity as the projected token.
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "HOSTNAME": pod["metadata"]["name"],
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "PYTHONPATH": str(REPO / "operator"),
        **environment,
        "KUBECONFIG": str(_service_account_kubeconfig(plane, pod, container)),
        # The file the kubelet would mount at terminationMessagePath.
        "DATAWARD_TERMINATION_LOG": str(termination_log),
    }
    finished = subprocess.run(
        argv, env=process_env, cwd=workdir, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    return argv, environment, finished


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_pod(plane: ControlPlane, pod: dict[str, Any], workdir: Path) -> ContainerRun:
    """Run the pod's init containers, then its one container, locally; report it terminated.

    An init container that fails ends the pod there, as on a node (restartPolicy Never).
    """
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    (container,) = pod["spec"]["containers"]
    assert container["terminationMessagePolicy"] == "File"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    volumes = pod_volumes(plane, pod, workdir)
    termination_log = workdir / f"{name}.termination-log"
    started = datetime.now(UTC)
    for init in pod["spec"].get("initContainers") or []:
        argv, environment, finished_process = _run_container(
            plane, pod, init, workdir, volumes, workdir / f"{name}-{init['name']}.log"
        )
        if finished_process.returncode != 0:
            break
    else:
        argv, environment, finished_process = _run_container(
            plane, pod, container, workdir, volumes, termination_log
        )
    finished = datetime.now(UTC)
    message = ""
    if termination_log.exists():
        message = termination_log.read_bytes()[:TERMINATION_MESSAGE_LIMIT].decode(errors="replace")
    code = finished_process.returncode
    # The status subresource, written as the node's kubelet would (the admin may write any
    # pod's status). kube-apiserver v1.37 validates little here: it accepted a container
    # status with no name, image or imageID (defaulting ready to false, restartCount to 0),
    # so every field a kubelet writes is filled in on purpose, the container's name above all
    # (the operator reads the message of the pod's containerStatuses). The Job controller
    # needs nothing more than a terminal phase: it counts the pod as succeeded or failed and
    # removes its batch.kubernetes.io/job-tracking finalizer itself, then marks the Job
    # Complete (or, past backoffLimit, Failed).
    status = {
        "status": {
            "phase": "Succeeded" if code == 0 else "Failed",
            "startTime": _instant(started),
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": code,
                            "reason": "Completed" if code == 0 else "Error",
                            "message": message,
                            "startedAt": _instant(started),
                            "finishedAt": _instant(finished),
                        }
                    },
                }
            ],
        }
    }
    plane.kubectl(
        "patch", "pod", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip
    return ContainerRun(
        name,
        argv,
        environment,
        code,
        finished_process.stdout,
        finished_process.stderr,
        message,
    )


def job_outcome(job: dict[str, Any] | None) -> str | None:
    """Complete or Failed once the Job controller has finished the Job, else None."""
    for item in ((job or {}).get("status") or {}).get("conditions") or []:
        if item["type"] in ("Complete", "Failed") and item["status"] == "True":
            return str(item["type"])
    return None


def run_job(
    plane: ControlPlane, namespace: str, job: str, workdir: Path, timeout: float = 180
) -> tuple[str, list[ContainerRun]]:
    """Be the kubelet for every pod of `job` until the Job controller finishes the Job.

    A failed pod is replaced by the Job controller (backoffLimit) after a back-off; each
    replacement runs too, as it would on a node. Returns the Job's outcome and the runs.
    """
    runs: list[ContainerRun] = []
    started: set[str] = set()  # a pod runs once, even if a list still shows it Pending
    deadline = time.monotonic() + timeout
    while True:
        outcome = job_outcome(get(plane, "job", job, namespace))
        if outcome:
            return outcome, runs
        pods = _kubectl_json(plane, "get", "pods", "-n", namespace, "-l", f"{JOB_NAME_LABEL}={job}")
        waiting = [
            p
            for p in pods["items"]
            if (p.get("status") or {}).get("phase") == "Pending"
            and not p["metadata"].get("deletionTimestamp")
            and p["metadata"]["name"] not in started
        ]
        for pod in waiting:
            started.add(pod["metadata"]["name"])
            runs.append(run_pod(plane, pod, workdir))
        if time.monotonic() > deadline:
            raise AssertionError(f"Job {namespace}/{job} not finished after {timeout:g} s: {pods}")
        if not waiting:
            time.sleep(0.2)
