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


@router.get("/readyz", summary="The database answers and a worker has its model loaded")
async def readyz(request: Request, services: ServicesDep) -> JSONResponse:
    request_id = request.state.request_id
    embedded = services.supervisor.state.to_json() if services.supervisor is not None else None
    try:
        await run_in_threadpool(services.db.ping)
        workers = await run_in_threadpool(services.store.workers.live)
    except STORE_ERRORS as exc:
        message = f"The database does not answer ({exc.__class__.__name__})."
        return error_response(503, "database_unavailable", message, request_id, extra={"embedded_worker": embedded})
    if workers == 0:
        message = "No worker has its model loaded yet"
        if embedded is not None and embedded["error"]:
            message += f": the embedded worker {embedded['phase']}, {embedded['error']}"
        return error_response(503, "no_worker", message + ".", request_id, extra={"embedded_worker": embedded})
    return JSONResponse({"status": "ready", "workers": workers, "embedded_worker": embedded})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "Prometheus' text exposition format"}},
)
async def metrics(services: ServicesDep) -> Response:
    return Response(await run_in_threadpool(services.metrics.render), media_type=CONTENT_TYPE_LATEST)
