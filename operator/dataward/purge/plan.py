"""What a purge run will do, decided without I/O: cutoffs, batch sizes and the gates.

Each gate is a small pure function returning a `Gate` (the run's result, a CamelCase reason and
a sentence saying what to change) or None when the run may go on. The engine calls them in
this order: `refusal` (store compliant, not suspended) before connecting; `clock_skew` once
per database clock; `large_cut` after counting, before deleting anything; `interruption`
between batches.

The large-cut gate: a run is held when, in any table, the expired rows are more than
`min_rows` (default 1,000) AND more than `fraction` (default 10%) of the table. Daily purges
remove a sliver of a table; a cut this size means a shortened retention (1y -> 0d), a lifted
legal hold or a mistake, and a person confirms it by setting the store's annotation
`dataward.io/acknowledge-large-purge` to the token the result prints. The token is
`<retention>-g<store generation>-p<policy generation>-<digest of the store's namespace, name
and uid>-n<rows>`: it releases a cut of up to `<rows>` expired rows in each table (the cut
that was held, with a margin for the rows that expire before a person answers), until the
store's spec or the policy changes (adding an annotation does not change a generation). So
one acknowledgement covers the runs that work off the backlog, `maxRowsPerRun` at a time,
while an annotation left in place (a GitOps manifest keeps it) does not release a larger cut
later (old rows restored from a backup); a store created again under the same name needs its
own. Dry runs are never held (they delete nothing).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from dataward.model.compliance import compliance_findings, effective_retention
from dataward.model.durations import Duration, cutoff_for
from dataward.model.policy import Policy
from dataward.model.store import RecordSet, Store

if TYPE_CHECKING:  # model.revisions imports this module
    from dataward.model.revisions import UnknownRevision

ACKNOWLEDGE_ANNOTATION = "dataward.io/acknowledge-large-purge"
DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=5)

Outcome = Literal["Succeeded", "Failed", "Held", "Skipped"]
StopReason = Literal[
    "MaxRowsPerRun",
    "Suspended",
    "NotCompliant",
    "RetentionChanged",
    "StoreChanged",
    "AcknowledgementWithdrawn",
    "StoreUnavailable",
]


@dataclass(frozen=True)
class Gate:
    """A run that must not go on (or must not start): its result, reason and message."""

    result: Outcome
    reason: str
    message: str


# The stop at the work limit (spec.purge.maxRowsPerRun): the one stop that more rows per run
# would have avoided, and the only one the operator advises raising that limit for.
WORK_LIMIT_STOP: StopReason = "MaxRowsPerRun"

# The stops that fail a run: the store stopped complying, or it could not be read again, so
# whether it may still be purged (a legal hold, its compliance) is unknown. The others end a
# run that did what it should: at maxRowsPerRun, or for a change the next run follows.
FAILING_STOPS: frozenset[StopReason] = frozenset({"NotCompliant", "StoreUnavailable"})


@dataclass(frozen=True)
class Stop:
    """Why a run stopped between batches."""

    reason: StopReason
    message: str

    @property
    def outcome(self) -> Outcome:
        """The result of a run that ended on this stop."""
        return "Failed" if self.reason in FAILING_STOPS else "Succeeded"


@dataclass(frozen=True)
class LargeCutThreshold:
    """When a run deletes so much of a table at once that a person must confirm it."""

    fraction: float = 0.10
    min_rows: int = 1000

    def is_large(self, expired: int, total: int) -> bool:
        """True when `expired` of `total` rows is past both bounds."""
        return expired > self.min_rows and expired > self.fraction * total

    def allowance(self, expired: int) -> int:
        """The rows an acknowledgement of a cut of `expired` rows releases in a table: the cut
        and a tenth more (at least `min_rows` more), for the rows that expire between the
        hold and the next run."""
        return expired + max(expired // 10, self.min_rows)


@dataclass(frozen=True)
class TableCount:
    """Rows of one live table at the start of a run."""

    table: str
    expired: int
    total: int


@dataclass(frozen=True)
class PurgePlan:
    """Everything a run needs to know that does not come from the databases' rows."""

    store: str
    retention: Duration
    statutory: Duration | None
    now: datetime
    cutoff: datetime
    archive_now: datetime | None
    archive_cutoff: datetime | None
    records: tuple[RecordSet, ...]
    batch_size: int
    max_rows: int
    dry_run: bool
    acknowledge_token: str
    # A children's category: rows of a child without consent collected at or before this go.
    consent_grace: Duration | None = None
    children_cutoff: datetime | None = None
    # The store object the plan was made from: a spec edit (tables, columns, dryRun, ...) or
    # a store deleted and created again under its name stops the run between batches.
    store_uid: str = ""
    store_generation: int = 0
    # The acknowledgement of this store the run started with (the annotation's value, whether
    # or not its cut was large enough to need it): changing or removing it stops the run.
    acknowledgement: str | None = None

    @property
    def archive_clock(self) -> datetime:
        """The instant the statute is counted at: the archive server's clock (`archive_now`),
        the live one's without an archive."""
        return self.archive_now if self.archive_now is not None else self.now


