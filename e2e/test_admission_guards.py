"""Who may widen access to a store's key ring: guarded at admission, like RBAC's `bind`.

A store's readers get `get` on its key ring, through a Role the operator makes. Kubernetes
does not let a user who may edit RoleBindings grant a right she does not hold herself
(RBAC's escalation check); a store must not be a way around that. So, with the chart's
admission policies installed, real non-admin users try it: a developer who may edit stores
and read their credentials, but not their key rings, adds herself (or a ServiceAccount she
controls) to `spec.access.readers`, or points a store at an existing key ring with
`spec.encryption.adoptExistingKeyRing`. She is refused, with a message naming the right she
lacks; with that right (`get` on the ring, or the verb `grant` on the store) she is admitted.

And the status of stores, requests and policies is the operator's record: mallory, who may
patch their `status` subresource (as a controller or a CI robot may), forges a well-formed
record (a counted impact preview, an answered request, a policy without its revision
record) and is refused unless she holds the verb `override` on that status; the chart's
operator identity holds it.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from dataward.render.names import names_for
from e2e.fixtures_api import seed_policy, wait_admission_policies_gone
from e2e.harness import ControlPlane, wait_for
from e2e.tools import tool

pytestmark = pytest.mark.usefixtures("crds_installed")

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "dataward"
# Not the release of test_chart.py, so the two never claim the same objects.
RELEASE, RELEASE_NAMESPACE = "dataward-guards-e2e", "dataward-guards-e2e"
PROTECT, ALLOW_DELETION = "dataward.io/protect-key-rings", "dataward.io/allow-namespace-deletion"
GROUP, VERSION, PLURAL = "dataward.io", "v1alpha1", "personaldatastores"
RBAC_GROUP = "rbac.authorization.k8s.io"
# The API server loads new admission policies, and RBAC changes, moments after they are made.
IN_FORCE_SECONDS = 30

Attempt = Callable[[bool], tuple[int, str]]


def helm(plane: ControlPlane, *args: str, check: bool = True
         ) -> subprocess.CompletedProcess[str]:
    """Run the pinned helm against the control plane; fail, never skip, when it is missing."""
    try:
        binary = tool("helm")
    except RuntimeError as error:
        pytest.fail(f"helm is missing: run `make tools` ({error})")
    result = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=180,
                            env=plane.env(), check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def release(control_plane: ControlPlane, kube: ApiClient) -> Iterator[str]:
    """`helm install` of the chart with its defaults; uninstalled at the end.

    The policies act cluster-wide, and the API server drops them moments after they are
    deleted: the teardown waits until they are out of force, so that the next module (which
    may create a Retain store in a namespace without the protection label) is not refused.
    """
    helm(control_plane, "install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
         "--create-namespace", "--wait=false")
    try:
        yield RELEASE
    finally:
        helm(control_plane, "uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE,
             "--ignore-not-found", check=False)
        wait_admission_policies_gone(kube, IN_FORCE_SECONDS)


@pytest.fixture(scope="module")
def policy_name(kube: ApiClient, release: str) -> Iterator[str]:
    """A PrivacyPolicy (the seed policy under a name of its own)."""
    with seed_policy(kube, "guards-e2e") as name:
        yield name


class Team:
    """A protected namespace where alice may edit stores and read their credentials Secret."""

    def __init__(self, plane: ControlPlane, kube: ApiClient, namespace: str,
                 policy: str) -> None:
        self.kube, self.namespace, self.policy = kube, namespace, policy
        self.alice = plane.api_client(plane.kubeconfig_for_user("alice", ["devs"]))
        self.rbac = client.RbacAuthorizationV1Api(kube)

    def store(self, name: str | None = None, **changes: Any) -> dict[str, Any]:
        """The support-inquiries example store, named `name` (or uniquely), with `changes`."""
        body: dict[str, Any] = yaml.safe_load(
            (REPO / "examples" / "stores" / "support-inquiries.yaml").read_text())
        body["metadata"] = {"name": name or f"store-{uuid.uuid4().hex[:6]}"}
        body["spec"]["policy"] = self.policy
        body["spec"]["database"]["credentialsSecret"] = "readable-credentials"
        body["spec"].update(changes)
        return body

    def create_as_admin(self, body: dict[str, Any]) -> str:
        """Create a store as the administrator (who passes every policy); its name."""
        client.CustomObjectsApi(self.kube).create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body)
        return str(body["metadata"]["name"])

    def allow(self, who: str, rules: list[dict[str, Any]]) -> None:
        """Grant alice `rules` in the namespace (a Role and a RoleBinding called `who`)."""
        self.rbac.create_namespaced_role(self.namespace, {
            "metadata": {"name": who}, "rules": rules})
        self.rbac.create_namespaced_role_binding(self.namespace, {
            "metadata": {"name": who},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": who},
            "subjects": [{"kind": "User", "name": "alice", "apiGroup": RBAC_GROUP}]})

    def allow_ring(self, store: str) -> str:
        """Let alice get the store's key ring Secret; the ring's name."""
        ring = names_for(store).key_ring
        self.allow(f"ring-reader-{uuid.uuid4().hex[:6]}", [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [ring],
             "verbs": ["get"]}])
        return ring

    def allow_grant(self, store: str) -> None:
        """Give alice the verb `grant` on the store."""
        self.allow(f"granter-{uuid.uuid4().hex[:6]}", [
            {"apiGroups": [GROUP], "resources": [PLURAL], "resourceNames": [store],
             "verbs": ["grant"]}])

    def create(self, body: dict[str, Any]) -> Attempt:
        """Alice's attempt to create `body` (a dry run when asked)."""
        def attempt(dry_run: bool) -> tuple[int, str]:
            return _answer(lambda: client.CustomObjectsApi(self.alice)
                           .create_namespaced_custom_object(
                               GROUP, VERSION, self.namespace, PLURAL, copy.deepcopy(body),
                               dry_run="All" if dry_run else None))
        return attempt

    def patch(self, store: str, spec: dict[str, Any]) -> Attempt:
        """Alice's attempt to merge-patch the store's spec (a dry run when asked)."""
        def attempt(dry_run: bool) -> tuple[int, str]:
            return _answer(lambda: client.CustomObjectsApi(self.alice)
                           .patch_namespaced_custom_object(
                               GROUP, VERSION, self.namespace, PLURAL, store, {"spec": spec},
                               dry_run="All" if dry_run else None))
        return attempt

    def readers(self, store: str) -> list[dict[str, str]]:
        """The store's readers, as stored."""
        obj: dict[str, Any] = client.CustomObjectsApi(self.kube).get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, store)
        return list(obj["spec"].get("access", {}).get("readers", []))


