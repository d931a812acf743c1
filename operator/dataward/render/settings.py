"""Operator settings that shape the rendered children."""

from __future__ import annotations

from dataclasses import dataclass

from dataward import __version__

DEFAULT_IMAGE = f"ghcr.io/dataward/dataward:{__version__}"


@dataclass(frozen=True)
class RenderSettings:
    """What the operator's configuration decides about every store's children."""

    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    # The zone `purge.schedule` is read in (API.md: "the operator's time zone setting").
    time_zone: str = "Etc/UTC"
    # A run that could not start within this window is skipped, not started late in a burst.
    starting_deadline_seconds: int = 600
    # A purge is bounded by maxRowsPerRun; this bounds it in time as well.
    active_deadline_seconds: int = 3600
    successful_jobs_history_limit: int = 3
    failed_jobs_history_limit: int = 3
    # The shortest lifetime the API server issues; the kubelet refreshes it at 80%.
    token_expiration_seconds: int = 600
    run_as_user: int = 65532
    cpu_request: str = "50m"
    memory_request: str = "64Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "256Mi"
    ephemeral_storage_limit: str = "64Mi"