def store_ref(store: Store) -> str:
    """`namespace/name`."""
    return f"{store.namespace}/{store.name}"


def refusal(store: Store, policy: Policy | None) -> Gate | None:
    """Refuse a store that is not PolicyCompliant, or whose purge is suspended (legal hold)."""
    findings = compliance_findings(store, policy)
    if findings:
        details = " ".join(f"{f.reason}: {f.message}" for f in findings)
        return Gate(
            "Failed",
            "NotCompliant",
            f"the store is not PolicyCompliant, so nothing is purged. {details}",
        )
    if store.purge.suspend:
        return Gate(
            "Skipped",
            "Suspended",
            "spec.purge.suspend is true (legal hold): nothing was read or deleted; set it to "
            "false to resume purging.",
        )
    return None


def clock_skew(
    server_now: datetime, job_now: datetime, bound: timedelta, which: str = "database"
) -> Gate | None:
    """Abort when the database server's clock and the job's disagree by more than `bound`."""
    skew = abs(server_now - job_now)
    if skew <= bound:
        return None
    return Gate(
        "Failed",
        "ClockSkew",
        f"the {which} server's clock ({server_now.isoformat()}) and the purge job's "
        f"({job_now.isoformat()}) differ by {skew.total_seconds():.0f}s, more than the "
        f"{bound.total_seconds():.0f}s allowed: fix time synchronisation (NTP) on the server "
        "or the node; nothing was deleted.",
    )


def revision_at_clocks(
    loaded: Policy | None,
    at_clocks: Sequence[Policy | UnknownRevision | None],
    then: str = "the next run uses the revision in force then.",
) -> Gate | None:
    """Stop a run before it reads a row when the revision of the policy in force is not the
    same at every clock it read (`at_clocks`: the policy decided at each server's clock and
    the job's) as the one it loaded (`loaded`, decided at the job's clock), or is not known
    at one of them (UNKNOWN_REVISION: a clock before the recorded revision took effect).

    Within the allowed skew any of those clocks may be the right one, so a revision that takes
    effect between them is in force by one and not by another. Neither is safe to plan under
    at `planning_instant`: the revision at the job's clock may be a shorter retention not yet
    in force at the database's earlier instant, the one at the earlier clock a longer one
    already in force by the later. The next run, past the start, decides under one revision
    (`then`: what the message tells of it).
    """
    if all(policy == loaded for policy in at_clocks):
        return None
    return Gate(
        "Succeeded",
        "RetentionChanged",
        "a revision of the policy takes effect between the database servers' clocks and the "
        "job's (within the allowed skew), so which revision is in force at the instant of the "
        f"cutoff is not certain; nothing was deleted, {then}",
    )


def acknowledge_token(store: Store, policy: Policy) -> str:
    """The value of the acknowledgement annotation that releases a held large cut: the
    retention and generations (for a person to read), then a digest of the store's namespace,
    name and uid, so a token kept in a manifest that outlived the store it was given for (the
    store deleted and created again under its name) releases nothing."""
    category = policy.category(store.category)
    retention = effective_retention(store, category) if category else store.retention
    named = f"{store.namespace}/{store.name}\n{store.uid}"
    bound = hashlib.sha256(named.encode()).hexdigest()[:8]
    return f"{retention}-g{store.generation}-p{policy.generation}-{bound}"


_ROWS = re.compile(r"-n([0-9]{1,15})$")


def cut_token(token: str, rows: int) -> str:
    """The acknowledgement that releases a cut of up to `rows` rows a table, for `token`
    (`acknowledge_token` of the store)."""
    return f"{token}-n{rows}"


def token_rows(acknowledgement: str) -> tuple[str, int | None]:
    """An acknowledgement split into the store's token and the rows it releases (None: a
    token of an earlier release, which named no rows and releases nothing now)."""
    match = _ROWS.search(acknowledgement)
    if match is None:
        return acknowledgement, None
    return acknowledgement[: match.start()], int(match.group(1))


def held_for(held: str, token: str) -> bool:
    """Whether a hold that asked for `held` (read from a store's own status) asked for what
    `token` (`acknowledge_token` of that store now) names: equal, or an earlier release's
    form of it (no digest of the store's identity; the status is this very object's, so its
    identity is the one `token` binds)."""
    return token_rows(held)[0] in (token, token.rsplit("-", 1)[0])


