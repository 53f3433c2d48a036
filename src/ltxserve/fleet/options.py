"""What a fleet is deployed with, and the settings its replicas get."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import Settings
from . import APP_NAME

# Settings a replica must not have (the admin secret, where an API server listens) or would get wrong (the
# deploying machine's home directory: each node keeps its own data_dir unless one was set).
_NOT_FOR_REPLICAS = {"config", "admin_key", "host", "port", "embedded_workers"}
# Credentials and hub settings the libraries read from the environment rather than from ltxserve's settings.
_PASSED_ENVIRONMENT = ("AWS_", "HF_", "HUGGING_FACE_")


@dataclass(frozen=True)
class FleetOptions:
    name: str = APP_NAME
    min_replicas: int = 0
    max_replicas: int = 4
    gpus_per_replica: float = 1.0
    cpus_per_replica: float = 1.0
    jobs_per_replica: int = 1
    upscale_delay_s: float = 0.0
    downscale_delay_s: float = 300.0
    # How long a replica that is stopped (scale-down, a drain) may take to finish the job in hand; past it
    # Ray kills the replica and the job's lease returns it to the queue.
    grace_period_s: float = 300.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise ValueError("need 0 <= min-replicas <= max-replicas, and max-replicas >= 1")
        if self.jobs_per_replica < 1:
            raise ValueError("jobs-per-replica must be 1 or more")
        if self.gpus_per_replica < 0 or self.cpus_per_replica < 0:
            raise ValueError("GPUs and CPUs per replica cannot be negative")


def replica_settings(settings: Settings) -> dict:
    """The deploying environment's settings (environment and --config) as the replicas must see them. Passed
    to the replicas' constructors, which Ray keeps in its cluster store and does not log."""
    values = settings.model_dump(mode="json", exclude_unset=True, exclude=_NOT_FOR_REPLICAS)
    if settings.database_url is None:
        raise ValueError(
            "A fleet needs a database every node can reach: set LTXSERVE_DATABASE_URL to a PostgreSQL URL "
            "(postgresql+psycopg://...). The default SQLite file lives on one machine."
        )
    if settings.storage_url is None and settings.results_dir is None:
        raise ValueError(
            "A fleet needs storage the API servers can read: set LTXSERVE_STORAGE_URL (s3://bucket) or "
            "LTXSERVE_RESULTS_DIR on a file system every node shares."
        )
    return values


def replica_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name.startswith(_PASSED_ENVIRONMENT)}
