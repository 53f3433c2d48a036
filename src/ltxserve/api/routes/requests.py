"""The async API, the hosted API's v2 contract and more: submit (202), status and the full record
(FAILED answers 422, as the hosted API does), an events stream, cancel, the output, the webhook secret.

Every request here is looked up for the caller's key only: another key's request id is a 404.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...billing import keys
from ...billing.keys import KeyInfo
from ...errors import FieldIssue, Forbidden, Gone, InvalidRequest, NotCancelable, NotReady, RequestNotFound
from ...jobs import JobStatus, JobView
from ...net.safe_fetch import FetchFailed, FetchRefused
from ...webhooks import signing
from ..deps import ApiKeyHeader, CurrentKey, GenerationKey, Model, ServicesDep, cached_key, services_of
from ..errors import error_responses
from ..intake import Delivery, accept, request_hash
from ..outputs import result_location
from ..records import RecordOut, StatusOut, record_of, status_of
from ..schemas import AsyncGenerationRequest
from ..services import Services

router = APIRouter(tags=["async"])

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


async def _owned(request_id: str, key: KeyInfo, services: Services) -> tuple[JobView, int, int | None]:
    """The key's request, the key's balance and (while queued) its turn: from this process's cache when
    nothing changed since they were read, else read in one go on one thread."""
    found = services.cache.cached_job(request_id, key.id)
    if found is not None:
        job, balance = found
        position = services.cache.cached_position(job.id)
        if job.status is not JobStatus.QUEUED or position is not None:
            return job, balance, position

    def read() -> tuple[JobView, int, int | None] | None:
        found = services.cache.job(request_id, key.id)
        if found is None:
            return None
        return found[0], found[1], services.cache.position(found[0])

    owned = await run_in_threadpool(read)
    if owned is None:
        raise RequestNotFound.for_id(request_id)
    return owned


async def owned_job(request_id: str, key: CurrentKey, request: Request) -> tuple[JobView, int, int | None]:
    return await _owned(request_id, key, services_of(request))


OwnedJob = Annotated[tuple[JobView, int, int | None], Depends(owned_job)]


def _answer(body: BaseModel, job: JobView) -> JSONResponse:
    # The hosted API serves a FAILED request's body under 422.
    return JSONResponse(body.model_dump(mode="json"), status_code=422 if job.status is JobStatus.FAILED else 200)


def _failed(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {422: {"model": model, "description": "FAILED: `error` says why (not billed)"}}


class RequestPage(BaseModel):
    requests: list[RecordOut] = Field(description="Newest first; `queue_position` is given by the status call")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


@router.get(
    "/v2/requests",
    response_model=RequestPage,
    summary="Your requests, newest first, a page at a time",
    responses=error_responses(400, 401, 404),
)
async def list_requests(
    key: CurrentKey,
    request: Request,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Requests on this page")] = 20,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9A-Za-z-]{1,64}$", description="`next_cursor` of the page "
                                        "before (the id of its last request); 404 if not one of your requests")] = None,
) -> RequestPage:
    def read() -> tuple[list[JobView], int]:
        jobs = services.store.records.page(key.id, limit + 1, cursor)
        if jobs is None:
            raise RequestNotFound.for_id(cursor or "")
        return jobs, keys.balance(services.db, key.id)

    jobs, balance = await run_in_threadpool(read)
    base = base_url(services, request)
    return RequestPage(
        requests=[record_of(job, balance, None, services.links, base) for job in jobs[:limit]],
        next_cursor=jobs[limit - 1].id if len(jobs) > limit else None,
    )


@router.get(
    "/v2/requests/{request_id}/status",
    response_model=StatusOut,
    summary="Status, queue position and progress",
    responses={**_failed(StatusOut), **error_responses(401, 404)},
)
async def status(owned: OwnedJob) -> JSONResponse:
    job, balance, position = owned
    return _answer(StatusOut(**status_of(job, balance, position)), job)


@router.get(
    "/v2/requests/{request_id}",
    response_model=RecordOut,
    summary="The full record, with the output URL once COMPLETED",
    responses={**_failed(RecordOut), **error_responses(401, 404)},
)
async def record(owned: OwnedJob, request: Request, services: ServicesDep) -> JSONResponse:
    job, balance, position = owned
    return _answer(record_of(job, balance, position, services.links, base_url(services, request)), job)


# An idle stream looks at the database itself this rarely, in case a notice was lost on the way.
EVENTS_RECHECK_S = 60.0


@router.get(
    "/v2/requests/{request_id}/events",
    response_class=EventSourceResponse,
    summary="Server-Sent Events of every status and progress change, until the request ends",
    description="Each event's `id` may be sent back as `Last-Event-ID` to resume after it. Event types: "
    "`status` (QUEUED, PROCESSING, COMPLETED, FAILED, CANCELED), `progress`, and, while QUEUED, `queue` with the "
    "request's `queue_position` (1: next) whenever it changes; `queue` events have no id (the turn is not kept "
    "in the log: a resumed stream is told the current one).",
    responses=error_responses(401, 404),
)
async def events(
    owned: OwnedJob,
    services: ServicesDep,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
) -> AsyncIterable[ServerSentEvent]:
    job = owned[0]
    after = last_event_id or 0
    # Subscribed before the log is read: nothing that happens in between is missed.
    subscription = services.feed.subscribe(job.id, after, queue=job.status is JobStatus.QUEUED)
    told: int | None = None  # the queue position this stream last sent
    try:
        batch = await run_in_threadpool(services.store.events.after, job.id, after)
        if not batch:
            now = await run_in_threadpool(services.store.records.get, job.id)
            if now is None or now.finished:
                return  # resumed after the last event of a finished request: nothing more will come
        while True:
            for event in batch:
                if event.id <= after:
                    continue  # heard twice: from the log and from the feed
                after = event.id
                kind = "progress" if "progress" in event.data else "status"
                yield ServerSentEvent(data={"request_id": job.id, **event.data}, id=str(event.id), event=kind)
                if event.finished:
                    return
                if kind == "status":
                    subscription.queue = event.status is JobStatus.QUEUED
                    told = None  # from a status change on, the turn is news (queued again after a lost worker)
            if subscription.queue:
                # The feed has told the cache of the change before it wakes this stream: positions are current.
                position = await run_in_threadpool(services.cache.queue_position, job.id)
                if position is None:
                    subscription.queue = False  # claimed or canceled: its status event is on its way
                elif position != told:
                    told = position
                    yield ServerSentEvent(data={"request_id": job.id, "status": "QUEUED", "queue_position": position},
                                          event="queue")
            news = await subscription.next(EVENTS_RECHECK_S)
            batch = news if news is not None else await run_in_threadpool(services.store.events.after, job.id, after)
    finally:
        subscription.close()


@router.post(
    "/v2/requests/{request_id}/cancel",
    response_model=StatusOut,
    summary="Cancel: a queued request never runs, a running one stops at its next step; neither is billed",
    responses=error_responses(401, 404, s409="The request already COMPLETED or FAILED"),
)
async def cancel(owned: OwnedJob, services: ServicesDep) -> StatusOut:
    job = owned[0]

    def cancel_now() -> StatusOut:
        now = services.store.queue.cancel(job.id, "canceled", "Canceled at the client's request. You were not charged.")
        services.cache.forget(job.id)
        if now is None:
            raise RequestNotFound.for_id(job.id)
        if now.status in (JobStatus.COMPLETED, JobStatus.FAILED):
            raise NotCancelable(f"Request {job.id} already {now.status}; there is nothing to cancel.")
        return StatusOut(**status_of(now, keys.balance(services.db, now.key_id), None))

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
    if expires is not None and signature is not None:
        if not services.links.valid(request_id, expires, signature):
            raise Forbidden("This output link is invalid or has expired. GET the request's record for a fresh one.")
        job = await run_in_threadpool(services.store.records.get, request_id)
    else:
        job = (await _owned(request_id, await cached_key(services.keys, secret), services))[0]
    if job is None:
        raise RequestNotFound.for_id(request_id)
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
    return WebhookSecretOut(secret=await run_in_threadpool(keys.webhook_secret, services.db, key.id))


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
        earlier = await run_in_threadpool(services.store.intake.replay, key.id, idempotency_key, digest)
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
