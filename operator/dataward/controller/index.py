"""Indexes of one watch cache, kept in step with it, so a lookup costs its matches, not n.

A namespace with n stores holds n NetworkPolicies, 2n RoleBindings, n purge CronJobs...;
reading "the objects with these labels" or "the policies that may select these pods" by a
scan made each store's reconcile O(n), and a namespace's O(n^2) (issue 11).

Only the kinds read by label keep the label part (`cache.LABEL_INDEXED`); NetworkPolicies
keep the podSelector part. Per namespace: the position of each object (the cache's dict
order, so an indexed answer lists its objects in the order a scan would), the names by label
(key, value), and, for NetworkPolicies, the names by the (key, value) pairs of
`spec.podSelector.matchLabels`. A policy is filed under one of its matchLabels pairs: it
selects only pods carrying all of them, so a pod lacking that pair is never selected by it
and the candidates are exact, not a guess. A policy whose selector has no matchLabels
(empty: every pod; matchExpressions only; anything unreadable) is in `unkeyed`, checked for
every pod. A policy filed under a key the pods' labels as given do not name is a candidate
too (a pod may carry keys its workload selector does not name). The index never decides:
the caller still applies the selector to each candidate.

Not thread-safe by itself: the informer updates and reads it under its lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Obj = dict[str, Any]
Pair = tuple[str, str]


def _labels(obj: Mapping[str, Any]) -> list[Pair]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if not isinstance(labels, Mapping):
        return []
    return [(k, v) for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)]


def selector_pair(obj: Mapping[str, Any]) -> Pair | None:
    """The matchLabels pair a NetworkPolicy is filed under; None: check it for every pod."""
    spec = obj.get("spec")
    selector = spec.get("podSelector") if isinstance(spec, Mapping) else None
    match = selector.get("matchLabels") if isinstance(selector, Mapping) else None
    if not isinstance(match, Mapping) or not match:
        return None
    pairs = [(k, v) for k, v in match.items() if isinstance(k, str) and isinstance(v, str)]
    if len(pairs) != len(match):
        # A value that is no string matches no pod label, but it is garbled input: leave the
        # verdict to the selector code, as a scan did.
        return None
    return min(pairs)


# The names filed under one pair: a name alone, or a set of two or more. Most pairs (a
# store's label, a Job's name) file one or two objects, and an empty set costs 216 bytes.
Names = str | set[str]


class _Space:
    """The index of one namespace."""

    def __init__(self) -> None:
        self.position: dict[str, int] = {}
        self.next = 0
        self.by_label: dict[Pair, Names] = {}
        self.by_selector: dict[Pair, Names] = {}
        # The pairs of `by_selector` by their key: the policies filed under a key the pods'
        # labels do not name may select them all the same (the pods may carry that key).
        self.selector_pairs: dict[str, set[Pair]] = {}
        self.unkeyed: set[str] = set()


class LabelIndex:
    """Names by label pair (with `labels`) and by podSelector pair (with `selectors`) per
    namespace. With neither it holds nothing (its cache answers by a scan)."""

    def __init__(self, selectors: bool = False, labels: bool = True) -> None:
        self.selectors = selectors
        self.labels = labels
        self.spaces: dict[str, _Space] = {}

    def clear(self) -> None:
        """Forget everything (a re-list rebuilds the index from its answer)."""
        self.spaces = {}

    def put(self, namespace: str, name: str, old: Mapping[str, Any] | None, new: Obj) -> None:
        """`new` replaces `old` (None: a new name, which goes last, as in a dict)."""
        if not (self.labels or self.selectors):
            return
        space = self.spaces.setdefault(namespace, _Space())
        if old is not None:
            self._unfile(space, name, old)
        if name not in space.position:
            space.position[name] = space.next
            space.next += 1
        if self.labels:
            for pair in _labels(new):
                _file(space.by_label, pair, name)
        if self.selectors:
            keyed = selector_pair(new)
            if keyed is None:
                space.unkeyed.add(name)
            else:
                _file(space.by_selector, keyed, name)
                space.selector_pairs.setdefault(keyed[0], set()).add(keyed)

    def remove(self, namespace: str, name: str, old: Mapping[str, Any]) -> None:
        """The object `old` of that name is gone."""
        space = self.spaces.get(namespace)
        if space is None:
            return
        self._unfile(space, name, old)
        space.position.pop(name, None)

    def _unfile(self, space: _Space, name: str, old: Mapping[str, Any]) -> None:
        if self.labels:
            for pair in _labels(old):
                _discard(space.by_label, pair, name)
        if self.selectors:
            keyed = selector_pair(old)
            if keyed is None:
                space.unkeyed.discard(name)
            else:
                _discard(space.by_selector, keyed, name)
                if keyed not in space.by_selector:
                    pairs = space.selector_pairs.get(keyed[0])
                    if pairs is not None:
                        pairs.discard(keyed)
                        if not pairs:
                            del space.selector_pairs[keyed[0]]

    def labelled(self, namespace: str, wanted: Mapping[str, str]) -> list[str]:
        """Names that may carry every `wanted` label (a superset: filter them), in order;
        only with `labels`."""
        assert self.labels, "an index without labels: scan the cache instead"
        space = self.spaces.get(namespace)
        if space is None:
            return []
        if not wanted:
            return self._ordered(space, space.position)
        fewest = min((_names(space.by_label, pair) for pair in wanted.items()), key=len)
        return self._ordered(space, fewest)

    def selecting(self, namespace: str, pods: Sequence[Mapping[str, str]]) -> list[str]:
        """Policies that may select a pod with any of these label sets, in order. A pod may
        also carry keys they do not name: the policies filed under such a key are candidates
        too."""
        space = self.spaces.get(namespace)
        if space is None:
            return []
        names = set(space.unkeyed)
        for labels in pods:
            for pair in labels.items():
                names.update(_names(space.by_selector, pair))
        # The keys every label set names (a key one of them lacks: that pod may carry it).
        named = set.intersection(*(set(labels) for labels in pods)) if pods else set()
        for key, pairs in space.selector_pairs.items():
            if key not in named:
                for pair in pairs:
                    names.update(_names(space.by_selector, pair))
        return self._ordered(space, names)

    def _ordered(self, space: _Space, names: Iterable[str]) -> list[str]:
        return sorted(names, key=space.position.__getitem__)


def _names(index: dict[Pair, Names], pair: Pair) -> tuple[str, ...] | set[str]:
    names = index.get(pair)
    if names is None:
        return ()
    return (names,) if isinstance(names, str) else names


def _file(index: dict[Pair, Names], pair: Pair, name: str) -> None:
    names = index.get(pair)
    if names is None:
        index[pair] = name
    elif isinstance(names, str):
        if names != name:
            index[pair] = {names, name}
    else:
        names.add(name)


def _discard(index: dict[Pair, Names], pair: Pair, name: str) -> None:
    names = index.get(pair)
    if names is None:
        return
    if isinstance(names, str):
        if names == name:
            del index[pair]
        return
    names.discard(name)
    if len(names) == 1:
        index[pair] = next(iter(names))
    elif not names:
        del index[pair]
