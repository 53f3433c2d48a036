"""POST /v1/{model}: the hosted API's synchronous call. A thin wait over the job path: accept (price
reserved), wait for a worker to finish, answer the MP4 with the hosted API's headers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from ...billing.keys import KeyInfo
from ...billing.prices import format_dollars
from ...errors import (
    ClientDisconnected,
    Forbidden,
    GenerationFailed,
    ImageRejected,
    NoWorkerAvailable,
    SyncTimeout,
    WorkerLost,
)
from ...jobs import JobStatus, JobView
from ...request import MAX_SEED, GenerationRequest, decode_image, image_bytes
from ..deps import GenerationKey, Model, ServicesDep
from ..errors import ERROR_RESPONSES
from ..outputs import serve_result
from ..ratelimit import rate_limit_headers
from ..services import Services

log = logging.getLogger(__name__)
router = APIRouter(tags=["generate"])

_MP4_HEADERS = {
    "x-request-id": "This request's id (also the job's)",
    "x-generation-time": "Seconds the worker spent generating",
    "x-cost": "US dollars charged for this clip",
    "x-remaining-credits": "The key's balance after this charge, in US dollars",
    "x-seed-value": "Seed used: send it back as `seed` for the same clip",
    "x-rate-limit-remaining": "Requests left in the current minute window",
    "x-rate-limit-reset-at-utc": "When the oldest counted request leaves the window",
}


def check_scopes(key: KeyInfo, model: str, body: GenerationRequest) -> None:
    if model not in key.scopes:
        raise Forbidden(f"This API key may not use {model}; ask for a key with the {model!r} scope.")
    if body.resolution == "4k" and "4k" not in key.scopes:
        raise Forbidden("This API key may not generate 4k; use 1080p or 2k, or ask for a key with the '4k' scope.")


@dataclass(frozen=True)
class Delivery:
    """How the async API wants a job's outcome handed back; the sync API needs none of it."""

    idempotency_key: str | None = None
    request_hash: str | None = None
    webhook_url: str | None = None
    base_url: str | None = None


def request_hash(body: GenerationRequest) -> str:
    """Of the request as validated, so that equivalent bodies (defaults spelled out or not) match."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def fetch_image(value: str, services: Services) -> bytes:
    """The request's image as bytes, checked to be a readable image within the limits."""
    data = image_bytes(value, services.fetcher)
    decode_image(data, services.settings.image_max_pixels)
    return data


async def accept(
    services: Services,
    request: Request,
    key: KeyInfo,
    model: str,
    body: GenerationRequest,
    delivery: Delivery = Delivery(),
) -> JobView:
    """Check, price and enqueue a request: the job and its reservation exist once this returns."""
    check_scopes(key, model, body)
    price = services.prices.price(body.resolution, body.duration)
    concurrency_limit = key.concurrency_limit or services.settings.default_concurrency
    # Everything that would refuse the request is asked before an image is fetched for it.
    await run_in_threadpool(services.store.check_admissible, key.id, price, concurrency_limit)
    if await run_in_threadpool(services.store.live_workers) == 0:
        raise NoWorkerAvailable(
            "No worker is running to take this request, so it was not accepted and nothing was charged. "
            "Retry shortly; /readyz tells when a worker is up."
        )
    image = None
    if body.image is not None:
        image = await anyio.to_thread.run_sync(fetch_image, body.image, services, limiter=services.fetch_threads)
    seed = body.seed if body.seed is not None else secrets.randbelow(MAX_SEED + 1)
    stored = body.model_copy(update={"seed": seed, "image": None}).model_dump()
    return await run_in_threadpool(
        lambda: services.store.submit(
            key,
            job_id=request.state.request_id,
            model=model,
            request=stored,
            price=price,
            image=image,
            concurrency_limit=concurrency_limit,
            idempotency_key=delivery.idempotency_key,
            request_hash=delivery.request_hash,
            webhook_url=delivery.webhook_url,
            base_url=delivery.base_url,
        )
    )


async def _client_left(request: Request) -> None:
    """Returns once the client has closed the connection (the body is read already: nothing else comes)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _wait_while_connected(services: Services, request: Request, job_id: str, timeout_s: float) -> JobView | None:
    """The finished job, or None after `timeout_s`. A client that leaves first will never take the clip: its
    job is canceled and not billed, as vLLM aborts a request whose client is gone."""
    waiting = asyncio.ensure_future(services.waiter.wait(job_id, timeout_s))
    leaving = asyncio.ensure_future(_client_left(request))
    try:
        await asyncio.wait((waiting, leaving), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        waiting.cancel()  # the request itself was canceled (the server is stopping)
        raise
    finally:
        leaving.cancel()
    if waiting.done():
        return waiting.result()
    waiting.cancel()
    now = await run_in_threadpool(
        services.store.cancel,
        job_id,
        "client_disconnected",
        "The client closed the connection before the clip was ready, so it was canceled and not charged.",
    )
    log.info("client left; job canceled", extra={"request_id": job_id, "now_status": str(now.status)})
    raise ClientDisconnected


def raise_for_failure(job: JobView) -> None:
    message = job.error_message or "The generation failed."
    if job.status is JobStatus.FAILED:
        if job.error_code == "worker_lost":
            raise WorkerLost(message)
        if job.error_code == ImageRejected.code:
            raise ImageRejected(message)
        raise GenerationFailed(message)
    if job.status is JobStatus.CANCELED:
        raise SyncTimeout(message) if job.error_code == "timeout" else GenerationFailed(message)


@router.post(
    "/v1/{model}",
    summary="Generate a clip and wait for it",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The MP4: H.264 video with an AAC audio track unless generate_audio is false",
            "headers": {name: {"description": text, "schema": {"type": "string"}} for name, text in _MP4_HEADERS.items()},
        },
        **ERROR_RESPONSES,
    },
)
async def generate(model: Model, key: GenerationKey, body: GenerationRequest, request: Request, services: ServicesDep):
    job = await accept(services, request, key, model, body)
    timeout = services.settings.sync_timeout_s
    finished = await _wait_while_connected(services, request, job.id, timeout)
    if finished is None:
        finished = await run_in_threadpool(
            services.store.cancel,
            job.id,
            "timeout",
            f"The generation did not finish within the {timeout:g} s sync timeout, so it was canceled and not "
            "charged. Ask for a shorter or smaller clip, or retry later.",
        )
    if finished.status is not JobStatus.COMPLETED:
        raise_for_failure(finished)
    balance = await run_in_threadpool(services.store.balance, key.id)
    headers = {
        "x-generation-time": f"{finished.generation_seconds:.3f}",
        "x-cost": format_dollars(finished.price),
        "x-remaining-credits": format_dollars(balance),
        "x-seed-value": str(finished.result["seed"]),
        **rate_limit_headers(request.state.rate_window),
    }
    return await run_in_threadpool(serve_result, services.storage, finished.result_key, f"{finished.id}.mp4", headers)