def releases(acknowledgement: str | None, token: str, counts: Sequence[TableCount],
             threshold: LargeCutThreshold) -> bool:
    """Whether the store's acknowledgement releases the large cuts among `counts`: it names
    this store's `token` and rows at least as many as each large cut."""
    if acknowledgement is None:
        return False
    named, rows = token_rows(acknowledgement)
    if named != token or rows is None:
        return False
    return all(c.expired <= rows for c in counts if threshold.is_large(c.expired, c.total))


def held_token(plan: PurgePlan, counts: Sequence[TableCount], threshold: LargeCutThreshold) -> str:
    """The acknowledgement a held run asks for: its largest cut, with the allowance."""
    largest = max((c.expired for c in counts if threshold.is_large(c.expired, c.total)), default=0)
    return cut_token(plan.acknowledge_token, threshold.allowance(largest))


def large_cut(
    store: Store,
    plan: PurgePlan,
    counts: Sequence[TableCount],
    threshold: LargeCutThreshold,
) -> Gate | None:
    """Hold a run that would delete too much of a table at once, unless acknowledged."""
    if plan.dry_run:
        return None
    large = [c for c in counts if threshold.is_large(c.expired, c.total)]
    if not large:
        return None
    if releases(
        store.annotation(ACKNOWLEDGE_ANNOTATION), plan.acknowledge_token, counts, threshold
    ):
        return None
    tables = ", ".join(
        f"{c.table}: {c.expired} of {c.total} rows ({100 * c.expired / max(c.total, 1):.0f}%)"
        for c in large
    )
    return Gate(
        "Held",
        "LargePurgeNotAcknowledged",
        f"held: the cut at retention {plan.retention} would delete more than "
        f"{threshold.fraction:.0%} (and more than {threshold.min_rows} rows) of a table "
        f"({tables}); nothing was deleted. If this is intended, run: kubectl annotate "
        f"personaldatastore -n {store.namespace} {store.name} "
        f"{ACKNOWLEDGE_ANNOTATION}={held_token(plan, counts, threshold)} --overwrite",
    )


def planning_instant(server_now: datetime, job_now: datetime, *more: datetime) -> datetime:
    """The instant a run plans at: the earlier of a database server's clock and the job's
    (and the earliest of `more` clocks read for the same decisions: a data-subject request
    decides its live and archive rows at one instant, `subjects.engine.run_request`).

    Within the allowed skew (`clock_skew`) either clock may be the right one; a cutoff at the
    later would take rows up to the skew before their own expiry by the other.
    """
    return min(server_now, job_now, *more)


def make_plan(
    store: Store, policy: Policy, now: datetime, archive_now: datetime | None = None
) -> PurgePlan:
    """The plan for a compliant store at `now` (and `archive_now`), the instants
    `planning_instant` gives for the live server's clock (and the archive's).

    Call only after `refusal` returned None: the category must exist.
    """
    category = policy.category(store.category)
    if category is None:
        raise ValueError(f"category {store.category!r} not in policy {policy.name!r}")
    retention = effective_retention(store, category)
    statutory = category.statutory.period if category.statutory else None
    archive_clock = archive_now if archive_now is not None else now
    grace = category.children.consent_grace if category.children else None
    return PurgePlan(
        store=store_ref(store),
        retention=retention,
        statutory=statutory,
        now=now,
        cutoff=cutoff_for(now, retention),
        archive_now=archive_now if statutory else None,
        archive_cutoff=cutoff_for(archive_clock, statutory) if statutory else None,
        records=store.records,
        batch_size=max(1, store.purge.batch_size),
        max_rows=max(0, store.purge.max_rows_per_run),
        dry_run=store.purge.dry_run,
        acknowledge_token=acknowledge_token(store, policy),
        consent_grace=grace,
        children_cutoff=cutoff_for(now, grace) if grace is not None else None,
        store_uid=store.uid,
        store_generation=store.generation,
        acknowledgement=_acknowledgement(store, acknowledge_token(store, policy)),
    )


def _acknowledgement(store: Store, token: str) -> str | None:
    """The store's acknowledgement annotation when it names this store's `token`."""
    given = store.annotation(ACKNOWLEDGE_ANNOTATION)
    return given if given is not None and token_rows(given)[0] == token else None


def next_batch_size(batch_size: int, max_rows: int, done: int) -> int:
    """Rows the next batch may take: a full batch, or what is left of the run's budget."""
    return max(0, min(batch_size, max_rows - done))


FIRST_BATCH = 100  # rows; grows towards spec.purge.batchSize while batches stay short


