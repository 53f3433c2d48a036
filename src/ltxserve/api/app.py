"""The ASGI app: routes, error handlers, request context, housekeeping, and the lifetime of what it is given
to run beside it (the embedded worker). It is built by its composition root, roots/server.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import anyio
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..db import utcnow
from .errors import document_errors, install_error_handlers
from .guards import GuardSettings, RequestGuards
from .middleware import RequestContextMiddleware
from .routes import account, admin, generate, health, playground, requests
from .services import Services

log = logging.getLogger(__name__)


async def _every(name: str, seconds: float, duty: Callable[[], object], threads: anyio.CapacityLimiter) -> None:
    """Run a housekeeping duty forever; every server process runs them, and each is safe run at once by all.
    They run on threads of their own, never on those that answer requests."""
    while True:
        try:
            await anyio.to_thread.run_sync(duty, limiter=threads)
        except Exception:
            log.exception("housekeeping failed", extra={"duty": name})
        await asyncio.sleep(seconds)


def _expire_results(services: Services) -> None:
    """Delete results past their retention time: from storage first, then the record."""
    cutoff = utcnow() - timedelta(seconds=services.settings.result_ttl_s)
    for job_id, key in services.store.records.expirable(cutoff):
        services.storage.delete(key)
        services.store.records.mark_expired(job_id)
        log.info("result expired", extra={"request_id": job_id})


def _sweep_records(services: Services) -> None:
    """Delete the records of requests that ended more than LTXSERVE_RECORD_TTL_S ago (their clips first)."""
    cutoff = utcnow() - timedelta(seconds=services.settings.record_ttl_s)
    while batch := services.store.records.sweepable(cutoff):
        for _, result_key in batch:
            if result_key is not None:
                services.storage.delete(result_key)
        services.store.records.sweep([job_id for job_id, _ in batch], workers_seen_before=cutoff)
        log.info("records swept", extra={"count": len(batch)})


def create_app(services: Services) -> FastAPI:
    settings = services.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(services.db.migrate)
        if services.embedded is not None:
            services.embedded.start()
        services.start()
        threads = anyio.CapacityLimiter(3)
        duties = [
            # Take back jobs from dead workers even while no request is waiting on them.
            asyncio.create_task(_every("reap", settings.lease_s / 2, services.store.queue.reap, threads)),
            asyncio.create_task(_every("webhooks", 0.5, services.webhooks.run_due, threads)),
            asyncio.create_task(
                _every("expiry", min(60.0, settings.result_ttl_s / 4), lambda: _expire_results(services), threads)
            ),
            asyncio.create_task(
                _every("records", min(3600.0, settings.record_ttl_s / 4), lambda: _sweep_records(services), threads)
            ),
        ]
        log.info("server ready", extra={"database": services.db.url.render_as_string(), "model": settings.model})
        try:
            yield
        finally:
            for duty in duties:
                duty.cancel()
            if services.embedded is not None:
                await run_in_threadpool(services.embedded.stop, 30)
            services.close()

    app = FastAPI(
        title="ltxserve",
        version=__version__,
        summary="Self-hosted LTX-2 fast text/image-to-video with synchronized audio, hosted-API compatible",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    # The last added runs first: the request context (id, log, metrics) wraps the guards.
    app.add_middleware(RequestGuards, settings=GuardSettings.of(settings))
    app.add_middleware(RequestContextMiddleware, metrics=services.metrics)
    # Fixed paths before the `/v1/{model}`-style ones: a method a fixed path lacks is then answered 405 with
    # that path's own Allow header, not as if it were a model.
    for module in (playground, health, account, admin, requests, generate):
        app.include_router(module.router)
    generated = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generated())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
