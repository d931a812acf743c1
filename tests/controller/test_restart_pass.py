"""The first pass after a restart (issue 11): cheaper, and still exactly as strict.

A restarted operator reconciles every store from full caches with a new reconciler (its
memos empty), while the old one's memos could still serve a warm pass. Each test acts like a
careless user between passes (`kubectl edit` of a child or a neighbour's child stores the
whole edited object under a new resourceVersion) and expects both a warm reconciler and a
fresh one to see it: drift applied back, a neighbour's change judged, an unreadable input
Unknown, and nothing written when nothing changed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from dataward.controller.reconcile import Reconciler
from dataward.render.names import names_for
from tests.controller.test_cache import ListingKube, _caches, _cluster, _reconciler, _relist
from tests.controller.test_reconcile import KEY, T0, add_store, conditions

NAMESPACE = KEY[0]
OTHERS = ("store-a", "store-b", "store-c")
Edit = Callable[[dict[str, Any]], None]


def _keys() -> list[tuple[str, str]]:
    return [KEY, *((NAMESPACE, name) for name in OTHERS)]


def _converged() -> tuple[ListingKube, Any, Reconciler]:
    """Four stores in one namespace, converged and reconciled once more (memos warm)."""
    kube = _cluster()
    for name in OTHERS:
        add_store(kube, name, NAMESPACE, name)
    caches = _caches(kube)
    _relist(caches)
    warm = _reconciler(kube, caches)
    for key in _keys():
        warm.reconcile(key, now=T0)
    _relist(caches)
    for key in _keys():
        warm.reconcile(key, now=T0 + timedelta(minutes=1))
    return kube, caches, warm


def _edit(kube: ListingKube, caches: Any, kind: str, name: str, edit: Edit) -> None:
    key = (kind, NAMESPACE, name)
    changed = copy.deepcopy(kube.objects[key])
    edit(changed)
    kube._store(changed)
    _relist(caches)  # what the watch delivers


def _pass(kube: ListingKube, reconciler: Reconciler, minutes: int) -> list[Any]:
    """Every store reconciled once; the writes made."""
    kube.calls.clear()
    for key in _keys():
        reconciler.reconcile(key, now=T0 + timedelta(minutes=minutes))
    return kube.writes()


def _cronjob_image(obj: dict[str, Any]) -> None:
    pod = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod["containers"][0]["image"] = "attacker/purge:latest"


def _role_secret(obj: dict[str, Any]) -> None:
    obj["rules"][0]["resourceNames"].append("payroll-credentials")


def _reads(obj: dict[str, Any], secret: str) -> None:
    obj["rules"][0]["resourceNames"].append(secret)


def _binding_subject(obj: dict[str, Any]) -> None:
    obj["subjects"].append({"kind": "ServiceAccount", "name": "intruder", "namespace": "crm"})


def _policy_peer(obj: dict[str, Any]) -> None:
    obj["spec"]["ingress"][0]["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}})


def _label_dropped(obj: dict[str, Any]) -> None:
    del obj["metadata"]["labels"]["app.kubernetes.io/managed-by"]


NAMES = names_for("store-b")
EDITS = [
    ("CronJob", NAMES.purge_cronjob, _cronjob_image),
    ("Role", NAMES.readers, _role_secret),
    ("RoleBinding", NAMES.readers, _binding_subject),
    ("NetworkPolicy", NAMES.network_policy, _policy_peer),
    ("ServiceAccount", NAMES.purge, _label_dropped),
]


def test_nothing_changed_nothing_written_by_a_warm_or_a_restarted_reconciler() -> None:
    kube, caches, warm = _converged()
    assert _pass(kube, warm, 2) == []
    assert _pass(kube, _reconciler(kube, caches), 3) == []
    assert conditions(kube)["Ready"] == ("True", "AllControlsInForce")


@pytest.mark.parametrize(("kind", "name", "edit"), EDITS, ids=[e[0] for e in EDITS])
def test_an_edited_child_is_applied_back_by_a_warm_and_by_a_restarted_reconciler(
    kind: str, name: str, edit: Edit
) -> None:
    kube, caches, warm = _converged()
    rendered = copy.deepcopy(kube.objects[(kind, NAMESPACE, name)])
    for minutes, reconciler in ((2, _reconciler(kube, caches)), (3, warm)):
        _edit(kube, caches, kind, name, edit)
        writes = _pass(kube, reconciler, minutes)
        assert ("apply", kind, name) in writes or ("replace", kind, name) in writes, writes
        live = kube.objects[(kind, NAMESPACE, name)]
        for field in ("spec", "rules", "subjects"):
            assert live.get(field) == rendered.get(field)
        assert live["metadata"]["labels"] == rendered["metadata"]["labels"]
        _relist(caches)
        assert _pass(kube, reconciler, minutes) == []  # and then silent again


def test_a_neighbours_widened_role_is_judged_by_a_warm_and_by_a_restarted_reconciler() -> None:
    # store-b's readers' Role edited to read store-a's key ring: store-a's AccessRestricted
    # must see a foreign reader of its Secret, whichever reconciler judges it first.
    kube, caches, warm = _converged()
    ring = names_for("store-a").key_ring
    for reconciler in (_reconciler(kube, caches), warm):
        _edit(kube, caches, "Role", NAMES.readers, lambda o: _reads(o, ring))
        reconciler.reconcile((NAMESPACE, "store-a"), now=T0 + timedelta(minutes=2))
        status = kube.objects[("PersonalDataStore", NAMESPACE, "store-a")]["status"]
        access = next(c for c in status["conditions"] if c["type"] == "AccessRestricted")
        assert access["status"] == "False", access
        reconciler.reconcile((NAMESPACE, "store-b"), now=T0 + timedelta(minutes=2))  # undone
        _relist(caches)


def test_unreadable_rbac_is_unknown_for_a_restarted_reconciler() -> None:
    kube, caches, warm = _converged()
    caches.informers[("RoleBinding", None)]._fail("HTTP 403 Forbidden")
    for reconciler in (_reconciler(kube, caches), warm):
        reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
        assert conditions(kube)["AccessRestricted"][0] == "Unknown"
        assert conditions(kube)["Ready"][0] == "Unknown"


def test_a_neighbour_edited_after_a_restart_is_seen_by_the_new_namespace_view() -> None:
    # The restarted reconciler builds its namespace view once; a neighbour whose readers change
    # afterwards must be rendered anew (its Role names the new Secret set).
    kube, caches, _ = _converged()
    fresh = _reconciler(kube, caches)
    assert _pass(kube, fresh, 2) == []
    store = copy.deepcopy(kube.objects[("PersonalDataStore", NAMESPACE, "store-c")])
    store["spec"]["access"]["readers"] = []
    store["metadata"]["generation"] = int(store["metadata"].get("generation") or 1) + 1
    kube._store(store)
    _relist(caches)
    writes = _pass(kube, fresh, 3)
    assert ("delete", "RoleBinding", names_for("store-c").readers) in writes, writes
    _relist(caches)
    _pass(kube, fresh, 4)  # the statuses that judged the binding see it gone
    _relist(caches)
    assert _pass(kube, fresh, 5) == []
    assert _pass(kube, _reconciler(kube, caches), 6) == []
    assert conditions(kube)["Ready"] == ("True", "AllControlsInForce")


def _policy_edit(kube: ListingKube, caches: Any, edit: Edit) -> None:
    policy = copy.deepcopy(kube.objects[("PrivacyPolicy", None, "clunix")])
    edit(policy)
    policy["metadata"]["generation"] = int(policy["metadata"]["generation"]) + 1
    kube._store(policy)
    _relist(caches)


def _bad_retention(policy: dict[str, Any]) -> None:
    policy["spec"]["categories"][1]["retention"]["period"] = "a while"


def _shorter_retention(policy: dict[str, Any]) -> None:
    policy["spec"]["categories"][1]["retention"]["period"] = "90d"


def _compliance(kube: ListingKube, name: str) -> tuple[str, str]:
    status = kube.objects[("PersonalDataStore", NAMESPACE, name)]["status"]
    found = next(c for c in status["conditions"] if c["type"] == "PolicyCompliant")
    return found["status"], found["reason"]


def test_an_edited_policy_is_read_anew_by_a_warm_and_by_a_restarted_reconciler() -> None:
    # Every store of a policy reads the one cached object: what is parsed of it must follow
    # each edit, to an invalid spec, back, and to a narrower retention, on every store.
    kube, caches, warm = _converged()
    assert {_compliance(kube, name) for _, name in _keys()} == {("True", "Compliant")}
    for minutes, reconciler in ((2, warm), (3, _reconciler(kube, caches))):
        original = copy.deepcopy(kube.objects[("PrivacyPolicy", None, "clunix")]["spec"])
        _policy_edit(kube, caches, _bad_retention)
        _pass(kube, reconciler, minutes)
        assert {_compliance(kube, name)[1] for _, name in _keys()} == {"PolicyInvalid"}
        _pass(kube, reconciler, minutes)  # a second pass over the same object: still invalid
        assert {_compliance(kube, name)[1] for _, name in _keys()} == {"PolicyInvalid"}
        _policy_edit(kube, caches, lambda p, spec=original: p.update(spec=spec))
        _pass(kube, reconciler, minutes)
        assert {_compliance(kube, name) for _, name in _keys()} == {("True", "Compliant")}
    _policy_edit(kube, caches, _shorter_retention)
    for reconciler in (warm, _reconciler(kube, caches)):
        _pass(kube, reconciler, 4)
        verdicts = {_compliance(kube, name) for _, name in _keys()}
        assert verdicts != {("True", "Compliant")}, verdicts


def test_a_revision_coming_into_force_is_judged_though_the_policy_object_is_the_same() -> None:
    # The cached policy does not change when its pending revision's date comes: the spec in
    # force does. A store reconciled then must be judged by the new revision at once.
    from tests.controller.test_policy_revisions import POLICY, TAKES_EFFECT, revise

    kube, caches, warm = _converged()
    warm.reconcile_policy(POLICY, now=T0 + timedelta(minutes=2))
    revise(kube, announced="2026-01-10", effectiveDate="2026-02-10")  # cuts to 3 months
    _relist(caches)
    warm.reconcile_policy(POLICY, now=T0 + timedelta(minutes=3))
    _relist(caches)
    for reconciler in (warm, _reconciler(kube, caches)):
        reconciler.reconcile(KEY, now=TAKES_EFFECT - timedelta(seconds=1))
        assert conditions(kube)["PolicyCompliant"] == ("True", "Compliant")
        reconciler.reconcile(KEY, now=TAKES_EFFECT)
        assert conditions(kube)["PolicyCompliant"] == ("False", "RetentionTooLong")
        _relist(caches)


def _store_edit(kube: ListingKube, caches: Any, name: str, edit: Edit) -> None:
    store = copy.deepcopy(kube.objects[("PersonalDataStore", NAMESPACE, name)])
    edit(store)
    store["metadata"]["generation"] = int(store["metadata"].get("generation") or 1) + 1
    kube._store(store)
    _relist(caches)


def test_an_edited_store_is_judged_by_its_new_spec_by_a_warm_and_a_restarted_reconciler() -> None:
    # A store's own parse is kept per version: an invalid spec, a valid one again, and a
    # retention the category does not allow must each be judged at the next reconcile.
    kube, caches, warm = _converged()
    for minutes, reconciler in ((2, warm), (3, _reconciler(kube, caches))):
        _store_edit(kube, caches, "store-a", lambda s: s["spec"].update(retention="forever"))
        reconciler.reconcile((NAMESPACE, "store-a"), now=T0 + timedelta(minutes=minutes))
        assert _compliance(kube, "store-a") == ("False", "InvalidSpec")
        _store_edit(kube, caches, "store-a", lambda s: s["spec"].update(retention="2y"))
        reconciler.reconcile((NAMESPACE, "store-a"), now=T0 + timedelta(minutes=minutes))
        assert _compliance(kube, "store-a") == ("False", "RetentionTooLong")
        _store_edit(kube, caches, "store-a", lambda s: s["spec"].update(retention="180d"))
        reconciler.reconcile((NAMESPACE, "store-a"), now=T0 + timedelta(minutes=minutes))
        assert _compliance(kube, "store-a") == ("True", "Compliant")


def test_workers_starting_at_once_on_a_restarted_reconciler_build_the_namespace_view_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A restart starts every worker at once on a fresh reconciler: each reconcile needs the
    # namespace's view (every store parsed and rendered, O(n)). Built by each worker that
    # found none, it cost the first pass four such builds (and four RBAC declarations, one
    # per distinct view). The workers that come second wait for the first one's view.
    import threading

    from dataward.controller import reconcile as reconcile_module

    kube, caches, _ = _converged()
    fresh = _reconciler(kube, caches)
    keys = _keys()
    # Every worker that builds a view waits here for the others (a short while): so, on the
    # old code, all of them are inside a build at once, as on a loaded machine.
    arrived = threading.Barrier(len(keys), timeout=0.5)
    builds: list[int] = []
    original = reconcile_module.NamespaceStores.of.__func__  # type: ignore[attr-defined]

    def counted(cls: Any, stores: Any, previous: Any = None, cached: Any = None) -> Any:
        builds.append(len(stores))
        try:
            arrived.wait()
        except threading.BrokenBarrierError:
            pass  # alone in a build: the others wait for its view
        return original(cls, stores, previous, cached)

    monkeypatch.setattr(reconcile_module.NamespaceStores, "of", classmethod(counted))
    kube.calls.clear()
    errors: list[BaseException] = []

    def work(key: tuple[str, str]) -> None:
        try:
            fresh.reconcile(key, now=T0 + timedelta(minutes=2))
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert builds == [len(keys)], builds
    assert kube.writes() == []
    assert conditions(kube)["Ready"] == ("True", "AllControlsInForce")


def test_a_pass_digests_a_policy_once_per_cached_object_and_a_revised_one_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Deciding a policy's revisions digests its spec and the spec in force (canonical JSON of
    # the whole policy): per store and twice a reconcile, that was a fifth of a restart's first
    # pass with the seed's policy (issue 11). Every store reads the same cached object, so
    # once per object is enough; a revised policy is a new object, digested afresh.
    from dataward.model import revisions
    from tests.controller.test_converge_cost import calls_to
    from tests.controller.test_policy_revisions import POLICY, revise

    kube, caches, warm = _converged()
    warm.reconcile_policy(POLICY, now=T0 + timedelta(minutes=2))  # records the spec in force
    revise(kube, announced="2026-01-10", effectiveDate="2026-02-10")  # pending: both digests
    _relist(caches)
    warm.reconcile_policy(POLICY, now=T0 + timedelta(minutes=3))
    _relist(caches)
    digested = calls_to(monkeypatch, revisions, "digest")
    fresh = _reconciler(kube, caches)
    _pass(kube, fresh, 3)
    policy = kube.objects[("PrivacyPolicy", None, POLICY)]
    assert len(digested) == 2, len(digested)  # the spec and the spec in force, each once
    assert digested[0] == policy["spec"]
    assert all(_compliance(kube, name) == ("True", "Compliant") for _, name in _keys())
    # The revision's date comes: judged by the new spec in force, though no object changed.
    revise(kube, announced="2026-01-10", effectiveDate="2026-01-11")
    _relist(caches)
    digested.clear()
    _pass(kube, fresh, 60 * 24 * 40)
    assert 1 <= len(digested) <= 2  # the revised object's spec (and its in-force spec)
    assert {_compliance(kube, name) for _, name in _keys()} == {("False", "RetentionTooLong")}