def _answer(call: Callable[[], object]) -> tuple[int, str]:
    """(HTTP status, the API server's message) of a request."""
    try:
        call()
    except ApiException as error:
        return int(error.status), str(json.loads(error.body or "{}").get("message"))
    return 200, ""


def refused(attempt: Attempt, *, expect: str) -> str:
    """The attempt is refused, for real, with a message containing `expect`; that message.

    Dry runs first, until the freshly installed policies are in force: a dry run that is
    admitted changes nothing.
    """
    deadline = time.monotonic() + IN_FORCE_SECONDS
    while (status := attempt(True)[0]) == 200:
        if time.monotonic() > deadline:
            raise AssertionError(f"admitted for {IN_FORCE_SECONDS} s; it must be refused")
        time.sleep(0.5)
    status, message = attempt(False)
    assert status == 403, (status, message)
    assert expect in message, message
    return message


def admitted(attempt: Attempt) -> None:
    """The attempt is admitted, once the RBAC just granted is in force."""
    wait_for(lambda: attempt(True)[0] == 200, timeout=IN_FORCE_SECONDS, interval=0.5,
             message="admitted once the new RBAC is in force")
    status, message = attempt(False)
    assert status == 200, (status, message)


@pytest.fixture
def team(control_plane: ControlPlane, kube: ApiClient, policy_name: str) -> Iterator[Team]:
    """A protected namespace with alice's rights and two Secrets: credentials and a ring."""
    namespace = f"guards-e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(
        metadata=client.V1ObjectMeta(name=namespace, labels={PROTECT: "true"})))
    core.create_namespaced_secret(namespace, {
        "metadata": {"name": "readable-credentials"},
        "stringData": {"username": "u", "password": "p"}})
    found = Team(control_plane, kube, namespace, policy_name)
    # alice edits stores and reads their credentials; nothing about key rings.
    found.allow("store-editor", [
        {"apiGroups": [GROUP], "resources": [PLURAL],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["readable-credentials"],
         "verbs": ["get"]}])
    try:
        yield found
    finally:
        found.alice.close()
        core.patch_namespace(namespace, {"metadata": {"annotations": {ALLOW_DELETION: "true"}}})
        core.delete_namespace(namespace)


