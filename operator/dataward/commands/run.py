"""`dataward run`: the operator."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from dataward import redact
from dataward.checks.observed import TrustedSubjects
from dataward.controller.access_log import AccessLogFollower
from dataward.controller.affinity import MODES, ONE
from dataward.controller.clock import clock_from_environ, skew_reference_from_environ
from dataward.controller.metrics import watch_evidence
from dataward.controller.reconcile import ReconcileSettings
from dataward.controller.staleness import STALE_GRACE_SECONDS
from dataward.controller.subjects import SubjectSettings
from dataward.evidence import EvidenceError, EvidenceLog, load_private_key, settings_from_environ
from dataward.evidence.store import connect as connect_evidence
from dataward.model.errors import ModelError
from dataward.model.wallclock import parse_zone
from dataward.render import RenderSettings

# kopf imports the kubernetes package when it can (kopf/_cogs/helpers/thirdparty.py, only to
# recognise its model objects, which the operator never passes): about 30 MiB and 0.5 s of
# every start for nothing (issue 11); the operator's own client is controller/kube.py's. So
# the package is hidden while kopf is first imported: kopf falls back to its dummies. kopf's
# default login handlers (which would use it) are never registered either: the operator
# registers its own (controller/operator.py, build_registry). Hidden only if nothing imported
# it or kopf yet, and shown again at once: a test process may need the real package later.
_HIDE = "kubernetes" not in sys.modules and "kopf" not in sys.modules
if _HIDE:
    sys.modules["kubernetes"] = None  # type: ignore[assignment]
try:
    from dataward.controller.operator import OperatorSettings, run_with_leader_election
finally:
    if _HIDE:
        del sys.modules["kubernetes"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dataward run`."""
    parser = subparsers.add_parser(
        "run", help="run the operator (holds a Lease; one active replica at a time)"
    )
    env = os.environ.get
    parser.add_argument(
        "--kubeconfig",
        default=env("KUBECONFIG") or None,
        help="kubeconfig file (default: in-cluster, then $KUBECONFIG)",
    )
    parser.add_argument(
        "--namespace",
        action="append",
        dest="namespaces",
        default=None,
        help="watch only this namespace (repeat for more; default: all)",
    )
    parser.add_argument(
        "--namespace-selector",
        default=env("DATAWARD_NAMESPACE_SELECTOR") or None,
        metavar="SELECTOR",
        help="serve only the namespaces whose labels match this selector (e.g. "
        "dataward.io/shard=a): one shard of several, each with its own --lease-name",
    )
    parser.add_argument(
        "--lease-name",
        default="dataward-operator",
        help="name of the leader-election Lease; one per shard (default: %(default)s)",
    )
    parser.add_argument(
        "--no-policy-status",
        dest="policy_status",
        action="store_false",
        help="do not write PrivacyPolicy status (give exactly one shard the job; it counts "
        "the stores of every shard)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        help="stores reconciled at once (default: %(default)s)",
    )
    parser.add_argument(
        "--cpu-affinity",
        choices=MODES,
        default=ONE,
        help="one: hold the operator's threads to one CPU at a time (its Python runs one "
        "thread at a time; spread over cores it spent about a third more CPU), moved to an "
        "idler CPU when there is one; any: let the kernel spread them (default: %(default)s)",
    )
    parser.add_argument(
        "--lease-namespace",
        default=env("DATAWARD_NAMESPACE", "dataward-system"),
        help="namespace of the leader-election Lease (default: %(default)s)",
    )
    parser.add_argument(
        "--image",
        default=env("DATAWARD_IMAGE", RenderSettings.image),
        help="image the purge CronJobs run (default: %(default)s)",
    )
    parser.add_argument(
        "--time-zone",
        type=_time_zone,
        default=env("DATAWARD_TIME_ZONE", "Etc/UTC"),
        help="time zone of purge.schedule, an IANA name (default: %(default)s)",
    )
    parser.add_argument(
        "--resync-seconds",
        type=float,
        default=3600.0,
        help="safety resync: re-list every cache and re-check every store this often "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--crd-check-seconds",
        type=float,
        default=OperatorSettings.crd_check_seconds,
        help="ask discovery this often whether the API serves Dataward's CRDs (deleted: pause; "
        "back: resume), AdminNetworkPolicies, Cilium's and Calico's policies (come or gone: "
        "NetworkIsolated weighs them from then on, or no longer) (default: %(default)s)",
    )
    parser.add_argument(
        "--stale-grace-seconds",
        type=float,
        default=STALE_GRACE_SECONDS,
        help="when the operator cannot read the stores (their list/watch forbidden or "
        "failing; sharded: the namespaces), after this long every verdict it last wrote "
        "True is made Unknown (StoreCacheUnavailable, NamespaceCacheUnavailable) and /readyz fails "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--no-watch-secrets",
        dest="watch_secrets",
        action="store_false",
        help="do not list or watch Secrets (the chart's watchSecrets: false): read key rings "
        "and credentials Secrets by name on each reconcile instead. With watching, only the "
        "key rings are received with their data; every other Secret as metadata only",
    )
    parser.add_argument(
        "--operator-service-account",
        default=env("DATAWARD_SERVICE_ACCOUNT"),
        help="NAMESPACE/NAME of the operator's own ServiceAccount, whose access "
        "to Secrets AccessRestricted does not count against a store",
    )
    parser.add_argument(
        "--trusted-subject",
        action="append",
        metavar="KIND:NAME",
        help="a subject whose access to Secrets is the platform's, not a breach: "
        "Group:NAME, User:NAME or ServiceAccount:NAMESPACE/NAME (NAME * for every account "
        "of the namespace); repeat for each. Given at all, these replace the default "
        "(Group:system:masters, User:system:kube-controller-manager, "
        "ServiceAccount:kube-system/*)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(env("DATAWARD_METRICS_PORT", "8080")),
        help="serve /healthz and /metrics on this port; 0 turns it off (default: %(default)s)",
    )
    parser.add_argument(
        "--lease-duration-seconds",
        type=int,
        default=30,
        help="how long a silent leader keeps the Lease (default: %(default)s)",
    )
    parser.add_argument(
        "--request-timeout-seconds",
        type=float,
        default=30.0,
        help="give up on an API request that has not answered for this long (a hung API "
        "server); connecting has 5 s (default: %(default)s)",
    )
    parser.add_argument("--key-ring-grace-seconds", type=float, default=30 * 24 * 3600,
                        help="deletionPolicy: Delete destroys a deleted store's key ring after "
                             "this long (default: 30 days)")
    parser.add_argument(
        "--audit-log",
        default=env("DATAWARD_AUDIT_LOG") or None,
        metavar="PATH",
        help="the API server's audit log file (--audit-log-path, JSON), mounted read-only: "
        "every read of a store's Secrets in it becomes an access.read evidence record, and "
        "each store gets the condition AccessRecorded (needs the evidence log)",
    )
    parser.add_argument(
        "--audit-canary-seconds",
        type=float,
        default=float(env("DATAWARD_AUDIT_CANARY_SECONDS", "600")),
        help="with --audit-log: how long the operator's own read of a key ring may take to "
        "appear in the audit log before AccessRecorded is False (default: %(default)s)",
    )
    parser.add_argument("--subject-request-answer-days", type=int, default=10,
                        help="a DataSubjectRequest's deadline is spec.receivedAt plus this many "
                             "days (default: 10, PIPA Art. 35 and Decree Art. 41)")
    parser.add_argument("--log-level", default=env("DATAWARD_LOG_LEVEL", "INFO"))
    parser.add_argument("--log-format", choices=("text", "json"),
                        default=env("DATAWARD_LOG_FORMAT", "text"),
                        help="json: one JSON object per line, for log pipelines")
    parser.set_defaults(func=run)


