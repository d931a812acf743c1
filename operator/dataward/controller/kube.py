"""A thin, synchronous view of the Kubernetes API for the kinds Dataward touches.

Everything here is I/O; decisions live in render/, checks/, keys/ and drift.py. Objects go in
and come out as plain dicts (JSON as the API serves it), so the same code handles every kind.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Concatenate, ParamSpec, TypeVar, cast
from urllib.parse import quote, urlencode

import msgspec
import orjson
import urllib3
import yaml

import dataward
from dataward import redact
from dataward.controller.metrics import WRITES

FIELD_MANAGER = "dataward"
# Asks the API server for PartialObjectMetadata: the object's metadata, without its data.
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
# The same for a LIST: PartialObjectMetadataList, items without their data.
METADATA_ONLY_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
# What an answer to METADATA_ONLY is: anything else (a whole object, from a server or proxy
# that ignored the Accept header) is a failed read, never used (`Kube.get_metadata`).
METADATA_ANSWER = ("meta.k8s.io/v1", "PartialObjectMetadata")
# `kubectl apply` keeps a copy of the whole object here: a Secret's data included.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# (connect, read) seconds. Without a timeout a request to a hung API server blocks for ever:
# the read timeout bounds each wait for bytes, so a stalled server surfaces as a KubeError.
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)


def server_date(header: str | None) -> datetime | None:
    """The instant an HTTP `Date` header names (RFC 9110 IMF-fixdate), in UTC; None when it
    is absent or not a date with a zone."""
    if not header:
        return None
    try:
        instant = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if instant.tzinfo is None:
        return None  # "-0000": no zone stated, so not an instant
    return instant.astimezone(UTC)


def loads(data: bytes) -> Any:
    """JSON as the API server sends it: by orjson, about half of `json.loads`' CPU on the API's
    objects (every answer and every watch event is decoded: issue 11). The API server sends
    what Go encodes (valid UTF-8, integers within 64 bits); what orjson refuses all the same
    (a lone surrogate escape, a number past a double) goes to `json.loads`, which decides."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


class _Changed(msgspec.Struct):
    """A managedFields entry of a LIST's object (`loads_list`): who changed the object and
    when. Which fields (`fieldsV1`) is not built: msgspec skips what a Struct does not name."""

    manager: Any = msgspec.UNSET
    operation: Any = msgspec.UNSET
    apiVersion: Any = msgspec.UNSET
    time: Any = msgspec.UNSET
    fieldsType: Any = msgspec.UNSET
    subresource: Any = msgspec.UNSET


class _Metadata(msgspec.Struct, forbid_unknown_fields=True):
    """An object's metadata (every field of ObjectMeta); another key refuses the answer."""

    name: Any = msgspec.UNSET
    generateName: Any = msgspec.UNSET
    namespace: Any = msgspec.UNSET
    selfLink: Any = msgspec.UNSET
    uid: Any = msgspec.UNSET
    resourceVersion: Any = msgspec.UNSET
    generation: Any = msgspec.UNSET
    creationTimestamp: Any = msgspec.UNSET
    deletionTimestamp: Any = msgspec.UNSET
    deletionGracePeriodSeconds: Any = msgspec.UNSET
    labels: Any = msgspec.UNSET
    annotations: Any = msgspec.UNSET
    ownerReferences: Any = msgspec.UNSET
    finalizers: Any = msgspec.UNSET
    managedFields: list[_Changed] | msgspec.UnsetType = msgspec.UNSET


class _Item(msgspec.Struct, forbid_unknown_fields=True):
    """An object of a LIST: a CronJob, a Job, a Pod, a store; another key refuses it."""

    apiVersion: Any = msgspec.UNSET
    kind: Any = msgspec.UNSET
    metadata: _Metadata | msgspec.UnsetType = msgspec.UNSET
    spec: Any = msgspec.UNSET
    status: Any = msgspec.UNSET


class _Listed(msgspec.Struct, forbid_unknown_fields=True):
    """A LIST's answer (`loads_list`); another key refuses it."""

    apiVersion: Any = msgspec.UNSET
    kind: Any = msgspec.UNSET
    metadata: Any = msgspec.UNSET
    items: list[_Item] | msgspec.UnsetType | None = msgspec.UNSET


_LISTED = msgspec.json.Decoder(_Listed)


def _present(value: msgspec.Struct) -> dict[str, Any]:
    """A Struct as the JSON object it was decoded from: the keys that were there."""
    return {
        name: field
        for name in value.__struct_fields__
        if (field := getattr(value, name)) is not msgspec.UNSET
    }