ALICE = {"kind": "User", "name": "alice"}
ALICE_BOT = {"kind": "ServiceAccount", "name": "alice-bot"}
ADOPT = {"keyRotation": "30d", "adoptExistingKeyRing": True}


# -- readers ----------------------------------------------------------------------------------


def test_a_developer_who_cannot_read_the_key_ring_cannot_make_herself_a_reader(
        team: Team) -> None:
    store = team.create_as_admin(team.store())
    before = team.readers(store)
    message = refused(team.patch(store, {"access": {"readers": [*before, ALICE]}}),
                      expect=f"get on Secret dataward-{store}-keyring")
    assert "you (alice)" in message and "User:alice" in message, message
    assert "grant" in message and f"namespace {team.namespace}" in message, message
    # Nor a ServiceAccount she controls, nor by replacing the whole list.
    refused(team.patch(store, {"access": {"readers": [ALICE_BOT]}}),
            expect=f"ServiceAccount:{team.namespace}/alice-bot")
    assert team.readers(store) == before


def test_she_may_add_readers_when_she_may_read_the_key_ring_herself(team: Team) -> None:
    store = team.create_as_admin(team.store())
    readers = [*team.readers(store), ALICE, ALICE_BOT]
    refused(team.patch(store, {"access": {"readers": readers}}), expect="get on Secret")
    team.allow_ring(store)
    admitted(team.patch(store, {"access": {"readers": readers}}))
    assert team.readers(store) == readers


def test_she_may_add_readers_with_the_grant_verb_on_the_store(team: Team) -> None:
    store = team.create_as_admin(team.store())
    readers = [*team.readers(store), ALICE]
    refused(team.patch(store, {"access": {"readers": readers}}), expect="get on Secret")
    team.allow_grant(store)
    admitted(team.patch(store, {"access": {"readers": readers}}))
    assert team.readers(store) == readers
    # The verb is per store: another store's readers stay guarded.
    other = team.create_as_admin(team.store())
    refused(team.patch(other, {"access": {"readers": [ALICE]}}), expect="get on Secret")


def test_removing_or_reordering_readers_is_always_allowed(team: Team) -> None:
    store = team.create_as_admin(team.store())
    before = team.readers(store)
    assert len(before) == 2
    refused(team.patch(store, {"access": {"readers": [*before, ALICE]}}), expect="get on Secret")
    admitted(team.patch(store, {"access": {"readers": list(reversed(before))}}))
    # A ServiceAccount's namespace written out is the same subject as the default one.
    account = {**before[0], "namespace": team.namespace}
    admitted(team.patch(store, {"access": {"readers": [account]}}))
    admitted(team.patch(store, {"access": {"readers": []}}))
    assert team.readers(store) == []


def test_a_new_store_names_readers_only_for_an_author_who_may_read_its_ring(
    team: Team,
) -> None:
    # A Retain store deleted: its key ring stays, under the store's name. Alice makes the
    # store again, naming herself and her bot as readers: the operator would bind them to
    # the old ring, which she could never read.
    name = f"store-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(team.kube).create_namespaced_secret(team.namespace, {
        "metadata": {"name": names_for(name).key_ring}, "stringData": {"keyring.json": "{}"}})
    body = team.store(name, access={"readers": [ALICE, ALICE_BOT]})
    message = refused(team.create(body), expect=f"get on Secret {names_for(name).key_ring}")
    assert "User:alice" in message and "ServiceAccount:" in message, message
    # Without readers the store is hers to make; with the right to read the ring, readers too.
    admitted(team.create(team.store(f"{name}-bare", access={"readers": []})))
    team.allow_ring(name)
    admitted(team.create(body))


