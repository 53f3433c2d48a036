"""The ASGI app: routes, error handlers, request context, and (embedded default) a worker in-process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..config import Settings
from .errors import install_error_handlers
from .middleware import RequestContextMiddleware
from .routes import account, admin, generate, health
from .services import Services

log = logging.getLogger(__name__)


async def _reap_forever(services: Services) -> None:
    """Take back jobs from dead workers even while no request is waiting on them."""
    while True:
        await asyncio.sleep(services.settings.lease_s / 2)
        try:
            await run_in_threadpool(services.store.reap)
        except Exception:
            log.exception("reaping expired leases failed")


def create_app(settings: Settings) -> FastAPI:
    services = Services.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(services.db.migrate)
        if settings.embedded_workers:
            from ..workers.runtime import EmbeddedWorker

            services.embedded = EmbeddedWorker(settings, services.store, services.metrics.generation_seconds.observe)
            services.embedded.start()
        reaper = asyncio.create_task(_reap_forever(services))
        log.info("server ready", extra={"database": services.db.url.render_as_string(), "model": settings.model})
        try:
            yield
        finally:
            reaper.cancel()
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
    app.add_middleware(RequestContextMiddleware, metrics=services.metrics)
    for module in (generate, account, admin, health):
        app.include_router(module.router)
    return app
