"""Dependencies the routes declare: services, the caller's key (with its rate limit), the admin key."""

from __future__ import annotations

import hmac
import math
import time
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from ..billing.keys import KeyInfo, authenticate
from ..errors import Forbidden, ModelNotFound, RateLimited, Unauthorized
from .auth import KeyCache
from .services import Services

MODELS = ("ltx-2-fast",)

_api_key = APIKeyHeader(name="x-api-key", auto_error=False, description="Your API key (ltx_...)")


# Every dependency is `async def`: FastAPI runs a plain `def` one on a worker thread, a hop per request
# that cost status polls a third of their time. Each also costs FastAPI some solving: the ones status polls
# go through take the request itself rather than more dependencies.
async def get_services(request: Request) -> Services:
    return services_of(request)


def services_of(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def known_model(model: str) -> str:
    if model not in MODELS:
        raise ModelNotFound(f"Unknown model {model!r}. Available: {', '.join(MODELS)}.")
    return model


Model = Annotated[str, Depends(known_model)]


ApiKeyHeader = Annotated[str | None, Security(_api_key)]


async def current_key(request: Request, secret: ApiKeyHeader) -> KeyInfo:
    """The caller's key, as looked up within the last few seconds (reads: a revoked key may still poll for
    up to KeyCache.ttl_s)."""
    key = await cached_key(services_of(request).keys, secret)
    request.state.key_id = key.id
    return key


async def cached_key(keys: KeyCache, secret: str | None) -> KeyInfo:
    """From the cache without a thread when it has the key, else from the database."""
    key = keys.cached(secret)
    if key is None:
        key = await run_in_threadpool(keys.authenticate, secret)
    return key


CurrentKey = Annotated[KeyInfo, Depends(current_key)]


async def checked_key(request: Request, services: ServicesDep, secret: ApiKeyHeader) -> KeyInfo:
    """The caller's key as the database has it now: whatever may spend money is never let through on a
    revoked key."""
    key = await run_in_threadpool(services.keys.authenticate, secret)
    request.state.key_id = key.id
    return key


CheckedKey = Annotated[KeyInfo, Depends(checked_key)]


async def generation_key(request: Request, services: ServicesDep, key: CheckedKey) -> KeyInfo:
    """The caller's key, counted against its requests-a-minute limit."""
    per_minute = key.rpm_limit or services.settings.default_rpm
    limiter = services.limiter
    if limiter.in_memory:
        window = limiter.hit(key.id, per_minute)
    else:
        window = await run_in_threadpool(limiter.hit, key.id, per_minute)
    request.state.rate_window = window
    if not window.allowed:
        raise RateLimited(
            f"Rate limit reached: this key may make {per_minute} generation requests a minute. "
            "Retry after the number of seconds in the Retry-After header.",
            math.ceil(window.reset_at - time.time()),
        )
    return key


GenerationKey = Annotated[KeyInfo, Depends(generation_key)]


async def admin(services: ServicesDep, secret: ApiKeyHeader) -> None:
    expected = services.settings.admin_key
    if expected is None:
        raise Forbidden("The admin API is off on this server: the operator sets LTXSERVE_ADMIN_KEY to turn it on.")
    if not secret:
        raise Unauthorized("Missing admin key. Send it in the x-api-key header.")
    if hmac.compare_digest(secret.encode(), expected.get_secret_value().encode()):
        return
    await run_in_threadpool(authenticate, services.db, secret)  # 401 unless it is some valid user key
    raise Forbidden("This endpoint needs the admin key; a user's API key cannot use it.")


AdminAccess = Depends(admin)