def test_a_store_with_a_long_name_needs_the_grant_verb(team: Team) -> None:
    """The ring's name is hashed past 63 characters; CEL cannot compute it, so `grant` it is."""
    name = f"long-{uuid.uuid4().hex[:6]}-" + "x" * 40
    ring = names_for(name).key_ring
    assert ring != f"dataward-{name}-keyring" and len(ring) <= 63
    store = team.create_as_admin(team.store(name))
    team.allow_ring(store)  # even with get on the hashed ring: admission cannot tell
    message = refused(team.patch(store, {"access": {"readers": [ALICE]}}),
                      expect="verb grant on personaldatastores.dataward.io")
    assert name in message, message
    team.allow_grant(store)
    admitted(team.patch(store, {"access": {"readers": [ALICE]}}))


def test_a_short_name_that_spells_another_stores_hashed_ring_needs_get_on_that_ring(
    team: Team,
) -> None:
    """A store name past 46 characters gets a key ring named with a cut and a hash, and a
    short name can spell that ring's name. The verb `grant` on the short store is no right
    to the long store's ring, which the short store's readers (or its adoption) would get."""
    long = f"long-{uuid.uuid4().hex[:6]}-" + "x" * 40
    team.create_as_admin(team.store(long))
    ring = names_for(long).key_ring
    short = ring[len("dataward-"):-len("-keyring")]
    assert names_for(short).key_ring == ring and ring != f"dataward-{long}-keyring"
    team.allow_grant(short)  # as for any store of hers: grant on the store she makes
    message = refused(team.create(team.store(short, access={"readers": [ALICE]})),
                      expect=f"get on Secret {ring}")
    assert "another store" in message and "User:alice" in message, message
    refused(team.create(team.store(short, encryption=ADOPT, access={"readers": []})),
            expect=f"get on Secret {ring}")
    # Without readers the store is hers to make; with the right to read the ring, readers too.
    admitted(team.create(team.store(f"{short[:-9]}-bare", access={"readers": []})))
    team.allow_ring(short)
    admitted(team.create(team.store(short, access={"readers": [ALICE]})))


# -- adopting an existing key ring --------------------------------------------------------------


def test_adopting_an_existing_key_ring_needs_the_right_to_read_it(team: Team) -> None:
    name = f"store-{uuid.uuid4().hex[:6]}"
    adopting = team.store(name, encryption=ADOPT, access={"readers": []})
    message = refused(team.create(adopting), expect=f"get on Secret dataward-{name}-keyring")
    assert "adoptExistingKeyRing" in message, message
    # Without adoption (and readers) the same store is admitted: it gets a ring of its own.
    admitted(team.create(team.store(f"{name}-new", access={"readers": []})))

    # Switched on later, by an update: the same guard.
    store = team.create_as_admin(team.store())
    refused(team.patch(store, {"encryption": ADOPT}), expect="adoptExistingKeyRing")

    team.allow_ring(name)
    admitted(team.create(adopting))
    team.allow_ring(store)
    admitted(team.patch(store, {"encryption": ADOPT}))
    # Once set, other changes to the store are not re-judged as a new adoption.
    other = f"store-{uuid.uuid4().hex[:6]}"
    team.create_as_admin(team.store(other, encryption=ADOPT))
    admitted(team.patch(other, {"retention": "90d"}))


def test_kubectl_explain_says_what_adoption_does_and_who_may(control_plane: ControlPlane) -> None:
    field = "pds.spec.encryption.adoptExistingKeyRing"

    def explain() -> str:
        result = control_plane.kubectl("explain", field, check=False)
        return " ".join(result.stdout.split()) if result.returncode == 0 else ""

    text = wait_for(explain, timeout=IN_FORCE_SECONDS, interval=0.5,
                    message=f"kubectl explain {field}")
    assert "<boolean>" in text
    assert "Use the Secret dataward-<store>-keyring that already exists" in text
    assert "Admitted only for a requester who may get that Secret." in text


# -- status is the operator's record ----------------------------------------------------------