def adapt_batch_size(current: int, elapsed: float, target: float, ceiling: int) -> int:
    """The next batch size: scaled so a batch holds its locks about `target` seconds.

    It aims at 80% of the target (a batch's cost grows faster than its size, so aiming at
    the target itself overshoots it), changes by at most a factor of two per batch (one slow
    batch, a checkpoint say, does not collapse it) and stays within 1 .. `ceiling`
    (spec.purge.batchSize).
    """
    aim = 0.8 * target
    factor = 2.0 if elapsed <= 0 else min(2.0, max(0.5, aim / elapsed))
    return max(1, min(ceiling, int(current * factor)))


# Key-order sweeps (batches.MySQLKeyBatches) read every row of the key span the expired rows
# occupy; below this share of expired rows in it, reading the timestamp index is cheaper.
KEY_SWEEP_DENSITY = 0.25


def key_sweep(expired: int, span_rows: int, budget: int) -> bool:
    """Whether a MySQL table's plain batches sweep its primary key instead of walking the
    timestamp index oldest first: only when the run may delete every expired row (the
    order then decides nothing but speed) and at least `KEY_SWEEP_DENSITY` of the rows the
    optimiser estimates in their key span are expired."""
    if expired <= 0 or expired > budget:
        return False
    return expired >= KEY_SWEEP_DENSITY * max(span_rows, 1)


def server_side_copy(
    same_server: bool,
    mariadb: bool,
    live_table: tuple[str, str],
    archive_table: tuple[str, str],
    engines: tuple[str | None, str | None],
    may_insert: bool,
    may_select: bool,
) -> bool:
    """Whether a statutory MariaDB table's batches copy to the archive inside the live
    transaction (`INSERT INTO archive_db.t ... SELECT ... FOR UPDATE`, then the DELETE, one
    commit) instead of through the job with the archive's own login. Only when every fact
    read at the start holds: both sessions reach one server process (`mysql.same_server`),
    MariaDB (the statements tested), the archive table is another table than the live one
    (`(database, table)`), both are InnoDB (one transaction spans them atomically), and the
    live login may INSERT into the archive table and SELECT from it (the server's own
    privilege check of those statements). Anything unknown is False: today's path."""
    return (
        same_server
        and mariadb
        and live_table != archive_table
        and all(e is not None and e.lower() == "innodb" for e in engines)
        and may_insert
        and may_select
    )


def dry_run_allocation(expired: Sequence[int], max_rows: int) -> tuple[int, ...]:
    """Rows a real run would delete from each table, in order, within the run's budget."""
    left = max_rows
    out = []
    for count in expired:
        take = max(0, min(count, left))
        out.append(take)
        left -= take
    return tuple(out)


def interruption(
    plan: PurgePlan, store: Store, policy: Policy | UnknownRevision | None
) -> Stop | None:
    """Re-checked between batches with the store as it is now: stop, or None to go on
    (`policy`: the revision in force now, UnknownRevision when that is not known)."""
    if policy is not None and not isinstance(policy, Policy):
        return Stop(
            "RetentionChanged",
            "the policy's status records a revision in force from after the time now (within "
            "the allowed clock skew), so which revision is in force is not certain; stopped "
            "so the next run decides under one.",
        )
    if compliance_findings(store, policy):
        return Stop(
            "NotCompliant", "the store stopped being PolicyCompliant during the run; stopped."
        )
    if store.purge.suspend:
        return Stop("Suspended", "spec.purge.suspend became true during the run; stopped.")
    assert policy is not None  # compliant implies a policy
    category = policy.category(store.category)
    assert category is not None
    statutory = category.statutory.period if category.statutory else None
    grace = category.children.consent_grace if category.children else None
    if (
        effective_retention(store, category) != plan.retention
        or statutory != plan.statutory
        or grace != plan.consent_grace
    ):
        return Stop(
            "RetentionChanged",
            "the retention changed during the run; stopped so the next run uses the new one.",
        )
    if store.uid != plan.store_uid or store.generation != plan.store_generation:
        return Stop(
            "StoreChanged",
            "the store's spec changed during the run (or it was deleted and created again); "
            "stopped so the next run uses the store as it is now.",
        )
    if (
        plan.acknowledgement is not None
        and store.annotation(ACKNOWLEDGE_ANNOTATION) != plan.acknowledgement
    ):
        return Stop(
            "AcknowledgementWithdrawn",
            f"the {ACKNOWLEDGE_ANNOTATION} annotation was removed or changed during the run; "
            "stopped (a large cut is held again at the next run).",
        )
    return None


def overdue_seconds(expired_at: datetime, now: datetime) -> float:
    """How long ago a row that expired at `expired_at` (`sql.expiry_of`) expired, in seconds."""
    return max(0.0, (now - expired_at).total_seconds())