class JsonFormatter(redact.Formatter):
    """One JSON object per record: time, level, logger, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def log_formatter(log_format: str) -> logging.Formatter:
    """The operator's log lines (`--log-format`); a logged exception shows its class and
    frames, never its text (`redact.exception_text`)."""
    if log_format == "json":
        return JsonFormatter()
    return redact.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def open_evidence_log(environ: Mapping[str, str]) -> EvidenceLog | None:
    """The evidence log the environment configures (README, "Evidence log"), or None.

    It connects on its first record, not here: an evidence database that is down must not
    keep the operator from enforcing the controls; each record that cannot be written is
    logged. A key that cannot be read, or half a configuration, stops the start.
    """
    settings = settings_from_environ(environ)
    if settings is None:
        return None
    key = load_private_key(settings.signing_key)
    log = EvidenceLog(lambda: connect_evidence(settings.database, settings.credentials), key)
    watch_evidence(log.failures)  # each record it cannot write is counted on /metrics
    return log


def _time_zone(name: str) -> str:
    """`--time-zone`: an IANA zone name, refused at start otherwise. Set on every purge
    CronJob, where the API server refuses one it does not know: an operator started with a
    typo would have every store's CronJob refused."""
    try:
        parse_zone(name, "--time-zone")
    except ModelError as error:
        raise argparse.ArgumentTypeError(error.message) from None
    return name