DSRS, POLICIES = "datasubjectrequests", "privacypolicies"
STATUS_OF = [f"{PLURAL}/status", f"{DSRS}/status", f"{POLICIES}/status"]
MALLORY = "mallory"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status_patch(api: ApiClient, plural: str, namespace: str | None, name: str,
                  status: dict[str, Any]) -> Attempt:
    """An attempt to merge-patch the status subresource of an object (a dry run when asked)."""
    custom = client.CustomObjectsApi(api)

    def attempt(dry_run: bool) -> tuple[int, str]:
        body, dry = {"status": copy.deepcopy(status)}, "All" if dry_run else None
        if namespace is None:
            return _answer(lambda: custom.patch_cluster_custom_object_status(
                GROUP, VERSION, plural, name, body, dry_run=dry))
        return _answer(lambda: custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, body, dry_run=dry))
    return attempt


def _status(kube: ApiClient, plural: str, namespace: str | None, name: str) -> dict[str, Any]:
    """An object's status, as stored ({} when it has none)."""
    custom = client.CustomObjectsApi(kube)
    obj: dict[str, Any] = (
        custom.get_cluster_custom_object(GROUP, VERSION, plural, name) if namespace is None
        else custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name))
    return dict(obj.get("status") or {})


def _may(api: ApiClient, verb: str, plural: str, namespace: str | None = None,
         name: str | None = None) -> bool:
    """Whether the user of `api` may `verb` the status of `plural` (her own access review)."""
    review = client.AuthorizationV1Api(api).create_self_subject_access_review({
        "spec": {"resourceAttributes": {
            "group": GROUP, "resource": plural, "subresource": "status", "verb": verb,
            "namespace": namespace or "", "name": name or ""}}})
    return bool(review.status.allowed)


@pytest.fixture(scope="module")
def mallory(control_plane: ControlPlane, kube: ApiClient, release: str) -> Iterator[ApiClient]:
    """User mallory: `get` and `patch` on the status of stores, requests and policies in every
    namespace (a ClusterRole bound to her), and nothing else; her client."""
    rbac = client.RbacAuthorizationV1Api(kube)
    role = f"status-writer-{uuid.uuid4().hex[:6]}"
    rbac.create_cluster_role({"metadata": {"name": role}, "rules": [
        {"apiGroups": [GROUP], "resources": STATUS_OF, "verbs": ["get", "patch"]}]})
    rbac.create_cluster_role_binding({
        "metadata": {"name": role},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "User", "name": MALLORY, "apiGroup": RBAC_GROUP}]})
    api = control_plane.api_client(control_plane.kubeconfig_for_user(MALLORY))
    try:
        wait_for(lambda: all(_may(api, "patch", p) for p in (PLURAL, DSRS, POLICIES)),
                 timeout=IN_FORCE_SECONDS, interval=0.5, message="mallory's RBAC in force")
        yield api
    finally:
        api.close()
        rbac.delete_cluster_role_binding(role)
        rbac.delete_cluster_role(role)


@pytest.fixture(scope="module")
def operator_identity(control_plane: ControlPlane, kube: ApiClient,
                      release: str) -> Iterator[ApiClient]:
    """A client as the ServiceAccount the chart installed for its operator (its RBAC)."""
    accounts = client.CoreV1Api(kube).list_namespaced_service_account(
        RELEASE_NAMESPACE, label_selector=f"app.kubernetes.io/instance={release}").items
    assert len(accounts) == 1, [a.metadata.name for a in accounts]
    api = control_plane.api_client(control_plane.kubeconfig_for_service_account(
        RELEASE_NAMESPACE, accounts[0].metadata.name))
    try:
        yield api
    finally:
        api.close()


def _subject_request(kube: ApiClient, team: Team) -> str:
    """A DataSubjectRequest (an erasure of every store of the policy), made by the admin."""
    name = f"erasure-{uuid.uuid4().hex[:6]}"
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DataSubjectRequest",
            "metadata": {"name": name},
            "spec": {"type": "erasure", "policy": team.policy,
                     "subject": {"identifierSecretRef": {"name": "subject-identifier"}},
                     "requestedBy": "privacy office, case 2026-0042", "receivedAt": _now()}}
    custom = client.CustomObjectsApi(kube)

    def created() -> bool:  # the request's CRD is installed with the others, maybe not ready
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, team.namespace, DSRS, body)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    wait_for(created, timeout=IN_FORCE_SECONDS, interval=0.5, message="the request's CRD")
    return name


