"""A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) on loopback.

The model is controller-runtime's envtest: plain processes, free loopback ports, a temporary
directory, certificates made here. No kubelet and no scheduler: pods are created but stay
Pending. The flags are the ones verified in the design notes (CONTROL-PLANE.md).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import datetime as dt
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from e2e.tools import CONTROL_PLANE_TOOLS, tool_bin_dir

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

T = TypeVar("T")

CLUSTER_NAME = "dataward-e2e"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# The controllers that stand in for a full cluster; v1.37 names them with a -controller suffix.
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "cronjob-controller",
    "job-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
)
LOG_TAIL_LINES = 40

AnyPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class ControlPlaneError(RuntimeError):
    """The control plane failed to start, or one of its processes died."""


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; unlike CalledProcessError, str() includes its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr:\n{self.stderr}"


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    message: str,
    interval: float = 0.1,
) -> T:
    """Poll predicate until it returns something truthy, and return that; else raise.

    The timeout bounds how long a test waits for eventual consistency (caches, controllers);
    it is not a timing assertion, so keep it generous.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s: {message}")
        time.sleep(interval)


def crds_established(listing: str, count: int) -> bool:
    """Whether `kubectl get crd/A crd/B ... -o json` (`listing`) shows all `count` CRDs
    Established. Read, not `kubectl wait`: that fails at once on a CRD whose
    status.conditions is still empty instead of waiting for it (seen in a local e2e run)."""
    items = json.loads(listing).get("items") or []
    return len(items) == count and all(
        any(c.get("type") == "Established" and c.get("status") == "True"
            for c in (item.get("status") or {}).get("conditions") or [])
        for item in items
    )  # fmt: skip


# --- certificates -------------------------------------------------------------------------


