"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from ...db import STORE_ERRORS
from ..deps import ServicesDep
from ..errors import error_response

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database answers, and a worker has its model loaded or a fleet will start one",
)
async def readyz(request: Request, services: ServicesDep) -> JSONResponse:
    request_id = request.state.request_id
    embedded = services.embedded.report() if services.embedded is not None else None

    def look() -> tuple[int, list[dict]]:
        services.db.ping()
        fleets = services.store.fleets.summaries(services.store.workers)
        return services.store.workers.live(), fleets

    try:
        workers, fleets = await run_in_threadpool(look)
    except STORE_ERRORS as exc:
        message = f"The database does not answer ({exc.__class__.__name__})."
        return error_response(503, "database_unavailable", message, request_id, extra={"embedded_worker": embedded})
    state = {"workers": workers, "embedded_worker": embedded, "fleets": fleets}
    # A fleet scaled to zero is ready: it starts a replica for the first request.
    if workers == 0 and not any(fleet["reporting"] for fleet in fleets):
        message = "No worker has its model loaded yet"
        if embedded is not None and embedded["error"]:
            message += f": the embedded worker {embedded['phase']}, {embedded['error']}"
        return error_response(503, "no_worker", message + ".", request_id, extra=state)
    return JSONResponse({"status": "ready", **state})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "Prometheus' text exposition format"}},
)
async def metrics(services: ServicesDep) -> Response:
    return Response(await run_in_threadpool(services.metrics.render), media_type=CONTENT_TYPE_LATEST)