def _counted_preview(generation: int) -> dict[str, Any]:
    """An impact preview as the operator records a counted dry run: no large cut."""
    return {"impactPreview": {
        "policyGeneration": generation, "jobName": "dataward-orders-preview-2",
        "state": "Counted", "reason": "Counted", "serverTime": _now(),
        "rowsDeleted": 3, "rowsArchived": 0, "archiveRowsDestroyed": 0, "rowsNoConsent": 0,
        "largeCut": False, "tables": [{"table": "inquiries", "rowsDeleted": 3,
                                       "largeCut": False}]}}


def _answered(namespace: str, store: str) -> dict[str, Any]:
    """A request's status as the operator writes it when every store has erased the person."""
    return {"phase": "Succeeded", "completionTime": _now(), "stores": [{
        "namespace": namespace, "name": store, "phase": "Succeeded",
        "jobName": f"dataward-{store}-dsr-1", "reason": "Erased",
        "tables": [{"table": "inquiries", "rowsFound": 2, "rowsDeleted": 2}]}]}


def _revisions(kube: ApiClient, policy: str) -> dict[str, Any]:
    """The policy's revision record as the operator keeps it (its spec in force, since when)."""
    custom = client.CustomObjectsApi(kube)
    obj = custom.get_cluster_custom_object(GROUP, VERSION, POLICIES, policy)
    return {"inForce": {"generation": obj["metadata"]["generation"],
                        "effectiveDate": obj["spec"].get("effectiveDate", "2026-01-01"),
                        "since": _now(), "spec": obj["spec"]}}


def _ask(team: Team, name: str, type_: str, store: str, *, dry_run: bool = False) -> Attempt:
    """Alice's attempt to create a request of `type_` named `name`, of `store` alone."""
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DataSubjectRequest",
            "metadata": {"name": name},
            "spec": {"type": type_, "policy": team.policy, "scope": {"stores": [{"name": store}]},
                     "subject": {"identifierSecretRef": {"name": "subject-identifier"}},
                     "requestedBy": "privacy office, case 2026-0042", "receivedAt": _now(),
                     **({"dryRun": True} if dry_run else {})}}

    def attempt(dry_run: bool) -> tuple[int, str]:
        return _answer(lambda: client.CustomObjectsApi(team.alice)
                       .create_namespaced_custom_object(
                           GROUP, VERSION, team.namespace, DSRS, copy.deepcopy(body),
                           dry_run="All" if dry_run else None))
    return attempt


