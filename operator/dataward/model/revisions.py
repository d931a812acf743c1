"""Revisions of a PrivacyPolicy: which one is in force, and which one waits out its notice.

The seed policy promises: "We will notify you of any additions, deletions, or modifications
... at least 7 days prior to the revision. However, if there is a significant change in user
rights, such as the collection and utilization of personal information or provision to third
parties, we will notify you at least 30 days in advance." So a changed policy is not enforced
at once: the operator keeps enforcing the revision in force until the new one's effective
date, and that date counts only once the notice period has run.

Everything here is pure: `decide` takes the policy's spec and generation, what the operator
recorded in `status.revisions`, and "now", and says which revision is in force and which one
is pending. The operator writes the answer to the policy's status; the stores and the purge
job read the in-force revision from there.

Decisions:

- A revision is a change of the policy's substance: everything in the spec but the schedule
  fields (`effectiveDate`, `announced`, `emergency`). Editing only those reschedules the same
  revision; reverting the substance to the revision in force withdraws a pending one.
- Notice counts from the later of `announced` and the moment the operator first observed the
  revision: a backdated announcement must not shorten the notice, and Dataward cannot know
  of an announcement older than the revision it can see.
- The first revision the operator sees (a new policy, or one from before this feature) is in
  force at once: there is no earlier revision to keep enforcing, and keeping data without any
  policy is not the safer side.
- An emergency override (`spec.emergency.reason`) skips the notice period for the revision it
  was written for: the revision takes effect on its effective date (at once when that is past).
  A reason already in the revision in force does not count again, so a leftover `emergency`
  block does not excuse the next revision.
- Dates are days in UTC: a revision effective on a date takes effect at 00:00 UTC that day.
- The impact gate (issue 13): past its date, a revision takes effect only when the operator
  has recorded the dry-run counts of every store it changes and none is a large cut (the
  purge's rule), or when the policy carries the acknowledgement annotation with the pending
  revision's token. Unknown counts (a preview Job not run yet, failed, or a store past the
  status's list) hold the revision like a large cut: nobody has seen what it destroys. The
  emergency override skips the gate as it skips the notice (it is recorded); each store's
  purge still holds its own large cuts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from dataward.model.compliance import compliance_findings, effective_retention
from dataward.model.durations import Duration
from dataward.model.errors import ModelError
from dataward.model.policy import Category, Policy, parse_policy
from dataward.model.store import Store
from dataward.purge.plan import ACKNOWLEDGE_ANNOTATION

NOTICE_DAYS = 7
WIDENING_NOTICE_DAYS = 30
SCHEDULE_FIELDS = frozenset({"effectiveDate", "announced", "emergency"})
# Spec and category fields this rule ranks; a change anywhere else counts as widening.
_KNOWN_SPEC_FIELDS = SCHEDULE_FIELDS | {"defaults", "categories"}
_KNOWN_CATEGORY_FIELDS = frozenset({"name", "description", "purposes", "retention", "statutory"})


def _longer(new: Duration, old: Duration) -> bool:
    """True when `new` ends later than `old` from some start date (calendar-sound)."""
    return not new.is_at_most(old)


def _category_widens(old: Category, new: Category) -> list[str]:
    where = f"category {new.name}"
    reasons = [
        f"{where}: new purpose {purpose}" for purpose in new.purposes if purpose not in old.purposes
    ]
    if new.retention.trigger != old.retention.trigger:
        # A different event may come later: whether records are kept longer is unknowable.
        reasons.append(
            f"{where}: retention now counts from {new.retention.trigger}, "
            f"not {old.retention.trigger}"
        )
    if _longer(new.retention.period, old.retention.period):
        reasons.append(
            f"{where}: retention {new.retention.period} may be longer than {old.retention.period}"
        )
    if new.statutory is not None:
        if old.statutory is None:
            reasons.append(f"{where}: records are now archived under {new.statutory.statute}")
        else:
            if new.statutory.statute != old.statutory.statute:
                # The statute is the archive's only purpose: a new one is a new purpose.
                reasons.append(f"{where}: archived records now kept under another statute")
            if _longer(new.statutory.period, old.statutory.period):
                reasons.append(
                    f"{where}: statutory period {new.statutory.period} may be longer than "
                    f"{old.statutory.period}"
                )
    return reasons


def _raw_categories(spec: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        str(c.get("name")): c for c in spec.get("categories") or () if isinstance(c, Mapping)
    }


def widens(old_spec: Mapping[str, Any], new_spec: Mapping[str, Any]) -> list[str]:
    """Why `new_spec` widens what is collected or kept compared with `old_spec` (empty: it does
    not), each reason a sentence without personal data.

    Widening: a new category; a new purpose in a category; a retention or statutory period
    that may end later from some start date (6mo against 180d is compared over the calendar,
    not as text); a different retention trigger (a later event would keep records longer); a
    statutory duty where there was none, or under another statute. Narrowing changes (a
    category or purpose removed, a shorter period) and wording (descriptions) do not widen.
    `defaults` (key rotation, the minimum the access log is kept) are duties of the operator,
    not data kept about a person: they do not widen. A change in a field this rule does not
    know (added by a later version) counts as widening: the rule errs towards longer notice.
    The policy does not model provision to third parties; when it does, a new recipient
    belongs here. Raises ModelError when either spec is not a valid policy (`old_spec`'s
    naming the field of status.revisions.inForce: it is the copy the operator recorded).
    """
    try:
        old = parse_policy({"metadata": {"name": "old"}, "spec": old_spec})
    except ModelError as error:
        raise _recorded_spec_error(error) from None
    new = parse_policy({"metadata": {"name": "new"}, "spec": new_spec})
    reasons: list[str] = []
    for category in new.categories:
        before = old.category(category.name)
        if before is None:
            reasons.append(f"new category {category.name}")
        else:
            reasons.extend(_category_widens(before, category))
    old_raw, new_raw = _raw_categories(old_spec), _raw_categories(new_spec)
    for name, raw in sorted(new_raw.items()):
        if name not in old_raw:
            continue
        for key in sorted(set(raw) | set(old_raw[name])):
            if key not in _KNOWN_CATEGORY_FIELDS and raw.get(key) != old_raw[name].get(key):
                reasons.append(f"category {name}: field {key} changed (counted as widening)")
    for key in sorted(set(new_spec) | set(old_spec)):
        if key not in _KNOWN_SPEC_FIELDS and new_spec.get(key) != old_spec.get(key):
            reasons.append(f"field spec.{key} changed (counted as widening)")
    return reasons


def required_notice(reasons: Sequence[str]) -> int:
    """Days of notice a revision needs: 30 when it widens what is collected or kept, else 7."""
    return WIDENING_NOTICE_DAYS if reasons else NOTICE_DAYS


def substance(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec without its schedule fields, categories in name order (order is no change)."""
    kept = {k: v for k, v in spec.items() if k not in SCHEDULE_FIELDS}
    categories = kept.get("categories")
    if isinstance(categories, list | tuple):
        kept["categories"] = sorted(
            (
                {**c, "purposes": sorted(c["purposes"])}
                if isinstance(c, Mapping) and isinstance(c.get("purposes"), list | tuple)
                else c
                for c in categories
            ),
            key=lambda c: str(c.get("name")) if isinstance(c, Mapping) else "",
        )
    return kept


