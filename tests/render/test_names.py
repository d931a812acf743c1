"""Child names: deterministic, within the API's limits, unique per store."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from dataward.model.k8s_names import is_label_value
from dataward.render.names import (
    MAX_CRONJOB_NAME_LENGTH,
    MAX_NAME_LENGTH,
    child_name,
    label_value,
    names_for,
    unshortened,
)

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

store_names = st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,250}[a-z0-9])?", fullmatch=True).filter(
    lambda name: ".." not in name and ".-" not in name and "-." not in name
)
suffixes = st.sampled_from(["keyring", "isolation", "readers", "purge"])
limits = st.sampled_from([MAX_NAME_LENGTH, MAX_CRONJOB_NAME_LENGTH])


def test_short_names_are_kept_as_written() -> None:
    assert child_name("support-inquiries", "keyring") == "dataward-support-inquiries-keyring"


def test_a_name_of_exactly_the_limit_is_not_shortened() -> None:
    store = "s" * (MAX_NAME_LENGTH - len("dataward--purge"))
    assert child_name(store, "purge") == f"dataward-{store}-purge"
    assert len(child_name(store, "purge")) == MAX_NAME_LENGTH


def test_one_character_over_the_limit_is_shortened_with_a_hash() -> None:
    store = "s" * (MAX_NAME_LENGTH - len("dataward--purge") + 1)
    name = child_name(store, "purge")
    assert len(name) == MAX_NAME_LENGTH
    assert re.fullmatch(r"dataward-s+-[0-9a-f]{8}-purge", name)


def test_cronjob_names_fit_the_52_character_limit() -> None:
    names = names_for("a" * 60)
    assert len(names.purge_cronjob) <= MAX_CRONJOB_NAME_LENGTH
    assert len(names.purge) <= MAX_NAME_LENGTH
    assert names.purge != names.purge_cronjob


def test_a_cut_never_leaves_a_dash_or_dot_before_the_hash() -> None:
    store = "a" * 37 + "-.b" + "c" * 40
    name = child_name(store, "keyring")
    assert DNS_SUBDOMAIN.match(name), name
    assert "-." not in name and ".-" not in name and "--" not in name


@given(store_names, suffixes, limits)
def test_names_are_valid_within_the_limit_and_end_with_the_suffix(
    store: str, suffix: str, limit: int
) -> None:
    name = child_name(store, suffix, limit)
    assert len(name) <= limit
    assert name.startswith("dataward-")
    assert name.endswith(f"-{suffix}")
    assert DNS_SUBDOMAIN.match(name), name


@given(store_names, suffixes)
def test_names_are_deterministic(store: str, suffix: str) -> None:
    assert child_name(store, suffix) == child_name(store, suffix)


@given(st.lists(store_names, min_size=2, max_size=2, unique=True), suffixes, limits)
def test_different_stores_get_different_names(stores: list[str], suffix: str, limit: int) -> None:
    first, second = stores
    assert child_name(first, suffix, limit) != child_name(second, suffix, limit)


@given(st.from_regex(r"[a-z0-9]{54}", fullmatch=True), st.text("abc", min_size=20, max_size=30))
def test_stores_sharing_a_long_prefix_get_different_names(prefix: str, tail: str) -> None:
    assert child_name(prefix + tail, "purge") != child_name(prefix + tail + "x", "purge")


@given(store_names)
def test_every_child_of_a_store_has_its_own_name_except_purge_identity(store: str) -> None:
    names = names_for(store)
    distinct = {names.key_ring, names.network_policy, names.readers, names.purge}
    assert len(distinct) == 4


@given(store_names)
def test_label_values_are_valid_and_at_most_63(store: str) -> None:
    value = label_value(store)
    assert is_label_value(value)
    assert len(value) <= 63
    if len(store) <= 63:
        assert value == store  # a store name short enough is already a valid label value


long_store_names = st.from_regex(r"[a-z0-9][-a-z0-9]{62,120}[a-z0-9]", fullmatch=True)


@given(st.lists(long_store_names, min_size=2, max_size=2, unique=True))
def test_long_label_values_stay_distinct(stores: list[str]) -> None:
    assert label_value(stores[0]) != label_value(stores[1])


def test_label_value_repairs_characters_a_label_may_not_hold() -> None:
    value = label_value("bad value/with:chars")
    assert is_label_value(value)
    assert value != label_value("bad value/with:charz")


def test_dns_label_children_for_short_stores() -> None:
    assert DNS_LABEL.match(names_for("crm").network_policy)


def test_unshortened_names_are_the_store_name_between_prefix_and_suffix() -> None:
    """A namespace's view is updated per store only while no store's names are cut and hashed:
    a hashed child name can equal another store's plain one."""
    assert unshortened("crm")
    assert unshortened("a-b.c")
    assert not unshortened("x" * 40)  # its CronJob's name is cut and hashed
    assert not unshortened("y" * 70)  # so is its label value
    assert not unshortened("Bad Name")  # not a label value: repaired and hashed
    long = "s4-" + "x" * 47
    hashed = names_for(long).network_policy
    assert not unshortened(long)
    # The name of a store that would render that NetworkPolicy's name as its own is plain.
    planted = hashed.removeprefix("dataward-").removesuffix("-isolation")
    assert names_for(planted).network_policy == hashed


def test_a_remembered_label_value_is_the_one_of_the_very_text_asked_about() -> None:
    # label_value remembers the last 1,024 texts (issue 11): each text still gets its own
    # value, one differing in a character or its case from a remembered one included, and
    # what is remembered is bounded.
    long = "a" * 70
    first = label_value(long)
    assert label_value(long) == first and len(first) <= 63
    for other in ("a" * 69 + "b", "A" * 70, "a" * 71):
        assert label_value(other) != first and is_label_value(label_value(other))
    assert label_value("crm-customers") == "crm-customers"
    assert label_value("crm customers") != label_value("crm-customers")
    assert label_value.cache_info().maxsize == 1024
