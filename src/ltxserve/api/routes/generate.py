"""POST /v1/{model}: the hosted API's synchronous call. A thin wait over the job path: accept (price
reserved), wait for a worker to finish, answer the MP4 with the hosted API's headers."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from ...billing.prices import format_dollars
from ...errors import ClientDisconnected, GenerationFailed, ImageRejected, SyncTimeout, WorkerLost
from ...jobs import JobStatus, JobView
from ..deps import GenerationKey, Model, ServicesDep
from ..errors import ERROR_RESPONSES
from ..intake import accept
from ..outputs import serve_result
from ..ratelimit import rate_limit_headers
from ..schemas import GenerationRequest
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


async def _client_left(request: Request) -> None:
    """Returns once the client has closed the connection (the body is read already: nothing else comes)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _wait_while_connected(
    services: Services, request: Request, job: JobView, timeout_s: float
) -> tuple[JobView, int] | None:
    """The finished job and the key's balance, or None after `timeout_s`. A client that leaves first will never
    take the clip: its job is canceled and not billed, as vLLM aborts a request whose client is gone."""
    job_id = job.id
    waiting = asyncio.ensure_future(services.waiter.wait(job_id, job.key_id, timeout_s))
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
        services.store.queue.cancel,
        job_id,
        "client_disconnected",
        "The client closed the connection before the clip was ready, so it was canceled and not charged.",
    )
    log.info("client left; job canceled", extra={"request_id": job_id, "now_status": str(now and now.status)})
    raise ClientDisconnected


def raise_for_failure(job: JobView | None) -> None:
    if job is None:
        raise GenerationFailed("The request's record disappeared before it finished.")
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
            "headers": {
                name: {"description": text, "schema": {"type": "string"}} for name, text in _MP4_HEADERS.items()
            },
        },
        **ERROR_RESPONSES,
    },
)
async def generate(model: Model, key: GenerationKey, body: GenerationRequest, request: Request, services: ServicesDep):
    job = await accept(services, request, key, model, body)
    timeout = services.settings.sync_timeout_s
    finished = await _wait_while_connected(services, request, job, timeout)
    if finished is None:
        canceled = await run_in_threadpool(
            services.store.queue.cancel,
            job.id,
            "timeout",
            f"The generation did not finish within the {timeout:g} s sync timeout, so it was canceled and not "
            "charged. Ask for a shorter or smaller clip, or retry later.",
        )
        raise_for_failure(canceled)
        raise GenerationFailed("The generation ended without a clip.")
    done, balance = finished
    if done.status is not JobStatus.COMPLETED or done.result_key is None:
        raise_for_failure(done)
        raise GenerationFailed("The generation ended without a clip.")
    headers = {
        "x-generation-time": f"{done.generation_seconds or 0:.3f}",
        "x-cost": format_dollars(done.price),
        "x-remaining-credits": format_dollars(balance),
        "x-seed-value": str((done.result or {}).get("seed", "")),
        **rate_limit_headers(request.state.rate_window),
    }
    return await run_in_threadpool(serve_result, services.storage, done.result_key, f"{done.id}.mp4", headers)