def _new_ec_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key: as good as RSA for TLS here, and generated in microseconds."""
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: AnyPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organizations: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


class _CertificateAuthority:
    """A throwaway CA that signs the serving and client certificates of one control plane."""

    def __init__(self) -> None:
        self.key = _new_ec_key()
        now = dt.datetime.now(dt.UTC)
        subject = _name("dataward-e2e-ca")
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            # Backdated an hour so a slightly skewed clock does not reject a fresh certificate.
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        common_name: str,
        organizations: Iterable[str] = (),
        *,
        server_names: Sequence[str] = (),
        client: bool = False,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """Sign a leaf certificate: a serving one when server_names is given, else a client one."""
        key = _new_ec_key()
        now = dt.datetime.now(dt.UTC)
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server_names else []
        if client or not server_names:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, organizations))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server_names:
            alt_names: list[x509.GeneralName] = []
            for server_name in server_names:
                try:
                    alt_names.append(x509.IPAddress(ipaddress.ip_address(server_name)))
                except ValueError:
                    alt_names.append(x509.DNSName(server_name))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key


# --- processes and process-wide cleanup ----------------------------------------------------

_LIVE: set[ControlPlane] = set()
# Re-entrant: a signal handler may run while the main thread holds the lock.
_LIVE_LOCK = threading.RLock()
_HOOKS_INSTALLED = False


def _stop_all_live() -> None:
    """Stop every control plane this process started (atexit and signal handlers call this)."""
    with _LIVE_LOCK:
        planes = list(_LIVE)
    for plane in planes:
        plane.stop()


def _install_process_hooks() -> None:
    """Register atexit cleanup once, and stop the children on a SIGTERM/SIGINT that would kill us.

    The children run in their own sessions (so a terminal's Ctrl-C reaches only us, and we
    decide the shutdown order), which means nothing else would ever stop them. A signal the
    program already handles (Python's KeyboardInterrupt, kopf, e2e.cluster) ends in an orderly
    exit, where `with`, fixtures and atexit call stop(); only a signal whose default action
    would kill us on the spot gets a handler: stop everything, then die of that signal.
    """
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(_stop_all_live)
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal only works in the main thread; atexit still covers exit paths.

    def handler(signo: int, frame: FrameType | None) -> None:
        _stop_all_live()
        signal.signal(signo, signal.SIG_DFL)
        os.kill(os.getpid(), signo)

    for signum in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, handler)


def free_ports(count: int) -> list[int]:
    """Ask the kernel for distinct free loopback ports (all held open at once, then released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    """A free loopback port (an operator's metrics, a test database)."""
    return free_ports(1)[0]


def die_with_parent() -> Callable[[], None] | None:
    """On Linux, a preexec_fn making a child get SIGKILL if we die without cleaning up.

    This covers SIGKILL of the Python process (e.g. a CI timeout), where atexit never runs.
    libc is loaded here, before fork, so the child only makes one plain C call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    pr_set_pdeathsig = 1
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(1)

    return preexec


class _Process:
    """One child process, in its own session, with its output in a log file."""

    def __init__(self, name: str, args: Sequence[str], log_path: Path, cwd: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # closed in stop()
        self.popen = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # one C call after fork: see its docstring
        )

    def exited(self) -> int | None:
        """The exit code if the process has exited, else None."""
        return self.popen.poll()

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the process's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited in time."""
        try:
            if self.popen.poll() is None:
                self._signal_group(signal.SIGTERM)
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(signal.SIGKILL)
                    self.popen.wait(5)
            # The group may hold grandchildren even after the leader has gone.
            self._signal_group(signal.SIGKILL)
        finally:
            self._log.close()

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)


# --- the control plane ---------------------------------------------------------------------


def _write_private(path: Path, data: bytes | str) -> Path:
    """Write a file only its owner can read: keys, tokens and kubeconfigs. Whole or not at
    all: written beside it and renamed over it, so that a process reading it meanwhile (an
    operator starting while a test mints the same ServiceAccount's token again) never
    reads it empty or half written."""
    raw = data.encode() if isinstance(data, str) else data
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise
    return path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _safe_file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class ControlPlane:
    """etcd, kube-apiserver and kube-controller-manager as local processes on loopback.

    Use as ``with ControlPlane() as cp:``, or call start() and stop(). Every started control
    plane is also stopped at interpreter exit and on SIGTERM/SIGINT.
    """

    def __init__(
        self,
        *,
        bin_dir: Path | None = None,
        keep_dir: bool = False,
        start_timeout: float = 90.0,
        extra_apiserver_args: Sequence[str] = (),
    ) -> None:
        """Prepare (not start) a control plane; bin_dir defaults to the pinned tools' dir."""
        self._bin_dir = bin_dir
        self._keep_dir = keep_dir
        self._start_timeout = start_timeout
        self._extra_apiserver_args = tuple(extra_apiserver_args)
        self._dir: Path | None = None
        self._processes: list[_Process] = []
        self._ca: _CertificateAuthority | None = None
        self._ports: dict[str, int] = {}
        self._stop_lock = threading.RLock()  # re-entrant for signal handlers
        self._stopped = False
        self.startup_seconds: float | None = None

    # -- lifecycle --

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        """Start the three processes and wait until the API and the controllers are ready."""
        if self._processes:
            raise ControlPlaneError("control plane already started")
        began = time.monotonic()
        self._stopped = False
        if self._bin_dir is None:
            self._bin_dir = tool_bin_dir(required=CONTROL_PLANE_TOOLS)
        _install_process_hooks()
        self._dir = Path(tempfile.mkdtemp(prefix="dataward-cp-"))
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            for sub in ("pki", "etcd", "logs", "kubeconfigs", "kcm"):
                (self.dir / sub).mkdir(mode=0o700)
            etcd_client, etcd_peer, api_port, kcm_port = free_ports(4)
            self._ports = {"etcd": etcd_client, "api": api_port, "kcm": kcm_port}
            self._write_pki()
            self._write_configs()
            self._start_etcd(etcd_client, etcd_peer)
            self._wait_http(f"{self.etcd_url}/health", "etcd", tls=False)
            self._start_apiserver(api_port)
            self._wait_http(f"{self.server}/readyz", "kube-apiserver", tls=True)
            self._start_controller_manager(kcm_port)
            self._wait_http(f"https://127.0.0.1:{kcm_port}/healthz", "kube-controller-manager")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop every process in reverse start order and remove the temporary directory."""
        with self._stop_lock:
            self._stopped = True  # a start() still waiting for readiness gives up
            processes, self._processes = self._processes, []
            for process in reversed(processes):
                process.stop()
            with _LIVE_LOCK:
                _LIVE.discard(self)
            if self._dir is not None and not self._keep_dir:
                shutil.rmtree(self._dir, ignore_errors=True)

    def failed_processes(self) -> list[str]:
        """Names and exit codes of processes that have exited while they should be running."""
        return [
            f"{p.name} (exit code {p.exited()})" for p in self._processes if p.exited() is not None
        ]

    def log_tails(self) -> str:
        """The tail of every process's log, for error messages."""
        return "\n".join(
            f"----- {p.name} ({p.log_path}) last {LOG_TAIL_LINES} lines -----\n{p.tail()}"
            for p in self._processes
        )

    @contextlib.contextmanager
    def paused(self, name: str = "kube-apiserver") -> Iterator[None]:
        """Freeze one process with SIGSTOP for the `with` block, then SIGCONT it (also on failure).

        A frozen API server is a hung one: the kernel still accepts connections, nothing answers.
        """
        (process,) = [p for p in self._processes if p.name == name]
        os.kill(process.popen.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(process.popen.pid, signal.SIGCONT)

    # -- public properties --

    @property
    def dir(self) -> Path:
        """The temporary directory holding certificates, data, logs and kubeconfigs."""
        if self._dir is None:
            raise ControlPlaneError("control plane not started")
        return self._dir

    @property
    def bin_dir(self) -> Path:
        """The directory of the pinned binaries (etcd, kube-apiserver, kubectl, ...)."""
        if self._bin_dir is None:
            raise ControlPlaneError("control plane not started")
        return self._bin_dir

    @property
    def server(self) -> str:
        """The API server's https URL."""
        return f"https://127.0.0.1:{self._port('api')}"

    @property
    def etcd_url(self) -> str:
        """etcd's plain-http client URL on loopback."""
        return f"http://127.0.0.1:{self._port('etcd')}"

    def _port(self, name: str) -> int:
        try:
            return self._ports[name]
        except KeyError:
            raise ControlPlaneError("control plane not started") from None

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (CN=admin, O=system:masters)."""
        return self.dir / "kubeconfigs" / "admin.yaml"

    @property
    def ca_cert(self) -> Path:
        """The CA certificate that signed the serving and client certificates."""
        return self.dir / "pki" / "ca.crt"

    @property
    def audit_log(self) -> Path:
        """The API server's audit log: one JSON event per line."""
        return self.dir / "logs" / "audit.jsonl"

    def audit_events(self) -> list[dict[str, Any]]:
        """Parse the audit log so far (a line still being written is skipped)."""
        try:
            text = self.audit_log.read_text()
        except FileNotFoundError:
            return []
        events = []
        for line in text.splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                events.append(json.loads(line))
        return events

    # -- etcd --

    def etcd_get(self, key: str) -> bytes | None:
        """The raw value stored in etcd at key (e.g. /registry/secrets/NS/NAME), or None."""
        body = json.dumps({"key": _b64(key.encode())}).encode()
        request = urllib.request.Request(  # noqa: S310 - fixed http:// loopback URL
            f"{self.etcd_url}/v3/kv/range",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer = json.load(response)
        kvs = answer.get("kvs") or []
        if not kvs:
            return None
        return base64.b64decode(kvs[0].get("value", ""))

    # -- identities --

    def kubeconfig_for_user(self, user: str, groups: Iterable[str] = ()) -> Path:
        """A kubeconfig with a client certificate for CN=user, O=each group (no other rights)."""
        groups = list(groups)
        cert, key = self._ca_or_fail().issue(user, groups, client=True)
        path = self.dir / "kubeconfigs" / f"user-{_safe_file_name(user)}.yaml"
        return self._write_kubeconfig(
            path,
            user,
            {
                "client-certificate-data": _b64(_cert_pem(cert)),
                "client-key-data": _b64(_key_pem(key)),
            },
        )

    def kubeconfig_for_token(self, name: str, token: str) -> Path:
        """A kubeconfig holding only a bearer token (a kubeconfig with a client certificate too
        would authenticate as the certificate's user)."""
        path = self.dir / "kubeconfigs" / f"token-{_safe_file_name(name)}.yaml"
        return self._write_kubeconfig(path, name, {"token": token})

    def kubeconfig_for_service_account(
        self, namespace: str, name: str, duration_seconds: int = 3600
    ) -> Path:
        """A token kubeconfig for ServiceAccount namespace/name, minted by TokenRequest."""
        from kubernetes import client

        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=duration_seconds)
        )
        with self.api_client() as api:
            answer = client.CoreV1Api(api).create_namespaced_service_account_token(
                name, namespace, request
            )
        if answer.status is None or not answer.status.token:
            raise ControlPlaneError(f"TokenRequest for {namespace}/{name} returned no token")
        return self.kubeconfig_for_token(f"sa-{namespace}-{name}", answer.status.token)

    # -- clients --

    def env(self, kubeconfig: Path | None = None) -> dict[str, str]:
        """The environment for child tools: KUBECONFIG set, the pinned bin dir first on PATH."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(kubeconfig or self.kubeconfig)
        env["PATH"] = os.pathsep.join([str(self.bin_dir), env.get("PATH", "")])
        return env

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        check: bool = True,
        input: str | None = None,  # the name mirrors subprocess.run
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl (v1.37.2, not the machine's) against this control plane."""
        command = [str(self.bin_dir / "kubectl"), *args]
        result = subprocess.run(
            command,
            env=self.env(kubeconfig),
            input=input,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, command, result.stdout, result.stderr)
        return result

    def api_client(self, kubeconfig: Path | None = None) -> ApiClient:
        """A kubernetes.client.ApiClient for the kubeconfig (admin by default); close it after."""
        # Imported here so that tools and the CLI work before the client is installed.
        from kubernetes import config

        api: ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig or self.kubeconfig)
        )
        return api

    # -- internals: files --

    def _ca_or_fail(self) -> _CertificateAuthority:
        if self._ca is None:
            raise ControlPlaneError("control plane not started")
        return self._ca

    def _pki(self, name: str) -> Path:
        return self.dir / "pki" / name

    def _write_pki(self) -> None:
        """The CA, serving and client certificates, and the service-account key pair."""
        ca = self._ca = _CertificateAuthority()
        _write_private(self.ca_cert, _cert_pem(ca.cert))
        serving = [
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            # The first address of the service range: the in-cluster "kubernetes" Service.
            "10.96.0.1",
        ]
        for name, (cert, key) in {
            "apiserver": ca.issue("kube-apiserver", server_names=serving),
            "kcm-serving": ca.issue("kube-controller-manager", server_names=["127.0.0.1"]),
            "admin": ca.issue("admin", ["system:masters"], client=True),
            # Its own identity (not "admin") so the audit log tells the controllers' requests
            # from the tests' and the operator's; system:masters because with
            # --use-service-account-credentials=false every controller runs with these rights.
            "kcm-client": ca.issue(
                "system:kube-controller-manager", ["system:masters"], client=True
            ),
        }.items():
            _write_private(self._pki(f"{name}.crt"), _cert_pem(cert))
            _write_private(self._pki(f"{name}.key"), _key_pem(key))
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(self._pki("sa.key"), _key_pem(sa_key))
        _write_private(
            self._pki("sa.pub"),
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
        admin = self._pki("admin")
        self._write_kubeconfig(
            self.kubeconfig,
            "admin",
            {
                "client-certificate-data": _b64(admin.with_suffix(".crt").read_bytes()),
                "client-key-data": _b64(admin.with_suffix(".key").read_bytes()),
            },
        )
        kcm = self._pki("kcm-client")
        self._write_kubeconfig(
            self.dir / "kubeconfigs" / "kube-controller-manager.yaml",
            "system:kube-controller-manager",
            {
                "client-certificate-data": _b64(kcm.with_suffix(".crt").read_bytes()),
                "client-key-data": _b64(kcm.with_suffix(".key").read_bytes()),
            },
        )

    def _write_kubeconfig(self, path: Path, user: str, credentials: dict[str, str]) -> Path:
        context = f"{user}@{CLUSTER_NAME}"
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CLUSTER_NAME,
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": _b64(self.ca_cert.read_bytes()),
                    },
                }
            ],
            "users": [{"name": user, "user": credentials}],
            "contexts": [{"name": context, "context": {"cluster": CLUSTER_NAME, "user": user}}],
            "current-context": context,
        }
        return _write_private(path, yaml.safe_dump(document, sort_keys=False))

    def _write_configs(self) -> None:
        """The encryption-at-rest and audit-policy files for kube-apiserver."""
        key = {"name": "key1", "secret": _b64(secrets.token_bytes(32))}
        encryption = {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "EncryptionConfiguration",
            "resources": [
                {
                    "resources": ["secrets"],
                    "providers": [
                        {"aescbc": {"keys": [key]}},
                        # identity last: reads of anything stored unencrypted still work.
                        {"identity": {}},
                    ],
                }
            ],
        }
        _write_private(self.dir / "encryption.yaml", yaml.safe_dump(encryption))
        # Metadata level for everything: verb, user, objectRef and responseStatus, which is
        # what tests count, and never a Secret's payload in the log.
        audit_policy = {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [{"level": "Metadata"}],
        }
        _write_private(self.dir / "audit-policy.yaml", yaml.safe_dump(audit_policy))

    def pids(self) -> dict[str, int]:
        """The control plane's processes by name (benchmarks measure their CPU)."""
        return {p.name: p.popen.pid for p in self._processes}

    # -- internals: processes --

    def _spawn(self, name: str, args: Sequence[str]) -> None:
        log = self.dir / "logs" / f"{name}.log"
        self._processes.append(_Process(name, [str(self.bin_dir / name), *args], log, self.dir))

    def _start_etcd(self, client_port: int, peer_port: int) -> None:
        client_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._spawn(
            "etcd",
            [
                "--name=dataward",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=dataward={peer_url}",
                "--initial-cluster-state=new",
                # Throwaway data: durability buys nothing and fsync is the slowest part.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )

    def _start_apiserver(self, port: int) -> None:
        pki = self._pki
        self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={self.etcd_url}",
                f"--secure-port={port}",
                "--bind-address=127.0.0.1",
                # v1.37 refuses a loopback advertise address unless no endpoint reconciler runs.
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--cert-dir={self.dir / 'pki'}",
                f"--tls-cert-file={pki('apiserver.crt')}",
                f"--tls-private-key-file={pki('apiserver.key')}",
                f"--client-ca-file={self.ca_cert}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki('sa.pub')}",
                f"--service-account-signing-key-file={pki('sa.key')}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                # RBAC is what the tests exercise: never AlwaysAllow.
                "--authorization-mode=RBAC",
                # Without it the pod validation rejects privileged pods before PodSecurity
                # admission can, and tests want to see PodSecurity's verdict.
                "--allow-privileged=true",
                f"--encryption-provider-config={self.dir / 'encryption.yaml'}",
                f"--audit-policy-file={self.dir / 'audit-policy.yaml'}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                # Blocking: events are written in the request's own goroutine, not dropped or
                # batched, so they appear moments after the response (tests still poll).
                "--audit-log-mode=blocking",
                "--profiling=false",
                *self._extra_apiserver_args,
            ],
        )

    def _start_controller_manager(self, port: int) -> None:
        kubeconfig = self.dir / "kubeconfigs" / "kube-controller-manager.yaml"
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.dir / 'kcm'}",
                f"--tls-cert-file={self._pki('kcm-serving.crt')}",
                f"--tls-private-key-file={self._pki('kcm-serving.key')}",
                f"--controllers={','.join(CONTROLLERS)}",
                f"--service-account-private-key-file={self._pki('sa.key')}",
                f"--root-ca-file={self.ca_cert}",
                "--use-service-account-credentials=false",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            ],
        )

    def _ssl_context(self, client_cert: bool) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        if client_cert:
            context.load_cert_chain(str(self._pki("admin.crt")), str(self._pki("admin.key")))
        return context

    def _wait_http(self, url: str, what: str, *, tls: bool = True) -> None:
        """Poll url until it answers 200 "ok"; fail early if a process exits, with log tails."""
        context = self._ssl_context(client_cert=True) if tls else None
        deadline = time.monotonic() + self._start_timeout
        last = "no answer yet"
        while True:
            if self._stopped:
                raise ControlPlaneError(f"stopped while waiting for {what} to be ready")
            dead = self.failed_processes()
            if dead:
                raise ControlPlaneError(
                    f"{', '.join(dead)} exited while waiting for {what} to be ready\n"
                    + self.log_tails()
                )
            try:
                with urllib.request.urlopen(url, timeout=5, context=context) as response:  # noqa: S310
                    body = response.read().decode(errors="replace")
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}: {body[:500]}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read().decode(errors='replace')[:2000]}"
            except (urllib.error.URLError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise ControlPlaneError(
                    f"{what} not ready at {url} after {self._start_timeout:g} s; last answer: "
                    f"{last}\n" + self.log_tails()
                )
            time.sleep(0.2)