def digest(spec: Mapping[str, Any]) -> str:
    """SHA-256 of the spec's substance, canonical JSON: equal substance, equal digest."""
    canonical = json.dumps(substance(spec), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class SpecDigests:
    """`digest`, once per spec object, for specs never changed once made.

    Every store of a policy reads the same cached PrivacyPolicy object (the caches never change
    an object: a changed policy is another one), and deciding its revisions digests its spec
    and the spec in force twice a reconcile: with the seed's policy that canonical JSON was a
    fifth of a restart's first pass (issue 11, bench/RESULTS.md). Held by object: the memo
    keeps each spec it answered for, so its id is not reused while it is held; emptied when it
    holds `size` of them (a few policies, each replaced now and then). Only for objects nobody
    changes: a dict changed after its digest was taken keeps the old one here.
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._held: dict[int, tuple[Mapping[str, Any], str]] = {}

    def __call__(self, spec: Mapping[str, Any]) -> str:
        # Single dict operations, atomic under the GIL: workers share one memo, no lock.
        hit = self._held.get(id(spec))
        if hit is not None and hit[0] is spec:
            return hit[1]
        value = digest(spec)
        if len(self._held) >= self._size:
            self._held.clear()
        self._held[id(spec)] = (spec, value)
        return value


def _date(value: Any, path: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ModelError(path, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _instant(value: Any, path: str) -> datetime:
    """A time the operator recorded in status; the error never quotes the value (status can
    be written by whoever may patch it: the value could be anything)."""
    if not isinstance(value, str):
        raise ModelError(path, "is required (an RFC 3339 time)")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ModelError(path, "is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise ModelError(path, "needs a time zone")
    return parsed.astimezone(UTC)


def start_of(day: date) -> datetime:
    """00:00 UTC of `day`: when a revision effective (or announced) that day counts from."""
    return datetime.combine(day, time(), tzinfo=UTC)


def format_instant(instant: datetime) -> str:
    """RFC 3339 in UTC, to the second."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def emergency_reason(spec: Mapping[str, Any]) -> str | None:
    """The emergency override's reason, or None."""
    emergency = spec.get("emergency")
    if not isinstance(emergency, Mapping):
        return None
    reason = emergency.get("reason")
    return str(reason) if reason else None


@dataclass(frozen=True)
class InForce:
    """The revision the operator enforces."""

    generation: int
    spec: Mapping[str, Any]
    since: datetime

    def to_status(self) -> dict[str, Any]:
        """As `status.revisions.inForce`."""
        status: dict[str, Any] = {
            "generation": self.generation,
            "since": format_instant(self.since),
            "digest": digest(self.spec),
            "spec": dict(self.spec),
        }
        if self.spec.get("effectiveDate"):
            status["effectiveDate"] = self.spec["effectiveDate"]
        return status

    @classmethod
    def from_status(cls, raw: Any) -> InForce:
        """Read `status.revisions.inForce`; ModelError when it is not what the operator writes."""
        path = "status.revisions.inForce"
        if not isinstance(raw, Mapping) or not isinstance(raw.get("spec"), Mapping):
            raise ModelError(path, "must be an object with the spec in force")
        generation = raw.get("generation")
        if isinstance(generation, bool) or not isinstance(generation, int):
            raise ModelError(f"{path}.generation", "must be a whole number")
        return cls(generation, raw["spec"], _instant(raw.get("since"), f"{path}.since"))


@dataclass(frozen=True)
class Pending:
    """A revision waiting for its effective date and its notice period."""

    generation: int
    digest: str
    announced: date | None
    effective_date: date | None
    observed: datetime
    notice_days: int
    takes_effect: datetime
    widens: tuple[str, ...]
    emergency: str | None
    # Past `takes_effect` but not released by the impact gate: why it waits (ImpactGate).
    held: str | None = None

    @property
    def acknowledge_token(self) -> str:
        """The value of the policy's acknowledgement annotation that releases this revision."""
        return revision_token(self.generation, self.digest)

    def to_status(self) -> dict[str, Any]:
        """As `status.revisions.pending`."""
        status: dict[str, Any] = {
            "generation": self.generation,
            "digest": self.digest,
            "observed": format_instant(self.observed),
            "noticeDays": self.notice_days,
            "takesEffect": format_instant(self.takes_effect),
            "widens": list(self.widens),
        }
        if self.announced is not None:
            status["announced"] = self.announced.isoformat()
        if self.effective_date is not None:
            status["effectiveDate"] = self.effective_date.isoformat()
        if self.emergency is not None:
            status["emergency"] = self.emergency
        if self.held is not None:
            status["held"] = self.held
        return status


@dataclass(frozen=True)
class Revisions:
    """The operator's answer: the revision in force, the pending one, and what just changed."""

    in_force: InForce
    pending: Pending | None
    # The pending revision took effect in this very decision (record it, re-queue the stores).
    promoted: bool = False
    # The emergency override it took effect by, skipping the notice period.
    override: str | None = None

    def to_status(self) -> dict[str, Any]:
        """As `status.revisions` (no `pending` when none is pending)."""
        status = {"inForce": self.in_force.to_status()}
        if self.pending is not None:
            status["pending"] = self.pending.to_status()
        return status


def _recorded_pending(raw: Any) -> tuple[str, datetime] | None:
    """The digest and first-observed time of a recorded pending revision, when readable."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("digest"), str):
        return None
    try:
        return raw["digest"], _instant(raw.get("observed"), "status.revisions.pending.observed")
    except ModelError:
        return None  # then the notice counts from now: later, never earlier


def decide(
    spec: Mapping[str, Any],
    generation: int,
    recorded: Mapping[str, Any] | None,
    now: datetime,
    acknowledged: str | None = None,
    digest_of: Callable[[Mapping[str, Any]], str] = digest,
) -> Revisions:
    """Which revision is in force at `now`, and which is pending.

    `recorded` is `status.revisions` as the operator last wrote it (None: never). A recorded
    in-force revision that cannot be read raises ModelError: the caller must not guess.
    `acknowledged` is the policy's ACKNOWLEDGE_ANNOTATION: past its date, a revision without
    an emergency override takes effect only when the impact gate releases it (`released`).
    `digest_of`: `digest`, or a `SpecDigests` when `spec` and `recorded` are never changed.
    """
    if not recorded or recorded.get("inForce") is None:
        return Revisions(InForce(generation, spec, now), None)
    in_force = InForce.from_status(recorded["inForce"])
    current = digest_of(spec)
    if current == digest_of(in_force.spec):
        return Revisions(in_force, None)  # unchanged, rescheduled only, or withdrawn
    reasons = tuple(widens(in_force.spec, spec))
    notice = required_notice(reasons)
    before = _recorded_pending(recorded.get("pending"))
    observed = before[1] if before is not None and before[0] == current else now
    announced = _date(spec.get("announced"), "spec.announced")
    effective = _date(spec.get("effectiveDate"), "spec.effectiveDate")
    emergency = emergency_reason(spec)
    if emergency is not None and emergency == emergency_reason(in_force.spec):
        emergency = None  # a leftover override: it was for the revision already in force
    if emergency is not None:
        takes_effect = start_of(effective) if effective is not None else observed
    else:
        start = max(observed, start_of(announced)) if announced is not None else observed
        earliest = start + timedelta(days=notice)
        takes_effect = max(earliest, start_of(effective)) if effective is not None else earliest
    held = None
    if now >= takes_effect:
        verdict = _recorded_verdict(recorded.get("pending"), current)
        token = revision_token(generation, current)
        held = None if emergency is not None else gate(verdict, token, acknowledged)
        if held is None:
            since = max(takes_effect, observed)
            return Revisions(InForce(generation, spec, since), None, True, emergency)
    pending = Pending(
        generation, current, announced, effective, observed, notice, takes_effect, reasons,
        emergency, held,
    )  # fmt: skip
    return Revisions(in_force, pending)


def policy_revisions(
    raw: Mapping[str, Any],
    now: datetime,
    digest_of: Callable[[Mapping[str, Any]], str] = digest,
) -> Revisions:
    """`decide` for a PrivacyPolicy object as the API returns it (its status included);
    `digest_of` as `decide`'s."""
    metadata = raw.get("metadata") or {}
    status = raw.get("status") or {}
    annotations = metadata.get("annotations") or {}
    acknowledged = annotations.get(ACKNOWLEDGE_ANNOTATION)
    return decide(
        raw.get("spec") or {},
        int(metadata.get("generation") or 0),
        status.get("revisions") if isinstance(status, Mapping) else None,
        now,
        str(acknowledged) if acknowledged else None,
        digest_of,
    )


def parse_in_force(raw: Mapping[str, Any], spec: Mapping[str, Any]) -> Policy:
    """The PrivacyPolicy `raw` with `spec`, its revision in force, as its spec.

    When `spec` is not `raw`'s own spec it is the copy the operator recorded in
    status.revisions.inForce, which whoever may patch the policy's status can also write (or
    one this version's schema refuses): the ModelError then names the field under
    status.revisions.inForce, never the value (which could be anything).
    """
    try:
        return parse_policy({**raw, "spec": dict(spec)})
    except ModelError as error:
        if dict(spec) == dict(raw.get("spec") or {}):
            raise  # the policy's own spec: its own error, as the user wrote it
        raise _recorded_spec_error(error) from None


def _recorded_spec_error(error: ModelError) -> ModelError:
    """`error` of a parse of status.revisions.inForce.spec, naming its field, never its value."""
    return ModelError(
        f"status.revisions.inForce.{error.path}",
        "does not parse as the revision in force the operator recorded",
    )


def in_force_known(revisions: Revisions, instant: datetime) -> bool:
    """Whether `revisions.in_force`, decided at `instant`, is the revision that was in force
    then. Status records only the revision in force now: at an instant before it took effect
    (a clock behind the one the operator recorded it by, within the allowed skew) the one in
    force then is no longer recorded, so it is not known."""
    return revisions.in_force.since <= instant


class UnknownRevision:
    """The revision in force at an instant `in_force_known` says is not known: equal to no
    policy, so the purge and data-subject requests deciding at that instant stop
    (`purge.plan.revision_at_clocks`)."""

    def __repr__(self) -> str:
        return "UnknownRevision()"


UNKNOWN_REVISION = UnknownRevision()


def in_force_policy(raw: Mapping[str, Any], now: datetime) -> Policy:
    """The PrivacyPolicy object as the revision in force at `now`, parsed (`parse_in_force`).

    What stores are judged by and the purge deletes by. Raises ModelError when the recorded
    status cannot be read.
    """
    return parse_in_force(raw, in_force_policy_object(raw, now)["spec"])


def in_force_policy_object(raw: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The PrivacyPolicy object as the revision in force at `now` (its spec replaced).

    What stores are judged by and the purge deletes by. Raises ModelError when the recorded
    status cannot be read.
    """
    return {**raw, "spec": dict(policy_revisions(raw, now).in_force.spec)}


IMPACT_LIMIT = 100  # stores listed in status.revisions.pending.impact; the count says the rest


def _terms(store: Store, policy: Policy) -> dict[str, Any]:
    """What `policy` means for `store`: its retention, statutory period and first finding."""
    category = policy.category(store.category)
    findings = compliance_findings(store, policy)
    terms: dict[str, Any] = {"outcome": findings[0].reason if findings else "Compliant"}
    if category is not None:
        terms["retention"] = str(effective_retention(store, category))
        if category.statutory is not None:
            terms["statutory"] = str(category.statutory.period)
        if category.children is not None:
            terms["consentGrace"] = str(category.children.consent_grace)
    return terms


def impact(
    stores: Sequence[Store], in_force: Policy, pending: Policy, limit: int | None = IMPACT_LIMIT
) -> tuple[list[dict[str, Any]], int]:
    """Per store, what changes when `pending` replaces `in_force` (stores it does not change
    are left out), at most `limit` of them, and how many are affected in all.

    Each entry: the store (`namespace/name`), and `before`/`after` with the retention it
    keeps records for, the statutory period, and `outcome` (Compliant, or the first
    compliance finding's reason: a store the revision would put out of compliance shows
    here before it happens). Row counts are the purge preview's business, not this one's.
    """
    affected = []
    for store in sorted(stores, key=lambda s: (s.namespace, s.name)):
        before, after = _terms(store, in_force), _terms(store, pending)
        if before != after:
            affected.append(
                {"store": f"{store.namespace}/{store.name}", "before": before, "after": after}
            )
    return affected[:limit], len(affected)


# The impact gate. Verdicts the operator records in status.revisions.pending.impactVerdict.
SMALL, LARGE_CUT, UNKNOWN = "Small", "LargeCut", "Unknown"
# A store's preview, as `status.revisions.pending.impact[].preview.state`.
COUNTED, WAITING, FAILED, NOT_RUN = "Counted", "Waiting", "Failed", "NotRun"


def revision_token(generation: int, revision_digest: str) -> str:
    """The acknowledgement token of a pending revision: its generation and substance."""
    return f"g{generation}-{revision_digest[:12]}"


def _recorded_verdict(raw: Any, current: str) -> str:
    """The impact verdict the operator recorded for the pending revision `current`."""
    if not isinstance(raw, Mapping) or raw.get("digest") != current:
        return UNKNOWN
    verdict = raw.get("impactVerdict")
    return verdict if verdict in (SMALL, LARGE_CUT) else UNKNOWN


def gate(verdict: str, token: str, acknowledged: str | None) -> str | None:
    """Why a revision past its date still waits (LargeCut, Unknown), or None: it may go."""
    if verdict == SMALL or (acknowledged is not None and acknowledged == token):
        return None
    return verdict if verdict == LARGE_CUT else UNKNOWN


def preview_state(store: Store, in_force: Policy, pending: Policy) -> str | None:
    """What the impact preview of `store` needs: None when the revision changes nothing for
    it; NOT_RUN when its purge will not run under the revision (it would not comply, or is
    on legal hold), so nothing is deleted by it; WAITING when a dry-run Job must count."""
    if _terms(store, in_force) == _terms(store, pending):
        return None
    if compliance_findings(store, pending) or store.purge.suspend:
        return NOT_RUN
    return WAITING


def verdict(states: Sequence[Mapping[str, Any]]) -> str:
    """The impact verdict over every affected store's preview (`state`, `largeCut`)."""
    if any(s.get("largeCut") is True for s in states):
        return LARGE_CUT
    if all(s.get("state") in (COUNTED, NOT_RUN) for s in states):
        return SMALL
    return UNKNOWN