def test_an_access_request_exports_only_for_an_author_who_may_grant_it(team: Team) -> None:
    """An access request seals the person's rows into Secrets of the request's namespace, which
    its author chooses: whoever may read Secrets there (she, in a namespace of her own) reads
    them, readers named or not. So the verb `answer` and the identifier make an erasure or a
    dry run; an export needs the verb `grant` on the request, as naming its readers does."""
    _subject_request(team.kube, team)  # the request's CRD in service
    store = team.create_as_admin(team.store())
    team.allow(f"answerer-{uuid.uuid4().hex[:6]}", [
        {"apiGroups": [GROUP], "resources": [DSRS], "verbs": ["create", "get"]},
        {"apiGroups": [GROUP], "resources": [PLURAL], "resourceNames": [store],
         "verbs": ["answer"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["subject-identifier"],
         "verbs": ["get"]}])
    tag = uuid.uuid4().hex[:6]
    admitted(_ask(team, f"erasure-{tag}", "erasure", store))
    admitted(_ask(team, f"count-{tag}", "access", store, dry_run=True))
    name = f"access-{tag}"
    message = refused(_ask(team, name, "access", store), expect="verb grant")
    assert "you (alice)" in message and "export" in message and name in message, message
    team.allow(f"granter-{tag}", [{"apiGroups": [GROUP], "resources": [DSRS],
                                   "resourceNames": [name], "verbs": ["grant"]}])
    admitted(_ask(team, name, "access", store))


def test_a_forged_impact_preview_on_a_store_is_refused(team: Team, mallory: ApiClient) -> None:
    """A counted preview with no large cut would release a pending revision at its date."""
    store = team.create_as_admin(team.store())
    message = refused(_status_patch(mallory, PLURAL, team.namespace, store, _counted_preview(2)),
                      expect="override")
    assert f"You ({MALLORY}) may patch it" in message and f"{PLURAL}/status" in message, message
    assert "impactPreview" not in _status(team.kube, PLURAL, team.namespace, store)


def test_a_forged_answer_to_a_subject_request_is_refused(team: Team, mallory: ApiClient) -> None:
    store = team.create_as_admin(team.store())
    request = _subject_request(team.kube, team)
    message = refused(_status_patch(mallory, DSRS, team.namespace, request,
                                    _answered(team.namespace, store)), expect="override")
    assert f"{DSRS}/status" in message, message
    assert _status(team.kube, DSRS, team.namespace, request).get("phase") != "Succeeded"


def test_removing_a_policys_revision_record_is_refused(kube: ApiClient, policy_name: str,
                                                      mallory: ApiClient) -> None:
    """Without status.revisions the current spec would take effect at once, ungated."""
    record = _revisions(kube, policy_name)
    # The cluster administrator keeps break-glass: her write of the record is admitted.
    admitted(_status_patch(kube, POLICIES, None, policy_name, {"revisions": record}))
    message = refused(_status_patch(mallory, POLICIES, None, policy_name, {"revisions": None}),
                      expect="override")
    assert f"{POLICIES}/status" in message and policy_name in message, message
    assert _status(kube, POLICIES, None, policy_name)["revisions"]["inForce"]["generation"] \
        == record["inForce"]["generation"]


def test_the_override_verb_on_one_store_admits_her_status_write_there_only(
        team: Team, mallory: ApiClient) -> None:
    """A Role in the store's namespace (as a RoleBinding grants the operator its rights with
    `watchNamespaces`) is enough; it names one store, and the next store stays guarded."""
    store, other = team.create_as_admin(team.store()), team.create_as_admin(team.store())
    forged = _counted_preview(2)
    refused(_status_patch(mallory, PLURAL, team.namespace, store, forged), expect="override")
    team.rbac.create_namespaced_role(team.namespace, {
        "metadata": {"name": "status-override"}, "rules": [
            {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "resourceNames": [store],
             "verbs": ["override"]}]})
    team.rbac.create_namespaced_role_binding(team.namespace, {
        "metadata": {"name": "status-override"},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "status-override"},
        "subjects": [{"kind": "User", "name": MALLORY, "apiGroup": RBAC_GROUP}]})
    admitted(_status_patch(mallory, PLURAL, team.namespace, store, forged))
    assert _status(team.kube, PLURAL, team.namespace, store)["impactPreview"]["state"] == "Counted"
    refused(_status_patch(mallory, PLURAL, team.namespace, other, forged), expect="override")


def test_the_operators_own_status_writes_are_admitted(
        team: Team, policy_name: str, operator_identity: ApiClient, mallory: ApiClient) -> None:
    """The chart's operator identity writes all three statuses while the guard refuses
    mallory (e2e/test_chart.py runs the operator itself under it, to Ready)."""
    store = team.create_as_admin(team.store())
    request = _subject_request(team.kube, team)
    writes = [
        (PLURAL, team.namespace, store, _counted_preview(2)),
        (DSRS, team.namespace, request, _answered(team.namespace, store)),
        (POLICIES, None, policy_name, {"revisions": _revisions(team.kube, policy_name)}),
    ]
    # Proof that the guard is in force for these very objects.
    for plural, namespace, name, status in writes:
        refused(_status_patch(mallory, plural, namespace, name, status), expect="override")
    for plural, namespace, name, status in writes:
        admitted(_status_patch(operator_identity, plural, namespace, name, status))
        written = _status(team.kube, plural, namespace, name)
        assert all(written.get(key) == value for key, value in status.items()
                   if key not in ("revisions",)), (plural, written)
    assert _status(team.kube, POLICIES, None, policy_name)["revisions"]["inForce"]["spec"]
