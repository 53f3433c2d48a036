"""What the routes use, built once per app from settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..billing.prices import PriceTable
from ..config import Settings
from ..db import Database
from ..jobs import JobStore
from ..net.safe_fetch import SafeFetcher
from ..storage import LocalStorage, ResultStorage
from .metrics import Metrics
from .ratelimit import MinuteLimiter
from .waiter import JobWaiter

if TYPE_CHECKING:
    from ..workers.runtime import EmbeddedWorker


@dataclass
class Services:
    settings: Settings
    db: Database
    store: JobStore
    storage: ResultStorage
    prices: PriceTable
    limiter: MinuteLimiter
    metrics: Metrics
    waiter: JobWaiter
    fetcher: SafeFetcher
    embedded: EmbeddedWorker | None = None

    @property
    def worker_error(self) -> str | None:
        error = self.embedded.load_error if self.embedded is not None else None
        return f"{error.__class__.__name__}: {error}" if error is not None else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        db = Database(settings.database)
        store = JobStore(db, lease_s=settings.lease_s, max_attempts=settings.max_attempts)
        return cls(
            settings=settings,
            db=db,
            store=store,
            storage=LocalStorage(settings.results),
            prices=PriceTable.from_dollars(settings.prices),
            limiter=MinuteLimiter(settings.rate_limit_storage),
            metrics=Metrics(store),
            waiter=JobWaiter(store),
            fetcher=settings.image_fetcher(),
        )

    def close(self) -> None:
        self.waiter.close()
        self.db.dispose()
