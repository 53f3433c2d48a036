"""Requests a minute per key, counted by the `limits` library in memory (one server process) or in
Redis (several). Concurrent generations are limited in the job store, where they are counted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


@dataclass(frozen=True)
class Window:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the oldest counted request leaves the window


class MinuteLimiter:
    def __init__(self, storage_uri: str) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        # Counting in this process's memory is quick enough for the event loop; Redis is a network trip.
        self.in_memory = storage_uri.startswith("memory://")

    def hit(self, key_id: str, per_minute: int) -> Window:
        """Count one request, unless the key is over its limit (then `allowed` is False)."""
        item = RateLimitItemPerMinute(per_minute)
        allowed = self._limiter.hit(item, "ltxserve", key_id)
        stats = self._limiter.get_window_stats(item, "ltxserve", key_id)
        return Window(allowed, per_minute, stats.remaining, stats.reset_time)


def rate_limit_headers(window: Window | None) -> dict[str, str]:
    if window is None:
        return {}
    reset = datetime.fromtimestamp(window.reset_at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"x-rate-limit-remaining": str(window.remaining), "x-rate-limit-reset-at-utc": reset}
