"""Every error the API answers, mapped to its HTTP status in this one place, with one body shape:

    {"error": "<what to fix>", "code": "<machine-readable>", "request_id": "...", "details": [...]}

`error` is the hosted API's field; `code`, `request_id` and (for 400) `details` are ours.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    ClientDisconnected,
    Conflict,
    Forbidden,
    GenerationFailed,
    Gone,
    InsufficientCredits,
    InvalidRequest,
    LtxServeError,
    NotFound,
    NoWorkerAvailable,
    RateLimited,
    SyncTimeout,
    Unauthorized,
    WorkerLost,
)
from .ratelimit import rate_limit_headers
from .schemas import field_issue

log = logging.getLogger(__name__)

STATUS: dict[type[LtxServeError], int] = {
    ClientDisconnected: 499,
    InvalidRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    InsufficientCredits: 406,
    Conflict: 409,
    Gone: 410,
    RateLimited: 429,
    GenerationFailed: 500,
    NoWorkerAvailable: 502,
    WorkerLost: 502,
    SyncTimeout: 504,
}


class FieldDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str
    code: str
    request_id: str | None
    details: list[FieldDetail] | None = None


def status_for(exc: LtxServeError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(
    status: int, code: str, message: str, request_id: str | None, *, details=None, headers=None, extra=None
) -> JSONResponse:
    body: dict = {"error": message, "code": code, "request_id": request_id}
    if details is not None:
        body["details"] = details
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def _ltxserve_error(request: Request, exc: LtxServeError) -> JSONResponse:
    status = status_for(exc)
    headers = rate_limit_headers(getattr(request.state, "rate_window", None))
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    details = [issue.to_json() for issue in exc.details] if isinstance(exc, InvalidRequest) else None
    if status >= 500:
        log.warning("request failed", extra={"code": exc.code, "status": status})
    return error_response(status, exc.code, exc.message, _request_id(request), details=details, headers=headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return await _ltxserve_error(request, InvalidRequest([field_issue(error) for error in exc.errors()]))


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = exc.headers
    if exc.status_code == 404:
        code, message = "not_found", f"No endpoint at {request.method} {request.url.path}. See /docs."
    elif exc.status_code == 405:
        code, message = "method_not_allowed", f"{request.method} is not allowed on {request.url.path}. See /docs."
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    else:
        code, message = "http_error", str(exc.detail)
    return error_response(exc.status_code, code, message, _request_id(request), headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI documents for this path: a fixed path's own, else those of every template it
    fits. (Starlette's Allow names only the first route's, and /admin/keys has a GET and a POST route.)"""
    path = request.url.path
    paths = request.app.openapi()["paths"]
    if path in paths:
        return sorted(method.upper() for method in paths[path])
    methods: set[str] = set()
    for template, operations in paths.items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    # Starlette types each handler as taking any Exception; each of these is registered for its own class.
    app.add_exception_handler(LtxServeError, _ltxserve_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]


def unexpected_error(request_id: str | None) -> JSONResponse:
    """The answer to anything unforeseen: no stack trace to the client; the log has it under the id."""
    return error_response(
        500,
        "internal_error",
        f"An unexpected error occurred on our side. It is logged under request id {request_id}; "
        "quote it if you report this.",
        request_id,
    )


_DESCRIPTIONS = {
    400: "Invalid parameters or body; `details` lists every invalid field",
    401: "Missing, unknown or revoked API key",
    403: "The key lacks the scope this request needs",
    404: "Unknown model or path",
    406: "Insufficient credits; the message gives the balance and the price",
    413: "The request body is larger than the server reads",
    429: "Rate limited (requests a minute, or generations at once); see Retry-After",
    500: "Unexpected error on our side; not billed",
    502: "No worker could take the job, or the worker died; not billed",
    504: "The generation did not finish within the sync timeout; canceled and not billed",
}


def document_errors(schema: dict) -> dict:
    """Make the OpenAPI say what every error is: JSON (FastAPI files an error under a streaming route's own
    media type), a 400 on every operation (a malformed URL, header or parameter is one anywhere), a 413 where
    a body is read, and no FastAPI 422 for validation errors, which are answered 400 here."""
    body_error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            invalid = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if invalid.get("$ref", "").endswith("/HTTPValidationError"):
                del responses["422"]
            responses.setdefault("400", {"description": _DESCRIPTIONS[400], "content": body_error})
            if "requestBody" in operation:
                responses.setdefault("413", {"description": _DESCRIPTIONS[413], "content": body_error})
            for status, response in responses.items():
                if int(status) >= 400:
                    content = response.get("content") or body_error
                    response["content"] = {"application/json": content.get("application/json")
                                           or next(iter(content.values()))}
    schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    return schema


def error_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route answers; `s409="..."` adds or rewords one."""
    texts = {status: _DESCRIPTIONS[status] for status in statuses}
    texts.update({int(name[1:]): text for name, text in descriptions.items()})
    return {status: {"model": ErrorBody, "description": text} for status, text in sorted(texts.items())}


ERROR_RESPONSES = error_responses(*_DESCRIPTIONS)