def loads_list(data: bytes) -> Any:
    """A LIST of CronJobs, Jobs, Pods or stores as `loads` decodes it, but that each object's
    managedFields entries say who changed it and when, not which fields (`fieldsV1`): nothing
    reads those (the caches keep a CronJob's managers and times, and drop the rest), and they
    are about half of such an answer (a pod template's every field, for each manager). Not
    building them took 57-61% off decoding a page of 500 CronJobs, a third off one of 500
    stores (issue 11).

    An answer of another shape (a key of a list, object or metadata not named above, a value
    msgspec refuses, JSON that is not valid) is decoded by `loads`, whole: nothing is dropped
    that is not a managedFields entry's."""
    try:
        listed = _LISTED.decode(data)
    except msgspec.MsgspecError:
        return loads(data)
    answer = _present(listed)
    if isinstance(listed.items, list):
        answer["items"] = [_object(item) for item in listed.items]
    return answer


def _object(item: _Item) -> dict[str, Any]:
    """An object of `loads_list`'s answer as `loads` gives it, its managedFields entries
    without `fieldsV1`."""
    obj = _present(item)
    if isinstance(item.metadata, _Metadata):
        meta = _present(item.metadata)
        if isinstance(item.metadata.managedFields, list):
            meta["managedFields"] = [_present(entry) for entry in item.metadata.managedFields]
        obj["metadata"] = meta
    return obj


def dumps(body: Any) -> bytes:
    """A request body as compact UTF-8 JSON (no spaces: less to send and for the server to
    read), by orjson: about a tenth of `json.dumps`' CPU on a store's seven children (every
    write is encoded: issue 11). What orjson refuses (a lone surrogate, an integer past 64
    bits) goes to `json.dumps`, which decides, as `loads` does."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the REST API."""

    api_version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        """The REST path of a collection or an object."""
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if sub:
            parts.append(sub)
        return "/".join(parts)