def run(args: argparse.Namespace) -> int:
    """Run the operator until a signal (after losing the Lease, it tries to take it back)."""
    handler = logging.StreamHandler()
    handler.setFormatter(log_formatter(args.log_format))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    # kopf logs every watch event at DEBUG/INFO; keep ours readable.
    logging.getLogger("kopf").setLevel(logging.WARNING)
    account = None
    if args.operator_service_account:
        namespace, _, name = args.operator_service_account.partition("/")
        account = (namespace, name)
    identity = os.environ.get("POD_NAME")
    evidence = open_evidence_log(os.environ)
    follower = None
    if args.audit_log:
        if evidence is None:
            raise EvidenceError(
                "--audit-log needs the evidence log (DATAWARD_EVIDENCE_DATABASE): the access "
                "records it reads go there"
            )
        follower = AccessLogFollower(
            Path(args.audit_log), evidence, timedelta(seconds=args.audit_canary_seconds)
        )
    settings = OperatorSettings(
        identity=identity or OperatorSettings().identity,
        namespaces=tuple(args.namespaces or ()),
        namespace_selector=args.namespace_selector,
        policy_status=args.policy_status,
        workers=args.workers,
        cpu_affinity=args.cpu_affinity,
        lease_namespace=args.lease_namespace,
        lease_name=args.lease_name,
        lease_duration_seconds=args.lease_duration_seconds,
        resync_seconds=args.resync_seconds,
        crd_check_seconds=args.crd_check_seconds,
        stale_grace_seconds=args.stale_grace_seconds,
        watch_secrets=args.watch_secrets,
        kubeconfig=args.kubeconfig,
        metrics_port=args.metrics_port or None,
        request_timeout=(min(5.0, args.request_timeout_seconds), args.request_timeout_seconds),
        access_log=follower,
        reconcile=ReconcileSettings(
            render=RenderSettings(image=args.image, time_zone=args.time_zone),
            operator_service_account=account,
            trusted_subjects=TrustedSubjects.parse(args.trusted_subject)
            if args.trusted_subject
            else TrustedSubjects(),
            key_ring_grace_seconds=args.key_ring_grace_seconds,
            evidence=evidence,
            clock=clock_from_environ(os.environ),
            skew_reference=skew_reference_from_environ(os.environ),
            reporting_instance=identity or "dataward",
            access_records=follower,
        ),
        subjects=SubjectSettings(
            render=RenderSettings(image=args.image, time_zone=args.time_zone),
            answer_period=timedelta(days=args.subject_request_answer_days),
            clock=clock_from_environ(os.environ),
            evidence=evidence,
            reporting_instance=identity or "dataward",
        ),
    )
    return run_with_leader_election(settings)
