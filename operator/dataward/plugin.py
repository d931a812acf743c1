"""`kubectl dataward`: look at and act on PersonalDataStores from the current kubeconfig.

  status [STORE]       each condition with its reason and message, the last purge, the
                       key's age and next rotation, and what to do (all stores without STORE)
  explain [REASON]     what a condition reason means and what to do (every reason without one)
  purge now STORE      run the store's purge now: a Job from its CronJob, as
                       `kubectl create job --from=cronjob/...` does
  acknowledge STORE    release a purge held for a large cut, by setting the store's
                       dataward.io/acknowledge-large-purge annotation to the token the hold
                       names (the cut's rows a table, with a margin; --rows N in advance)
  acknowledge --shredding STORE
                       release a crypto-shredding of more than one bucket at once, by setting
                       dataward.io/acknowledge-shredding to the token naming those buckets

Installed with Dataward as `kubectl-dataward`, so `kubectl dataward` finds it on PATH.
It reads objects' status and metadata only: never a Secret.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO, cast

from dataward.checks import reasons
from dataward.checks.conditions import CONDITION_TYPES, ENCRYPTION_KEY_READY
from dataward.checks.encryption import (
    SHREDDING_ANNOTATION,
    SHREDDING_NOT_ACKNOWLEDGED,
    shredding_token,
    waiting_buckets,
)
from dataward.model.errors import ModelError
from dataward.model.k8s_names import is_dns_label, is_dns_subdomain
from dataward.model.revisions import in_force_policy
from dataward.model.store import Store, parse_store
from dataward.purge.plan import (
    ACKNOWLEDGE_ANNOTATION,
    acknowledge_token,
    cut_token,
    held_for,
    token_rows,
)
from dataward.render.names import names_for
from dataward.version import version

PROG = "kubectl dataward"
GROUP_VERSION = "dataward.io/v1alpha1"
FIELD_MANAGER = "kubectl-dataward"
MANUAL_ANNOTATION = "cronjob.kubernetes.io/instantiate"  # what kubectl create job --from sets
MAX_JOB_NAME = 63
TIMEOUT: tuple[float, float] = (5.0, 30.0)


class PluginError(Exception):
    """A failure to tell the user in one sentence (no traceback)."""


class Api(Protocol):
    """The API calls the plugin makes; objects in and out as plain dicts."""

    def default_namespace(self) -> str:
        """The namespace of the kubeconfig's current context ("default" when it has none)."""
        ...

    def list_stores(self, namespace: str | None) -> list[dict[str, Any]]:
        """PersonalDataStores of a namespace, or of every namespace when None."""
        ...

    def get_store(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One PersonalDataStore, or None when it does not exist."""
        ...

    def get_policy(self, name: str) -> dict[str, Any] | None:
        """One PrivacyPolicy, or None when it does not exist."""
        ...

    def get_cronjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One CronJob, or None when it does not exist."""
        ...

    def create_job(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a Job; the created object."""
        ...

    def annotate_store(
        self, namespace: str, name: str, annotations: Mapping[str, str], resource_version: str
    ) -> dict[str, Any]:
        """Merge `annotations` into a store's metadata, if it is still at `resource_version`."""
        ...


# The API over the official client's REST layer.

_PATHS = {
    "PersonalDataStore": f"/apis/{GROUP_VERSION}/namespaces/{{ns}}/personaldatastores",
    "PrivacyPolicy": f"/apis/{GROUP_VERSION}/privacypolicies",
    "CronJob": "/apis/batch/v1/namespaces/{ns}/cronjobs",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs",
}


class KubeApi:
    """`Api` from a kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) or in-cluster."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        from kubernetes import client, config

        configuration = client.Configuration()
        configuration.retries = 0
        self._namespace = "default"
        try:
            config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
            _, active = config.list_kube_config_contexts(config_file=kubeconfig)
            if context:
                contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
                active = next((c for c in contexts if c.get("name") == context), active)
            self._namespace = str((active.get("context") or {}).get("namespace") or "default")
        except (config.ConfigException, OSError) as error:
            if kubeconfig or context:
                raise PluginError(f"cannot load the kubeconfig: {_sentence(error)}") from None
            try:
                config.load_incluster_config(client_configuration=configuration)
            except config.ConfigException:
                raise PluginError(
                    f"cannot load a kubeconfig ({_sentence(error)}); pass --kubeconfig or set "
                    "KUBECONFIG"
                ) from None
            self._namespace = _in_cluster_namespace()
        self.server = str(configuration.host)
        self.api = client.ApiClient(configuration)

    def default_namespace(self) -> str:
        """The namespace of the current context."""
        return self._namespace

    def _call(
        self,
        method: str,
        path: str,
        what: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any] | None:
        """The JSON answer; None on 404; PluginError on any other failure."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        method_, url, headers, payload, _ = self.api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(
                method_, url, header_params=headers, body=payload, _request_timeout=TIMEOUT
            )
            data = response.read()
            status = int(response.status)
        except ApiException as error:
            data, status = (error.body or b""), int(error.status or 0)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise PluginError(
                f"cannot {what}: no answer from the API server at {self.server} "
                f"({type(error).__name__})"
            ) from None
        if status == 404:
            return None
        if not 200 <= status < 300:
            raise PluginError(f"cannot {what}: {_status_message(status, data)}")
        return cast(dict[str, Any], json.loads(data)) if data else {}

    def list_stores(self, namespace: str | None) -> list[dict[str, Any]]:
        """PersonalDataStores of one namespace or all."""
        path = (
            f"/apis/{GROUP_VERSION}/personaldatastores"
            if namespace is None
            else _PATHS["PersonalDataStore"].format(ns=namespace)
        )
        where = "in every namespace" if namespace is None else f"in namespace {namespace}"
        found = self._call("GET", path, f"list PersonalDataStores {where}")
        if found is None:
            raise PluginError(
                f"the API server at {self.server} does not serve {GROUP_VERSION} "
                "personaldatastores: is Dataward installed in this cluster?"
            )
        return list(found.get("items") or [])

    def get_store(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One store."""
        path = f"{_PATHS['PersonalDataStore'].format(ns=namespace)}/{name}"
        return self._call("GET", path, f"get PersonalDataStore {namespace}/{name}")

    def get_policy(self, name: str) -> dict[str, Any] | None:
        """One policy."""
        return self._call("GET", f"{_PATHS['PrivacyPolicy']}/{name}", f"get PrivacyPolicy {name}")

    def get_cronjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One CronJob."""
        path = f"{_PATHS['CronJob'].format(ns=namespace)}/{name}"
        return self._call("GET", path, f"get CronJob {namespace}/{name}")

    def create_job(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a Job."""
        name = body["metadata"]["name"]
        created = self._call(
            "POST",
            _PATHS["Job"].format(ns=namespace),
            f"create Job {namespace}/{name}",
            body=dict(body),
            query=[("fieldManager", FIELD_MANAGER)],
        )
        if created is None:
            raise PluginError(f"cannot create Job {namespace}/{name}: namespace not found")
        return created

    def annotate_store(
        self, namespace: str, name: str, annotations: Mapping[str, str], resource_version: str
    ) -> dict[str, Any]:
        """A merge patch of the store's annotations, compare-and-swap on resourceVersion."""
        path = f"{_PATHS['PersonalDataStore'].format(ns=namespace)}/{name}"
        patched = self._call(
            "PATCH",
            path,
            f"annotate PersonalDataStore {namespace}/{name}",
            body={
                "metadata": {
                    "annotations": dict(annotations),
                    "resourceVersion": resource_version,
                }
            },
            content_type="application/merge-patch+json",
            query=[("fieldManager", FIELD_MANAGER)],
        )
        if patched is None:
            raise PluginError(f"PersonalDataStore {name} not found in namespace {namespace}")
        return patched


def _in_cluster_namespace() -> str:
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


def _status_message(status: int, data: bytes | str) -> str:
    """The API server's own sentence for a failed request (a Status object), or its code."""
    try:
        parsed = json.loads(data or b"{}")
    except ValueError:
        parsed = {}
    message = str(parsed.get("message") or "") if isinstance(parsed, dict) else ""
    names = {401: "unauthorized", 403: "forbidden", 409: "conflict", 422: "invalid"}
    label = names.get(status, f"HTTP {status}")
    if status == 409:
        message = "the object changed meanwhile; run the command again"
    return f"{label}: {message}" if message else label


def _sentence(error: BaseException) -> str:
    text = str(error).strip().rstrip(".") or type(error).__name__
    return text.splitlines()[0]


# Formatting a store: pure functions of the object, tested with a stubbed API.


def _parse_time(text: object) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def span(seconds: float) -> str:
    """A duration in the largest two units, as kubectl prints ages: 3d4h, 5m, 40s."""
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours and days < 10 else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def _when(text: object, now: datetime) -> str:
    instant = _parse_time(text)
    if instant is None:
        return "unknown"
    delta = (now - instant).total_seconds()
    relative = f"{span(delta)} ago" if delta >= 0 else f"in {span(delta)}"
    return f"{text} ({relative})"


def _wrap(text: str, width: int, indent: str, hanging: str | None = None) -> list[str]:
    """`text` wrapped at spaces only (`hanging`: the indent of its lines after the first). A
    word longer than `width` (a digest a message names a binding or subject by, which an admin
    greps for) runs past it rather than being split, and a name is never broken at one of its
    hyphens: names are what an admin copies into kubectl."""
    return textwrap.wrap(
        text, width=width, initial_indent=indent,
        subsequent_indent=indent if hanging is None else hanging,
        break_long_words=False, break_on_hyphens=False,
    ) or [indent.rstrip()]  # fmt: skip


def _conditions(store: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = [c for c in (store.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
    order = {t: i for i, t in enumerate(CONDITION_TYPES)}
    return sorted(items, key=lambda c: (order.get(str(c.get("type")), len(order)), c.get("type")))


@dataclass(frozen=True)
class ToDo:
    """Something about a store a person should act on."""

    type: str
    status: str
    reason: str
    action: str


def to_do(store: Mapping[str, Any]) -> list[ToDo]:
    """Each condition (other than Ready) that is not True or needs attention, with what to do."""
    out: list[ToDo] = []
    for c in _conditions(store):
        type_, status, reason = str(c.get("type")), str(c.get("status")), str(c.get("reason"))
        if type_ == "Ready":
            continue
        entry = next(iter(reasons.lookup(reason, type_)), None)
        if status == "True" and not (entry and entry.needs_action):
            continue
        action = entry.action if entry else "Read the condition's message."
        out.append(ToDo(type_, status, reason, action))
    return out


def format_store(store: Mapping[str, Any], now: datetime, width: int = 100) -> str:
    """One screen about a store: conditions, last purge, key, and what to do."""
    meta = store.get("metadata") or {}
    spec = store.get("spec") or {}
    status = store.get("status") or {}
    lines = [f"PersonalDataStore {meta.get('namespace')}/{meta.get('name')}"]
    lines.append(
        f"  Policy {spec.get('policy', '?')}, category {spec.get('category', '?')}"
        + (f", retention {spec['retention']}" if spec.get("retention") else "")
        + (", purge suspended (legal hold)" if (spec.get("purge") or {}).get("suspend") else "")
        + (", dry run" if (spec.get("purge") or {}).get("dryRun") else "")
    )
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    conditions = _conditions(store)
    if not conditions:
        lines += [
            "",
            "  No status yet: the operator has not reconciled this store. Check that it runs "
            "(kubectl get pods -A -l app.kubernetes.io/name=dataward).",
        ]
        return "\n".join(lines) + "\n"
    if generation is not None and observed is not None and observed != generation:
        lines.append(
            f"  Status is for generation {observed}; the operator has not yet acted on "
            f"generation {generation}."
        )
    lines += ["", "Conditions:"]
    for c in conditions:
        lines.append(f"  {c.get('type', '?'):<19} {c.get('status', '?'):<8} {c.get('reason', '')}")
        lines += _wrap(str(c.get("message") or ""), width, " " * 6)
    lines += ["", "Last purge:"]
    lines += _last_purge(status.get("lastPurge"), now, width)
    lines += ["", "Encryption key:"]
    lines += _encryption(status.get("encryption"), now)
    lines += ["", "What to do:"]
    found = to_do(store)
    if not found:
        lines.append("  Nothing: every control is in force.")
    for f in found:
        text = f"{f.type}={f.status} ({f.reason}): {f.action}"
        lines += _wrap(text, width, "  - ", "    ")
        if f.reason == "PurgeHeld":
            lines.append(
                f"    $ kubectl dataward acknowledge -n {meta.get('namespace')} {meta.get('name')}"
            )
        if f.reason == SHREDDING_NOT_ACKNOWLEDGED:
            lines.append(
                f"    $ kubectl dataward acknowledge --shredding -n {meta.get('namespace')} "
                f"{meta.get('name')}"
            )
    if found:
        lines.append("  `kubectl dataward explain REASON` says more about each reason.")
    return "\n".join(lines) + "\n"


def _last_purge(last: object, now: datetime, width: int) -> list[str]:
    if not isinstance(last, Mapping) or not last.get("result"):
        return ["  None has run yet."]
    result = str(last["result"])
    dry = " (dry run)" if last.get("dryRun") else ""
    reason = f" ({last['reason']})" if last.get("reason") else ""
    job = f", Job {last['jobName']}" if last.get("jobName") else ""
    out = [f"  {result}{reason}{dry}{job}"]
    if last.get("completionTime"):
        out.append(f"  Finished {_when(last['completionTime'], now)}")
    elif last.get("startTime"):
        out.append(f"  Started {_when(last['startTime'], now)}")
    counts = [
        f"{last.get('rowsDeleted', 0)} row(s) deleted"
        + (" (counted, not deleted)" if last.get("dryRun") else ""),
        f"{last.get('rowsArchived', 0)} archived",
    ]
    if last.get("expiredRemaining"):
        counts.append(f"{last['expiredRemaining']} expired row(s) remain")
    out.append(
        "  " + ", ".join(counts) + (f"; cutoff {last['cutoff']}" if last.get("cutoff") else "")
    )
    if last.get("message"):
        out += _wrap(str(last["message"]), width, "  ")
    return out


def _encryption(encryption: object, now: datetime) -> list[str]:
    if not isinstance(encryption, Mapping) or not encryption.get("keySecret"):
        return ["  No key ring recorded yet."]
    out = [f"  Key ring Secret {encryption['keySecret']}"]
    if encryption.get("primaryKeyId") is not None:
        created = _parse_time(encryption.get("primaryKeyCreated"))
        age = f", {span((now - created).total_seconds())} old" if created else ""
        out.append(
            f"  Primary key {encryption['primaryKeyId']}, created "
            f"{encryption.get('primaryKeyCreated', 'unknown')}{age}"
        )
    if encryption.get("nextRotation"):
        out.append(f"  Next rotation {_when(encryption['nextRotation'], now)}")
    if encryption.get("scheduledDeletion"):
        out.append(f"  Destroyed after {_when(encryption['scheduledDeletion'], now)}")
    return out


# Commands.


@dataclass
class Context:
    """What a command needs: parsed arguments, the API (made on first use), output streams."""

    args: argparse.Namespace
    make_api: Callable[[argparse.Namespace], Api]
    out: TextIO
    err: TextIO
    now: datetime
    _api: Api | None = None

    @property
    def api(self) -> Api:
        """The API, made on first use (explain needs none)."""
        if self._api is None:
            self._api = self.make_api(self.args)
        return self._api

    def namespace(self) -> str:
        """-n, else the current context's namespace."""
        given: str | None = getattr(self.args, "namespace", None)
        return given or self.api.default_namespace()

    def store(self, name: str) -> dict[str, Any]:
        """A store of the namespace, or a PluginError saying it is not there."""
        namespace = self.namespace()
        found = self.api.get_store(namespace, name)
        if found is None:
            raise PluginError(f"PersonalDataStore {name} not found in namespace {namespace}")
        return found


def cmd_status(ctx: Context) -> int:
    """Print one screen per store."""
    width = max(60, min(120, shutil.get_terminal_size((100, 24)).columns))
    if ctx.args.store:
        if ctx.args.all_namespaces:
            raise PluginError("give either STORE or -A/--all-namespaces, not both")
        stores = [ctx.store(ctx.args.store)]
    else:
        namespace = None if ctx.args.all_namespaces else ctx.namespace()
        stores = ctx.api.list_stores(namespace)
        if not stores:
            where = "in any namespace" if namespace is None else f"in namespace {namespace}"
            ctx.out.write(f"No PersonalDataStores {where}.\n")
            return 0
        stores.sort(key=lambda s: (s["metadata"].get("namespace", ""), s["metadata"]["name"]))
    ctx.out.write("\n".join(format_store(s, ctx.now, width) for s in stores))
    return 0


def cmd_explain(ctx: Context) -> int:
    """Print the catalogue's entry for a reason, or every reason's name."""
    if not ctx.args.reason:
        ctx.out.write("Condition reasons (kubectl dataward explain REASON):\n")
        for type_ in CONDITION_TYPES:
            names = sorted({e.reason for e in reasons.entries() if e.type == type_})
            ctx.out.write(_listing(type_, names))
        ctx.out.write(
            _listing("status.lastPurge.reason", [o.reason for o in reasons.PURGE_OUTCOMES])
        )
        return 0
    text = reasons.explain(ctx.args.reason)
    if text is None:
        hint = reasons.close_matches(ctx.args.reason)
        maybe = f"; did you mean {' or '.join(hint)}?" if hint else "."
        raise PluginError(
            f"no condition reason is named {ctx.args.reason!r}{maybe} "
            f"`{PROG} explain` lists them all"
        )
    ctx.out.write(text)
    return 0


def _listing(title: str, names: Sequence[str], width: int = 100) -> str:
    text = f"{title}: {', '.join(names)}"
    return (
        "\n".join(_wrap(text, width, "  ", "      "))
        + "\n"
    )


def manual_job(cronjob: Mapping[str, Any], suffix: str) -> dict[str, Any]:
    """The Job `kubectl create job --from=cronjob/NAME` makes, owned by the CronJob."""
    meta = cronjob["metadata"]
    template = cronjob["spec"]["jobTemplate"]
    template_meta = template.get("metadata") or {}
    tail = f"-manual-{suffix}"
    name = meta["name"][: MAX_JOB_NAME - len(tail)].rstrip("-") + tail
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": dict(template_meta.get("labels") or {}),
            "annotations": {
                **(template_meta.get("annotations") or {}),
                MANUAL_ANNOTATION: "manual",
            },
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": template["spec"],
    }


def cmd_purge_now(ctx: Context) -> int:
    """Create a Job from the store's purge CronJob."""
    store = ctx.store(ctx.args.store)
    namespace = store["metadata"]["namespace"]
    cron_name = names_for(store["metadata"]["name"]).purge_cronjob
    cronjob = ctx.api.get_cronjob(namespace, cron_name)
    if cronjob is None:
        raise PluginError(
            f"CronJob {cron_name} of store {ctx.args.store} does not exist in namespace "
            f"{namespace}; `{PROG} status {ctx.args.store}` says why (PurgeScheduled)"
        )
    if (cronjob.get("spec") or {}).get("suspend"):
        scheduled = next((c for c in _conditions(store) if c.get("type") == "PurgeScheduled"), {})
        why = f" ({scheduled.get('reason')})" if scheduled.get("reason") else ""
        ctx.err.write(
            f"Note: CronJob {cron_name} is suspended{why}; the run starts, but a store that is "
            "not compliant or under a legal hold is refused or skipped by the purge itself.\n"
        )
    job = ctx.api.create_job(namespace, manual_job(cronjob, secrets.token_hex(3)))
    name = job["metadata"]["name"]
    ctx.out.write(
        f"job.batch/{name} created from cronjob/{cron_name} in namespace {namespace}.\n"
        f"Follow it: kubectl get job -n {namespace} {name} -w; the store's status shows the "
        "result when it finishes.\n"
    )
    return 0


_HELD_TOKEN = re.compile(re.escape(ACKNOWLEDGE_ANNOTATION) + r"=(\S+)")


def held_token(store: Mapping[str, Any]) -> str | None:
    """The token the last purge's hold asked for, when the last purge was held."""
    last = (store.get("status") or {}).get("lastPurge") or {}
    if last.get("result") != "Held":
        return None
    match = _HELD_TOKEN.search(str(last.get("message") or ""))
    return match.group(1) if match else None


_ASKED_SHREDDING = re.compile(re.escape(SHREDDING_ANNOTATION) + r"=(\S+)")


def waiting_shredding(store: Mapping[str, Any]) -> tuple[tuple[str, ...], str | None] | None:
    """The buckets whose destruction waits for an acknowledgement (EncryptionKeyReady is
    KeyShreddingNotAcknowledged), with the token its message asks for; None when none waits.
    A PluginError when the condition says one waits but names no buckets in the operator's
    form."""
    found = [c for c in _conditions(store) if c.get("type") == ENCRYPTION_KEY_READY]
    if len(found) != 1 or found[0].get("reason") != SHREDDING_NOT_ACKNOWLEDGED:
        return None
    message = str(found[0].get("message") or "")
    buckets = waiting_buckets(message)
    if buckets is None:
        raise PluginError(
            f"{ENCRYPTION_KEY_READY} says a shredding waits, but its message names no buckets "
            "in the form the operator writes; read it with `kubectl dataward status`"
        )
    asked = _ASKED_SHREDDING.search(message)
    return buckets, asked.group(1) if asked else None


def _parsed_store(raw: dict[str, Any], ref: str) -> Store:
    """The store `raw` parsed, or a PluginError naming it when it cannot be read."""
    try:
        return parse_store(raw)
    except ModelError as error:
        raise PluginError(f"PersonalDataStore {ref} cannot be read ({error})") from None


def _annotate_once(
    ctx: Context, raw: dict[str, Any], store: Store, ref: str, annotation: str, token: str,
    then: str,
) -> bool:
    """Set `annotation` to `token` on the store and say so and `then`, unless it is that token
    already: no write when nothing changes. True when it wrote."""
    if store.annotation(annotation) == token:
        ctx.out.write(f"PersonalDataStore {ref} is already acknowledged ({token}).\n")
        return False
    meta = raw["metadata"]
    ctx.api.annotate_store(
        meta["namespace"], meta["name"], {annotation: token}, meta["resourceVersion"]
    )
    ctx.out.write(f"personaldatastore/{meta['name']} annotated {annotation}={token}.\n{then}")
    return True


def _acknowledge_shredding(ctx: Context, raw: dict[str, Any], ref: str) -> int:
    """Set SHREDDING_ANNOTATION to the token of the buckets the condition says wait."""
    if ctx.args.force or ctx.args.rows is not None:
        raise PluginError(
            "--force and --rows apply to a purge's acknowledgement, not to --shredding"
        )
    waiting = waiting_shredding(raw)
    if waiting is None:
        ready = next(
            (c for c in _conditions(raw) if c.get("type") == ENCRYPTION_KEY_READY), None
        )
        said = (
            "it has no verdict yet" if ready is None
            else f"it is {ready.get('status')}, {ready.get('reason')}"
        )  # fmt: skip
        raise PluginError(
            f"no crypto-shredding of PersonalDataStore {ref} waits for an acknowledgement "
            f"({ENCRYPTION_KEY_READY}: {said}), so there is nothing to acknowledge"
        )
    buckets, asked = waiting
    store = _parsed_store(raw, ref)
    token = shredding_token(store, buckets)
    if asked != token:
        raise PluginError(
            f"the condition asks for token {asked or '(none)'}, but its buckets on this store "
            f"give {token}: "
            "the status was not written for the store as it is now (made again under the same "
            "name?); run this again after the operator's next reconcile"
        )
    _annotate_once(
        ctx, raw, store, ref, SHREDDING_ANNOTATION, token,
        f"The operator may now destroy the keys of {len(buckets)} bucket(s): "
        f"{', '.join(buckets)}. Every record of them has expired; once the keys go, their "
        "data (in backups too) can no longer be decrypted. This releases these buckets only: "
        "if another falls due first, the operator asks again.\n",
    )
    return 0


def cmd_acknowledge(ctx: Context) -> int:
    """Set the acknowledgement annotation to the token the purge (or, with --shredding, the
    crypto-shredding) will ask for."""
    raw = ctx.store(ctx.args.store)
    meta = raw["metadata"]
    ref = f"{meta['namespace']}/{meta['name']}"
    if ctx.args.shredding:
        return _acknowledge_shredding(ctx, raw, ref)
    store = _parsed_store(raw, ref)
    policy_raw = ctx.api.get_policy(store.policy)
    if policy_raw is None:
        raise PluginError(
            f"PrivacyPolicy {store.policy} of store {ref} does not exist, so no purge runs and "
            "there is nothing to acknowledge"
        )
    try:
        # The revision in force, which the purge deletes by (not a revision in its notice).
        policy = in_force_policy(policy_raw, ctx.now)
    except ModelError as error:
        raise PluginError(f"PrivacyPolicy {store.policy} cannot be read ({error})") from None
    token = acknowledge_token(store, policy)
    held = held_token(raw)
    if held is not None and not held_for(held, token) and not ctx.args.force:
        raise PluginError(
            f"the purge was held at token {held}, but the store or its policy has changed "
            f"since (the token is now {token}): the next run counts again and holds again if "
            "the cut is still large. Acknowledge then, or pass --force to acknowledge "
            "a cut you have not seen"
        )
    rows = ctx.args.rows if ctx.args.rows is not None else (
        token_rows(held)[1] if held is not None else None
    )  # fmt: skip
    if rows is None:
        raise PluginError(
            (f"no purge of PersonalDataStore {ref} is held now" if held is None
             else f"the hold of PersonalDataStore {ref} names no number of rows")
            + ": an acknowledgement releases a cut of up to a number of rows a table; to "
            "acknowledge one in advance, say how many with --rows N"
        )  # fmt: skip
    wrote = _annotate_once(
        ctx, raw, store, ref, ACKNOWLEDGE_ANNOTATION, cut_token(token, rows),
        f"The next purge runs may delete up to {rows} expired rows a table; a larger cut is "
        "held again, and the acknowledgement lasts until the store's spec or its policy "
        "changes.\n",
    )
    if wrote and held is None:
        ctx.out.write("(No purge is held now: this acknowledges a large cut in advance.)\n")
    return 0


# The command line.


def _common(with_namespace_all: bool = False) -> argparse.ArgumentParser:
    """Options accepted before and after the subcommand (defaults only at the top)."""
    common = argparse.ArgumentParser(add_help=False)
    s = argparse.SUPPRESS
    common.add_argument("--kubeconfig", default=s, help="kubeconfig file (default: KUBECONFIG)")
    common.add_argument("--context", default=s, help="kubeconfig context to use")
    common.add_argument("-n", "--namespace", default=s, help="namespace (default: the context's)")
    if with_namespace_all:
        common.add_argument(
            "-A", "--all-namespaces", action="store_true", default=s, help="every namespace"
        )
    common.add_argument("--version", action="version", version=f"{PROG} {version()}")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The `kubectl dataward` parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(with_namespace_all=True)],
    )
    parser.set_defaults(kubeconfig=None, context=None, namespace=None, all_namespaces=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status = sub.add_parser(
        "status", parents=[_common(True)], help="conditions, last purge, key and what to do"
    )
    status.add_argument("store", nargs="?", help="a PersonalDataStore (default: every one)")
    status.set_defaults(func=cmd_status)
    explain = sub.add_parser(
        "explain", parents=[_common()], help="what a condition reason means and what to do"
    )
    explain.add_argument("reason", nargs="?", help="a reason, e.g. PurgeRunStuck")
    explain.set_defaults(func=cmd_explain)
    purge = sub.add_parser("purge", parents=[_common()], help="act on a store's purge")
    purge_sub = purge.add_subparsers(dest="purge_command", required=True, metavar="ACTION")
    now = purge_sub.add_parser(
        "now", parents=[_common()], help="run the purge now (a Job from its CronJob)"
    )
    now.add_argument("store", help="a PersonalDataStore")
    now.set_defaults(func=cmd_purge_now)
    ack = sub.add_parser(
        "acknowledge",
        parents=[_common()],
        help="release a purge held for a large cut (--shredding: a crypto-shredding of more "
        "than one bucket)",
    )
    ack.add_argument("store", help="a PersonalDataStore")
    ack.add_argument(
        "--shredding",
        action="store_true",
        help="release the destruction of the bucket keys EncryptionKeyReady says wait "
        "(KeyShreddingNotAcknowledged), not a purge",
    )
    ack.add_argument(
        "--rows",
        type=_rows,
        default=None,
        help="the most expired rows a released run may delete from one table (default: the "
        "held cut's, with its margin; needed to acknowledge in advance)",
    )
    ack.add_argument(
        "--force",
        action="store_true",
        help="acknowledge even when the store or policy changed since the purge was held",
    )
    ack.set_defaults(func=cmd_acknowledge)
    return parser


def _rows(text: str) -> int:
    """--rows: a whole number of rows, at least 1."""
    if not text.isdigit() or int(text) < 1 or len(text) > 15:
        raise argparse.ArgumentTypeError(f"not a number of rows: {text!r}")
    return int(text)


def _kube_api(args: argparse.Namespace) -> Api:
    return KubeApi(args.kubeconfig, args.context)


def main(
    argv: Sequence[str] | None = None,
    make_api: Callable[[argparse.Namespace], Api] = _kube_api,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: datetime | None = None,
) -> int:
    """Run `kubectl dataward`; return the exit status. Errors are one sentence on stderr."""
    out, err = out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    ctx = Context(args, make_api, out, err, now or datetime.now(UTC))
    try:
        _check_names(args)
        status: int = args.func(ctx)
    except PluginError as error:
        err.write(f"error: {_capitalised(str(error))}.\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a bug: still a sentence, not a traceback
        err.write(
            f"error: unexpected {type(error).__name__}: {_sentence(error)}. Please report this.\n"
        )
        return 1
    return status


def _check_names(args: argparse.Namespace) -> None:
    """Refuse a STORE or --namespace that is no object's name, before any request: each goes
    into a request's path, where `..` segments (folded by the HTTP client) would reach
    another object, a Secret among them."""
    store = getattr(args, "store", None)
    if isinstance(store, str) and not is_dns_subdomain(store):
        raise PluginError(
            "STORE must be a PersonalDataStore's name: lowercase letters, digits, '-' and '.'"
        )
    namespace = getattr(args, "namespace", None)
    if isinstance(namespace, str) and not is_dns_label(namespace):
        raise PluginError(
            "--namespace must be a namespace's name: lowercase letters, digits and '-'"
        )


def _capitalised(text: str) -> str:
    text = text.rstrip(".")
    return text[:1].upper() + text[1:]


if __name__ == "__main__":
    sys.exit(main())
