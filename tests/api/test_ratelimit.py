"""The requests-a-minute window, in memory and in the local Redis (shared by several servers)."""

from __future__ import annotations

import time
import uuid

import pytest

from ltxserve.api.ratelimit import MinuteLimiter, rate_limit_headers


@pytest.mark.parametrize("storage", ["memory://", "redis://127.0.0.1:6379"])
def test_a_key_gets_its_limit_a_minute_and_is_told_when_it_resets(storage):
    key = f"key_{uuid.uuid4().hex[:8]}"
    limiter, other_process = MinuteLimiter(storage), MinuteLimiter(storage)
    windows = [limiter.hit(key, 3) for _ in range(3)]
    assert [window.remaining for window in windows] == [2, 1, 0] and all(window.allowed for window in windows)
    refused = (other_process if storage.startswith("redis") else limiter).hit(key, 3)
    assert not refused.allowed and refused.remaining == 0
    assert time.time() < refused.reset_at <= time.time() + 60
    assert limiter.hit(f"{key}-other", 3).allowed, "limits are per key"
    headers = rate_limit_headers(refused)
    assert headers["x-rate-limit-remaining"] == "0" and headers["x-rate-limit-reset-at-utc"].endswith("Z")
