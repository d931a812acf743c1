"""The purge CronJob: bounded, restricted, suspended when it must not run."""

from __future__ import annotations

from typing import Any

import pytest

from dataward.checks.drift import projected
from dataward.model.store import parse_store
from dataward.render.purge_job import JOB_TEMPLATE_SHAPE, comparable_cronjob, render_purge_cronjob
from dataward.render.settings import RenderSettings
from tests.model import samples

SETTINGS = RenderSettings(image="registry.example/dataward:1", time_zone="Asia/Tokyo")


def cronjob(compliant: bool = True, **changes: Any) -> dict[str, Any]:
    return render_purge_cronjob(
        parse_store(samples.store(**changes)), SETTINGS, compliant=compliant
    )


def pod(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def container(job: dict[str, Any]) -> dict[str, Any]:
    containers = pod(job)["containers"]
    assert len(containers) == 1
    first: dict[str, Any] = containers[0]
    return first


def test_schedule_time_zone_and_concurrency() -> None:
    spec = cronjob()["spec"]
    assert spec["schedule"] == "17 3 * * *"
    assert spec["timeZone"] == "Asia/Tokyo"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == SETTINGS.starting_deadline_seconds
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 3


def test_the_default_time_zone_is_utc() -> None:
    job = render_purge_cronjob(parse_store(samples.STORE), RenderSettings(), compliant=True)
    assert job["spec"]["timeZone"] == "Etc/UTC"


def test_the_job_is_bounded_in_time() -> None:
    job_spec = cronjob()["spec"]["jobTemplate"]["spec"]
    assert job_spec["activeDeadlineSeconds"] == 3600
    assert pod(cronjob())["restartPolicy"] == "Never"


def test_one_scheduled_slot_runs_the_destructive_pod_once() -> None:
    """Red first: on 8919753 the Job's backoffLimit was 1 (RenderSettings.backoff_limit): a
    pod that failed after deleting rows was followed by a second, which applied
    maxRowsPerRun again on its own (up to twice the cap a slot), and only the newest pod's
    record was read. One pod is one run and one record; the next slot is the retry."""
    assert cronjob()["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert "backoff_limit" not in RenderSettings.__dataclass_fields__, "a setting could raise it"


@pytest.mark.parametrize(
    ("compliant", "suspend", "expected"),
    [(True, False, False), (False, False, True), (True, True, True), (False, True, True)],
)
def test_suspended_unless_compliant_and_not_on_hold(
    compliant: bool, suspend: bool, expected: bool
) -> None:
    job = cronjob(compliant, purge={"schedule": "17 3 * * *", "suspend": suspend})
    assert job["spec"]["suspend"] is expected


def test_runs_dataward_purge_for_this_store() -> None:
    c = container(cronjob())
    assert c["command"] == ["dataward"]
    assert c["args"][:3] == ["purge", "--store", "crm/support-inquiries"]
    assert c["args"][3] == "--connection-pin" and len(c["args"]) == 5
    assert {"name": "DATAWARD_STORE", "value": "crm/support-inquiries"} in c["env"]
    assert c["image"] == "registry.example/dataward:1"


def test_the_connection_pin_follows_where_the_job_logs_in_and_nothing_else() -> None:
    """The Job refuses to log in anywhere the store names after it was made: the pin must
    change with every field that says where and with which Secret, and with nothing else
    (a CronJob rewritten on every spec edit would be churn)."""
    base = samples.store()["spec"]["database"]
    pins = {
        field: container(cronjob(database={**base, field: value}))["args"][4]
        for field, value in (("host", "other.crm.svc"), ("port", 6543), ("name", "other"),
                             ("credentialsSecret", "other-login"), ("tls", "verify-full"))
    }  # fmt: skip
    plain = container(cronjob())["args"][4]
    assert len(set(pins.values()) | {plain}) == 6, pins
    archive = {"database": {**base, "host": "archive.crm.svc"}}
    with_archive = container(cronjob(archive=archive))["args"][4]
    other_archive = {"database": {**base, "host": "archive.crm.svc", "credentialsSecret": "x"}}
    assert len({plain, with_archive, container(cronjob(archive=other_archive))["args"][4]}) == 3
    assert container(cronjob(retention="30d"))["args"][4] == plain
    assert container(cronjob(purge={"schedule": "0 4 * * *"}))["args"][4] == plain


def test_pod_security_restricted_fields() -> None:
    job = cronjob()
    pod_security = pod(job)["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == 65532
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(job)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security.get("privileged") is not True
    assert "add" not in security["capabilities"]


def test_only_volume_types_the_restricted_profile_allows() -> None:
    allowed = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "projected", "secret"}
    for volume in pod(cronjob())["volumes"]:
        kinds = set(volume) - {"name"}
        assert kinds <= allowed, volume
    assert "hostNetwork" not in pod(cronjob())


def test_no_automounted_token_only_a_short_lived_projected_one() -> None:
    spec = pod(cronjob())
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == "dataward-support-inquiries-purge"
    token = next(v for v in spec["volumes"] if v["name"] == "api-token")
    sources = token["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["expirationSeconds"] == 600
    mount = next(m for m in container(cronjob())["volumeMounts"] if m["name"] == "api-token")
    assert mount["readOnly"] is True
    assert mount["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"


def test_resources_have_requests_and_limits() -> None:
    resources = container(cronjob())["resources"]
    assert set(resources["requests"]) >= {"cpu", "memory"}
    assert set(resources["limits"]) >= {"cpu", "memory"}


def test_termination_message_is_read_from_the_file() -> None:
    c = container(cronjob())
    assert c["terminationMessagePolicy"] == "File"
    assert c["terminationMessagePath"] == "/dev/termination-log"


def test_pods_carry_the_purge_label_the_network_policy_admits() -> None:
    labels = cronjob()["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert labels["dataward.io/purge"] == "support-inquiries"
    assert labels["app.kubernetes.io/managed-by"] == "dataward"


def test_credentials_come_from_secret_references_never_values() -> None:
    env = container(cronjob(archive=samples.ARCHIVE))["env"]
    by_name = {item["name"]: item for item in env}
    for variable, secret in [
        ("DATAWARD_DB_USERNAME", "crm-postgres-purger"),
        ("DATAWARD_DB_PASSWORD", "crm-postgres-purger"),
        ("DATAWARD_ARCHIVE_USERNAME", "archive-writer"),
        ("DATAWARD_ARCHIVE_PASSWORD", "archive-writer"),
    ]:
        assert "value" not in by_name[variable]
        assert by_name[variable]["valueFrom"]["secretKeyRef"]["name"] == secret
    assert [item for item in env if "value" in item] == [
        {"name": "DATAWARD_STORE", "value": "crm/support-inquiries"}
    ]


def test_no_archive_variables_without_an_archive() -> None:
    names = {item["name"] for item in container(cronjob())["env"]}
    assert not any(name.startswith("DATAWARD_ARCHIVE") for name in names)


# The compared shape of the pod template (drift compares the digest of what it names).

VARIANTS = {
    "sample": lambda: cronjob(),
    "with an archive": lambda: cronjob(archive=samples.ARCHIVE),
    "legal hold": lambda: cronjob(purge={**samples.STORE["spec"]["purge"], "suspend": True}),
    "not compliant": lambda: cronjob(compliant=False),
    "other settings": lambda: render_purge_cronjob(
        parse_store(samples.STORE),
        RenderSettings(image="x/y:2", image_pull_policy="Always", run_as_user=4242),
        compliant=True,
    ),
}


def _absent(shape: Any, value: Any, path: str = "") -> list[str]:
    """Paths `shape` names that `value` lacks (list shapes item by item)."""
    found: list[str] = []
    if isinstance(shape, dict):
        for key, sub in shape.items():
            where = f"{path}.{key}"
            found += [where] if key not in value else _absent(sub, value[key], where)
    elif isinstance(shape, list):
        for i, sub in enumerate(shape):
            where = f"{path}[{i}]"
            found += [where] if i >= len(value) else _absent(sub, value[i], where)
    return found


@pytest.mark.parametrize("render", VARIANTS.values(), ids=VARIANTS.keys())
def test_the_compared_shape_names_every_key_the_render_sets(render: Any) -> None:
    rendered = render()
    template = rendered["spec"]["jobTemplate"]
    assert projected(template, JOB_TEMPLATE_SHAPE) == template
    # What lets a render's digest skip the projection: the same digest either way.
    assert comparable_cronjob(rendered, rendered=True) == comparable_cronjob(rendered)


@pytest.mark.parametrize("render", VARIANTS.values(), ids=VARIANTS.keys())
def test_the_compared_shape_names_nothing_the_render_omits(render: Any) -> None:
    # A key the shape names but the render omits would make a server default there drift.
    assert _absent(JOB_TEMPLATE_SHAPE, render()["spec"]["jobTemplate"]) == []


def test_the_comparable_form_is_a_digest_of_the_template_and_idempotent() -> None:
    rendered = cronjob()
    compact = comparable_cronjob(rendered)
    assert compact["spec"]["jobTemplate"].startswith("sha256:")
    assert {k: v for k, v in compact["spec"].items() if k != "jobTemplate"} == {
        k: v for k, v in rendered["spec"].items() if k != "jobTemplate"
    }
    assert comparable_cronjob(compact) == compact
    other = cronjob(database={**samples.STORE["spec"]["database"], "credentialsSecret": "x"})
    assert comparable_cronjob(other)["spec"]["jobTemplate"] != compact["spec"]["jobTemplate"]
