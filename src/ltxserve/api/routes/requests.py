"""The async API, the hosted API's v2 contract and more: submit (202), status and the full record
(FAILED answers 422, as the hosted API does), an events stream, cancel, the output, the webhook secret.

Every request here is looked up for the caller's key only: another key's request id is a 404.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...billing.keys import authenticate, webhook_secret
from ...errors import FieldIssue, Forbidden, Gone, InvalidRequest, NotCancelable, NotReady, RequestNotFound
from ...jobs import JobStatus, JobView
from ...net.safe_fetch import FetchFailed, FetchRefused
from ...request import AsyncGenerationRequest
from ...webhooks import signing
from ..deps import ApiKeyHeader, CurrentKey, GenerationKey, Model, ServicesDep
from ..errors import error_responses
from ..outputs import result_location
from ..records import RecordOut, StatusOut, record_of, status_of
from ..services import Services
from .generate import Delivery, accept, request_hash

router = APIRouter(tags=["async"])

# How often an events stream looks for news in the job store (workers may be other processes).
EVENTS_POLL_S = 0.25


class Submitted(BaseModel):
    request_id: str
    status: JobStatus
    poll_url: str = Field(description="Where to poll: the status URL")
    status_url: str
    response_url: str = Field(description="The full record, with `output` once COMPLETED")
    events_url: str = Field(description="Server-Sent Events of every status and progress change")
    cancel_url: str


class WebhookSecretOut(BaseModel):
    secret: str = Field(description="Signs this key's webhooks; keep it on the receiving side only")
    header: str = signing.HEADER
    scheme: str = "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>' under the secret>"


def base_url(services: Services, request: Request) -> str:
    return (services.settings.public_url or str(request.base_url)).rstrip("/")


def submitted(base: str, job: JobView) -> Submitted:
    url = f"{base}/v2/requests/{job.id}"
    return Submitted(
        request_id=job.id,
        status=job.status,
        poll_url=f"{url}/status",
        status_url=f"{url}/status",
        response_url=url,
        events_url=f"{url}/events",
        cancel_url=f"{url}/cancel",
    )


async def owned_job(request_id: str, key: CurrentKey, services: ServicesDep) -> JobView:
    job = await run_in_threadpool(services.store.get_for_key, request_id, key.id)
    if job is None:
        raise RequestNotFound(f"No request {request_id!r} was made with this API key.")
    return job


OwnedJob = Annotated[JobView, Depends(owned_job)]


def _answer(body: BaseModel, job: JobView) -> JSONResponse:
    # The hosted API serves a FAILED request's body under 422.
    return JSONResponse(body.model_dump(mode="json"), status_code=422 if job.status is JobStatus.FAILED else 200)


def _failed(model: type[BaseModel]) -> dict:
    return {422: {"model": model, "description": "FAILED: `error` says why (not billed)"}}


@router.get(
    "/v2/requests/{request_id}/status",
    response_model=StatusOut,
    summary="Status, queue position and progress",
    responses={**_failed(StatusOut), **error_responses(401, 404)},
)
async def status(job: OwnedJob, services: ServicesDep) -> JSONResponse:
    def build() -> StatusOut:
        return StatusOut(**status_of(services, job, services.store.balance(job.key_id)))

    return _answer(await run_in_threadpool(build), job)


@router.get(
    "/v2/requests/{request_id}",
    response_model=RecordOut,
    summary="The full record, with the output URL once COMPLETED",
    responses={**_failed(RecordOut), **error_responses(401, 404)},
)
async def record(job: OwnedJob, request: Request, services: ServicesDep) -> JSONResponse:
    return _answer(await run_in_threadpool(record_of, services, job, base_url(services, request)), job)


@router.get(
    "/v2/requests/{request_id}/events",
    response_class=EventSourceResponse,
    summary="Server-Sent Events of every status and progress change, until the request ends",
    description="Each event's `id` may be sent back as `Last-Event-ID` to resume after it. Event types: "
    "`status` (QUEUED, PROCESSING, COMPLETED, FAILED, CANCELED) and `progress`.",
    responses=error_responses(401, 404),
)
async def events(
    job: OwnedJob,
    services: ServicesDep,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
) -> AsyncIterable[ServerSentEvent]:
    after = last_event_id or 0
    while True:
        batch = await run_in_threadpool(services.store.events_after, job.id, after)
        for event in batch:
            after = event.id
            kind = "progress" if "progress" in event.data else "status"
            yield ServerSentEvent(data={"request_id": job.id, **event.data}, id=str(event.id), event=kind)
            if event.finished:
                return
        if not batch:
            now = await run_in_threadpool(services.store.get, job.id)
            # Resumed after the last event of a finished request: nothing more will come.
            if now.finished and not await run_in_threadpool(services.store.events_after, job.id, after):
                return
            await asyncio.sleep(EVENTS_POLL_S)


@router.post(
    "/v2/requests/{request_id}/cancel",
    response_model=StatusOut,
    summary="Cancel: a queued request never runs, a running one stops at its next step; neither is billed",
    responses=error_responses(401, 404, s409="The request already COMPLETED or FAILED"),
)
async def cancel(job: OwnedJob, services: ServicesDep) -> StatusOut:
    def cancel_now() -> StatusOut:
        now = services.store.cancel(job.id, "canceled", "Canceled at the client's request. You were not charged.")
        if now.status in (JobStatus.COMPLETED, JobStatus.FAILED):
            raise NotCancelable(f"Request {job.id} already {now.status}; there is nothing to cancel.")
        return StatusOut(**status_of(services, now, services.store.balance(now.key_id)))

    return await run_in_threadpool(cancel_now)


@router.get(
    "/v2/requests/{request_id}/output",
    response_class=FileResponse,
    summary="The MP4 (HTTP Range supported), by API key or by the signed link in the record's `output`",
    responses={
        200: {"content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}},
        307: {"description": "With S3 storage: to the bucket's own presigned URL"},
        **error_responses(401, 404, s403="The signed link is invalid or has expired",
                          s409="The request has not COMPLETED", s410="The output was deleted after its retention time"),
    },
)
async def output(
    request_id: str,
    services: ServicesDep,
    secret: ApiKeyHeader,
    expires: int | None = None,
    signature: str | None = None,
):
    def find() -> JobView | None:
        if expires is not None and signature is not None:
            if not services.links.valid(request_id, expires, signature):
                raise Forbidden("This output link is invalid or has expired. GET the request's record for a fresh one.")
            return services.store.get(request_id)
        return services.store.get_for_key(request_id, authenticate(services.db, secret).id)

    job = await run_in_threadpool(find)
    if job is None:
        raise RequestNotFound(f"No request {request_id!r} was made with this API key.")
    if job.status is not JobStatus.COMPLETED:
        raise NotReady(f"Request {job.id} is {job.status}; its output exists once it is COMPLETED.")
    if job.result_key is None:
        raise Gone(
            f"The output of request {job.id} was deleted at {job.result_expired_at:%Y-%m-%d %H:%M:%S} UTC, after its "
            "retention time. Send the request again with its seed for the same clip."
        )
    expires_in = services.links.expires_at(job) - int(time.time())
    return await run_in_threadpool(result_location, services.storage, job.result_key, f"{job.id}.mp4", expires_in)


@router.get(
    "/v2/webhook-secret",
    response_model=WebhookSecretOut,
    summary="The secret that signs this key's webhooks",
    responses=error_responses(401),
)
async def get_webhook_secret(key: CurrentKey, services: ServicesDep) -> WebhookSecretOut:
    return WebhookSecretOut(secret=await run_in_threadpool(webhook_secret, services.db, key.id))


# Last: `/v2/{model}` would otherwise stand for `/v2/webhook-secret` in a 405's Allow header.
@router.post(
    "/v2/{model}",
    status_code=202,
    response_model=Submitted,
    summary="Submit a generation; poll, stream or get a webhook for its outcome",
    responses=error_responses(
        400, 401, 403, 404, 406, 429, 500, 502, s409="The Idempotency-Key was used before with another body"
    ),
)
async def submit(
    model: Model,
    key: GenerationKey,
    body: AsyncGenerationRequest,
    request: Request,
    services: ServicesDep,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
               description="Printable ASCII. Same key and body: the same request back, charged once"),
    ] = None,
) -> Submitted:
    base = base_url(services, request)
    digest = request_hash(body)
    if idempotency_key is not None:
        earlier = await run_in_threadpool(services.store.replay, key.id, idempotency_key, digest)
        if earlier is not None:
            return submitted(base, earlier)
    if body.webhook_url is not None:
        try:
            await run_in_threadpool(services.fetcher.check_url, body.webhook_url)
        except (FetchRefused, FetchFailed) as exc:
            raise InvalidRequest([FieldIssue("webhook_url", f"URL refused: {exc}")]) from None
    delivery = Delivery(idempotency_key, digest, body.webhook_url, base)
    job = await accept(services, request, key, model, body.generation(), delivery)
    return submitted(base, job)
