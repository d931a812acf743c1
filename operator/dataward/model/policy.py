"""The PrivacyPolicy as a typed value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from dataward.model.durations import Duration, parse_duration
from dataward.model.errors import ModelError
from dataward.model.fields import mapping, optional_text, sequence, text

# Crypto-shredding buckets (dataward.keys.buckets): one key per calendar month or year.
KeyBuckets = Literal["month", "year"]
KEY_BUCKETS: tuple[KeyBuckets, ...] = ("month", "year")

DEFAULT_KEY_ROTATION = Duration(90, "d")
DEFAULT_ACCESS_LOG_RETENTION = Duration(6, "mo")
# How long a row of a child under CHILD_AGE without recorded guardian consent may stay, for the
# consent process only. A choice, not a statute: PIPA Art. 22-2 (formerly 22(6)) and the seed
# policy allow processing a child's data to confirm the legal representative's consent but
# name no period; 5 days is the default. Bounded by the CRD (at most 30d).
DEFAULT_CONSENT_GRACE = Duration(5, "d")
MAX_CONSENT_GRACE_DAYS = 30
CHILD_AGE = 14  # PIPA Art. 22-2: under 14 needs the legal representative's consent


@dataclass(frozen=True)
class Retention:
    """How long after its trigger event a record may stay in the live store."""

    period: Duration
    trigger: str


@dataclass(frozen=True)
class Statutory:
    """A legal duty to keep records longer, apart from live data, in an archive."""

    period: Duration
    statute: str


@dataclass(frozen=True)
class Children:
    """The category may hold data of children under CHILD_AGE (`categories[].children`)."""

    consent_grace: Duration = DEFAULT_CONSENT_GRACE


@dataclass(frozen=True)
class Category:
    """One category of personal data: its purposes and how long it may be kept."""

    name: str
    purposes: tuple[str, ...]
    retention: Retention
    statutory: Statutory | None
    description: str | None = None
    # Crypto-shredding: one key per "month" or "year" of the trigger time; None: none.
    key_buckets: KeyBuckets | None = None
    children: Children | None = None


@dataclass(frozen=True)
class Policy:
    """An organisation's processing policy."""

    name: str
    generation: int
    effective_date: date | None
    key_rotation: Duration
    access_log_retention: Duration
    categories: tuple[Category, ...]

    def category(self, name: str) -> Category | None:
        """The category called `name`, or None."""
        for category in self.categories:
            if category.name == name:
                return category
        return None


def parse_policy(obj: Mapping[str, Any]) -> Policy:
    """Turn a PrivacyPolicy dict from the API (or a file) into a Policy."""
    metadata = mapping(obj, "metadata", "")
    spec = mapping(obj, "spec", "")
    defaults = mapping(spec, "defaults", "spec", required=False)
    categories = tuple(
        _parse_category(raw, f"spec.categories[{index}]")
        for index, raw in enumerate(sequence(spec, "categories", "spec", required=True))
    )
    names = [category.name for category in categories]
    for name in names:
        if names.count(name) > 1:
            raise ModelError("spec.categories", f"category {name!r} is declared more than once")
    return Policy(
        name=text(metadata, "name", "metadata"),
        generation=int(metadata.get("generation") or 0),
        effective_date=_parse_date(optional_text(spec, "effectiveDate", "spec")),
        key_rotation=_duration_or(defaults, "keyRotation", "spec.defaults", DEFAULT_KEY_ROTATION),
        access_log_retention=_duration_or(
            defaults, "accessLogRetention", "spec.defaults", DEFAULT_ACCESS_LOG_RETENTION
        ),
        categories=categories,
    )


def _parse_category(raw: Any, path: str) -> Category:
    if not isinstance(raw, Mapping):
        raise ModelError(path, "must be an object")
    retention = mapping(raw, "retention", path)
    statutory = mapping(raw, "statutory", path, required=False)
    children = raw.get("children")
    if children is not None and not isinstance(children, Mapping):
        raise ModelError(f"{path}.children", "must be an object")
    return Category(
        name=text(raw, "name", path),
        purposes=tuple(str(p) for p in sequence(raw, "purposes", path)),
        retention=Retention(
            period=parse_duration(
                text(retention, "period", f"{path}.retention"), f"{path}.retention.period"
            ),
            trigger=text(retention, "trigger", f"{path}.retention"),
        ),
        statutory=Statutory(
            period=parse_duration(
                text(statutory, "period", f"{path}.statutory"), f"{path}.statutory.period"
            ),
            statute=text(statutory, "statute", f"{path}.statutory"),
        )
        if statutory
        else None,
        description=optional_text(raw, "description", path),
        key_buckets=_key_buckets(raw, path),
        children=Children(_consent_grace(children, f"{path}.children"))
        if children is not None
        else None,
    )


def _key_buckets(raw: Mapping[str, Any], path: str) -> KeyBuckets | None:
    value = optional_text(raw, "keyBuckets", path)
    if value is not None and value not in KEY_BUCKETS:
        raise ModelError(f"{path}.keyBuckets", f"must be month or year, not {value!r}")
    return value


def _consent_grace(children: Mapping[str, Any], path: str) -> Duration:
    grace = _duration_or(children, "consentGrace", path, DEFAULT_CONSENT_GRACE)
    if grace.unit != "d" or grace.amount > MAX_CONSENT_GRACE_DAYS:
        raise ModelError(
            f"{path}.consentGrace",
            f"{grace} is not whole days from 0d to {MAX_CONSENT_GRACE_DAYS}d: a child's data "
            "without consent may be kept only for the consent process, for example 5d",
        )
    return grace


def _duration_or(obj: Mapping[str, Any], key: str, path: str, default: Duration) -> Duration:
    if obj.get(key) is None:
        return default
    return parse_duration(obj[key], f"{path}.{key}")


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ModelError("spec.effectiveDate", f"{value!r} is not a date (YYYY-MM-DD)") from None
