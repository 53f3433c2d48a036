"""What the routes use, built once per app from settings and the job store by the server's composition root
(roots/server.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from ..billing import keys
from ..billing.prices import PriceTable
from ..config import Settings
from ..db import Database
from ..jobs import JobStore, JobView
from ..net.safe_fetch import SafeFetcher
from ..storage import ResultStorage, storage_for
from ..webhooks import RetryPolicy, WebhookDispatcher
from . import records
from .auth import KeyCache
from .cache import StatusCache
from .feed import EventFeed
from .metrics import Metrics
from .outputs import OutputLinks
from .ratelimit import MinuteLimiter
from .waiter import JobWaiter


class EmbeddedWorker(Protocol):
    """The worker process a server runs beside itself (the embedded default), as the API sees it: started
    and stopped with the app, asked whether it is coming (a request then waits for it), and reported on."""

    def start(self) -> None: ...

    def stop(self, timeout_s: float) -> None: ...

    @property
    def on_its_way(self) -> bool:
        """Not ready yet, but expected to be (starting, loading its model, restarting after a crash)."""
        ...

    def report(self) -> dict[str, Any]:
        """What /readyz says of it."""
        ...


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
    fetcher: SafeFetcher
    keys: KeyCache
    feed: EventFeed
    cache: StatusCache
    waiter: JobWaiter
    webhooks: WebhookDispatcher
    embedded: EmbeddedWorker | None = None
    # Image downloads (up to LTXSERVE_FETCH_TIMEOUT_S each) run on threads of their own, so that slow image
    # hosts cannot take the threads that authenticate and answer every other request.
    fetch_threads: anyio.CapacityLimiter | None = field(default=None)

    FETCH_THREADS = 16

    def start(self) -> None:
        """In the running event loop, where anyio's limiters must be made."""
        self.fetch_threads = anyio.CapacityLimiter(self.FETCH_THREADS)
        self.feed.start()

    @classmethod
    def from_settings(cls, settings: Settings, store: JobStore) -> Services:
        db = store.db
        fetcher = SafeFetcher.for_images(settings)
        links = OutputLinks(store.records, settings.result_ttl_s)
        feed = EventFeed(store)

        def webhook_body(job: JobView) -> dict:
            return records.webhook_event(job, keys.balance(db, job.key_id), links, settings.public_url)

        policy = RetryPolicy(
            timeout_s=settings.webhook_timeout_s,
            backoff_s=settings.webhook_backoff_s,
            backoff_max_s=settings.webhook_backoff_max_s,
            window_s=settings.webhook_retry_window_s,
        )
        return cls(
            settings=settings,
            db=db,
            store=store,
            storage=storage_for(settings),
            links=links,
            prices=PriceTable.from_dollars({str(resolution): price for resolution, price in settings.prices.items()}),
            limiter=MinuteLimiter(settings.rate_limit_storage),
            metrics=Metrics(store),
            fetcher=fetcher,
            keys=KeyCache(db),
            feed=feed,
            cache=StatusCache(store, feed),
            waiter=JobWaiter(store, feed),
            webhooks=WebhookDispatcher(store, fetcher, webhook_body, policy),
        )

    def close(self) -> None:
        self.feed.stop()
        self.webhooks.close()
        self.db.dispose()
