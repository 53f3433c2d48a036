"""Accepting a generation request, for /v1 and /v2 alike: scopes, limits and balance checked, the image
fetched and decoded, the request made into its order, then the job queued with its price reserved (the job
store's one transaction)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import anyio
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..billing.keys import KeyInfo
from ..errors import Forbidden, NoWorkerAvailable
from ..jobs import IMAGE, JobView
from ..media.images import load_image, pack_pixels
from ..order import ImageInput
from .schemas import GenerationRequest
from .services import Services


@dataclass(frozen=True)
class Delivery:
    """How the async API wants a job's outcome handed back; the sync API needs none of it."""

    idempotency_key: str | None = None
    request_hash: str | None = None
    webhook_url: str | None = None
    base_url: str | None = None


def check_scopes(key: KeyInfo, model: str, body: GenerationRequest) -> None:
    if model not in key.scopes:
        raise Forbidden(f"This API key may not use {model}; ask for a key with the {model!r} scope.")
    if body.resolution == "4k" and "4k" not in key.scopes:
        raise Forbidden("This API key may not generate 4k; use 1080p or 2k, or ask for a key with the '4k' scope.")


def request_hash(body: GenerationRequest) -> str:
    """Of the request as validated, so that equivalent bodies (defaults spelled out or not) match."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def fetch_image(value: str, services: Services) -> tuple[ImageInput, bytes]:
    """The request's image, fetched and decoded within the limits, as the order's reference and its pixels."""
    return pack_pixels(load_image(value, services.fetcher, services.settings.image_max_pixels), IMAGE)


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

    def submit(image: tuple[ImageInput, bytes] | None, cold: bool) -> JobView:
        reference, pixels = image or (None, None)
        order = body.to_order(price=price, image=reference)
        return services.store.intake.submit(
            key,
            job_id=request.state.request_id,
            model=model,
            request=body.as_accepted(order),
            order=order.to_json(),
            price=price,
            media={IMAGE: pixels} if pixels is not None else None,
            concurrency_limit=concurrency_limit,
            idempotency_key=delivery.idempotency_key,
            request_hash=delivery.request_hash,
            webhook_url=delivery.webhook_url,
            base_url=delivery.base_url,
            cold=cold,
        )

    if body.image is None:
        # One trip to a thread: `submit` itself refuses what is over the key's limits or balance.
        def ready_and_submit() -> JobView:
            return submit(None, cold=not capacity(services))

        return await run_in_threadpool(ready_and_submit)

    def admissible() -> bool:
        # Everything that would refuse the request is asked before an image is fetched for it.
        services.store.intake.check_admissible(key.id, price, concurrency_limit)
        return capacity(services)

    warm = await run_in_threadpool(admissible)
    image = await anyio.to_thread.run_sync(fetch_image, body.image, services, limiter=services.fetch_threads)
    return await run_in_threadpool(submit, image, not warm)


def capacity(services: Services) -> bool:
    """Whether a worker is live to take a request now (True), or will be (False: the request waits, a cold
    start). A fleet that is deployed starts replicas for queued work, and a worker that is loading its model
    will take it; only a server with no way to ever run the request refuses it."""
    if services.store.workers.live() > 0:
        return True
    if services.embedded is not None and services.embedded.on_its_way:
        return False
    if services.store.fleets.any_reporting():
        return False
    raise NoWorkerAvailable(
        "No worker is running to take this request, and none is starting, so it was not accepted and nothing "
        "was charged. Retry shortly; /readyz tells when a worker is up."
    )
