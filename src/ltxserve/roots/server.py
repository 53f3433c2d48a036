"""The API server's composition root: the app's services from settings, and the worker process it runs
beside itself unless told not to (`LTXSERVE_EMBEDDED_WORKERS=0`)."""

from __future__ import annotations

from fastapi import FastAPI

from ..api.app import create_app
from ..api.services import Services
from ..config import Settings
from ..workers.supervisor import WorkerSupervisor
from .store import open_store


def server_app(settings: Settings) -> FastAPI:
    services = Services.from_settings(settings, open_store(settings, migrate=False))
    if settings.embedded_workers:
        services.embedded = WorkerSupervisor(settings, services.store, services.metrics.generation_seconds.observe)
    return create_app(services)
