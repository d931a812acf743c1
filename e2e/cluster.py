"""Run the local control plane until stopped: ``python -m e2e.cluster up [--state-dir DIR]``.

Used by ``make run`` when no cluster is configured: the admin kubeconfig is written to
``<state-dir>/kubeconfig`` and the process id to ``<state-dir>/cluster.pid``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from e2e.harness import ControlPlane, ControlPlaneError
from e2e.tools import REPO_ROOT

DEFAULT_STATE_DIR = REPO_ROOT / ".dataward"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _check_not_running(pid_file: Path) -> None:
    """Refuse to start a second cluster over the state of one that is still running."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    if pid != os.getpid() and _pid_alive(pid):
        raise ControlPlaneError(
            f"a local cluster is already running (pid {pid}, {pid_file}); stop it first"
        )


def start_local_cluster(
    state_dir: Path = DEFAULT_STATE_DIR, extra_apiserver_args: Sequence[str] = ()
) -> ControlPlane:
    """Start a control plane and publish its admin kubeconfig and pid under state_dir.

    The caller owns the result and must stop() it (it is also stopped at interpreter exit);
    stop_local_cluster() also removes the published files.
    """
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    _check_not_running(state_dir / "cluster.pid")
    plane = ControlPlane(extra_apiserver_args=extra_apiserver_args).start()
    try:
        kubeconfig = state_dir / "kubeconfig"
        shutil.copyfile(plane.kubeconfig, kubeconfig)
        kubeconfig.chmod(0o600)  # it holds the admin's private key
        (state_dir / "cluster.pid").write_text(f"{os.getpid()}\n")
    except BaseException:
        plane.stop()
        raise
    return plane


def stop_local_cluster(plane: ControlPlane, state_dir: Path = DEFAULT_STATE_DIR) -> None:
    """Stop the control plane and remove the files that pointed at it."""
    plane.stop()
    # A kubeconfig pointing at a dead port only confuses the next tool that reads it.
    for name in ("kubeconfig", "cluster.pid"):
        with contextlib.suppress(FileNotFoundError):
            (Path(state_dir) / name).unlink()


def _up(state_dir: Path) -> int:
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    # Installed before starting, so a Ctrl-C during start-up also ends in a clean stop.
    # (A background job may have SIGINT ignored; "up" wants it anyway.)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    print("starting etcd, kube-apiserver and kube-controller-manager ...", file=sys.stderr)
    plane = start_local_cluster(state_dir)
    kubeconfig = (state_dir / "kubeconfig").resolve()
    try:
        print(f"control plane ready in {plane.startup_seconds:.1f} s at {plane.server}")
        print(f"export KUBECONFIG={kubeconfig}")
        print(f"kubectl: {plane.bin_dir / 'kubectl'}")
        print(f"logs: {plane.dir / 'logs'}")
        print("press Ctrl-C to stop", flush=True)
        while not stop_requested.wait(1.0):
            dead = plane.failed_processes()
            if dead:
                print(f"error: {', '.join(dead)} exited\n{plane.log_tails()}", file=sys.stderr)
                return 1
        print("stopping ...", file=sys.stderr)
        return 0
    finally:
        stop_local_cluster(plane, state_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m e2e.cluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the control plane and keep it until Ctrl-C")
    up.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where to write kubeconfig and cluster.pid (default: {DEFAULT_STATE_DIR})",
    )
    args = parser.parse_args(argv)
    try:
        return _up(args.state_dir)
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