RESOURCES: dict[str, Resource] = {
    "PersonalDataStore": Resource("dataward.io/v1alpha1", "personaldatastores"),
    "PrivacyPolicy": Resource("dataward.io/v1alpha1", "privacypolicies", namespaced=False),
    "NetworkPolicy": Resource("networking.k8s.io/v1", "networkpolicies"),
    "Role": Resource("rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": Resource("rbac.authorization.k8s.io/v1", "rolebindings"),
    "ClusterRole": Resource("rbac.authorization.k8s.io/v1", "clusterroles", namespaced=False),
    "ClusterRoleBinding": Resource(
        "rbac.authorization.k8s.io/v1", "clusterrolebindings", namespaced=False
    ),
    "ServiceAccount": Resource("v1", "serviceaccounts"),
    "Secret": Resource("v1", "secrets"),
    "CronJob": Resource("batch/v1", "cronjobs"),
    "Job": Resource("batch/v1", "jobs"),
    "Pod": Resource("v1", "pods"),
    "Event": Resource("events.k8s.io/v1", "events"),
    "Namespace": Resource("v1", "namespaces", namespaced=False),
    "Lease": Resource("coordination.k8s.io/v1", "leases"),
    "DataSubjectRequest": Resource("dataward.io/v1alpha1", "datasubjectrequests"),
    # A CRD of sigs.k8s.io/network-policy-api, served in some clusters only.
    "AdminNetworkPolicy": Resource(
        "policy.networking.k8s.io/v1alpha1", "adminnetworkpolicies", namespaced=False
    ),
    # Cilium's own policy kinds, served where Cilium is the CNI.
    "CiliumNetworkPolicy": Resource("cilium.io/v2", "ciliumnetworkpolicies"),
    "CiliumClusterwideNetworkPolicy": Resource(
        "cilium.io/v2", "ciliumclusterwidenetworkpolicies", namespaced=False
    ),
    # Calico's own policy kinds, served where Calico is the CNI (its API kind NetworkPolicy
    # is also networking.k8s.io's: the operator names them by CNI).
    "CalicoNetworkPolicy": Resource("crd.projectcalico.org/v1", "networkpolicies"),
    "CalicoGlobalNetworkPolicy": Resource(
        "crd.projectcalico.org/v1", "globalnetworkpolicies", namespaced=False
    ),
}


def _merged(old: Any, patch: Any) -> Any:
    """`patch` applied to `old` as a JSON merge patch (RFC 7386): null removes a key."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(old) if isinstance(old, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merged(out.get(key), value)
    return out


def guarded_status_patch(
    uid: str, status: Mapping[str, Any] | None, patch: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The merge patch `{"status": patch}` as a JSON patch (RFC 6902) that lands only on the
    object of `uid`: its first operation tests `/metadata/uid`, so an object deleted and
    recreated under the name refuses it whole (422). On the status subresource a uid in a
    merge patch is no precondition: the server keeps the old object's metadata.

    `status` is the object's status as read (None: it has none; the whole status is added).
    The operations do what the merge patch does to an object whose status has the objects
    `status` has where `patch` has objects: a null removes its key whether or not the object
    has it (added as null first: a remove of a missing member is refused), an object is
    merged key by key into the one read, any other value is set. Where the object has not
    those objects (a status changed since it was read), the server refuses it (422)."""
    ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": uid}]
    if not isinstance(status, Mapping):
        return [*ops, {"op": "add", "path": "/status", "value": _merged(None, patch)}]
    return ops + _merge_ops("/status", status, patch)


def _merge_ops(
    path: str, read: Mapping[str, Any], patch: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """What the merge patch `patch` does at `path`, as JSON patch operations (see above)."""
    ops: list[dict[str, Any]] = []
    for key, value in patch.items():
        at = f"{path}/" + key.replace("~", "~0").replace("/", "~1")
        if value is None:
            ops += [{"op": "add", "path": at, "value": None}, {"op": "remove", "path": at}]
        elif isinstance(value, Mapping) and isinstance(read.get(key), Mapping):
            ops += _merge_ops(at, read[key], value)
        else:
            ops.append({"op": "add", "path": at, "value": _merged(None, value)})
    return ops


def metadata_alone(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`obj`'s metadata without the last-applied annotation (a copy of the whole object)."""
    meta = dict(obj.get("metadata") or {})
    annotations = meta.get("annotations")
    if isinstance(annotations, Mapping) and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return meta


class ObjectGone(Exception):
    """The object a status was written for is deleted, or replaced by another of its name."""


def write_status(
    kube: Kube,
    kind: str,
    read: Mapping[str, Any],
    patch: Mapping[str, Any],
    latest: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge `patch` into the status of the object `read` (a copy read earlier, by its uid),
    never into another object of its name; the API's answer. ObjectGone when it is deleted
    or replaced; KubeError for any other failure.

    The operations are made from the status of `latest` (a later copy of the same object,
    such as the cache holds after this pass's own writes) or of `read` (only its shape is
    used, never its values: `guarded_status_patch`), else from the object read again: when
    no copy has a status (the object may have one by now, which adding a whole status would
    replace), or when the server refused them and the object is still the one read (its
    status changed meanwhile; tried once more).
    """
    meta = read["metadata"]
    namespace, name, uid = meta.get("namespace"), str(meta["name"]), str(meta.get("uid"))
    if latest is not None and (latest.get("metadata") or {}).get("uid") == meta.get("uid"):
        read = latest

    def again() -> Mapping[str, Any] | None:
        now = kube.get(kind, namespace, name)
        if now is None:
            raise ObjectGone("deleted")
        if (now.get("metadata") or {}).get("uid") != uid:
            raise ObjectGone("replaced by another of its name")
        return now.get("status")

    status = read.get("status")
    if not isinstance(status, Mapping):
        status = again()
    try:
        return kube.json_patch(
            kind, namespace, name, guarded_status_patch(uid, status, patch), "status"
        )
    except KubeError as error:
        if error.status not in (404, 409, 422):
            raise
    return kube.json_patch(
        kind, namespace, name, guarded_status_patch(uid, again(), patch), "status"
    )
_P = ParamSpec("_P")
_T = TypeVar("_T")


def _answer_only(
    exchange: Callable[Concatenate[Kube, _P], tuple[_T, datetime | None]],
) -> Callable[Concatenate[Kube, _P], _T]:
    """A `Kube` request method that answers what `exchange` does, without the server's `Date`:
    one definition of the request's parameters (`exchange`'s), not a copy to keep in step."""

    def call(self: Kube, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return exchange(self, *args, **kwargs)[0]

    return call


class KubeError(Exception):
    """An API call failed; carries the HTTP status and the server's reason, never a body.

    Status 0: no answer (timeout, connection refused or reset), an answer of another kind
    than the one asked for (`Kube.get_metadata`), or a write refused locally because this
    replica is not the leader.
    """

    # Its text is the request, the HTTP status and reason, never a body (dataward.redact).
    message_is_safe = True

    def __init__(self, status: int, reason: str, what: str) -> None:
        super().__init__(f"{what}: HTTP {status} {reason}")
        self.status = status
        self.reason = reason


def outcome_unknown(error: KubeError) -> bool:
    """Whether a write that failed so may have landed all the same: no answer (a timeout, a
    connection reset; status 0), or a server error (5xx), which may come after the commit.
    Only a read tells; a 4xx was refused, nothing written."""
    return error.status == 0 or error.status >= 500


# The service account's credentials in a pod (what `load_api_client` looks for first).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class KubeConfigError(Exception):
    """No usable connection settings: the message names the file and field, never a value."""


@dataclass(frozen=True)
class Credentials:
    """How to reach and authenticate to the API server: a kubeconfig's current context, or
    the in-cluster service account. `*_data` fields hold PEM bytes (decoded)."""

    server: str
    ca_file: str | None = None
    ca_data: bytes | None = None
    cert_file: str | None = None
    cert_data: bytes | None = None
    key_file: str | None = None
    key_data: bytes | None = None
    token: str | None = None
    token_file: str | None = None  # re-read when it changes (bound tokens rotate)
    basic: str | None = None  # "user:password"
    insecure: bool = False
    tls_server_name: str | None = None
    exec_plugin: ExecPlugin | None = None  # a client-go credential plugin giving a token


@dataclass(frozen=True)
class ExecPlugin:
    """A kubeconfig user's `exec` credential plugin (client-go's ExecCredential protocol):
    the command run for a bearer token, again when the token it gave expires. Tokens only:
    a plugin answering with a client certificate is refused."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"


EXEC_EARLY = 60  # seconds before a plugin's token expires that it is asked for a new one


def exec_plugin(spec: Any, base: str, where: str) -> ExecPlugin:
    """The `exec` entry of a kubeconfig user; a relative command path is relative to the
    kubeconfig's folder (client-go's rule), a bare name is looked up in $PATH."""
    if not isinstance(spec, dict) or not spec.get("command"):
        raise KubeConfigError(f"{where}: exec has no command")
    command = str(spec["command"])
    if os.sep in command and not os.path.isabs(command):
        command = os.path.normpath(os.path.join(base, command))
    env = tuple(
        (str(item.get("name")), str(item.get("value", "")))
        for item in spec.get("env") or [] if isinstance(item, dict)
    )
    return ExecPlugin(
        command, tuple(str(a) for a in spec.get("args") or []), env,
        str(spec.get("apiVersion") or ExecPlugin.api_version),
    )


def run_exec_plugin(plugin: ExecPlugin, now: float) -> tuple[str, float | None]:
    """Run the plugin: its token and when it expires (epoch seconds; None: never said).
    Errors name the command and what went wrong, never the plugin's output (the token)."""
    name = os.path.basename(plugin.command)
    info = {"apiVersion": plugin.api_version, "kind": "ExecCredential",
            "spec": {"interactive": False}}  # fmt: skip
    environ = {**os.environ, **dict(plugin.env), "KUBERNETES_EXEC_INFO": json.dumps(info)}
    try:
        done = subprocess.run(
            [plugin.command, *plugin.args], env=environ, stdin=subprocess.DEVNULL,
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        failed = type(error).__name__
        raise KubeConfigError(f"exec plugin {name}: could not run ({failed})") from None
    if done.returncode != 0:
        raise KubeConfigError(f"exec plugin {name}: exited with status {done.returncode}")
    try:
        status = json.loads(done.stdout)["status"]
        token = status.get("token")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KubeConfigError(f"exec plugin {name}: its output is not an ExecCredential") from None
    if not token:
        raise KubeConfigError(
            f"exec plugin {name}: gave no token (a client certificate from a plugin is not "
            "supported by `dataward run`)"
        )
    expires = status.get("expirationTimestamp")
    if not expires:
        return str(token), None
    try:
        when = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
    except ValueError:
        raise KubeConfigError(f"exec plugin {name}: expirationTimestamp is not a time") from None
    return str(token), when.timestamp()


def in_cluster_credentials(
    environ: Mapping[str, str], directory: str | None = None
) -> Credentials | None:
    """The pod's service account, or None outside a pod (the kubernetes client's rule: both
    KUBERNETES_SERVICE_HOST and _PORT set, a token and a CA file that are not empty)."""
    host = environ.get("KUBERNETES_SERVICE_HOST")
    port = environ.get("KUBERNETES_SERVICE_PORT")
    directory = directory or SERVICE_ACCOUNT_DIR
    token, ca = os.path.join(directory, "token"), os.path.join(directory, "ca.crt")
    if not host or not port or not _non_empty(token) or not _non_empty(ca):
        return None
    host = f"[{host}]" if ":" in host or "%" in host else host
    return Credentials(server=f"https://{host}:{port}", ca_file=ca, token_file=token)


def _non_empty(path: str) -> bool:
    return os.path.isfile(path) and os.path.getsize(path) > 0


def kubeconfig_credentials(paths: str) -> Credentials:
    """The current context of the kubeconfig file(s) `paths` (os.pathsep-separated; merged as
    the kubernetes client merges them: the first entry of each name wins, a later file's
    current-context overrides, missing files are skipped). Relative file names are relative to
    the file that names them."""
    clusters: dict[str, tuple[dict[str, Any], str]] = {}
    users: dict[str, tuple[dict[str, Any], str]] = {}
    contexts: dict[str, dict[str, Any]] = {}
    current: str | None = None
    read: list[str] = []
    for path in (os.path.expanduser(p) for p in paths.split(os.pathsep) if p):
        if not os.path.exists(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                loaded = redact.load(f)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            reason = type(error).__name__
            raise KubeConfigError(f"kubeconfig {path}: unreadable ({reason})") from None
        if not isinstance(loaded, dict):
            raise KubeConfigError(f"kubeconfig {path}: not a kubeconfig")
        read.append(path)
        base = os.path.dirname(os.path.abspath(path))
        for key, into in (("clusters", clusters), ("users", users)):
            for item in loaded.get(key) or []:
                into.setdefault(str(item.get("name")), (item.get(key[:-1]) or {}, base))
        for item in loaded.get("contexts") or []:
            contexts.setdefault(str(item.get("name")), item.get("context") or {})
        current = loaded.get("current-context") or current
    if not read:
        raise KubeConfigError(f"no kubeconfig found at {paths} (and not in a pod)")
    where = f"kubeconfig {':'.join(read)}"
    if not current or current not in contexts:
        raise KubeConfigError(f"{where}: current-context {current!r} is not defined")
    context = contexts[current]
    if str(context.get("cluster")) not in clusters:
        raise KubeConfigError(f"{where}: cluster {context.get('cluster')!r} is not defined")
    cluster, cluster_base = clusters[str(context.get("cluster"))]
    user, user_base = users.get(str(context.get("user")), ({}, ""))
    if user.get("auth-provider"):
        raise KubeConfigError(
            f"{where}: user {context.get('user')!r} authenticates with auth-provider, which "
            "`dataward run` does not support (Kubernetes removed its in-tree providers): use "
            "an exec plugin, a token, tokenFile or client certificate"
        )
    plugin = exec_plugin(user.get("exec"), user_base, where) if user.get("exec") else None
    if cluster.get("proxy-url"):
        raise KubeConfigError(f"{where}: proxy-url is not supported by `dataward run`")
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise KubeConfigError(f"{where}: cluster {context.get('cluster')!r} has no server")

    def file(node: dict[str, Any], key: str, base: str) -> str | None:
        return os.path.normpath(os.path.join(base, node[key])) if node.get(key) else None

    def data(node: dict[str, Any], key: str) -> bytes | None:
        if not node.get(key):
            return None
        try:
            return base64.b64decode(node[key], validate=True)
        except ValueError:
            raise KubeConfigError(f"{where}: {key} is not base64") from None

    tls = server.startswith("https")  # the kubernetes client reads no TLS files for http
    user_token = user.get("token")
    return Credentials(
        server=server,
        ca_data=data(cluster, "certificate-authority-data") if tls else None,
        ca_file=None if cluster.get("certificate-authority-data") or not tls
        else file(cluster, "certificate-authority", cluster_base),
        cert_data=data(user, "client-certificate-data") if tls else None,
        cert_file=None if user.get("client-certificate-data") or not tls
        else file(user, "client-certificate", cluster_base),
        key_data=data(user, "client-key-data") if tls else None,
        key_file=None if user.get("client-key-data") or not tls
        else file(user, "client-key", cluster_base),
        exec_plugin=plugin,
        token=str(user_token) if user_token else None,
        token_file=None if user_token else file(user, "tokenFile", user_base),
        basic=f"{user['username']}:{user['password']}"
        if "username" in user and "password" in user and not user_token
        and not user.get("tokenFile") else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
    )


def ssl_context(credentials: Credentials) -> ssl.SSLContext:
    """The TLS settings: the CA (file or data, else the system's), the client certificate
    (file or data: data goes to a 0600 temporary file only for `load_cert_chain`)."""
    context = ssl.create_default_context(
        cafile=credentials.ca_file,
        cadata=credentials.ca_data.decode("ascii") if credentials.ca_data else None,
    )
    if credentials.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    written: list[str] = []
    try:
        files: list[str | None] = []
        for given, pem in ((credentials.cert_file, credentials.cert_data),
                           (credentials.key_file, credentials.key_data)):
            if given is None and pem is not None:
                handle, given = tempfile.mkstemp(prefix="dataward-")  # mode 0600
                written.append(given)
                with os.fdopen(handle, "wb") as f:
                    f.write(pem)
            files.append(given)
        if files[0]:
            context.load_cert_chain(certfile=files[0], keyfile=files[1])
    except (OSError, ssl.SSLError) as error:
        raise KubeConfigError(
            f"client certificate or key unusable ({type(error).__name__})") from None
    finally:
        for name in written:
            os.unlink(name)
    return context


class Connection:
    """The API server's address, credentials and a urllib3 connection pool: what the operator
    needs of a client (the kubernetes package costs ~30 MiB and ~0.5 s to import; issue 11)."""

    def __init__(self, credentials: Credentials, retries: int | None = None) -> None:
        self.credentials = credentials
        self.server = credentials.server
        pool: dict[str, Any] = {"maxsize": (os.cpu_count() or 1) * 5}
        if retries is not None:
            pool["retries"] = retries
        if self.server.startswith("https"):
            pool["ssl_context"] = ssl_context(credentials)
            if credentials.insecure:
                pool.update(cert_reqs="CERT_NONE", assert_hostname=False)
            if credentials.tls_server_name:
                pool["server_hostname"] = credentials.tls_server_name
        self.pool = urllib3.PoolManager(**pool)
        self.user_agent = f"dataward/{dataward.__version__}"
        self._lock = threading.Lock()
        self._token_stat: tuple[int, int, int] | None = None
        self._token: str | None = None
        self._token_expires: float | None = None  # an exec plugin's token's expiry

    def token(self) -> str | None:
        """The bearer token; a token file is read again whenever it changed (kubelet rotates a
        projected token by replacing the file)."""
        plugin = self.credentials.exec_plugin
        if plugin is not None and self.credentials.token is None:
            with self._lock:
                now = time.time()
                if self._token is None or (
                    self._token_expires is not None and now >= self._token_expires - EXEC_EARLY
                ):
                    self._token, self._token_expires = run_exec_plugin(plugin, now)
                return self._token
        if self.credentials.token_file is None:
            return self.credentials.token
        with self._lock:
            try:
                st = os.stat(self.credentials.token_file)
                stat = (st.st_ino, st.st_mtime_ns, st.st_size)
                if stat != self._token_stat:
                    with open(self.credentials.token_file, encoding="utf-8") as f:
                        self._token = f.read().strip() or None
                    self._token_stat = stat
            except OSError:
                pass  # mid-rotation: keep the token read last
            return self._token

    def token_expiry(self) -> datetime | None:
        """When the exec plugin's token read last expires (None: no plugin, or never said)."""
        with self._lock:
            expires = self._token_expires
        return None if expires is None else datetime.fromtimestamp(expires, UTC)

    def headers(self) -> dict[str, str]:
        """The headers of every request: user agent and credentials."""
        headers = {"User-Agent": self.user_agent}
        token = self.token()
        if token:
            headers["authorization"] = f"Bearer {token}"
        elif self.credentials.basic:
            encoded = base64.b64encode(self.credentials.basic.encode()).decode("ascii")
            headers["authorization"] = f"Basic {encoded}"
        return headers


def load_api_client(kubeconfig: str | None = None, retries: int | None = None) -> Connection:
    """A Connection from a kubeconfig file, else the in-cluster service account, else
    $KUBECONFIG or ~/.kube/config (the precedence the kubernetes client had here).

    `retries`: urllib3's retries of a failed connection or read (None: urllib3's default, 3).
    Each retry waits for its own timeout, so a caller with a deadline (the Lease) wants 0.
    Raises KubeConfigError when there is nothing usable.
    """
    credentials = None if kubeconfig else in_cluster_credentials(os.environ)
    if credentials is None:
        paths = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        credentials = kubeconfig_credentials(paths)
    return Connection(credentials, retries)


WriteKey = tuple[str, str, str]  # (API kind, namespace or "", name)


class WriteTracker:
    """The objects the operator is writing now, and the watch events of them meanwhile.

    A watch event of the operator's own write is no change (the caches' echo rule): its
    answer is stored in the cache (`Caches.store_written`), and the event, at the same
    resourceVersion, then queues nothing. But the event often arrives *before* the answer
    does (the server sends both at once; a watch thread reads it first): it was taken for a
    change, and every store converging was reconciled a second time for nothing (issue 11).

    So an event of an object with a write in flight, or whose write has ended but whose
    answer is not stored yet, is held (`defer`). When the answer is stored (`settle`), the
    one event a cache held at exactly the answer's resourceVersion is dropped: it was the
    echo. Everything else held is emitted: more than one event, another version, a failed
    write, or an answer nobody stored (`flush`, after every work item). At worst an event
    comes late by one work item; none is lost, and only an echo is dropped.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flying: dict[WriteKey, int] = {}
        # Held events: (owner (a cache), resourceVersion, emit).
        self._held: dict[WriteKey, list[tuple[object, str | None, Callable[[], None]]]] = {}
        # Writes ended: the answer's resourceVersion (None: failed), until settled or flushed.
        self._ended: dict[WriteKey, str | None] = {}

    def begin(self, key: WriteKey) -> None:
        with self._lock:
            self._flying[key] = self._flying.get(key, 0) + 1

    def end(self, key: WriteKey, version: str | None) -> None:
        """The write to `key` is answered (`version`), or failed (None)."""
        with self._lock:
            left = self._flying.get(key, 1) - 1
            if left > 0:
                self._flying[key] = left
                return
            self._flying.pop(key, None)
            if version is not None:
                self._ended[key] = version
                return
            self._ended.pop(key, None)
            held = self._held.pop(key, [])
        for _, _, emit in held:
            emit()

    def defer(
        self, key: WriteKey, owner: object, version: str | None, emit: Callable[[], None]
    ) -> bool:
        """Hold `emit` (an event of `key` at `version`) while `key` is being written; False
        (emit it now) when it is not."""
        with self._lock:
            if key not in self._flying and key not in self._ended:
                return False
            self._held.setdefault(key, []).append((owner, version, emit))
            return True

    def settle(self, key: WriteKey, owner: object, version: str | None) -> None:
        """`owner` stored the answer of the write to `key` (at `version`): drop its one held
        event at that version (the echo), emit its others."""
        with self._lock:
            if key in self._flying or self._ended.get(key) != version:
                return  # another write is still under way, or this is not its answer
            held = self._held.get(key, [])
            mine = [h for h in held if h[0] is owner]
            rest = [h for h in held if h[0] is not owner]
            if rest:
                self._held[key] = rest
            else:
                self._held.pop(key, None)
                self._ended.pop(key, None)
        if len(mine) == 1 and version is not None and mine[0][1] == version:
            return
        for _, _, emit in mine:
            emit()

    def flush(self) -> None:
        """Emit every held event of a write that has ended (its answer not stored, or not
        by every cache that held an event)."""
        with self._lock:
            keys = [key for key in self._ended if key not in self._flying]
            held = [h for key in keys for h in self._held.pop(key, [])]
            for key in keys:
                del self._ended[key]
        for _, _, emit in held:
            emit()


class Kube:
    """JSON-in, JSON-out calls for the kinds in RESOURCES.

    Every request carries `timeout` ((connect, read) seconds). `may_write` fences mutating
    requests: when it answers False (the Lease is no longer known to be held) a write fails
    with KubeError(0) before anything is sent.
    """

    def __init__(
        self,
        api: Connection,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        self.api = api
        self.timeout = timeout
        self._timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self.may_write = may_write
        self.writes = WriteTracker()

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        what: str,
        target: WriteKey | None = None,
        decode: Callable[[bytes], Any] = loads,
    ) -> tuple[dict[str, Any], datetime | None]:
        """One request: its answer (decoded by `decode`), and the server's `Date` header
        (None: absent or not a date); `target`: the object a write changes (WriteTracker)."""
        if method != "GET" and self.may_write is not None and not self.may_write():
            raise KubeError(0, "not the leader: write refused", what)
        payload = None if body is None else body if isinstance(body, str | bytes) else dumps(body)
        if target is not None:
            self.writes.begin(target)
        answer: dict[str, Any] | None = None
        try:
            try:
                status, reason, data, date = self._send(
                    method, path, query or [], {"Content-Type": content_type, "Accept": accept},
                    payload,
                )
            except (urllib3.exceptions.HTTPError, OSError) as error:
                # Timeouts, refused or reset connections: no answer, which callers must not
                # mistake for any answer (least of all "not found").
                raise KubeError(0, f"no answer ({type(error).__name__})", what) from None
            if method != "GET":
                WRITES.labels(what.split(" ")[1] if " " in what else what, method).inc()
            if not 200 <= status < 300:
                # The body may echo what we sent (a Secret's data); keep only status and reason.
                raise KubeError(status, reason, what)
            answer = cast(dict[str, Any], decode(data)) if data else {}
            return answer, server_date(date)
        finally:
            if target is not None:
                version = ((answer or {}).get("metadata") or {}).get("resourceVersion")
                self.writes.end(target, str(version) if version else None)

    # One request without the server's `Date`: `_exchange`'s parameters, its answer alone.
    _call = _answer_only(_exchange)

    def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: str | bytes | None,
    ) -> tuple[int, str, bytes, str | None]:
        """One request on the connection's pool: (status, reason, body, Date header)."""
        response = self.open(method, path, query, headers, body, self._timeout)
        # The body was read by `open` (preload): a stall is a read timeout too.
        date = response.headers.get("Date")
        return int(response.status), str(response.reason), response.data, date

    def open(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: str | bytes | None = None,
        timeout: urllib3.Timeout | None = None,
        preload: bool = True,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request with the connection's credentials; `preload=False` leaves the
        body to be streamed (a watch). urllib3's errors are the caller's to translate."""
        url = self.api.server + path
        if query:
            url += "?" + urlencode(query, quote_via=quote)
        return self.api.pool.request(
            method, url, body=body, headers={**self.api.headers(), **headers},
            timeout=timeout or self._timeout, preload_content=preload,
        )

    def _exchange_unless_gone(
        self,
        method: str,
        path: str,
        *,
        what: str,
        body: Any = None,
        accept: str = "application/json",
    ) -> tuple[dict[str, Any] | None, datetime | None]:
        """`_exchange`, but (None, None) on a confirmed 404 (the one place that reads a 404
        as "gone"); any other failure raises KubeError."""
        try:
            return self._exchange(method, path, body=body, accept=accept, what=what)
        except KubeError as error:
            if error.status == 404:
                return None, None
            raise

    # `_call`, but None on a confirmed 404; any other failure raises KubeError.
    _call_unless_gone = _answer_only(_exchange_unless_gone)

    def _write(
        self,
        method: str,
        path: str,
        body: Any,
        target: WriteKey,
        verb: str,
        *,
        content_type: str = "application/json",
        force: bool = False,
    ) -> dict[str, Any]:
        """A write under the operator's field manager (`force`: taking over conflicting
        fields), tracked against `target`, the object it changes."""
        kind, _, name = target
        query = [("fieldManager", FIELD_MANAGER), *([("force", "true")] if force else [])]
        return self._call(
            method, path, body=body, query=query, content_type=content_type,
            what=f"{verb} {kind} {name}", target=target,
        )  # fmt: skip

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None on a confirmed 404; any other failure raises KubeError."""
        return self._call_unless_gone(
            "GET", RESOURCES[kind].path(namespace, name), what=f"get {kind}"
        )

    def get_dated(
        self, kind: str, namespace: str | None, name: str
    ) -> tuple[dict[str, Any] | None, datetime | None]:
        """`get`, with the API server's time from the answer's `Date` header (one request):
        what a destructive decision weighs, rather than the operator's own clock. None for
        the time when the header is absent or not a date (unknown, never "now")."""
        return self._exchange_unless_gone(
            "GET", RESOURCES[kind].path(namespace, name), what=f"get {kind}"
        )

    def get_metadata(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object's metadata alone, `{"metadata": ...}` (owners, labels, annotations,
        version), without the last-applied annotation (a copy of the whole object). Asked for
        as PartialObjectMetadata only: a Secret's data is not sent. None on a confirmed 404;
        any other failure raises KubeError: a server that cannot serve PartialObjectMetadata
        for the kind (406), and an answer that is not PartialObjectMetadata (a whole object,
        from a server or proxy that ignored the Accept header), which is never used."""
        what = f"get {kind}"
        found = self._call_unless_gone(
            "GET", RESOURCES[kind].path(namespace, name), accept=METADATA_ONLY, what=what
        )
        if found is None:
            return None
        if (found.get("apiVersion"), found.get("kind")) != METADATA_ANSWER:
            raise KubeError(0, "answer not PartialObjectMetadata (not used)", what)
        return {"metadata": metadata_alone(found)}

    def exists(self, kind: str, namespace: str | None, name: str) -> bool:
        """Whether the object exists, reading only its metadata (never a Secret's data).

        False on a confirmed 404; any other failure raises KubeError (`get_metadata`).
        """
        return self.get_metadata(kind, namespace, name) is not None

    def served(self, group_version: str) -> set[str]:
        """The resources the API serves in `group_version` (discovery); empty on a 404.

        Discovery is open to every authenticated user: no RBAC on CRDs is needed.
        """
        result = self._call_unless_gone(
            "GET", f"/apis/{group_version}", what=f"discover {group_version}"
        )
        return {str(r.get("name")) for r in (result or {}).get("resources") or []}

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Every object of a kind (in a namespace), optionally by label selector."""
        query = [("labelSelector", label_selector)] if label_selector else []
        result = self._call(
            "GET", RESOURCES[kind].path(namespace), query=query, what=f"list {kind}"
        )
        return cast(list[dict[str, Any]], result.get("items") or [])

    def apply(self, obj: Mapping[str, Any], version: str | None = None) -> dict[str, Any]:
        """Server-side apply with the operator's field manager, taking over conflicting fields.

        `version`: only over the object at that resourceVersion, the one the operator judged
        its own (the API server takes a resourceVersion in an apply as a precondition: 409
        when the object changed, or was deleted and made again by someone else, since). Never
        a forced apply over an object of the name the operator did not judge. An object gone
        since is made anew from `obj`, the operator's own render.
        """
        kind, meta = obj["kind"], obj["metadata"]
        if version is not None:
            obj = {**obj, "metadata": {**meta, "resourceVersion": version}}
        return self._write(
            "PATCH", RESOURCES[kind].path(meta.get("namespace"), meta["name"]), dumps(obj),
            (kind, meta.get("namespace") or "", meta["name"]), "apply",
            content_type="application/apply-patch+yaml", force=True,
        )  # fmt: skip

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create an object; a 409 surfaces as KubeError(409) for create-only callers."""
        kind, meta = obj["kind"], obj["metadata"]
        return self._write(
            "POST", RESOURCES[kind].path(meta.get("namespace")), obj,
            (kind, meta.get("namespace") or "", meta["name"]), "create",
        )  # fmt: skip

    def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object; its metadata.resourceVersion makes this a compare-and-swap."""
        kind, meta = obj["kind"], obj["metadata"]
        return self._write(
            "PUT", RESOURCES[kind].path(meta.get("namespace"), meta["name"]), obj,
            (kind, meta.get("namespace") or "", meta["name"]), "update",
        )  # fmt: skip

    def merge_patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """A JSON merge patch, for status and single annotations."""
        return self._write(
            "PATCH", RESOURCES[kind].path(namespace, name, subresource), patch,
            (kind, namespace or "", name), "patch", content_type="application/merge-patch+json",
        )  # fmt: skip

    def json_patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        operations: Sequence[Mapping[str, Any]],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """A JSON patch (RFC 6902): its `test` operations are preconditions, and a failed one
        refuses the whole patch (the API answers 422)."""
        return self._write(
            "PATCH", RESOURCES[kind].path(namespace, name, subresource), operations,
            (kind, namespace or "", name), "patch", content_type="application/json-patch+json",
        )  # fmt: skip

    def delete(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        propagation: str | None = None,
        version: str | None = None,
    ) -> dict[str, Any] | None:
        """Delete an object; the API's answer (the object, or a Status), None when it was
        already gone. An object with finalizers is not gone yet (`Caches.store_deleted`).

        `propagation` (Background, Foreground): delete what it owns too; a Job deleted without
        it leaves its pods behind. `version`: only the object at that resourceVersion, the one
        the operator judged its own (409 when it changed or was made again since: never
        someone else's object of the name).
        """
        options: dict[str, Any] = {"propagationPolicy": propagation} if propagation else {}
        if version is not None:
            options["preconditions"] = {"resourceVersion": version}
        body = options or None
        return self._call_unless_gone(
            "DELETE", RESOURCES[kind].path(namespace, name), body=body, what=f"delete {kind}"
        )
