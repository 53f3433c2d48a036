"""What the routes use, built once per app from settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from ..billing.prices import PriceTable
from ..config import Settings
from ..db import Database
from ..jobs import JobStore
from ..net.safe_fetch import SafeFetcher
from ..storage import ResultStorage, storage_for
from ..webhooks import RetryPolicy, WebhookDispatcher
from . import records
from .metrics import Metrics
from .outputs import OutputLinks
from .ratelimit import MinuteLimiter
from .waiter import JobWaiter

if TYPE_CHECKING:
    from ..workers.supervisor import WorkerSupervisor


@dataclass
class Services:
    settings: Settings
    db: Database
    store: JobStore
    storage: ResultStorage
    links: OutputLinks
    prices: PriceTable
    limiter: MinuteLimiter
    metrics: Metrics
    waiter: JobWaiter
    fetcher: SafeFetcher
    webhooks: WebhookDispatcher | None = None
    supervisor: WorkerSupervisor | None = None
    # Image downloads (up to LTXSERVE_FETCH_TIMEOUT_S each) run on threads of their own, so that slow image
    # hosts cannot take the threads that authenticate and answer every other request.
    fetch_threads: anyio.CapacityLimiter | None = None

    FETCH_THREADS = 16

    def start_pools(self) -> None:
        """In the running event loop, where anyio's limiters must be made."""
        self.fetch_threads = anyio.CapacityLimiter(self.FETCH_THREADS)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        db = Database(settings.database)
        store = JobStore(db, lease_s=settings.lease_s, max_attempts=settings.max_attempts)
        fetcher = SafeFetcher.for_images(settings)
        services = cls(
            settings=settings,
            db=db,
            store=store,
            storage=storage_for(settings),
            links=OutputLinks(db, settings.result_ttl_s),
            prices=PriceTable.from_dollars(settings.prices),
            limiter=MinuteLimiter(settings.rate_limit_storage),
            metrics=Metrics(store),
            waiter=JobWaiter(store),
            fetcher=fetcher,
        )
        policy = RetryPolicy(
            timeout_s=settings.webhook_timeout_s,
            backoff_s=settings.webhook_backoff_s,
            backoff_max_s=settings.webhook_backoff_max_s,
            window_s=settings.webhook_retry_window_s,
        )
        services.webhooks = WebhookDispatcher(db, store, fetcher, lambda job: records.webhook_event(services, job),
                                              policy)
        return services

    def close(self) -> None:
        self.waiter.close()
        if self.webhooks is not None:
            self.webhooks.close()
        self.db.dispose()
